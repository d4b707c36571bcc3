//! `lrs-autopilot check` with a target instance, as a built binary: offline flags (`--tier`,
//! `--update-policy`, `--free-storage-gb`) and `--instance` read from the simulator over HTTP. The
//! folder holds a SQL Server 2025 full backup with two log files and a type `S` container, written
//! by the backup writer (no fixture has any of these).

mod sim_support;

use std::path::Path;
use std::process::{Command, Output};

use lrs_autopilot::backup::DatabaseFile;
use lrs_autopilot::backup::writer::{WriteOptions, write};
use lrs_autopilot::chain::FileRead;
use lrs_autopilot::chain::synthetic::Synthetic;
use lrs_autopilot::preflight::{Tier, UpdatePolicy};
use serde_json::Value;

fn check(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"))
        .arg("check")
        .args(args)
        .env_remove("LRS_TAIL_PATTERN")
        .env("RUST_LOG", "off")
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn file(name: &str, kind: char, fg: Option<&str>, id: u32, size_mb: u64) -> DatabaseFile {
    DatabaseFile {
        logical_name: name.to_owned(),
        physical_name: format!("D:\\data\\{name}"),
        file_type: kind,
        filegroup: fg.map(str::to_owned),
        file_id: id,
        size: size_mb << 20,
        max_size: 35_184_372_080_640,
    }
}

/// `<dir>/Sales/Sales_full.bak`: SQL Server 2025, 2 log files, a type S container, 180 MB of files.
fn folder(dir: &Path) -> String {
    let folder = dir.join("Sales");
    std::fs::create_dir_all(&folder).expect("folder");
    let mut source = Synthetic::new("Sales").version(17, 0, 1000);
    let mut full = source.full(100, 200);
    full.set.files = vec![
        file("Sales", 'D', Some("PRIMARY"), 1, 100),
        file("Sales_log", 'L', None, 2, 20),
        file("Sales_log2", 'L', None, 3, 20),
        file("Sales_mod", 'S', Some("MOD"), 65537, 40),
    ];
    let ff = full.file("Sales_full.bak");
    let FileRead::Read { facts } = &ff.read else {
        unreachable!("a synthetic file is read")
    };
    std::fs::write(
        folder.join(&ff.name),
        write(facts, &WriteOptions::default()),
    )
    .expect("write the backup");
    folder.to_string_lossy().into_owned()
}

fn codes(out: &Output) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    v["databases"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_owned(),
                f["severity"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn has(codes: &[(String, String)], code: &str, severity: &str) -> bool {
    codes.iter().any(|(c, s)| c == code && s == severity)
}

#[test]
fn general_purpose_on_the_2022_policy_shows_the_instance_findings_in_text_and_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = folder(dir.path());
    let flags = [
        path.as_str(),
        "--tier",
        "GeneralPurpose",
        "--update-policy",
        "SQLServer2022",
        "--free-storage-gb",
        "0.1",
    ];
    let out = check(&flags, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for code in [
        "source_newer_than_instance",
        "in_memory_oltp_needs_business_critical",
        "multiple_log_files",
        "insufficient_storage",
    ] {
        assert!(
            text.contains(&format!("BLOCKING {code}")),
            "{code}:\n{text}"
        );
    }
    assert!(text.contains("can start      no"), "{text}");

    let mut json_flags = flags.to_vec();
    json_flags.push("--json");
    let out = check(&json_flags, &[]);
    assert_eq!(out.status.code(), Some(1));
    let found = codes(&out);
    assert!(
        has(&found, "source_newer_than_instance", "blocking"),
        "{found:?}"
    );
    assert!(
        has(&found, "in_memory_oltp_needs_business_critical", "blocking"),
        "{found:?}"
    );
    assert!(has(&found, "multiple_log_files", "blocking"), "{found:?}");
    assert!(has(&found, "insufficient_storage", "blocking"), "{found:?}");
}

#[test]
fn without_instance_flags_only_the_backups_are_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = folder(dir.path());
    let out = check(&[path.as_str(), "--json"], &[]);
    let found = codes(&out);
    assert!(has(&found, "multiple_log_files", "blocking"), "{found:?}");
    assert!(
        has(&found, "source_newer_than_instance", "warning"),
        "{found:?}"
    );
    assert!(
        has(&found, "filestream_unsupported", "warning"),
        "{found:?}"
    );
    assert!(!found.iter().any(|(c, _)| c == "insufficient_storage"));
    let out = check(&[path.as_str(), "--update-policy", "2019"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SQLServer2022"));
}

/// `--instance` reads the simulated instance (Business Critical, always-up-to-date, roomy): the
/// version, In-Memory OLTP and storage findings go, the log files still block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_reads_the_target_through_arm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = folder(dir.path());
    let mut config = sim_support::config(dir.path());
    config.tier = Tier::BusinessCritical;
    config.update_policy = UpdatePolicy::AlwaysUpToDate;
    config.storage_gb = 256;
    config.storage_used_gb = 10.0;
    let sim = sim_support::start(config).await;
    let i = sim_support::instance();
    let id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/managedInstances/{}",
        i.subscription, i.resource_group, i.instance
    );
    let base = sim.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        check(
            &[path.as_str(), "--instance", id.as_str(), "--json"],
            &[("LRS_ARM_ENDPOINT", base.as_str())],
        )
    })
    .await
    .expect("the check ran");
    let found = codes(&out);
    assert!(has(&found, "multiple_log_files", "blocking"), "{found:?}");
    assert!(
        has(&found, "filestream_unsupported", "warning"),
        "{found:?}"
    );
    assert!(has(&found, "maintenance_window", "info"), "{found:?}");
    for gone in [
        "source_newer_than_instance",
        "in_memory_oltp_needs_business_critical",
        "insufficient_storage",
    ] {
        assert!(!found.iter().any(|(c, _)| c == gone), "{gone}: {found:?}");
    }
    let paths: Vec<String> = sim.state.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.iter().any(|p| p.ends_with("/databases")), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("/metrics")), "{paths:?}");
    // A malformed id is a usage error.
    let out = check(
        &[dir.path().to_str().unwrap_or("."), "--instance", "mi-test"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("managedInstances"));
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs")
}

