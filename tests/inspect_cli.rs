//! `lrs-autopilot inspect` run as a built binary on real fixtures: the table, `--files`, the JSON
//! contract, and exit codes (0 only when every file is a valid, complete backup).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn inspect(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"))
        .arg("inspect")
        .args(args)
        .args(files)
        .output()
        .expect("the binary runs")
}

const FULL: &str = "appveyor-lab/DoubleDiffing/difftest-full.bak";
const DIFF: &str = "appveyor-lab/DoubleDiffing/difftest-diff1.bak";
const COMPRESSED: &str = "appveyor-lab/singlerestore/SharePoint_Config.bak";
const NOT_A_BACKUP: &str =
    "misc/ryan-magno__End-to-End-Azure-Data-Engineering-Real-Time-Project/AdventureWorksLT2017.bak";

#[test]
fn table_shows_headeronly_columns_and_exits_zero_for_valid_files() {
    let dir = fixtures_or_skip!();
    let out = inspect(&[], &[&dir.join(FULL), &dir.join(DIFF)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for needle in [
        "FirstLSN",
        "LastLSN",
        "doublediff",
        "24000000006800099",
        "differential",
        "full",
        "Latin1_General_CI_AS",
        "RecoveryModel(inferred)",
        "f24e3dc4-fb3c-48aa-9360-fc9ee26d1464",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(
        !text.contains("doublediff.mdf"),
        "files listed without --files"
    );
    let with_files = inspect(&["--files"], &[&dir.join(FULL)]);
    let text = String::from_utf8_lossy(&with_files.stdout);
    assert!(
        text.contains("doublediff.mdf") && text.contains("PRIMARY"),
        "{text}"
    );
}

#[test]
fn json_keeps_the_contract_names_and_values() {
    let dir = fixtures_or_skip!();
    let out = inspect(&["--json"], &[&dir.join(DIFF), &dir.join(COMPRESSED)]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let files = doc["files"].as_array().expect("files array");
    assert_eq!(files.len(), 2);
    let f = &files[0];
    for key in [
        "path",
        "valid",
        "error",
        "compressed",
        "complete",
        "block_size",
        "family_count",
        "family_sequence",
        "media_set_guid",
        "bytes_read",
        "backup_sets",
    ] {
        assert!(f.get(key).is_some(), "file key {key} missing");
    }
    assert_eq!(f["valid"], true);
    assert_eq!(f["error"], Value::Null);
    assert_eq!(f["media_set_guid"], "18d178a8-5e6d-4d24-b162-c9a304f9ea1e");
    assert!(f["bytes_read"].as_u64().is_some_and(|b| b <= 128 * 1024));
    let s = &f["backup_sets"][0];
    for key in [
        "position",
        "backup_type",
        "database_name",
        "server_name",
        "machine_name",
        "software_version",
        "compatibility_level",
        "first_lsn",
        "last_lsn",
        "checkpoint_lsn",
        "database_backup_lsn",
        "differential_base_lsn",
        "differential_base_guid",
        "backup_set_guid",
        "has_checksums",
        "collation",
        "recovery_model",
        "backup_start",
        "backup_finish",
        "backup_size",
        "files",
    ] {
        assert!(s.get(key).is_some(), "set key {key} missing");
    }
    assert_eq!(s["backup_type"], "differential");
    assert_eq!(s["software_version"], "10.50.1600");
    assert_eq!(s["first_lsn"], "24000000011700034");
    assert_eq!(
        s["differential_base_guid"],
        "f24e3dc4-fb3c-48aa-9360-fc9ee26d1464"
    );
    assert_eq!(s["collation"], "Latin1_General_CI_AS");
    assert_eq!(s["recovery_model"], "FULL");
    assert_eq!(s["backup_start"], "2018-12-21T11:26:31");
    assert_eq!(s["backup_size"], 470016);
    assert_eq!(s["files"][0]["type"], "D");
    assert_eq!(files[1]["compressed"], true);
    assert_eq!(files[1]["backup_sets"][0]["backup_type"], "full");
}

#[test]
fn one_bad_file_is_reported_the_rest_go_on_and_the_exit_code_is_one() {
    let dir = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("temp dir");
    // A truncated copy: still being written, as far as anyone can tell.
    let bytes = std::fs::read(dir.join(FULL)).expect("fixture");
    let cut = tmp.path().join("cut.bak");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("temp copy");
    let missing = tmp.path().join("missing.bak");
    let out = inspect(
        &["--json"],
        &[&dir.join(NOT_A_BACKUP), &missing, &cut, &dir.join(FULL)],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 4);
    assert_eq!(files[0]["valid"], false);
    assert!(
        files[0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("not a SQL Server backup"))
    );
    assert!(
        files[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot read"))
    );
    assert_eq!(files[2]["valid"], false);
    assert_eq!(files[2]["complete"], false);
    assert!(
        files[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("still being written"))
    );
    assert_eq!(files[3]["valid"], true);
    let text = inspect(&[], &[&dir.join(NOT_A_BACKUP), &dir.join(FULL)]);
    assert_eq!(text.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("INVALID: not a SQL Server backup") && stdout.contains("doublediff"),
        "{stdout}"
    );
}
