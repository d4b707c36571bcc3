//! Unit tests of the planner on synthetic facts: every finding code and both verdicts.

use proptest::prelude::*;

use super::synthetic::{Synthetic, SyntheticSet, failed, lsn};
use super::*;
use crate::backup::{BackupSet, RecoveryModel};

fn plan_with(files: &[FolderFile], tail: &TailRule, fixed_base: Option<Uuid>) -> Plan {
    plan(PlanInput {
        folder: "Sales",
        files: &files.iter().collect::<Vec<_>>(),
        fixed_base,
        tail,
    })
}

fn run(files: &[FolderFile]) -> Plan {
    plan_with(files, &TailRule::default(), None)
}

fn pattern(glob: &str) -> TailRule {
    TailRule::with_pattern(glob)
}

fn declared(name: &str) -> TailRule {
    TailRule {
        file_name: Some(name.to_owned()),
        ..TailRule::default()
    }
}

fn codes(plan: &Plan) -> Vec<FindingCode> {
    plan.findings.iter().map(|f| f.code).collect()
}

fn finding(plan: &Plan, code: FindingCode) -> &Finding {
    plan.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} finding in {:#?}", plan.findings))
}

fn step_names(plan: &Plan) -> Vec<String> {
    plan.steps.iter().flat_map(|s| s.files.clone()).collect()
}

fn blocking(plan: &Plan) -> Vec<FindingCode> {
    plan.findings
        .iter()
        .filter(|f| f.severity == Severity::Blocking)
        .map(|f| f.code)
        .collect()
}

/// Full 100→200 with a log chain 100→250→350→450→500 and a differential 300→400 in the middle.
struct Chain {
    db: Synthetic,
    full: SyntheticSet,
    diff: SyntheticSet,
    logs: Vec<SyntheticSet>,
}

impl Chain {
    fn new() -> Self {
        let mut db = Synthetic::new("Sales");
        let full = db.full(100, 200);
        let l1 = db.log(100, 250);
        let l2 = db.log(250, 350);
        let diff = db.diff(&full, 300, 400);
        let l3 = db.log(350, 450);
        let l4 = db.log(450, 500);
        Chain {
            db,
            full,
            diff,
            logs: vec![l1, l2, l3, l4],
        }
    }

    fn log_file(&self, k: usize) -> FolderFile {
        self.logs[k - 1].file(&format!("Sales_log_{k}.trn"))
    }

    fn files(&self, with_diff: bool, logs: &[usize]) -> Vec<FolderFile> {
        let mut files = vec![self.full.file("Sales_full.bak")];
        if with_diff {
            files.push(self.diff.file("Sales_diff.bak"));
        }
        files.extend(logs.iter().map(|&k| self.log_file(k)));
        files
    }
}

#[test]
fn plans_full_then_newest_diff_then_logs_from_the_diff() {
    let chain = Chain::new();
    let plan = run(&chain.files(true, &[1, 2, 3, 4]));
    assert_eq!(
        step_names(&plan),
        [
            "Sales_full.bak",
            "Sales_diff.bak",
            "Sales_log_3.trn",
            "Sales_log_4.trn"
        ]
    );
    let kinds: Vec<_> = plan.steps.iter().map(|s| s.backup_type).collect();
    assert_eq!(
        kinds,
        [
            BackupType::Full,
            BackupType::Differential,
            BackupType::Log,
            BackupType::Log
        ]
    );
    assert_eq!(plan.database_name.as_deref(), Some("Sales"));
    assert_eq!(plan.restorable_to_lsn, Some(lsn(500)));
    assert_eq!(
        plan.restorable_to_time, chain.logs[3].set.backup_finish,
        "the time of the last restored log"
    );
    assert_eq!(plan.skipped, ["Sales_log_1.trn", "Sales_log_2.trn"]);
    assert_eq!(
        finding(&plan, FindingCode::OlderThanBase).files,
        ["Sales_log_1.trn", "Sales_log_2.trn"]
    );
    assert!(blocking(&plan).is_empty(), "{:#?}", plan.findings);
    assert!(plan.can_start);
    assert!(!plan.can_complete, "no tail-log backup declared");
}

#[test]
fn without_a_diff_the_logs_follow_the_full() {
    let chain = Chain::new();
    let plan = run(&chain.files(false, &[4, 2, 3, 1]));
    assert_eq!(
        step_names(&plan),
        [
            "Sales_full.bak",
            "Sales_log_1.trn",
            "Sales_log_2.trn",
            "Sales_log_3.trn",
            "Sales_log_4.trn"
        ]
    );
    assert!(plan.skipped.is_empty());
    assert!(plan.can_start);
}

#[test]
fn first_log_may_start_before_the_full_checkpoint() {
    // A log backup running during the full starts before the full's checkpoint.
    let mut db = Synthetic::new("Sales");
    let early = db.log(50, 120);
    let full = db.full(100, 200);
    let during = db.log(120, 300);
    let files = [
        early.file("a.trn"),
        full.file("full.bak"),
        during.file("b.trn"),
    ];
    let plan = run(&files);
    assert_eq!(step_names(&plan), ["full.bak", "b.trn"]);
    assert_eq!(finding(&plan, FindingCode::OlderThanBase).files, ["a.trn"]);
    assert!(plan.can_start);
}

