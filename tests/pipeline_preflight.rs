//! "Will LRS accept it?" end to end: serve's handler over HTTP, backups in Azurite, the LRS
//! simulator as the target instance (its tier, update policy and storage set as `simulate-lrs
//! --tier --update-policy --storage-gb --storage-used-gb` set them). For each refusal the
//! preflight must leave the database Blocked with the finding and an alert line, and the
//! simulator's request log must show no PUT: the start was never sent.

mod pipeline_support;
mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use lrs_autopilot::backup::writer::{WriteOptions, write};
use lrs_autopilot::chain::synthetic::Synthetic;
use lrs_autopilot::chain::{FileRead, FindingCode, Severity};
use lrs_autopilot::migration::{MigrationState, Phase};
use lrs_autopilot::preflight::UpdatePolicy;
use lrs_autopilot::sim::{LoggedRequest, SimConfig};
use pipeline_support::{Encoding, Rig, RigOptions, ledger, rig_with_fixtures};

/// No PUT of any database reached the simulator.
fn assert_no_put(requests: &[LoggedRequest], db: &str) {
    let puts: Vec<&LoggedRequest> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert!(puts.is_empty(), "the start was sent: {puts:#?}");
    assert_eq!(ledger(requests, db).start_attempts, 0);
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/databases")),
        "the preflight read the instance's database list"
    );
}

/// The folder's state once Blocked, with the finding of `code`.
async fn blocked_with(rig: &Rig, folder: &str, code: FindingCode) -> (MigrationState, String) {
    let state = rig
        .drive(rig.endpoint(), folder, 10, |s| s.phase == Phase::Blocked)
        .await;
    let finding = state
        .findings()
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} finding: {:#?}", state.findings()));
    assert_eq!(finding.severity, Severity::Blocking);
    assert!(state.lrs.start_claimed_at.is_none() && state.lrs.started_at.is_none());
    assert!(
        state
            .audit
            .iter()
            .any(|a| a.event.contains("start not sent")),
        "{:#?}",
        state.audit
    );
    (state.clone(), finding.message.clone())
}

/// An ERROR `database blocked` alert line whose detail carries `needle` from the finding.
fn assert_alert_line(text: &str, needle: &str) {
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("database blocked") && l.contains(needle)),
        "no alert line with {needle:?} in:\n{text}"
    );
}

