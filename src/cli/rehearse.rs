//! `lrs-autopilot rehearse <root>`: a whole migration of a folder of backups on this machine. The
//! same pipeline code runs as in Azure; only the adapters differ: a folder stands in for the
//! container, a folder for the state container, and the LRS simulator (in process, over HTTP, on
//! an accelerated clock) for the managed instance. Events are made from the folder listing and go
//! through the same BlobCreated logic; timer ticks come fast.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context as _, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use time::Duration;
use url::Url;

use super::{resolve, runtime};
use crate::chain::{Finding, FindingCode, Severity};
use crate::config::StorageIdentity;
use crate::lrs::{InstanceId, LrsClientOptions};
use crate::migration::{MigrationState, Phase};
use crate::pipeline::{ArmLrs, EventOutcome, Pipeline, Settings};
use crate::sim::{Clock, SimConfig, SimState, SystemClock};
use crate::storage::event::{BLOB_CREATED, BlobEvent};
use crate::storage::folder::{FolderStateStore, FolderStore};
use crate::storage::location::StorageScope;
use crate::storage::{BlobStore, BlobType};

/// The container name the rehearsal root stands in for.
pub(super) const CONTAINER: &str = "rehearsal";

/// The simulated instance a rehearsal migrates to.
pub(super) fn rehearsal_instance() -> crate::migration::TargetInstance {
    crate::migration::TargetInstance::new("rehearsal", "rehearsal", "rehearsal-mi")
        .expect("a valid instance id")
}
/// The pretend storage account: loopback, so plain http is allowed, and never contacted (the
/// simulator maps the folder URL's last two segments to its storage).
const ACCOUNT: &str = "http://127.0.0.1/rehearsal-account";
/// Simulated time per timer tick.
const TICK: Duration = Duration::seconds(30);
/// Real time between ticks.
const TICK_PAUSE: StdDuration = StdDuration::from_millis(20);

/// Arguments of `rehearse`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The folder standing in for a container: one subfolder per database.
    pub root: PathBuf,
    /// Where to keep state documents (default `<root>/.lrs-autopilot`). A rehearsal starts afresh.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Glob (case-insensitive) that names the tail-log backup, matched against the file name with
    /// the database name taken out.
    #[arg(long, default_value = crate::chain::DEFAULT_TAIL_PATTERN)]
    pub tail_pattern: String,
    /// Simulated restore speed, MB/s.
    #[arg(long, default_value_t = 200.0)]
    pub restore_mbps: f64,
    /// Keep watching the folder for new files (a continuous migration) until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Print the final report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many simulated hours if databases are still moving.
    #[arg(long, default_value_t = 72)]
    pub max_hours: i64,
    /// Serve the dashboard during the rehearsal (default 127.0.0.1:8090; port 0 picks one) and
    /// keep the rehearsal running, so cutovers can be declared from the page, until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8090")]
    pub dashboard: Option<std::net::SocketAddr>,
    /// The simulated instance's tier (GeneralPurpose, NextGenGeneralPurpose, BusinessCritical),
    /// so the preflight checks against your real target. Default: GeneralPurpose.
    #[arg(long)]
    pub tier: Option<crate::preflight::Tier>,
    /// The simulated instance's update policy (SQLServer2022, SQLServer2025, AlwaysUpToDate).
    /// Default: SQLServer2022, the policy new instances get.
    #[arg(long)]
    pub update_policy: Option<crate::preflight::UpdatePolicy>,
    /// The simulated instance's free storage in GB. Default: 32 TB, so storage never blocks.
    #[arg(long, value_name = "GB")]
    pub free_storage_gb: Option<f64>,
}

/// Runs `rehearse`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = runtime()?.block_on(rehearse(&args, &mut Progress::new(args.json)))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(report.exit_code())
}

/// The final report: field names are a contract (`--json`).
#[derive(Debug, Clone, Serialize)]
pub(super) struct Report {
    pub databases: Vec<DatabaseReport>,
}

/// One database's outcome.
#[derive(Debug, Clone, Serialize)]
pub(super) struct DatabaseReport {
    pub folder: String,
    pub database_name: String,
    pub phase: Phase,
    pub reason: Option<String>,
    pub files_restored: u64,
    pub files_planned: usize,
    pub tail: Option<String>,
    pub plan: Vec<String>,
    pub findings: Vec<Finding>,
    pub started_at: Option<String>,
    pub tail_restored_at: Option<String>,
    pub complete_sent_at: Option<String>,
    pub online_at: Option<String>,
}

