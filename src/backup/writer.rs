//! The backup writer: valid MTF backup files (plain or `MSSQLBAK`-compressed) for any facts, so
//! tests and the demo can build cases no fixture covers (tail-log flags, copy-only, stripes, long
//! chains, files still being written, several sets in one file). What it writes the reader reads
//! back exactly.
//!
//! Layout, as SQL Server writes it: `TAPE`, `SFMB`, then per set `SSET`, `VOLB`, `MSCI` (the
//! opening MQCI copy), optional padded data (`MSDA` or `MSTL`), `MSLS` (the closing copy),
//! `SFMB`, `ESET`, `ESET`, `SFMB`. Blocks are padded with `SPAD` to 1 KiB multiples; header
//! checksums are set. Pure: bytes out, no I/O.
//!
//! [`append`] and [`append_compressed`] add a set to an existing file the way
//! `BACKUP ... WITH NOINIT` does: the media header stays, the new set starts right after the
//! previous set's closing filemark, and its number (SSET +62, ESET +78) is one more than the
//! file's last. That much is in `backup-format.md` (sets 1..n repeat `SSET`…`ESET`). What no
//! fixture shows, and is therefore a model choice, is marked "model choice:" below.

use super::block::{
    DBLK_HEADER_LEN, ESET, MQCI, MSCI, MSDA, MSLS, MSTL, SFMB, SPAD, SSET, TAPE, VOLB,
};
use super::collation::to_tds;
use super::cursor::xor16;
use super::facts::{BackupFile, BackupSet, BackupType, DatabaseFile, Lsn, RecoveryModel};
use super::header::pack_date;
use super::{Error, Tail};

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
/// `file.complete` and `file.set_count` are ignored (use [`WriteOptions::complete`]);
/// `media.compressed` is ignored (this writes plain MTF; [`write_compressed`] writes the
/// `MSSQLBAK` container). Each set's `backup_finish`, `backup_size` and `compressed_backup_size`
/// go into the closing copy only, as SQL Server does.
pub fn write(file: &BackupFile, options: &WriteOptions) -> Vec<u8> {
    let block_size = block_size(file);
    let mut out = Vec::new();
    tape(&mut out, file, block_size);
    filemark(&mut out, block_size);
    let last = file.backup_sets.len().saturating_sub(1);
    for (i, set) in file.backup_sets.iter().enumerate() {
        write_set(
            &mut out,
            set,
            block_size,
            options.data_len,
            i < last || options.complete,
        );
    }
    out
}

fn block_size(file: &BackupFile) -> usize {
    usize::try_from(file.media.block_size.max(512)).unwrap_or(512)
}

/// Appends one set's blocks; without `closed`, it stops after the data, as a set still being
/// written looks.
fn write_set(out: &mut Vec<u8>, set: &BackupSet, block_size: usize, data_len: usize, closed: bool) {
    let set_start = out.len();
    sset(out, set);
    volb(out, set);
    config_block(out, MSCI, set, false, set_start);
    data(out, set, data_len, set_start);
    if !closed {
        return;
    }
    config_block(out, MSLS, set, true, set_start);
    filemark(out, block_size);
    eset(out, set, true);
    eset(out, set, false);
    filemark(out, block_size);
}

