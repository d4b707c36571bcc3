//! The simulator's ARM surface: routes, LRS's rules for start and complete, long-running
//! operations, ARM's throttling, the request log and fault injection middleware.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tracing::{error, info, warn};
use uuid::Uuid;

use super::clock::Clock;
use super::codes::{self, documented_status};
use super::faults::{FaultState, Faults, Injected};
use super::restore::{RestoreJob, timestamp};
use super::source::{list_folder, read_file};
use super::throttle::{self, Admission, Throttle};
use super::{LoggedRequest, SimConfig};
use crate::chain::{self, FolderFile, PlanInput, TailRule};
use crate::lrs::ops::is_loopback_host;
use crate::storage::BlobStore;

const API_VERSION: &str = "2025-01-01";
const MAX_BODY: usize = 1024 * 1024;
const DB_TYPE: &str = "Microsoft.Sql/managedInstances/databases";

/// How long a delete operation runs when no `operation_secs` is set.
///
/// Model choice: Microsoft documents no duration; one second keeps deletes visibly asynchronous.
const DELETE_SECS: f64 = 1.0;

/// The `type` restoreDetails shows for a database that is not an LRS restore, unless the test names
/// another.
///
/// Model choice: the spec documents only `LRSRestore`. Answering 200 with another type for a
/// database LRS did not create is the worst plausible behaviour: a client that adopts any database
/// whose restoreDetails answers would adopt it.
pub(crate) const NOT_LRS_TYPE: &str = "PointInTimeRestore";

/// A database key: ARM names are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DbKey {
    subscription: String,
    resource_group: String,
    instance: String,
    database: String,
}

impl DbKey {
    fn new(sub: &str, rg: &str, mi: &str, db: &str) -> Self {
        DbKey {
            subscription: sub.to_ascii_lowercase(),
            resource_group: rg.to_ascii_lowercase(),
            instance: mi.to_ascii_lowercase(),
            database: db.to_ascii_lowercase(),
        }
    }

    fn is_on(&self, sub: &str, rg: &str, mi: &str) -> bool {
        self.same_instance(&DbKey::new(sub, rg, mi, ""))
    }

    fn same_instance(&self, other: &DbKey) -> bool {
        self.subscription == other.subscription
            && self.resource_group == other.resource_group
            && self.instance == other.instance
    }
}

#[derive(Debug, Clone)]
enum Phase {
    Restoring,
    /// completeRestore was accepted; the database is `Online` at `done_at`.
    Completing {
        done_at: OffsetDateTime,
    },
    Online,
}

/// Where a database came from.
#[derive(Debug)]
enum Origin {
    /// A start (PUT with createMode `RestoreExternalBackup`) and its LRS job.
    Lrs {
        container: String,
        folder: String,
        job: Box<RestoreJob>,
        /// Whether `dropAfterSecs` may drop it: a start of a name dropped before is not.
        droppable: bool,
    },
    /// Made through `PUT /_sim/databases/...`: online, not an LRS restore.
    Other { restore_type: String },
}

#[derive(Debug)]
struct SimDatabase {
    id: String,
    name: String,
    /// Tells this database from an earlier one of the same name, for its operations.
    generation: u64,
    location: String,
    collation: String,
    created: OffsetDateTime,
    phase: Phase,
    origin: Origin,
}

