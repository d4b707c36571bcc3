//! One struct per ARM operation, each with a pure `into_request(&base)` and a pure
//! `parse_response(status, headers, body)`. No I/O here: [`super::LrsClient`] sends what these
//! build, so every request and every answer shape is unit-tested without a network.

use std::fmt;
use std::net::IpAddr;

use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::{Method, Request};
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use super::error::{ArmError, Error};
use super::model::{
    AsyncOperationBody, Database, DatabaseList, ErrorEnvelope, ManagedInstance, MetricsResponse,
    OperationState, OperationStatus, RestoreDetails, RestoreDetailsEnvelope,
};
use super::{DatabaseId, InstanceId};

/// `x-ms-request-id`: ARM's id for the call, quoted in errors.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-request-id");
/// `azure-asyncoperation`: the URL to poll for an operation's status.
pub const AZURE_ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");
/// `location`: the URL to poll until the operation is done.
pub const LOCATION: HeaderName = HeaderName::from_static("location");
/// `retry-after`: seconds to wait before the next poll or retry.
pub const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// How a long-running operation is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollKind {
    /// Poll the `Azure-AsyncOperation` URL: its body says `InProgress`, `Succeeded`, `Failed`, ...
    AsyncOperation(Url),
    /// Poll the `Location` URL: 202 until done, then 200 or 204.
    Location(Url),
}

impl PollKind {
    /// The URL to poll.
    pub fn url(&self) -> &Url {
        match self {
            PollKind::AsyncOperation(u) | PollKind::Location(u) => u,
        }
    }
}

/// A started long-running operation: where to poll and how long to wait first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongRunning {
    /// Where to poll.
    pub poll: PollKind,
    /// The server's `Retry-After` in seconds, if it gave one.
    pub retry_after_secs: Option<u64>,
}

impl LongRunning {
    /// The form kept in a state document: `async-operation <url>` or `location <url>`. ARM's
    /// polling URLs carry only an api-version, never a SAS.
    pub fn to_stored(&self) -> String {
        match &self.poll {
            PollKind::AsyncOperation(u) => format!("async-operation {u}"),
            PollKind::Location(u) => format!("location {u}"),
        }
    }

    /// Reads [`LongRunning::to_stored`]'s form back; a bare URL is taken as a `Location`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when it holds no absolute URL.
    pub fn from_stored(stored: &str) -> Result<Self, Error> {
        let (kind, raw) = stored
            .trim()
            .split_once(' ')
            .unwrap_or(("location", stored));
        let url = Url::parse(raw.trim()).map_err(|e| Error::InvalidInput {
            reason: format!("the stored polling url is not a url: {e}"),
        })?;
        let poll = if kind == "async-operation" {
            PollKind::AsyncOperation(url)
        } else {
            PollKind::Location(url)
        };
        Ok(LongRunning {
            poll,
            retry_after_secs: None,
        })
    }
}

/// What a write (start, complete) answered: done already, or an operation to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// The call finished synchronously (200/201/204 without a polling header).
    Done,
    /// The call started an operation (201/202 with `Azure-AsyncOperation` or `Location`).
    Running(LongRunning),
}

/// `GET` the managed instance, for its `location`.
#[derive(Debug, Clone)]
pub struct GetManagedInstance {
    /// The instance.
    pub instance: InstanceId,
}

impl GetManagedInstance {
    /// Builds the request.
    pub fn into_request(&self, base: &Url) -> Request {
        json_request(self.instance.url(base), Method::Get, None)
    }

    /// Parses the answer.
    ///
    /// # Errors
    /// [`Error::Arm`] for an error status, [`Error::Decode`] for a body without `location`.
    pub fn parse_response(
        status: u16,
        headers: &Headers,
        body: &[u8],
    ) -> Result<ManagedInstance, Error> {
        expect_status(status, headers, body, &[200])?;
        decode(status, headers, body)
    }
}

/// `GET {instance}/databases` (`ManagedDatabases_ListByInstance`), one page; the next page is
/// `nextLink`, followed only on the ARM endpoint itself (a token is never sent elsewhere).
#[derive(Debug, Clone)]
pub struct ListDatabases {
    /// The instance.
    pub instance: InstanceId,
    /// The page to read: `None` for the first, else the previous page's `nextLink`.
    pub next_link: Option<Url>,
}

