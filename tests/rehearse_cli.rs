//! `demo`, `rehearse`, `status` and `cutover` as a user runs them: the built binary, in temp folders,
//! on synthetic estates and on copies of the real fixture chains.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    cmd.env_remove("RUST_LOG");
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

/// Asserts the exit code, showing stderr when it differs.
fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn database<'a>(report: &'a Value, folder: &str) -> &'a Value {
    report["databases"]
        .as_array()
        .and_then(|dbs| dbs.iter().find(|d| d["folder"] == folder))
        .unwrap_or_else(|| panic!("no {folder} in {report}"))
}

fn codes(db: &Value) -> Vec<String> {
    db["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect()
}

fn copy_files(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.is_file() && keep(&name) {
            std::fs::copy(&path, to.join(&name)).expect("copy fixture");
        }
    }
}

#[test]
fn demo_completes_the_healthy_and_striped_databases_and_blocks_the_broken_ones() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = run(&[
        "demo",
        "--json",
        "--out",
        out_dir.path().to_str().expect("utf-8"),
    ]);
    assert_code(&out, 0);
    let report = json(&out);
    assert_eq!(database(&report, "SalesDb")["phase"], "Completed");
    assert_eq!(database(&report, "SalesDb")["files_restored"], 5);
    assert_eq!(database(&report, "SalesDb")["tail"], "SalesDb_05_tail.trn");
    assert_eq!(database(&report, "InventoryDb")["phase"], "Completed");

    let orders = database(&report, "OrdersDb");
    assert_eq!(orders["phase"], "Blocked");
    let gap = orders["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "log_chain_gap"))
        .unwrap_or_else(|| panic!("no gap finding in {orders}"));
    let files: Vec<&str> = gap["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        files.contains(&"OrdersDb_02_log.trn") && files.contains(&"OrdersDb_04_log.trn"),
        "{gap}"
    );
    assert_eq!(
        orders["complete_sent_at"],
        Value::Null,
        "a broken chain must never be completed"
    );

    let hr = database(&report, "HrDb");
    assert_eq!(hr["phase"], "Blocked");
    assert!(codes(hr).contains(&"multiple_databases".to_owned()), "{hr}");
    assert!(
        hr.to_string().contains("PayrollDb"),
        "the foreign database is named: {hr}"
    );

    // The written estate is real backup files: inspect reads them back.
    let sales = out_dir.path().join("SalesDb/SalesDb_01_full.bak");
    let inspected = run(&["inspect", "--json", sales.to_str().expect("utf-8")]);
    assert_eq!(inspected.status.code(), Some(0));
    assert_eq!(
        json(&inspected)["files"][0]["backup_sets"][0]["database_name"],
        "SalesDb"
    );
}

