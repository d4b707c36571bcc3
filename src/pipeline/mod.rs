//! The pipeline's use cases, shared by every shell: a blob was created, the timer ticked, an
//! operator asked for something. Each reads what it needs (the blob's header by ranged reads, the
//! folder's state document, LRS's status), feeds the migration state machine, writes the state back
//! with If-Match (re-reading on a conflict), and carries out the actions.
//!
//! The Functions handlers, `rehearse`, `demo`, `status` and `cutover` all call this module, over
//! different adapters (Azure or a folder; ARM or the simulator).

mod arm;
mod lrs_port;
mod metrics;
mod slots;
mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::StreamExt;
use time::OffsetDateTime;
use tracing::{error, info, warn};

pub use arm::ArmLrs;
pub use lrs_port::{LrsApi, LrsCallError, StartRequest};
pub use metrics::Metrics;
pub use summary::DatabaseSummary;

use crate::backup::{self, BackupFile};
use crate::chain::{FailureKind, FileRead, FolderFile, Severity};
use crate::config::StorageIdentity;
use crate::functions::event::{BlobEvent, BlobLocation, StorageScope};
use crate::migration::{self, Action, Context, FileRecord, Input, MigrationState, Phase};
use crate::storage::{self, BlobItem, BlobStore, Precondition, StateStore};

/// How many times a state update is retried after losing a race.
const MAX_CONFLICT_RETRIES: u32 = 64;
/// How many state-machine rounds one invocation carries out (action → outcome → action ...).
const MAX_ROUNDS: usize = 8;
/// How many databases the timer handles at once.
const TICK_PARALLELISM: usize = 16;

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
}

impl PipelineError {
    /// Whether the host should retry the invocation.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Storage(e) => {
                e.is_retryable() || matches!(e, storage::Error::Conflict { .. })
            }
            PipelineError::CorruptState { .. } | PipelineError::UnknownDatabase(_) => false,
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