fn phase_of(report: &Value, folder: &str) -> (String, Vec<String>) {
    let db = report["databases"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["folder"] == folder))
        .unwrap_or_else(|| panic!("no {folder} in {report}"));
    let codes = db["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect();
    (db["phase"].as_str().unwrap_or("").to_owned(), codes)
}

/// The demo's SQL Server 2025 database is refused by the default (SQL Server 2022 policy)
/// instance, with a reason in plain words, and completes when `--update-policy` takes it.
#[test]
fn demo_blocks_the_2025_database_until_the_policy_takes_it() {
    let out = run(&["demo", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let (phase, codes) = phase_of(&report, "AnalyticsDb");
    assert_eq!(phase, "Blocked");
    assert!(
        codes.contains(&"source_newer_than_instance".to_owned()),
        "{codes:?}"
    );
    assert_eq!(phase_of(&report, "SalesDb").0, "Completed");

    let text = run(&["demo"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("AnalyticsDb (0 of 3 planned files restored): Blocked")
            && text.contains("SQLServer2025 or AlwaysUpToDate")
            && text.contains("one-way"),
        "{text}"
    );

    let out = run(&["demo", "--json", "--update-policy", "SQLServer2025"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(phase_of(&report, "AnalyticsDb").0, "Completed");

    // No free storage: nothing can start, and the demo says it did not come out as built.
    let out = run(&["demo", "--json", "--free-storage-gb", "0"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let (phase, codes) = phase_of(&report, "SalesDb");
    assert_eq!(phase, "Blocked");
    assert!(
        codes.contains(&"insufficient_storage".to_owned()),
        "{codes:?}"
    );
}