impl ListDatabases {
    /// Builds the request.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `next_link` points away from `base` (scheme, host or port).
    pub fn into_request(&self, base: &Url) -> Result<Request, Error> {
        let url = match &self.next_link {
            Some(next) => {
                if next.origin() != base.origin() {
                    return Err(Error::InvalidInput {
                        reason: format!(
                            "ARM's nextLink for the database list points to {}, not to the ARM \
                             endpoint: not followed",
                            next.origin().ascii_serialization()
                        ),
                    });
                }
                next.clone()
            }
            None => {
                let mut url = self.instance.url(base);
                url.set_query(None);
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.push("databases");
                }
                url.query_pairs_mut()
                    .append_pair("api-version", super::API_VERSION);
                url
            }
        };
        Ok(json_request(url, Method::Get, None))
    }

    /// Parses one page.
    ///
    /// # Errors
    /// [`Error::Arm`] for an error status, [`Error::Decode`] for a body that is not a list.
    pub fn parse_response(
        status: u16,
        headers: &Headers,
        body: &[u8],
    ) -> Result<DatabaseList, Error> {
        expect_status(status, headers, body, &[200])?;
        decode(status, headers, body)
    }
}

/// The Azure Monitor api-version for `Microsoft.Insights/metrics` (Metrics - List).
pub const METRICS_API_VERSION: &str = "2018-01-01";

/// `GET {instance}/providers/Microsoft.Insights/metrics?metricnames=storage_space_used_mb`: the
/// instance's used storage in MB (Azure Monitor's supported metrics for
/// `Microsoft.Sql/managedInstances`; Metrics - List REST API). Needs Monitoring Reader on the
/// instance.
#[derive(Debug, Clone)]
pub struct GetStorageUsed {
    /// The instance.
    pub instance: InstanceId,
}

impl GetStorageUsed {
    /// Builds the request: the last hour (the API's default timespan), maximum per 5 minutes.
    pub fn into_request(&self, base: &Url) -> Request {
        let mut url = self.instance.url(base);
        url.set_query(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(["providers", "Microsoft.Insights", "metrics"]);
        }
        url.query_pairs_mut()
            .append_pair("api-version", METRICS_API_VERSION)
            .append_pair("metricnames", "storage_space_used_mb")
            .append_pair("aggregation", "Maximum,Average")
            .append_pair("interval", "PT5M");
        json_request(url, Method::Get, None)
    }

    /// Parses the answer: the newest value in MB, `None` when the series is empty.
    ///
    /// # Errors
    /// [`Error::Arm`] for an error status (403 without Monitoring Reader), [`Error::Decode`].
    pub fn parse_response(
        status: u16,
        headers: &Headers,
        body: &[u8],
    ) -> Result<Option<u64>, Error> {
        expect_status(status, headers, body, &[200])?;
        let metrics: MetricsResponse = decode(status, headers, body)?;
        Ok(metrics
            .latest()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.ceil() as u64))
    }
}

/// How LRS authenticates to the storage account.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageAuth {
    /// The managed instance's identity (it needs Storage Blob Data Reader on the account).
    ManagedIdentity,
    /// A SAS token with Read and List only.
    SharedAccessSignature(SasToken),
}

impl fmt::Debug for StorageAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageAuth::ManagedIdentity => f.write_str("ManagedIdentity"),
            StorageAuth::SharedAccessSignature(_) => {
                f.write_str("SharedAccessSignature(<redacted>)")
            }
        }
    }
}

/// A SAS token without its leading `?`. Never printed: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken(String);

impl SasToken {
    /// Takes a token as a user pastes it (a leading `?` is dropped) and checks what LRS checks:
    /// Read and List permissions only, no stored access policy.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming what to change; the message never repeats the token.
    pub fn new(token: &str) -> Result<Self, Error> {
        let token = token.trim();
        let token = token.strip_prefix('?').unwrap_or(token);
        if token.is_empty() {
            return Err(Error::InvalidInput {
                reason: "the sas token is empty".into(),
            });
        }
        if token.contains('?') || token.contains('#') || token.chars().any(char::is_whitespace) {
            return Err(Error::InvalidInput {
                reason: "the sas token must be the query part only, without the container url"
                    .into(),
            });
        }
        for (key, value) in url::form_urlencoded::parse(token.as_bytes()) {
            if key == "sp" && value.chars().any(|c| c != 'r' && c != 'l') {
                return Err(Error::InvalidInput {
                    reason: format!(
                        "the sas token grants permissions {value:?}; LRS needs read and list only (sp=rl)"
                    ),
                });
            }
            if key == "si" {
                return Err(Error::InvalidInput {
                    reason: "the sas token uses a stored access policy (si=...), which LRS refuses"
                        .into(),
                });
            }
        }
        Ok(SasToken(token.to_owned()))
    }

    /// The token, for the request body only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SasToken(<redacted>)")
    }
}

/// Start LRS in continuous mode: `PUT {base}` with createMode `RestoreExternalBackup`.
#[derive(Debug, Clone)]
pub struct StartRestore {
    /// The database to create.
    pub database: DatabaseId,
    /// The managed instance's region.
    pub location: String,
    /// The database folder: `https://<acct>.blob.core.windows.net/<container>/<folder>`, no query.
    pub storage_container_uri: Url,
    /// How LRS reads the folder.
    pub auth: StorageAuth,
    /// The database collation.
    pub collation: String,
}

