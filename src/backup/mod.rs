//! The backup reader: SQL Server backup files (Microsoft Tape Format, plain or `MSSQLBAK`-compressed)
//! to the facts `RESTORE HEADERONLY` / `FILELISTONLY` would give, from a ranged read of the head and,
//! optionally, one of the tail.
//!
//! Pure: bytes in, facts out. No I/O, no clock, no async; nothing here may import an adapter or a
//! shell module. Every read is bounds-checked, so no input can panic.
//!
//! ```
//! use lrs_autopilot::backup::{self, Error};
//! // A PostgreSQL dump named `.bak` is recognised as what it is.
//! let err = backup::read(b"PGDMP\x01\x0f\x00", None).unwrap_err();
//! assert!(matches!(err, Error::NotABackup { .. }));
//! ```

mod block;
mod collation;
mod compressed;
mod cursor;
mod error;
mod facts;
mod fetch;
mod header;
pub mod writer;
mod xpress;

pub use error::Error;
pub use facts::{
    BackupFile, BackupSet, BackupType, Collation, DatabaseFile, Lsn, Media, RecoveryModel,
    SqlVersion,
};
pub use fetch::{Fetch, FetchOutcome, ReadRange};

use block::{BlockError, Dblk, ESET, MQCI, MSCI, MSDA, MSLS, MSTL, SFMB, SPAD, SSET, TAPE, VOLB};
use header::{Config, ConfigError, Sset, Tape};

/// How many bytes of the head a caller should read first. Enough for every fixture's header and file
/// list; when it is not, [`read`] answers [`Error::NeedMoreHead`].
pub const HEAD_LEN: usize = 64 * 1024;

/// How many bytes of the tail a caller should read to find the end blocks and the final header copy.
pub const TAIL_LEN: usize = 64 * 1024;

/// The most head a file may need, and the most any one read may take: far beyond any real header
/// (32,767 database files fit in a few MiB), it bounds what a hostile header can make a caller
/// read. A whole [`Fetch`] reads at most twice this (a head and a tail).
pub const MAX_READ: usize = 16 * 1024 * 1024;

/// What the tail read needs beyond the closing header copy: the end blocks (a few KiB, 16 KiB
/// with 4 KiB blocks), with room to spare.
const END_BLOCKS_LEN: usize = 32 * 1024;

/// The longest header copy (MSCI block) accepted: its closing copy and the end blocks must fit in
/// one read of [`MAX_READ`]. The length comes from the header's own stream lengths, so it is
/// checked before it sizes anything.
const MAX_CONFIG_BLOCK: usize = MAX_READ - END_BLOCKS_LEN;

/// The longest padding (SPAD) a header block may have: it pads to the next block boundary, and
/// SQL Server's largest block is 64 KiB. With it the tail read is never longer than the head
/// already read (which holds the configuration stream) plus 96 KiB.
const MAX_PADDING: usize = 64 * 1024;

/// The last bytes of a file, with the file's total size.
#[derive(Debug, Clone, Copy)]
pub struct Tail<'a> {
    /// The last `bytes.len()` bytes of the file.
    pub bytes: &'a [u8],
    /// The file's total size in bytes.
    pub file_size: u64,
}

/// Reads a backup file's header from its first bytes and, optionally, its last ones.
///
/// Without a tail, `complete` is `None`, the finish date and final sizes are unknown, and the LSNs
/// are those of the opening header copy, which SQL Server may still move (LastLSN moved on 4 of
/// the 118 real fixtures, FirstLSN on one). With a tail, `complete` says whether the end blocks
/// are there, and the closing copy (MSLS) supplies the final LSNs, finish date and sizes after its
/// identity fields are checked against the opening copy. Sets whose closing blocks lie in the head
/// are closed from it. A file holding several sets (`BACKUP ... WITH NOINIT`) lists those whose
/// opening copy is in the head and, when the last set starts beyond the head, that set from its
/// closing copy in the tail ([`BackupSet::from_tail_only`](facts::BackupSet::from_tail_only));
/// [`BackupFile::set_count`] says how many sets the tail's last end-of-set block names.
///
/// # Errors
/// See [`Error`]: not a backup, head too short ([`Error::NeedMoreHead`] says how much to read),
/// truncated, corrupt, or unsupported.
pub fn read(head: &[u8], tail: Option<Tail<'_>>) -> Result<BackupFile, Error> {
    read_parsed(head.len(), parse_any(head), tail)
}

