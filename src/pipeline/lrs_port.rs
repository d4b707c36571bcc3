//! What the pipeline needs from LRS, as a small trait: the ARM client implements it in production
//! and in rehearsals (against the simulator over HTTP), so the pipeline never sees HTTP details.

use async_trait::async_trait;

use crate::config::StorageIdentity;
use crate::migration::LrsSnapshot;

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
        matches!(
            self.code.as_deref(),
            Some("ManagedDatabaseNameInUse" | "DuplicateRestoreOperation" | "RemoteDatabaseExists")
        )
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

/// The LRS operations the pipeline uses. There is deliberately no delete.
#[async_trait]
pub trait LrsApi: Send + Sync {
    /// Starts LRS in continuous mode (PUT database, createMode RestoreExternalBackup) and waits
    /// until ARM accepts it.
    async fn start(&self, request: &StartRequest) -> Result<(), LrsCallError>;
    /// GET restoreDetails.
    async fn restore_details(&self, database_name: &str) -> Result<LrsSnapshot, LrsCallError>;
    /// POST completeRestore with `lastBackupName`.
    async fn complete(
        &self,
        database_name: &str,
        last_backup_name: &str,
    ) -> Result<(), LrsCallError>;
    /// GET the database's `properties.status`.
    async fn database_status(&self, database_name: &str) -> Result<String, LrsCallError>;
}
