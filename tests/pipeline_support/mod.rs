//! The rig for the pipeline's integration tests and its benchmark, over real HTTP:
//! - Azurite (`support::azurite`) with a backups container and a state container, reached through a
//!   SAS'd service URL (what `LRS_STORAGE_ACCOUNT_URL` is);
//! - the LRS simulator in process on 127.0.0.1:0, reading the same Azurite account through
//!   the production Azure blob store on a [`VirtualClock`];
//! - the custom handler: `functions::router` on a real socket, over a pipeline whose clock is the
//!   simulator's clock, or the built binary (`serve`) configured by `LRS_*` variables ([`Serve`]).
//!
//! Events are posted the way the Functions host posts a Service Bus message:
//! `{"Data":{"message": <body>},"Metadata":{...}}`, the body an Event Grid or CloudEvents event,
//! as an object or JSON-encoded once or twice ([`Encoding`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use azure_core::http::{FixedRetryOptions, RetryOptions};
use bytes::Bytes;
use lrs_autopilot::config::StorageIdentity;
use lrs_autopilot::functions::{AppState, router};
use lrs_autopilot::lrs::{Auth, InstanceId, LrsClient, LrsClientOptions, RestoreDetails};
use lrs_autopilot::migration::MigrationState;
use lrs_autopilot::pipeline::{
    ArmLrs, ArmTargets, LrsApi, LrsCallError, OperationState, Pipeline, RestoreView, Settings,
    StartRequest,
};
use lrs_autopilot::sim::{self, Clock, Faults, LoggedRequest, SimConfig, SimState, VirtualClock};
use lrs_autopilot::storage::azure::{AzureBlobStore, AzureStateStore};
use lrs_autopilot::storage::location::StorageScope;
use lrs_autopilot::storage::sas::{AccountSas, DEVSTORE_KEY};
use lrs_autopilot::storage::{
    self, BlobItem, BlobStore, BlobType, BlobWriter, ETag, Precondition, StateStore,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use crate::support::azurite;

/// The managed instance every rig drives.
pub const SUBSCRIPTION: &str = "00000000-1111-2222-3333-444444444444";
/// Its resource group.
pub const RESOURCE_GROUP: &str = "rg-pipeline";
/// Its name.
pub const INSTANCE: &str = "mi-pipeline";
/// Simulated time per timer invocation (the default `LRS_TIMER_SCHEDULE`).
pub const TICK: time::Duration = time::Duration::seconds(30);

/// The `RestoreTimeClean` chain in backup order: full, three logs, a differential, three logs.
pub const CLEAN: [&str; 8] = [
    "RestoreTimeClean.bak",
    "RestoreTimeClean_1.trn",
    "RestoreTimeClean_2.trn",
    "RestoreTimeClean_3.trn",
    "RestoreTimeClean2.bak",
    "RestoreTimeClean2_1.trn",
    "RestoreTimeClean2_2.trn",
    "RestoreTimeClean2_3.trn",
];
/// Its last log: the tail in these tests.
pub const CLEAN_TAIL: &str = "RestoreTimeClean2_3.trn";

/// The `RestoreTimeClean` fixture folder.
pub fn clean_dir(fixtures: &Path) -> PathBuf {
    fixtures.join("appveyor-lab").join("RestoreTimeClean")
}

/// `sql2008-backups/RestoreTimeStripe` flattened: the files of `Stripe1` and `Stripe2` (their names
/// do not collide), sorted by name.
pub fn stripe_files(fixtures: &Path) -> Vec<(String, PathBuf)> {
    let root = fixtures
        .join("appveyor-lab")
        .join("sql2008-backups")
        .join("RestoreTimeStripe");
    let mut out = Vec::new();
    for stripe in ["Stripe1", "Stripe2"] {
        let dir = root.join(stripe);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.expect("fixture entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !out.iter().any(|(n, _)| n == &name),
                "{name} is in both stripe folders: flattening would lose one"
            );
            out.push((name, entry.path()));
        }
    }
    out.sort();
    out
}

/// The PostgreSQL dump named like a SQL Server backup.
pub fn postgres_dump(fixtures: &Path) -> PathBuf {
    fixtures
        .join("misc")
        .join("ryan-magno__End-to-End-Azure-Data-Engineering-Real-Time-Project")
        .join("AdventureWorksLT2017.bak")
}

// ---- storage adapters for the rig --------------------------------------------------------------

/// The production blob store with a count of calls and bytes read: proves what was (not) read.
pub struct CountingBlobs {
    inner: AzureBlobStore,
    /// Every call (list, properties, read_range).
    pub calls: AtomicU64,
    /// Ranged reads.
    pub reads: AtomicU64,
    /// Bytes returned by ranged reads.
    pub bytes: AtomicU64,
}

impl CountingBlobs {
    fn new(inner: AzureBlobStore) -> Self {
        CountingBlobs {
            inner,
            calls: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// (calls, reads, bytes) so far.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.calls.load(Ordering::SeqCst),
            self.reads.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl BlobStore for CountingBlobs {
    async fn list(&self, prefix: &str) -> Result<Vec<BlobItem>, storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix).await
    }
    async fn properties(&self, name: &str) -> Result<BlobItem, storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.properties(name).await
    }
    async fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<(Bytes, u64), storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.reads.fetch_add(1, Ordering::SeqCst);
        let got = self.inner.read_range(name, offset, len).await?;
        self.bytes.fetch_add(got.0.len() as u64, Ordering::SeqCst);
        Ok(got)
    }
    async fn read_range_if_match(
        &self,
        name: &str,
        offset: u64,
        len: u64,
        etag: &ETag,
    ) -> Result<(Bytes, u64), storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.reads.fetch_add(1, Ordering::SeqCst);
        let got = self
            .inner
            .read_range_if_match(name, offset, len, etag)
            .await?;
        self.bytes.fetch_add(got.0.len() as u64, Ordering::SeqCst);
        Ok(got)
    }
    async fn read_head(
        &self,
        name: &str,
        len: u64,
        etag: Option<&ETag>,
    ) -> Result<(Bytes, BlobItem), storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.reads.fetch_add(1, Ordering::SeqCst);
        let got = self.inner.read_head(name, len, etag).await?;
        self.bytes.fetch_add(got.0.len() as u64, Ordering::SeqCst);
        Ok(got)
    }
    fn url(&self, name: &str) -> Result<Url, storage::Error> {
        self.inner.url(name)
    }
}