#[test]
fn demo_explains_in_plain_words() {
    let out = run(&["demo"]);
    assert_code(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "What happened, and why",
        "SalesDb",
        "completeRestore",
        "log chain breaks",
        "never deletes",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

fn restore_time_clean(fixtures: &Path, root: &Path) -> PathBuf {
    let folder = root.join("RestoreTimeClean");
    copy_files(
        &fixtures.join("appveyor-lab/RestoreTimeClean"),
        &folder,
        |_| true,
    );
    folder
}

#[test]
fn rehearse_completes_a_real_chain_with_the_tail_declared_by_pattern() {
    let fixtures = fixtures_or_skip!();
    let root = tempfile::tempdir().expect("tempdir");
    restore_time_clean(&fixtures, root.path());
    let root_s = root.path().to_str().expect("utf-8");
    let out = run(&["rehearse", root_s, "--json", "--tail-pattern", "*2_3.trn"]);
    assert_code(&out, 0);
    let report = json(&out);
    let db = database(&report, "RestoreTimeClean");
    assert_eq!(db["phase"], "Completed", "{db}");
    assert_eq!(db["tail"], "RestoreTimeClean2_3.trn");
    assert_eq!(db["files_restored"], 5);
    assert!(db["complete_sent_at"].as_str().is_some() && db["online_at"].as_str().is_some());

    // status reads the rehearsal's state afterwards.
    let status = run(&["status", "--local", root_s, "--json"]);
    assert_eq!(status.status.code(), Some(0));
    let status = json(&status);
    let db = database(&status, "RestoreTimeClean");
    assert_eq!(db["phase"], "Completed");
    // The database's target instance: the rehearsal's simulated one, by resource id.
    assert_eq!(
        db["target_instance"],
        "/subscriptions/rehearsal/resourceGroups/rehearsal/providers/Microsoft.Sql/managedInstances/rehearsal-mi"
    );
    let text = run(&["status", "--local", root_s]);
    let text = String::from_utf8_lossy(&text.stdout);
    let header = text.lines().next().unwrap_or_default();
    let row = text
        .lines()
        .find(|l| l.contains("/RestoreTimeClean "))
        .unwrap_or_default();
    assert!(header.contains("INSTANCE"), "{text}");
    assert!(
        row.contains(" rehearsal-mi "),
        "the INSTANCE column: {text}"
    );
}

#[test]
fn rehearse_without_a_tail_waits_and_cutover_declares_it() {
    let fixtures = fixtures_or_skip!();
    let root = tempfile::tempdir().expect("tempdir");
    restore_time_clean(&fixtures, root.path());
    let root_s = root.path().to_str().expect("utf-8");
    let out = run(&["rehearse", root_s, "--json"]);
    assert_code(&out, 0);
    let db = json(&out);
    let db = database(&db, "RestoreTimeClean");
    assert_eq!(db["phase"], "Restoring");
    assert_eq!(
        db["complete_sent_at"],
        Value::Null,
        "no tail, no completion"
    );

    let cut = run(&[
        "cutover",
        "RestoreTimeClean",
        "--local",
        root_s,
        "--last-backup",
        "RestoreTimeClean2_3.trn",
    ]);
    assert_code(&cut, 0);
    let status = json(&run(&["status", "--local", root_s, "--json"]));
    let db = database(&status, "RestoreTimeClean");
    assert_eq!(db["tail"], "RestoreTimeClean2_3.trn");
    assert_eq!(db["phase"], "CutoverPending");

    let unknown = run(&["cutover", "NoSuchDb", "--local", root_s]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("NoSuchDb"));
}

#[test]
fn rehearse_a_striped_full_backup_starts_and_waits_for_logs() {
    let fixtures = fixtures_or_skip!();
    let root = tempfile::tempdir().expect("tempdir");
    let stripes = fixtures.join("appveyor-lab/sql2008-backups/RestoreTimeStripe");
    let folder = root.path().join("Stripe");
    copy_files(&stripes.join("Stripe1"), &folder, |n| {
        n == "RestoreTimeStripe.bak"
    });
    copy_files(&stripes.join("Stripe2"), &folder, |n| {
        n == "RestoreTimeStripe1.bak"
    });
    let out = run(&["rehearse", root.path().to_str().expect("utf-8"), "--json"]);
    assert_code(&out, 0);
    let report = json(&out);
    let db = database(&report, "Stripe");
    assert_eq!(db["phase"], "Restoring", "{db}");
    assert_eq!(
        db["files_restored"], 2,
        "both stripes of the full backup are restored: {db}"
    );
}

#[test]
fn rehearse_blocks_the_nested_ola_layout() {
    let fixtures = fixtures_or_skip!();
    let root = tempfile::tempdir().expect("tempdir");
    let ola = fixtures.join("appveyor-lab/OlaMsFilter/complex");
    for sub in ["Full", "Diff", "Log"] {
        copy_files(&ola.join(sub), &root.path().join("test").join(sub), |_| {
            true
        });
    }
    let out = run(&["rehearse", root.path().to_str().expect("utf-8"), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a blocked database fails the rehearsal"
    );
    let report = json(&out);
    let db = database(&report, "test");
    assert_eq!(db["phase"], "Blocked", "{db}");
    assert!(codes(db).contains(&"nested_path".to_owned()), "{db}");
    assert_eq!(
        db["started_at"],
        Value::Null,
        "LRS is never started on a layout it rejects"
    );
}

#[test]
fn rehearse_refuses_a_missing_folder_clearly() {
    let out = run(&["rehearse", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/definitely/not/here"), "{err}");
    let status = run(&["status", "--local", "/definitely/not/here"]);
    assert_eq!(status.status.code(), Some(2));
}

/// Preflight warnings and information are shown, not just logged: a rehearsal against an
/// instance with 3 MB free (`--free-storage-gb`) for the 2.8 MB RestoreTimeClean starts with the
/// `insufficient_storage` warning and the `maintenance_window` information, and `rehearse` (text
/// and JSON) and `status` list both with their severity and message.
#[test]
fn rehearse_and_status_show_preflight_warnings_and_info() {
    let fixtures = fixtures_or_skip!();
    let root = tempfile::tempdir().expect("tempdir");
    restore_time_clean(&fixtures, root.path());
    let root_s = root.path().to_str().expect("utf-8");
    let free = (3.0f64 / 1024.0).to_string();
    let out = run(&[
        "rehearse",
        root_s,
        "--json",
        "--tail-pattern",
        "*2_3.trn",
        "--free-storage-gb",
        &free,
    ]);
    assert_code(&out, 0);
    let report = json(&out);
    let db = database(&report, "RestoreTimeClean");
    assert_eq!(db["phase"], "Completed", "{db}");
    let finding = |code: &str| {
        db["findings"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["code"] == code).cloned())
            .unwrap_or_else(|| panic!("no {code} in {db}"))
    };
    assert_eq!(finding("insufficient_storage")["severity"], "warning");
    assert_eq!(finding("maintenance_window")["severity"], "info");

    let status = run(&["status", "--local", root_s]);
    let text = String::from_utf8_lossy(&status.stdout);
    for needle in [
        "warning  insufficient_storage: the database's files need",
        "info     maintenance_window: ",
    ] {
        assert!(text.contains(needle), "status misses {needle:?}:\n{text}");
    }
    let status = json(&run(&["status", "--local", root_s, "--json"]));
    assert!(codes(database(&status, "RestoreTimeClean")).contains(&"maintenance_window".into()));

    let again = tempfile::tempdir().expect("tempdir");
    restore_time_clean(&fixtures, again.path());
    let out = run(&[
        "rehearse",
        again.path().to_str().expect("utf-8"),
        "--tail-pattern",
        "*2_3.trn",
        "--free-storage-gb",
        &free,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("info      maintenance_window: "), "{text}");
    assert!(text.contains("warning   insufficient_storage: "), "{text}");
}
