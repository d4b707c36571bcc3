//! Serving the dashboard: one request handler ([`Dashboard::handle`]) over a neutral request and
//! response, wrapped by the CLI's axum server ([`router`]) and by the `Dashboard` function
//! (`crate::functions`), so both serve the same page with the same checks.
//!
//! Safety: a strict Content-Security-Policy (no inline script or style, nothing from elsewhere, no
//! framing); GET never changes anything; the cutover POST needs the server's CSRF token from the
//! page's form, a same-origin `Origin` header, and the database name typed by the operator.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{get, post};
use serde_json::json;
use time::OffsetDateTime;
use tracing::{info, warn};

use super::page::{self, Links};
use super::view::{self, cutover_allowed};
use crate::backup::BackupType;
use crate::chain::FileRead;
use crate::config::StorageIdentity;
use crate::migration::{Input, MigrationState};
use crate::pipeline::{Clock, Pipeline, PipelineError};
use crate::storage::sas::SasToken;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// What was asked, whatever the shell.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: String,
    /// What is asked for.
    pub target: Target,
    /// The `Origin` header, if sent.
    pub origin: Option<String>,
    /// This server's own origin as the request reached it (`http://127.0.0.1:8090`).
    pub own_origin: Option<String>,
    /// The client asked for JSON (`Accept: application/json`).
    pub wants_json: bool,
    /// The body (a urlencoded form for the cutover).
    pub body: String,
}

/// What the request is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Target {
    /// The page.
    #[default]
    Page,
    /// The same data as JSON.
    Json,
    /// A static file by name.
    Asset(String),
    /// The cutover form.
    Cutover,
}

/// The answer, whatever the shell.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// Cache for a while (static files) or never (data).
    pub cacheable: bool,
}

impl Response {
    fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: value.to_string(),
            cacheable: false,
        }
    }

    /// Headers every response carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Content-Type", self.content_type.to_owned()),
            ("Content-Security-Policy", CSP.to_owned()),
            ("X-Content-Type-Options", "nosniff".to_owned()),
            // Not `no-referrer`: browsers then send `Origin: null` with a plain form post, and
            // the cutover's origin check could not tell the page from another site. Same-origin
            // requests only: the page's URL (which may carry `?code=`) never leaves this origin.
            ("Referrer-Policy", "same-origin".to_owned()),
            ("X-Frame-Options", "DENY".to_owned()),
            (
                "Cache-Control",
                if self.cacheable {
                    "public, max-age=300"
                } else {
                    "no-store"
                }
                .to_owned(),
            ),
        ]
    }
}

/// A random token for this process: the cutover form carries it back. Another site can make the
/// operator's browser post to a loopback server, but cannot read the page to learn the token.
pub fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let bytes: [u8; 32] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// The dashboard over a pipeline.
#[derive(Clone)]
pub struct Dashboard {
    pipeline: Pipeline,
    links: Links,
    token: String,
    clock: Clock,
}

impl Dashboard {
    /// A dashboard with these links and CSRF token, reading time from `clock` (a rehearsal's
    /// clock runs fast).
    pub fn new(pipeline: Pipeline, links: Links, token: &str, clock: Clock) -> Self {
        Dashboard {
            pipeline,
            links,
            token: token.to_owned(),
            clock,
        }
    }

    fn sas_expiry(&self) -> Option<OffsetDateTime> {
        match &self.pipeline.settings().storage_identity {
            StorageIdentity::SharedAccessSignature(t) => SasToken::parse(t).ok()?.expiry(),
            StorageIdentity::ManagedIdentity => None,
        }
    }

