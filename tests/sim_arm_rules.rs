//! The simulator's ARM rules and faults, driven by the real client over real HTTP on 127.0.0.1:0.
//! None of these need a readable backup: the folders hold files that are not backups.

mod sim_support;

use std::time::Instant;

use lrs_autopilot::lrs::ops::{Accepted, CompleteRestore, SasToken, StartRestore, StorageAuth};
use lrs_autopilot::lrs::{DatabaseId, DatabaseStatus, Error, OperationStatus, PollKind};
use lrs_autopilot::sim::{Clock, Faults};
use sim_support::{client, config, database, empty_sim, faults, raw, start, write_junk};

const COLLATION: &str = "SQL_Latin1_General_CP1_CI_AS";

fn start_request(db: &DatabaseId, folder: &str) -> StartRestore {
    let token = SasToken::new("?sv=2022-11-02&sp=rl&sig=TOPSECRET").expect("valid token");
    StartRestore::new(
        db.clone(),
        "westeurope",
        &format!("https://acct.blob.core.windows.net/landing/{folder}"),
        StorageAuth::SharedAccessSignature(token),
        COLLATION,
    )
    .expect("valid start")
}

#[tokio::test]
async fn start_then_duplicate_start_is_refused_as_name_in_use() {
    let root = tempfile::tempdir().expect("temp dir");
    write_junk(root.path(), "landing", "db1", "readme.txt");
    let sim = start(config(root.path())).await;
    let lrs = client(&sim.base);
    let db = database("db1");

    let mi = lrs
        .get_managed_instance(&sim_support::instance())
        .await
        .expect("instance");
    assert_eq!(mi.location, "westeurope");
    let accepted = lrs
        .begin_start(&start_request(&db, "db1"))
        .await
        .expect("start accepted");
    assert!(
        matches!(accepted, Accepted::Running(_)),
        "start is a long-running operation"
    );
    lrs.wait(&accepted).await.expect("start operation succeeds");
    assert_eq!(
        lrs.get_database(&db).await.expect("database").status(),
        DatabaseStatus::Restoring
    );

    let err = lrs
        .start(&start_request(&db, "db1"))
        .await
        .expect_err("duplicate start");
    assert!(err.is_name_in_use(), "{err}");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("ManagedDatabaseNameInUse"));
    assert!(err.request_id().is_some(), "errors carry the request id");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn refuses_an_early_complete_and_shows_unrestorable_files() {
    let root = tempfile::tempdir().expect("temp dir");
    write_junk(root.path(), "landing", "db1", "ImageFile.JPG");
    let sim = start(config(root.path())).await;
    let lrs = client(&sim.base);
    let db = database("db1");
    lrs.start(&start_request(&db, "db1"))
        .await
        .expect("started");

    let complete = CompleteRestore::new(db.clone(), "ImageFile.JPG").expect("valid name");
    let err = lrs
        .complete(&complete)
        .await
        .expect_err("nothing restored yet");
    assert!(err.is_not_last_restored(), "{err}");

    let details = lrs.restore_details(&db).await.expect("details");
    assert_eq!(details.restore_type.as_deref(), Some("LRSRestore"));
    assert_eq!(details.status.as_deref(), Some("Restoring"));
    assert_eq!(details.number_of_files_detected, Some(1));
    assert_eq!(details.number_of_files_unrestorable, Some(1));
    assert_eq!(details.unrestorable_files[0].name, "ImageFile.JPG");
    assert!(details.last_restored_file_name.is_none());
    assert!(
        details
            .block_reason
            .as_deref()
            .is_some_and(|r| r.contains("full backup")),
        "{:?}",
        details.block_reason
    );
}

