//! The storage traits over a local folder, for rehearsals, demos and the simulator's
//! `--storage-root`: the same names and semantics as Azure, on disk.
//!
//! Layout: blob `<container>/<path>` is the file `<root>/<container>/<path>`. Blob type and
//! metadata, which a file cannot carry, live in a sidecar `<root>/.lrs-meta/<container>/<path>.json`
//! (a name no container can have); a file without one is a block blob with no metadata. State
//! document `<key>` is the file `<state dir>/<key>`.
//!
//! ETags: a blob's is its modification time and size (hashing a multi-GB backup on every listing
//! would read it all); a state document's is a hash of its content. State writes go to a temporary
//! file that is renamed over the document, so readers see the old or the new document, never half
//! of one; the compare-and-swap holds a process-wide lock and an exclusive lock on
//! `<state dir>/.lock`, so tasks in one process and several processes on one folder are safe.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::Bytes;
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::{
    BlobItem, BlobStore, BlobType, BlobWriter, ETag, Error, Precondition, StateStore, check_key,
    split_name,
};

/// Folder (under the root) holding blob type and metadata sidecars.
const META_DIR: &str = ".lrs-meta";
/// Folder (under the root) for uploads in progress.
const TMP_DIR: &str = ".lrs-tmp";
/// The state directory's lock file.
const LOCK_FILE: &str = ".lock";

/// Serialises state compare-and-swaps within this process; the lock file does it across processes.
static STATE_LOCK: Mutex<()> = Mutex::new(());

/// Run blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::invalid(&format!("folder store task failed: {e}")))?
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| Error::io("resolve", path, &e))
}