impl SimDatabase {
    /// `properties.status`: `Restoring` until completeRestore has finished, then `Online`.
    fn status(&self) -> &'static str {
        match self.phase {
            Phase::Restoring | Phase::Completing { .. } => "Restoring",
            Phase::Online => "Online",
        }
    }

    /// An LRS restore that has not finished: it counts against the concurrent restore limits and
    /// can be dropped.
    fn is_active_restore(&self) -> bool {
        matches!(self.origin, Origin::Lrs { .. }) && !matches!(self.phase, Phase::Online)
    }

    fn to_json(&self) -> Value {
        let mut props = json!({
            "status": self.status(),
            "collation": self.collation,
            "creationDate": timestamp(self.created),
        });
        if matches!(self.origin, Origin::Lrs { .. }) {
            props["createMode"] = json!("RestoreExternalBackup");
        }
        json!({
            "id": self.id,
            "name": self.name,
            "type": DB_TYPE,
            "location": self.location,
            "properties": props,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Start,
    Complete,
    Delete,
}

impl OpKind {
    fn name(self) -> &'static str {
        match self {
            OpKind::Start => "start",
            OpKind::Complete => "complete",
            OpKind::Delete => "delete",
        }
    }
}

/// When an operation ends.
#[derive(Debug, Clone, Copy)]
enum OpEnd {
    /// At a set time (the short model, and deletes).
    At(OffsetDateTime),
    /// When its database is `Online`.
    ///
    /// Model choice: for the create operation this is the default. Microsoft's CLI and PowerShell
    /// guidance (a synchronous start in continuous mode, `-AsJob` advised) suggests the create
    /// operation runs until cutover; the spec does not say. For completeRestore it models Business
    /// Critical, where completion lasts while secondaries seed.
    WhenOnline,
}

#[derive(Debug, Clone)]
struct Operation {
    db: DbKey,
    generation: u64,
    kind: OpKind,
    started: OffsetDateTime,
    end: OpEnd,
}

/// Why a database disappeared without a delete, and when.
#[derive(Debug, Clone)]
struct Gone {
    at: OffsetDateTime,
    code: &'static str,
    message: String,
}

/// Where an operation stands.
#[derive(Debug, Clone)]
enum OpState {
    InProgress,
    Succeeded,
    Failed { code: &'static str, message: String },
}

#[derive(Debug, Default)]
struct World {
    databases: HashMap<DbKey, SimDatabase>,
    operations: HashMap<String, Operation>,
    /// Databases that disappeared while an operation could be following them, by generation.
    gone: HashMap<u64, Gone>,
    /// Names `dropAfterSecs` dropped once: a new start of them is not dropped again.
    dropped_names: HashSet<DbKey>,
    next_generation: u64,
    /// Folder scans handed out, in order ([`Inner::refreshed`]).
    next_scan: u64,
    /// The newest scan applied to each database, by generation: an older scan that finishes later
    /// is not applied over a newer one.
    applied_scan: HashMap<u64, u64>,
}

/// A scan of one database's folder, handed out under the lock and read without it.
struct ScanRequest {
    key: DbKey,
    generation: u64,
    /// Orders scans of one database: only a newer one is applied.
    ticket: u64,
    container: String,
    folder: String,
    /// The files the job has read already, so the scan reads only new or changed ones.
    known: HashMap<String, FolderFile>,
}

impl World {
    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// What a scan of a restoring LRS database's folder needs, taken under the lock.
    fn scan_request(&mut self, key: &DbKey) -> Option<ScanRequest> {
        let db = self.databases.get(key)?;
        let (
            Phase::Restoring,
            Origin::Lrs {
                container,
                folder,
                job,
                ..
            },
        ) = (&db.phase, &db.origin)
        else {
            return None;
        };
        let request = ScanRequest {
            key: key.clone(),
            generation: db.generation,
            ticket: self.next_scan + 1,
            container: container.clone(),
            folder: folder.clone(),
            known: job.known_files(),
        };
        self.next_scan += 1;
        Some(request)
    }

    /// Feeds a finished scan to its job (when it is still the same restore and no newer scan was
    /// applied), then moves the restore on to `now`.
    fn apply_scan(
        &mut self,
        request: ScanRequest,
        found: Result<Vec<FolderFile>, String>,
        now: OffsetDateTime,
    ) {
        let Some(db) = self.databases.get_mut(&request.key) else {
            return;
        };
        if db.generation != request.generation {
            return;
        }
        let (Phase::Restoring, Origin::Lrs { folder, job, .. }) = (&db.phase, &mut db.origin)
        else {
            return;
        };
        let applied = self.applied_scan.entry(request.generation).or_default();
        if request.ticket > *applied {
            *applied = request.ticket;
            match found {
                Ok(files) => {
                    let tail = TailRule::default();
                    let plan = chain::plan(PlanInput {
                        folder,
                        files: &files.iter().collect::<Vec<_>>(),
                        fixed_base: job.fixed_base(),
                        tail: &tail,
                    });
                    job.handle_scan(files, plan, now);
                }
                Err(message) => job.handle_storage_error(message),
            }
        }
        job.advance(now);
    }

    /// Where `op` stands at `now`.
    ///
    /// Model choice: an operation whose database disappears before it ends ends `Failed`, with
    /// `OperationInterrupted` for an injected drop and `OperationCancelled` for the 30-day
    /// cancellation or a DELETE (both documented for PUT as 409); Microsoft does not document
    /// what the create operation reports then.
    fn state_of(&self, op: &Operation, now: OffsetDateTime) -> OpState {
        let alive = self
            .databases
            .get(&op.db)
            .filter(|d| d.generation == op.generation);
        if op.kind == OpKind::Delete {
            return match op.end {
                OpEnd::At(t) if t > now => OpState::InProgress,
                _ => OpState::Succeeded,
            };
        }
        if let Some(gone) = self.gone.get(&op.generation) {
            let finished_before = match op.end {
                OpEnd::At(t) => t <= gone.at,
                OpEnd::WhenOnline => false,
            };
            if !finished_before {
                return OpState::Failed {
                    code: gone.code,
                    message: gone.message.clone(),
                };
            }
        }
        match op.end {
            OpEnd::At(t) if t <= now => OpState::Succeeded,
            OpEnd::At(_) => OpState::InProgress,
            OpEnd::WhenOnline => match alive {
                Some(d) if matches!(d.phase, Phase::Online) => OpState::Succeeded,
                Some(_) => OpState::InProgress,
                // Deleted by a DELETE: the operation cannot finish.
                None => OpState::Failed {
                    code: "OperationCancelled",
                    message: "The database was deleted while the operation ran.".into(),
                },
            },
        }
    }

    /// Active LRS restores on `key`'s instance and on its subscription.
    ///
    /// Model choice: a restore counts from its accepted start until it is `Online`, dropped or
    /// deleted, so a database whose completion is still running holds its slot.
    fn active_restores(&self, key: &DbKey) -> (usize, usize) {
        let mut instance = 0;
        let mut subscription = 0;
        for (k, d) in &self.databases {
            if k.subscription == key.subscription && d.is_active_restore() {
                subscription += 1;
                if k.same_instance(key) {
                    instance += 1;
                }
            }
        }
        (instance, subscription)
    }
}

/// Everything the routes share.
pub(crate) struct Inner {
    pub config: SimConfig,
    pub clock: Arc<dyn Clock>,
    source: Arc<dyn BlobStore>,
    world: tokio::sync::Mutex<World>,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<FaultState>,
    throttle: Mutex<Throttle>,
    /// Throttling set aside for a while ([`Inner::set_throttling`]).
    throttle_off: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Inner {
    pub fn new(config: SimConfig, source: Arc<dyn BlobStore>, clock: Arc<dyn Clock>) -> Self {
        let faults = FaultState::new(config.faults.clone());
        Inner {
            config,
            clock,
            source,
            world: tokio::sync::Mutex::new(World::default()),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(faults),
            throttle: Mutex::new(Throttle::new(std::time::Instant::now())),
            throttle_off: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn set_throttling(&self, on: bool) {
        if on {
            if let Ok(mut t) = self.throttle.lock() {
                *t = Throttle::new(std::time::Instant::now());
            }
        }
        self.throttle_off
            .store(!on, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut state) = self.faults.lock() {
            *state = FaultState::new(faults);
        }
    }

    fn faults(&self) -> Faults {
        self.faults
            .lock()
            .map(|f| f.faults.clone())
            .unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn stats(&self) -> Value {
        let arm = self
            .throttle
            .lock()
            .map(|t| t.stats(std::time::Instant::now()))
            .unwrap_or(Value::Null);
        json!({ "throttling": self.config.throttle, "arm": arm })
    }

    pub async fn tick(&self) {
        let now = self.clock.now();
        let keys: Vec<DbKey> = self.world.lock().await.databases.keys().cloned().collect();
        drop(self.refreshed(&keys, now).await);
    }

    pub async fn restored_at(&self, db: &str, file: &str) -> Option<OffsetDateTime> {
        let world = self.world.lock().await;
        world
            .databases
            .iter()
            .find_map(|(key, record)| match &record.origin {
                Origin::Lrs { job, .. } if key.database.eq_ignore_ascii_case(db) => {
                    job.restored_at(file)
                }
                _ => None,
            })
    }

    /// One database at a time, so ARM requests interleave with the scans.
    pub async fn tick_databases(&self, names: &[String]) {
        let keys: Vec<DbKey> = {
            let world = self.world.lock().await;
            world
                .databases
                .keys()
                .filter(|k| names.iter().any(|n| n.eq_ignore_ascii_case(&k.database)))
                .cloned()
                .collect()
        };
        for key in keys {
            drop(
                self.refreshed(std::slice::from_ref(&key), self.clock.now())
                    .await,
            );
        }
    }

    /// Brings `keys` up to `now` and returns the world, locked: each database's lifecycle, then a
    /// scan of its folder and its restore progress.
    ///
    /// The folder reads run without the lock, so one database's scan never holds up ARM requests
    /// for the others (Azure has no such global lock); what they found is applied under the lock,
    /// unless a scan handed out later was applied first.
    async fn refreshed(
        &self,
        keys: &[DbKey],
        now: OffsetDateTime,
    ) -> tokio::sync::MutexGuard<'_, World> {
        let requests: Vec<ScanRequest> = {
            let mut world = self.world.lock().await;
            keys.iter()
                .filter_map(|key| {
                    self.lifecycle(&mut world, key, now);
                    world.scan_request(key)
                })
                .collect()
        };
        let mut scans = Vec::with_capacity(requests.len());
        for request in requests {
            let found = self.read_folder(&request).await;
            scans.push((request, found));
        }
        let mut world = self.world.lock().await;
        for (request, found) in scans {
            world.apply_scan(request, found, now);
        }
        world
    }

    /// The changes that need no storage: an injected drop, the 30-day cancellation and the end of
    /// a completion.
    ///
    /// Model choice: a drop (`dropAfterSecs`) takes any LRS database that is not `Online` yet,
    /// during completion too (the guide: a failover after cutover starts drops it), and never one
    /// made through `/_sim/databases`. The 30-day cancellation takes only a database whose
    /// completion was not requested, and drops it as the guide says.
    fn lifecycle(&self, world: &mut World, key: &DbKey, now: OffsetDateTime) {
        let drop_after = self.faults().drop_after_secs;
        let Some(db) = world.databases.get_mut(key) else {
            return;
        };
        let droppable = matches!(
            db.origin,
            Origin::Lrs {
                droppable: true,
                ..
            }
        );
        let drop_at = drop_after
            .filter(|_| droppable && db.is_active_restore())
            .map(|secs| db.created + Duration::seconds_f64(secs));
        let cancel_at =
            matches!(db.phase, Phase::Restoring).then(|| db.created + self.config.cancel_after);
        let gone = match (drop_at, cancel_at) {
            (Some(d), c) if d <= now && c.is_none_or(|c| d <= c) => Some(Gone {
                at: d,
                code: "OperationInterrupted",
                message: format!(
                    "The database '{}' was dropped (injected: a failover during the restore, a Business Critical update or the 30-day cancellation). Start the migration again from a full backup.",
                    db.name
                ),
            }),
            (_, Some(c)) if c <= now => Some(Gone {
                at: c,
                code: "OperationCancelled",
                message: format!(
                    "The LRS job for '{}' was cancelled automatically: it was not completed within the time limit, and the database was dropped.",
                    db.name
                ),
            }),
            _ => None,
        };
        if let Some(gone) = gone {
            warn!(database = %db.name, started = %timestamp(db.created), code = gone.code, "lrs job ended without a cutover: the database is dropped");
            let generation = db.generation;
            if gone.code == "OperationInterrupted" {
                world.dropped_names.insert(key.clone());
            }
            world.databases.remove(key);
            world.gone.insert(generation, gone);
            return;
        }
        if let Phase::Completing { done_at } = db.phase
            && done_at <= now
        {
            info!(database = %db.name, "restore completed: the database is online");
            db.phase = Phase::Online;
        }
    }

    /// Lists the folder and reads the files the job does not know yet, as LRS does on each scan.
    async fn read_folder(&self, request: &ScanRequest) -> Result<Vec<FolderFile>, String> {
        if self.faults().storage_failure {
            return Err("injected storage failure: the storage account cannot be read".into());
        }
        let (container, folder) = (&request.container, &request.folder);
        let listed = list_folder(self.source.as_ref(), container, folder)
            .await
            .map_err(|e| e.0)?;
        let mut files = Vec::with_capacity(listed.len());
        for item in &listed {
            let known = request
                .known
                .get(&item.name)
                .filter(|f| f.size == item.size && f.last_modified == item.last_modified);
            match known {
                Some(known) => files.push(known.clone()),
                None => files.push(
                    read_file(self.source.as_ref(), container, folder, item)
                        .await
                        .map_err(|e| e.0)?,
                ),
            }
        }
        Ok(files)
    }

    /// Makes an `Online` database that no LRS job created; its restoreDetails shows `restore_type`.
    ///
    /// # Errors
    /// When a database of that name exists.
    pub async fn add_other_database(
        &self,
        sub: &str,
        rg: &str,
        mi: &str,
        db: &str,
        restore_type: &str,
    ) -> Result<Value, String> {
        let key = DbKey::new(sub, rg, mi, db);
        let now = self.clock.now();
        let mut world = self.world.lock().await;
        self.lifecycle(&mut world, &key, now);
        if world.databases.contains_key(&key) {
            return Err(format!("database {db} already exists"));
        }
        let generation = world.generation();
        let record = SimDatabase {
            id: database_id(sub, rg, mi, db),
            name: db.to_owned(),
            generation,
            location: self.config.location.clone(),
            collation: "SQL_Latin1_General_CP1_CI_AS".into(),
            created: now,
            phase: Phase::Online,
            origin: Origin::Other {
                restore_type: restore_type.to_owned(),
            },
        };
        let out = record.to_json();
        world.databases.insert(key, record);
        Ok(out)
    }

    fn new_operation(
        &self,
        world: &mut World,
        db: DbKey,
        generation: u64,
        kind: OpKind,
        end: OpEnd,
    ) -> String {
        let id = Uuid::new_v4().to_string();
        world.operations.insert(
            id.clone(),
            Operation {
                db,
                generation,
                kind,
                started: self.clock.now(),
                end,
            },
        );
        id
    }

    fn operation_headers(&self, base: &str, sub: &str, id: &str) -> HeaderMap {
        let loc = &self.config.location;
        let mut headers = HeaderMap::new();
        let aop = format!(
            "{base}/subscriptions/{sub}/providers/Microsoft.Sql/locations/{loc}/managedDatabaseAzureAsyncOperation/{id}?api-version={API_VERSION}"
        );
        let location = format!(
            "{base}/subscriptions/{sub}/providers/Microsoft.Sql/locations/{loc}/managedDatabaseOperationResults/{id}?api-version={API_VERSION}"
        );
        for (name, value) in [
            ("azure-asyncoperation", aop),
            ("location", location),
            ("retry-after", self.config.poll_retry_after_secs.to_string()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        if !self.config.send_async_operation {
            headers.remove("azure-asyncoperation");
        }
        headers
    }
}

type AppState = Arc<Inner>;

/// The app: ARM routes behind the log, throttling, fault and api-version layers; `/_sim` routes
/// beside them.
pub(crate) fn router(state: AppState) -> Router {
    let mi =
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}";
    let db = format!("{mi}/databases/{{db}}");
    let ops = "/subscriptions/{sub}/providers/Microsoft.Sql/locations/{loc}";
    let arm = Router::new()
        .route(mi, get(get_instance))
        .route(&format!("{mi}/databases"), get(list_databases))
        .route(
            &format!("{mi}/providers/Microsoft.Insights/metrics"),
            get(get_metrics),
        )
        .route(
            &db,
            get(get_database).put(put_database).delete(delete_database),
        )
        .route(&format!("{db}/completeRestore"), post(complete_restore))
        .route(
            &format!("{db}/restoreDetails/{{name}}"),
            get(restore_details),
        )
        .route(
            &format!("{ops}/managedDatabaseAzureAsyncOperation/{{id}}"),
            get(poll_async_operation),
        )
        .route(
            &format!("{ops}/managedDatabaseOperationResults/{{id}}"),
            get(poll_location),
        )
        .fallback(unknown_route)
        .layer(middleware::from_fn(require_api_version))
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            throttle_requests,
        ))
        .layer(middleware::from_fn(arm_headers))
        .layer(middleware::from_fn_with_state(state.clone(), log_request));
    let admin = Router::new()
        .route("/_sim/requests", get(list_requests))
        .route("/_sim/clock", post(move_clock))
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/stats", get(get_stats))
        .route(
            "/_sim/databases/{sub}/{rg}/{mi}/{db}",
            put(put_other_database),
        );
    admin.merge(arm).with_state(state)
}

/// An ARM error answer: `{"error":{"code","message"}}`.
fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

// ---- middleware -------------------------------------------------------------------------------

async fn require_api_version(req: Request, next: Next) -> Response {
    let has = req.uri().query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "api-version" && !v.is_empty())
    });
    if !has {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    next.run(req).await
}

async fn inject_faults(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_write = matches!(
        *req.method(),
        Method::PUT | Method::POST | Method::DELETE | Method::PATCH
    );
    let (latency_ms, injected) = match state.faults.lock() {
        Ok(mut f) => (f.faults.latency_ms, f.draw(is_write)),
        Err(_) => (0, Injected::None),
    };
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    match injected {
        Injected::None => next.run(req).await,
        Injected::Throttle { retry_after_secs } => {
            let mut response = arm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "SubscriptionTooManyRequests",
                "Too many requests. Please retry after the time in the Retry-After header (injected fault).",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after_secs));
            response
        }
        Injected::ServerError => arm_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An unexpected error occured while processing the request (injected fault).",
        ),
        Injected::Conflict => arm_error(
            StatusCode::CONFLICT,
            "ConflictingDatabaseOperation",
            "There is an operation in progress on the database (injected fault).",
        ),
    }
}