#[tokio::test]
async fn the_simulator_checks_last_backup_names_as_arm_does() {
    let (_root, _sim, lrs) = empty_sim().await;
    let db = database("db1");
    lrs.start(&start_request(&db, "db1"))
        .await
        .expect("started");
    // Built directly, past the client's own checks, to see the server's answer.
    for (name, code) in [
        ("a\nb.trn", "LastBackupNameHasNewline"),
        ("tail-é.trn", "LastBackupNameHasNonAsciiCharacter"),
        (" ", "InvalidDatabaseCompleteRestoreRequestLastBackupName"),
    ] {
        let complete = CompleteRestore {
            database: db.clone(),
            last_backup_name: name.into(),
        };
        let err = lrs.begin_complete(&complete).await.expect_err("refused");
        assert_eq!(err.code(), Some(code), "{name:?}: {err}");
    }
    let err = lrs
        .begin_complete(&CompleteRestore::new(database("nope"), "x.trn").expect("valid"))
        .await
        .expect_err("no such database");
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn the_simulator_refuses_start_bodies_lrs_refuses() {
    let root = tempfile::tempdir().expect("temp dir");
    let sim = start(config(root.path())).await;
    let path = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/managedInstances/m/databases/d?api-version=2025-01-01";
    let cases = [
        (r#"{"properties":{}}"#, "LocationRequired"),
        (
            r#"{"location":"x","properties":{"createMode":"Default"}}"#,
            "InvalidCreateMode",
        ),
        (
            r#"{"location":"x","properties":{"createMode":"RestoreExternalBackup","collation":"c"}}"#,
            "MissingStorageContainerUri",
        ),
        (
            r#"{"location":"x","properties":{"createMode":"RestoreExternalBackup","storageContainerUri":"https://a/c/d"}}"#,
            "MissingCollation",
        ),
        (
            r#"{"location":"x","properties":{"createMode":"RestoreExternalBackup","storageContainerUri":"https://a/c/d","collation":"c","storageContainerIdentity":"SharedAccessSignature"}}"#,
            "MissingStorageContainerSasToken",
        ),
        (
            r#"{"location":"x","properties":{"createMode":"RestoreExternalBackup","storageContainerUri":"https://a/c/d?sig=x","collation":"c","storageContainerIdentity":"ManagedIdentity"}}"#,
            "ExternalBackupUriMalformed",
        ),
        (
            r#"{"location":"x","properties":{"createMode":"RestoreExternalBackup","storageContainerUri":"http://a.blob.core.windows.net/c/d","collation":"c","storageContainerIdentity":"ManagedIdentity"}}"#,
            "ExternalBackupUriInvalidSchemeOrPort",
        ),
        (
            r#"{"location":"x","properties":{"createMode":"RestoreExternalBackup","storageContainerUri":"https://a/c/d","collation":"c","storageContainerIdentity":"SharedAccessSignature","storageContainerSasToken":"?sp=rl"}}"#,
            "InvalidStorageContainerSasToken",
        ),
        ("not json", "InvalidRequestContent"),
    ];
    for (body, code) in cases {
        let (status, answer) = raw(&sim.base, "PUT", path, body).await;
        assert_eq!(status, 400, "{body}");
        assert!(answer.contains(code), "{body}: {answer}");
    }
    let (status, answer) = raw(
        &sim.base,
        "GET",
        path.trim_end_matches("?api-version=2025-01-01"),
        "",
    )
    .await;
    assert_eq!(status, 400);
    assert!(answer.contains("MissingApiVersionParameter"), "{answer}");
    let (status, answer) = raw(
        &sim.base,
        "GET",
        "/subscriptions/s/nothing?api-version=1",
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert!(answer.contains("InvalidResourceType"), "{answer}");
    let huge = format!("{{\"location\":\"{}\"}}", "x".repeat(1_100_000));
    let (status, answer) = raw(&sim.base, "PUT", path, &huge).await;
    assert_eq!(status, 413, "an oversized body is refused, not buffered");
    assert!(answer.contains("RequestEntityTooLarge"), "{answer}");
}

#[tokio::test]
async fn the_request_log_counts_starts_completes_and_deletes_without_secrets() {
    let (_root, sim, lrs) = empty_sim().await;
    let db = database("db1");
    lrs.start(&start_request(&db, "db1"))
        .await
        .expect("started");
    let _ = lrs
        .start(&start_request(&db, "db1"))
        .await
        .expect_err("duplicate");
    let _ = lrs
        .complete(&CompleteRestore::new(db.clone(), "x.trn").expect("valid"))
        .await
        .expect_err("nothing restored");
    let db_path = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-test/providers/Microsoft.Sql/managedInstances/mi-test/databases/db1";
    let (status, _) = raw(
        &sim.base,
        "DELETE",
        &format!("{db_path}?api-version=2025-01-01"),
        "",
    )
    .await;
    assert_eq!(
        status, 202,
        "a delete of an existing database is accepted, as ARM does"
    );
    let (status, _) = raw(
        &sim.base,
        "DELETE",
        &format!("{db_path}?api-version=2025-01-01"),
        "",
    )
    .await;
    assert_eq!(
        status, 204,
        "a delete of a missing database is 204, as ARM does"
    );
    let err = lrs.get_database(&db).await.expect_err("deleted");
    assert!(err.is_not_found());

    // Over HTTP, in the documented shape.
    let (status, body) = raw(&sim.base, "GET", "/_sim/requests", "").await;
    assert_eq!(status, 200);
    let log: serde_json::Value = serde_json::from_str(&body).expect("json log");
    let requests = log["requests"].as_array().expect("a requests array");
    for r in requests {
        for key in ["method", "path", "status", "time", "body"] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
    }
    let count = |method: &str, suffix: &str, status: u64| {
        requests
            .iter()
            .filter(|r| {
                r["method"] == method
                    && r["path"].as_str().is_some_and(|p| p.ends_with(suffix))
                    && r["status"] == status
            })
            .count()
    };
    assert_eq!(count("PUT", "/databases/db1", 202), 1, "one accepted start");
    assert_eq!(count("PUT", "/databases/db1", 400), 1, "one refused start");
    assert_eq!(count("POST", "/databases/db1/completeRestore", 400), 1);
    assert_eq!(
        count("DELETE", "/databases/db1", 202) + count("DELETE", "/databases/db1", 204),
        2
    );
    assert!(
        !body.contains("TOPSECRET"),
        "the sas token must never reach the log"
    );
    let start = requests
        .iter()
        .find(|r| r["method"] == "PUT")
        .expect("a start");
    assert_eq!(
        start["body"]["properties"]["storageContainerSasToken"],
        "<redacted>"
    );
    assert_eq!(
        start["time"], "2025-06-01T08:00:00Z",
        "times are the simulator's clock"
    );
    assert_eq!(sim.state.requests().len(), requests.len());
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_they_pass() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(root.path());
    cfg.faults = Faults {
        throttle_rate: 0.3,
        retry_after_secs: 0,
        server_error_rate: 0.3,
        latency_ms: 5,
        ..faults(7)
    };
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    for i in 0..6 {
        let db = database(&format!("db{i}"));
        lrs.start(&start_request(&db, &format!("db{i}")))
            .await
            .expect("start survives faults");
        lrs.restore_details(&db)
            .await
            .expect("details survive faults");
        assert_eq!(
            lrs.get_database(&db).await.expect("database").status(),
            DatabaseStatus::Restoring
        );
    }
    let log = sim.state.requests();
    let throttled = log.iter().filter(|r| r.status == 429).count();
    let failed = log.iter().filter(|r| r.status == 500).count();
    assert!(
        throttled > 0 && failed > 0,
        "faults were injected: {throttled} 429s, {failed} 500s"
    );
    let starts = log
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 202)
        .count();
    assert_eq!(starts, 6, "each start went through exactly once");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (_root, sim, lrs) = empty_sim().await;
    // Every request throttled with Retry-After: 1, then the fault is lifted by a test task.
    sim.state.set_faults(Faults {
        throttle_rate: 1.0,
        retry_after_secs: 1,
        ..faults(1)
    });
    let state = sim.state.clone();
    let lift = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        state.set_faults(Faults::default());
    });
    let began = Instant::now();
    lrs.get_managed_instance(&sim_support::instance())
        .await
        .expect("passes once lifted");
    assert!(
        began.elapsed() >= std::time::Duration::from_secs(1),
        "waited for Retry-After"
    );
    lift.await.expect("lift task");
    let throttled = sim
        .state
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(
        throttled, 1,
        "one 429, then the retry after a second succeeded"
    );
}

