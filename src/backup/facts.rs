//! The typed facts the reader gets out of a backup file: what `RESTORE LABELONLY`, `HEADERONLY` and
//! `FILELISTONLY` would show. Plain data, serialisable, so the pipeline can keep them in state documents.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;
use uuid::Uuid;

/// A log sequence number: VLF sequence, block offset, slot. Ordered the way SQL Server orders them.
///
/// Shown and serialised in the decimal form `RESTORE HEADERONLY` prints
/// (`vlf * 10^15 + block * 10^5 + slot`), as a string, since it does not fit in a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn {
    /// Virtual log file sequence number.
    pub vlf: u32,
    /// Log block offset within the VLF.
    pub block: u32,
    /// Slot within the block.
    pub slot: u16,
}

impl Lsn {
    /// The zero LSN, which SQL Server writes where a field does not apply.
    pub const ZERO: Lsn = Lsn {
        vlf: 0,
        block: 0,
        slot: 0,
    };

    /// The decimal value `RESTORE HEADERONLY` shows.
    pub fn to_decimal(self) -> u128 {
        u128::from(self.vlf) * 1_000_000_000_000_000
            + u128::from(self.block) * 100_000
            + u128::from(self.slot)
    }

    /// Parses the decimal form back; `None` when the parts do not fit their widths.
    pub fn from_decimal(value: u128) -> Option<Lsn> {
        let vlf = u32::try_from(value / 1_000_000_000_000_000).ok()?;
        let rest = value % 1_000_000_000_000_000;
        let block = u32::try_from(rest / 100_000).ok()?;
        let slot = u16::try_from(rest % 100_000).ok()?;
        Some(Lsn { vlf, block, slot })
    }

    /// Whether this is the zero LSN.
    pub fn is_zero(self) -> bool {
        self == Lsn::ZERO
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

impl std::str::FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: u128 = s
            .trim()
            .parse()
            .map_err(|_| format!("not a decimal LSN: {s:?}"))?;
        Lsn::from_decimal(value).ok_or_else(|| format!("LSN out of range: {s:?}"))
    }
}

impl Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything read from one backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupFile {
    /// The media header (TAPE block and its RAID stream).
    pub media: Media,
    /// The backup sets in the file, by position (1..n).
    pub backup_sets: Vec<BackupSet>,
    /// Whether the end blocks were found in the tail: `None` when no tail was given.
    pub complete: Option<bool>,
    /// How many backup sets the file holds, when the tail tells (the number its last end-of-set
    /// block carries: SQL Server numbers the sets of a file 1..n). Sets between the first and
    /// the last may lie beyond both reads, so `backup_sets` can list fewer.
    #[serde(default)]
    pub set_count: Option<u16>,
}

impl BackupFile {
    /// The first backup set; every valid backup file has one.
    pub fn first_set(&self) -> Option<&BackupSet> {
        self.backup_sets.first()
    }

    /// How many backup sets the file is known to hold: the count from the tail, or the sets
    /// listed, whichever is larger.
    pub fn known_set_count(&self) -> usize {
        usize::from(self.set_count.unwrap_or(0)).max(self.backup_sets.len())
    }

    /// The file holds more than one backup set (`BACKUP ... WITH NOINIT` appended to it).
    pub fn has_multiple_sets(&self) -> bool {
        self.known_set_count() > 1
    }
}

/// The media header: one per file, shared by the stripes of one media set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    /// The file starts with `MSSQLBAK`: written `WITH COMPRESSION`.
    pub compressed: bool,
    /// Physical block size in bytes (512 or 4096 seen).
    pub block_size: u32,
    /// How many stripe files (media families) the media set has.
    pub family_count: u16,
    /// Which stripe (1..=family_count) this file is.
    pub family_sequence: u16,
    /// Identifies the media set: equal in every stripe of one backup.
    pub media_set_guid: Uuid,
    /// The media family id from the TAPE block (differs per stripe).
    pub media_family_id: u32,
    /// A `MEDIAPASSWORD` was set when the media was formatted.
    pub has_media_password: bool,
    /// Media name (`MEDIANAME`), if any.
    pub media_name: Option<String>,
    /// Media description (`MEDIADESCRIPTION`), if any.
    pub media_description: Option<String>,
}

/// The kind of backup set, from the msdb type letter in the set header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    /// `BACKUP DATABASE` (letter D).
    Full,
    /// `BACKUP DATABASE ... WITH DIFFERENTIAL` (letter I).
    Differential,
    /// `BACKUP LOG` (letter L).
    Log,
    /// A file or filegroup backup (letter F): LRS cannot use it.
    File,
    /// A differential file backup (letter G): LRS cannot use it.
    DifferentialFile,
    /// A partial backup (letter P): LRS cannot use it.
    Partial,
    /// A differential partial backup (letter Q): LRS cannot use it.
    DifferentialPartial,
}

impl BackupType {
    /// The msdb letter for this type.
    pub fn letter(self) -> char {
        match self {
            BackupType::Full => 'D',
            BackupType::Differential => 'I',
            BackupType::Log => 'L',
            BackupType::File => 'F',
            BackupType::DifferentialFile => 'G',
            BackupType::Partial => 'P',
            BackupType::DifferentialPartial => 'Q',
        }
    }

    /// The type for an msdb letter, if it is one we know.
    pub fn from_letter(letter: u8) -> Option<BackupType> {
        Some(match letter {
            b'D' => BackupType::Full,
            b'I' => BackupType::Differential,
            b'L' => BackupType::Log,
            b'F' => BackupType::File,
            b'G' => BackupType::DifferentialFile,
            b'P' => BackupType::Partial,
            b'Q' => BackupType::DifferentialPartial,
            _ => return None,
        })
    }

