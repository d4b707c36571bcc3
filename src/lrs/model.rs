//! What ARM answers, as typed values. Tolerant by design: unknown fields are ignored, unknown
//! enumeration values are kept as text, dates that do not parse are dropped, and numbers are read as
//! floats where the service has been seen to send either, because LRS's status vocabulary is not
//! fully documented and a new value must never crash a migration.

use std::fmt;

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

/// A managed instance; the client only needs its region for the start call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ManagedInstance {
    /// ARM resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Instance name.
    #[serde(default)]
    pub name: Option<String>,
    /// The region (`westeurope`), required in the start body.
    pub location: String,
    /// The SKU (`GP_Gen5`, tier `GeneralPurpose`, ...), for the preflight.
    #[serde(default)]
    pub sku: Option<InstanceSku>,
    /// The properties the preflight reads.
    #[serde(default)]
    pub properties: InstanceProperties,
}

/// `sku` of a managed instance (common-types `Sku`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct InstanceSku {
    /// `GP_Gen5`, `BC_G8IM`, ...
    #[serde(default)]
    pub name: Option<String>,
    /// `GeneralPurpose` or `BusinessCritical`.
    #[serde(default)]
    pub tier: Option<String>,
    /// The hardware family (`Gen5`, ...).
    #[serde(default)]
    pub family: Option<String>,
    /// vCores, when the SKU carries them.
    #[serde(default)]
    pub capacity: Option<u32>,
}

/// `properties` of a managed instance, as `ManagedInstances.json` names them (2025-01-01).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceProperties {
    /// `state` (`Ready`, `Stopped`, ...).
    #[serde(default)]
    pub state: Option<String>,
    /// `vCores`.
    #[serde(default, rename = "vCores")]
    pub v_cores: Option<u32>,
    /// `storageSizeInGB`: reserved storage.
    #[serde(default, rename = "storageSizeInGB")]
    pub storage_size_in_gb: Option<u64>,
    /// `databaseFormat`: the update policy (`SQLServer2022`, `SQLServer2025`, `AlwaysUpToDate`).
    #[serde(default)]
    pub database_format: Option<String>,
    /// `isGeneralPurposeV2`: Next-gen General Purpose.
    #[serde(default, rename = "isGeneralPurposeV2")]
    pub is_general_purpose_v2: Option<bool>,
    /// `maintenanceConfigurationId`.
    #[serde(default)]
    pub maintenance_configuration_id: Option<String>,
}

/// A page of `GET {instance}/databases` (`ManagedDatabaseListResult`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseList {
    /// The databases on this page.
    #[serde(default)]
    pub value: Vec<Database>,
    /// The next page, absolute.
    #[serde(default)]
    pub next_link: Option<String>,
}

/// An Azure Monitor metrics answer (`Microsoft.Insights/metrics`), reduced to what is read.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct MetricsResponse {
    /// One entry per metric asked.
    #[serde(default)]
    pub value: Vec<Metric>,
}

/// One metric.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Metric {
    /// Its time series.
    #[serde(default)]
    pub timeseries: Vec<MetricSeries>,
}

/// One time series.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct MetricSeries {
    /// Its points, oldest first.
    #[serde(default)]
    pub data: Vec<MetricPoint>,
}

/// One point.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct MetricPoint {
    /// The average over the interval, when there was data.
    #[serde(default)]
    pub average: Option<f64>,
    /// The maximum over the interval, when asked and there was data.
    #[serde(default)]
    pub maximum: Option<f64>,
}

impl MetricsResponse {
    /// The newest point with a value (maximum, else average).
    pub fn latest(&self) -> Option<f64> {
        self.value
            .iter()
            .flat_map(|m| m.timeseries.iter())
            .flat_map(|t| t.data.iter())
            .filter_map(|p| p.maximum.or(p.average))
            .next_back()
    }
}

/// A managed database as `GET {base}` shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Database {
    /// ARM resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Database name.
    #[serde(default)]
    pub name: Option<String>,
    /// Region.
    #[serde(default)]
    pub location: Option<String>,
    /// The database's properties.
    #[serde(default)]
    pub properties: DatabaseProperties,
}

impl Database {
    /// `properties.status`, or [`DatabaseStatus::Other`] with an empty text when absent.
    pub fn status(&self) -> DatabaseStatus {
        self.properties
            .status
            .clone()
            .unwrap_or_else(|| DatabaseStatus::Other(String::new()))
    }
}

/// The database properties the pipeline reads.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseProperties {
    /// `properties.status`.
    #[serde(default)]
    pub status: Option<DatabaseStatus>,
    /// The collation the database was created with.
    #[serde(default)]
    pub collation: Option<String>,
    /// When the database was created.
    #[serde(default, deserialize_with = "lenient_time")]
    pub creation_date: Option<OffsetDateTime>,
    /// `createMode` (`RestoreExternalBackup` for LRS), when ARM shows it.
    #[serde(default)]
    pub create_mode: Option<String>,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this client does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as ARM spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $(if s.eq_ignore_ascii_case(stringify!($variant)) {
                    return $name::$variant;
                })+
                $name::Other(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}

