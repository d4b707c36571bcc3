//! Where the simulator reads backups: the last two segments of a storageContainerUri name
//! `<container>/<folder>`, whatever the host, read through the project's [`BlobStore`] (a local
//! folder for rehearsals, Azure Blob or Azurite), the same code path the pipeline uses.

use time::OffsetDateTime;

use crate::chain::{FileRead, FolderFile};
use crate::storage::BlobStore;

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

/// Why storage could not be read; shown in `blockReason`. Never holds a SAS: the stores redact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl From<crate::storage::Error> for SourceError {
    fn from(e: crate::storage::Error) -> Self {
        SourceError(e.to_string())
    }
}

/// Lists every file under `<container>/<folder>/`, nested ones included.
///
/// # Errors
/// [`SourceError`] when storage cannot be listed (missing container, permissions, network).
pub async fn list_folder(
    store: &dyn BlobStore,
    container: &str,
    folder: &str,
) -> Result<Vec<ListedFile>, SourceError> {
    let prefix = format!("{container}/{folder}/");
    let items = store.list(&prefix).await?;
    Ok(items
        .into_iter()
        .filter_map(|item| {
            let name = item.name.strip_prefix(&prefix)?.to_owned();
            (!name.is_empty()).then_some(ListedFile {
                name,
                size: item.size,
                last_modified: Some(item.last_modified),
            })
        })
        .collect())
}

/// Reads a file's header the way the pipeline does: a ranged read of the head and one of the tail.
///
/// # Errors
/// [`SourceError`] when storage fails; a file that is not a readable backup is not an error but a
/// [`FileRead::Failed`].
pub async fn read_file(
    store: &dyn BlobStore,
    container: &str,
    folder: &str,
    file: &ListedFile,
) -> Result<FolderFile, SourceError> {
    let blob = format!("{container}/{folder}/{}", file.name);
    let outcome = crate::storage::read_backup_blob(store, &blob, file.size, None).await?;
    let read = FileRead::from_result(outcome.result);
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
    use crate::chain::FailureKind;
    use crate::storage::folder::FolderStore;

    #[tokio::test]
    async fn lists_a_database_folder_with_nested_files_relative_to_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("sqlfiles").join("db1");
        std::fs::create_dir_all(folder.join("FULL")).expect("mkdir");
        std::fs::write(folder.join("a.bak"), b"0123456789").expect("write");
        std::fs::write(folder.join("FULL").join("b.bak"), b"xy").expect("write");
        std::fs::create_dir_all(dir.path().join("sqlfiles").join("db10")).expect("mkdir");
        std::fs::write(
            dir.path().join("sqlfiles").join("db10").join("other.bak"),
            b"z",
        )
        .expect("write");
        let store = FolderStore::new(dir.path()).expect("store");
        let files = list_folder(&store, "sqlfiles", "db1")
            .await
            .expect("listed");
        let mut names: Vec<(&str, u64)> = files.iter().map(|f| (f.name.as_str(), f.size)).collect();
        names.sort();
        assert_eq!(
            names,
            [("FULL/b.bak", 2), ("a.bak", 10)],
            "db10 is another folder"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_backup_is_a_failed_read_not_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("sqlfiles").join("db1");
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(
            folder.join("ImageFile.JPG"),
            b"\xff\xd8\xff\xe0 not a backup",
        )
        .expect("write");
        let store = FolderStore::new(dir.path()).expect("store");
        let listed = list_folder(&store, "sqlfiles", "db1")
            .await
            .expect("listed");
        let file = read_file(&store, "sqlfiles", "db1", &listed[0])
            .await
            .expect("read");
        assert!(
            matches!(
                file.read,
                FileRead::Failed {
                    kind: FailureKind::NotABackup,
                    ..
                }
            ),
            "{file:?}"
        );
    }

    #[tokio::test]
    async fn storage_errors_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStore::new(dir.path()).expect("store");
        let missing = ListedFile {
            name: "gone.bak".into(),
            size: 10,
            last_modified: None,
        };
        assert!(
            read_file(&store, "sqlfiles", "db1", &missing)
                .await
                .is_err()
        );
    }
}
