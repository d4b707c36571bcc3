//! The storage adapters' error: what failed, with the HTTP status, Azure error code and request id
//! when a service answered, and whether trying again may help.
//!
//! Every text that goes into an error passes through [`redact_text`], so no SAS signature or URL
//! query string can reach a log line through `Display` or `Debug`.

use std::fmt;

use super::sas::redact_text;

/// What the storage service said when it refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDetail {
    /// HTTP status code.
    pub status: u16,
    /// Azure error code (`x-ms-error-code`), e.g. `BlobNotFound`, `ConditionNotMet`.
    pub code: Option<String>,
    /// `x-ms-request-id`, to quote to Azure support.
    pub request_id: Option<String>,
    /// The first line of the service's message.
    pub message: Option<String>,
}

impl ServiceDetail {
    /// Build one, redacting every text field.
    pub fn new(
        status: u16,
        code: Option<&str>,
        request_id: Option<&str>,
        message: Option<&str>,
    ) -> Self {
        let message = message
            .and_then(|m| m.lines().next())
            .map(|m| m.trim().trim_end_matches('.'))
            .filter(|m| !m.is_empty())
            .map(redact_text);
        Self {
            status,
            code: code.map(redact_text),
            request_id: request_id.map(redact_text),
            message,
        }
    }
}

impl fmt::Display for ServiceDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

