//! `WITH COMPRESSION` backups: the `MSSQLBAK` container. After a 0x1E0-byte header come records:
//! `0x21` chunks (28-byte header, then an MS-XCA LZ77+Huffman payload, decoded by
//! [`super::xpress`]), `0x24` pads, `SFMB` filemarks stored in clear, and a `0x2C` index near the
//! end. Concatenated, the chunks and filemarks give the plain MTF stream. The head is decompressed
//! only as far as the header needs: the last chunk it reaches is decoded only up to there.

use super::block::{Dblk, SFMB};
use super::cursor::Bytes;
use super::xpress;

/// The file starts with this.
pub(crate) const MAGIC: &[u8; 8] = b"MSSQLBAK";
/// Records start after the container header.
pub(crate) const HEADER_LEN: usize = 0x1E0;
/// A compressed chunk.
pub(crate) const CHUNK: u8 = 0x21;
/// Padding to a 512-byte boundary.
pub(crate) const PAD: u8 = 0x24;
/// The index record that closes the chunk sequence.
pub(crate) const INDEX: u8 = 0x2C;
/// Chunk header length.
pub(crate) const CHUNK_HEADER_LEN: usize = 28;
/// Pad header length.
pub(crate) const PAD_HEADER_LEN: usize = 24;
/// Filemarks are stored as one 512-byte sector whatever size their header claims.
const STORED_SFMB_LEN: usize = 512;
/// How many bytes of a chunk found by scanning are decoded to confirm it.
const PROBE_LEN: usize = 64;
/// Chunk sizes count units of 512 bytes.
const UNIT: usize = 512;
/// The largest chunk: 0x80 units (64 KiB), the size SQL Server compresses in (every chunk of the
/// compressed fixtures is at most this). A larger claim is corrupt, and refusing it bounds the
/// decoding a hostile chunk header can ask for.
const MAX_UNITS: usize = 0x80;

/// Why the container could not be unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnpackError {
    /// The raw bytes end inside a record that ends at `end`.
    Eof {
        /// Raw offset one past the record.
        end: usize,
    },
    /// A record is damaged.
    Corrupt {
        /// Raw offset of the record.
        at: usize,
        /// What is wrong.
        detail: String,
    },
}

/// One record of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// A compressed chunk: payload range and decompressed size.
    Chunk {
        payload: (usize, usize),
        size: usize,
    },
    /// A filemark stored in clear that stands for `size` logical bytes.
    Filemark { at: usize, size: usize },
    /// Padding.
    Pad,
    /// The index: no chunks follow.
    End,
}

/// Reads the record at raw offset `at`; returns it and where the next one starts.
pub(crate) fn record(raw: &[u8], at: usize) -> Result<(Record, usize), UnpackError> {
    let b = Bytes(raw);
    let eof = |e: super::cursor::Eof| UnpackError::Eof { end: e.end };
    let kind = b.u8(at).map_err(eof)?;
    match kind {
        CHUNK => {
            let units = usize::from(b.u8(at + 1).map_err(eof)?);
            let len = usize::from(b.u16(at + 2).map_err(eof)?);
            b.slice(at, CHUNK_HEADER_LEN).map_err(eof)?;
            let start = at + CHUNK_HEADER_LEN;
            b.slice(start, len).map_err(eof)?;
            if units == 0 {
                return Err(UnpackError::Corrupt {
                    at,
                    detail: "compressed chunk of zero bytes".into(),
                });
            }
            if units > MAX_UNITS {
                return Err(UnpackError::Corrupt {
                    at,
                    detail: format!(
                        "compressed chunk of {} bytes, more than the {} a chunk holds",
                        units * UNIT,
                        MAX_UNITS * UNIT
                    ),
                });
            }
            Ok((
                Record::Chunk {
                    payload: (start, len),
                    size: units * UNIT,
                },
                start + len,
            ))
        }
        PAD => {
            let len = usize::from(b.u16(at + 2).map_err(eof)?);
            let end = at + PAD_HEADER_LEN + len;
            b.slice(at, PAD_HEADER_LEN + len).map_err(eof)?;
            Ok((Record::Pad, end))
        }
        INDEX => Ok((Record::End, at)),
        _ if b.slice(at, 4).map_err(eof)? == SFMB => match Dblk::parse(raw, at) {
            Ok(d) => {
                b.slice(at, STORED_SFMB_LEN).map_err(eof)?;
                let size = usize::from(d.first_stream);
                // Some writers store the whole (4 KiB) filemark, zero-filled; others one sector.
                let rest_len = size.saturating_sub(STORED_SFMB_LEN);
                let stored = match b.slice(at + STORED_SFMB_LEN, rest_len) {
                    Ok(rest) if rest_len > 0 && rest.iter().all(|&x| x == 0) => size,
                    Ok(_) => STORED_SFMB_LEN,
                    Err(e) => {
                        let available = raw.get(at + STORED_SFMB_LEN..).unwrap_or(&[]);
                        if available.iter().all(|&x| x == 0) {
                            return Err(eof(e));
                        }
                        STORED_SFMB_LEN
                    }
                };
                Ok((Record::Filemark { at, size }, at + stored))
            }
            Err(super::block::BlockError::Eof(e)) => Err(eof(e)),
            Err(_) => Err(UnpackError::Corrupt {
                at,
                detail: "filemark header checksum mismatch".into(),
            }),
        },
        other => Err(UnpackError::Corrupt {
            at,
            detail: format!("unknown record type 0x{other:02x}"),
        }),
    }
}

