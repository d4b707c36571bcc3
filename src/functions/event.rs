//! Decoding `Microsoft.Storage.BlobCreated` events from Service Bus messages, in the Event Grid or
//! the CloudEvents 1.0 schema. The decoded [`BlobEvent`] and the scope check live in
//! [`crate::storage`], below the shells, because the use cases take them.

use serde_json::Value;

use crate::storage::event::{BLOB_CREATED, BlobEvent};

/// Why a message is not a usable event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not JSON we understand as an event at all.
    #[error("the message is not an Event Grid or CloudEvents event: {0}")]
    NotAnEvent(String),
    /// An event, but a field we need is missing or malformed.
    #[error("the event {id} has no usable {field}")]
    MissingField {
        /// Event id.
        id: String,
        /// The field.
        field: &'static str,
    },
}

/// Parses one event from a decoded message body: an object in either schema, or an array holding
/// exactly one.
///
/// # Errors
/// [`EventError`] when the body is not an event, or lacks the type, id or (for BlobCreated) url.
pub fn parse_event(body: &Value) -> Result<BlobEvent, EventError> {
    let obj = match body {
        Value::Array(items) if items.len() == 1 => &items[0],
        Value::Array(items) => {
            return Err(EventError::NotAnEvent(format!(
                "an array of {} items, expected one event",
                items.len()
            )));
        }
        other => other,
    };
    let Value::Object(map) = obj else {
        return Err(EventError::NotAnEvent(format!("a JSON {}", kind(obj))));
    };
    let str_of = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
    let event_type = str_of("eventType")
        .or_else(|| str_of("type"))
        .ok_or_else(|| EventError::NotAnEvent("no eventType or type field".into()))?;
    let id = str_of("id").ok_or_else(|| EventError::NotAnEvent("no id field".into()))?;
    let data = map
        .get("data")
        .cloned()
        .map(super::protocol::decode_nested)
        .unwrap_or(Value::Null);
    let data_str = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    let content_length = match data.get("contentLength") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let url = data_str("url");
    if event_type == BLOB_CREATED && url.is_none() {
        return Err(EventError::MissingField {
            id,
            field: "data.url",
        });
    }
    Ok(BlobEvent {
        id,
        event_type,
        url: url.unwrap_or_default(),
        content_length,
        blob_type: data_str("blobType"),
        api: data_str("api"),
        etag: data_str("eTag").map(|e| e.trim_matches('"').to_owned()),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_event_grid_schema() {
        let e = parse_event(&json!({"id":"1","eventType":BLOB_CREATED,"subject":"s","data":{
            "api":"PutBlob","contentLength":5,"blobType":"BlockBlob","url":"https://a/b/c/d.bak","eTag":"0x1"}}))
        .unwrap();
        assert!(e.is_blob_created());
        assert_eq!(e.content_length, Some(5));
        assert_eq!(e.url, "https://a/b/c/d.bak");
    }

    #[test]
    fn parses_cloud_events_and_single_item_arrays() {
        let e = parse_event(&json!([{"id":"2","type":BLOB_CREATED,"specversion":"1.0","source":"x","data":{
            "url":"https://a/b/c/d.bak","contentLength":"7","blobType":"PageBlob","eTag":"\"0x2\""}}]))
        .unwrap();
        assert_eq!(e.content_length, Some(7));
        assert!(e.is_page_blob());
        assert_eq!(e.etag.as_deref(), Some("0x2"));
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        assert!(matches!(
            parse_event(&json!("hello")),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(&json!({"hello":"world"})),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(&json!([1, 2])),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(&json!({"id":"1","eventType":BLOB_CREATED,"data":{}})),
            Err(EventError::MissingField {
                field: "data.url",
                ..
            })
        ));
    }
}
