//! What goes into the state machine and what comes out of it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::state::{FileRecord, LrsSnapshot};
use crate::chain::Severity;

/// The world around one decision: time, configuration and instance-wide facts the shell knows.
#[derive(Debug, Clone)]
pub struct Context {
    /// Now.
    pub now: OffsetDateTime,
    /// `LRS_TAIL_PATTERN`: a case-insensitive glob on file names.
    pub tail_pattern: Option<String>,
    /// `LRS_DEFAULT_COLLATION`, used when the full backup's header has no collation name.
    pub default_collation: String,
    /// Whether the instance is under `LRS_MAX_CONCURRENT_RESTORES`.
    pub slot_available: bool,
    /// Days until the LRS SAS token expires, when SAS is used.
    pub sas_days_left: Option<i64>,
    /// Another folder (`container/folder`) that already owns this folder's target database name,
    /// when the shell found one: this folder must not start, nor share that folder's LRS job.
    pub name_owner: Option<String>,
    /// The instance `LRS_TARGETS` maps this folder to now (`None`: none configured).
    pub target: Option<super::TargetInstance>,
}

/// How the pipeline responds to an error code ARM answered (see `lrs::codes` for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: try again on a later tick.
    Retry,
    /// A person must act: a finding with the code, an actionable message and an alert.
    Block,
    /// The migration cannot go on: `Failed`, with an alert.
    Terminal,
    /// Expected, nothing to do (for example completion already signalled).
    Benign,
}

/// An ARM error answer, classified by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// HTTP status, when ARM answered.
    pub status: Option<u16>,
    /// ARM's error code, if any.
    pub code: Option<String>,
    /// ARM's message.
    pub message: String,
    /// How to respond.
    pub class: ErrorClass,
    /// What a person should do, from the code table.
    pub advice: String,
}

impl CallError {
    /// The code, or an empty text.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or_default()
    }

    /// Whether the code is `code` (case-insensitive).
    pub fn is(&self, code: &str) -> bool {
        self.code().eq_ignore_ascii_case(code)
    }
}

/// Where a long-running ARM operation stands, from one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationPoll {
    /// Still running (information only).
    InProgress,
    /// Finished successfully (information only).
    Succeeded,
    /// Ended `Failed` or `Canceled`: a fact to act on.
    Failed(CallError),
    /// The poll itself failed; try again on a later tick.
    Unavailable(String),
    /// ARM no longer knows the operation (404): stop polling it.
    Forgotten,
}

/// Which operation a poll concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// The create (start) operation, which may run until cutover.
    Start,
    /// The completeRestore operation.
    Complete,
}