/// Appends the logical bytes of one record to `out`, a chunk's only up to `limit` bytes (its
/// bytes beyond are neither decoded nor checked). Returns whether the record was cut short.
pub(crate) fn expand(
    raw: &[u8],
    at: usize,
    rec: Record,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, UnpackError> {
    match rec {
        Record::Chunk { payload, size } => {
            let data = raw.get(payload.0..payload.0 + payload.1).unwrap_or(&[]);
            let start = out.len();
            xpress::decode_into(data, size, limit, out).map_err(|e| {
                out.truncate(start);
                chunk_error(at, e)
            })?;
            Ok(limit < size)
        }
        Record::Filemark { at: fm, size } => {
            let stored = raw.get(fm..fm + STORED_SFMB_LEN).unwrap_or(&[]);
            let start = out.len();
            out.extend_from_slice(stored);
            out.resize(start + size.max(stored.len()), 0);
            Ok(false)
        }
        Record::Pad | Record::End => Ok(false),
    }
}

/// Unpacks the head of a compressed file on demand, record by record.
#[derive(Debug)]
pub(crate) struct Unpacker<'a> {
    raw: &'a [u8],
    pos: usize,
    ended: bool,
    /// The last chunk, decoded only in part: its raw offset, where its bytes start in `logical`,
    /// and its decoder, which goes on from where it stopped when more is asked.
    cut: Option<(usize, usize, xpress::Decoder<'a>)>,
    /// The logical MTF bytes unpacked so far.
    pub logical: Vec<u8>,
}

impl<'a> Unpacker<'a> {
    /// Starts after the container header; `raw` must start with [`MAGIC`].
    pub fn new(raw: &'a [u8]) -> Self {
        Unpacker {
            raw,
            pos: HEADER_LEN,
            ended: false,
            cut: None,
            logical: Vec::new(),
        }
    }

    /// Unpacks records until at least `want` logical bytes are there (possibly exactly `want`:
    /// a chunk is decoded only as far as asked).
    ///
    /// A chunk cut before is taken on to at least twice its decoded length, so a header parser
    /// that asks for a few bytes more at a time needs only a few rounds; it never reaches into a
    /// record that was not needed.
    ///
    /// Returns `Ok(false)` when the chunk sequence ended first.
    pub fn ensure(&mut self, want: usize) -> Result<bool, UnpackError> {
        if self.logical.len() >= want {
            return Ok(true);
        }
        if let Some((at, start, mut decoder)) = self.cut.take() {
            let done = self.logical.len() - start;
            let limit = (want - start).max(done.saturating_mul(2));
            self.decode(at, start, &mut decoder, limit)?;
            if self.logical.len() - start < decoder.size() {
                self.cut = Some((at, start, decoder));
            }
        }
        while self.logical.len() < want {
            if self.ended {
                return Ok(false);
            }
            let (rec, next) = record(self.raw, self.pos)?;
            match rec {
                Record::End => self.ended = true,
                Record::Chunk { payload, size } => {
                    let data = self
                        .raw
                        .get(payload.0..payload.0 + payload.1)
                        .unwrap_or(&[]);
                    let mut decoder =
                        xpress::Decoder::new(data, size).map_err(|e| chunk_error(self.pos, e))?;
                    let start = self.logical.len();
                    self.decode(self.pos, start, &mut decoder, want - start)?;
                    if self.logical.len() - start < size {
                        self.cut = Some((self.pos, start, decoder));
                    }
                }
                _ => {
                    expand(self.raw, self.pos, rec, &mut self.logical, usize::MAX)?;
                }
            }
            if !self.ended {
                self.pos = next;
            }
        }
        Ok(true)
    }

    /// Decodes the chunk at raw offset `at`, whose bytes start at `logical[start]`, on to `limit`.
    fn decode(
        &mut self,
        at: usize,
        start: usize,
        decoder: &mut xpress::Decoder<'a>,
        limit: usize,
    ) -> Result<(), UnpackError> {
        decoder
            .decode(&mut self.logical, start, limit)
            .map_err(|e| {
                self.logical.truncate(start);
                chunk_error(at, e)
            })
    }
}

fn chunk_error(at: usize, e: xpress::XpressError) -> UnpackError {
    UnpackError::Corrupt {
        at,
        detail: format!("compressed chunk does not decompress ({e})"),
    }
}

/// The records found in a raw tail that starts anywhere, in file order.
#[derive(Debug)]
pub(crate) struct TailRecords<'a> {
    raw: &'a [u8],
    records: Vec<(usize, Record)>,
    /// The records from this index on are unpacked in `logical`, so widening decodes only the
    /// records before it.
    unpacked_from: usize,
    logical: Vec<u8>,
}

