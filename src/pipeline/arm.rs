//! [`LrsApi`] over the ARM client: production, and rehearsals against the simulator over HTTP.

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::lrs_port::{LrsApi, LrsCallError, StartRequest};
use crate::config::StorageIdentity;
use crate::lrs::ops::{CompleteRestore, SasToken, StartRestore, StorageAuth};
use crate::lrs::{self, InstanceId, LrsClient};
use crate::migration::{LrsSnapshot, SetSnapshot};

/// LRS on one managed instance through ARM.
pub struct ArmLrs {
    client: LrsClient,
    instance: InstanceId,
    location: OnceCell<String>,
}

impl ArmLrs {
    /// Wraps a client for one instance.
    pub fn new(client: LrsClient, instance: InstanceId) -> Self {
        ArmLrs {
            client,
            instance,
            location: OnceCell::new(),
        }
    }

    /// The instance's region, read once (every start needs it).
    async fn location(&self) -> Result<String, LrsCallError> {
        self.location
            .get_or_try_init(|| async {
                let mi = self
                    .client
                    .get_managed_instance(&self.instance)
                    .await
                    .map_err(call_error)?;
                Ok(mi.location)
            })
            .await
            .cloned()
    }

    fn database(&self, name: &str) -> Result<lrs::DatabaseId, LrsCallError> {
        self.instance.database(name).map_err(call_error)
    }
}

fn set_snapshot(kind: &str, set: lrs::BackupSetDetails) -> SetSnapshot {
    SetSnapshot {
        kind: kind.to_owned(),
        status: set.status.as_str().to_owned(),
        first_stripe_name: set.first_stripe_name,
        stripes: set.number_of_stripes,
        size_mb: set.backup_size_mb,
        restore_started_at: set.restore_started_timestamp_utc,
        restore_finished_at: set.restore_finished_timestamp_utc,
    }
}

fn call_error(e: lrs::Error) -> LrsCallError {
    LrsCallError {
        status: e.status(),
        code: e.code().map(str::to_owned),
        message: e
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| e.to_string()),
        retryable: e.is_retryable(),
    }
}

#[async_trait]
impl LrsApi for ArmLrs {
    async fn start(&self, request: &StartRequest) -> Result<(), LrsCallError> {
        let location = self.location().await?;
        let auth = match &request.identity {
            StorageIdentity::ManagedIdentity => StorageAuth::ManagedIdentity,
            StorageIdentity::SharedAccessSignature(token) => {
                StorageAuth::SharedAccessSignature(SasToken::new(token).map_err(call_error)?)
            }
        };
        let start = StartRestore::new(
            self.database(&request.database_name)?,
            &location,
            &request.storage_container_uri,
            auth,
            &request.collation,
        )
        .map_err(call_error)?;
        self.client.start(&start).await.map_err(call_error)
    }

    async fn restore_details(&self, database_name: &str) -> Result<LrsSnapshot, LrsCallError> {
        let d = self
            .client
            .restore_details(&self.database(database_name)?)
            .await
            .map_err(call_error)?;
        Ok(LrsSnapshot {
            status: d.status,
            last_restored_file: d.last_restored_file_name,
            current_restoring_file: d.current_restoring_file_name,
            files_restored: d.number_of_files_restored.unwrap_or(0),
            files_queued: d.number_of_files_queued.unwrap_or(0),
            percent_completed: d.percent_completed,
            block_reason: d.block_reason,
            unrestorable_files: d.unrestorable_files.into_iter().map(|f| f.name).collect(),
            last_restored_at: d.last_restored_file_time,
            backup_sets: [
                ("full", d.full_backup_sets),
                ("diff", d.diff_backup_sets),
                ("log", d.log_backup_sets),
            ]
            .into_iter()
            .flat_map(|(kind, sets)| sets.into_iter().map(move |set| set_snapshot(kind, set)))
            .collect(),
        })
    }

    async fn complete(
        &self,
        database_name: &str,
        last_backup_name: &str,
    ) -> Result<(), LrsCallError> {
        let complete = CompleteRestore::new(self.database(database_name)?, last_backup_name)
            .map_err(call_error)?;
        self.client.complete(&complete).await.map_err(call_error)
    }

    async fn database_status(&self, database_name: &str) -> Result<String, LrsCallError> {
        let db = self
            .client
            .get_database(&self.database(database_name)?)
            .await
            .map_err(call_error)?;
        Ok(db.status().as_str().to_owned())
    }
}
