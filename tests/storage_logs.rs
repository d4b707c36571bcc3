//! What the storage adapters and the Azure SDK log never contains the SAS. In a test binary of
//! its own: it installs a global subscriber to capture every thread's output at TRACE.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use lrs_autopilot::storage::azure::{AzureBlobStore, AzureStateStore};
use lrs_autopilot::storage::sas::SasToken;
use lrs_autopilot::storage::{BlobStore, BlobType, BlobWriter, Precondition, StateStore};
use support::azurite;

use support::Captured;

/// Everything the SDK and the adapters log at TRACE, on success and on failure, is free of the
/// SAS: the SDK sanitises query strings, our spans carry names only.
#[tokio::test]
async fn sas_never_appears_in_storage_logs() {
    let (container, url) = azurite::create_container("logs").await;
    let sig = SasToken::parse(&url).expect("sas").signature().to_owned();
    let encoded_sig = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");

    let store = AzureBlobStore::new(&url, None).expect("store");
    let name = format!("{container}/db/x.bak");
    store
        .upload(
            &name,
            Bytes::from(vec![7u8; 1000]),
            BlobType::Block,
            &BTreeMap::new(),
        )
        .await
        .expect("upload");
    store.list(&container).await.expect("list");
    store.read_range(&name, 0, 100).await.expect("read");
    let missing = store
        .read_range(&format!("{container}/db/missing"), 0, 1)
        .await;
    assert!(missing.is_err());
    let state = AzureStateStore::new(&url, &container, None).expect("state");
    let etag = state
        .put("db.json", b"{}".to_vec(), Precondition::IfNoneMatch)
        .await
        .expect("put");
    state
        .put(
            "db.json",
            b"{}".to_vec(),
            Precondition::IfMatch(etag.clone()),
        )
        .await
        .expect("update");
    let conflict = state
        .put("db.json", b"{}".to_vec(), Precondition::IfMatch(etag))
        .await;
    assert!(
        conflict.is_err_and(|e| e.is_conflict()),
        "the etag is stale now"
    );

    let logs = captured.text();
    assert!(
        logs.contains("blob.read_range"),
        "the adapters' spans are logged: {logs}"
    );
    assert!(
        logs.contains(&format!("{container}/db/x.bak?")),
        "the sdk logs request urls, so their query strings must be sanitised"
    );
    assert!(!logs.contains(&sig), "the raw signature leaked into logs");
    assert!(
        !logs.contains(&encoded_sig),
        "the encoded signature leaked into logs"
    );
}