/// ARM's token buckets: a request that finds its bucket empty is answered 429 with `Retry-After`;
/// every answer says what is left.
///
/// Model choice: a read answer carries only `x-ms-ratelimit-remaining-subscription-reads` and a
/// write answer only `-writes`; `Retry-After` is the whole seconds until the next token (at least
/// one); every path under `/subscriptions/{id}` shares that subscription's buckets in the one
/// region the simulator serves.
async fn throttle_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.config.throttle || state.throttle_off.load(std::sync::atomic::Ordering::SeqCst) {
        return next.run(req).await;
    }
    let kind = if matches!(*req.method(), Method::GET | Method::HEAD) {
        throttle::Kind::Read
    } else {
        throttle::Kind::Write
    };
    let header = match kind {
        throttle::Kind::Read => "x-ms-ratelimit-remaining-subscription-reads",
        throttle::Kind::Write => "x-ms-ratelimit-remaining-subscription-writes",
    };
    let subscription = req
        .uri()
        .path()
        .split('/')
        .skip_while(|s| !s.eq_ignore_ascii_case("subscriptions"))
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let admission = match state.throttle.lock() {
        Ok(mut t) => t.admit(&subscription, kind, std::time::Instant::now()),
        Err(_) => Admission::Admitted { remaining: 0 },
    };
    match admission {
        Admission::Admitted { remaining } => {
            let mut response = next.run(req).await;
            response
                .headers_mut()
                .insert(header, HeaderValue::from(remaining));
            response
        }
        Admission::Throttled { retry_after_secs } => {
            let mut response = arm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "SubscriptionTooManyRequests",
                format!(
                    "Number of requests for subscription '{subscription}' exceeded the limit. Please try again after '{retry_after_secs}' seconds."
                ),
            );
            let headers = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from(retry_after_secs));
            headers.insert(header, HeaderValue::from(0u64));
            response
        }
    }
}

