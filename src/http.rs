//! The HTTP client shared by the storage clients, the ARM client and the managed identity
//! credential. Building a client loads the platform's root certificates (every file in
//! `/etc/ssl/certs` on Linux), and three builds were most of the handler's cold start; one client
//! also means one connection pool.
//!
//! Shared per tokio runtime, never across runtimes: a pooled connection is a task of the runtime
//! that opened it, and a client used from a second runtime (tests run one each, in one process)
//! can pick a connection whose runtime is gone and fail with a network error.

use std::sync::{Arc, Mutex};

use azure_core::http::{HttpClient, HttpClientOptions, Transport, new_http_client};
use tokio::runtime::{Handle, Id};

/// A client for the current runtime as a transport for an SDK client's options.
///
/// Automatic decompression is off: ranged reads of backups must see the stored bytes, not a
/// decompressed body, and ARM answers are small JSON documents.
pub fn transport() -> Transport {
    /// The last runtime's client: the binary runs one runtime, so this is its only entry.
    static LAST: Mutex<Option<(Id, Arc<dyn HttpClient>)>> = Mutex::new(None);
    let build = || {
        new_http_client(Some(HttpClientOptions {
            automatic_decompression: false,
        }))
    };
    let Ok(runtime) = Handle::try_current().map(|h| h.id()) else {
        return Transport::new(build());
    };
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let client = match &*last {
        Some((id, client)) if *id == runtime => client.clone(),
        _ => {
            let client = build();
            *last = Some((runtime, client.clone()));
            client
        }
    };
    Transport::new(client)
}
