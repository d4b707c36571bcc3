//! `lrs-autopilot check` as a built binary, on copies of the fixture chains in temp folders: text
//! and JSON output, and the exit codes (0 nothing blocking, 1 blocking, 2 usage or I/O error).

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"))
        .arg("check")
        .args(args)
        .env_remove("LRS_TAIL_PATTERN")
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// Copies the fixture folder's files (flat) into `to`, optionally skipping some names.
fn copy_folder(from: &Path, to: &Path, skip: &[&str]) {
    fs::create_dir_all(to).expect("temp folder");
    for entry in fs::read_dir(from).expect("fixture folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if path.is_file() && !skip.contains(&name.as_str()) {
            fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

fn codes(db: &Value) -> Vec<String> {
    db["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn a_clean_chain_prints_its_timeline_and_exits_zero() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("RestoreTimeClean");
    copy_folder(&fixtures.join("appveyor-lab/RestoreTimeClean"), &db, &[]);

    let out = check(&[path_str(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "full RestoreTimeClean.bak → diff RestoreTimeClean2.bak → 3 logs: \
             RestoreTimeClean2_1.trn → RestoreTimeClean2_2.trn → RestoreTimeClean2_3.trn"
        ),
        "{text}"
    );
    assert!(text.contains("can start      yes"), "{text}");
    assert!(text.contains("no_checksum"), "{text}");

    let out = check(&[
        path_str(&db),
        "--json",
        "--tail-file",
        "RestoreTimeClean2_3.trn",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&out);
    let d = &doc["databases"][0];
    assert_eq!(d["folder"], path_str(&db));
    assert_eq!(d["database_name"], "RestoreTimeClean");
    assert_eq!(d["can_start"], true);
    assert_eq!(d["can_complete"], true);
    assert_eq!(d["restorable_to_lsn"], "25000000022000001");
    assert_eq!(
        d["plan"]["full"],
        serde_json::json!(["RestoreTimeClean.bak"])
    );
    assert_eq!(d["plan"]["differential"], "RestoreTimeClean2.bak");
    assert_eq!(
        d["plan"]["logs"],
        serde_json::json!([
            "RestoreTimeClean2_1.trn",
            "RestoreTimeClean2_2.trn",
            "RestoreTimeClean2_3.trn"
        ])
    );
    let finding = &d["findings"][0];
    for key in ["code", "severity", "files", "message"] {
        assert!(finding.get(key).is_some(), "finding has {key}: {finding}");
    }
}

#[test]
fn a_missing_log_is_a_gap_and_exits_one() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("RestoreTimeClean");
    copy_folder(
        &fixtures.join("appveyor-lab/RestoreTimeClean"),
        &db,
        &["RestoreTimeClean2_2.trn"],
    );
    let out = check(&[path_str(&db), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    let d = &doc["databases"][0];
    assert_eq!(d["can_start"], false);
    let gap = d["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "log_chain_gap")
        .expect("a gap finding");
    assert_eq!(gap["severity"], "blocking");
    assert_eq!(
        gap["files"],
        serde_json::json!(["RestoreTimeClean2_1.trn", "RestoreTimeClean2_3.trn"])
    );

    let text = stdout(&check(&[path_str(&db)]));
    assert!(text.contains("BLOCKING log_chain_gap"), "{text}");
}

#[test]
fn a_truncated_log_is_incomplete_and_ends_the_chain() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("RestoreTimeClean");
    copy_folder(&fixtures.join("appveyor-lab/RestoreTimeClean"), &db, &[]);
    let last = db.join("RestoreTimeClean2_3.trn");
    let len = fs::metadata(&last).expect("size").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");

    let out = check(&[path_str(&db), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let d = &json(&out)["databases"][0];
    assert!(codes(d).contains(&"incomplete_file".to_owned()), "{d}");
    assert_eq!(
        d["plan"]["logs"],
        serde_json::json!(["RestoreTimeClean2_1.trn", "RestoreTimeClean2_2.trn"])
    );
    assert!(!codes(d).contains(&"log_chain_gap".to_owned()));
}

#[test]
fn a_log_after_the_declared_tail_blocks_only_the_cutover() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("RestoreTimeClean");
    let source = fixtures.join("appveyor-lab/RestoreTimeClean");
    copy_folder(&source, &db, &["RestoreTimeClean2_3.trn"]);
    let args = [
        path_str(&db),
        "--json",
        "--tail-file",
        "RestoreTimeClean2_2.trn",
    ];
    let out = check(&args);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["databases"][0]["can_complete"], true);

    fs::copy(
        source.join("RestoreTimeClean2_3.trn"),
        db.join("RestoreTimeClean2_3.trn"),
    )
    .expect("copy the later log");
    let out = check(&args);
    assert_eq!(out.status.code(), Some(1));
    let d = &json(&out)["databases"][0];
    assert_eq!(d["can_start"], true);
    assert_eq!(d["can_complete"], false);
    assert_eq!(codes(d).first().map(String::as_str), Some("log_after_tail"));
}

#[test]
fn a_tail_pattern_recognises_the_tail_case_insensitively() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("RestoreTimeClean");
    let source = fixtures.join("appveyor-lab/RestoreTimeClean");
    copy_folder(&source, &db, &["RestoreTimeClean2_3.trn"]);
    fs::copy(
        source.join("RestoreTimeClean2_3.trn"),
        db.join("RestoreTimeClean_TAIL.trn"),
    )
    .expect("copy as the tail");
    // The default pattern is *_tail.*.
    let out = check(&[path_str(&db), "--json"]);
    let d = &json(&out)["databases"][0];
    assert_eq!(d["tail"], "RestoreTimeClean_TAIL.trn");
    assert_eq!(d["can_complete"], true);
    let out = check(&[path_str(&db), "--json", "--tail-pattern", ""]);
    assert_eq!(json(&out)["databases"][0]["can_complete"], false);
}

#[test]
fn two_databases_in_one_folder_and_a_stray_file() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("RestoreTimeClean");
    copy_folder(&fixtures.join("appveyor-lab/RestoreTimeClean"), &db, &[]);
    let stray = fixtures.join(
        "misc/ryan-magno__End-to-End-Azure-Data-Engineering-Real-Time-Project/AdventureWorksLT2017.bak",
    );
    fs::copy(&stray, db.join("AdventureWorksLT2017.bak")).expect("copy the non-backup");
    let out = check(&[path_str(&db), "--json"]);
    assert_eq!(out.status.code(), Some(0), "a stray file is only a warning");
    assert!(codes(&json(&out)["databases"][0]).contains(&"not_a_backup".to_owned()));

    copy_folder(&fixtures.join("appveyor-lab/DoubleDiffing"), &db, &[]);
    let out = check(&[path_str(&db), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let d = &json(&out)["databases"][0];
    assert_eq!(d["database_name"], Value::Null);
    assert!(codes(d).contains(&"multiple_databases".to_owned()));
}

#[test]
fn nested_folders_are_reported_and_all_checks_each_database_folder() {
    let fixtures = fixtures_or_skip!();
    let ola = fixtures.join("appveyor-lab/OlaMsFilter/complex");
    let out = check(&[path_str(&ola)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("nested_path"), "{text}");
    assert!(
        text.contains("Full/test_FULL_20160629_141300.bak"),
        "{text}"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let stripe = tmp.path().join("RestoreTimeStripe");
    for part in ["Stripe1", "Stripe2"] {
        copy_folder(
            &fixtures
                .join("appveyor-lab/sql2008-backups/RestoreTimeStripe")
                .join(part),
            &stripe,
            &[],
        );
    }
    copy_folder(
        &fixtures.join("appveyor-lab/DoubleDiffing"),
        &tmp.path().join("doublediff"),
        &[],
    );
    let out = check(&["--all", path_str(tmp.path()), "--json"]);
    assert_eq!(out.status.code(), Some(1), "the striped folder is blocked");
    let doc = json(&out);
    let dbs = doc["databases"].as_array().expect("databases");
    assert_eq!(dbs.len(), 2);
    assert_eq!(dbs[0]["database_name"], "RestoreTimeStripe");
    assert_eq!(
        dbs[0]["plan"]["full"],
        serde_json::json!(["RestoreTimeStripe2.bak", "RestoreTimeStripe2a.bak"])
    );
    assert!(codes(&dbs[0]).contains(&"multiple_databases".to_owned()));
    assert!(codes(&dbs[0]).contains(&"split_log_backup".to_owned()));
    assert_eq!(dbs[1]["database_name"], "doublediff");
    assert_eq!(dbs[1]["can_start"], true);
    assert_eq!(dbs[1]["plan"]["differential"], "difftest-diff2.bak");
}

#[test]
fn usage_errors_exit_two() {
    let out = check(&["/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a folder"));

    let tmp = tempfile::tempdir().expect("tempdir");
    let out = check(&[path_str(tmp.path()), "--tail-pattern", "[unclosed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --tail-pattern"));

    // An empty folder is not an error: it has no full backup, which blocks.
    let out = check(&[path_str(tmp.path()), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(codes(&json(&out)["databases"][0]), ["no_full_backup"]);
}

/// LRS refuses "backup" (any case) in a container or folder name: `check --all` on a container
/// `db-backups` reports a blocking `reserved_word_in_path` for every folder, and a folder named
/// `SalesBackup` gets one of its own; both exit 1.
#[test]
fn reserved_word_in_a_container_or_folder_blocks() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clean = fixtures.join("appveyor-lab/RestoreTimeClean");
    let container = tmp.path().join("db-backups");
    copy_folder(&clean, &container.join("Sales"), &[]);
    let out = check(&["--all", path_str(&container), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc = json(&out);
    let d = &doc["databases"][0];
    assert!(
        codes(d).contains(&"reserved_word_in_path".to_owned()),
        "{d}"
    );
    assert_eq!(d["can_start"], false);
    assert!(
        d["findings"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("db-backups"),
        "{d}"
    );

    let root = tmp.path().join("sqlfiles");
    copy_folder(&clean, &root.join("SalesBackup"), &[]);
    copy_folder(&clean, &root.join("Sales"), &[]);
    let out = check(&["--all", path_str(&root), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc = json(&out);
    let by_folder = |suffix: &str| {
        doc["databases"]
            .as_array()
            .expect("databases")
            .iter()
            .find(|d| d["folder"].as_str().is_some_and(|f| f.ends_with(suffix)))
            .cloned()
            .unwrap_or_else(|| panic!("{suffix}: {doc}"))
    };
    let sales_backup = by_folder("/SalesBackup");
    let blocking = sales_backup["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "reserved_word_in_path")
        .unwrap_or_else(|| panic!("{sales_backup}"));
    assert_eq!(blocking["severity"], "blocking");
    assert!(
        blocking["message"]
            .as_str()
            .unwrap_or("")
            .contains("SalesBackup")
    );
    assert_eq!(sales_backup["can_start"], false);
    let sales = by_folder("/Sales");
    assert!(
        !codes(&sales).contains(&"reserved_word_in_path".to_owned()),
        "{sales}"
    );
    assert_eq!(sales["can_start"], true);
}

/// The guide lists `.bak`, `.log` and `.diff`; its examples use `.trn`. Any other extension (or
/// none) is an info finding `undocumented_extension` naming the files, which never blocks.
#[test]
fn undocumented_extensions_are_noted_and_never_block() {
    let fixtures = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("RestoreTimeClean");
    copy_folder(&fixtures.join("appveyor-lab/RestoreTimeClean"), &db, &[]);
    fs::rename(
        db.join("RestoreTimeClean2.bak"),
        db.join("RestoreTimeClean2.diff"),
    )
    .expect("rename");
    fs::rename(
        db.join("RestoreTimeClean_1.trn"),
        db.join("RestoreTimeClean_1"),
    )
    .expect("rename");
    let out = check(&[path_str(&db), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc = json(&out);
    let d = &doc["databases"][0];
    let note = d["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "undocumented_extension")
        .unwrap_or_else(|| panic!("{d}"))
        .clone();
    assert_eq!(note["severity"], "info");
    let files: Vec<&str> = note["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(files.contains(&"RestoreTimeClean_1"), "{files:?}");
    assert!(files.contains(&"RestoreTimeClean2_3.trn"), "{files:?}");
    assert!(!files.contains(&"RestoreTimeClean.bak"), "{files:?}");
    assert!(!files.contains(&"RestoreTimeClean2.diff"), "{files:?}");
    assert_eq!(d["can_start"], true);
}