async fn arm_headers(req: Request, next: Next) -> Response {
    let client_id = req.headers().get("x-ms-client-request-id").cloned();
    let mut response = next.run(req).await;
    let id = Uuid::new_v4().to_string();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-ms-request-id", v.clone());
        headers.insert("x-ms-correlation-request-id", v);
    }
    if let Some(v) = client_id {
        headers.insert("x-ms-client-request-id", v);
    }
    response
}

/// Records every ARM request with its answer. SAS tokens are redacted before anything is kept.
async fn log_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return arm_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "the request body is larger than 1 MiB",
            );
        }
    };
    let logged_body = redacted_body(&bytes);
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status().as_u16();
    if method == "DELETE" {
        error!(%path, status, "DELETE received: deleting a restoring database ends its migration for good");
    }
    let entry = LoggedRequest {
        method,
        path,
        status,
        time: timestamp(state.clock.now()),
        body: logged_body,
    };
    if let Ok(mut log) = state.log.lock() {
        log.push(entry);
    }
    response
}

fn redacted_body(bytes: &Bytes) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            redact(&mut v);
            v
        }
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            if text.contains("sig=") {
                json!("<redacted: not json, holds a signature>")
            } else {
                json!(text.chars().take(2048).collect::<String>())
            }
        }
    }
}

fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k.eq_ignore_ascii_case("storageContainerSasToken") {
                    *val = json!("<redacted>");
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

// ---- /_sim ------------------------------------------------------------------------------------

async fn list_requests(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "requests": state.requests() }))
}

async fn move_clock(State(state): State<AppState>, body: Bytes) -> Response {
    let seconds = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("advanceSeconds").and_then(Value::as_f64));
    let Some(seconds) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "send {\"advanceSeconds\": <non-negative number>}"})),
        )
            .into_response();
    };
    if !state.clock.advance(Duration::seconds_f64(seconds)) {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "this clock cannot be moved"})),
        )
            .into_response();
    }
    state.tick().await;
    Json(json!({ "now": timestamp(state.clock.now()) })).into_response()
}

async fn get_stats(State(state): State<AppState>) -> Json<Value> {
    Json(state.stats())
}

/// `PUT /_sim/databases/{sub}/{rg}/{mi}/{db}`: makes an `Online` database that no LRS job created.
async fn put_other_database(
    State(state): State<AppState>,
    Path((sub, rg, mi, db)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        restore_type: Option<String>,
    }
    let parsed = if body.is_empty() {
        Ok(Body { restore_type: None })
    } else {
        serde_json::from_slice::<Body>(&body)
    };
    let restore_type = match parsed {
        Ok(b) => b.restore_type.unwrap_or_else(|| NOT_LRS_TYPE.to_owned()),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("send no body, or {{\"restoreType\": \"<type restoreDetails shows>\"}}: {e}")})),
            )
                .into_response();
        }
    };
    match state
        .add_other_database(&sub, &rg, &mi, &db, &restore_type)
        .await
    {
        Ok(out) => (StatusCode::CREATED, Json(out)).into_response(),
        Err(e) => (StatusCode::CONFLICT, Json(json!({ "error": e }))).into_response(),
    }
}