impl StartRestore {
    /// Checks the inputs LRS would refuse, with a reason a DBA can act on.
    ///
    /// # Errors
    /// [`Error::InvalidInput`]: empty location or collation; a storage URI with a query or fragment
    /// (pass the SAS separately), without `<container>/<folder>`, or not `https` (plain `http` is
    /// allowed for loopback emulators only).
    pub fn new(
        database: DatabaseId,
        location: &str,
        storage_container_uri: &str,
        auth: StorageAuth,
        collation: &str,
    ) -> Result<Self, Error> {
        let location = location.trim();
        if location.is_empty() {
            return Err(invalid("the managed instance location is empty"));
        }
        let collation = collation.trim();
        if collation.is_empty() {
            return Err(invalid("the collation is empty"));
        }
        let mut uri = Url::parse(storage_container_uri.trim())
            .map_err(|e| invalid(&format!("the storage container uri is not a url: {e}")))?;
        if uri.query().is_some() || uri.fragment().is_some() {
            return Err(invalid(
                "the storage container uri carries a query: give the sas token separately, without '?'",
            ));
        }
        let loopback = uri.host_str().is_some_and(is_loopback_host);
        if !(uri.scheme() == "https" || (uri.scheme() == "http" && loopback)) {
            return Err(invalid(
                "the storage container uri must use https (plain http only for a loopback emulator)",
            ));
        }
        let trimmed = uri.path().trim_end_matches('/').to_owned();
        uri.set_path(&trimmed);
        let segments = uri.path_segments().map(|s| s.count()).unwrap_or(0);
        if segments < 2 {
            return Err(invalid(
                "the storage container uri must end with <container>/<database folder>",
            ));
        }
        Ok(StartRestore {
            database,
            location: location.to_owned(),
            storage_container_uri: uri,
            auth,
            collation: collation.to_owned(),
        })
    }

    /// Builds the request. The body holds the SAS token: never log it.
    pub fn into_request(&self, base: &Url) -> Request {
        let mut properties = json!({
            "createMode": "RestoreExternalBackup",
            "storageContainerUri": self.storage_container_uri.as_str(),
            "collation": self.collation,
            "autoCompleteRestore": false,
        });
        match &self.auth {
            StorageAuth::ManagedIdentity => {
                properties["storageContainerIdentity"] = json!("ManagedIdentity");
            }
            StorageAuth::SharedAccessSignature(token) => {
                properties["storageContainerIdentity"] = json!("SharedAccessSignature");
                properties["storageContainerSasToken"] = json!(token.expose());
            }
        }
        let body = json!({ "location": self.location, "properties": properties });
        json_request(self.database.url(base, &[]), Method::Put, Some(body))
    }

    /// Parses the answer: 200/201 done or 201/202 with an operation to follow.
    ///
    /// # Errors
    /// [`Error::Arm`] for an error status (`ManagedDatabaseNameInUse` when already started);
    /// [`Error::Decode`] for a malformed polling header.
    pub fn parse_response(status: u16, headers: &Headers, body: &[u8]) -> Result<Accepted, Error> {
        expect_status(status, headers, body, &[200, 201, 202])?;
        accepted(status, headers)
    }
}

/// `GET {base}/restoreDetails/Default`.
#[derive(Debug, Clone)]
pub struct GetRestoreDetails {
    /// The database.
    pub database: DatabaseId,
}

impl GetRestoreDetails {
    /// Builds the request.
    pub fn into_request(&self, base: &Url) -> Request {
        let url = self.database.url(base, &["restoreDetails", "Default"]);
        json_request(url, Method::Get, None)
    }

    /// Parses the answer.
    ///
    /// # Errors
    /// [`Error::Arm`] for an error status (`RestoreDetailsNotAvailableOrExpired`, 404), and
    /// [`Error::Decode`] with the JSON path for a body of the wrong shape.
    pub fn parse_response(
        status: u16,
        headers: &Headers,
        body: &[u8],
    ) -> Result<RestoreDetails, Error> {
        expect_status(status, headers, body, &[200])?;
        let envelope: RestoreDetailsEnvelope = decode(status, headers, body)?;
        Ok(envelope.properties)
    }
}

/// `POST {base}/completeRestore` with `lastBackupName`.
#[derive(Debug, Clone)]
pub struct CompleteRestore {
    /// The database.
    pub database: DatabaseId,
    /// The last backup file: LRS refuses unless it is the last restored one.
    pub last_backup_name: String,
}

impl CompleteRestore {
    /// Checks the name as ARM does.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty name, a newline or a non-ASCII character.
    pub fn new(database: DatabaseId, last_backup_name: &str) -> Result<Self, Error> {
        if last_backup_name.trim().is_empty() {
            return Err(invalid("the last backup name is empty"));
        }
        if last_backup_name.contains(['\n', '\r']) {
            return Err(invalid("the last backup name holds a newline"));
        }
        if !last_backup_name.is_ascii() {
            return Err(invalid(
                "the last backup name holds a non-ascii character, which LRS refuses",
            ));
        }
        Ok(CompleteRestore {
            database,
            last_backup_name: last_backup_name.to_owned(),
        })
    }

