//! `lrs-autopilot restart <database>`: start LRS again for a migration that is `Lost` (the database
//! disappeared after its start: a failover, a Business Critical update, the 30-day cancel),
//! `Failed` or `Expired`. The pipeline re-plans from the newest complete full backup and starts LRS
//! afresh, keeping the files and the audit. The same path as `POST migrations/{db}/restart`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{resolve, runtime};
use crate::pipeline::{DatabaseSummary, PipelineError};

/// Arguments of `restart`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database: its folder, `container/folder`, or target name.
    database: String,
    /// Act on a rehearsal's state (`<root>/.lrs-autopilot`) instead of the deployed pipeline's;
    /// a running `rehearse --follow <root>` starts it on its next tick.
    #[arg(long, value_name = "ROOT")]
    local: Option<PathBuf>,
    /// With --local: the state folder, if `rehearse --state` moved it.
    #[arg(long, requires = "local")]
    state: Option<PathBuf>,
}

/// Runs `restart`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let (pipeline, _staging) =
            resolve::pipeline_for(args.local.as_deref(), args.state.as_deref())?;
        match pipeline.restart(&args.database).await {
            Ok(state) => {
                let s = DatabaseSummary::from(&state);
                println!(
                    "{}: restarted (restart {}); phase {}. LRS starts again from the newest \
                     complete full backup.",
                    s.database_name, state.restarts, s.phase
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(
                e @ (PipelineError::UnknownDatabase(_)
                | PipelineError::Ambiguous { .. }
                | PipelineError::NotRestartable { .. }),
            ) => {
                eprintln!("error: {e} (see `lrs-autopilot status`)");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        }
    })
}