async fn get_faults(State(state): State<AppState>) -> Json<Faults> {
    Json(state.faults())
}

async fn put_faults(State(state): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => match faults.validate() {
            Ok(()) => {
                state.set_faults(faults.clone());
                Json(faults).into_response()
            }
            Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
        },
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("invalid faults: {e}") })),
        )
            .into_response(),
    }
}

// ---- ARM routes -------------------------------------------------------------------------------

async fn unknown_route(method: Method, uri: axum::http::Uri) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!("the simulator does not serve {method} {}", uri.path()),
    )
}

fn database_id(sub: &str, rg: &str, mi: &str, db: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}/databases/{db}"
    )
}

/// An error answer with the status the spec documents for `code` in `table`, or 400.
fn documented_error(table: &[(u16, &str)], code: &str, message: String) -> Response {
    let status = documented_status(table, code)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    arm_error(status, code, message)
}

async fn get_instance(
    State(state): State<AppState>,
    Path((sub, rg, mi)): Path<(String, String, String)>,
) -> Response {
    use crate::preflight::Tier;
    let config = &state.config;
    let (sku, tier) = match config.tier {
        Tier::BusinessCritical => ("BC_Gen5", "BusinessCritical"),
        Tier::GeneralPurpose | Tier::NextGenGeneralPurpose => ("GP_Gen5", "GeneralPurpose"),
    };
    Json(json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}"),
        "name": mi,
        "type": "Microsoft.Sql/managedInstances",
        "location": config.location,
        "sku": { "name": sku, "tier": tier, "family": "Gen5", "capacity": 8 },
        "properties": {
            "state": "Ready",
            "provisioningState": "Succeeded",
            "vCores": 8,
            "storageSizeInGB": config.storage_gb,
            "databaseFormat": config.update_policy.as_str(),
            "isGeneralPurposeV2": config.tier == Tier::NextGenGeneralPurpose,
            "maintenanceConfigurationId": format!(
                "/subscriptions/{sub}/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/SQL_Default"
            ),
        },
    }))
    .into_response()
}

/// `GET {instance}/databases`: every database on the instance, in one page (`nextLink` absent).
async fn list_databases(
    State(state): State<AppState>,
    Path((sub, rg, mi)): Path<(String, String, String)>,
) -> Response {
    let now = state.clock.now();
    let keys: Vec<DbKey> = (state.world.lock().await)
        .databases
        .keys()
        .filter(|k| k.is_on(&sub, &rg, &mi))
        .cloned()
        .collect();
    let world = state.refreshed(&keys, now).await;
    let mut value: Vec<Value> = keys
        .iter()
        .filter_map(|k| world.databases.get(k).map(SimDatabase::to_json))
        .collect();
    value.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json(json!({ "value": value })).into_response()
}

/// `GET {instance}/providers/Microsoft.Insights/metrics`: `storage_space_used_mb` only, one
/// point (Azure Monitor's Metrics - List shape).
async fn get_metrics(
    State(state): State<AppState>,
    Path((sub, rg, mi)): Path<(String, String, String)>,
    uri: axum::http::Uri,
) -> Response {
    let asked = uri.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| {
            k == "metricnames" && v.split(',').any(|m| m.trim() == "storage_space_used_mb")
        })
    });
    if !asked {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the simulator serves the metric storage_space_used_mb only",
        );
    }
    let used_mb = (state.config.storage_used_gb * 1024.0).max(0.0);
    let id = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}/providers/Microsoft.Insights/metrics/storage_space_used_mb"
    );
    Json(json!({
        "cost": 0,
        "interval": "PT5M",
        "value": [{
            "id": id,
            "type": "Microsoft.Insights/metrics",
            "name": { "value": "storage_space_used_mb", "localizedValue": "Storage space used" },
            "unit": "Count",
            "timeseries": [{ "metadatavalues": [], "data": [
                { "timeStamp": timestamp(state.clock.now()), "average": used_mb, "maximum": used_mb }
            ]}],
        }],
    }))
    .into_response()
}

async fn get_database(
    State(state): State<AppState>,
    Path((sub, rg, mi, db)): Path<(String, String, String, String)>,
) -> Response {
    let key = DbKey::new(&sub, &rg, &mi, &db);
    let now = state.clock.now();
    let world = state.refreshed(std::slice::from_ref(&key), now).await;
    match world.databases.get(&key) {
        Some(d) => Json(d.to_json()).into_response(),
        None => not_found(&db),
    }
}

/// 404 `ResourceNotFound`, documented for GET managed database.
fn not_found(db: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The Resource 'Microsoft.Sql/managedInstances/databases/{db}' was not found."),
    )
}

