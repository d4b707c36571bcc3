//! The backup writer: valid MTF backup files (plain, not compressed) for any facts, so tests and
//! the demo can build cases no fixture covers (tail-log flags, copy-only, stripes, long chains,
//! files still being written). What it writes the reader reads back exactly.
//!
//! Layout, as SQL Server writes it: `TAPE`, `SFMB`, then per set `SSET`, `VOLB`, `MSCI` (the
//! opening MQCI copy), optional padded data (`MSDA` or `MSTL`), `MSLS` (the closing copy),
//! `SFMB`, `ESET`, `ESET`, `SFMB`. Blocks are padded with `SPAD` to 1 KiB multiples; header
//! checksums are set. Pure: bytes out, no I/O.

use super::block::{
    DBLK_HEADER_LEN, ESET, MQCI, MSCI, MSDA, MSLS, MSTL, SFMB, SPAD, SSET, TAPE, VOLB,
};
use super::collation::to_tds;
use super::cursor::xor16;
use super::facts::{BackupFile, BackupSet, BackupType, DatabaseFile, Lsn, RecoveryModel};
use super::header::pack_date;

/// How to write a file beyond its facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Bytes of (zero) data pages or log in each set, to give the file a realistic size.
    pub data_len: usize,
    /// Write the closing header copy and the end blocks. `false` leaves them out, as a backup
    /// still being written looks; the reader then says `complete: Some(false)`.
    pub complete: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            data_len: 0,
            complete: true,
        }
    }
}

/// Blocks end on multiples of the format logical block (1 KiB).
const FLB: usize = 1024;
const RAID: [u8; 4] = *b"RAID";
const MQDA: [u8; 4] = *b"MQDA";
const MQTL: [u8; 4] = *b"MQTL";
/// MTF vendor id SQL Server writes (SoftwareVendorId 4608).
const VENDOR: u16 = 0x1200;
/// SCIN fixed part of SQL Server 2012 and later.
const SCIN_FIXED: usize = 0x190;
/// The software name in the media header.
const SOFTWARE_NAME: &str = "Microsoft SQL Server";

/// Writes a backup file holding `file`'s media and sets.
///
/// `file.complete` is ignored (use [`WriteOptions::complete`]); `media.compressed` is ignored
/// (the writer writes plain MTF). Each set's `backup_finish`, `backup_size` and
/// `compressed_backup_size` go into the closing copy only, as SQL Server does.
pub fn write(file: &BackupFile, options: &WriteOptions) -> Vec<u8> {
    let block_size = usize::try_from(file.media.block_size.max(512)).unwrap_or(512);
    let mut out = Vec::new();
    tape(&mut out, file, block_size);
    filemark(&mut out, block_size);
    let last = file.backup_sets.len().saturating_sub(1);
    for (i, set) in file.backup_sets.iter().enumerate() {
        let set_start = out.len();
        sset(&mut out, set);
        volb(&mut out, set);
        config_block(&mut out, MSCI, set, false, set_start);
        data(&mut out, set, options.data_len, set_start);
        if i == last && !options.complete {
            break;
        }
        config_block(&mut out, MSLS, set, true, set_start);
        filemark(&mut out, block_size);
        eset(&mut out, set, true);
        eset(&mut out, set, false);
        filemark(&mut out, block_size);
    }
    out
}

/// Little-endian field writes into a growing buffer (blocks and MQCI records alike).
trait Fields {
    fn buf(&mut self) -> &mut Vec<u8>;

    fn put(&mut self, at: usize, v: &[u8]) {
        let buf = self.buf();
        if buf.len() < at + v.len() {
            buf.resize(at + v.len(), 0);
        }
        buf[at..at + v.len()].copy_from_slice(v);
    }

    fn u16(&mut self, at: usize, v: u16) {
        self.put(at, &v.to_le_bytes());
    }

    fn u32(&mut self, at: usize, v: u32) {
        self.put(at, &v.to_le_bytes());
    }

    fn u64(&mut self, at: usize, v: u64) {
        self.put(at, &v.to_le_bytes());
    }
}

