//! The simulator's ARM surface: routes, LRS's rules for start and complete, long-running
//! operations, the request log and fault injection middleware.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tracing::{error, info, warn};
use uuid::Uuid;

use super::clock::Clock;
use super::faults::{FaultState, Faults, Injected};
use super::restore::{RestoreJob, timestamp};
use super::source::{list_folder, read_file};
use super::{LoggedRequest, SimConfig};
use crate::chain::{self, PlanInput, TailRule};
use crate::lrs::ops::is_loopback_host;
use crate::storage::BlobStore;

const API_VERSION: &str = "2025-01-01";
const MAX_BODY: usize = 1024 * 1024;
const DB_TYPE: &str = "Microsoft.Sql/managedInstances/databases";

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
}

#[derive(Debug, Clone)]
enum Phase {
    Restoring,
    Completing { done_at: OffsetDateTime },
    Online,
}

#[derive(Debug)]
struct SimDatabase {
    id: String,
    name: String,
    location: String,
    collation: String,
    container: String,
    folder: String,
    created: OffsetDateTime,
    ready_at: OffsetDateTime,
    phase: Phase,
    job: RestoreJob,
}

impl SimDatabase {
    fn status(&self) -> &'static str {
        match self.phase {
            Phase::Restoring | Phase::Completing { .. } => "Restoring",
            Phase::Online => "Online",
        }
    }

    fn restore_status(&self) -> &'static str {
        match self.phase {
            Phase::Restoring => "Restoring",
            Phase::Completing { .. } => "Completing",
            Phase::Online => "Completed",
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": DB_TYPE,
            "location": self.location,
            "properties": {
                "status": self.status(),
                "collation": self.collation,
                "creationDate": timestamp(self.created),
                "createMode": "RestoreExternalBackup",
            }
        })
    }
}

#[derive(Debug, Clone)]
struct Operation {
    db: DbKey,
    kind: &'static str,
    started: OffsetDateTime,
    done_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct World {
    databases: HashMap<DbKey, SimDatabase>,
    expired: HashMap<DbKey, OffsetDateTime>,
    operations: HashMap<String, Operation>,
}

/// Everything the routes share.
pub(crate) struct Inner {
    pub config: SimConfig,
    pub clock: Arc<dyn Clock>,
    source: Arc<dyn BlobStore>,
    world: tokio::sync::Mutex<World>,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<FaultState>,
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
        }
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

    pub async fn tick(&self) {
        let now = self.clock.now();
        let mut world = self.world.lock().await;
        let keys: Vec<DbKey> = world.databases.keys().cloned().collect();
        for key in keys {
            self.refresh(&mut world, &key, now).await;
        }
    }

    /// Brings one database up to `now`: the 30-day cancellation, a scan of its folder, restore
    /// progress, and the end of a completion.
    async fn refresh(&self, world: &mut World, key: &DbKey, now: OffsetDateTime) {
        let Some(db) = world.databases.get_mut(key) else {
            return;
        };
        match db.phase {
            Phase::Restoring if now - db.created >= self.config.cancel_after => {
                warn!(
                    database = %db.name,
                    started = %timestamp(db.created),
                    "lrs job cancelled automatically: not completed within the time limit; the database is dropped"
                );
                world.databases.remove(key);
                world.expired.insert(key.clone(), now);
            }
            Phase::Restoring => {
                self.scan(db, now).await;
                db.job.advance(now);
            }
            Phase::Completing { done_at } if done_at <= now => {
                info!(database = %db.name, "restore completed: the database is online");
                db.phase = Phase::Online;
            }
            _ => {}
        }
    }

    async fn scan(&self, db: &mut SimDatabase, now: OffsetDateTime) {
        if self.faults().storage_failure {
            db.job.handle_storage_error(
                "injected storage failure: the storage account cannot be read".into(),
            );
            return;
        }
        let listed = match list_folder(self.source.as_ref(), &db.container, &db.folder).await {
            Ok(listed) => listed,
            Err(e) => {
                db.job.handle_storage_error(e.0);
                return;
            }
        };
        let mut files = Vec::with_capacity(listed.len());
        for item in &listed {
            if let Some(known) = db.job.known(&item.name, item.size, item.last_modified) {
                files.push(known.clone());
                continue;
            }
            match read_file(self.source.as_ref(), &db.container, &db.folder, item).await {
                Ok(file) => files.push(file),
                Err(e) => {
                    db.job.handle_storage_error(e.0);
                    return;
                }
            }
        }
        let tail = TailRule::default();
        let plan = chain::plan(PlanInput {
            folder: &db.folder,
            files: &files,
            fixed_base: db.job.fixed_base(),
            tail: &tail,
        });
        db.job.handle_scan(files, plan, now);
    }

