//! The pipeline's benchmark, a bench binary (not criterion: it measures throughput, tail latency,
//! bytes and memory of a system of processes, which criterion's per-iteration model does not fit).
//! Run with `cargo bench --bench pipeline`; it prints one line per figure.
//!
//! Against Azurite and the LRS simulator on this machine, through the test rig
//! (`tests/pipeline_support`): the handler in process over real HTTP, or the built binary.
//! - BackupCreated: events/s, p50 and p99 latency, for new files (header read, state write, LRS
//!   start on each full backup) with 16 invocations in flight (the default `maxConcurrentCalls`),
//!   one at a time on a fresh account, and one at a time for databases waiting for an LRS slot;
//!   for redelivered events (duplicates); bytes read per new file and the state document's size;
//! - a CutoverTimer pass over 1,000 restoring databases, all due, with 50 ms added to every ARM
//!   request by the simulator's latency fault (and a pass with none due);
//! - cold start of `serve` to the first answered `GET /`, and its RSS when idle.
//!
//! `PIPELINE_BENCH_DATABASES` (default 100, 8 files each) and `PIPELINE_BENCH_TIMER_DATABASES`
//! (default 1000) scale the runs.

#[path = "../tests/pipeline_support/mod.rs"]
mod pipeline_support;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use lrs_autopilot::lrs::ops::{StartRestore, StorageAuth};
use lrs_autopilot::migration::{MigrationState, Phase};
use lrs_autopilot::pipeline::{ArmLrs, Pipeline};
use lrs_autopilot::sim::Faults;
use lrs_autopilot::storage::{BlobStore, ETag, Error as StorageError, Precondition, StateStore};
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, Endpoint, InProcess, Rig, RigOptions, Schema, Serve, Uploaded,
    clean_dir, instance, ledger,
};
use serde_json::Value;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let Some(fixtures) = support::fixtures_dir() else {
        eprintln!("the benchmark needs the backup fixtures");
        return;
    };
    let databases = env_usize("PIPELINE_BENCH_DATABASES", 100);
    let timer_databases = env_usize("PIPELINE_BENCH_TIMER_DATABASES", 1000);
    // `PIPELINE_BENCH_ONLY=events,timer,cutover,binary` runs some sections (default: all).
    let only = std::env::var("PIPELINE_BENCH_ONLY").unwrap_or_default();
    let run = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    if run("events") {
        backup_created(&fixtures, databases).await;
    }
    if run("timer") {
        cutover_timer(&fixtures, timer_databases).await;
    }
    if run("cutover") {
        cutover_lag(&fixtures).await;
    }
    if run("binary") {
        binary(&fixtures).await;
    }
}

