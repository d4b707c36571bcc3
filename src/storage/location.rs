//! Where a backup blob sits: the storage account and containers this pipeline may read, and the
//! check that an event's blob lies inside them before anything is read.

use url::Url;

/// The storage account and containers this pipeline may read. Everything else is refused before
/// any read, whatever URL an event carries.
#[derive(Debug, Clone)]
pub struct StorageScope {
    account: Url,
    containers: Vec<String>,
}

/// Where a blob sits: `<container>/<folder>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    /// The container.
    pub container: String,
    /// The database folder (the first path segment under the container).
    pub folder: String,
    /// The path under the folder: a file name, or `a/b.bak` when nested.
    pub name: String,
}

impl BlobLocation {
    /// The blob's name in its container.
    pub fn blob_name(&self) -> String {
        format!("{}/{}", self.folder, self.name)
    }

    /// Whether the file is not directly under its database folder.
    pub fn is_nested(&self) -> bool {
        self.name.contains('/')
    }
}

/// Why an event's URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Not a URL.
    #[error("the blob URL is malformed")]
    Malformed,
    /// Another account (or scheme, host, port).
    #[error("the blob is in another storage account ({0}); this pipeline reads only its own")]
    OtherAccount(String),
    /// A container not watched.
    #[error("the blob is in container {0:?}, which this pipeline does not watch")]
    OtherContainer(String),
    /// Directly in the container, with no database folder.
    #[error(
        "the blob {0:?} is not inside a database folder: put each database's backups in <container>/<database>/"
    )]
    NoFolder(String),
    /// A database folder whose name starts with `.`: state documents cannot be keyed by it.
    #[error(
        "the database folder {0:?} starts with '.': rename it (hidden folder names are not supported)"
    )]
    HiddenFolder(String),
    /// Path tricks (`..`, empty segments).
    #[error("the blob path {0:?} has empty or relative segments")]
    BadPath(String),
    /// A percent-encoded `/`, or a `\` (raw or encoded), inside a segment: Azure would store a name whose folders
    /// differ from the ones the URL shows (`nest%2Fsub` is not the folder `nest/sub`).
    #[error("the blob path {0:?} has an encoded '/' or a '\\' inside a segment")]
    EncodedSeparator(String),
    /// NUL, newline, escape or any other control character (raw or percent-encoded).
    #[error("the blob path {0:?} holds a control character")]
    ControlCharacter(String),
    /// Percent escapes that do not decode to UTF-8.
    #[error("the blob path {0:?} is not UTF-8 once decoded")]
    NotUtf8(String),
    /// Longer than any blob name Azure accepts.
    #[error("the blob name has {0} characters; a blob name has at most {MAX_BLOB_NAME_CHARS}")]
    TooLong(usize),
}

/// Azure's limit on a blob name (the path under the container).
pub const MAX_BLOB_NAME_CHARS: usize = 1024;

/// How much of a refused path an error quotes.
const QUOTED_CHARS: usize = 200;

/// A path cut to a length fit for a log line.
fn quoted(path: &str) -> String {
    match path.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}...", &path[..end]),
        None => path.to_owned(),
    }
}

impl StorageScope {
    /// A scope from `LRS_STORAGE_ACCOUNT_URL` (its query string, a SAS, is dropped) and the
    /// watched containers.
    pub fn new(account_url: &Url, containers: Vec<String>) -> Self {
        let mut account = account_url.clone();
        account.set_query(None);
        account.set_fragment(None);
        StorageScope {
            account,
            containers,
        }
    }

    /// The account URL, without query string.
    pub fn account(&self) -> &Url {
        &self.account
    }

    /// A database folder's URL (`<account>/<container>/<folder>`, no query string): the storage
    /// container URI LRS is given.
    pub fn folder_url(&self, container: &str, folder: &str) -> Url {
        let mut url = self.account.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(container).push(folder);
        }
        url
    }

    /// The watched containers.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }

    /// Locates a blob URL inside this scope.
    ///
    /// # Errors
    /// [`ScopeError`] for anything outside the account and containers, or not in a folder.
    pub fn locate(&self, blob_url: &str) -> Result<BlobLocation, ScopeError> {
        // URL parsing drops raw tabs and newlines silently: refuse them before it can.
        if blob_url.chars().any(char::is_control) {
            return Err(ScopeError::ControlCharacter(quoted(
                &super::sas::redact_text(blob_url),
            )));
        }
        let url = Url::parse(blob_url).map_err(|_| ScopeError::Malformed)?;
        let same_origin = url.scheme() == self.account.scheme()
            && url.host_str().map(str::to_ascii_lowercase)
                == self.account.host_str().map(str::to_ascii_lowercase)
            && url.port_or_known_default() == self.account.port_or_known_default();
        let prefix = self.account.path().trim_end_matches('/');
        let rest = url
            .path()
            .strip_prefix(prefix)
            .filter(|r| r.starts_with('/'));
        let (true, Some(rest)) = (same_origin, rest) else {
            return Err(ScopeError::OtherAccount(
                url.host_str().unwrap_or("?").to_owned(),
            ));
        };
        let raw: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        for segment in &raw {
            match percent_decode(segment) {
                Some(decoded) => segments.push(decoded),
                None => return Err(ScopeError::NotUtf8(quoted(&raw.join("/")))),
            }
        }
        let path = segments.join("/");
        let name_chars = segments.get(1..).map_or(0, |s| s.join("/").chars().count());
        if name_chars > MAX_BLOB_NAME_CHARS {
            return Err(ScopeError::TooLong(name_chars));
        }
        if path.chars().any(char::is_control) {
            return Err(ScopeError::ControlCharacter(quoted(&path)));
        }
        if segments.iter().any(|s| s.contains(['/', '\\'])) {
            return Err(ScopeError::EncodedSeparator(quoted(&path)));
        }
        if segments
            .iter()
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(ScopeError::BadPath(quoted(&path)));
        }
        let [container, folder, name @ ..] = segments.as_slice() else {
            return Err(ScopeError::BadPath(quoted(&path)));
        };
        if !self.containers.iter().any(|c| c == container) {
            return Err(ScopeError::OtherContainer(container.clone()));
        }
        if name.is_empty() {
            return Err(ScopeError::NoFolder(folder.clone()));
        }
        if folder.starts_with('.') {
            return Err(ScopeError::HiddenFolder(folder.clone()));
        }
        Ok(BlobLocation {
            container: container.clone(),
            folder: folder.clone(),
            name: name.join("/"),
        })
    }
}