/// The path segments of a storageContainerUri, decoded.
fn path_segments(uri: &url::Url) -> Vec<String> {
    uri.path_segments()
        .map(|segments| {
            segments
                .filter(|s| !s.is_empty())
                .map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The last two path segments of a storageContainerUri: `<container>/<folder>`.
fn container_and_folder(uri: &url::Url) -> Option<(String, String)> {
    match path_segments(uri).as_slice() {
        [.., container, folder] => Some((container.clone(), folder.clone())),
        _ => None,
    }
}

/// The first path segment (container or folder) holding LRS's reserved word `backup`, in any case.
fn reserved_segment(uri: &url::Url) -> Option<String> {
    path_segments(uri)
        .into_iter()
        .find(|s| s.to_ascii_lowercase().contains("backup"))
}

/// Checks a start's body as ARM and LRS do, and returns the location, collation, container and
/// folder it names.
///
/// Model choice: the spec documents `MissingStorageContainerUri`, `MissingCollation` and
/// `MissingStorageContainerSasToken` for PUT; the other codes here (`InvalidRequestContent`,
/// `LocationRequired`, `InvalidCreateMode`, `ExternalBackupUriMalformed`,
/// `ExternalBackupUriInvalidSchemeOrPort`, `InvalidStorageContainerSasToken`,
/// `InvalidStorageContainerIdentity`, `AutoCompleteRestoreNotSupported`) are ARM's generic codes,
/// codes the spec documents for other operations, or the simulator's own, all answered 400.
fn check_start_body(body: &Bytes) -> Result<(String, String, String, String), Box<Response>> {
    let bad =
        |code: &str, message: &str| Box::new(arm_error(StatusCode::BAD_REQUEST, code, message));
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Err(bad(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        ));
    };
    let props = &body["properties"];
    let text = |v: &Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let Some(location) = text(&body["location"]) else {
        return Err(bad(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    };
    if props["createMode"].as_str() != Some("RestoreExternalBackup") {
        return Err(bad(
            "InvalidCreateMode",
            "The simulator only creates databases with createMode RestoreExternalBackup.",
        ));
    }
    let Some(uri_text) = text(&props["storageContainerUri"]) else {
        return Err(bad(
            "MissingStorageContainerUri",
            "Storage container URI is required.",
        ));
    };
    let Some(collation) = text(&props["collation"]) else {
        return Err(bad("MissingCollation", "Collation is required."));
    };
    let Ok(uri) = url::Url::parse(&uri_text) else {
        return Err(bad(
            "ExternalBackupUriMalformed",
            "The storage container URI is malformed.",
        ));
    };
    if uri.query().is_some() {
        return Err(bad(
            "ExternalBackupUriMalformed",
            "The storage container URI must not hold a query: pass the SAS token in storageContainerSasToken.",
        ));
    }
    let loopback = uri.host_str().is_some_and(is_loopback_host);
    let https_443 = uri.scheme() == "https" && uri.port().is_none_or(|p| p == 443);
    if !(https_443 || (uri.scheme() == "http" && loopback)) {
        return Err(bad(
            "ExternalBackupUriInvalidSchemeOrPort",
            "The storage container URI must use https on port 443 (the simulator also allows http to a loopback emulator).",
        ));
    }
    let Some((container, folder)) = container_and_folder(&uri) else {
        return Err(bad(
            "ExternalBackupUriMalformed",
            "The storage container URI must end with <container>/<folder>.",
        ));
    };
    if let Some(segment) = reserved_segment(&uri) {
        return Err(Box::new(reserved_word(&segment)));
    }
    let identity = props["storageContainerIdentity"]
        .as_str()
        .unwrap_or("SharedAccessSignature");
    if identity.eq_ignore_ascii_case("SharedAccessSignature") {
        match props["storageContainerSasToken"].as_str().map(str::trim) {
            None | Some("") => {
                return Err(bad(
                    "MissingStorageContainerSasToken",
                    "Storage container SAS token is required.",
                ));
            }
            Some(token) if token.starts_with('?') => {
                return Err(bad(
                    "InvalidStorageContainerSasToken",
                    "The SAS token must not start with '?'.",
                ));
            }
            Some(_) => {}
        }
    } else if !identity.eq_ignore_ascii_case("ManagedIdentity") {
        return Err(bad(
            "InvalidStorageContainerIdentity",
            "storageContainerIdentity must be ManagedIdentity or SharedAccessSignature.",
        ));
    }
    if props["autoCompleteRestore"].as_bool() == Some(true) {
        return Err(bad(
            "AutoCompleteRestoreNotSupported",
            "The simulator runs LRS in continuous mode only (autoCompleteRestore false).",
        ));
    }
    Ok((location, collation, container, folder))
}

/// A start whose storage path holds `backup` (the LRS guide, Limitations: "The backup URI path,
/// container name, or folder names can't contain backup or Backup").
///
/// Model choice: the guide names no error code or moment. The simulator refuses the PUT at once with
/// 400 `InvalidDatabaseCreateOrUpdateRequest`, the closest code the spec documents for PUT.
fn reserved_word(segment: &str) -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidDatabaseCreateOrUpdateRequest",
        format!(
            "The storage container URI path segment '{segment}' contains 'backup', a word Log Replay Service reserves: rename the container or folder so that no name in the path contains 'backup' in any case."
        ),
    )
}

/// A start over the concurrent restore limits (100 per instance, 150 per subscription).
///
/// Model choice: the limits are documented, the error is not. The simulator answers 409
/// `ConflictingManagedInstanceOperation` for the instance limit and 429
/// `SubscriptionTooManyCreateUpdateRequests` for the subscription limit, both documented for PUT,
/// without `Retry-After` (nobody knows when a restore ends).
fn over_restore_limit(state: &Inner, world: &World, key: &DbKey) -> Option<Response> {
    let (instance, subscription) = world.active_restores(key);
    if instance >= state.config.instance_restore_limit {
        return Some(arm_error(
            StatusCode::CONFLICT,
            "ConflictingManagedInstanceOperation",
            format!(
                "The managed instance '{}' already runs {instance} Log Replay Service restores, the most it can run at once ({}). Complete or stop one first.",
                key.instance, state.config.instance_restore_limit
            ),
        ));
    }
    if subscription >= state.config.subscription_restore_limit {
        return Some(arm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "SubscriptionTooManyCreateUpdateRequests",
            format!(
                "The subscription '{}' already runs {subscription} Log Replay Service restores, the most it can run at once ({}). Complete or stop one first.",
                key.subscription, state.config.subscription_restore_limit
            ),
        ));
    }
    None
}

async fn put_database(
    State(state): State<AppState>,
    Path((sub, rg, mi, db)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (location, collation, container, folder) = match check_start_body(&body) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    // Model choice: an injected start error comes after the body checks and before the name and
    // limit checks, so a bad body is still reported as such.
    if let Some(code) = Faults::code_for(&state.faults().start_errors, &db) {
        return documented_error(
            codes::PUT_DATABASE,
            code,
            format!("The start of database '{db}' was refused with {code} (injected fault)."),
        );
    }

    let key = DbKey::new(&sub, &rg, &mi, &db);
    let now = state.clock.now();
    let mut world = state.world.lock().await;
    let keys: Vec<DbKey> = world.databases.keys().cloned().collect();
    for k in &keys {
        state.lifecycle(&mut world, k, now);
    }
    if world.databases.contains_key(&key) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "ManagedDatabaseNameInUse",
            format!("Database '{db}' already exists. Choose a different database name."),
        );
    }
    if let Some(refused) = over_restore_limit(&state, &world, &key) {
        return refused;
    }
    let generation = world.generation();
    let droppable = !world.dropped_names.contains(&key);
    let record = SimDatabase {
        id: database_id(&sub, &rg, &mi, &db),
        name: db.clone(),
        generation,
        location,
        collation,
        created: now,
        phase: Phase::Restoring,
        origin: Origin::Lrs {
            container,
            folder,
            job: Box::new(RestoreJob::new(state.config.restore_mbps)),
            droppable,
        },
    };
    info!(database = %db, "lrs started");
    world.databases.insert(key.clone(), record);
    drop(world);
    // Model choice: the folder is read before the PUT is answered, as an LRS that looks at the
    // container when it accepts the job would; when LRS first reads it is not documented, and a
    // slower answer is the harder case for the pipeline's start (it holds the event meanwhile).
    let mut world = state.refreshed(std::slice::from_ref(&key), now).await;
    let end = match state.config.operation_secs {
        Some(secs) => OpEnd::At(now + Duration::seconds_f64(secs.max(0.0))),
        None => OpEnd::WhenOnline,
    };
    let id = state.new_operation(&mut world, key, generation, OpKind::Start, end);
    let headers = state.operation_headers(&base_url(&headers), &sub, &id);
    (StatusCode::ACCEPTED, headers).into_response()
}