    /// Whether LRS can restore this type (full, differential and log only).
    pub fn is_supported_by_lrs(self) -> bool {
        matches!(
            self,
            BackupType::Full | BackupType::Differential | BackupType::Log
        )
    }

    /// The name used in JSON output (`full`, `differential`, `log`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Differential => "differential",
            BackupType::Log => "log",
            BackupType::File => "file",
            BackupType::DifferentialFile => "differential_file",
            BackupType::Partial => "partial",
            BackupType::DifferentialPartial => "differential_partial",
        }
    }
}

impl fmt::Display for BackupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SQL Server version, as `RESTORE HEADERONLY` shows it (`SoftwareVersionMajor.Minor.Build`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SqlVersion {
    /// 10 for SQL Server 2008 and 2008 R2, 11 for 2012, ... 16 for 2022.
    pub major: u8,
    /// 50 for 2008 R2, otherwise usually 0.
    pub minor: u8,
    /// Build number.
    pub build: u16,
}

impl fmt::Display for SqlVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// Recovery model, inferred from the database status bits in the set header (not confirmed by a
/// documented field, hence always shown as inferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryModel {
    /// FULL.
    Full,
    /// BULK_LOGGED.
    BulkLogged,
    /// SIMPLE: log backups are impossible.
    Simple,
}

/// A database collation, from the 5-byte TDS form in the set header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Collation {
    /// The collation name (for example `SQL_Latin1_General_CP1_CI_AS`), when the reader knows it.
    pub name: Option<String>,
    /// The 5 raw bytes, lower-case hex (LCID and flags as u32 LE, then the SQL sort id).
    pub tds: String,
}

/// One database file inside a backup set (a `RESTORE FILELISTONLY` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseFile {
    /// Logical file name.
    pub logical_name: String,
    /// Physical file name on the source server.
    pub physical_name: String,
    /// `D` for data, `L` for log, other letters for FILESTREAM and full-text.
    pub file_type: char,
    /// The filegroup name; `None` for the log.
    pub filegroup: Option<String>,
    /// The file id.
    pub file_id: u32,
    /// Size in bytes.
    pub size: u64,
    /// Maximum size in bytes (35184372080640 means unlimited).
    pub max_size: u64,
}

/// One backup set (a `RESTORE HEADERONLY` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupSet {
    /// Position of the set in the file, 1-based.
    pub position: u16,
    /// Full, differential, log, or a type LRS does not support.
    pub backup_type: BackupType,
    /// Source database name.
    pub database_name: String,
    /// Source server name (`SERVER\INSTANCE`).
    pub server_name: String,
    /// Source machine name.
    pub machine_name: String,
    /// `BACKUP ... WITH NAME`, if any.
    pub backup_name: Option<String>,
    /// `BACKUP ... WITH DESCRIPTION`, if any.
    pub description: Option<String>,
    /// The login that took the backup.
    pub user_name: Option<String>,
    /// SQL Server version that wrote the backup.
    pub software_version: SqlVersion,
    /// Database compatibility level.
    pub compatibility_level: u8,
    /// Internal database version (661, 706, ... 904).
    pub database_version: u16,
    /// First LSN in the set.
    pub first_lsn: Lsn,
    /// LSN of the next log record after the set.
    pub last_lsn: Lsn,
    /// LSN of the most recent checkpoint.
    pub checkpoint_lsn: Lsn,
    /// LSN of the most recent full backup, `None` when zero.
    pub database_backup_lsn: Option<Lsn>,
    /// For a differential: the base full backup's checkpoint LSN.
    pub differential_base_lsn: Option<Lsn>,
    /// For a differential: the base full backup's backup set GUID.
    pub differential_base_guid: Option<Uuid>,
    /// Identifies this backup set.
    pub backup_set_guid: Uuid,
    /// When the backup started (server local time).
    pub backup_start: Option<PrimitiveDateTime>,
    /// When the backup finished (from the tail copy of the header; `None` without the tail).
    pub backup_finish: Option<PrimitiveDateTime>,
    /// Backup size in bytes (final only from the tail copy).
    pub backup_size: Option<u64>,
    /// Compressed backup size in bytes (final only from the tail copy).
    pub compressed_backup_size: Option<u64>,
    /// Written `WITH CHECKSUM`.
    pub has_checksums: bool,
    /// The raw flags word from the set header.
    pub flags: u32,
    /// Database collation.
    pub collation: Collation,
    /// Recovery model, inferred from status bits.
    pub recovery_model: Option<RecoveryModel>,
    /// The database's files (`RESTORE FILELISTONLY`).
    pub files: Vec<DatabaseFile>,
    /// Known only from its closing header copy in the tail: its set block (SSET) and volume block
    /// lay beyond the head, so the backup set GUID is nil and the machine, backup and user names
    /// are empty. Only the last set of a multi-set file is read this way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_tail_only: bool,
}

impl BackupSet {
    /// HEADERONLY flag 16: written with checksums.
    pub const FLAG_HAS_CHECKSUMS: u32 = 0x10;
    /// HEADERONLY flags 64/128/256 suggest a tail-log backup: a hint only, never the cutover signal.
    pub const FLAGS_TAIL_LOG_HINT: u32 = 0x40 | 0x80 | 0x100;

    /// Whether the header's flags hint that this is a tail-log backup (unconfirmed on real files).
    pub fn tail_log_hint(&self) -> bool {
        self.backup_type == BackupType::Log && self.flags & Self::FLAGS_TAIL_LOG_HINT != 0
    }
}