impl Report {
    fn from_states(states: &[MigrationState], rejected: &BTreeMap<String, String>) -> Report {
        let fmt = |t: Option<time::OffsetDateTime>| {
            t.and_then(|t| t.replace_nanosecond(0).ok()).and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
        };
        let mut databases: Vec<DatabaseReport> = states
            .iter()
            .map(|s| {
                let plan = s.plan.as_ref();
                DatabaseReport {
                    folder: s.folder.clone(),
                    database_name: s.database_name.clone(),
                    phase: s.phase,
                    reason: s.reason.clone(),
                    files_restored: s.files_restored(),
                    files_planned: plan
                        .map_or(0, |p| p.steps.iter().map(|st| st.files.len()).sum()),
                    tail: s.tail.as_ref().map(|t| t.file_name.clone()),
                    plan: plan
                        .map(|p| {
                            p.steps
                                .iter()
                                .map(|st| format!("{} {}", st.backup_type, st.files.join(" + ")))
                                .collect()
                        })
                        .unwrap_or_default(),
                    findings: s.all_findings(),
                    started_at: fmt(s.lrs.started_at),
                    tail_restored_at: fmt(s.lrs.tail_restored_at),
                    complete_sent_at: fmt(s.lrs.complete_sent_at),
                    online_at: fmt(s.lrs.online_at),
                }
            })
            .collect();
        for (name, reason) in rejected {
            databases.push(DatabaseReport {
                folder: name.clone(),
                database_name: String::new(),
                phase: Phase::Blocked,
                reason: Some(reason.clone()),
                files_restored: 0,
                files_planned: 0,
                tail: None,
                plan: Vec::new(),
                findings: Vec::new(),
                started_at: None,
                tail_restored_at: None,
                complete_sent_at: None,
                online_at: None,
            });
        }
        databases.sort_by(|a, b| a.folder.cmp(&b.folder));
        Report { databases }
    }

    /// 0 when every database completed or waits for its tail; 1 otherwise (blocked, failed, ...).
    pub fn exit_code(&self) -> ExitCode {
        let ok = self.databases.iter().all(|d| {
            matches!(
                d.phase,
                Phase::Completed | Phase::Restoring | Phase::CutoverPending
            )
        });
        if ok && !self.databases.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    /// The human report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.databases.is_empty() {
            out.push_str("no database folders found\n");
        }
        for d in &self.databases {
            out.push_str(&format!(
                "\n{}  →  {}  [{}]\n",
                d.folder, d.database_name, d.phase
            ));
            if let Some(reason) = &d.reason {
                out.push_str(&format!("  why           {reason}\n"));
            }
            if !d.plan.is_empty() {
                out.push_str(&format!("  plan          {}\n", d.plan.join(" → ")));
            }
            out.push_str(&format!(
                "  restored      {} of {} planned files\n",
                d.files_restored, d.files_planned
            ));
            out.push_str(&format!(
                "  tail-log      {}\n",
                d.tail.as_deref().unwrap_or("not recognised yet")
            ));
            for (label, value) in [
                ("LRS started", &d.started_at),
                ("tail restored", &d.tail_restored_at),
                ("complete sent", &d.complete_sent_at),
                ("online", &d.online_at),
            ] {
                if let Some(v) = value {
                    out.push_str(&format!("  {label:<13} {v}\n"));
                }
            }
            for f in &d.findings {
                let sev = match f.severity {
                    Severity::Blocking => "BLOCKING",
                    Severity::Warning => "warning",
                    Severity::Info => "info",
                };
                out.push_str(&format!(
                    "  {sev:<9} {}: {}\n",
                    serde_json::to_value(f.code)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("?"),
                    f.message
                ));
            }
        }
        out
    }
}

