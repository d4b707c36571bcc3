//! Hostile input: truncated and bit-flipped copies of real backups, arbitrary bytes, and strict
//! prefixes. The reader must say "truncated", "incomplete" or "corrupt" (naming the block), never
//! panic, and never report a fact the intact file does not have.

mod support;

use std::path::{Path, PathBuf};

use lrs_autopilot::backup::{self, BackupFile, Error, Fetch, Tail};
use lrs_autopilot::storage::file::read_backup_file;
use proptest::prelude::*;

/// Files covering each shape: plain full, diff and log, 4 KiB blocks, compressed 512 and 4 KiB.
const SAMPLES: [&str; 6] = [
    "appveyor-lab/DoubleDiffing/difftest-full.bak",
    "appveyor-lab/DoubleDiffing/difftest-diff1.bak",
    "appveyor-lab/OlaMsFilter/complex/Log/test_LOG_20160629_141500.trn",
    "misc/CConocimientos__Northwind/Northwind.bak",
    "appveyor-lab/singlerestore/SharePoint_Config.bak",
    "misc/cake-contrib__Cake.SqlServer/src/Tests/multiFilesBackup1.bak.4dad4303",
];

fn fixture(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs the production read path (a file on disk, ranged reads) over `bytes`.
fn read_bytes_as_file(tmp: &Path, bytes: &[u8]) -> backup::FetchOutcome {
    let path: PathBuf = tmp.join("copy.bak");
    std::fs::write(&path, bytes).expect("temp copy is writable");
    read_backup_file(&path).expect("temp copy is readable")
}

/// Every fact a damaged copy reports must be the intact file's (LSNs and sizes may only come
/// from the opening copy, as in a head-only read).
fn assert_no_wrong_facts(
    name: &str,
    got: &BackupFile,
    intact: &BackupFile,
    head_only: &BackupFile,
) {
    assert_eq!(got.media, intact.media, "{name}: media");
    assert!(got.backup_sets.len() <= intact.backup_sets.len(), "{name}");
    for (g, (i, h)) in got
        .backup_sets
        .iter()
        .zip(intact.backup_sets.iter().zip(&head_only.backup_sets))
    {
        assert_eq!(g.backup_set_guid, i.backup_set_guid, "{name}");
        assert_eq!(g.database_name, i.database_name, "{name}");
        assert_eq!(g.backup_type, i.backup_type, "{name}");
        assert_eq!(g.files, i.files, "{name}");
        assert!(
            g.first_lsn == i.first_lsn || g.first_lsn == h.first_lsn,
            "{name}: first_lsn"
        );
        assert!(
            g.last_lsn == i.last_lsn || g.last_lsn == h.last_lsn,
            "{name}: last_lsn"
        );
        assert!(
            g.backup_finish.is_none() || g.backup_finish == i.backup_finish,
            "{name}: finish"
        );
        assert!(
            g.backup_size.is_none() || g.backup_size == i.backup_size,
            "{name}: size"
        );
    }
}

#[test]
fn truncated_copies_report_truncated_or_incomplete_and_never_wrong_facts() {
    let dir = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("temp dir");
    for name in SAMPLES {
        let bytes = fixture(&dir, name);
        let intact = read_bytes_as_file(tmp.path(), &bytes)
            .result
            .expect("intact file reads");
        let head = bytes
            .get(..backup::HEAD_LEN.min(bytes.len()))
            .unwrap_or(&bytes);
        let head_only = backup::read(head, None).expect("head reads");
        let len = bytes.len();
        let cuts = [
            1,
            7,
            52,
            700,
            1500,
            3000,
            5000,
            9000,
            len / 3,
            len / 2,
            len - 4096,
            len - 1024,
            len - 512,
            len - 1,
        ];
        for cut in cuts {
            let outcome = read_bytes_as_file(tmp.path(), bytes.get(..cut).unwrap_or(&bytes));
            match &outcome.result {
                Err(Error::Truncated { .. }) => {}
                Ok(file) => {
                    assert_eq!(
                        file.complete,
                        Some(false),
                        "{name} cut at {cut}: claims complete"
                    );
                    assert_no_wrong_facts(
                        &format!("{name} cut at {cut}"),
                        file,
                        &intact,
                        &head_only,
                    );
                }
                other => panic!("{name} cut at {cut}: {other:?}"),
            }
        }
    }
}

/// Offsets of the DBLK headers in a plain file, walked the way the reader walks them.
fn block_offsets(bytes: &[u8]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + 52 <= bytes.len() {
        let tag = String::from_utf8_lossy(&bytes[p..p + 4]).to_string();
        if ["TAPE", "SSET", "VOLB", "MSCI", "MSLS", "ESET", "SFMB"].contains(&tag.as_str()) {
            out.push((tag, p));
        }
        p += 512;
    }
    out
}

#[test]
fn bit_flips_in_header_blocks_report_corruption_naming_the_block() {
    let dir = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("temp dir");
    for name in &SAMPLES[..4] {
        let bytes = fixture(&dir, name);
        let blocks = block_offsets(&bytes);
        let head_or_tail = |p: usize| p < backup::HEAD_LEN || p >= bytes.len() - backup::TAIL_LEN;
        let mut flipped = 0;
        for (tag, at) in blocks.iter().filter(|(_, p)| head_or_tail(*p)) {
            // A bit in the header's body (the checksum covers bytes 0..50) and one in the tag.
            for (offset, bit) in [(20usize, 0x10u8), (37, 0x01), (2, 0x04)] {
                let mut copy = bytes.clone();
                copy[at + offset] ^= bit;
                let result = read_bytes_as_file(tmp.path(), &copy).result;
                match &result {
                    Err(Error::Corrupt { block, .. }) => {
                        // A damaged tag is not that block any more: the one before it is named.
                        if offset != 2 {
                            assert_eq!(block, tag, "{name}: flip in {tag} at {at}+{offset}");
                        }
                    }
                    Ok(f) if offset == 2 && f.complete == Some(false) && tag != "TAPE" => {}
                    Err(Error::NotABackup { .. }) if tag == "TAPE" && offset == 2 => {}
                    other => panic!("{name}: flip in {tag} at {at}+{offset}: {other:?}"),
                }
                flipped += 1;
            }
        }
        assert!(flipped >= 24, "{name}: only {flipped} flips tried");
    }
}

#[test]
fn a_changed_database_name_in_the_closing_copy_is_corruption() {
    let dir = fixtures_or_skip!();
    let bytes = fixture(&dir, SAMPLES[0]);
    let msls = block_offsets(&bytes)
        .into_iter()
        .rev()
        .find(|(t, _)| t == "MSLS")
        .expect("MSLS")
        .1;
    let scin = msls
        + bytes[msls..]
            .windows(4)
            .position(|w| w == b"SCIN")
            .expect("SCIN");
    let name_len = usize::from(u16::from_le_bytes([bytes[scin + 0x68], bytes[scin + 0x69]]));
    let name_at = scin + usize::from(u16::from_le_bytes([bytes[scin + 0x6A], bytes[scin + 0x6B]]));
    assert!(name_len > 0);
    let mut copy = bytes.clone();
    copy[name_at] ^= 0x01;
    let tail = Tail {
        bytes: &copy[copy.len() - backup::TAIL_LEN..],
        file_size: copy.len() as u64,
    };
    let err = backup::read(&copy[..backup::HEAD_LEN], Some(tail)).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { block, detail, .. } if block == "MSLS" && detail.contains("database name")),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("corrupt backup: "), "{err}");
}

