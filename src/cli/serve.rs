//! `lrs-autopilot serve`.

use std::process::ExitCode;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `serve`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`serve` is not implemented yet")
}