/// Every file under `dir`, as (`/`-joined path relative to `dir`, full path), skipping names that
/// start with `.` when `skip_hidden`, and names that are not UTF-8 (no blob could have them).
fn walk(dir: &Path, skip_hidden: bool) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((rel, path)) = stack.pop() {
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list", &path, &e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &path, &e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if skip_hidden && name.starts_with('.') {
                continue;
            }
            let child = entry.path();
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::metadata(&child).map_err(|e| Error::io("list", &child, &e))?;
            if meta.is_dir() {
                stack.push((child_rel, child));
            } else if meta.is_file() {
                out.push((child_rel, child));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// What a file cannot carry: blob type and metadata.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sidecar {
    blob_type: Option<BlobType>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Backup blobs in a local folder: `<root>/<container>/<path>`.
#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    /// A store over `root` (made absolute; it need not exist yet).
    ///
    /// # Errors
    /// [`Error::Io`] if the current directory cannot be read to resolve a relative root.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(Self {
            root: absolute(root.as_ref())?,
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, container: &str, path: &str) -> PathBuf {
        let mut p = self.root.join(container);
        p.extend(path.split('/').filter(|s| !s.is_empty()));
        p
    }

    fn sidecar_path(&self, container: &str, path: &str) -> PathBuf {
        let mut p = self.root.join(META_DIR).join(container);
        p.extend(path.split('/'));
        p.as_mut_os_string().push(".json");
        p
    }

    /// Stat one blob; `None` if it is not a file.
    fn item(&self, name: &str, container: &str, path: &str) -> Result<Option<BlobItem>, Error> {
        let file = self.blob_path(container, path);
        let meta = match fs::metadata(&file) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("stat", &file, &e)),
        };
        let modified = meta.modified().map_err(|e| Error::io("stat", &file, &e))?;
        let nanos = modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let sidecar_path = self.sidecar_path(container, path);
        let sidecar = match fs::read(&sidecar_path) {
            Ok(bytes) => serde_json::from_slice::<Sidecar>(&bytes).map_err(|e| {
                Error::invalid(&format!(
                    "metadata sidecar {} is not valid: {e}",
                    sidecar_path.display()
                ))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Sidecar::default(),
            Err(e) => return Err(Error::io("read", &sidecar_path, &e)),
        };
        Ok(Some(BlobItem {
            name: name.to_owned(),
            size: meta.len(),
            last_modified: OffsetDateTime::from(modified),
            etag: ETag(format!("\"{nanos:x}-{:x}\"", meta.len())),
            blob_type: sidecar.blob_type.unwrap_or(BlobType::Block),
            metadata: sidecar.metadata,
        }))
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<BlobItem>, Error> {
        let (container, path_prefix) = split_name(prefix, true)?;
        let container_dir = self.root.join(container);
        if !container_dir.is_dir() {
            return Err(Error::not_found(container, None));
        }
        // Walk only the deepest folder the prefix names.
        let (walk_rel, walk_dir) = match path_prefix.rfind('/') {
            Some(i) => {
                let rel = path_prefix.get(..i).unwrap_or_default();
                (format!("{rel}/"), self.blob_path(container, rel))
            }
            None => (String::new(), container_dir),
        };
        let mut items = Vec::new();
        for (rel, _) in walk(&walk_dir, false)? {
            let path = format!("{walk_rel}{rel}");
            if !path.starts_with(path_prefix) {
                continue;
            }
            let name = format!("{container}/{path}");
            if let Some(item) = self.item(&name, container, &path)? {
                items.push(item);
            }
        }
        Ok(items)
    }

    fn read_blocking(&self, name: &str, offset: u64, len: u64) -> Result<(Bytes, u64), Error> {
        let (container, path) = split_name(name, false)?;
        let file_path = self.blob_path(container, path);
        let mut file = match File::open(&file_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(name, None));
            }
            Err(e) => return Err(Error::io("read", &file_path, &e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io("read", &file_path, &e))?;
        if !meta.is_file() {
            return Err(Error::not_found(name, None));
        }
        let total = meta.len();
        let want = len.min(total.saturating_sub(offset));
        if want == 0 {
            return Ok((Bytes::new(), total));
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("read", &file_path, &e))?;
        let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        file.take(want)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read", &file_path, &e))?;
        Ok((Bytes::from(buf), total))
    }

    fn upload_blocking(
        &self,
        name: &str,
        data: &[u8],
        blob_type: BlobType,
        metadata: &BTreeMap<String, String>,
    ) -> Result<ETag, Error> {
        let (container, path) = split_name(name, false)?;
        if blob_type == BlobType::Page && data.len() % 512 != 0 {
            return Err(Error::invalid(&format!(
                "page blob {name} must be a multiple of 512 bytes, not {}",
                data.len()
            )));
        }
        let target = self.blob_path(container, path);
        let sidecar = self.sidecar_path(container, path);
        if blob_type == BlobType::Block && metadata.is_empty() {
            match fs::remove_file(&sidecar) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("write", &sidecar, &e)),
            }
        } else {
            let json = serde_json::to_vec(&Sidecar {
                blob_type: Some(blob_type),
                metadata: metadata.clone(),
            })
            .map_err(|e| Error::invalid(&format!("cannot encode metadata for {name}: {e}")))?;
            write_atomically(&self.root.join(TMP_DIR), &sidecar, &json)?;
        }
        write_atomically(&self.root.join(TMP_DIR), &target, data)?;
        self.item(name, container, path)?
            .map(|i| i.etag)
            .ok_or_else(|| Error::not_found(name, None))
    }
}

