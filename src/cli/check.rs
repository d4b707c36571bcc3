//! `lrs-autopilot check`: plan each database folder the way LRS will and say what stands in the
//! way. Reads only each file's head and tail, walks subfolders so nested files are seen (and
//! reported), and exits 0 only when nothing is blocking.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;
use time::OffsetDateTime;

use crate::backup::{BackupType, Lsn};
use crate::chain::{self, FailureKind, FileRead, Finding, FolderFile, Plan, Severity, TailRule};
use crate::storage::file::read_backup_file;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A database folder; with --all, a root (a container) whose subfolders are database folders.
    pub path: PathBuf,
    /// Check every subfolder of PATH as a database folder.
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Case-insensitive glob that marks the tail-log backup ("" for none), matched against the file
    /// name with the database name taken out.
    #[arg(long, env = "LRS_TAIL_PATTERN", default_value = crate::chain::DEFAULT_TAIL_PATTERN)]
    pub tail_pattern: String,
    /// The tail-log backup's file name, when it has no recognisable name.
    #[arg(long)]
    pub tail_file: Option<String>,
    /// The target instance (preflight: `--instance`, `--tier`, `--update-policy`,
    /// `--free-storage-gb`).
    #[command(flatten)]
    pub target: super::check_instance::InstanceArgs,
}

