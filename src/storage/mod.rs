//! Storage adapters: backup blobs (listing, properties, ranged reads) and state documents (ETag
//! If-Match), on Azure Blob Storage through the official SDK, or on a local folder for rehearsals.
//!
//! The shells and the LRS simulator hold these as `Arc<dyn BlobStore>` / `Arc<dyn StateStore>`, so a
//! rehearsal on a folder runs the same code as production on Azure. The pure core never imports this
//! module.
//!
//! Names: a blob is named `<container>/<path>`, the way it appears in a blob URL after the account
//! (`sqlfiles/db1/full.bak`). Both stores check names the same way ([`split_name`]), so a layout
//! that works on a folder works on Azure too. State documents are keyed by a relative path inside
//! the state container (`sqlfiles/db1.json`).

pub mod azure;
mod error;
pub mod event;
pub mod file;
pub mod folder;
pub mod location;
pub mod sas;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

pub use error::{Error, ServiceDetail};

/// A blob's entity tag: opaque, compared only for equality. Used for optimistic concurrency on
/// state documents and to notice that a backup blob changed between two reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ETag(pub String);

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ETag {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// The kind of blob. Backups written with `BACKUP TO URL` and a SAS are block blobs; the older
/// credential form writes page blobs, whose size is fixed up front, so a page blob may still be
/// being written when its event arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobType {
    /// A block blob (the common case).
    Block,
    /// A page blob (512-byte pages, size set at creation).
    Page,
    /// An append blob.
    Append,
}

/// One blob, as listed or as returned by [`BlobStore::properties`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobItem {
    /// Full name, `<container>/<path>`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// When the blob was last written.
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    /// The blob's ETag.
    pub etag: ETag,
    /// Block, page or append blob.
    pub blob_type: BlobType,
    /// User metadata (`x-ms-meta-*`). The pipeline reads `lrs_tail=true` from here.
    pub metadata: BTreeMap<String, String>,
}

impl BlobItem {
    /// A metadata value by key, ignoring ASCII case (Azure metadata names are case-insensitive).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Read access to backup blobs.
///
/// Object safe: held as `Arc<dyn BlobStore>`. Implementations never log or return a SAS.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Every blob whose name starts with `prefix`, sorted by name. The prefix starts with the
    /// container (`sqlfiles/db1/`); a bare container name lists the whole container. There is no
    /// delimiter listing: callers group by folder themselves.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a malformed prefix, [`Error::NotFound`] if the container does
    /// not exist, and service, network or I/O errors.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobItem>, Error>;

    /// One blob's size, type, ETag and metadata.
    ///
    /// # Errors
    /// [`Error::NotFound`] if it does not exist, [`Error::InvalidName`], and service, network or
    /// I/O errors.
    async fn properties(&self, name: &str) -> Result<BlobItem, Error>;

    /// Up to `len` bytes from `offset`, and the blob's total size. A range past the end returns
    /// what exists (possibly nothing), not an error, so a reader can ask for "the last 64 KiB"
    /// without knowing the size first.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the blob does not exist, [`Error::InvalidName`], and service,
    /// network or I/O errors.
    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<(Bytes, u64), Error>;

    /// [`read_range`](Self::read_range) of the version `etag` names, and of no other: the head
    /// and the tail of a backup must come from one version of the blob.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the blob changed since (Azure answers 412 to `If-Match`): read it
    /// again from the start. Otherwise as [`read_range`](Self::read_range).
    async fn read_range_if_match(
        &self,
        name: &str,
        offset: u64,
        len: u64,
        etag: &ETag,
    ) -> Result<(Bytes, u64), Error>;

