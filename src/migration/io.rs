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
    /// ARM accepted the start.
    StartAccepted,
    /// ARM refused the start, or it could not be sent.
    StartFailed {
        /// The ARM error code, if any.
        code: Option<String>,
        /// The message.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// The start found the database name taken; `lrs_restoring` tells whether LRS is restoring it
    /// (then it was our own earlier start, cut off before it was recorded).
    StartNameInUse {
        /// LRS answers restoreDetails for the database.
        lrs_restoring: bool,
    },
    /// A restoreDetails snapshot.
    Restore(LrsSnapshot),
    /// restoreDetails failed.
    RestoreDetailsFailed {
        /// HTTP status.
        status: u16,
        /// The ARM error code, if any.
        code: Option<String>,
        /// The message.
        message: String,
    },
    /// ARM accepted completeRestore.
    CompleteAccepted,
    /// ARM refused completeRestore.
    CompleteFailed {
        /// The ARM error code, if any.
        code: Option<String>,
        /// The message.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// The database's `properties.status`.
    DatabaseStatus(String),
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
