//! MS-XCA LZ77+Huffman ("Xpress Huffman", [MS-XCA] 2.2) decoding of one chunk of a compressed
//! backup, written from the spec. It decodes a single block (a chunk holds at most 64 KiB), stops
//! at an output limit so the reader decodes only as far as the header needs, and turns every
//! defect of hostile input into an [`XpressError`]. Pure: no I/O, output bounded by the caller.
//!
//! Format facts used: a 256-byte table of 512 four-bit code lengths (symbol `2k` in the low nibble
//! of byte `k`, `2k+1` in the high one); canonical codes assigned in order of (length, symbol); the
//! bit stream read as little-endian 16-bit words, most significant bit first, through a 32-bit
//! window refilled one word at a time when fewer than 16 bits are left; extra match-length bytes
//! read from the byte position of the word stream; symbols 0-255 are literals, 256-511 matches
//! (low nibble: length - 3, 15 meaning "more in a byte, 255 there meaning a 16-bit word"; high
//! nibble: how many offset bits follow the implied leading one).

/// The code-length table at the start of a block.
const TABLE_LEN: usize = 256;
/// Literals 0-255 and matches 256-511.
const SYMBOLS: usize = 512;
/// The longest code.
const MAX_CODE_LEN: usize = 15;
/// Codes up to this length are decoded with one table look-up; longer ones walk the canonical
/// code length by length (rare: they are the least frequent symbols).
const FAST_BITS: u32 = 10;
/// One block's output: larger outputs start a new table, which chunks never need.
pub(crate) const BLOCK: usize = 1 << 16;
/// The payload is read as if followed by this many zero bytes: the window runs up to 4 bytes
/// ahead of the bits in use, so the last symbols sit in words the payload ends before. A symbol
/// that would start beyond them is past the end of the input. (The same rule as the
/// `xpress-huffman` crate given an 8-byte zero-padded payload, which the reader used before.)
pub(crate) const PADDING: usize = 8;

/// Why a chunk does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XpressError {
    /// A chunk claims more than one block of output.
    TooLarge { size: usize },
    /// The payload is shorter than the code-length table.
    TruncatedTable { len: usize },
    /// The code lengths ask for more codes than exist (Kraft sum above one).
    OverSubscribed,
    /// Every code length is zero.
    EmptyTable,
    /// The bits at output offset `at` match no code of an incomplete table.
    UnassignedCode { at: usize },
    /// A match at output offset `at` reaches `offset` bytes back, before the chunk's start.
    OffsetBeforeStart { at: usize, offset: usize },
    /// A 16-bit match length below 15 (invalid per the spec) or 0 (the 32-bit form: a match
    /// longer than any chunk).
    BadLengthWord { at: usize, value: u16 },
    /// A match at output offset `at` of `length` bytes runs past the chunk's `size`.
    PastEnd {
        at: usize,
        length: usize,
        size: usize,
    },
    /// The input ends after `at` bytes of output.
    InputEnded { at: usize },
}

impl std::fmt::Display for XpressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XpressError::TooLarge { size } => {
                write!(f, "{size} bytes claimed, more than one {BLOCK}-byte block")
            }
            XpressError::TruncatedTable { len } => write!(
                f,
                "payload of {len} bytes, shorter than its {TABLE_LEN}-byte Huffman table"
            ),
            XpressError::OverSubscribed => f.write_str("over-subscribed Huffman table"),
            XpressError::EmptyTable => f.write_str("empty Huffman table"),
            XpressError::UnassignedCode { at } => {
                write!(f, "no Huffman code matches the bits at output byte {at}")
            }
            XpressError::OffsetBeforeStart { at, offset } => write!(
                f,
                "match at output byte {at} reaches {offset} bytes back, before the chunk starts"
            ),
            XpressError::BadLengthWord { at, value } => {
                write!(f, "invalid match length word {value} at output byte {at}")
            }
            XpressError::PastEnd { at, length, size } => write!(
                f,
                "match of {length} bytes at output byte {at} runs past the chunk's {size} bytes"
            ),
            XpressError::InputEnded { at } => {
                write!(f, "input ends after {at} bytes of output")
            }
        }
    }
}

