//! What the pipeline needs from LRS, as a small trait: the ARM client implements it in production
//! and in rehearsals (against the simulator over HTTP), so the pipeline never sees HTTP details.
//! No call waits on a long-running operation: start and complete return once ARM accepts, with the
//! URL to poll, and the timer polls it once per due tick.

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::StorageIdentity;
use crate::lrs::codes;
use crate::migration::{CallError, ErrorClass, LrsSnapshot, TargetInstance};

/// An LRS call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", status.map(|s| format!("HTTP {s} ")).unwrap_or_default(), code.as_deref().unwrap_or("no code"))]
pub struct LrsCallError {
    /// HTTP status, when ARM answered.
    pub status: Option<u16>,
    /// ARM error code (`ManagedDatabaseNameInUse`, ...).
    pub code: Option<String>,
    /// The message.
    pub message: String,
    /// Whether trying again later may succeed (429, 5xx, network).
    pub retryable: bool,
}

impl LrsCallError {
    /// Whether the error says the database name is taken (an earlier start, or a real database).
    pub fn is_name_in_use(&self) -> bool {
        self.code.as_deref().is_some_and(|c| {
            [
                "ManagedDatabaseNameInUse",
                "DuplicateRestoreOperation",
                "RemoteDatabaseExists",
            ]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(c))
        })
    }

    /// Whether ARM answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// The error classified by the code table ([`codes::classify`]), for the state machine. An
    /// error without an HTTP answer (transport, credential) retries when the client says so.
    pub fn classify(&self) -> CallError {
        let classified = codes::classify(self.status, self.code.as_deref());
        let class = match (self.status, self.code.as_deref()) {
            (None, None) if !self.retryable => ErrorClass::Block,
            _ => classified.class,
        };
        CallError {
            status: self.status,
            code: self.code.clone(),
            message: self.message.clone(),
            class,
            advice: classified.message().to_owned(),
        }
    }
}

/// What a start needs.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// The target database name.
    pub database_name: String,
    /// The database folder's URL, without a query string.
    pub storage_container_uri: String,
    /// Managed identity or SAS.
    pub identity: StorageIdentity,
    /// The collation.
    pub collation: String,
}

/// restoreDetails, reduced, with the backup sets for the shell to relate to the tail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreView {
    /// The snapshot the state machine keeps (the set fields are filled by the pipeline).
    pub snapshot: LrsSnapshot,
    /// Every backup set (full, differential, log): `firstStripeName` and `status`.
    pub sets: Vec<(String, String)>,
}

/// One poll of a long-running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    /// Still running.
    InProgress,
    /// Finished successfully.
    Succeeded,
    /// Ended `Failed` or `Canceled`, with ARM's error.
    Failed(LrsCallError),
}

/// The LRS operations the pipeline uses. There is deliberately no delete, and nothing waits on a
/// long-running operation.
#[async_trait]
pub trait LrsApi: Send + Sync {
    /// Starts LRS in continuous mode (PUT database, createMode RestoreExternalBackup) and returns
    /// once ARM accepts it (200/201/202), with the operation's polling URL, if any.
    async fn start(&self, request: &StartRequest) -> Result<Option<String>, LrsCallError>;
    /// GET restoreDetails.
    async fn restore_details(&self, database_name: &str) -> Result<RestoreView, LrsCallError>;
    /// POST completeRestore with `lastBackupName`; returns once ARM accepts, with the polling URL.
    async fn complete(
        &self,
        database_name: &str,
        last_backup_name: &str,
    ) -> Result<Option<String>, LrsCallError>;
    /// Polls a long-running operation once.
    async fn poll_operation(&self, url: &str) -> Result<OperationState, LrsCallError>;
    /// GET the database's `properties.status` (404: [`LrsCallError::is_not_found`]).
    async fn database_status(&self, database_name: &str) -> Result<String, LrsCallError>;
    /// The target instance's facts for the preflight (tier, policy, storage, databases). A port
    /// that cannot read them says so; the pipeline then checks the backups alone. No default: a
    /// wrapper that forgot to forward it would silently turn the preflight off.
    async fn instance_facts(&self) -> Result<crate::preflight::InstanceFacts, LrsCallError>;
    /// The name the instance's cached facts are kept under (`_instance/<name>.json`).
    fn instance_name(&self) -> String;
}

/// LRS by target instance: the pipeline asks for the port of each database's instance.
pub trait LrsTargets: Send + Sync {
    /// The port for `target`; `None` when there is none (no instance is recorded or configured
    /// for the database).
    fn port(&self, target: Option<&TargetInstance>) -> Option<Arc<dyn LrsApi>>;
}

/// One port for every database, whatever its target: rehearsals and tests that drive one
/// instance, and commands run beside a rehearsal.
pub struct OnePort(pub Arc<dyn LrsApi>);

impl LrsTargets for OnePort {
    fn port(&self, _: Option<&TargetInstance>) -> Option<Arc<dyn LrsApi>> {
        Some(self.0.clone())
    }
}

/// The port of a database with no instance: every call fails with the reason, so the start is
/// refused (and blocks) through the usual path.
pub(super) struct NoPort(pub LrsCallError);

#[async_trait]
impl LrsApi for NoPort {
    async fn start(&self, _: &StartRequest) -> Result<Option<String>, LrsCallError> {
        Err(self.0.clone())
    }
    async fn restore_details(&self, _: &str) -> Result<RestoreView, LrsCallError> {
        Err(self.0.clone())
    }
    async fn complete(&self, _: &str, _: &str) -> Result<Option<String>, LrsCallError> {
        Err(self.0.clone())
    }
    async fn poll_operation(&self, _: &str) -> Result<OperationState, LrsCallError> {
        Err(self.0.clone())
    }
    async fn database_status(&self, _: &str) -> Result<String, LrsCallError> {
        Err(self.0.clone())
    }
    async fn instance_facts(&self) -> Result<crate::preflight::InstanceFacts, LrsCallError> {
        Err(self.0.clone())
    }
    fn instance_name(&self) -> String {
        "none".into()
    }
}
