//! Header parsing per file, from in-memory head and tail buffers (what the handler holds after
//! its two ranged reads): plain and compressed fixtures. Goals: 50,000 files/s plain, 20,000
//! compressed, on one core. Before measuring, prints `bytes_read` against file size for every
//! fixture (goal: at most 128 KiB per file).
//!
//! Run: `cargo bench --bench reader` (fixtures from `../shared/fixtures/backups` or `LRS_FIXTURES`).

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lrs_autopilot::backup::{self, Tail};
use lrs_autopilot::storage::file::read_backup_file;

fn fixtures() -> PathBuf {
    std::env::var_os("LRS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/backups")
        })
}

/// The head and tail a caller would hold for `path`.
fn ranges(path: &Path) -> (Vec<u8>, Vec<u8>, u64) {
    let bytes = std::fs::read(path).expect("fixture is readable");
    let head = bytes[..backup::HEAD_LEN.min(bytes.len())].to_vec();
    let tail = bytes[bytes.len() - backup::TAIL_LEN.min(bytes.len())..].to_vec();
    (head, tail, bytes.len() as u64)
}

fn report_bytes_read(dir: &Path) {
    let mut all: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(p.extension().and_then(|x| x.to_str()), Some("json" | "md")) {
                all.push(p);
            }
        }
    }
    all.sort();
    let (mut max, mut total_read, mut total_size) = (0u64, 0u64, 0u64);
    for p in &all {
        let o = read_backup_file(p).expect("readable");
        max = max.max(o.bytes_read);
        total_read += o.bytes_read;
        total_size += o.file_size;
        println!(
            "bytes_read {:>7} of {:>8} ({:>5.1}%) {}",
            o.bytes_read,
            o.file_size,
            100.0 * o.bytes_read as f64 / o.file_size.max(1) as f64,
            p.strip_prefix(dir).unwrap_or(p).display()
        );
    }
    println!(
        "bytes_read over {} fixtures: max {} bytes, total {} of {} bytes ({:.1}%)",
        all.len(),
        max,
        total_read,
        total_size,
        100.0 * total_read as f64 / total_size.max(1) as f64
    );
}

fn bench(c: &mut Criterion) {
    let dir = fixtures();
    if !dir.join("EXPECTED.json").is_file() {
        eprintln!(
            "fixtures not found at {}: nothing to measure",
            dir.display()
        );
        return;
    }
    report_bytes_read(&dir);
    let cases = [
        ("plain_full", "appveyor-lab/DoubleDiffing/difftest-full.bak"),
        (
            "plain_log",
            "appveyor-lab/OlaMsFilter/complex/Log/test_LOG_20160629_141500.trn",
        ),
        (
            "plain_4k_blocks",
            "misc/CConocimientos__Northwind/Northwind.bak",
        ),
        (
            "compressed_512",
            "appveyor-lab/singlerestore/SharePoint_Config.bak",
        ),
        (
            "compressed_4k",
            "misc/cake-contrib__Cake.SqlServer/src/Tests/multiFilesBackup1.bak.4dad4303",
        ),
    ];
    let mut group = c.benchmark_group("read_header");
    group.throughput(Throughput::Elements(1));
    for (name, file) in cases {
        let (head, tail, size) = ranges(&dir.join(file));
        group.bench_function(name, |b| {
            b.iter(|| {
                let t = Tail {
                    bytes: &tail,
                    file_size: size,
                };
                let f = backup::read(std::hint::black_box(&head), Some(t)).expect("valid");
                assert_eq!(f.complete, Some(true));
                f
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
