//! `Microsoft.Storage.BlobCreated` events, in the Event Grid or the CloudEvents 1.0 schema, and the
//! check that an event's blob lies in the configured account and containers before anything is read.

use serde_json::Value;
use url::Url;

/// The event type this pipeline acts on.
pub const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";

/// A storage event, reduced to what the pipeline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEvent {
    /// The event id (stable across Event Grid redeliveries).
    pub id: String,
    /// `eventType` or `type`.
    pub event_type: String,
    /// `data.url`: the blob's URL.
    pub url: String,
    /// `data.contentLength`, when given.
    pub content_length: Option<u64>,
    /// `data.blobType` (`BlockBlob`, `PageBlob`).
    pub blob_type: Option<String>,
    /// `data.api` (`PutBlob`, `PutBlockList`, `FlushWithClose`, ...).
    pub api: Option<String>,
    /// `data.eTag`.
    pub etag: Option<String>,
}

impl BlobEvent {
    /// Whether this is a BlobCreated event.
    pub fn is_blob_created(&self) -> bool {
        self.event_type == BLOB_CREATED
    }

    /// Page blobs are created at full size and filled later without an event: the content may not
    /// be there yet (`BACKUP TO URL ... WITH CREDENTIAL`).
    pub fn is_page_blob(&self) -> bool {
        self.blob_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("PageBlob"))
    }
}

/// Why a message is not a usable event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON we understand as an event at all.
    #[error("the message is not an Event Grid or CloudEvents event: {0}")]
    NotAnEvent(String),
    /// An event, but a field we need is missing or malformed.
    #[error("the event {id} has no usable {field}")]
    MissingField {
        /// Event id.
        id: String,
        /// The field.
        field: &'static str,
    },
}

/// Parses one event from a decoded message body: an object in either schema, or an array holding
/// exactly one.
///
/// # Errors
/// [`EventError`] when the body is not an event, or lacks the type, id or (for BlobCreated) url.
pub fn parse_event(body: &Value) -> Result<BlobEvent, EventError> {
    let obj = match body {
        Value::Array(items) if items.len() == 1 => &items[0],
        Value::Array(items) => {
            return Err(EventError::NotAnEvent(format!(
                "an array of {} items, expected one event",
                items.len()
            )));
        }
        other => other,
    };
    let Value::Object(map) = obj else {
        return Err(EventError::NotAnEvent(format!("a JSON {}", kind(obj))));
    };
    let str_of = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
    let event_type = str_of("eventType")
        .or_else(|| str_of("type"))
        .ok_or_else(|| EventError::NotAnEvent("no eventType or type field".into()))?;
    let id = str_of("id").ok_or_else(|| EventError::NotAnEvent("no id field".into()))?;
    let data = map
        .get("data")
        .cloned()
        .map(super::protocol::decode_nested)
        .unwrap_or(Value::Null);
    let data_str = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    let content_length = match data.get("contentLength") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let url = data_str("url");
    if event_type == BLOB_CREATED && url.is_none() {
        return Err(EventError::MissingField {
            id,
            field: "data.url",
        });
    }
    Ok(BlobEvent {
        id,
        event_type,
        url: url.unwrap_or_default(),
        content_length,
        blob_type: data_str("blobType"),
        api: data_str("api"),
        etag: data_str("eTag").map(|e| e.trim_matches('"').to_owned()),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

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
        let segments: Vec<String> = rest
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let path = segments.join("/");
        if segments
            .iter()
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(ScopeError::BadPath(path));
        }
        let [container, folder, name @ ..] = segments.as_slice() else {
            return Err(ScopeError::BadPath(path));
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

/// Decodes `%XX` escapes in one URL path segment; invalid escapes stay as they are.
fn percent_decode(segment: &str) -> String {
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
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> StorageScope {
        StorageScope::new(
            &Url::parse("https://acct.blob.core.windows.net/?sv=x&sig=secret").unwrap(),
            vec!["backups".into()],
        )
    }

    #[test]
    fn parses_the_event_grid_schema() {
        let e = parse_event(&json!({"id":"1","eventType":BLOB_CREATED,"subject":"s","data":{
            "api":"PutBlob","contentLength":5,"blobType":"BlockBlob","url":"https://a/b/c/d.bak","eTag":"0x1"}}))
        .unwrap();
        assert!(e.is_blob_created());
        assert_eq!(e.content_length, Some(5));
        assert_eq!(e.url, "https://a/b/c/d.bak");
    }

    #[test]
    fn parses_cloud_events_and_single_item_arrays() {
        let e = parse_event(&json!([{"id":"2","type":BLOB_CREATED,"specversion":"1.0","source":"x","data":{
            "url":"https://a/b/c/d.bak","contentLength":"7","blobType":"PageBlob","eTag":"\"0x2\""}}]))
        .unwrap();
        assert_eq!(e.content_length, Some(7));
        assert!(e.is_page_blob());
        assert_eq!(e.etag.as_deref(), Some("0x2"));
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        assert!(matches!(
            parse_event(&json!("hello")),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(&json!({"hello":"world"})),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(&json!([1, 2])),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(&json!({"id":"1","eventType":BLOB_CREATED,"data":{}})),
            Err(EventError::MissingField {
                field: "data.url",
                ..
            })
        ));
    }

    #[test]
    fn locates_blobs_in_scope() {
        let loc = scope()
            .locate("https://acct.blob.core.windows.net/backups/db1/full%201.bak")
            .unwrap();
        assert_eq!(
            loc,
            BlobLocation {
                container: "backups".into(),
                folder: "db1".into(),
                name: "full 1.bak".into()
            }
        );
        let nested = scope()
            .locate("https://ACCT.blob.core.windows.net/backups/db1/FULL/x.bak")
            .unwrap();
        assert!(nested.is_nested());
        assert_eq!(nested.blob_name(), "db1/FULL/x.bak");
    }

    #[test]
    fn refuses_blobs_out_of_scope() {
        let s = scope();
        assert!(matches!(
            s.locate("https://evil.blob.core.windows.net/backups/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
        assert!(matches!(
            s.locate("http://acct.blob.core.windows.net/backups/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net:444/backups/db/x.bak"),
            Err(ScopeError::OtherAccount(_))
        ));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/other/db/x.bak"),
            Err(ScopeError::OtherContainer(_))
        ));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/backups/x.bak"),
            Err(ScopeError::NoFolder(_))
        ));
        assert!(
            s.locate("https://acct.blob.core.windows.net/backups/db/../x.bak")
                .is_err()
        );
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/backups//x.bak"),
            Err(ScopeError::BadPath(_))
        ));
        assert!(matches!(s.locate("not a url"), Err(ScopeError::Malformed)));
        assert!(matches!(
            s.locate("https://acct.blob.core.windows.net/backups/.state/x.bak"),
            Err(ScopeError::HiddenFolder(_))
        ));
    }

    #[test]
    fn folder_urls_carry_no_query_and_encode_names() {
        let url = scope().folder_url("backups", "db 1");
        assert_eq!(
            url.as_str(),
            "https://acct.blob.core.windows.net/backups/db%201"
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
}
