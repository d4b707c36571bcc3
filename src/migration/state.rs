//! The state document: everything the pipeline knows about one database folder, stored as JSON and
//! written with If-Match so that any handler instance can pick up where another left off.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::chain::{Finding, FolderFile, Plan, TailRule};

/// The document's schema version; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// How many audit entries a document keeps (the newest).
pub const AUDIT_LIMIT: usize = 100;

/// Where a migration is. Names are a contract (`status --json`, `rehearse --json`, the HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// No complete full backup yet.
    Waiting,
    /// LRS can start; waiting for a free LRS slot on the instance, or for ARM to accept a start it
    /// refused for a limit (throttling, concurrent restores).
    Ready,
    /// A start was claimed and sent (or is about to be); not yet confirmed.
    Starting,
    /// LRS is restoring; no tail-log backup known yet.
    Restoring,
    /// The tail-log backup is known; completion follows once LRS reports it restored.
    CutoverPending,
    /// completeRestore was accepted; waiting for the database's own status to say `Online`, however
    /// long that takes (hours on Business Critical while secondaries seed).
    Completing,
    /// The database is online. Nothing more will be restored.
    Completed,
    /// A person must act: broken chain, foreign database, refused start, an LRS error from the
    /// code table, a target name another folder owns. `resume` after fixing it.
    Blocked,
    /// An operator paused the pipeline for this database.
    Paused,
    /// LRS reported failure.
    Failed,
    /// The 30-day LRS limit ran out.
    Expired,
    /// The database disappeared after its start was accepted (a failover during the first full
    /// restore or after cutover started, a Business Critical update, or the 30-day cancel). Nothing
    /// restarts it until an operator asks (`restart`).
    Lost,
}

impl Phase {
    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 12] = [
        Phase::Waiting,
        Phase::Ready,
        Phase::Starting,
        Phase::Restoring,
        Phase::CutoverPending,
        Phase::Completing,
        Phase::Completed,
        Phase::Blocked,
        Phase::Paused,
        Phase::Failed,
        Phase::Expired,
        Phase::Lost,
    ];

    /// The name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "Waiting",
            Phase::Ready => "Ready",
            Phase::Starting => "Starting",
            Phase::Restoring => "Restoring",
            Phase::CutoverPending => "CutoverPending",
            Phase::Completing => "Completing",
            Phase::Completed => "Completed",
            Phase::Blocked => "Blocked",
            Phase::Paused => "Paused",
            Phase::Failed => "Failed",
            Phase::Expired => "Expired",
            Phase::Lost => "Lost",
        }
    }

    /// Phases in which nothing more will happen without a person.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Phase::Completed | Phase::Failed | Phase::Expired | Phase::Lost
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the tail-log backup was recognised, in order of trust (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TailSource {
    /// The header's tail-log flag: a hint only, never enough to complete on its own.
    HeaderHint,
    /// Blob metadata `lrs_tail=true` set at upload.
    Metadata,
    /// The configured file-name pattern.
    Pattern,
    /// An operator's `cutover` command.
    Operator,
}

/// The tail-log backup, once known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// The tail file's name in the folder.
    pub file_name: String,
    /// How it was recognised.
    pub source: TailSource,
    /// When it was recognised.
    #[serde(with = "time::serde::rfc3339")]
    pub recognised_at: OffsetDateTime,
}

/// One file of the folder as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// What the planner sees.
    pub file: FolderFile,
    /// The blob's ETag when it was read: a new write of the same name re-reads it.
    pub etag: Option<String>,
    /// The file was incomplete (a page blob still being written); the timer re-validates it.
    pub pending: bool,
    /// The blob carried `lrs_tail=true`.
    pub tail_metadata: bool,
    /// Bytes read to validate it.
    pub bytes_read: u64,
    /// When it was first recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
}