#[test]
fn log_ending_at_the_restore_point_is_skipped_and_an_empty_log_there_is_kept() {
    let mut db = Synthetic::new("Sales");
    let full = db.full(100, 200);
    let diff = db.diff(&full, 300, 400);
    let ends_at_point = db.log(300, 400);
    let empty = db.log(400, 400);
    let next = db.log(400, 500);
    let files = [
        full.file("full.bak"),
        diff.file("diff.bak"),
        ends_at_point.file("l1.trn"),
        empty.file("l2.trn"),
        next.file("l3.trn"),
    ];
    let plan = run(&files);
    assert_eq!(
        step_names(&plan),
        ["full.bak", "diff.bak", "l2.trn", "l3.trn"]
    );
    assert_eq!(plan.skipped, ["l1.trn"]);
}

#[test]
fn stripes_are_planned_in_family_order_whatever_their_names() {
    let mut db = Synthetic::new("Sales");
    let full = db.full(100, 200);
    let files = full.striped(&["z_first.bak", "m_second.bak", "a_third.bak"]);
    let plan = run(&files);
    assert_eq!(
        plan.steps[0].files,
        ["z_first.bak", "m_second.bak", "a_third.bak"]
    );
    assert_eq!(plan.steps[0].size, 3 << 20);
    assert!(plan.can_start);
}

#[test]
fn newest_complete_full_is_the_base_and_a_newer_partial_set_is_reported() {
    let mut db = Synthetic::new("Sales");
    let old = db.full(100, 200);
    let log = db.log(100, 300);
    let newer = db.full(300, 400);
    let mut files = vec![old.file("old.bak"), log.file("l.trn")];
    // Stripe 2 of 3 never arrived.
    files.push(newer.stripe("new_1.bak", 1, 3));
    files.push(newer.stripe("new_3.bak", 3, 3));
    let plan = run(&files);
    assert_eq!(step_names(&plan), ["old.bak", "l.trn"]);
    let missing = finding(&plan, FindingCode::MissingStripes);
    assert!(
        missing.message.contains("family 2 of 3"),
        "{}",
        missing.message
    );
    assert_eq!(missing.files, ["new_1.bak", "new_3.bak"]);
    assert_eq!(missing.severity, Severity::Blocking);
    assert!(!plan.can_start);

    files.push(newer.stripe("new_2.bak", 2, 3));
    let plan = run(&files);
    assert_eq!(step_names(&plan), ["new_1.bak", "new_2.bak", "new_3.bak"]);
    assert_eq!(
        finding(&plan, FindingCode::OlderThanBase).files,
        ["l.trn", "old.bak"]
    );
    assert!(plan.can_start);
}

#[test]
fn no_full_backup_blocks_the_start() {
    let chain = Chain::new();
    let files: Vec<_> = (1..=4).map(|k| chain.log_file(k)).collect();
    let plan = run(&files);
    assert!(plan.steps.is_empty());
    assert_eq!(blocking(&plan), [FindingCode::NoFullBackup]);
    assert!(
        finding(&plan, FindingCode::NoFullBackup)
            .message
            .contains("upload one")
    );
    assert!(!plan.can_start && !plan.can_complete);
    assert_eq!(plan.restorable_to_lsn, None);
}

#[test]
fn an_unfinished_full_is_never_planned_from() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1]);
    if let FileRead::Read { facts } = &mut files[0].read {
        facts.complete = Some(false);
    }
    let plan = run(&files);
    assert!(plan.steps.is_empty());
    let codes = codes(&plan);
    assert!(codes.contains(&FindingCode::IncompleteFile));
    assert!(codes.contains(&FindingCode::NoFullBackup));
    assert_eq!(
        finding(&plan, FindingCode::IncompleteFile).files,
        ["Sales_full.bak"]
    );
    assert!(!plan.can_start);
}

#[test]
fn a_missing_log_is_a_gap_with_its_lsn_range_and_neighbours() {
    let chain = Chain::new();
    let plan = run(&chain.files(false, &[1, 2, 4]));
    let gap = finding(&plan, FindingCode::LogChainGap);
    assert_eq!(gap.severity, Severity::Blocking);
    assert_eq!(gap.files, ["Sales_log_2.trn", "Sales_log_4.trn"]);
    assert!(
        gap.message.contains(&lsn(350).to_string()),
        "{}",
        gap.message
    );
    assert!(
        gap.message.contains(&lsn(450).to_string()),
        "{}",
        gap.message
    );
    assert_eq!(
        step_names(&plan),
        ["Sales_full.bak", "Sales_log_1.trn", "Sales_log_2.trn"]
    );
    assert_eq!(plan.restorable_to_lsn, Some(lsn(350)));
    assert!(!plan.can_start);
}

#[test]
fn a_gap_right_after_the_base_names_the_base() {
    let chain = Chain::new();
    let plan = run(&chain.files(false, &[2, 3]));
    let gap = finding(&plan, FindingCode::LogChainGap);
    assert_eq!(gap.files, ["Sales_full.bak", "Sales_log_2.trn"]);
    assert_eq!(step_names(&plan), ["Sales_full.bak"]);
}

#[test]
fn every_gap_is_reported() {
    let chain = Chain::new();
    let plan = run(&chain.files(false, &[2, 4]));
    let gaps: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| f.code == FindingCode::LogChainGap)
        .map(|f| f.files.clone())
        .collect();
    assert_eq!(
        gaps,
        [
            vec!["Sales_full.bak", "Sales_log_2.trn"],
            vec!["Sales_log_2.trn", "Sales_log_4.trn"]
        ]
    );
}