/// [`read`] from a head already parsed by [`parse_any`], so a driver that planned its reads from
/// the head does not unpack a compressed head again.
fn read_parsed(
    head_len: usize,
    parsed: ParsedHead,
    tail: Option<Tail<'_>>,
) -> Result<BackupFile, Error> {
    if tail.is_some_and(|t| t.file_size == 0) {
        return Err(Error::NotABackup {
            reason: "the file is empty".into(),
        });
    }
    match read_inner(parsed, tail) {
        Err(Error::NeedMoreHead { needed }) => match tail {
            Some(t) if needed as u64 > t.file_size || head_len as u64 >= t.file_size => {
                Err(Error::Truncated {
                    offset: t.file_size,
                    wanted: (needed as u64).saturating_sub(t.file_size).max(1),
                })
            }
            _ => Err(Error::NeedMoreHead { needed }),
        },
        other => other,
    }
}

/// What to do after reading a head.
#[derive(Debug)]
pub(crate) enum AfterHead {
    /// Read this many bytes of the tail ([`TAIL_LEN`], or more when the set's header copy is so
    /// long, with thousands of database files, that the closing copy would not fit; never more
    /// than [`MAX_READ`]).
    Tail(usize),
    /// Grow the head to this length first.
    GrowHead(usize),
    /// The head decides: the file is not a backup, corrupt or unsupported whatever its tail holds.
    Done(Error),
}

/// A head parsed by [`parse_any`]: its container and header, or why it has none.
type ParsedHead = Result<(Container, Head), Error>;

/// What to read after a head parsed by [`parse_any`].
fn plan_tail(parsed: &ParsedHead) -> AfterHead {
    match parsed {
        // The closing copy, then the end blocks; `parse_head` bounds the copy's length.
        Ok((_, h)) => AfterHead::Tail(
            TAIL_LEN
                .max(h.config_block_len.saturating_add(END_BLOCKS_LEN))
                .min(MAX_READ),
        ),
        Err(Error::NeedMoreHead { needed }) => AfterHead::GrowHead(*needed),
        Err(e) => AfterHead::Done(e.clone()),
    }
}

/// Tells the container and parses the header in the head (unpacking a compressed one).
fn parse_any(head: &[u8]) -> ParsedHead {
    let kind = container(head)?;
    let parsed = match kind {
        Container::Plain => parse_head(head).map_err(HeadError::into_error)?,
        Container::Compressed => read_compressed_head(head)?,
    };
    Ok((kind, parsed))
}

/// Which container the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Plain,
    Compressed,
}

/// Tells a plain MTF file from a compressed one from its first bytes, or rejects it.
fn container(head: &[u8]) -> Result<Container, Error> {
    if head.starts_with(compressed::MAGIC) {
        return Ok(Container::Compressed);
    }
    if head.starts_with(&TAPE) {
        return Ok(Container::Plain);
    }
    if head.len() < compressed::MAGIC.len()
        && (compressed::MAGIC.starts_with(head) || TAPE.starts_with(head))
    {
        return Err(Error::NeedMoreHead {
            needed: block::DBLK_HEADER_LEN,
        });
    }
    let reason = if head.starts_with(b"PGDMP") {
        "it is a PostgreSQL dump (pg_dump custom format)".to_string()
    } else {
        let shown: String = head
            .iter()
            .take(8)
            .map(|&b| {
                if b.is_ascii_graphic() {
                    char::from(b)
                } else {
                    '.'
                }
            })
            .collect();
        format!("it starts with {shown:?}, not with a TAPE media header or MSSQLBAK")
    };
    Err(Error::NotABackup { reason })
}

