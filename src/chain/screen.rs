//! Per-file screening: which files of the folder LRS can use at all, and the findings about single
//! files (unreadable, nested, oddly named, unsupported version or type, several sets in one file).

use std::collections::BTreeMap;

use crate::backup::{BackupFile, BackupSet, BackupType};

use super::types::{FailureKind, FileRead, Finding, FindingCode, FolderFile, Severity};

/// The oldest and newest SQL Server major versions LRS restores from (2008 and 2025). A 2025
/// source needs an instance on the SQLServer2025 or AlwaysUpToDate update policy: the preflight
/// (`crate::preflight`) checks that against the instance.
const MIN_MAJOR: u8 = 10;
const MAX_MAJOR: u8 = 17;

/// The word LRS refuses in a backup URI's container or folder names, in any case (guide,
/// Limitations: "can't contain `backup` or `Backup`"; Troubleshooting names `backups` too).
pub const RESERVED_WORD: &str = "backup";

/// Whether a container or folder name contains [`RESERVED_WORD`] in any case.
pub fn contains_reserved_word(name: &str) -> bool {
    name.to_ascii_lowercase().contains(RESERVED_WORD)
}

/// The extensions the LRS guide lists for backup files.
const DOCUMENTED_EXTENSIONS: [&str; 3] = ["bak", "log", "diff"];

/// One readable backup file directly under the folder, holding one backup set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The folder file.
    pub file: &'a FolderFile,
    /// What the reader found.
    pub facts: &'a BackupFile,
    /// Its only backup set.
    pub set: &'a BackupSet,
    /// Written to the end (`complete != Some(false)`): only usable entries are planned from.
    pub usable: bool,
}

/// Screens every file; returns the entries the planner may use, sorted by name so the plan does not
/// depend on listing order, and how many files sit in subfolders.
pub(crate) fn screen<'a>(
    folder: &str,
    files: &[&'a FolderFile],
    findings: &mut Vec<Finding>,
) -> (Vec<Entry<'a>>, usize) {
    let mut sorted: Vec<&'a FolderFile> = files.to_vec();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));

    let mut nested: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut encoded = Vec::new();
    let mut undocumented = Vec::new();
    let mut entries = Vec::new();
    for file in sorted {
        if let Some(subfolder) = subfolder_of(&file.name) {
            nested.entry(subfolder).or_default().push(file.name.clone());
            continue;
        }
        if needs_encoding(&file.name) {
            encoded.push(file.name.clone());
        }
        let documented = file.name.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && DOCUMENTED_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        });
        if !documented {
            undocumented.push(file.name.clone());
        }
        match &file.read {
            FileRead::Failed { kind, message } => findings.push(read_failure(file, *kind, message)),
            FileRead::Read { facts } => {
                if let Some(entry) = screen_facts(file, facts, findings) {
                    entries.push(entry);
                }
            }
        }
    }

    let folder = folder.trim_end_matches('/');
    if contains_reserved_word(folder) {
        findings.push(Finding {
            code: FindingCode::ReservedWordInPath,
            severity: Severity::Blocking,
            message: format!(
                "the folder name {folder:?} contains \"{RESERVED_WORD}\", which LRS refuses in a backup \
                 URI's container or folder names (in any case): rename the folder (for example \
                 {:?}) and upload its files there",
                folder.to_ascii_lowercase().replace(RESERVED_WORD, "files")
            ),
            files: Vec::new(),
        });
    }
    if !undocumented.is_empty() {
        findings.push(Finding {
            code: FindingCode::UndocumentedExtension,
            severity: Severity::Info,
            message: format!(
                "{} an extension other than .bak, .log or .diff, the ones the LRS guide lists \
                 (its own examples use .trn, and LRS reads the headers, not the names): nothing to \
                 do unless LRS skips {}",
                count(undocumented.len(), "file has", "files have"),
                if undocumented.len() == 1 {
                    "it"
                } else {
                    "them"
                },
            ),
            files: undocumented,
        });
    }
    let nested_count = nested.values().map(Vec::len).sum();
    for (subfolder, names) in nested {
        findings.push(Finding {
            code: FindingCode::NestedPath,
            severity: Severity::Blocking,
            message: format!(
                "{} in the subfolder {subfolder}/: LRS reads only the files directly under the \
                 database folder and does not look into subfolders; move {} up to {folder}/ \
                 (Ola Hallengren's jobs: set @DirectoryStructure = NULL or write each database to \
                 its own flat folder)",
                count(names.len(), "file is", "files are"),
                if names.len() == 1 { "it" } else { "them" },
            ),
            files: names,
        });
    }
    if !encoded.is_empty() {
        findings.push(Finding {
            code: FindingCode::PathNeedsEncoding,
            severity: Severity::Warning,
            message: format!(
                "{} characters such as $, %, # or spaces that must be URL-encoded in the blob URL, \
                 which LRS has been reported to mishandle; rename {} using only letters, digits, \
                 '-', '_' and '.' (Ola Hallengren's default names include SERVER$INSTANCE)",
                count(encoded.len(), "file name has", "file names have"),
                if encoded.len() == 1 { "it" } else { "them" },
            ),
            files: encoded,
        });
    }
    (entries, nested_count)
}