/// The last `restoreDetails` seen, reduced to what decisions need (the shell keeps the raw JSON too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LrsSnapshot {
    /// `type` (`LRSRestore` for Log Replay Service).
    #[serde(default)]
    pub restore_type: Option<String>,
    /// `status`, as LRS reports it (only `Restoring` is documented: kept as text, never acted on).
    pub status: Option<String>,
    /// `lastRestoredFileName`.
    pub last_restored_file: Option<String>,
    /// `currentRestoringFileName`.
    pub current_restoring_file: Option<String>,
    /// `numberOfFilesRestored`.
    pub files_restored: u64,
    /// `numberOfFilesQueued`.
    pub files_queued: u64,
    /// `percentCompleted`.
    pub percent_completed: Option<f64>,
    /// `blockReason`.
    pub block_reason: Option<String>,
    /// `unrestorableFiles` names.
    pub unrestorable_files: Vec<String>,
    /// `lastRestoredFileTime`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_restored_at: Option<OffsetDateTime>,
    /// The backup sets LRS reports (`fullBackupSets`, `diffBackupSets`, `logBackupSets`): their
    /// sizes and restore times are what the dashboard's forecast measures throughput from.
    #[serde(default)]
    pub backup_sets: Vec<SetSnapshot>,
    /// Whether restoreDetails carried the backup-set arrays (`fullBackupSets`, ...).
    #[serde(default)]
    pub sets_reported: bool,
    /// The status of the tail-log backup's set, when the arrays are present and list it.
    #[serde(default)]
    pub tail_set_status: Option<String>,
    /// `firstStripeName` of every set `Queued` or `Restoring` other than the tail's.
    #[serde(default)]
    pub pending_sets: Vec<String>,
}

/// One backup set as LRS reports it in restoreDetails.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetSnapshot {
    /// `full`, `diff` or `log`: which list LRS reported it in.
    pub kind: String,
    /// `Restored`, `Restoring`, `Queued`, `Skipped`, or another value kept as text.
    pub status: String,
    /// `firstStripeName`.
    pub first_stripe_name: Option<String>,
    /// `numberOfStripes`.
    pub stripes: Option<u64>,
    /// `backupSizeMB`.
    pub size_mb: Option<f64>,
    /// `restoreStartedTimestampUtc`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub restore_started_at: Option<OffsetDateTime>,
    /// `restoreFinishedTimestampUtc`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub restore_finished_at: Option<OffsetDateTime>,
}

/// What the pipeline has done with LRS for this database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LrsProgress {
    /// When this invocation claimed the start (phase `Starting` written before ARM is called).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub start_claimed_at: Option<OffsetDateTime>,
    /// How many start requests were sent (for the audit; a start is claimed once).
    pub start_attempts: u32,
    /// When ARM accepted the start.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// The full backup set LRS restores: fixed once started.
    pub base_guid: Option<Uuid>,
    /// The collation sent with the start.
    pub collation: Option<String>,
    /// The last restoreDetails snapshot.
    pub snapshot: Option<LrsSnapshot>,
    /// When the snapshot was taken.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub polled_at: Option<OffsetDateTime>,
    /// When the restored-file count last grew (for the stall alert).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub progress_at: Option<OffsetDateTime>,
    /// When LRS first reported the tail-log backup restored.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub tail_restored_at: Option<OffsetDateTime>,
    /// When completeRestore was claimed (phase `Completing` written before ARM is called).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub complete_claimed_at: Option<OffsetDateTime>,
    /// When ARM accepted completeRestore.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub complete_sent_at: Option<OffsetDateTime>,
    /// The `lastBackupName` sent with completeRestore.
    pub completed_with: Option<String>,
    /// When the database was seen Online.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub online_at: Option<OffsetDateTime>,
    /// Why LRS failed, when it did.
    pub failure: Option<String>,
    /// Why the start was refused, when it was: the database is `Blocked` until `resume`.
    pub start_error: Option<String>,
    /// A finding raised from what ARM answered (`name_in_use`, `lrs_error`): `Blocked` until
    /// `resume`.
    #[serde(default)]
    pub block: Option<Finding>,
    /// The create operation's polling URL while it runs (ARM's `Azure-AsyncOperation` or
    /// `Location`; never a URL carrying a SAS).
    #[serde(default)]
    pub start_operation: Option<String>,
    /// The completeRestore operation's polling URL while it runs.
    #[serde(default)]
    pub complete_operation: Option<String>,
    /// The last state seen of the create operation (`InProgress`, `Succeeded`, `Failed: <code>`).
    #[serde(default)]
    pub start_operation_state: Option<String>,
    /// Whether the create operation ended `Failed` or `Canceled`.
    #[serde(default)]
    pub start_operation_failed: bool,
    /// The database's `properties.status` as last seen.
    #[serde(default)]
    pub database_status: Option<String>,
    /// When GET database answered 404 after the start was accepted.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub lost_at: Option<OffsetDateTime>,
    /// When the create operation and the database's status were last read while `CutoverPending`
    /// (polled on every tick for restoreDetails, on the `Restoring` cadence for these).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub event: String,
}

