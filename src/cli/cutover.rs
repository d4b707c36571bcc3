//! `lrs-autopilot cutover <database>`: declare the last backup and let the pipeline complete the
//! migration once LRS has restored it. The same path as `POST migrations/{db}/cutover`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{resolve, runtime};
use crate::migration::Input;
use crate::pipeline::{DatabaseSummary, PipelineError};

/// Arguments of `cutover`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database: its folder, `container/folder`, or target name.
    database: String,
    /// The tail-log backup's file name; default: the newest log backup in the plan.
    #[arg(long, value_name = "NAME")]
    last_backup: Option<String>,
    /// Act on a rehearsal's state (`<root>/.lrs-autopilot`) instead of the deployed pipeline's;
    /// a running `rehearse --follow <root>` completes it on its next tick.
    #[arg(long, value_name = "ROOT")]
    local: Option<PathBuf>,
    /// With --local: the state folder, if `rehearse --state` moved it.
    #[arg(long, requires = "local")]
    state: Option<PathBuf>,
}

/// Runs `cutover`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.last_backup {
        let max = crate::migration::MAX_LAST_BACKUP_NAME_CHARS;
        if name.chars().count() > max {
            anyhow::bail!("--last-backup is longer than {max} characters");
        }
    }
    let rt = runtime()?;
    rt.block_on(async {
        let (pipeline, _staging) = resolve::pipeline_for(args.local.as_deref(), args.state.as_deref())?;
        let input = Input::Cutover { last_backup: args.last_backup.clone() };
        match pipeline.operator(&args.database, input).await {
            Ok(state) => {
                let s = DatabaseSummary::from(&state);
                match &s.tail {
                    Some(tail) => println!(
                        "{}: cutover declared with last backup {tail}; phase {}. The pipeline completes the \
                         migration once LRS reports {tail} restored.",
                        s.database_name, s.phase
                    ),
                    None => println!(
                        "{}: no log backup is planned yet, so no last backup could be chosen: give --last-backup",
                        s.database_name
                    ),
                }
                Ok(if s.tail.is_some() { ExitCode::SUCCESS } else { ExitCode::from(1) })
            }
            Err(PipelineError::InvalidInput(reason)) => {
                eprintln!("error: {}", crate::logline::escape(&reason));
                Ok(ExitCode::from(2))
            }
            Err(PipelineError::UnknownDatabase(db)) => {
                eprintln!("error: no migration for database {db:?} (see `lrs-autopilot status`)");
                Ok(ExitCode::from(1))
            }
            Err(e @ PipelineError::Ambiguous { .. }) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        }
    })
}