#[test]
fn damaged_compressed_chunks_report_corruption() {
    let dir = fixtures_or_skip!();
    for name in &SAMPLES[4..] {
        let bytes = fixture(&dir, name);
        // Inside the first chunk's Huffman table, and inside the second chunk's payload.
        for at in [0x1E0 + 28 + 10, 0x1E0 + 28 + 300] {
            let mut copy = bytes.clone();
            copy[at] ^= 0x5A;
            let result = backup::read(&copy[..backup::HEAD_LEN], None);
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "{name} flip at {at}: {result:?}"
            );
        }
    }
}

#[test]
fn a_compressed_chunk_claiming_more_than_64_kib_is_corruption() {
    let dir = fixtures_or_skip!();
    for name in &SAMPLES[4..] {
        let mut copy = fixture(&dir, name);
        // The first chunk's size in 512-byte units: SQL Server writes at most 0x80.
        assert_eq!(copy[0x1E0], 0x21, "{name}: the first record is a chunk");
        assert!(copy[0x1E0 + 1] <= 0x80, "{name}");
        copy[0x1E0 + 1] = 0xFF;
        let result = backup::read(&copy[..backup::HEAD_LEN], None);
        assert!(
            matches!(&result, Err(Error::Corrupt { detail, .. }) if detail.contains("more than")),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn the_postgresql_dump_and_empty_files_are_not_backups() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let empty = read_bytes_as_file(tmp.path(), b"");
    assert_eq!(
        empty.result,
        Err(Error::NotABackup {
            reason: "the file is empty".into()
        })
    );
    assert_eq!(empty.bytes_read, 0);
    let pg = read_bytes_as_file(tmp.path(), b"PGDMP\x01\x0f\x00 rest of a dump");
    let err = pg.result.unwrap_err();
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    let text = read_bytes_as_file(tmp.path(), b"hello, this is text");
    assert!(matches!(text.result, Err(Error::NotABackup { .. })));
}

fn fetch_over(bytes: &[u8]) -> backup::FetchOutcome {
    let mut fetch = Fetch::new(bytes.len() as u64);
    let mut rounds = 0;
    while let Some(r) = fetch.poll_read() {
        rounds += 1;
        assert!(rounds < 64, "fetch does not settle");
        let start = (r.offset as usize).min(bytes.len());
        let end = start.saturating_add(r.len).min(bytes.len());
        fetch.handle_read(r, &bytes[start..end]);
    }
    fetch.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = backup::read(&data, None);
        let _ = backup::read(&data, Some(Tail { bytes: &data, file_size: data.len() as u64 }));
        let outcome = fetch_over(&data);
        prop_assert!(outcome.bytes_read <= data.len() as u64);
    }

    #[test]
    fn arbitrary_bytes_behind_a_real_magic_never_panic(
        magic in prop_oneof![Just(&b"TAPE"[..]), Just(&b"MSSQLBAK"[..])],
        data in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&data);
        let _ = backup::read(&bytes, None);
        let _ = fetch_over(&bytes);
    }
}