    async fn estate(&self) -> Result<view::Estate, PipelineError> {
        let states = self.pipeline.list().await?;
        Ok(view::estate(&states, (self.clock)(), self.sas_expiry()))
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        let method = req.method.to_ascii_uppercase();
        let result = match (method.as_str(), &req.target) {
            ("GET" | "HEAD", Target::Asset(name)) => Ok(asset(name)),
            ("GET" | "HEAD", Target::Page) => self.estate().await.map(|e| Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: page::render(&e, &self.links, &self.token),
                cacheable: false,
            }),
            ("GET" | "HEAD", Target::Json) => {
                self.estate().await.map(|e| Response::json(200, &json!(e)))
            }
            ("POST", Target::Cutover) => self.cutover(&req).await,
            (m, _) => Ok(Response::json(
                405,
                &json!({ "error": format!("{m} is not allowed here: the dashboard is read with GET; only a cutover is POSTed") }),
            )),
        };
        match result {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "the dashboard could not read the state");
                let status = if e.is_transient() { 503 } else { 500 };
                Response::json(status, &json!({ "error": e.to_string() }))
            }
        }
    }

    async fn cutover(&self, req: &Request) -> Result<Response, PipelineError> {
        let refuse = |status: u16, message: String| {
            Ok(answer(req.wants_json, status, &message, &self.links))
        };
        // Same origin: a form on another site posting to this server is refused.
        match (&req.origin, &req.own_origin) {
            (Some(o), Some(own)) if o.eq_ignore_ascii_case(own) => {}
            (Some(o), _) => {
                warn!(origin = %o, "a cutover from another origin was refused");
                return refuse(
                    403,
                    "refused: the request did not come from this dashboard's page (Origin differs)"
                        .into(),
                );
            }
            (None, _) => {
                return refuse(403, "refused: the request has no Origin header; send the cutover from the dashboard page".into());
            }
        }
        let form: Vec<(String, String)> = url::form_urlencoded::parse(req.body.as_bytes())
            .into_owned()
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        if !same_secret(field("csrf"), &self.token) {
            return refuse(
                403,
                "refused: the page's token is missing or stale; reload the dashboard and try again"
                    .into(),
            );
        }
        let (container, folder) = (field("container"), field("folder"));
        let Some(state) = self
            .pipeline
            .list()
            .await?
            .into_iter()
            .find(|s| s.container == container && s.folder == folder)
        else {
            return refuse(404, format!("no migration for {container}/{folder}"));
        };
        if field("confirm") != state.database_name {
            return refuse(
                400,
                format!(
                    "not sent: type the database name {} exactly to confirm the cutover",
                    state.database_name
                ),
            );
        }
        if !cutover_allowed(&state) {
            return refuse(
                409,
                format!(
                    "not sent: {} is {}; a cutover can be declared only while LRS restores",
                    state.database_name, state.phase
                ),
            );
        }
        let last = field("lastBackupName");
        if !log_backups(&state).any(|f| f == last) {
            return refuse(
                400,
                format!("not sent: {last:?} is not a log backup in the folder {folder}"),
            );
        }
        // The operator path `POST migrations/{db}/cutover` takes: the state machine decides.
        let key = format!("{container}/{folder}");
        let after = match self
            .pipeline
            .operator(
                &key,
                Input::Cutover {
                    last_backup: Some(last.to_owned()),
                },
            )
            .await
        {
            Ok(s) => s,
            Err(PipelineError::UnknownDatabase(db)) => {
                return refuse(404, format!("no migration for {db}"));
            }
            Err(e) => return Err(e),
        };
        info!(database = %after.database_name, tail = %last, "cutover declared from the dashboard");
        Ok(answer(
            req.wants_json,
            200,
            &format!(
                "cutover declared for {}: tail-log backup {last}; {} now",
                after.database_name, after.phase
            ),
            &self.links,
        ))
    }
}

fn log_backups(state: &MigrationState) -> impl Iterator<Item = &str> {
    state
        .files
        .iter()
        .filter_map(|(name, r)| match &r.file.read {
            FileRead::Read { facts } => facts
                .first_set()
                .filter(|s| s.backup_type == BackupType::Log)
                .map(|_| name.as_str()),
            FileRead::Failed { .. } => None,
        })
}

