//! Configuration from environment variables (Function App settings). Names are listed once here so
//! the Bicep app settings and the README can be checked against them.

/// Every environment variable the binary reads, with its default (`None`: required or optional
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
    ("LRS_TAIL_PATTERN", Some("*tail*")),
    ("LRS_MAX_CONCURRENT_RESTORES", Some("100")),
    ("LRS_DATABASE_NAME_MAP", Some("{}")),
    ("LRS_EVENTS_QUEUE", Some("lrs-backup-events")),
    ("LRS_TIMER_SCHEDULE", Some("*/30 * * * * *")),
    // Read by the CLI's logging setup: `json` for JSON lines (the deployed app sets it; the log alerts parse it).
    ("LRS_LOG_FORMAT", Some("text")),
    ("AZURE_CLIENT_ID", None),
];