/// Why a set cannot be appended to a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The existing bytes are not a backup the reader can read.
    #[error("the file to append to does not read as a backup: {0}")]
    Unreadable(#[from] Error),
    /// The existing file's last set is not closed: SQL Server appends after a closing filemark.
    #[error("the file to append to is not complete (its last set has no end blocks)")]
    Incomplete,
    /// The file already holds 65,535 sets.
    #[error("the file already holds the most sets a set number can count")]
    Full,
    /// A compressed set appended to a plain file, or the other way round.
    #[error("the file to append to is {0}")]
    Container(&'static str),
}

/// The facts of the file to append to and the number the next set gets.
fn next_position(existing: &[u8]) -> Result<(BackupFile, u16), AppendError> {
    let file = super::read(
        existing,
        Some(Tail {
            bytes: existing,
            file_size: existing.len() as u64,
        }),
    )?;
    if file.complete != Some(true) {
        return Err(AppendError::Incomplete);
    }
    let count = u16::try_from(file.known_set_count()).map_err(|_| AppendError::Full)?;
    let next = count.checked_add(1).ok_or(AppendError::Full)?;
    Ok((file, next))
}

/// Appends `set` to a plain backup file as `BACKUP ... WITH NOINIT` does: same media header,
/// the new set right after the last set's closing filemark, numbered one more than the file's
/// last set (`set.position` is ignored).
///
/// # Errors
/// The existing bytes are not a complete plain backup.
pub fn append(
    existing: &[u8],
    set: &BackupSet,
    options: &WriteOptions,
) -> Result<Vec<u8>, AppendError> {
    let (file, position) = next_position(existing)?;
    if file.media.compressed {
        return Err(AppendError::Container("compressed (use append_compressed)"));
    }
    let mut set = set.clone();
    set.position = position;
    let mut out = existing.to_vec();
    write_set(
        &mut out,
        &set,
        block_size(&file),
        options.data_len,
        options.complete,
    );
    Ok(out)
}

/// Writes a `WITH COMPRESSION` backup: the file [`write`] would write, in the `MSSQLBAK`
/// container. A file with several sets is written as its first set with the others appended
/// ([`append_compressed`]), as SQL Server would have written it.
pub fn write_compressed(file: &BackupFile, options: &WriteOptions) -> Vec<u8> {
    let Some((first, rest)) = file.backup_sets.split_first() else {
        let plain = write(file, options);
        return compressed_writer::container(&plain, 0);
    };
    let mut one = file.clone();
    one.backup_sets = vec![first.clone()];
    let first_options = WriteOptions {
        data_len: options.data_len,
        complete: options.complete || !rest.is_empty(),
    };
    let plain = write(&one, &first_options);
    let mut out = compressed_writer::container(&plain, set_constant(first));
    let last = rest.len().saturating_sub(1);
    for (i, set) in rest.iter().enumerate() {
        let set_options = WriteOptions {
            data_len: options.data_len,
            complete: i < last || options.complete,
        };
        match append_compressed(&out, set, &set_options) {
            Ok(next) => out = next,
            // Only reachable if the writer wrote something its reader refuses: keep what there is.
            Err(_) => break,
        }
    }
    out
}

/// Appends `set` to a compressed (`MSSQLBAK`) backup file as `BACKUP ... WITH NOINIT,
/// COMPRESSION` would, numbered one more than the file's last set (`set.position` is ignored).
///
/// Model choice (no fixture holds an appended compressed set): the container header is left as
/// it is, and the new set's chunks follow the previous set's index record and zero fill, closed
/// by an index record of their own. The reader does not depend on this: it lists the first set
/// from the head and the last from the chunks it finds in the tail.
///
/// # Errors
/// The existing bytes are not a complete compressed backup.
pub fn append_compressed(
    existing: &[u8],
    set: &BackupSet,
    options: &WriteOptions,
) -> Result<Vec<u8>, AppendError> {
    let (file, position) = next_position(existing)?;
    if !file.media.compressed {
        return Err(AppendError::Container("not compressed (use append)"));
    }
    let mut set = set.clone();
    set.position = position;
    // The new set's block addresses (SSET PBA) count bytes of the logical MTF stream.
    let mut logical = compressed_writer::unpack(existing)?;
    let start = logical.len();
    write_set(
        &mut logical,
        &set,
        block_size(&file),
        options.data_len,
        options.complete,
    );
    let mut out = existing.to_vec();
    compressed_writer::chunks(&mut out, &logical[start..], set_constant(&set));
    compressed_writer::close(&mut out);
    Ok(out)
}

/// The word the fixtures' chunk headers repeat for every chunk of one set (at +8): its meaning is
/// unknown, so any per-set value will do (model choice: the set GUID's low half).
fn set_constant(set: &BackupSet) -> u64 {
    set.backup_set_guid.as_u64_pair().1
}

/// The `MSSQLBAK` container around a plain MTF stream (see `compressed.rs` for the reader's side
/// and `backup-format.md` §7 for what the fixtures show).
mod compressed_writer {
    use super::super::block::Dblk;
    use super::super::compressed::{
        CHUNK, CHUNK_HEADER_LEN, HEADER_LEN, INDEX, MAGIC, PAD, PAD_HEADER_LEN, Record, expand,
        record,
    };
    use super::{AppendError, Error};

    /// Model choice: chunks of 32 KiB. SQL Server uses 64 KiB, but a chunk's compressed length is
    /// a u16, and the literal-only code below needs a byte per byte plus its 256-byte table.
    const CHUNK_LEN: usize = 32 * 1024;
    const SECTOR: usize = 512;
    /// Model choice: the index record written is 64 bytes (the fixtures' start with 64 bytes of
    /// fields; what follows them is not understood).
    const INDEX_LEN: usize = 64;

    /// The container for `plain` (TAPE block, first filemark, then the sets), one set's worth.
    pub(super) fn container(plain: &[u8], constant: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + plain.len() / 64 + 4096);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        // Model choice: the rest of the container header (a table the reader does not use) is zero.
        out.resize(HEADER_LEN, 0);
        // The TAPE block is the first chunk; the filemark after it is stored in clear at a
        // sector boundary, as in the fixtures (0x1E0: TAPE chunk, pad, 0x400: SFMB).
        let tape_len = Dblk::parse(plain, 0)
            .and_then(|d| d.end())
            .unwrap_or(plain.len().min(1024))
            .min(plain.len());
        chunk(&mut out, &plain[..tape_len], constant);
        let mut at = tape_len;
        if plain.get(at..at + 4) == Some(b"SFMB".as_slice()) {
            pad_to_sector(&mut out);
            let filemark_len = Dblk::parse(plain, at)
                .map(|d| usize::from(d.first_stream))
                .unwrap_or(SECTOR);
            // Stored as one sector whatever its size, as the 4 KiB-block fixtures store it.
            out.extend_from_slice(&plain[at..(at + SECTOR).min(plain.len())]);
            at += filemark_len;
        }
        chunks(&mut out, plain.get(at..).unwrap_or(&[]), constant);
        close(&mut out);
        out
    }

    /// Appends `plain` as chunks of at most [`CHUNK_LEN`].
    pub(super) fn chunks(out: &mut Vec<u8>, plain: &[u8], constant: u64) {
        for piece in plain.chunks(CHUNK_LEN) {
            chunk(out, piece, constant);
        }
    }

    /// One `0x21` chunk: {kind, size in 512-byte units, compressed length u16, u32 ?, u64 set
    /// word, u64 ?, u32 check?}. Model choice: the fields marked ? are zero (the reader does not
    /// read them).
    fn chunk(out: &mut Vec<u8>, plain: &[u8], constant: u64) {
        let payload = encode(plain);
        let mut h = [0u8; CHUNK_HEADER_LEN];
        h[0] = CHUNK;
        h[1] = u8::try_from(plain.len().div_ceil(SECTOR)).unwrap_or(u8::MAX);
        h[2..4].copy_from_slice(
            &u16::try_from(payload.len())
                .unwrap_or(u16::MAX)
                .to_le_bytes(),
        );
        h[8..16].copy_from_slice(&constant.to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&payload);
    }

    /// MS-XCA LZ77+Huffman with literals only: every byte value gets an 8-bit code (a complete
    /// canonical code, so byte `b` is coded as `b`), and the bit stream is read 16 bits at a time
    /// from little-endian words, most significant bit first, so each pair of bytes is stored
    /// swapped. Model choice: no LZ77 matches (SQL Server's encoder finds them; any MS-XCA
    /// decoder reads both), so the chunks are not smaller than their data.
    fn encode(plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + plain.len() + 4);
        // Code lengths, 4 bits per symbol: 8 for symbols 0..=255, none for the match symbols.
        out.resize(128, 0x88);
        out.resize(256, 0);
        for pair in plain.chunks(2) {
            out.push(pair.get(1).copied().unwrap_or(0));
            out.push(pair[0]);
        }
        // The decoder reads 32 bits ahead.
        out.extend_from_slice(&[0; 4]);
        out
    }

    /// A `0x24` pad record up to the next sector boundary (to the one after if the gap is
    /// shorter than the pad header).
    fn pad_to_sector(out: &mut Vec<u8>) {
        let mut end = out.len().next_multiple_of(SECTOR);
        if end - out.len() < PAD_HEADER_LEN && end != out.len() {
            end += SECTOR;
        }
        if end == out.len() {
            return;
        }
        let len = end - out.len() - PAD_HEADER_LEN;
        let mut h = [0u8; PAD_HEADER_LEN];
        h[0] = PAD;
        h[2..4].copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(&h);
        out.resize(end, 0);
    }

    /// The `0x2C` index record that ends a set's chunks, then zero fill to a sector boundary.
    /// Model choice: the index's content (which the reader does not use) is zero.
    pub(super) fn close(out: &mut Vec<u8>) {
        out.push(INDEX);
        out.resize(out.len() + INDEX_LEN - 1, 0);
        out.resize(out.len().next_multiple_of(SECTOR), 0);
    }

    /// The logical MTF stream of a compressed file: every set's chunks, across the index record
    /// (whose length is not known: a real one runs on for a few KiB) that closes each set. The
    /// next set's chunks start at the next sector that holds a chunk.
    pub(super) fn unpack(raw: &[u8]) -> Result<Vec<u8>, AppendError> {
        let mut logical = Vec::new();
        let mut at = HEADER_LEN;
        while at < raw.len() {
            match record(raw, at) {
                Ok((Record::End, _)) => {
                    let next = (at + 1).next_multiple_of(SECTOR);
                    match (next..raw.len()).step_by(SECTOR).find(|&p| {
                        raw[p] == CHUNK && matches!(record(raw, p), Ok((Record::Chunk { .. }, _)))
                    }) {
                        Some(p) => at = p,
                        None => break,
                    }
                }
                Ok((rec, next)) => {
                    expand(raw, at, rec, &mut logical, usize::MAX).map_err(|_| corrupt())?;
                    at = next;
                }
                Err(_) => return Err(corrupt()),
            }
        }
        Ok(logical)
    }

    fn corrupt() -> AppendError {
        AppendError::Unreadable(Error::Corrupt {
            block: "MSSQLBAK".into(),
            offset: 0,
            detail: "the compressed chunks do not unpack".into(),
        })
    }
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
                from_tail_only: false,
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
                set_count: Some(1),
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
            want.set_count = None;
            for s in &mut want.backup_sets {
                s.backup_finish = None;
                s.backup_size = None;
                s.compressed_backup_size = None;
            }
            prop_assert_eq!(got, want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the sets, sizes and container, an appended file lists its first set from the
        /// head and its last with every fact the closing copy holds, and counts two.
        #[test]
        fn an_appended_set_is_listed_and_counted(
            mut file in backup_file(),
            second in set(1),
            lens in (prop_oneof![Just(0usize), 1usize..300_000], prop_oneof![Just(0usize), 1usize..300_000]),
            compressed in any::<bool>(),
        ) {
            file.media.compressed = compressed;
            let first = WriteOptions { data_len: lens.0, complete: true };
            let bytes = if compressed { write_compressed(&file, &first) } else { write(&file, &first) };
            let next = WriteOptions { data_len: lens.1, complete: true };
            let two = if compressed {
                append_compressed(&bytes, &second, &next)
            } else {
                append(&bytes, &second, &next)
            }
            .expect("appends");
            let got = read_back(&two)?;
            prop_assert_eq!(got.set_count, Some(2));
            prop_assert_eq!(got.complete, Some(true));
            prop_assert_eq!(&got.media, &file.media);
            let (head, last) = (&got.backup_sets[0], got.backup_sets.last().expect("a set"));
            let want = &file.backup_sets[0];
            prop_assert_eq!(head.position, 1);
            prop_assert_eq!(head.backup_set_guid, want.backup_set_guid);
            prop_assert_eq!(&head.files, &want.files);
            prop_assert_eq!(head.first_lsn, want.first_lsn);
            prop_assert_eq!(last.position, 2);
            let mut want_last = second.clone();
            want_last.position = 2;
            if last.from_tail_only {
                want_last = seen_from_tail(want_last);
            }
            prop_assert_eq!(last, &want_last);
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

    fn sample_file(runner: &mut proptest::test_runner::TestRunner, sets: u16) -> BackupFile {
        let mut file = backup_file().new_tree(runner).expect("a file").current();
        file.backup_sets = (1..=sets)
            .map(|p| set(p).new_tree(runner).expect("a set").current())
            .collect();
        file.set_count = Some(sets);
        file
    }

    /// What the reader can know of a set read from its closing copy alone.
    fn seen_from_tail(mut set: BackupSet) -> BackupSet {
        set.machine_name = String::new();
        set.backup_name = None;
        set.description = None;
        set.user_name = None;
        set.backup_set_guid = Uuid::nil();
        set.from_tail_only = true;
        set
    }

    #[test]
    fn a_last_set_beyond_the_head_is_listed_from_its_closing_copy() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let file = sample_file(&mut runner, 2);
        let bytes = write(
            &file,
            &WriteOptions {
                data_len: 100_000,
                complete: true,
            },
        );
        let got = read_back(&bytes).expect("a two-set file reads");
        assert_eq!(got.set_count, Some(2));
        assert!(got.has_multiple_sets());
        assert_eq!(got.complete, Some(true));
        // The first from the head (without its closing copy, which is in neither read), the
        // last from the tail with every fact its closing copy holds.
        let mut first = file.backup_sets[0].clone();
        first.backup_finish = None;
        first.backup_size = None;
        first.compressed_backup_size = None;
        assert_eq!(got.backup_sets[0], first);
        assert_eq!(
            got.backup_sets[1],
            seen_from_tail(file.backup_sets[1].clone())
        );
        // The head alone lists the first set and cannot count.
        let head = backup::read(&bytes[..backup::HEAD_LEN], None).expect("head reads");
        assert_eq!(head.backup_sets.len(), 1);
        assert_eq!(head.set_count, None);
    }

    #[test]
    fn three_sets_list_the_first_and_last_and_count_three() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let file = sample_file(&mut runner, 3);
        let bytes = write(
            &file,
            &WriteOptions {
                data_len: 100_000,
                complete: true,
            },
        );
        let got = read_back(&bytes).expect("reads");
        assert_eq!(got.set_count, Some(3));
        assert_eq!(got.known_set_count(), 3);
        let positions: Vec<u16> = got.backup_sets.iter().map(|s| s.position).collect();
        assert_eq!(positions, [1, 3]);
    }

    #[test]
    fn append_adds_the_next_set_after_the_closing_filemark_like_noinit() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let mut file = sample_file(&mut runner, 1);
        file.media.block_size = 512;
        let options = WriteOptions {
            data_len: 100_000,
            complete: true,
        };
        let first = write(&file, &options);
        let mut second = set(9).new_tree(&mut runner).expect("a set").current();
        let appended = append(&first, &second, &options).expect("appends");
        // The first file is kept byte for byte; the new set starts where it ended.
        assert_eq!(&appended[..first.len()], &first[..]);
        assert_eq!(&appended[first.len()..first.len() + 4], b"SSET");
        // Numbered after the last set, whatever position the caller gave.
        assert_eq!(
            u16::from_le_bytes([appended[first.len() + 62], appended[first.len() + 63]]),
            2
        );
        // Its PBA is its byte offset in the file.
        assert_eq!(
            u64::from_le_bytes(
                appended[first.len() + 80..first.len() + 88]
                    .try_into()
                    .unwrap()
            ),
            first.len() as u64
        );
        let got = read_back(&appended).expect("reads");
        second.position = 2;
        assert_eq!(got.set_count, Some(2));
        assert_eq!(got.backup_sets[1], seen_from_tail(second.clone()));
        // A third set counts three.
        let third = append(&appended, &second, &options).expect("appends");
        assert_eq!(read_back(&third).expect("reads").set_count, Some(3));
        // Appending to a compressed file needs the compressed container.
        let compressed = write_compressed(&file, &options);
        assert!(matches!(
            append(&compressed, &second, &options),
            Err(AppendError::Container(_))
        ));
    }

    #[test]
    fn a_set_appended_and_still_being_written_counts_but_leaves_the_file_incomplete() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let file = sample_file(&mut runner, 1);
        let first = write(&file, &WriteOptions::default());
        let second = set(2).new_tree(&mut runner).expect("a set").current();
        let appending = append(
            &first,
            &second,
            &WriteOptions {
                data_len: 4096,
                complete: false,
            },
        )
        .expect("appends");
        let got = read_back(&appending).expect("reads");
        assert_eq!(got.complete, Some(false));
        assert_eq!(got.set_count, Some(2));
        assert!(got.has_multiple_sets());
        assert!(matches!(
            append(&appending, &second, &WriteOptions::default()),
            Err(AppendError::Incomplete)
        ));
    }

    #[test]
    fn compressed_files_with_one_and_with_two_sets_read_back() {
        let mut runner = proptest::test_runner::TestRunner::default();
        for block_size in [512, 4096] {
            let mut file = sample_file(&mut runner, 1);
            file.media.block_size = block_size;
            file.media.compressed = true;
            let options = WriteOptions {
                data_len: 200_000,
                complete: true,
            };
            let one = write_compressed(&file, &options);
            assert_eq!(&one[..8], b"MSSQLBAK");
            assert_eq!(read_back(&one).expect("one set reads"), file);
            let second = set(2).new_tree(&mut runner).expect("a set").current();
            let two = append_compressed(&one, &second, &options).expect("appends");
            assert_eq!(&two[..one.len()], &one[..]);
            let got = read_back(&two).expect("two sets read");
            assert!(got.media.compressed);
            assert_eq!(got.set_count, Some(2));
            assert_eq!(got.backup_sets.len(), 2);
            assert_eq!(
                got.backup_sets[0].backup_set_guid,
                file.backup_sets[0].backup_set_guid
            );
            assert_eq!(got.backup_sets[1], seen_from_tail(second));
            // Written in one go, the same two sets read the same.
            let mut both = file.clone();
            both.backup_sets.push(got.backup_sets[1].clone());
            both.backup_sets[1].from_tail_only = false;
            let again = read_back(&write_compressed(&both, &options)).expect("reads");
            assert_eq!(again.backup_sets, got.backup_sets);
            assert!(matches!(
                append_compressed(&write(&file, &options), &both.backup_sets[1], &options),
                Err(AppendError::Container(_))
            ));
        }
    }

    #[test]
    fn a_last_set_with_a_much_longer_file_list_than_the_first_is_still_listed() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let mut file = sample_file(&mut runner, 2);
        file.media.block_size = 512;
        file.backup_sets[0].files.truncate(1);
        file.backup_sets[1].files = (0..1500)
            .map(|i| DatabaseFile {
                logical_name: format!("data_{i}"),
                physical_name: format!("D:\\SQLData\\a_long_folder_name\\data_{i}.ndf"),
                file_type: 'D',
                filegroup: Some("PRIMARY".into()),
                file_id: i + 1,
                size: 8192,
                max_size: 0,
            })
            .collect();
        let bytes = write(
            &file,
            &WriteOptions {
                data_len: 300_000,
                complete: true,
            },
        );
        // Read as production reads it: the tail holds the end blocks but the long closing copy
        // of set 2 starts before it.
        let mut fetch = backup::Fetch::new(bytes.len() as u64);
        while let Some(r) = fetch.poll_read() {
            let start = r.offset as usize;
            fetch.handle_read(r, &bytes[start..(start + r.len).min(bytes.len())]);
        }
        let got = fetch.finish().result.expect("reads");
        assert_eq!(got.complete, Some(true));
        assert_eq!(got.set_count, Some(2));
        assert_eq!(got.backup_sets.len(), 1);
    }

    /// Rewrites the set number of every ESET in `bytes` from `from` to `to`, fixing checksums.
    fn renumber_esets(bytes: &mut [u8], from: u16, to: u16) -> usize {
        let mut changed = 0;
        for at in (0..bytes.len().saturating_sub(DBLK_HEADER_LEN)).step_by(512) {
            if &bytes[at..at + 4] == b"ESET" && bytes[at + 78..at + 80] == from.to_le_bytes() {
                bytes[at + 78..at + 80].copy_from_slice(&to.to_le_bytes());
                bytes[at + 50..at + 52].fill(0);
                let c = xor16(&bytes[at..at + 50]);
                bytes[at + 50..at + 52].copy_from_slice(&c.to_le_bytes());
                changed += 1;
            }
        }
        changed
    }

    #[test]
    fn a_set_number_that_lies_counts_sets_but_sizes_no_read() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let mut file = sample_file(&mut runner, 1);
        file.media.block_size = 512;
        let mut bytes = write(
            &file,
            &WriteOptions {
                data_len: 300_000,
                complete: true,
            },
        );
        // The end blocks claim the file's last set is number 65,535.
        assert_eq!(renumber_esets(&mut bytes, 1, u16::MAX), 2);
        let mut fetch = backup::Fetch::new(bytes.len() as u64);
        while let Some(r) = fetch.poll_read() {
            assert!(r.len <= backup::HEAD_LEN.max(backup::TAIL_LEN), "{r:?}");
            let start = r.offset as usize;
            fetch.handle_read(r, &bytes[start..(start + r.len).min(bytes.len())]);
        }
        let outcome = fetch.finish();
        assert_eq!(
            outcome.bytes_read,
            (backup::HEAD_LEN + backup::TAIL_LEN) as u64
        );
        // The closing copy is set 1's: the numbering lies, and the reader says so.
        let err = outcome.result.expect_err("a lying set number");
        assert!(
            matches!(&err, Error::Corrupt { detail, .. } if detail.contains("that of set 1")),
            "{err}"
        );
        // On a real two-set file a count that lies is the header's word: it sizes nothing and
        // can only make the file look like more sets, which blocks it.
        let second = set(2).new_tree(&mut runner).expect("a set").current();
        let big = WriteOptions {
            data_len: 300_000,
            complete: true,
        };
        let mut two = append(&write(&file, &big), &second, &big).expect("appends");
        assert_eq!(renumber_esets(&mut two, 2, 40_000), 2);
        let got = read_back(&two).expect("reads");
        assert_eq!(got.set_count, Some(40_000));
        assert_eq!(got.backup_sets.len(), 2);
        assert!(got.has_multiple_sets());
    }

    #[test]
    fn a_last_set_numbered_below_a_set_in_the_head_is_corrupt() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let mut file = sample_file(&mut runner, 2);
        file.media.block_size = 512;
        let mut bytes = write(
            &file,
            &WriteOptions {
                data_len: 0,
                complete: true,
            },
        );
        // Set 1 is in the head (numbered 3 there), the tail closes "set 2" from a copy whose
        // identity matches nothing the head holds.
        let sset_at = 0x600;
        assert_eq!(&bytes[sset_at..sset_at + 4], b"SSET");
        bytes[sset_at + 62..sset_at + 64].copy_from_slice(&3u16.to_le_bytes());
        bytes[sset_at + 50..sset_at + 52].fill(0);
        let c = xor16(&bytes[sset_at..sset_at + 50]);
        bytes[sset_at + 50..sset_at + 52].copy_from_slice(&c.to_le_bytes());
        let got = read_back(&bytes);
        // Set 2's opening copy is in the head too, so the tail closes it; the count is never
        // below the highest number seen.
        let got = got.expect("reads");
        assert_eq!(got.set_count, Some(3));
        let mut long = write(
            &file,
            &WriteOptions {
                data_len: 100_000,
                complete: true,
            },
        );
        long[sset_at + 62..sset_at + 64].copy_from_slice(&3u16.to_le_bytes());
        long[sset_at + 50..sset_at + 52].fill(0);
        let c = xor16(&long[sset_at..sset_at + 50]);
        long[sset_at + 50..sset_at + 52].copy_from_slice(&c.to_le_bytes());
        let err = read_back(&long).expect_err("set 2 cannot close after set 3");
        assert!(
            matches!(&err, Error::Corrupt { detail, .. } if detail.contains("higher number")),
            "{err}"
        );
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