fn read_inner(parsed: ParsedHead, tail: Option<Tail<'_>>) -> Result<BackupFile, Error> {
    let (kind, parsed) = parsed?;
    let Head {
        tape,
        sets,
        closed,
        config_block_len,
    } = parsed;
    // The closing copy is as long as the opening one; with several sets in the head the last
    // set's copy may differ in length, so the check that needs it is left out. The check holds
    // only for the set the copy belongs to: a set appended beyond the head may be longer.
    let closing_len = match sets.as_slice() {
        [only] => Some(ClosingLen {
            len: config_block_len,
            position: only.sset.position,
        }),
        _ => None,
    };
    let mut backup_sets: Vec<facts::BackupSet> = sets.into_iter().map(SetHead::into_set).collect();
    for (index, at, closing) in &closed {
        if let Some(set) = backup_sets.get_mut(*index) {
            close_set(set, *at, closing)?;
        }
    }
    let mut set_count = None;
    let complete = match tail {
        None => None,
        Some(t) => {
            let found = match kind {
                Container::Plain => {
                    let start = t.file_size.saturating_sub(t.bytes.len() as u64);
                    Some(parse_tail(t.bytes, start, closing_len)?)
                }
                Container::Compressed => read_compressed_tail(t.bytes, closing_len)?,
            };
            if let Some(found) = found {
                set_count = found.set_count(&backup_sets);
                let complete = found.complete;
                found.merge_into(&mut backup_sets)?;
                Some(complete)
            } else {
                Some(false)
            }
        }
    };
    Ok(BackupFile {
        media: facts::Media {
            compressed: kind == Container::Compressed,
            block_size: tape.block_size,
            family_count: tape.family_count,
            family_sequence: tape.family_sequence,
            media_set_guid: tape.media_set_guid,
            media_family_id: tape.media_family_id,
            has_media_password: tape.has_media_password,
            media_name: tape.media_name,
            media_description: tape.media_description,
        },
        backup_sets,
        complete,
        set_count,
    })
}

/// The most a compressed header may unpack to: far beyond any real one, it bounds the memory a
/// hostile file can make the reader use.
const MAX_LOGICAL_HEAD: usize = 16 * 1024 * 1024;

/// Unpacks as many chunks as the header needs and parses them.
fn read_compressed_head(raw: &[u8]) -> Result<Head, Error> {
    let mut unpacker = compressed::Unpacker::new(raw);
    // The first two chunks hold the TAPE block and SSET..MSCI: 8 KiB covers both.
    let mut want = 8 * 1024;
    loop {
        let more = unpacker.ensure(want).map_err(|e| unpack_error(e, true))?;
        match parse_head(&unpacker.logical) {
            Err(HeadError::Eof(end)) if end > MAX_LOGICAL_HEAD => {
                return Err(Error::Unsupported {
                    what: format!(
                        "a compressed backup header longer than {MAX_LOGICAL_HEAD} bytes ({end} claimed)"
                    ),
                });
            }
            Err(HeadError::Eof(end)) if more && end > unpacker.logical.len() => want = end,
            Err(HeadError::Eof(_)) if !more => {
                return Err(Error::Corrupt {
                    block: "MSSQLBAK".into(),
                    offset: 0,
                    detail: "the compressed chunks end before the backup header does".into(),
                });
            }
            Err(HeadError::Eof(_)) => {
                return Err(Error::Corrupt {
                    block: "MSSQLBAK".into(),
                    offset: 0,
                    detail: "the backup header could not be unpacked".into(),
                });
            }
            Err(HeadError::Fail(e)) => return Err(e),
            Ok(h) => return Ok(h),
        }
    }
}

fn unpack_error(e: compressed::UnpackError, in_head: bool) -> Error {
    match e {
        compressed::UnpackError::Eof { end } if in_head => Error::NeedMoreHead { needed: end },
        compressed::UnpackError::Eof { end } => Error::Truncated {
            offset: end as u64,
            wanted: 1,
        },
        compressed::UnpackError::Corrupt { at, detail } => Error::Corrupt {
            block: "MSSQLBAK".into(),
            offset: at as u64,
            detail,
        },
    }
}

