//! The whole LRS flow on real backups: the client against the simulator over real HTTP, restoring
//! the `RestoreTimeClean` fixture chain (full, a differential, and logs on both sides of it) read by
//! the project's reader and ordered by its planner.

mod sim_support;
mod support;

use lrs_autopilot::lrs::ops::{Accepted, CompleteRestore, StartRestore, StorageAuth};
use lrs_autopilot::lrs::{DatabaseId, DatabaseStatus, OperationStatus, RestoreDetails};
use lrs_autopilot::sim::Clock;
use sim_support::{caught_up_to, client, config, copy_folder, database, drive, start};

const FOLDER: &str = "RestoreTimeClean";
const TAIL: &str = "RestoreTimeClean2_3.trn";

fn start_request(db: &DatabaseId) -> StartRestore {
    StartRestore::new(
        db.clone(),
        "westeurope",
        &format!("http://127.0.0.1:10000/devstoreaccount1/landing/{FOLDER}"),
        StorageAuth::ManagedIdentity,
        "SQL_Latin1_General_CP1_CI_AS",
    )
    .expect("valid start")
}

fn names(sets: &[lrs_autopilot::lrs::BackupSetDetails]) -> Vec<(String, String)> {
    sets.iter()
        .map(|s| {
            (
                s.status.to_string(),
                s.first_stripe_name.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn pair(status: &str, name: &str) -> (String, String) {
    (status.to_owned(), name.to_owned())
}

fn fixture_folder() -> Option<std::path::PathBuf> {
    support::fixtures_dir().map(|d| d.join("appveyor-lab").join(FOLDER))
}

/// Under the default model: the create operation runs until the database is Online, and
/// completeRestore is sent while it runs.
#[tokio::test]
async fn restores_the_restore_time_clean_chain_then_completes_to_online() {
    let Some(fixture) = fixture_folder() else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    let copied = copy_folder(&fixture, root.path(), "landing", FOLDER);
    assert_eq!(copied.len(), 8);
    let mut cfg = config(root.path());
    cfg.operation_secs = None;
    let sim = start(cfg).await;
    let lrs = client(&sim.base);
    let db = database("RestoreTimeClean");

    let Accepted::Running(create) = lrs.begin_start(&start_request(&db)).await.expect("started")
    else {
        panic!("the create is a long-running operation");
    };
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Restoring
    );

    // Part-way through, completing with the tail is refused: it is not restored yet.
    let tail = CompleteRestore::new(db.clone(), TAIL).expect("valid name");
    let mut seen_restoring: Vec<String> = Vec::new();
    let mut note = |d: &RestoreDetails| {
        if let Some(f) = &d.current_restoring_file_name {
            if !seen_restoring.contains(f) {
                seen_restoring.push(f.clone());
            }
        }
    };
    let partial = drive(&sim, &lrs, &db, &mut note, |d| {
        d.last_restored_file_name.is_some()
    })
    .await;
    assert_ne!(partial.last_restored_file_name.as_deref(), Some(TAIL));
    let err = lrs.complete(&tail).await.expect_err("an early complete");
    assert!(err.is_not_last_restored(), "{err}");
    assert_eq!(err.code(), Some("RequiredBackupIsNotLastRestored"));

    let details = drive(&sim, &lrs, &db, &mut note, caught_up_to(TAIL)).await;
    assert_eq!(
        seen_restoring.first().map(String::as_str),
        Some("RestoreTimeClean.bak"),
        "the full backup restores first"
    );

    assert_eq!(
        names(&details.full_backup_sets),
        [pair("Restored", "RestoreTimeClean.bak")]
    );
    assert_eq!(
        names(&details.diff_backup_sets),
        [pair("Restored", "RestoreTimeClean2.bak")]
    );
    assert_eq!(
        names(&details.log_backup_sets),
        [
            pair("Skipped", "RestoreTimeClean_1.trn"),
            pair("Skipped", "RestoreTimeClean_2.trn"),
            pair("Skipped", "RestoreTimeClean_3.trn"),
            pair("Restored", "RestoreTimeClean2_1.trn"),
            pair("Restored", "RestoreTimeClean2_2.trn"),
            pair("Restored", "RestoreTimeClean2_3.trn"),
        ]
    );
    assert_eq!(details.percent_completed, Some(100.0));
    assert_eq!(details.number_of_files_detected, Some(8));
    assert_eq!(details.number_of_files_restored, Some(5));
    assert_eq!(details.number_of_files_skipped, Some(3));
    assert_eq!(details.number_of_files_unrestorable, Some(0));
    assert!(details.block_reason.is_none(), "{:?}", details.block_reason);
    assert!(
        details
            .all_sets()
            .filter(|s| s.status.as_str() == "Restored")
            .all(|s| {
                s.restore_started_timestamp_utc.is_some()
                    && s.restore_finished_timestamp_utc.is_some()
            })
    );

    // An earlier file is not the last restored one.
    let early = CompleteRestore::new(db.clone(), "RestoreTimeClean2_2.trn").expect("valid name");
    let err = lrs
        .complete(&early)
        .await
        .expect_err("not the last restored file");
    assert!(err.is_not_last_restored(), "{err}");

    assert!(
        matches!(
            lrs.poll(&create).await.expect("poll"),
            OperationStatus::InProgress { .. }
        ),
        "the create operation still runs once the tail is restored"
    );
    let accepted = lrs
        .begin_complete(&tail)
        .await
        .expect("complete accepted while the create operation runs");
    let Accepted::Running(complete) = &accepted else {
        panic!("complete is a long-running operation: {accepted:?}");
    };
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Restoring,
        "the database restores until the completion ends"
    );
    let during = lrs
        .restore_details(&db)
        .await
        .expect_err("restoreDetails is refused once completion started");
    assert_eq!(during.status(), Some(400));
    assert_eq!(during.code(), Some("ManagedDatabaseNotInRestoringState"));
    sim.clock.advance(time::Duration::seconds(4));
    for op in [&create, complete] {
        assert!(
            matches!(
                lrs.poll(op).await.expect("poll"),
                OperationStatus::InProgress { .. }
            ),
            "both operations run until the database is Online"
        );
    }
    let again = lrs
        .begin_complete(&tail)
        .await
        .expect_err("second complete");
    assert!(again.is_already_completing(), "{again}");

    sim.clock.advance(time::Duration::seconds(1));
    lrs.wait(&accepted)
        .await
        .expect("the complete operation succeeds");
    lrs.wait(&Accepted::Running(create.clone()))
        .await
        .expect("the create operation succeeds once Online");
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Online
    );
    let after = lrs
        .begin_complete(&tail)
        .await
        .expect_err("complete after online");
    assert!(after.is_already_completing(), "{after}");

    let log = sim.state.requests();
    let completes_accepted = log
        .iter()
        .filter(|r| r.method == "POST" && r.status == 202)
        .count();
    assert_eq!(completes_accepted, 1, "exactly one complete went through");
}

#[tokio::test]
async fn picks_up_log_backups_that_arrive_after_the_start() {
    let Some(fixture) = fixture_folder() else {
        return;
    };
    let staging = tempfile::tempdir().expect("temp dir");
    copy_folder(&fixture, staging.path(), "all", FOLDER);
    let staged = staging.path().join("all").join(FOLDER);
    let root = tempfile::tempdir().expect("temp dir");
    let dest = root.path().join("landing").join(FOLDER);
    std::fs::create_dir_all(&dest).expect("mkdir");
    let place = |name: &str| {
        std::fs::copy(staged.join(name), dest.join(name)).expect("copy");
    };
    place("RestoreTimeClean.bak");
    place("RestoreTimeClean2.bak");

    let sim = start(config(root.path())).await;
    let lrs = client(&sim.base);
    let db = database("RestoreTimeClean");
    lrs.start(&start_request(&db)).await.expect("started");
    drive(
        &sim,
        &lrs,
        &db,
        |_| {},
        caught_up_to("RestoreTimeClean2.bak"),
    )
    .await;

    for name in ["RestoreTimeClean2_1.trn", "RestoreTimeClean2_2.trn"] {
        place(name);
        let d = drive(
            &sim,
            &lrs,
            &db,
            |_| {},
            |d| {
                d.last_restored_file_name.as_deref() == Some(name)
                    && d.number_of_files_queued == Some(0)
                    && d.number_of_files_restoring == Some(0)
            },
        )
        .await;
        assert_eq!(
            d.number_of_files_detected,
            Some(if name.ends_with("1.trn") { 3 } else { 4 })
        );
    }
    let err = lrs
        .complete(&CompleteRestore::new(db.clone(), TAIL).expect("valid"))
        .await
        .expect_err("the tail has not even arrived");
    assert!(err.is_not_last_restored());
    place(TAIL);
    drive(&sim, &lrs, &db, |_| {}, caught_up_to(TAIL)).await;
    let accepted = lrs
        .begin_complete(&CompleteRestore::new(db.clone(), TAIL).expect("valid"))
        .await
        .expect("accepted");
    sim.clock.advance(time::Duration::seconds(5));
    lrs.wait(&accepted).await.expect("completed");
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Online
    );
}