/// A file holding more than one backup set: blocking, since LRS restores one set per file.
fn multiple_sets_finding(name: &str, facts: &BackupFile) -> Finding {
    let count = facts.known_set_count();
    let listed: Vec<String> = facts
        .backup_sets
        .iter()
        .map(|s| {
            format!(
                "set {} ({} of {})",
                s.position, s.backup_type, s.database_name
            )
        })
        .collect();
    Finding {
        code: FindingCode::MultipleBackupSets,
        severity: Severity::Blocking,
        message: format!(
            "{name} holds {count} backup sets (BACKUP ... WITH NOINIT appended them to one file; \
             seen: {}): LRS expects one backup set per file; take \
             each backup into its own file (WITH INIT or WITH FORMAT, or a new file name per \
             backup) and replace this file",
            listed.join(", ")
        ),
        files: vec![name.to_string()],
    }
}

/// The findings for one readable file; `None` when LRS cannot use it at all.
fn screen_facts<'a>(
    file: &'a FolderFile,
    facts: &'a BackupFile,
    findings: &mut Vec<Finding>,
) -> Option<Entry<'a>> {
    let name = file.name.clone();
    let media = &facts.media;
    let set = match facts.backup_sets.as_slice() {
        [] => {
            findings.push(Finding {
                code: FindingCode::CorruptFile,
                severity: Severity::Blocking,
                message: format!(
                    "{name} has a media header but no backup set: check it with RESTORE HEADERONLY \
                     and upload it again, or move it out of the folder"
                ),
                files: vec![name],
            });
            return None;
        }
        [set] if !facts.has_multiple_sets() => set,
        _ => {
            findings.push(multiple_sets_finding(&name, facts));
            return None;
        }
    };
    if media.family_count == 0
        || media.family_sequence == 0
        || media.family_sequence > media.family_count
    {
        findings.push(Finding {
            code: FindingCode::CorruptFile,
            severity: Severity::Blocking,
            message: format!(
                "{name}: its media header says stripe {} of {}, which cannot be: upload the file \
                 again, or move it out of the folder",
                media.family_sequence, media.family_count
            ),
            files: vec![name],
        });
        return None;
    }
    let version = set.software_version;
    if !(MIN_MAJOR..=MAX_MAJOR).contains(&version.major) {
        let (what, todo) = if version.major < MIN_MAJOR {
            (
                format!("SQL Server {} ({version})", release_name(version.major)),
                "upgrade the database to SQL Server 2008 or later (restore it there), then take a \
                 new full backup WITH CHECKSUM from that server",
            )
        } else {
            (
                format!("SQL Server version {version}"),
                "LRS restores backups from SQL Server 2008 to 2025 only; migrate this database \
                 another way, or from a supported version",
            )
        };
        findings.push(Finding {
            code: FindingCode::UnsupportedVersion,
            severity: Severity::Blocking,
            message: format!("{name} was written by {what}: {todo}"),
            files: vec![name],
        });
        return None;
    }
    if !set.backup_type.is_supported_by_lrs() {
        findings.push(Finding {
            code: FindingCode::UnsupportedVersion,
            severity: Severity::Blocking,
            message: format!(
                "{name} is a {} backup (type {}): LRS restores only full, differential and log \
                 backups of the whole database; take a full database backup WITH CHECKSUM and \
                 move this file out of the folder",
                type_words(set.backup_type),
                set.backup_type.letter()
            ),
            files: vec![name],
        });
        return None;
    }
    let usable = facts.complete != Some(false);
    if !usable {
        findings.push(Finding {
            code: FindingCode::IncompleteFile,
            severity: Severity::Blocking,
            message: format!(
                "{name} has no end blocks: it is truncated or still being written; wait for the \
                 upload to finish, or upload it again if the copy was cut short"
            ),
            files: vec![name],
        });
    }
    Some(Entry {
        file,
        facts,
        set,
        usable,
    })
}