/// Decodes the chunk `input`, whose output is `size` bytes, and appends its first
/// `min(limit, size)` bytes to `out`. Bytes after the limit are not decoded, so damage there goes
/// unseen. On error `out` may hold part of the output.
pub(crate) fn decode_into(
    input: &[u8],
    size: usize,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), XpressError> {
    if size > BLOCK {
        return Err(XpressError::TooLarge { size });
    }
    if limit.min(size) == 0 {
        return Ok(());
    }
    let start = out.len();
    Decoder::new(input, size)?.decode(out, start, limit)
}

/// A chunk decoded in steps: it keeps its place, so asking for more output later decodes only
/// the new bytes (LZ77 needs the earlier output, which stays in the caller's buffer).
pub(crate) struct Decoder<'a> {
    code: Code,
    bits: Bits<'a>,
    /// Where the input, with its zero padding, ends.
    end: usize,
    size: usize,
    /// A match the last limit cut: its offset, and how many bytes are still to copy.
    pending: (usize, usize),
}

impl std::fmt::Debug for Decoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("size", &self.size)
            .field("pos", &self.bits.pos)
            .finish_non_exhaustive()
    }
}

impl<'a> Decoder<'a> {
    /// Reads the chunk's code-length table.
    pub(crate) fn new(input: &'a [u8], size: usize) -> Result<Self, XpressError> {
        if size > BLOCK {
            return Err(XpressError::TooLarge { size });
        }
        if input.len() + PADDING < TABLE_LEN {
            return Err(XpressError::TruncatedTable { len: input.len() });
        }
        let mut table = [0u8; TABLE_LEN];
        for (i, t) in table.iter_mut().enumerate() {
            *t = byte(input, i);
        }
        Ok(Decoder {
            code: Code::new(&table)?,
            bits: Bits::new(input, TABLE_LEN),
            end: input.len() + PADDING,
            size,
            pending: (0, 0),
        })
    }

    /// The chunk's output size.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Decodes on until the chunk's output, which starts at `out[start]` and is all of
    /// `out[start..]`, holds `min(limit, size)` bytes.
    pub(crate) fn decode(
        &mut self,
        out: &mut Vec<u8>,
        start: usize,
        limit: usize,
    ) -> Result<(), XpressError> {
        let limit = limit.min(self.size);
        let size = self.size;
        let bits = &mut self.bits;
        if out.len() - start >= limit {
            return Ok(());
        }
        out.reserve(limit - (out.len() - start));
        let (offset, left) = self.pending;
        if left > 0 {
            let n = left.min(limit - (out.len() - start));
            copy_match(out, offset, n);
            self.pending = (offset, left - n);
        }
        loop {
            let produced = out.len() - start;
            if produced >= limit {
                return Ok(());
            }
            if bits.pos >= self.end {
                return Err(XpressError::InputEnded { at: produced });
            }
            let (symbol, len) = self
                .code
                .decode(bits.window)
                .ok_or(XpressError::UnassignedCode { at: produced })?;
            bits.consume(len);
            if symbol < 256 {
                out.push(symbol as u8);
                continue;
            }
            let symbol = symbol - 256;
            let offset_bits = u32::from(symbol >> 4);
            let mut length = usize::from(symbol & 0x0F);
            if length == 15 {
                let extra = bits.next_byte();
                length = usize::from(extra) + 15;
                if extra == 255 {
                    let word = bits.next_word() as u16;
                    if word < 15 {
                        return Err(XpressError::BadLengthWord {
                            at: produced,
                            value: word,
                        });
                    }
                    length = usize::from(word);
                }
            }
            length += 3;
            let offset = (1usize << offset_bits) + bits.peek(offset_bits) as usize;
            bits.consume(offset_bits);
            if offset > produced {
                return Err(XpressError::OffsetBeforeStart {
                    at: produced,
                    offset,
                });
            }
            if produced + length > size {
                return Err(XpressError::PastEnd {
                    at: produced,
                    length,
                    size,
                });
            }
            let n = length.min(limit - produced);
            copy_match(out, offset, n);
            self.pending = (offset, length - n);
        }
    }
}

