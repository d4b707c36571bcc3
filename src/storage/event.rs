//! A storage event as the use cases see it: a `Microsoft.Storage.BlobCreated` event reduced to what
//! the pipeline reads. The shells decode the wire formats into it (`functions::event`, `resync`,
//! rehearsals).

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
