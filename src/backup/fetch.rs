//! A sans-I/O driver for [`read`](super::read): it says which byte ranges to read next (the head,
//! then the tail once the file is known to be a backup, then a longer head if the header needs it),
//! is fed the bytes, and yields the result with the number of bytes it read. Every caller (local
//! files, blobs) reads the same way through it, so `bytes_read` means the same everywhere.

use super::{
    AfterHead, BackupFile, Error, HEAD_LEN, MAX_READ, ParsedHead, TAIL_LEN, Tail, parse_any,
    plan_tail, read_parsed,
};

/// The most head a file may need: far beyond any real header, it bounds a hostile one.
const MAX_HEAD: usize = MAX_READ;

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
    /// The head length wanted next.
    want_head: usize,
    /// The last bytes of the file read so far, from `tail_from` to the end.
    tail: Vec<u8>,
    tail_from: u64,
    tail_read: bool,
    /// Where the tail should start: [`TAIL_LEN`] from the end, or earlier for very long headers.
    want_tail_from: u64,
    bytes_read: u64,
    /// The head as parsed when its reads were planned, with the head length it was parsed at:
    /// unpacking a compressed head is most of the work, so it is done once per head length.
    parsed: Option<(usize, ParsedHead)>,
    result: Option<Result<BackupFile, Error>>,
}