/// Appends `length` bytes copied from `offset` back, overlapping when the offset is shorter.
fn copy_match(out: &mut Vec<u8>, offset: usize, length: usize) {
    let from = out.len() - offset;
    let mut left = length;
    while left > 0 {
        // The bytes from `from` on repeat with period `offset`, so everything written so far
        // can be copied at once: the span doubles each round.
        let n = left.min(out.len() - from);
        out.extend_from_within(from..from + n);
        left -= n;
    }
}

/// The payload byte at `i`, zero beyond its end.
fn byte(input: &[u8], i: usize) -> u8 {
    input.get(i).copied().unwrap_or(0)
}

/// The bit window over the word stream.
struct Bits<'a> {
    input: &'a [u8],
    /// The byte position of the next word (and of extra length bytes).
    pos: usize,
    /// Unused bits at the top.
    window: u32,
    /// How many bits of `window` are unused (16..=32 between symbols).
    avail: u32,
}

impl<'a> Bits<'a> {
    fn new(input: &'a [u8], pos: usize) -> Self {
        let mut b = Bits {
            input,
            pos,
            window: 0,
            avail: 32,
        };
        let high = b.next_word();
        let low = b.next_word();
        b.window = (high << 16) | low;
        b
    }

    fn next_byte(&mut self) -> u8 {
        let b = byte(self.input, self.pos);
        self.pos += 1;
        b
    }

    fn next_word(&mut self) -> u32 {
        let w = match self.input.get(self.pos..self.pos + 2) {
            Some(&[lo, hi]) => u32::from(u16::from_le_bytes([lo, hi])),
            _ => {
                u32::from(byte(self.input, self.pos))
                    | u32::from(byte(self.input, self.pos + 1)) << 8
            }
        };
        self.pos += 2;
        w
    }

    /// The top `n` bits (n ≤ 15).
    fn peek(&self, n: u32) -> u32 {
        if n == 0 { 0 } else { self.window >> (32 - n) }
    }

    /// Drops `n` bits (n ≤ 15) and refills below 16.
    fn consume(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.window <<= n;
        self.avail -= n;
        if self.avail < 16 {
            self.window |= self.next_word() << (16 - self.avail);
            self.avail += 16;
        }
    }
}

/// A block's canonical Huffman code.
struct Code {
    /// By the next `FAST_BITS` bits: `symbol << 4 | length`, or 0 for a longer or missing code.
    fast: [u16; 1 << FAST_BITS],
    /// How many codes have each length.
    count: [u16; MAX_CODE_LEN + 1],
    /// The symbols with a code, in canonical order.
    sorted: [u16; SYMBOLS],
}