/// Latencies, sorted.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(mut v: Vec<Duration>) -> Self {
        v.sort();
        Latencies(v)
    }
    fn pct(&self, p: f64) -> Duration {
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0.get(i).copied().unwrap_or_default()
    }
    fn line(&self, what: &str, elapsed: Duration) {
        println!(
            "{what}: {} events in {:.2} s = {:.0} events/s; p50 {:.2} ms, p99 {:.2} ms",
            self.0.len(),
            elapsed.as_secs_f64(),
            self.0.len() as f64 / elapsed.as_secs_f64(),
            self.pct(0.5).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Delivers `events` with `in_flight` invocations at a time; every answer must be 200.
async fn deliver(endpoint: &Endpoint, events: &[Value], in_flight: usize) -> (Latencies, Duration) {
    let began = Instant::now();
    let times: Vec<Duration> = futures::stream::iter(events.iter().map(|event| {
        let endpoint = endpoint.clone();
        async move {
            let t = Instant::now();
            let reply = endpoint.deliver(event, Encoding::Twice).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            t.elapsed()
        }
    }))
    .buffer_unordered(in_flight)
    .collect()
    .await;
    (Latencies::new(times), began.elapsed())
}

/// Uploads the RestoreTimeClean chain into `db0000`..`db{n}` (16 uploads in flight) and returns
/// the blobs, file index major (every database's full backup first, then every first log, ...),
/// as many databases uploading at once would produce them.
async fn upload_estate(rig: &Rig, fixtures: &Path, prefix: &str, n: usize) -> Vec<Uploaded> {
    upload_files(rig, fixtures, prefix, n, &CLEAN).await
}

/// [`upload_estate`] with some of the chain's files.
async fn upload_files(
    rig: &Rig,
    fixtures: &Path,
    prefix: &str,
    n: usize,
    names: &[&str],
) -> Vec<Uploaded> {
    let dir = clean_dir(fixtures);
    let files: Vec<(&str, Bytes)> = names
        .iter()
        .map(|name| {
            let data = std::fs::read(dir.join(name)).expect("a fixture");
            (*name, Bytes::from(data))
        })
        .collect();
    let meta = BTreeMap::new();
    let jobs: Vec<(String, &str, Bytes)> = files
        .iter()
        .flat_map(|(name, data)| {
            (0..n).map(move |i| (format!("{prefix}{i:04}"), *name, data.clone()))
        })
        .collect();
    futures::stream::iter(jobs.into_iter().map(|(folder, name, data)| {
        let meta = &meta;
        async move { rig.upload(&folder, name, data, meta).await }
    }))
    .buffered(16)
    .collect()
    .await
}

async fn backup_created(fixtures: &Path, databases: usize) {
    // The slot limit is the number of databases: the waves below fill it exactly.
    let rig = Rig::new(RigOptions {
        max_concurrent_restores: databases,
        ..RigOptions::default()
    })
    .await;
    let t = Instant::now();
    let estate = upload_estate(&rig, fixtures, "db", databases).await;
    let serial = upload_estate(&rig, fixtures, "serial", (databases / 4).max(1)).await;
    eprintln!(
        "uploaded {} blobs in {:.1} s",
        estate.len() + serial.len(),
        t.elapsed().as_secs_f64()
    );
    let schema = |i: usize| {
        if i % 2 == 0 {
            Schema::EventGrid
        } else {
            Schema::CloudEvents
        }
    };
    let events: Vec<Value> = estate
        .iter()
        .enumerate()
        .map(|(i, b)| rig.event(b, schema(i)))
        .collect();
    // The rig's pipeline over a state store that counts its calls, served in process.
    let (pipeline, state) = counted_pipeline(&rig);
    let served = InProcess::serve(pipeline).await;
    let endpoint = &served.endpoint;
    let calls = || rig.blobs.snapshot().0 + state.calls.load(Ordering::SeqCst);
    // Each database's full backup first (it starts LRS), then its other files: the steady state
    // of a migration wave, files arriving for databases already restoring.
    let (firsts, rest) = events.split_at(databases);
    let (before, bytes_before) = (calls(), rig.blobs.snapshot());
    let sim_before = rig.sim_blobs.snapshot().0;
    let (lat_first, took_first) = deliver(endpoint, firsts, 16).await;
    let after_first = calls();
    let sim_first = rig.sim_blobs.snapshot().0 - sim_before;
    eprintln!(
        "state calls for the first files: {} in {:.2} s",
        state.take_kinds(),
        took_first.as_secs_f64()
    );
    let (lat_rest, took_rest) = deliver(endpoint, rest, 16).await;
    let after = calls();
    let sim_rest = rig.sim_blobs.snapshot().0 - sim_before - sim_first;
    eprintln!("state calls for the other files: {}", state.take_kinds());
    let bytes_after = rig.blobs.snapshot();
    let all = Latencies::new(lat_first.0.iter().chain(&lat_rest.0).copied().collect());
    let took = took_first + took_rest;
    all.line("BackupCreated, new files, 16 in flight", took);
    lat_first.line(
        "BackupCreated, a database's first file (it starts LRS), 16 in flight",
        took_first,
    );
    lat_rest.line(
        "BackupCreated, new files of restoring databases, 16 in flight",
        took_rest,
    );
    let per = |calls: u64, n: usize| calls as f64 / n as f64;
    println!(
        "storage calls per new file: {:.2} (files of restoring databases: {:.2}; a database's first \
         file, which starts LRS: {:.2})",
        per(after - before, events.len()),
        per(after - after_first, rest.len()),
        per(after_first - before, firsts.len()),
    );
    // The simulator's LRS reads the folder when a start is accepted, on the same Azurite: calls
    // the ceiling below does not make.
    println!(
        "simulator (LRS) storage calls on the same Azurite: {:.2} per start, {:.2} per file of a \
         restoring database",
        per(sim_first, firsts.len()),
        per(sim_rest, rest.len()),
    );
    println!(
        "bytes read per new file: {:.0} ({:.1} ranged reads)",
        (bytes_after.2 - bytes_before.2) as f64 / events.len() as f64,
        (bytes_after.1 - bytes_before.1) as f64 / events.len() as f64,
    );
    let starts: usize = (0..databases)
        .map(|i| ledger(&rig.requests(), &format!("db{i:04}")).starts_accepted)
        .sum();
    assert_eq!(starts, databases, "every database was started once");

    // Azurite's own ceiling for the same calls, by a plain client over the same SDK code: for each
    // file, the head and tail ranged reads at once, then one conditional write of a document the
    // size of a restoring database's.
    let doc = rig.raw_state("db0000").await.unwrap_or_default();
    let (ceiling, ceiling_lat) = azurite_ceiling(&estate, doc.len(), 16).await;
    let rate = events.len() as f64 / took.as_secs_f64();
    println!(
        "new files: {rate:.0} events/s; azurite ceiling for the same calls: {ceiling:.0} events/s; \
         ratio {:.2}",
        rate / ceiling
    );
    println!(
        "azurite ceiling, 16 in flight: p50 {:.2} ms, p99 {:.2} ms",
        ceiling_lat.pct(0.5).as_secs_f64() * 1e3,
        ceiling_lat.pct(0.99).as_secs_f64() * 1e3
    );
    let steady = rest.len() as f64 / took_rest.as_secs_f64();
    println!(
        "new files of restoring databases: {steady:.0} events/s; ratio to the ceiling {:.2}",
        steady / ceiling
    );

    let (before, reads_before) = (calls(), rig.blobs.snapshot().1);
    let (lat, elapsed) = deliver(endpoint, &events, 16).await;
    lat.line(
        "BackupCreated, redelivered (duplicates), 16 in flight",
        elapsed,
    );
    println!(
        "storage calls per duplicate: {:.2}",
        per(calls() - before, events.len())
    );
    let reads = rig.blobs.snapshot().1 - reads_before;
    println!("blob reads for the redelivered events: {reads}");
    println!(
        "state document of a restoring database: {} bytes",
        doc.len()
    );

    // One at a time, on a fresh account (the first invocations of a migration wave).
    let fresh = Rig::new(RigOptions::default()).await;
    let lone = upload_estate(&fresh, fixtures, "lone", (databases / 4).max(1)).await;
    let lone_events: Vec<Value> = lone
        .iter()
        .enumerate()
        .map(|(i, b)| fresh.event(b, schema(i)))
        .collect();
    let (lat, elapsed) = deliver(fresh.endpoint(), &lone_events, 1).await;
    lat.line("BackupCreated, new files, 1 in flight", elapsed);

    // One at a time while the instance's LRS slots are all taken: every event of a database
    // waiting in Ready counts the active restores anew.
    let serial_events: Vec<Value> = serial
        .iter()
        .enumerate()
        .map(|(i, b)| rig.event(b, schema(i)))
        .collect();
    let (lat, elapsed) = deliver(endpoint, &serial_events, 1).await;
    lat.line(
        &format!("BackupCreated, new files, 1 in flight, {databases} restores active, these wait in Ready"),
        elapsed,
    );
    let metrics = served.pipeline.metrics();
    println!(
        "pipeline metrics: {} processed, {} duplicates, {} state conflicts retried",
        metrics.events_processed.get(),
        metrics.events_duplicate.get(),
        metrics.state_conflicts.get()
    );
}

/// Events per second a plain client reaches on Azurite with `in_flight` at a time, doing for each
/// of `blobs` what the pipeline's event does at best: its head (with properties) and tail ranged
/// reads at once, of the event's version, then one conditional write of a `doc_len`-byte document
/// (one per folder, If-Match on the ETag the last write returned).
async fn azurite_ceiling(blobs: &[Uploaded], doc_len: usize, in_flight: usize) -> (f64, Latencies) {
    let az = support::azurite::azurite();
    let (container, _) = support::azurite::create_container("ceiling").await;
    let store = az.blob_store();
    let state = az.state_store(&container);
    let doc = vec![b' '; doc_len.max(1)];
    let etags: std::sync::Mutex<BTreeMap<String, ETag>> = Default::default();
    let began = Instant::now();
    let times = futures::stream::iter(blobs.iter().map(|blob| {
        let (store, state, doc, etags) = (&store, &state, &doc, &etags);
        async move {
            let t = Instant::now();
            let name = format!("{}/{}/{}", blob.container, blob.folder, blob.name);
            let tail_from = blob
                .size
                .saturating_sub(lrs_autopilot::backup::TAIL_LEN as u64);
            let head = store.read_head(
                &name,
                lrs_autopilot::backup::HEAD_LEN as u64,
                Some(&blob.etag),
            );
            let tail =
                store.read_range_if_match(&name, tail_from, blob.size - tail_from, &blob.etag);
            let (head, tail) = futures::future::join(head, tail).await;
            head.expect("the head");
            tail.expect("the tail");
            let key = format!("{}.json", blob.folder);
            let seen = etags.lock().expect("etags").get(&key).cloned();
            let precondition = seen.map_or(Precondition::IfNoneMatch, Precondition::IfMatch);
            let etag = state
                .put(&key, doc.clone(), precondition)
                .await
                .expect("a conditional write");
            etags.lock().expect("etags").insert(key, etag);
            t.elapsed()
        }
    }))
    .buffer_unordered(in_flight)
    .collect::<Vec<Duration>>()
    .await;
    let rate = blobs.len() as f64 / began.elapsed().as_secs_f64();
    (rate, Latencies::new(times))
}

/// Writes `state` (a clone of a restoring database under another name) and starts LRS for it on
/// the simulator from the clone's folder `uri`, as if the pipeline had.
async fn clone_restoring(
    rig: &Rig,
    client: &lrs_autopilot::lrs::LrsClient,
    uri: &str,
    state: &MigrationState,
) {
    let name = &state.folder;
    let bytes = serde_json::to_vec(state).expect("serialises");
    rig.state
        .put(
            &MigrationState::key(&rig.backups, name),
            bytes,
            Precondition::IfNoneMatch,
        )
        .await
        .expect("write a state document");
    let start = StartRestore::new(
        instance().database(name).expect("a name"),
        "westeurope",
        uri,
        StorageAuth::ManagedIdentity,
        "SQL_Latin1_General_CP1_CI_AS",
    )
    .expect("a start");
    client
        .begin_start(&start)
        .await
        .expect("the simulator accepts the start");
}

/// One database driven through the real pipeline to `Restoring`, then its state document cloned
/// into `n` databases (each with its own LRS job in the simulator, restoring the same folder), all
/// due: one timer invocation polls every one of them.
async fn cutover_timer(fixtures: &Path, n: usize) {
    let rig = Rig::new(RigOptions {
        instance_restore_limit: Some(n + 10),
        ..RigOptions::default()
    })
    .await;
    let folder = "RestoreTimeClean";
    let uploaded = rig.upload_clean(fixtures, folder, false).await;
    for blob in &uploaded {
        let reply = rig
            .endpoint()
            .deliver(&rig.event(blob, Schema::EventGrid), Encoding::Twice)
            .await;
        assert_eq!(reply.status, 200);
    }
    let template = rig.state_of(folder).await.expect("a state document");
    assert_eq!(template.phase, Phase::Restoring);
    let client = rig.sim.client();
    let uri = format!("{}/{}/{folder}", rig.account, rig.backups);
    let t = Instant::now();
    // A thousand starts would take ARM's write budget 80 s; the passes below run throttled.
    rig.sim.state.set_throttling(false);
    futures::stream::iter((0..n).map(|i| {
        let (client, uri, rig, template) = (&client, &uri, &rig, &template);
        async move {
            let name = format!("tdb{i:04}");
            let mut state: MigrationState = template.clone();
            state.folder = name.clone();
            state.database_name = name.clone();
            clone_restoring(rig, client, uri, &state).await;
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<()>>()
    .await;
    eprintln!(
        "prepared {n} restoring databases in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Nothing due yet (the clones' next poll is minutes away): the first pass reads every document
    // and writes the index, the measured ones read the index.
    timer_none_due(&rig, n).await;
    // Throttling stays off: a pass over 1,001 due databases (3,000 reads) is far beyond ARM's
    // read bucket (250, 25/s); this measures the pipeline's own speed, as before.
    rig.sim.state.set_faults(Faults {
        latency_ms: 50,
        ..Faults::default()
    });
    let mut passes = Vec::new();
    for _ in 0..3 {
        // Past every database's next poll (5 min + a quarter of it in spread).
        rig.advance(time::Duration::minutes(7));
        let arm_before = rig.requests().len();
        let t = Instant::now();
        let reply = rig.endpoint().timer().await;
        let took = t.elapsed();
        assert_eq!(reply.status, 200, "{reply:?}");
        let line = reply.logs().first().cloned().unwrap_or_default();
        if !line.contains(&format!("{} handled", n + 1)) {
            eprintln!("not every database was handled: {line}");
        }
        passes.push(took);
        println!(
            "CutoverTimer pass, {} databases all due, 50 ms ARM latency, unthrottled: {:.2} s, {} ARM requests",
            n + 1,
            took.as_secs_f64(),
            rig.requests().len() - arm_before
        );
    }
    passes.sort();
    println!(
        "CutoverTimer pass, all due, median of 3: {:.2} s",
        passes[1].as_secs_f64()
    );
}

/// A state store that counts every call, around the rig's Azurite state container, and by
/// operation and document kind (a database's own document, the shared ones).
struct CountingState {
    inner: Arc<dyn StateStore>,
    calls: AtomicU64,
    kinds: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl CountingState {
    fn count(&self, op: &str, key: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let kind = match key {
            "" => "all",
            k if k.starts_with("_instance/") => "instance facts",
            k if !k.contains('/') => k,
            _ => "database",
        };
        *self
            .kinds
            .lock()
            .expect("counts")
            .entry(format!("{op} {kind}"))
            .or_default() += 1;
    }

    /// The counts by operation and kind since the last call, as one line.
    fn take_kinds(&self) -> String {
        let kinds = std::mem::take(&mut *self.kinds.lock().expect("counts"));
        kinds
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[async_trait::async_trait]
impl StateStore for CountingState {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ETag)>, StorageError> {
        self.count("get", key);
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<ETag, StorageError> {
        self.count("put", key);
        self.inner.put(key, bytes, precondition).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.count("list", prefix);
        self.inner.list(prefix).await
    }
}

/// The rig's pipeline settings and clock over a counting state store.
fn counted_pipeline(rig: &Rig) -> (Pipeline, Arc<CountingState>) {
    let state = Arc::new(CountingState {
        inner: Arc::new(support::azurite::azurite().state_store(&rig.state_container)),
        calls: AtomicU64::new(0),
        kinds: Default::default(),
    });
    let clock = rig.sim.clock.clone();
    let pipeline = Pipeline::new(
        rig.blobs.clone(),
        state.clone(),
        Arc::new(ArmLrs::new(rig.sim.client(), instance())),
        rig.pipeline().settings().clone(),
        Arc::new(move || lrs_autopilot::sim::Clock::now(clock.as_ref())),
    );
    (pipeline, state)
}

/// A timer pass over `n + 1` databases none of which is due (3 runs; storage calls counted).
async fn timer_none_due(rig: &Rig, n: usize) {
    let (pipeline, state) = counted_pipeline(rig);
    let t = Instant::now();
    let report = pipeline.tick().await.expect("a timer pass");
    assert_eq!(report.handled, 0, "none was due: {report:?}");
    eprintln!(
        "first pass (reads every state document, writes the index): {:.2} s, {} storage calls",
        t.elapsed().as_secs_f64(),
        state.calls.load(Ordering::SeqCst)
    );
    let mut runs = Vec::new();
    for _ in 0..3 {
        let before = state.calls.load(Ordering::SeqCst);
        let t = Instant::now();
        let report = pipeline.tick().await.expect("a timer pass");
        let took = t.elapsed();
        assert_eq!(report.handled, 0, "none was due: {report:?}");
        assert!(report.errors.is_empty(), "{report:?}");
        runs.push((took, state.calls.load(Ordering::SeqCst) - before));
    }
    runs.sort();
    let (took, calls) = runs[1];
    println!(
        "timer pass, {} databases, none due: {:.1} ms, {calls} storage calls",
        n + 1,
        took.as_secs_f64() * 1e3
    );
}

/// Cold start of the built binary to its first answered `GET /`, and its idle RSS before and after
/// some work.
async fn binary(fixtures: &Path) {
    let rig = Rig::new(RigOptions::default()).await;
    let binary = Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    let mut env = rig.env();
    env.retain(|(k, _)| k != "RUST_LOG");
    env.push(("RUST_LOG".into(), "info".into()));
    let mut starts = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..10 {
        let (serve, took) = Serve::start(binary, &env).await;
        starts.push(took);
        tokio::time::sleep(Duration::from_millis(300)).await;
        idle.push(serve.rss_kib().unwrap_or_default());
        serve.kill();
    }
    starts.sort();
    idle.sort();
    println!(
        "cold start to first GET /: median {:.1} ms (min {:.1}, max {:.1}, 10 runs)",
        starts[5].as_secs_f64() * 1e3,
        starts[0].as_secs_f64() * 1e3,
        starts[9].as_secs_f64() * 1e3
    );
    println!("idle RSS after start: median {} KiB", idle[5]);

    let (serve, _) = Serve::start(binary, &env).await;
    let uploaded = rig.upload_clean(fixtures, "RestoreTimeClean", true).await;
    for blob in &uploaded {
        let reply = serve
            .endpoint
            .deliver(&rig.event(blob, Schema::CloudEvents), Encoding::Twice)
            .await;
        assert_eq!(reply.status, 200);
    }
    for _ in 0..20 {
        rig.advance(pipeline_support::TICK);
        assert_eq!(serve.endpoint.timer().await.status, 200);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "idle RSS after a migration (8 events, 20 timer passes): {} KiB",
        serve.rss_kib().unwrap_or_default()
    );
    let calls = rig.blobs.calls.load(Ordering::SeqCst);
    assert_eq!(calls, 0, "the binary used its own store");
    serve.kill();
}

/// Cutover lag at estate scale, in real time: `PIPELINE_BENCH_CUTOVER_DATABASES` (default 1,000)
/// databases restoring, `PIPELINE_BENCH_CUTOVER_TAILS` (default 50) of them get their tail-log
/// backup at once. ARM is throttled (fresh buckets when the run begins) with 50 ms latency; the
/// timer fires every `PIPELINE_BENCH_TIMER_SECS` (default 5: `LRS_TIMER_SCHEDULE=*/5 * * * * *`);
/// the virtual clock follows wall time; the simulator's LRS notices new files in the 50 folders
/// once a second on its own. Lag: from the tail set's `restoreFinishedTimestampUtc` to the
/// accepted completeRestore in the simulator's request log.
async fn cutover_lag(fixtures: &Path) {
    let total = env_usize("PIPELINE_BENCH_CUTOVER_DATABASES", 1000);
    let tails = env_usize("PIPELINE_BENCH_CUTOVER_TAILS", 50).min(total);
    let period = Duration::from_secs(env_usize("PIPELINE_BENCH_TIMER_SECS", 5) as u64);
    let rig = Rig::new(RigOptions {
        max_concurrent_restores: total + 10,
        instance_restore_limit: Some(total + 10),
        ..RigOptions::default()
    })
    .await;
    rig.sim.state.set_throttling(false);
    let t = Instant::now();
    // The databases that cut over: the chain without its tail, through the pipeline.
    let chain = &CLEAN[..CLEAN.len() - 1];
    let uploaded = upload_files(&rig, fixtures, "cut", tails, chain).await;
    let events: Vec<Value> = uploaded
        .iter()
        .map(|b| rig.event(b, Schema::EventGrid))
        .collect();
    deliver(rig.endpoint(), &events, 16).await;
    let names: Vec<String> = (0..tails).map(|i| format!("cut{i:04}")).collect();
    // Restoring for a while, as a database is when its tail comes: the timer has polled each (its
    // last full read, restoreDetails + the database + the create operation, is recent).
    rig.advance(lrs_autopilot::migration::RESTORING_POLL * 2);
    let reply = rig.endpoint().timer().await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let template = rig.state_of(&names[0]).await.expect("a state document");
    assert_eq!(template.phase, Phase::Restoring, "{template:?}");
    assert!(template.lrs.polled_at.is_some(), "{:?}", template.lrs);
    // The clones below are written without the index: an empty one makes the run's first pass
    // read every document and rebuild it, as before.
    if let Some((_, etag)) = rig.state.get("lrs-due.json").await.expect("the index") {
        rig.state
            .put("lrs-due.json", b"{}".to_vec(), Precondition::IfMatch(etag))
            .await
            .expect("empty the index");
    }
    // The others: clones restoring one shared folder, their next polls spread over the cadence.
    upload_files(&rig, fixtures, "filler", 1, chain).await;
    let client = rig.sim.client();
    let uri = format!("{}/{}/filler0000", rig.account, rig.backups);
    let now = lrs_autopilot::sim::Clock::now(rig.sim.clock.as_ref());
    let cadence = lrs_autopilot::migration::RESTORING_POLL.whole_seconds();
    futures::stream::iter((0..total - tails).map(|i| {
        let (client, uri, rig, template) = (&client, &uri, &rig, &template);
        async move {
            let name = format!("other{i:04}");
            let mut state: MigrationState = template.clone();
            state.folder = name.clone();
            state.database_name = name.clone();
            state.next_poll_at =
                Some(now + time::Duration::seconds(rand::random_range(0..cadence)));
            clone_restoring(rig, client, uri, &state).await;
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<()>>()
    .await;
    eprintln!(
        "prepared {total} restoring databases in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    rig.sim.state.set_faults(Faults {
        latency_ms: 50,
        ..Faults::default()
    });
    rig.sim.state.set_throttling(true);
    let run_began = Instant::now();
    let logged_before = rig.requests().len();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The virtual clock follows wall time.
    let clock_task = {
        let (clock, stop) = (rig.sim.clock.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let now = Instant::now();
                lrs_autopilot::sim::Clock::advance(
                    clock.as_ref(),
                    time::Duration::try_from(now - last).unwrap_or_default(),
                );
                last = now;
            }
        })
    };
    // LRS notices new files in the cut-over folders on its own, once a second.
    let lrs_task = {
        let (state, stop, names) = (rig.sim.state.clone(), stop.clone(), names.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                state.tick_databases(&names).await;
            }
        })
    };
    // The Functions timer: never two passes at once.
    let passes_done = Arc::new(AtomicU64::new(0));
    let timer_task = {
        let (endpoint, stop, done) = (rig.endpoint().clone(), stop.clone(), passes_done.clone());
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut passes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                interval.tick().await;
                let t = Instant::now();
                let reply = endpoint.timer().await;
                assert_eq!(reply.status, 200, "{reply:?}");
                passes.push(t.elapsed());
                done.fetch_add(1, Ordering::SeqCst);
            }
            passes
        })
    };
    // The steady state first: the first pass reads every document and writes the index (as one
    // pass in every 10 minutes does), the second reads only the due ones.
    while passes_done.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(period / 2).await;
    let uploaded_tails: Vec<Uploaded> = futures::stream::iter(names.iter().map(|folder| {
        let rig = &rig;
        let path = clean_dir(fixtures).join(CLEAN_TAIL);
        async move {
            let meta = BTreeMap::from([("lrs_tail".to_owned(), "true".to_owned())]);
            rig.upload_file(folder, CLEAN_TAIL, &path, &meta).await
        }
    }))
    .buffered(16)
    .collect()
    .await;
    let events: Vec<Value> = uploaded_tails
        .iter()
        .map(|b| rig.event(b, Schema::CloudEvents))
        .collect();
    deliver(rig.endpoint(), &events, 16).await;
    let completes = |requests: &[lrs_autopilot::sim::LoggedRequest]| {
        let mut at = BTreeMap::new();
        for r in requests {
            if r.method == "POST" && (200..300).contains(&r.status) {
                if let Some(name) = names
                    .iter()
                    .find(|n| r.path.ends_with(&format!("/databases/{n}/completeRestore")))
                {
                    at.entry(name.clone()).or_insert_with(|| r.time.clone());
                }
            }
        }
        at
    };
    let waited = Instant::now();
    while completes(&rig.requests()).len() < tails && waited.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let passes = timer_task.await.expect("the timer task");
    let _ = (clock_task.await, lrs_task.await);
    let run = run_began.elapsed();
    let stats = rig.sim.state.stats();
    let reads = &stats["arm"]["reads"];
    let percent = reads["perSubscription"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|v| v["percentOfBudget"].as_f64())
        .unwrap_or_default();
    let admitted = reads["admitted"].as_u64().unwrap_or_default();
    let throttled = reads["throttled"].as_u64().unwrap_or_default();
    rig.sim.state.set_throttling(false);
    rig.sim.state.set_faults(Faults::default());

    let done = completes(&rig.requests());
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .expect("an RFC 3339 time")
    };
    let mut lags = Vec::new();
    for name in &names {
        let Some(at) = done.get(name) else { continue };
        let restored = rig
            .sim
            .state
            .restored_at(name, CLEAN_TAIL)
            .await
            .expect("the simulator restored the tail before completeRestore was accepted");
        let lag = parse(at) - restored;
        assert!(
            lag >= time::Duration::ZERO,
            "{name}: completed before the tail was restored"
        );
        lags.push(Duration::try_from(lag).unwrap_or_default());
    }
    let mut sorted_passes = passes.clone();
    sorted_passes.sort();
    eprintln!(
        "cutover run: {:.1} s, {} timer passes (median {:.2} s, max {:.2} s), {admitted} ARM reads \
         admitted, {throttled} throttled, {} of {tails} completed",
        run.as_secs_f64(),
        passes.len(),
        sorted_passes
            .get(passes.len() / 2)
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
        sorted_passes
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
        lags.len(),
    );
    assert_eq!(lags.len(), tails, "every database with a tail completed");
    let lags = Latencies::new(lags);
    let passes: Vec<String> = passes
        .iter()
        .map(|p| format!("{:.2}", p.as_secs_f64()))
        .collect();
    let each: Vec<String> = lags
        .0
        .iter()
        .map(|l| format!("{:.1}", l.as_secs_f64()))
        .collect();
    eprintln!("timer passes (s): {}", passes.join(" "));
    let mut reads: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rig.requests().iter().skip(logged_before) {
        if r.method != "GET" {
            continue;
        }
        let path = r.path.split('?').next().unwrap_or_default();
        let kind = if path.contains("restoreDetails") {
            "restoreDetails"
        } else if path.contains("AsyncOperation") || path.contains("OperationResults") {
            "operation"
        } else if path.contains("/databases/") {
            "database"
        } else {
            "other"
        };
        *reads.entry(kind).or_default() += 1;
    }
    eprintln!("ARM reads during the run by kind: {reads:?}");
    eprintln!("lags (s): {}", each.join(" "));
    println!(
        "cutover lag, {tails} of {total} databases: p50 {:.1} s, p99 {:.1} s; arm reads {percent:.0}% of budget",
        lags.pct(0.5).as_secs_f64(),
        lags.pct(0.99).as_secs_f64(),
    );
}
