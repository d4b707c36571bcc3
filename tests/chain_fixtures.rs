//! The planner on real backup chains from the shared fixtures, read the way production reads them
//! (head and tail ranges through the crate's reader), and on cases derived from them: a missing
//! log, a missing stripe, two databases in one folder, a tail followed by a later log.

mod support;

use std::path::Path;

use lrs_autopilot::backup::BackupType;
use lrs_autopilot::chain::{self, FileRead, FindingCode, FolderFile, Plan, PlanInput, TailRule};
use lrs_autopilot::storage::file::read_backup_file;

/// Every file under `dir` (relative to the fixtures), named by its path below `dir`, or by its
/// base name when `flatten` (the folder as it would be once moved up into one flat folder).
fn folder(fixtures: &Path, dir: &str, flatten: bool) -> Vec<FolderFile> {
    let root = fixtures.join(dir);
    let mut out = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("fixture folder lists") {
            let path = entry.expect("fixture entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&root).expect("under the root");
            let name = if flatten {
                relative
                    .file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned()
            } else {
                relative.to_string_lossy().replace('\\', "/")
            };
            out.push(file(&path, &name));
        }
    }
    out
}

fn file(path: &Path, name: &str) -> FolderFile {
    let outcome = read_backup_file(path).expect("fixture readable");
    FolderFile {
        name: name.to_owned(),
        size: outcome.file_size,
        last_modified: None,
        read: FileRead::from_result(outcome.result),
    }
}

fn plan_of(folder_name: &str, files: &[FolderFile], tail: &TailRule) -> Plan {
    chain::plan(PlanInput {
        folder: folder_name,
        files: &files.iter().collect::<Vec<_>>(),
        fixed_base: None,
        tail,
    })
}

fn plan_folder(folder_name: &str, files: &[FolderFile]) -> Plan {
    plan_of(folder_name, files, &TailRule::default())
}

/// Each step's files, stripes joined with `+`.
fn steps(plan: &Plan) -> Vec<String> {
    plan.steps.iter().map(|s| s.files.join("+")).collect()
}

fn codes(plan: &Plan) -> Vec<FindingCode> {
    plan.findings.iter().map(|f| f.code).collect()
}

fn files_of(plan: &Plan, code: FindingCode) -> Vec<Vec<String>> {
    plan.findings
        .iter()
        .filter(|f| f.code == code)
        .map(|f| f.files.clone())
        .collect()
}

fn blocking(plan: &Plan) -> Vec<FindingCode> {
    plan.findings
        .iter()
        .filter(|f| f.severity == chain::Severity::Blocking)
        .map(|f| f.code)
        .collect()
}

fn without(files: &[FolderFile], names: &[&str]) -> Vec<FolderFile> {
    files
        .iter()
        .filter(|f| !names.contains(&f.name.as_str()))
        .cloned()
        .collect()
}

#[test]
fn restore_time_clean_plans_the_full_the_diff_and_the_logs_after_it() {
    let fixtures = fixtures_or_skip!();
    let files = folder(&fixtures, "appveyor-lab/RestoreTimeClean", false);
    let plan = plan_folder("RestoreTimeClean", &files);
    assert_eq!(
        steps(&plan),
        [
            "RestoreTimeClean.bak",
            "RestoreTimeClean2.bak",
            "RestoreTimeClean2_1.trn",
            "RestoreTimeClean2_2.trn",
            "RestoreTimeClean2_3.trn"
        ]
    );
    assert_eq!(plan.database_name.as_deref(), Some("RestoreTimeClean"));
    assert_eq!(
        plan.restorable_to_lsn.map(|l| l.to_string()).as_deref(),
        Some("25000000022000001")
    );
    assert_eq!(
        plan.skipped,
        [
            "RestoreTimeClean_1.trn",
            "RestoreTimeClean_2.trn",
            "RestoreTimeClean_3.trn"
        ]
    );
    assert!(blocking(&plan).is_empty(), "{:#?}", plan.findings);
    assert!(codes(&plan).contains(&FindingCode::NoChecksum));
    assert!(plan.can_start);
    assert!(!plan.can_complete);

    let tail = TailRule {
        file_name: Some("RestoreTimeClean2_3.trn".into()),
        ..TailRule::default()
    };
    let plan = plan_of("RestoreTimeClean", &files, &tail);
    assert_eq!(plan.tail.as_deref(), Some("RestoreTimeClean2_3.trn"));
    assert!(plan.can_complete, "{:#?}", plan.findings);
}

