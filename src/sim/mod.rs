//! An ARM-compatible Log Replay Service simulator: reads the real backup files, restores them in LRS
//! order at a set speed, reports restoreDetails in the documented schema and injects faults.
//!
//! It is a product feature (`simulate-lrs`, `rehearse`, `demo`), not a test stub: it is strict where
//! LRS is strict (complete only with the last restored file, once; no second start; no `backup` in
//! the storage path; 100 concurrent restores per instance and 150 per subscription; ARM's request
//! throttling), so a rehearsal that passes here has met LRS's documented rules. Where Microsoft's
//! documents are silent it models the worst plausible behaviour, and each such rule says
//! "Model choice" in its doc comment. By default the create operation runs until the database is
//! `Online` (completeRestore is accepted while it runs); [`SimConfig::operation_secs`] keeps a short
//! one.
//!
//! It serves any subscription, resource group and instance on the ARM paths the [`crate::lrs`]
//! client calls, plus `/_sim/*` for tests and rehearsals (never throttled, never logged):
//! - `GET /_sim/requests`: the request log, `{"requests":[{method,path,status,time,body}]}`.
//! - `POST /_sim/clock` with `{"advanceSeconds": N}`: jump simulated time.
//! - `GET|PUT /_sim/faults`: the injected [`Faults`] (camelCase JSON; unknown fields refused).
//! - `GET /_sim/stats`: ARM throttling counters, `{"throttling": bool, "arm": {"elapsedWallSecs",
//!   "reads"|"writes": {"admitted","throttled","bucket","refillPerSec",
//!   "budgetPerSubscriptionSinceStart","perSubscription":{sub:{"admitted","throttled",
//!   "percentOfBudget"}}}}}`: a benchmark reads how much of ARM's budget it used.
//! - `PUT /_sim/databases/{subscription}/{resourceGroup}/{instance}/{database}`, with no body or
//!   `{"restoreType": "<type>"}`: makes an `Online` database that is not an LRS restore. A start of
//!   its name answers 400 `ManagedDatabaseNameInUse`, and its restoreDetails answers 200 with that
//!   `type` (default `PointInTimeRestore`), never `LRSRestore`. 201 with the database, 409 when the
//!   name is taken.
//!
//! An adapter: it uses the core (`backup::read`, `chain::plan`) and never the shells.

mod arm;
mod clock;
pub mod codes;
mod faults;
mod restore;
mod source;
mod throttle;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Router;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::storage::BlobStore;
use crate::storage::azure::AzureBlobStore;
use crate::storage::folder::FolderStore;

pub use clock::{Clock, SystemClock, VirtualClock};
pub use faults::Faults;
pub use restore::RestoreJob;
pub use source::{ListedFile, SourceError};
pub use throttle::{BucketLimits, READS, WRITES};

/// Where the simulator reads backups.
#[derive(Clone)]
pub enum Storage {
    /// A local folder laid out as `<root>/<container>/<folder>/<files>`.
    Folder(PathBuf),
    /// A blob service URL (Azure or Azurite), with a SAS in its query or a token from the
    /// environment. `Debug` never shows the query.
    BlobService(String),
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Folder(root) => f.debug_tuple("Folder").field(root).finish(),
            Storage::BlobService(url) => {
                let shown = url.split('?').next().unwrap_or_default();
                f.debug_tuple("BlobService").field(&shown).finish()
            }
        }
    }
}

/// The simulator's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where backups are read.
    pub storage: Storage,
    /// Restore speed in MiB/s (fast by default, so rehearsals do not wait).
    pub restore_mbps: f64,
    /// The region every managed instance reports.
    pub location: String,
    /// `None` (the default): the create operation stays `InProgress` until the database is
    /// `Online` after completeRestore, or ends `Failed` when it is dropped or cancelled. `Some(n)`:
    /// the short model, where it succeeds after `n` seconds of simulated time. Deletes run `n`
    /// seconds, or one second.
    pub operation_secs: Option<f64>,
    /// How long completeRestore runs before the database is `Online`, in seconds of simulated time
    /// (hours on Business Critical while secondaries seed). The complete operation stays
    /// `InProgress` until then.
    pub complete_secs: f64,
    /// `Retry-After` on polling answers, in seconds.
    pub poll_retry_after_secs: u64,
    /// Send `Azure-AsyncOperation` beside `Location` on long-running operations. The SQL spec
    /// declares only `Location`; turning this off checks that clients follow either.
    pub send_async_operation: bool,
    /// After how long LRS cancels a job that was not completed (30 days).
    pub cancel_after: time::Duration,
    /// Faults to inject.
    pub faults: Faults,
    /// ARM's per-subscription token buckets for reads and writes ([`READS`], [`WRITES`]), on by
    /// default.
    pub throttle: bool,
    /// Concurrent LRS restores one instance runs (documented: 100).
    pub instance_restore_limit: usize,
    /// Concurrent LRS restores one subscription runs (documented: 150).
    pub subscription_restore_limit: usize,
    /// The instance's service tier (`sku` and `isGeneralPurposeV2` on GET instance).
    pub tier: crate::preflight::Tier,
    /// The instance's update policy (`databaseFormat`). Model choice: SQLServer2022, the policy
    /// new instances get, and the one that refuses the most sources.
    pub update_policy: crate::preflight::UpdatePolicy,
    /// Reserved storage (`storageSizeInGB`). Model choice: 32, the minimum.
    pub storage_gb: u64,
    /// What Azure Monitor's `storage_space_used_mb` reports, in GB. Model choice: a fixed figure,
    /// not grown by the simulated restores.
    pub storage_used_gb: f64,
}

