//! Every error code Microsoft's REST spec (api-version 2025-01-01) documents for the four
//! operations the pipeline sends (PUT managed database, GET managed database, POST
//! completeRestore, GET restoreDetails), each classified once, with what a person should do.
//!
//! The spec lists the codes only in each operation's `responses.default.description`;
//! `tests/lrs_error_table.rs` reads the spec files and fails when a documented code is missing
//! here. Pure data: no I/O, so the pipeline and its tests share one truth.

use crate::migration::ErrorClass;

/// A group of codes that call for the same response, with its actionable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// ARM or the instance throttled the call.
    Throttled,
    /// Another operation on the database, instance or subscription is running.
    Busy,
    /// A server-side timeout or outage.
    ServerSide,
    /// completeRestore named a file LRS has not restored yet.
    NotYetRestored,
    /// The job or database is not there (any more): the pipeline checks the database itself.
    Gone,
    /// completeRestore was already signalled: an earlier complete got through.
    AlreadyCompleting,
    /// The database is no longer restoring: after completeRestore this is the expected answer.
    NotRestoring,
    /// The database name is taken on the instance.
    NameInUse,
    /// The instance holds as many databases as its tier allows.
    DatabaseLimit,
    /// The instance or its storage is full.
    Capacity,
    /// The instance is stopped or stopping.
    InstanceStopped,
    /// The backups in the folder do not form a restore plan LRS can follow.
    Chain,
    /// LRS cannot read the storage container (SAS, managed identity, network).
    StorageAccess,
    /// Key Vault or certificate trouble (TDE-encrypted backups).
    Encryption,
    /// A backup is damaged or the restore failed in SQL: this job cannot go on.
    Damaged,
    /// The source database has a layout or feature LRS cannot restore.
    Unsupported,
    /// The subscription, resource group or managed instance is wrong or unusable.
    Target,
    /// The request itself was refused (bad parameter; not expected from this pipeline).
    Request,
}

impl Family {
    /// How the pipeline responds to this family.
    pub fn class(self) -> ErrorClass {
        match self {
            Family::Throttled
            | Family::Busy
            | Family::ServerSide
            | Family::NotYetRestored
            | Family::Gone => ErrorClass::Retry,
            Family::AlreadyCompleting | Family::NotRestoring | Family::NameInUse => {
                ErrorClass::Benign
            }
            Family::DatabaseLimit
            | Family::Capacity
            | Family::InstanceStopped
            | Family::Chain
            | Family::StorageAccess
            | Family::Encryption
            | Family::Target
            | Family::Request => ErrorClass::Block,
            Family::Damaged | Family::Unsupported => ErrorClass::Terminal,
        }
    }

    /// What it means and what to do, in words a DBA can act on.
    pub fn message(self) -> &'static str {
        match self {
            Family::Throttled => "Azure throttled the call; the pipeline retries on a later tick",
            Family::Busy => {
                "another operation on the database or instance is running; the pipeline retries on \
                 a later tick"
            }
            Family::ServerSide => {
                "Azure timed out or was unavailable; the pipeline retries on a later tick"
            }
            Family::NotYetRestored => {
                "LRS has not restored that file yet; the pipeline asks again once it has"
            }
            Family::Gone => {
                "LRS no longer knows the restore; the pipeline checks the database: if it is gone \
                 the migration becomes Lost and waits for `restart`"
            }
            Family::AlreadyCompleting => {
                "completion was already signalled; the pipeline watches the database come Online"
            }
            Family::NotRestoring => {
                "the database is no longer restoring; after completeRestore its own status is the truth"
            }
            Family::NameInUse => {
                "a database with this name exists on the instance; the pipeline adopts it only when \
                 restoreDetails says it is an LRS restore"
            }
            Family::DatabaseLimit => {
                "the managed instance holds as many databases as its tier allows (100 on General \
                 Purpose, 500 on Next-gen General Purpose): drop unused databases or move to a larger \
                 tier, then `resume`"
            }
            Family::Capacity => {
                "the managed instance or its storage is full: add storage to the instance or free \
                 space, then `resume`"
            }
            Family::InstanceStopped => "the managed instance is stopped: start it, then `resume`",
            Family::Chain => {
                "LRS cannot build a restore plan from the folder (missing full backup, LSN gap, \
                 missing stripe, no checksum, or backups of two databases): fix the folder's \
                 backups (`lrs-autopilot check`), then `resume`, or `restart` from a new full backup"
            }
            Family::StorageAccess => {
                "LRS cannot read the backup container: check the SAS token (read+list, not expired) \
                 or the instance's managed identity (Storage Blob Data Reader) and the storage \
                 firewall, then `resume`"
            }
            Family::Encryption => {
                "the backups are encrypted with a key the instance cannot reach: give the instance \
                 the certificate or Key Vault access, then `resume`"
            }
            Family::Damaged => {
                "a backup is damaged or SQL failed to restore it: this LRS job cannot go on; take a \
                 new full backup (WITH CHECKSUM) and `restart`"
            }
            Family::Unsupported => {
                "the source database uses a layout or feature LRS cannot restore: this database \
                 cannot be migrated with LRS as it is"
            }
            Family::Target => {
                "the subscription, resource group or managed instance is wrong or not usable: check \
                 LRS_SUBSCRIPTION_ID, LRS_RESOURCE_GROUP and LRS_MANAGED_INSTANCE, then `resume`"
            }
            Family::Request => {
                "Azure refused the request's parameters: check the collation, the database name and \
                 the storage settings, then `resume`"
            }
        }
    }
}

