//! `lrs-autopilot resync`: list each watched container and record every backup blob missing from
//! state, through the same path as an event (same `LRS_*` variables as `serve`). Run it after
//! events were lost (dead-lettered by Event Grid or Service Bus); the timer also runs such a pass
//! every `LRS_RESYNC_INTERVAL_SECS`.

use std::process::ExitCode;

use anyhow::Context as _;

use super::{resolve, runtime};
use crate::config::Config;

/// Arguments of `resync`. Everything comes from the `LRS_*` variables (see the README).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `resync`. Exit 0 when every blob was handled, 1 when some failed (listed on stderr).
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::from_env().context("bad configuration")?;
    let rt = runtime()?;
    rt.block_on(async move {
        let pipeline = resolve::azure_pipeline(&config)?;
        let report = pipeline
            .resync()
            .await
            .context("cannot list the watched containers")?;
        println!(
            "resync: {} blobs listed, {} already recorded, {} recorded now, {} skipped, {} errors",
            report.listed,
            report.known,
            report.recorded,
            report.skipped,
            report.errors.len()
        );
        for e in &report.errors {
            eprintln!("error: {}", crate::logline::escape(e));
        }
        Ok(if report.errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