/// Live progress: a bar per database on a terminal, plain lines otherwise, nothing with `--json`.
pub(super) struct Progress {
    quiet: bool,
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    last: BTreeMap<String, String>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let multi = (!quiet && std::io::stdout().is_terminal()).then(MultiProgress::new);
        Progress {
            quiet,
            multi,
            bars: BTreeMap::new(),
            last: BTreeMap::new(),
        }
    }

    fn show(&mut self, states: &[MigrationState]) {
        if self.quiet {
            return;
        }
        for s in states {
            let planned = s.plan.as_ref().map_or(0, |p| {
                p.steps.iter().map(|st| st.files.len()).sum::<usize>()
            });
            let blocking = s
                .findings()
                .iter()
                .filter(|f| f.severity == Severity::Blocking)
                .count();
            let line = format!(
                "{:<8} {} of {} files restored{}",
                s.phase.as_str(),
                s.files_restored(),
                planned,
                if blocking > 0 {
                    format!(", {blocking} blocking finding(s)")
                } else {
                    String::new()
                }
            );
            if self.last.get(&s.folder) == Some(&line) {
                continue;
            }
            self.last.insert(s.folder.clone(), line.clone());
            match &self.multi {
                Some(multi) => {
                    let bar = self.bars.entry(s.folder.clone()).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new(planned as u64));
                        bar.set_style(
                            ProgressStyle::with_template("{prefix:>16} [{bar:20}] {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        bar.set_prefix(s.folder.clone());
                        bar
                    });
                    bar.set_length(planned as u64);
                    bar.set_position(s.files_restored().min(planned as u64));
                    bar.set_message(line);
                }
                None => println!("{:<16} {line}", s.folder),
            }
        }
    }

    fn finish(&mut self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}

/// Whether a database needs nothing more from the rehearsal loop: done, stuck on a person, or
/// caught up and waiting for more files.
/// A blocking finding that turns the phase to Blocked once its grace ends.
fn settling(f: &Finding) -> bool {
    f.severity == Severity::Blocking
        && !matches!(
            f.code,
            FindingCode::NoFullBackup | FindingCode::IncompleteFile
        )
}

fn settled(s: &MigrationState) -> bool {
    match s.phase {
        Phase::Completed
        | Phase::Blocked
        | Phase::Failed
        | Phase::Expired
        | Phase::Lost
        | Phase::Paused => !s.files.values().any(|f| f.pending),
        // Waiting with a wake-up time: a finding is settling, or a file is pending.
        Phase::Waiting => s.next_poll_at.is_none(),
        // Caught up: LRS reports a file of the last planned set (any stripe) as the last restored,
        // and no blocking finding is still in its settling grace (it turns the phase to Blocked).
        Phase::Restoring if s.findings().iter().any(settling) => false,
        Phase::Restoring => {
            let last_set = s.plan.as_ref().and_then(|p| p.steps.last());
            let restored = s
                .lrs
                .snapshot
                .as_ref()
                .and_then(|sn| sn.last_restored_file.as_deref());
            match (last_set, restored) {
                (Some(set), Some(r)) => set.files.iter().any(|f| f.eq_ignore_ascii_case(r)),
                _ => false,
            }
        }
        Phase::Ready | Phase::Starting | Phase::CutoverPending | Phase::Completing => false,
    }
}

/// The parts of a running rehearsal.
struct Rig {
    pipeline: Pipeline,
    blobs: Arc<FolderStore>,
    sim: SimState,
    clock: Arc<SystemClock>,
    _staging: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The simulated instance the preflight checks against: `--tier`, `--update-policy`,
/// `--free-storage-gb` (reserved storage in 32 GB steps, the rest shown as used).
fn target_instance(config: &mut SimConfig, args: &Args) -> anyhow::Result<()> {
    if let Some(tier) = args.tier {
        config.tier = tier;
    }
    if let Some(policy) = args.update_policy {
        config.update_policy = policy;
    }
    match args.free_storage_gb {
        Some(free) => {
            anyhow::ensure!(
                free.is_finite() && free >= 0.0,
                "--free-storage-gb must be a number of GB, 0 or more (got {free})"
            );
            let reserved = ((free / 32.0).ceil() as u64).max(1) * 32;
            config.storage_gb = reserved;
            config.storage_used_gb = reserved as f64 - free;
        }
        None => {
            config.storage_gb = 32 * 1024;
            config.storage_used_gb = 0.0;
        }
    }
    Ok(())
}

async fn rig(root: &Path, state_dir: &Path, args: &Args) -> anyhow::Result<Rig> {
    // The folder store and the simulator see `<staging>/rehearsal` as a container: a link to the
    // user's folder, so its name need not follow Azure's container rules.
    let (staging, blobs) = stage(root)?;
    let blobs = Arc::new(blobs);
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let state = Arc::new(FolderStateStore::new(state_dir)?);

    let clock = Arc::new(SystemClock::new());
    let mut config = SimConfig::folder(staging.path());
    config.restore_mbps = args.restore_mbps;
    config.operation_secs = Some(0.2);
    config.complete_secs = 0.5;
    config.poll_retry_after_secs = 0;
    target_instance(&mut config, args)?;
    let source = blobs.clone();
    let sim = SimState::new(config, source, clock.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot start the simulator")?;
    let endpoint = Url::parse(&format!("http://{}", listener.local_addr()?))?;
    let server_state = sim.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, crate::sim::router(server_state)).await;
    });
    let options = LrsClientOptions {
        default_poll_interval: StdDuration::from_millis(50),
        ..Default::default()
    };
    let client = resolve::lrs_client(&endpoint, options)?;
    let target = rehearsal_instance();
    let instance = InstanceId::new(&target.subscription, &target.resource_group, &target.name)?;
    let lrs = Arc::new(ArmLrs::new(client, instance));

    let settings = Settings {
        scope: StorageScope::new(&Url::parse(ACCOUNT)?, vec![CONTAINER.to_owned()]),
        tail_pattern: Some(args.tail_pattern.clone()),
        default_collation: "SQL_Latin1_General_CP1_CI_AS".into(),
        max_concurrent_restores: 100,
        max_restores_per_subscription: crate::migration::MAX_RESTORES_PER_SUBSCRIPTION,
        targets: crate::config::Targets::single(target),
        database_name_map: BTreeMap::new(),
        storage_identity: StorageIdentity::ManagedIdentity,
    };
    let pipeline_clock = clock.clone();
    let pipeline = Pipeline::new(
        blobs.clone(),
        state,
        lrs,
        settings,
        Arc::new(move || pipeline_clock.now()),
    );
    Ok(Rig {
        pipeline,
        blobs,
        sim,
        clock,
        _staging: staging,
        server,
    })
}

