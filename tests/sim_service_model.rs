//! The simulator against what Microsoft documents about the real service: the create operation's
//! lifetime, drops, documented error codes with their statuses (read from the spec files), databases
//! LRS did not create, the reserved word, the concurrent restore limits and ARM's throttling. Driven
//! over real HTTP on 127.0.0.1:0, with the real client where it fits and raw requests where the test
//! must see headers or statuses the client would retry.

mod sim_support;
mod support;

use std::time::Instant;

use lrs_autopilot::lrs::ops::{Accepted, CompleteRestore, StartRestore, StorageAuth};
use lrs_autopilot::lrs::{DatabaseId, DatabaseStatus, Error, OperationStatus, PollKind};
use lrs_autopilot::sim::{Clock, codes};
use serde_json::json;
use sim_support::{
    caught_up_to, client, config, copy_folder, database, db_path, drive, put_faults, raw, raw_full,
    spec_codes, start, start_body, write_junk,
};

const SPEC_DB: &str = "ManagedDatabases.json";
const SPEC_DETAILS: &str = "ManagedDatabaseRestoreDetails.json";

fn start_request(db: &DatabaseId, folder: &str) -> StartRestore {
    StartRestore::new(
        db.clone(),
        "westeurope",
        &format!("https://acct.blob.core.windows.net/landing/{folder}"),
        StorageAuth::ManagedIdentity,
        "SQL_Latin1_General_CP1_CI_AS",
    )
    .expect("valid start")
}

fn details_path(db: &str) -> String {
    db_path("mi-test", db).replace("?api-version", "/restoreDetails/Default?api-version")
}

async fn running(lrs: &lrs_autopilot::lrs::LrsClient, op: &Accepted) -> bool {
    let Accepted::Running(op) = op else {
        panic!("a long-running operation: {op:?}");
    };
    matches!(
        lrs.poll(op).await.expect("poll"),
        OperationStatus::InProgress { .. }
    )
}

// ---- the create operation ---------------------------------------------------------------------

#[tokio::test]
async fn the_create_operation_runs_until_online_and_a_complete_is_never_refused_as_busy() {
    let root = tempfile::tempdir().expect("temp dir");
    write_junk(root.path(), "landing", "db1", "notes.txt");
    let mut cfg = config(root.path());
    cfg.operation_secs = None;
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    let db = database("db1");

    let create = lrs
        .begin_start(&start_request(&db, "db1"))
        .await
        .expect("start accepted");
    assert!(running(&lrs, &create).await);
    sim.clock.advance(time::Duration::days(1));
    assert!(
        running(&lrs, &create).await,
        "a day later the create operation still runs: the database is not Online"
    );
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Restoring
    );
    // Nothing restored: the complete is refused for that reason, never as a busy database.
    let err = lrs
        .begin_complete(&CompleteRestore::new(db.clone(), "notes.txt").expect("valid"))
        .await
        .expect_err("nothing restored");
    assert_eq!(err.status(), Some(400), "{err}");
    assert_eq!(err.code(), Some("RequiredBackupIsNotLastRestored"));

    // The 30-day cancellation ends it Failed.
    sim.clock.advance(time::Duration::days(29));
    let Accepted::Running(op) = &create else {
        unreachable!()
    };
    let err = lrs.poll(op).await.expect_err("the operation failed");
    assert!(matches!(&err, Error::OperationFailed { .. }), "{err:?}");
    assert_eq!(err.code(), Some("OperationCancelled"));
}

#[tokio::test]
async fn the_short_model_succeeds_after_operation_secs() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(root.path());
    cfg.operation_secs = Some(30.0);
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    let db = database("db1");
    let create = lrs
        .begin_start(&start_request(&db, "db1"))
        .await
        .expect("accepted");
    sim.clock.advance(time::Duration::seconds(29));
    assert!(running(&lrs, &create).await);
    sim.clock.advance(time::Duration::seconds(1));
    assert!(!running(&lrs, &create).await, "done after 30 s");
    lrs.wait(&create).await.expect("succeeded");
}

