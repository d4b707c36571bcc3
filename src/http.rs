//! The process's one HTTP client, shared by the storage clients, the ARM client and the managed
//! identity credential. Building a client loads the platform's root certificates (every file in
//! `/etc/ssl/certs` on Linux), and three builds were most of the handler's cold start; one client
//! also means one connection pool.

use std::sync::{Arc, OnceLock};

use azure_core::http::{HttpClient, HttpClientOptions, Transport, new_http_client};

/// The shared client as a transport for an SDK client's options.
///
/// Automatic decompression is off: ranged reads of backups must see the stored bytes, not a
/// decompressed body, and ARM answers are small JSON documents.
pub fn transport() -> Transport {
    static CLIENT: OnceLock<Arc<dyn HttpClient>> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        new_http_client(Some(HttpClientOptions {
            automatic_decompression: false,
        }))
    });
    Transport::new(client.clone())
}
