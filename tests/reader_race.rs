//! Issue 11 item 3: a backup blob overwritten between the head read and the tail read is not
//! corrupt. With the ETag of the version whose size was taken, every ranged read is of that
//! version only (`If-Match` on Azure, checked around the read on the folder store), and a change is
//! a conflict the host retries. Run against Azurite and the folder store.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use lrs_autopilot::backup::writer::{WriteOptions, write};
use lrs_autopilot::backup::{self, Error as ReadError};
use lrs_autopilot::chain::FileRead;
use lrs_autopilot::chain::synthetic::Synthetic;
use lrs_autopilot::pipeline::PipelineError;
use lrs_autopilot::storage::azure::AzureBlobStore;
use lrs_autopilot::storage::folder::FolderStore;
use lrs_autopilot::storage::{
    BlobItem, BlobStore, BlobType, BlobWriter, ETag, Error, read_backup_blob,
};
use support::azurite;
use url::Url;

/// Two versions of one log backup file, the same size, from different backups.
fn versions() -> (Bytes, Bytes) {
    let mut db = Synthetic::new("Sales");
    let options = WriteOptions {
        data_len: 256 * 1024,
        complete: true,
    };
    let mut bytes = |first, last| {
        let file = db.log(first, last).file("Sales_LOG.trn");
        let FileRead::Read { facts } = &file.read else {
            panic!("synthetic facts");
        };
        Bytes::from(write(facts, &options))
    };
    let (v1, v2) = (bytes(100, 200), bytes(200, 300));
    assert_eq!(v1.len(), v2.len());
    assert!(v1.len() > backup::HEAD_LEN + backup::TAIL_LEN);
    (v1, v2)
}

/// A store whose blob is overwritten with `next` right after the first read: the upload that
/// lands while an invocation reads.
struct OverwrittenWhileRead {
    inner: Arc<dyn BlobWriter>,
    name: String,
    next: Bytes,
    reads: AtomicUsize,
}

impl OverwrittenWhileRead {
    async fn before_read(&self) {
        if self.reads.fetch_add(1, Ordering::SeqCst) == 1 {
            self.inner
                .upload(
                    &self.name,
                    self.next.clone(),
                    BlobType::Block,
                    &Default::default(),
                )
                .await
                .expect("overwrite");
        }
    }
}

#[async_trait]
impl BlobStore for OverwrittenWhileRead {
    async fn list(&self, prefix: &str) -> Result<Vec<BlobItem>, Error> {
        self.inner.list(prefix).await
    }
    async fn properties(&self, name: &str) -> Result<BlobItem, Error> {
        self.inner.properties(name).await
    }
    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<(Bytes, u64), Error> {
        self.before_read().await;
        self.inner.read_range(name, offset, len).await
    }
    async fn read_range_if_match(
        &self,
        name: &str,
        offset: u64,
        len: u64,
        etag: &ETag,
    ) -> Result<(Bytes, u64), Error> {
        self.before_read().await;
        self.inner
            .read_range_if_match(name, offset, len, etag)
            .await
    }
    fn url(&self, name: &str) -> Result<Url, Error> {
        self.inner.url(name)
    }
}

async fn overwrite_between_head_and_tail(blobs: Arc<dyn BlobWriter>, container: &str) {
    let (v1, v2) = versions();
    let name = format!("{container}/Sales/Sales_LOG.trn");
    let store = |next: Bytes| OverwrittenWhileRead {
        inner: blobs.clone(),
        name: name.clone(),
        next,
        reads: AtomicUsize::new(0),
    };

    // Without the ETag (what the pipeline did): head of v1, tail of v2, a file called corrupt.
    blobs
        .upload(&name, v1.clone(), BlobType::Block, &Default::default())
        .await
        .expect("upload v1");
    let item = blobs.properties(&name).await.expect("properties");
    let racing = store(v2.clone());
    let blind = read_backup_blob(&racing, &name, item.size, None)
        .await
        .expect("storage answers");
    assert!(
        matches!(blind.result, Err(ReadError::Corrupt { .. })),
        "a mixed read misreads: {:?}",
        blind.result
    );

    // With it: a conflict, which the host retries; nothing is said about the file.
    blobs
        .upload(&name, v1.clone(), BlobType::Block, &Default::default())
        .await
        .expect("upload v1 again");
    let item = blobs.properties(&name).await.expect("properties");
    let racing = store(v2.clone());
    let err = read_backup_blob(&racing, &name, item.size, Some(&item.etag))
        .await
        .expect_err("the blob changed between the reads");
    assert!(err.is_conflict(), "{err:?}");
    assert!(PipelineError::from(err).is_transient());
    assert_eq!(
        racing.reads.load(Ordering::SeqCst),
        2,
        "head, then the refused tail"
    );

    // The retry reads the new version whole and right.
    let item = blobs.properties(&name).await.expect("properties");
    let outcome = read_backup_blob(blobs.as_ref(), &name, item.size, Some(&item.etag))
        .await
        .expect("read v2");
    let file = outcome.result.expect("v2 reads");
    assert_eq!(file.complete, Some(true));
    let expected = backup::read(&v2, None).expect("v2 head");
    assert_eq!(
        file.backup_sets[0].backup_set_guid,
        expected.backup_sets[0].backup_set_guid
    );

    // A stale ETag is refused even for a zero-length read.
    let stale = ETag("\"0x0000\"".into());
    let err = blobs
        .read_range_if_match(&name, 0, 0, &stale)
        .await
        .expect_err("stale etag");
    assert!(err.is_conflict(), "{err:?}");
    let err = blobs
        .read_range_if_match(&name, 0, 10, &stale)
        .await
        .expect_err("stale etag");
    assert!(err.is_conflict(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_a_blob_overwritten_between_head_and_tail_is_retried_not_corrupt() {
    let (container, url) = azurite::create_container("race").await;
    let blobs = AzureBlobStore::new(&url, None).expect("blob store");
    overwrite_between_head_and_tail(Arc::new(blobs), &container).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_a_blob_overwritten_between_head_and_tail_is_retried_not_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = FolderStore::new(dir.path().join("root")).expect("folder store");
    blobs.ensure_container("race").await.expect("container");
    overwrite_between_head_and_tail(Arc::new(blobs), "race").await;
}