    /// Builds the request.
    pub fn into_request(&self, base: &Url) -> Request {
        let url = self.database.url(base, &["completeRestore"]);
        let body = json!({ "lastBackupName": self.last_backup_name });
        json_request(url, Method::Post, Some(body))
    }

    /// Parses the answer.
    ///
    /// # Errors
    /// [`Error::Arm`] for an error status (`RequiredBackupIsNotLastRestored`,
    /// `ExternalBackupAlreadySignaledToComplete`, ...).
    pub fn parse_response(status: u16, headers: &Headers, body: &[u8]) -> Result<Accepted, Error> {
        expect_status(status, headers, body, &[200, 202, 204])?;
        accepted(status, headers)
    }
}

/// `GET {base}`: the database and its `properties.status`.
#[derive(Debug, Clone)]
pub struct GetDatabase {
    /// The database.
    pub database: DatabaseId,
}

impl GetDatabase {
    /// Builds the request.
    pub fn into_request(&self, base: &Url) -> Request {
        json_request(self.database.url(base, &[]), Method::Get, None)
    }

    /// Parses the answer.
    ///
    /// # Errors
    /// [`Error::Arm`] for an error status (404 when there is no such database).
    pub fn parse_response(status: u16, headers: &Headers, body: &[u8]) -> Result<Database, Error> {
        expect_status(status, headers, body, &[200])?;
        decode(status, headers, body)
    }
}

/// One poll of a long-running operation.
#[derive(Debug, Clone)]
pub struct PollOperation {
    /// What to poll.
    pub poll: PollKind,
}

impl PollOperation {
    /// Builds the request: a GET of the polling URL as given (it carries its own api-version).
    pub fn into_request(&self) -> Request {
        json_request(self.poll.url().clone(), Method::Get, None)
    }

    /// Parses the answer.
    ///
    /// # Errors
    /// [`Error::OperationFailed`] when the operation ended `Failed` or `Canceled`; [`Error::Arm`]
    /// for an error status on the poll itself.
    pub fn parse_response(
        &self,
        status: u16,
        headers: &Headers,
        body: &[u8],
    ) -> Result<OperationStatus, Error> {
        let retry_after_secs = retry_after(headers);
        match &self.poll {
            PollKind::AsyncOperation(_) => {
                expect_status(status, headers, body, &[200, 201, 202])?;
                let op: AsyncOperationBody = decode(status, headers, body)?;
                match op.status {
                    OperationState::Succeeded => Ok(OperationStatus::Succeeded),
                    OperationState::Failed | OperationState::Canceled => {
                        let detail = op.error.unwrap_or(super::model::ErrorDetail {
                            code: None,
                            message: None,
                        });
                        Err(Error::OperationFailed {
                            status: op.status.to_string(),
                            code: detail.code.unwrap_or_else(|| op.status.to_string()),
                            message: detail.message.unwrap_or_default(),
                            request_id: request_id(headers),
                        })
                    }
                    // InProgress, and any status this client does not know: keep polling.
                    _ => Ok(OperationStatus::InProgress {
                        retry_after_secs,
                        next: None,
                    }),
                }
            }
            PollKind::Location(_) => {
                expect_status(status, headers, body, &[200, 201, 202, 204])?;
                if status == 202 {
                    let next = match headers.get_optional_str(&LOCATION) {
                        Some(raw) => Some(parse_url(status, headers, "location", raw)?),
                        None => None,
                    };
                    Ok(OperationStatus::InProgress {
                        retry_after_secs,
                        next,
                    })
                } else {
                    Ok(OperationStatus::Succeeded)
                }
            }
        }
    }
}

/// Whether a host is the local machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn invalid(reason: &str) -> Error {
    Error::InvalidInput {
        reason: reason.to_owned(),
    }
}

fn json_request(url: Url, method: Method, body: Option<serde_json::Value>) -> Request {
    let mut request = Request::new(url, method);
    request.insert_header("accept", "application/json");
    if let Some(body) = body {
        request.insert_header("content-type", "application/json");
        request.set_body(body.to_string());
    }
    request
}

/// The request id of an answer.
pub fn request_id(headers: &Headers) -> Option<String> {
    headers.get_optional_string(&REQUEST_ID)
}

