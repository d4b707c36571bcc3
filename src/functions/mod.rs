//! The Azure Functions custom handler: an axum server speaking the host's HTTP protocol, one route
//! per function in `handlers/`. Handlers stay thin: decode, call [`crate::pipeline`], encode.
//!
//! Status codes are how the host decides to retry: 200 for success and for recorded refusals, 400
//! for a message that is not an event at all (it fails, is retried, and reaches the dead-letter
//! queue), 503 for transient trouble (storage, throttling), 500 for a state document a person must
//! look at.

pub mod event;
mod migrations;
pub mod protocol;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;
use tracing::{Level, error, info, warn};

use crate::pipeline::{EventOutcome, Pipeline, PipelineError};
use protocol::{Invocation, InvocationResponse};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub pipeline: Pipeline,
}

/// The handler's routes: `GET /` for the host's health probe and one `POST /<Function>` per
/// function folder in `handlers/`.
pub fn router(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
        let invocation = req
            .headers()
            .get("x-azure-functions-invocationid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        tracing::span!(Level::INFO, "invocation", function = %req.uri().path(), invocation_id = %invocation)
    });
    Router::new()
        .route("/", get(health))
        .route("/BackupCreated", post(backup_created))
        .route("/CutoverTimer", post(cutover_timer))
        .route("/Migrations", post(migrations::handle))
        .route("/Dashboard", post(crate::dashboard::function::dashboard))
        .route("/DashboardAssets", post(crate::dashboard::function::assets))
        .layer(trace)
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

/// The only place errors become the host's response.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The body is not an invocation, or the message is not an event.
    #[error("{0}")]
    BadMessage(String),
    /// A use case failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl IntoResponse for HandlerError {
    fn into_response(self) -> Response {
        let status = match &self {
            HandlerError::BadMessage(_) => StatusCode::BAD_REQUEST,
            HandlerError::Pipeline(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            HandlerError::Pipeline(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let line = crate::logline::escape(&self.to_string()).into_owned();
        if let HandlerError::Pipeline(e) = &self {
            if e.is_access_denied() {
                report_config_error(e);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            warn!(error = %line, "invocation failed, the host will retry");
        } else {
            error!(error = %line, "invocation failed");
        }
        (status, axum::Json(InvocationResponse::logs(vec![line]))).into_response()
    }
}

/// The log line for storage refusing access (a broken role assignment, an expired or narrowed
/// SAS): a configuration error, not a bad file. The alert rule `storage-access-refused`
/// (infra/modules/alerts.bicep) matches its message.
pub(crate) fn report_config_error(e: &PipelineError) {
    error!(
        error = %crate::logline::escape(&e.to_string()),
        "storage access refused: configuration error (check the function app's role assignment on the storage account, or LRS_STORAGE_ACCOUNT_URL's SAS)"
    );
}

fn decode_invocation(body: &Bytes) -> Result<Invocation, HandlerError> {
    serde_json::from_slice(body).map_err(|e| {
        HandlerError::BadMessage(format!("the request is not a Functions invocation: {e}"))
    })
}

async fn backup_created(
    State(state): State<AppState>,
    _headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<InvocationResponse>, HandlerError> {
    let invocation = decode_invocation(&body)?;
    let message = invocation
        .binding("message")
        .or_else(|| {
            invocation
                .data
                .keys()
                .next()
                .and_then(|k| invocation.binding(k))
        })
        .ok_or_else(|| HandlerError::BadMessage("the invocation carries no message".into()))?;
    let message_id = invocation.metadata_str("MessageId").unwrap_or_default();
    let message_id = crate::logline::escape(&message_id).into_owned();
    let event = event::parse_event(&message).map_err(|e| {
        HandlerError::BadMessage(format!(
            "message {message_id}: {e}; it will be dead-lettered"
        ))
    })?;
    let outcome = state.pipeline.blob_created(&event).await?;
    let line = match &outcome {
        EventOutcome::Recorded {
            folder,
            file,
            phase,
        } => format!("recorded {folder}/{file}: {phase}"),
        EventOutcome::Duplicate { file } => format!("already recorded: {file}"),
        EventOutcome::Ignored(why) => format!("ignored: {why}"),
        EventOutcome::Rejected(why) => format!("refused: {why}"),
    };
    let line = crate::logline::escape(&line).into_owned();
    info!(event_id = %crate::logline::escape(&event.id), message_id = %message_id, "{line}");
    Ok(axum::Json(InvocationResponse::logs(vec![line])))
}

async fn cutover_timer(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<axum::Json<InvocationResponse>, HandlerError> {
    // The timer's payload (schedule status) carries nothing we need; accept any invocation.
    if !body.is_empty() {
        decode_invocation(&body)?;
    }
    let report = state.pipeline.tick().await?;
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|(p, n)| format!("{p}={n}"))
        .collect();
    let line = format!(
        "timer: {} databases, {} handled, {} errors; {}",
        report.examined,
        report.handled,
        report.errors.len(),
        phases.join(" ")
    );
    info!("{line}");
    let mut logs = vec![line];
    logs.extend(report.errors);
    Ok(axum::Json(InvocationResponse::logs(logs)))
}
