//! What the preflight knows about the target managed instance: read from ARM by the shell, or
//! given offline (`check --tier --update-policy --free-storage-gb`). Every field may be unknown;
//! a check whose facts are unknown says nothing rather than guess.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The instance's service tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// General Purpose (`sku.tier` GeneralPurpose).
    GeneralPurpose,
    /// Next-gen General Purpose (`sku.tier` GeneralPurpose with `isGeneralPurposeV2`).
    NextGenGeneralPurpose,
    /// Business Critical (`sku.tier` BusinessCritical).
    BusinessCritical,
}

impl Tier {
    /// The most databases one instance of this tier holds (the documented resource limits: 100 on
    /// General Purpose and Business Critical, 500 on Next-gen General Purpose).
    pub fn database_limit(self) -> usize {
        match self {
            Tier::NextGenGeneralPurpose => 500,
            Tier::GeneralPurpose | Tier::BusinessCritical => 100,
        }
    }

    /// Whether memory-optimized (In-Memory OLTP) filegroups can be restored.
    pub fn supports_in_memory_oltp(self) -> bool {
        self == Tier::BusinessCritical
    }

    /// The tier from ARM's `sku.tier` (or `sku.name` prefix `GP_`/`BC_`) and `isGeneralPurposeV2`.
    pub fn from_arm(sku_tier: Option<&str>, sku_name: Option<&str>, gp_v2: bool) -> Option<Tier> {
        let tier = sku_tier.map(str::trim).unwrap_or_default();
        let name = sku_name
            .map(str::trim)
            .unwrap_or_default()
            .to_ascii_uppercase();
        if tier.eq_ignore_ascii_case("BusinessCritical") || name.starts_with("BC_") {
            Some(Tier::BusinessCritical)
        } else if tier.eq_ignore_ascii_case("GeneralPurpose") || name.starts_with("GP_") {
            Some(if gp_v2 {
                Tier::NextGenGeneralPurpose
            } else {
                Tier::GeneralPurpose
            })
        } else {
            None
        }
    }

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::GeneralPurpose => "GeneralPurpose",
            Tier::NextGenGeneralPurpose => "NextGenGeneralPurpose",
            Tier::BusinessCritical => "BusinessCritical",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::GeneralPurpose => "General Purpose",
            Tier::NextGenGeneralPurpose => "Next-gen General Purpose",
            Tier::BusinessCritical => "Business Critical",
        })
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        match key.as_str() {
            "generalpurpose" | "gp" => Ok(Tier::GeneralPurpose),
            "nextgengeneralpurpose" | "nextgengp" | "generalpurposev2" | "gpv2" => {
                Ok(Tier::NextGenGeneralPurpose)
            }
            "businesscritical" | "bc" => Ok(Tier::BusinessCritical),
            _ => Err(format!(
                "unknown tier {s:?}: use GeneralPurpose, NextGenGeneralPurpose or BusinessCritical"
            )),
        }
    }
}

/// The instance's update policy (`properties.databaseFormat`): which SQL engine format its
/// databases have, and so which sources it can restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpdatePolicy {
    /// SQL Server 2022 update policy: restores backups from SQL Server 2022 and earlier.
    SQLServer2022,
    /// SQL Server 2025 update policy: restores backups from SQL Server 2025 and earlier.
    SQLServer2025,
    /// Always-up-to-date: the newest engine, restores every version LRS takes.
    AlwaysUpToDate,
}

impl UpdatePolicy {
    /// The newest source major version the policy restores (16 is 2022, 17 is 2025).
    pub fn max_source_major(self) -> u8 {
        match self {
            UpdatePolicy::SQLServer2022 => 16,
            UpdatePolicy::SQLServer2025 => 17,
            UpdatePolicy::AlwaysUpToDate => u8::MAX,
        }
    }

    /// The `databaseFormat` value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdatePolicy::SQLServer2022 => "SQLServer2022",
            UpdatePolicy::SQLServer2025 => "SQLServer2025",
            UpdatePolicy::AlwaysUpToDate => "AlwaysUpToDate",
        }
    }
}

impl fmt::Display for UpdatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UpdatePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        match key.as_str() {
            "sqlserver2022" | "2022" => Ok(UpdatePolicy::SQLServer2022),
            "sqlserver2025" | "2025" => Ok(UpdatePolicy::SQLServer2025),
            "alwaysuptodate" => Ok(UpdatePolicy::AlwaysUpToDate),
            _ => Err(format!(
                "unknown update policy {s:?}: use SQLServer2022, SQLServer2025 or AlwaysUpToDate"
            )),
        }
    }
}

/// One database on the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceDatabase {
    /// Its name.
    pub name: String,
    /// `properties.status` (`Online`, `Restoring`, ...), when ARM gave it.
    #[serde(default)]
    pub status: Option<String>,
    /// ARM says it was created by LRS (`createMode` RestoreExternalBackup), when it says so.
    #[serde(default)]
    pub lrs_restore: bool,
}

/// The target instance, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFacts {
    /// The instance name, for messages.
    #[serde(default)]
    pub name: Option<String>,
    /// Service tier.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// vCores.
    #[serde(default)]
    pub vcores: Option<u32>,
    /// Reserved storage (`storageSizeInGB`), in MB.
    #[serde(default)]
    pub storage_size_mb: Option<u64>,
    /// Storage used (Azure Monitor's `storage_space_used_mb`), in MB.
    #[serde(default)]
    pub storage_used_mb: Option<u64>,
    /// Update policy (`databaseFormat`).
    #[serde(default)]
    pub update_policy: Option<UpdatePolicy>,
    /// `properties.state` (`Ready`, `Stopped`, ...).
    #[serde(default)]
    pub state: Option<String>,
    /// `maintenanceConfigurationId`.
    #[serde(default)]
    pub maintenance_configuration_id: Option<String>,
    /// The instance's databases; `None` when not read.
    #[serde(default)]
    pub databases: Option<Vec<InstanceDatabase>>,
    /// When these facts were read (for the cache and for "N minutes old" messages).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
}

impl InstanceFacts {
    /// Facts given offline: a tier, a policy and free storage in GB.
    pub fn offline(
        tier: Option<Tier>,
        update_policy: Option<UpdatePolicy>,
        free_storage_gb: Option<f64>,
    ) -> Self {
        let free_mb = free_storage_gb.map(|gb| (gb.max(0.0) * 1024.0).round() as u64);
        InstanceFacts {
            tier,
            update_policy,
            storage_size_mb: free_mb,
            storage_used_mb: free_mb.map(|_| 0),
            ..InstanceFacts::default()
        }
    }

    /// Free storage in MB, when both size and use are known.
    pub fn free_storage_mb(&self) -> Option<u64> {
        Some(self.storage_size_mb?.saturating_sub(self.storage_used_mb?))
    }

    /// Whether nothing at all is known (no instance checks can run).
    pub fn is_empty(&self) -> bool {
        self.tier.is_none()
            && self.update_policy.is_none()
            && self.storage_size_mb.is_none()
            && self.databases.is_none()
            && self.maintenance_configuration_id.is_none()
    }

    /// How the instance is named in messages.
    pub fn label(&self) -> String {
        self.name.as_deref().map_or_else(
            || "the managed instance".to_owned(),
            |n| format!("managed instance {n}"),
        )
    }
}
