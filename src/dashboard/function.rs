//! The `Dashboard` and `DashboardAssets` functions: the same [`Dashboard`] behind the Functions
//! host's custom handler protocol (the host posts an invocation; the page goes back through the
//! HTTP output binding `res`, with the dashboard's security headers).
//!
//! The request's URL may carry the function key (`?code=`): it is read for its origin only and
//! never logged.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use super::page::Links;
use super::server::{Dashboard, Request, Response, Target, process_token};
use crate::functions::AppState;
use crate::functions::protocol::{Invocation, InvocationResponse, decode_nested};
use crate::pipeline::system_clock;

/// The HTTP trigger's request with the parts the dashboard needs.
#[derive(Debug, Default, Deserialize)]
struct HttpRequest {
    #[serde(rename = "Url", default)]
    url: String,
    #[serde(rename = "Method", default)]
    method: String,
    #[serde(rename = "Query", default)]
    query: BTreeMap<String, Value>,
    #[serde(rename = "Headers", default)]
    headers: BTreeMap<String, Value>,
    #[serde(rename = "Params", default)]
    params: BTreeMap<String, Value>,
    #[serde(rename = "Body", default)]
    body: Option<Value>,
}

impl HttpRequest {
    /// A header, case-insensitively; the host sends each as a string or a list of strings.
    fn header(&self, name: &str) -> Option<String> {
        let (_, v) = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    }

    fn text(v: Option<&Value>) -> Option<String> {
        match v? {
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    fn body_text(&self) -> String {
        match self.body.clone().map(decode_nested) {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }

    /// `scheme://host[:port]` of the URL the request reached, without path or query.
    fn origin(&self) -> Option<String> {
        let url = url::Url::parse(&self.url).ok()?;
        Some(url.origin().ascii_serialization())
    }
}

fn decode(body: &Bytes) -> Result<HttpRequest, String> {
    let invocation: Invocation = serde_json::from_slice(body)
        .map_err(|e| format!("the request is not a Functions invocation: {e}"))?;
    invocation
        .binding("req")
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("the HTTP request binding is malformed: {e}"))
        .map(Option::unwrap_or_default)
}

fn respond(r: &Response, line: String) -> axum::Json<InvocationResponse> {
    let headers: serde_json::Map<String, Value> = r
        .headers()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    let res = serde_json::json!({
        "statusCode": r.status.to_string(),
        "body": r.body,
        "headers": headers,
    });
    let mut outputs = BTreeMap::new();
    outputs.insert("res".to_owned(), res);
    axum::Json(InvocationResponse {
        outputs,
        logs: vec![line],
        return_value: None,
    })
}

fn bad_request(why: String) -> axum::Json<InvocationResponse> {
    let r = Response {
        status: 400,
        content_type: "application/json",
        body: serde_json::json!({ "error": why }).to_string(),
        cacheable: false,
    };
    respond(&r, "dashboard: bad invocation".into())
}

/// `POST /Dashboard`: the page (GET), its JSON (`GET ?format=json`), or a cutover (POST).
pub async fn dashboard(
    State(state): State<AppState>,
    body: Bytes,
) -> axum::Json<InvocationResponse> {
    let req = match decode(&body) {
        Ok(r) => r,
        Err(why) => return bad_request(why),
    };
    let method = req.method.to_ascii_uppercase();
    let target = match method.as_str() {
        "POST" => Target::Cutover,
        _ if HttpRequest::text(req.query.get("format")).as_deref() == Some("json") => Target::Json,
        _ => Target::Page,
    };
    let request = Request {
        method: method.clone(),
        target: target.clone(),
        origin: req.header("origin"),
        own_origin: req.origin(),
        wants_json: req
            .header("accept")
            .is_some_and(|a| a.contains("application/json")),
        body: req.body_text(),
    };
    let dashboard = Dashboard::new(
        state.pipeline.clone(),
        Links::functions(),
        process_token(),
        system_clock(),
    );
    let r = dashboard.handle(request).await;
    let line = format!("dashboard {method} {target:?} -> {}", r.status);
    respond(&r, line)
}

/// `POST /DashboardAssets`: the stylesheet, script and icon (anonymous: they hold no data).
pub async fn assets(State(state): State<AppState>, body: Bytes) -> axum::Json<InvocationResponse> {
    let req = match decode(&body) {
        Ok(r) => r,
        Err(why) => return bad_request(why),
    };
    let name = HttpRequest::text(req.params.get("name")).unwrap_or_default();
    let dashboard = Dashboard::new(
        state.pipeline.clone(),
        Links::functions(),
        process_token(),
        system_clock(),
    );
    let r = dashboard
        .handle(Request {
            method: req.method.clone(),
            target: Target::Asset(name),
            ..Request::default()
        })
        .await;
    let line = format!("dashboard asset -> {}", r.status);
    respond(&r, line)
}