#[tokio::test]
async fn a_business_critical_completion_lasts_hours_and_restore_details_stops_answering() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    copy_folder(
        &fixtures.join("appveyor-lab").join("RestoreTimeClean"),
        root.path(),
        "landing",
        "RestoreTimeClean",
    );
    let mut cfg = config(root.path());
    cfg.operation_secs = None;
    cfg.complete_secs = 6.0 * 3600.0;
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    let db = database("RestoreTimeClean");
    let create = lrs
        .begin_start(&start_request(&db, "RestoreTimeClean"))
        .await
        .expect("accepted");
    let tail = "RestoreTimeClean2_3.trn";
    drive(&sim, &lrs, &db, |_| {}, caught_up_to(tail)).await;
    let complete = lrs
        .begin_complete(&CompleteRestore::new(db.clone(), tail).expect("valid"))
        .await
        .expect("accepted while the create runs");
    sim.clock.advance(time::Duration::hours(5));
    assert!(running(&lrs, &complete).await, "5 h in, still completing");
    assert!(running(&lrs, &create).await);
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Restoring
    );
    let (status, body) = raw(&sim.base, "GET", &details_path("RestoreTimeClean"), "").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("ManagedDatabaseNotInRestoringState"),
        "{body}"
    );
    sim.clock.advance(time::Duration::hours(1));
    lrs.wait(&complete).await.expect("complete succeeded");
    lrs.wait(&create).await.expect("create succeeded");
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Online
    );
}