#[test]
fn a_differential_without_its_base_is_an_orphan() {
    let mut chain = Chain::new();
    let mut other = chain.db.full(1, 2);
    other.set.backup_set_guid = Uuid::from_u128(7);
    let orphan = chain.db.diff(&other, 460, 470);
    let mut files = chain.files(true, &[3, 4]);
    files.push(orphan.file("orphan.bak"));
    let plan = run(&files);
    let found = finding(&plan, FindingCode::OrphanDifferential);
    assert_eq!(found.severity, Severity::Warning);
    assert_eq!(found.files, ["orphan.bak"]);
    assert!(found.message.contains(&Uuid::from_u128(7).to_string()));
    assert!(!step_names(&plan).contains(&"orphan.bak".to_owned()));
    assert!(plan.skipped.contains(&"orphan.bak".to_owned()));
    assert!(plan.can_start);
}

#[test]
fn the_newest_differential_wins_and_older_ones_are_skipped() {
    let mut db = Synthetic::new("Sales");
    let full = db.full(100, 200);
    let d1 = db.diff(&full, 250, 300);
    let d2 = db.diff(&full, 350, 400);
    let files = [full.file("full.bak"), d2.file("d2.bak"), d1.file("d1.bak")];
    let plan = run(&files);
    assert_eq!(step_names(&plan), ["full.bak", "d2.bak"]);
    assert_eq!(plan.skipped, ["d1.bak"]);
}

#[test]
fn backups_of_two_databases_in_one_folder_are_blocking() {
    let chain = Chain::new();
    let mut other = Synthetic::new("Inventory");
    let foreign = other.full(100, 200);
    let foreign_log = other.log(100, 300);
    let mut files = chain.files(false, &[1, 2, 3, 4]);
    files.push(foreign.file("inv_full.bak"));
    files.push(foreign_log.file("inv.trn"));
    let plan = run(&files);
    let found = finding(&plan, FindingCode::MultipleDatabases);
    assert_eq!(found.severity, Severity::Blocking);
    assert_eq!(found.files, ["inv.trn", "inv_full.bak"]);
    assert!(found.message.contains("Inventory"), "{}", found.message);
    assert_eq!(plan.database_name, None);
    // The plan follows the database the folder is named after.
    assert_eq!(plan.steps[0].files, ["Sales_full.bak"]);
    assert!(!plan.can_start);
}

#[test]
fn same_name_from_another_server_with_unconnected_lsns_is_another_database() {
    let chain = Chain::new();
    let mut twin = Synthetic::new("Sales").server("OTHER\\SQL2016");
    let mut other_full = twin.full(9000, 9100);
    other_full.set.backup_start = Some(time::macros::datetime!(2020-01-01 00:00:00));
    let mut files = chain.files(false, &[1, 2, 3, 4]);
    files.push(other_full.file("twin_full.bak"));
    let plan = run(&files);
    let found = finding(&plan, FindingCode::MultipleDatabases);
    assert_eq!(found.files, ["twin_full.bak"]);
    assert!(
        found.message.contains("different server"),
        "{}",
        found.message
    );
    assert_eq!(plan.database_name.as_deref(), Some("Sales"));
    assert!(!plan.can_start);
}

#[test]
fn a_database_restored_mid_chain_stays_one_database() {
    // Restored from an older backup: the new full has lower LSNs than the abandoned branch's full
    // but the newest backups still carry higher LSNs, from the same server.
    let mut db = Synthetic::new("Sales");
    let abandoned = db.full(1180, 1590);
    let restored = db.full(700, 1400);
    let diff = db.diff(&restored, 1620, 1790);
    let files = [
        abandoned.file("SimpleBacktest.bak"),
        restored.file("SimpleBacktest_again.bak"),
        diff.file("SimpleBackTest_1.bak"),
    ];
    let plan = run(&files);
    assert!(
        !codes(&plan).contains(&FindingCode::MultipleDatabases),
        "{:#?}",
        plan.findings
    );
    assert_eq!(
        step_names(&plan),
        ["SimpleBacktest_again.bak", "SimpleBackTest_1.bak"]
    );
    assert_eq!(
        finding(&plan, FindingCode::OlderThanBase).files,
        ["SimpleBacktest.bak"]
    );
    assert!(plan.can_start);
}

#[test]
fn a_striped_log_backup_is_blocking() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1, 2, 4]);
    files.extend(chain.logs[2].striped(&["l3_a.trn", "l3_b.trn"]));
    let plan = run(&files);
    let found = finding(&plan, FindingCode::SplitLogBackup);
    assert_eq!(found.severity, Severity::Blocking);
    assert_eq!(found.files, ["l3_a.trn", "l3_b.trn"]);
    assert!(!codes(&plan).contains(&FindingCode::LogChainGap));
    assert!(step_names(&plan).contains(&"l3_b.trn".to_owned()));
    assert!(!plan.can_start);
}

#[test]
fn nested_files_are_reported_and_not_planned_from() {
    let chain = Chain::new();
    let files = [
        chain.full.file("FULL/Sales_full.bak"),
        chain.logs[0].file("LOG/Sales_1.trn"),
        chain.logs[1].file("LOG/Sales_2.trn"),
    ];
    let plan = run(&files);
    let nested: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| f.code == FindingCode::NestedPath)
        .collect();
    assert_eq!(nested.len(), 2, "one finding per subfolder");
    assert_eq!(nested[0].files, ["FULL/Sales_full.bak"]);
    assert_eq!(nested[1].files, ["LOG/Sales_1.trn", "LOG/Sales_2.trn"]);
    assert!(
        nested[1].message.contains("move them up to Sales/"),
        "{}",
        nested[1].message
    );
    assert!(codes(&plan).contains(&FindingCode::NoFullBackup));
    assert!(plan.steps.is_empty());
    assert!(!plan.can_start);
}