/// Write `data` to a new file in `tmp_dir`, flush it to disk, and rename it to `target`.
fn write_atomically(tmp_dir: &Path, target: &Path, data: &[u8]) -> Result<(), Error> {
    for dir in [Some(tmp_dir), target.parent()].into_iter().flatten() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, &e))?;
    }
    let tmp = tmp_dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("write", &tmp, &e))?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", &tmp, &e))?;
        fs::rename(&tmp, target).map_err(|e| Error::io("rename", target, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[async_trait]
impl BlobStore for FolderStore {
    async fn list(&self, prefix: &str) -> Result<Vec<BlobItem>, Error> {
        let store = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || store.list_blocking(&prefix)).await
    }

    async fn properties(&self, name: &str) -> Result<BlobItem, Error> {
        let store = self.clone();
        let name = name.to_owned();
        blocking(move || {
            let (container, path) = split_name(&name, false)?;
            store
                .item(&name, container, path)?
                .ok_or_else(|| Error::not_found(&name, None))
        })
        .await
    }

    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<(Bytes, u64), Error> {
        let store = self.clone();
        let name = name.to_owned();
        blocking(move || store.read_blocking(&name, offset, len)).await
    }

    /// The ETag (modification time and size) is compared before and after the read: a file
    /// rewritten meanwhile is a conflict, as Azure's `If-Match` makes it.
    async fn read_range_if_match(
        &self,
        name: &str,
        offset: u64,
        len: u64,
        etag: &ETag,
    ) -> Result<(Bytes, u64), Error> {
        let store = self.clone();
        let name = name.to_owned();
        let etag = etag.clone();
        blocking(move || {
            let (container, path) = split_name(&name, false)?;
            let current = |store: &FolderStore| -> Result<ETag, Error> {
                Ok(store
                    .item(&name, container, path)?
                    .ok_or_else(|| Error::not_found(&name, None))?
                    .etag)
            };
            if current(&store)? != etag {
                return Err(Error::conflict(&name, None));
            }
            let read = store.read_blocking(&name, offset, len)?;
            if current(&store)? != etag {
                return Err(Error::conflict(&name, None));
            }
            Ok(read)
        })
        .await
    }

    fn url(&self, name: &str) -> Result<Url, Error> {
        let (container, path) = split_name(name, true)?;
        let path = self.blob_path(container, path.trim_end_matches('/'));
        Url::from_file_path(&path)
            .map_err(|()| Error::invalid(&format!("{} is not a file url", path.display())))
    }
}

#[async_trait]
impl BlobWriter for FolderStore {
    async fn ensure_container(&self, container: &str) -> Result<(), Error> {
        let (container, path) = split_name(container, true)?;
        if !path.is_empty() {
            return Err(Error::invalid_name(
                container,
                "a container name has no '/'",
            ));
        }
        let dir = self.root.join(container);
        blocking(move || fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, &e))).await
    }

    async fn upload(
        &self,
        name: &str,
        data: Bytes,
        blob_type: BlobType,
        metadata: &BTreeMap<String, String>,
    ) -> Result<ETag, Error> {
        let store = self.clone();
        let name = name.to_owned();
        let metadata = metadata.clone();
        blocking(move || store.upload_blocking(&name, &data, blob_type, &metadata)).await
    }
}

/// State documents in a local folder: `<dir>/<key>`.
#[derive(Debug, Clone)]
pub struct FolderStateStore {
    dir: PathBuf,
}

/// A state document's ETag: the SHA-256 of its content (first 128 bits, hex, quoted).
fn content_etag(bytes: &[u8]) -> ETag {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    ETag(format!("\"{hex}\""))
}

impl FolderStateStore {
    /// A store over `dir` (made absolute; created on first write).
    ///
    /// # Errors
    /// [`Error::Io`] if the current directory cannot be read to resolve a relative path.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(Self {
            dir: absolute(dir.as_ref())?,
        })
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn doc_path(&self, key: &str) -> PathBuf {
        let mut p = self.dir.clone();
        p.extend(key.split('/'));
        p
    }

    fn read_doc(path: &Path) -> Result<Option<Vec<u8>>, Error> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, &e)),
        }
    }

    fn put_blocking(
        &self,
        key: &str,
        bytes: &[u8],
        precondition: &Precondition,
    ) -> Result<ETag, Error> {
        check_key(key)?;
        let path = self.doc_path(key);
        fs::create_dir_all(&self.dir).map_err(|e| Error::io("create", &self.dir, &e))?;
        // Held until the end of this function: first the process, then other processes.
        let _process = STATE_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("lock", &lock_path, &e))?;
        FileExt::lock_exclusive(&lock).map_err(|e| Error::io("lock", &lock_path, &e))?;

        let current = Self::read_doc(&path)?;
        let holds = match (precondition, &current) {
            (Precondition::IfNoneMatch, None) => true,
            (Precondition::IfMatch(etag), Some(existing)) => content_etag(existing) == *etag,
            _ => false,
        };
        if !holds {
            return Err(Error::conflict(key, None));
        }
        write_atomically(&self.dir, &path, bytes)?;
        Ok(content_etag(bytes))
        // `lock` closes here, releasing the file lock; then the process lock is released.
    }
}