// ---- drops ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_dropped_database_is_gone_its_operation_fails_and_a_new_start_is_kept() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(root.path());
    cfg.operation_secs = None;
    cfg.send_async_operation = false;
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    put_faults(&sim.base, json!({ "dropAfterSecs": 10 })).await;
    let db = database("db1");
    let create = lrs
        .begin_start(&start_request(&db, "db1"))
        .await
        .expect("accepted");
    let Accepted::Running(op) = &create else {
        panic!("long-running: {create:?}")
    };
    assert!(matches!(op.poll, PollKind::Location(_)));
    sim.clock.advance(time::Duration::seconds(9));
    lrs.get_database(&db).await.expect("still there at 9 s");
    sim.clock.advance(time::Duration::seconds(1));

    let answer = raw_full(&sim.base, "GET", &db_path("mi-test", "db1"), "").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), "ResourceNotFound");
    let answer = raw_full(&sim.base, "GET", &details_path("db1"), "").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.code(), "RestoreDetailsNotAvailableOrExpired");
    let err = lrs.poll(op).await.expect_err("the create operation failed");
    assert!(
        matches!(err, Error::OperationFailed { .. } | Error::Arm { .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("OperationInterrupted"));

    // A new start of the name is kept: each database is dropped once.
    let again = lrs
        .begin_start(&start_request(&db, "db1"))
        .await
        .expect("a new start works");
    sim.clock.advance(time::Duration::seconds(60));
    assert_eq!(
        lrs.get_database(&db)
            .await
            .expect("not dropped again")
            .status(),
        DatabaseStatus::Restoring
    );
    assert!(running(&lrs, &again).await);
    // Another database is dropped in its turn.
    let other = database("db2");
    lrs.begin_start(&start_request(&other, "db2"))
        .await
        .expect("accepted");
    sim.clock.advance(time::Duration::seconds(10));
    assert!(
        lrs.get_database(&other)
            .await
            .expect_err("dropped")
            .is_not_found()
    );
}

// ---- documented error codes -------------------------------------------------------------------

#[test]
fn the_simulators_code_tables_are_the_specs() {
    for (file, operation, table) in [
        (
            SPEC_DB,
            "ManagedDatabases_CreateOrUpdate",
            codes::PUT_DATABASE,
        ),
        (SPEC_DB, "ManagedDatabases_Get", codes::GET_DATABASE),
        (
            SPEC_DB,
            "ManagedDatabases_CompleteRestore",
            codes::COMPLETE_RESTORE,
        ),
        (
            SPEC_DETAILS,
            "ManagedDatabaseRestoreDetails_Get",
            codes::RESTORE_DETAILS,
        ),
    ] {
        let spec = spec_codes(file, operation);
        let ours: Vec<(u16, String)> = table.iter().map(|(s, c)| (*s, (*c).to_owned())).collect();
        assert_eq!(ours, spec, "{operation}");
    }
}

#[tokio::test]
async fn every_restore_details_code_answers_with_the_specs_status() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(root.path());
    cfg.throttle = false;
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    lrs.begin_start(&start_request(&database("db1"), "db1"))
        .await
        .expect("accepted");
    let documented = spec_codes(SPEC_DETAILS, "ManagedDatabaseRestoreDetails_Get");
    assert_eq!(documented.len(), 44);
    for (status, code) in &documented {
        // Per database, for a database that exists and one that does not.
        put_faults(
            &sim.base,
            json!({ "restoreDetailsErrors": { "db1": code, "nope": code } }),
        )
        .await;
        for db in ["db1", "nope"] {
            let answer = raw_full(&sim.base, "GET", &details_path(db), "").await;
            assert_eq!(answer.status, *status, "{code} for {db}");
            assert_eq!(answer.code(), *code);
        }
    }
    // "*" covers every database; a database's own entry wins; an undocumented code is 400.
    put_faults(
        &sim.base,
        json!({ "restoreDetailsErrors": { "*": "SqlRestoreError", "DB1": "MadeUpCode" } }),
    )
    .await;
    let answer = raw_full(&sim.base, "GET", &details_path("db1"), "").await;
    assert_eq!((answer.status, answer.code().as_str()), (400, "MadeUpCode"));
    let answer = raw_full(&sim.base, "GET", &details_path("other"), "").await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (400, "SqlRestoreError")
    );
    let err = lrs
        .restore_details(&database("db1"))
        .await
        .expect_err("injected");
    assert_eq!(err.code(), Some("MadeUpCode"));

    // The codes the simulator answers on its own are documented, with the spec's status.
    put_faults(&sim.base, json!({})).await;
    let answer = raw_full(&sim.base, "GET", &details_path("never-started"), "").await;
    let own = (answer.status, answer.code());
    assert!(documented.contains(&own), "{own:?} is not documented");
    assert_eq!(own, (400, "RestoreDetailsNotAvailableOrExpired".to_owned()));
    // ManagedDatabaseNotInRestoringState (after completeRestore) needs a restored backup: see
    // a_business_critical_completion_lasts_hours_and_restore_details_stops_answering.
    assert!(documented.contains(&(400, "ManagedDatabaseNotInRestoringState".to_owned())));
}

