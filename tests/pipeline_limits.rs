//! `LRS_MAX_CONCURRENT_RESTORES`: a database whose chain can start waits in `Ready` while the
//! instance has no free LRS slot, and starts on a timer pass once one frees up.

mod pipeline_support;
mod support;

use std::time::Duration;

use lrs_autopilot::migration::Phase;
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