impl Code {
    fn new(table: &[u8; TABLE_LEN]) -> Result<Self, XpressError> {
        let mut lens = [0u8; SYMBOLS];
        for (i, &b) in table.iter().enumerate() {
            lens[2 * i] = b & 0x0F;
            lens[2 * i + 1] = b >> 4;
        }
        let mut count = [0u16; MAX_CODE_LEN + 1];
        for &l in &lens {
            count[usize::from(l)] += 1;
        }
        count[0] = 0;
        // Kraft: each code of length l takes 2^(15-l) of the 2^15 leaves.
        let used: u32 = (1..=MAX_CODE_LEN)
            .map(|l| u32::from(count[l]) << (MAX_CODE_LEN - l))
            .sum();
        if used == 0 {
            return Err(XpressError::EmptyTable);
        }
        if used > 1 << MAX_CODE_LEN {
            return Err(XpressError::OverSubscribed);
        }
        // Where each length's symbols start in canonical order, and its first code.
        let mut index = [0u16; MAX_CODE_LEN + 1];
        let mut next_code = [0u32; MAX_CODE_LEN + 1];
        let mut code = 0u32;
        let mut at = 0u16;
        for l in 1..=MAX_CODE_LEN {
            index[l] = at;
            at += count[l];
            next_code[l] = code;
            code = (code + u32::from(count[l])) << 1;
        }
        let mut c = Code {
            fast: [0; 1 << FAST_BITS],
            count,
            sorted: [0; SYMBOLS],
        };
        for (symbol, &l) in lens.iter().enumerate() {
            if l == 0 {
                continue;
            }
            let l = usize::from(l);
            c.sorted[usize::from(index[l])] = symbol as u16;
            index[l] += 1;
            let this = next_code[l];
            next_code[l] += 1;
            if l as u32 <= FAST_BITS {
                let shift = FAST_BITS - l as u32;
                let first = (this << shift) as usize;
                let entry = (symbol as u16) << 4 | l as u16;
                c.fast[first..first + (1 << shift)].fill(entry);
            }
        }
        Ok(c)
    }

