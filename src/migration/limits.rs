//! Bounds on what operators and events can put in a state document, so that no caller can grow a
//! document (and the memory of every invocation that reads it) without limit.

use crate::backup::BackupType;

use super::MigrationState;

/// LRS restores one subscription runs at once (Microsoft's documented limit): the pipeline's own
/// starts, across every target instance in a subscription, stay within it.
pub const MAX_RESTORES_PER_SUBSCRIPTION: usize = 150;

/// The longest `lastBackupName` accepted: Azure's limit on a blob name.
pub const MAX_LAST_BACKUP_NAME_CHARS: usize = 1024;

/// The longest audit entry kept; longer text is cut (with a marker). An entry quotes a file name
/// (at most 1,024 characters) and a message, so 2,048 keeps every entry the pipeline writes whole.
pub const MAX_AUDIT_ENTRY_CHARS: usize = 2048;

/// The largest state document read or written: 8 MiB. A file record takes about 1.5 KB, so this
/// holds over 5,000 backups (a log backup every 10 minutes for 35 days) with room to spare. A
/// larger document is reported unreadable instead of being loaded.
pub const MAX_STATE_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn cap_text(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => {
            let mut cut = text;
            cut.truncate(end);
            cut.push_str("...[cut]");
            cut
        }
        None => text,
    }
}

/// Checks an operator's `lastBackupName` against the folder: a name of at most
/// [`MAX_LAST_BACKUP_NAME_CHARS`], one line of printable ASCII, that names a log backup recorded in
/// the folder and planned in the chain. Completing on anything else would wait forever, or
/// complete on a file LRS never restores.
///
/// # Errors
/// The reason, in words an operator can act on.
pub fn check_last_backup(state: &MigrationState, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("lastBackupName is empty: give the tail-log backup's file name".into());
    }
    let chars = name.chars().count();
    if chars > MAX_LAST_BACKUP_NAME_CHARS {
        return Err(format!(
            "lastBackupName has {chars} characters; at most {MAX_LAST_BACKUP_NAME_CHARS}"
        ));
    }
    if !name.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return Err(
            "lastBackupName must be one line of printable ASCII (an LRS rule): no control characters"
                .into(),
        );
    }
    if name.contains(['/', '\\']) {
        return Err(format!(
            "lastBackupName {name:?} is a path: give the file name of a log backup directly in the folder {}",
            state.folder
        ));
    }
    let Some(record) = state.files.get(name) else {
        return Err(format!(
            "lastBackupName {name:?} is not in the folder {}: upload the tail-log backup first",
            state.folder
        ));
    };
    let planned_log = state.plan.as_ref().is_some_and(|plan| {
        plan.steps
            .iter()
            .any(|s| s.backup_type == BackupType::Log && s.files.iter().any(|f| f == name))
    });
    if !planned_log {
        let what = match &record.file.read {
            crate::chain::FileRead::Read { facts } => match facts.first_set() {
                Some(set) if set.backup_type != BackupType::Log => {
                    format!("a {} backup, not a log backup", set.backup_type.as_str())
                }
                _ => "a log backup the chain does not reach".into(),
            },
            crate::chain::FileRead::Failed { message, .. } => {
                format!("not a usable backup ({message})")
            }
        };
        return Err(format!(
            "lastBackupName {name:?} is {what}: name a log backup in the restore plan"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn long_audit_entries_are_cut_with_a_marker() {
        let mut state = MigrationState::new("c", "db", "db", datetime!(2025-06-01 8:00 UTC));
        state.audit(
            datetime!(2025-06-01 8:00 UTC),
            "x".repeat(10 * MAX_AUDIT_ENTRY_CHARS),
        );
        let entry = &state.audit[0].event;
        assert!(entry.ends_with("...[cut]"));
        assert_eq!(
            entry.chars().count(),
            MAX_AUDIT_ENTRY_CHARS + "...[cut]".len()
        );
        assert_eq!(cap_text("short".into(), 10), "short");
    }

    #[test]
    fn a_last_backup_name_must_name_a_planned_log_backup() {
        let state = MigrationState::new("c", "db", "db", datetime!(2025-06-01 8:00 UTC));
        for (name, why) in [
            ("", "is empty"),
            ("x\u{1b}.trn", "control characters"),
            ("../x.trn", "is a path"),
            ("nope.trn", "is not in the folder"),
        ] {
            let err = check_last_backup(&state, name).unwrap_err();
            assert!(err.contains(why), "{name:?}: {err}");
        }
        let long = "a".repeat(MAX_LAST_BACKUP_NAME_CHARS + 1);
        assert!(
            check_last_backup(&state, &long)
                .unwrap_err()
                .contains("at most 1024")
        );
    }
}
