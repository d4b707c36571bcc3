//! MTF descriptor blocks (DBLK, MTF 1.00a §5.1) and the stream headers inside them (§6.1): parsed in
//! place from a byte slice, with their header checksums checked, so a damaged block is named.

use super::cursor::{Bytes, Eof, Rel, xor16};

/// The common DBLK header is 52 bytes; its checksum is the XOR of the 25 words before it.
pub(crate) const DBLK_HEADER_LEN: usize = 52;
/// A stream header is 22 bytes; its checksum is the XOR of the 10 words before it.
pub(crate) const STREAM_HEADER_LEN: usize = 22;
/// MTF strings of type 2 are UTF-16LE; type 1 is 8-bit.
const STRING_TYPE_UNICODE: u8 = 2;

/// Media header: starts every (decompressed) backup.
pub(crate) const TAPE: [u8; 4] = *b"TAPE";
/// Start of a data set (backup set).
pub(crate) const SSET: [u8; 4] = *b"SSET";
/// Volume: carries the machine name.
pub(crate) const VOLB: [u8; 4] = *b"VOLB";
/// SQL Server configuration at the start of a set (the MQCI header copy read from the head).
pub(crate) const MSCI: [u8; 4] = *b"MSCI";
/// SQL Server data pages.
pub(crate) const MSDA: [u8; 4] = *b"MSDA";
/// SQL Server log.
pub(crate) const MSTL: [u8; 4] = *b"MSTL";
/// SQL Server configuration at the end of a set (the final MQCI copy read from the tail).
pub(crate) const MSLS: [u8; 4] = *b"MSLS";
/// End of a data set.
pub(crate) const ESET: [u8; 4] = *b"ESET";
/// Soft filemark.
pub(crate) const SFMB: [u8; 4] = *b"SFMB";

/// Every DBLK tag MTF and SQL Server define: anything else is not a block.
const KNOWN_TAGS: [[u8; 4]; 14] = [
    TAPE, SSET, VOLB, *b"DIRB", *b"FILE", *b"CFIL", *b"ESPB", ESET, *b"EOTM", SFMB, MSCI, MSDA,
    MSTL, MSLS,
];

/// Stream ids used here.
pub(crate) const RAID: [u8; 4] = *b"RAID";
/// The SQL Server configuration stream (SCIN/SFGI/SFIN records).
pub(crate) const MQCI: [u8; 4] = *b"MQCI";
/// Padding to the next block: the last stream of a block.
pub(crate) const SPAD: [u8; 4] = *b"SPAD";

/// Why a block could not be taken from the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockError {
    /// The bytes end before the block (or stream) does.
    Eof(Eof),
    /// No DBLK tag here.
    NotABlock,
    /// A known block whose header or stream fails a check.
    Corrupt {
        /// The block tag.
        tag: [u8; 4],
        /// What failed.
        detail: String,
    },
}

impl From<Eof> for BlockError {
    fn from(e: Eof) -> Self {
        BlockError::Eof(e)
    }
}

/// A tag as text for messages (`TAPE`, or the escaped bytes).
pub(crate) fn tag_name(tag: [u8; 4]) -> String {
    tag.iter()
        .map(|&b| char::from(b))
        .collect::<String>()
        .escape_default()
        .to_string()
}

/// One DBLK, borrowed from the bytes it sits in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dblk<'a> {
    /// Block type.
    pub tag: [u8; 4],
    /// Offset of the block in the slice.
    pub at: usize,
    /// Offset of the first stream from the block start (for SFMB: the block's size).
    pub first_stream: u16,
    /// String type: 2 for UTF-16LE.
    pub string_type: u8,
    buf: Bytes<'a>,
}

impl<'a> Dblk<'a> {
    /// Parses the DBLK header at `at`, checking its tag, checksum and first-stream offset.
    pub fn parse(buf: &'a [u8], at: usize) -> Result<Dblk<'a>, BlockError> {
        let b = Bytes(buf);
        let tag: [u8; 4] = b.array(at)?;
        if !KNOWN_TAGS.contains(&tag) {
            // Report a short read before "not a block" so a caller can ask for more bytes.
            b.slice(at, DBLK_HEADER_LEN)?;
            return Err(BlockError::NotABlock);
        }
        let header = b.slice(at, DBLK_HEADER_LEN)?;
        if xor16(header) != 0 {
            return Err(BlockError::Corrupt {
                tag,
                detail: "header checksum mismatch".into(),
            });
        }
        let first_stream = b.u16(at + 8)?;
        if usize::from(first_stream) < DBLK_HEADER_LEN {
            return Err(BlockError::Corrupt {
                tag,
                detail: format!("first stream offset {first_stream} lies inside the header"),
            });
        }
        Ok(Dblk {
            tag,
            at,
            first_stream,
            string_type: b.u8(at + 48)?,
            buf: b,
        })
    }

    /// Reads at offsets from the block's start (short reads report absolute ends).
    pub fn bytes(&self) -> Rel<'a> {
        Rel {
            buf: self.buf,
            base: self.at,
        }
    }