/// Finds the last chunks in a compressed tail and reads the end blocks from them.
fn read_compressed_tail(
    raw: &[u8],
    closing_len: Option<ClosingLen>,
) -> Result<Option<TailFacts>, Error> {
    let Some(mut records) = compressed::scan_tail(raw) else {
        return Ok(None);
    };
    // The closing copy is as long as the opening one: at most the last chunks that hold it and
    // the end blocks (their sizes are in the chunk headers) are decoded. Without its length, up
    // to eight chunks (512 KiB unpacked) bound the work a hostile tail can cause. Either way the
    // last two chunks are tried first and then twice as many, each decoded once: the closing copy
    // and the end blocks are usually in the last few KiB, and the chunks before them may be
    // large. A narrower tail finds the same last closing copy, so the result is the same, except
    // that damage before the copy in chunks no longer decoded goes unseen.
    let most = match closing_len.map(|c| c.len) {
        Some(len) => records
            .chunks_covering(len.saturating_add(END_BLOCKS_LEN))
            .clamp(2, 8),
        None => 8,
    };
    let total = records.chunk_count();
    let mut chunks = 2;
    loop {
        let logical = records
            .unpack_last(chunks)
            .map_err(|e| unpack_error(e, false))?;
        let found = parse_tail(logical, 0, closing_len)?;
        if found.closing.is_some() || chunks >= most || chunks >= total {
            return Ok(Some(found));
        }
        chunks = (chunks * 2).min(most);
    }
}

/// What the head says: the media header and the sets whose opening header is whole in it.
#[derive(Debug)]
struct Head {
    tape: Tape,
    sets: Vec<SetHead>,
    /// Closing copies (MSLS, confirmed by the ESET that follows) of sets that end in the head:
    /// the set's index in `sets`, the block offset, the copy.
    closed: Vec<(usize, usize, Config)>,
    /// The length of the last set's MSCI block: its closing copy (MSLS) is as long.
    config_block_len: usize,
}

#[derive(Debug)]
struct SetHead {
    sset: Sset,
    machine_name: Option<String>,
    config: Config,
}

impl SetHead {
    fn into_set(self) -> facts::BackupSet {
        let SetHead {
            sset,
            machine_name,
            config,
        } = self;
        let mut set = set_facts(sset.position, config);
        set.machine_name = machine_name.unwrap_or_default();
        set.backup_name = sset.backup_name;
        set.description = sset.description;
        set.user_name = sset.user_name;
        set.backup_set_guid = sset.backup_set_guid;
        set
    }
}

/// A set's facts from one header copy: those of the SSET and VOLB blocks (GUID, names) are left
/// empty for the caller to fill, and those only the closing copy has (finish date, final sizes)
/// are left out.
fn set_facts(position: u16, c: Config) -> facts::BackupSet {
    let is_diff = matches!(
        c.backup_type,
        BackupType::Differential | BackupType::DifferentialFile | BackupType::DifferentialPartial
    );
    facts::BackupSet {
        position,
        backup_type: c.backup_type,
        database_name: c.database_name,
        server_name: c.server_name,
        machine_name: String::new(),
        backup_name: None,
        description: None,
        user_name: None,
        software_version: c.software_version,
        compatibility_level: c.compatibility_level,
        database_version: c.database_version,
        first_lsn: c.first_lsn,
        last_lsn: c.last_lsn,
        checkpoint_lsn: c.checkpoint_lsn,
        database_backup_lsn: (!c.database_backup_lsn.is_zero()).then_some(c.database_backup_lsn),
        differential_base_lsn: (is_diff && !c.differential_base_lsn.is_zero())
            .then_some(c.differential_base_lsn),
        differential_base_guid: (is_diff && !c.differential_base_guid.is_nil())
            .then_some(c.differential_base_guid),
        backup_set_guid: uuid::Uuid::nil(),
        backup_start: c.backup_start,
        // Known only from the closing copy in the tail.
        backup_finish: None,
        backup_size: None,
        compressed_backup_size: None,
        has_checksums: c.flags & facts::BackupSet::FLAG_HAS_CHECKSUMS != 0,
        flags: c.flags,
        collation: c.collation,
        recovery_model: c.recovery_model,
        files: c.files,
        from_tail_only: false,
    }
}

/// Why the head could not be parsed: too short (needs bytes up to `Eof`), or a real error.
#[derive(Debug)]
enum HeadError {
    Eof(usize),
    Fail(Error),
}

impl HeadError {
    fn into_error(self) -> Error {
        match self {
            HeadError::Eof(end) => Error::NeedMoreHead { needed: end },
            HeadError::Fail(e) => e,
        }
    }
}

