//! The chain planner: the files of one database folder to the restore plan LRS will follow, and
//! every finding that stands in its way. Pure: no I/O, no clock; it imports only [`crate::backup`]
//! facts.

mod types;

pub use types::{
    FailureKind, FileRead, Finding, FindingCode, FolderFile, Plan, PlannedSet, Severity, TailRule,
};

/// What the planner is asked.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The database folder's name (the container path segment), for messages.
    pub folder: &'a str,
    /// Every file seen in the folder.
    pub files: &'a [FolderFile],
    /// Once LRS has started, the backup set GUID of the full set it restored: the plan keeps it.
    pub fixed_base: Option<uuid::Uuid>,
    /// How to recognise the tail-log backup.
    pub tail: &'a TailRule,
}

/// Plans the folder.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let _ = input;
    Plan {
        database_name: None,
        steps: Vec::new(),
        skipped: Vec::new(),
        restorable_to_lsn: None,
        restorable_to_time: None,
        tail: None,
        findings: Vec::new(),
        can_start: false,
        can_complete: false,
    }
}