/// Compares without stopping at the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The cutover's answer: JSON for the page's script, a small page for a plain form post.
fn answer(wants_json: bool, status: u16, message: &str, links: &Links) -> Response {
    if wants_json {
        let key = if status == 200 { "message" } else { "error" };
        return Response::json(status, &json!({ key: message }));
    }
    let body = maud::html! {
        (maud::DOCTYPE)
        html lang="en" { head { meta charset="utf-8"; title { "Cutover" }
            link rel="icon" href={ (links.assets) "icon.svg" } type="image/svg+xml";
            link rel="stylesheet" href={ (links.assets) "dashboard.css" }; }
          body { p { (message) } p { a href=(links.page) { "Back to the dashboard" } } } }
    };
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        body: body.into_string(),
        cacheable: false,
    }
}

fn asset(name: &str) -> Response {
    let (content_type, body) = match name {
        "dashboard.css" => ("text/css; charset=utf-8", page::CSS),
        "dashboard.js" => ("text/javascript; charset=utf-8", page::JS),
        "icon.svg" => ("image/svg+xml", page::ICON),
        _ => {
            return Response::json(404, &json!({ "error": "no such file" }));
        }
    };
    Response {
        status: 200,
        content_type,
        body: body.to_owned(),
        cacheable: true,
    }
}

/// The CLI server's routes (see [`Links::local`]) for a server listening on `listen`.
pub fn router(dashboard: Dashboard, listen: SocketAddr) -> Router {
    Router::new()
        .route("/", get(local))
        .route("/dashboard.json", get(local))
        .route("/assets/{name}", get(local))
        .route("/cutover", post(local))
        .fallback(local)
        .with_state((dashboard, listen))
}

/// Whether a `Host` header names this server: loopback, or the address it listens on. Anything
/// else is a DNS-rebinding page reading the dashboard under its own name.
fn own_host(host: &str, listen: SocketAddr) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == listen.ip())
}

async fn local(
    State((dashboard, listen)): State<(Dashboard, SocketAddr)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> AxumResponse {
    let path = uri.path();
    let target = match path {
        "/" => Some(Target::Page),
        "/dashboard.json" => Some(Target::Json),
        "/cutover" => Some(Target::Cutover),
        p => p
            .strip_prefix("/assets/")
            .map(|n| Target::Asset(n.to_owned())),
    };
    let Some(target) = target else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|h| own_host(h, listen)) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this dashboard answers only to its own address",
        )
            .into_response();
    }
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let req = Request {
        method: method.as_str().to_owned(),
        target,
        origin: header(header::ORIGIN),
        // Plain http: the CLI server never terminates TLS.
        own_origin: header(header::HOST).map(|h| format!("http://{h}")),
        wants_json: header(header::ACCEPT).is_some_and(|a| a.contains("application/json")),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    into_axum(dashboard.handle(req).await)
}

fn into_axum(r: Response) -> AxumResponse {
    let mut response = (
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        r.body.clone(),
    )
        .into_response();
    for (name, value) in r.headers() {
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_or_the_listen_address_is_this_server() {
        let loopback: SocketAddr = "127.0.0.1:8090".parse().expect("addr");
        for host in [
            "127.0.0.1:8090",
            "localhost:8090",
            "LOCALHOST",
            "[::1]:8090",
            "127.0.0.1",
        ] {
            assert!(own_host(host, loopback), "{host}");
        }
        for host in [
            "evil.example:8090",
            "127.0.0.1.evil.example",
            "10.0.0.5:8090",
            "",
        ] {
            assert!(!own_host(host, loopback), "{host}");
        }
        let lan: SocketAddr = "10.0.0.5:8090".parse().expect("addr");
        assert!(own_host("10.0.0.5:8090", lan));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc") && !same_secret("ab", "abc") && !same_secret("", "abc"));
        assert_eq!(process_token().len(), 64);
        assert_eq!(process_token(), process_token());
    }

    #[test]
    fn assets_are_a_fixed_list() {
        assert_eq!(asset("dashboard.js").status, 200);
        assert_eq!(asset("../Cargo.toml").status, 404);
        assert!(!asset("dashboard.css").body.is_empty());
    }
}