/// Finds the records in a raw tail that starts anywhere.
///
/// The tail holds runs of records separated by bytes that are not records (the index, zero fill).
/// A run starts at a chunk whose Huffman table is valid and whose first bytes decode, or at a
/// filemark with a valid checksum, and goes on while well-formed records follow one another.
/// `None` when the tail holds no chunk.
pub(crate) fn scan_tail(raw: &[u8]) -> Option<TailRecords<'_>> {
    let mut records = Vec::new();
    let mut p = 0;
    while p < raw.len() {
        match run(raw, p) {
            Some((found, end)) => {
                records.extend(found);
                p = end.max(p + 1);
            }
            None => p += 1,
        }
    }
    records
        .iter()
        .any(|(_, r)| matches!(r, Record::Chunk { .. }))
        .then(|| TailRecords {
            raw,
            unpacked_from: records.len(),
            records,
            logical: Vec::new(),
        })
}

impl TailRecords<'_> {
    /// Unpacks the records from the `chunks`-th chunk from the end on, so the logical start is
    /// sector-aligned. A first chunk that does not decompress is dropped (a false start found by
    /// scanning); any later one is corruption. Records unpacked by an earlier call are not
    /// decoded again, and are all returned when that call went further back.
    pub fn unpack_last(&mut self, chunks: usize) -> Result<&[u8], UnpackError> {
        let mut seen = 0;
        let mut first = self.records.len();
        for (i, (_, rec)) in self.records.iter().enumerate().rev() {
            if matches!(rec, Record::Chunk { .. }) {
                seen += 1;
                first = i;
                if seen == chunks {
                    break;
                }
            }
        }
        if first < self.unpacked_from {
            let mut logical = Vec::new();
            let records = &self.records[..self.unpacked_from];
            for (i, (at, rec)) in records.iter().enumerate().skip(first) {
                match expand(self.raw, *at, *rec, &mut logical, usize::MAX) {
                    Err(_) if i == 0 => logical.clear(),
                    other => {
                        other?;
                    }
                }
            }
            logical.extend_from_slice(&self.logical);
            self.logical = logical;
            self.unpacked_from = first;
        }
        Ok(&self.logical)
    }

    /// How many chunks from the end hold at least `len` logical bytes, read from the record
    /// headers without decompressing anything; one more, since a first chunk found by scanning
    /// may be a false start that is dropped.
    pub fn chunks_covering(&self, len: usize) -> usize {
        let mut sum = 0usize;
        let mut chunks = 0;
        for (_, rec) in self.records.iter().rev() {
            match rec {
                Record::Chunk { size, .. } => {
                    chunks += 1;
                    sum = sum.saturating_add(*size);
                }
                Record::Filemark { size, .. } => sum = sum.saturating_add(*size),
                Record::Pad | Record::End => {}
            }
            if sum >= len && chunks > 0 {
                break;
            }
        }
        chunks + 1
    }

    /// How many chunks were found.
    pub fn chunk_count(&self) -> usize {
        self.records
            .iter()
            .filter(|(_, r)| matches!(r, Record::Chunk { .. }))
            .count()
    }
}

/// Whether a payload starts with a Huffman code-length table that is not over-subscribed (Kraft
/// sum at most 1): a cheap test that rejects almost every false chunk start before decoding.
fn table_fits(payload: &[u8]) -> bool {
    const FULL: u32 = 1 << 15;
    let Some(table) = payload.get(..256) else {
        return false;
    };
    let mut sum = 0u32;
    for &b in table {
        for len in [b & 0x0F, b >> 4] {
            if len > 0 {
                sum += FULL >> len;
                if sum > FULL {
                    return false;
                }
            }
        }
    }
    sum > 0
}