fn corrupt(tag: [u8; 4], at: usize, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        block: block::tag_name(tag),
        offset: at as u64,
        detail: detail.into(),
    }
}

fn block_error(e: BlockError, tag: [u8; 4], at: usize) -> HeadError {
    match e {
        BlockError::Eof(e) => HeadError::Eof(e.end),
        BlockError::NotABlock => {
            HeadError::Fail(corrupt(tag, at, "no MTF block where one should start"))
        }
        BlockError::Corrupt { tag, detail } => HeadError::Fail(corrupt(tag, at, detail)),
    }
}

fn config_error(e: ConfigError, tag: [u8; 4], at: usize) -> HeadError {
    match e {
        ConfigError::Eof(e) => HeadError::Fail(corrupt(
            tag,
            at,
            format!(
                "a configuration record runs past its stream (to byte {})",
                e.end
            ),
        )),
        ConfigError::Bad(detail) => HeadError::Fail(corrupt(tag, at, detail)),
        ConfigError::Unsupported(what) => HeadError::Fail(Error::Unsupported { what }),
    }
}

/// Reads the configuration stream of an MSCI or MSLS block.
fn block_config(d: &Dblk<'_>) -> Result<Config, HeadError> {
    let stream = d
        .stream(MQCI)
        .map_err(|e| block_error(e, d.tag, d.at))?
        .ok_or_else(|| HeadError::Fail(corrupt(d.tag, d.at, "no MQCI configuration stream")))?;
    let data = stream.data().map_err(|e| HeadError::Eof(e.end))?;
    header::parse_config(data).map_err(|e| config_error(e, d.tag, d.at))
}

/// Walks the blocks of the (logical) head from the TAPE block on.
fn parse_head(buf: &[u8]) -> Result<Head, HeadError> {
    let tape_block = Dblk::parse(buf, 0).map_err(|e| block_error(e, TAPE, 0))?;
    if tape_block.tag != TAPE {
        return Err(HeadError::Fail(Error::NotABackup {
            reason: format!(
                "it starts with a {} block, not a TAPE media header",
                block::tag_name(tape_block.tag)
            ),
        }));
    }
    let tape = header::parse_tape(&tape_block).map_err(|e| block_error(e, TAPE, 0))?;
    let mut at = tape_block.end().map_err(|e| block_error(e, TAPE, 0))?;
    let mut prev = TAPE;
    let mut sets: Vec<SetHead> = Vec::new();
    // The set whose SSET (and maybe VOLB) has been read but not yet its MSCI.
    let mut open: Option<(Sset, Option<String>)> = None;
    let mut closed = Vec::new();
    let mut config_block_len = 0;
    // The last set's closing copy, until its ESET confirms it.
    let mut closing: Option<(usize, Config)> = None;
    loop {
        let d = match Dblk::parse(buf, at) {
            Ok(d) => d,
            // Past the first set, the head simply ends: later sets need a longer read.
            Err(BlockError::Eof(_)) if !sets.is_empty() => break,
            Err(e) => return Err(block_error(e, prev, at)),
        };
        match d.tag {
            SSET => {
                let sset = header::parse_sset(&d).map_err(|e| block_error(e, SSET, at))?;
                open = Some((sset, None));
            }
            VOLB => {
                let machine = header::parse_volb(&d).map_err(|e| block_error(e, VOLB, at))?;
                match open.as_mut() {
                    Some(o) => o.1 = machine,
                    None => {
                        return Err(HeadError::Fail(corrupt(
                            VOLB,
                            at,
                            "volume block outside a set",
                        )));
                    }
                }
            }
            MSCI => {
                let config = match block_config(&d) {
                    Err(HeadError::Eof(_)) if !sets.is_empty() => break,
                    other => other?,
                };
                let Some((sset, machine_name)) = open.take() else {
                    return Err(HeadError::Fail(corrupt(
                        MSCI,
                        at,
                        "configuration block outside a set",
                    )));
                };
                config_block_len = d.end().map_or(0, |end| end - d.at);
                let padding = d
                    .streams()
                    .filter_map(Result::ok)
                    .find(|s| s.id == SPAD)
                    .map_or(0, |s| s.len);
                if padding > MAX_PADDING {
                    return Err(HeadError::Fail(corrupt(
                        MSCI,
                        at,
                        format!(
                            "the configuration block's padding claims {padding} bytes, more than \
                             the {MAX_PADDING} bytes SQL Server pads a block with: the file is \
                             damaged or was not written by SQL Server"
                        ),
                    )));
                }
                if config_block_len > MAX_CONFIG_BLOCK {
                    // Its padding (SPAD) or configuration stream claims more than any header
                    // has: reading the closing copy would mean reading that much of the tail.
                    return Err(HeadError::Fail(corrupt(
                        MSCI,
                        at,
                        format!(
                            "the configuration block claims {config_block_len} bytes (its stream \
                             lengths), more than the {MAX_CONFIG_BLOCK} bytes a backup header can \
                             take: the file is damaged or was not written by SQL Server"
                        ),
                    )));
                }
                sets.push(SetHead {
                    sset,
                    machine_name,
                    config,
                });
            }
            MSLS if open.is_none() && !sets.is_empty() => {
                closing = match block_config(&d) {
                    Ok(c) => Some((at, c)),
                    Err(HeadError::Eof(_)) => break,
                    Err(e) => return Err(e),
                };
            }
            ESET if open.is_none() => {
                let position = d.bytes().u16(78).ok();
                if let (Some((msls_at, c)), Some(last)) = (closing.take(), sets.last()) {
                    if position == Some(last.sset.position) {
                        closed.push((sets.len() - 1, msls_at, c));
                    }
                }
            }
            MSDA | MSTL | MSLS | ESET if open.is_some() => {
                return Err(HeadError::Fail(corrupt(
                    d.tag,
                    at,
                    "the set has no MSCI configuration block before its data",
                )));
            }
            _ => {}
        }
        if d.tag != SFMB && sets.is_empty() && open.is_none() && d.tag != TAPE {
            return Err(HeadError::Fail(corrupt(
                d.tag,
                at,
                "a data block comes before any set header",
            )));
        }
        prev = d.tag;
        at = match d.end() {
            Ok(end) => end,
            Err(BlockError::Eof(_)) if !sets.is_empty() => break,
            Err(e) => return Err(block_error(e, d.tag, at)),
        };
    }
    if sets.is_empty() {
        // Only reachable when the loop breaks, which needs a set: keep the invariant explicit.
        return Err(HeadError::Eof(buf.len() + 1));
    }
    Ok(Head {
        tape,
        sets,
        closed,
        config_block_len,
    })
}

