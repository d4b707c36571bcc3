//! The storage contract, run against Azurite (through the production Azure SDK code) and against
//! the folder store: one generic body per behaviour, two backends. Plus what only one backend can
//! show: a SAS never leaks into an Azure error, and the folder store's compare-and-swap holds
//! across processes.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use lrs_autopilot::storage::azure::{AzureBlobStore, AzureStateStore};
use lrs_autopilot::storage::folder::{FolderStateStore, FolderStore};
use lrs_autopilot::storage::{BlobStore, BlobType, BlobWriter, Error, Precondition, StateStore};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::azurite;
use tempfile::TempDir;
use time::OffsetDateTime;

/// One backend under test: a writable blob store and a state store, each with a fresh container.
struct Backend {
    blobs: Arc<dyn BlobWriter>,
    state: Arc<dyn StateStore>,
    container: String,
    /// Keeps the folder backend's directory alive.
    _dir: Option<TempDir>,
}

async fn azurite_backend() -> Backend {
    let (container, url) = azurite::create_container("contract").await;
    let (state_container, _) = azurite::create_container("state").await;
    let blobs = AzureBlobStore::new(&url, None).expect("blob store");
    let state = AzureStateStore::new(&url, &state_container, None).expect("state store");
    Backend {
        blobs: Arc::new(blobs),
        state: Arc::new(state),
        container,
        _dir: None,
    }
}

async fn folder_backend() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = FolderStore::new(dir.path().join("root")).expect("folder store");
    let container = "contract".to_owned();
    blobs.ensure_container(&container).await.expect("container");
    let state = FolderStateStore::new(dir.path().join("state")).expect("state store");
    Backend {
        blobs: Arc::new(blobs),
        state: Arc::new(state),
        container,
        _dir: Some(dir),
    }
}

/// Deterministic, position-dependent bytes, so a read from the wrong offset cannot pass.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const HEAD: u64 = 64 * 1024;

