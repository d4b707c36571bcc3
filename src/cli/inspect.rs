//! `lrs-autopilot inspect`.

use std::process::ExitCode;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `inspect`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`inspect` is not implemented yet")
}
