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

/// A plain two-set file (a real full, then a real log appended as set 2 by renumbering its set)
/// and a compressed one (the real compressed fixture, with a second set appended by the writer as
/// `WITH NOINIT, COMPRESSION` would): `inspect` lists both sets with their facts, the count, and
/// the `multiple_backup_sets` remedy, in the table and in JSON.
#[test]
fn two_set_files_list_both_sets_plain_and_compressed() {
    use lrs_autopilot::backup::writer::{WriteOptions, append_compressed};
    let dir = fixtures_or_skip!();
    let tmp = tempfile::tempdir().expect("temp dir");
    let plain = tmp.path().join("full_then_log.bak");
    std::fs::write(&plain, support::two_sets::full_then_log(&dir)).expect("write");
    let real = std::fs::read(dir.join(COMPRESSED)).expect("the compressed fixture");
    let first = lrs_autopilot::storage::file::read_backup_file(&dir.join(COMPRESSED))
        .expect("readable")
        .result
        .expect("reads");
    let mut log = first.backup_sets[0].clone();
    log.backup_type = lrs_autopilot::backup::BackupType::Log;
    log.first_lsn = log.last_lsn;
    log.last_lsn.block += 500;
    log.database_backup_lsn = Some(first.backup_sets[0].checkpoint_lsn);
    log.backup_start = log.backup_finish;
    let compressed = tmp.path().join("compressed_two_sets.bak");
    let bytes = append_compressed(
        &real,
        &log,
        &WriteOptions {
            data_len: 200_000,
            complete: true,
        },
    )
    .expect("appends to the real compressed file");
    std::fs::write(&compressed, bytes).expect("write");

    let out = inspect(&[], &[&plain, &compressed]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for needle in [
        "multiple_backup_sets (blocking): this file holds 2 backup sets",
        "WITH INIT or WITH FORMAT",
        "the last set is read from its closing header copy",
        // The full from the head, the log from the tail, with their LSNs.
        "25000000006200170",
        "25000000015300001",
        "compressed",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let rows = |file: &str| -> Vec<String> {
        text.split(file)
            .nth(1)
            .expect("the file's section")
            .lines()
            .skip(2)
            .take(2)
            .map(str::to_string)
            .collect()
    };
    let plain_rows = rows("full_then_log.bak");
    assert!(plain_rows[0].trim_start().starts_with("1 ") && plain_rows[0].contains("full"));
    assert!(plain_rows[1].trim_start().starts_with("2 ") && plain_rows[1].contains("log"));

    let out = inspect(&["--json"], &[&plain, &compressed]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for (f, compressed, first_type, db) in [
        (&doc["files"][0], false, "full", "RestoreTimeClean"),
        (&doc["files"][1], true, "full", "SharePoint_Config"),
    ] {
        assert_eq!(f["valid"], true, "{f}");
        assert_eq!(f["compressed"], compressed);
        assert_eq!(f["set_count"], 2);
        assert_eq!(f["multiple_backup_sets"], true);
        let sets = f["backup_sets"].as_array().expect("sets");
        assert_eq!(sets.len(), 2, "{f}");
        assert_eq!(sets[0]["position"], 1);
        assert_eq!(sets[0]["backup_type"], first_type);
        assert_eq!(sets[0]["from_tail_only"], false);
        assert!(sets[0]["backup_set_guid"].is_string());
        assert_eq!(sets[1]["position"], 2);
        assert_eq!(sets[1]["backup_type"], "log");
        assert_eq!(sets[1]["from_tail_only"], true);
        assert!(sets[1]["backup_set_guid"].is_null());
        assert!(sets[1]["backup_finish"].is_string());
        for set in sets {
            assert_eq!(set["database_name"], db);
        }
    }
    let plain_log = &doc["files"][0]["backup_sets"][1];
    assert_eq!(plain_log["first_lsn"], "25000000006200170");
    assert_eq!(plain_log["last_lsn"], "25000000015300001");
    assert_eq!(plain_log["backup_finish"], "2017-06-01T13:04:13");
    let compressed_log = &doc["files"][1]["backup_sets"][1];
    assert_eq!(compressed_log["last_lsn"], log.last_lsn.to_string());
    assert_eq!(
        doc["files"][1]["backup_sets"][0]["last_lsn"],
        first.backup_sets[0].last_lsn.to_string()
    );
}