#[tokio::test]
async fn start_errors_answer_each_attempt_with_the_documented_status() {
    let root = tempfile::tempdir().expect("temp dir");
    let sim = start(config(root.path())).await;
    let put_codes = spec_codes(SPEC_DB, "ManagedDatabases_CreateOrUpdate");
    let status_of = |code: &str| {
        put_codes
            .iter()
            .find(|(_, c)| c == code)
            .map(|(s, _)| *s)
            .expect("documented")
    };
    for (code, expected) in [
        (
            "DatabaseNumberLimitReached",
            status_of("DatabaseNumberLimitReached"),
        ),
        (
            "SubscriptionTooManyCreateUpdateRequests",
            status_of("SubscriptionTooManyCreateUpdateRequests"),
        ),
        (
            "ConflictingDatabaseOperation",
            status_of("ConflictingDatabaseOperation"),
        ),
        ("NotInTheSpec", 400),
    ] {
        put_faults(&sim.base, json!({ "startErrors": { "*": code } })).await;
        for _attempt in 0..2 {
            let answer = raw_full(
                &sim.base,
                "PUT",
                &db_path("mi-test", "db1"),
                &start_body("landing", "db1"),
            )
            .await;
            assert_eq!((answer.status, answer.code().as_str()), (expected, code));
        }
    }
    assert_eq!(status_of("SubscriptionTooManyCreateUpdateRequests"), 429);
    // Only the named database; the others start.
    put_faults(
        &sim.base,
        json!({ "startErrors": { "db1": "DatabaseNumberLimitReached" } }),
    )
    .await;
    let answer = raw_full(
        &sim.base,
        "PUT",
        &db_path("mi-test", "db2"),
        &start_body("landing", "db2"),
    )
    .await;
    assert_eq!(answer.status, 202);
    put_faults(&sim.base, json!({})).await;
    let answer = raw_full(
        &sim.base,
        "PUT",
        &db_path("mi-test", "db1"),
        &start_body("landing", "db1"),
    )
    .await;
    assert_eq!(answer.status, 202, "cleared: {}", answer.body);
    let (status, body) = raw(
        &sim.base,
        "PUT",
        "/_sim/faults",
        r#"{"startErrors":{"db1":"two words"}}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw(&sim.base, "PUT", "/_sim/faults", r#"{"dropAfter":3}"#).await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
}

// ---- a database LRS did not create ------------------------------------------------------------

#[tokio::test]
async fn a_database_lrs_did_not_create_is_online_in_use_and_not_an_lrs_restore() {
    let root = tempfile::tempdir().expect("temp dir");
    let sim = start(config(root.path())).await;
    let lrs = client(&sim.base);
    let admin = "/_sim/databases/00000000-1111-2222-3333-444444444444/rg-test/mi-test/Sales";
    let (status, body) = raw(&sim.base, "PUT", admin, "").await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = raw(&sim.base, "PUT", admin, "").await;
    assert_eq!(status, 409, "the name is taken");
    let (status, _) = raw(
        &sim.base,
        "PUT",
        admin.replace("Sales", "x").as_str(),
        "[1]",
    )
    .await;
    assert_eq!(status, 400, "a body must be an object with restoreType");

    let db = database("sales");
    assert_eq!(
        lrs.get_database(&db).await.expect("exists").status(),
        DatabaseStatus::Online
    );
    let err = lrs
        .begin_start(&start_request(&db, "sales"))
        .await
        .expect_err("in use");
    assert!(err.is_name_in_use(), "{err}");
    assert_eq!(err.status(), Some(400));
    let details = lrs.restore_details(&db).await.expect("answers 200");
    let kind = details.restore_type.unwrap_or_default();
    assert!(!kind.is_empty() && kind != "LRSRestore", "{kind:?}");
    let err = lrs
        .begin_complete(&CompleteRestore::new(db.clone(), "x.trn").expect("valid"))
        .await
        .expect_err("not an LRS restore");
    assert_eq!(err.code(), Some("ExternalBackupRestoreHasNotBeenStarted"));
    // A dropAfterSecs fault never drops it.
    put_faults(&sim.base, json!({ "dropAfterSecs": 0 })).await;
    sim.clock.advance(time::Duration::hours(1));
    lrs.get_database(&db).await.expect("still there");

    let (status, _) = raw(
        &sim.base,
        "PUT",
        &admin.replace("Sales", "Hr"),
        r#"{"restoreType":"Copy"}"#,
    )
    .await;
    assert_eq!(status, 201);
    let details = lrs.restore_details(&database("hr")).await.expect("200");
    assert_eq!(details.restore_type.as_deref(), Some("Copy"));

    // The same through the Rust API, for in-process tests.
    let finance = database("finance");
    sim.state
        .add_other_database(&finance, None)
        .await
        .expect("made");
    assert!(sim.state.add_other_database(&finance, None).await.is_err());
    let err = lrs
        .begin_start(&start_request(&finance, "finance"))
        .await
        .expect_err("in use");
    assert!(err.is_name_in_use(), "{err}");
    let details = lrs.restore_details(&finance).await.expect("200");
    assert_eq!(details.restore_type.as_deref(), Some("PointInTimeRestore"));
}

// ---- the reserved word ------------------------------------------------------------------------

#[tokio::test]
async fn a_storage_path_holding_backup_in_any_case_is_refused() {
    let root = tempfile::tempdir().expect("temp dir");
    let sim = start(config(root.path())).await;
    for (i, (container, folder)) in [
        ("backups", "db1"),
        ("landing", "SalesBackup"),
        ("BACKUP", "db1"),
        ("landing", "my%20bAcKuP%20db"),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = raw_full(
            &sim.base,
            "PUT",
            &db_path("mi-test", &format!("db{i}")),
            &start_body(container, folder),
        )
        .await;
        assert_eq!(answer.status, 400, "{container}/{folder}: {}", answer.body);
        assert_eq!(answer.code(), "InvalidDatabaseCreateOrUpdateRequest");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains("reserves") && message.contains("backup"),
            "{message}"
        );
    }
    let answer = raw_full(
        &sim.base,
        "PUT",
        &db_path("mi-test", "ok"),
        &start_body("landing", "sales"),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
}

// ---- concurrent restore limits ----------------------------------------------------------------

#[tokio::test]
async fn starts_over_100_per_instance_or_150_per_subscription_are_refused() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(root.path());
    cfg.throttle = false;
    let sim = start(cfg).await;
    let put = |mi: &'static str, db: String| {
        let base = sim.base.clone();
        async move { raw_full(&base, "PUT", &db_path(mi, &db), &start_body("landing", &db)).await }
    };
    for i in 0..100 {
        assert_eq!(put("mi-a", format!("a{i}")).await.status, 202);
    }
    let refused = put("mi-a", "a100".into()).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.code(), "ConflictingManagedInstanceOperation");
    assert!(refused.body.contains("100"), "{}", refused.body);
    for i in 0..50 {
        assert_eq!(put("mi-b", format!("b{i}")).await.status, 202);
    }
    let refused = put("mi-c", "c0".into()).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.code(), "SubscriptionTooManyCreateUpdateRequests");
    assert!(refused.body.contains("150"), "{}", refused.body);
    // Another subscription has its own count.
    let other = db_path("mi-c", "c0").replace("00000000-1111", "99999999-1111");
    let answer = raw_full(&sim.base, "PUT", &other, &start_body("landing", "c0")).await;
    assert_eq!(answer.status, 202);
    // A finished restore frees its slot: delete one on mi-a.
    let (status, _) = raw(&sim.base, "DELETE", &db_path("mi-a", "a0"), "").await;
    assert_eq!(status, 202);
    assert_eq!(put("mi-a", "a100".into()).await.status, 202);
}