#[async_trait]
impl StateStore for FolderStateStore {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ETag)>, Error> {
        check_key(key)?;
        let path = self.doc_path(key);
        blocking(move || {
            Ok(Self::read_doc(&path)?.map(|bytes| {
                let etag = content_etag(&bytes);
                (bytes, etag)
            }))
        })
        .await
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<ETag, Error> {
        let store = self.clone();
        let key = key.to_owned();
        blocking(move || store.put_blocking(&key, &bytes, &precondition)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let dir = self.dir.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            Ok(walk(&dir, true)?
                .into_iter()
                .map(|(rel, _)| rel)
                .filter(|k| k.starts_with(&prefix))
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_names_that_leave_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = FolderStore::new(tmp.path().join("root")).expect("store");
        fs::create_dir_all(tmp.path().join("root/sqlfiles")).expect("mkdir");
        fs::write(tmp.path().join("secret"), b"x").expect("write");
        for name in [
            "sqlfiles/../../secret",
            "sqlfiles/../secret",
            "/secret",
            "sqlfiles//x",
        ] {
            let read = store.read_range(name, 0, 10).await;
            assert!(
                matches!(read, Err(Error::InvalidName { .. })),
                "{name}: {read:?}"
            );
            let up = store
                .upload(
                    name,
                    Bytes::from_static(b"x"),
                    BlobType::Block,
                    &BTreeMap::new(),
                )
                .await;
            assert!(
                matches!(up, Err(Error::InvalidName { .. })),
                "{name}: {up:?}"
            );
        }
        let state = FolderStateStore::new(tmp.path().join("state")).expect("state");
        for key in ["../secret", "a/../../secret", ".lock", "/etc/passwd"] {
            let put = state
                .put(key, b"{}".to_vec(), Precondition::IfNoneMatch)
                .await;
            assert!(
                matches!(put, Err(Error::InvalidName { .. })),
                "{key}: {put:?}"
            );
            assert!(matches!(
                state.get(key).await,
                Err(Error::InvalidName { .. })
            ));
        }
        assert_eq!(
            fs::read(tmp.path().join("secret")).ok(),
            Some(b"x".to_vec())
        );
    }

    #[tokio::test]
    async fn url_is_a_file_url_without_query() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = FolderStore::new(tmp.path()).expect("store");
        let url = store.url("sqlfiles/db 1/").expect("url");
        assert_eq!(url.scheme(), "file");
        assert!(url.path().ends_with("/sqlfiles/db%201"), "{url}");
        assert_eq!(url.query(), None);
        let segments: Vec<_> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        assert_eq!(
            segments.get(segments.len().wrapping_sub(2)),
            Some(&"sqlfiles")
        );
    }

    #[tokio::test]
    async fn corrupt_sidecar_is_a_clear_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = FolderStore::new(tmp.path()).expect("store");
        store
            .upload(
                "sqlfiles/db/x.trn",
                Bytes::from_static(b"abc"),
                BlobType::Block,
                &BTreeMap::new(),
            )
            .await
            .expect("upload");
        fs::create_dir_all(tmp.path().join(".lrs-meta/sqlfiles/db")).expect("mkdir");
        fs::write(
            tmp.path().join(".lrs-meta/sqlfiles/db/x.trn.json"),
            b"{not json",
        )
        .expect("write");
        let err = store
            .properties("sqlfiles/db/x.trn")
            .await
            .expect_err("corrupt sidecar");
        assert!(err.to_string().contains("metadata sidecar"), "{err}");
    }

    #[tokio::test]
    async fn missing_container_is_not_found() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = FolderStore::new(tmp.path()).expect("store");
        assert!(
            store
                .list("nothing/")
                .await
                .is_err_and(|e| e.is_not_found())
        );
    }
}
