//! Configuration from environment variables (Function App settings). Names are listed once, in
//! [`VARIABLES`], so the Bicep app settings and the README can be checked against them; bad values
//! fail at start-up with a message naming the variable.

use std::collections::BTreeMap;

use url::Url;

/// Every environment variable the binary reads, with its default (`None`: required, or optional
/// without a default). The infra test checks the Bicep app settings against this list.
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("LRS_ARM_ENDPOINT", Some("https://management.azure.com")),
    ("LRS_SUBSCRIPTION_ID", None),
    ("LRS_RESOURCE_GROUP", None),
    ("LRS_MANAGED_INSTANCE", None),
    ("LRS_STORAGE_ACCOUNT_URL", None),
    ("LRS_CONTAINERS", None),
    ("LRS_STATE_CONTAINER", Some("lrs-autopilot-state")),
    ("LRS_STORAGE_IDENTITY", Some("ManagedIdentity")),
    ("LRS_STORAGE_SAS_TOKEN", None),
    (
        "LRS_DEFAULT_COLLATION",
        Some("SQL_Latin1_General_CP1_CI_AS"),
    ),
    ("LRS_TAIL_PATTERN", Some(crate::chain::DEFAULT_TAIL_PATTERN)),
    ("LRS_MAX_CONCURRENT_RESTORES", Some("100")),
    ("LRS_DATABASE_NAME_MAP", Some("{}")),
    ("LRS_EVENTS_QUEUE", Some("lrs-backup-events")),
    ("LRS_TIMER_SCHEDULE", Some("*/5 * * * * *")),
    // Seconds between the timer's reconciliation passes (`0`: never); see pipeline::resync.
    ("LRS_RESYNC_INTERVAL_SECS", Some("21600")),
    // Read by the CLI's logging setup: `json` for JSON lines (the deployed app sets it; the log alerts parse it).
    ("LRS_LOG_FORMAT", Some("text")),
    ("AZURE_CLIENT_ID", None),
];

/// How LRS authenticates to the backup container.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageIdentity {
    /// The managed instance's managed identity (needs Storage Blob Data Reader on the container).
    ManagedIdentity,
    /// A SAS token (read + list only), without a leading `?`.
    SharedAccessSignature(String),
}

impl std::fmt::Debug for StorageIdentity {
    // A SAS is a secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageIdentity::ManagedIdentity => f.write_str("ManagedIdentity"),
            StorageIdentity::SharedAccessSignature(_) => {
                f.write_str("SharedAccessSignature(<redacted>)")
            }
        }
    }
}

/// The target managed instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `LRS_ARM_ENDPOINT`.
    pub arm_endpoint: Url,
    /// `LRS_SUBSCRIPTION_ID`.
    pub subscription_id: String,
    /// `LRS_RESOURCE_GROUP`.
    pub resource_group: String,
    /// `LRS_MANAGED_INSTANCE`.
    pub managed_instance: String,
}