#[test]
fn names_that_need_url_encoding_are_a_warning() {
    let chain = Chain::new();
    let files = [
        chain.full.file("SQL01$PROD_Sales_FULL.bak"),
        chain.logs[0].file("Sales log 1.trn"),
        chain.logs[1].file("Sales_log_100%.trn"),
    ];
    let plan = run(&files);
    let found = finding(&plan, FindingCode::PathNeedsEncoding);
    assert_eq!(found.severity, Severity::Warning);
    assert_eq!(found.files.len(), 3);
    assert_eq!(plan.steps.len(), 3, "the files are still planned");
    assert!(plan.can_start);
}

#[test]
fn sql_server_2005_is_blocking_and_2008_to_2025_are_not() {
    for (major, minor, supported) in [
        (9, 0, false),
        (10, 0, true),
        (10, 50, true),
        (16, 0, true),
        (17, 0, true),
        (18, 0, false),
    ] {
        let mut db = Synthetic::new("Sales").version(major, minor, 1600);
        let full = db.full(100, 200);
        let plan = run(&[full.file("full.bak")]);
        assert_eq!(
            plan.can_start, supported,
            "{major}.{minor}: {:#?}",
            plan.findings
        );
        assert_eq!(
            codes(&plan).contains(&FindingCode::UnsupportedVersion),
            !supported,
            "{major}.{minor}"
        );
    }
    let mut db = Synthetic::new("Sales").version(9, 0, 1399);
    let plan = run(&[db.full(100, 200).file("full.bak")]);
    assert!(
        finding(&plan, FindingCode::UnsupportedVersion)
            .message
            .contains("2005"),
    );
}

#[test]
fn a_file_or_partial_backup_is_unsupported() {
    let chain = Chain::new();
    let mut partial = chain.full.clone();
    partial.set.backup_type = BackupType::Partial;
    partial.set.backup_set_guid = Uuid::from_u128(99);
    let mut files = chain.files(false, &[1]);
    files.push(partial.file("partial.bak"));
    let plan = run(&files);
    let found = finding(&plan, FindingCode::UnsupportedVersion);
    assert_eq!(found.files, ["partial.bak"]);
    assert!(found.message.contains("partial"));
}

#[test]
fn simple_recovery_is_a_warning() {
    let mut db = Synthetic::new("Sales").recovery(RecoveryModel::Simple);
    let full = db.full(100, 200);
    let plan = run(&[full.file("full.bak")]);
    let found = finding(&plan, FindingCode::SimpleRecovery);
    assert_eq!(found.severity, Severity::Warning);
    assert!(found.message.contains("SET RECOVERY FULL"));
    assert!(plan.can_start);
}

#[test]
fn backups_without_checksums_are_a_warning() {
    let mut db = Synthetic::new("Sales").checksums(false);
    let full = db.full(100, 200);
    let log = db.log(100, 300);
    let plan = run(&[full.file("full.bak"), log.file("l.trn")]);
    let found = finding(&plan, FindingCode::NoChecksum);
    assert_eq!(found.severity, Severity::Warning);
    assert_eq!(found.files, ["full.bak", "l.trn"]);
    assert!(found.message.contains("WITH CHECKSUM"));
    assert!(plan.can_start);
    let checked = Chain::new();
    assert!(!codes(&run(&checked.files(false, &[1]))).contains(&FindingCode::NoChecksum));
}

#[test]
fn several_backup_sets_in_one_file_are_blocking() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1]);
    if let FileRead::Read { facts } = &mut files[1].read {
        let mut second = facts.backup_sets[0].clone();
        second.position = 2;
        facts.backup_sets.push(second);
    }
    let plan = run(&files);
    let found = finding(&plan, FindingCode::MultipleBackupSets);
    assert_eq!(found.files, ["Sales_log_1.trn"]);
    assert!(found.message.contains("2 backup sets"));
    assert!(!plan.can_start);
}

#[test]
fn reader_failures_map_to_their_codes() {
    let chain = Chain::new();
    let cases = [
        (
            FailureKind::NotABackup,
            FindingCode::NotABackup,
            Severity::Warning,
            true,
        ),
        (
            FailureKind::Corrupt,
            FindingCode::CorruptFile,
            Severity::Blocking,
            false,
        ),
        (
            FailureKind::Incomplete,
            FindingCode::IncompleteFile,
            Severity::Blocking,
            false,
        ),
        (
            FailureKind::Unsupported,
            FindingCode::UnsupportedVersion,
            Severity::Blocking,
            false,
        ),
    ];
    for (kind, code, severity, starts) in cases {
        let mut files = chain.files(false, &[1]);
        files.push(failed("odd.bak", kind, "bad magic"));
        let plan = run(&files);
        let found = finding(&plan, code);
        assert_eq!(found.severity, severity, "{kind:?}");
        assert_eq!(found.files, ["odd.bak"]);
        assert!(found.message.contains("bad magic"), "{}", found.message);
        assert_eq!(plan.can_start, starts, "{kind:?}");
    }
}

#[test]
fn an_impossible_media_header_is_corrupt() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1]);
    files.push(chain.logs[1].stripe("odd.trn", 3, 2));
    let plan = run(&files);
    assert_eq!(finding(&plan, FindingCode::CorruptFile).files, ["odd.trn"]);
}