/// The run of records starting at `p`, and where scanning should resume, if `p` starts one.
fn run(tail: &[u8], p: usize) -> Option<(Vec<(usize, Record)>, usize)> {
    let byte = *tail.get(p)?;
    if byte != CHUNK && byte != b'S' {
        return None;
    }
    let (first, mut at) = record(tail, p).ok()?;
    match first {
        Record::Chunk { payload, size } => {
            // Confirm a chunk found by scanning: its Huffman table must be valid and its first
            // bytes decode (random bytes almost never give a valid table).
            let data = tail.get(payload.0..payload.0 + payload.1)?;
            if !table_fits(data) {
                return None;
            }
            xpress::decode_into(data, size, PROBE_LEN, &mut Vec::new()).ok()?;
        }
        Record::Filemark { .. } => {}
        Record::Pad | Record::End => return None,
    }
    let mut records = vec![(p, first)];
    while at < tail.len() {
        match record(tail, at) {
            Ok((Record::End, _)) => return Some((records, at + 1)),
            Ok((rec, next)) => {
                records.push((at, rec));
                at = next;
            }
            // The index, zero fill, or bytes cut by the end of the tail: the run ends here.
            Err(_) => break,
        }
    }
    Some((records, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_subscribed_tables_are_not_chunk_starts() {
        // All 512 symbols with length 1: a Kraft sum of 256.
        assert!(!table_fits(&[0x11; 256]));
        // Two symbols of length 1: a complete code.
        let mut t = [0u8; 256];
        t[0] = 0x11;
        assert!(table_fits(&t));
        assert!(!table_fits(&[0u8; 256]));
        assert!(!table_fits(&t[..100]));
    }

    /// A real compressed backup; `None` when the fixtures are missing outside CI (under CI that
    /// fails the test).
    fn compressed_fixture() -> Option<Vec<u8>> {
        let dir = std::env::var_os("LRS_FIXTURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../shared/fixtures/backups")
            });
        let raw = std::fs::read(dir.join("appveyor-lab/singlerestore/SharePoint_Config.bak")).ok();
        assert!(
            raw.is_some() || !std::env::var("CI").is_ok_and(|v| v == "true"),
            "fixtures missing"
        );
        raw
    }

    #[test]
    fn a_chunk_cut_at_the_limit_is_resumed_when_more_is_asked() {
        let Some(raw) = compressed_fixture() else {
            return;
        };
        let mut whole = Unpacker::new(&raw);
        assert!(whole.ensure(200_000).unwrap());
        let mut step = Unpacker::new(&raw);
        for want in [100, 5000, 70_000, 200_000] {
            assert!(step.ensure(want).unwrap());
            assert!(step.logical.len() >= want);
            assert_eq!(step.logical[..], whole.logical[..step.logical.len()]);
        }
        assert_eq!(
            step.logical.len(),
            200_000,
            "the last chunk is cut at the limit"
        );
    }

    #[test]
    fn a_widened_tail_equals_a_fresh_one_and_ends_with_the_narrower() {
        let Some(raw) = compressed_fixture() else {
            return;
        };
        let tail = &raw[raw.len() - 64 * 1024..];
        let mut widened = scan_tail(tail).unwrap();
        let two = widened.unpack_last(2).unwrap().to_vec();
        let four = widened.unpack_last(4).unwrap().to_vec();
        let fresh = scan_tail(tail).unwrap().unpack_last(4).unwrap().to_vec();
        assert!(four.len() > two.len(), "four chunks hold more than two");
        assert!(
            four.ends_with(&two),
            "the narrower tail is a suffix of the wider"
        );
        assert!(four == fresh, "widening gives what a fresh unpack gives");
    }

    #[test]
    fn unknown_record_is_corrupt() {
        let raw = [0x99u8; 8];
        assert!(matches!(record(&raw, 0), Err(UnpackError::Corrupt { .. })));
    }

    #[test]
    fn chunk_larger_than_64_kib_is_corrupt() {
        let mut raw = vec![CHUNK, 0x81, 0x10, 0x01];
        raw.resize(CHUNK_HEADER_LEN + 0x110, 0xAB);
        assert!(matches!(
            record(&raw, 0),
            Err(UnpackError::Corrupt { detail, .. }) if detail.contains("more than the 65536")
        ));
        raw[1] = 0x80;
        assert!(record(&raw, 0).is_ok());
    }

    #[test]
    fn chunk_cut_short_asks_for_its_end() {
        let mut raw = vec![CHUNK, 0x02, 100, 0];
        raw.resize(40, 0);
        assert_eq!(record(&raw, 0), Err(UnpackError::Eof { end: 128 }));
    }

    #[test]
    fn garbage_payload_is_corrupt_not_a_panic() {
        let mut raw = vec![CHUNK, 0x02, 0x10, 0x01];
        raw.resize(CHUNK_HEADER_LEN + 0x110, 0xAB);
        let (rec, _) = record(&raw, 0).unwrap();
        let mut out = Vec::new();
        assert!(expand(&raw, 0, rec, &mut out, usize::MAX).is_err());
        assert!(out.is_empty());
    }
}
