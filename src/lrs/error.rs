//! The client's typed error: ARM's status, error code, message and request id, so callers match on
//! codes rather than on strings in messages.

use std::fmt;

/// An error answer from ARM (`{"error":{"code","message"}}`), with what the caller needs to act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    /// The HTTP status.
    pub status: u16,
    /// ARM's error code (`ManagedDatabaseNameInUse`, ...), or the status's reason when the body had
    /// none.
    pub code: String,
    /// ARM's message.
    pub message: String,
    /// `x-ms-request-id`, to quote to Azure support.
    pub request_id: Option<String>,
}

impl fmt::Display for ArmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// What went wrong in a call to ARM.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// ARM answered with an error status.
    #[error("arm refused the call: {0}")]
    Arm(ArmError),
    /// A long-running operation ended, but not with success.
    #[error("the operation ended {status}: {code}: {message}")]
    OperationFailed {
        /// The terminal status (`Failed`, `Canceled`, or the HTTP status of a `Location` poll).
        status: String,
        /// ARM's error code, when it gave one.
        code: String,
        /// ARM's message, when it gave one.
        message: String,
        /// `x-ms-request-id` of the poll that saw the failure.
        request_id: Option<String>,
    },
    /// The answer did not have the documented shape.
    #[error("unexpected answer from arm ({status}) at {path}: {detail}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// The JSON path that failed (`properties.status`), or `.` for the whole body.
        path: String,
        /// What was wrong.
        detail: String,
        /// `x-ms-request-id`.
        request_id: Option<String>,
    },
    /// The request did not get an answer (connection refused, reset, timed out), after the
    /// pipeline's retries.
    #[error("could not reach arm: {message}")]
    Transport {
        /// What the transport said.
        message: String,
    },
    /// No token could be had for ARM.
    #[error("could not get a token for arm: {message}")]
    Credential {
        /// What the credential said.
        message: String,
    },
    /// The caller's input cannot make a valid request.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What to fix.
        reason: String,
    },
    /// A long-running operation did not finish within the time the caller allowed.
    #[error("the operation was still running after {waited_secs} s")]
    Timeout {
        /// How long the client waited, in seconds.
        waited_secs: u64,
    },
}

impl Error {
    /// The HTTP status, when ARM answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Arm(e) => Some(e.status),
            Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// ARM's error code, when ARM gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Arm(e) => Some(&e.code),
            Error::OperationFailed { code, .. } => Some(code),
            _ => None,
        }
    }

    /// ARM's message, when ARM gave one.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Arm(e) => Some(&e.message),
            Error::OperationFailed { message, .. } => Some(message),
            _ => None,
        }
    }

    /// `x-ms-request-id` of the failing answer.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Arm(e) => e.request_id.as_deref(),
            Error::OperationFailed { request_id, .. } | Error::Decode { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// Whether trying the same call again later may succeed: throttling, server errors, busy
    /// databases and transport failures. The pipeline has already retried these a few times.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Arm(e) => {
                e.status == 408
                    || e.status == 429
                    || e.status >= 500
                    || e.code.eq_ignore_ascii_case("ConflictingDatabaseOperation")
                    || e.code.eq_ignore_ascii_case("ManagementServiceDatabaseBusy")
            }
            Error::Transport { .. } | Error::Timeout { .. } => true,
            _ => false,
        }
    }

    fn has_code(&self, wanted: &str) -> bool {
        self.code().is_some_and(|c| c.eq_ignore_ascii_case(wanted))
    }

    /// The database already exists (`ManagedDatabaseNameInUse`, `DuplicateRestoreOperation`,
    /// `RemoteDatabaseExists`): a start was already made.
    pub fn is_name_in_use(&self) -> bool {
        self.has_code("ManagedDatabaseNameInUse")
            || self.has_code("DuplicateRestoreOperation")
            || self.has_code("RemoteDatabaseExists")
    }

    /// Another operation on the database is running (409 `ConflictingDatabaseOperation`).
    pub fn is_conflicting_operation(&self) -> bool {
        self.has_code("ConflictingDatabaseOperation")
    }

    /// ARM throttled the call (429).
    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    /// The resource does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// completeRestore named a file that is not the last restored one
    /// (`RequiredBackupIsNotLastRestored`): wait and try again once it is restored.
    pub fn is_not_last_restored(&self) -> bool {
        self.has_code("RequiredBackupIsNotLastRestored")
    }

    /// completeRestore was already called (`ExternalBackupAlreadySignaledToComplete`). After a
    /// retried complete this means the first one got through.
    pub fn is_already_completing(&self) -> bool {
        self.has_code("ExternalBackupAlreadySignaledToComplete")
    }

    /// LRS could not read the storage container (`BlobStorage*`, `StorageBrokenIssue*`,
    /// `ManagedIdentityIssueDetected*`): the SAS, the identity or the network needs a person.
    pub fn is_storage_problem(&self) -> bool {
        self.code().is_some_and(|c| {
            c.starts_with("BlobStorage")
                || c.starts_with("StorageBrokenIssue")
                || c.starts_with("ManagedIdentityIssueDetected")
        })
    }

    /// The restore plan in the folder is broken (`BrokenRestorePlan*`,
    /// `BackupsFromMultipleDatabasesDetectedInTheContainer*`).
    pub fn is_broken_chain(&self) -> bool {
        self.code().is_some_and(|c| {
            c.starts_with("BrokenRestorePlan")
                || c.starts_with("BackupsFromMultipleDatabasesDetectedInTheContainer")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(status: u16, code: &str) -> Error {
        Error::Arm(ArmError {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("r".into()),
        })
    }

    #[test]
    fn classifies_retryable_errors() {
        assert!(arm(429, "SubscriptionTooManyRequests").is_retryable());
        assert!(arm(500, "InternalServerError").is_retryable());
        assert!(arm(409, "ConflictingDatabaseOperation").is_retryable());
        assert!(!arm(400, "ManagedDatabaseNameInUse").is_retryable());
        assert!(!arm(404, "ResourceNotFound").is_retryable());
        assert!(
            Error::Transport {
                message: "reset".into()
            }
            .is_retryable()
        );
        assert!(!Error::InvalidInput { reason: "x".into() }.is_retryable());
    }

    #[test]
    fn helpers_match_codes_case_insensitively() {
        assert!(arm(400, "managedDatabaseNameInUse").is_name_in_use());
        assert!(arm(409, "RemoteDatabaseExists").is_name_in_use());
        assert!(arm(400, "RequiredBackupIsNotLastRestored").is_not_last_restored());
        assert!(arm(400, "ExternalBackupAlreadySignaledToComplete").is_already_completing());
        assert!(arm(400, "StorageBrokenIssueDetectedWhileInProgress").is_storage_problem());
        assert!(arm(400, "BrokenRestorePlanNoFullBackup").is_broken_chain());
        assert!(arm(404, "ResourceNotFound").is_not_found());
        assert!(!arm(400, "ManagedDatabaseNameInUse").is_not_last_restored());
    }

    #[test]
    fn display_is_lowercase_led_and_carries_the_request_id() {
        let text = arm(400, "ManagedDatabaseNameInUse").to_string();
        assert_eq!(
            text,
            "arm refused the call: 400 ManagedDatabaseNameInUse: m (request id r)"
        );
    }
}
