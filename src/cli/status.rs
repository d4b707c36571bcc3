//! `lrs-autopilot status`: every database's migration, from the deployed pipeline's state
//! container (same `LRS_*` variables as `serve`) or from a rehearsal root (`--local`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use super::{resolve, runtime};
use crate::chain::Severity;
use crate::dashboard::forecast::Forecast;
use crate::migration::Phase;
use crate::pipeline::DatabaseSummary;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read a rehearsal's state (`<root>/.lrs-autopilot`) instead of the deployed pipeline's.
    #[arg(long, value_name = "ROOT")]
    local: Option<PathBuf>,
    /// With --local: the state folder, if `rehearse --state` moved it.
    #[arg(long, requires = "local")]
    state: Option<PathBuf>,
    /// Print `{"databases":[...]}` as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `status`. Exit 0 unless a database is blocked, failed, expired or lost.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    // The dashboard's forecast beside each summary, one state document read at a time.
    let now = time::OffsetDateTime::now_utc();
    let (rows, unreadable) = rt.block_on(async {
        let (pipeline, _staging) =
            resolve::pipeline_for(args.local.as_deref(), args.state.as_deref())?;
        pipeline
            .map_states(|s| {
                (
                    DatabaseSummary::from(s),
                    crate::dashboard::view::database(s, now).forecast,
                )
            })
            .await
            .context("cannot read the state documents")
    })?;
    // One unreadable document is reported, not allowed to hide every other database.
    for (key, reason) in &unreadable {
        eprintln!(
            "error: state document {key} is unreadable: {}",
            crate::logline::escape(reason)
        );
    }
    let forecasts: BTreeMap<(String, String), Forecast> = rows
        .iter()
        .map(|(s, f)| ((s.container.clone(), s.folder.clone()), f.clone()))
        .collect();
    let mut summaries: Vec<DatabaseSummary> = rows.into_iter().map(|(s, _)| s).collect();
    summaries.sort_by(|a, b| (&a.container, &a.folder).cmp(&(&b.container, &b.folder)));
    let forecast_of = |s: &DatabaseSummary| forecasts.get(&(s.container.clone(), s.folder.clone()));
    if args.json {
        let databases: Vec<serde_json::Value> = summaries
            .iter()
            .map(|s| {
                let mut v = json!(s);
                if let (Some(obj), Some(f)) = (v.as_object_mut(), forecast_of(s)) {
                    obj.insert("forecast".into(), json!(f));
                }
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "databases": databases }))?
        );
    } else if summaries.is_empty() {
        println!("no migrations recorded yet");
    } else {
        println!(
            "{:<28} {:<24} {:<16} {:<15} {:>9}  TAIL / WHY",
            "FOLDER", "DATABASE", "INSTANCE", "PHASE", "RESTORED"
        );
        for s in &summaries {
            let blocking = s
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Blocking)
                .count();
            let note = s
                .reason
                .clone()
                .or_else(|| s.tail.clone().map(|t| format!("tail {t}")))
                .unwrap_or_else(|| {
                    if blocking > 0 {
                        format!("{blocking} blocking finding(s)")
                    } else {
                        String::new()
                    }
                });
            // The instance's name; `--json` has its resource id.
            let instance = s
                .target_instance
                .as_deref()
                .and_then(|id| id.rsplit('/').next())
                .unwrap_or("-");
            println!(
                "{:<28} {:<24} {:<16} {:<15} {:>4}/{:<4}  {}",
                format!("{}/{}", s.container, s.folder),
                s.database_name,
                instance,
                s.phase.as_str(),
                s.files_restored,
                s.files_planned,
                note
            );
            // Every finding, blocking or not (preflight warnings and info included).
            for f in &s.findings {
                println!(
                    "{:<28} {:<8} {}: {}",
                    "",
                    f.severity.as_str(),
                    f.code,
                    f.message
                );
            }
            // A stopped migration has no forecast worth printing: its reason says what to do.
            let moving = !s.phase.is_final() && !matches!(s.phase, Phase::Blocked | Phase::Paused);
            if let Some(f) = forecast_of(s).filter(|_| moving) {
                println!("{:<28} forecast: {}", "", f.describe());
            }
        }
    }
    let bad = !unreadable.is_empty()
        || summaries.iter().any(|s| {
            matches!(
                s.phase,
                Phase::Blocked | Phase::Failed | Phase::Expired | Phase::Lost
            )
        });
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
