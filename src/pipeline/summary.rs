//! One line of a database's migration for people and tools: `status`, `rehearse --json` and the
//! HTTP API all show this shape, so its field names are a contract.

use serde::Serialize;
use time::OffsetDateTime;

use crate::chain::Finding;
use crate::migration::{MigrationState, Phase};

/// A database's migration at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseSummary {
    /// The database folder.
    pub folder: String,
    /// The container.
    pub container: String,
    /// The target database name.
    pub database_name: String,
    /// The managed instance it migrates to (resource id); `None` when none is recorded or
    /// configured.
    pub target_instance: Option<String>,
    /// Where it is.
    pub phase: Phase,
    /// Why it is blocked, failed or expired.
    pub reason: Option<String>,
    /// Files recorded.
    pub files_seen: usize,
    /// Backup sets in the plan.
    pub files_planned: usize,
    /// Files LRS reports restored.
    pub files_restored: u64,
    /// The tail-log backup, once known.
    pub tail: Option<String>,
    /// Current findings, blocking or not: the plan's, then the last preflight's (warnings and
    /// info such as `maintenance_window` included).
    pub findings: Vec<Finding>,
    /// When LRS started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When LRS reported the tail restored.
    #[serde(with = "time::serde::rfc3339::option")]
    pub tail_restored_at: Option<OffsetDateTime>,
    /// When completion was sent.
    #[serde(with = "time::serde::rfc3339::option")]
    pub complete_sent_at: Option<OffsetDateTime>,
    /// When the database came online.
    #[serde(with = "time::serde::rfc3339::option")]
    pub online_at: Option<OffsetDateTime>,
}

impl From<&MigrationState> for DatabaseSummary {
    fn from(s: &MigrationState) -> Self {
        DatabaseSummary {
            folder: s.folder.clone(),
            container: s.container.clone(),
            database_name: s.database_name.clone(),
            target_instance: s.target.as_ref().map(ToString::to_string),
            phase: s.phase,
            reason: s.reason.clone(),
            files_seen: s.files.len(),
            files_planned: s
                .plan
                .as_ref()
                .map_or(0, |p| p.steps.iter().map(|st| st.files.len()).sum()),
            files_restored: s.files_restored(),
            tail: s.tail.as_ref().map(|t| t.file_name.clone()),
            findings: s.all_findings(),
            started_at: s.lrs.started_at,
            tail_restored_at: s.lrs.tail_restored_at,
            complete_sent_at: s.lrs.complete_sent_at,
            online_at: s.lrs.online_at,
        }
    }
}
