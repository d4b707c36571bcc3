//! Turns configuration into adapters: the same pipeline for `serve`, `status` and `cutover`
//! (against a deployed pipeline) and for rehearsals (against a folder and the simulator).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use anyhow::Context as _;
use url::Url;

use crate::config::{Config, is_loopback};
use crate::lrs::{Auth, LrsClient, LrsClientOptions};
use crate::pipeline::{
    ArmTargets, LrsApi, LrsCallError, OperationState, Pipeline, RestoreView, Settings,
    StartRequest, system_clock,
};
use crate::storage::azure::{AzureBlobStore, AzureStateStore, credential_from_env};
use crate::storage::folder::FolderStateStore;
use crate::storage::location::StorageScope;

/// The pipeline's settings from its configuration.
pub fn settings(config: &Config) -> Settings {
    Settings {
        scope: StorageScope::new(&config.storage_account_url, config.containers.clone()),
        tail_pattern: Some(config.tail_pattern.clone()),
        default_collation: config.default_collation.clone(),
        max_concurrent_restores: config.max_concurrent_restores,
        max_restores_per_subscription: crate::migration::MAX_RESTORES_PER_SUBSCRIPTION,
        targets: config.targets.clone(),
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
    // The account URL's SAS, when it has one, is a secret wherever its text turns up.
    crate::storage::sas::redact_by_value(url);
    let blobs = AzureBlobStore::from_url(url).context("LRS_STORAGE_ACCOUNT_URL")?;
    let state =
        AzureStateStore::from_url(url, &config.state_container).context("LRS_STATE_CONTAINER")?;
    // One ARM client; each database's calls go to its own instance.
    let lrs = ArmTargets::new(lrs_client(
        &config.arm_endpoint,
        LrsClientOptions::default(),
    )?);
    Ok(Pipeline::with_targets(
        Arc::new(blobs),
        Arc::new(state),
        Arc::new(lrs),
        settings(config),
        system_clock(),
    )
    .with_resync_interval(config.resync_interval))
}

/// The deployed pipeline (`None`), or a rehearsal root's state with no LRS attached: commands
/// record what they decide, and the running rehearsal (or timer) carries it out. The temporary
/// staging folder must outlive the pipeline.
pub fn pipeline_for(
    local: Option<&Path>,
    state: Option<&Path>,
) -> anyhow::Result<(Pipeline, Option<tempfile::TempDir>)> {
    let Some(root) = local else {
        let config = Config::from_env().context("bad configuration")?;
        return Ok((azure_pipeline(&config)?, None));
    };
    let root = std::fs::canonicalize(root)
        .with_context(|| format!("{} cannot be read", root.display()))?;
    let dir = super::rehearse::state_dir(&root, state);
    anyhow::ensure!(
        dir.is_dir(),
        "no rehearsal state in {}: run `lrs-autopilot rehearse {}` first",
        dir.display(),
        root.display()
    );
    let (staging, blobs) = super::rehearse::stage(&root)?;
    let settings = Settings {
        scope: StorageScope::new(
            &Url::parse("http://127.0.0.1/rehearsal-account")?,
            vec![super::rehearse::CONTAINER.into()],
        ),
        tail_pattern: None,
        default_collation: "SQL_Latin1_General_CP1_CI_AS".into(),
        max_concurrent_restores: 100,
        max_restores_per_subscription: crate::migration::MAX_RESTORES_PER_SUBSCRIPTION,
        targets: crate::config::Targets::single(super::rehearse::rehearsal_instance()),
        database_name_map: Default::default(),
        storage_identity: crate::config::StorageIdentity::ManagedIdentity,
    };
    let pipeline = Pipeline::new(
        Arc::new(blobs),
        Arc::new(FolderStateStore::new(&dir)?),
        Arc::new(Detached),
        settings,
        system_clock(),
    );
    Ok((pipeline, Some(staging)))
}

/// LRS for a command run beside a rehearsal: every call fails as retryable, so the decision is
/// recorded and the rehearsal's own LRS carries it out on its next tick.
struct Detached;

fn detached() -> LrsCallError {
    LrsCallError {
        status: None,
        code: None,
        message: "LRS is driven by the running rehearsal, not by this command".into(),
        retryable: true,
    }
}

#[async_trait]
impl LrsApi for Detached {
    async fn start(&self, _: &StartRequest) -> Result<Option<String>, LrsCallError> {
        Err(detached())
    }
    async fn restore_details(&self, _: &str) -> Result<RestoreView, LrsCallError> {
        Err(detached())
    }
    async fn complete(&self, _: &str, _: &str) -> Result<Option<String>, LrsCallError> {
        Err(detached())
    }
    async fn poll_operation(&self, _: &str) -> Result<OperationState, LrsCallError> {
        Err(detached())
    }
    async fn database_status(&self, _: &str) -> Result<String, LrsCallError> {
        Err(detached())
    }
    async fn instance_facts(&self) -> Result<crate::preflight::InstanceFacts, LrsCallError> {
        Err(detached())
    }
    fn instance_name(&self) -> String {
        "detached".into()
    }
}