/// One database folder's state document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationState {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The container.
    pub container: String,
    /// The database folder in the container.
    pub folder: String,
    /// The target database name on the managed instance.
    pub database_name: String,
    /// Where the migration is.
    pub phase: Phase,
    /// Why it is `Blocked`, `Failed` or `Expired`, in words a DBA can act on.
    pub reason: Option<String>,
    /// Every file seen, by name.
    pub files: BTreeMap<String, FileRecord>,
    /// Files refused before they were read (for example a nested path), by name, with the reason.
    pub rejected: BTreeMap<String, String>,
    /// The tail-log backup, once known.
    pub tail: Option<Tail>,
    /// The current plan (recomputed on every change).
    pub plan: Option<Plan>,
    /// LRS progress.
    pub lrs: LrsProgress,
    /// Paused by an operator.
    pub paused: bool,
    /// Alerts already raised (by key), so a condition alerts once, not on every tick.
    pub alerts_raised: BTreeSet<String>,
    /// When the folder was first seen.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the document last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the timer should next look at this database.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_poll_at: Option<OffsetDateTime>,
    /// The newest events, oldest first, at most [`AUDIT_LIMIT`].
    pub audit: VecDeque<AuditEntry>,
    /// How many times an operator restarted LRS for this folder.
    #[serde(default)]
    pub restarts: u32,
    /// Another folder (`container/folder`) that owns this folder's target database name: this one
    /// is `Blocked` (`target_name_taken`) until `resume`.
    #[serde(default)]
    pub name_taken_by: Option<String>,
    /// The last preflight's findings (`crate::preflight`), blocking or not: a start that went on
    /// despite warnings keeps them here, so status, the Migrations API and rehearse show them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preflight: Vec<Finding>,
    /// The managed instance this database migrates to (`LRS_TARGETS`). `None` in documents written
    /// before targets were recorded: the pipeline reads that as the default instance
    /// (`LRS_SUBSCRIPTION_ID`, `LRS_RESOURCE_GROUP`, `LRS_MANAGED_INSTANCE`), the only one there was.
    #[serde(default)]
    pub target: Option<super::TargetInstance>,
    /// The instance `LRS_TARGETS` names now, when it is another than [`MigrationState::target`]
    /// and LRS has already started there: the database is not moved (`target_moved` finding).
    #[serde(default)]
    pub target_moved_to: Option<super::TargetInstance>,
    /// The planner's last inputs and answer, in memory only (see [`PlanMemo`]).
    #[serde(skip)]
    pub(crate) plan_memo: PlanMemo,
}