/// The pipeline's settings.
#[derive(Clone)]
pub struct Config {
    /// Where LRS runs.
    pub target: Target,
    /// `LRS_STORAGE_ACCOUNT_URL`: the blob service URL, possibly with a SAS query string.
    pub storage_account_url: Url,
    /// `LRS_CONTAINERS`.
    pub containers: Vec<String>,
    /// `LRS_STATE_CONTAINER`.
    pub state_container: String,
    /// `LRS_STORAGE_IDENTITY` and `LRS_STORAGE_SAS_TOKEN`.
    pub storage_identity: StorageIdentity,
    /// `LRS_DEFAULT_COLLATION`.
    pub default_collation: String,
    /// `LRS_TAIL_PATTERN`.
    pub tail_pattern: String,
    /// `LRS_MAX_CONCURRENT_RESTORES`.
    pub max_concurrent_restores: usize,
    /// `LRS_DATABASE_NAME_MAP`: folder → target database name.
    pub database_name_map: BTreeMap<String, String>,
    /// `AZURE_CLIENT_ID`: the user-assigned identity, when there is one.
    pub azure_client_id: Option<String>,
    /// `LRS_RESYNC_INTERVAL_SECS`: how often the timer reconciles state with the containers;
    /// `None` for `0`.
    pub resync_interval: Option<time::Duration>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut account = self.storage_account_url.clone();
        let had_query = account.query().is_some();
        account.set_query(None);
        f.debug_struct("Config")
            .field("target", &self.target)
            .field(
                "storage_account_url",
                &format_args!("{account}{}", if had_query { "?<redacted>" } else { "" }),
            )
            .field("containers", &self.containers)
            .field("state_container", &self.state_container)
            .field("storage_identity", &self.storage_identity)
            .field("default_collation", &self.default_collation)
            .field("tail_pattern", &self.tail_pattern)
            .field("max_concurrent_restores", &self.max_concurrent_restores)
            .field("database_name_map", &self.database_name_map)
            .finish()
    }
}

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn err(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or malformed.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or malformed.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| -> Option<String> {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .or_else(|| {
                    VARIABLES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .and_then(|(_, d)| d.map(str::to_owned))
                })
        };
        let required = |name: &'static str| get(name).ok_or_else(|| err(name, "is required"));
        let url = |name: &'static str| -> Result<Url, ConfigError> {
            let raw = required(name)?;
            let url = Url::parse(&raw).map_err(|e| err(name, format!("is not a URL ({e})")))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(err(name, "must be an https:// URL"));
            }
            if url.scheme() == "http" && !is_loopback(&url) {
                return Err(err(
                    name,
                    "http:// is allowed only for loopback (emulators, the simulator)",
                ));
            }
            Ok(url)
        };

        let target = Target {
            arm_endpoint: url("LRS_ARM_ENDPOINT")?,
            subscription_id: required("LRS_SUBSCRIPTION_ID")?,
            resource_group: required("LRS_RESOURCE_GROUP")?,
            managed_instance: required("LRS_MANAGED_INSTANCE")?,
        };
        let storage_account_url = url("LRS_STORAGE_ACCOUNT_URL")?;
        let containers: Vec<String> = required("LRS_CONTAINERS")?
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if containers.is_empty() {
            return Err(err("LRS_CONTAINERS", "names no container"));
        }
        if let Some(bad) = containers.iter().find(|c| !valid_container(c)) {
            return Err(err(
                "LRS_CONTAINERS",
                format!("{bad:?} is not a valid container name"),
            ));
        }
        let state_container = required("LRS_STATE_CONTAINER")?;
        if !valid_container(&state_container) {
            return Err(err("LRS_STATE_CONTAINER", "is not a valid container name"));
        }
        if containers.contains(&state_container) {
            return Err(err(
                "LRS_STATE_CONTAINER",
                "must not be one of LRS_CONTAINERS",
            ));
        }
        let storage_identity = match required("LRS_STORAGE_IDENTITY")?.as_str() {
            "ManagedIdentity" => StorageIdentity::ManagedIdentity,
            "SharedAccessSignature" => {
                let token = get("LRS_STORAGE_SAS_TOKEN").ok_or_else(|| {
                    err(
                        "LRS_STORAGE_SAS_TOKEN",
                        "is required when LRS_STORAGE_IDENTITY is SharedAccessSignature",
                    )
                })?;
                StorageIdentity::SharedAccessSignature(token.trim_start_matches('?').to_owned())
            }
            other => {
                return Err(err(
                    "LRS_STORAGE_IDENTITY",
                    format!("is {other:?}; use ManagedIdentity or SharedAccessSignature"),
                ));
            }
        };
        let max_concurrent_restores = required("LRS_MAX_CONCURRENT_RESTORES")?
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                err(
                    "LRS_MAX_CONCURRENT_RESTORES",
                    "must be a whole number from 1 to 100 (the LRS limit per instance)",
                )
            })?;
        let database_name_map: BTreeMap<String, String> =
            serde_json::from_str(&required("LRS_DATABASE_NAME_MAP")?).map_err(|e| {
                err(
                    "LRS_DATABASE_NAME_MAP",
                    format!("must be a JSON object of folder to database name ({e})"),
                )
            })?;
        let resync_secs = required("LRS_RESYNC_INTERVAL_SECS")?
            .parse::<u32>()
            .map_err(|_| {
                err(
                    "LRS_RESYNC_INTERVAL_SECS",
                    "must be a whole number of seconds (0: no periodic resync)",
                )
            })?;
        let resync_interval =
            (resync_secs > 0).then(|| time::Duration::seconds(i64::from(resync_secs)));
        let tail_pattern = required("LRS_TAIL_PATTERN")?;
        globset::Glob::new(&tail_pattern)
            .map_err(|e| err("LRS_TAIL_PATTERN", format!("is not a valid glob ({e})")))?;
        Ok(Config {
            target,
            storage_account_url,
            containers,
            state_container,
            storage_identity,
            default_collation: required("LRS_DEFAULT_COLLATION")?,
            tail_pattern,
            max_concurrent_restores,
            database_name_map,
            azure_client_id: get("AZURE_CLIENT_ID"),
            resync_interval,
        })
    }

    /// The target database name for a folder: its entry in the name map, else the folder name.
    pub fn database_name(&self, folder: &str) -> String {
        self.database_name_map
            .get(folder)
            .cloned()
            .unwrap_or_else(|| folder.to_owned())
    }
}

