//! `check`'s target instance: read through ARM (`--instance <resource id>`, with the credentials
//! `status` uses) or given offline (`--tier`, `--update-policy`, `--free-storage-gb`), for the
//! preflight findings (`crate::preflight`).

use anyhow::{Context as _, bail};
use url::Url;

use super::resolve;
use crate::chain::Plan;
use crate::lrs::{ARM_ENDPOINT, InstanceId, LrsClientOptions};
use crate::pipeline::{ArmLrs, LrsApi};
use crate::preflight::{self, InstanceFacts, Tier, UpdatePolicy};

/// The instance flags of `check`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InstanceArgs {
    /// The target managed instance's resource id
    /// (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Sql/managedInstances/<name>):
    /// read its tier, update policy, storage and databases through ARM (LRS_ARM_ENDPOINT).
    #[arg(long, value_name = "RESOURCE_ID")]
    pub instance: Option<String>,
    /// The target's tier, offline: GeneralPurpose, NextGenGeneralPurpose or BusinessCritical.
    #[arg(long)]
    pub tier: Option<Tier>,
    /// The target's update policy, offline: SQLServer2022, SQLServer2025 or AlwaysUpToDate.
    #[arg(long)]
    pub update_policy: Option<UpdatePolicy>,
    /// The target's free storage in GB, offline.
    #[arg(long, value_name = "GB")]
    pub free_storage_gb: Option<f64>,
}

impl InstanceArgs {
    /// The facts to check against: read from ARM when `--instance` is given, then the offline
    /// flags on top (they win).
    ///
    /// # Errors
    /// A malformed resource id or flag, or ARM refusing the read.
    pub fn facts(&self) -> anyhow::Result<InstanceFacts> {
        if let Some(gb) = self.free_storage_gb {
            if !gb.is_finite() || gb < 0.0 {
                bail!("--free-storage-gb must be a number of GB, 0 or more (got {gb})");
            }
        }
        let mut facts = match &self.instance {
            Some(id) => read(&parse_resource_id(id)?)?,
            None => InstanceFacts::default(),
        };
        if let Some(tier) = self.tier {
            facts.tier = Some(tier);
        }
        if let Some(policy) = self.update_policy {
            facts.update_policy = Some(policy);
        }
        if self.free_storage_gb.is_some() {
            let offline = InstanceFacts::offline(None, None, self.free_storage_gb);
            facts.storage_size_mb = offline.storage_size_mb;
            facts.storage_used_mb = offline.storage_used_mb;
        }
        Ok(facts)
    }
}

/// Adds the preflight findings for `target` to the plan (blocking ones make it unable to start).
pub fn apply(
    plan: &mut Plan,
    files: &[crate::chain::FolderFile],
    target: &str,
    facts: &InstanceFacts,
) {
    let found = preflight::check(preflight::PreflightInput {
        plan,
        files,
        target,
        instance: facts,
    });
    if preflight::blocks(&found) {
        plan.can_start = false;
        plan.can_complete = false;
    }
    plan.findings.extend(found);
    plan.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
}

/// `/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Sql/managedInstances/<name>`.
fn parse_resource_id(id: &str) -> anyhow::Result<InstanceId> {
    let parts: Vec<&str> = id.trim().trim_matches('/').split('/').collect();
    let ok = parts.len() == 8
        && parts[0].eq_ignore_ascii_case("subscriptions")
        && parts[2].eq_ignore_ascii_case("resourceGroups")
        && parts[4].eq_ignore_ascii_case("providers")
        && parts[5].eq_ignore_ascii_case("Microsoft.Sql")
        && parts[6].eq_ignore_ascii_case("managedInstances");
    if !ok {
        bail!(
            "--instance {id:?} is not a managed instance resource id: expected \
             /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Sql/managedInstances/<name>"
        );
    }
    InstanceId::new(parts[1], parts[3], parts[7]).context("--instance")
}

fn read(instance: &InstanceId) -> anyhow::Result<InstanceFacts> {
    let endpoint = std::env::var("LRS_ARM_ENDPOINT").unwrap_or_else(|_| ARM_ENDPOINT.to_owned());
    let endpoint = Url::parse(&endpoint).context("LRS_ARM_ENDPOINT is not a url")?;
    let client = resolve::lrs_client(&endpoint, LrsClientOptions::default())?;
    let lrs = ArmLrs::new(client, instance.clone());
    let rt = super::runtime()?;
    rt.block_on(lrs.instance_facts()).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the managed instance {}: {e}",
            instance.instance
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_parse_and_bad_ones_are_refused() {
        let id = parse_resource_id(
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Sql/managedInstances/mi1",
        )
        .expect("valid");
        assert_eq!(
            (
                id.subscription.as_str(),
                id.resource_group.as_str(),
                id.instance.as_str()
            ),
            ("s1", "rg1", "mi1")
        );
        for bad in [
            "",
            "mi1",
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Sql/servers/x",
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Sql/managedInstances/mi1/databases/d",
        ] {
            let err = parse_resource_id(bad).expect_err(bad);
            assert!(err.to_string().contains("managedInstances"), "{err}");
        }
    }

    #[test]
    fn offline_flags_make_facts_and_bad_storage_is_refused() {
        let args = InstanceArgs {
            tier: Some(Tier::GeneralPurpose),
            update_policy: Some(UpdatePolicy::SQLServer2022),
            free_storage_gb: Some(2.0),
            ..InstanceArgs::default()
        };
        let facts = args.facts().expect("valid");
        assert_eq!(facts.free_storage_mb(), Some(2048));
        assert_eq!(facts.tier, Some(Tier::GeneralPurpose));
        let bad = InstanceArgs {
            free_storage_gb: Some(f64::NAN),
            ..InstanceArgs::default()
        };
        assert!(bad.facts().is_err());
    }
}