    /// The first `len` bytes of the version `etag` names (any version without one) together with
    /// that version's properties: on Azure one GET carries both (size, ETag, type and metadata
    /// come back as headers), so a file whose size and ETag an event already gave is read without
    /// a separate properties call. This default costs a properties call and a ranged read.
    ///
    /// # Errors
    /// [`Error::Conflict`] when `etag` no longer names the blob; otherwise as
    /// [`read_range`](Self::read_range).
    async fn read_head(
        &self,
        name: &str,
        len: u64,
        etag: Option<&ETag>,
    ) -> Result<(Bytes, BlobItem), Error> {
        let item = self.properties(name).await?;
        if etag.is_some_and(|e| *e != item.etag) {
            return Err(Error::conflict(name, None));
        }
        let (bytes, _) = self.read_range_if_match(name, 0, len, &item.etag).await?;
        Ok((bytes, item))
    }

    /// The URL of a blob or folder (`<container>/<folder>`), without any query string: this is
    /// the storage container URI given to LRS, so it must never carry a SAS.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a malformed name.
    fn url(&self, name: &str) -> Result<Url, Error>;
}

/// Writing blobs. The pipeline never writes backups; tests, rehearsals and demos use this to lay
/// out a container.
#[async_trait]
pub trait BlobWriter: BlobStore {
    /// Create a container if it does not exist yet.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a bad container name, and service, network or I/O errors.
    async fn ensure_container(&self, container: &str) -> Result<(), Error>;

    /// Write a whole blob, replacing any existing one. A page blob's content must be a multiple
    /// of 512 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Invalid`] for a page blob of the wrong size, and service,
    /// network or I/O errors.
    async fn upload(
        &self,
        name: &str,
        data: Bytes,
        blob_type: BlobType,
        metadata: &BTreeMap<String, String>,
    ) -> Result<ETag, Error>;
}

/// Reads a backup blob's header with the ranged reads [`crate::backup::Fetch`] asks for (head, tail,
/// a longer head if needed), never the whole blob: the pipeline and the simulator read alike, and
/// local files the same way ([`file::read_backup_file`]).
///
/// With `etag` (from the listing or properties the size came from), every read is of that version
/// only: a blob overwritten between the head and the tail read is not misread as corrupt (its
/// head and tail would disagree) but answered with [`Error::Conflict`], a transient error.
///
/// # Errors
/// Storage errors only, [`Error::Conflict`] when the blob changed; what the bytes mean is in the
/// outcome.
pub async fn read_backup_blob(
    store: &dyn BlobStore,
    name: &str,
    size: u64,
    etag: Option<&ETag>,
) -> Result<crate::backup::FetchOutcome, Error> {
    let mut fetch = crate::backup::Fetch::new(size);
    while let Some(range) = fetch.poll_read() {
        let len = range.len as u64;
        let (bytes, _) = match etag {
            Some(etag) => {
                store
                    .read_range_if_match(name, range.offset, len, etag)
                    .await?
            }
            None => store.read_range(name, range.offset, len).await?,
        };
        fetch.handle_read(range, &bytes);
    }
    Ok(fetch.finish())
}

