//! Storage adapters: backup blobs (listing, properties, ranged reads) and state documents (ETag
//! If-Match), on Azure Blob Storage through the official SDK, or on a local folder for rehearsals.

pub mod file;
