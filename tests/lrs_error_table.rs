//! Every error code Microsoft's REST spec documents for the four operations the pipeline sends
//! (PUT managed database, GET managed database, POST completeRestore, GET restoreDetails) is in the
//! pipeline's code table (`lrs::codes`), read from the spec files in `../shared/specs` at run time.
//! The spec lists the codes only in each operation's `responses.default.description`, as lines
//! `* <status> <Code> - <message>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lrs_autopilot::lrs::codes;
use lrs_autopilot::migration::ErrorClass;
use serde_json::Value;

const SPEC_DIR: &str = "azure-sql-2025-01-01";

/// The spec folder (`../shared/specs/azure-sql-2025-01-01`, or `LRS_SPECS`); under `CI=true` a
/// missing folder fails the test rather than skipping it.
fn spec_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LRS_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("shared")
                .join("specs")
                .join(SPEC_DIR)
        });
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "the REST spec is not at {} (CI=true: failing, not skipping)",
        dir.display()
    );
    eprintln!("skipping: no REST spec at {}", dir.display());
    None
}

/// (status, code) pairs documented for one operation, by operationId.
fn documented(dir: &Path, file: &str, operation_id: &str) -> Vec<(u16, String)> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec: Value = serde_json::from_str(&text).expect("the spec is JSON");
    let paths = spec["paths"].as_object().expect("paths");
    let operation = paths
        .values()
        .filter_map(Value::as_object)
        .flat_map(|methods| methods.values())
        .find(|op| op["operationId"] == operation_id)
        .unwrap_or_else(|| panic!("{operation_id} is not in {file}"));
    let description = operation["responses"]["default"]["description"]
        .as_str()
        .unwrap_or_else(|| panic!("{operation_id} has no default description"));
    let codes: Vec<(u16, String)> = description
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix('*')?.trim();
            let (status, rest) = rest.split_once(' ')?;
            let status: u16 = status.parse().ok()?;
            let code = rest.split_whitespace().next()?;
            code.chars()
                .all(|c| c.is_ascii_alphanumeric())
                .then(|| (status, code.to_owned()))
        })
        .collect();
    assert!(
        !codes.is_empty(),
        "{operation_id}: no error lines found in its description"
    );
    codes
}

fn all_documented(dir: &Path) -> BTreeMap<&'static str, Vec<(u16, String)>> {
    [
        ("ManagedDatabases.json", "ManagedDatabases_CreateOrUpdate"),
        ("ManagedDatabases.json", "ManagedDatabases_Get"),
        ("ManagedDatabases.json", "ManagedDatabases_CompleteRestore"),
        (
            "ManagedDatabaseRestoreDetails.json",
            "ManagedDatabaseRestoreDetails_Get",
        ),
    ]
    .into_iter()
    .map(|(file, op)| (op, documented(dir, file, op)))
    .collect()
}

#[test]
fn the_code_table_covers_every_documented_code() {
    let Some(dir) = spec_dir() else { return };
    let by_op = all_documented(&dir);
    // The counts PROVENANCE.md gives: a parser that found fewer would let codes slip through.
    let unique = |op: &str| {
        let mut v = by_op[op].clone();
        v.sort();
        v.dedup();
        v.len()
    };
    assert_eq!(unique("ManagedDatabases_CreateOrUpdate"), 168);
    assert_eq!(unique("ManagedDatabases_Get"), 5);
    assert_eq!(unique("ManagedDatabases_CompleteRestore"), 57);
    assert_eq!(unique("ManagedDatabaseRestoreDetails_Get"), 44);
    let mut missing = Vec::new();
    for (op, codes_of_op) in &by_op {
        for (status, code) in codes_of_op {
            if codes::family(code).is_none() {
                missing.push(format!("{op}: {status} {code}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} documented codes are not classified in lrs::codes:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn the_code_table_holds_only_documented_codes() {
    let Some(dir) = spec_dir() else { return };
    let documented: std::collections::BTreeSet<String> = all_documented(&dir)
        .into_values()
        .flatten()
        .map(|(_, c)| c)
        .collect();
    let extra: Vec<&str> = codes::CODES
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !documented.contains(*c))
        .collect();
    assert!(extra.is_empty(), "not documented: {extra:?}");
}

#[test]
fn each_class_has_documented_members_with_advice() {
    let Some(dir) = spec_dir() else { return };
    let details = &all_documented(&dir)["ManagedDatabaseRestoreDetails_Get"];
    // restoreDetails: the documented codes are all 400 and every class the pipeline needs is there.
    assert!(details.iter().all(|(s, _)| *s == 400));
    let class = |code: &str| codes::classify(Some(400), Some(code)).class;
    assert_eq!(
        class("BrokenRestorePlanWrongLogBackupLSN"),
        ErrorClass::Block
    );
    assert_eq!(class("FullBackupMissingChecksum"), ErrorClass::Block);
    assert_eq!(
        class("StorageBrokenIssueDetectedWhileInProgress"),
        ErrorClass::Block
    );
    assert_eq!(class("SqlRestoreError"), ErrorClass::Terminal);
    assert_eq!(
        class("RestoreDetailsNotAvailableOrExpired"),
        ErrorClass::Retry
    );
    assert_eq!(
        class("ManagedDatabaseNotInRestoringState"),
        ErrorClass::Benign
    );
    assert_eq!(
        class("ExternalBackupAlreadySignaledToComplete"),
        ErrorClass::Benign
    );
    for (code, family) in codes::CODES {
        assert!(
            family.message().len() > 40,
            "{code}: the advice must say what to do"
        );
    }
}
