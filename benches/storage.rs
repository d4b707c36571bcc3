//! Latency of the storage calls the pipeline makes per event: a 64 KiB head read, a properties
//! call, and a state document read-modify-write (get + If-Match put), on Azurite (through the
//! production SDK path) and on the folder store.
//!
//! `cargo bench --bench storage`; Azurite is started as in the tests (or `AZURITE_BLOB_URL`).

#[path = "../tests/support/azurite.rs"]
mod azurite;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use lrs_autopilot::storage::folder::{FolderStateStore, FolderStore};
use lrs_autopilot::storage::{BlobType, BlobWriter, Precondition, StateStore};
use tokio::runtime::Runtime;

const HEAD: u64 = 64 * 1024;

fn bench_backend(
    c: &mut Criterion,
    rt: &Runtime,
    label: &str,
    blobs: &dyn BlobWriter,
    state: &dyn StateStore,
    container: &str,
) {
    let name = format!("{container}/db1/full.bak");
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    rt.block_on(blobs.upload(&name, Bytes::from(data), BlobType::Block, &BTreeMap::new()))
        .expect("upload");
    let key = format!("{label}/db1.json");
    let doc = vec![b' '; 8 * 1024];
    rt.block_on(state.put(&key, doc.clone(), Precondition::IfNoneMatch))
        .expect("create state");

    let mut group = c.benchmark_group(label);
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("read_range_head_64k", |b| {
        b.iter(|| rt.block_on(blobs.read_range(&name, 0, HEAD)).expect("read"))
    });
    group.bench_function("read_range_tail_64k", |b| {
        b.iter(|| {
            rt.block_on(blobs.read_range(&name, 4 * 1024 * 1024 - HEAD, HEAD))
                .expect("read")
        })
    });
    group.bench_function("properties", |b| {
        b.iter(|| rt.block_on(blobs.properties(&name)).expect("properties"))
    });
    group.bench_function("state_get_put_8k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (bytes, etag) = state.get(&key).await.expect("get").expect("exists");
                state
                    .put(&key, bytes, Precondition::IfMatch(etag))
                    .await
                    .expect("put")
            })
        })
    });
    group.finish();
}

fn storage(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");

    let dir = tempfile::tempdir().expect("tempdir");
    let folder = FolderStore::new(dir.path().join("root")).expect("folder");
    rt.block_on(folder.ensure_container("bench"))
        .expect("container");
    let folder_state = FolderStateStore::new(dir.path().join("state")).expect("state");
    bench_backend(c, &rt, "folder", &folder, &folder_state, "bench");

    let az = azurite::azurite();
    let container = azurite::unique_container("bench");
    let blobs = az.blob_store();
    rt.block_on(blobs.ensure_container(&container))
        .expect("container");
    let state = az.state_store(&container);
    bench_backend(c, &rt, "azurite", &blobs, &state, &container);
}

criterion_group!(benches, storage);
criterion_main!(benches);