/// The planner's last inputs and its answer for them. A state takes several inputs in a row (an
/// event, a timer pass's answers from LRS), and most change nothing the planner reads: the plan is
/// then taken from here instead of being worked out again. Reused only when every input compares
/// equal, so it is exactly the plan the planner would give. Never part of a document's identity
/// (equal states may differ in it) and never stored.
#[derive(Clone, Default)]
pub(crate) struct PlanMemo(Option<std::sync::Arc<Planned>>);

/// What [`PlanMemo`] holds.
pub(crate) struct Planned {
    pub files: Vec<FolderFile>,
    pub fixed_base: Option<Uuid>,
    pub rule: TailRule,
    pub plan: Plan,
}

impl PlanMemo {
    /// The plan for these inputs, if they are the last ones planned.
    pub(crate) fn get(
        &self,
        files: &[&FolderFile],
        fixed_base: Option<Uuid>,
        rule: &TailRule,
    ) -> Option<&Plan> {
        let last = self.0.as_deref()?;
        let same = last.fixed_base == fixed_base
            && last.rule == *rule
            && last.files.len() == files.len()
            && last.files.iter().zip(files).all(|(a, b)| a == *b);
        same.then_some(&last.plan)
    }

    pub(crate) fn set(&mut self, planned: Planned) {
        self.0 = Some(std::sync::Arc::new(planned));
    }

    /// Forgets it (a state kept in a cache should not carry a second copy of its files).
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

impl PartialEq for PlanMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for PlanMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "PlanMemo(..)"
        } else {
            "PlanMemo(None)"
        })
    }
}

impl MigrationState {
    /// A new document for a folder seen for the first time.
    pub fn new(container: &str, folder: &str, database_name: &str, now: OffsetDateTime) -> Self {
        MigrationState {
            schema: SCHEMA_VERSION,
            container: container.to_owned(),
            folder: folder.to_owned(),
            database_name: database_name.to_owned(),
            phase: Phase::Waiting,
            reason: None,
            files: BTreeMap::new(),
            rejected: BTreeMap::new(),
            tail: None,
            plan: None,
            lrs: LrsProgress::default(),
            paused: false,
            alerts_raised: BTreeSet::new(),
            created_at: now,
            updated_at: now,
            next_poll_at: None,
            audit: VecDeque::new(),
            restarts: 0,
            name_taken_by: None,
            preflight: Vec::new(),
            target: None,
            target_moved_to: None,
            plan_memo: PlanMemo::default(),
        }
    }

    /// The state document's key in the state container: `<container>/<folder>.json`.
    pub fn key(container: &str, folder: &str) -> String {
        format!("{container}/{folder}.json")
    }

    /// Appends to the audit trail, dropping the oldest entries past [`AUDIT_LIMIT`] and cutting
    /// an entry past [`super::MAX_AUDIT_ENTRY_CHARS`].
    pub fn audit(&mut self, at: OffsetDateTime, event: impl Into<String>) {
        self.audit.push_back(AuditEntry {
            at,
            event: super::cap_text(event.into(), super::MAX_AUDIT_ENTRY_CHARS),
        });
        while self.audit.len() > AUDIT_LIMIT {
            self.audit.pop_front();
        }
    }

    /// Every finding to show a person: the plan's, then the last preflight's that the plan does
    /// not already hold.
    pub fn all_findings(&self) -> Vec<Finding> {
        let mut all = self.findings().to_vec();
        for f in &self.preflight {
            if !all.contains(f) {
                all.push(f.clone());
            }
        }
        all
    }

    /// The current findings (empty before the first plan).
    pub fn findings(&self) -> &[Finding] {
        self.plan
            .as_ref()
            .map(|p| p.findings.as_slice())
            .unwrap_or_default()
    }

    /// Files LRS has restored, from the last snapshot.
    pub fn files_restored(&self) -> u64 {
        self.lrs.snapshot.as_ref().map_or(0, |s| s.files_restored)
    }

    /// Whether LRS has been asked to start (claimed or accepted): it must never be asked again.
    pub fn start_claimed(&self) -> bool {
        self.lrs.start_claimed_at.is_some()
    }
}
