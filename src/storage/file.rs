//! Reading a backup header from a local file with ranged reads (head and tail only), for `inspect`,
//! `check` and folder-backed rehearsals. The reads are the ones [`backup::Fetch`] asks for, so a
//! local file and a blob are read alike.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::backup;

/// The outcome of reading one file: the reader's result, bytes read and the file's size.
pub type FileOutcome = backup::FetchOutcome;

/// Reads a backup file's header from its head and tail, never the whole file.
///
/// # Errors
/// Only I/O errors (the file cannot be opened or read); what the bytes mean is in the outcome.
pub fn read_backup_file(path: &Path) -> std::io::Result<FileOutcome> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut fetch = backup::Fetch::new(size);
    let mut buf = Vec::new();
    while let Some(range) = fetch.poll_read() {
        file.seek(SeekFrom::Start(range.offset))?;
        buf.clear();
        (&mut file).take(range.len as u64).read_to_end(&mut buf)?;
        fetch.handle_read(range, &buf);
    }
    Ok(fetch.finish())
}
