//! Where the simulator reads backups from: the last two segments of a storageContainerUri name
//! `<container>/<folder>`, whatever the host. A small local trait until the storage adapter's
//! `BlobStore` lands; then this becomes a thin adapter over it.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::backup::{self, Tail};
use crate::chain::{FailureKind, FileRead, FolderFile};

/// One file of a database folder, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Path relative to the database folder (`x.bak`, or `sub/x.bak` when nested).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, if known.
    pub last_modified: Option<OffsetDateTime>,
}

/// Why storage could not be read; shown in `blockReason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Read access to backup folders.
#[async_trait]
pub trait BackupSource: Send + Sync + std::fmt::Debug {
    /// Lists every file under `<container>/<folder>`, nested ones included.
    async fn list(&self, container: &str, folder: &str) -> Result<Vec<ListedFile>, SourceError>;

    /// Reads up to `len` bytes at `offset` of `<container>/<folder>/<name>`.
    async fn read_range(
        &self,
        container: &str,
        folder: &str,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, SourceError>;
}

/// Backups on a local disk: `<root>/<container>/<folder>/<files>`.
#[derive(Debug, Clone)]
pub struct FolderSource {
    root: PathBuf,
}

impl FolderSource {
    /// Serves `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderSource { root: root.into() }
    }

    fn folder(&self, container: &str, folder: &str) -> Result<PathBuf, SourceError> {
        let mut path = self.root.clone();
        for part in [container, folder] {
            path.push(safe_relative(part)?);
        }
        Ok(path)
    }
}

/// Refuses names that would leave the storage root (`..`, absolute paths).
fn safe_relative(name: &str) -> Result<&Path, SourceError> {
    let path = Path::new(name);
    let ok = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(path)
    } else {
        Err(SourceError(format!(
            "the storage path segment {name:?} is not a plain name"
        )))
    }
}

#[async_trait]
impl BackupSource for FolderSource {
    async fn list(&self, container: &str, folder: &str) -> Result<Vec<ListedFile>, SourceError> {
        let dir = self.folder(container, folder)?;
        tokio::task::spawn_blocking(move || list_dir(&dir))
            .await
            .map_err(|e| SourceError(format!("listing task failed: {e}")))?
    }

    async fn read_range(
        &self,
        container: &str,
        folder: &str,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, SourceError> {
        let path = self.folder(container, folder)?.join(safe_relative(name)?);
        tokio::task::spawn_blocking(move || read_file_range(&path, offset, len))
            .await
            .map_err(|e| SourceError(format!("read task failed: {e}")))?
    }
}

fn list_dir(dir: &Path) -> Result<Vec<ListedFile>, SourceError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&path)
            .map_err(|e| SourceError(format!("cannot list the folder {}: {e}", path.display())))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| SourceError(format!("cannot list {}: {e}", path.display())))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let meta = entry
                .metadata()
                .map_err(|e| SourceError(format!("cannot stat {name}: {e}")))?;
            if meta.is_dir() {
                stack.push((entry.path(), format!("{name}/")));
            } else if meta.is_file() {
                out.push(ListedFile {
                    name,
                    size: meta.len(),
                    last_modified: meta.modified().ok().map(OffsetDateTime::from),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn read_file_range(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, SourceError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)
        .map_err(|e| SourceError(format!("cannot open {}: {e}", path.display())))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| SourceError(format!("cannot seek {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    file.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| SourceError(format!("cannot read {}: {e}", path.display())))?;
    Ok(buf)
}

/// The most head bytes the simulator reads for one header, however much the reader asks for.
const MAX_HEAD: usize = 16 * 1024 * 1024;

/// Reads a file's header the way the pipeline does: a ranged read of the head and one of the tail.
///
/// # Errors
/// [`SourceError`] when storage fails; a file that is not a readable backup is not an error but a
/// [`FileRead::Failed`].
pub async fn read_file(
    source: &dyn BackupSource,
    container: &str,
    folder: &str,
    file: &ListedFile,
) -> Result<FolderFile, SourceError> {
    let tail_len = (backup::TAIL_LEN as u64).min(file.size);
    let tail = source
        .read_range(
            container,
            folder,
            &file.name,
            file.size - tail_len,
            tail_len,
        )
        .await?;
    let mut head_len = backup::HEAD_LEN;
    let read = loop {
        let head = source
            .read_range(container, folder, &file.name, 0, head_len as u64)
            .await?;
        let got = backup::read(
            &head,
            Some(Tail {
                bytes: &tail,
                file_size: file.size,
            }),
        );
        match got {
            Ok(facts) => break FileRead::Read { facts },
            Err(backup::Error::NeedMoreHead { needed })
                if needed > head_len && needed <= MAX_HEAD && (head_len as u64) < file.size =>
            {
                head_len = needed;
            }
            Err(e) => {
                let kind = match e {
                    backup::Error::NotABackup { .. } => FailureKind::NotABackup,
                    backup::Error::Truncated { .. } => FailureKind::Incomplete,
                    backup::Error::Corrupt { .. } => FailureKind::Corrupt,
                    backup::Error::NeedMoreHead { .. } | backup::Error::Unsupported { .. } => {
                        FailureKind::Unsupported
                    }
                };
                break FileRead::Failed {
                    kind,
                    message: e.to_string(),
                };
            }
        }
    };
    Ok(FolderFile {
        name: file.name.clone(),
        size: file.size,
        last_modified: file.last_modified,
        read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_nested_files_and_reads_ranges() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("c").join("db1");
        std::fs::create_dir_all(folder.join("FULL")).expect("mkdir");
        std::fs::write(folder.join("a.bak"), b"0123456789").expect("write");
        std::fs::write(folder.join("FULL").join("b.bak"), b"xy").expect("write");
        let source = FolderSource::new(dir.path());
        let files = source.list("c", "db1").await.expect("listed");
        let names: Vec<(&str, u64)> = files.iter().map(|f| (f.name.as_str(), f.size)).collect();
        assert_eq!(names, [("FULL/b.bak", 2), ("a.bak", 10)]);
        assert_eq!(
            source
                .read_range("c", "db1", "a.bak", 3, 4)
                .await
                .expect("read"),
            b"3456"
        );
        assert_eq!(
            source
                .read_range("c", "db1", "a.bak", 8, 100)
                .await
                .expect("read"),
            b"89"
        );
    }

    #[tokio::test]
    async fn refuses_paths_that_leave_the_root_and_reports_missing_folders() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = FolderSource::new(dir.path());
        for (c, f) in [("..", "x"), ("c", "../x"), ("/etc", "x"), ("c", "")] {
            let err = source.list(c, f).await.expect_err("refused");
            assert!(err.0.contains("not a plain name"), "{c}/{f}: {err}");
        }
        let err = source.list("c", "missing").await.expect_err("missing");
        assert!(err.0.contains("cannot list the folder"), "{err}");
        let err = source
            .read_range("c", "d", "../../etc/passwd", 0, 1)
            .await
            .expect_err("refused");
        assert!(err.0.contains("not a plain name"));
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_backup_is_a_failed_read_not_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("c").join("db1");
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(
            folder.join("ImageFile.JPG"),
            b"\xff\xd8\xff\xe0 not a backup",
        )
        .expect("write");
        let source = FolderSource::new(dir.path());
        let listed = source.list("c", "db1").await.expect("listed");
        let file = read_file(&source, "c", "db1", &listed[0])
            .await
            .expect("read");
        assert!(matches!(file.read, FileRead::Failed { .. }), "{file:?}");
    }
}