async fn delete_database(
    State(state): State<AppState>,
    Path((sub, rg, mi, db)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let key = DbKey::new(&sub, &rg, &mi, &db);
    let mut world = state.world.lock().await;
    let Some(removed) = world.databases.remove(&key) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    error!(database = %db, "database deleted: its lrs job is gone and the migration cannot resume");
    let secs = state.config.operation_secs.unwrap_or(DELETE_SECS).max(0.0);
    let end = OpEnd::At(state.clock.now() + Duration::seconds_f64(secs));
    let id = state.new_operation(&mut world, key, removed.generation, OpKind::Delete, end);
    let headers = state.operation_headers(&base_url(&headers), &sub, &id);
    (StatusCode::ACCEPTED, headers).into_response()
}

/// completeRestore: accepted while the create operation still runs; refused unless `lastBackupName`
/// is the last restored backup.
///
/// Model choice: a second complete, or one after the database is `Online`, answers 400
/// `ExternalBackupAlreadySignaledToComplete`; one for a database LRS did not create answers 400
/// `ExternalBackupRestoreHasNotBeenStarted`. Both codes are documented, the cases are not.
async fn complete_restore(
    State(state): State<AppState>,
    Path((sub, rg, mi, db)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |code: &str, message: String| arm_error(StatusCode::BAD_REQUEST, code, message);
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("lastBackupName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|n| !n.trim().is_empty());
    let Some(name) = name else {
        return bad(
            "InvalidDatabaseCompleteRestoreRequestLastBackupName",
            "lastBackupName is required.".into(),
        );
    };
    if name.contains(['\n', '\r']) {
        return bad(
            "LastBackupNameHasNewline",
            "lastBackupName must not hold a newline.".into(),
        );
    }
    if !name.is_ascii() {
        return bad(
            "LastBackupNameHasNonAsciiCharacter",
            "lastBackupName must hold ASCII characters only.".into(),
        );
    }
    let key = DbKey::new(&sub, &rg, &mi, &db);
    let now = state.clock.now();
    let mut world = state.refreshed(std::slice::from_ref(&key), now).await;
    let Some(record) = world.databases.get_mut(&key) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceDoesNotExist",
            format!("Database '{db}' does not exist or has no restore in progress."),
        );
    };
    let generation = record.generation;
    let last = match (&record.phase, &record.origin) {
        (_, Origin::Other { .. }) => {
            return bad(
                "ExternalBackupRestoreHasNotBeenStarted",
                format!("Database '{db}' is not being restored by Log Replay Service."),
            );
        }
        (Phase::Completing { .. } | Phase::Online, _) => {
            return bad(
                "ExternalBackupAlreadySignaledToComplete",
                "Complete has already been signaled for this restore.".into(),
            );
        }
        (Phase::Restoring, Origin::Lrs { job, .. }) => job.last_restored_file().map(str::to_owned),
    };
    if last.as_deref() != Some(name.as_str()) {
        let shown = last.unwrap_or_else(|| "none yet".into());
        return bad(
            "RequiredBackupIsNotLastRestored",
            format!(
                "The backup '{name}' is not the last restored backup; the last restored backup is '{shown}'."
            ),
        );
    }
    let done_at = now + Duration::seconds_f64(state.config.complete_secs.max(0.0));
    record.phase = Phase::Completing { done_at };
    info!(database = %db, last_backup = %name, "complete signaled");
    let id = state.new_operation(
        &mut world,
        key,
        generation,
        OpKind::Complete,
        OpEnd::WhenOnline,
    );
    let headers = state.operation_headers(&base_url(&headers), &sub, &id);
    (StatusCode::ACCEPTED, headers).into_response()
}

/// GET restoreDetails. Every error answer is 400, as the spec documents for this operation.
async fn restore_details(
    State(state): State<AppState>,
    Path((sub, rg, mi, db, name)): Path<(String, String, String, String, String)>,
) -> Response {
    if let Some(code) = Faults::code_for(&state.faults().restore_details_errors, &db) {
        return documented_error(
            codes::RESTORE_DETAILS,
            code,
            format!("Restore details of database '{db}' answer {code} (injected fault)."),
        );
    }
    let key = DbKey::new(&sub, &rg, &mi, &db);
    let now = state.clock.now();
    let world = state.refreshed(std::slice::from_ref(&key), now).await;
    let Some(record) = world.databases.get(&key) else {
        return not_available(&db);
    };
    let properties = match (&record.phase, &record.origin) {
        (_, Origin::Other { restore_type }) => json!({ "type": restore_type }),
        (Phase::Completing { .. } | Phase::Online, _) => return not_restoring(&db),
        (Phase::Restoring, Origin::Lrs { job, .. }) => job.details(now),
    };
    Json(json!({
        "properties": properties,
        "id": format!("{}/restoreDetails/{name}", record.id),
        "name": name,
        "type": "Microsoft.Sql/managedInstances/databases/restoreDetails",
    }))
    .into_response()
}

/// restoreDetails of a database that does not exist (never started, deleted, dropped or cancelled).
///
/// Model choice: the spec documents `RestoreDetailsNotAvailableOrExpired` ("not available, or have
/// expired") but not which case answers it; the simulator answers it for every missing database.
fn not_available(db: &str) -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "RestoreDetailsNotAvailableOrExpired",
        format!(
            "Requested restore details are not available, or have expired, for database '{db}'."
        ),
    )
}

/// restoreDetails once completeRestore was accepted.
///
/// Model choice: the spec documents `ManagedDatabaseNotInRestoringState` without saying when it
/// starts. The simulator answers it from the moment completeRestore is accepted, the worst
/// plausible: no restoreDetails is seen during completion, while GET database still says
/// `Restoring` until it is `Online`.
fn not_restoring(db: &str) -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "ManagedDatabaseNotInRestoringState",
        format!("The managed database '{db}' is not in restoring state."),
    )
}

/// Settles an operation at `now`: the phase change it causes has happened by the time it is
/// reported done.
async fn settle(state: &Inner, id: &str) -> Option<(Operation, OpState)> {
    let now = state.clock.now();
    let op = state.world.lock().await.operations.get(id)?.clone();
    let world = state.refreshed(std::slice::from_ref(&op.db), now).await;
    let status = world.state_of(&op, now);
    Some((op, status))
}

fn operation_not_found(id: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "OperationIdNotFound",
        format!("operation {id} not found"),
    )
}