/// Every documented code of the four operations, with its family.
pub const CODES: &[(&str, Family)] = &[
    (
        "LRSCutoverDatabaseAlreadyRestored",
        Family::AlreadyCompleting,
    ),
    ("LRSCutoverAlreadyInitiated", Family::AlreadyCompleting),
    (
        "ExternalBackupAlreadySignaledToComplete",
        Family::AlreadyCompleting,
    ),
    ("ManagedInstanceStarting", Family::Busy),
    ("ManagedInstanceUpdateSloInProgress", Family::Busy),
    ("UpdatingInstanceAndBackupRedundancy", Family::Busy),
    ("ExternalBackupUpgradeInProgress", Family::Busy),
    (
        "ManagementServiceDropOnDroppingDatabaseNotAllowed",
        Family::Busy,
    ),
    ("ConflictingSystemOperationInProgress", Family::Busy),
    ("ConflictingDatabaseOperation", Family::Busy),
    ("ManagementServiceDatabaseBusy", Family::Busy),
    ("LongTermRetentionMigrationRequestConflict", Family::Busy),
    ("LongTermRetentionMigrationBackupConflict", Family::Busy),
    ("InstancePoolBusy", Family::Busy),
    ("ConflictingManagedInstanceOperation", Family::Busy),
    (
        "BackupRedundancyUpdateAndInstanceRedundancyConflict",
        Family::Busy,
    ),
    (
        "InstanceRedundancyUpdateWhileBackupRedundancyUpdateInProgress",
        Family::Busy,
    ),
    (
        "InstanceRedundancyUpdateAndBackupRedundancyConflict",
        Family::Busy,
    ),
    ("BackupRedundancyUpdateConflict", Family::Busy),
    ("CannotCancelOperation", Family::Busy),
    ("OperationCancelled", Family::Busy),
    ("OperationInterrupted", Family::Busy),
    ("InstanceNotReadyForBackupRedundancyUpdate", Family::Busy),
    ("CurrentDatabaseSizeExceedsMaxSize", Family::Capacity),
    ("NoMoreSpaceInManagedInstance", Family::Capacity),
    ("CurrentDatabaseLogSizeExceedsMaxSize", Family::Capacity),
    ("StorageAccountFull", Family::Capacity),
    ("ManagedInstanceStorageLimitHit", Family::Capacity),
    ("BackupSetNotFound", Family::Chain),
    ("FullBackupNotFound", Family::Chain),
    ("RestoreFromStripedBackupsNotEnabled", Family::Chain),
    ("BrokenRestorePlanNoFullBackup", Family::Chain),
    ("BrokenRestorePlanWrongLogBackupLSN", Family::Chain),
    ("BrokenRestorePlanWrongDiffBackupLSN", Family::Chain),
    ("BrokenRestorePlanGapInLogBackups", Family::Chain),
    ("FullBackupMissingChecksum", Family::Chain),
    ("MissingStripeInBackupSet", Family::Chain),
    (
        "BackupsFromMultipleDatabasesDetectedInTheContainerWhileRestoreInProgress",
        Family::Chain,
    ),
    ("BrokenRestorePlanWrongDiffBaseGUID", Family::Chain),
    (
        "BackupsFromMultipleDatabasesDetectedInTheContainerFromTheStart",
        Family::Chain,
    ),
    ("XtpInitializedDuringRestore", Family::Damaged),
    ("FullBackupDamaged", Family::Damaged),
    ("CorruptedPagesInBackupSet", Family::Damaged),
    ("CorruptedPagesListMaintenance", Family::Damaged),
    (
        "StorageBrokenIssueDetectedTerminateRetries",
        Family::Damaged,
    ),
    ("BackupSetBroken", Family::Damaged),
    ("SqlRestoreError", Family::Damaged),
    ("DatabaseNumberLimitReached", Family::DatabaseLimit),
    ("AkvEndpointNotReachableFromNode", Family::Encryption),
    ("SameKeyMaterialNotFoundOnRemoteServer", Family::Encryption),
    ("AkvHostNotResolvingFromNode", Family::Encryption),
    ("MissingThumbprint", Family::Encryption),
    (
        "CannotFindServerCertificateWithThumbprint",
        Family::Encryption,
    ),
    ("LRSCutoverDatabaseDoesNotExist", Family::Gone),
    ("LRSCutoverDatabaseNotInRestoringState", Family::Gone),
    ("ExternalBackupRestoreHasNotBeenStarted", Family::Gone),
    ("DatabaseDoesNotExist", Family::Gone),
    ("ResourceDoesNotExist", Family::Gone),
    ("RestoreDetailsNotAvailableOrExpired", Family::Gone),
    ("ManagedInstanceStoppingOrStopped", Family::InstanceStopped),
    ("ManagedDatabaseNameInUse", Family::NameInUse),
    ("RemoteDatabaseExists", Family::NameInUse),
    ("ManagedDatabaseNotInRestoringState", Family::NotRestoring),
    ("RequiredBackupIsNotLastRestored", Family::NotYetRestored),
    ("PasswordNotComplex", Family::Request),
    ("InvalidServerName", Family::Request),
    ("CannotUpdateIsLedgerDatabase", Family::Request),
    ("UnsupportedServiceName", Family::Request),
    ("TokenTooLong", Family::Request),
    ("RegionDoesNotSupportVersion", Family::Request),
    ("PitrPointInTimeInvalid", Family::Request),
    (
        "CannotUseTrailingWhitespacesInDatabaseName",
        Family::Request,
    ),
    ("SourceServerNotFound", Family::Request),
    ("InvalidBackupRetentionPeriod", Family::Request),
    ("SourceDatabaseNotFound", Family::Request),
    ("InvalidCollation", Family::Request),
    ("CannotUseReservedDatabaseName", Family::Request),
    ("InvalidDatabaseCreateOrUpdateRequest", Family::Request),
    ("InvalidResourceId", Family::Request),
    ("InvalidSourceDatabaseId", Family::Request),
    ("InvalidRestorableDroppedDatabaseId", Family::Request),
    (
        "InvalidCrossSubscriptionTargetManagedInstanceId",
        Family::Request,
    ),
    ("MissingCollation", Family::Request),
    ("MissingSourceDatabaseId", Family::Request),
    ("MissingRestorePointInTime", Family::Request),
    ("MissingStorageContainerSasToken", Family::Request),
    ("MissingStorageContainerUri", Family::Request),
    (
        "RestorableDroppedDatabaseIdGivenForRestoreWithSourceDatabaseId",
        Family::Request,
    ),
    (
        "CrossSubscriptionRestorableDroppedDatabaseIdGivenForRestoreWithCrossSubscriptionSourceDatabaseId",
        Family::Request,
    ),
    (
        "MissmatchingCrossSubscriptionTargetManagedInstanceIdWithUrl",
        Family::Request,
    ),
    (
        "InvalidLongTermRetentionManagedInstanceBackupId",
        Family::Request,
    ),
    (
        "LongTermRetentiontBackupOperationResultsInvalidODataQuery",
        Family::Request,
    ),
    ("LTRBackupNotExists", Family::Request),
    (
        "LongTermRetentionMigrationBackupStorageRedundancyNotAllowed",
        Family::Request,
    ),
    ("LtrRestoreFailedArchiveStorageTier", Family::Request),
    ("LtrArchiveStorageTierNotEnabled", Family::Request),
    ("LtrArchiveWrongParameters", Family::Request),
    ("LTRArchiveRedundancyChangeFailed", Family::Request),
    (
        "LongTermRetentionMigrationSubscriptionNotFound",
        Family::Request,
    ),
    ("LtrOperationFailedBackupImmutable", Family::Request),
    ("DeleteLtrBackupWithLegalHold", Family::Request),
    ("LTRBackupImmutableNotSet", Family::Request),
    ("LTRBackupImmutabilityLocked", Family::Request),
    (
        "LongTermRetentionMigrationRequestNotSupported",
        Family::Request,
    ),
    (
        "LongTermRetentionMigrationCrossClusterRequestNotSupported",
        Family::Request,
    ),
    (
        "LongTermRetentionMigrationParameterMissing",
        Family::Request,
    ),
    (
        "LongTermRetentionMigrationSameServerNotSupported",
        Family::Request,
    ),
    (
        "LongTermRetentionMigrationTargetServerNotFound",
        Family::Request,
    ),
    (
        "LongTermRetentionMigrationTargetDatabaseNotFound",
        Family::Request,
    ),
    (
        "LongTermRetentionMigrationStorageTypeNotSupported",
        Family::Request,
    ),
    ("LongTermRetentionMigrationStorageMismatch", Family::Request),
    (
        "LongTermRetentionMigrationDatabaseTypeNotSupported",
        Family::Request,
    ),
    (
        "MiGeoRestoreWithWrongBackupStorageRedundancy",
        Family::Request,
    ),
    ("LastBackupNameHasNewline", Family::Request),
    ("LastBackupNameHasNonAsciiCharacter", Family::Request),
    ("AadOnlyAuthenticationIsEnabled", Family::Request),
    ("DeleteOfManagedInstanceIsDisabled", Family::Request),
    ("CustomMaintenanceWindowIsDisabled", Family::Request),
    ("DeleteOfVersion2VirtualClusterIsDisabled", Family::Request),
    ("DeleteOfVirtualClusterIsDisabled", Family::Request),
    ("MICantBeMovedFromOrToInstancePool", Family::Request),
    ("DnsRefreshOnVirtualClusterIsDisabled", Family::Request),
    ("AutoCompleteMissingLastBackupName", Family::Request),
    ("RestoreSourceDatabaseNotFound", Family::Request),
    ("CannotFindObject", Family::Request),
    ("LongTermRetentionMigrationBackupNotFound", Family::Request),
    ("MiCreateFailedNonDelegatedSubnet", Family::Request),
    ("MiDropFailedOnAuthLocks", Family::Request),
    ("InvalidDatabaseCompleteRestoreRequest", Family::Request),
    (
        "InvalidDatabaseCompleteRestoreRequestLastBackupName",
        Family::Request,
    ),
    ("InvalidIdentifier", Family::Request),
    ("TimeoutDuringRestore", Family::ServerSide),
    ("BlobStorageServerFailure", Family::ServerSide),
    ("OperationIdNotFound", Family::ServerSide),
    (
        "LongTermRetentionMigrationRequestCopyFailed",
        Family::ServerSide,
    ),
    (
        "LongTermRetentionMigrationRestoreVerExceeded",
        Family::ServerSide,
    ),
    (
        "LongTermRetentionMigrationRestoreVerFailed",
        Family::ServerSide,
    ),
    (
        "LongTermRetentionMigrationRequestFailedToStartOnTarget",
        Family::ServerSide,
    ),
    ("OperationTimedOut", Family::ServerSide),
    ("DatabaseUnavailable", Family::ServerSide),
    ("RequestTimeout", Family::ServerSide),
    (
        "ManagedIdentityIssueDetectedWhileRestoreInProgress",
        Family::StorageAccess,
    ),
    (
        "StorageBrokenIssueDetectedWhileInProgress",
        Family::StorageAccess,
    ),
    ("BlobStorageFailure", Family::StorageAccess),
    (
        "ManagedIdentityIssueDetectedFromTheStart",
        Family::StorageAccess,
    ),
    (
        "StorageBrokenIssueDetectedAtTheStart",
        Family::StorageAccess,
    ),
    ("ServerNotInSubscriptionResourceGroup", Family::Target),
    ("SubscriptionDoesNotHaveServer", Family::Target),
    ("ResourceNotFound", Family::Target),
    ("ServerNotFound", Family::Target),
    ("MismatchingResourceGroupNameWithUrl", Family::Target),
    ("MismatchingServerNameWithUrl", Family::Target),
    ("MismatchingSubscriptionWithUrl", Family::Target),
    ("ManagementServiceManagedServerDisabled", Family::Target),
    ("ProvisioningDisabled", Family::Target),
    ("ManagementServiceFeatureDisabled", Family::Target),
    ("RequestCantLandOnPaaSv2Platform", Family::Target),
    ("TargetServerDoesNotExist", Family::Target),
    ("TargetServerRestoreNotAllowed", Family::Target),
    ("ServerNotInSubscription", Family::Target),
    ("SubscriptionNotFound", Family::Target),
    ("SubscriptionDisabled", Family::Target),
    ("SubscriptionTooManyRequests", Family::Throttled),
    ("SubscriptionTooManyCreateUpdateRequests", Family::Throttled),
    ("ConflictingSubscriptionOperation", Family::Throttled),
    ("ActivateOrDeactivateWorkflowThrottling", Family::Throttled),
    ("TooManyRequests", Family::Throttled),
    ("PartiallyContainedDatabaseUnsupported", Family::Unsupported),
    (
        "IncompatiblePhysicalLayoutTooFewDataFiles",
        Family::Unsupported,
    ),
    (
        "IncompatiblePhysicalLayoutNonOnlineDataFilesExist",
        Family::Unsupported,
    ),
    (
        "IncompatiblePhysicalLayoutWrongNumberOfLogFiles",
        Family::Unsupported,
    ),
    (
        "IncompatiblePhysicalLayoutNonOnlineLogFilesExist",
        Family::Unsupported,
    ),
    (
        "IncompatiblePhysicalLayoutTooManyNonDataLogFiles",
        Family::Unsupported,
    ),
    (
        "IncompatiblePhysicalLayoutTooManyXTPFiles",
        Family::Unsupported,
    ),
];

