//! [`LrsApi`] over the ARM client: production, and rehearsals against the simulator over HTTP.
//! Start and complete return once ARM accepts; operations are polled one step at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::lrs_port::{
    LrsApi, LrsCallError, LrsTargets, OperationState, RestoreView, StartRequest,
};
use crate::config::StorageIdentity;
use crate::lrs::ops::{Accepted, CompleteRestore, SasToken, StartRestore, StorageAuth};
use crate::lrs::{self, InstanceId, LongRunning, LrsClient, OperationStatus};
use crate::migration::{LrsSnapshot, SetSnapshot, TargetInstance};

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

/// [`ArmLrs`] for every target instance, over one ARM client: one port per instance, made when
/// first asked for and kept (it remembers the instance's region).
pub struct ArmTargets {
    client: LrsClient,
    ports: Mutex<HashMap<String, Arc<ArmLrs>>>,
}

impl ArmTargets {
    /// Ports over `client`.
    pub fn new(client: LrsClient) -> Self {
        ArmTargets {
            client,
            ports: Mutex::new(HashMap::new()),
        }
    }
}

impl LrsTargets for ArmTargets {
    fn port(&self, target: Option<&TargetInstance>) -> Option<Arc<dyn LrsApi>> {
        let target = target?;
        let mut ports = self.ports.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(port) = ports.get(&target.key()) {
            return Some(port.clone());
        }
        // A TargetInstance's parts were checked as ARM path segments when it was parsed.
        let id =
            InstanceId::new(&target.subscription, &target.resource_group, &target.name).ok()?;
        let port = Arc::new(ArmLrs::new(self.client.clone(), id));
        ports.insert(target.key(), port.clone());
        Some(port)
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

fn stored(accepted: Accepted) -> Option<String> {
    match accepted {
        Accepted::Done => None,
        Accepted::Running(op) => Some(op.to_stored()),
    }
}

#[async_trait]
impl LrsApi for ArmLrs {
    async fn instance_facts(&self) -> Result<crate::preflight::InstanceFacts, LrsCallError> {
        let mi = self
            .client
            .get_managed_instance(&self.instance)
            .await
            .map_err(call_error)?;
        let databases = self
            .client
            .list_databases(&self.instance)
            .await
            .map_err(call_error)?;
        // Used storage needs Azure Monitor (Monitoring Reader on the instance): without it the
        // preflight compares with the whole reserved storage only.
        let used = match self.client.storage_used_mb(&self.instance).await {
            Ok(used) => used,
            Err(e) => {
                tracing::warn!(error = %e, "storage_space_used_mb unavailable: give the identity Monitoring Reader on the instance");
                None
            }
        };
        Ok(super::instance::facts_from_arm(
            &self.instance.instance,
            &mi,
            &databases,
            used,
        ))
    }

    fn instance_name(&self) -> String {
        self.instance.instance.clone()
    }

    async fn start(&self, request: &StartRequest) -> Result<Option<String>, LrsCallError> {
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
        self.client
            .begin_start(&start)
            .await
            .map(stored)
            .map_err(call_error)
    }

    async fn restore_details(&self, database_name: &str) -> Result<RestoreView, LrsCallError> {
        let d = self
            .client
            .restore_details(&self.database(database_name)?)
            .await
            .map_err(call_error)?;
        let sets = d
            .all_sets()
            .map(|s| {
                (
                    s.first_stripe_name.clone().unwrap_or_default(),
                    s.status.to_string(),
                )
            })
            .collect();
        Ok(RestoreView {
            snapshot: LrsSnapshot {
                restore_type: d.restore_type,
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
                ..LrsSnapshot::default()
            },
            sets,
        })
    }

    async fn complete(
        &self,
        database_name: &str,
        last_backup_name: &str,
    ) -> Result<Option<String>, LrsCallError> {
        let complete = CompleteRestore::new(self.database(database_name)?, last_backup_name)
            .map_err(call_error)?;
        self.client
            .begin_complete(&complete)
            .await
            .map(stored)
            .map_err(call_error)
    }

    async fn poll_operation(&self, url: &str) -> Result<OperationState, LrsCallError> {
        let operation = LongRunning::from_stored(url).map_err(call_error)?;
        match self.client.poll(&operation).await {
            Ok(OperationStatus::Succeeded) => Ok(OperationState::Succeeded),
            Ok(OperationStatus::InProgress { .. }) => Ok(OperationState::InProgress),
            Err(e @ lrs::Error::OperationFailed { .. }) => {
                Ok(OperationState::Failed(call_error(e)))
            }
            // A `Location` poll reports a failed operation as an error answer.
            Err(lrs::Error::Arm(e))
                if matches!(operation.poll, lrs::PollKind::Location(_))
                    && (400..500).contains(&e.status)
                    && !matches!(e.status, 404 | 408 | 429) =>
            {
                Ok(OperationState::Failed(call_error(lrs::Error::Arm(e))))
            }
            Err(e) => Err(call_error(e)),
        }
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