/// The length of a set's opening header copy (MSCI block), which its closing copy shares, and
/// the set's number.
#[derive(Debug, Clone, Copy)]
struct ClosingLen {
    len: usize,
    position: u16,
}

/// What the tail says about the last set.
#[derive(Debug)]
struct TailFacts {
    /// The closing header copy (MSLS) and where it is.
    closing: Option<(usize, Config)>,
    /// The position (data set number) the last ESET names.
    eset_position: Option<u16>,
    /// The end blocks are there: ESET after the closing copy, and a filemark at the very end.
    complete: bool,
    /// The number of a set whose SSET the walk met after the last closed set: a set appended
    /// (`WITH NOINIT`) and still being written.
    next_set: Option<u16>,
}

impl TailFacts {
    /// How many sets the file holds, as far as the tail tells: the number of the last set it
    /// closes (or the one it sees begin), or `None` when it names none.
    ///
    /// SQL Server numbers the sets of a file 1..n, so the last number is the count. The number
    /// is the header's word and may lie; it sizes nothing, and a lie can only make a file look
    /// like it holds more sets than it does, which blocks it (the safe side).
    fn set_count(&self, head_sets: &[facts::BackupSet]) -> Option<u16> {
        let named = self
            .next_set
            .or(self.eset_position.filter(|_| self.complete))?;
        let listed = u16::try_from(head_sets.len()).unwrap_or(u16::MAX);
        let highest = head_sets.iter().map(|s| s.position).max().unwrap_or(0);
        Some(named.max(listed).max(highest))
    }