#[test]
fn a_header_without_a_backup_set_or_with_zero_stripes_is_corrupt() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1]);
    let mut empty = chain.logs[1].file("empty.trn");
    if let FileRead::Read { facts } = &mut empty.read {
        facts.backup_sets.clear();
    }
    files.push(empty);
    files.push(chain.logs[2].stripe("zero.trn", 0, 0));
    let plan = run(&files);
    let corrupt: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| f.code == FindingCode::CorruptFile)
        .map(|f| f.files.clone())
        .collect();
    assert_eq!(corrupt, [vec!["empty.trn"], vec!["zero.trn"]]);
    assert_eq!(step_names(&plan), ["Sales_full.bak", "Sales_log_1.trn"]);
    assert!(!plan.can_start);
}

#[test]
fn a_fixed_base_with_an_unfinished_stripe_never_plans_that_stripe() {
    let chain = Chain::new();
    let mut files = chain.full.striped(&["f1.bak", "f2.bak"]);
    if let FileRead::Read { facts } = &mut files[1].read {
        facts.complete = Some(false);
    }
    files.push(chain.log_file(1));
    let plan = plan_with(&files, &TailRule::default(), Some(chain.full.guid()));
    assert_eq!(step_names(&plan), ["f1.bak", "Sales_log_1.trn"]);
    assert!(codes(&plan).contains(&FindingCode::IncompleteFile));
}

#[test]
fn a_recognised_tail_at_the_end_of_the_chain_completes() {
    let chain = Chain::new();
    let mut files = chain.files(true, &[3]);
    files.push(chain.logs[3].file("Sales_TAIL.trn"));
    let plan = plan_with(&files, &pattern("*tail*"), None);
    assert_eq!(plan.tail.as_deref(), Some("Sales_TAIL.trn"));
    assert!(plan.can_start && plan.can_complete, "{:#?}", plan.findings);

    let by_name = TailRule {
        file_name: Some("Sales_log_3.trn".to_owned()),
        ..TailRule::default()
    };
    let plan = plan_with(&chain.files(true, &[3]), &by_name, None);
    assert_eq!(plan.tail.as_deref(), Some("Sales_log_3.trn"));
    assert!(plan.can_complete);
}

#[test]
fn a_log_after_the_declared_tail_blocks_the_cutover_only() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1, 2, 4]);
    files.push(chain.logs[2].file("Sales_tail.trn"));
    let plan = plan_with(&files, &declared("Sales_tail.trn"), None);
    let found = finding(&plan, FindingCode::LogAfterTail);
    assert_eq!(found.severity, Severity::Blocking);
    assert_eq!(found.files, ["Sales_log_4.trn"]);
    assert!(
        plan.can_start,
        "the restore may start: {:#?}",
        plan.findings
    );
    assert!(!plan.can_complete);
    assert_eq!(plan.findings[0].code, FindingCode::LogAfterTail);
    assert_eq!(
        plan.tail.as_deref(),
        Some("Sales_tail.trn"),
        "the operator's choice stays"
    );
}

#[test]
fn a_named_tail_with_a_later_log_is_refused_as_the_tail() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1, 2, 4]);
    files.push(chain.logs[2].file("Sales_tail.trn"));
    let by_metadata = TailRule {
        metadata: vec!["Sales_tail.trn".to_owned()],
        ..TailRule::default()
    };
    for rule in [pattern(DEFAULT_TAIL_PATTERN), by_metadata] {
        let plan = plan_with(&files, &rule, None);
        assert_eq!(plan.tail, None, "{rule:?}");
        let refused = finding(&plan, FindingCode::TailRefused);
        assert_eq!(refused.severity, Severity::Blocking);
        assert_eq!(refused.files, ["Sales_tail.trn"]);
        assert!(
            refused.message.contains("Sales_log_4.trn"),
            "{}",
            refused.message
        );
        assert!(
            plan.can_start,
            "only the cutover is blocked: {:#?}",
            plan.findings
        );
        assert!(!plan.can_complete);
    }
}

#[test]
fn a_later_log_that_is_not_chained_still_counts_after_the_tail() {
    let mut chain = Chain::new();
    let stray = chain.db.log(600, 700);
    let mut files = chain.files(false, &[1, 2, 3]);
    files.push(chain.logs[3].file("tail.trn"));
    files.push(stray.file("stray.trn"));
    let plan = plan_with(&files, &declared("tail.trn"), None);
    assert_eq!(
        finding(&plan, FindingCode::LogAfterTail).files,
        ["stray.trn"]
    );
    assert!(!plan.can_complete);
    let plan = plan_with(&files, &pattern("TAIL.*"), None);
    assert_eq!(plan.tail, None);
    assert!(
        finding(&plan, FindingCode::TailRefused)
            .message
            .contains("stray.trn")
    );
    assert!(!plan.can_complete);
}

#[test]
fn a_tail_beyond_a_gap_cannot_complete() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1, 2]);
    files.push(chain.logs[3].file("tail.trn"));
    let plan = plan_with(&files, &pattern("tail*"), None);
    assert_eq!(plan.tail, None, "the chain does not reach it");
    let refused = finding(&plan, FindingCode::TailRefused);
    assert_eq!(refused.severity, Severity::Warning);
    assert!(codes(&plan).contains(&FindingCode::LogChainGap));
    assert!(!plan.can_complete);
    let plan = plan_with(&files, &declared("tail.trn"), None);
    assert_eq!(plan.tail.as_deref(), Some("tail.trn"));
    assert!(!plan.can_complete);
}

/// Full, then two regular log backups named the way SQL Server jobs name them, in `folder`.
fn estate(database: &str, folder: &str, names: &[&str]) -> Plan {
    let mut db = Synthetic::new(database);
    let mut files = vec![
        db.full(100, 200)
            .file(&format!("{database}_FULL_20250601_0000.bak")),
    ];
    let mut at = 100;
    for name in names {
        files.push(db.log(at, at + 100).file(name));
        at += 100;
    }
    plan(PlanInput {
        folder,
        files: &files.iter().collect::<Vec<_>>(),
        fixed_base: None,
        tail: &pattern(DEFAULT_TAIL_PATTERN),
    })
}

