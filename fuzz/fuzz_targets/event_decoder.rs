//! Fuzzes what a Service Bus message goes through before anything is read: the Functions host's
//! invocation envelope, the body encoded once, twice or not at all, the Event Grid / CloudEvents
//! event, and the scope check on the blob URL. None may panic, and a located blob always lies in
//! the configured account and containers (no foreign host is ever contacted).
#![no_main]

// The decoder, compiled from the crate's source as the reader is (see Cargo.toml).
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/functions"]
mod functions {
    pub mod event;
    pub mod protocol;
}

// The decoded event and the scope live below the shells (`src/storage`): those files and the
// redaction the scope check's errors go through.
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/storage"]
mod storage {
    pub mod event;
    pub mod location;
    pub mod sas;
}

use functions::event::parse_event;
use functions::protocol::{Invocation, decode_nested};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use storage::location::StorageScope;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let account = Url::parse("https://acct.blob.core.windows.net/").expect("a valid url");
    let scope = StorageScope::new(&account, vec!["sqlfiles".to_owned(), "more".to_owned()]);
    // The whole request body as the host posts it, or a bare message body.
    let message = match serde_json::from_slice::<Invocation>(data) {
        Ok(invocation) => invocation.binding("message"),
        Err(_) => serde_json::from_slice::<Value>(data)
            .ok()
            .map(decode_nested),
    };
    let Some(message) = message else { return };
    let Ok(event) = parse_event(&message) else {
        return;
    };
    if let Ok(location) = scope.locate(&event.url) {
        assert!(
            scope.containers().contains(&location.container),
            "{location:?}"
        );
        assert!(!location.folder.is_empty(), "{location:?}");
        let folder = scope.folder_url(&location.container, &location.folder);
        assert_eq!(folder.host_str(), account.host_str());
        assert_eq!(folder.scheme(), account.scheme());
        assert!(folder.query().is_none());
    }
});