/// `Retry-After` in whole seconds (an HTTP date is ignored: the caller's default interval applies).
pub fn retry_after(headers: &Headers) -> Option<u64> {
    headers
        .get_optional_str(&RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn expect_status(status: u16, headers: &Headers, body: &[u8], ok: &[u16]) -> Result<(), Error> {
    if ok.contains(&status) {
        return Ok(());
    }
    Err(arm_error(status, headers, body))
}

/// Turns an error answer into [`Error::Arm`], reading ARM's `{"error":{"code","message"}}`.
pub fn arm_error(status: u16, headers: &Headers, body: &[u8]) -> Error {
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
    let (code, message) = match envelope {
        Some(ErrorEnvelope {
            error: Some(detail),
            ..
        }) => (detail.code, detail.message),
        Some(ErrorEnvelope { code, message, .. }) => (code, message),
        None => (None, None),
    };
    let code = code.unwrap_or_else(|| {
        azure_core::http::StatusCode::from(status)
            .canonical_reason()
            .replace(' ', "")
    });
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(200).collect();
        if text.trim().is_empty() {
            format!("http {status} without a body")
        } else {
            text
        }
    });
    Error::Arm(ArmError {
        status,
        code,
        message,
        request_id: request_id(headers),
    })
}

fn decode<T: DeserializeOwned>(status: u16, headers: &Headers, body: &[u8]) -> Result<T, Error> {
    // serde would read `[]` as a struct of defaults; ARM answers objects.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::Decode {
            status,
            path: ".".into(),
            detail: "expected a json object".into(),
            request_id: request_id(headers),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Decode {
        status,
        path: e.path().to_string(),
        detail: e.inner().to_string(),
        request_id: request_id(headers),
    })
}

fn parse_url(status: u16, headers: &Headers, header: &str, raw: &str) -> Result<Url, Error> {
    Url::parse(raw.trim()).map_err(|e| Error::Decode {
        status,
        path: format!("header {header}"),
        detail: format!("not an absolute url: {e}"),
        request_id: request_id(headers),
    })
}