/// Whether a URL points at this machine (the only place plain HTTP and no token are allowed).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Azure container names: 3–63 characters, lowercase letters, digits and single hyphens.
fn valid_container(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("LRS_SUBSCRIPTION_ID", "sub"),
            ("LRS_RESOURCE_GROUP", "rg"),
            ("LRS_MANAGED_INSTANCE", "mi"),
            (
                "LRS_STORAGE_ACCOUNT_URL",
                "https://acct.blob.core.windows.net",
            ),
            ("LRS_CONTAINERS", "sqlfiles, more"),
        ])
    }

    fn load(vars: &BTreeMap<&'static str, &'static str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn applies_defaults() {
        let c = load(&base()).unwrap();
        assert_eq!(c.containers, vec!["sqlfiles", "more"]);
        assert_eq!(c.state_container, "lrs-autopilot-state");
        assert_eq!(c.max_concurrent_restores, 100);
        assert_eq!(c.tail_pattern, "*_tail.*");
        assert_eq!(c.storage_identity, StorageIdentity::ManagedIdentity);
        assert_eq!(c.database_name("db1"), "db1");
    }

    #[test]
    fn names_the_variable_that_is_wrong() {
        let cases: &[(&'static str, &'static str)] = &[
            ("LRS_CONTAINERS", "Bad_Name"),
            ("LRS_MAX_CONCURRENT_RESTORES", "0"),
            ("LRS_MAX_CONCURRENT_RESTORES", "lots"),
            ("LRS_DATABASE_NAME_MAP", "[1]"),
            ("LRS_STORAGE_IDENTITY", "Password"),
            ("LRS_ARM_ENDPOINT", "http://management.azure.com"),
            ("LRS_STORAGE_ACCOUNT_URL", "ftp://x"),
            ("LRS_TAIL_PATTERN", "[unclosed"),
            ("LRS_STATE_CONTAINER", "sqlfiles"),
        ];
        for (var, value) in cases {
            let mut vars = base();
            vars.insert(var, value);
            let e = load(&vars).unwrap_err();
            assert_eq!(e.variable, *var, "{var}={value}: {e}");
        }
        let mut vars = base();
        vars.remove("LRS_MANAGED_INSTANCE");
        assert_eq!(load(&vars).unwrap_err().variable, "LRS_MANAGED_INSTANCE");
        let mut vars = base();
        vars.insert("LRS_STORAGE_IDENTITY", "SharedAccessSignature");
        assert_eq!(load(&vars).unwrap_err().variable, "LRS_STORAGE_SAS_TOKEN");
    }

    #[test]
    fn never_prints_a_sas() {
        let mut vars = base();
        vars.insert("LRS_STORAGE_IDENTITY", "SharedAccessSignature");
        vars.insert("LRS_STORAGE_SAS_TOKEN", "?sv=1&sp=rl&sig=TOPSECRET");
        vars.insert(
            "LRS_STORAGE_ACCOUNT_URL",
            "https://acct.blob.core.windows.net/?sv=1&sig=ALSOSECRET",
        );
        let c = load(&vars).unwrap();
        assert_eq!(
            c.storage_identity,
            StorageIdentity::SharedAccessSignature("sv=1&sp=rl&sig=TOPSECRET".into())
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("TOPSECRET") && !shown.contains("ALSOSECRET"),
            "{shown}"
        );
    }

    #[test]
    fn allows_plain_http_only_on_loopback() {
        let mut vars = base();
        vars.insert("LRS_ARM_ENDPOINT", "http://127.0.0.1:7071");
        vars.insert("LRS_DATABASE_NAME_MAP", r#"{"db1":"Sales"}"#);
        let c = load(&vars).unwrap();
        assert!(is_loopback(&c.target.arm_endpoint));
        assert_eq!(c.database_name("db1"), "Sales");
    }
}