/// [`read_backup_blob`] for a blob whose size and ETag are already known (a BlobCreated event
/// carries both): the head (with the blob's properties) and the usual tail are read at once, both
/// of the version `etag` names, and the reader asks for more only when the header needs it (a long
/// header, a longer closing copy). Returns the outcome and the properties the head read returned.
///
/// # Errors
/// [`Error::Conflict`] when `etag` no longer names the blob (it was overwritten since the event:
/// read it again from its properties); otherwise storage errors, as [`read_backup_blob`].
pub async fn read_backup_blob_known(
    store: &dyn BlobStore,
    name: &str,
    size: u64,
    etag: &ETag,
) -> Result<(crate::backup::FetchOutcome, BlobItem), Error> {
    let mut fetch = crate::backup::Fetch::new(size);
    let Some(head) = fetch.poll_read() else {
        let item = store.properties(name).await?;
        return Ok((fetch.finish(), item));
    };
    // What the reader will most likely ask for next: the last TAIL_LEN bytes after the head.
    let tail_from = size
        .saturating_sub(crate::backup::TAIL_LEN as u64)
        .max(head.len as u64);
    let tail = async {
        match tail_from < size {
            true => store
                .read_range_if_match(name, tail_from, size - tail_from, etag)
                .await
                .map(Some),
            false => Ok(None),
        }
    };
    let (head_read, tail_read) =
        futures::future::join(store.read_head(name, head.len as u64, Some(etag)), tail).await;
    let (bytes, item) = head_read?;
    let prefetched = tail_read?.map(|(bytes, _)| (tail_from, bytes));
    if item.size != size {
        // The event's size is not the blob's (never for one version): read it the ordinary way.
        let outcome = read_backup_blob(store, name, item.size, Some(&item.etag)).await?;
        return Ok((outcome, item));
    }
    fetch.handle_read(head, &bytes);
    while let Some(range) = fetch.poll_read() {
        let held = prefetched.as_ref().and_then(|(from, bytes)| {
            let start = usize::try_from(range.offset.checked_sub(*from)?).ok()?;
            bytes.get(start..start.checked_add(range.len)?)
        });
        match held {
            Some(bytes) => fetch.handle_read(range, bytes),
            None => {
                let (bytes, _) = store
                    .read_range_if_match(name, range.offset, range.len as u64, &item.etag)
                    .await?;
                fetch.handle_read(range, &bytes);
            }
        }
    }
    Ok((fetch.finish(), item))
}

/// The condition a state document write depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Write only if the document still has this ETag (read-modify-write).
    IfMatch(ETag),
    /// Write only if the document does not exist yet (create).
    IfNoneMatch,
}

/// JSON state documents with optimistic concurrency.
///
/// Object safe: held as `Arc<dyn StateStore>`. A lost race surfaces as [`Error::Conflict`]; the
/// caller re-reads and re-decides.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// A document's bytes and ETag, or `None` if it does not exist.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a malformed key, and service, network or I/O errors.
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ETag)>, Error>;

    /// Write a document if `precondition` holds, returning its new ETag.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the precondition failed (HTTP 409 or 412 on Azure),
    /// [`Error::InvalidName`], and service, network or I/O errors.
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<ETag, Error>;

    /// Keys of every document whose key starts with `prefix`, sorted.
    ///
    /// # Errors
    /// Service, network or I/O errors.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error>;
}

/// Split `<container>/<path>` and check both parts, the same way for every store.
///
/// The container follows Azure's rules (3 to 63 lowercase letters, digits and single hyphens),
/// so a folder rehearsal cannot rely on a layout Azure would refuse. A blob name needs a path; a
/// prefix (`is_prefix`) may have none or end with `/`. No empty, `.` or `..` segments,
/// backslashes or control characters: names arrive in events, and a folder store must never
/// leave its root.
///
/// # Errors
/// [`Error::InvalidName`] naming the rule that failed.
pub fn split_name(name: &str, is_prefix: bool) -> Result<(&str, &str), Error> {
    let (container, path) = match name.split_once('/') {
        Some((c, p)) => (c, p),
        None => (name, ""),
    };
    check_container(container).map_err(|reason| Error::invalid_name(name, reason))?;
    if path.is_empty() {
        if is_prefix {
            return Ok((container, path));
        }
        return Err(Error::invalid_name(
            name,
            "no blob path after the container",
        ));
    }
    check_path(path, is_prefix).map_err(|reason| Error::invalid_name(name, reason))?;
    Ok((container, path))
}

/// Check a state document key (a relative path). Segments may not start with `.`: the folder
/// store keeps its lock and temporary files there.
///
/// # Errors
/// [`Error::InvalidName`] naming the rule that failed.
pub fn check_key(key: &str) -> Result<(), Error> {
    check_path(key, false).map_err(|reason| Error::invalid_name(key, reason))?;
    if key.split('/').any(|s| s.starts_with('.')) {
        return Err(Error::invalid_name(
            key,
            "a key segment may not start with '.'",
        ));
    }
    Ok(())
}

