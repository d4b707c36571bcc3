//! The storage traits on Azure Blob Storage through the official SDK (`azure_storage_blob` 1.1,
//! `azure_identity` 1.0). Azurite in tests goes through exactly this code.
//!
//! Authentication: a service URL that carries a SAS query string is used as is, with no token
//! credential (Azurite, or a team that prefers SAS). Otherwise a token credential: the managed
//! identity on Azure (user-assigned when `AZURE_CLIENT_ID` is set), the developer tools (Azure CLI,
//! azd) locally. See [`credential_for`].
//!
//! Pitfalls handled here (see rust-stack.md): a trailing `/` on the service URL would make
//! `//container`; a conditional write fails with 409 or 412; a ranged read's size comes from
//! `Content-Range`; a range that starts past the end is a 416, turned into an empty read. Blob URLs
//! are built segment by segment so the `/` inside a blob name stays a `/`.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZero;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::{ClientOptions, StatusCode};
use azure_identity::{
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};
use azure_storage_blob::models::{
    AppendBlobClientCreateOptions, BlobClientDownloadOptions, BlobClientGetPropertiesResultHeaders,
    BlobClientUploadOptions, BlobContainerClientListBlobsOptions, BlobDownloadProperties,
    BlobType as SdkBlobType, HttpRange, ListBlobsIncludeItem, PageBlobClientCreateOptions,
};
// Response header accessors (`.etag()`), one trait per operation.
use azure_storage_blob::models::{
    AppendBlobClientAppendBlockResultHeaders as _, AppendBlobClientCreateResultHeaders as _,
    PageBlobClientCreateResultHeaders as _, PageBlobClientUploadPagesResultHeaders as _,
};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions, StorageError,
};
use bytes::Bytes;
use futures::TryStreamExt as _;
use time::OffsetDateTime;
use tracing::field::Empty;
use url::Url;

use super::sas::{Redacted, strip_query};
use super::{
    BlobItem, BlobStore, BlobType, BlobWriter, ETag, Error, Precondition, ServiceDetail,
    StateStore, check_key, split_name,
};

/// The token credential for this environment: the managed identity where one is offered (Azure
/// Functions and App Service set `IDENTITY_ENDPOINT`; `AZURE_CLIENT_ID` names a user-assigned
/// identity, by client id since `ResourceId` is refused), else the developer tools credential.
///
/// # Errors
/// [`Error::Credential`] if the credential cannot be built.
pub fn credential_from_env() -> Result<Arc<dyn TokenCredential>, Error> {
    let client_id = std::env::var("AZURE_CLIENT_ID")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let on_azure = std::env::var_os("IDENTITY_ENDPOINT").is_some()
        || std::env::var_os("MSI_ENDPOINT").is_some()
        || client_id.is_some();
    if on_azure {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(UserAssignedId::ClientId),
            client_options: ClientOptions {
                transport: Some(crate::http::transport()),
                ..ClientOptions::default()
            },
        };
        let credential = ManagedIdentityCredential::new(Some(options))
            .map_err(|e| Error::credential("build", "managed identity", &e.to_string()))?;
        Ok(credential)
    } else {
        let credential = DeveloperToolsCredential::new(None)
            .map_err(|e| Error::credential("build", "developer tools", &e.to_string()))?;
        Ok(credential)
    }
}

/// `None` if `service_url` carries a SAS (it authenticates every request), else the credential
/// from [`credential_from_env`].
///
/// # Errors
/// [`Error::Invalid`] for a URL that does not parse; [`Error::Credential`].
pub fn credential_for(service_url: &str) -> Result<Option<Arc<dyn TokenCredential>>, Error> {
    if parse_service_url(service_url)?
        .query()
        .is_some_and(|q| !q.is_empty())
    {
        Ok(None)
    } else {
        credential_from_env().map(Some)
    }
}