impl Fields for Block {
    fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl Fields for Record {
    fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

/// Builds one DBLK: a 52-byte header, a fixed part, strings, then streams, padded to `pad_to`.
struct Block {
    bytes: Vec<u8>,
}

impl Block {
    fn new(tag: [u8; 4], fixed_len: usize) -> Block {
        let mut bytes = vec![0u8; fixed_len.max(DBLK_HEADER_LEN)];
        bytes[..4].copy_from_slice(&tag);
        bytes[10] = 14; // OS id: Windows NT
        bytes[11] = 1;
        bytes[48] = 2; // strings are UTF-16LE
        Block { bytes }
    }

    /// Appends raw bytes and points the MTF_TAPE_ADDRESS at `field` to them.
    fn address(&mut self, field: usize, data: &[u8]) {
        if data.is_empty() {
            self.u32(field, 0);
            return;
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.u16(field, data.len() as u16);
        self.u16(field + 2, at as u16);
    }

    /// Appends a UTF-16LE string and points the address at `field` to it.
    fn string(&mut self, field: usize, s: Option<&str>) {
        self.address(field, &utf16(s.unwrap_or("")));
    }

    /// Ends the fixed part: streams start here, 4-byte aligned.
    fn start_streams(&mut self) {
        let first = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(first, 0);
        self.u16(8, first as u16);
    }

    fn stream(&mut self, id: [u8; 4], media_attrs: u16, data: &[u8]) {
        let at = self.bytes.len();
        let mut h = [0u8; 22];
        h[..4].copy_from_slice(&id);
        h[6..8].copy_from_slice(&media_attrs.to_le_bytes());
        h[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        let c = xor16(&h[..20]);
        h[20..].copy_from_slice(&c.to_le_bytes());
        self.bytes.extend_from_slice(&h);
        self.bytes.extend_from_slice(data);
        let aligned = (self.bytes.len() - at).next_multiple_of(4) + at;
        self.bytes.resize(aligned, 0);
    }

    /// Pads with an SPAD stream to a multiple of `unit`, sets the checksum, and appends the block.
    fn finish(mut self, out: &mut Vec<u8>, unit: usize) {
        let min_end = self.bytes.len() + 22;
        let end = min_end.next_multiple_of(unit);
        let pad = vec![0u8; end - min_end];
        self.stream(SPAD, 0, &pad);
        self.seal(out);
    }

    /// Sets the header checksum and appends the block as it is.
    fn seal(mut self, out: &mut Vec<u8>) {
        self.bytes[50..52].fill(0);
        let c = xor16(&self.bytes[..50]);
        self.bytes[50..52].copy_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&self.bytes);
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn tape(out: &mut Vec<u8>, file: &BackupFile, block_size: usize) {
    let m = &file.media;
    let mut b = Block::new(TAPE, 94);
    b.u32(4, 0x0003_0000);
    b.u32(52, m.media_family_id);
    b.u32(56, 5);
    b.u16(60, 1);
    b.u16(62, if m.has_media_password { 5 } else { 0 });
    b.u16(64, (block_size / 512) as u16);
    b.u16(66, 3);
    b.u16(84, FLB as u16);
    b.u16(86, VENDOR);
    b.bytes[93] = 1;
    b.string(68, m.media_name.as_deref());
    b.string(72, m.media_description.as_deref());
    // A password hash stands where SQL Server keeps one; only its presence is read.
    let password = if m.has_media_password {
        vec![0xA5; 16]
    } else {
        Vec::new()
    };
    b.address(76, &password);
    b.string(80, Some(SOFTWARE_NAME));
    b.start_streams();
    let mut raid = Vec::with_capacity(32);
    raid.extend_from_slice(&m.media_set_guid.to_bytes_le());
    raid.extend_from_slice(&0xF000_00ADu32.to_le_bytes());
    raid.extend_from_slice(&m.family_count.to_le_bytes());
    raid.extend_from_slice(&1u16.to_le_bytes());
    raid.extend_from_slice(&m.family_sequence.to_le_bytes());
    raid.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
    b.stream(RAID, 0, &raid);
    b.finish(out, block_size.max(FLB));
}

fn filemark(out: &mut Vec<u8>, block_size: usize) {
    let mut b = Block::new(SFMB, block_size);
    b.u32(4, 0x8000_0000);
    b.u16(8, block_size as u16);
    b.seal(out);
}

fn sset(out: &mut Vec<u8>, set: &BackupSet) {
    let pba = out.len() as u64;
    let mut b = Block::new(SSET, 121);
    let differential = matches!(
        set.backup_type,
        BackupType::Differential | BackupType::DifferentialFile | BackupType::DifferentialPartial
    );
    b.u32(52, if differential { 8 } else { 4 });
    b.u16(60, VENDOR);
    b.u16(62, set.position);
    b.u64(80, pba);
    b.put(88, &pack_date(set.backup_start));
    b.bytes[93] = set.software_version.major;
    b.bytes[94] = set.software_version.minor;
    let mut os = set.backup_set_guid.to_bytes_le().to_vec();
    os.extend_from_slice(&[0; 5]);
    b.put(100, &os);
    b.u16(44, os.len() as u16);
    b.u16(46, 100);
    b.string(64, set.backup_name.as_deref());
    b.string(68, set.description.as_deref());
    b.string(76, set.user_name.as_deref());
    b.start_streams();
    b.finish(out, FLB);
}

fn volb(out: &mut Vec<u8>, set: &BackupSet) {
    let mut b = Block::new(VOLB, 73);
    b.u32(52, 2);
    b.string(56, Some("C:"));
    b.string(64, Some(&set.machine_name));
    b.put(68, &pack_date(set.backup_start));
    b.start_streams();
    b.finish(out, FLB);
}

fn config_block(out: &mut Vec<u8>, tag: [u8; 4], set: &BackupSet, closing: bool, set_start: usize) {
    let mut b = Block::new(tag, 56);
    b.u64(20, ((out.len() - set_start) / FLB) as u64);
    b.start_streams();
    b.stream(MQCI, 0, &mqci(set, closing));
    b.finish(out, FLB);
}

fn data(out: &mut Vec<u8>, set: &BackupSet, len: usize, set_start: usize) {
    if len == 0 {
        return;
    }
    let (tag, stream) = if set.backup_type == BackupType::Log {
        (MSTL, MQTL)
    } else {
        (MSDA, MQDA)
    };
    let mut b = Block::new(tag, 60);
    b.u64(20, ((out.len() - set_start) / FLB) as u64);
    b.start_streams();
    b.stream(stream, 0x2, &vec![0u8; len]);
    b.stream(stream, 0x6, &[]);
    b.finish(out, FLB);
}

fn eset(out: &mut Vec<u8>, set: &BackupSet, with_catalog: bool) {
    let mut b = Block::new(ESET, 88);
    b.u16(78, set.position);
    b.put(80, &pack_date(set.backup_finish.or(set.backup_start)));
    b.start_streams();
    if with_catalog {
        b.stream(*b"OTCP", 0, &[0u8; 64]);
    }
    b.finish(out, FLB);
}

/// The MQCI stream: SCIN, then SFGI per filegroup and SFIN per file.
fn mqci(set: &BackupSet, closing: bool) -> Vec<u8> {
    let mut filegroups: Vec<&str> = Vec::new();
    for f in &set.files {
        if let Some(g) = f.filegroup.as_deref() {
            if f.file_type != 'L' && !filegroups.contains(&g) {
                filegroups.push(g);
            }
        }
    }
    let mut out = scin(set, closing);
    for (i, g) in filegroups.iter().enumerate() {
        let mut r = Record::new(*b"SFGI", 0x14);
        r.u32(0x0C, i as u32 + 1);
        r.string(0x10, g);
        r.finish(&mut out);
    }
    for f in &set.files {
        let group = f
            .filegroup
            .as_deref()
            .and_then(|g| filegroups.iter().position(|x| *x == g))
            .map_or(0, |i| i as u32 + 1);
        sfin(&mut out, f, if f.file_type == 'L' { 0 } else { group });
    }
    out
}

/// One MQCI record: `{tag, u32 size}` then a fixed part and strings.
struct Record {
    bytes: Vec<u8>,
}

impl Record {
    fn new(tag: [u8; 4], fixed_len: usize) -> Record {
        let mut bytes = vec![0u8; fixed_len];
        bytes[..4].copy_from_slice(&tag);
        Record { bytes }
    }

    fn lsn(&mut self, at: usize, l: Lsn) {
        self.u32(at, l.vlf);
        self.u32(at + 4, l.block);
        self.u16(at + 8, l.slot);
    }

    /// Appends a UTF-16LE string; the (size, offset) pair at `field` points to it.
    fn string(&mut self, field: usize, s: &str) {
        let data = utf16(s);
        let at = self.bytes.len();
        self.u16(field, data.len() as u16);
        self.u16(field + 2, if data.is_empty() { 0 } else { at as u16 });
        self.bytes.extend_from_slice(&data);
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        let size = self.bytes.len() as u32;
        self.u32(4, size);
        out.extend_from_slice(&self.bytes);
    }
}

fn scin(set: &BackupSet, closing: bool) -> Vec<u8> {
    let mut r = Record::new(*b"SCIN", SCIN_FIXED);
    r.u32(0x08, set.flags);
    r.u32(0x0C, 1);
    r.u32(0x10, 1);
    r.u16(0x18, set.software_version.build);
    r.bytes[0x1A] = set.software_version.minor;
    r.bytes[0x1B] = set.software_version.major;
    r.u32(0x1C, 9);
    r.lsn(0x20, set.first_lsn);
    r.lsn(0x2A, set.last_lsn);
    r.lsn(0x34, set.checkpoint_lsn);
    r.lsn(0x3E, set.database_backup_lsn.unwrap_or(Lsn::ZERO));
    r.put(0x4D, &pack_date(set.backup_start));
    if closing {
        r.put(0x52, &pack_date(set.backup_finish));
    }
    r.bytes[0x57] = set.backup_type.letter() as u8;
    let tds = to_tds(&set.collation);
    r.bytes[0x58] = tds[4];
    r.u16(0x59, 1);
    r.bytes[0x5B] = set.compatibility_level;
    r.u16(0x5C, 5);
    r.u16(0x5E, set.database_version);
    if closing {
        r.u64(0x60, set.backup_size.unwrap_or(0));
        r.u64(0x158, set.compressed_backup_size.unwrap_or(0));
    }
    r.u32(0x74, 1033);
    r.u32(0x78, 196_609);
    r.put(0xD8, &tds);
    let status = match set.recovery_model {
        Some(RecoveryModel::Simple) => 0x1_0008,
        Some(RecoveryModel::BulkLogged) => 0x1_0004,
        _ => 0x1_0000,
    };
    r.u32(0xF4, status);
    r.lsn(0x104, set.differential_base_lsn.unwrap_or(Lsn::ZERO));
    r.put(
        0x110,
        &set.differential_base_guid.unwrap_or_default().to_bytes_le(),
    );
    r.string(0x68, &set.database_name);
    r.string(0x6C, &set.server_name);
    let mut out = Vec::new();
    r.finish(&mut out);
    out
}

fn sfin(out: &mut Vec<u8>, f: &DatabaseFile, group: u32) {
    let mut r = Record::new(*b"SFIN", 0xCA);
    r.u32(0x08, 0x84);
    r.u32(0x10, 8192);
    r.u32(0x14, f.file_id);
    r.u32(0x18, (f.size / 8192) as u32);
    let kind = match f.file_type {
        'D' => 1,
        'L' => 2,
        'S' => 3,
        _ => 4,
    };
    r.u32(0x1C, kind);
    r.u32(0x20, 512);
    r.u32(0x24, group);
    r.u64(0x28, f.size);
    r.u64(0x56, f.max_size);
    r.string(0x30, &f.logical_name);
    r.string(0x34, &f.physical_name);
    r.finish(out);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use time::{Date, Month, PrimitiveDateTime, Time};
    use uuid::Uuid;

    use super::*;
    use crate::backup::facts::{Collation, Media, SqlVersion};
    use crate::backup::{self, Error, Tail, collation};

    fn lsn() -> impl Strategy<Value = Lsn> {
        (1u32.., any::<u32>(), any::<u16>()).prop_map(|(vlf, block, slot)| Lsn { vlf, block, slot })
    }

    fn guid() -> impl Strategy<Value = Uuid> {
        any::<u128>()
            .prop_filter("not nil", |g| *g != 0)
            .prop_map(Uuid::from_u128)
    }

    fn date() -> impl Strategy<Value = PrimitiveDateTime> {
        (1990i32..2100, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60).prop_map(
            |(y, mo, d, h, mi, s)| {
                let month = Month::try_from(mo).expect("1..=12 is a month");
                PrimitiveDateTime::new(
                    Date::from_calendar_date(y, month, d).expect("a day 1..=28 exists"),
                    Time::from_hms(h, mi, s).expect("a valid time"),
                )
            },
        )
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_\\\\ .-]{1,40}"
    }

    fn opt_name() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(name())
    }

    fn collation() -> impl Strategy<Value = Collation> {
        prop_oneof![
            Just([0x09, 0x04, 0xd0, 0x00, 0x34]),
            Just([0x09, 0x04, 0xd0, 0x00, 0x00]),
            Just([0x0a, 0x0c, 0xd0, 0x00, 0x00]),
            any::<[u8; 5]>(),
        ]
        .prop_map(collation::from_tds)
    }

    fn file() -> impl Strategy<Value = DatabaseFile> {
        (
            name(),
            name(),
            prop_oneof![Just('D'), Just('L'), Just('S'), Just('F')],
            opt_name(),
            1u32..1000,
            any::<u32>(),
            any::<u64>(),
        )
            .prop_map(
                |(logical_name, physical_name, file_type, group, file_id, pages, max_size)| {
                    DatabaseFile {
                        logical_name,
                        physical_name,
                        file_type,
                        filegroup: if file_type == 'L' { None } else { group },
                        file_id,
                        size: u64::from(pages) * 8192,
                        max_size,
                    }
                },
            )
    }

    prop_compose! {
        fn set(position: u16)(
            backup_type in prop_oneof![
                Just(BackupType::Full), Just(BackupType::Differential), Just(BackupType::Log),
                Just(BackupType::File), Just(BackupType::DifferentialFile),
                Just(BackupType::Partial), Just(BackupType::DifferentialPartial),
            ],
            names in (name(), name(), name(), opt_name(), opt_name(), opt_name()),
            version in (9u8..=17, any::<u8>(), any::<u16>(), 80u8..=170, any::<u16>()),
            lsns in (lsn(), lsn(), lsn(), proptest::option::of(lsn()), proptest::option::of(lsn())),
            guids in (guid(), proptest::option::of(guid())),
            dates in (date(), date()),
            sizes in (any::<u64>(), any::<u64>()),
            flags in any::<u32>(),
            collation in collation(),
            recovery_model in prop_oneof![Just(RecoveryModel::Full), Just(RecoveryModel::Simple), Just(RecoveryModel::BulkLogged)],
            files in proptest::collection::vec(file(), 0..6),
        ) -> BackupSet {
            let differential = matches!(backup_type, BackupType::Differential | BackupType::DifferentialFile | BackupType::DifferentialPartial);
            BackupSet {
                position,
                backup_type,
                database_name: names.0,
                server_name: names.1,
                machine_name: names.2,
                backup_name: names.3,
                description: names.4,
                user_name: names.5,
                software_version: SqlVersion { major: version.0, minor: version.1, build: version.2 },
                compatibility_level: version.3,
                database_version: version.4,
                first_lsn: lsns.0,
                last_lsn: lsns.1,
                checkpoint_lsn: lsns.2,
                database_backup_lsn: lsns.3,
                differential_base_lsn: if differential { lsns.4 } else { None },
                differential_base_guid: if differential { guids.1 } else { None },
                backup_set_guid: guids.0,
                backup_start: Some(dates.0),
                backup_finish: Some(dates.1),
                backup_size: Some(sizes.0),
                compressed_backup_size: Some(sizes.1),
                has_checksums: flags & BackupSet::FLAG_HAS_CHECKSUMS != 0,
                flags,
                collation,
                recovery_model: Some(recovery_model),
                files,
            }
        }
    }

    prop_compose! {
        fn backup_file()(
            block_size in prop_oneof![Just(512u32), Just(4096u32)],
            family in (1u16..=64).prop_flat_map(|n| (Just(n), 1..=n)),
            media_set_guid in guid(),
            media_family_id in any::<u32>(),
            has_media_password in any::<bool>(),
            media_name in opt_name(),
            media_description in opt_name(),
            set in set(1),
        ) -> BackupFile {
            BackupFile {
                media: Media {
                    compressed: false,
                    block_size,
                    family_count: family.0,
                    family_sequence: family.1,
                    media_set_guid,
                    media_family_id,
                    has_media_password,
                    media_name,
                    media_description,
                },
                backup_sets: vec![set],
                complete: Some(true),
            }
        }
    }

    fn read_back(bytes: &[u8]) -> Result<BackupFile, Error> {
        let head = &bytes[..bytes.len().min(backup::HEAD_LEN)];
        let tail = &bytes[bytes.len() - bytes.len().min(backup::TAIL_LEN)..];
        backup::read(
            head,
            Some(Tail {
                bytes: tail,
                file_size: bytes.len() as u64,
            }),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_fact_round_trips(file in backup_file(), data_len in prop_oneof![Just(0usize), 1usize..200_000]) {
            let bytes = write(&file, &WriteOptions { data_len, complete: true });
            prop_assert_eq!(read_back(&bytes)?, file);
        }

        #[test]
        fn an_unfinished_file_reads_as_incomplete_with_its_opening_facts(file in backup_file()) {
            let bytes = write(&file, &WriteOptions { data_len: 4096, complete: false });
            let got = read_back(&bytes)?;
            let mut want = file.clone();
            want.complete = Some(false);
            for s in &mut want.backup_sets {
                s.backup_finish = None;
                s.backup_size = None;
                s.compressed_backup_size = None;
            }
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn several_sets_in_one_file_are_read_in_order() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let sets: Vec<BackupSet> = (1..=3)
            .map(|p| set(p).new_tree(&mut runner).expect("a set").current())
            .collect();
        let mut file = backup_file()
            .new_tree(&mut runner)
            .expect("a file")
            .current();
        file.backup_sets = sets;
        let bytes = write(&file, &WriteOptions::default());
        let got = read_back(&bytes).expect("reads back");
        assert_eq!(got.complete, Some(true));
        assert_eq!(got.backup_sets.len(), 3);
        for (g, w) in got.backup_sets.iter().zip(&file.backup_sets) {
            assert_eq!(g.position, w.position);
            assert_eq!(g.backup_set_guid, w.backup_set_guid);
            assert_eq!(g.first_lsn, w.first_lsn);
            assert_eq!(g.files, w.files);
        }
        // The tail closes the last set.
        assert_eq!(
            got.backup_sets[2].backup_finish,
            file.backup_sets[2].backup_finish
        );
    }

    #[test]
    fn sets_beyond_the_head_make_the_file_unsupported_not_misread() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let mut file = backup_file()
            .new_tree(&mut runner)
            .expect("a file")
            .current();
        file.backup_sets = (1..=2)
            .map(|p| set(p).new_tree(&mut runner).expect("a set").current())
            .collect();
        let bytes = write(
            &file,
            &WriteOptions {
                data_len: 100_000,
                complete: true,
            },
        );
        let err = read_back(&bytes).expect_err("set 2 lies beyond the head");
        assert!(
            matches!(&err, Error::Unsupported { what } if what.contains("set 2")),
            "{err}"
        );
        // The head alone still lists the first set.
        let head = backup::read(&bytes[..backup::HEAD_LEN], None).expect("head reads");
        assert_eq!(head.backup_sets.len(), 1);
    }

    #[test]
    fn the_sample_is_what_the_reader_reads_from_a_real_file() {
        // The writer's block layout matches a real 512-byte-block file's: TAPE, SFMB at 0x400,
        // SSET at 0x600.
        let mut runner = proptest::test_runner::TestRunner::default();
        let mut file = backup_file()
            .new_tree(&mut runner)
            .expect("a file")
            .current();
        file.media.block_size = 512;
        let bytes = write(&file, &WriteOptions::default());
        assert_eq!(&bytes[0..4], b"TAPE");
        assert_eq!(&bytes[0x400..0x404], b"SFMB");
        assert_eq!(&bytes[0x600..0x604], b"SSET");
        assert_eq!(bytes.len() % 512, 0);
    }
}
