//! Synthetic folder files: the facts the reader would return for a chain of backups, without any
//! bytes. For planner tests and benchmarks; a backup writer for real bytes is a separate tool.
//!
//! ```
//! use lrs_autopilot::chain::synthetic::Synthetic;
//! let mut db = Synthetic::new("Sales");
//! let full = db.full(100, 200);
//! let log = db.log(100, 300);
//! let files = vec![full.file("Sales_full.bak"), log.file("Sales_1.trn")];
//! assert_eq!(files.len(), 2);
//! ```

use time::{Duration, PrimitiveDateTime, macros::datetime};
use uuid::Uuid;

use crate::backup::{
    BackupFile, BackupSet, BackupType, Collation, DatabaseFile, Lsn, Media, RecoveryModel,
    SqlVersion,
};

use super::types::{FailureKind, FileRead, FolderFile};

/// An LSN in one VLF, numbered by `block`: `lsn(200) > lsn(100)`.
pub fn lsn(block: u32) -> Lsn {
    Lsn {
        vlf: 40,
        block,
        slot: 1,
    }
}

/// Makes the backups of one source database, each a little later than the one before.
#[derive(Debug, Clone)]
pub struct Synthetic {
    database: String,
    server: String,
    version: SqlVersion,
    checksums: bool,
    recovery: RecoveryModel,
    seed: u128,
    counter: u128,
    clock: PrimitiveDateTime,
    last_full_checkpoint: Option<Lsn>,
}

impl Synthetic {
    /// A SQL Server 2019 database in FULL recovery, backed up WITH CHECKSUM.
    pub fn new(database: &str) -> Self {
        Synthetic {
            database: database.to_owned(),
            server: "SQL01".to_owned(),
            version: SqlVersion {
                major: 15,
                minor: 0,
                build: 2000,
            },
            checksums: true,
            recovery: RecoveryModel::Full,
            seed: seed(database, "SQL01"),
            counter: 0,
            clock: datetime!(2024-03-01 08:00:00),
            last_full_checkpoint: None,
        }
    }

    /// The source server name.
    pub fn server(mut self, server: &str) -> Self {
        self.server = server.to_owned();
        self.seed = seed(&self.database, server);
        self
    }

    /// The SQL Server version (`major` 9 is 2005, 16 is 2022).
    pub fn version(mut self, major: u8, minor: u8, build: u16) -> Self {
        self.version = SqlVersion {
            major,
            minor,
            build,
        };
        self
    }

    /// Whether backups are written WITH CHECKSUM.
    pub fn checksums(mut self, on: bool) -> Self {
        self.checksums = on;
        self
    }

    /// The recovery model the headers suggest.
    pub fn recovery(mut self, model: RecoveryModel) -> Self {
        self.recovery = model;
        self
    }

    /// A full backup covering `first..last`, checkpoint at `first`.
    pub fn full(&mut self, first: u32, last: u32) -> SyntheticSet {
        let mut out = self.set(BackupType::Full, first, last);
        out.set.database_backup_lsn = self.last_full_checkpoint;
        self.last_full_checkpoint = Some(out.set.checkpoint_lsn);
        out
    }

    /// A differential backup on `base`.
    pub fn diff(&mut self, base: &SyntheticSet, first: u32, last: u32) -> SyntheticSet {
        let mut out = self.set(BackupType::Differential, first, last);
        out.set.differential_base_guid = Some(base.guid());
        out.set.differential_base_lsn = Some(base.set.checkpoint_lsn);
        out.set.database_backup_lsn = Some(base.set.checkpoint_lsn);
        out
    }

    /// A log backup covering `first..last`.
    pub fn log(&mut self, first: u32, last: u32) -> SyntheticSet {
        self.set(BackupType::Log, first, last)
    }

