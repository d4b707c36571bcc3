//! `lrs-autopilot cutover`.

use std::process::ExitCode;

/// Arguments of `cutover`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `cutover`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`cutover` is not implemented yet")
}