/// A folder store in which `root` is the container [`CONTAINER`]: a temporary folder holding a
/// link to it, so the user's folder name need not follow Azure's container rules.
pub(super) fn stage(root: &Path) -> anyhow::Result<(tempfile::TempDir, FolderStore)> {
    let staging = tempfile::tempdir().context("cannot create a staging folder")?;
    link_dir(root, &staging.path().join(CONTAINER))?;
    let blobs = FolderStore::new(staging.path())?;
    Ok((staging, blobs))
}

/// The state folder of a rehearsal root.
pub(super) fn state_dir(root: &Path, state: Option<&Path>) -> PathBuf {
    state
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join(".lrs-autopilot"))
}

#[cfg(unix)]
fn link_dir(target: &Path, link: &Path) -> anyhow::Result<()> {
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("cannot link {}", target.display()))
}

#[cfg(not(unix))]
fn link_dir(target: &Path, _link: &Path) -> anyhow::Result<()> {
    bail!("rehearse needs a unix system to stage {}", target.display())
}

/// An event for a blob, exactly as Event Grid would send it.
fn event_for(blob: &crate::storage::BlobItem) -> BlobEvent {
    let mut url = Url::parse(ACCOUNT).expect("static url");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(blob.name.split('/'));
    }
    BlobEvent {
        id: format!("rehearsal-{}", blob.name),
        event_type: BLOB_CREATED.into(),
        url: url.to_string(),
        content_length: Some(blob.size),
        blob_type: Some(match blob.blob_type {
            BlobType::Page => "PageBlob".into(),
            _ => "BlockBlob".into(),
        }),
        api: Some("PutBlob".into()),
        etag: Some(blob.etag.0.clone()),
    }
}

/// Runs a rehearsal and returns its report (`demo` calls this too).
pub(super) async fn rehearse(args: &Args, progress: &mut Progress) -> anyhow::Result<Report> {
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("{} is not a folder that can be read", args.root.display()))?;
    if !root.is_dir() {
        bail!(
            "{} is not a folder: give the folder that stands in for the container",
            root.display()
        );
    }
    let state_dir = args
        .state
        .clone()
        .unwrap_or_else(|| root.join(".lrs-autopilot"));
    if state_dir.join(CONTAINER).exists() {
        std::fs::remove_dir_all(state_dir.join(CONTAINER)).with_context(|| {
            format!(
                "cannot clear the previous rehearsal's state in {}",
                state_dir.display()
            )
        })?;
    }
    let rig = rig(&root, &state_dir, args).await?;
    let _dashboard = match args.dashboard {
        Some(addr) => Some(serve_dashboard(&rig, addr).await?),
        None => None,
    };
    let keep_running = args.follow || args.dashboard.is_some();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut rejected = BTreeMap::new();

    let changes = if args.follow {
        Some(watch(&root)?)
    } else {
        None
    };
    deliver_new_files(&rig, &mut seen, &mut rejected).await?;
    let start = rig.clock.now();
    let deadline = start + Duration::hours(args.max_hours.max(1));
    let wall = Instant::now();
    loop {
        rig.sim.tick().await;
        rig.pipeline.tick().await.context("timer pass failed")?;
        let states = rig.pipeline.list().await?;
        progress.show(&states);
        if !keep_running && (states.iter().all(settled) || rig.clock.now() >= deadline) {
            break;
        }
        if args.dashboard.is_some() && !args.follow && stop_requested() {
            break;
        }
        if let Some((_watcher, changes)) = &changes {
            // A continuous migration: new files arrive while LRS restores.
            let mut changed = false;
            while changes.try_recv().is_ok() {
                changed = true;
            }
            if changed {
                deliver_new_files(&rig, &mut seen, &mut rejected).await?;
            }
            if stop_requested() {
                break;
            }
        }
        rig.clock.advance(TICK);
        tokio::time::sleep(TICK_PAUSE).await;
        if wall.elapsed() > StdDuration::from_secs(600) && !keep_running {
            break;
        }
    }
    progress.finish();
    let states = rig.pipeline.list().await?;
    Ok(Report::from_states(&states, &rejected))
}