// ---- ARM throttling ---------------------------------------------------------------------------

#[tokio::test]
async fn reads_are_throttled_at_the_documented_bucket_on_wall_time() {
    let root = tempfile::tempdir().expect("temp dir");
    let sim = start(config(root.path())).await;
    let path = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-test/providers/Microsoft.Sql/managedInstances/mi-test?api-version=2025-01-01";
    let began = Instant::now();
    let first = raw_full(&sim.base, "GET", path, "").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first
            .headers
            .get("x-ms-ratelimit-remaining-subscription-reads")
            .map(String::as_str),
        Some("249")
    );
    let mut admitted = 1u64;
    let throttled = loop {
        let answer = raw_full(&sim.base, "GET", path, "").await;
        if answer.status == 429 {
            break answer;
        }
        assert_eq!(answer.status, 200);
        admitted += 1;
        assert!(admitted < 2000, "never throttled");
    };
    let elapsed = began.elapsed().as_secs_f64();
    assert!(admitted >= 250, "a full bucket is 250 reads: {admitted}");
    assert!(
        admitted as f64 <= 250.0 + 25.0 * elapsed + 1.0,
        "{admitted} reads in {elapsed:.2} s is more than 250 + 25/s"
    );
    assert_eq!(throttled.code(), "SubscriptionTooManyRequests");
    let retry_after: u64 = throttled.headers["retry-after"].parse().expect("seconds");
    assert!(retry_after >= 1);
    assert_eq!(
        throttled
            .headers
            .get("x-ms-ratelimit-remaining-subscription-reads")
            .map(String::as_str),
        Some("0")
    );
    // Jumping simulated time does not refill the bucket: it runs on wall time.
    let jumped = Instant::now();
    sim.clock.advance(time::Duration::days(1));
    let answer = raw_full(&sim.base, "GET", path, "").await;
    let refill = 25.0 * jumped.elapsed().as_secs_f64() + 1.0;
    if answer.status == 200 {
        let left: f64 = answer.headers["x-ms-ratelimit-remaining-subscription-reads"]
            .parse()
            .expect("a number");
        assert!(
            left <= refill,
            "{left} tokens after a day of simulated time"
        );
    }
    // Writes have their own bucket, and say so.
    let answer = raw_full(&sim.base, "DELETE", &db_path("mi-test", "none"), "").await;
    assert_eq!(answer.status, 204);
    assert_eq!(
        answer
            .headers
            .get("x-ms-ratelimit-remaining-subscription-writes")
            .map(String::as_str),
        Some("199")
    );
    // Another subscription is not throttled.
    let answer = raw_full(
        &sim.base,
        "GET",
        &path.replace("00000000-1111", "99999999-1111"),
        "",
    )
    .await;
    assert_eq!(answer.status, 200);

    // The counters, for benchmarks.
    let (status, body) = raw(&sim.base, "GET", "/_sim/stats", "").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).expect("json");
    let log = sim.state.requests();
    let count = |method: &str, status: u16| {
        log.iter()
            .filter(|r| r.method == method && r.status == status)
            .count() as u64
    };
    assert_eq!(stats["throttling"], true);
    assert_eq!(stats["arm"]["reads"]["throttled"], count("GET", 429));
    assert_eq!(
        stats["arm"]["reads"]["admitted"].as_u64(),
        Some(
            log.iter()
                .filter(|r| r.method == "GET" && r.status != 429)
                .count() as u64
        )
    );
    assert_eq!(stats["arm"]["writes"]["admitted"], 1);
    assert_eq!(stats["arm"]["reads"]["bucket"], 250.0);
    assert_eq!(stats["arm"]["writes"]["refillPerSec"], 10.0);
    assert!(stats["arm"]["reads"]["budgetPerSubscriptionSinceStart"].as_f64() >= Some(250.0));
    let used = stats["arm"]["reads"]["perSubscription"]["00000000-1111-2222-3333-444444444444"]
        ["percentOfBudget"]
        .as_f64()
        .expect("a percentage");
    assert!(
        used > 50.0 && used <= 100.0,
        "the bucket was emptied: {used}%"
    );
}

