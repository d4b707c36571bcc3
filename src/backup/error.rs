//! Reader errors, worded for a DBA.

/// Why a file could not be read as a SQL Server backup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a SQL Server backup at all.
    #[error("not a SQL Server backup: {reason}")]
    NotABackup {
        /// What was found instead.
        reason: String,
    },
    /// The head given is too short for the header and file list; read this many bytes and try again.
    #[error("the header needs the first {needed} bytes of the file")]
    NeedMoreHead {
        /// How many head bytes the reader needs.
        needed: usize,
    },
    /// The file ends before its header does: truncated, or still being written.
    #[error(
        "truncated or still being written: the file ends at byte {offset}, {wanted} more bytes were expected"
    )]
    Truncated {
        /// Where the data ran out.
        offset: u64,
        /// How many more bytes were wanted.
        wanted: u64,
    },
    /// A checksum or structure check failed.
    #[error("corrupt backup: {detail} in the {block} block at byte {offset}")]
    Corrupt {
        /// The block tag (`TAPE`, `SSET`, ...).
        block: String,
        /// The block's offset in the (decompressed) stream.
        offset: u64,
        /// What did not match.
        detail: String,
    },
    /// A valid backup this reader does not understand.
    #[error("unsupported backup: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
}