#[test]
fn restore_time_clean_without_one_log_has_a_gap() {
    let fixtures = fixtures_or_skip!();
    let files = folder(&fixtures, "appveyor-lab/RestoreTimeClean", false);
    let plan = plan_folder(
        "RestoreTimeClean",
        &without(&files, &["RestoreTimeClean2_2.trn"]),
    );
    assert_eq!(
        files_of(&plan, FindingCode::LogChainGap),
        [vec!["RestoreTimeClean2_1.trn", "RestoreTimeClean2_3.trn"]]
    );
    let gap = plan
        .findings
        .iter()
        .find(|f| f.code == FindingCode::LogChainGap)
        .expect("a gap");
    assert!(
        gap.message
            .contains("25000000020000001 up to 25000000021000001"),
        "{}",
        gap.message
    );
    assert_eq!(
        plan.restorable_to_lsn.map(|l| l.to_string()).as_deref(),
        Some("25000000020000001")
    );
    assert!(!plan.can_start);
}

#[test]
fn a_tail_then_a_later_log_blocks_the_cutover() {
    let fixtures = fixtures_or_skip!();
    let files = folder(&fixtures, "appveyor-lab/RestoreTimeClean", false);
    let tail = TailRule {
        file_name: Some("RestoreTimeClean2_2.trn".into()),
        ..TailRule::default()
    };
    let before = plan_of(
        "RestoreTimeClean",
        &without(&files, &["RestoreTimeClean2_3.trn"]),
        &tail,
    );
    assert!(before.can_complete, "{:#?}", before.findings);

    let after = plan_of("RestoreTimeClean", &files, &tail);
    assert_eq!(
        files_of(&after, FindingCode::LogAfterTail),
        [vec!["RestoreTimeClean2_3.trn"]]
    );
    assert!(after.can_start);
    assert!(!after.can_complete);
}

#[test]
fn two_databases_in_one_folder_block_it() {
    let fixtures = fixtures_or_skip!();
    let mut files = folder(&fixtures, "appveyor-lab/RestoreTimeClean", false);
    files.extend(folder(&fixtures, "appveyor-lab/DoubleDiffing", false));
    let plan = plan_folder("RestoreTimeClean", &files);
    let mixed = files_of(&plan, FindingCode::MultipleDatabases);
    assert_eq!(
        mixed,
        [vec![
            "difftest-diff1.bak",
            "difftest-diff2.bak",
            "difftest-full.bak"
        ]]
    );
    assert_eq!(plan.database_name, None);
    assert_eq!(
        plan.steps.first().map(|s| s.files.clone()),
        Some(vec!["RestoreTimeClean.bak".to_owned()])
    );
    assert!(!plan.can_start);
}

#[test]
fn double_diffing_takes_the_newest_differential() {
    let fixtures = fixtures_or_skip!();
    let files = folder(&fixtures, "appveyor-lab/DoubleDiffing", false);
    let plan = plan_folder("DoubleDiffing", &files);
    assert_eq!(steps(&plan), ["difftest-full.bak", "difftest-diff2.bak"]);
    assert_eq!(plan.skipped, ["difftest-diff1.bak"]);
    assert!(plan.can_start, "{:#?}", plan.findings);
}

/// The 2008 R2 database's files of `RestoreTimeStripe` (the 2016 database of the same name wrote
/// the `restoretime*` files, but for two log backups kept under suffixed names).
fn is_2008r2_stripe_file(name: &str) -> bool {
    name.starts_with("RestoreTimeStripe") || name.contains(".trn.")
}

