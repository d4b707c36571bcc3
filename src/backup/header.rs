//! The header blocks of a backup: TAPE (media, with its RAID stream), SSET (set), VOLB (volume) and
//! the SQL Server configuration stream MQCI (records SCIN, SFGI, SFIN) found in MSCI and MSLS.
//! Field offsets are those in `backup-format.md`, confirmed on the fixtures.
//!
//! Not read: TDE and backup encryption. `RESTORE FILELISTONLY` shows a `TDEThumbprint` per file,
//! so it would sit in the SFIN records; `RESTORE HEADERONLY` shows `KeyAlgorithm`,
//! `EncryptorThumbprint` and `EncryptorType` per set, so they would sit in (or next to) the SCIN
//! record or the SSET block. No fixture in `../shared/fixtures/backups` is TDE-protected or
//! written `WITH ENCRYPTION`: `EXPECTED.json` and `PROVENANCE.md` record no thumbprint or
//! encryptor, and `backup-format.md` §8 lists their location as an open question. Without bytes
//! that show them, no offset is guessed and `tde_certificate_required` is not reported.

use time::{Date, Month, PrimitiveDateTime, Time};
use uuid::Uuid;

use super::block::{BlockError, Dblk, RAID};
use super::collation;
use super::cursor::{Bytes, Eof};
use super::facts::{BackupType, Collation, DatabaseFile, Lsn, RecoveryModel, SqlVersion};

/// What the TAPE block and its RAID stream say about the media.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tape {
    pub media_family_id: u32,
    pub block_size: u32,
    pub has_media_password: bool,
    pub media_name: Option<String>,
    pub media_description: Option<String>,
    pub media_set_guid: Uuid,
    pub family_count: u16,
    pub family_sequence: u16,
}

/// Reads the TAPE block.
pub(crate) fn parse_tape(d: &Dblk<'_>) -> Result<Tape, BlockError> {
    let b = d.bytes();
    let password_alg = b.u16(62)?;
    let password = d.address_bytes(76)?;
    let soft_filemark_units = b.u16(64)?;
    let raid = d
        .stream(RAID)?
        .ok_or_else(|| corrupt(d, "the media header has no RAID stream"))?;
    let r = Bytes(raid.data()?);
    let short = |_| corrupt(d, "the RAID stream is too short");
    Ok(Tape {
        media_family_id: b.u32(52)?,
        block_size: u32::from(soft_filemark_units.max(1)) * 512,
        has_media_password: password_alg != 0 || !password.is_empty(),
        media_name: d.string(68)?,
        media_description: d.string(72)?,
        media_set_guid: r.guid(0).map_err(short)?,
        family_count: r.u16(20).map_err(short)?,
        family_sequence: r.u16(24).map_err(short)?,
    })
}

/// What the SSET block says about one backup set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sset {
    pub position: u16,
    pub backup_name: Option<String>,
    pub description: Option<String>,
    pub user_name: Option<String>,
    pub backup_set_guid: Uuid,
}

/// Reads an SSET block.
pub(crate) fn parse_sset(d: &Dblk<'_>) -> Result<Sset, BlockError> {
    let b = d.bytes();
    // The OS-specific data (an MTF_TAPE_ADDRESS at 44) begins with the backup set GUID.
    let os = d.address_bytes(44)?;
    let guid = Bytes(os)
        .guid(0)
        .map_err(|_| corrupt(d, "the set header has no backup set GUID"))?;
    Ok(Sset {
        position: b.u16(62)?,
        backup_name: d.string(64)?,
        description: d.string(68)?,
        user_name: d.string(76)?,
        backup_set_guid: guid,
    })
}

/// The machine name from a VOLB block.
pub(crate) fn parse_volb(d: &Dblk<'_>) -> Result<Option<String>, BlockError> {
    d.string(64)
}

/// The SQL Server configuration (one MQCI stream): the SCIN set header and the file list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub flags: u32,
    pub software_version: SqlVersion,
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub database_backup_lsn: Lsn,
    pub backup_start: Option<PrimitiveDateTime>,
    pub backup_finish: Option<PrimitiveDateTime>,
    pub backup_type: BackupType,
    pub compatibility_level: u8,
    pub database_version: u16,
    pub backup_size: u64,
    pub compressed_backup_size: Option<u64>,
    pub database_name: String,
    pub server_name: String,
    pub collation: Collation,
    pub recovery_model: Option<RecoveryModel>,
    pub differential_base_lsn: Lsn,
    pub differential_base_guid: Uuid,
    pub files: Vec<DatabaseFile>,
}

