//! The managed instance a database migrates to. A state document records it, so a later change of
//! `LRS_TARGETS` never sends one database's LRS calls to two instances.

use serde::{Deserialize, Serialize};

/// A managed instance by its ARM resource id. Stored (and shown) as the resource id; compared by
/// [`TargetInstance::key`], since ARM ids are case-insensitive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetInstance {
    /// Subscription id.
    pub subscription: String,
    /// Resource group name.
    pub resource_group: String,
    /// Managed instance name.
    pub name: String,
}

impl TargetInstance {
    /// Builds a target from its parts, with the checks of [`TargetInstance::parse`].
    ///
    /// # Errors
    /// What is wrong with a part.
    pub fn new(subscription: &str, resource_group: &str, name: &str) -> Result<Self, String> {
        check("subscription id", subscription)?;
        check("resource group", resource_group)?;
        check("managed instance name", name)?;
        if !subscription
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "the subscription id {subscription:?} is not a subscription id (letters, digits \
                 and hyphens)"
            ));
        }
        if resource_group.len() > 90
            || resource_group.ends_with('.')
            || !resource_group
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '(' | ')' | '.'))
        {
            return Err(format!(
                "the resource group {resource_group:?} is not a valid name (letters, digits, \
                 '-', '_', '(', ')' and '.', not ending in '.', at most 90)"
            ));
        }
        if name.len() > 63 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!(
                "the managed instance name {name:?} is not a valid name (letters, digits and \
                 hyphens, at most 63)"
            ));
        }
        Ok(TargetInstance {
            subscription: subscription.to_owned(),
            resource_group: resource_group.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Parses `/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Sql/managedInstances/<name>`.
    ///
    /// # Errors
    /// Why the text is not a managed instance resource id.
    pub fn parse(resource_id: &str) -> Result<Self, String> {
        let parts: Vec<&str> = resource_id.trim().trim_matches('/').split('/').collect();
        let shape = parts.len() == 8
            && parts[0].eq_ignore_ascii_case("subscriptions")
            && parts[2].eq_ignore_ascii_case("resourceGroups")
            && parts[4].eq_ignore_ascii_case("providers")
            && parts[5].eq_ignore_ascii_case("Microsoft.Sql")
            && parts[6].eq_ignore_ascii_case("managedInstances");
        if !shape || !resource_id.trim().starts_with('/') {
            return Err(format!(
                "{resource_id:?} is not a managed instance resource id: expected \
                 /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Sql/managedInstances/<name>"
            ));
        }
        TargetInstance::new(parts[1], parts[3], parts[7])
            .map_err(|e| format!("{resource_id:?}: {e}"))
    }

    /// The ARM resource id.
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/managedInstances/{}",
            self.subscription, self.resource_group, self.name
        )
    }

    /// `subscription/resource group/name`, lowercased: the identity (two spellings of one id are
    /// one instance), and the path under which per-instance documents are kept.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.subscription, self.resource_group, self.name
        )
        .to_lowercase()
    }

    /// `<name>.<resource group>.<subscription>`, lowercased: one state document name per instance,
    /// unambiguous (neither a name nor a subscription id holds a '.') and never starting with '.'.
    pub fn document_name(&self) -> String {
        format!(
            "{}.{}.{}",
            self.name, self.resource_group, self.subscription
        )
        .to_lowercase()
    }

    /// The subscription, lowercased: LRS's 150 concurrent restores are counted per subscription.
    pub fn subscription_key(&self) -> String {
        self.subscription.to_lowercase()
    }
}

/// Parts of an ARM path: no separator, query, fragment, control character or dot segment.
fn check(what: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if value != value.trim()
        || value
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_control())
        || value == "."
        || value == ".."
    {
        return Err(format!(
            "the {what} {value:?} holds a character that is not allowed in an ARM path"
        ));
    }
    Ok(())
}

impl PartialEq for TargetInstance {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for TargetInstance {}

impl std::hash::Hash for TargetInstance {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl std::fmt::Display for TargetInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.resource_id())
    }
}

impl TryFrom<String> for TargetInstance {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        TargetInstance::parse(&value)
    }
}

impl From<TargetInstance> for String {
    fn from(t: TargetInstance) -> String {
        t.resource_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str =
        "/subscriptions/sub-1/resourceGroups/rg-A/providers/Microsoft.Sql/managedInstances/mi-1";

    #[test]
    fn parses_and_prints_a_resource_id() {
        let t = TargetInstance::parse(ID).unwrap();
        assert_eq!(
            (
                t.subscription.as_str(),
                t.resource_group.as_str(),
                t.name.as_str()
            ),
            ("sub-1", "rg-A", "mi-1")
        );
        assert_eq!(t.resource_id(), ID);
        assert_eq!(t.key(), "sub-1/rg-a/mi-1");
        assert_eq!(t.document_name(), "mi-1.rg-a.sub-1");
        let other_case = TargetInstance::parse(&ID.to_uppercase()).unwrap();
        assert_eq!(t, other_case, "ARM ids are case-insensitive");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{ID}\""));
        assert_eq!(serde_json::from_str::<TargetInstance>(&json).unwrap(), t);
    }

    #[test]
    fn refuses_what_is_not_a_managed_instance_id() {
        for (bad, why) in [
            ("mi-1", "not a managed instance resource id"),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x",
                "not a managed instance",
            ),
            (
                "subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/m",
                "not a managed instance",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/m/databases/d",
                "not a managed instance",
            ),
            (
                "/subscriptions//resourceGroups/rg/providers/Microsoft.Sql/managedInstances/m",
                "subscription id is empty",
            ),
            (
                "/subscriptions/s/resourceGroups/r?g/providers/Microsoft.Sql/managedInstances/m",
                "not allowed",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/m_i",
                "not a valid name",
            ),
            (
                "/subscriptions/s/resourceGroups/r~g/providers/Microsoft.Sql/managedInstances/m",
                "not a valid name",
            ),
            (
                "/subscriptions/s.1/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/m",
                "not a subscription id",
            ),
        ] {
            let e = TargetInstance::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(serde_json::from_str::<TargetInstance>("\"mi\"").is_err());
    }
}