text_enum!(
    /// `properties.status` of a managed database.
    DatabaseStatus {
        /// Restored and usable.
        Online,
        /// Offline.
        Offline,
        /// Shut down.
        Shutdown,
        /// Being created.
        Creating,
        /// Inaccessible.
        Inaccessible,
        /// LRS is restoring into it.
        Restoring,
        /// Being updated.
        Updating,
        /// Stopping.
        Stopping,
        /// Stopped.
        Stopped,
        /// Starting.
        Starting,
        /// Being moved.
        DbMoving,
        /// Being copied.
        DbCopying,
    }
);

text_enum!(
    /// The status of one backup set in restoreDetails (`Skipped`, `Queued`, `Restoring`,
    /// `Restored` seen).
    SetStatus {
        /// LRS will not restore it (older than the base, superseded).
        Skipped,
        /// Waiting its turn.
        Queued,
        /// Being restored.
        Restoring,
        /// Restored.
        Restored,
    }
);

text_enum!(
    /// The status of a long-running operation (`Azure-AsyncOperation` body).
    OperationState {
        /// Still running.
        InProgress,
        /// Done.
        Succeeded,
        /// Failed: see the error.
        Failed,
        /// Canceled.
        Canceled,
    }
);

/// The outcome of one poll of a long-running operation.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationStatus {
    /// Still running; poll again after the delay (from `Retry-After`, when given).
    InProgress {
        /// The server's `Retry-After`, in seconds.
        retry_after_secs: Option<u64>,
        /// A new polling URL, when a `Location` poll answered with one.
        next: Option<url::Url>,
    },
    /// Finished successfully.
    Succeeded,
}

/// `GET {base}/restoreDetails/Default`: the whole documented schema, every field optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RestoreDetailsEnvelope {
    /// The properties (all read-only).
    #[serde(default)]
    pub properties: RestoreDetails,
    /// ARM resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Resource name (`current`).
    #[serde(default)]
    pub name: Option<String>,
}

/// restoreDetails `properties`, every documented field (api-version 2025-01-01).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreDetails {
    /// Restore type: `LRSRestore`.
    #[serde(rename = "type")]
    pub restore_type: Option<String>,
    /// Restore status. Only `Restoring` is documented; any other value is kept as text.
    pub status: Option<String>,
    /// Why the restore is blocked, when it is.
    pub block_reason: Option<String>,
    /// The last file uploaded to the folder.
    pub last_uploaded_file_name: Option<String>,
    /// When it was uploaded.
    #[serde(deserialize_with = "lenient_time")]
    pub last_uploaded_file_time: Option<OffsetDateTime>,
    /// The last file restored: the name completeRestore must be given.
    pub last_restored_file_name: Option<String>,
    /// When it was restored.
    #[serde(deserialize_with = "lenient_time")]
    pub last_restored_file_time: Option<OffsetDateTime>,
    /// Percent of the restore plan done (a float: integers and fractions both seen).
    #[serde(deserialize_with = "lenient_f64")]
    pub percent_completed: Option<f64>,
    /// MB restored so far.
    #[serde(rename = "currentRestoredSizeMB", deserialize_with = "lenient_f64")]
    pub current_restored_size_mb: Option<f64>,
    /// MB in the current restore plan.
    #[serde(rename = "currentRestorePlanSizeMB", deserialize_with = "lenient_f64")]
    pub current_restore_plan_size_mb: Option<f64>,
    /// The type of the backup being restored (`Log`, ...).
    pub current_backup_type: Option<String>,
    /// The file being restored.
    pub current_restoring_file_name: Option<String>,
    /// Files found in the folder.
    #[serde(deserialize_with = "lenient_count")]
    pub number_of_files_detected: Option<u64>,
    /// Files waiting to be restored.
    #[serde(deserialize_with = "lenient_count")]
    pub number_of_files_queued: Option<u64>,
    /// Files LRS will not restore.
    #[serde(deserialize_with = "lenient_count")]
    pub number_of_files_skipped: Option<u64>,
    /// Files being restored.
    #[serde(deserialize_with = "lenient_count")]
    pub number_of_files_restoring: Option<u64>,
    /// Files restored.
    #[serde(deserialize_with = "lenient_count")]
    pub number_of_files_restored: Option<u64>,
    /// Files LRS cannot restore.
    #[serde(deserialize_with = "lenient_count")]
    pub number_of_files_unrestorable: Option<u64>,
    /// Full backup sets.
    #[serde(deserialize_with = "lenient_list")]
    pub full_backup_sets: Vec<BackupSetDetails>,
    /// Differential backup sets.
    #[serde(deserialize_with = "lenient_list")]
    pub diff_backup_sets: Vec<BackupSetDetails>,
    /// Log backup sets.
    #[serde(deserialize_with = "lenient_list")]
    pub log_backup_sets: Vec<BackupSetDetails>,
    /// Files LRS cannot restore (`[{"name"}]`, or plain strings in older api-versions).
    #[serde(deserialize_with = "lenient_list")]
    pub unrestorable_files: Vec<UnrestorableFile>,
}

