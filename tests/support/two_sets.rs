//! A two-set backup file made from real fixture bytes only (no writer): what
//! `BACKUP DATABASE ... TO DISK = 'f.bak'` then `BACKUP LOG ... TO DISK = 'f.bak' WITH NOINIT` leave.
//!
//! The full backup's file is kept whole; the log backup's set (its blocks from SSET to its final
//! filemark) follows it, renumbered as SQL Server numbers an appended set: SSET +62 and both
//! ESET +78 become 2, SSET +80 (its physical byte address) becomes its new offset, and those
//! blocks' header checksums are recomputed. Every other byte is the fixtures' own. Both files are
//! from one database and have 512-byte blocks, so the blocks line up as they would in one file.

use std::path::Path;

/// The full backup that stays set 1.
pub const FULL: &str = "appveyor-lab/RestoreTimeClean/RestoreTimeClean.bak";
/// The log backup whose set becomes set 2.
pub const LOG: &str = "appveyor-lab/RestoreTimeClean/RestoreTimeClean_1.trn";

fn xor16(bytes: &[u8]) -> u16 {
    bytes
        .chunks(2)
        .fold(0, |acc, w| acc ^ u16::from_le_bytes([w[0], w[1]]))
}

fn reseal(bytes: &mut [u8], at: usize) {
    bytes[at + 50..at + 52].fill(0);
    let c = xor16(&bytes[at..at + 50]);
    bytes[at + 50..at + 52].copy_from_slice(&c.to_le_bytes());
}

/// Whether a 512-byte sector starts a block with this tag and a valid header checksum.
fn is_block(bytes: &[u8], at: usize, tag: &[u8; 4]) -> bool {
    bytes.get(at..at + 4) == Some(tag.as_slice())
        && bytes.len() >= at + 52
        && xor16(&bytes[at..at + 52]) == 0
}

/// Appends the set of `second` (a one-set plain file) to `first` as set `number`.
pub fn append_set(first: &[u8], second: &[u8], number: u16) -> Vec<u8> {
    let sset = (0..second.len())
        .step_by(512)
        .find(|&at| is_block(second, at, b"SSET"))
        .expect("the second file has a set block");
    let base = first.len();
    let mut out = first.to_vec();
    out.extend_from_slice(&second[sset..]);
    let mut renumbered = 0;
    for at in (base..out.len()).step_by(512) {
        if is_block(&out, at, b"SSET") {
            out[at + 62..at + 64].copy_from_slice(&number.to_le_bytes());
            out[at + 80..at + 88].copy_from_slice(&(at as u64).to_le_bytes());
            reseal(&mut out, at);
            renumbered += 1;
        } else if is_block(&out, at, b"ESET") {
            out[at + 78..at + 80].copy_from_slice(&number.to_le_bytes());
            reseal(&mut out, at);
            renumbered += 1;
        }
    }
    assert_eq!(renumbered, 3, "one SSET and two ESET blocks renumbered");
    out
}

/// The full backup with the log backup appended as set 2.
pub fn full_then_log(dir: &Path) -> Vec<u8> {
    let full = std::fs::read(dir.join(FULL)).expect("the full backup fixture");
    let log = std::fs::read(dir.join(LOG)).expect("the log backup fixture");
    append_set(&full, &log, 2)
}
