//! The planner's inputs and outputs. Plain data, serialisable: state documents keep them.

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use crate::backup::{BackupFile, BackupType, Lsn};

/// One file of a database folder, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderFile {
    /// Path relative to the database folder: `x.bak`, or `FULL/x.bak` when nested (a finding).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// When the blob or file was last modified, if known.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_modified: Option<OffsetDateTime>,
    /// What the reader made of it.
    pub read: FileRead,
}

/// The reader's verdict on a file, kept in a form that survives a state document round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum FileRead {
    /// The header was read.
    Read {
        /// The facts.
        facts: BackupFile,
    },
    /// The file could not be read as a backup.
    Failed {
        /// The kind of failure.
        kind: FailureKind,
        /// The reader's message, for a DBA.
        message: String,
    },
}

/// Kinds of read failure, mapped to findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Not a SQL Server backup: `not_a_backup`.
    NotABackup,
    /// Checksum or structure mismatch: `corrupt_file`.
    Corrupt,
    /// Truncated or still being written: `incomplete_file`.
    Incomplete,
    /// A backup this reader cannot read.
    Unsupported,
}

impl FailureKind {
    /// The kind of a reader error. `NeedMoreHead` left over after a fetch means the file ended
    /// before its header did: incomplete, as the pipeline counts it.
    pub fn of(error: &crate::backup::Error) -> FailureKind {
        use crate::backup::Error;
        match error {
            Error::NotABackup { .. } => FailureKind::NotABackup,
            Error::Truncated { .. } | Error::NeedMoreHead { .. } => FailureKind::Incomplete,
            Error::Corrupt { .. } => FailureKind::Corrupt,
            Error::Unsupported { .. } => FailureKind::Unsupported,
        }
    }
}

impl FileRead {
    /// The planner's view of a reader result.
    pub fn from_result(result: Result<BackupFile, crate::backup::Error>) -> FileRead {
        match result {
            Ok(facts) => FileRead::Read { facts },
            Err(error) => FileRead::Failed {
                kind: FailureKind::of(&error),
                message: error.to_string(),
            },
        }
    }
}

/// The default tail-log pattern: a deliberate `_tail` suffix before the extension
/// (`Sales_tail.trn`, `Sales_20250601_tail.trn`). It is matched against the file name with the
/// database name taken out (see [`TailRule::pattern`]), so `RetailDB_LOG_0815.trn`, `Cocktail_...`,
/// `Detail_...` or `TailspinToys_...` never match it.
pub const DEFAULT_TAIL_PATTERN: &str = "*_tail.*";

/// How the tail-log backup (the cutover trigger) is recognised.
///
/// Completing is irreversible, so only an operator's choice is taken as given. A file named by the
/// pattern or the metadata is the tail only if it is a log backup the chain reaches and nothing in
/// the folder is newer; otherwise the plan has no tail and says why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailRule {
    /// An operator's explicit choice (the `cutover` command, `check --tail-file`): the tail as
    /// given; what stands in its way blocks the cutover.
    pub file_name: Option<String>,
    /// Files whose blob metadata says `lrs_tail=true`: the newest such log is a candidate.
    #[serde(default)]
    pub metadata: Vec<String>,
    /// A case-insensitive glob, such as [`DEFAULT_TAIL_PATTERN`]. It is matched against the file
    /// name without its folder and with the first occurrence of the database name (from the
    /// header) and of the folder name blanked out, so that a database name never makes a match.
    pub pattern: Option<String>,
    /// Trust the header's tail-log flag bits: a named tail whose header says it is not a tail-log
    /// backup is then refused (the name loses). Off until a real tail-log backup confirms those
    /// bits (see docs/backup-format.md: they are unconfirmed).
    #[serde(default)]
    pub header_hint_confirmed: bool,
}

impl TailRule {
    /// The rule with only a pattern.
    pub fn with_pattern(pattern: impl Into<String>) -> TailRule {
        TailRule {
            pattern: Some(pattern.into()),
            ..TailRule::default()
        }
    }