fn check_container(container: &str) -> Result<(), &'static str> {
    if container.is_empty() {
        return Err("the name must start with a container");
    }
    if !(3..=63).contains(&container.len()) {
        return Err("a container name has 3 to 63 characters");
    }
    if !container
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("a container name has only lowercase letters, digits and hyphens");
    }
    if container.starts_with('-') || container.ends_with('-') || container.contains("--") {
        return Err("a container name may not start or end with a hyphen or repeat one");
    }
    Ok(())
}

/// `trailing_slash_ok`: a listing prefix may end with `/` (a folder), a blob name may not.
fn check_path(path: &str, trailing_slash_ok: bool) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the name is empty");
    }
    if path.len() > 1024 {
        return Err("the name is longer than 1024 characters");
    }
    if path.starts_with('/') {
        return Err("the name may not start with '/'");
    }
    if path.contains('\\') {
        return Err("the name may not contain a backslash");
    }
    if path.chars().any(char::is_control) {
        return Err("the name may not contain control characters");
    }
    let body = match path.strip_suffix('/') {
        Some(b) if trailing_slash_ok => b,
        Some(_) => return Err("the name may not end with '/'"),
        None => path,
    };
    for segment in body.split('/') {
        match segment {
            "" => return Err("the name may not contain an empty segment ('//')"),
            "." | ".." => return Err("the name may not contain '.' or '..' segments"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_container_and_path() {
        assert_eq!(
            split_name("sqlfiles/db1/full.bak", false).ok(),
            Some(("sqlfiles", "db1/full.bak"))
        );
        assert_eq!(split_name("sqlfiles", true).ok(), Some(("sqlfiles", "")));
        assert_eq!(split_name("sqlfiles/", true).ok(), Some(("sqlfiles", "")));
        assert_eq!(
            split_name("sqlfiles/db1/", true).ok(),
            Some(("sqlfiles", "db1/"))
        );
    }

    #[test]
    fn rejects_hostile_names() {
        for name in [
            "",
            "sqlfiles",
            "sqlfiles/",
            "/sqlfiles/x",
            "Backups/x",
            "ab/x",
            "-ab/x",
            "a--b/x",
            "sqlfiles/../etc/passwd",
            "sqlfiles/db1/../../x",
            "sqlfiles/./x",
            "sqlfiles//x",
            "sqlfiles/x\\..\\y",
            "sqlfiles/x\0y",
            "sqlfiles/x\ny",
            "sqlfiles/db1/",
        ] {
            let err = split_name(name, false).err();
            assert!(
                matches!(err, Some(Error::InvalidName { .. })),
                "{name:?} should be refused, got {err:?}"
            );
        }
        assert!(split_name("sqlfiles/db1//", true).is_err());
        let long = format!("sqlfiles/{}", "x".repeat(1025));
        assert!(split_name(&long, false).is_err());
    }

    #[test]
    fn invalid_name_error_says_why() {
        let err = split_name("sqlfiles/../x", false)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid name \"sqlfiles/../x\": the name may not contain '.' or '..' segments")
        );
    }

    #[test]
    fn checks_state_keys() {
        assert!(check_key("sqlfiles/db1.json").is_ok());
        for key in ["", "/x", "a/../b", ".lock", "a/.tmp-1", "a//b", "a/"] {
            assert!(check_key(key).is_err(), "{key:?} should be refused");
        }
    }

    #[test]
    fn meta_lookup_ignores_case() {
        let item = BlobItem {
            name: "sqlfiles/db/tail.trn".into(),
            size: 1,
            last_modified: OffsetDateTime::UNIX_EPOCH,
            etag: ETag::from("x"),
            blob_type: BlobType::Block,
            metadata: BTreeMap::from([("LRS_Tail".to_owned(), "true".to_owned())]),
        };
        assert_eq!(item.meta("lrs_tail"), Some("true"));
        assert_eq!(item.meta("other"), None);
    }
}