    /// Puts the finish date and final sizes into the set the tail closes, after checking that the
    /// closing copy agrees with the opening one. When that set's opening copy is not in the head
    /// (the last set of a multi-set file starts beyond it), the set is listed from the closing
    /// copy alone.
    fn merge_into(self, sets: &mut Vec<facts::BackupSet>) -> Result<(), Error> {
        let (Some((at, closing)), Some(position), true) =
            (self.closing, self.eset_position, self.complete)
        else {
            return Ok(());
        };
        if let Some(set) = sets.iter_mut().find(|s| s.position == position) {
            return close_set(set, at, &closing);
        }
        if sets.iter().any(|s| s.position > position) {
            return Err(corrupt(
                MSLS,
                at,
                format!(
                    "the last set closes as set {position}, but the head already holds a set \
                     with a higher number"
                ),
            ));
        }
        // A set's header copies cannot close two sets: a copy that agrees with a set of the head
        // on what identifies it, under another number, is a numbering that lies.
        if let Some(twin) = sets.iter().find(|s| {
            s.database_name == closing.database_name
                && s.backup_type == closing.backup_type
                && s.backup_start == closing.backup_start
                && s.first_lsn == closing.first_lsn
        }) {
            return Err(corrupt(
                ESET,
                at,
                format!(
                    "the end blocks number the last set {position}, but its closing header copy is \
                     that of set {}",
                    twin.position
                ),
            ));
        }
        let finish = closing.backup_finish;
        let size = closing.backup_size;
        let compressed_size = closing.compressed_backup_size;
        let mut set = set_facts(position, closing);
        set.backup_finish = finish;
        set.backup_size = Some(size);
        set.compressed_backup_size = compressed_size;
        set.from_tail_only = true;
        sets.push(set);
        Ok(())
    }
}

/// Puts the closing copy's facts (final LSNs, finish date, sizes) into a set, after checking that
/// the closing copy agrees with the opening one on what identifies the set.
fn close_set(set: &mut facts::BackupSet, at: usize, closing: &Config) -> Result<(), Error> {
    // SQL Server fills the LSNs in the opening copy before the backup ends, and the closing
    // copy can move them (LastLSN on 4 fixtures, FirstLSN on one): those come from the
    // closing copy. What identifies the set must not change.
    let checks: [(&str, bool); 7] = [
        ("database name", set.database_name == closing.database_name),
        ("server name", set.server_name == closing.server_name),
        ("backup type", set.backup_type == closing.backup_type),
        (
            "DatabaseBackupLSN",
            set.database_backup_lsn.unwrap_or(Lsn::ZERO) == closing.database_backup_lsn,
        ),
        (
            "SQL Server version",
            set.software_version == closing.software_version,
        ),
        (
            "backup start date",
            set.backup_start == closing.backup_start,
        ),
        ("collation", set.collation == closing.collation),
    ];
    if let Some((field, _)) = checks.iter().find(|(_, ok)| !ok) {
        return Err(corrupt(
            MSLS,
            at,
            format!(
                "the closing copy of the set header disagrees with the opening copy on {field}"
            ),
        ));
    }
    set.first_lsn = closing.first_lsn;
    set.last_lsn = closing.last_lsn;
    set.checkpoint_lsn = closing.checkpoint_lsn;
    set.backup_finish = closing.backup_finish;
    set.backup_size = Some(closing.backup_size);
    set.compressed_backup_size = closing.compressed_backup_size;
    Ok(())
}