impl RestoreDetails {
    /// Every backup set, full first, then differential, then log.
    pub fn all_sets(&self) -> impl Iterator<Item = &BackupSetDetails> {
        self.full_backup_sets
            .iter()
            .chain(&self.diff_backup_sets)
            .chain(&self.log_backup_sets)
    }
}

/// One backup set in restoreDetails.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSetDetails {
    /// `Skipped`, `Queued`, `Restoring`, `Restored`, or a value kept as text.
    #[serde(default = "unknown_status")]
    pub status: SetStatus,
    /// The set's first stripe file.
    #[serde(default)]
    pub first_stripe_name: Option<String>,
    /// How many stripe files.
    #[serde(default, deserialize_with = "lenient_count")]
    pub number_of_stripes: Option<u64>,
    /// Size in MB.
    #[serde(rename = "backupSizeMB", default, deserialize_with = "lenient_f64")]
    pub backup_size_mb: Option<f64>,
    /// When its restore started.
    #[serde(default, deserialize_with = "lenient_time")]
    pub restore_started_timestamp_utc: Option<OffsetDateTime>,
    /// When its restore finished.
    #[serde(default, deserialize_with = "lenient_time")]
    pub restore_finished_timestamp_utc: Option<OffsetDateTime>,
}

fn unknown_status() -> SetStatus {
    SetStatus::Other(String::new())
}

/// A file LRS cannot restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrestorableFile {
    /// The file name.
    pub name: String,
}

impl<'de> Deserialize<'de> for UnrestorableFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Name(String),
            Object {
                #[serde(default)]
                name: Option<String>,
            },
        }
        Ok(match Shape::deserialize(d)? {
            Shape::Name(name) => UnrestorableFile { name },
            Shape::Object { name } => UnrestorableFile {
                name: name.unwrap_or_default(),
            },
        })
    }
}

/// The body of an `Azure-AsyncOperation` poll.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct AsyncOperationBody {
    #[serde(default = "unknown_operation")]
    pub status: OperationState,
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

fn unknown_operation() -> OperationState {
    OperationState::Other(String::new())
}

/// ARM's error envelope: `{"error":{"code","message"}}` (some services answer the inner object
/// alone).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ErrorEnvelope {
    #[serde(default)]
    pub error: Option<ErrorDetail>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The inner ARM error object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Dates: RFC 3339, or the same without an offset (read as UTC); anything else is dropped rather
/// than failing the whole answer.
fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.as_ref().and_then(|v| v.as_str()).and_then(parse_time))
}

/// Parses an ARM timestamp leniently (see [`lenient_time`]).
pub(crate) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).ok()
}

/// Numbers as floats; a number sent as a string is accepted, anything else is dropped.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Counts: non-negative whole numbers (a float with no fraction is accepted).
fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = lenient_f64(d)?;
    Ok(value
        .filter(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0 && *v <= u64::MAX as f64)
        .map(|v| v as u64))
}

/// Lists: `null` or absent is empty; an element of an unknown shape fails the answer with its path.
fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_are_kept_as_text() {
        let s: SetStatus = serde_json::from_str("\"Verifying\"").expect("a string");
        assert_eq!(s, SetStatus::Other("Verifying".into()));
        let s: SetStatus = serde_json::from_str("\"restored\"").expect("a string");
        assert_eq!(s, SetStatus::Restored);
        let d: DatabaseStatus = serde_json::from_str("\"Online\"").expect("a string");
        assert_eq!(d, DatabaseStatus::Online);
        assert_eq!(DatabaseStatus::Other("X".into()).to_string(), "X");
    }

    #[test]
    fn accepts_both_unrestorable_file_shapes() {
        let files: Vec<UnrestorableFile> =
            serde_json::from_str(r#"["a.jpg", {"name":"b.txt"}, {"other":1}]"#).expect("valid");
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.jpg", "b.txt", ""]);
    }

    #[test]
    fn tolerates_odd_numbers_dates_and_nulls() {
        let d: RestoreDetails = serde_json::from_str(
            r#"{"percentCompleted": 12.5, "numberOfFilesQueued": "3", "numberOfFilesSkipped": -1,
                "lastRestoredFileTime": "2022-05-09T12:27:20.4936305", "lastUploadedFileTime": "soon",
                "fullBackupSets": null, "newField": {"x": 1}, "status": "Paused"}"#,
        )
        .expect("tolerant");
        assert_eq!(d.percent_completed, Some(12.5));
        assert_eq!(d.number_of_files_queued, Some(3));
        assert_eq!(d.number_of_files_skipped, None);
        assert_eq!(
            d.last_restored_file_time.map(|t| t.unix_timestamp()),
            Some(1_652_099_240)
        );
        assert_eq!(d.last_uploaded_file_time, None);
        assert!(d.full_backup_sets.is_empty());
        assert_eq!(d.status.as_deref(), Some("Paused"));
    }
}
