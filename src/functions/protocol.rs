//! The Azure Functions custom handler protocol: the invocation envelope the host posts and the
//! response it expects (shared docs `azure-apis.md` §3).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the host posts to `/<FunctionName>`: `{"Data":{<binding>: value}, "Metadata":{...}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Invocation {
    /// Trigger and input bindings by name.
    #[serde(rename = "Data", default)]
    pub data: BTreeMap<String, Value>,
    /// Trigger metadata; unknown keys are kept and ignored.
    #[serde(rename = "Metadata", default)]
    pub metadata: BTreeMap<String, Value>,
}

impl Invocation {
    /// The binding's value, with any extra layers of JSON string encoding removed.
    pub fn binding(&self, name: &str) -> Option<Value> {
        self.data.get(name).cloned().map(decode_nested)
    }

    /// A metadata value as a plain string (the host JSON-encodes some of them a second time).
    pub fn metadata_str(&self, key: &str) -> Option<String> {
        match self.metadata.get(key).cloned().map(decode_nested)? {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// Strings that hold JSON are parsed again, as often as they parse to something other than a
/// plain string: the host may deliver a Service Bus body encoded once or twice.
pub fn decode_nested(mut value: Value) -> Value {
    for _ in 0..8 {
        let Value::String(s) = &value else { break };
        let trimmed = s.trim_start();
        if !(trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('"')) {
            break;
        }
        match serde_json::from_str::<Value>(s) {
            Ok(inner) => value = inner,
            Err(_) => break,
        }
    }
    value
}

/// What the handler answers: `{"Outputs":{...},"Logs":[...],"ReturnValue":null}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InvocationResponse {
    /// Output bindings by name (the HTTP trigger's `res`).
    #[serde(rename = "Outputs")]
    pub outputs: BTreeMap<String, Value>,
    /// Lines the host adds to the invocation's logs.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    /// Unused by our functions.
    #[serde(rename = "ReturnValue")]
    pub return_value: Option<Value>,
}

impl InvocationResponse {
    /// A response carrying only log lines.
    pub fn logs(logs: Vec<String>) -> Self {
        InvocationResponse {
            logs,
            ..Default::default()
        }
    }

    /// A response for an HTTP trigger: `Outputs.res = {statusCode, body, headers}`.
    pub fn http(status: u16, body: &Value, logs: Vec<String>) -> Self {
        let res = serde_json::json!({
            "statusCode": status.to_string(),
            "body": body.to_string(),
            "headers": {"Content-Type": "application/json"},
        });
        let mut outputs = BTreeMap::new();
        outputs.insert("res".to_owned(), res);
        InvocationResponse {
            outputs,
            logs,
            return_value: None,
        }
    }
}

/// The HTTP trigger's request, as the host forwards it without proxying.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpRequestData {
    /// The full URL.
    #[serde(rename = "Url", default)]
    pub url: String,
    /// GET, POST, ...
    #[serde(rename = "Method", default)]
    pub method: String,
    /// Query parameters.
    #[serde(rename = "Query", default)]
    pub query: BTreeMap<String, Value>,
    /// Route parameters (`database`, `action`).
    #[serde(rename = "Params", default)]
    pub params: BTreeMap<String, Value>,
    /// The body as a string.
    #[serde(rename = "Body", default)]
    pub body: Option<Value>,
}

impl HttpRequestData {
    /// A route parameter as a non-empty string.
    pub fn param(&self, name: &str) -> Option<String> {
        match self.params.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// The body parsed as JSON (an empty body is `Null`).
    pub fn json_body(&self) -> Result<Value, String> {
        match self.body.clone().map(decode_nested) {
            None | Some(Value::Null) => Ok(Value::Null),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(Value::Null),
            Some(Value::String(s)) => {
                serde_json::from_str(&s).map_err(|e| format!("body is not JSON: {e}"))
            }
            Some(other) => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_double_encoded_service_bus_body() {
        let raw = r#"{"Data":{"myQueueItem":"\"{\\\"hello\\\":\\\"world\\\"}\""},
            "Metadata":{"DeliveryCount":"1","MessageId":"\"088fb2b9\"","sys":{"MethodName":"ServiceBusTrigger"},
            "MessageReceiver":{"whatever":[1,2,3]}}}"#;
        let inv: Invocation = serde_json::from_str(raw).unwrap();
        assert_eq!(
            inv.binding("myQueueItem").unwrap(),
            serde_json::json!({"hello":"world"})
        );
        assert_eq!(inv.metadata_str("MessageId").as_deref(), Some("088fb2b9"));
        assert_eq!(inv.metadata_str("DeliveryCount").as_deref(), Some("1"));
    }

    #[test]
    fn leaves_plain_strings_alone() {
        assert_eq!(
            decode_nested(Value::String("abc".into())),
            Value::String("abc".into())
        );
        assert_eq!(
            decode_nested(Value::String("{not json".into())),
            Value::String("{not json".into())
        );
    }

    #[test]
    fn http_response_carries_status_and_body_as_strings() {
        let r = InvocationResponse::http(404, &serde_json::json!({"error":"x"}), vec![]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["Outputs"]["res"]["statusCode"], "404");
        assert_eq!(v["Outputs"]["res"]["body"], r#"{"error":"x"}"#);
    }
}