async fn poll_async_operation(
    State(state): State<AppState>,
    Path((_sub, _loc, id)): Path<(String, String, String)>,
) -> Response {
    let Some((op, status)) = settle(&state, &id).await else {
        return operation_not_found(&id);
    };
    let mut body = json!({
        "name": id,
        "startTime": timestamp(op.started),
        "operation": op.kind.name(),
    });
    match &status {
        OpState::InProgress => body["status"] = json!("InProgress"),
        OpState::Succeeded => body["status"] = json!("Succeeded"),
        OpState::Failed { code, message } => {
            body["status"] = json!("Failed");
            body["error"] = json!({ "code": code, "message": message });
        }
    }
    let mut response = Json(body).into_response();
    if matches!(status, OpState::InProgress) {
        response.headers_mut().insert(
            "retry-after",
            HeaderValue::from(state.config.poll_retry_after_secs),
        );
    }
    response
}

/// The `Location` poll: 202 while running, 204 when done, and a failed operation's error with the
/// status the spec documents for its code.
///
/// Model choice: ARM's `Location` protocol says a failed operation answers its error, not with
/// which status; the simulator uses the status the spec documents for that code on PUT (409).
async fn poll_location(
    State(state): State<AppState>,
    Path((sub, _loc, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some((_op, status)) = settle(&state, &id).await else {
        return operation_not_found(&id);
    };
    match status {
        OpState::Succeeded => StatusCode::NO_CONTENT.into_response(),
        OpState::Failed { code, message } => documented_error(codes::PUT_DATABASE, code, message),
        OpState::InProgress => {
            let mut out = state.operation_headers(&base_url(&headers), &sub, &id);
            out.remove("azure-asyncoperation");
            (StatusCode::ACCEPTED, out).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_uris_map_to_container_and_folder_whatever_the_host() {
        let cases = [
            ("https://acct.blob.core.windows.net/c1/db1", ("c1", "db1")),
            (
                "http://127.0.0.1:10000/devstoreaccount1/c1/db1/",
                ("c1", "db1"),
            ),
            (
                "https://acct.blob.core.windows.net/c1/my%20db",
                ("c1", "my db"),
            ),
        ];
        for (uri, (c, f)) in cases {
            let u = url::Url::parse(uri).expect("static url");
            assert_eq!(
                container_and_folder(&u),
                Some((c.to_owned(), f.to_owned())),
                "{uri}"
            );
        }
        let u = url::Url::parse("https://acct.blob.core.windows.net/c1").expect("static url");
        assert_eq!(container_and_folder(&u), None);
    }

    /// A real folder store whose listings of the `slow` container wait until released: a scan
    /// caught in a slow storage call.
    struct HeldListing {
        inner: crate::storage::folder::FolderStore,
        release: tokio::sync::Semaphore,
        waiting: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl BlobStore for HeldListing {
        async fn list(
            &self,
            prefix: &str,
        ) -> Result<Vec<crate::storage::BlobItem>, crate::storage::Error> {
            if prefix.starts_with("slow/") {
                self.waiting.notify_one();
                let _held = self.release.acquire().await;
            }
            self.inner.list(prefix).await
        }
        async fn properties(
            &self,
            name: &str,
        ) -> Result<crate::storage::BlobItem, crate::storage::Error> {
            self.inner.properties(name).await
        }
        async fn read_range(
            &self,
            name: &str,
            offset: u64,
            len: u64,
        ) -> Result<(Bytes, u64), crate::storage::Error> {
            self.inner.read_range(name, offset, len).await
        }
        async fn read_range_if_match(
            &self,
            name: &str,
            offset: u64,
            len: u64,
            etag: &crate::storage::ETag,
        ) -> Result<(Bytes, u64), crate::storage::Error> {
            self.inner
                .read_range_if_match(name, offset, len, etag)
                .await
        }
        fn url(&self, name: &str) -> Result<url::Url, crate::storage::Error> {
            self.inner.url(name)
        }
    }

    fn restoring(world: &mut World, key: &DbKey, container: &str) {
        let generation = world.generation();
        world.databases.insert(
            key.clone(),
            SimDatabase {
                id: database_id("s", "rg", "mi", &key.database),
                name: key.database.clone(),
                generation,
                location: "westeurope".into(),
                collation: "SQL_Latin1_General_CP1_CI_AS".into(),
                created: OffsetDateTime::now_utc(),
                phase: Phase::Restoring,
                origin: Origin::Lrs {
                    container: container.into(),
                    folder: key.database.clone(),
                    job: Box::new(RestoreJob::new(500.0)),
                    droppable: false,
                },
            },
        );
    }

    /// One database's folder scan stuck in storage must not hold up ARM requests about another:
    /// the scan runs without the world's lock (Azure has no global lock over an instance).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_folder_scan_does_not_hold_up_other_databases() {
        let dir = tempfile::tempdir().expect("temp dir");
        for folder in ["slow/a", "fast/b"] {
            std::fs::create_dir_all(dir.path().join(folder)).expect("folder");
        }
        let store = Arc::new(HeldListing {
            inner: crate::storage::folder::FolderStore::new(dir.path()).expect("store"),
            release: tokio::sync::Semaphore::new(0),
            waiting: tokio::sync::Notify::new(),
        });
        let clock: Arc<dyn Clock> = Arc::new(super::super::clock::SystemClock::new());
        let inner = Arc::new(Inner::new(
            SimConfig::folder(dir.path()),
            store.clone(),
            clock,
        ));
        let (slow, fast) = (
            DbKey::new("s", "rg", "mi", "a"),
            DbKey::new("s", "rg", "mi", "b"),
        );
        {
            let mut world = inner.world.lock().await;
            restoring(&mut world, &slow, "slow");
            restoring(&mut world, &fast, "fast");
        }
        let stuck = {
            let inner = inner.clone();
            let slow = slow.clone();
            tokio::spawn(async move {
                drop(inner.refreshed(&[slow], OffsetDateTime::now_utc()).await);
            })
        };
        store.waiting.notified().await;
        let other = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            inner.refreshed(std::slice::from_ref(&fast), OffsetDateTime::now_utc()),
        )
        .await;
        assert!(
            other.is_ok(),
            "the other database waited for the stuck scan"
        );
        drop(other);
        assert!(!stuck.is_finished(), "the slow scan is still held");
        store.release.add_permits(1);
        stuck.await.expect("the slow scan finishes once released");
    }

    #[test]
    fn sas_tokens_are_redacted_from_logged_bodies() {
        let body = Bytes::from_static(
            br#"{"location":"x","properties":{"storageContainerSasToken":"sv=1&sig=SECRET"}}"#,
        );
        let logged = redacted_body(&body);
        assert_eq!(
            logged["properties"]["storageContainerSasToken"],
            "<redacted>"
        );
        assert!(!logged.to_string().contains("SECRET"));
        let logged = redacted_body(&Bytes::from_static(b"sv=1&sig=SECRET"));
        assert!(!logged.to_string().contains("SECRET"));
        assert_eq!(redacted_body(&Bytes::new()), Value::Null);
    }
}