/// The pipeline: adapters plus settings.
#[derive(Clone)]
pub struct Pipeline {
    blobs: Arc<dyn BlobStore>,
    state: Arc<dyn StateStore>,
    lrs: Arc<dyn LrsApi>,
    settings: Settings,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Assembles a pipeline.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        state: Arc<dyn StateStore>,
        lrs: Arc<dyn LrsApi>,
        settings: Settings,
        clock: Clock,
    ) -> Self {
        Pipeline {
            blobs,
            state,
            lrs,
            settings,
            clock,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The counters this pipeline keeps (shared: exporters read them).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn context(&self, slot_available: bool) -> Context {
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
        }
    }

    /// Handles one BlobCreated event end to end.
    ///
    /// # Errors
    /// Only transient trouble the host should retry ([`PipelineError::is_transient`]) or a state
    /// document that cannot be decoded; every refusal is an `Ok` outcome with its reason.
    pub async fn blob_created(&self, event: &BlobEvent) -> Result<EventOutcome, PipelineError> {
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
        self.record_file(&location, event.etag.as_deref()).await
    }

    /// Reads a file's header (unless the state already has this version of it) and records it.
    async fn record_file(
        &self,
        location: &BlobLocation,
        etag: Option<&str>,
    ) -> Result<EventOutcome, PipelineError> {
        let key = MigrationState::key(&location.container, &location.folder);
        if let Some((state, _)) = self.load(&key).await? {
            if let Some(existing) = state.files.get(&location.name) {
                // Azure quotes ETags in headers (what we record); Event Grid sends them bare.
                let same = etag
                    .zip(existing.etag.as_deref())
                    .is_some_and(|(a, b)| a.trim_matches('"') == b.trim_matches('"'));
                if !existing.pending && same {
                    self.metrics.events_duplicate.inc();
                    return Ok(EventOutcome::Duplicate {
                        file: location.blob_name(),
                    });
                }
            }
        }
        let blob_name = format!("{}/{}", location.container, location.blob_name());
        let item = match self.blobs.properties(&blob_name).await {
            Ok(item) => item,
            Err(storage::Error::NotFound { .. }) => {
                return Ok(EventOutcome::Ignored(format!(
                    "{blob_name} no longer exists"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if item.size == 0 {
            return Ok(EventOutcome::Ignored(format!("{blob_name} is empty")));
        }
        let outcome =
            storage::read_backup_blob(self.blobs.as_ref(), &blob_name, item.size, Some(&item.etag))
                .await?;
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
        Ok(EventOutcome::Recorded {
            folder: format!("{}/{}", location.container, location.folder),
            file: location.name.clone(),
            phase: state.phase,
        })
    }

    /// One timer pass over every database that is due.
    ///
    /// # Errors
    /// Only when the state documents cannot be listed; per-database failures are in the report.
    pub async fn tick(&self) -> Result<TickReport, PipelineError> {
        let keys = self.state_keys().await?;
        let now = (self.clock)();
        let results: Vec<_> = futures::stream::iter(keys)
            .map(|key| async move {
                self.tick_one(&key, now)
                    .await
                    .map(|(phase, handled, holds)| (key.clone(), phase, handled, holds))
                    .map_err(|e| format!("{key}: {e}"))
            })
            .buffer_unordered(TICK_PARALLELISM)
            .collect()
            .await;
        let mut report = TickReport::default();
        let mut holders = std::collections::BTreeSet::new();
        let mut complete = true;
        for result in results {
            report.examined += 1;
            match result {
                Ok((key, phase, handled, holds)) => {
                    *report.phases.entry(phase).or_default() += 1;
                    report.handled += usize::from(handled);
                    if holds {
                        holders.insert(key);
                    }
                }
                Err(e) => {
                    complete = false;
                    error!(error = %e, "timer could not handle a database");
                    report.errors.push(e);
                }
            }
        }
        if complete {
            // Only a pass that saw every database may drop claims it did not see held.
            slots::prune(self.state.as_ref(), &holders).await?;
        }
        self.metrics.set_phases(&report.phases);
        Ok(report)
    }

    async fn tick_one(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<(Phase, bool, bool), PipelineError> {
        let holds = |s: &MigrationState| s.start_claimed() && !s.phase.is_final();
        let Some((state, _)) = self.load(key).await? else {
            return Ok((Phase::Waiting, false, false));
        };
        let due = state.next_poll_at.is_some_and(|t| t <= now);
        if !due {
            return Ok((state.phase, false, holds(&state)));
        }
        let state = self
            .drive(
                &state.container,
                &state.folder,
                &state.database_name,
                Input::Tick,
            )
            .await?;
        Ok((state.phase, true, holds(&state)))
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
        let state = self
            .find(database)
            .await?
            .ok_or_else(|| PipelineError::UnknownDatabase(database.to_owned()))?;
        self.drive(&state.container, &state.folder, &state.database_name, input)
            .await
    }

    /// Every database's state document.
    ///
    /// # Errors
    /// Storage trouble or an undecodable document.
    pub async fn list(&self) -> Result<Vec<MigrationState>, PipelineError> {
        let mut out = Vec::new();
        for key in self.state_keys().await? {
            if let Some((state, _)) = self.load(&key).await? {
                out.push(state);
            }
        }
        Ok(out)
    }

    /// One database's state, by folder name, `container/folder`, or target database name.
    ///
    /// # Errors
    /// Storage trouble or an undecodable document.
    pub async fn find(&self, database: &str) -> Result<Option<MigrationState>, PipelineError> {
        Ok(self.list().await?.into_iter().find(|s| {
            s.folder == database
                || s.database_name == database
                || format!("{}/{}", s.container, s.folder) == database
        }))
    }

    /// The keys of the databases' state documents (`<container>/<folder>.json`), leaving out the
    /// instance-wide slots document.
    async fn state_keys(&self) -> Result<Vec<String>, PipelineError> {
        let mut keys = self.state.list("").await?;
        keys.retain(|k| k.contains('/'));
        Ok(keys)
    }

    async fn load(
        &self,
        key: &str,
    ) -> Result<Option<(MigrationState, storage::ETag)>, PipelineError> {
        let Some((bytes, etag)) = self.state.get(key).await? else {
            return Ok(None);
        };
        let state = serde_json::from_slice(&bytes).map_err(|e| PipelineError::CorruptState {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Some((state, etag)))
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ctx = self.context(slot_available);
            let (mut state, precondition) = match self.load(key).await? {
                Some((state, etag)) => (state, Precondition::IfMatch(etag)),
                None => (
                    MigrationState::new(container, folder, database_name, ctx.now),
                    Precondition::IfNoneMatch,
                ),
            };
            let actions = migration::handle(&mut state, input.clone(), &ctx);
            if state.phase == Phase::Ready && !slot_available && !slot_denied {
                // The database could start: take a slot on the instance first, then decide again.
                let max = self.settings.max_concurrent_restores;
                if slots::claim(self.state.as_ref(), key, max, ctx.now).await? {
                    slot_available = true;
                    continue;
                }
                slot_denied = true;
            }
            let bytes = serde_json::to_vec(&state).expect("a state document always serialises");
            match self.state.put(key, bytes, precondition).await {
                Ok(_) => {
                    if state.phase.is_final() || state.lrs.start_error.is_some() {
                        slots::release(self.state.as_ref(), key).await?;
                    }
                    return Ok((state, actions));
                }
                Err(storage::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    self.metrics.state_conflicts.inc();
                    let jitter = rand::random::<u64>() % (5 * u64::from(attempt.min(10)) + 1);
                    tokio::time::sleep(StdDuration::from_millis(jitter)).await;
                }
                Err(e) => return Err(e.into()),
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
        Ok(match action {
            Action::StartLrs {
                database_name,
                collation,
            } => {
                if let StorageIdentity::SharedAccessSignature(token) =
                    &self.settings.storage_identity
                {
                    if let Err(problem) = storage::sas::check_for_lrs(token, (self.clock)()) {
                        return Ok(Some(Input::StartFailed {
                            code: Some("SasRefused".into()),
                            message: format!("the LRS SAS token cannot be used: {problem}"),
                            retryable: false,
                        }));
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
                match self.lrs.start(&request).await {
                    Ok(()) => {
                        self.metrics.lrs_starts.inc();
                        info!(db, folder = %state.folder, "lrs started");
                        Some(Input::StartAccepted)
                    }
                    Err(e) if e.is_name_in_use() => {
                        let restoring = self.lrs.restore_details(db).await.is_ok();
                        Some(Input::StartNameInUse {
                            lrs_restoring: restoring,
                        })
                    }
                    Err(e) => {
                        warn!(db, error = %e, "lrs start failed");
                        Some(Input::StartFailed {
                            code: e.code.clone(),
                            message: e.message.clone(),
                            retryable: e.retryable,
                        })
                    }
                }
            }
            Action::PollRestoreDetails => match self.lrs.restore_details(db).await {
                Ok(snapshot) => Some(Input::Restore(snapshot)),
                Err(e) => Some(Input::RestoreDetailsFailed {
                    status: e.status.unwrap_or(0),
                    code: e.code.clone(),
                    message: e.message.clone(),
                }),
            },
            Action::CompleteRestore { last_backup_name } => {
                match self.lrs.complete(db, &last_backup_name).await {
                    Ok(()) => {
                        self.metrics.lrs_completions.inc();
                        if let Some(restored) = state.lrs.tail_restored_at {
                            let lag =
                                ((self.clock)() - restored).whole_milliseconds().max(0) as u64;
                            self.metrics.cutover_lag_ms.add(lag);
                        }
                        info!(db, last_backup = %last_backup_name, "lrs completion sent");
                        Some(Input::CompleteAccepted)
                    }
                    Err(e) => {
                        warn!(db, error = %e, "lrs completion refused");
                        Some(Input::CompleteFailed {
                            code: e.code.clone(),
                            message: e.message.clone(),
                            retryable: e.retryable,
                        })
                    }
                }
            }
            Action::PollDatabaseStatus => match self.lrs.database_status(db).await {
                Ok(status) => Some(Input::DatabaseStatus(status)),
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
