//! Turns configuration into adapters: the same pipeline for `serve`, `status` and `cutover`
//! (against a deployed pipeline) and for rehearsals (against a folder and the simulator).

use std::sync::Arc;

use anyhow::Context as _;
use url::Url;

use crate::config::{Config, is_loopback};
use crate::functions::event::StorageScope;
use crate::lrs::{Auth, InstanceId, LrsClient, LrsClientOptions};
use crate::pipeline::{ArmLrs, Pipeline, Settings, system_clock};
use crate::storage::azure::{AzureBlobStore, AzureStateStore, credential_from_env};

/// The pipeline's settings from its configuration.
pub fn settings(config: &Config) -> Settings {
    Settings {
        scope: StorageScope::new(&config.storage_account_url, config.containers.clone()),
        tail_pattern: Some(config.tail_pattern.clone()),
        default_collation: config.default_collation.clone(),
        max_concurrent_restores: config.max_concurrent_restores,
        database_name_map: config.database_name_map.clone(),
        storage_identity: config.storage_identity.clone(),
    }
}

/// An ARM client for an endpoint: no token for the simulator on loopback http, else the managed
/// identity (in Azure) or the developer tools credential (locally).
pub fn lrs_client(endpoint: &Url, options: LrsClientOptions) -> anyhow::Result<LrsClient> {
    let auth = if endpoint.scheme() == "http" && is_loopback(endpoint) {
        Auth::UnauthenticatedLoopback
    } else {
        Auth::Token(credential_from_env().context("no credential for Azure Resource Manager")?)
    };
    LrsClient::new(endpoint.as_str(), auth, options).context("LRS_ARM_ENDPOINT")
}

/// The production pipeline: Azure Blob Storage for backups and state, ARM for LRS.
pub fn azure_pipeline(config: &Config) -> anyhow::Result<Pipeline> {
    let url = config.storage_account_url.as_str();
    let blobs = AzureBlobStore::from_url(url).context("LRS_STORAGE_ACCOUNT_URL")?;
    let state =
        AzureStateStore::from_url(url, &config.state_container).context("LRS_STATE_CONTAINER")?;
    let t = &config.target;
    let instance = InstanceId::new(&t.subscription_id, &t.resource_group, &t.managed_instance)
        .context("LRS_SUBSCRIPTION_ID / LRS_RESOURCE_GROUP / LRS_MANAGED_INSTANCE")?;
    let lrs = ArmLrs::new(
        lrs_client(&t.arm_endpoint, LrsClientOptions::default())?,
        instance,
    );
    Ok(Pipeline::new(
        Arc::new(blobs),
        Arc::new(state),
        Arc::new(lrs),
        settings(config),
        system_clock(),
    ))
}
