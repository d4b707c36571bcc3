//! The `Migrations` HTTP function: `GET migrations`, `GET migrations/{db}`, and
//! `POST migrations/{db}/cutover|pause|resume|restart`. `{db}` is a folder, a target database name,
//! or `container:folder` when a name matches more than one folder. It answers through the HTTP
//! output binding.
//!
//! Every answer, errors included, is JSON with a reason; a state document that cannot be read is
//! reported as such without failing the calls about other databases. At most
//! [`MAX_CONCURRENT_CALLS`] calls run at once (the others wait), and each holds one state document
//! in memory at a time, so a flood of calls cannot multiply a large document past a bound.

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::protocol::{HttpRequestData, InvocationResponse};
use super::{AppState, HandlerError, decode_invocation, report_config_error};
use crate::migration::{Input, MAX_LAST_BACKUP_NAME_CHARS};
use crate::pipeline::{DatabaseSummary, PipelineError};

/// How many Migrations calls run at once in one handler process.
pub const MAX_CONCURRENT_CALLS: usize = 4;

static CALLS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_CALLS);

pub(super) async fn handle(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<axum::Json<InvocationResponse>, HandlerError> {
    let invocation = decode_invocation(&body)?;
    drop(body);
    let req: HttpRequestData = invocation
        .binding("req")
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| {
            HandlerError::BadMessage(format!("the HTTP request binding is malformed: {e}"))
        })?
        .unwrap_or_default();
    let (status, body) = {
        // Never closed: acquiring only fails on a closed semaphore.
        let _permit = CALLS
            .acquire()
            .await
            .expect("the semaphore is never closed");
        match respond(&state, &req).await {
            Ok(answer) => answer,
            Err(e) => error_answer(e),
        }
    };
    let line = format!(
        "{} {} -> {status}",
        crate::logline::escape(&req.method),
        crate::logline::escape(&req.url)
    );
    Ok(axum::Json(InvocationResponse::http(
        status,
        &body,
        vec![line],
    )))
}

/// A use case's failure as an HTTP answer with a JSON reason.
fn error_answer(e: PipelineError) -> (u16, Value) {
    match &e {
        PipelineError::UnknownDatabase(db) => (
            404,
            json!({ "error": format!("no migration for database {db:?}") }),
        ),
        PipelineError::InvalidInput(reason) => (400, json!({ "error": reason })),
        PipelineError::Ambiguous { .. } | PipelineError::NotRestartable { .. } => {
            (409, json!({ "error": e.to_string() }))
        }
        PipelineError::CorruptState { key, reason } => (
            500,
            json!({ "error": e.to_string(), "unreadable": [{ "key": key, "reason": reason }] }),
        ),
        _ if e.is_access_denied() => {
            report_config_error(&e);
            (
                500,
                json!({ "error": format!("configuration error: {e}"), "configuration": true }),
            )
        }
        _ if e.is_transient() => (
            503,
            json!({ "error": format!("try again later: {e}"), "retryable": true }),
        ),
        _ => (500, json!({ "error": e.to_string() })),
    }
}

async fn respond(state: &AppState, req: &HttpRequestData) -> Result<(u16, Value), PipelineError> {
    let pipeline = &state.pipeline;
    let database = req.param("database");
    let action = req.param("action");
    let method = req.method.to_ascii_uppercase();
    match (method.as_str(), database, action) {
        ("GET", None, None) => {
            let (list, unreadable) = pipeline.summaries().await?;
            let unreadable: Vec<Value> = unreadable
                .into_iter()
                .map(|(key, reason)| json!({ "key": key, "reason": reason }))
                .collect();
            Ok((200, json!({ "databases": list, "unreadable": unreadable })))
        }
        ("GET", Some(db), None) => match pipeline.find(&db).await? {
            Some(s) => Ok((
                200,
                json!({
                    "summary": DatabaseSummary::from(&s),
                    "plan": s.plan,
                    "lrs": s.lrs,
                    "files": s.files.keys().collect::<Vec<_>>(),
                    "rejected": s.rejected,
                    "audit": s.audit,
                }),
            )),
            None => Err(PipelineError::UnknownDatabase(db)),
        },
        ("POST", Some(db), Some(action)) => {
            let input = match action.as_str() {
                "cutover" => match last_backup_name(req) {
                    Ok(last_backup) => Input::Cutover { last_backup },
                    Err(reason) => return Ok((400, json!({ "error": reason }))),
                },
                "pause" => Input::Pause,
                "resume" => Input::Resume,
                "restart" => Input::Restart,
                other => {
                    return Ok((
                        404,
                        json!({ "error": format!("unknown action {:?}: use cutover, pause, resume or restart", crate::migration::cap_text(other.to_owned(), 64)) }),
                    ));
                }
            };
            let s = pipeline.operator(&db, input).await?;
            Ok((200, json!({ "summary": DatabaseSummary::from(&s) })))
        }
        (m, _, _) => Ok((
            405,
            json!({ "error": format!("{:?} is not supported here: GET migrations[/{{db}}] or POST migrations/{{db}}/cutover|pause|resume|restart", crate::migration::cap_text(m.to_owned(), 16)) }),
        )),
    }
}

/// `lastBackupName` from the body (or the query string): absent, or a string the caller must
/// have meant. A value of another type is refused, not ignored. Whether it names a planned log
/// backup is checked against the folder's state by the pipeline.
fn last_backup_name(req: &HttpRequestData) -> Result<Option<String>, String> {
    let body = req.json_body()?;
    let value = match body.get("lastBackupName") {
        Some(v) => Some(v.clone()),
        None => req.query.get("lastBackupName").cloned(),
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name.chars().count() > MAX_LAST_BACKUP_NAME_CHARS => Err(
            format!("lastBackupName is longer than {MAX_LAST_BACKUP_NAME_CHARS} characters"),
        ),
        Some(Value::String(name)) => Ok(Some(name)),
        Some(other) => Err(format!(
            "lastBackupName must be a string (the tail-log backup's file name), not {}",
            match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
                _ => "something else",
            }
        )),
    }
}