fn parse_service_url(service_url: &str) -> Result<Url, Error> {
    let mut url = Url::parse(service_url.trim()).map_err(|e| {
        Error::invalid(&format!(
            "storage account url {} is not a url: {e}",
            Redacted(service_url)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(Error::invalid(&format!(
            "storage account url {} must be an http(s) blob service url",
            Redacted(service_url)
        )));
    }
    // `https://acct.blob.core.windows.net/` and Azurite's `.../devstoreaccount1/` would
    // otherwise become `//container`.
    if url.path().len() > 1 && url.path().ends_with('/') {
        let trimmed = url.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
    }
    url.set_fragment(None);
    Ok(url)
}

/// One storage account: its URL (possibly with a SAS), the credential, and one shared HTTP
/// client so every blob client reuses the same connection pool.
#[derive(Clone)]
struct Account {
    url: Url,
    credential: Option<Arc<dyn TokenCredential>>,
    options: ClientOptions,
}

impl Account {
    fn new(
        service_url: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        options: Option<ClientOptions>,
    ) -> Result<Self, Error> {
        let url = parse_service_url(service_url)?;
        if credential.is_some() && url.scheme() != "https" {
            return Err(Error::invalid(&format!(
                "storage account url {} must use https with a token credential (use a sas for http)",
                Redacted(service_url)
            )));
        }
        let mut options = options.unwrap_or_default();
        if options.transport.is_none() {
            options.transport = Some(crate::http::transport());
        }
        Ok(Self {
            url,
            credential,
            options,
        })
    }

    /// `<service>/<container>/<path segments>`, keeping the SAS query if any.
    fn resource_url(&self, container: &str, path: &str) -> Url {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(container);
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    fn container(&self, container: &str) -> Result<BlobContainerClient, Error> {
        let options = BlobContainerClientOptions {
            client_options: self.options.clone(),
            ..Default::default()
        };
        BlobContainerClient::new(
            self.resource_url(container, ""),
            self.credential.clone(),
            Some(options),
        )
        .map_err(|e| map_err(e, "connect", container))
    }

    fn blob(&self, container: &str, path: &str) -> Result<BlobClient, Error> {
        let options = BlobClientOptions {
            client_options: self.options.clone(),
            ..Default::default()
        };
        BlobClient::new(
            self.resource_url(container, path),
            self.credential.clone(),
            Some(options),
        )
        .map_err(|e| map_err(e, "connect", &format!("{container}/{path}")))
    }

    /// Every blob under `prefix` in `container`, with metadata.
    async fn list(
        &self,
        container: &str,
        prefix: &str,
    ) -> Result<Vec<azure_storage_blob::models::BlobItem>, Error> {
        let client = self.container(container)?;
        let options = BlobContainerClientListBlobsOptions {
            include: Some(vec![ListBlobsIncludeItem::Metadata]),
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            ..Default::default()
        };
        let name = format!("{container}/{prefix}");
        let mut pages = client
            .list_blobs(Some(options))
            .map_err(|e| map_err(e, "list", &name))?
            .into_pages();
        let mut items = Vec::new();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| map_err(e, "list", &name))?
        {
            let page = page.into_model().map_err(|e| map_err(e, "list", &name))?;
            items.extend(page.blob_items);
        }
        Ok(items)
    }

    /// Download up to `len` bytes from `offset` in one request: the bytes, the blob's total
    /// size, its properties (ETag, type, metadata: the answer's headers).
    async fn download(
        &self,
        container: &str,
        path: &str,
        offset: u64,
        len: u64,
        if_match: Option<&ETag>,
    ) -> Result<(Bytes, u64, BlobDownloadProperties), Error> {
        let name = format!("{container}/{path}");
        let client = self.blob(container, path)?;
        // One request: the partition is as large as the range (capped so offset + len fits).
        let len = len.min(u64::MAX - offset).min(usize::MAX as u64);
        let partition = NonZero::new(usize::try_from(len).unwrap_or(usize::MAX))
            .ok_or_else(|| Error::invalid("a download needs a non-empty range"))?;
        let options = BlobClientDownloadOptions {
            range: Some(HttpRange::new(offset, len)),
            parallel: Some(NonZero::<usize>::MIN),
            partition_size: Some(partition),
            if_match: if_match.map(|etag| etag.0.as_str().into()),
            ..Default::default()
        };
        let result = client.download(Some(options)).await.map_err(|e| {
            let e = map_err(e, "read", &name);
            match e.status() {
                // If-Match failed: the blob changed since its ETag was taken.
                Some(412) => Error::conflict(&name, e.detail().cloned()),
                _ => e,
            }
        })?;
        let total = content_range_total(&result.headers).or(result.properties.content_length);
        let properties = result.properties;
        let bytes = result
            .body
            .collect()
            .await
            .map_err(|e| map_err(e, "read", &name))?;
        let total = total.ok_or_else(|| {
            Error::invalid(&format!(
                "read {name}: the answer has no content-range or length"
            ))
        })?;
        Ok((bytes, total, properties))
    }

    async fn properties(&self, name: &str, container: &str, path: &str) -> Result<BlobItem, Error> {
        let response = self
            .blob(container, path)?
            .get_properties(None)
            .await
            .map_err(|e| map_err(e, "properties", name))?;
        let bad = |e: azure_core::Error| map_err(e, "properties", name);
        let size = response.content_length().map_err(bad)?;
        let etag = response.etag().map_err(bad)?;
        let last_modified = response.last_modified().map_err(bad)?;
        let blob_type = response.blob_type().map_err(bad)?;
        let metadata = response.metadata().map_err(bad)?;
        item_from_parts(name, size, etag, last_modified, blob_type, metadata)
    }
}

/// Our ETag from the SDK's: always in the quoted form response headers use, since listings
/// give it bare (`0x8DC...`) and headers quoted (`"0x8DC..."`), and `If-Match` takes the quoted form.
fn etag_of(etag: &azure_core::http::Etag) -> ETag {
    let raw = etag.to_string();
    if raw.starts_with('"') || raw.starts_with("W/") {
        ETag(raw)
    } else {
        ETag(format!("\"{raw}\""))
    }
}

/// The total size from `Content-Range: bytes 0-99/1234`.
fn content_range_total(headers: &Headers) -> Option<u64> {
    headers
        .get_optional_str(&HeaderName::from_static("content-range"))
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, total)| total.trim().parse().ok())
}

fn convert_type(t: Option<SdkBlobType>) -> BlobType {
    match t {
        Some(SdkBlobType::PageBlob) => BlobType::Page,
        Some(SdkBlobType::AppendBlob) => BlobType::Append,
        _ => BlobType::Block,
    }
}

fn item_from_parts(
    name: &str,
    size: Option<u64>,
    etag: Option<azure_core::http::Etag>,
    last_modified: Option<OffsetDateTime>,
    blob_type: Option<SdkBlobType>,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> Result<BlobItem, Error> {
    let missing = |what: &str| Error::invalid(&format!("blob {name}: the service sent no {what}"));
    Ok(BlobItem {
        name: name.to_owned(),
        size: size.ok_or_else(|| missing("size"))?,
        last_modified: last_modified.ok_or_else(|| missing("last-modified"))?,
        etag: etag_of(&etag.ok_or_else(|| missing("etag"))?),
        blob_type: convert_type(blob_type),
        metadata: metadata.into_iter().collect(),
    })
}

/// Turn an SDK error into a [`storage::Error`](Error), keeping status, code and request id and
/// redacting every text (a transport error's text contains the request URL, SAS included).
fn map_err(err: azure_core::Error, operation: &'static str, name: &str) -> Error {
    match err.kind() {
        ErrorKind::HttpResponse { status, .. } => {
            let status = u16::from(*status);
            // The span of the storage call this error ends, if it declared the field.
            tracing::Span::current().record("status", status);
            let detail = match StorageError::try_from(err) {
                Ok(e) => ServiceDetail::new(
                    status,
                    e.error_code.as_ref().map(|c| c.to_string()).as_deref(),
                    e.request_id.as_deref(),
                    e.message.as_deref(),
                ),
                Err(_) => ServiceDetail::new(status, None, None, None),
            };
            if status == 404 {
                Error::not_found(name, Some(detail))
            } else {
                Error::service(operation, name, detail)
            }
        }
        ErrorKind::Connection | ErrorKind::Io => Error::network(operation, name, &err.to_string()),
        ErrorKind::Credential => Error::credential(operation, name, &err.to_string()),
        _ => Error::invalid(&format!("{operation} {name} failed: {err}")),
    }
}

/// Backup blobs in an Azure storage account. Names are `<container>/<path>`.
#[derive(Clone)]
pub struct AzureBlobStore {
    account: Account,
}

impl std::fmt::Debug for AzureBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlobStore")
            .field("url", &Redacted(self.account.url.as_str()))
            .field("token_credential", &self.account.credential.is_some())
            .finish()
    }
}

