//! A sans-I/O driver for [`read`](super::read): it says which byte ranges to read next (the head,
//! then the tail once the file is known to be a backup, then a longer head if the header needs it),
//! is fed the bytes, and yields the result with the number of bytes it read. Every caller (local
//! files, blobs) reads the same way through it, so `bytes_read` means the same everywhere.

use super::{BackupFile, Error, HEAD_LEN, TAIL_LEN, Tail, read};

/// The most head a file may need: far beyond any real header, it bounds a hostile one.
const MAX_HEAD: usize = 16 * 1024 * 1024;

/// A byte range to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRange {
    /// Offset of the first byte.
    pub offset: u64,
    /// How many bytes.
    pub len: usize,
}

/// The result of a [`Fetch`].
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOutcome {
    /// What the reader made of the file.
    pub result: Result<BackupFile, Error>,
    /// How many bytes were read from the file in all.
    pub bytes_read: u64,
    /// The file's size.
    pub file_size: u64,
}

/// Drives ranged reads of one file: call [`Fetch::poll_read`] until it returns `None`, feeding each
/// range's bytes to [`Fetch::handle_read`], then take [`Fetch::finish`].
///
/// ```
/// use lrs_autopilot::backup::Fetch;
/// let file = b"PGDMP not a backup".to_vec();
/// let mut fetch = Fetch::new(file.len() as u64);
/// while let Some(r) = fetch.poll_read() {
///     let start = r.offset as usize;
///     let end = (start + r.len).min(file.len());
///     fetch.handle_read(r, &file[start..end]);
/// }
/// let outcome = fetch.finish();
/// assert!(outcome.result.is_err());
/// assert_eq!(outcome.bytes_read, file.len() as u64);
/// ```
#[derive(Debug)]
pub struct Fetch {
    file_size: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
    /// The head length wanted next (0 when the head is settled).
    want_head: usize,
    tail_read: bool,
    bytes_read: u64,
    result: Option<Result<BackupFile, Error>>,
}

impl Fetch {
    /// Starts reading a file of `file_size` bytes.
    pub fn new(file_size: u64) -> Fetch {
        let mut f = Fetch {
            file_size,
            head: Vec::new(),
            tail: Vec::new(),
            want_head: clamp(HEAD_LEN as u64, file_size),
            tail_read: false,
            bytes_read: 0,
            result: None,
        };
        if file_size == 0 {
            f.result = Some(Err(Error::NotABackup {
                reason: "the file is empty".into(),
            }));
        }
        f
    }

    /// The next range to read, or `None` when the result is ready.
    pub fn poll_read(&self) -> Option<ReadRange> {
        if self.result.is_some() {
            return None;
        }
        if self.head.len() < self.want_head {
            return Some(ReadRange {
                offset: self.head.len() as u64,
                len: self.want_head - self.head.len(),
            });
        }
        if !self.tail_read {
            let start = self.tail_start().max(self.head.len() as u64);
            return Some(ReadRange {
                offset: start,
                len: clamp(self.file_size - start, self.file_size),
            });
        }
        None
    }

    /// Feeds the bytes read for `range` (fewer than asked means the file ended early).
    pub fn handle_read(&mut self, range: ReadRange, bytes: &[u8]) {
        let bytes = bytes.get(..range.len).unwrap_or(bytes);
        self.bytes_read += bytes.len() as u64;
        let short = bytes.len() < range.len;
        if range.offset == self.head.len() as u64 && self.head.len() < self.want_head {
            self.head.extend_from_slice(bytes);
            if short {
                // The file shrank or is shorter than its size said: read what there is.
                self.file_size = self.head.len() as u64;
                self.want_head = self.head.len();
            }
            // Reject non-backups before reading their tail.
            if let Err(e @ Error::NotABackup { .. }) = super::container(&self.head) {
                self.result = Some(Err(e));
                return;
            }
            if self.tail_read {
                self.settle();
            } else if self.tail_start() < self.head.len() as u64
                && self.head.len() as u64 >= self.file_size
            {
                // The head is the whole file: it is its own tail.
                self.tail = self
                    .head
                    .get(self.tail_start() as usize..)
                    .unwrap_or(&[])
                    .to_vec();
                self.tail_read = true;
                self.settle();
            }
            return;
        }
        if !self.tail_read {
            if short {
                // The file ends before its size said: its tail is what was read.
                self.file_size = range.offset + bytes.len() as u64;
            }
            let start = self.tail_start();
            let mut tail = Vec::with_capacity(clamp(self.file_size - start, self.file_size));
            if start < self.head.len() as u64 {
                tail.extend_from_slice(self.head.get(start as usize..).unwrap_or(&[]));
            }
            tail.extend_from_slice(bytes);
            self.tail = tail;
            self.tail_read = true;
            self.settle();
        }
    }

    /// The outcome; call once `poll_read` returns `None`.
    pub fn finish(self) -> FetchOutcome {
        FetchOutcome {
            result: self.result.unwrap_or(Err(Error::Truncated {
                offset: self.head.len() as u64,
                wanted: 1,
            })),
            bytes_read: self.bytes_read,
            file_size: self.file_size,
        }
    }

    fn tail_start(&self) -> u64 {
        self.file_size.saturating_sub(TAIL_LEN as u64)
    }

    /// Runs the reader on what is there; asks for a longer head if it must.
    fn settle(&mut self) {
        let tail = Tail {
            bytes: &self.tail,
            file_size: self.file_size,
        };
        match read(&self.head, Some(tail)) {
            Err(Error::NeedMoreHead { needed })
                if needed > self.head.len()
                    && needed <= MAX_HEAD
                    && (needed as u64) <= self.file_size =>
            {
                // Round up to 4 KiB so a header that grows by a few bytes costs one read.
                let rounded = needed.div_ceil(4096) * 4096;
                self.want_head = clamp(rounded as u64, self.file_size);
            }
            Err(Error::NeedMoreHead { needed }) => {
                self.result = Some(Err(if needed > MAX_HEAD {
                    Error::Unsupported {
                        what: format!(
                            "a backup header longer than {MAX_HEAD} bytes ({needed} needed)"
                        ),
                    }
                } else {
                    Error::Truncated {
                        offset: self.file_size,
                        wanted: (needed as u64).saturating_sub(self.file_size).max(1),
                    }
                }));
            }
            other => self.result = Some(other),
        }
    }
}

/// `n` as a length, no more than the file has.
fn clamp(n: u64, file_size: u64) -> usize {
    usize::try_from(n.min(file_size)).unwrap_or(usize::MAX)
}