/// Decodes `%XX` escapes in one URL path segment; invalid escapes stay as they are. `None` when
/// the bytes are not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes.get(i),
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(&b), _, _) => {
                out.push(b);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> StorageScope {
        StorageScope::new(
            &Url::parse("https://acct.blob.core.windows.net/?sv=x&sig=secret").unwrap(),
            vec!["sqlfiles".into()],
        )
    }

    #[test]
    fn locates_blobs_in_scope() {
        let loc = scope()
            .locate("https://acct.blob.core.windows.net/sqlfiles/db1/full%201.bak")
            .unwrap();
        assert_eq!(
            loc,
            BlobLocation {
                container: "sqlfiles".into(),
                folder: "db1".into(),
                name: "full 1.bak".into()
            }
        );
        let nested = scope()
            .locate("https://ACCT.blob.core.windows.net/sqlfiles/db1/FULL/x.bak")
            .unwrap();
        assert!(nested.is_nested());
        assert_eq!(nested.blob_name(), "db1/FULL/x.bak");
    }

    #[test]
    fn refuses_blobs_out_of_scope() {
        let s = scope();
        assert!(matches!(
            s.locate("https://evil.blob.core.windows.net/sqlfiles/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
        assert!(matches!(
            s.locate("http://acct.blob.core.windows.net/sqlfiles/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net:444/sqlfiles/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/other/db/x.bak"),
            Err(ScopeError::OtherContainer(_))
        ));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/sqlfiles/x.bak"),
            Err(ScopeError::NoFolder(_))
        ));
        assert!(
            s.locate("https://acct.blob.core.windows.net/sqlfiles/db/../x.bak")
                .is_err()
        );
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/sqlfiles//x.bak"),
            Err(ScopeError::BadPath(_))
        ));
        assert!(matches!(s.locate("not a url"), Err(ScopeError::Malformed)));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/sqlfiles/.state/x.bak"),
            Err(ScopeError::HiddenFolder(_))
        ));
    }

    #[test]
    fn folder_urls_carry_no_query_and_encode_names() {
        let url = scope().folder_url("sqlfiles", "db 1");
        assert_eq!(
            url.as_str(),
            "https://acct.blob.core.windows.net/sqlfiles/db%201"
        );
        let s = StorageScope::new(
            &Url::parse("http://127.0.0.1:10000/devstoreaccount1?sv=1&sig=x").unwrap(),
            vec![],
        );
        assert_eq!(
            s.folder_url("c", "db").as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c/db"
        );
    }

    #[test]
    fn azurite_style_account_paths_are_respected() {
        let s = StorageScope::new(
            &Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
            vec!["c".into()],
        );
        assert!(
            s.locate("http://127.0.0.1:10000/devstoreaccount1/c/db/x.bak")
                .is_ok()
        );
        assert!(matches!(
            s.locate("http://127.0.0.1:10000/devstoreaccount2/c/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
        assert!(matches!(
            s.locate("http://127.0.0.1:10000/devstoreaccount1x/c/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
    }

    #[test]
    fn refuses_encoded_separators_control_characters_and_long_names() {
        let s = scope();
        let base = "https://acct.blob.core.windows.net/sqlfiles";
        for (path, check) in [
            ("nest%2Fsub/x.bak", "encoded"),
            ("nest%2fsub/x.bak", "encoded"),
            ("db/%2F..%2Fx.bak", "encoded"),
            ("db%5Cother/x.bak", "encoded"),
            ("db/x%00.bak", "control"),
            ("db/x%0A.bak", "control"),
            ("db/x%1B[2J.bak", "control"),
            ("db/x%FF.bak", "utf"),
        ] {
            let err = s.locate(&format!("{base}/{path}")).unwrap_err();
            let ok = match check {
                "encoded" => matches!(err, ScopeError::EncodedSeparator(_)),
                "control" => matches!(err, ScopeError::ControlCharacter(_)),
                _ => matches!(err, ScopeError::NotUtf8(_)),
            };
            assert!(ok, "{path}: {err:?}");
            assert!(!err.to_string().contains('\0'), "{err}");
        }
        let raw_newline = format!("{base}/db/x\n.bak");
        assert!(matches!(
            s.locate(&raw_newline),
            Err(ScopeError::ControlCharacter(_))
        ));
        let longest = format!("db/{}", "a".repeat(MAX_BLOB_NAME_CHARS - 3));
        assert!(s.locate(&format!("{base}/{longest}")).is_ok());
        let too_long = format!("db/{}", "a".repeat(MAX_BLOB_NAME_CHARS - 2));
        let err = s.locate(&format!("{base}/{too_long}")).unwrap_err();
        assert_eq!(err, ScopeError::TooLong(MAX_BLOB_NAME_CHARS + 1));
        assert!(err.to_string().len() < 200, "the name is not echoed: {err}");
    }
}