#[test]
fn a_database_name_containing_tail_never_makes_a_tail() {
    for database in [
        "RetailDB",
        "Cocktail",
        "Detail",
        "TailspinToys",
        "Orders_tail",
        "tail",
    ] {
        let logs = [
            format!("{database}_LOG_20250601_0815.trn"),
            format!("{database}_LOG_20250601_0830.trn"),
            format!("SQL01_{database}_LOG_20250601_0845.trn"),
            format!("{database}.trn"),
        ];
        let names: Vec<&str> = logs.iter().map(String::as_str).collect();
        for legacy in [DEFAULT_TAIL_PATTERN, "*tail*", "*_tail*"] {
            for folder in [database, "tail", "backups"] {
                let mut db = Synthetic::new(database);
                let mut files = vec![db.full(100, 200).file("full.bak")];
                for (k, name) in names.iter().enumerate() {
                    let at = 100 + 100 * k as u32;
                    files.push(db.log(at, at + 100).file(name));
                }
                for n in 1..=files.len() {
                    // After every upload, the newest log included.
                    let plan = plan(PlanInput {
                        folder,
                        files: &files[..n].iter().collect::<Vec<_>>(),
                        fixed_base: None,
                        tail: &pattern(legacy),
                    });
                    assert_eq!(
                        plan.tail,
                        None,
                        "{database} in {folder} with {legacy}: {:?}",
                        &files[..n].iter().map(|f| &f.name).collect::<Vec<_>>()
                    );
                    assert!(!plan.can_complete);
                }
            }
        }
    }
}

#[test]
fn a_real_tail_of_such_a_database_is_recognised() {
    for database in ["RetailDB", "Cocktail", "Detail", "TailspinToys", "tail"] {
        let log = format!("{database}_LOG_20250601_0815.trn");
        let tail = format!("{database}_tail.trn");
        let plan = estate(database, database, &[&log, &tail]);
        assert_eq!(
            plan.tail.as_deref(),
            Some(tail.as_str()),
            "{:#?}",
            plan.findings
        );
        assert!(plan.can_complete, "{database}: {:#?}", plan.findings);
    }
    // A folder called `tail`, holding the Sales database.
    let plan = estate("Sales", "tail", &["Sales_LOG_1.trn"]);
    assert_eq!(plan.tail, None);
    let plan = estate("Sales", "tail", &["Sales_LOG_1.trn", "Sales_tail.trn"]);
    assert_eq!(plan.tail.as_deref(), Some("Sales_tail.trn"));
    assert!(plan.can_complete);
}

#[test]
fn the_match_text_blanks_the_database_and_folder_names() {
    assert_eq!(
        tail_match_text("RetailDB_LOG_20250601_0815.trn", "RetailDB", "RetailDB"),
        "\0_log_20250601_0815.trn"
    );
    assert_eq!(
        tail_match_text("sub/Sales_TAIL.trn", "Sales", "tail"),
        "\0_tail.trn"
    );
    assert_eq!(
        tail_match_text("tail_tail.trn", "tail", "tail"),
        "\0_tail.trn"
    );
    assert_eq!(
        tail_match_text("SQL01_Detail_LOG.trn", "Detail", "x"),
        "sql01_\0_log.trn"
    );
    assert_eq!(
        tail_match_text("Cocktail_LOG.trn", "CocktailDB", "Cocktail"),
        "\0_log.trn"
    );
    assert_eq!(tail_match_text("x_tail.trn", "", ""), "x_tail.trn");
}

#[test]
fn metadata_on_a_full_backup_is_refused() {
    let chain = Chain::new();
    let files = chain.files(false, &[1, 2]);
    let rule = TailRule {
        metadata: vec!["Sales_full.bak".to_owned()],
        ..TailRule::default()
    };
    let plan = plan_with(&files, &rule, None);
    assert_eq!(plan.tail, None);
    let refused = finding(&plan, FindingCode::TailRefused);
    assert_eq!(refused.files, ["Sales_full.bak"]);
    assert_eq!(refused.severity, Severity::Warning);
}

#[test]
fn metadata_names_the_tail_when_it_is_the_newest_log() {
    let chain = Chain::new();
    let files = chain.files(false, &[1, 2, 3, 4]);
    let rule = TailRule {
        metadata: vec!["Sales_log_4.trn".to_owned()],
        ..TailRule::default()
    };
    let plan = plan_with(&files, &rule, None);
    assert_eq!(plan.tail.as_deref(), Some("Sales_log_4.trn"));
    assert!(plan.can_complete, "{:#?}", plan.findings);
}

#[test]
fn a_header_that_says_not_a_tail_log_wins_over_the_name_once_confirmed() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1, 2, 3]);
    files.push(chain.logs[3].file("Sales_tail.trn"));
    let mut rule = pattern(DEFAULT_TAIL_PATTERN);
    // Unconfirmed bits: the name decides.
    assert_eq!(
        plan_with(&files, &rule, None).tail.as_deref(),
        Some("Sales_tail.trn")
    );
    rule.header_hint_confirmed = true;
    let plan = plan_with(&files, &rule, None);
    assert_eq!(
        plan.tail, None,
        "the header says it is an ordinary log backup"
    );
    assert_eq!(
        finding(&plan, FindingCode::TailRefused).severity,
        Severity::Warning
    );
    // With the tail-log bit set, the name and the header agree.
    let mut tail = chain.logs[3].clone();
    tail.set.flags |= 0x80;
    if let Some(last) = files.last_mut() {
        *last = tail.file("Sales_tail.trn");
    }
    let plan = plan_with(&files, &rule, None);
    assert_eq!(plan.tail.as_deref(), Some("Sales_tail.trn"));
    assert!(plan.can_complete, "{:#?}", plan.findings);
}

