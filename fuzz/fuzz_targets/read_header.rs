//! Fuzzes the backup reader with the whole read path: the head alone, then head and tail split
//! from the same bytes, then the `Fetch` driver over them. None may panic; a header read from the
//! head alone must agree with the one read with the tail on what identifies the set.
#![no_main]

// The reader itself, compiled from the crate's source (see Cargo.toml for why).
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/backup/mod.rs"]
mod backup;

use backup::{Fetch, Tail};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head_only = backup::read(data, None);
    let tail_start = data.len().saturating_sub(backup::TAIL_LEN);
    let tail = Tail {
        bytes: data.get(tail_start..).unwrap_or(&[]),
        file_size: data.len() as u64,
    };
    let with_tail = backup::read(data, Some(tail));
    if let (Ok(a), Ok(b)) = (&head_only, &with_tail) {
        assert_eq!(a.media, b.media);
        assert_eq!(a.backup_sets.len(), b.backup_sets.len());
        for (x, y) in a.backup_sets.iter().zip(&b.backup_sets) {
            assert_eq!(x.backup_set_guid, y.backup_set_guid);
            assert_eq!(x.database_name, y.database_name);
        }
    }
    let mut fetch = Fetch::new(data.len() as u64);
    let mut rounds = 0;
    while let Some(r) = fetch.poll_read() {
        rounds += 1;
        assert!(rounds < 64, "fetch does not settle");
        let start = usize::try_from(r.offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(r.len).min(data.len());
        fetch.handle_read(r, data.get(start..end).unwrap_or(&[]));
    }
    let outcome = fetch.finish();
    assert!(outcome.bytes_read <= data.len() as u64);
});
