//! `lrs-autopilot demo`.

use std::process::ExitCode;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `demo`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`demo` is not implemented yet")
}
