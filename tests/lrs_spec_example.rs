//! The client reads the public API spec's restoreDetails example verbatim
//! (Azure/azure-rest-api-specs, specification/sql/resource-manager/Microsoft.Sql/stable/2025-01-01/
//! examples/ManagedDatabaseRestoreDetails.json, whitespace compacted as in the shared docs §5.1).

use azure_core::http::headers::Headers;
use lrs_autopilot::lrs::SetStatus;
use lrs_autopilot::lrs::ops::GetRestoreDetails;

const SPEC_EXAMPLE: &str = r#"{
  "properties": {
    "type": "LRSRestore",
    "status": "Restoring",
    "lastUploadedFileName": "RestoreDetailsFullBlownExampleLog11.bak",
    "lastUploadedFileTime": "2022-03-01T07:54:21Z",
    "lastRestoredFileName": "RestoreDetailsFullBlownExampleLog9_1.bak",
    "lastRestoredFileTime": "2022-05-09T12:27:20.4936305Z",
    "percentCompleted": 53,
    "currentRestoredSizeMB": 25,
    "currentRestorePlanSizeMB": 47,
    "currentBackupType": "Log",
    "currentRestoringFileName": "RestoreDetailsFullBlownExampleLog10.bak",
    "numberOfFilesDetected": 25,
    "numberOfFilesQueued": 1,
    "numberOfFilesSkipped": 8,
    "numberOfFilesRestoring": 1,
    "numberOfFilesRestored": 14,
    "numberOfFilesUnrestorable": 1,
    "fullBackupSets": [
      { "status": "Skipped", "firstStripeName": "RestoreDetailsFullBlownExampleFull2.bak", "numberOfStripes": 1, "backupSizeMB": 2 },
      { "status": "Restored", "firstStripeName": "RestoreDetailsFullBlownExampleFull3_1.bak", "numberOfStripes": 3, "backupSizeMB": 3,
        "restoreStartedTimestampUtc": "2022-05-09T12:15:40.3143263Z", "restoreFinishedTimestampUtc": "2022-05-09T12:18:41.3785089Z" }
    ],
    "diffBackupSets": [
      { "status": "Skipped", "firstStripeName": "RestoreDetailsFullBlownExampleDiff2.bak", "numberOfStripes": 1, "backupSizeMB": 0 },
      { "status": "Restored", "firstStripeName": "RestoreDetailsFullBlownExampleDiff3_1.bak", "numberOfStripes": 3, "backupSizeMB": 1,
        "restoreStartedTimestampUtc": "2022-05-09T12:19:40.5455092Z", "restoreFinishedTimestampUtc": "2022-05-09T12:20:21.3667454Z" }
    ],
    "logBackupSets": [
      { "status": "Skipped", "firstStripeName": "RestoreDetailsFullBlownExampleLog2.bak", "numberOfStripes": 1, "backupSizeMB": 0 },
      { "status": "Skipped", "firstStripeName": "RestoreDetailsFullBlownExampleLog3.bak", "numberOfStripes": 1, "backupSizeMB": 8 },
      { "status": "Skipped", "firstStripeName": "RestoreDetailsFullBlownExampleLog4.bak", "numberOfStripes": 1, "backupSizeMB": 11 },
      { "status": "Restored", "firstStripeName": "RestoreDetailsFullBlownExampleLog5.bak", "numberOfStripes": 1, "backupSizeMB": 7, "restoreStartedTimestampUtc": "2022-05-09T12:21:01.7717453Z", "restoreFinishedTimestampUtc": "2022-05-09T12:21:54.7557851Z" },
      { "status": "Restored", "firstStripeName": "RestoreDetailsFullBlownExampleLog6.bak", "numberOfStripes": 1, "backupSizeMB": 3, "restoreStartedTimestampUtc": "2022-05-09T12:22:41.8784062Z", "restoreFinishedTimestampUtc": "2022-05-09T12:23:03.709407Z" },
      { "status": "Restored", "firstStripeName": "RestoreDetailsFullBlownExampleLog7.bak", "numberOfStripes": 1, "backupSizeMB": 4, "restoreStartedTimestampUtc": "2022-05-09T12:23:36.6264066Z", "restoreFinishedTimestampUtc": "2022-05-09T12:23:52.9274047Z" },
      { "status": "Restored", "firstStripeName": "RestoreDetailsFullBlownExampleLog8.bak", "numberOfStripes": 1, "backupSizeMB": 3, "restoreStartedTimestampUtc": "2022-05-09T12:24:25.899407Z", "restoreFinishedTimestampUtc": "2022-05-09T12:24:37.9954063Z" },
      { "status": "Restored", "firstStripeName": "RestoreDetailsFullBlownExampleLog9_1.bak", "numberOfStripes": 4, "backupSizeMB": 4, "restoreStartedTimestampUtc": "2022-05-09T12:25:10.8804065Z", "restoreFinishedTimestampUtc": "2022-05-09T12:25:27.808409Z" },
      { "status": "Restoring", "firstStripeName": "RestoreDetailsFullBlownExampleLog10.bak", "numberOfStripes": 1, "backupSizeMB": 15, "restoreStartedTimestampUtc": "2022-05-09T12:26:00.7813103Z" },
      { "status": "Queued", "firstStripeName": "RestoreDetailsFullBlownExampleLog11.bak", "numberOfStripes": 1, "backupSizeMB": 7 }
    ],
    "unrestorableFiles": [ { "name": "ImageFile.JPG" } ]
  },
  "id": "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/Default-SQL-SouthEastAsia/providers/Microsoft.Sql/managedInstances/managedInstance/databases/testdb/restoreDetails/current",
  "name": "current",
  "type": "Microsoft.Sql/managedInstances/databases/restoreDetails"
}"#;

