//! The Migrations HTTP function through the host's HTTP trigger envelope: list, one database,
//! pause, cutover with `lastBackupName`, resume, and its refusals.

mod pipeline_support;
mod support;

use std::collections::BTreeMap;

use lrs_autopilot::migration::{Phase, TailSource};
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, RigOptions, assert_migrated, ledger, rig_with_fixtures,
};
use serde_json::{Value, json};

const FOLDER: &str = "RestoreTimeClean";
/// The target name, from `LRS_DATABASE_NAME_MAP`.
const TARGET: &str = "RTC_Target";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_pause_cutover_resume() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        name_map: BTreeMap::from([(FOLDER.to_owned(), TARGET.to_owned())]),
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    // No metadata and no file matching `*_tail.*`: the tail is for the operator to declare.
    let uploaded = rig.upload_clean(&fixtures, FOLDER, false).await;
    let api = rig.endpoint();
    rig.deliver_each(api, uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    assert_eq!(ledger(&rig.requests(), TARGET).starts_accepted, 1);

    let (status, list) = api.migrations("GET", None, None, None).await;
    assert_eq!(status, 200, "{list}");
    let dbs = list["databases"].as_array().expect("databases");
    assert_eq!(dbs.len(), 1, "{list}");
    assert_eq!(dbs[0]["folder"], FOLDER);
    assert_eq!(dbs[0]["database_name"], TARGET);
    assert_eq!(dbs[0]["phase"], "Restoring");
    assert_eq!(dbs[0]["files_seen"], CLEAN.len());
    assert_eq!(dbs[0]["tail"], Value::Null);

    // By folder or by target name.
    for key in [FOLDER, TARGET] {
        let (status, one) = api.migrations("GET", Some(key), None, None).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["summary"]["database_name"], TARGET);
        let files: Vec<&str> = one["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut expected = CLEAN.to_vec();
        expected.sort_unstable();
        assert_eq!(files, expected);
        assert!(
            one["plan"]["steps"]
                .as_array()
                .is_some_and(|s| s.len() >= 3)
        );
        assert!(one["lrs"]["started_at"].is_string(), "{one}");
        assert!(one["audit"].as_array().is_some_and(|a| !a.is_empty()));
    }
    let (status, missing) = api.migrations("GET", Some("nope"), None, None).await;
    assert_eq!(status, 404);
    assert!(
        missing["error"]
            .as_str()
            .is_some_and(|e| e.contains("nope"))
    );

    let (status, paused) = api
        .migrations("POST", Some(TARGET), Some("pause"), None)
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["summary"]["phase"], "Paused");

    // Declared while paused: recorded, nothing sent, however long LRS has been caught up.
    let body = json!({"lastBackupName": CLEAN_TAIL}).to_string();
    let (status, cut) = api
        .migrations("POST", Some(FOLDER), Some("cutover"), Some(&body))
        .await;
    assert_eq!(status, 200, "{cut}");
    assert_eq!(cut["summary"]["tail"], CLEAN_TAIL);
    assert_eq!(cut["summary"]["phase"], "Paused");
    for _ in 0..30 {
        rig.advance(pipeline_support::TICK);
        assert_eq!(api.timer().await.status, 200);
    }
    let state = rig.state_of(FOLDER).await.expect("state");
    assert_eq!(state.phase, Phase::Paused);
    assert_eq!(
        state.tail.as_ref().map(|t| t.source),
        Some(TailSource::Operator)
    );
    let details = rig.sim.restore_details(TARGET).await;
    assert_eq!(
        details.last_restored_file_name.as_deref(),
        Some(CLEAN_TAIL),
        "LRS caught up meanwhile"
    );
    assert!(
        ledger(&rig.requests(), TARGET)
            .completes_accepted
            .is_empty(),
        "a paused migration is not completed"
    );

    // Refusals.
    let bad_name = json!({"lastBackupName": "tail\u{e9}.trn"}).to_string();
    let (status, refused) = api
        .migrations("POST", Some(FOLDER), Some("cutover"), Some(&bad_name))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("ASCII"))
    );
    let (status, unknown) = api
        .migrations("POST", Some(FOLDER), Some("explode"), None)
        .await;
    assert_eq!(status, 404, "{unknown}");
    let (status, _) = api
        .migrations("POST", Some("nope"), Some("pause"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = api.migrations("DELETE", Some(FOLDER), None, None).await;
    assert_eq!(status, 405);
    let not_json = api
        .migrations("POST", Some(FOLDER), Some("cutover"), Some("{oops"))
        .await;
    assert_eq!(not_json.0, 400, "{not_json:?}");

    let (status, resumed) = api
        .migrations("POST", Some(TARGET), Some("resume"), None)
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_ne!(resumed["summary"]["phase"], "Paused");
    rig.drive(api, FOLDER, 20, |s| s.phase == Phase::Completed)
        .await;
    assert_migrated(&rig, FOLDER, TARGET, &CLEAN, CLEAN_TAIL).await;
    let (_, one) = api.migrations("GET", Some(TARGET), None, None).await;
    assert_eq!(one["summary"]["phase"], "Completed");
    assert!(one["summary"]["online_at"].is_string());
}

/// `lrs-autopilot restart <db>` against the deployed pipeline's state (configured by the same
/// `LRS_*` variables as `serve`): refused while the migration is not lost; once the simulator drops
/// the database and the pipeline marks it `Lost`, the command restarts it and the timer brings it
/// Online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restart_command_restarts_a_lost_database() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        faults: lrs_autopilot::sim::Faults {
            drop_after_secs: Some(20.0),
            ..lrs_autopilot::sim::Faults::default()
        },
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let uploaded = rig.upload_clean(&fixtures, FOLDER, true).await;
    let api = rig.endpoint();
    rig.deliver_each(api, uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    let run = |args: &[&str]| {
        let env = rig.env();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        std::thread::spawn(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"))
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(env)
                .output()
                .expect("run lrs-autopilot")
        })
        .join()
        .expect("the command thread")
    };
    let early = run(&["restart", FOLDER]);
    assert_eq!(early.status.code(), Some(1), "{early:?}");
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("only a Lost"),
        "{early:?}"
    );
    rig.drive(api, FOLDER, 10, |s| s.phase == Phase::Lost).await;
    let out = run(&["restart", FOLDER]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restarted"),
        "{out:?}"
    );
    let done = rig
        .drive(api, FOLDER, 40, |s| s.phase == Phase::Completed)
        .await;
    assert_eq!(done.restarts, 1);
    assert_eq!(ledger(&rig.requests(), FOLDER).starts_accepted, 2);
}