/// A dashboard server over the rehearsal's pipeline and clock; it stops when the handle drops.
async fn serve_dashboard(rig: &Rig, addr: std::net::SocketAddr) -> anyhow::Result<AbortOnDrop> {
    use crate::dashboard::{Dashboard, Links, process_token, router};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve the dashboard on {addr}"))?;
    let addr = listener.local_addr()?;
    let clock = rig.clock.clone();
    let dashboard = Dashboard::new(
        rig.pipeline.clone(),
        Links::local(),
        process_token(),
        Arc::new(move || clock.now()),
    );
    println!("dashboard: http://{addr}/ (the rehearsal runs until Ctrl-C)");
    Ok(AbortOnDrop(tokio::spawn(async move {
        let _ = axum::serve(listener, router(dashboard, addr)).await;
    })))
}

/// Stops a spawned server when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Delivers a BlobCreated event for every file not delivered yet, oldest first, one folder's
/// files in order and folders side by side.
async fn deliver_new_files(
    rig: &Rig,
    seen: &mut BTreeSet<(String, String)>,
    rejected: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut blobs = rig.blobs.list(CONTAINER).await?;
    // Hidden files and folders (the rehearsal's own state, editors' swap files) are not backups.
    blobs.retain(|b| !b.name.split('/').any(|seg| seg.starts_with('.')));
    blobs.retain(|b| seen.insert((b.name.clone(), b.etag.0.clone())));
    blobs.sort_by(|a, b| (a.last_modified, &a.name).cmp(&(b.last_modified, &b.name)));
    let mut by_folder: BTreeMap<String, Vec<BlobEvent>> = BTreeMap::new();
    for blob in &blobs {
        let folder = blob.name.split('/').nth(1).unwrap_or_default().to_owned();
        by_folder.entry(folder).or_default().push(event_for(blob));
    }
    let tasks = by_folder.into_values().map(|events| {
        let pipeline = rig.pipeline.clone();
        async move {
            let mut outcomes = Vec::new();
            for event in events {
                outcomes.push(
                    pipeline
                        .blob_created(&event)
                        .await
                        .map(|o| (event.url.clone(), o)),
                );
            }
            outcomes
        }
    });
    for outcome in futures::future::join_all(tasks).await.into_iter().flatten() {
        match outcome {
            Ok((url, EventOutcome::Rejected(reason))) => {
                let name = url.rsplit('/').next().unwrap_or(&url).to_owned();
                rejected.insert(name, reason);
            }
            Ok(_) => {}
            // In Azure the message would be retried; here the next delivery (or --follow) retries.
            Err(e) => tracing::error!(error = %e, "an event could not be handled"),
        }
    }
    Ok(())
}

/// Watches the root for new or rewritten files; the receiver gets a unit per change.
fn watch(
    root: &Path,
) -> anyhow::Result<(notify::RecommendedWatcher, std::sync::mpsc::Receiver<()>)> {
    use notify::Watcher as _;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = event.is_ok_and(|e| {
            (e.kind.is_create() || e.kind.is_modify())
                && e.paths.iter().any(|p| {
                    !p.components()
                        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
                })
        });
        if relevant {
            let _ = tx.send(());
        }
    })
    .context("cannot watch the folder")?;
    watcher
        .watch(root, notify::RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", root.display()))?;
    Ok((watcher, rx))
}

/// Ctrl-C during `--follow`: checked between ticks.
fn stop_requested() -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                STOP.store(true, Ordering::SeqCst);
            }
        });
    });
    STOP.load(Ordering::SeqCst)
}