impl SimConfig {
    /// Defaults over a local folder.
    pub fn folder(root: impl Into<PathBuf>) -> Self {
        SimConfig {
            storage: Storage::Folder(root.into()),
            restore_mbps: 500.0,
            location: "westeurope".into(),
            operation_secs: None,
            complete_secs: 2.0,
            poll_retry_after_secs: 1,
            send_async_operation: true,
            cancel_after: time::Duration::days(30),
            faults: Faults::default(),
            throttle: true,
            instance_restore_limit: 100,
            subscription_restore_limit: 150,
            tier: crate::preflight::Tier::GeneralPurpose,
            update_policy: crate::preflight::UpdatePolicy::SQLServer2022,
            storage_gb: 32,
            storage_used_gb: 0.0,
        }
    }
}

/// One entry of the request log, as `GET /_sim/requests` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// When, in simulated time (RFC 3339).
    pub time: String,
    /// The JSON body, with any SAS token redacted; `null` when empty.
    pub body: serde_json::Value,
}

/// The simulator's shared state: settings, clock, storage, databases, the request log and faults.
#[derive(Clone, Debug)]
pub struct SimState {
    inner: Arc<arm::Inner>,
}

impl SimState {
    /// Builds a state over a blob store and a clock.
    pub fn new(config: SimConfig, source: Arc<dyn BlobStore>, clock: Arc<dyn Clock>) -> Self {
        SimState {
            inner: Arc::new(arm::Inner::new(config, source, clock)),
        }
    }

    /// Builds a state from the settings, on the real clock.
    ///
    /// # Errors
    /// When the store cannot be set up (a bad folder or URL, no credential for the URL).
    pub fn from_config(config: SimConfig) -> Result<Self, crate::storage::Error> {
        let source = open_storage(&config.storage)?;
        Ok(SimState::new(config, source, Arc::new(SystemClock::new())))
    }

    /// The simulator's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.set_faults(faults);
    }

    /// Every ARM request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.inner.requests()
    }

    /// Makes an `Online` database that is not an LRS restore, as `PUT /_sim/databases/...` does:
    /// a start of its name answers `ManagedDatabaseNameInUse`, its restoreDetails shows
    /// `restore_type` (`None`: `PointInTimeRestore`) and never `LRSRestore`.
    ///
    /// # Errors
    /// When a database of that name exists.
    pub async fn add_other_database(
        &self,
        database: &crate::lrs::DatabaseId,
        restore_type: Option<&str>,
    ) -> Result<(), String> {
        let instance = &database.instance;
        self.inner
            .add_other_database(
                &instance.subscription,
                &instance.resource_group,
                &instance.instance,
                &database.database,
                restore_type.unwrap_or(arm::NOT_LRS_TYPE),
            )
            .await
            .map(|_| ())
    }

    /// ARM throttling counters, as `GET /_sim/stats` shows them.
    pub fn stats(&self) -> serde_json::Value {
        self.inner.stats()
    }

    /// Scans storage and advances every active job to the clock's now.
    pub async fn tick(&self) {
        self.inner.tick().await;
    }

    /// Sets ARM throttling aside (`false`) or brings it back (`true`) with full buckets and its
    /// counters started over, when the configuration throttles at all.
    ///
    /// Model choice (not Azure's: its budget never pauses): a benchmark prepares a thousand
    /// restoring databases outside the budget, then measures its own run against a fresh one.
    pub fn set_throttling(&self, on: bool) {
        self.inner.set_throttling(on);
    }

    /// When LRS finished restoring the backup set holding `file` for database `db` (any instance),
    /// read from the job itself, so still known after completeRestore.
    pub async fn restored_at(&self, db: &str, file: &str) -> Option<time::OffsetDateTime> {
        self.inner.restored_at(db, file).await
    }

    /// [`SimState::tick`] for the named databases only (any instance): a benchmark models LRS
    /// noticing new files in some folders on its own, without scanning a thousand.
    ///
    /// Model choice: LRS's own scan interval is not documented; when and how often this is
    /// called is the caller's model.
    pub async fn tick_databases(&self, names: &[String]) {
        self.inner.tick_databases(names).await;
    }
}

/// Opens the blob store the settings name.
///
/// # Errors
/// When the folder or URL is not usable.
pub fn open_storage(storage: &Storage) -> Result<Arc<dyn BlobStore>, crate::storage::Error> {
    Ok(match storage {
        Storage::Folder(root) => Arc::new(FolderStore::new(root)?),
        Storage::BlobService(url) => Arc::new(AzureBlobStore::from_url(url)?),
    })
}

/// The simulator's HTTP app.
pub fn router(state: SimState) -> Router {
    arm::router(state.inner)
}

/// Serves the simulator on `listener` with the real clock until the process ends, ticking every
/// second so new files are picked up even when nobody polls.
///
/// # Errors
/// When the storage cannot be opened or the server fails.
pub async fn serve(listener: TcpListener, config: SimConfig) -> std::io::Result<()> {
    let state = SimState::from_config(config).map_err(std::io::Error::other)?;
    serve_state(listener, state).await
}

/// Serves an existing state (tests and rehearsals that keep a handle on it).
///
/// # Errors
/// When the server fails.
pub async fn serve_state(listener: TcpListener, state: SimState) -> std::io::Result<()> {
    let ticker = state.clone();
    let handle = tokio::spawn(async move {
        let mut interval = tokio::time::interval(StdDuration::from_secs(1));
        loop {
            interval.tick().await;
            ticker.tick().await;
        }
    });
    let result = axum::serve(listener, router(state)).await;
    handle.abort();
    result
}
