//! The `Migrations` HTTP function: `GET migrations`, `GET migrations/{db}`, and
//! `POST migrations/{db}/cutover|pause|resume|restart`. `{db}` is a folder, a target database name,
//! or `container:folder` when a name matches more than one folder. It answers through the HTTP output binding.

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};

use super::protocol::{HttpRequestData, InvocationResponse};
use super::{AppState, HandlerError, decode_invocation};
use crate::migration::Input;
use crate::pipeline::{DatabaseSummary, PipelineError};

pub(super) async fn handle(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<axum::Json<InvocationResponse>, HandlerError> {
    let invocation = decode_invocation(&body)?;
    let req: HttpRequestData = invocation
        .binding("req")
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| {
            HandlerError::BadMessage(format!("the HTTP request binding is malformed: {e}"))
        })?
        .unwrap_or_default();
    let (status, body) = respond(&state, &req).await?;
    let line = format!("{} {} -> {status}", req.method, req.url);
    Ok(axum::Json(InvocationResponse::http(
        status,
        &body,
        vec![line],
    )))
}

async fn respond(state: &AppState, req: &HttpRequestData) -> Result<(u16, Value), HandlerError> {
    let pipeline = &state.pipeline;
    let database = req.param("database");
    let action = req.param("action");
    let method = req.method.to_ascii_uppercase();
    match (method.as_str(), database, action) {
        ("GET", None, None) => {
            let list: Vec<DatabaseSummary> = pipeline
                .list()
                .await?
                .iter()
                .map(DatabaseSummary::from)
                .collect();
            Ok((200, json!({ "databases": list })))
        }
        ("GET", Some(db), None) => match pipeline.find(&db).await {
            Err(e @ PipelineError::Ambiguous { .. }) => {
                Ok((409, json!({ "error": e.to_string() })))
            }
            Err(e) => Err(e.into()),
            Ok(found) => match found {
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
                None => Ok((
                    404,
                    json!({ "error": format!("no migration for database {db:?}") }),
                )),
            },
        },
        ("POST", Some(db), Some(action)) => {
            let input = match action.as_str() {
                "cutover" => {
                    // The caller's mistake, answered to the caller: a failed invocation would
                    // reach them as a bare 500.
                    let body = match req.json_body() {
                        Ok(body) => body,
                        Err(e) => return Ok((400, json!({ "error": e }))),
                    };
                    let last_backup = body
                        .get("lastBackupName")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| {
                            req.query
                                .get("lastBackupName")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        });
                    if let Some(name) = &last_backup {
                        if name.contains(['\n', '\r']) || !name.is_ascii() {
                            return Ok((
                                400,
                                json!({ "error": "lastBackupName must be one line of ASCII (an LRS rule)" }),
                            ));
                        }
                    }
                    Input::Cutover { last_backup }
                }
                "pause" => Input::Pause,
                "resume" => Input::Resume,
                "restart" => Input::Restart,
                other => {
                    return Ok((
                        404,
                        json!({ "error": format!("unknown action {other:?}: use cutover, pause, resume or restart") }),
                    ));
                }
            };
            match pipeline.operator(&db, input).await {
                Ok(s) => Ok((200, json!({ "summary": DatabaseSummary::from(&s) }))),
                Err(PipelineError::UnknownDatabase(db)) => Ok((
                    404,
                    json!({ "error": format!("no migration for database {db:?}") }),
                )),
                Err(
                    e @ (PipelineError::Ambiguous { .. } | PipelineError::NotRestartable { .. }),
                ) => Ok((409, json!({ "error": e.to_string() }))),
                Err(e) => Err(e.into()),
            }
        }
        (m, _, _) => Ok((
            405,
            json!({ "error": format!("{m} is not supported here: GET migrations[/{{db}}] or POST migrations/{{db}}/cutover|pause|resume|restart") }),
        )),
    }
}