/// Runs `check`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rule = TailRule {
        file_name: args.tail_file.clone(),
        pattern: Some(args.tail_pattern.clone()),
        ..TailRule::default()
    };
    rule.matcher()
        .with_context(|| format!("invalid --tail-pattern {:?}", args.tail_pattern))?;

    let folders = if args.all {
        database_folders(&args.path)?
    } else {
        if !args.path.is_dir() {
            bail!("{} is not a folder", args.path.display());
        }
        vec![args.path.clone()]
    };

    // With --all the root stands for a container; a single folder's parent is just a local path.
    let container = args
        .all
        .then(|| {
            args.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .flatten();
    let instance = args.target.facts()?;
    let mut reports = Vec::with_capacity(folders.len());
    for folder in &folders {
        let files = folder_files(folder)?;
        let name = folder.file_name().map_or_else(
            || folder.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut plan = chain::plan(chain::PlanInput {
            folder: &name,
            files: &files.iter().collect::<Vec<_>>(),
            fixed_base: None,
            tail: &rule,
        });
        if let Some(finding) = container.as_deref().and_then(reserved_container) {
            plan.findings.insert(0, finding);
            plan.can_start = false;
            plan.can_complete = false;
        }
        super::check_instance::apply(&mut plan, &files, &name, &instance);
        reports.push(DatabaseReport::new(folder, plan));
    }

    if args.json {
        let out = serde_json::to_string_pretty(&Report {
            databases: &reports,
        })?;
        println!("{out}");
    } else {
        for (i, report) in reports.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", report.text());
        }
    }
    let blocked = reports
        .iter()
        .any(|r| r.findings.iter().any(|f| f.severity == Severity::Blocking));
    Ok(if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The blocking finding for a container whose name LRS refuses.
fn reserved_container(container: &str) -> Option<Finding> {
    chain::contains_reserved_word(container).then(|| Finding {
        code: chain::FindingCode::ReservedWordInPath,
        severity: Severity::Blocking,
        files: Vec::new(),
        message: format!(
            "the container name {container:?} contains \"{}\", which LRS refuses in a backup URI's \
             container or folder names (in any case): upload to a container named without it",
            chain::RESERVED_WORD
        ),
    })
}

/// The subfolders of a root, sorted; files lying directly in the root are mentioned on stderr.
fn database_folders(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut folders = Vec::new();
    let mut loose = 0usize;
    for entry in fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", root.display()))?;
        if entry.path().is_dir() {
            folders.push(entry.path());
        } else {
            loose += 1;
        }
    }
    folders.sort();
    if loose > 0 {
        eprintln!(
            "note: {loose} file(s) directly under {} belong to no database folder and were not \
             checked; LRS restores one folder per database",
            root.display()
        );
    }
    Ok(folders)
}

/// Every file under the folder, subfolders included, named relative to it with `/`.
fn folder_files(folder: &Path) -> anyhow::Result<Vec<FolderFile>> {
    let mut files = Vec::new();
    let mut pending = vec![(folder.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let listing =
            fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in listing {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot inspect {}", entry.path().display()))?;
            // Symbolic links to folders are not followed, so a loop cannot trap the walk.
            if kind.is_dir() {
                pending.push((entry.path(), format!("{name}/")));
                continue;
            }
            let Ok(meta) = fs::metadata(entry.path()) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            files.push(FolderFile {
                read: read_file(&entry.path()),
                name,
                size: meta.len(),
                last_modified: meta.modified().ok().map(OffsetDateTime::from),
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Reads a backup header from the file's head and tail only. An I/O error becomes a failed read,
/// so one unreadable file is reported and the others are still checked.
fn read_file(path: &Path) -> FileRead {
    match read_backup_file(path) {
        Ok(outcome) => FileRead::from_result(outcome.result),
        Err(error) => FileRead::Failed {
            kind: FailureKind::Unsupported,
            message: format!("cannot read the file: {error}"),
        },
    }
}

/// The JSON document.
#[derive(Serialize)]
struct Report<'r> {
    databases: &'r [DatabaseReport],
}

/// One database folder, in the JSON shape other tools rely on (keep the names).
#[derive(Serialize)]
struct DatabaseReport {
    folder: String,
    database_name: Option<String>,
    can_start: bool,
    can_complete: bool,
    restorable_to_lsn: Option<Lsn>,
    tail: Option<String>,
    plan: PlanReport,
    findings: Vec<Finding>,
    #[serde(skip)]
    detail: Plan,
}

/// The restore order: full set files, the differential's first stripe, then the log files.
#[derive(Serialize)]
struct PlanReport {
    full: Vec<String>,
    differential: Option<String>,
    logs: Vec<String>,
}

impl DatabaseReport {
    fn new(folder: &Path, plan: Plan) -> Self {
        let files_of = |kind: BackupType| {
            plan.steps
                .iter()
                .filter(move |s| s.backup_type == kind)
                .flat_map(|s| s.files.iter().cloned())
        };
        DatabaseReport {
            folder: folder.display().to_string(),
            database_name: plan.database_name.clone(),
            can_start: plan.can_start,
            can_complete: plan.can_complete,
            restorable_to_lsn: plan.restorable_to_lsn,
            tail: plan.tail.clone(),
            plan: PlanReport {
                full: files_of(BackupType::Full).collect(),
                differential: files_of(BackupType::Differential).next(),
                logs: files_of(BackupType::Log).collect(),
            },
            findings: plan.findings.clone(),
            detail: plan,
        }
    }

    /// The human report: a short timeline, the verdicts, the findings.
    fn text(&self) -> String {
        let plan = &self.detail;
        let mut out = format!("{}\n", self.folder);
        let several = plan
            .findings
            .iter()
            .any(|f| f.code == crate::chain::FindingCode::MultipleDatabases);
        let name = match plan.database_name.as_deref() {
            Some(name) => name,
            None if several => "more than one (see the findings)",
            None => "unknown (no readable backup directly in the folder)",
        };
        out.push_str(&format!("  database       {name}\n"));
        out.push_str(&format!("  timeline       {}\n", timeline(plan)));
        if let Some(lsn) = plan.restorable_to_lsn {
            let format =
                time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
            let at = plan
                .restorable_to_time
                .and_then(|t| t.format(&format).ok())
                .map(|t| format!(", the backup finished at {t} server time"))
                .unwrap_or_default();
            out.push_str(&format!("  restorable to  LSN {lsn}{at}\n"));
        }
        out.push_str(&format!("  can start      {}\n", yes_no(plan.can_start)));
        let complete = if plan.can_complete {
            "yes".to_owned()
        } else if plan.tail.is_none() {
            "no: no tail-log backup recognised (--tail-pattern, --tail-file)".to_owned()
        } else {
            "no (see the findings)".to_owned()
        };
        out.push_str(&format!("  can complete   {complete}\n"));
        if !plan.skipped.is_empty() {
            out.push_str(&format!(
                "  skipped        {} file(s)\n",
                plan.skipped.len()
            ));
        }
        if plan.findings.is_empty() {
            out.push_str("  findings       none\n");
        } else {
            out.push_str("  findings\n");
            for f in &plan.findings {
                let severity = match f.severity {
                    Severity::Blocking => "BLOCKING",
                    Severity::Warning => "warning",
                    Severity::Info => "info",
                };
                out.push_str(&format!("    {severity:<8} {}: {}\n", f.code, f.message));
                if !f.files.is_empty() {
                    out.push_str(&format!("             files: {}\n", list(&f.files, 6)));
                }
            }
        }
        out
    }
}

/// `full a.bak (2 stripes) → diff d.bak → 12 logs: l1.trn → l2.trn → … → l12.trn → tail l12.trn`.
fn timeline(plan: &Plan) -> String {
    let mut parts = Vec::new();
    let mut logs = Vec::new();
    for step in &plan.steps {
        let first = step.files.first().cloned().unwrap_or_default();
        let shown = if step.files.len() > 1 {
            format!("{first} ({} stripes)", step.files.len())
        } else {
            first
        };
        match step.backup_type {
            BackupType::Full => parts.push(format!("full {shown}")),
            BackupType::Differential => parts.push(format!("diff {shown}")),
            _ => logs.push(shown),
        }
    }
    if parts.is_empty() {
        return "no full backup to start from".to_owned();
    }
    match logs.len() {
        0 => parts.push("no logs".to_owned()),
        1 => parts.push(format!("1 log: {}", logs.join(""))),
        n if n <= 4 => parts.push(format!("{n} logs: {}", logs.join(" → "))),
        n => parts.push(format!(
            "{n} logs: {} → {} → … → {}",
            logs.first().map_or("", String::as_str),
            logs.get(1).map_or("", String::as_str),
            logs.last().map_or("", String::as_str),
        )),
    }
    let reached = plan
        .tail
        .as_ref()
        .is_some_and(|t| plan.steps.iter().any(|s| s.files.first() == Some(t)));
    parts.push(match &plan.tail {
        Some(tail) if reached => format!("tail {tail}"),
        Some(tail) => format!("tail {tail} (not reached)"),
        None => "tail: none yet".to_owned(),
    });
    parts.join(" → ")
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// At most `most` names, then how many more.
fn list(names: &[String], most: usize) -> String {
    let shown: Vec<&str> = names.iter().take(most).map(String::as_str).collect();
    if names.len() > most {
        format!("{} and {} more", shown.join(", "), names.len() - most)
    } else {
        shown.join(", ")
    }
}