/// A new fact about one database.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A backup file was read (or re-read) and is to be recorded.
    FileSeen(Box<FileRecord>),
    /// A blob in the folder was refused before it was read, with the reason.
    FileRejected {
        /// Its name relative to the container.
        name: String,
        /// Why.
        reason: String,
    },
    /// ARM accepted the start; `operation` is the URL to poll (never one carrying a SAS).
    StartAccepted {
        /// The create operation's polling URL, if ARM gave one.
        operation: Option<String>,
    },
    /// ARM refused the start, or it could not be sent.
    StartFailed(CallError),
    /// The start found the database name taken; `lrs_restore` tells whether restoreDetails shows
    /// it as an LRS restore (`type` `LRSRestore`): then it was our own earlier start, cut off
    /// before it was recorded.
    StartNameInUse {
        /// restoreDetails `type` is `LRSRestore`.
        lrs_restore: bool,
    },
    /// The preflight (`crate::preflight`) found that the instance cannot take the database: the
    /// start was not sent. Carries every preflight finding, blocking first.
    PreflightRefused(Vec<crate::chain::Finding>),
    /// The preflight let the start go on with these findings (none blocking; often none at all),
    /// and `outcome` is what the start then gave. The findings are kept for status, the
    /// Migrations API and rehearse; `outcome` is handled as if it came alone.
    Preflighted {
        /// The preflight's findings.
        findings: Vec<crate::chain::Finding>,
        /// The start's outcome.
        outcome: Box<Input>,
    },
    /// A restoreDetails snapshot.
    Restore(LrsSnapshot),
    /// restoreDetails failed.
    RestoreDetailsFailed(CallError),
    /// ARM accepted completeRestore; `operation` is the URL to poll.
    CompleteAccepted {
        /// The complete operation's polling URL, if ARM gave one.
        operation: Option<String>,
    },
    /// ARM refused completeRestore.
    CompleteFailed(CallError),
    /// One poll of a long-running operation.
    Operation {
        /// Which one.
        kind: OperationKind,
        /// What the poll said.
        poll: OperationPoll,
    },
    /// The database's `properties.status`.
    DatabaseStatus(String),
    /// GET database answered 404: positive evidence that the database does not exist.
    DatabaseGone,
    /// The timer looked at this database.
    Tick,
    /// An operator declared the last backup (`None`: the newest log in the plan).
    Cutover {
        /// The file name, if given.
        last_backup: Option<String>,
    },
    /// An operator paused the pipeline for this database.
    Pause,
    /// An operator resumed it.
    Resume,
    /// An operator asked to start LRS again after the database was lost (or failed): re-plan from
    /// the newest complete full backup and start afresh, keeping the files and the audit.
    Restart,
}

/// What the shell must do, in order. Start and complete are claimed in the state document first:
/// the shell writes the state (If-Match) and only then calls ARM, so no two instances send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Start LRS in continuous mode.
    StartLrs {
        /// The target database name.
        database_name: String,
        /// The collation to create it with.
        collation: String,
    },
    /// Fetch restoreDetails.
    PollRestoreDetails,
    /// Send completeRestore.
    CompleteRestore {
        /// `lastBackupName`.
        last_backup_name: String,
    },
    /// Fetch the database's status.
    PollDatabaseStatus,
    /// Poll a long-running operation once (never wait on it).
    PollOperation {
        /// Which one.
        kind: OperationKind,
        /// Its polling URL.
        url: String,
    },
    /// Re-read a file that was incomplete.
    RevalidateFile {
        /// Its name in the folder.
        name: String,
    },
    /// Tell a person (a log line at warn/error and a metric).
    Alert(Alert),
}

/// Kinds of alert; the log message of each is stable so alert rules can match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A finding in the folder.
    Finding,
    /// The database entered `Blocked`.
    DatabaseBlocked,
    /// LRS reported a block reason or unrestorable files.
    LrsBlocked,
    /// Files are queued but nothing was restored for a long time.
    Stalled,
    /// Day 25 of the 30-day LRS limit.
    LimitNear,
    /// The LRS SAS token expires within 3 days.
    SasExpiring,
    /// LRS failed or the limit ran out.
    LrsFailed,
    /// The header suggests a tail-log backup that no rule declared.
    TailHint,
    /// The database disappeared after its start was accepted.
    Lost,
    /// LRS reported something undocumented (a status value): shown, never acted on.
    Undocumented,
}

impl AlertKind {
    /// The log message for this kind: alert rules in `infra/` match these.
    pub fn message(self) -> &'static str {
        match self {
            AlertKind::Finding => "backup finding",
            AlertKind::DatabaseBlocked => "database blocked",
            AlertKind::LrsBlocked => "lrs reports a block",
            AlertKind::Stalled => "lrs restore stalled",
            AlertKind::LimitNear => "lrs 30-day limit near",
            AlertKind::SasExpiring => "lrs sas expiring",
            AlertKind::LrsFailed => "lrs failed",
            AlertKind::TailHint => "tail-log hint",
            AlertKind::Lost => "lrs database lost",
            AlertKind::Undocumented => "lrs reports an undocumented value",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// What kind.
    pub kind: AlertKind,
    /// How bad.
    pub severity: Severity,
    /// What happened and what to do.
    pub detail: String,
}