    fn set(&mut self, kind: BackupType, first: u32, last: u32) -> SyntheticSet {
        self.counter += 2;
        self.clock += Duration::minutes(5);
        let flags = if self.checksums {
            0x200 | BackupSet::FLAG_HAS_CHECKSUMS
        } else {
            0x200
        };
        SyntheticSet {
            media_set_guid: Uuid::from_u128(self.seed | (self.counter + 1)),
            set: BackupSet {
                position: 1,
                backup_type: kind,
                database_name: self.database.clone(),
                server_name: self.server.clone(),
                machine_name: self.server.clone(),
                backup_name: None,
                description: None,
                user_name: Some("sa".to_owned()),
                software_version: self.version,
                compatibility_level: 150,
                database_version: 904,
                first_lsn: lsn(first),
                last_lsn: lsn(last),
                checkpoint_lsn: lsn(first),
                database_backup_lsn: self.last_full_checkpoint,
                differential_base_lsn: None,
                differential_base_guid: None,
                backup_set_guid: Uuid::from_u128(self.seed | self.counter),
                backup_start: Some(self.clock),
                backup_finish: Some(self.clock + Duration::seconds(30)),
                backup_size: Some(1 << 20),
                compressed_backup_size: Some(1 << 20),
                has_checksums: self.checksums,
                flags,
                collation: Collation {
                    name: Some("SQL_Latin1_General_CP1_CI_AS".to_owned()),
                    tds: "0904d00034".to_owned(),
                },
                recovery_model: Some(self.recovery),
                files: vec![DatabaseFile {
                    logical_name: self.database.clone(),
                    physical_name: format!("D:\\data\\{}.mdf", self.database),
                    file_type: 'D',
                    filegroup: Some("PRIMARY".to_owned()),
                    file_id: 1,
                    size: 8 << 20,
                    max_size: 35_184_372_080_640,
                }],
                from_tail_only: false,
            },
        }
    }
}

/// FNV-1a of database and server, in the high half of every GUID: keeps two synthetic databases
/// apart.
fn seed(database: &str, server: &str) -> u128 {
    let hash = database
        .bytes()
        .chain([0])
        .chain(server.bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    u128::from(hash) << 64
}

/// One synthetic backup set, ready to be written out as one or more folder files.
#[derive(Debug, Clone)]
pub struct SyntheticSet {
    /// The set header; tests may change it.
    pub set: BackupSet,
    /// The media set GUID its stripes share.
    pub media_set_guid: Uuid,
}

impl SyntheticSet {
    /// The backup set GUID.
    pub fn guid(&self) -> Uuid {
        self.set.backup_set_guid
    }

    /// The set in a single file.
    pub fn file(&self, name: &str) -> FolderFile {
        self.stripe(name, 1, 1)
    }

    /// The set striped over these files, in family order.
    pub fn striped(&self, names: &[&str]) -> Vec<FolderFile> {
        let n = u16::try_from(names.len()).unwrap_or(u16::MAX);
        names
            .iter()
            .zip(1..=n)
            .map(|(name, k)| self.stripe(name, k, n))
            .collect()
    }

    /// Stripe `k` of `n`.
    pub fn stripe(&self, name: &str, k: u16, n: u16) -> FolderFile {
        FolderFile {
            name: name.to_owned(),
            size: 1 << 20,
            last_modified: None,
            read: FileRead::Read {
                facts: BackupFile {
                    media: Media {
                        compressed: false,
                        block_size: 512,
                        family_count: n,
                        family_sequence: k,
                        media_set_guid: self.media_set_guid,
                        media_family_id: u32::from(k),
                        has_media_password: false,
                        media_name: None,
                        media_description: None,
                    },
                    backup_sets: vec![self.set.clone()],
                    complete: Some(true),
                    set_count: Some(1),
                },
            },
        }
    }
}

/// A file the reader failed on.
pub fn failed(name: &str, kind: FailureKind, message: &str) -> FolderFile {
    FolderFile {
        name: name.to_owned(),
        size: 882,
        last_modified: None,
        read: FileRead::Failed {
            kind,
            message: message.to_owned(),
        },
    }
}