fn accepted(status: u16, headers: &Headers) -> Result<Accepted, Error> {
    let retry_after_secs = retry_after(headers);
    if let Some(raw) = headers.get_optional_str(&AZURE_ASYNC_OPERATION) {
        let url = parse_url(status, headers, "azure-asyncoperation", raw)?;
        return Ok(Accepted::Running(LongRunning {
            poll: PollKind::AsyncOperation(url),
            retry_after_secs,
        }));
    }
    if let Some(raw) = headers.get_optional_str(&LOCATION) {
        let url = parse_url(status, headers, "location", raw)?;
        return Ok(Accepted::Running(LongRunning {
            poll: PollKind::Location(url),
            retry_after_secs,
        }));
    }
    if status == 202 {
        return Err(Error::Decode {
            status,
            path: "headers".into(),
            detail: "202 accepted without azure-asyncoperation or location to poll".into(),
            request_id: request_id(headers),
        });
    }
    Ok(Accepted::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lrs::{DatabaseStatus, SetStatus};

    fn db() -> DatabaseId {
        InstanceId::new("sub", "rg", "mi")
            .and_then(|i| i.database("db1"))
            .expect("valid ids")
    }

    fn base() -> Url {
        Url::parse("https://management.azure.com").expect("static url")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> Headers {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.insert(*k, *v);
        }
        h
    }

    fn body_json(request: &Request) -> serde_json::Value {
        let bytes: &[u8] = match request.body() {
            azure_core::http::Body::Bytes(b) => b,
            #[allow(unreachable_patterns)]
            _ => panic!("test requests have byte bodies"),
        };
        serde_json::from_slice(bytes).expect("json body")
    }

    #[test]
    fn start_with_sas_builds_the_documented_body() {
        let token = SasToken::new("?sv=2022-11-02&sp=rl&sig=abc%3D").expect("valid token");
        let op = StartRestore::new(
            db(),
            "westeurope",
            "https://acct.blob.core.windows.net/backups-c/db1/",
            StorageAuth::SharedAccessSignature(token),
            "SQL_Latin1_General_CP1_CI_AS",
        )
        .expect("valid start");
        let req = op.into_request(&base());
        assert_eq!(req.method(), Method::Put);
        assert_eq!(
            req.url().as_str(),
            "https://management.azure.com/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi/databases/db1?api-version=2025-01-01"
        );
        assert_eq!(
            body_json(&req),
            json!({"location":"westeurope","properties":{
                "createMode":"RestoreExternalBackup",
                "storageContainerUri":"https://acct.blob.core.windows.net/backups-c/db1",
                "storageContainerIdentity":"SharedAccessSignature",
                "storageContainerSasToken":"sv=2022-11-02&sp=rl&sig=abc%3D",
                "collation":"SQL_Latin1_General_CP1_CI_AS",
                "autoCompleteRestore":false}})
        );
        assert!(
            !format!("{op:?}").contains("sig=abc"),
            "debug must redact the token"
        );
    }

    #[test]
    fn start_with_managed_identity_has_no_token() {
        let op = StartRestore::new(
            db(),
            "westeurope",
            "https://acct.blob.core.windows.net/c/db1",
            StorageAuth::ManagedIdentity,
            "Latin1_General_100_CI_AS",
        )
        .expect("valid start");
        let body = body_json(&op.into_request(&base()));
        assert_eq!(
            body["properties"]["storageContainerIdentity"],
            "ManagedIdentity"
        );
        assert!(body["properties"].get("storageContainerSasToken").is_none());
    }

    #[test]
    fn start_refuses_what_lrs_refuses() {
        let cases = [
            (
                "https://a.blob.core.windows.net/c/db1?sv=1&sig=x",
                "carries a query",
            ),
            (
                "https://a.blob.core.windows.net/c",
                "<container>/<database folder>",
            ),
            ("http://a.blob.core.windows.net/c/db1", "must use https"),
            ("not a url", "not a url"),
        ];
        for (uri, why) in cases {
            let err = StartRestore::new(db(), "x", uri, StorageAuth::ManagedIdentity, "c")
                .expect_err("refused");
            assert!(err.to_string().contains(why), "{uri}: {err}");
        }
        assert!(
            StartRestore::new(
                db(),
                "x",
                "http://127.0.0.1:10000/devstoreaccount1/c/db1",
                StorageAuth::ManagedIdentity,
                "c"
            )
            .is_ok(),
            "loopback emulators may use http"
        );
        let err = StartRestore::new(
            db(),
            " ",
            "https://a/c/d",
            StorageAuth::ManagedIdentity,
            "c",
        )
        .expect_err("empty location");
        assert!(err.to_string().contains("location"));
    }

    #[test]
    fn sas_token_checks_permissions_and_never_echoes_the_secret() {
        let err = SasToken::new("sv=1&sp=rwl&sig=SECRET").expect_err("write permission");
        assert!(err.to_string().contains("read and list only"));
        assert!(!err.to_string().contains("SECRET"));
        let err = SasToken::new("si=policy&sig=SECRET").expect_err("stored policy");
        assert!(err.to_string().contains("stored access policy"));
        assert!(SasToken::new("?").is_err());
        assert!(SasToken::new("https://a/c?sig=x").is_err());
        assert_eq!(
            SasToken::new(" ?sp=rl&sig=x ").map(|t| t.0),
            Ok("sp=rl&sig=x".into())
        );
    }

    #[test]
    fn start_answers_map_to_operations() {
        let h = headers(&[
            ("location", "https://m/op/1?api-version=2025-01-01"),
            (
                "azure-asyncoperation",
                "https://m/aop/1?api-version=2025-01-01",
            ),
            ("retry-after", "7"),
        ]);
        let got = StartRestore::parse_response(202, &h, b"").expect("accepted");
        assert_eq!(
            got,
            Accepted::Running(LongRunning {
                poll: PollKind::AsyncOperation(
                    Url::parse("https://m/aop/1?api-version=2025-01-01").expect("static")
                ),
                retry_after_secs: Some(7),
            })
        );
        let h = headers(&[("location", "https://m/op/1")]);
        let got = StartRestore::parse_response(202, &h, b"").expect("accepted");
        assert!(matches!(
            got,
            Accepted::Running(LongRunning {
                poll: PollKind::Location(_),
                retry_after_secs: None
            })
        ));
        assert_eq!(
            StartRestore::parse_response(201, &Headers::new(), b"{}"),
            Ok(Accepted::Done)
        );
        let err = StartRestore::parse_response(202, &Headers::new(), b"").expect_err("no poll url");
        assert!(matches!(err, Error::Decode { .. }));
        let err = StartRestore::parse_response(202, &headers(&[("location", "/relative")]), b"")
            .expect_err("relative url");
        assert!(err.to_string().contains("header location"));
    }

    #[test]
    fn error_answers_become_typed_errors() {
        let h = headers(&[("x-ms-request-id", "req-1")]);
        let body = br#"{"error":{"code":"ManagedDatabaseNameInUse","message":"Database 'db1' already exists."}}"#;
        let err = StartRestore::parse_response(400, &h, body).expect_err("error status");
        assert!(err.is_name_in_use());
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.request_id(), Some("req-1"));
        assert_eq!(err.message(), Some("Database 'db1' already exists."));

        let err = GetDatabase::parse_response(503, &Headers::new(), b"").expect_err("error");
        assert_eq!(err.code(), Some("ServiceUnavailable"));
        assert!(err.is_retryable());

        let err = GetDatabase::parse_response(500, &Headers::new(), b"<html>oops</html>")
            .expect_err("error");
        assert_eq!(err.message(), Some("<html>oops</html>"));
    }

    #[test]
    fn complete_builds_its_body_and_checks_the_name() {
        let op = CompleteRestore::new(db(), "db1_tail.trn").expect("valid");
        let req = op.into_request(&base());
        assert_eq!(req.method(), Method::Post);
        assert!(req.url().path().ends_with("/databases/db1/completeRestore"));
        assert_eq!(body_json(&req), json!({"lastBackupName":"db1_tail.trn"}));
        for bad in ["", "a\nb", "tail-é.trn"] {
            assert!(CompleteRestore::new(db(), bad).is_err(), "{bad:?}");
        }
        let err = CompleteRestore::parse_response(
            400,
            &Headers::new(),
            br#"{"error":{"code":"RequiredBackupIsNotLastRestored","message":"no"}}"#,
        )
        .expect_err("refused");
        assert!(err.is_not_last_restored());
        assert_eq!(
            CompleteRestore::parse_response(200, &Headers::new(), b""),
            Ok(Accepted::Done)
        );
    }

    #[test]
    fn restore_details_decode_errors_carry_the_json_path() {
        let err = GetRestoreDetails::parse_response(
            200,
            &Headers::new(),
            br#"{"properties":{"logBackupSets":[{"status":"Queued","firstStripeName":7}]}}"#,
        )
        .expect_err("wrong type");
        match err {
            Error::Decode { path, .. } => {
                assert_eq!(path, "properties.logBackupSets[0].firstStripeName")
            }
            other => panic!("unexpected {other:?}"),
        }
        let d = GetRestoreDetails::parse_response(
            200,
            &Headers::new(),
            br#"{"properties":{"logBackupSets":[{"status":"Queued","firstStripeName":"a.trn"}]}}"#,
        )
        .expect("valid");
        assert_eq!(d.log_backup_sets[0].status, SetStatus::Queued);
        let req = GetRestoreDetails { database: db() }.into_request(&base());
        assert!(
            req.url()
                .path()
                .ends_with("/databases/db1/restoreDetails/Default")
        );
    }

    #[test]
    fn hostile_bodies_are_errors_not_panics() {
        let bodies: [&[u8]; 6] = [
            b"",
            b"{",
            b"\xff\xfe\x00garbage",
            b"[]",
            b"{\"properties\": 5}",
            b"{\"properties\":{\"fullBackupSets\":[1,2]}}",
        ];
        for body in bodies {
            let err = GetRestoreDetails::parse_response(200, &Headers::new(), body)
                .expect_err("not a restoreDetails body");
            assert!(matches!(err, Error::Decode { .. }), "{body:?}: {err:?}");
        }
        for body in &bodies[..5] {
            assert!(
                GetDatabase::parse_response(200, &Headers::new(), body).is_err(),
                "{body:?}"
            );
        }
        let op = PollOperation {
            poll: PollKind::AsyncOperation(Url::parse("https://m/aop/1").expect("static")),
        };
        assert!(
            op.parse_response(200, &Headers::new(), b"not json")
                .is_err()
        );
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(
            retry_after(&h),
            None,
            "an http date falls back to the default interval"
        );
        let h = headers(&[("retry-after", "-5")]);
        assert_eq!(retry_after(&h), None);
        let err = GetDatabase::parse_response(404, &Headers::new(), b"{\"error\":{\"code\":null}}")
            .expect_err("404");
        assert_eq!(err.code(), Some("NotFound"));
    }

    #[test]
    fn database_status_is_read() {
        let d = GetDatabase::parse_response(
            200,
            &Headers::new(),
            br#"{"id":"/x","name":"db1","location":"westeurope","properties":{"status":"Restoring","collation":"c"}}"#,
        )
        .expect("valid");
        assert_eq!(d.status(), DatabaseStatus::Restoring);
        let mi = GetManagedInstance::parse_response(
            200,
            &Headers::new(),
            br#"{"location":"northeurope"}"#,
        )
        .expect("valid");
        assert_eq!(mi.location, "northeurope");
        let err = GetManagedInstance::parse_response(200, &Headers::new(), br#"{"name":"x"}"#)
            .expect_err("no location");
        assert!(matches!(err, Error::Decode { .. }));
    }

    #[test]
    fn instance_facts_parse_from_the_spec_shape() {
        let body = br#"{"location":"westeurope","sku":{"name":"GP_Gen5","tier":"GeneralPurpose","family":"Gen5","capacity":8},
            "properties":{"state":"Ready","vCores":8,"storageSizeInGB":256,"databaseFormat":"SQLServer2022",
            "isGeneralPurposeV2":true,"maintenanceConfigurationId":"/subscriptions/s/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/SQL_Default"}}"#;
        let mi = GetManagedInstance::parse_response(200, &Headers::new(), body).expect("valid");
        let sku = mi.sku.expect("sku");
        assert_eq!(sku.tier.as_deref(), Some("GeneralPurpose"));
        assert_eq!(mi.properties.v_cores, Some(8));
        assert_eq!(mi.properties.storage_size_in_gb, Some(256));
        assert_eq!(
            mi.properties.database_format.as_deref(),
            Some("SQLServer2022")
        );
        assert_eq!(mi.properties.is_general_purpose_v2, Some(true));
        assert_eq!(mi.properties.state.as_deref(), Some("Ready"));
    }

    #[test]
    fn database_list_pages_and_refuses_a_foreign_next_link() {
        let instance = InstanceId::new("sub", "rg", "mi").expect("valid");
        let first = ListDatabases {
            instance: instance.clone(),
            next_link: None,
        };
        let request = first.into_request(&base()).expect("first page");
        assert_eq!(
            request.url().as_str(),
            "https://management.azure.com/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi/databases?api-version=2025-01-01"
        );
        let page = ListDatabases::parse_response(
            200,
            &Headers::new(),
            br#"{"value":[{"name":"a","properties":{"status":"Online"}}],"nextLink":"https://management.azure.com/next?page=2"}"#,
        )
        .expect("a page");
        assert_eq!(page.value.len(), 1);
        assert!(page.next_link.is_some());
        let foreign = ListDatabases {
            instance,
            next_link: Some(Url::parse("https://evil.example/next").expect("static")),
        };
        assert!(matches!(
            foreign.into_request(&base()),
            Err(Error::InvalidInput { .. })
        ));
    }

    #[test]
    fn storage_used_reads_the_newest_point() {
        let op = GetStorageUsed {
            instance: InstanceId::new("sub", "rg", "mi").expect("valid"),
        };
        let url = op.into_request(&base()).url().clone();
        assert!(
            url.path()
                .ends_with("/managedInstances/mi/providers/Microsoft.Insights/metrics")
        );
        assert!(
            url.query()
                .unwrap_or_default()
                .contains("metricnames=storage_space_used_mb")
        );
        let body = br#"{"value":[{"name":{"value":"storage_space_used_mb"},"timeseries":[{"data":[
            {"timeStamp":"2026-01-01T00:00:00Z","average":100.0},{"timeStamp":"2026-01-01T00:05:00Z","maximum":2048.4},
            {"timeStamp":"2026-01-01T00:10:00Z"}]}]}]}"#;
        assert_eq!(
            GetStorageUsed::parse_response(200, &Headers::new(), body).expect("valid"),
            Some(2049)
        );
        assert_eq!(
            GetStorageUsed::parse_response(200, &Headers::new(), br#"{"value":[]}"#)
                .expect("valid"),
            None
        );
        assert!(
            GetStorageUsed::parse_response(
                403,
                &Headers::new(),
                br#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn polls_follow_both_kinds_of_operation() {
        let aop = PollOperation {
            poll: PollKind::AsyncOperation(Url::parse("https://m/aop/1").expect("static")),
        };
        let h = headers(&[("retry-after", "3")]);
        assert_eq!(
            aop.parse_response(200, &h, br#"{"status":"InProgress"}"#),
            Ok(OperationStatus::InProgress {
                retry_after_secs: Some(3),
                next: None
            })
        );
        assert_eq!(
            aop.parse_response(200, &h, br#"{"status":"Succeeded"}"#),
            Ok(OperationStatus::Succeeded)
        );
        let err = aop
            .parse_response(200, &h, br#"{"status":"Failed","error":{"code":"BrokenRestorePlanNoFullBackup","message":"m"}}"#)
            .expect_err("failed op");
        assert!(err.is_broken_chain());
        assert!(
            aop.parse_response(200, &h, br#"{"status":"Canceled"}"#)
                .is_err(),
            "canceled is a failure"
        );
        let loc = PollOperation {
            poll: PollKind::Location(Url::parse("https://m/op/1").expect("static")),
        };
        let h = headers(&[("location", "https://m/op/2")]);
        assert_eq!(
            loc.parse_response(202, &h, b""),
            Ok(OperationStatus::InProgress {
                retry_after_secs: None,
                next: Some(Url::parse("https://m/op/2").expect("static"))
            })
        );
        assert_eq!(
            loc.parse_response(204, &Headers::new(), b""),
            Ok(OperationStatus::Succeeded)
        );
        assert!(loc.parse_response(500, &Headers::new(), b"").is_err());
    }

    #[test]
    fn polling_urls_round_trip_through_the_state_document() {
        for poll in [
            PollKind::AsyncOperation(
                Url::parse("https://m/aop/1?api-version=2025-01-01").expect("static"),
            ),
            PollKind::Location(
                Url::parse("https://m/op/1?api-version=2025-01-01").expect("static"),
            ),
        ] {
            let op = LongRunning {
                poll,
                retry_after_secs: Some(3),
            };
            let back = LongRunning::from_stored(&op.to_stored()).expect("round trip");
            assert_eq!(back.poll, op.poll);
        }
        assert!(LongRunning::from_stored("location not-a-url").is_err());
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["127.0.0.1", "localhost", "[::1]", "127.1.2.3"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.1", "management.azure.com", "localhost.evil.com"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
