//! The pipeline's use cases, shared by every shell: a blob was created, the timer ticked, an
//! operator asked for something. Each reads what it needs (the blob's header by ranged reads, the
//! folder's state document, LRS's status), feeds the migration state machine, writes the state back
//! with If-Match (re-reading on a conflict), and carries out the actions.
//!
//! The Functions handlers, `rehearse`, `demo`, `status`, `cutover` and `restart` all call this
//! module, over different adapters (Azure or a folder; ARM or the simulator).
//!
//! Every use case is bounded by [`INVOCATION_BUDGET`]: no ARM long-running operation is waited on
//! (start and complete return once ARM accepts; the timer polls the operation once per due tick),
//! and the ARM client's retries stop well within the budget.

mod arm;
pub mod due;
pub mod instance;
mod lrs_port;
mod metrics;
mod redact;
mod resync;
mod shared_doc;
mod slots;
mod state_cache;
mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::StreamExt;
use time::OffsetDateTime;
use tracing::{error, info, warn};

pub use arm::{ArmLrs, ArmTargets};
pub use lrs_port::{
    LrsApi, LrsCallError, LrsTargets, OnePort, OperationState, RestoreView, StartRequest,
};
pub use metrics::Metrics;
pub use resync::{DEFAULT_RESYNC_INTERVAL, ResyncReport};
pub use summary::DatabaseSummary;

use crate::backup::{self, BackupFile};
use crate::chain::{FailureKind, FileRead, FolderFile, Severity};
use crate::config::{StorageIdentity, Targets};
use crate::migration::{
    self, Action, CallError, Context, ErrorClass, FileRecord, Input, MigrationState, OperationPoll,
    Phase, TargetInstance,
};
use crate::storage::event::BlobEvent;
use crate::storage::location::{BlobLocation, StorageScope};
use crate::storage::{self, BlobItem, BlobStore, ETag, Precondition, StateStore};
use shared_doc::SharedDoc;
use state_cache::{Cached, StateCache};

/// How many times a state update is retried after losing a race.
const MAX_CONFLICT_RETRIES: u32 = 64;
/// How many state-machine rounds one invocation carries out (action → outcome → action ...).
const MAX_ROUNDS: usize = 12;
/// The most time one use case (a BlobCreated event, a timer pass, an operator command) may take.
/// `host.json` sets `functionTimeout` to 60 s, above this, so the pipeline stops itself first; the
/// Service Bus lock (5 min on the queue) outlasts it, so a message is never redelivered while its
/// first invocation still runs.
pub const INVOCATION_BUDGET: StdDuration = StdDuration::from_secs(45);
/// How many databases the timer handles at once.
const TICK_PARALLELISM: usize = 16;
/// How many databases awaiting cutover the timer handles at once, before any other: each waits on
/// ARM's latency (one restoreDetails read), so they are polled together rather than in waves.
const CUTOVER_PARALLELISM: usize = 64;

/// The settings the use cases need (a subset of [`crate::config::Config`]).
#[derive(Clone)]
pub struct Settings {
    /// Which account and containers may be read.
    pub scope: StorageScope,
    /// The tail-log glob.
    pub tail_pattern: Option<String>,
    /// Collation when the header has none.
    pub default_collation: String,
    /// LRS slots per instance.
    pub max_concurrent_restores: usize,
    /// LRS restores the pipeline runs at once per subscription
    /// ([`migration::MAX_RESTORES_PER_SUBSCRIPTION`], LRS's limit).
    pub max_restores_per_subscription: usize,
    /// Which instance each folder migrates to.
    pub targets: Targets,
    /// Folder → target database name.
    pub database_name_map: BTreeMap<String, String>,
    /// How LRS reads the container.
    pub storage_identity: StorageIdentity,
}

impl Settings {
    fn database_name(&self, folder: &str) -> String {
        self.database_name_map
            .get(folder)
            .cloned()
            .unwrap_or_else(|| folder.to_owned())
    }
}

/// A clock: real time in production, accelerated time in rehearsals.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// A use case failed in a way the host should retry (Service Bus redelivers the message).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Storage failed transiently, or kept conflicting.
    #[error("storage: {0}")]
    Storage(#[from] storage::Error),
    /// A state document could not be decoded: a person must look at it.
    #[error("state document {key} is unreadable: {reason}")]
    CorruptState {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
    /// No such database for an operator command.
    #[error("no migration for database {0:?}")]
    UnknownDatabase(String),
    /// The name matches more than one folder: address it as `container/folder`.
    #[error("{name:?} matches more than one folder ({}): name it as container/folder", keys.join(", "))]
    Ambiguous {
        /// What was asked.
        name: String,
        /// The matching folders, as `container/folder`.
        keys: Vec<String>,
    },
    /// `restart` asked for a migration that is not `Lost`, `Failed` or `Expired`.
    #[error("{name} is {phase}: only a Lost, Failed or Expired migration can be restarted")]
    NotRestartable {
        /// The database.
        name: String,
        /// Its phase.
        phase: Phase,
    },
    /// The use case did not finish within [`INVOCATION_BUDGET`]; what it did so far is recorded
    /// and the next invocation goes on from there.
    #[error("the invocation ran out of its {} s budget", INVOCATION_BUDGET.as_secs())]
    OutOfTime,
    /// An operator's input that the folder's state refutes (a `lastBackupName` that names no
    /// planned log backup, ...): answered to the caller, never written.
    #[error("{0}")]
    InvalidInput(String),
}

impl PipelineError {
    /// Whether storage refused access (401/403): a configuration error (a role assignment, a SAS),
    /// which no retry or file fixes.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, PipelineError::Storage(e) if matches!(e.status(), Some(401 | 403)))
    }

    /// Whether the host should retry the invocation.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Storage(e) => {
                e.is_retryable() || matches!(e, storage::Error::Conflict { .. })
            }
            PipelineError::OutOfTime => true,
            PipelineError::CorruptState { .. }
            | PipelineError::UnknownDatabase(_)
            | PipelineError::Ambiguous { .. }
            | PipelineError::NotRestartable { .. }
            | PipelineError::InvalidInput(_) => false,
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Recorded in a folder's state: the folder, the file and the phase after it.
    Recorded {
        /// `<container>/<folder>`.
        folder: String,
        /// The file.
        file: String,
        /// The phase afterwards.
        phase: Phase,
    },
    /// Seen before with the same ETag: nothing to do.
    Duplicate {
        /// The file.
        file: String,
    },
    /// Not a BlobCreated event, or an empty blob.
    Ignored(String),
    /// Refused without reading anything, with the reason.
    Rejected(String),
}

