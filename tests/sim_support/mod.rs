//! Helpers for the simulator tests: start the real simulator on 127.0.0.1:0 (in-process, over real
//! HTTP), point the real client at it, and lay out a storage root.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azure_core::http::{FixedRetryOptions, RetryOptions};
use lrs_autopilot::lrs::{
    Auth, DatabaseId, InstanceId, LrsClient, LrsClientOptions, RestoreDetails,
};
use lrs_autopilot::sim::{self, Clock, Faults, SimConfig, SimState, VirtualClock};
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A simulator running on a loopback port, with its virtual clock.
pub struct RunningSim {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The simulator's state (request log, faults).
    pub state: SimState,
    /// The clock it runs on.
    pub clock: Arc<VirtualClock>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Test settings: the short operation model with instant operations, no polling delay.
pub fn config(root: &Path) -> SimConfig {
    let mut config = SimConfig::folder(root);
    config.restore_mbps = 1.0;
    config.operation_secs = Some(0.0);
    config.complete_secs = 5.0;
    config.poll_retry_after_secs = 0;
    config
}

/// Starts the simulator over `config` on a frozen clock.
pub async fn start(config: SimConfig) -> RunningSim {
    let clock = Arc::new(VirtualClock::new(datetime!(2025-06-01 08:00 UTC)));
    let source = sim::open_storage(&config.storage).expect("open the storage");
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let state = SimState::new(config, source, dyn_clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let app = sim::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    RunningSim {
        base: format!("http://{addr}"),
        state,
        clock,
        server,
    }
}

/// A simulator over an empty storage root, and a client for it. Keep the root alive.
pub async fn empty_sim() -> (tempfile::TempDir, RunningSim, LrsClient) {
    let root = tempfile::tempdir().expect("temp dir");
    let sim = start(config(root.path())).await;
    let lrs = client(&sim.base);
    (root, sim, lrs)
}

/// A client with short retry delays (the pipeline still honours Retry-After).
pub fn client(base: &str) -> LrsClient {
    let options = LrsClientOptions {
        retry: RetryOptions::fixed(FixedRetryOptions {
            delay: azure_core::time::Duration::milliseconds(10),
            max_retries: 10,
            max_total_elapsed: azure_core::time::Duration::seconds(30),
        }),
        default_poll_interval: Duration::from_millis(10),
        max_wait: Duration::from_secs(20),
    };
    LrsClient::new(base, Auth::UnauthenticatedLoopback, options).expect("loopback client")
}

/// The instance every test uses.
pub fn instance() -> InstanceId {
    InstanceId::new("00000000-1111-2222-3333-444444444444", "rg-test", "mi-test").expect("valid")
}

/// A database of that instance.
pub fn database(name: &str) -> DatabaseId {
    instance().database(name).expect("valid")
}

/// Copies the files of `from` into `<root>/<container>/<folder>/`, writable.
pub fn copy_folder(from: &Path, root: &Path, container: &str, folder: &str) -> Vec<String> {
    let dest = root.join(container).join(folder);
    std::fs::create_dir_all(&dest).expect("create the database folder");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(from).expect("read the fixture folder") {
        let entry = entry.expect("fixture entry");
        if entry.file_type().expect("file type").is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            std::fs::copy(entry.path(), dest.join(&name)).expect("copy a fixture");
            names.push(name);
        }
    }
    names.sort();
    names
}

/// Writes a file that is not a backup into `<root>/<container>/<folder>/`.
pub fn write_junk(root: &Path, container: &str, folder: &str, name: &str) {
    let dest = root.join(container).join(folder);
    std::fs::create_dir_all(&dest).expect("create the database folder");
    std::fs::write(dest.join(name), b"not a backup at all").expect("write");
}

/// Faults with the given seed and nothing else.
pub fn faults(seed: u64) -> Faults {
    Faults {
        seed,
        ..Faults::default()
    }
}

/// Sends one raw HTTP/1.1 request (for calls the client deliberately lacks, such as DELETE) and
/// returns the status and body.
pub async fn raw(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A server may answer (413) and stop reading before a large body is sent: keep what it said.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// Advances the simulator a second at a time until `done` holds, calling `each` on every
/// restoreDetails seen; bounded, so a stalled restore fails the test instead of hanging it.
pub async fn drive(
    sim: &RunningSim,
    lrs: &LrsClient,
    db: &DatabaseId,
    mut each: impl FnMut(&RestoreDetails),
    done: impl Fn(&RestoreDetails) -> bool,
) -> RestoreDetails {
    for _ in 0..600 {
        let details = lrs.restore_details(db).await.expect("restore details");
        each(&details);
        if done(&details) {
            return details;
        }
        sim.clock.advance(time::Duration::seconds(1));
    }
    panic!("the restore did not finish within 600 simulated seconds");
}

/// Done when `name` is the last restored file and nothing is queued or restoring.
pub fn caught_up_to(name: &'static str) -> impl Fn(&RestoreDetails) -> bool {
    move |d| {
        d.last_restored_file_name.as_deref() == Some(name)
            && d.number_of_files_queued == Some(0)
            && d.number_of_files_restoring == Some(0)
    }
}

/// An answer to [`raw_full`]: status, headers (names in lower case) and body.
pub struct RawAnswer {
    pub status: u16,
    pub headers: std::collections::HashMap<String, String>,
    pub body: String,
}

impl RawAnswer {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `error.code` of an ARM error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Like [`raw`], with the headers.
pub async fn raw_full(base: &str, method: &str, path: &str, body: &str) -> RawAnswer {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawAnswer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The ARM path of a database of [`instance`] (or another instance), with the api-version.
pub fn db_path(instance_name: &str, db: &str) -> String {
    format!(
        "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-test/providers/Microsoft.Sql/managedInstances/{instance_name}/databases/{db}?api-version=2025-01-01"
    )
}

/// A start body (managed identity) for `<container>/<folder>` on a storage account.
pub fn start_body(container: &str, folder: &str) -> String {
    serde_json::json!({
        "location": "westeurope",
        "properties": {
            "createMode": "RestoreExternalBackup",
            "storageContainerUri": format!("https://acct.blob.core.windows.net/{container}/{folder}"),
            "storageContainerIdentity": "ManagedIdentity",
            "collation": "SQL_Latin1_General_CP1_CI_AS",
            "autoCompleteRestore": false,
        }
    })
    .to_string()
}

/// Replaces the simulator's faults over HTTP (`PUT /_sim/faults`), checking it was accepted.
pub async fn put_faults(base: &str, faults: serde_json::Value) {
    let (status, body) = raw(base, "PUT", "/_sim/faults", &faults.to_string()).await;
    assert_eq!(status, 200, "faults refused: {body}");
}

/// The spec's documented `(status, code)` pairs of one operation, read from the spec file's
/// `responses.default.description` lines `* <status> <Code> - <message>`.
pub fn spec_codes(file: &str, operation_id: &str) -> Vec<(u16, String)> {
    let path = specs_dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let spec: serde_json::Value = serde_json::from_str(&text).expect("the spec is json");
    let mut out: Vec<(u16, String)> = Vec::new();
    for methods in spec["paths"].as_object().expect("paths").values() {
        for op in methods.as_object().into_iter().flat_map(|m| m.values()) {
            if op["operationId"] != operation_id {
                continue;
            }
            let description = op["responses"]["default"]["description"]
                .as_str()
                .expect("an error description");
            for line in description.lines() {
                let Some(rest) = line.trim().strip_prefix("* ") else {
                    continue;
                };
                let mut words = rest.split_whitespace();
                let (Some(status), Some(code)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                let pair = (status, code.to_owned());
                if !out.contains(&pair) {
                    out.push(pair);
                }
            }
        }
    }
    assert!(
        !out.is_empty(),
        "{operation_id} documents no error codes in {file}"
    );
    out
}

/// `../shared/specs/azure-sql-2025-01-01`, or `LRS_SPECS` when set.
pub fn specs_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("LRS_SPECS") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs/azure-sql-2025-01-01")
}