fn with_detail(detail: &Option<ServiceDetail>) -> String {
    detail
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// A storage operation failed.
///
/// Build values with the constructors (`Error::not_found`, ...): they redact their inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob, container or document does not exist.
    #[error("not found: {name}{}", with_detail(detail))]
    NotFound {
        /// What was looked for.
        name: String,
        /// The service's answer, if a service answered.
        detail: Option<ServiceDetail>,
    },
    /// An `If-Match` / `If-None-Match` precondition failed (409 or 412): someone else wrote first.
    #[error(
        "conflict on {name}: it changed since it was read{}",
        with_detail(detail)
    )]
    Conflict {
        /// The document.
        name: String,
        /// The service's answer, if a service answered.
        detail: Option<ServiceDetail>,
    },
    /// A blob name, prefix or key that no store accepts.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (redacted).
        name: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The service refused the request for another reason.
    #[error("{operation} {name} failed: {detail}")]
    Service {
        /// The operation (`read`, `list`, `put`, ...).
        operation: &'static str,
        /// The blob, container or document.
        name: String,
        /// The service's answer.
        detail: ServiceDetail,
    },
    /// No answer: connection refused or reset, timeout, broken body stream.
    #[error("{operation} {name} failed: network error: {message}")]
    Network {
        /// The operation.
        operation: &'static str,
        /// The blob, container or document.
        name: String,
        /// What the transport said (redacted).
        message: String,
    },
    /// Getting a token failed (managed identity, Azure CLI).
    #[error("{operation} {name} failed: could not get a storage token: {message}")]
    Credential {
        /// The operation.
        operation: &'static str,
        /// The blob, container or document.
        name: String,
        /// What the credential said (redacted).
        message: String,
    },
    /// A local file operation failed (folder store).
    #[error("{operation} {path} failed: {message}")]
    Io {
        /// The operation.
        operation: &'static str,
        /// The local path.
        path: String,
        /// The I/O error kind, to tell transient failures from permanent ones.
        kind: std::io::ErrorKind,
        /// The I/O error's text.
        message: String,
    },
    /// Anything else: bad configuration, an answer the adapter could not understand.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// A missing blob, container or document.
    pub fn not_found(name: &str, detail: Option<ServiceDetail>) -> Self {
        Self::NotFound {
            name: redact_text(name),
            detail,
        }
    }

    /// A failed precondition.
    pub fn conflict(name: &str, detail: Option<ServiceDetail>) -> Self {
        Self::Conflict {
            name: redact_text(name),
            detail,
        }
    }

    /// A name no store accepts.
    pub fn invalid_name(name: &str, reason: &str) -> Self {
        Self::InvalidName {
            name: redact_text(name),
            reason: reason.to_owned(),
        }
    }

    /// Any other refusal by the service.
    pub fn service(operation: &'static str, name: &str, detail: ServiceDetail) -> Self {
        Self::Service {
            operation,
            name: redact_text(name),
            detail,
        }
    }

    /// A transport failure.
    pub fn network(operation: &'static str, name: &str, message: &str) -> Self {
        Self::Network {
            operation,
            name: redact_text(name),
            message: redact_text(message),
        }
    }

    /// A token failure.
    pub fn credential(operation: &'static str, name: &str, message: &str) -> Self {
        Self::Credential {
            operation,
            name: redact_text(name),
            message: redact_text(message),
        }
    }

    /// A local I/O failure.
    pub fn io(operation: &'static str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Self::Io {
            operation,
            path: redact_text(&path.display().to_string()),
            kind: err.kind(),
            message: redact_text(&err.to_string()),
        }
    }

    /// Anything else.
    pub fn invalid(message: &str) -> Self {
        Self::Invalid(redact_text(message))
    }

    /// The service's answer, when one came.
    pub fn detail(&self) -> Option<&ServiceDetail> {
        match self {
            Self::NotFound { detail, .. } | Self::Conflict { detail, .. } => detail.as_ref(),
            Self::Service { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The HTTP status, when a service answered.
    pub fn status(&self) -> Option<u16> {
        self.detail().map(|d| d.status)
    }

    /// The Azure error code, when a service answered with one.
    pub fn code(&self) -> Option<&str> {
        self.detail().and_then(|d| d.code.as_deref())
    }

    /// The Azure request id, when a service answered with one.
    pub fn request_id(&self) -> Option<&str> {
        self.detail().and_then(|d| d.request_id.as_deref())
    }

    /// Whether the same request may succeed later: throttling (429), server errors (5xx),
    /// transport failures and transient local I/O. A handler answers 5xx for these so that
    /// Service Bus redelivers the message.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Service { detail, .. } => detail.status == 429 || detail.status >= 500,
            Self::Network { .. } => true,
            Self::Io { kind, .. } => matches!(
                kind,
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    /// Whether this is a lost optimistic-concurrency race.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16) -> Error {
        Error::service(
            "read",
            "sqlfiles/db/x.bak",
            ServiceDetail::new(
                status,
                Some("Code"),
                Some("rid"),
                Some("Msg.\nRequestId:rid"),
            ),
        )
    }

    #[test]
    fn classifies_retryable_errors() {
        assert!(service(429).is_retryable());
        assert!(service(500).is_retryable());
        assert!(service(503).is_retryable());
        assert!(!service(403).is_retryable());
        assert!(!service(400).is_retryable());
        assert!(Error::network("read", "x", "connection refused").is_retryable());
        assert!(!Error::conflict("k", None).is_retryable());
        assert!(!Error::not_found("k", None).is_retryable());
        let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert!(Error::io("read", std::path::Path::new("/x"), &timed_out).is_retryable());
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!Error::io("read", std::path::Path::new("/x"), &denied).is_retryable());
    }

    #[test]
    fn keeps_status_code_and_request_id() {
        let err = service(503);
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.code(), Some("Code"));
        assert_eq!(err.request_id(), Some("rid"));
        assert_eq!(
            err.to_string(),
            "read sqlfiles/db/x.bak failed: status 503 Code: Msg (request id rid)"
        );
    }

    #[test]
    fn redacts_secrets_in_every_text() {
        let sas = "sv=2022-11-02&sp=rl&se=2030-01-01&sig=c2VjcmV0c2lnbmF0dXJl%3D";
        let url = format!("http://127.0.0.1:1/devstoreaccount1/c/x?{sas}");
        let errors = [
            Error::network(
                "read",
                &url,
                &format!("error sending request for url ({url})"),
            ),
            Error::credential("read", &url, &url),
            Error::invalid(&format!("bad {url}")),
            Error::invalid_name(&url, "x"),
            Error::not_found(&url, None),
        ];
        for err in errors {
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains("c2VjcmV0c2lnbmF0dXJl"), "leaked: {text}");
            }
        }
    }
}