/// Reads the closing blocks from a tail. `start` is the logical offset of `buf[0]`: blocks sit at
/// 512-byte multiples of it. The last MSLS is found by scanning those sectors; from it (or, when
/// it starts before the tail, from the first ESET), the blocks are walked by their own sizes, and
/// the set is complete when the walk passes an ESET and ends with a filemark exactly at the end
/// of the bytes. `closing_len`, the opening copy's block length when known, tells whether a
/// missing MSLS of that set should have been in the tail (then it is corruption).
fn parse_tail(buf: &[u8], start: u64, closing_len: Option<ClosingLen>) -> Result<TailFacts, Error> {
    const SECTOR: u64 = 512;
    let first = ((SECTOR - start % SECTOR) % SECTOR) as usize;
    let abs = |p: usize| start as usize + p;
    let mut last_msls = None;
    let mut first_eset = None;
    // The filemark that ends the closing copy: the one right before the first ESET.
    let mut last_sfmb: Option<Dblk<'_>> = None;
    let mut closing_end = None;
    let mut p = first;
    while p < buf.len() {
        match Dblk::parse(buf, p) {
            Ok(d) if d.tag == MSLS => {
                last_msls = Some(d);
                first_eset = None;
            }
            Ok(d) if d.tag == SFMB => last_sfmb = Some(d),
            Ok(d) if d.tag == ESET && first_eset.is_none() => {
                first_eset = Some(d);
                closing_end = last_sfmb
                    .filter(|f| f.at + usize::from(f.first_stream) == d.at)
                    .map(|f| f.at);
            }
            Ok(_) | Err(BlockError::Eof(_)) | Err(BlockError::NotABlock) => {}
            Err(BlockError::Corrupt { tag, detail }) => return Err(corrupt(tag, abs(p), detail)),
        }
        p += SECTOR as usize;
    }
    let mut facts = TailFacts {
        closing: None,
        eset_position: None,
        complete: false,
        next_set: None,
    };
    // Walk the end blocks from the closing copy; when that copy starts before the tail (a large
    // file list), from the first ESET after it, so completeness does not depend on its size.
    let mut prev = match (last_msls, first_eset) {
        (Some(msls), _) => {
            match block_config(&msls) {
                Ok(c) => facts.closing = Some((abs(msls.at), c)),
                // Cut by the end of the file: the set is not closed yet.
                Err(HeadError::Eof(_)) => return Ok(facts),
                Err(HeadError::Fail(e)) => return Err(relocate(e, start)),
            }
            msls
        }
        (None, Some(eset)) => {
            // The closing copy is as long as the opening one: if it should start inside the
            // tail, it is missing or damaged.
            facts.eset_position = eset.bytes().u16(78).ok();
            let len = closing_len
                .filter(|c| Some(c.position) == facts.eset_position)
                .map(|c| c.len);
            if let (Some(end), Some(len)) = (closing_end, len) {
                if let Some(msls_at) = end.checked_sub(len).filter(|&a| a >= first) {
                    return Err(corrupt(
                        MSLS,
                        abs(msls_at),
                        "the closing copy of the set header is missing before the end blocks",
                    ));
                }
            }
            eset
        }
        (None, None) => return Ok(facts),
    };
    loop {
        let at = match prev.end() {
            Ok(at) => at,
            Err(BlockError::Eof(_)) => return Ok(facts),
            Err(BlockError::NotABlock) => return Ok(facts),
            Err(BlockError::Corrupt { tag, detail }) => {
                return Err(corrupt(tag, abs(prev.at), detail));
            }
        };
        if at == buf.len() {
            facts.complete = prev.tag == SFMB && facts.eset_position.is_some();
            return Ok(facts);
        }
        let d = match Dblk::parse(buf, at) {
            Ok(d) => d,
            Err(BlockError::Eof(_)) => return Ok(facts),
            // Zero fill after the last block: written so far, not finished.
            Err(BlockError::NotABlock)
                if buf
                    .get(at..)
                    .is_some_and(|r| r.iter().take(512).all(|&b| b == 0)) =>
            {
                return Ok(facts);
            }
            Err(BlockError::NotABlock) => {
                return Err(corrupt(
                    prev.tag,
                    abs(at),
                    "no MTF block follows this one where it ends",
                ));
            }
            Err(BlockError::Corrupt { tag, detail }) => return Err(corrupt(tag, abs(at), detail)),
        };
        match d.tag {
            ESET => facts.eset_position = d.bytes().u16(78).ok(),
            SFMB => {}
            // Another set begins (appended WITH NOINIT) and has not been closed yet: the file
            // is still being written.
            SSET => {
                facts.next_set = d.bytes().u16(62).ok();
                facts.eset_position = None;
                return Ok(facts);
            }
            _ => {
                facts.eset_position = None;
                return Ok(facts);
            }
        }
        prev = d;
    }
}

/// Shifts an error's offset from a tail-relative one to the file's.
fn relocate(e: Error, start: u64) -> Error {
    match e {
        Error::Corrupt {
            block,
            offset,
            detail,
        } => Error::Corrupt {
            block,
            offset: offset + start,
            detail,
        },
        other => other,
    }
}