    /// A string field: an MTF_TAPE_ADDRESS (u16 size, u16 offset from the block start) at `field`.
    pub fn string(&self, field: usize) -> Result<Option<String>, BlockError> {
        let b = self.bytes();
        let size = usize::from(b.u16(field)?);
        let offset = usize::from(b.u16(field + 2)?);
        if size == 0 {
            return Ok(None);
        }
        let at = self.at + offset;
        if self.string_type == STRING_TYPE_UNICODE {
            Ok(self.buf.utf16(at, size)?)
        } else {
            let raw = self.buf.slice(at, size)?;
            let s: String = raw.iter().map(|&c| char::from(c)).collect();
            let s = s.trim_end_matches('\0');
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
    }

    /// The raw bytes of an MTF_TAPE_ADDRESS field (for binary fields such as the media password).
    pub fn address_bytes(&self, field: usize) -> Result<&'a [u8], BlockError> {
        let b = self.bytes();
        let size = usize::from(b.u16(field)?);
        let offset = usize::from(b.u16(field + 2)?);
        Ok(b.slice(offset, size)?)
    }

    /// The streams of this block, in order, up to and including `SPAD` (none for SFMB).
    pub fn streams(&self) -> Streams<'a> {
        Streams {
            buf: self.buf,
            tag: self.tag,
            block_at: self.at,
            next: (self.tag != SFMB).then_some(self.at + usize::from(self.first_stream)),
        }
    }

    /// Where the next block starts: after the `SPAD` stream, or, for SFMB, after its own size.
    pub fn end(&self) -> Result<usize, BlockError> {
        if self.tag == SFMB {
            return Ok(self.at + usize::from(self.first_stream));
        }
        let mut end = self.at + usize::from(self.first_stream);
        for s in self.streams() {
            end = s?.next;
        }
        Ok(end)
    }

    /// The first stream with this id, if the block has one.
    pub fn stream(&self, id: [u8; 4]) -> Result<Option<Stream<'a>>, BlockError> {
        for s in self.streams() {
            let s = s?;
            if s.id == id {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}

/// One stream header (MTF_STREAM_HDR) and where its data lies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stream<'a> {
    /// Stream id (`MQCI`, `SPAD`, ...).
    pub id: [u8; 4],
    /// Offset of the data in the slice.
    pub data_at: usize,
    /// Data length in bytes.
    pub len: usize,
    /// Offset of the next stream (data end, 4-byte aligned).
    pub next: usize,
    buf: Bytes<'a>,
}

impl<'a> Stream<'a> {
    /// The stream's data.
    pub fn data(&self) -> Result<&'a [u8], Eof> {
        self.buf.slice(self.data_at, self.len)
    }
}

/// Iterates a block's streams; stops after `SPAD` or the first error.
pub(crate) struct Streams<'a> {
    buf: Bytes<'a>,
    tag: [u8; 4],
    /// Streams are 4-byte aligned relative to their block, not to the slice.
    block_at: usize,
    next: Option<usize>,
}

impl<'a> Iterator for Streams<'a> {
    type Item = Result<Stream<'a>, BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.next.take()?;
        let result = parse_stream(self.buf, self.tag, self.block_at, at);
        if let Ok(s) = &result {
            if s.id != SPAD {
                self.next = Some(s.next);
            }
        }
        Some(result)
    }
}

fn parse_stream<'a>(
    buf: Bytes<'a>,
    tag: [u8; 4],
    block_at: usize,
    at: usize,
) -> Result<Stream<'a>, BlockError> {
    let header = buf.slice(at, STREAM_HEADER_LEN)?;
    if xor16(header) != 0 {
        return Err(BlockError::Corrupt {
            tag,
            detail: format!("stream header checksum mismatch at byte {at}"),
        });
    }
    let id = buf.array(at)?;
    let len = buf.u64(at + 8)?;
    let too_long = || BlockError::Corrupt {
        tag,
        detail: format!("stream {} length {len} is out of range", tag_name(id)),
    };
    let len = usize::try_from(len).map_err(|_| too_long())?;
    let data_at = at + STREAM_HEADER_LEN;
    let next = (data_at - block_at)
        .checked_add(len)
        .and_then(|e| e.checked_add(3))
        .and_then(|e| block_at.checked_add(e & !3))
        .ok_or_else(too_long)?;
    Ok(Stream {
        id,
        data_at,
        len,
        next,
        buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(tag: &[u8; 4], first_stream: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(tag);
        b[8..10].copy_from_slice(&first_stream.to_le_bytes());
        let c = xor16(&b[..50]);
        b[50..52].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn rejects_block_with_bad_checksum() {
        let mut b = block(b"SSET", 52);
        b[20] ^= 1;
        assert!(matches!(
            Dblk::parse(&b, 0),
            Err(BlockError::Corrupt { tag, .. }) if tag == SSET
        ));
    }

    #[test]
    fn rejects_first_stream_inside_header() {
        let b = block(b"SSET", 10);
        assert!(matches!(
            Dblk::parse(&b, 0),
            Err(BlockError::Corrupt { .. })
        ));
    }

    #[test]
    fn unknown_tag_is_not_a_block_and_short_input_is_eof() {
        assert_eq!(
            Dblk::parse(&block(b"XXXX", 52), 0).err(),
            Some(BlockError::NotABlock)
        );
        assert!(matches!(
            Dblk::parse(&block(b"TAPE", 52)[..40], 0),
            Err(BlockError::Eof(_))
        ));
    }

    #[test]
    fn stream_with_huge_length_is_corrupt_not_a_panic() {
        let mut b = block(b"MSDA", 52);
        b.resize(52 + 22, 0);
        b[52..56].copy_from_slice(b"MQDA");
        b[60..68].copy_from_slice(&u64::MAX.to_le_bytes());
        let c = xor16(&b[52..72]);
        b[72..74].copy_from_slice(&c.to_le_bytes());
        let d = Dblk::parse(&b, 0).unwrap();
        assert!(d.end().is_err());
    }
}
