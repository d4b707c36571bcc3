//! Fuzzes the backup reader with the whole read path, the `Fetch` driver (head, tail, a longer
//! head) over the input's bytes. Nothing may panic, and no header field may size a read: no single
//! read is longer than `MAX_READ`, and a whole fetch asks for at most twice that, even from a file
//! far larger than the input (inputs of odd length stand for the head of a 1 GiB file, so a length
//! claimed in the header could ask for much more). A fetch reads the head alone first, so reading
//! it once more with `backup::read` would only halve the rate.
#![no_main]

// The reader itself, compiled from the crate's source (see Cargo.toml for why).
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/backup/mod.rs"]
mod backup;

use backup::Fetch;
use libfuzzer_sys::fuzz_target;

const LARGE_FILE: u64 = 1 << 30;

fuzz_target!(|data: &[u8]| {
    let file_size = if data.len() % 2 == 1 {
        LARGE_FILE
    } else {
        data.len() as u64
    };
    let mut fetch = Fetch::new(file_size);
    let mut rounds = 0;
    let mut asked = 0u64;
    while let Some(r) = fetch.poll_read() {
        rounds += 1;
        assert!(rounds < 64, "fetch does not settle");
        assert!(r.len <= backup::MAX_READ, "one read of {} bytes", r.len);
        asked += r.len as u64;
        // Beyond the input the large file is unknown: the read comes back short.
        let start = usize::try_from(r.offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(r.len).min(data.len());
        fetch.handle_read(r, data.get(start..end).unwrap_or(&[]));
    }
    assert!(
        asked <= 2 * backup::MAX_READ as u64,
        "asked for {asked} bytes"
    );
    let outcome = fetch.finish();
    assert!(outcome.bytes_read <= data.len() as u64);
    // A file read whole is not `NeedMoreHead`: that answer means the driver stopped short.
    assert!(
        !matches!(outcome.result, Err(backup::Error::NeedMoreHead { .. })),
        "{:?}",
        outcome.result
    );
});