#[test]
fn a_tail_name_lrs_refuses_blocks_the_cutover() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1, 2, 3]);
    files.push(chain.logs[3].file("Sales_tail_é.trn"));
    let plan = plan_with(&files, &pattern("*tail*"), None);
    assert!(plan.can_start);
    assert!(!plan.can_complete);
    let refused = plan
        .findings
        .iter()
        .find(|f| f.code == FindingCode::PathNeedsEncoding && f.severity == Severity::Blocking)
        .expect("a blocking finding on the tail name");
    assert_eq!(refused.files, ["Sales_tail_é.trn"]);
}

#[test]
fn an_invalid_tail_pattern_recognises_nothing() {
    let chain = Chain::new();
    let plan = plan_with(&chain.files(false, &[1]), &pattern("[unclosed"), None);
    assert_eq!(plan.tail, None);
    assert!(!plan.can_complete);
    assert!(pattern("[unclosed").matcher().is_err());
}

#[test]
fn a_fixed_base_holds_when_a_newer_full_arrives() {
    let mut chain = Chain::new();
    let newer = chain.db.full(460, 480);
    let newer_diff = chain.db.diff(&newer, 470, 490);
    let mut files = chain.files(false, &[1, 2, 3, 4]);
    files.push(newer.file("Sales_full_2.bak"));
    files.push(newer_diff.file("Sales_diff_2.bak"));

    let free = run(&files);
    assert_eq!(free.steps[0].files, ["Sales_full_2.bak"]);

    let fixed = plan_with(&files, &TailRule::default(), Some(chain.full.guid()));
    assert_eq!(fixed.steps[0].files, ["Sales_full.bak"]);
    assert_eq!(fixed.steps.len(), 5, "full and the four logs");
    let info = finding(&fixed, FindingCode::NewerFullBackup);
    assert_eq!(info.severity, Severity::Info);
    assert_eq!(info.files, ["Sales_full_2.bak"]);
    assert!(fixed.skipped.contains(&"Sales_diff_2.bak".to_owned()));
    assert!(fixed.can_start);
}

#[test]
fn a_fixed_base_that_disappeared_is_reported() {
    let chain = Chain::new();
    let files: Vec<_> = (1..=4).map(|k| chain.log_file(k)).collect();
    let plan = plan_with(&files, &TailRule::default(), Some(chain.full.guid()));
    let found = finding(&plan, FindingCode::NoFullBackup);
    assert!(found.message.contains(&chain.full.guid().to_string()));
    assert!(!plan.can_start);
}

#[test]
fn a_duplicate_copy_is_skipped_without_breaking_the_chain() {
    let chain = Chain::new();
    let mut files = chain.files(false, &[1, 2, 3, 4]);
    files.push(chain.logs[1].file("Sales_log_2_copy.trn"));
    let plan = run(&files);
    assert_eq!(plan.steps.len(), 5);
    assert!(plan.skipped.contains(&"Sales_log_2_copy.trn".to_owned()));
    assert!(blocking(&plan).is_empty());
}

#[test]
fn findings_are_sorted_blocking_first() {
    let chain = Chain::new();
    let mut db = Synthetic::new("Sales").checksums(false);
    let mut files = chain.files(true, &[1, 2, 4]);
    files.push(db.full(1, 2).file("FULL/old.bak"));
    files.push(failed(
        "notes.txt",
        FailureKind::NotABackup,
        "no TAPE block",
    ));
    let plan = run(&files);
    let severities: Vec<_> = plan.findings.iter().map(|f| f.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted);
    assert_eq!(severities.first(), Some(&Severity::Blocking));
    assert!(severities.contains(&Severity::Warning));
}

#[test]
fn reader_errors_become_file_reads() {
    let read = FileRead::from_result(Err(crate::backup::Error::Truncated {
        offset: 10,
        wanted: 5,
    }));
    assert!(matches!(
        read,
        FileRead::Failed {
            kind: FailureKind::Incomplete,
            ..
        }
    ));
}

/// Random facts: type, LSN range (sometimes reversed), stripe k of n, set, completeness, database,
/// version, time, nesting.
type Spec = (u8, u32, u32, u16, u16, u8, bool, u8, u8, u8);

trait SpecFile {
    fn file(&self, i: usize) -> FolderFile;
}

impl SpecFile for Spec {
    fn file(&self, i: usize) -> FolderFile {
        let &(kind, first, len, fam, count, set_id, complete, db, major, minutes) = self;
        let kinds = [
            BackupType::Full,
            BackupType::Differential,
            BackupType::Log,
            BackupType::File,
        ];
        let mut db = Synthetic::new(["a", "b", "c"][usize::from(db % 3)]).version(major % 20, 0, 1);
        let last = if len % 5 == 4 {
            first.saturating_sub(len)
        } else {
            first.saturating_add(len % 40)
        };
        let mut s = db.log(first % 40, last % 60);
        s.set.backup_type = kinds[usize::from(kind % 4)];
        s.set.backup_set_guid = Uuid::from_u128(u128::from(set_id % 6));
        s.media_set_guid = Uuid::from_u128(u128::from(set_id % 6) + 100);
        s.set.differential_base_guid = Some(Uuid::from_u128(u128::from(first % 4)));
        s.set.database_backup_lsn = Some(lsn(first % 20));
        s.set.backup_start = Some(
            time::macros::datetime!(2024-01-01 00:00:00)
                + time::Duration::minutes(i64::from(minutes % 8)),
        );
        let name = if i % 7 == 6 {
            format!("x/{i}.bak")
        } else {
            format!("{i}.bak")
        };
        let mut f = s.stripe(&name, fam % 4, count % 4);
        if let FileRead::Read { facts } = &mut f.read {
            facts.complete = Some(complete);
        }
        f
    }
}