async fn lists_and_reads_blobs(b: &Backend) {
    let store = b.blobs.as_ref();
    let c = &b.container;
    let started = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let full = pattern(200_000);
    let none = BTreeMap::new();
    store
        .ensure_container(c)
        .await
        .expect("ensure_container is idempotent");
    let full_etag = store
        .upload(
            &format!("{c}/db1/full.bak"),
            Bytes::from(full.clone()),
            BlobType::Block,
            &none,
        )
        .await
        .expect("upload full");
    store
        .upload(
            &format!("{c}/db1/log 1_tail.trn"),
            Bytes::from(pattern(3000)),
            BlobType::Block,
            &meta(&[("lrs_tail", "true")]),
        )
        .await
        .expect("upload tail");
    store
        .upload(
            &format!("{c}/db1/empty.trn"),
            Bytes::new(),
            BlobType::Block,
            &none,
        )
        .await
        .expect("upload empty");
    store
        .upload(
            &format!("{c}/db1/striped.bak"),
            Bytes::from(pattern(4096)),
            BlobType::Page,
            &none,
        )
        .await
        .expect("upload page blob");
    store
        .upload(
            &format!("{c}/db10/x.bak"),
            Bytes::from(pattern(10)),
            BlobType::Append,
            &none,
        )
        .await
        .expect("upload append blob");

    // Listing: by folder, sorted, with sizes, types, ETags and metadata.
    let db1 = store.list(&format!("{c}/db1/")).await.expect("list db1");
    let names: Vec<&str> = db1.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{c}/db1/empty.trn"),
            format!("{c}/db1/full.bak"),
            format!("{c}/db1/log 1_tail.trn"),
            format!("{c}/db1/striped.bak"),
        ]
    );
    let sizes: Vec<u64> = db1.iter().map(|i| i.size).collect();
    assert_eq!(sizes, [0, 200_000, 3000, 4096]);
    let types: Vec<BlobType> = db1.iter().map(|i| i.blob_type).collect();
    assert_eq!(
        types,
        [
            BlobType::Block,
            BlobType::Block,
            BlobType::Block,
            BlobType::Page
        ]
    );
    assert_eq!(db1[2].meta("lrs_tail"), Some("true"));
    assert_eq!(db1[1].meta("lrs_tail"), None);
    assert_eq!(db1[1].etag, full_etag);
    assert!(db1.iter().all(|i| i.last_modified > started), "{db1:?}");

    // A bare prefix matches names, not folders; the container lists everything.
    let db_prefix = store.list(&format!("{c}/db1")).await.expect("list db1*");
    assert_eq!(db_prefix.len(), 5, "db1/ and db10/ both match 'db1'");
    let all = store.list(c).await.expect("list container");
    assert_eq!(all.len(), 5);
    assert_eq!(
        all.last().map(|i| (i.name.as_str(), i.blob_type)),
        Some((format!("{c}/db10/x.bak").as_str(), BlobType::Append))
    );
    assert!(
        store
            .list(&format!("{c}/nothing/"))
            .await
            .expect("empty")
            .is_empty()
    );

    // Properties agree with the listing.
    let props = store
        .properties(&format!("{c}/db1/log 1_tail.trn"))
        .await
        .expect("properties");
    assert_eq!(props, db1[2]);
    let missing = store.properties(&format!("{c}/db1/missing.bak")).await;
    assert!(
        missing.as_ref().is_err_and(Error::is_not_found),
        "{missing:?}"
    );

    // Ranged reads: head, tail, middle, past the end, zero length, empty blob.
    let name = format!("{c}/db1/full.bak");
    let (head, total) = store.read_range(&name, 0, HEAD).await.expect("head");
    assert_eq!(total, 200_000);
    assert_eq!(&head[..], &full[..HEAD as usize]);
    let (tail, total) = store
        .read_range(&name, 200_000 - 1000, HEAD)
        .await
        .expect("tail");
    assert_eq!(total, 200_000);
    assert_eq!(&tail[..], &full[199_000..]);
    let (mid, _) = store.read_range(&name, 12_345, 100).await.expect("middle");
    assert_eq!(&mid[..], &full[12_345..12_445]);
    for offset in [200_000, 200_001, 10_000_000, u64::MAX - 1, u64::MAX] {
        let (past, total) = store
            .read_range(&name, offset, HEAD)
            .await
            .expect("past the end");
        assert!(past.is_empty(), "offset {offset}");
        assert_eq!(total, 200_000);
    }
    let (nothing, total) = store.read_range(&name, 5, 0).await.expect("zero length");
    assert!(nothing.is_empty());
    assert_eq!(total, 200_000);
    for offset in [0, 10] {
        let (empty, total) = store
            .read_range(&format!("{c}/db1/empty.trn"), offset, HEAD)
            .await
            .expect("empty blob");
        assert!(empty.is_empty());
        assert_eq!(total, 0);
    }
    let (page, total) = store
        .read_range(&format!("{c}/db1/striped.bak"), 4000, HEAD)
        .await
        .expect("page");
    assert_eq!((&page[..], total), (&pattern(4096)[4000..], 4096));
    let missing = store
        .read_range(&format!("{c}/db1/missing.bak"), 0, 10)
        .await;
    assert!(
        missing.as_ref().is_err_and(Error::is_not_found),
        "{missing:?}"
    );

    // Overwriting changes the ETag.
    let new_etag = store
        .upload(&name, Bytes::from(pattern(10)), BlobType::Block, &none)
        .await
        .expect("overwrite");
    assert_ne!(new_etag, full_etag);
    assert_eq!(store.properties(&name).await.expect("props").size, 10);

    // The folder URL for LRS: no query string, last two segments are container and folder.
    let url = store.url(&format!("{c}/db1")).expect("url");
    assert_eq!(url.query(), None);
    assert!(url.path().ends_with(&format!("/{c}/db1")), "{url}");
    assert_eq!(store.url(&format!("{c}/db1/")).expect("url"), url);

    // Hostile names are refused before any I/O; a page blob must be whole pages.
    for bad in [
        "../etc/passwd",
        &format!("{c}/../x"),
        &format!("{c}//x"),
        "UPPER/x",
    ] {
        let err = store.read_range(bad, 0, 1).await;
        assert!(
            matches!(err, Err(Error::InvalidName { .. })),
            "{bad}: {err:?}"
        );
    }
    let torn = store
        .upload(
            &format!("{c}/db1/torn.bak"),
            Bytes::from(pattern(100)),
            BlobType::Page,
            &none,
        )
        .await;
    assert!(matches!(torn, Err(Error::Invalid(_))), "{torn:?}");
    let missing_container = store.list("no-such-container/").await;
    assert!(
        missing_container.as_ref().is_err_and(Error::is_not_found),
        "{missing_container:?}"
    );
}