    /// Compiles the pattern (case-insensitive). `Ok(None)` when there is no pattern or it is empty.
    ///
    /// # Errors
    /// The glob does not parse; shells check this up front, the planner treats it as matching nothing.
    pub fn matcher(&self) -> Result<Option<std::rc::Rc<globset::GlobMatcher>>, globset::Error> {
        /// Compiled patterns are cached per thread, one deep: a process has one configured
        /// pattern, and the planner runs on every state change (compiling it each time was
        /// 40 % of the state-machine fuzz target's time). Shared behind an `Rc`, not cloned: a
        /// cloned matcher starts an empty regex cache, and building that cache again on every
        /// plan was a quarter of the fuzz target's time.
        type Compiled = Result<Option<std::rc::Rc<globset::GlobMatcher>>, globset::Error>;
        thread_local! {
            static LAST: std::cell::RefCell<Option<(String, Compiled)>> =
                const { std::cell::RefCell::new(None) };
        }
        let pattern = match self.pattern.as_deref().map(str::trim) {
            None | Some("") => return Ok(None),
            Some(pattern) => pattern,
        };
        LAST.with_borrow_mut(|last| match last {
            Some((cached, compiled)) if cached == pattern => compiled.clone(),
            _ => {
                let compiled = globset::GlobBuilder::new(pattern)
                    .case_insensitive(true)
                    .build()
                    .map(|glob| Some(std::rc::Rc::new(glob.compile_matcher())));
                *last = Some((pattern.to_owned(), compiled.clone()));
                compiled
            }
        })
    }
}

/// The part of a file name the tail pattern is matched against, lowercased and without its folder:
/// the longest of `database` and `folder` that starts the name is blanked, and so is the first
/// occurrence of `database` elsewhere. A blank is a NUL, which no literal in a pattern matches, so
/// `RetailDB_LOG_0815.trn` of `RetailDB` (`\0_log_0815.trn`) never matches `*tail*`, while
/// `Sales_tail.trn` in a folder called `tail` (`\0_tail.trn`) still matches `*_tail.*`.
pub fn tail_match_text(file_name: &str, database: &str, folder: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let mut text = base.to_lowercase();
    let database = database.trim().to_lowercase();
    let folder = folder
        .rsplit('/')
        .next()
        .unwrap_or(folder)
        .trim()
        .to_lowercase();
    let prefix = [&database, &folder]
        .into_iter()
        .filter(|n| !n.is_empty() && text.starts_with(n.as_str()))
        .max_by_key(|n| n.len());
    if let Some(prefix) = prefix {
        text.replace_range(..prefix.len(), "\0");
    }
    if !database.is_empty() && prefix != Some(&database) {
        text = text.replacen(&database, "\0", 1);
    }
    text
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// LRS will go on, but something deserves a look.
    Warning,
    /// LRS will stall or fail: a person must act.
    Blocking,
}

/// Stable codes of findings: other tools match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    /// The file is not a SQL Server backup.
    NotABackup,
    /// The file failed a checksum or structure check.
    CorruptFile,
    /// The file is truncated or still being written.
    IncompleteFile,
    /// No complete full backup set in the folder.
    NoFullBackup,
    /// A stripe (media family k of n) of a backup set is absent.
    MissingStripes,
    /// The log chain has a gap.
    LogChainGap,
    /// A differential whose base full backup is not in the folder.
    OrphanDifferential,
    /// Files from more than one database in the folder.
    MultipleDatabases,
    /// A log backup striped over files, which LRS refuses.
    SplitLogBackup,
    /// A file not directly under the database folder.
    NestedPath,
    /// A name with characters (`$`, `%`, spaces, ...) that need URL encoding.
    PathNeedsEncoding,
    /// The source version is outside SQL Server 2008–2022, or the backup type is one LRS cannot use.
    UnsupportedVersion,
    /// The database looks like it is in the SIMPLE recovery model (inferred).
    SimpleRecovery,
    /// The backup was taken without `WITH CHECKSUM`.
    NoChecksum,
    /// More than one backup set in one file.
    MultipleBackupSets,
    /// A backup older than the base full backup, which LRS will skip.
    OlderThanBase,
    /// A log backup after the declared tail-log backup.
    LogAfterTail,
    /// A file named as the tail-log backup (by the pattern, metadata or header) that cannot be it.
    TailRefused,
    /// A full backup newer than the base LRS already restored: LRS does not re-base, so it is not used.
    NewerFullBackup,
    /// The target database name is taken on the instance by a database that is not an LRS restore
    /// (raised by the migration from ARM's answer, not by the planner).
    NameInUse,
    /// Another watched folder already owns the target database name (raised by the migration).
    TargetNameTaken,
    /// LRS or ARM answered an error a person must act on (raised by the migration).
    LrsError,
    /// `LRS_TARGETS` maps the folder to another instance than the one LRS started on: it is not
    /// moved (raised by the migration).
    TargetMoved,
    /// A container or folder name containing "backup" (any case), which LRS refuses.
    ReservedWordInPath,
    /// A file extension other than the guide's `.bak`, `.log` and `.diff` (or none).
    UndocumentedExtension,
    /// FILESTREAM or FileTable data, which SQL Managed Instance does not support (preflight).
    FilestreamUnsupported,
    /// A memory-optimized filegroup on a General Purpose target (preflight).
    InMemoryOltpNeedsBusinessCritical,
    /// More than one log file, which LRS refuses (preflight).
    MultipleLogFiles,
    /// The source is newer than the instance's update policy accepts (preflight).
    SourceNewerThanInstance,
    /// The database's files do not fit, or barely fit, in the instance's free storage (preflight).
    InsufficientStorage,
    /// A database of the target name exists on the instance and is not our LRS restore (preflight).
    NameTakenOnInstance,
    /// The instance holds its tier's maximum number of databases (preflight).
    InstanceDatabaseLimit,
    /// The instance has a maintenance window the migration should avoid (preflight, info).
    MaintenanceWindow,
}