    fn new_operation(&self, world: &mut World, db: DbKey, kind: &'static str, secs: f64) -> String {
        let now = self.clock.now();
        let id = Uuid::new_v4().to_string();
        world.operations.insert(
            id.clone(),
            Operation {
                db,
                kind,
                started: now,
                done_at: now + Duration::seconds_f64(secs.max(0.0)),
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

/// The app: ARM routes behind the log, fault and api-version layers; `/_sim` routes beside them.
pub(crate) fn router(state: AppState) -> Router {
    let mi =
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}";
    let db = format!("{mi}/databases/{{db}}");
    let ops = "/subscriptions/{sub}/providers/Microsoft.Sql/locations/{loc}";
    let arm = Router::new()
        .route(mi, get(get_instance))
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
        .layer(middleware::from_fn(arm_headers))
        .layer(middleware::from_fn_with_state(state.clone(), log_request));
    let admin = Router::new()
        .route("/_sim/requests", get(list_requests))
        .route("/_sim/clock", post(move_clock))
        .route("/_sim/faults", get(get_faults).put(put_faults));
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

async fn get_instance(
    State(state): State<AppState>,
    Path((sub, rg, mi)): Path<(String, String, String)>,
) -> Response {
    Json(json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}"),
        "name": mi,
        "type": "Microsoft.Sql/managedInstances",
        "location": state.config.location,
        "properties": { "state": "Ready" },
    }))
    .into_response()
}

async fn get_database(
    State(state): State<AppState>,
    Path((sub, rg, mi, db)): Path<(String, String, String, String)>,
) -> Response {
    let key = DbKey::new(&sub, &rg, &mi, &db);
    let now = state.clock.now();
    let mut world = state.world.lock().await;
    state.refresh(&mut world, &key, now).await;
    match world.databases.get(&key) {
        Some(d) => Json(d.to_json()).into_response(),
        None => not_found(&db),
    }
}

fn not_found(db: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The Resource 'Microsoft.Sql/managedInstances/databases/{db}' was not found."),
    )
}

/// The last two path segments of a storageContainerUri: `<container>/<folder>`.
fn container_and_folder(uri: &url::Url) -> Option<(String, String)> {
    let segments: Vec<String> = uri
        .path_segments()?
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    match segments.as_slice() {
        [.., container, folder] => Some((container.clone(), folder.clone())),
        _ => None,
    }
}

async fn put_database(
    State(state): State<AppState>,
    Path((sub, rg, mi, db)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |code: &str, message: &str| arm_error(StatusCode::BAD_REQUEST, code, message);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        );
    };
    let props = &body["properties"];
    let text = |v: &Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let Some(location) = text(&body["location"]) else {
        return bad(
            "LocationRequired",
            "The location property is required for this definition.",
        );
    };
    if props["createMode"].as_str() != Some("RestoreExternalBackup") {
        return bad(
            "InvalidCreateMode",
            "The simulator only creates databases with createMode RestoreExternalBackup.",
        );
    }
    let Some(uri_text) = text(&props["storageContainerUri"]) else {
        return bad(
            "MissingStorageContainerUri",
            "Storage container URI is required.",
        );
    };
    let Some(collation) = text(&props["collation"]) else {
        return bad("MissingCollation", "Collation is required.");
    };
    let Ok(uri) = url::Url::parse(&uri_text) else {
        return bad(
            "ExternalBackupUriMalformed",
            "The storage container URI is malformed.",
        );
    };
    if uri.query().is_some() {
        return bad(
            "ExternalBackupUriMalformed",
            "The storage container URI must not hold a query: pass the SAS token in storageContainerSasToken.",
        );
    }
    let loopback = uri.host_str().is_some_and(is_loopback_host);
    let https_443 = uri.scheme() == "https" && uri.port().is_none_or(|p| p == 443);
    if !(https_443 || (uri.scheme() == "http" && loopback)) {
        return bad(
            "ExternalBackupUriInvalidSchemeOrPort",
            "The storage container URI must use https on port 443 (the simulator also allows http to a loopback emulator).",
        );
    }
    let Some((container, folder)) = container_and_folder(&uri) else {
        return bad(
            "ExternalBackupUriMalformed",
            "The storage container URI must end with <container>/<folder>.",
        );
    };
    let identity = props["storageContainerIdentity"]
        .as_str()
        .unwrap_or("SharedAccessSignature");
    if identity.eq_ignore_ascii_case("SharedAccessSignature") {
        match props["storageContainerSasToken"].as_str().map(str::trim) {
            None | Some("") => {
                return bad(
                    "MissingStorageContainerSasToken",
                    "Storage container SAS token is required.",
                );
            }
            Some(token) if token.starts_with('?') => {
                return bad(
                    "InvalidStorageContainerSasToken",
                    "The SAS token must not start with '?'.",
                );
            }
            Some(_) => {}
        }
    } else if !identity.eq_ignore_ascii_case("ManagedIdentity") {
        return bad(
            "InvalidStorageContainerIdentity",
            "storageContainerIdentity must be ManagedIdentity or SharedAccessSignature.",
        );
    }
    if props["autoCompleteRestore"].as_bool() == Some(true) {
        return bad(
            "AutoCompleteRestoreNotSupported",
            "The simulator runs LRS in continuous mode only (autoCompleteRestore false).",
        );
    }

    let key = DbKey::new(&sub, &rg, &mi, &db);
    let now = state.clock.now();
    let mut world = state.world.lock().await;
    state.refresh(&mut world, &key, now).await;
    if world.databases.contains_key(&key) {
        return bad(
            "ManagedDatabaseNameInUse",
            &format!("Database '{db}' already exists. Choose a different database name."),
        );
    }
    let record = SimDatabase {
        id: format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{mi}/databases/{db}"
        ),
        name: db.clone(),
        location,
        collation,
        container,
        folder,
        created: now,
        ready_at: now + Duration::seconds_f64(state.config.operation_secs.max(0.0)),
        phase: Phase::Restoring,
        job: RestoreJob::new(state.config.restore_mbps),
    };
    info!(database = %db, container = %record.container, folder = %record.folder, "lrs started");
    world.databases.insert(key.clone(), record);
    state.refresh(&mut world, &key, now).await;
    let id = state.new_operation(&mut world, key, "start", state.config.operation_secs);
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
    if world.databases.remove(&key).is_none() {
        return StatusCode::NO_CONTENT.into_response();
    }
    error!(database = %db, "database deleted: its lrs job is gone and the migration cannot resume");
    let id = state.new_operation(&mut world, key, "delete", state.config.operation_secs);
    let headers = state.operation_headers(&base_url(&headers), &sub, &id);
    (StatusCode::ACCEPTED, headers).into_response()
}

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
    let mut world = state.world.lock().await;
    state.refresh(&mut world, &key, now).await;
    let Some(record) = world.databases.get_mut(&key) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceDoesNotExist",
            format!("Database '{db}' does not exist or has no restore in progress."),
        );
    };
    if !matches!(record.phase, Phase::Restoring) {
        return bad(
            "ExternalBackupAlreadySignaledToComplete",
            "Complete has already been signaled for this restore.".into(),
        );
    }
    if now < record.ready_at {
        return arm_error(
            StatusCode::CONFLICT,
            "ConflictingDatabaseOperation",
            "The start operation on this database is still in progress.",
        );
    }
    let last = record.job.last_restored_file().map(str::to_owned);
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
    let id = state.new_operation(&mut world, key, "complete", state.config.complete_secs);
    let headers = state.operation_headers(&base_url(&headers), &sub, &id);
    (StatusCode::ACCEPTED, headers).into_response()
}

