//! Limits: `LRS_MAX_CONCURRENT_RESTORES` (a database whose chain can start waits in `Ready` while the
//! instance has no free LRS slot, and starts on a timer pass once one frees up); the limits ARM
//! answers at start (throttling, the instance's concurrent restores) leave the database `Ready`;
//! `DatabaseNumberLimitReached` blocks with the tier's limit; one target name for two folders.

mod pipeline_support;
mod support;

use std::time::Duration;

use std::collections::BTreeMap;

use lrs_autopilot::chain::FindingCode;
use lrs_autopilot::migration::Phase;
use lrs_autopilot::sim::Faults;
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, RigOptions, Schema, assert_migrated, ledger, rig_with_fixtures,
};

/// One slot: the second database waits in `Ready` until the first completes, then starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_waits_in_ready_for_a_free_lrs_slot() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        max_concurrent_restores: 1,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    for folder in ["First", "Second"] {
        let uploaded = rig.upload_clean(&fixtures, folder, true).await;
        rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
            .await;
    }
    let second = rig.state_of("Second").await.expect("state");
    assert_eq!(second.phase, Phase::Ready, "{:?}", second.reason);
    assert_eq!(ledger(&rig.requests(), "Second").start_attempts, 0);

    rig.drive(rig.endpoint(), "First", 40, |s| s.phase == Phase::Completed)
        .await;
    rig.drive(rig.endpoint(), "Second", 40, |s| {
        s.phase == Phase::Completed
    })
    .await;
    assert_migrated(&rig, "First", "First", &CLEAN, CLEAN_TAIL).await;
    assert_migrated(&rig, "Second", "Second", &CLEAN, CLEAN_TAIL).await;
}

/// One slot and two databases whose full backups arrive at the same moment, on a storage account
/// slow to write: only one may start. (Counting the claims in every state document and then
/// writing each claim to its own document let both start; slots are now one shared document
/// written with If-Match.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_slot_limit_holds_when_two_databases_become_ready_at_once() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        max_concurrent_restores: 1,
        slow_state_writes: Some(Duration::from_millis(150)),
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let mut events = Vec::new();
    for folder in ["Left", "Right"] {
        let blob = rig.upload_clean_full(&fixtures, folder, CLEAN[0]).await;
        events.push(rig.event(&blob, Schema::CloudEvents));
    }
    let endpoint = rig.endpoint();
    futures::future::join_all(
        events
            .iter()
            .map(|e| endpoint.deliver_until_ok(e, Encoding::Twice)),
    )
    .await;
    let started = ledger(&rig.requests(), "Left").starts_accepted
        + ledger(&rig.requests(), "Right").starts_accepted;
    assert_eq!(started, 1, "LRS_MAX_CONCURRENT_RESTORES=1 was exceeded");
}

/// The instance already runs as many LRS restores as it can (the simulator's limit set to one):
/// ARM refuses the second start, and that database waits in `Ready`, never `Failed` or `Blocked`,
/// and starts once the first one completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_limit_answered_at_start_leaves_the_database_ready() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        instance_restore_limit: Some(1),
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    for folder in ["First", "Second"] {
        let uploaded = rig.upload_clean(&fixtures, folder, true).await;
        rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
            .await;
    }
    let second = rig.state_of("Second").await.expect("state");
    assert_eq!(second.phase, Phase::Ready, "{:?}", second.reason);
    let refused = ledger(&rig.requests(), "Second");
    assert!(
        refused.start_attempts >= 1 && refused.starts_accepted == 0,
        "{refused:?}"
    );
    rig.drive(rig.endpoint(), "First", 40, |s| s.phase == Phase::Completed)
        .await;
    rig.drive(rig.endpoint(), "Second", 40, |s| {
        s.phase == Phase::Completed
    })
    .await;
    assert_migrated(&rig, "Second", "Second", &CLEAN, CLEAN_TAIL).await;
}