/// The production state store, optionally slowed down (every write waits first, as on a busy
/// account) and raced by a second writer that rewrites the document just before every other
/// conditional write of the pipeline, so Azurite answers 412 to it (a real conflict, not a
/// simulated one).
pub struct StateWrapper {
    inner: AzureStateStore,
    race: bool,
    delay: Option<StdDuration>,
    writes: AtomicU64,
    /// Conflicts caused.
    pub raced: AtomicU64,
    /// The pipeline's calls (get, put, list), not counting the racing writer's.
    pub calls: AtomicU64,
}

#[async_trait]
impl StateStore for StateWrapper {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ETag)>, storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<ETag, storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        if self.race
            && matches!(precondition, Precondition::IfMatch(_))
            && self.writes.fetch_add(1, Ordering::SeqCst) % 2 == 0
        {
            if let Some((current, etag)) = self.inner.get(key).await? {
                self.inner
                    .put(key, current, Precondition::IfMatch(etag))
                    .await?;
                self.raced.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.inner.put(key, bytes, precondition).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, storage::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix).await
    }
}

/// The production LRS port, recording the last restoreDetails the pipeline read for each database:
/// once completeRestore is accepted, restoreDetails answers only that the database is no longer
/// restoring, so what LRS restored is read back from here.
pub struct Recorder {
    inner: ArmLrs,
    views: std::sync::Mutex<BTreeMap<String, RestoreView>>,
}

