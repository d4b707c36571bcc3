//! Configuration from environment variables (Function App settings). Names are listed once, in
//! [`VARIABLES`], so the Bicep app settings and the README can be checked against them; bad values
//! fail at start-up with a message naming the variable.

use std::collections::BTreeMap;

use url::Url;

use crate::migration::TargetInstance;

/// Every environment variable the binary reads, with its default (`None`: required, or optional
/// without a default). The infra test checks the Bicep app settings against this list.
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("LRS_ARM_ENDPOINT", Some("https://management.azure.com")),
    ("LRS_SUBSCRIPTION_ID", None),
    ("LRS_RESOURCE_GROUP", None),
    ("LRS_MANAGED_INSTANCE", None),
    // Container or `container/folder` → managed instance resource id; see [`Targets`].
    ("LRS_TARGETS", None),
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

/// Where each folder migrates: `LRS_TARGETS` (a JSON object from a container, or
/// `container/folder`, to a managed instance resource id; the most specific key wins), else the
/// default instance of `LRS_SUBSCRIPTION_ID`, `LRS_RESOURCE_GROUP` and `LRS_MANAGED_INSTANCE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// The instance of the three single-instance variables, when they are set.
    pub default: Option<TargetInstance>,
    /// `LRS_TARGETS`, by key.
    pub keys: BTreeMap<String, TargetInstance>,
}

impl Targets {
    /// Every folder to one instance (no `LRS_TARGETS`).
    pub fn single(instance: TargetInstance) -> Self {
        Targets {
            default: Some(instance),
            keys: BTreeMap::new(),
        }
    }

    /// The instance for a folder: its `container/folder` key, else its container's key, else the
    /// default instance.
    pub fn resolve(&self, container: &str, folder: &str) -> Option<&TargetInstance> {
        self.keys
            .get(&format!("{container}/{folder}"))
            .or_else(|| self.keys.get(container))
            .or(self.default.as_ref())
    }

