//! `lrs-autopilot rehearse`.

use std::process::ExitCode;

/// Arguments of `rehearse`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `rehearse`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`rehearse` is not implemented yet")
}