/// The files of a valid chain: a 2-stripe full, a differential, five logs.
fn valid_chain() -> (Vec<FolderFile>, Vec<&'static str>) {
    let mut db = Synthetic::new("Sales");
    let full = db.full(1000, 1100);
    let l1 = db.log(1000, 1200);
    let l2 = db.log(1200, 1300);
    let diff = db.diff(&full, 1400, 1500);
    let l3 = db.log(1300, 1600);
    let l4 = db.log(1600, 1700);
    let l5 = db.log(1700, 1800);
    let mut files = full.striped(&["F1", "F2"]);
    files.push(diff.file("D"));
    for (set, name) in [(l1, "L1"), (l2, "L2"), (l3, "L3"), (l4, "L4"), (l5, "L5")] {
        files.push(set.file(name));
    }
    (files, vec!["F1", "F2", "D", "L1", "L2", "L3", "L4", "L5"])
}

proptest! {
    #[test]
    fn any_subset_in_any_order_plans_from_present_files_and_gaps_exactly_when_a_link_is_missing(
        keep in prop::collection::vec(any::<bool>(), 8),
        order in Just((0..8).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let (all, names) = valid_chain();
        let files: Vec<FolderFile> = order
            .iter()
            .filter(|&&i| keep[i])
            .map(|&i| all[i].clone())
            .collect();
        let present = |n: &str| names.iter().position(|&x| x == n).is_some_and(|i| keep[i]);
        let plan = run(&files);

        for name in step_names(&plan) {
            prop_assert!(present(&name), "{} planned but absent", name);
        }
        let base = present("F1") && present("F2");
        prop_assert_eq!(!plan.steps.is_empty(), base);
        prop_assert_eq!(
            codes(&plan).contains(&FindingCode::MissingStripes),
            present("F1") != present("F2")
        );
        if base {
            // The logs the restore needs from its point on, in order.
            let needed: &[&str] = if present("D") { &["L3", "L4", "L5"] } else { &["L1", "L2", "L3", "L4", "L5"] };
            let first_missing = needed.iter().position(|n| !present(n));
            let gap_expected = first_missing
                .is_some_and(|m| needed.iter().skip(m + 1).any(|n| present(n)));
            prop_assert_eq!(codes(&plan).contains(&FindingCode::LogChainGap), gap_expected);
            let chained: Vec<&str> = needed.iter().take(first_missing.unwrap_or(needed.len())).copied().collect();
            let planned_logs: Vec<String> = plan.steps.iter()
                .filter(|s| s.backup_type == BackupType::Log)
                .flat_map(|s| s.files.clone())
                .collect();
            prop_assert_eq!(planned_logs, chained);
            prop_assert_eq!(plan.can_start, !gap_expected);
        } else {
            prop_assert!(codes(&plan).contains(&FindingCode::NoFullBackup));
            prop_assert!(!plan.can_start);
        }
        prop_assert!(!plan.can_complete);
    }

    #[test]
    fn arbitrary_facts_never_panic_and_keep_the_invariants(
        specs in prop::collection::vec(any::<Spec>(), 0..24),
        fixed in prop::option::of(0u128..24),
        tail_at in prop::option::of(0usize..24),
        meta_at in prop::option::of(0usize..24),
        hint in any::<bool>(),
    ) {
        let files: Vec<FolderFile> = specs.iter().enumerate().map(|(i, s)| s.file(i)).collect();
        let tail = TailRule {
            file_name: tail_at.map(|i| format!("{i}.bak")),
            metadata: meta_at.map(|i| format!("{i}.bak")).into_iter().collect(),
            pattern: Some("*1*".into()),
            header_hint_confirmed: hint,
        };
        let plan = plan_with(&files, &tail, fixed.map(Uuid::from_u128));
        let present: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
        for name in step_names(&plan) {
            prop_assert!(present.contains(name.as_str()));
        }
        for pair in plan.findings.windows(2) {
            prop_assert!(pair[0].severity >= pair[1].severity);
        }
        prop_assert!(!plan.can_complete || plan.can_start);
        let blocks_start = |f: &Finding| {
            f.severity == Severity::Blocking
                && f.code != FindingCode::LogAfterTail
                && f.code != FindingCode::TailRefused
                && !(f.code == FindingCode::PathNeedsEncoding && f.files.first() == plan.tail.as_ref())
        };
        prop_assert_eq!(
            plan.can_start,
            !plan.steps.is_empty() && !plan.findings.iter().any(blocks_start)
        );
        if plan.can_complete {
            let last = plan.steps.last().and_then(|s| s.files.first()).cloned();
            prop_assert_eq!(last, plan.tail.clone());
        }
    }
}

#[test]
fn synthetic_flags_follow_the_checksum_switch() {
    // Guard for the synthetic helper itself: flags follow the checksum switch.
    let mut db = Synthetic::new("Sales").checksums(false);
    let set = db.full(1, 2);
    assert_eq!(set.set.flags & BackupSet::FLAG_HAS_CHECKSUMS, 0);
}
