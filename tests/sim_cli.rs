//! `lrs-autopilot simulate-lrs` as a user runs it: the built binary on 127.0.0.1:0 over a storage
//! root, fault flags from the environment, driven by the client over real HTTP.

mod sim_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use lrs_autopilot::lrs::ops::{Accepted, StartRestore, StorageAuth};
use lrs_autopilot::lrs::{DatabaseStatus, OperationStatus};
use sim_support::{client, database, instance, raw, write_junk};

/// The simulator process, stopped (by its own id) when the test ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(root: &std::path::Path, env: &[(&str, &str)]) -> (Sim, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    command
        .args(["simulate-lrs", "--listen", "127.0.0.1:0", "--storage-root"])
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start the binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let sim = Sim(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the first line");
    let base = line
        .trim()
        .strip_prefix("lrs simulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (sim, base)
}

#[tokio::test]
async fn the_binary_serves_arm_with_faults_from_the_environment() {
    let root = tempfile::tempdir().expect("temp dir");
    write_junk(root.path(), "landing", "db1", "notes.txt");
    let (_sim, base) = spawn(
        root.path(),
        &[
            ("LRS_SIM_THROTTLE_RATE", "0.5"),
            ("LRS_SIM_RETRY_AFTER_SECS", "0"),
            ("LRS_SIM_OPERATION_SECS", "0"),
            ("LRS_SIM_FAULT_SEED", "11"),
        ],
    );
    let lrs = client(&base);
    let db = database("db1");
    let mi = lrs
        .get_managed_instance(&instance())
        .await
        .expect("instance");
    let start = StartRestore::new(
        db.clone(),
        &mi.location,
        "https://acct.blob.core.windows.net/landing/db1",
        StorageAuth::ManagedIdentity,
        "SQL_Latin1_General_CP1_CI_AS",
    )
    .expect("valid start");
    lrs.start(&start)
        .await
        .expect("started through the throttling");
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Restoring
    );
    let details = lrs.restore_details(&db).await.expect("details");
    assert_eq!(details.number_of_files_unrestorable, Some(1));

    let (status, body) = raw(&base, "GET", "/_sim/requests", "").await;
    assert_eq!(status, 200);
    let log: serde_json::Value = serde_json::from_str(&body).expect("json");
    let statuses: Vec<u64> = log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert!(
        statuses.contains(&429),
        "the env's throttle rate applied: {statuses:?}"
    );
    assert!(
        statuses.contains(&202),
        "the start went through: {statuses:?}"
    );
}

/// The service-model flags, given as a user would: the long create operation by default, an
/// injected restoreDetails error, drops and no throttling.
#[tokio::test]
async fn the_binary_takes_the_service_model_flags() {
    let root = tempfile::tempdir().expect("temp dir");
    write_junk(root.path(), "landing", "db1", "notes.txt");
    let (_sim, base) = spawn(
        root.path(),
        &[
            (
                "LRS_SIM_RESTORE_DETAILS_ERROR",
                "BrokenRestorePlanNoFullBackup",
            ),
            ("LRS_SIM_DROP_AFTER_SECS", "3600"),
            ("LRS_SIM_NO_THROTTLE", "true"),
        ],
    );
    let lrs = client(&base);
    let db = database("db1");
    let start = StartRestore::new(
        db.clone(),
        "westeurope",
        "https://acct.blob.core.windows.net/landing/db1",
        StorageAuth::ManagedIdentity,
        "SQL_Latin1_General_CP1_CI_AS",
    )
    .expect("valid start");
    let Accepted::Running(create) = lrs.begin_start(&start).await.expect("accepted") else {
        panic!("the create is long-running");
    };
    assert!(
        matches!(
            lrs.poll(&create).await.expect("poll"),
            OperationStatus::InProgress { .. }
        ),
        "without --operation-secs the create runs until Online"
    );
    let err = lrs.restore_details(&db).await.expect_err("injected");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("BrokenRestorePlanNoFullBackup"));
    let (_, faults) = raw(&base, "GET", "/_sim/faults", "").await;
    let faults: serde_json::Value = serde_json::from_str(&faults).expect("json");
    assert_eq!(faults["dropAfterSecs"], 3600.0);
    assert_eq!(
        faults["restoreDetailsErrors"]["*"],
        "BrokenRestorePlanNoFullBackup"
    );
    let (_, stats) = raw(&base, "GET", "/_sim/stats", "").await;
    assert!(stats.contains(r#""throttling":false"#), "{stats}");
}

#[test]
fn the_binary_refuses_a_missing_storage_root_with_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"))
        .args(["simulate-lrs", "--storage-root", "/no/such/folder/here"])
        .output()
        .expect("run the binary");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a folder"), "{stderr}");
}