impl AzureBlobStore {
    /// A store on the blob service at `service_url` (e.g. `https://acct.blob.core.windows.net`, or
    /// Azurite's `http://127.0.0.1:10000/devstoreaccount1?<sas>`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad URL, or a token credential with `http://`.
    pub fn new(
        service_url: &str,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Result<Self, Error> {
        Self::with_options(service_url, credential, None)
    }

    /// Like [`new`](Self::new), with SDK client options (retry policy, transport).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_options(
        service_url: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        options: Option<ClientOptions>,
    ) -> Result<Self, Error> {
        Ok(Self {
            account: Account::new(service_url, credential, options)?,
        })
    }

    /// A store authenticated the way [`credential_for`] decides.
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`Error::Credential`].
    pub fn from_url(service_url: &str) -> Result<Self, Error> {
        Self::new(service_url, credential_for(service_url)?)
    }

    /// The service URL without its query string.
    pub fn service_url(&self) -> Url {
        strip_query(&self.account.url)
    }

    async fn read(
        &self,
        name: &str,
        offset: u64,
        len: u64,
        if_match: Option<&ETag>,
    ) -> Result<(Bytes, u64), Error> {
        let (container, path) = split_name(name, false)?;
        // Nothing can be read at or past u64::MAX; the answer is only the size.
        let len = len.min(u64::MAX - offset);
        let size_of = || async {
            let item = self.account.properties(name, container, path).await?;
            match if_match {
                Some(etag) if item.etag != *etag => Err(Error::conflict(name, None)),
                _ => Ok((Bytes::new(), item.size)),
            }
        };
        if len == 0 {
            return size_of().await;
        }
        match self
            .account
            .download(container, path, offset, len, if_match)
            .await
        {
            Ok((bytes, total, _)) => Ok((bytes, total)),
            // A range starting at or past the end: nothing there, which is not an error.
            Err(e) if e.status() == Some(u16::from(StatusCode::RequestedRangeNotSatisfiable)) => {
                size_of().await
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    #[tracing::instrument(level = "debug", name = "blob.list", skip_all, fields(prefix = %prefix, status = Empty))]
    async fn list(&self, prefix: &str) -> Result<Vec<BlobItem>, Error> {
        let (container, path_prefix) = split_name(prefix, true)?;
        let mut items = Vec::new();
        for raw in self.account.list(container, path_prefix).await? {
            let Some(path) = raw.name else { continue };
            let name = format!("{container}/{path}");
            let props = raw.properties.unwrap_or_default();
            let metadata = raw
                .metadata
                .and_then(|m| m.values)
                .unwrap_or_default()
                .into_iter();
            items.push(item_from_parts(
                &name,
                props.content_length,
                props.etag,
                props.last_modified,
                props.blob_type,
                metadata,
            )?);
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }

    #[tracing::instrument(level = "debug", name = "blob.properties", skip_all, fields(blob = %name, status = Empty))]
    async fn properties(&self, name: &str) -> Result<BlobItem, Error> {
        let (container, path) = split_name(name, false)?;
        self.account.properties(name, container, path).await
    }

    #[tracing::instrument(level = "debug", name = "blob.read_range", skip_all, fields(blob = %name, offset, len, status = Empty))]
    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<(Bytes, u64), Error> {
        self.read(name, offset, len, None).await
    }

    #[tracing::instrument(level = "debug", name = "blob.read_head", skip_all, fields(blob = %name, len, status = Empty))]
    async fn read_head(
        &self,
        name: &str,
        len: u64,
        etag: Option<&ETag>,
    ) -> Result<(Bytes, BlobItem), Error> {
        let (container, path) = split_name(name, false)?;
        let properties = || async {
            let item = self.account.properties(name, container, path).await?;
            match etag {
                Some(etag) if item.etag != *etag => Err(Error::conflict(name, None)),
                _ => Ok((Bytes::new(), item)),
            }
        };
        if len == 0 {
            return properties().await;
        }
        match self.account.download(container, path, 0, len, etag).await {
            Ok((bytes, total, p)) => {
                let item = item_from_parts(
                    name,
                    Some(total),
                    p.etag,
                    p.last_modified,
                    p.blob_type,
                    p.metadata,
                )?;
                Ok((bytes, item))
            }
            // An empty blob has no first byte to read.
            Err(e) if e.status() == Some(u16::from(StatusCode::RequestedRangeNotSatisfiable)) => {
                properties().await
            }
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(level = "debug", name = "blob.read_range", skip_all, fields(blob = %name, offset, len, status = Empty))]
    async fn read_range_if_match(
        &self,
        name: &str,
        offset: u64,
        len: u64,
        etag: &ETag,
    ) -> Result<(Bytes, u64), Error> {
        self.read(name, offset, len, Some(etag)).await
    }

    fn url(&self, name: &str) -> Result<Url, Error> {
        let (container, path) = split_name(name, true)?;
        Ok(strip_query(&self.account.resource_url(container, path)))
    }
}

#[async_trait]
impl BlobWriter for AzureBlobStore {
    async fn ensure_container(&self, container: &str) -> Result<(), Error> {
        ensure_container(&self.account, container).await
    }

    async fn upload(
        &self,
        name: &str,
        data: Bytes,
        blob_type: BlobType,
        metadata: &BTreeMap<String, String>,
    ) -> Result<ETag, Error> {
        let (container, path) = split_name(name, false)?;
        let client = self.account.blob(container, path)?;
        let metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
        let metadata = (!metadata.is_empty()).then_some(metadata);
        let len = data.len() as u64;
        let fail = |e| map_err(e, "upload", name);
        let etag = match blob_type {
            BlobType::Block => {
                let options = BlobClientUploadOptions {
                    metadata,
                    ..Default::default()
                };
                client
                    .upload(data.into(), Some(options))
                    .await
                    .map_err(fail)?
                    .etag
            }
            BlobType::Page => {
                if len % 512 != 0 {
                    return Err(Error::invalid(&format!(
                        "page blob {name} must be a multiple of 512 bytes, not {len}"
                    )));
                }
                let page = client.page_blob_client();
                let options = PageBlobClientCreateOptions {
                    metadata,
                    ..Default::default()
                };
                let created = page.create(len, Some(options)).await.map_err(fail)?;
                let mut etag = created.etag().map_err(fail)?;
                // Pages go up in chunks of at most 4 MiB, the service's limit per call.
                const PAGE_CHUNK: usize = 4 * 1024 * 1024;
                let mut offset = 0usize;
                while offset < data.len() {
                    let end = (offset + PAGE_CHUNK).min(data.len());
                    let chunk = data.slice(offset..end);
                    let chunk_len = chunk.len() as u64;
                    let done = page
                        .upload_pages(
                            chunk.into(),
                            chunk_len,
                            HttpRange::new(offset as u64, chunk_len),
                            None,
                        )
                        .await
                        .map_err(fail)?;
                    etag = done.etag().map_err(fail)?;
                    offset = end;
                }
                etag
            }
            BlobType::Append => {
                let append = client.append_blob_client();
                let options = AppendBlobClientCreateOptions {
                    metadata,
                    ..Default::default()
                };
                let created = append.create(Some(options)).await.map_err(fail)?;
                let mut etag = created.etag().map_err(fail)?;
                if !data.is_empty() {
                    let done = append
                        .append_block(data.into(), len, None)
                        .await
                        .map_err(fail)?;
                    etag = done.etag().map_err(fail)?;
                }
                etag
            }
        };
        etag.map(|e| etag_of(&e))
            .ok_or_else(|| Error::invalid(&format!("upload {name}: the service sent no etag")))
    }
}

async fn ensure_container(account: &Account, container: &str) -> Result<(), Error> {
    let (container, path) = split_name(container, true)?;
    if !path.is_empty() {
        return Err(Error::invalid_name(
            container,
            "a container name has no '/'",
        ));
    }
    match account.container(container)?.create(None).await {
        Ok(_) => Ok(()),
        Err(e) => match map_err(e, "create container", container) {
            err if err.status() == Some(409) => Ok(()),
            err => Err(err),
        },
    }
}

/// State documents as blobs in one container (`LRS_STATE_CONTAINER`), with ETag preconditions.
#[derive(Clone)]
pub struct AzureStateStore {
    account: Account,
    container: String,
}

impl std::fmt::Debug for AzureStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureStateStore")
            .field("url", &Redacted(self.account.url.as_str()))
            .field("container", &self.container)
            .field("token_credential", &self.account.credential.is_some())
            .finish()
    }
}

impl AzureStateStore {
    /// A store on `container` of the blob service at `service_url`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad URL, [`Error::InvalidName`] for a bad container name.
    pub fn new(
        service_url: &str,
        container: &str,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Result<Self, Error> {
        Self::with_options(service_url, container, credential, None)
    }

    /// Like [`new`](Self::new), with SDK client options.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_options(
        service_url: &str,
        container: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        options: Option<ClientOptions>,
    ) -> Result<Self, Error> {
        let (name, path) = split_name(container, true)?;
        if !path.is_empty() {
            return Err(Error::invalid_name(
                container,
                "a container name has no '/'",
            ));
        }
        Ok(Self {
            account: Account::new(service_url, credential, options)?,
            container: name.to_owned(),
        })
    }

    /// A store authenticated the way [`credential_for`] decides.
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`Error::Credential`].
    pub fn from_url(service_url: &str, container: &str) -> Result<Self, Error> {
        Self::new(service_url, container, credential_for(service_url)?)
    }

    /// Create the state container if it does not exist (start-up, rehearsals).
    ///
    /// # Errors
    /// Service or network errors.
    pub async fn ensure_container(&self) -> Result<(), Error> {
        ensure_container(&self.account, &self.container).await
    }
}

#[async_trait]
impl StateStore for AzureStateStore {
    #[tracing::instrument(level = "debug", name = "state.get", skip_all, fields(key = %key, status = Empty))]
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ETag)>, Error> {
        check_key(key)?;
        // One byte past the limit: a larger document comes back cut but over it, and the pipeline
        // refuses it without ever holding the whole of it.
        let limit = crate::migration::MAX_STATE_DOCUMENT_BYTES as u64 + 1;
        let download = self
            .account
            .download(&self.container, key, 0, limit, None)
            .await;
        match download {
            Ok((
                bytes,
                _,
                BlobDownloadProperties {
                    etag: Some(etag), ..
                },
            )) => Ok(Some((bytes.to_vec(), etag_of(&etag)))),
            Ok((_, _, _)) => Err(Error::invalid(&format!(
                "get {}/{key}: the service sent no etag",
                self.container
            ))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(level = "debug", name = "state.put", skip_all, fields(key = %key, status = Empty))]
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<ETag, Error> {
        check_key(key)?;
        let name = format!("{}/{key}", self.container);
        let client = self.account.blob(&self.container, key)?;
        let mut options = BlobClientUploadOptions {
            blob_content_type: Some("application/json".to_owned()),
            ..Default::default()
        };
        match &precondition {
            Precondition::IfMatch(etag) => options.if_match = Some(etag.0.as_str().into()),
            Precondition::IfNoneMatch => options = options.if_not_exists(),
        }
        match client
            .upload(Bytes::from(bytes).into(), Some(options))
            .await
        {
            Ok(done) => done
                .etag
                .map(|e| etag_of(&e))
                .ok_or_else(|| Error::invalid(&format!("put {name}: the service sent no etag"))),
            Err(e) => {
                let err = map_err(e, "put", &name);
                match err.status() {
                    // 412 stale If-Match, 409 BlobAlreadyExists on If-None-Match: *, 404 If-Match
                    // on a document deleted since it was read: all "someone else changed it".
                    Some(409 | 412) => Err(Error::conflict(&name, err.detail().cloned())),
                    Some(404) if matches!(precondition, Precondition::IfMatch(_)) => {
                        Err(Error::conflict(&name, err.detail().cloned()))
                    }
                    _ => Err(err),
                }
            }
        }
    }

    #[tracing::instrument(level = "debug", name = "state.list", skip_all, fields(prefix = %prefix, status = Empty))]
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut keys: Vec<String> = self
            .account
            .list(&self.container, prefix)
            .await?
            .into_iter()
            .filter_map(|item| item.name)
            .collect();
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_does_not_double_the_separator() {
        let account = Account::new(
            "http://127.0.0.1:10000/devstoreaccount1/?sv=1&sig=x",
            None,
            None,
        )
        .expect("account");
        let url = account.resource_url("sqlfiles", "db 1/full.bak");
        assert_eq!(url.path(), "/devstoreaccount1/sqlfiles/db%201/full.bak");
        assert_eq!(url.query(), Some("sv=1&sig=x"));
        let root =
            Account::new("https://acct.blob.core.windows.net/", None, None).expect("account");
        assert_eq!(
            root.resource_url("sqlfiles", "db/x").path(),
            "/sqlfiles/db/x"
        );
    }

    #[test]
    fn folder_url_has_no_query() {
        let store =
            AzureBlobStore::new("https://acct.blob.core.windows.net?sp=rl&sig=secret", None)
                .expect("store");
        let url = store.url("sqlfiles/db1/").expect("url");
        assert_eq!(
            url.as_str(),
            "https://acct.blob.core.windows.net/sqlfiles/db1"
        );
        assert_eq!(
            store.service_url().as_str(),
            "https://acct.blob.core.windows.net/"
        );
        assert!(!format!("{store:?}").contains("secret"));
    }

    #[test]
    fn refuses_bad_service_urls_without_showing_the_sas() {
        for bad in [
            "not a url?sig=secret",
            "ftp://host/x?sig=secret",
            "data:text/plain,x?sig=secret",
        ] {
            let err = AzureBlobStore::new(bad, None).expect_err("bad url");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn sas_url_needs_no_credential() {
        let with_sas = credential_for("http://127.0.0.1:10000/devstoreaccount1?sv=1&sig=x");
        assert!(matches!(with_sas, Ok(None)));
    }

    #[test]
    fn reads_total_size_from_content_range() {
        let mut headers = Headers::new();
        headers.insert("content-range", "bytes 0-9/1234");
        assert_eq!(content_range_total(&headers), Some(1234));
        headers.insert("content-range", "bytes */77");
        assert_eq!(content_range_total(&headers), Some(77));
        headers.insert("content-range", "bytes 0-9/*");
        assert_eq!(content_range_total(&headers), None);
    }
}
