//! Lost events: Event Grid or Service Bus dead-letters some BlobCreated events on purpose here, and
//! the reconciliation (the timer's periodic pass, or `lrs-autopilot resync`) still records every
//! file, so the database reaches Online.

mod pipeline_support;
mod support;

use lrs_autopilot::migration::Phase;
use lrs_autopilot::pipeline::DEFAULT_RESYNC_INTERVAL;
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, InProcess, RigOptions, assert_migrated, rig_with_fixtures,
};

/// Half the events (the tail's among them) are never delivered. The timer's periodic pass lists
/// the container, records the missed files through the event path, and the migration completes
/// with the tail; a second pass within the interval does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_resync_records_files_whose_events_were_lost() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let handler = InProcess::serve(
        rig.pipeline()
            .with_resync_interval(Some(DEFAULT_RESYNC_INTERVAL)),
    )
    .await;
    let folder = "Dropped";
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    let delivered: Vec<_> = uploaded
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .collect();
    rig.deliver_each(&handler.endpoint, delivered, Encoding::Twice)
        .await;
    let before = rig.state_of(folder).await.expect("state");
    assert_eq!(
        before.files.len(),
        CLEAN.len() / 2,
        "half the events were lost"
    );

    rig.drive(&handler.endpoint, folder, 60, |s| {
        s.phase == Phase::Completed
    })
    .await;
    assert_migrated(&rig, folder, folder, &CLEAN, CLEAN_TAIL).await;
    let claim = rig
        .raw_states()
        .await
        .remove("lrs-resync.json")
        .expect("the pass was claimed in the state container");
    assert!(claim.contains("last"), "{claim}");
}

/// No event at all for a folder: `lrs-autopilot resync` (the built binary, with `serve`'s
/// variables) records every file and says how many; running it again records nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resync_command_records_every_missing_blob() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "NoEvents";
    rig.upload_clean(&fixtures, folder, true).await;
    assert!(rig.state_of(folder).await.is_none());
    let binary = env!("CARGO_BIN_EXE_lrs-autopilot");
    let env = rig.env();
    let run = move || {
        let out = std::process::Command::new(binary)
            .arg("resync")
            .env_clear()
            .envs(env.clone())
            .env("RUST_LOG", "warn")
            .output()
            .expect("resync runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = tokio::task::spawn_blocking(run.clone())
        .await
        .expect("join");
    assert!(
        first.contains(&format!("{} recorded now", CLEAN.len())),
        "{first}"
    );
    let state = rig.state_of(folder).await.expect("state");
    for name in CLEAN {
        assert!(
            state.files.contains_key(name),
            "{name}: {:?}",
            state.files.keys()
        );
    }
    assert!(
        state.lrs.start_claimed_at.is_some(),
        "the folder could start, and did"
    );
    let second = tokio::task::spawn_blocking(run).await.expect("join");
    assert!(second.contains("0 recorded now"), "{second}");
}