#[test]
fn restore_time_stripe_flattened_mixes_two_databases_of_one_name() {
    let fixtures = fixtures_or_skip!();
    let files = folder(
        &fixtures,
        "appveyor-lab/sql2008-backups/RestoreTimeStripe",
        true,
    );
    let plan = plan_folder("RestoreTimeStripe", &files);
    assert!(
        codes(&plan).contains(&FindingCode::MultipleDatabases),
        "{:#?}",
        plan.findings
    );
    let foreign = &files_of(&plan, FindingCode::MultipleDatabases)[0];
    assert!(
        foreign.iter().all(|n| !is_2008r2_stripe_file(n)),
        "{foreign:?}"
    );
    assert_eq!(foreign.len(), 16, "the 2016 database's 8 sets of 2 stripes");
    assert_eq!(plan.database_name.as_deref(), Some("RestoreTimeStripe"));
    assert!(!plan.can_start);
}

#[test]
fn restore_time_stripe_plans_stripes_in_family_order_and_refuses_striped_logs() {
    let fixtures = fixtures_or_skip!();
    let all = folder(
        &fixtures,
        "appveyor-lab/sql2008-backups/RestoreTimeStripe",
        true,
    );
    let files: Vec<FolderFile> = all
        .iter()
        .filter(|f| is_2008r2_stripe_file(&f.name))
        .cloned()
        .collect();
    let plan = plan_folder("RestoreTimeStripe", &files);
    assert_eq!(
        steps(&plan),
        [
            "RestoreTimeStripe2.bak+RestoreTimeStripe2a.bak",
            "restoretime_21.trn.228f0116+restoretime_21a.trn.420ef35a",
            "RestoreTimeStripe_22.trn+RestoreTimeStripe_22a.trn",
            "RestoreTimeStripe_23.trn+RestoreTimeStripe_23a.trn"
        ]
    );
    assert!(!codes(&plan).contains(&FindingCode::MultipleDatabases));
    assert_eq!(files_of(&plan, FindingCode::SplitLogBackup).len(), 3);
    assert!(!plan.can_start, "LRS refuses the striped log backups");

    // The 2016 database alone: its newest full, then the log that spans it.
    let files: Vec<FolderFile> = all
        .iter()
        .filter(|f| !is_2008r2_stripe_file(&f.name))
        .cloned()
        .collect();
    let plan = plan_folder("RestoreTimeStripe", &files);
    assert_eq!(
        steps(&plan),
        [
            "restoretime2.bak+restoretime2a.bak",
            "restoretime_21.trn+restoretime_21a.trn",
            "restoretime_22.trn+restoretime_22a.trn",
            "restoretime_23.trn+restoretime_23a.trn"
        ]
    );
}

#[test]
fn a_dropped_stripe_falls_back_to_the_older_full_and_says_which_family_is_missing() {
    let fixtures = fixtures_or_skip!();
    let files: Vec<FolderFile> = folder(
        &fixtures,
        "appveyor-lab/sql2008-backups/RestoreTimeStripe",
        true,
    )
    .into_iter()
    .filter(|f| is_2008r2_stripe_file(&f.name) && f.name != "RestoreTimeStripe2a.bak")
    .collect();
    let plan = plan_folder("RestoreTimeStripe", &files);
    let missing = plan
        .findings
        .iter()
        .find(|f| f.code == FindingCode::MissingStripes)
        .expect("a missing stripe");
    assert!(
        missing.message.contains("family 2 of 2"),
        "{}",
        missing.message
    );
    assert_eq!(missing.files, ["RestoreTimeStripe2.bak"]);
    assert_eq!(
        plan.steps.first().map(|s| s.files.join("+")).as_deref(),
        Some("RestoreTimeStripe.bak+RestoreTimeStripe1.bak")
    );
    assert!(!plan.can_start);
}