const SCIN: [u8; 4] = *b"SCIN";
const SFGI: [u8; 4] = *b"SFGI";
const SFIN: [u8; 4] = *b"SFIN";
/// The smallest SCIN seen (SQL Server 2005): everything read here lies below it.
const SCIN_MIN_FIXED: usize = 0x120;
/// CompressedBackupSize exists from SQL Server 2008 on (fixed part 0x16C and longer).
const SCIN_COMPRESSED_SIZE: usize = 0x158;

/// Why an MQCI stream could not be read: short, or inconsistent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigError {
    Eof(Eof),
    Bad(String),
    Unsupported(String),
}

impl From<Eof> for ConfigError {
    fn from(e: Eof) -> Self {
        ConfigError::Eof(e)
    }
}

fn bad(detail: impl Into<String>) -> ConfigError {
    ConfigError::Bad(detail.into())
}

/// Reads the records of an MQCI stream's data.
pub(crate) fn parse_config(data: &[u8]) -> Result<Config, ConfigError> {
    let b = Bytes(data);
    let mut at = 0usize;
    let mut scin: Option<Config> = None;
    let mut filegroups: Vec<(u32, String)> = Vec::new();
    let mut files: Vec<(DatabaseFile, u32)> = Vec::new();
    while at + 8 <= data.len() {
        let tag: [u8; 4] = b.array(at)?;
        let size = usize::try_from(b.u32(at + 4)?).map_err(|_| bad("record size out of range"))?;
        if size < 8 {
            // Zero padding after the last record.
            if tag == [0; 4] {
                break;
            }
            return Err(bad(format!("record at byte {at} has size {size}")));
        }
        let rec = Bytes(b.slice(at, size)?);
        match tag {
            SCIN if scin.is_none() => scin = Some(parse_scin(rec)?),
            _ if scin.is_none() => {
                return Err(bad("the configuration does not start with an SCIN record"));
            }
            SFGI => filegroups.push((rec.u32(0x0C)?, rec_string(rec, 0x10)?.unwrap_or_default())),
            SFIN => files.push(parse_sfin(rec)?),
            _ => {}
        }
        at += size;
    }
    let mut config = scin.ok_or_else(|| bad("no SCIN record"))?;
    config.files = files
        .into_iter()
        .map(|(mut f, group_id)| {
            if f.file_type != 'L' {
                f.filegroup = filegroups
                    .iter()
                    .find(|(id, _)| *id == group_id)
                    .map(|(_, n)| n.clone());
            }
            f
        })
        .collect();
    Ok(config)
}

/// A string in a record: (u16 size, u16 offset from the record start) at `field`.
fn rec_string(rec: Bytes<'_>, field: usize) -> Result<Option<String>, Eof> {
    let size = usize::from(rec.u16(field)?);
    let offset = usize::from(rec.u16(field + 2)?);
    if size == 0 {
        return Ok(None);
    }
    rec.utf16(offset, size)
}

fn parse_scin(rec: Bytes<'_>) -> Result<Config, ConfigError> {
    // The fixed part ends where the first string begins; older versions have shorter ones.
    let name_offset = usize::from(rec.u16(0x6A)?);
    if name_offset < SCIN_MIN_FIXED {
        return Err(bad(format!(
            "SCIN fixed part of {name_offset} bytes is too short"
        )));
    }
    let letter = rec.u8(0x57)?;
    let backup_type = BackupType::from_letter(letter).ok_or_else(|| {
        ConfigError::Unsupported(format!(
            "backup type letter {:?} is not one SQL Server writes",
            char::from(letter)
        ))
    })?;
    let collation_raw: [u8; 5] = rec.array(0xD8)?;
    let status = rec.u32(0xF4)?;
    Ok(Config {
        flags: rec.u32(0x08)?,
        software_version: SqlVersion {
            build: rec.u16(0x18)?,
            minor: rec.u8(0x1A)?,
            major: rec.u8(0x1B)?,
        },
        first_lsn: lsn(rec, 0x20)?,
        last_lsn: lsn(rec, 0x2A)?,
        checkpoint_lsn: lsn(rec, 0x34)?,
        database_backup_lsn: lsn(rec, 0x3E)?,
        backup_start: date(rec.array(0x4D)?).ok_or_else(|| bad("invalid backup start date"))?,
        backup_finish: date(rec.array(0x52)?).ok_or_else(|| bad("invalid backup finish date"))?,
        backup_type,
        compatibility_level: rec.u8(0x5B)?,
        database_version: rec.u16(0x5E)?,
        backup_size: rec.u64(0x60)?,
        compressed_backup_size: if name_offset >= SCIN_COMPRESSED_SIZE + 8 {
            Some(rec.u64(SCIN_COMPRESSED_SIZE)?)
        } else {
            None
        },
        database_name: rec_string(rec, 0x68)?.ok_or_else(|| bad("no database name"))?,
        server_name: rec_string(rec, 0x6C)?.unwrap_or_default(),
        collation: collation::from_tds(collation_raw),
        recovery_model: Some(recovery_model(status)),
        differential_base_lsn: lsn(rec, 0x104)?,
        differential_base_guid: rec.guid(0x110)?,
        files: Vec::new(),
    })
}