/// How one error code is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// The family (and with it the message).
    pub family: Option<Family>,
    /// Retry, block, terminal or benign.
    pub class: ErrorClass,
}

impl Classified {
    /// The actionable message.
    pub fn message(&self) -> &'static str {
        match self.family {
            Some(f) => f.message(),
            None => match self.class {
                ErrorClass::Retry => {
                    "Azure answered with an undocumented transient error; the pipeline retries"
                }
                _ => {
                    "Azure answered with an error code its documentation does not list: read the \
                     message, fix the cause, then `resume`"
                }
            },
        }
    }
}

/// The documented family of `code` (case-insensitive), if it is documented.
pub fn family(code: &str) -> Option<Family> {
    CODES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, f)| *f)
}

/// Classifies an error answer. A documented code decides; an undocumented one falls back on the
/// HTTP status (408, 409, 429 and 5xx retry; anything else blocks) and on its wording: a code that
/// speaks of throttling or a concurrency limit retries, since a limit at start must leave the
/// database ready to start later.
pub fn classify(status: Option<u16>, code: Option<&str>) -> Classified {
    if let Some(family) = code.and_then(family) {
        return Classified {
            family: Some(family),
            class: family.class(),
        };
    }
    let lower = code.unwrap_or_default().to_ascii_lowercase();
    let limit_words = ["toomany", "throttl", "concurrent", "ratelimit"];
    let transient = match status {
        None => true,
        Some(s) => s == 408 || s == 409 || s == 429 || s >= 500,
    } || limit_words.iter().any(|w| lower.contains(w));
    Classified {
        family: None,
        class: if transient {
            ErrorClass::Retry
        } else {
            ErrorClass::Block
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_decide_the_documented_codes() {
        let c = classify(Some(400), Some("BrokenRestorePlanGapInLogBackups"));
        assert_eq!(
            (c.family, c.class),
            (Some(Family::Chain), ErrorClass::Block)
        );
        assert_eq!(
            classify(Some(429), Some("SubscriptionTooManyRequests")).class,
            ErrorClass::Retry
        );
        assert_eq!(
            classify(Some(400), Some("sqlrestoreerror")).class,
            ErrorClass::Terminal
        );
        assert_eq!(
            classify(Some(400), Some("ExternalBackupAlreadySignaledToComplete")).class,
            ErrorClass::Benign
        );
        let limit = classify(Some(400), Some("DatabaseNumberLimitReached"));
        assert_eq!(limit.class, ErrorClass::Block);
        assert!(limit.message().contains("100 on General Purpose"));
        assert!(limit.message().contains("500 on Next-gen"));
    }

    #[test]
    fn undocumented_codes_fall_back_on_status_and_wording() {
        assert_eq!(
            classify(Some(503), Some("Whatever")).class,
            ErrorClass::Retry
        );
        assert_eq!(classify(None, None).class, ErrorClass::Retry);
        assert_eq!(
            classify(Some(400), Some("TooManyConcurrentRestores")).class,
            ErrorClass::Retry
        );
        let other = classify(Some(400), Some("SomethingNew"));
        assert_eq!((other.family, other.class), (None, ErrorClass::Block));
        assert!(other.message().contains("does not list"));
    }

    #[test]
    fn no_code_is_listed_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, _) in CODES {
            assert!(seen.insert(code.to_ascii_lowercase()), "{code} twice");
        }
    }
}