#[tokio::test]
async fn writes_run_out_after_200_and_the_client_waits_for_retry_after() {
    let root = tempfile::tempdir().expect("temp dir");
    let sim = start(config(root.path())).await;
    let lrs = client(&sim.base);
    let began = Instant::now();
    let mut admitted = 0u64;
    loop {
        let answer = raw_full(&sim.base, "DELETE", &db_path("mi-test", "none"), "").await;
        if answer.status == 429 {
            assert_eq!(answer.code(), "SubscriptionTooManyRequests");
            break;
        }
        admitted += 1;
        assert!(admitted < 1000, "never throttled");
    }
    let elapsed = began.elapsed().as_secs_f64();
    assert!(
        admitted >= 200 && admitted as f64 <= 200.0 + 10.0 * elapsed + 1.0,
        "{admitted}"
    );
    // The real client honours Retry-After and gets through once a token is back.
    lrs.begin_start(&start_request(&database("db1"), "db1"))
        .await
        .expect("the start passes after waiting");
}

#[tokio::test]
async fn no_throttle_turns_the_buckets_off() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cfg = config(root.path());
    cfg.throttle = false;
    let sim = start(cfg).await;
    for _ in 0..300 {
        let answer = raw_full(&sim.base, "GET", &db_path("mi-test", "none"), "").await;
        assert_eq!(answer.status, 404);
        assert!(
            !answer
                .headers
                .contains_key("x-ms-ratelimit-remaining-subscription-reads")
        );
    }
    let (_, body) = raw(&sim.base, "GET", "/_sim/stats", "").await;
    assert!(body.contains(r#""throttling":false"#), "{body}");
}
