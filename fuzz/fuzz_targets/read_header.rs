//! Fuzzes the backup reader with the whole read path: the head alone, then the `Fetch` driver
//! (head, tail, a longer head) over the same bytes. None may panic; a header read from the head
//! alone must agree with the one read with the tail on what identifies the set; and no header
//! field may size a read: no single read is longer than `MAX_READ`, and a whole fetch asks for at
//! most twice that, even from a file far larger than the input (inputs of odd length stand for the
//! head of a 1 GiB file, so a length claimed in the header could ask for much more).
#![no_main]

// The reader itself, compiled from the crate's source (see Cargo.toml for why).
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/backup/mod.rs"]
mod backup;

use backup::Fetch;
use libfuzzer_sys::fuzz_target;

const LARGE_FILE: u64 = 1 << 30;

fuzz_target!(|data: &[u8]| {
    let head_only = backup::read(data, None);
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
    if let (Ok(a), Ok(b)) = (&head_only, &outcome.result) {
        assert_eq!(a.media, b.media);
        assert_eq!(a.backup_sets.len(), b.backup_sets.len());
        for (x, y) in a.backup_sets.iter().zip(&b.backup_sets) {
            assert_eq!(x.backup_set_guid, y.backup_set_guid);
            assert_eq!(x.database_name, y.database_name);
        }
    }
});