/// Infers the recovery model from the sysdatabases-style status bits: 8 = trunc. log on chkpt
/// (SIMPLE), 4 = select into/bulkcopy (BULK_LOGGED), otherwise FULL.
fn recovery_model(status: u32) -> RecoveryModel {
    if status & 8 != 0 {
        RecoveryModel::Simple
    } else if status & 4 != 0 {
        RecoveryModel::BulkLogged
    } else {
        RecoveryModel::Full
    }
}

fn parse_sfin(rec: Bytes<'_>) -> Result<(DatabaseFile, u32), ConfigError> {
    let file_type = match rec.u32(0x1C)? {
        1 => 'D',
        2 => 'L',
        3 => 'S',
        4 => 'F',
        other => return Err(bad(format!("file type {other} is not known"))),
    };
    let file = DatabaseFile {
        logical_name: rec_string(rec, 0x30)?.unwrap_or_default(),
        physical_name: rec_string(rec, 0x34)?.unwrap_or_default(),
        file_type,
        filegroup: None,
        file_id: rec.u32(0x14)?,
        size: rec.u64(0x28)?,
        max_size: rec.u64(0x56)?,
    };
    Ok((file, rec.u32(0x24)?))
}

/// An LSN: u32 VLF sequence, u32 block, u16 slot.
pub(crate) fn lsn(b: Bytes<'_>, at: usize) -> Result<Lsn, Eof> {
    Ok(Lsn {
        vlf: b.u32(at)?,
        block: b.u32(at + 4)?,
        slot: b.u16(at + 8)?,
    })
}

/// An MTF_DATE_TIME: 40 bits, big-endian packed year(14) month(4) day(5) hour(5) minute(6)
/// second(6). `Some(None)` for the all-zero "no date"; `None` when the fields are not a date.
pub(crate) fn date(raw: [u8; 5]) -> Option<Option<PrimitiveDateTime>> {
    let v = raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if v == 0 {
        return Some(None);
    }
    let second = (v & 0x3F) as u8;
    let minute = ((v >> 6) & 0x3F) as u8;
    let hour = ((v >> 12) & 0x1F) as u8;
    let day = ((v >> 17) & 0x1F) as u8;
    let month = ((v >> 22) & 0x0F) as u8;
    let year = ((v >> 26) & 0x3FFF) as i32;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(Some(PrimitiveDateTime::new(date, time)))
}

/// Packs a date the way [`date`] reads it (used by the writer).
pub(crate) fn pack_date(d: Option<PrimitiveDateTime>) -> [u8; 5] {
    let Some(d) = d else { return [0; 5] };
    let v = (u64::from(d.year() as u16 & 0x3FFF) << 26)
        | (u64::from(u8::from(d.month())) << 22)
        | (u64::from(d.day()) << 17)
        | (u64::from(d.hour()) << 12)
        | (u64::from(d.minute()) << 6)
        | u64::from(d.second());
    let b = v.to_be_bytes();
    [b[3], b[4], b[5], b[6], b[7]]
}

fn corrupt(d: &Dblk<'_>, detail: &str) -> BlockError {
    BlockError::Corrupt {
        tag: d.tag,
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_reject_nonsense() {
        let d = PrimitiveDateTime::new(
            Date::from_calendar_date(2018, Month::December, 21).unwrap(),
            Time::from_hms(11, 26, 31).unwrap(),
        );
        assert_eq!(date(pack_date(Some(d))), Some(Some(d)));
        assert_eq!(date([0; 5]), Some(None));
        // Month 15 is not a month.
        assert_eq!(date([0, 0x03, 0xC0, 0, 0]), None);
    }

    #[test]
    fn recovery_model_follows_status_bits() {
        assert_eq!(recovery_model(0x10008), RecoveryModel::Simple);
        assert_eq!(recovery_model(0x4), RecoveryModel::BulkLogged);
        assert_eq!(recovery_model(0x10000), RecoveryModel::Full);
    }

    #[test]
    fn config_must_start_with_scin() {
        let mut rec = b"SFGI".to_vec();
        rec.extend_from_slice(&16u32.to_le_bytes());
        rec.extend_from_slice(&[0; 8]);
        assert!(matches!(parse_config(&rec), Err(ConfigError::Bad(_))));
    }
}