/// A SQL Server 2025 full backup (written by the backup writer: no fixture is from 2025) against
/// an instance on the SQL Server 2022 update policy: Blocked, the message names the policy that
/// would take it and warns the change is one-way.
#[tokio::test(flavor = "current_thread")]
async fn a_sql_server_2025_source_on_a_2022_policy_instance_is_blocked_before_any_start() {
    let (logs, _guard) = pipeline_support::capture_logs();
    let Some((rig, _)) = rig_with_fixtures(RigOptions {
        sim_config: Some(|c: &mut SimConfig| c.update_policy = UpdatePolicy::SQLServer2022),
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let folder = "Sales2025";
    let mut source = Synthetic::new(folder).version(17, 0, 1000);
    let full = source.full(100, 200).file("Sales2025_full.bak");
    let FileRead::Read { facts } = &full.read else {
        unreachable!("a synthetic file is read")
    };
    let bytes = write(facts, &WriteOptions::default());
    let blob = rig
        .upload(folder, &full.name, Bytes::from(bytes), &BTreeMap::new())
        .await;
    rig.deliver_each(rig.endpoint(), [(0, &blob)], Encoding::Once)
        .await;
    let (_, message) = blocked_with(&rig, folder, FindingCode::SourceNewerThanInstance).await;
    assert!(message.contains("SQL Server 2025"), "{message}");
    assert!(message.contains("SQLServer2022"), "{message}");
    assert!(
        message.contains("SQLServer2025 or AlwaysUpToDate"),
        "{message}"
    );
    assert!(message.contains("one-way"), "{message}");
    assert_alert_line(&logs.text(), "SQLServer2025 or AlwaysUpToDate");
    // More ticks re-send nothing.
    for _ in 0..3 {
        rig.advance(time::Duration::minutes(10));
        assert_eq!(rig.endpoint().timer().await.status, 200);
    }
    assert_eq!(
        rig.state_of(folder).await.expect("state").phase,
        Phase::Blocked
    );
    assert_no_put(&rig.requests(), folder);
}

/// The clean chain against an instance whose storage is all used (Azure Monitor's
/// `storage_space_used_mb` equals `storageSizeInGB`): Blocked with `insufficient_storage`.
#[tokio::test(flavor = "current_thread")]
async fn a_database_larger_than_the_free_storage_is_blocked_before_any_start() {
    let (logs, _guard) = pipeline_support::capture_logs();
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        sim_config: Some(|c: &mut SimConfig| {
            c.storage_gb = 32;
            c.storage_used_gb = 32.0;
        }),
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let folder = "RestoreTimeClean";
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    let (_, message) = blocked_with(&rig, folder, FindingCode::InsufficientStorage).await;
    assert!(message.contains("has 0 MB free"), "{message}");
    assert!(message.contains("storageSizeInGB"), "{message}");
    assert_alert_line(&logs.text(), "ManagedInstanceStorageLimitHit");
    assert!(
        rig.requests()
            .iter()
            .any(|r| r.path.ends_with("/providers/Microsoft.Insights/metrics")),
        "used storage was read from Azure Monitor"
    );
    assert_no_put(&rig.requests(), folder);
}

/// A database of the target name that is not an LRS restore already exists: Blocked with
/// `name_taken_on_instance` before any start (the start's own `ManagedDatabaseNameInUse` answer is
/// never needed).
#[tokio::test(flavor = "current_thread")]
async fn a_name_taken_on_the_instance_is_blocked_before_any_start() {
    let (logs, _guard) = pipeline_support::capture_logs();
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "RestoreTimeClean";
    rig.precreate_foreign_database(folder).await;
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    let (_, message) = blocked_with(&rig, folder, FindingCode::NameTakenOnInstance).await;
    assert!(message.contains(folder), "{message}");
    assert!(message.contains("LRS_DATABASE_NAME_MAP"), "{message}");
    assert_alert_line(&logs.text(), "is not an LRS restore");
    assert_no_put(&rig.requests(), folder);
}

/// The same chain on a roomy, up-to-date instance starts as before: the preflight does not stand
/// in the way of a database the instance can take, and its facts are cached in one document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_the_instance_can_take_starts_and_the_facts_are_cached() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        sim_config: Some(|c: &mut SimConfig| {
            c.storage_gb = 256;
            c.storage_used_gb = 10.0;
        }),
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let folder = "RestoreTimeClean";
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    let l = ledger(&rig.requests(), folder);
    assert_eq!(l.starts_accepted, 1, "{l:?}");
    let states = rig.raw_states().await;
    let cached = states
        .iter()
        .find(|(k, _)| k.starts_with("_instance/"))
        .map(|(_, v)| v.clone())
        .expect("the instance facts are cached in one state document");
    assert!(
        cached.contains("GeneralPurpose") && cached.contains("SQLServer2022"),
        "{cached}"
    );
    // A database list read per start at most once in ten minutes.
    let lists = rig
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/databases"))
        .count();
    assert_eq!(lists, 1);
}

/// A full backup with a log backup appended to the same file (`WITH NOINIT`, made from the real
/// files by renumbering the log's set): the file is recorded with the blocking
/// `multiple_backup_sets` finding naming both sets, the database is Blocked with an alert line,
/// and the simulator's request log shows no PUT: LRS is never started from it.
#[tokio::test(flavor = "current_thread")]
async fn a_file_holding_two_backup_sets_is_blocked_and_never_started_from() {
    let (logs, _guard) = pipeline_support::capture_logs();
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "RestoreTimeClean";
    let name = "RestoreTimeClean_full_and_log.bak";
    let blob = rig
        .upload(
            folder,
            name,
            Bytes::from(support::two_sets::full_then_log(&fixtures)),
            &BTreeMap::new(),
        )
        .await;
    rig.deliver_each(rig.endpoint(), [(0, &blob)], Encoding::Once)
        .await;
    let state = rig
        .drive(rig.endpoint(), folder, 10, |s| s.phase == Phase::Blocked)
        .await;
    let finding = state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::MultipleBackupSets)
        .unwrap_or_else(|| panic!("no multiple_backup_sets finding: {:#?}", state.findings()));
    assert_eq!(finding.severity, Severity::Blocking);
    assert_eq!(finding.files, [name]);
    for needle in [
        "holds 2 backup sets",
        "set 1 (full",
        "set 2 (log",
        "WITH INIT or WITH FORMAT",
    ] {
        assert!(
            finding.message.contains(needle),
            "{needle}: {}",
            finding.message
        );
    }
    assert!(state.lrs.start_claimed_at.is_none() && state.lrs.started_at.is_none());
    assert_alert_line(&logs.text(), "holds 2 backup sets");
    // More ticks start nothing.
    for _ in 0..3 {
        rig.advance(time::Duration::minutes(10));
        assert_eq!(rig.endpoint().timer().await.status, 200);
    }
    let requests = rig.requests();
    let puts: Vec<&LoggedRequest> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert!(puts.is_empty(), "the start was sent: {puts:#?}");
    assert_eq!(ledger(&requests, folder).start_attempts, 0);
    assert_eq!(
        rig.state_of(folder).await.expect("state").phase,
        Phase::Blocked
    );
}