/// What one timer pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Databases looked at.
    pub examined: usize,
    /// Databases that were due and were handled.
    pub handled: usize,
    /// Databases by phase after the pass.
    pub phases: BTreeMap<Phase, usize>,
    /// Errors (one line each); the pass goes on past them.
    pub errors: Vec<String>,
}

/// What the timer found for one database.
struct TickOne {
    /// Its due-time index entry after the pass.
    entry: due::Entry,
    /// Whether it was due and driven.
    handled: bool,
    /// Whether it holds an LRS slot.
    holds: bool,
}

/// The pipeline: adapters plus settings.
#[derive(Clone)]
pub struct Pipeline {
    blobs: Arc<dyn BlobStore>,
    state: Arc<dyn StateStore>,
    lrs: Arc<dyn LrsTargets>,
    settings: Settings,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// How often the timer runs a reconciliation pass; `None`: never.
    resync_interval: Option<time::Duration>,
    /// The state documents last read or written, to start read-modify-writes from.
    docs: Arc<StateCache>,
    /// This process's writers of the documents every database shares.
    slots: Arc<SharedDoc<slots::Slots>>,
    due: Arc<SharedDoc<due::DueIndex>>,
    /// The instance facts this process read last (see [`instance::Memo`]).
    instance_facts: Arc<instance::Memo>,
}