    /// Every instance named, once, in key order (the default first).
    pub fn instances(&self) -> Vec<&TargetInstance> {
        let mut out: Vec<&TargetInstance> = Vec::new();
        for t in self.default.iter().chain(self.keys.values()) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

/// The pipeline's settings.
#[derive(Clone)]
pub struct Config {
    /// `LRS_ARM_ENDPOINT`.
    pub arm_endpoint: Url,
    /// Where LRS runs, per folder.
    pub targets: Targets,
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
            .field("arm_endpoint", &self.arm_endpoint)
            .field("targets", &self.targets)
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

        let arm_endpoint = url("LRS_ARM_ENDPOINT")?;
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
        let targets = targets(&get, &containers)?;
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
            arm_endpoint,
            targets,
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

const SINGLE: [&str; 3] = [
    "LRS_SUBSCRIPTION_ID",
    "LRS_RESOURCE_GROUP",
    "LRS_MANAGED_INSTANCE",
];

/// `LRS_TARGETS` and the default instance, checked against the watched containers: every
/// container must have an instance, so no folder is ever found without one.
fn targets(
    get: &dyn Fn(&'static str) -> Option<String>,
    containers: &[String],
) -> Result<Targets, ConfigError> {
    let [sub, rg, mi] = SINGLE.map(get);
    let raw = get("LRS_TARGETS");
    let default = match (sub, rg, mi) {
        (Some(sub), Some(rg), Some(mi)) => {
            Some(TargetInstance::new(&sub, &rg, &mi).map_err(|e| {
                err(
                    "LRS_MANAGED_INSTANCE",
                    format!("with LRS_SUBSCRIPTION_ID and LRS_RESOURCE_GROUP: {e}"),
                )
            })?)
        }
        (None, None, None) if raw.is_some() => None,
        (sub, rg, _) => {
            let missing = [sub.is_none(), rg.is_none(), true]
                .iter()
                .position(|m| *m)
                .map_or(SINGLE[2], |i| SINGLE[i]);
            let hint = if raw.is_some() {
                "is required when any of LRS_SUBSCRIPTION_ID, LRS_RESOURCE_GROUP and \
                 LRS_MANAGED_INSTANCE is set (they name the default instance together; unset all \
                 three to use LRS_TARGETS alone)"
            } else {
                "is required (or set LRS_TARGETS)"
            };
            return Err(err(missing, hint));
        }
    };
    let Some(raw) = raw else {
        return Ok(Targets {
            default,
            keys: BTreeMap::new(),
        });
    };
    let var = "LRS_TARGETS";
    let pairs: Pairs = serde_json::from_str(&raw).map_err(|e| {
        err(
            var,
            format!(
                "must be a JSON object from a container or \"container/folder\" to a managed \
                 instance resource id ({e})"
            ),
        )
    })?;
    let mut keys = BTreeMap::new();
    for (key, id) in pairs.0 {
        let (container, folder) = match key.split_once('/') {
            Some((c, f)) => (c, Some(f)),
            None => (key.as_str(), None),
        };
        if !containers.iter().any(|c| c == container) {
            return Err(err(
                var,
                format!(
                    "key {key:?} names the container {container:?}, which is not in \
                     LRS_CONTAINERS ({})",
                    containers.join(",")
                ),
            ));
        }
        if let Some(f) = folder {
            if f.is_empty()
                || f.contains(['/', '\\'])
                || f.trim() != f
                || f.chars().any(char::is_control)
            {
                return Err(err(
                    var,
                    format!(
                        "key {key:?} is not \"container\" or \"container/folder\" (a database \
                         folder directly in the container)"
                    ),
                ));
            }
        }
        let instance =
            TargetInstance::parse(&id).map_err(|e| err(var, format!("key {key:?}: {e}")))?;
        if keys.insert(key.clone(), instance).is_some() {
            return Err(err(var, format!("key {key:?} is given twice")));
        }
    }
    if default.is_none() {
        for c in containers {
            if keys.contains_key(c) {
                continue;
            }
            let folders: Vec<&str> = keys
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{c}/")))
                .collect();
            let only = if folders.is_empty() {
                String::new()
            } else {
                format!(" (only its folders {} are mapped)", folders.join(", "))
            };
            return Err(err(
                var,
                format!(
                    "the watched container {c:?} has no target instance{only}: add the key {c:?} \
                     to LRS_TARGETS, or set LRS_SUBSCRIPTION_ID, LRS_RESOURCE_GROUP and \
                     LRS_MANAGED_INSTANCE for a default instance"
                ),
            ));
        }
    }
    Ok(Targets { default, keys })
}

/// A JSON object's members in order, duplicates kept (a map would keep only the last).
struct Pairs(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    out.push(pair);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(Visit)
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

    const MI_A: &str =
        "/subscriptions/s1/resourceGroups/rg-a/providers/Microsoft.Sql/managedInstances/mi-a";
    const MI_B: &str =
        "/subscriptions/s2/resourceGroups/rg-b/providers/Microsoft.Sql/managedInstances/mi-b";

    fn multi(targets: &str) -> BTreeMap<&'static str, String> {
        let mut vars: BTreeMap<&'static str, String> =
            base().into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        for k in SINGLE {
            vars.remove(k);
        }
        vars.insert("LRS_TARGETS", targets.to_owned());
        vars
    }

    fn load_owned(vars: &BTreeMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn without_lrs_targets_every_folder_goes_to_the_default_instance() {
        let c = load(&base()).unwrap();
        let mi = TargetInstance::new("sub", "rg", "mi").unwrap();
        assert_eq!(c.targets, Targets::single(mi.clone()));
        assert_eq!(c.targets.resolve("more", "db9"), Some(&mi));
    }

    #[test]
    fn the_most_specific_key_wins() {
        let targets =
            format!(r#"{{"sqlfiles": "{MI_A}", "sqlfiles/hr": "{MI_B}", "more": "{MI_B}"}}"#);
        let c = load_owned(&multi(&targets)).unwrap();
        let (a, b) = (
            TargetInstance::parse(MI_A).unwrap(),
            TargetInstance::parse(MI_B).unwrap(),
        );
        assert_eq!(c.targets.default, None);
        assert_eq!(c.targets.resolve("sqlfiles", "finance"), Some(&a));
        assert_eq!(c.targets.resolve("sqlfiles", "hr"), Some(&b));
        assert_eq!(c.targets.resolve("more", "hr"), Some(&b));
        assert_eq!(c.targets.instances(), vec![&b, &a]);
        // With the default instance as well, an unmapped container goes there.
        let mut vars = multi(&format!(r#"{{"sqlfiles/hr": "{MI_B}"}}"#));
        for (k, v) in [
            ("LRS_SUBSCRIPTION_ID", "sub"),
            ("LRS_RESOURCE_GROUP", "rg"),
            ("LRS_MANAGED_INSTANCE", "mi"),
        ] {
            vars.insert(k, v.to_owned());
        }
        let c = load_owned(&vars).unwrap();
        assert_eq!(c.targets.resolve("sqlfiles", "hr"), Some(&b));
        assert_eq!(
            c.targets
                .resolve("sqlfiles", "other")
                .map(|t| t.name.as_str()),
            Some("mi")
        );
    }

    #[test]
    fn bad_targets_are_refused_at_start_up_with_the_reason() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "must be a JSON object"),
            (format!(r#"["{MI_A}"]"#), "must be a JSON object"),
            (r#"{"sqlfiles": 7}"#.into(), "must be a JSON object"),
            (r#"{"sqlfiles": "mi-a"}"#.into(), "is not a managed instance resource id"),
            (
                r#"{"sqlfiles": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x"}"#.into(),
                "is not a managed instance resource id",
            ),
            (format!(r#"{{"sqlfiles": "{MI_A}", "elsewhere": "{MI_B}"}}"#), "\"elsewhere\", which is not in LRS_CONTAINERS"),
            (format!(r#"{{"sqlfiles": "{MI_A}", "more": "{MI_A}", "more/a/b": "{MI_B}"}}"#), "is not \"container\" or \"container/folder\""),
            (format!(r#"{{"sqlfiles": "{MI_A}", "more": "{MI_A}", "more/": "{MI_B}"}}"#), "is not \"container\" or"),
            (format!(r#"{{"sqlfiles": "{MI_A}", "more": "{MI_A}", "more": "{MI_B}"}}"#), "key \"more\" is given twice"),
            // A watched container no key covers, with no default instance.
            (format!(r#"{{"sqlfiles": "{MI_A}"}}"#), "the watched container \"more\" has no target instance: add the key \"more\""),
            (format!(r#"{{"sqlfiles": "{MI_A}", "more/db1": "{MI_B}"}}"#), "(only its folders db1 are mapped)"),
            ("{}".into(), "the watched container \"sqlfiles\" has no target instance"),
        ];
        for (value, why) in cases {
            let e = load_owned(&multi(&value)).unwrap_err();
            assert_eq!(e.variable, "LRS_TARGETS", "{value}: {e}");
            assert!(e.to_string().contains(why), "{value}: {e}");
        }
    }

    #[test]
    fn the_default_instance_is_all_three_variables_or_none() {
        let targets = format!(r#"{{"sqlfiles": "{MI_A}", "more": "{MI_B}"}}"#);
        let mut vars = multi(&targets);
        vars.insert("LRS_RESOURCE_GROUP", "rg".into());
        let e = load_owned(&vars).unwrap_err();
        assert_eq!(e.variable, "LRS_SUBSCRIPTION_ID", "{e}");
        assert!(e.problem.contains("unset all three"), "{e}");
        let mut vars = base();
        vars.insert("LRS_MANAGED_INSTANCE", "bad_name");
        let e = load(&vars).unwrap_err();
        assert_eq!(e.variable, "LRS_MANAGED_INSTANCE", "{e}");
        let mut vars = base();
        vars.remove("LRS_SUBSCRIPTION_ID");
        let e = load(&vars).unwrap_err();
        assert_eq!(e.variable, "LRS_SUBSCRIPTION_ID", "{e}");
        assert!(e.problem.contains("or set LRS_TARGETS"), "{e}");
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
        assert!(is_loopback(&c.arm_endpoint));
        assert_eq!(c.database_name("db1"), "Sales");
    }
}