impl FindingCode {
    /// The stable snake_case name (as serialised), for text output.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::NotABackup => "not_a_backup",
            FindingCode::CorruptFile => "corrupt_file",
            FindingCode::IncompleteFile => "incomplete_file",
            FindingCode::NoFullBackup => "no_full_backup",
            FindingCode::MissingStripes => "missing_stripes",
            FindingCode::LogChainGap => "log_chain_gap",
            FindingCode::OrphanDifferential => "orphan_differential",
            FindingCode::MultipleDatabases => "multiple_databases",
            FindingCode::SplitLogBackup => "split_log_backup",
            FindingCode::NestedPath => "nested_path",
            FindingCode::PathNeedsEncoding => "path_needs_encoding",
            FindingCode::UnsupportedVersion => "unsupported_version",
            FindingCode::SimpleRecovery => "simple_recovery",
            FindingCode::NoChecksum => "no_checksum",
            FindingCode::MultipleBackupSets => "multiple_backup_sets",
            FindingCode::OlderThanBase => "older_than_base",
            FindingCode::LogAfterTail => "log_after_tail",
            FindingCode::TailRefused => "tail_refused",
            FindingCode::NewerFullBackup => "newer_full_backup",
            FindingCode::NameInUse => "name_in_use",
            FindingCode::TargetNameTaken => "target_name_taken",
            FindingCode::LrsError => "lrs_error",
            FindingCode::TargetMoved => "target_moved",
            FindingCode::ReservedWordInPath => "reserved_word_in_path",
            FindingCode::UndocumentedExtension => "undocumented_extension",
            FindingCode::FilestreamUnsupported => "filestream_unsupported",
            FindingCode::InMemoryOltpNeedsBusinessCritical => {
                "in_memory_oltp_needs_business_critical"
            }
            FindingCode::MultipleLogFiles => "multiple_log_files",
            FindingCode::SourceNewerThanInstance => "source_newer_than_instance",
            FindingCode::InsufficientStorage => "insufficient_storage",
            FindingCode::NameTakenOnInstance => "name_taken_on_instance",
            FindingCode::InstanceDatabaseLimit => "instance_database_limit",
            FindingCode::MaintenanceWindow => "maintenance_window",
        }
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Severity {
    /// The stable snake_case name (as serialised), for text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Blocking => "blocking",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem or observation, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code.
    pub code: FindingCode,
    /// How much it matters.
    pub severity: Severity,
    /// The files involved.
    pub files: Vec<String>,
    /// What is wrong and what to do, in words a DBA can act on.
    pub message: String,
}

/// One backup set in the restore order, with all its stripe files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedSet {
    /// Full, differential or log.
    pub backup_type: BackupType,
    /// The stripe files, in family order; the first is LRS's `firstStripeName`.
    pub files: Vec<String>,
    /// The set's backup set GUID.
    pub backup_set_guid: Uuid,
    /// First LSN.
    pub first_lsn: Lsn,
    /// Last LSN.
    pub last_lsn: Lsn,
    /// Total size of the stripe files in bytes.
    pub size: u64,
    /// When the backup finished (or started, without the tail), if known.
    pub backup_time: Option<PrimitiveDateTime>,
}

/// The restore plan LRS will follow for one folder, and what stands in its way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The source database name, when the folder holds one database.
    pub database_name: Option<String>,
    /// The sets LRS will restore, in order: base full, newest applicable differential, then logs.
    pub steps: Vec<PlannedSet>,
    /// Files LRS will skip (older than the base, superseded differentials).
    pub skipped: Vec<String>,
    /// The LSN the folder is restorable up to.
    pub restorable_to_lsn: Option<Lsn>,
    /// The time the folder is restorable up to.
    pub restorable_to_time: Option<PrimitiveDateTime>,
    /// The tail-log backup's file, when one is recognised.
    pub tail: Option<String>,
    /// Every finding, blocking first.
    pub findings: Vec<Finding>,
    /// A complete full set exists and nothing blocks it.
    pub can_start: bool,
    /// A tail-log backup is recognised, the chain reaches it unbroken and nothing follows it.
    pub can_complete: bool,
}