/// ARM throttles every start for a while (`SubscriptionTooManyCreateUpdateRequests`): the database
/// stays `Ready` and starts once the throttling ends. `DatabaseNumberLimitReached` instead blocks,
/// with the tier's limits in the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_starts_wait_in_ready_and_the_database_limit_blocks() {
    let mut faults = Faults::default();
    faults.start_errors.insert(
        "Throttled".into(),
        "SubscriptionTooManyCreateUpdateRequests".into(),
    );
    faults
        .start_errors
        .insert("Full".into(), "DatabaseNumberLimitReached".into());
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        faults,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    for folder in ["Throttled", "Full"] {
        let full = rig.upload_clean_full(&fixtures, folder, CLEAN[0]).await;
        rig.deliver_each(rig.endpoint(), [(0, &full)], Encoding::Once)
            .await;
    }
    for _ in 0..3 {
        rig.advance(pipeline_support::TICK);
        assert_eq!(rig.endpoint().timer().await.status, 200);
        let state = rig.state_of("Throttled").await.expect("state");
        assert_eq!(state.phase, Phase::Ready, "{:?}", state.reason);
    }
    assert!(ledger(&rig.requests(), "Throttled").start_attempts >= 2);
    let full = rig
        .drive(rig.endpoint(), "Full", 3, |s| s.phase == Phase::Blocked)
        .await;
    let reason = full.reason.clone().expect("a reason");
    assert!(
        reason.contains("DatabaseNumberLimitReached")
            && reason.contains("100 on General Purpose")
            && reason.contains("500 on Next-gen General Purpose"),
        "{reason}"
    );
    rig.sim.state.set_faults(Faults::default());
    let state = rig
        .drive(rig.endpoint(), "Throttled", 5, |s| {
            s.phase == Phase::Restoring
        })
        .await;
    assert!(state.lrs.started_at.is_some());
    assert_eq!(ledger(&rig.requests(), "Throttled").starts_accepted, 1);
}

/// `LRS_DATABASE_NAME_MAP` maps two folders to one target name: the first folder owns it and
/// starts; the second blocks with `target_name_taken`, naming the owner, and never shares its LRS
/// job. The Migrations API addresses each folder by `container:folder`, and refuses the shared name
/// as ambiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_folders_mapped_to_one_name_block_the_second() {
    let name_map: BTreeMap<String, String> = [("First", "Shared"), ("Second", "Shared")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        name_map,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    for folder in ["First", "Second"] {
        let full = rig.upload_clean_full(&fixtures, folder, CLEAN[0]).await;
        rig.deliver_each(rig.endpoint(), [(0, &full)], Encoding::Twice)
            .await;
    }
    let first = rig.state_of("First").await.expect("state");
    assert!(first.lrs.started_at.is_some(), "{:?}", first.phase);
    let second = rig.state_of("Second").await.expect("state");
    assert_eq!(second.phase, Phase::Blocked, "{:?}", second.reason);
    let finding = second
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::TargetNameTaken)
        .expect("target_name_taken");
    let owner = format!("{}/First", rig.backups);
    assert!(finding.message.contains(&owner), "{}", finding.message);
    assert!(second.lrs.started_at.is_none() && !second.start_claimed());
    let l = ledger(&rig.requests(), "Shared");
    assert_eq!((l.start_attempts, l.starts_accepted), (1, 1), "{l:?}");
    // Ticks do not change it.
    for _ in 0..3 {
        rig.advance(time::Duration::minutes(10));
        assert_eq!(rig.endpoint().timer().await.status, 200);
    }
    assert_eq!(
        rig.state_of("Second").await.expect("state").phase,
        Phase::Blocked
    );
    assert_eq!(ledger(&rig.requests(), "Shared").start_attempts, 1);

    let endpoint = rig.endpoint();
    let (status, body) = endpoint.migrations("GET", Some("Shared"), None, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("container")),
        "{body}"
    );
    for (folder, phase) in [("First", first.phase), ("Second", Phase::Blocked)] {
        let key = format!("{}:{folder}", rig.backups);
        let (status, body) = endpoint.migrations("GET", Some(&key), None, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["summary"]["folder"], folder, "{body}");
        assert_eq!(body["summary"]["phase"], phase.as_str(), "{body}");
    }
    let key = format!("{}:Second", rig.backups);
    let (status, body) = endpoint
        .migrations("POST", Some(&key), Some("pause"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["phase"], "Paused");
}

/// The same folder name in two watched containers: both target one database name, so the folder
/// that comes second blocks with `target_name_taken`, naming the first as the owner; LRS is started
/// once, for the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_folder_in_two_containers_blocks_the_second() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        second_container: true,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let other = rig.second.clone().expect("a second container");
    let data = bytes::Bytes::from(
        std::fs::read(pipeline_support::clean_dir(&fixtures).join(CLEAN[0])).expect("fixture"),
    );
    let first = rig
        .upload("Sales", CLEAN[0], data.clone(), &BTreeMap::new())
        .await;
    rig.deliver_each(rig.endpoint(), [(0, &first)], Encoding::Once)
        .await;
    let second = rig
        .upload_to(&other, "Sales", CLEAN[0], data, &BTreeMap::new())
        .await;
    rig.deliver_each(rig.endpoint(), [(1, &second)], Encoding::Once)
        .await;
    let (status, body) = rig
        .endpoint()
        .migrations("GET", Some(&format!("{other}:Sales")), None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["phase"], "Blocked", "{body}");
    let findings = body["summary"]["findings"].to_string();
    assert!(
        findings.contains("target_name_taken")
            && findings.contains(&format!("{}/Sales", rig.backups)),
        "{findings}"
    );
    let l = ledger(&rig.requests(), "Sales");
    assert_eq!((l.start_attempts, l.starts_accepted), (1, 1), "{l:?}");
}