impl Pipeline {
    /// Assembles a pipeline whose LRS calls all go to one port, whatever the database's target.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        state: Arc<dyn StateStore>,
        lrs: Arc<dyn LrsApi>,
        settings: Settings,
        clock: Clock,
    ) -> Self {
        Pipeline::with_targets(blobs, state, Arc::new(OnePort(lrs)), settings, clock)
    }

    /// Assembles a pipeline whose LRS calls go to each database's target instance.
    pub fn with_targets(
        blobs: Arc<dyn BlobStore>,
        state: Arc<dyn StateStore>,
        lrs: Arc<dyn LrsTargets>,
        settings: Settings,
        clock: Clock,
    ) -> Self {
        if let StorageIdentity::SharedAccessSignature(token) = &settings.storage_identity {
            storage::sas::redact_by_value(token);
        }
        Pipeline {
            blobs,
            slots: Arc::new(SharedDoc::new(state.clone())),
            due: Arc::new(SharedDoc::new(state.clone())),
            state,
            lrs,
            settings,
            clock,
            metrics: Arc::new(Metrics::default()),
            resync_interval: None,
            docs: Arc::new(StateCache::default()),
            instance_facts: Arc::new(instance::Memo::default()),
        }
    }

    /// Lets the timer run a reconciliation pass ([`Pipeline::resync`]) every `interval`; `None`
    /// (the default) never.
    pub fn with_resync_interval(mut self, interval: Option<time::Duration>) -> Self {
        self.resync_interval = interval;
        self
    }

    /// The counters this pipeline keeps (shared: exporters read them).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The database's instance: the one its state records, else the default instance (documents
    /// written before targets were recorded).
    fn target_of<'a>(&'a self, state: &'a MigrationState) -> Option<&'a TargetInstance> {
        state
            .target
            .as_ref()
            .or(self.settings.targets.default.as_ref())
    }

    /// The LRS port of the database's instance; every answer through it is redacted.
    fn lrs_for(&self, state: &MigrationState) -> Arc<dyn LrsApi> {
        match self.lrs.port(self.target_of(state)) {
            Some(port) => Arc::new(redact::RedactedLrs(port)),
            None => Arc::new(lrs_port::NoPort(LrsCallError {
                status: None,
                code: None,
                message: format!(
                    "no target instance for {}/{}: map its container in LRS_TARGETS, or set the \
                     default instance (LRS_SUBSCRIPTION_ID, LRS_RESOURCE_GROUP, \
                     LRS_MANAGED_INSTANCE)",
                    state.container, state.folder
                ),
                retryable: false,
            })),
        }
    }

    fn context(&self, slot_available: bool, name_owner: Option<String>) -> Context {
        let now = (self.clock)();
        let sas_days_left = match &self.settings.storage_identity {
            StorageIdentity::SharedAccessSignature(token) => storage::sas::SasToken::parse(token)
                .ok()
                .and_then(|t| t.days_until_expiry(now)),
            StorageIdentity::ManagedIdentity => None,
        };
        Context {
            now,
            tail_pattern: self.settings.tail_pattern.clone(),
            default_collation: self.settings.default_collation.clone(),
            slot_available,
            sas_days_left,
            name_owner,
            target: None,
        }
    }

    /// Handles one BlobCreated event end to end.
    ///
    /// # Errors
    /// Only transient trouble the host should retry ([`PipelineError::is_transient`]) or a state
    /// document that cannot be decoded; every refusal is an `Ok` outcome with its reason.
    pub async fn blob_created(&self, event: &BlobEvent) -> Result<EventOutcome, PipelineError> {
        bounded(self.blob_created_unbounded(event)).await
    }

    async fn blob_created_unbounded(
        &self,
        event: &BlobEvent,
    ) -> Result<EventOutcome, PipelineError> {
        if !event.is_blob_created() {
            return Ok(EventOutcome::Ignored(format!(
                "event type {} is not BlobCreated",
                event.event_type
            )));
        }
        let location = match self.settings.scope.locate(&event.url) {
            Ok(location) => location,
            Err(reason) => {
                self.metrics.events_rejected.inc();
                warn!(reason = %reason, "event refused");
                return Ok(EventOutcome::Rejected(reason.to_string()));
            }
        };
        if event.content_length == Some(0) {
            return Ok(EventOutcome::Ignored(format!(
                "{} is empty (a copy or upload in progress)",
                location.blob_name()
            )));
        }
        self.record_file(&location, event.etag.as_deref(), event.content_length)
            .await
    }

    /// Reads a file's header (unless the state already has this version of it) and records it.
    ///
    /// Storage calls, when this process has the folder's state document cached (see
    /// [`state_cache`]) and the event gives the blob's ETag and size: the head and tail reads at
    /// once, then one conditional write; a redelivered event, one read of the state document.
    /// Otherwise the document is read first, and without ETag and size the blob's properties.
    async fn record_file(
        &self,
        location: &BlobLocation,
        etag: Option<&str>,
        size: Option<u64>,
    ) -> Result<EventOutcome, PipelineError> {
        let key = MigrationState::key(&location.container, &location.folder);
        let duplicate = |state: &MigrationState| {
            state.files.get(&location.name).is_some_and(|existing| {
                // Azure quotes ETags in headers (what we record); Event Grid sends them bare.
                let same = etag
                    .zip(existing.etag.as_deref())
                    .is_some_and(|(a, b)| a.trim_matches('"') == b.trim_matches('"'));
                !existing.pending && same
            })
        };
        // The cache only says where to look: a duplicate is confirmed by reading the document.
        let known = match self.docs.get(&key) {
            Some(Cached::Present(state, _)) => !duplicate(&state),
            Some(Cached::Absent) => true,
            None => false,
        };
        if !known {
            if let Some((state, _)) = self.load_fresh(&key).await? {
                if duplicate(&state) {
                    self.metrics.events_duplicate.inc();
                    return Ok(EventOutcome::Duplicate {
                        file: location.blob_name(),
                    });
                }
            }
        }
        let blob_name = format!("{}/{}", location.container, location.blob_name());
        let Some((outcome, item)) = self.read_blob(&blob_name, etag, size).await? else {
            return Ok(EventOutcome::Ignored(format!(
                "{blob_name} no longer exists"
            )));
        };
        if item.size == 0 {
            return Ok(EventOutcome::Ignored(format!("{blob_name} is empty")));
        }
        let (read, bytes_read) = (outcome.result, outcome.bytes_read);
        self.metrics.bytes_read.add(bytes_read);
        let record = file_record(location, &item, read, bytes_read, (self.clock)());
        if let FileRead::Failed { kind, message } = &record.file.read {
            info!(file = %blob_name, kind = ?kind, message = %message, "file is not usable as it is");
        }
        let db = self.settings.database_name(&location.folder);
        let state = self
            .drive(
                &location.container,
                &location.folder,
                &db,
                Input::FileSeen(Box::new(record)),
            )
            .await?;
        self.metrics.events_processed.inc();
        // The tail just recognised: LRS may have restored it already (Event Grid can be slower
        // than LRS), so it is polled now rather than on the next timer tick.
        let is_tail = state
            .tail
            .as_ref()
            .is_some_and(|t| migration::same_file(Some(&location.name), &t.file_name));
        let state = if state.phase == Phase::CutoverPending && is_tail {
            let (container, folder) = (&location.container, &location.folder);
            match self.drive(container, folder, &db, Input::Tick).await {
                Ok(after) => after,
                Err(e) => {
                    warn!(folder = %folder, error = %e, "the tail's first poll failed: the timer polls it");
                    state
                }
            }
        } else {
            state
        };
        Ok(EventOutcome::Recorded {
            folder: format!("{}/{}", location.container, location.folder),
            file: location.name.clone(),
            phase: state.phase,
        })
    }

    /// A blob's header and properties, or `None` when it no longer exists. With the event's ETag
    /// and size, the head and tail are read at once, of that version; if the blob was overwritten
    /// since (a page blob being filled, a re-upload), the current version is read instead.
    async fn read_blob(
        &self,
        blob_name: &str,
        etag: Option<&str>,
        size: Option<u64>,
    ) -> Result<Option<(backup::FetchOutcome, BlobItem)>, PipelineError> {
        if let (Some(etag), Some(size)) = (etag, size.filter(|s| *s > 0)) {
            let etag = ETag(format!("\"{}\"", etag.trim_matches('"')));
            match storage::read_backup_blob_known(self.blobs.as_ref(), blob_name, size, &etag).await
            {
                Ok(read) => return Ok(Some(read)),
                Err(storage::Error::NotFound { .. }) => return Ok(None),
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let item = match self.blobs.properties(blob_name).await {
            Ok(item) => item,
            Err(storage::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if item.size == 0 {
            let empty = backup::Fetch::new(0).finish();
            return Ok(Some((empty, item)));
        }
        let outcome =
            storage::read_backup_blob(self.blobs.as_ref(), blob_name, item.size, Some(&item.etag))
                .await?;
        Ok(Some((outcome, item)))
    }

    /// One timer pass over every database that is due.
    ///
    /// Reads the due-time index ([`due`]) and only the state documents it says are due; every
    /// [`due::FULL_SCAN_EVERY`] (and when there is no index) it reads every state document instead,
    /// rebuilds the index and prunes stale LRS slot claims.
    ///
    /// # Errors
    /// Only when the index or the state documents cannot be read; per-database failures are in the
    /// report.
    pub async fn tick(&self) -> Result<TickReport, PipelineError> {
        let deadline = tokio::time::Instant::now() + INVOCATION_BUDGET;
        let seen = tokio::time::timeout_at(deadline, due::load(&self.due))
            .await
            .map_err(|_| PipelineError::OutOfTime)??;
        let now = (self.clock)();
        let full = seen
            .as_ref()
            .and_then(|index| index.full_scan_at)
            .is_none_or(|at| now - at >= due::FULL_SCAN_EVERY || at > now);
        let mut keys: Vec<String> = match (&seen, full) {
            (Some(index), false) => index
                .entries
                .iter()
                .filter(|(_, e)| e.due(now))
                .map(|(k, _)| k.clone())
                .collect(),
            _ => tokio::time::timeout_at(deadline, self.state_keys())
                .await
                .map_err(|_| PipelineError::OutOfTime)??,
        };
        // Databases awaiting cutover first, all together: their lag is the downtime users feel,
        // and a pass over many restoring databases would otherwise keep them waiting.
        let urgent = |k: &String| {
            seen.as_ref().is_some_and(|index| {
                index
                    .entries
                    .get(k)
                    .is_some_and(|e| matches!(e.phase, Phase::CutoverPending | Phase::Completing))
            })
        };
        keys.sort_by_key(|k| !urgent(k));
        let first = keys.iter().take_while(|k| urgent(k)).count();
        // A database not reached within the budget is left for the next pass (it stays due).
        let one = |key: String| async move {
            match tokio::time::timeout_at(deadline, self.tick_one(&key, now)).await {
                Ok(result) => result
                    .map(|found| (key.clone(), found))
                    .map_err(|e| format!("{key}: {e}")),
                Err(_) => Err(format!("{key}: {}", PipelineError::OutOfTime)),
            }
        };
        let mut results: Vec<_> = futures::stream::iter(keys[..first].iter().cloned())
            .map(one)
            .buffer_unordered(CUTOVER_PARALLELISM)
            .collect()
            .await;
        let rest: Vec<_> = futures::stream::iter(keys[first..].iter().cloned())
            .map(one)
            .buffer_unordered(TICK_PARALLELISM)
            .collect()
            .await;
        results.extend(rest);
        let mut report = TickReport::default();
        let mut holders = std::collections::BTreeSet::new();
        let mut found = BTreeMap::new();
        let mut complete = true;
        for result in results {
            match result {
                Ok((key, pass)) => {
                    report.handled += usize::from(pass.handled);
                    if pass.holds {
                        holders.insert(key.clone());
                    }
                    found.insert(key, pass.entry);
                }
                Err(e) => {
                    complete = false;
                    error!(error = %e, "timer could not handle a database");
                    report.errors.push(e);
                }
            }
        }
        // Phases: what this pass found, and the index's entries for the rest.
        let mut phases: BTreeMap<String, Phase> =
            found.iter().map(|(k, e)| (k.clone(), e.phase)).collect();
        if let (Some(index), false) = (&seen, full) {
            for (key, entry) in &index.entries {
                phases.entry(key.clone()).or_insert(entry.phase);
            }
        }
        report.examined = phases.len().max(keys.len());
        for phase in phases.into_values() {
            *report.phases.entry(phase).or_default() += 1;
        }
        let full_scan = (full && complete).then(|| (keys.iter().cloned().collect(), now));
        if full && complete {
            // Only a pass that saw every database may drop claims it did not see held.
            slots::prune(&self.slots, holders).await?;
        }
        if !found.is_empty() || full_scan.is_some() {
            due::record_pass(&self.due, seen, due::PassResult { found, full_scan }).await?;
        }
        match self.resync_if_due().await {
            Some(Ok(r)) => report.errors.extend(r.errors),
            Some(Err(e)) => report.errors.push(format!("resync: {e}")),
            None => {}
        }
        self.metrics.set_phases(&report.phases);
        Ok(report)
    }

    async fn tick_one(&self, key: &str, now: OffsetDateTime) -> Result<TickOne, PipelineError> {
        let holds = |s: &MigrationState| s.start_claimed() && !s.phase.is_final();
        let entry = |s: &MigrationState| due::Entry {
            next: s.next_poll_at,
            phase: s.phase,
            lowered: 0,
        };
        let Some((state, _)) = self.load_fresh(key).await? else {
            // Gone: an entry that is never due (a full scan drops it).
            return Ok(TickOne {
                entry: due::Entry {
                    next: None,
                    phase: Phase::Waiting,
                    lowered: 0,
                },
                handled: false,
                holds: false,
            });
        };
        let due = state.next_poll_at.is_some_and(|t| t <= now);
        if !due {
            return Ok(TickOne {
                entry: entry(&state),
                handled: false,
                holds: holds(&state),
            });
        }
        let state = self
            .drive(
                &state.container,
                &state.folder,
                &state.database_name,
                Input::Tick,
            )
            .await?;
        Ok(TickOne {
            entry: entry(&state),
            handled: true,
            holds: holds(&state),
        })
    }

    /// An operator's command (`cutover`, `pause`, `resume`) for a database, by folder or target name.
    ///
    /// # Errors
    /// [`PipelineError::UnknownDatabase`], or storage trouble.
    pub async fn operator(
        &self,
        database: &str,
        input: Input,
    ) -> Result<MigrationState, PipelineError> {
        bounded(async {
            let state = self
                .find(database)
                .await?
                .ok_or_else(|| PipelineError::UnknownDatabase(database.to_owned()))?;
            let restartable = matches!(state.phase, Phase::Lost | Phase::Failed | Phase::Expired);
            if input == Input::Restart && !restartable {
                return Err(PipelineError::NotRestartable {
                    name: state.database_name,
                    phase: state.phase,
                });
            }
            if let Input::Cutover {
                last_backup: Some(name),
            } = &input
            {
                migration::check_last_backup(&state, name).map_err(PipelineError::InvalidInput)?;
            }
            // Only the names are kept: drive reads the document again under If-Match.
            let MigrationState {
                container,
                folder,
                database_name,
                ..
            } = state;
            self.drive(&container, &folder, &database_name, input).await
        })
        .await
    }

    /// An operator's `restart` of a `Lost`, `Failed` or `Expired` migration: re-plans from the
    /// newest complete full backup and starts LRS again (the LRS fields are cleared; files and
    /// audit are kept).
    ///
    /// # Errors
    /// [`PipelineError::NotRestartable`] in any other phase, [`PipelineError::UnknownDatabase`],
    /// or storage trouble.
    pub async fn restart(&self, database: &str) -> Result<MigrationState, PipelineError> {
        self.operator(database, Input::Restart).await
    }

    /// Every database's state document.
    ///
    /// # Errors
    /// Storage trouble or an undecodable document.
    pub async fn list(&self) -> Result<Vec<MigrationState>, PipelineError> {
        bounded(self.list_unbounded()).await
    }

    async fn list_unbounded(&self) -> Result<Vec<MigrationState>, PipelineError> {
        let mut out = Vec::new();
        for key in self.state_keys().await? {
            if let Some((state, _)) = self.load(&key).await? {
                out.push(state);
            }
        }
        Ok(out)
    }

    /// One database's state, by `container/folder` (or `container:folder`, which fits in one URL
    /// path segment), or by folder or target database name when only one folder matches.
    ///
    /// # Errors
    /// [`PipelineError::Ambiguous`] when a name matches more than one folder; storage trouble, or
    /// an undecodable document whose key names the database asked for.
    ///
    /// Documents are read one at a time and only matches are kept, so a call holds about one
    /// document in memory however many databases there are. An unreadable document is passed over
    /// unless its key names the database asked for.
    pub async fn find(&self, database: &str) -> Result<Option<MigrationState>, PipelineError> {
        let as_key = database.replacen(':', "/", 1);
        let mut matches: Vec<MigrationState> = Vec::new();
        for key in self.state_keys().await? {
            let folder_key = key.trim_end_matches(".json");
            match self.load(&key).await {
                Ok(Some((s, _))) => {
                    if folder_key == as_key || format!("{}/{}", s.container, s.folder) == as_key {
                        return Ok(Some(s));
                    }
                    if s.folder == database || s.database_name == database {
                        matches.push(s);
                    }
                }
                Ok(None) => {}
                Err(e @ PipelineError::CorruptState { .. }) => {
                    if folder_key == as_key || folder_key.rsplit('/').next() == Some(database) {
                        return Err(e);
                    }
                    warn!(key = %key, error = %e, "state document passed over: unreadable");
                }
                Err(e) => return Err(e),
            }
        }
        match matches.len() {
            0 => Ok(None),
            1 => Ok(matches.pop()),
            _ => Err(PipelineError::Ambiguous {
                name: database.to_owned(),
                keys: matches
                    .iter()
                    .map(|s| format!("{}/{}", s.container, s.folder))
                    .collect(),
            }),
        }
    }

    /// The folder (`container/folder`) that owns `database_name`, if another than `key` does: the
    /// one whose start was claimed first, else the one first seen, else the first by key.
    async fn name_owner(
        &self,
        key: &str,
        state: &MigrationState,
    ) -> Result<Option<String>, PipelineError> {
        let (database_name, created_at) = (state.database_name.as_str(), state.created_at);
        // One name on two instances is two databases: only folders bound for this one count.
        let target = self.target_of(state);
        let mut owner: Option<(bool, OffsetDateTime, String)> = None;
        for other_key in self.state_keys().await? {
            // Only folders whose target name (from the current map) or folder name matches are
            // read: a check reads a handful of documents, not every one.
            let folder = other_key
                .trim_end_matches(".json")
                .split_once('/')
                .map_or("", |(_, f)| f);
            let mapped = self.settings.database_name(folder);
            let candidate = mapped.eq_ignore_ascii_case(database_name)
                || folder.eq_ignore_ascii_case(database_name);
            if other_key == key || !candidate {
                continue;
            }
            let Some((other, _)) = self.load(&other_key).await? else {
                continue;
            };
            if !other.database_name.eq_ignore_ascii_case(database_name)
                || self.target_of(&other) != target
            {
                continue;
            }
            let rank = (!other.start_claimed(), other.created_at, other_key.clone());
            if owner.as_ref().is_none_or(|o| rank < *o) {
                owner = Some(rank);
            }
        }
        // This folder owns the name when it ranks first itself (it never claimed a start: it is
        // Ready).
        let mine = (true, created_at, key.to_owned());
        Ok(owner
            .filter(|o| *o < mine)
            .map(|(_, _, k)| k.trim_end_matches(".json").to_owned()))
    }

    /// Every database's summary, one document in memory at a time; a document that cannot be
    /// read is reported by key with the reason instead of failing the whole listing.
    ///
    /// # Errors
    /// Storage trouble listing or reading the documents (not an undecodable document).
    pub async fn summaries(
        &self,
    ) -> Result<(Vec<DatabaseSummary>, Vec<(String, String)>), PipelineError> {
        self.map_states(|s| DatabaseSummary::from(s)).await
    }

    /// `f` of every database's state, reading one document at a time, with the keys of the
    /// documents that cannot be read and why.
    ///
    /// # Errors
    /// Storage trouble listing or reading the documents (not an undecodable document).
    pub async fn map_states<T>(
        &self,
        f: impl Fn(&MigrationState) -> T,
    ) -> Result<(Vec<T>, Vec<(String, String)>), PipelineError> {
        let mut good = Vec::new();
        let mut unreadable = Vec::new();
        for key in self.state_keys().await? {
            match self.load(&key).await {
                Ok(Some((s, _))) => good.push(f(&s)),
                Ok(None) => {}
                Err(PipelineError::CorruptState { key, reason }) => {
                    error!(key = %key, reason = %reason, "state document is unreadable: a person must look at it");
                    unreadable.push((key, reason));
                }
                Err(e) => return Err(e),
            }
        }
        Ok((good, unreadable))
    }

    /// The keys of the databases' state documents (`<container>/<folder>.json`), leaving out the
    /// instance-wide slots document.
    async fn state_keys(&self) -> Result<Vec<String>, PipelineError> {
        let mut keys = self.state.list("").await?;
        keys.retain(|k| k.contains('/') && !k.starts_with(instance::PREFIX));
        Ok(keys)
    }

    async fn load(
        &self,
        key: &str,
    ) -> Result<Option<(MigrationState, storage::ETag)>, PipelineError> {
        Ok(self.load_sized(key).await?.map(|(s, e, _)| (s, e)))
    }

    /// [`Pipeline::load`] with the document's size as stored.
    async fn load_sized(
        &self,
        key: &str,
    ) -> Result<Option<(MigrationState, storage::ETag, usize)>, PipelineError> {
        let Some((bytes, etag)) = self.state.get(key).await? else {
            return Ok(None);
        };
        if bytes.len() > migration::MAX_STATE_DOCUMENT_BYTES {
            return Err(PipelineError::CorruptState {
                key: key.to_owned(),
                reason: format!(
                    "it is larger than {} bytes, the most the pipeline loads",
                    migration::MAX_STATE_DOCUMENT_BYTES
                ),
            });
        }
        let mut state: MigrationState =
            serde_json::from_slice(&bytes).map_err(|e| PipelineError::CorruptState {
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        // A document from before targets were recorded: the default instance, the only one then.
        if state.target.is_none() {
            state.target = self.settings.targets.default.clone();
        }
        Ok(Some((state, etag, bytes.len())))
    }

    /// [`Pipeline::load`], remembering what it found for the next read-modify-write.
    async fn load_fresh(
        &self,
        key: &str,
    ) -> Result<Option<(MigrationState, storage::ETag)>, PipelineError> {
        match self.load_sized(key).await {
            Ok(Some((state, etag, weight))) => {
                let cached = Cached::Present(Box::new(state.clone()), etag.clone());
                self.docs.put(key, cached, weight);
                Ok(Some((state, etag)))
            }
            Ok(None) => {
                self.docs.put(key, Cached::Absent, 0);
                Ok(None)
            }
            Err(e) => {
                self.docs.forget(key);
                Err(e)
            }
        }
    }

    /// Feeds `input` to one database's state machine, persists, carries out the actions and feeds
    /// their outcomes back, for a bounded number of rounds. Returns the final state.
    async fn drive(
        &self,
        container: &str,
        folder: &str,
        database_name: &str,
        input: Input,
    ) -> Result<MigrationState, PipelineError> {
        let key = MigrationState::key(container, folder);
        let mut pending = vec![input];
        let mut last = None;
        for _ in 0..MAX_ROUNDS {
            let Some(input) = pending.pop() else { break };
            let (state, actions) = self
                .update(&key, container, folder, database_name, &input)
                .await?;
            for action in actions {
                if let Some(outcome) = self.execute(&state, action).await? {
                    pending.insert(0, outcome);
                }
            }
            last = Some(state);
        }
        match last {
            Some(state) => Ok(state),
            None => self
                .load(&key)
                .await?
                .map(|(s, _)| s)
                .ok_or_else(|| PipelineError::UnknownDatabase(folder.to_owned())),
        }
    }

    /// Read-modify-write of one state document with If-Match; the machine re-decides on every retry,
    /// so a lost race never sends an action twice.
    async fn update(
        &self,
        key: &str,
        container: &str,
        folder: &str,
        database_name: &str,
        input: &Input,
    ) -> Result<(MigrationState, Vec<Action>), PipelineError> {
        let mut slot_available = false;
        let mut slot_denied = false;
        let mut name_checked = false;
        let mut name_owner = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut ctx = self.context(slot_available, name_owner.clone());
            ctx.target = self.settings.targets.resolve(container, folder).cloned();
            // The first attempt starts from the cached document; a lost race reads it afresh.
            let cached = match self.docs.get(key) {
                Some(Cached::Present(state, etag)) => Some(Some((*state, etag))),
                Some(Cached::Absent) => Some(None),
                None => None,
            };
            let base = match cached {
                Some(base) => base,
                None => self.load_fresh(key).await?,
            };
            let (mut state, precondition) = match base {
                Some((state, etag)) => (state, Precondition::IfMatch(etag)),
                None => (
                    MigrationState::new(container, folder, database_name, ctx.now),
                    Precondition::IfNoneMatch,
                ),
            };
            // A new document counts as "never due" before: its index entry is written if it is due.
            let was_due_at = match precondition {
                Precondition::IfMatch(_) => state.next_poll_at,
                Precondition::IfNoneMatch => None,
            };
            let actions = migration::handle(&mut state, input.clone(), &ctx);
            if state.phase == Phase::Ready && !slot_available && !slot_denied {
                // The database could start: take a slot on the instance first, then decide again.
                let limits = slots::Limits {
                    per_instance: self.settings.max_concurrent_restores,
                    per_subscription: self.settings.max_restores_per_subscription,
                };
                let claimed = match self.target_of(&state) {
                    Some(target) => slots::claim(&self.slots, key, target, limits, ctx.now).await?,
                    // No instance: no slot; the start is refused when it is sent.
                    None => true,
                };
                if claimed {
                    // About to start: no other folder may own its target name.
                    if !name_checked {
                        name_checked = true;
                        name_owner = self.name_owner(key, &state).await?;
                    }
                    if name_owner.is_some() {
                        slots::release(&self.slots, key).await?;
                        slot_denied = true;
                    } else {
                        slot_available = true;
                    }
                    continue;
                }
                slot_denied = true;
            }
            let bytes = serde_json::to_vec(&state).expect("a state document always serialises");
            if bytes.len() > migration::MAX_STATE_DOCUMENT_BYTES {
                return Err(PipelineError::CorruptState {
                    key: key.to_owned(),
                    reason: format!(
                        "the update would make it {} bytes, over the {} byte limit; it was not written",
                        bytes.len(),
                        migration::MAX_STATE_DOCUMENT_BYTES
                    ),
                });
            }
            let weight = bytes.len();
            match self.state.put(key, bytes, precondition).await {
                Ok(etag) => {
                    self.docs
                        .put(key, Cached::Present(Box::new(state.clone()), etag), weight);
                    if due::earlier(state.next_poll_at, was_due_at) {
                        // The index must never be later than the document (see `due`).
                        let entry = due::Entry {
                            next: state.next_poll_at,
                            phase: state.phase,
                            lowered: 0,
                        };
                        due::lower(&self.due, key, entry).await?;
                    }
                    if state.phase.is_final() || state.lrs.start_error.is_some() {
                        slots::release(&self.slots, key).await?;
                    }
                    return Ok((state, actions));
                }
                Err(storage::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    self.docs.forget(key);
                    self.metrics.state_conflicts.inc();
                    let jitter = rand::random::<u64>() % (5 * u64::from(attempt.min(10)) + 1);
                    tokio::time::sleep(StdDuration::from_millis(jitter)).await;
                }
                Err(e) => {
                    self.docs.forget(key);
                    return Err(e.into());
                }
            }
        }
    }

    /// Carries out one action; returns the input that reports its outcome, if any.
    async fn execute(
        &self,
        state: &MigrationState,
        action: Action,
    ) -> Result<Option<Input>, PipelineError> {
        let db = state.database_name.as_str();
        let lrs = self.lrs_for(state);
        Ok(match action {
            Action::StartLrs {
                database_name,
                collation,
            } => {
                let findings = match self.preflight(state).await? {
                    Preflight::Refused(findings) => {
                        return Ok(Some(Input::PreflightRefused(findings)));
                    }
                    Preflight::Passed(findings) => findings,
                };
                // The start's outcome carries the preflight's findings into the state.
                let noted = |outcome: Input| Input::Preflighted {
                    findings: findings.clone(),
                    outcome: Box::new(outcome),
                };
                if let StorageIdentity::SharedAccessSignature(token) =
                    &self.settings.storage_identity
                {
                    if let Err(problem) = storage::sas::check_for_lrs(token, (self.clock)()) {
                        return Ok(Some(noted(Input::StartFailed(CallError {
                            status: None,
                            code: Some("SasRefused".into()),
                            message: format!("the LRS SAS token cannot be used: {problem}"),
                            class: ErrorClass::Block,
                            advice: "give LRS a read+list SAS valid until well after cutover \
                                     (LRS_STORAGE_SAS_TOKEN), then `resume`"
                                .into(),
                        }))));
                    }
                }
                let uri = self
                    .settings
                    .scope
                    .folder_url(&state.container, &state.folder);
                let request = StartRequest {
                    database_name,
                    storage_container_uri: uri.to_string(),
                    identity: self.settings.storage_identity.clone(),
                    collation,
                };
                let outcome =
                    match lrs.start(&request).await {
                        Ok(operation) => {
                            self.metrics.lrs_starts.inc();
                            info!(db, folder = %state.folder, "lrs started");
                            Some(Input::StartAccepted { operation })
                        }
                        Err(e) if e.is_name_in_use() => {
                            // Adopt only our own restore: restoreDetails must say LRSRestore.
                            match lrs.restore_details(db).await {
                                Ok(view) => Some(Input::StartNameInUse {
                                    lrs_restore: view.snapshot.restore_type.as_deref().is_some_and(
                                        |t| t.trim().eq_ignore_ascii_case("LRSRestore"),
                                    ),
                                }),
                                Err(d)
                                    if d.is_not_found()
                                        || d.classify().class != ErrorClass::Retry
                                        || d.code.as_deref().is_some_and(|c| {
                                            c.eq_ignore_ascii_case(
                                                "RestoreDetailsNotAvailableOrExpired",
                                            )
                                        }) =>
                                {
                                    Some(Input::StartNameInUse { lrs_restore: false })
                                }
                                // Cannot tell now: nothing was started by this call; decide later.
                                Err(d) => Some(Input::StartFailed(d.classify())),
                            }
                        }
                        Err(e) => {
                            warn!(db, error = %e, "lrs start failed");
                            Some(Input::StartFailed(e.classify()))
                        }
                    };
                outcome.map(noted)
            }
            Action::PollRestoreDetails => match lrs.restore_details(db).await {
                Ok(view) => Some(Input::Restore(relate_to_tail(state, view))),
                Err(e) => Some(Input::RestoreDetailsFailed(e.classify())),
            },
            Action::CompleteRestore { last_backup_name } => {
                match lrs.complete(db, &last_backup_name).await {
                    Ok(operation) => {
                        self.metrics.lrs_completions.inc();
                        if let Some(restored) = state.lrs.tail_restored_at {
                            let lag =
                                ((self.clock)() - restored).whole_milliseconds().max(0) as u64;
                            self.metrics.cutover_lag_ms.add(lag);
                        }
                        info!(db, last_backup = %last_backup_name, "lrs completion sent");
                        Some(Input::CompleteAccepted { operation })
                    }
                    Err(e) => {
                        warn!(db, error = %e, "lrs completion refused");
                        Some(Input::CompleteFailed(e.classify()))
                    }
                }
            }
            Action::PollOperation { kind, url } => match lrs.poll_operation(&url).await {
                Ok(OperationState::InProgress) => Some(Input::Operation {
                    kind,
                    poll: OperationPoll::InProgress,
                }),
                Ok(OperationState::Succeeded) => Some(Input::Operation {
                    kind,
                    poll: OperationPoll::Succeeded,
                }),
                Ok(OperationState::Failed(e)) => {
                    warn!(db, error = %e, ?kind, "arm operation failed");
                    Some(Input::Operation {
                        kind,
                        poll: OperationPoll::Failed(e.classify()),
                    })
                }
                Err(e) if e.is_not_found() => Some(Input::Operation {
                    kind,
                    poll: OperationPoll::Forgotten,
                }),
                Err(e) => {
                    warn!(db, error = %e, ?kind, "arm operation could not be polled");
                    None
                }
            },
            Action::PollDatabaseStatus => match lrs.database_status(db).await {
                Ok(status) => Some(Input::DatabaseStatus(status)),
                Err(e) if e.is_not_found() => Some(Input::DatabaseGone),
                Err(e) => {
                    warn!(db, error = %e, "database status unavailable");
                    None
                }
            },
            Action::RevalidateFile { name } => {
                let location = BlobLocation {
                    container: state.container.clone(),
                    folder: state.folder.clone(),
                    name,
                };
                let blob_name = format!("{}/{}", location.container, location.blob_name());
                let item = match self.blobs.properties(&blob_name).await {
                    Ok(item) => item,
                    Err(storage::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let outcome = storage::read_backup_blob(
                    self.blobs.as_ref(),
                    &blob_name,
                    item.size,
                    Some(&item.etag),
                )
                .await?;
                let (read, bytes_read) = (outcome.result, outcome.bytes_read);
                self.metrics.bytes_read.add(bytes_read);
                Some(Input::FileSeen(Box::new(file_record(
                    &location,
                    &item,
                    read,
                    bytes_read,
                    (self.clock)(),
                ))))
            }
            Action::Alert(alert) => {
                self.metrics.alerts.inc();
                let (kind, detail) = (alert.kind, alert.detail.as_str());
                match alert.severity {
                    Severity::Blocking => error!(db, kind = ?kind, detail, "{}", kind.message()),
                    Severity::Warning => warn!(db, kind = ?kind, detail, "{}", kind.message()),
                    Severity::Info => info!(db, kind = ?kind, detail, "{}", kind.message()),
                }
                None
            }
        })
    }
}

impl Pipeline {
    /// The preflight, run just before a start is sent: `Some` (the start is not sent) when the
    /// instance cannot take the database. A name the instance's list shows is confirmed live, so a
    /// stale list never blocks, and our own LRS restore is never reported.
    async fn preflight(&self, state: &MigrationState) -> Result<Preflight, PipelineError> {
        let Some(plan) = state.plan.as_ref() else {
            return Ok(Preflight::Passed(Vec::new()));
        };
        let db = state.database_name.as_str();
        let lrs = self.lrs_for(state);
        let cache = self
            .target_of(state)
            .map_or_else(|| lrs.instance_name(), TargetInstance::document_name);
        let got = instance::facts(
            self.state.as_ref(),
            lrs.as_ref(),
            &self.instance_facts,
            &cache,
            (self.clock)(),
        )
        .await?;
        let mut facts = got.facts;
        if let Some(list) = facts.databases.as_mut() {
            if list
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(db) && !d.lrs_restore)
            {
                let lrs_restore = match lrs.restore_details(db).await {
                    Ok(view) => Some(
                        view.snapshot
                            .restore_type
                            .as_deref()
                            .is_some_and(|t| t.trim().eq_ignore_ascii_case("LRSRestore")),
                    ),
                    Err(e)
                        if e.is_not_found()
                            || e.code.as_deref().is_some_and(|c| {
                                c.eq_ignore_ascii_case("RestoreDetailsNotAvailableOrExpired")
                            }) =>
                    {
                        Some(false)
                    }
                    // Cannot tell now: the start's own answer (name in use) decides.
                    Err(_) => None,
                };
                let exists = lrs_restore == Some(false) && lrs.database_status(db).await.is_ok();
                for d in list.iter_mut().filter(|d| d.name.eq_ignore_ascii_case(db)) {
                    d.lrs_restore = !exists;
                }
            }
        }
        let files: Vec<FolderFile> = state.files.values().map(|r| r.file.clone()).collect();
        let findings = crate::preflight::check(crate::preflight::PreflightInput {
            plan,
            files: &files,
            target: db,
            instance: &facts,
        });
        for f in &findings {
            match f.severity {
                Severity::Blocking => {
                    warn!(db, code = %f.code, note = got.note.as_deref(), "preflight: {}", f.message)
                }
                Severity::Warning => warn!(db, code = %f.code, "preflight: {}", f.message),
                Severity::Info => info!(db, code = %f.code, "preflight: {}", f.message),
            }
        }
        Ok(if crate::preflight::blocks(&findings) {
            Preflight::Refused(findings)
        } else {
            Preflight::Passed(findings)
        })
    }
}

/// What the preflight decided about a start.
enum Preflight {
    /// Not sent, because of these findings (blocking first).
    Refused(Vec<crate::chain::Finding>),
    /// Sent, with these findings (none blocking) to keep.
    Passed(Vec<crate::chain::Finding>),
}

/// Runs a use case within [`INVOCATION_BUDGET`].
async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, PipelineError>>,
) -> Result<T, PipelineError> {
    tokio::time::timeout(INVOCATION_BUDGET, work)
        .await
        .unwrap_or(Err(PipelineError::OutOfTime))
}

/// Relates restoreDetails' backup sets to the recognised tail: the tail set's status, and every
/// other set still queued or restoring.
fn relate_to_tail(state: &MigrationState, view: RestoreView) -> migration::LrsSnapshot {
    let mut snapshot = view.snapshot;
    let tail = state.tail.as_ref().map(|t| t.file_name.as_str());
    snapshot.sets_reported = !view.sets.is_empty();
    for (name, status) in view.sets {
        if tail.is_some_and(|t| migration::same_file(Some(&name), t)) {
            snapshot.tail_set_status = Some(status);
        } else if ["Queued", "Restoring"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&status))
        {
            snapshot.pending_sets.push(name);
        }
    }
    snapshot
}

fn file_record(
    location: &BlobLocation,
    item: &BlobItem,
    read: Result<BackupFile, backup::Error>,
    bytes_read: u64,
    now: OffsetDateTime,
) -> FileRecord {
    let read = FileRead::from_result(read);
    let incomplete = match &read {
        FileRead::Read { facts } => facts.complete == Some(false),
        FileRead::Failed { kind, .. } => *kind == FailureKind::Incomplete,
    };
    FileRecord {
        file: FolderFile {
            name: location.name.clone(),
            size: item.size,
            last_modified: Some(item.last_modified),
            read,
        },
        etag: Some(item.etag.0.clone()),
        // A blob whose end blocks are missing (typically a page blob written by BACKUP TO URL WITH
        // CREDENTIAL, whose event comes before its content) may still be being written: the timer
        // reads it again.
        pending: incomplete,
        tail_metadata: item
            .meta("lrs_tail")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        bytes_read,
        first_seen: now,
    }
}