async fn restore_details(
    State(state): State<AppState>,
    Path((sub, rg, mi, db, name)): Path<(String, String, String, String, String)>,
) -> Response {
    let key = DbKey::new(&sub, &rg, &mi, &db);
    let now = state.clock.now();
    let mut world = state.world.lock().await;
    state.refresh(&mut world, &key, now).await;
    if world.expired.contains_key(&key) && !world.databases.contains_key(&key) {
        return arm_error(
            StatusCode::NOT_FOUND,
            "RestoreDetailsNotAvailableOrExpired",
            "Restore details are not available or have expired: the job was cancelled after 30 days.",
        );
    }
    let Some(record) = world.databases.get(&key) else {
        return not_found(&db);
    };
    Json(json!({
        "properties": record.job.details(record.restore_status(), now),
        "id": format!("{}/restoreDetails/{name}", record.id),
        "name": name,
        "type": "Microsoft.Sql/managedInstances/databases/restoreDetails",
    }))
    .into_response()
}

/// Settles an operation at `now`: the phase change it causes has happened by the time it is
/// reported done.
async fn settle(state: &Inner, id: &str) -> Option<(Operation, bool)> {
    let now = state.clock.now();
    let mut world = state.world.lock().await;
    let op = world.operations.get(id)?.clone();
    state.refresh(&mut world, &op.db, now).await;
    Some((op.clone(), op.done_at <= now))
}

async fn poll_async_operation(
    State(state): State<AppState>,
    Path((_sub, _loc, id)): Path<(String, String, String)>,
) -> Response {
    let Some((op, done)) = settle(&state, &id).await else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("operation {id} not found"),
        );
    };
    let status = if done { "Succeeded" } else { "InProgress" };
    let mut response = Json(json!({
        "name": id,
        "status": status,
        "startTime": timestamp(op.started),
        "operation": op.kind,
    }))
    .into_response();
    if !done {
        response.headers_mut().insert(
            "retry-after",
            HeaderValue::from(state.config.poll_retry_after_secs),
        );
    }
    response
}

async fn poll_location(
    State(state): State<AppState>,
    Path((sub, _loc, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some((_op, done)) = settle(&state, &id).await else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("operation {id} not found"),
        );
    };
    if done {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut out = state.operation_headers(&base_url(&headers), &sub, &id);
    out.remove("azure-asyncoperation");
    (StatusCode::ACCEPTED, out).into_response()
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