#[test]
fn ola_hallengren_layout_is_nested_and_plans_once_flattened() {
    let fixtures = fixtures_or_skip!();
    let nested = folder(&fixtures, "appveyor-lab/OlaMsFilter/complex", false);
    let plan = plan_folder("complex", &nested);
    let subfolders: Vec<usize> = files_of(&plan, FindingCode::NestedPath)
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(subfolders, [4, 2, 12], "Diff/, Full/ and Log/");
    assert!(plan.steps.is_empty());
    assert!(!plan.can_start);

    let flat = folder(&fixtures, "appveyor-lab/OlaMsFilter/complex", true);
    let plan = plan_folder("complex", &flat);
    // The newest full, its newest differential, then the empty log backup taken right after it.
    assert_eq!(
        steps(&plan),
        [
            "test_FULL_20160629_142200.bak",
            "test_DIFF_20160629_142800.bak",
            "test_LOG_20160629_143000.trn"
        ]
    );
    assert_eq!(plan.skipped.len(), 15);
    assert!(plan.can_start, "{:#?}", plan.findings);
}

#[test]
fn sql2008_database_folders_are_nested_and_plan_once_flattened() {
    let fixtures = fixtures_or_skip!();
    for db in [
        "Cube_Query_History",
        "DBWithoutOwner",
        "dbOrphanUsers",
        "ft1",
    ] {
        let dir = format!("appveyor-lab/sql2008-backups/{db}");
        let plan = plan_folder(db, &folder(&fixtures, &dir, false));
        assert_eq!(
            files_of(&plan, FindingCode::NestedPath).len(),
            3,
            "{db}: DIFF/, FULL/ and LOG/"
        );
        assert!(!plan.can_start);

        let plan = plan_folder(db, &folder(&fixtures, &dir, true));
        let kinds: Vec<BackupType> = plan.steps.iter().map(|s| s.backup_type).collect();
        assert_eq!(
            kinds,
            [BackupType::Full, BackupType::Differential, BackupType::Log],
            "{db}"
        );
        assert!(steps(&plan)[1].contains("_DIFF_20170518_041826"), "{db}");
        assert!(steps(&plan)[2].contains("_LOG_20170518_041837"), "{db}");
        assert!(
            plan.findings
                .iter()
                .all(|f| f.severity != chain::Severity::Blocking),
            "{db}"
        );
        assert!(
            !codes(&plan).contains(&FindingCode::NoChecksum),
            "{db} has checksums"
        );
        assert!(plan.can_start, "{db}");
    }

    let db1 = plan_folder(
        "db1",
        &folder(&fixtures, "appveyor-lab/sql2008-backups/db1", true),
    );
    assert!(codes(&db1).contains(&FindingCode::NoFullBackup));
    assert_eq!(files_of(&db1, FindingCode::OrphanDifferential).len(), 2);

    let db2 = plan_folder(
        "db2",
        &folder(&fixtures, "appveyor-lab/sql2008-backups/db2", true),
    );
    assert_eq!(steps(&db2).len(), 2);
    assert!(db2.can_start);
    let db3 = plan_folder(
        "db3",
        &folder(&fixtures, "appveyor-lab/sql2008-backups/db3", true),
    );
    assert_eq!(steps(&db3), ["SQL2008_db3_FULL_20170518_041739.bak"]);
    assert!(db3.can_start);
}

#[test]
fn simple_recovery_restored_mid_chain_is_one_database_with_a_warning() {
    let fixtures = fixtures_or_skip!();
    let files = folder(
        &fixtures,
        "appveyor-lab/sql2008-backups/SimpleRecovery",
        false,
    );
    let plan = plan_folder("SimpleRecovery", &files);
    assert_eq!(
        steps(&plan),
        ["SimpleBacktest.bak.36371999", "SimpleBackTest_2.bak"]
    );
    assert!(codes(&plan).contains(&FindingCode::SimpleRecovery));
    assert!(!codes(&plan).contains(&FindingCode::MultipleDatabases));
    assert_eq!(
        files_of(&plan, FindingCode::OlderThanBase),
        [vec!["SimpleBackTest_1.bak", "SimpleBacktest.bak"]]
    );
    assert!(plan.can_start, "{:#?}", plan.findings);
}