/// The finding for a file the reader could not read.
fn read_failure(file: &FolderFile, kind: FailureKind, message: &str) -> Finding {
    let name = &file.name;
    let (code, severity, text) = match kind {
        FailureKind::NotABackup => (
            FindingCode::NotABackup,
            Severity::Warning,
            format!(
                "{name} is not a SQL Server backup ({message}): LRS will list it as unrestorable; \
                 move it out of the database folder"
            ),
        ),
        FailureKind::Corrupt => (
            FindingCode::CorruptFile,
            Severity::Blocking,
            format!(
                "{name} is damaged ({message}): check it with RESTORE VERIFYONLY at the source and \
                 upload it again, or take a new backup WITH CHECKSUM"
            ),
        ),
        FailureKind::Incomplete => (
            FindingCode::IncompleteFile,
            Severity::Blocking,
            format!(
                "{name} is truncated or still being written ({message}): wait for the upload to \
                 finish, or upload it again if the copy was cut short"
            ),
        ),
        FailureKind::Unsupported => (
            FindingCode::UnsupportedVersion,
            Severity::Blocking,
            format!(
                "{name} could not be checked ({message}): verify it with RESTORE HEADERONLY; if \
                 LRS should not restore it, move it out of the folder"
            ),
        ),
    };
    Finding {
        code,
        severity,
        files: vec![name.clone()],
        message: text,
    }
}

/// The subfolder part of a nested name (`FULL/x.bak` → `FULL`), `None` for a file directly under
/// the folder. Backslashes count as separators too: a Windows copy may keep them.
fn subfolder_of(name: &str) -> Option<&str> {
    let trimmed = name.trim_start_matches(['/', '\\']);
    trimmed
        .rfind(['/', '\\'])
        .map(|i| trimmed.get(..i).unwrap_or(trimmed))
}

/// Whether a blob name has characters that must be percent-encoded in a URL path. RFC 3986
/// unreserved characters and a few harmless sub-delimiters pass.
pub(crate) fn needs_encoding(name: &str) -> bool {
    !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~()!*',=+@".contains(c))
}

/// Whether LRS's completeRestore accepts this name as `lastBackupName` (no newline, ASCII only).
pub(crate) fn valid_last_backup_name(name: &str) -> bool {
    name.is_ascii() && !name.chars().any(|c| c.is_ascii_control())
}

fn release_name(major: u8) -> &'static str {
    match major {
        7 => "7.0",
        8 => "2000",
        9 => "2005",
        _ => "before 2008",
    }
}

fn type_words(kind: BackupType) -> &'static str {
    match kind {
        BackupType::File => "file or filegroup",
        BackupType::DifferentialFile => "differential file",
        BackupType::Partial => "partial",
        BackupType::DifferentialPartial => "differential partial",
        BackupType::Full | BackupType::Differential | BackupType::Log => "database",
    }
}

/// `1 file is` / `3 files are`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