#[test]
fn deserializes_the_spec_restore_details_example_verbatim() {
    let d = GetRestoreDetails::parse_response(200, &Headers::new(), SPEC_EXAMPLE.as_bytes())
        .expect("the spec example must parse");
    assert_eq!(d.restore_type.as_deref(), Some("LRSRestore"));
    assert_eq!(d.status.as_deref(), Some("Restoring"));
    assert_eq!(
        d.last_uploaded_file_name.as_deref(),
        Some("RestoreDetailsFullBlownExampleLog11.bak")
    );
    assert_eq!(
        d.last_uploaded_file_time.map(|t| t.unix_timestamp()),
        Some(1_646_121_261)
    );
    assert_eq!(
        d.last_restored_file_name.as_deref(),
        Some("RestoreDetailsFullBlownExampleLog9_1.bak")
    );
    assert_eq!(
        d.last_restored_file_time
            .map(|t| (t.unix_timestamp(), t.nanosecond())),
        Some((1_652_099_240, 493_630_500))
    );
    assert_eq!(d.percent_completed, Some(53.0));
    assert_eq!(d.current_restored_size_mb, Some(25.0));
    assert_eq!(d.current_restore_plan_size_mb, Some(47.0));
    assert_eq!(d.current_backup_type.as_deref(), Some("Log"));
    assert_eq!(
        d.current_restoring_file_name.as_deref(),
        Some("RestoreDetailsFullBlownExampleLog10.bak")
    );
    assert_eq!(
        [
            d.number_of_files_detected,
            d.number_of_files_queued,
            d.number_of_files_skipped,
            d.number_of_files_restoring,
            d.number_of_files_restored,
            d.number_of_files_unrestorable
        ],
        [Some(25), Some(1), Some(8), Some(1), Some(14), Some(1)]
    );
    assert_eq!(d.full_backup_sets.len(), 2);
    assert_eq!(d.diff_backup_sets.len(), 2);
    assert_eq!(d.log_backup_sets.len(), 10);
    let full = &d.full_backup_sets[1];
    assert_eq!(full.status, SetStatus::Restored);
    assert_eq!(
        full.first_stripe_name.as_deref(),
        Some("RestoreDetailsFullBlownExampleFull3_1.bak")
    );
    assert_eq!(full.number_of_stripes, Some(3));
    assert_eq!(full.backup_size_mb, Some(3.0));
    assert!(
        full.restore_started_timestamp_utc.is_some()
            && full.restore_finished_timestamp_utc.is_some()
    );
    let statuses: Vec<&str> = d
        .log_backup_sets
        .iter()
        .map(|s| s.status.as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "Skipped",
            "Skipped",
            "Skipped",
            "Restored",
            "Restored",
            "Restored",
            "Restored",
            "Restored",
            "Restoring",
            "Queued"
        ]
    );
    let restoring = &d.log_backup_sets[8];
    assert!(restoring.restore_started_timestamp_utc.is_some());
    assert!(restoring.restore_finished_timestamp_utc.is_none());
    assert_eq!(d.unrestorable_files.len(), 1);
    assert_eq!(d.unrestorable_files[0].name, "ImageFile.JPG");
    assert_eq!(d.all_sets().count(), 14);
}

#[test]
fn accepts_the_older_string_shape_of_unrestorable_files() {
    let old = SPEC_EXAMPLE.replace(
        r#"[ { "name": "ImageFile.JPG" } ]"#,
        r#"[ "ImageFile.JPG" ]"#,
    );
    assert_ne!(old, SPEC_EXAMPLE, "the replacement must apply");
    let d =
        GetRestoreDetails::parse_response(200, &Headers::new(), old.as_bytes()).expect("parses");
    assert_eq!(d.unrestorable_files[0].name, "ImageFile.JPG");
}