#[tokio::test]
async fn persistent_faults_surface_as_typed_errors() {
    let (_root, sim, lrs) = empty_sim().await;
    let db = database("db1");

    sim.state.set_faults(Faults {
        conflict_rate: 1.0,
        ..faults(3)
    });
    let err = lrs
        .start(&start_request(&db, "db1"))
        .await
        .expect_err("busy");
    assert!(err.is_conflicting_operation(), "{err}");
    assert!(
        err.is_retryable(),
        "a busy database is worth retrying later"
    );
    lrs.restore_details(&db)
        .await
        .expect_err("reads are not refused as busy, but db1 does not exist");

    sim.state.set_faults(Faults {
        throttle_rate: 1.0,
        retry_after_secs: 0,
        ..faults(3)
    });
    let err = lrs.get_database(&db).await.expect_err("always throttled");
    assert!(err.is_throttled() && err.is_retryable(), "{err}");
    assert_eq!(err.code(), Some("SubscriptionTooManyRequests"));

    sim.state.set_faults(Faults {
        server_error_rate: 1.0,
        ..faults(3)
    });
    let err = lrs.get_database(&db).await.expect_err("always failing");
    assert_eq!(err.status(), Some(500));
    assert!(err.is_retryable());

    let dead = client("http://127.0.0.1:9");
    let err = dead
        .get_database(&db)
        .await
        .expect_err("nothing listens on port 9");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn a_storage_failure_shows_in_block_reason() {
    let (_root, sim, lrs) = empty_sim().await;
    let db = database("db1");
    sim.state.set_faults(Faults {
        storage_failure: true,
        ..faults(0)
    });
    lrs.start(&start_request(&db, "db1"))
        .await
        .expect("started");
    let details = lrs.restore_details(&db).await.expect("details");
    let reason = details.block_reason.unwrap_or_default();
    assert!(
        reason.starts_with("StorageBrokenIssueDetectedWhileInProgress"),
        "{reason}"
    );

    // A folder that does not exist is a storage failure too, named in the reason.
    sim.state.set_faults(Faults::default());
    let other = database("db2");
    lrs.start(&start_request(&other, "no-such-folder"))
        .await
        .expect("started");
    let reason = lrs
        .restore_details(&other)
        .await
        .expect("details")
        .block_reason
        .unwrap_or_default();
    assert!(
        reason.starts_with("StorageBrokenIssueDetectedWhileInProgress")
            && reason.contains("not found"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_job_not_completed_within_30_days_is_cancelled() {
    let (_root, sim, lrs) = empty_sim().await;
    let db = database("db1");
    lrs.start(&start_request(&db, "db1"))
        .await
        .expect("started");
    sim.clock.advance(time::Duration::days(29));
    assert_eq!(
        lrs.get_database(&db).await.expect("still there").status(),
        DatabaseStatus::Restoring
    );
    sim.clock.advance(time::Duration::days(1));
    let err = lrs.restore_details(&db).await.expect_err("expired");
    assert_eq!(err.code(), Some("RestoreDetailsNotAvailableOrExpired"));
    assert_eq!(err.status(), Some(400), "documented as 400");
    assert!(
        lrs.get_database(&db)
            .await
            .expect_err("dropped")
            .is_not_found()
    );
    lrs.start(&start_request(&db, "db1"))
        .await
        .expect("the name is free again");
}

#[tokio::test]
async fn operations_are_followed_by_location_when_that_is_all_there_is() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(root.path());
    cfg.send_async_operation = false;
    cfg.operation_secs = Some(3.0);
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    let db = database("db1");
    let accepted = lrs
        .begin_start(&start_request(&db, "db1"))
        .await
        .expect("accepted");
    let Accepted::Running(op) = &accepted else {
        panic!("start is long-running: {accepted:?}")
    };
    assert!(matches!(op.poll, PollKind::Location(_)), "{op:?}");
    let status = lrs.poll(op).await.expect("poll");
    assert!(
        matches!(status, OperationStatus::InProgress { .. }),
        "{status:?}"
    );
    sim.clock.advance(time::Duration::seconds(3));
    lrs.wait(&accepted).await.expect("the location poll ends");
    let polls = sim
        .state
        .requests()
        .iter()
        .filter(|r| r.path.contains("/managedDatabaseOperationResults/"))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(polls, [202, 204], "202 while running, then 204");
}