impl Recorder {
    fn new(inner: ArmLrs) -> Self {
        Recorder {
            inner,
            views: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The last restoreDetails the pipeline read for `db`.
    pub fn last_view(&self, db: &str) -> Option<RestoreView> {
        self.views
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(db)
            .cloned()
    }
}

#[async_trait]
impl LrsApi for Recorder {
    async fn start(&self, request: &StartRequest) -> Result<Option<String>, LrsCallError> {
        self.inner.start(request).await
    }
    async fn restore_details(&self, db: &str) -> Result<RestoreView, LrsCallError> {
        let view = self.inner.restore_details(db).await?;
        self.views
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(db.to_owned(), view.clone());
        Ok(view)
    }
    async fn complete(&self, db: &str, last: &str) -> Result<Option<String>, LrsCallError> {
        self.inner.complete(db, last).await
    }
    async fn poll_operation(&self, url: &str) -> Result<OperationState, LrsCallError> {
        self.inner.poll_operation(url).await
    }
    async fn database_status(&self, db: &str) -> Result<String, LrsCallError> {
        self.inner.database_status(db).await
    }
    async fn instance_facts(
        &self,
    ) -> Result<lrs_autopilot::preflight::InstanceFacts, LrsCallError> {
        self.inner.instance_facts().await
    }
    fn instance_name(&self) -> String {
        self.inner.instance_name()
    }
}

/// Captures every log line of the current thread (INFO and up) until the guard drops: run the test
/// on a `current_thread` runtime so the in-process handler's and simulator's tasks log here too.
pub fn capture_logs() -> (crate::support::Captured, tracing::subscriber::DefaultGuard) {
    let captured = crate::support::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

// ---- the simulator ---------------------------------------------------------------------------

/// The simulator on a loopback port, on a virtual clock the test moves.
pub struct Sim {
    /// `http://127.0.0.1:<port>`: `LRS_ARM_ENDPOINT`.
    pub base: String,
    /// Its state (request log, faults).
    pub state: SimState,
    /// Its clock, shared with the in-process pipeline.
    pub clock: Arc<VirtualClock>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Sim {
    async fn start(source: Arc<dyn BlobStore>, options: &RigOptions) -> Sim {
        let mut config = SimConfig::folder("/nonexistent");
        config.restore_mbps = 20.0;
        // `None`: the service's worst plausible model, where the create operation runs until the
        // database is Online; `Some(n)`: the short model.
        config.operation_secs = options.operation_secs;
        // completeRestore runs over a few timer ticks (simulated time): the pipeline never waits
        // on it, it watches the database come Online.
        config.complete_secs = options.complete_secs;
        config.poll_retry_after_secs = 0;
        config.faults = options.faults.clone();
        if let Some(limit) = options.instance_restore_limit {
            config.instance_restore_limit = limit;
            // A limit above the subscription's (the benchmark's 1,000 restores) lifts that too.
            config.subscription_restore_limit = config.subscription_restore_limit.max(limit);
        }
        if let Some(change) = options.sim_config {
            change(&mut config);
        }
        // Start at real time: SAS expiry checks compare the pipeline's clock with real dates.
        let clock = Arc::new(VirtualClock::new(OffsetDateTime::now_utc()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let state = SimState::new(config, source, dyn_clock);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the simulator");
        let addr = listener.local_addr().expect("bound address");
        let app = sim::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sim {
            base: format!("http://{addr}"),
            state,
            clock,
            server,
        }
    }

    /// A client with short retry delays, for the in-process pipeline and for reading back.
    pub fn client(&self) -> LrsClient {
        let options = LrsClientOptions {
            retry: RetryOptions::fixed(FixedRetryOptions {
                delay: azure_core::time::Duration::milliseconds(5),
                max_retries: 8,
                max_total_elapsed: azure_core::time::Duration::seconds(20),
            }),
            default_poll_interval: StdDuration::from_millis(5),
            max_wait: StdDuration::from_secs(20),
        };
        LrsClient::new(&self.base, Auth::UnauthenticatedLoopback, options)
            .expect("a loopback client")
    }

    /// restoreDetails for a database, read straight from the simulator.
    pub async fn restore_details(&self, db: &str) -> RestoreDetails {
        let id = instance().database(db).expect("a valid database name");
        self.client()
            .restore_details(&id)
            .await
            .expect("restoreDetails from the simulator")
    }
}

/// The instance.
pub fn instance() -> InstanceId {
    InstanceId::new(SUBSCRIPTION, RESOURCE_GROUP, INSTANCE).expect("a valid instance id")
}

// ---- the handler over HTTP -------------------------------------------------------------------

/// A running custom handler, reached over HTTP as the Functions host reaches it.
#[derive(Clone)]
pub struct Endpoint {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    http: reqwest::Client,
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// The `Logs` lines.
    pub fn logs(&self) -> Vec<String> {
        self.body["Logs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `Logs` lines joined.
    pub fn log_text(&self) -> String {
        self.logs().join("\n")
    }
}

impl Endpoint {
    /// An endpoint at `base`.
    pub fn new(base: String) -> Self {
        Endpoint {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs a raw body to `/<function>` with the host's headers.
    pub async fn post(&self, function: &str, body: String) -> Reply {
        let response = self
            .http
            .post(format!("{}/{function}", self.base))
            .header("content-type", "application/json")
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("x-azure-functions-hostversion", "4.1036.1.23224")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /{function}: {e}"));
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("a response body");
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Delivers one Service Bus message holding `event`.
    pub async fn deliver(&self, event: &Value, encoding: Encoding) -> Reply {
        self.post("BackupCreated", envelope(event, encoding).to_string())
            .await
    }

    /// Delivers like Service Bus: a message whose invocation fails (non-2xx) is redelivered, up to
    /// `maxDeliveryCount` (10) times. Returns the successful reply and the delivery count.
    pub async fn deliver_until_ok(&self, event: &Value, encoding: Encoding) -> (Reply, u32) {
        let mut last = None;
        for attempt in 1..=10 {
            let reply = self.deliver(event, encoding).await;
            if (200..300).contains(&reply.status) {
                return (reply, attempt);
            }
            last = Some(reply);
        }
        panic!("dead-lettered after 10 deliveries: {last:?}");
    }

    /// One timer invocation with the timer trigger's payload.
    pub async fn timer(&self) -> Reply {
        let body = json!({
            "Data": {"timer": {
                "Schedule": {"AdjustForDST": true},
                "ScheduleStatus": {"Last": "2025-06-01T08:00:00+00:00", "LastUpdated": "2025-06-01T08:00:00+00:00", "Next": "2025-06-01T08:00:30+00:00"},
                "IsPastDue": false
            }},
            "Metadata": {"sys": {"MethodName": "CutoverTimer", "UtcNow": "2025-06-01T08:00:30Z", "RandGuid": uuid::Uuid::new_v4().to_string()}}
        });
        self.post("CutoverTimer", body.to_string()).await
    }

    /// One call of the Migrations HTTP function: returns `res.statusCode` and `res.body` (parsed).
    pub async fn migrations(
        &self,
        method: &str,
        database: Option<&str>,
        action: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut params = serde_json::Map::new();
        let mut url = "https://func.azurewebsites.net/api/migrations".to_owned();
        if let Some(db) = database {
            params.insert("database".into(), json!(db));
            url.push('/');
            url.push_str(db);
        }
        if let Some(a) = action {
            params.insert("action".into(), json!(a));
            url.push('/');
            url.push_str(a);
        }
        let req = json!({
            "Url": url,
            "Method": method,
            "Query": {},
            "Headers": {"Content-Type": ["application/json"]},
            "Params": params,
            "Body": body,
        });
        let invocation =
            json!({"Data": {"req": req}, "Metadata": {"sys": {"MethodName": "Migrations"}}});
        let reply = self.post("Migrations", invocation.to_string()).await;
        assert_eq!(
            reply.status, 200,
            "the invocation itself succeeds: {reply:?}"
        );
        let res = &reply.body["Outputs"]["res"];
        let status = res["statusCode"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no res.statusCode in {reply:?}"));
        let body = res["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// `GET /`: the host's health probe.
    pub async fn health(&self) -> Option<u16> {
        self.http
            .get(format!("{}/", self.base))
            .timeout(StdDuration::from_secs(2))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }
}

/// The handler in this process: `functions::router` on 127.0.0.1:0.
pub struct InProcess {
    /// Its endpoint.
    pub endpoint: Endpoint,
    /// The pipeline it serves (its metrics).
    pub pipeline: Pipeline,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl InProcess {
    /// Serves `pipeline` on a real socket.
    pub async fn serve(pipeline: Pipeline) -> InProcess {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the handler");
        let addr = listener.local_addr().expect("bound address");
        let app = router(AppState {
            pipeline: pipeline.clone(),
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        InProcess {
            endpoint: Endpoint::new(format!("http://{addr}")),
            pipeline,
            server,
        }
    }
}

/// The built binary running `serve`, started the way the Functions host starts it.
pub struct Serve {
    child: Child,
    /// Its endpoint.
    pub endpoint: Endpoint,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `lrs-autopilot serve` with `env` (and `FUNCTIONS_CUSTOMHANDLER_PORT`) and waits for
    /// `GET /` to answer. Returns it and the time from spawn to the first answer.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> (Serve, StdDuration) {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a temp dir for the server's log");
        let stderr = dir.path().join("stderr.log");
        let log = std::fs::File::create(&stderr).expect("create the log file");
        let began = Instant::now();
        let child = Command::new(binary)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            // `serve` logs to stdout (the Functions host records stderr as errors); keep both.
            .stdout(Stdio::from(log.try_clone().expect("clone the log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let mut serve = Serve {
            child,
            endpoint: Endpoint::new(format!("http://127.0.0.1:{port}")),
            stderr,
            _dir: dir,
        };
        let deadline = Instant::now() + StdDuration::from_secs(60);
        loop {
            if serve.endpoint.health().await == Some(200) {
                return (serve, began.elapsed());
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!(
                    "serve exited with {status} before answering GET /:\n{}",
                    serve.stderr_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "serve did not answer GET / within 60 s (the host's limit):\n{}",
                serve.stderr_text()
            );
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote so far (its logs, on stdout, and anything on stderr).
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Resident set size from `/proc` (Linux), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Kills it with SIGKILL, as a crashed or recycled worker dies, and returns its logs.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr_text()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A TCP listener that stands in for another storage account and counts every connection made
/// to it: a refused event must not make any.
pub struct Trap {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Connections accepted.
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Trap {
    /// Starts listening.
    pub async fn start() -> Trap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the trap");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap {
            base,
            connections,
            task,
        }
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---- events and envelopes -------------------------------------------------------------------

/// Which Event Grid schema the subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// The Event Grid schema (`eventType`, `data.eTag` bare).
    EventGrid,
    /// CloudEvents 1.0 (`type`, `specversion`, `data.eTag` quoted).
    CloudEvents,
}

impl Schema {
    /// The schemas in turn by position: even Event Grid, odd CloudEvents.
    pub fn alternate(i: usize) -> Schema {
        if i % 2 == 0 {
            Schema::EventGrid
        } else {
            Schema::CloudEvents
        }
    }
}

/// How the event sits in `Data.message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A JSON object.
    Object,
    /// A string holding the JSON (encoded once).
    Once,
    /// A string holding a string holding the JSON (encoded twice).
    Twice,
    /// A one-element array, encoded twice.
    ArrayTwice,
}

/// The host's invocation for a Service Bus message whose body is `event`.
pub fn envelope(event: &Value, encoding: Encoding) -> Value {
    let once = |v: &Value| Value::String(v.to_string());
    let message = match encoding {
        Encoding::Object => event.clone(),
        Encoding::Once => once(event),
        Encoding::Twice => once(&once(event)),
        Encoding::ArrayTwice => once(&once(&json!([event]))),
    };
    let id = event["id"].as_str().unwrap_or("none");
    json!({
        "Data": {"message": message},
        "Metadata": {
            "DeliveryCount": "1",
            "LockToken": format!("\"{}\"", uuid::Uuid::new_v4()),
            "ExpiresAtUtc": "\"2025-06-01T09:00:00Z\"",
            "EnqueuedTimeUtc": "\"2025-06-01T08:00:00Z\"",
            "MessageId": format!("\"{id}\""),
            "ContentType": "\"application/json\"",
            "SequenceNumber": "1",
            "UserProperties": {"aeg-event-type": "Notification"},
            "ApplicationProperties": {},
            "sys": {"MethodName": "BackupCreated", "UtcNow": "2025-06-01T08:00:01Z", "RandGuid": uuid::Uuid::new_v4().to_string()},
            "MessageReceiver": {"whatever": [1, 2, 3], "nested": {"deep": true}},
            "MessageActions": {},
            // Top-level properties of the body are copied into Metadata too.
            "id": format!("\"{id}\""),
            "subject": event["subject"].to_string(),
        }
    })
}

/// One uploaded blob, with what Event Grid puts in its event.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The container.
    pub container: String,
    /// The database folder.
    pub folder: String,
    /// The name under the folder.
    pub name: String,
    /// The ETag the upload returned (quoted, as Azure sends it).
    pub etag: ETag,
    /// Size in bytes.
    pub size: u64,
    /// Block or page blob.
    pub blob_type: BlobType,
}

/// A BlobCreated event for `blob` under `account` (no query string), in `schema`.
pub fn blob_created(account: &str, blob: &Uploaded, schema: Schema) -> Value {
    let mut url = Url::parse(account).expect("the account url parses");
    url.set_query(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .push(&blob.container)
            .push(&blob.folder)
            .extend(blob.name.split('/'));
    }
    blob_created_at(url.as_str(), blob, schema)
}

/// A BlobCreated event carrying `url` (which may point anywhere), for `blob`'s size and ETag.
pub fn blob_created_at(url: &str, blob: &Uploaded, schema: Schema) -> Value {
    let bare = blob.etag.0.trim_matches('"').to_owned();
    let subject = format!(
        "/blobServices/default/containers/{}/blobs/{}/{}",
        blob.container, blob.folder, blob.name
    );
    let source = format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-storage/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
    );
    let (blob_type, api) = match blob.blob_type {
        BlobType::Page => ("PageBlob", "PutBlob"),
        _ => ("BlockBlob", "PutBlockList"),
    };
    let id = uuid::Uuid::new_v4().to_string();
    match schema {
        Schema::EventGrid => json!({
            "id": id,
            "eventTime": "2025-06-01T08:00:00.0000000Z",
            "eventType": "Microsoft.Storage.BlobCreated",
            "dataVersion": "",
            "metadataVersion": "1",
            "topic": source,
            "subject": subject,
            "data": {
                "api": api,
                "clientRequestId": uuid::Uuid::new_v4().to_string(),
                "requestId": uuid::Uuid::new_v4().to_string(),
                "eTag": bare,
                "contentType": "application/octet-stream",
                "contentLength": blob.size,
                "blobType": blob_type,
                "url": url,
                "sequencer": "00000000000000000000000000015508000000000005101c",
                "storageDiagnostics": {"batchId": uuid::Uuid::new_v4().to_string()}
            }
        }),
        Schema::CloudEvents => json!({
            "source": source,
            "subject": subject,
            "type": "Microsoft.Storage.BlobCreated",
            "time": "2025-06-01T08:00:00.0000000Z",
            "id": id,
            "data": {
                "api": api,
                "clientRequestId": uuid::Uuid::new_v4().to_string(),
                "requestId": uuid::Uuid::new_v4().to_string(),
                "eTag": format!("\"{bare}\""),
                "contentType": "application/octet-stream",
                "contentLength": blob.size,
                "blobType": blob_type,
                "url": url,
                "sequencer": "00000000000004420000000000028963",
                "storageDiagnostics": {"batchId": uuid::Uuid::new_v4().to_string()}
            },
            "specversion": "1.0"
        }),
    }
}

// ---- the rig ---------------------------------------------------------------------------------

/// What differs between rigs.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// `LRS_TAIL_PATTERN`.
    pub tail_pattern: Option<String>,
    /// Give LRS a read+list SAS (`SharedAccessSignature`) instead of the managed identity.
    pub lrs_sas: bool,
    /// Race every other state write with a second writer ([`StateWrapper`]).
    pub race_state: bool,
    /// Faults the simulator injects.
    pub faults: Faults,
    /// `LRS_DATABASE_NAME_MAP`.
    pub name_map: BTreeMap<String, String>,
    /// `LRS_MAX_CONCURRENT_RESTORES`.
    pub max_concurrent_restores: usize,
    /// Delay every state document write by this long (a slow storage account).
    pub slow_state_writes: Option<StdDuration>,
    /// Count the state store's calls ([`StateWrapper::calls`]).
    pub count_state: bool,
    /// The simulator's start-operation model: `None` runs the create operation until Online (the
    /// default), `Some(n)` the short model that succeeds after `n` simulated seconds.
    pub operation_secs: Option<f64>,
    /// How long completeRestore runs in the simulator, in simulated seconds.
    pub complete_secs: f64,
    /// The simulated instance's concurrent-restore limit (documented: 100).
    pub instance_restore_limit: Option<usize>,
    /// Watch a second backups container too ([`Rig::second`]).
    pub second_container: bool,
    /// Changes to the simulator's settings (its instance's tier, update policy, storage).
    pub sim_config: Option<fn(&mut SimConfig)>,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            tail_pattern: Some(lrs_autopilot::chain::DEFAULT_TAIL_PATTERN.into()),
            lrs_sas: false,
            race_state: false,
            faults: Faults::default(),
            name_map: BTreeMap::new(),
            max_concurrent_restores: 100,
            slow_state_writes: None,
            count_state: false,
            operation_secs: None,
            complete_secs: 60.0,
            instance_restore_limit: None,
            second_container: false,
            sim_config: None,
        }
    }
}

/// The fixtures and a fresh rig, or `None` (skip) when the fixtures are missing outside CI.
pub async fn rig_with_fixtures(options: RigOptions) -> Option<(Rig, PathBuf)> {
    let fixtures = crate::support::fixtures_dir()?;
    Some((Rig::new(options).await, fixtures))
}

/// Azurite containers, the simulator and an in-process handler, ready for events.
pub struct Rig {
    /// The backups container (`LRS_CONTAINERS`).
    pub backups: String,
    /// The state container (`LRS_STATE_CONTAINER`).
    pub state_container: String,
    /// The blob service URL with the rig's full-access SAS (`LRS_STORAGE_ACCOUNT_URL`).
    pub account_url: String,
    /// The blob service URL without a query string.
    pub account: String,
    /// The read+list SAS given to LRS, when [`RigOptions::lrs_sas`].
    pub lrs_sas: Option<String>,
    /// Uploads (the test's own writer, not the pipeline's store).
    pub writer: AzureBlobStore,
    /// State documents, read back directly.
    pub state: AzureStateStore,
    /// The simulator.
    pub sim: Sim,
    /// The in-process pipeline's blob store, counted.
    pub blobs: Arc<CountingBlobs>,
    /// The simulator's blob store (LRS reading the folders), counted.
    pub sim_blobs: Arc<CountingBlobs>,
    /// The wrapped state store, when [`RigOptions::race_state`],
    /// [`RigOptions::slow_state_writes`] or [`RigOptions::count_state`].
    pub wrapped_state: Option<Arc<StateWrapper>>,
    /// The handler in this process.
    pub handler: InProcess,
    /// The options it was built with.
    pub options: RigOptions,
    /// The in-process handler's LRS port, with what restoreDetails showed it.
    pub recorder: Arc<Recorder>,
    /// The second watched container, when [`RigOptions::second_container`].
    pub second: Option<String>,
}

impl Rig {
    /// A fresh pair of containers on the shared Azurite, a simulator and a handler.
    pub async fn new(options: RigOptions) -> Rig {
        let az = azurite::azurite();
        let (backups, account_url) = azurite::create_container("sqlfiles").await;
        let (state_container, _) = azurite::create_container("state").await;
        let second = match options.second_container {
            true => Some(azurite::create_container("others").await.0),
            false => None,
        };
        let account = az.url.clone();
        let writer = az.blob_store();
        let state = az.state_store(&state_container);
        // The simulator reads the same Azurite blobs as the pipeline, through the production store
        // (counted apart: its reads are LRS's, not the pipeline's).
        let sim_blobs = Arc::new(CountingBlobs::new(az.blob_store()));
        let sim = Sim::start(sim_blobs.clone(), &options).await;
        let lrs_sas = options.lrs_sas.then(lrs_sas_token);
        let blobs = Arc::new(CountingBlobs::new(az.blob_store()));
        let wrapped_state =
            (options.race_state || options.slow_state_writes.is_some() || options.count_state)
                .then(|| {
                    Arc::new(StateWrapper {
                        inner: az.state_store(&state_container),
                        race: options.race_state,
                        delay: options.slow_state_writes,
                        writes: AtomicU64::new(0),
                        raced: AtomicU64::new(0),
                        calls: AtomicU64::new(0),
                    })
                });
        let settings = settings(
            &account_url,
            &backups,
            second.as_deref(),
            &options,
            lrs_sas.as_deref(),
        );
        let recorder = Arc::new(Recorder::new(ArmLrs::new(sim.client(), instance())));
        let pipeline = build_pipeline(
            &blobs,
            wrapped_state.as_ref(),
            &state_container,
            recorder.clone(),
            sim.clock.clone(),
            settings,
        );
        let handler = InProcess::serve(pipeline).await;
        Rig {
            backups,
            state_container,
            account_url,
            account,
            lrs_sas,
            writer,
            state,
            sim,
            blobs,
            sim_blobs,
            wrapped_state,
            handler,
            options,
            recorder,
            second,
        }
    }

    /// The in-process handler's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.handler.endpoint
    }

    /// A new pipeline over the same storage, simulator and clock: another Functions instance.
    pub fn pipeline(&self) -> Pipeline {
        self.pipeline_with(Arc::new(ArmLrs::new(self.sim.client(), instance())))
    }

    /// Such a pipeline over another LRS port (a wrapper around [`ArmLrs`]).
    pub fn pipeline_with(&self, lrs: Arc<dyn LrsApi>) -> Pipeline {
        let settings = settings(
            &self.account_url,
            &self.backups,
            self.second.as_deref(),
            &self.options,
            self.lrs_sas.as_deref(),
        );
        build_pipeline(
            &self.blobs,
            self.wrapped_state.as_ref(),
            &self.state_container,
            lrs,
            self.sim.clock.clone(),
            settings,
        )
    }

    /// A pipeline over the same storage, simulator and clock that watches `containers` and sends
    /// each database's LRS calls to the instance `targets` names ([`ArmTargets`]), counting at
    /// most `per_subscription` restores per subscription.
    pub fn pipeline_with_targets(
        &self,
        containers: &[String],
        targets: lrs_autopilot::config::Targets,
        per_subscription: usize,
    ) -> Pipeline {
        let mut settings = settings(
            &self.account_url,
            &self.backups,
            None,
            &self.options,
            self.lrs_sas.as_deref(),
        );
        settings.scope = StorageScope::new(
            &Url::parse(&self.account_url).expect("the account url parses"),
            containers.to_vec(),
        );
        settings.targets = targets;
        settings.max_restores_per_subscription = per_subscription;
        let state: Arc<dyn StateStore> =
            Arc::new(azurite::azurite().state_store(&self.state_container));
        let clock = self.sim.clock.clone();
        Pipeline::with_targets(
            self.blobs.clone(),
            state,
            Arc::new(ArmTargets::new(self.sim.client())),
            settings,
            Arc::new(move || clock.now()),
        )
    }

    /// The state document of `container/folder`, decoded.
    pub async fn state_in(&self, container: &str, folder: &str) -> Option<MigrationState> {
        let key = MigrationState::key(container, folder);
        self.state
            .get(&key)
            .await
            .expect("read a state document")
            .map(|(bytes, _)| serde_json::from_slice(&bytes).expect("a state document decodes"))
    }

    /// The environment `serve` needs to run this rig's configuration.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("LRS_ARM_ENDPOINT", self.sim.base.clone()),
            ("LRS_SUBSCRIPTION_ID", SUBSCRIPTION.to_owned()),
            ("LRS_RESOURCE_GROUP", RESOURCE_GROUP.to_owned()),
            ("LRS_MANAGED_INSTANCE", INSTANCE.to_owned()),
            ("LRS_STORAGE_ACCOUNT_URL", self.account_url.clone()),
            (
                "LRS_CONTAINERS",
                std::iter::once(self.backups.clone())
                    .chain(self.second.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("LRS_STATE_CONTAINER", self.state_container.clone()),
            (
                "LRS_DATABASE_NAME_MAP",
                serde_json::to_string(&self.options.name_map).expect("a map serialises"),
            ),
            (
                "LRS_MAX_CONCURRENT_RESTORES",
                self.options.max_concurrent_restores.to_string(),
            ),
            ("RUST_LOG", "debug".to_owned()),
        ];
        if let Some(p) = &self.options.tail_pattern {
            env.push(("LRS_TAIL_PATTERN", p.clone()));
        }
        match &self.lrs_sas {
            Some(token) => {
                env.push(("LRS_STORAGE_IDENTITY", "SharedAccessSignature".into()));
                env.push(("LRS_STORAGE_SAS_TOKEN", token.clone()));
            }
            None => env.push(("LRS_STORAGE_IDENTITY", "ManagedIdentity".into())),
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Uploads bytes as `<backups>/<folder>/<name>`.
    pub async fn upload(
        &self,
        folder: &str,
        name: &str,
        data: Bytes,
        metadata: &BTreeMap<String, String>,
    ) -> Uploaded {
        self.upload_to(&self.backups, folder, name, data, metadata)
            .await
    }

    /// Uploads bytes as `<container>/<folder>/<name>`.
    pub async fn upload_to(
        &self,
        container: &str,
        folder: &str,
        name: &str,
        data: Bytes,
        metadata: &BTreeMap<String, String>,
    ) -> Uploaded {
        let size = data.len() as u64;
        let full = format!("{container}/{folder}/{name}");
        let etag = self
            .writer
            .upload(&full, data, BlobType::Block, metadata)
            .await
            .unwrap_or_else(|e| panic!("upload {full}: {e}"));
        Uploaded {
            container: container.to_owned(),
            folder: folder.to_owned(),
            name: name.to_owned(),
            etag,
            size,
            blob_type: BlobType::Block,
        }
    }

    /// Uploads a fixture file.
    pub async fn upload_file(
        &self,
        folder: &str,
        name: &str,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Uploaded {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        self.upload(folder, name, Bytes::from(data), metadata).await
    }

    /// Uploads the `RestoreTimeClean` chain into `folder`, in backup order; the tail carries
    /// `lrs_tail=true` when `tail_metadata`.
    pub async fn upload_clean(
        &self,
        fixtures: &Path,
        folder: &str,
        tail_metadata: bool,
    ) -> Vec<Uploaded> {
        let dir = clean_dir(fixtures);
        let mut out = Vec::new();
        for name in CLEAN {
            let mut meta = BTreeMap::new();
            if tail_metadata && name == CLEAN_TAIL {
                meta.insert("lrs_tail".to_owned(), "true".to_owned());
            }
            out.push(self.upload_file(folder, name, &dir.join(name), &meta).await);
        }
        out
    }

    /// Uploads the `RestoreTimeClean` full backup as `<folder>/<name>`.
    pub async fn upload_clean_full(&self, fixtures: &Path, folder: &str, name: &str) -> Uploaded {
        let path = clean_dir(fixtures).join(CLEAN[0]);
        self.upload_file(folder, name, &path, &BTreeMap::new())
            .await
    }

    /// Delivers the event of each blob to `endpoint` in turn, the schema alternating by position,
    /// and checks each answer is 200.
    pub async fn deliver_each<'a>(
        &self,
        endpoint: &Endpoint,
        blobs: impl IntoIterator<Item = (usize, &'a Uploaded)>,
        encoding: Encoding,
    ) {
        for (i, blob) in blobs {
            let reply = endpoint
                .deliver(&self.event(blob, Schema::alternate(i)), encoding)
                .await;
            assert_eq!(reply.status, 200, "{}: {reply:?}", blob.name);
        }
    }

    /// The BlobCreated event for an uploaded blob.
    pub fn event(&self, blob: &Uploaded, schema: Schema) -> Value {
        blob_created(&self.account, blob, schema)
    }

    /// A folder's state document, decoded.
    pub async fn state_of(&self, folder: &str) -> Option<MigrationState> {
        let text = self.raw_state(folder).await?;
        Some(serde_json::from_str(&text).expect("a state document decodes"))
    }

    /// A folder's state document as stored.
    pub async fn raw_state(&self, folder: &str) -> Option<String> {
        let key = MigrationState::key(&self.backups, folder);
        self.state
            .get(&key)
            .await
            .expect("read a state document")
            .map(|(bytes, _)| String::from_utf8(bytes).expect("state documents are utf-8"))
    }

    /// Every state document as stored, by key.
    pub async fn raw_states(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for key in self.state.list("").await.expect("list state documents") {
            if let Some((bytes, _)) = self.state.get(&key).await.expect("read") {
                out.insert(key, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        out
    }

    /// Moves simulated time (the simulator's and the in-process pipeline's).
    pub fn advance(&self, by: time::Duration) {
        self.sim.clock.advance(by);
    }

    /// Advances [`TICK`] and invokes the timer on `endpoint` until `done` holds for `folder`'s
    /// state; fails after `max_ticks`.
    pub async fn drive(
        &self,
        endpoint: &Endpoint,
        folder: &str,
        max_ticks: usize,
        done: impl Fn(&MigrationState) -> bool,
    ) -> MigrationState {
        let mut last = None;
        for _ in 0..max_ticks {
            if let Some(state) = self.state_of(folder).await {
                if done(&state) {
                    return state;
                }
                last = Some(state.phase);
            }
            self.advance(TICK);
            let reply = endpoint.timer().await;
            assert_eq!(reply.status, 200, "the timer succeeds: {reply:?}");
        }
        panic!(
            "{folder} did not reach the expected state in {max_ticks} ticks; last phase {last:?}; audit: {:#?}",
            self.state_of(folder).await.map(|s| s.audit)
        );
    }

    /// Makes an `Online` database named `db` on the simulated instance that no LRS job created
    /// (the simulator's `/_sim/databases` test API).
    pub async fn precreate_foreign_database(&self, db: &str) {
        let url = format!(
            "{}/_sim/databases/{SUBSCRIPTION}/{RESOURCE_GROUP}/{INSTANCE}/{db}",
            self.sim.base
        );
        let response = reqwest::Client::new()
            .put(url)
            .send()
            .await
            .expect("PUT /_sim/databases");
        assert!(
            response.status().is_success(),
            "the simulator made the database: {}",
            response.status()
        );
    }

    /// The simulator's request log.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.sim.state.requests()
    }
}

fn build_pipeline(
    blobs: &Arc<CountingBlobs>,
    wrapped_state: Option<&Arc<StateWrapper>>,
    state_container: &str,
    lrs: Arc<dyn LrsApi>,
    clock: Arc<VirtualClock>,
    settings: Settings,
) -> Pipeline {
    let state: Arc<dyn StateStore> = match wrapped_state {
        Some(r) => r.clone(),
        None => Arc::new(azurite::azurite().state_store(state_container)),
    };
    Pipeline::new(
        blobs.clone(),
        state,
        lrs,
        settings,
        Arc::new(move || clock.now()),
    )
}

fn settings(
    account_url: &str,
    backups: &str,
    second: Option<&str>,
    options: &RigOptions,
    lrs_sas: Option<&str>,
) -> Settings {
    let containers = std::iter::once(backups)
        .chain(second)
        .map(str::to_owned)
        .collect();
    Settings {
        scope: StorageScope::new(
            &Url::parse(account_url).expect("the account url parses"),
            containers,
        ),
        tail_pattern: options.tail_pattern.clone(),
        default_collation: "SQL_Latin1_General_CP1_CI_AS".into(),
        max_concurrent_restores: options.max_concurrent_restores,
        max_restores_per_subscription: lrs_autopilot::migration::MAX_RESTORES_PER_SUBSCRIPTION,
        // Every folder to the rig's instance, as `serve` configures it from the three variables.
        targets: lrs_autopilot::config::Targets::single(
            lrs_autopilot::migration::TargetInstance::new(SUBSCRIPTION, RESOURCE_GROUP, INSTANCE)
                .expect("a valid instance"),
        ),
        database_name_map: options.name_map.clone(),
        storage_identity: match lrs_sas {
            Some(token) => StorageIdentity::SharedAccessSignature(token.to_owned()),
            None => StorageIdentity::ManagedIdentity,
        },
    }
}

/// A read+list account SAS valid for 60 days: what LRS accepts (and the pipeline's check passes).
pub fn lrs_sas_token() -> String {
    let mut sas =
        AccountSas::devstore_full_access(OffsetDateTime::now_utc() + time::Duration::days(60));
    sas.permissions = "rl".into();
    sas.sign(DEVSTORE_KEY)
        .expect("the devstore key is valid base64")
}

/// The `sig` value of a SAS query string (raw and percent-encoded forms).
pub fn signature_forms(sas: &str) -> Vec<String> {
    let raw = url::form_urlencoded::parse(sas.trim_start_matches('?').as_bytes())
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned())
        .expect("the SAS has a signature");
    let encoded = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect::<String>();
    vec![raw, encoded]
}

// ---- what the simulator's log proves ----------------------------------------------------------

/// Counts from the simulator's request log for one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmLedger {
    /// PUT database answered 202 (LRS started).
    pub starts_accepted: usize,
    /// Every PUT database, whatever the answer.
    pub start_attempts: usize,
    /// completeRestore answered 202, with their lastBackupName.
    pub completes_accepted: Vec<String>,
    /// completeRestore refused (400): not the last restored file, or already signalled.
    pub completes_refused: usize,
    /// DELETE requests, for any database.
    pub deletes: usize,
}

/// Reads the ledger for `db` from `requests`.
pub fn ledger(requests: &[LoggedRequest], db: &str) -> ArmLedger {
    let db_path = format!("/databases/{}", db.to_ascii_lowercase());
    let is_db = |r: &LoggedRequest| r.path.to_ascii_lowercase().ends_with(&db_path);
    let is_complete = |r: &LoggedRequest| {
        r.path
            .to_ascii_lowercase()
            .ends_with(&format!("{db_path}/completerestore"))
    };
    ArmLedger {
        starts_accepted: requests
            .iter()
            .filter(|r| r.method == "PUT" && is_db(r) && r.status == 202)
            .count(),
        start_attempts: requests
            .iter()
            .filter(|r| r.method == "PUT" && is_db(r))
            .count(),
        completes_accepted: requests
            .iter()
            .filter(|r| r.method == "POST" && is_complete(r) && r.status == 202)
            .map(|r| r.body["lastBackupName"].as_str().unwrap_or("?").to_owned())
            .collect(),
        completes_refused: requests
            .iter()
            .filter(|r| r.method == "POST" && is_complete(r) && r.status == 400)
            .count(),
        deletes: requests.iter().filter(|r| r.method == "DELETE").count(),
    }
}

/// completeRestore requests for `db` the simulator refused before it accepted one: early
/// completes (the simulator, like LRS, refuses a complete whose file is not yet the last restored
/// one; a repeat after the accepted one is refused as already signalled and is not counted).
pub fn early_completes(requests: &[LoggedRequest], db: &str) -> usize {
    let suffix = format!("/databases/{}/completerestore", db.to_ascii_lowercase());
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.to_ascii_lowercase().ends_with(&suffix))
        .take_while(|r| r.status != 202)
        .filter(|r| r.status == 400)
        .count()
}

/// The fault matrix's invariants for one database that must end `Completed` on `tail`: no file
/// lost, exactly one accepted start, one accepted complete with the tail and none refused as not
/// yet restored (the simulator, like LRS, refuses a complete whose file is not the last restored
/// one, so an accepted complete with the tail came after the tail's restore), the pipeline saw the
/// tail restored before it completed, no delete, and the database is Online by its own status while
/// restoreDetails answers that it is no longer restoring.
pub async fn assert_migrated(rig: &Rig, folder: &str, db: &str, uploaded: &[&str], tail: &str) {
    let state = rig
        .state_of(folder)
        .await
        .unwrap_or_else(|| panic!("{folder} has no state document"));
    let lost: Vec<&&str> = uploaded
        .iter()
        .filter(|n| !state.files.contains_key(**n))
        .collect();
    assert!(
        lost.is_empty(),
        "files lost from {folder}'s state: {lost:?}"
    );
    assert_eq!(
        state.phase,
        lrs_autopilot::migration::Phase::Completed,
        "{folder}: {:?}",
        state.reason
    );
    assert!(
        state.lrs.tail_restored_at.is_some()
            && state.lrs.tail_restored_at <= state.lrs.complete_sent_at,
        "completion followed the tail's restore: {:?}",
        state.lrs
    );
    let requests = rig.requests();
    let ledger = ledger(&requests, db);
    assert_eq!(
        ledger.starts_accepted, 1,
        "exactly one accepted start: {ledger:?}"
    );
    assert_eq!(
        ledger.completes_accepted,
        [tail.to_owned()],
        "one accepted complete, with the tail: {ledger:?}"
    );
    assert_eq!(
        early_completes(&requests, db),
        0,
        "no complete before the tail was restored: {ledger:?}"
    );
    assert_eq!(ledger.deletes, 0, "nothing deleted: {ledger:?}");
    let id = instance().database(db).expect("a valid database name");
    let client = rig.sim.client();
    let database = client.get_database(&id).await.expect("GET database");
    assert_eq!(database.status().as_str(), "Online");
    let err = client
        .restore_details(&id)
        .await
        .expect_err("restoreDetails after completion");
    assert_eq!(err.code(), Some("ManagedDatabaseNotInRestoringState"));
}
