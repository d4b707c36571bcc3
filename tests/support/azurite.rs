//! Azurite (the Azure Storage emulator, pinned in package.json) for integration tests: started once
//! per test binary, reached through the production `AzureBlobStore` / `AzureStateStore` code with
//! an account SAS signed for the well-known `devstoreaccount1`.
//!
//! `AZURITE_BLOB_URL` (e.g. `http://127.0.0.1:10000/devstoreaccount1`) means use that Azurite
//! instead of starting one. Otherwise `node_modules/.bin/azurite-blob` is started on 127.0.0.1
//! with a free port (`npm ci` first if node_modules is missing). A small shell wrapper holds the
//! read end of a pipe from this process: when the test process exits, however it exits, the pipe
//! closes and the wrapper kills Azurite and removes its data folder.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lrs_autopilot::storage::azure::{AzureBlobStore, AzureStateStore};
use lrs_autopilot::storage::sas::{AccountSas, DEVSTORE_KEY};
use lrs_autopilot::storage::{BlobType, BlobWriter, ETag};
use time::OffsetDateTime;

/// A running (or given) Azurite blob endpoint.
pub struct Azurite {
    /// The blob service URL, without a query string, e.g. `http://127.0.0.1:41234/devstoreaccount1`.
    pub url: String,
    /// Kept alive so the wrapper's stdin stays open until the process exits.
    _guard: Mutex<Option<(Child, ChildStdin)>>,
}

static AZURITE: OnceLock<Azurite> = OnceLock::new();

/// The shared Azurite, started on first use. Panics with the reason if it cannot start: an
/// Azurite test cannot run without it, and skipping would hide a broken setup.
pub fn azurite() -> &'static Azurite {
    AZURITE.get_or_init(|| match std::env::var("AZURITE_BLOB_URL") {
        Ok(url) if !url.trim().is_empty() => Azurite {
            url: url.trim().trim_end_matches('/').to_owned(),
            _guard: Mutex::new(None),
        },
        _ => start().unwrap_or_else(|e| panic!("cannot start azurite: {e}")),
    })
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ensure_installed(root: &Path) -> Result<PathBuf, String> {
    let bin = root.join("node_modules/.bin/azurite-blob");
    if bin.exists() {
        return Ok(bin);
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("node_modules is missing and `npm ci` could not run: {e}"))?;
    if !status.success() || !bin.exists() {
        return Err(format!("`npm ci` in {} failed ({status})", root.display()));
    }
    Ok(bin)
}

const WRAPPER: &str = r#"
bin="$1"; dir="$2"
"$bin" --blobHost 127.0.0.1 --blobPort 0 --skipApiVersionCheck --disableTelemetry --silent --location "$dir" >"$dir/azurite.log" 2>&1 &
pid=$!
cat >/dev/null
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

fn start() -> Result<Azurite, String> {
    let root = repo_root();
    let bin = ensure_installed(&root)?;
    let dir = std::env::temp_dir().join(format!(
        "lrs-azurite-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg("azurite-wrapper")
        .arg(&bin)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let stdin = child
        .stdin
        .take()
        .ok_or("no stdin pipe to the azurite wrapper")?;

    // Azurite logs to a file (a pipe would break when this process exits first) and prints
    // "... successfully listens on http://127.0.0.1:<port>" once it is up.
    let log = dir.join("azurite.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .filter(|l| l.contains("listens on http://"))
            .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http://")));
        if let Some(url) = found {
            break url.trim_end_matches('/').to_owned();
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            return Err(format!(
                "azurite did not start within 60 s; its log:\n{text}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let url = format!("{base}/devstoreaccount1");
    wait_until_answering(&base)?;
    Ok(Azurite {
        url,
        _guard: Mutex::new(Some((child, stdin))),
    })
}

fn wait_until_answering(base: &str) -> Result<(), String> {
    let addr = base.trim_start_matches("http://");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("azurite at {base} does not accept connections"))
}

impl Azurite {
    /// A full-access account SAS (blob service) valid for a day.
    pub fn sas(&self) -> String {
        AccountSas::devstore_full_access(OffsetDateTime::now_utc() + time::Duration::days(1))
            .sign(DEVSTORE_KEY)
            .expect("the devstore key is valid base64")
    }

    /// The blob service URL with a full-access SAS: what `LRS_STORAGE_ACCOUNT_URL` is in tests.
    pub fn service_url_with_sas(&self) -> String {
        format!("{}?{}", self.url, self.sas())
    }

    /// A blob store on this Azurite, through the production code path.
    pub fn blob_store(&self) -> AzureBlobStore {
        AzureBlobStore::new(&self.service_url_with_sas(), None).expect("azurite url is valid")
    }

    /// A state store on `container` of this Azurite (create the container first).
    pub fn state_store(&self, container: &str) -> AzureStateStore {
        AzureStateStore::new(&self.service_url_with_sas(), container, None)
            .expect("azurite url is valid")
    }
}

/// A container name no other test in this process uses: `<prefix>-<pid>-<n>`.
pub fn unique_container(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Create a fresh container (`<prefix>-<unique>`) on Azurite; returns its name and the SAS'd
/// service URL.
pub async fn create_container(prefix: &str) -> (String, String) {
    let az = azurite();
    let name = unique_container(prefix);
    az.blob_store()
        .ensure_container(&name)
        .await
        .unwrap_or_else(|e| panic!("create container {name}: {e}"));
    (name, az.service_url_with_sas())
}

/// Upload a local file as a block blob `<container>/<blob_name>` (with metadata); returns its
/// ETag and the SAS'd service URL.
pub async fn upload_file(
    container: &str,
    blob_name: &str,
    path: &Path,
    metadata: &BTreeMap<String, String>,
) -> (ETag, String) {
    let az = azurite();
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let name = format!("{container}/{blob_name}");
    let etag = az
        .blob_store()
        .upload(&name, Bytes::from(data), BlobType::Block, metadata)
        .await
        .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    (etag, az.service_url_with_sas())
}