/// Strict prefixes of a real head give NeedMoreHead (no tail) or Truncated (the prefix is the
/// whole file); longer ones the same facts as the whole head.
#[test]
fn strict_prefixes_give_need_more_head_or_truncated() {
    let dir = fixtures_or_skip!();
    for name in SAMPLES {
        let bytes = fixture(&dir, name);
        let head = &bytes[..backup::HEAD_LEN.min(bytes.len())];
        let whole = backup::read(head, None).expect("head reads");
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
        runner
            .run(&(0..head.len()), |cut| {
                let prefix = &head[..cut];
                match backup::read(prefix, None) {
                    Err(Error::NeedMoreHead { needed }) => prop_assert!(needed > cut),
                    Ok(f) => {
                        let (g, w) = (&f.backup_sets[0], &whole.backup_sets[0]);
                        prop_assert_eq!(g.backup_set_guid, w.backup_set_guid);
                        prop_assert_eq!(&g.database_name, &w.database_name);
                        prop_assert_eq!(&g.files, &w.files);
                        prop_assert_eq!(&f.media, &whole.media);
                        // A prefix may lack the closing copy, never disagree with it.
                        prop_assert!(
                            g.backup_finish.is_none() || g.backup_finish == w.backup_finish
                        );
                    }
                    other => prop_assert!(false, "{name} prefix {cut}: {other:?}"),
                }
                let tail = Tail {
                    bytes: prefix,
                    file_size: cut as u64,
                };
                match backup::read(prefix, Some(tail)) {
                    Err(Error::Truncated { .. }) | Err(Error::NotABackup { .. }) if cut == 0 => {}
                    Err(Error::Truncated { .. }) => {}
                    Ok(f) => prop_assert_eq!(f.complete, Some(false)),
                    other => prop_assert!(false, "{name} prefix {cut} as a file: {other:?}"),
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// XOR of the 16-bit little-endian words, as MTF checksums are computed.
fn xor16(bytes: &[u8]) -> u16 {
    bytes.chunks(2).fold(0, |x, w| {
        x ^ u16::from_le_bytes([w[0], *w.get(1).unwrap_or(&0)])
    })
}

/// Sets the length of the first MSCI block's padding stream (SPAD) to `len`, with a valid stream
/// checksum: a header whose own length field would size the tail read.
fn claim_msci_padding(bytes: &mut [u8], len: u64) {
    let (_, msci) = block_offsets(bytes)
        .into_iter()
        .find(|(tag, _)| tag == "MSCI")
        .expect("an MSCI block");
    let mut at = msci + usize::from(u16::from_le_bytes([bytes[msci + 8], bytes[msci + 9]]));
    loop {
        let id = &bytes[at..at + 4];
        let stream_len = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8 bytes"));
        if id == b"SPAD" {
            bytes[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
            let sum = xor16(&bytes[at..at + 20]);
            bytes[at + 20..at + 22].copy_from_slice(&sum.to_le_bytes());
            return;
        }
        let data_end = at + 22 + usize::try_from(stream_len).expect("a real stream length");
        at = msci + ((data_end - msci + 3) & !3);
    }
}

/// A synthetic full backup as the writer writes it, with 64 KiB of data pages.
fn written_backup() -> Vec<u8> {
    use lrs_autopilot::backup::writer::{WriteOptions, write};
    use lrs_autopilot::chain::FileRead;
    use lrs_autopilot::chain::synthetic::Synthetic;
    let file = Synthetic::new("Sales").full(100, 200).file("f.bak");
    let FileRead::Read { facts } = &file.read else {
        panic!("synthetic facts");
    };
    write(
        facts,
        &WriteOptions {
            data_len: 64 * 1024,
            complete: true,
        },
    )
}

/// Issue 11 item 2: a stream length in the header never sizes a read. The MSCI block's padding
/// claims from just over 64 KiB up to 2^40 bytes in a 700 MB (sparse) file: `inspect` used to
/// read 629 MB in one ranged read. Now the file is corrupt, said from the head alone.
#[test]
fn a_header_length_never_sizes_a_read() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file_size: u64 = 700 * 1024 * 1024;
    let mut sources = vec![("writer", written_backup())];
    if let Some(dir) = support::fixtures_dir() {
        sources.push((SAMPLES[0], fixture(&dir, SAMPLES[0])));
    }
    for (source, intact) in &sources {
        for claim in [
            64 * 1024 + 4,
            1u64 << 20,
            (backup::MAX_READ as u64) - 64 * 1024,
            backup::MAX_READ as u64,
            629 * 1024 * 1024,
            u64::from(u32::MAX),
            1 << 40,
        ] {
            let mut bytes = intact.clone();
            claim_msci_padding(&mut bytes, claim);
            let path = tmp.path().join("crafted.bak");
            std::fs::write(&path, &bytes).expect("write the crafted head");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open");
            f.set_len(file_size).expect("a sparse 700 MB file");
            let outcome = read_backup_file(&path).expect("readable");
            eprintln!(
                "{source}: MSCI padding claims {claim} bytes: read {} bytes: {:?}",
                outcome.bytes_read,
                outcome.result.as_ref().map(|_| "ok")
            );
            assert!(
                outcome.bytes_read <= 2 * backup::MAX_READ as u64,
                "{source}: {claim}: read {}",
                outcome.bytes_read
            );
            match &outcome.result {
                Err(Error::Corrupt { block, detail, .. }) => {
                    assert_eq!(block, "MSCI", "{detail}");
                    assert!(detail.contains("claims"), "{detail}");
                }
                other => panic!("{source}: {claim}: {other:?}"),
            }
            assert_eq!(
                outcome.bytes_read,
                backup::HEAD_LEN as u64,
                "{source}: {claim}: refused from the head alone"
            );
        }
    }
}

/// Rewrites the set number at `field` of every block tagged `tag` from `from_offset` on.
fn renumber(bytes: &mut [u8], from_offset: usize, tag: &[u8; 4], field: usize, value: &[u8]) {
    for at in (from_offset..bytes.len().saturating_sub(52)).step_by(512) {
        if &bytes[at..at + 4] == tag && xor16(&bytes[at..at + 52]) == 0 {
            bytes[at + field..at + field + value.len()].copy_from_slice(value);
            bytes[at + 50..at + 52].fill(0);
            let c = xor16(&bytes[at..at + 50]);
            bytes[at + 50..at + 52].copy_from_slice(&c.to_le_bytes());
        }
    }
}

/// A two-set file (a real full, then a real log appended as set 2) whose set numbers and offsets
/// lie: the reader reads a head and a tail and no more, never panics, and either lists what the
/// bytes hold or names the contradiction. A number never sizes a read; one that claims more sets
/// only makes the file look like more sets, which blocks it.
#[test]
fn set_numbers_and_offsets_that_lie_in_a_two_set_file_size_no_read() {
    let dir = fixtures_or_skip!();
    let intact = support::two_sets::full_then_log(&dir);
    let full_len = fixture(&dir, support::two_sets::FULL).len();
    let bounded = |o: &backup::FetchOutcome| {
        assert_eq!(
            o.bytes_read,
            (backup::HEAD_LEN + backup::TAIL_LEN) as u64,
            "a head and a tail"
        );
    };
    let good = fetch_over(&intact);
    bounded(&good);
    let good = good.result.expect("the intact two-set file reads");
    for (number, expect) in [
        (0u16, Err("higher number")),
        (1, Err("disagrees")),
        (3, Ok(3)),
        (u16::MAX, Ok(u16::MAX)),
    ] {
        let mut bytes = intact.clone();
        renumber(&mut bytes, full_len, b"ESET", 78, &number.to_le_bytes());
        let outcome = fetch_over(&bytes);
        bounded(&outcome);
        match (expect, &outcome.result) {
            (Err(needle), Err(Error::Corrupt { detail, .. })) => {
                assert!(detail.contains(needle), "{number}: {detail}");
            }
            (Ok(count), Ok(file)) => {
                assert_eq!(file.set_count, Some(count));
                assert_eq!(file.backup_sets[0], good.backup_sets[0]);
                assert_eq!(file.backup_sets[1].position, number);
                assert_eq!(file.backup_sets[1].last_lsn, good.backup_sets[1].last_lsn);
            }
            (_, other) => panic!("set number {number}: {other:?}"),
        }
    }
    // The appended set block's address (SSET +80) and number (+62) are never followed: whatever
    // they claim, the file reads the same.
    let mut bytes = intact.clone();
    renumber(&mut bytes, full_len, b"SSET", 80, &u64::MAX.to_le_bytes());
    renumber(&mut bytes, full_len, b"SSET", 62, &7u16.to_le_bytes());
    let outcome = fetch_over(&bytes);
    bounded(&outcome);
    assert_eq!(outcome.result.expect("reads"), good);
    // Cut anywhere in the second set: truncated or incomplete, with set 1's facts only.
    for cut in [
        full_len + 512,
        full_len + 4096,
        intact.len() - 1024,
        intact.len() - 1,
    ] {
        let outcome = fetch_over(&intact[..cut]);
        assert!(outcome.bytes_read <= (backup::HEAD_LEN + backup::TAIL_LEN) as u64);
        match outcome.result {
            Ok(file) => {
                assert_eq!(file.complete, Some(false), "cut at {cut}");
                assert_eq!(file.backup_sets, good.backup_sets[..1], "cut at {cut}");
            }
            Err(Error::Truncated { .. } | Error::Corrupt { .. }) => {}
            Err(e) => panic!("cut at {cut}: {e}"),
        }
    }
}
