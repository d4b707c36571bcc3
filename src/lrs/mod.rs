//! The LRS client: Azure Resource Manager calls that drive Log Replay Service on a managed instance.
//! It exposes no call that deletes a database: stopping a migration is a person's decision.
//!
//! Each ARM operation is a small struct in [`ops`] with a pure `into_request(&base)` and a pure
//! `parse_response(status, headers, body)`, so request building and response parsing are tested
//! without a network. [`LrsClient`] only sends them through `azure_core`'s pipeline (retries on 429,
//! 5xx and transient network errors, honouring `Retry-After`, within a total well below an
//! invocation's bound; user agent; client request ids; bearer tokens). Long-running operations are
//! accepted and polled one step at a time ([`LrsClient::begin_start`], [`LrsClient::poll`]): the
//! create operation may run until cutover, so the pipeline never waits on one. [`codes`] classifies
//! every error code the spec documents for the calls the pipeline makes.
//!
//! This module is an adapter: it uses the core's types and never the shells (`cli`, `functions`).

mod client;
pub mod codes;
mod error;
mod model;
pub mod ops;

pub use client::{Auth, LrsClient, LrsClientOptions};
pub use error::{ArmError, Error};
pub use model::{
    BackupSetDetails, Database, DatabaseList, DatabaseStatus, InstanceProperties, InstanceSku,
    ManagedInstance, MetricsResponse, OperationStatus, RestoreDetails, SetStatus, UnrestorableFile,
};
pub use ops::{LongRunning, PollKind};

use url::Url;

/// The ARM api-version every call uses: the newest stable one, and the only stable one with the rich
/// restoreDetails schema.
pub const API_VERSION: &str = "2025-01-01";

/// The token scope for Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// The public-cloud ARM endpoint.
pub const ARM_ENDPOINT: &str = "https://management.azure.com";

/// A managed instance, by subscription, resource group and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceId {
    /// Subscription id.
    pub subscription: String,
    /// Resource group name.
    pub resource_group: String,
    /// Managed instance name.
    pub instance: String,
}

impl InstanceId {
    /// Builds the id, refusing empty parts or parts that would change the ARM path.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when a part is empty or holds `/`, `?`, `#` or a control character.
    pub fn new(
        subscription: impl Into<String>,
        resource_group: impl Into<String>,
        instance: impl Into<String>,
    ) -> Result<Self, Error> {
        let id = InstanceId {
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            instance: instance.into(),
        };
        check_segment("subscription id", &id.subscription)?;
        check_segment("resource group", &id.resource_group)?;
        check_segment("managed instance name", &id.instance)?;
        Ok(id)
    }

    /// A database of this instance.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the name is empty or holds a path character.
    pub fn database(&self, name: impl Into<String>) -> Result<DatabaseId, Error> {
        let database = name.into();
        check_segment("database name", &database)?;
        Ok(DatabaseId {
            instance: self.clone(),
            database,
        })
    }

    /// The instance's ARM URL under `endpoint`.
    pub(crate) fn url(&self, endpoint: &Url) -> Url {
        let mut url = endpoint.clone();
        url.set_query(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                "subscriptions",
                &self.subscription,
                "resourceGroups",
                &self.resource_group,
                "providers",
                "Microsoft.Sql",
                "managedInstances",
                &self.instance,
            ]);
        }
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }
}

/// A managed database: the unit LRS restores into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatabaseId {
    /// The instance it lives on.
    pub instance: InstanceId,
    /// The database name on the instance.
    pub database: String,
}

impl DatabaseId {
    /// The database's ARM URL under `endpoint`, followed by `extra` path segments.
    pub(crate) fn url(&self, endpoint: &Url, extra: &[&str]) -> Url {
        let mut url = self.instance.url(endpoint);
        url.set_query(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(["databases", &self.database]).extend(extra);
        }
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }
}

fn check_segment(what: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::InvalidInput {
            reason: format!("the {what} is empty"),
        });
    }
    if value
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '?' | '#') || c.is_control())
        || value == "."
        || value == ".."
    {
        return Err(Error::InvalidInput {
            reason: format!(
                "the {what} {value:?} holds a character that is not allowed in an ARM path"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_arm_paths_with_api_version() {
        let endpoint = Url::parse("https://management.azure.com").expect("static url");
        let db = InstanceId::new("sub-1", "rg 1", "mi-1")
            .and_then(|i| i.database("db1"))
            .expect("valid ids");
        assert_eq!(
            db.url(&endpoint, &["restoreDetails", "Default"]).as_str(),
            "https://management.azure.com/subscriptions/sub-1/resourceGroups/rg%201/providers/\
             Microsoft.Sql/managedInstances/mi-1/databases/db1/restoreDetails/Default?api-version=2025-01-01"
        );
    }

    #[test]
    fn keeps_an_endpoint_path_prefix() {
        let endpoint = Url::parse("http://127.0.0.1:8080/arm/").expect("static url");
        let mi = InstanceId::new("s", "r", "m").expect("valid ids");
        assert_eq!(
            mi.url(&endpoint).as_str(),
            "http://127.0.0.1:8080/arm/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/managedInstances/m?api-version=2025-01-01"
        );
    }

    #[test]
    fn rejects_ids_that_would_change_the_path() {
        for bad in ["", " ", "a/b", "..", "a?b", "a#b", "a\nb"] {
            let err = InstanceId::new("s", bad, "m").expect_err("must be refused");
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
        }
        let mi = InstanceId::new("s", "r", "m").expect("valid ids");
        assert!(mi.database("x/y").is_err());
    }
}
