//! Differential fuzzing of the reader's MS-XCA LZ77+Huffman decoder (`src/backup/xpress.rs`)
//! against the `xpress-huffman` crate it replaced, called as the reader called it (the payload
//! padded with zero bytes, the output checked to be the chunk's size). On any input:
//! - when ours decodes, the crate gives the same bytes;
//! - when ours finds the data bad (a match before the start or past the end, the input ending),
//!   the crate fails too or gives the wrong length;
//! - ours refuses, where the crate goes on, tables the spec's canonical code cannot come from
//!   (over-subscribed or empty), bits that match no code of an incomplete table (the crate
//!   decodes them as byte 0) and a 16-bit match length below 15 (invalid per [MS-XCA]): no claim
//!   is made on the crate there, nor where the crate refuses an incomplete table (Kraft sum
//!   below one) whose decoding tree outgrows its 1,024-node arena, which ours decodes;
//! - a limit gives a prefix of the full output, and never more than asked;
//! - a decoder stopped at that limit and resumed gives the full output.
#![no_main]

#[allow(dead_code, missing_docs)]
#[path = "../../src/backup/xpress.rs"]
mod xpress;

use libfuzzer_sys::fuzz_target;
use xpress::XpressError;

/// Outputs up to 8 KiB (a real chunk holds up to 64 KiB, decoded with both in the reader's unit
/// tests): nothing in the decoder depends on the size but how far a match may reach, and a 64 KiB
/// output costs each input milliseconds under coverage instrumentation.
const MAX_SIZE: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, input @ ..] = data else {
        return;
    };
    let size = usize::from(u16::from_le_bytes([*a, *b])) % MAX_SIZE + 1;
    let mut ours = Vec::new();
    let result = xpress::decode_into(input, size, size, &mut ours);
    // Only where a claim is made: the crate's table sort dominates the run.
    let theirs = || {
        let mut padded = input.to_vec();
        padded.resize(input.len() + xpress::PADDING, 0);
        match xpress_huffman::decompress(&padded, size) {
            Err(xpress_huffman::Error::InvalidHuffmanTable) if incomplete(&padded) => None,
            Err(_) => Some(None),
            Ok(o) => Some(Some(o).filter(|o| o.len() == size)),
        }
    };
    match result {
        Ok(()) => {
            assert_eq!(ours.len(), size);
            if let Some(theirs) = theirs() {
                assert!(
                    Some(&ours) == theirs.as_ref(),
                    "the crate decodes otherwise"
                );
            }
            let limit = size * usize::from(*c) / 255;
            let mut part = Vec::new();
            xpress::decode_into(input, size, limit, &mut part).expect("a prefix decodes");
            assert_eq!(part, ours[..limit]);
            let mut resumed = vec![0xEE];
            let mut d = xpress::Decoder::new(input, size).expect("the table was read before");
            d.decode(&mut resumed, 1, limit).expect("a prefix decodes");
            d.decode(&mut resumed, 1, size).expect("the rest decodes");
            assert!(resumed[1..] == ours[..], "resumed decoding differs");
        }
        Err(
            XpressError::OverSubscribed
            | XpressError::EmptyTable
            | XpressError::UnassignedCode { .. }
            | XpressError::BadLengthWord { .. },
        ) => {}
        Err(e) => assert!(
            !matches!(theirs(), Some(Some(_))),
            "ours: {e}; the crate decodes it"
        ),
    }
});

/// Whether the code lengths at the start of `padded` leave codes unassigned (Kraft sum below 1).
fn incomplete(padded: &[u8]) -> bool {
    let used: u32 = padded
        .iter()
        .take(256)
        .flat_map(|b| [b & 0x0F, b >> 4])
        .filter(|&l| l > 0)
        .map(|l| 1u32 << (15 - l))
        .sum();
    used < 1 << 15
}
