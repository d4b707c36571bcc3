//! A bounds-checked little-endian reader over a byte slice: every read either succeeds or returns
//! [`Eof`], so no input can make the parser panic or read out of bounds.

use uuid::Uuid;

/// A read went past the end of the bytes at hand: `end` is the first byte offset (in the slice)
/// that would have been needed to satisfy it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Eof {
    /// One past the last byte the read wanted.
    pub end: usize,
}

/// Reads little-endian values at absolute offsets of a slice, all checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    /// The `n` bytes at `at`.
    pub fn slice(self, at: usize, n: usize) -> Result<&'a [u8], Eof> {
        let end = at.checked_add(n).ok_or(Eof { end: usize::MAX })?;
        self.0.get(at..end).ok_or(Eof { end })
    }

    /// `N` bytes at `at` as an array.
    pub fn array<const N: usize>(self, at: usize) -> Result<[u8; N], Eof> {
        let s = self.slice(at, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// One byte.
    pub fn u8(self, at: usize) -> Result<u8, Eof> {
        Ok(self.array::<1>(at)?[0])
    }

    /// A little-endian u16.
    pub fn u16(self, at: usize) -> Result<u16, Eof> {
        Ok(u16::from_le_bytes(self.array(at)?))
    }

    /// A little-endian u32.
    pub fn u32(self, at: usize) -> Result<u32, Eof> {
        Ok(u32::from_le_bytes(self.array(at)?))
    }

    /// A little-endian u64.
    pub fn u64(self, at: usize) -> Result<u64, Eof> {
        Ok(u64::from_le_bytes(self.array(at)?))
    }

    /// A GUID in the Windows mixed-endian layout SQL Server writes.
    pub fn guid(self, at: usize) -> Result<Uuid, Eof> {
        Ok(Uuid::from_bytes_le(self.array(at)?))
    }

    /// A UTF-16LE string of `len` bytes at `at`, trailing NULs dropped; `None` when empty.
    pub fn utf16(self, at: usize, len: usize) -> Result<Option<String>, Eof> {
        let raw = self.slice(at, len)?;
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let s = String::from_utf16_lossy(&units);
        let s = s.trim_end_matches('\0');
        Ok((!s.is_empty()).then(|| s.to_string()))
    }
}

/// Reads at offsets relative to `base` in a larger slice, so a short read reports how far into
/// the whole slice it wanted (what a caller must read to satisfy it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rel<'a> {
    /// The whole slice.
    pub buf: Bytes<'a>,
    /// Where offsets count from.
    pub base: usize,
}

impl<'a> Rel<'a> {
    fn abs(self, at: usize) -> Result<usize, Eof> {
        self.base.checked_add(at).ok_or(Eof { end: usize::MAX })
    }

    /// The `n` bytes at `at`.
    pub fn slice(self, at: usize, n: usize) -> Result<&'a [u8], Eof> {
        self.buf.slice(self.abs(at)?, n)
    }

    /// A little-endian u16.
    pub fn u16(self, at: usize) -> Result<u16, Eof> {
        self.buf.u16(self.abs(at)?)
    }

    /// A little-endian u32.
    pub fn u32(self, at: usize) -> Result<u32, Eof> {
        self.buf.u32(self.abs(at)?)
    }
}

/// XOR of the little-endian u16 words of `bytes` (the MTF header checksum).
pub(crate) fn xor16(bytes: &[u8]) -> u16 {
    bytes
        .chunks_exact(2)
        .fold(0u16, |acc, w| acc ^ u16::from_le_bytes([w[0], w[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_report_how_far_they_wanted() {
        let b = Bytes(&[1, 2, 3]);
        assert_eq!(b.u16(1), Ok(0x0302));
        assert_eq!(b.u32(1), Err(Eof { end: 5 }));
        assert_eq!(b.slice(usize::MAX, 2), Err(Eof { end: usize::MAX }));
    }

    #[test]
    fn utf16_drops_trailing_nuls_and_empties() {
        let b = Bytes(&[b'h', 0, b'i', 0, 0, 0]);
        assert_eq!(b.utf16(0, 6), Ok(Some("hi".into())));
        assert_eq!(b.utf16(4, 2), Ok(None));
        assert_eq!(b.utf16(0, 3), Ok(Some("h".into())));
    }

    #[test]
    fn xor16_of_a_header_with_its_checksum_is_zero() {
        let mut h = [0x12u8, 0x34, 0x56, 0x78, 0, 0];
        let c = xor16(&h[..4]).to_le_bytes();
        h[4..].copy_from_slice(&c);
        assert_eq!(xor16(&h), 0);
    }
}