    /// The symbol whose code starts `window`, and the code's length.
    #[inline]
    fn decode(&self, window: u32) -> Option<(u16, u32)> {
        let e = self.fast[(window >> (32 - FAST_BITS)) as usize];
        if e != 0 {
            return Some((e >> 4, u32::from(e & 0x0F)));
        }
        // Canonical walk: codes of each length are consecutive, after the shorter ones.
        let mut code = 0u32;
        let mut first = 0u32;
        let mut index = 0u32;
        for l in 1..=MAX_CODE_LEN {
            code |= (window >> (32 - l)) & 1;
            let n = u32::from(self.count[l]);
            if code < first + n {
                return Some((self.sorted[(index + code - first) as usize], l as u32));
            }
            index += n;
            first = (first + n) << 1;
            code <<= 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `symbols` with the canonical code of `lens` (MSB first, 16-bit LE words), after
    /// the table; extra bytes are not supported (test streams avoid long matches).
    fn stream(lens: &[(usize, u8)], symbols: &[(u16, u32, u32)]) -> Vec<u8> {
        let mut table = [0u8; TABLE_LEN];
        for &(s, l) in lens {
            table[s / 2] |= if s % 2 == 0 { l } else { l << 4 };
        }
        let code = Code::new(&table).unwrap();
        // Rebuild the codes from the table the same way a writer would.
        let mut all: Vec<(u8, u16)> = lens.iter().map(|&(s, l)| (l, s as u16)).collect();
        all.sort();
        let mut codes = vec![(0u32, 0u32); SYMBOLS];
        let mut c = 0u32;
        let mut prev = all[0].0;
        for (i, &(l, s)) in all.iter().enumerate() {
            if i > 0 {
                c = (c + 1) << (l - prev);
            }
            prev = l;
            codes[usize::from(s)] = (c, u32::from(l));
        }
        let _ = code;
        let mut bitv: Vec<bool> = Vec::new();
        for &(s, extra, extra_len) in symbols {
            let (c, l) = codes[usize::from(s)];
            for i in (0..l).rev() {
                bitv.push((c >> i) & 1 == 1);
            }
            for i in (0..extra_len).rev() {
                bitv.push((extra >> i) & 1 == 1);
            }
        }
        while bitv.len() % 16 != 0 {
            bitv.push(false);
        }
        let mut out = table.to_vec();
        for w in bitv.chunks(16) {
            let v = w.iter().fold(0u16, |a, &b| (a << 1) | u16::from(b));
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// `abababa`: 'a' (len 1), 'b' (len 2), match symbol 256 + 0x10 + 2: offset bits 1, length 5.
    fn abababa() -> Vec<u8> {
        let m = 256 + 0x12;
        stream(
            &[(usize::from(b'a'), 1), (usize::from(b'b'), 2), (m, 2)],
            &[
                (u16::from(b'a'), 0, 0),
                (u16::from(b'b'), 0, 0),
                (m as u16, 0, 1),
            ],
        )
    }

    #[test]
    fn literals_and_an_overlapping_match_decode() {
        let data = abababa();
        let mut out = Vec::new();
        decode_into(&data, 7, 7, &mut out).unwrap();
        assert_eq!(out, b"abababa");
    }

    #[test]
    fn the_limit_stops_early_and_matches_the_full_output() {
        let data = abababa();
        let mut out = Vec::new();
        decode_into(&data, 7, 4, &mut out).unwrap();
        assert_eq!(out, b"abab");
    }

    #[test]
    fn a_decoder_resumed_in_steps_gives_the_full_output() {
        let data = abababa();
        let mut out = b"xy".to_vec();
        let mut d = Decoder::new(&data, 7).unwrap();
        // 4 cuts the match in its middle; a smaller limit later asks for nothing.
        for (limit, want) in [
            (1, "a"),
            (4, "abab"),
            (3, "abab"),
            (6, "ababab"),
            (99, "abababa"),
        ] {
            d.decode(&mut out, 2, limit).unwrap();
            assert_eq!(out[2..], *want.as_bytes(), "limit {limit}");
        }
        assert_eq!(out[..2], *b"xy");
    }

    #[test]
    fn hostile_streams_are_errors() {
        let mut out = Vec::new();
        assert_eq!(
            decode_into(&[0u8; 100], 512, 512, &mut out),
            Err(XpressError::TruncatedTable { len: 100 })
        );
        assert_eq!(
            decode_into(&[0u8; 300], 512, 512, &mut out),
            Err(XpressError::EmptyTable)
        );
        assert_eq!(
            decode_into(&[0x11u8; 300], 512, 512, &mut out),
            Err(XpressError::OverSubscribed)
        );
        assert_eq!(
            decode_into(&[0x11u8; 300], BLOCK + 1, 10, &mut out),
            Err(XpressError::TooLarge { size: BLOCK + 1 })
        );
        // A match first: nothing to copy from.
        let m = 256 + 0x12;
        let data = stream(&[(usize::from(b'a'), 1), (m, 1)], &[(m as u16, 0, 1)]);
        assert_eq!(
            decode_into(&data, 7, 7, &mut Vec::new()),
            Err(XpressError::OffsetBeforeStart { at: 0, offset: 2 })
        );
        // A match past the chunk's end.
        let data = stream(
            &[(usize::from(b'a'), 1), (m, 1)],
            &[
                (u16::from(b'a'), 0, 0),
                (u16::from(b'a'), 0, 0),
                (m as u16, 0, 1),
            ],
        );
        assert_eq!(
            decode_into(&data, 4, 4, &mut Vec::new()),
            Err(XpressError::PastEnd {
                at: 2,
                length: 5,
                size: 4
            })
        );
        // One code of length 1: the other half of the code space is unassigned.
        let data = stream(&[(usize::from(b'a'), 1)], &[]);
        let mut data = data;
        data.extend_from_slice(&[0xFF; 4]);
        assert_eq!(
            decode_into(&data, 10, 10, &mut Vec::new()),
            Err(XpressError::UnassignedCode { at: 0 })
        );
        // Input that runs out: 'a' has code 0, so the zero padding decodes as 'a's until the
        // cursor passes it.
        let data = stream(&[(usize::from(b'a'), 1), (usize::from(b'b'), 1)], &[]);
        assert!(matches!(
            decode_into(&data, 4096, 4096, &mut Vec::new()),
            Err(XpressError::InputEnded { .. })
        ));
    }

    #[test]
    fn a_length_word_below_15_is_an_error() {
        // 'a' (code 0) then the match symbol with length nibble 15 (code 1); the extra byte 255
        // then asks for a 16-bit length, here 5.
        let mut data = vec![0u8; TABLE_LEN];
        data[usize::from(b'a') / 2] |= 0x10;
        data[(256 + 0x0F) / 2] |= 0x10;
        data.extend_from_slice(&[0x00, 0x40, 0, 0, 0xFF, 5, 0]);
        assert_eq!(
            decode_into(&data, 100, 100, &mut Vec::new()),
            Err(XpressError::BadLengthWord { at: 1, value: 5 })
        );
        // The same with a length of 20 copies 23 bytes of 'a'.
        data[TABLE_LEN + 5] = 20;
        let mut out = Vec::new();
        decode_into(&data, 24, 24, &mut out).unwrap();
        assert_eq!(out, [b'a'; 24]);
    }

    #[test]
    fn long_codes_use_the_canonical_walk() {
        // 2^15 leaves: one code of length 1, then lengths 2..=14, then two of length 15.
        let mut lens: Vec<(usize, u8)> = (1..=14u8).map(|l| (usize::from(l), l)).collect();
        lens.push((20, 15));
        lens.push((21, 15));
        let symbols: Vec<(u16, u32, u32)> = [21u16, 14, 13, 1, 20, 12]
            .iter()
            .map(|&s| (s, 0, 0))
            .collect();
        let data = stream(&lens, &symbols);
        let mut out = Vec::new();
        decode_into(&data, 6, 6, &mut out).unwrap();
        assert_eq!(out, [21, 14, 13, 1, 20, 12]);
    }

    /// Every chunk of every compressed fixture decodes to the same bytes as with the
    /// `xpress-huffman` crate (the decoder the reader used before), and a limit gives a prefix.
    #[test]
    fn real_chunks_decode_as_with_the_crate() {
        use super::super::compressed::{self, Record};
        let dir = std::env::var_os("LRS_FIXTURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../shared/fixtures/backups")
            });
        if !dir.join("EXPECTED.json").is_file() {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "fixtures not found at {}",
                dir.display()
            );
            eprintln!("skipping: fixtures not found at {}", dir.display());
            return;
        }
        let mut stack = vec![dir];
        let (mut files, mut chunks) = (0, 0);
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let raw = std::fs::read(&path).unwrap();
                if !raw.starts_with(compressed::MAGIC) {
                    continue;
                }
                files += 1;
                let mut at = compressed::HEADER_LEN;
                loop {
                    let (rec, next) = compressed::record(&raw, at)
                        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                    match rec {
                        Record::End => break,
                        Record::Chunk { payload, size } => {
                            chunks += 1;
                            let data = &raw[payload.0..payload.0 + payload.1];
                            let mut ours = Vec::new();
                            decode_into(data, size, size, &mut ours).unwrap_or_else(|e| {
                                panic!("{} chunk at {at}: {e}", path.display())
                            });
                            let mut padded = data.to_vec();
                            padded.resize(data.len() + PADDING, 0);
                            let theirs = xpress_huffman::decompress(&padded, size).unwrap();
                            assert_eq!(ours.len(), size, "{} chunk at {at}", path.display());
                            assert!(ours == theirs, "{} chunk at {at}", path.display());
                            let mut part = Vec::new();
                            decode_into(data, size, 1000, &mut part).unwrap();
                            assert_eq!(part, ours[..1000.min(size)]);
                        }
                        _ => {}
                    }
                    at = next;
                }
            }
        }
        assert!(
            files >= 2 && chunks > files,
            "{files} files, {chunks} chunks"
        );
        eprintln!("{files} compressed fixtures, {chunks} chunks: identical");
    }
}