impl Fetch {
    /// Starts reading a file of `file_size` bytes.
    pub fn new(file_size: u64) -> Fetch {
        let mut f = Fetch {
            file_size,
            head: Vec::new(),
            want_head: clamp(HEAD_LEN as u64, file_size),
            tail: Vec::new(),
            tail_from: file_size,
            tail_read: false,
            want_tail_from: file_size.saturating_sub(TAIL_LEN as u64),
            bytes_read: 0,
            parsed: None,
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
        // The part of the wanted tail the head does not already hold.
        let from = self.want_tail_from.max(self.head.len() as u64);
        let to = if self.tail_read {
            self.tail_from
        } else {
            self.file_size
        };
        (from < to).then(|| ReadRange {
            offset: from,
            len: clamp(to - from, self.file_size),
        })
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
                self.tail.clear();
                self.tail_read = false;
            }
            let parsed = parse_any(&self.head);
            let after = plan_tail(&parsed);
            self.parsed = Some((self.head.len(), parsed));
            match after {
                AfterHead::Tail(tail_len) => {
                    self.want_tail_from = self.file_size.saturating_sub(tail_len as u64);
                }
                // Grow the head first: its length tells how much tail the closing copy needs.
                AfterHead::GrowHead(needed)
                    if needed > self.head.len() && needed <= MAX_HEAD && !short =>
                {
                    let rounded = needed.div_ceil(4096) * 4096;
                    self.want_head = clamp(rounded as u64, self.file_size);
                }
                AfterHead::GrowHead(_) => {}
                // Not a backup, corrupt or unsupported: the tail cannot change that, so it is not
                // read (a length from a damaged header never sizes a read).
                AfterHead::Done(e) => {
                    self.result = Some(Err(e));
                    return;
                }
            }
        } else if !self.tail_read {
            if short {
                // The file ends before its size said: its tail is what was read.
                self.file_size = range.offset + bytes.len() as u64;
            }
            self.tail = bytes.to_vec();
            self.tail_from = range.offset;
            self.tail_read = true;
        } else if range.offset + bytes.len() as u64 == self.tail_from && !short {
            // A longer tail for a long header: the new bytes go in front.
            let mut tail = bytes.to_vec();
            tail.extend_from_slice(&self.tail);
            self.tail = tail;
            self.tail_from = range.offset;
        }
        self.fill_tail_from_head();
        if self.poll_read().is_none() && self.result.is_none() {
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

    /// Takes the front of the wanted tail from the head where they overlap, without reading.
    fn fill_tail_from_head(&mut self) {
        let head_end = self.head.len() as u64;
        let from = self.want_tail_from;
        if head_end < from || (self.tail_read && self.tail_from <= from) {
            return;
        }
        let upto = if self.tail_read {
            self.tail_from
        } else {
            self.file_size
        };
        let (Ok(a), Ok(b)) = (usize::try_from(from), usize::try_from(upto.min(head_end))) else {
            return;
        };
        let Some(front) = self.head.get(a..b) else {
            return;
        };
        let mut tail = front.to_vec();
        if self.tail_read {
            tail.extend_from_slice(&self.tail);
        }
        if upto <= head_end || self.tail_read {
            self.tail = tail;
            self.tail_from = from;
            self.tail_read = true;
        }
    }

    /// Runs the reader on what is there; asks for a longer head if it must.
    fn settle(&mut self) {
        let tail = Tail {
            bytes: &self.tail,
            file_size: self.file_size,
        };
        // The head only grows by appending, so its length says whether it changed since parsed.
        let parsed = match self.parsed.take() {
            Some((len, parsed)) if len == self.head.len() => parsed,
            _ => parse_any(&self.head),
        };
        match read_parsed(self.head.len(), parsed, Some(tail)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::facts::{BackupSet, DatabaseFile};
    use crate::backup::writer::{WriteOptions, write};

    /// Drives a fetch over in-memory bytes; `shrink_to` makes reads past it come back short.
    fn drive(bytes: &[u8], shrink_to: Option<usize>) -> (FetchOutcome, Vec<ReadRange>) {
        let mut fetch = Fetch::new(bytes.len() as u64);
        let mut reads = Vec::new();
        while let Some(r) = fetch.poll_read() {
            reads.push(r);
            assert!(reads.len() < 16, "fetch does not settle: {reads:?}");
            let end_of_file = shrink_to.unwrap_or(bytes.len()).min(bytes.len());
            let start = (r.offset as usize).min(end_of_file);
            let end = (start + r.len).min(end_of_file);
            fetch.handle_read(r, &bytes[start..end]);
        }
        (fetch.finish(), reads)
    }

    fn sample(files: usize, data_len: usize) -> (crate::backup::BackupFile, Vec<u8>) {
        let mut file = sample_file();
        let set: &mut BackupSet = &mut file.backup_sets[0];
        set.files = (0..files)
            .map(|i| DatabaseFile {
                logical_name: format!("data_file_number_{i}"),
                physical_name: format!(
                    "D:\\SQLData\\a_rather_long_folder_name\\data_file_number_{i}.ndf"
                ),
                file_type: 'D',
                filegroup: Some(format!("FG{}", i % 7)),
                file_id: i as u32 + 1,
                size: 8192 * (i as u64 + 1),
                max_size: 35_184_372_080_640,
            })
            .collect();
        let bytes = write(
            &file,
            &WriteOptions {
                data_len,
                complete: true,
            },
        );
        (file, bytes)
    }

    fn sample_file() -> crate::backup::BackupFile {
        let text = r#"{"media":{"compressed":false,"block_size":512,"family_count":1,"family_sequence":1,
            "media_set_guid":"18d178a8-5e6d-4d24-b162-c9a304f9ea1e","media_family_id":7,
            "has_media_password":false,"media_name":null,"media_description":null},
            "backup_sets":[{"position":1,"backup_type":"full","database_name":"sales","server_name":"SQL1",
            "machine_name":"SQL1","backup_name":null,"description":null,"user_name":"dba",
            "software_version":{"major":15,"minor":0,"build":2000},"compatibility_level":150,
            "database_version":904,"first_lsn":"37000000014700065","last_lsn":"37000000017700001",
            "checkpoint_lsn":"37000000014700065","database_backup_lsn":null,"differential_base_lsn":null,
            "differential_base_guid":null,"backup_set_guid":"f24e3dc4-fb3c-48aa-9360-fc9ee26d1464",
            "backup_start":[2024,100,10,0,0,0],"backup_finish":[2024,100,10,5,0,0],"backup_size":1048576,
            "compressed_backup_size":1048576,"has_checksums":true,"flags":528,
            "collation":{"name":"SQL_Latin1_General_CP1_CI_AS","tds":"0904d00034"},
            "recovery_model":"FULL","files":[]}],"complete":true,"set_count":1}"#;
        serde_json::from_str(text).expect("the sample parses")
    }

    #[test]
    fn a_header_longer_than_the_first_read_grows_the_head_then_reads_a_longer_tail() {
        let (file, bytes) = sample(2000, 1 << 20);
        let (outcome, reads) = drive(&bytes, None);
        assert_eq!(outcome.result, Ok(file));
        assert_eq!(reads.len(), 3, "{reads:?}");
        assert_eq!(
            reads[0],
            ReadRange {
                offset: 0,
                len: HEAD_LEN
            }
        );
        // The head grows first; its length says how much tail holds the long closing copy.
        assert_eq!(reads[1].offset, HEAD_LEN as u64);
        assert!(
            reads[2].len > TAIL_LEN && reads[2].offset + reads[2].len as u64 == bytes.len() as u64
        );
        assert_eq!(
            outcome.bytes_read,
            reads.iter().map(|r| r.len as u64).sum::<u64>()
        );
    }

    #[test]
    fn a_closing_copy_longer_than_the_tail_still_shows_the_end_blocks() {
        let (_, bytes) = sample(2000, 1 << 20);
        let head = &bytes[..1 << 20];
        let tail = Tail {
            bytes: &bytes[bytes.len() - TAIL_LEN..],
            file_size: bytes.len() as u64,
        };
        let file = crate::backup::read(head, Some(tail)).expect("reads");
        assert_eq!(file.complete, Some(true));
        // The closing copy starts before these 64 KiB: no finish date rather than a wrong one.
        assert_eq!(file.backup_sets[0].backup_finish, None);
    }

    #[test]
    fn a_small_file_is_read_once_and_a_large_one_by_head_and_tail_only() {
        let (_, small) = sample(2, 0);
        let (outcome, reads) = drive(&small, None);
        assert!(outcome.result.is_ok());
        assert_eq!(reads.len(), 1);
        assert_eq!(outcome.bytes_read, small.len() as u64);
        let (_, large) = sample(2, 4 << 20);
        let (outcome, reads) = drive(&large, None);
        assert!(outcome.result.is_ok());
        assert_eq!(reads.len(), 2);
        assert_eq!(outcome.bytes_read, (HEAD_LEN + TAIL_LEN) as u64);
        assert_eq!(reads[1].offset, large.len() as u64 - TAIL_LEN as u64);
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_truncated_not_misread() {
        let (_, bytes) = sample(2, 4 << 20);
        let (outcome, _) = drive(&bytes, Some(1 << 20));
        match outcome.result {
            Err(Error::Truncated { .. }) => {}
            Ok(f) => assert_eq!(f.complete, Some(false)),
            other => panic!("{other:?}"),
        }
    }
}