async fn state_documents_use_etags(b: &Backend) {
    let state = b.state.as_ref();
    assert_eq!(
        state.get("sqlfiles/db1.json").await.expect("get missing"),
        None
    );

    let etag1 = state
        .put(
            "sqlfiles/db1.json",
            br#"{"v":1}"#.to_vec(),
            Precondition::IfNoneMatch,
        )
        .await
        .expect("create");
    let (bytes, etag) = state
        .get("sqlfiles/db1.json")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (bytes.as_slice(), &etag),
        (br#"{"v":1}"#.as_slice(), &etag1)
    );

    let again = state
        .put(
            "sqlfiles/db1.json",
            b"{}".to_vec(),
            Precondition::IfNoneMatch,
        )
        .await;
    assert!(again.as_ref().is_err_and(Error::is_conflict), "{again:?}");

    let etag2 = state
        .put(
            "sqlfiles/db1.json",
            br#"{"v":2}"#.to_vec(),
            Precondition::IfMatch(etag1.clone()),
        )
        .await
        .expect("update with the current etag");
    assert_ne!(etag2, etag1);

    let stale = state
        .put(
            "sqlfiles/db1.json",
            br#"{"v":3}"#.to_vec(),
            Precondition::IfMatch(etag1.clone()),
        )
        .await;
    let err = stale.expect_err("a stale etag must conflict");
    assert!(err.is_conflict() && !err.is_retryable(), "{err:?}");
    let (bytes, etag) = state
        .get("sqlfiles/db1.json")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((bytes.as_slice(), etag), (br#"{"v":2}"#.as_slice(), etag2));

    let on_missing = state
        .put(
            "sqlfiles/gone.json",
            b"{}".to_vec(),
            Precondition::IfMatch(etag1),
        )
        .await;
    assert!(
        on_missing.as_ref().is_err_and(Error::is_conflict),
        "{on_missing:?}"
    );

    state
        .put(
            "sqlfiles/db2.json",
            b"{}".to_vec(),
            Precondition::IfNoneMatch,
        )
        .await
        .expect("create db2");
    state
        .put("other/db1.json", b"{}".to_vec(), Precondition::IfNoneMatch)
        .await
        .expect("create other");
    assert_eq!(
        state.list("sqlfiles/").await.expect("list"),
        ["sqlfiles/db1.json", "sqlfiles/db2.json"]
    );
    assert_eq!(state.list("").await.expect("list all").len(), 3);

    let bad = state.get("../escape.json").await;
    assert!(matches!(bad, Err(Error::InvalidName { .. })), "{bad:?}");
}

/// `writers` tasks each add `rounds` entries to one document by read-modify-write; every entry
/// must be there at the end. Returns how many writes lost a race (and were retried).
async fn run_counter(
    state: Arc<dyn StateStore>,
    key: &str,
    writers: usize,
    rounds: usize,
) -> usize {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let state = Arc::clone(&state);
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for r in 0..rounds {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 10_000, "writer {w} livelocked");
                    let (bytes, etag) = state.get(&key).await.expect("get").expect("exists");
                    let mut doc: Value = serde_json::from_slice(&bytes).expect("json");
                    let count = doc["count"].as_u64().expect("count") + 1;
                    doc["count"] = json!(count);
                    doc["entries"]
                        .as_array_mut()
                        .expect("entries")
                        .push(json!(format!("{w}-{r}")));
                    let body = serde_json::to_vec(&doc).expect("encode");
                    match state.put(&key, body, Precondition::IfMatch(etag)).await {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => conflicts += 1,
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.expect("writer task");
    }
    conflicts
}

async fn concurrent_updates_lose_nothing(b: &Backend) {
    const WRITERS: usize = 20;
    const ROUNDS: usize = 3;
    let key = "sqlfiles/counter.json";
    let initial = serde_json::to_vec(&json!({"count": 0, "entries": []})).expect("encode");
    b.state
        .put(key, initial, Precondition::IfNoneMatch)
        .await
        .expect("create counter");
    let conflicts = run_counter(Arc::clone(&b.state), key, WRITERS, ROUNDS).await;
    let (bytes, _) = b.state.get(key).await.expect("get").expect("exists");
    let doc: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(doc["count"], json!(WRITERS * ROUNDS));
    let entries: BTreeSet<String> = doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        entries.len(),
        WRITERS * ROUNDS,
        "an update was lost or duplicated"
    );
    eprintln!(
        "{} writes, {conflicts} lost races retried",
        WRITERS * ROUNDS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azurite_lists_and_reads_blobs() {
    lists_and_reads_blobs(&azurite_backend().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_lists_and_reads_blobs() {
    lists_and_reads_blobs(&folder_backend().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azurite_state_documents_use_etags() {
    state_documents_use_etags(&azurite_backend().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_state_documents_use_etags() {
    state_documents_use_etags(&folder_backend().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azurite_concurrent_updates_lose_nothing() {
    concurrent_updates_lose_nothing(&azurite_backend().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_concurrent_updates_lose_nothing() {
    concurrent_updates_lose_nothing(&folder_backend().await).await;
}

/// Reads a real backup back through each store in 64 KiB ranges and checks its SHA-256 against
/// EXPECTED.json: the bytes are exactly the file's, whatever the range boundaries.
async fn real_backup_reads_back_exactly(b: &Backend) {
    let fixtures = fixtures_or_skip!();
    let rel = "appveyor-lab/DoubleDiffing/difftest-diff1.bak";
    let expected: Value = serde_json::from_slice(
        &std::fs::read(fixtures.join("EXPECTED.json")).expect("read EXPECTED.json"),
    )
    .expect("EXPECTED.json");
    let want_sha = expected[rel]["sha256"].as_str().expect("sha256").to_owned();
    let want_size = expected[rel]["size"].as_u64().expect("size");
    let name = format!("{}/doublediff/difftest-diff1.bak", b.container);
    let data = std::fs::read(fixtures.join(rel)).expect("read fixture");
    b.blobs
        .upload(&name, Bytes::from(data), BlobType::Block, &BTreeMap::new())
        .await
        .expect("upload fixture");
    let mut hasher = Sha256::new();
    let mut offset = 0;
    loop {
        let (chunk, total) = b.blobs.read_range(&name, offset, HEAD).await.expect("read");
        assert_eq!(total, want_size);
        if chunk.is_empty() {
            break;
        }
        hasher.update(&chunk);
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, want_size);
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, want_sha);
}

#[tokio::test]
async fn azurite_reads_a_real_backup_back_exactly() {
    real_backup_reads_back_exactly(&azurite_backend().await).await;
}

#[tokio::test]
async fn folder_reads_a_real_backup_back_exactly() {
    real_backup_reads_back_exactly(&folder_backend().await).await;
}

#[tokio::test]
async fn harness_uploads_a_file_through_the_sdk() {
    let fixtures = fixtures_or_skip!();
    let (container, url) = azurite::create_container("harness").await;
    let path = fixtures.join("appveyor-lab/DoubleDiffing/difftest-diff1.bak");
    let (etag, _) = azurite::upload_file(
        &container,
        "doublediff/diff1.bak",
        &path,
        &meta(&[("lrs_tail", "true")]),
    )
    .await;
    let store = AzureBlobStore::new(&url, None).expect("store");
    let item = store
        .properties(&format!("{container}/doublediff/diff1.bak"))
        .await
        .expect("properties");
    assert_eq!(item.etag, etag);
    assert_eq!(
        Some(item.size),
        std::fs::metadata(&path).ok().map(|m| m.len())
    );
    assert_eq!(item.meta("lrs_tail"), Some("true"));
}

fn assert_no_secret(err: &Error, secret: &str) {
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(secret), "the sas signature leaked: {shown}");
    assert!(!shown.contains("sig="), "a sas query leaked: {shown}");
}

fn signature_of(sas: &str) -> String {
    lrs_autopilot::storage::sas::SasToken::parse(sas)
        .expect("sas")
        .signature()
        .to_owned()
}

#[tokio::test]
async fn sas_never_appears_in_azure_errors() {
    let az = azurite::azurite();
    let (container, _) = azurite::create_container("leak").await;
    let sas = az.sas();
    let sig = signature_of(&sas);
    let encoded_sig = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>();

    // Refused by the service: a tampered signature (403) on every operation.
    let forged = url::form_urlencoded::byte_serialize(
        base64::engine::general_purpose::STANDARD
            .encode([7u8; 32])
            .as_bytes(),
    )
    .collect::<String>();
    let tampered = sas.replace(&format!("sig={encoded_sig}"), &format!("sig={forged}"));
    assert_ne!(tampered, sas);
    let store = AzureBlobStore::new(&format!("{}?{tampered}", az.url), None).expect("store");
    let name = format!("{container}/db/x.bak");
    let errors = [
        store.list(&container).await.expect_err("403"),
        store.properties(&name).await.expect_err("403"),
        store.read_range(&name, 0, 10).await.expect_err("403"),
        store
            .upload(
                &name,
                Bytes::from_static(b"x"),
                BlobType::Block,
                &BTreeMap::new(),
            )
            .await
            .expect_err("403"),
    ];
    for err in &errors {
        assert_eq!(err.status(), Some(403), "{err}");
        assert!(err.request_id().is_some(), "request id kept: {err:?}");
        assert!(!err.is_retryable());
        assert_no_secret(err, &sig);
        assert_no_secret(err, &encoded_sig);
    }
    let state = AzureStateStore::new(&format!("{}?{tampered}", az.url), &container, None)
        .expect("state store");
    let err = state.get("db.json").await.expect_err("403");
    assert_no_secret(&err, &encoded_sig);

    // No answer at all: the transport's message names the URL, SAS included, until redacted.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let options = azure_core::http::ClientOptions {
        retry: azure_core::http::RetryOptions::none(),
        ..Default::default()
    };
    let unreachable = format!("http://127.0.0.1:{port}/devstoreaccount1?{sas}");
    let store = AzureBlobStore::with_options(&unreachable, None, Some(options)).expect("store");
    let err = tokio::time::timeout(Duration::from_secs(30), store.read_range(&name, 0, 10))
        .await
        .expect("fails fast")
        .expect_err("connection refused");
    assert!(
        err.is_retryable(),
        "a refused connection may succeed later: {err:?}"
    );
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert_no_secret(&err, &sig);
    assert_no_secret(&err, &encoded_sig);
    // And the store itself never shows it.
    assert!(!format!("{store:?}").contains(&encoded_sig));
}

/// Several processes run `folder_state_worker` (below) on one state folder at once.
#[test]
fn folder_state_cas_holds_across_processes() {
    const PROCESSES: usize = 4;
    const ROUNDS: usize = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = FolderStateStore::new(dir.path()).expect("store");
    let initial = serde_json::to_vec(&json!({"count": 0, "entries": []})).expect("encode");
    runtime
        .block_on(store.put("counter.json", initial, Precondition::IfNoneMatch))
        .expect("create");
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            std::process::Command::new(&exe)
                .args([
                    "folder_state_worker",
                    "--exact",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env("LRS_STATE_WORKER_DIR", dir.path())
                .env("LRS_STATE_WORKER_ROUNDS", ROUNDS.to_string())
                .env("LRS_STATE_WORKER_ID", i.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "a worker failed");
    }
    let (bytes, _) = runtime
        .block_on(store.get("counter.json"))
        .expect("get")
        .expect("exists");
    let doc: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(doc["count"], json!(PROCESSES * 4 * ROUNDS));
}

/// Worker for `folder_state_cas_holds_across_processes`: 4 tasks × rounds increments. Ignored
/// so it runs only when that test starts it.
#[test]
#[ignore = "started by folder_state_cas_holds_across_processes"]
fn folder_state_worker() {
    let Some(dir) = std::env::var_os("LRS_STATE_WORKER_DIR") else {
        return;
    };
    let rounds: usize = std::env::var("LRS_STATE_WORKER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("LRS_STATE_WORKER_ROUNDS");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store: Arc<dyn StateStore> = Arc::new(FolderStateStore::new(dir).expect("store"));
    runtime.block_on(run_counter(store, "counter.json", 4, rounds));
}

/// `read_head` gives the head of the version the ETag names and the same properties as
/// `properties` (size, ETag, type, metadata), in one GET on Azure; a stale ETag is a conflict.
async fn head_read_carries_the_properties(b: &Backend) {
    let name = format!("{}/db1/head.bak", b.container);
    let data = pattern(3 * HEAD as usize);
    let metadata = meta(&[("lrs_tail", "true")]);
    b.blobs
        .upload(&name, Bytes::from(data.clone()), BlobType::Block, &metadata)
        .await
        .expect("upload");
    let props = b.blobs.properties(&name).await.expect("properties");
    let (head, item) = b
        .blobs
        .read_head(&name, HEAD, Some(&props.etag))
        .await
        .expect("the head");
    assert_eq!(&head[..], &data[..HEAD as usize]);
    assert_eq!(item.size, props.size);
    assert_eq!(item.etag, props.etag);
    assert_eq!(item.blob_type, props.blob_type);
    assert_eq!(item.meta("lrs_tail"), Some("true"));
    b.blobs
        .upload(&name, Bytes::from(pattern(10)), BlobType::Block, &metadata)
        .await
        .expect("overwrite");
    let stale = b.blobs.read_head(&name, HEAD, Some(&props.etag)).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    let missing = format!("{}/db1/none.bak", b.container);
    let gone = b.blobs.read_head(&missing, HEAD, None).await;
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azurite_head_read_carries_the_properties() {
    head_read_carries_the_properties(&azurite_backend().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_head_read_carries_the_properties() {
    head_read_carries_the_properties(&folder_backend().await).await;
}
