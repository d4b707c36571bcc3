//! `lrs-autopilot simulate`.

use std::process::ExitCode;

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `simulate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`simulate` is not implemented yet")
}
