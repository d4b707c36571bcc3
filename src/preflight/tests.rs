use crate::backup::DatabaseFile;
use crate::chain::synthetic::{Synthetic, SyntheticSet};
use crate::chain::{FindingCode, FolderFile, Plan, PlanInput, Severity, TailRule, plan};

use super::*;

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

/// A folder holding one full backup of Sales, with `files` as its file list.
fn folder(major: u8, files: Vec<DatabaseFile>) -> (Plan, Vec<FolderFile>) {
    let mut db = Synthetic::new("Sales").version(major, 0, 1000);
    let mut full: SyntheticSet = db.full(100, 200);
    full.set.files = files;
    let files = vec![full.file("Sales_full.bak")];
    let plan = plan(PlanInput {
        folder: "Sales",
        files: &files.iter().collect::<Vec<_>>(),
        fixed_base: None,
        tail: &TailRule::default(),
    });
    (plan, files)
}

fn simple() -> Vec<DatabaseFile> {
    vec![
        file("Sales", 'D', Some("PRIMARY"), 1, 100),
        file("Sales_log", 'L', None, 2, 20),
    ]
}

fn run(plan: &Plan, files: &[FolderFile], instance: &InstanceFacts) -> Vec<Finding> {
    check(PreflightInput {
        plan,
        files,
        target: "Sales",
        instance,
    })
}

fn codes(findings: &[Finding]) -> Vec<(FindingCode, Severity)> {
    findings.iter().map(|f| (f.code, f.severity)).collect()
}

fn gp_2022() -> InstanceFacts {
    InstanceFacts {
        name: Some("mi1".into()),
        tier: Some(Tier::GeneralPurpose),
        update_policy: Some(UpdatePolicy::SQLServer2022),
        storage_size_mb: Some(32 * 1024),
        storage_used_mb: Some(1024),
        databases: Some(Vec::new()),
        ..InstanceFacts::default()
    }
}

#[test]
fn a_clean_database_on_a_roomy_instance_has_no_findings() {
    let (plan, files) = folder(16, simple());
    assert!(plan.can_start, "{:?}", plan.findings);
    assert!(run(&plan, &files, &gp_2022()).is_empty());
    assert!(run(&plan, &files, &InstanceFacts::default()).is_empty());
}

#[test]
fn type_s_container_blocks_on_general_purpose_naming_both_possibilities() {
    let mut list = simple();
    list.push(file("Sales_xtp", 'S', Some("XTP"), 3, 10));
    let (plan, files) = folder(16, list);
    let found = run(&plan, &files, &gp_2022());
    assert_eq!(
        codes(&found),
        [(
            FindingCode::InMemoryOltpNeedsBusinessCritical,
            Severity::Blocking
        )]
    );
    let m = &found[0].message;
    assert!(
        m.contains("FILESTREAM") && m.contains("memory-optimized"),
        "{m}"
    );
    assert!(
        m.contains("Business Critical") && m.contains("Sales_xtp"),
        "{m}"
    );
    assert_eq!(found[0].files, ["Sales_full.bak"]);

    let next_gen = InstanceFacts {
        tier: Some(Tier::NextGenGeneralPurpose),
        ..gp_2022()
    };
    assert_eq!(
        codes(&run(&plan, &files, &next_gen)),
        [(
            FindingCode::InMemoryOltpNeedsBusinessCritical,
            Severity::Blocking
        )]
    );
}

#[test]
fn type_s_container_on_business_critical_or_unknown_tier_warns_of_filestream() {
    let mut list = simple();
    list.push(file("Docs_fs", 'S', Some("FS"), 3, 10));
    let (plan, files) = folder(16, list);
    let bc = InstanceFacts {
        tier: Some(Tier::BusinessCritical),
        ..gp_2022()
    };
    let found = run(&plan, &files, &bc);
    assert_eq!(
        codes(&found),
        [(FindingCode::FilestreamUnsupported, Severity::Warning)]
    );
    assert!(found[0].message.contains("does not support it on any tier"));
    let found = run(&plan, &files, &InstanceFacts::default());
    assert_eq!(
        codes(&found),
        [(FindingCode::FilestreamUnsupported, Severity::Warning)]
    );
    assert!(found[0].message.contains("--tier"), "{}", found[0].message);
}

#[test]
fn two_log_files_block_citing_lrs_error() {
    let mut list = simple();
    list.push(file("Sales_log2", 'L', None, 3, 20));
    let (plan, files) = folder(15, list);
    let found = run(&plan, &files, &InstanceFacts::default());
    assert_eq!(
        codes(&found),
        [(FindingCode::MultipleLogFiles, Severity::Blocking)]
    );
    let m = &found[0].message;
    assert!(
        m.contains("IncompatiblePhysicalLayoutWrongNumberOfLogFiles"),
        "{m}"
    );
    assert!(m.contains("Sales_log, Sales_log2"), "{m}");
}

#[test]
fn sql_2025_source_on_2022_policy_blocks_naming_the_policy_and_one_way() {
    let (plan, files) = folder(17, simple());
    let found = run(&plan, &files, &gp_2022());
    assert_eq!(
        codes(&found),
        [(FindingCode::SourceNewerThanInstance, Severity::Blocking)]
    );
    let m = &found[0].message;
    assert!(
        m.contains("SQL Server 2025") && m.contains("SQLServer2022"),
        "{m}"
    );
    assert!(m.contains("SQLServer2025 or AlwaysUpToDate"), "{m}");
    assert!(m.contains("one-way"), "{m}");
    for ok in [UpdatePolicy::SQLServer2025, UpdatePolicy::AlwaysUpToDate] {
        let facts = InstanceFacts {
            update_policy: Some(ok),
            ..gp_2022()
        };
        assert!(run(&plan, &files, &facts).is_empty(), "{ok}");
    }
    // Unknown policy: a warning that says what to verify.
    let found = run(&plan, &files, &InstanceFacts::default());
    assert_eq!(
        codes(&found),
        [(FindingCode::SourceNewerThanInstance, Severity::Warning)]
    );
    // A 2022 source is fine on the 2022 policy.
    let (plan, files) = folder(16, simple());
    assert!(run(&plan, &files, &gp_2022()).is_empty());
}

#[test]
fn storage_blocks_when_files_exceed_free_and_warns_above_80_percent() {
    // 100 + 20 MB of files.
    let (plan, files) = folder(16, simple());
    let with_free = |free_mb: u64| InstanceFacts {
        storage_size_mb: Some(free_mb + 500),
        storage_used_mb: Some(500),
        ..gp_2022()
    };
    let found = run(&plan, &files, &with_free(100));
    assert_eq!(
        codes(&found),
        [(FindingCode::InsufficientStorage, Severity::Blocking)]
    );
    assert!(found[0].message.contains("ManagedInstanceStorageLimitHit"));
    assert_eq!(
        codes(&run(&plan, &files, &with_free(140))),
        [(FindingCode::InsufficientStorage, Severity::Warning)]
    );
    assert!(run(&plan, &files, &with_free(151)).is_empty());
    // Used unknown: only the whole reserved storage can be compared.
    let unknown_use = InstanceFacts {
        storage_size_mb: Some(100),
        storage_used_mb: None,
        ..gp_2022()
    };
    assert_eq!(
        codes(&run(&plan, &files, &unknown_use)),
        [(FindingCode::InsufficientStorage, Severity::Blocking)]
    );
    // Offline --free-storage-gb.
    let offline = InstanceFacts::offline(None, None, Some(0.1));
    assert_eq!(
        codes(&run(&plan, &files, &offline)),
        [(FindingCode::InsufficientStorage, Severity::Blocking)]
    );
}

#[test]
fn name_taken_by_a_foreign_database_blocks_but_our_lrs_restore_does_not() {
    let (plan, files) = folder(16, simple());
    let mut facts = gp_2022();
    facts.databases = Some(vec![InstanceDatabase {
        name: "SALES".into(),
        status: Some("Online".into()),
        lrs_restore: false,
    }]);
    let found = run(&plan, &files, &facts);
    assert_eq!(
        codes(&found),
        [(FindingCode::NameTakenOnInstance, Severity::Blocking)]
    );
    assert!(found[0].message.contains("LRS_DATABASE_NAME_MAP"));
    facts.databases.as_mut().unwrap()[0].lrs_restore = true;
    assert!(run(&plan, &files, &facts).is_empty());
}

#[test]
fn a_full_instance_blocks_at_its_tier_limit() {
    let (plan, files) = folder(16, simple());
    let dbs = |n: usize| {
        Some(
            (0..n)
                .map(|i| InstanceDatabase {
                    name: format!("db{i}"),
                    status: None,
                    lrs_restore: false,
                })
                .collect(),
        )
    };
    let mut facts = gp_2022();
    facts.databases = dbs(100);
    let found = run(&plan, &files, &facts);
    assert_eq!(
        codes(&found),
        [(FindingCode::InstanceDatabaseLimit, Severity::Blocking)]
    );
    assert!(found[0].message.contains("limit 100"));
    facts.databases = dbs(99);
    assert!(run(&plan, &files, &facts).is_empty());
    facts.tier = Some(Tier::NextGenGeneralPurpose);
    facts.databases = dbs(100);
    assert!(run(&plan, &files, &facts).is_empty());
    facts.databases = dbs(500);
    assert_eq!(
        codes(&run(&plan, &files, &facts)),
        [(FindingCode::InstanceDatabaseLimit, Severity::Blocking)]
    );
}

#[test]
fn maintenance_window_is_information_naming_the_window() {
    let (plan, files) = folder(16, simple());
    let mut facts = gp_2022();
    facts.maintenance_configuration_id = Some(
        "/subscriptions/s/providers/Microsoft.Maintenance/publicMaintenanceConfigurations/SQL_WestEurope_MI_1"
            .into(),
    );
    let found = run(&plan, &files, &facts);
    assert_eq!(
        codes(&found),
        [(FindingCode::MaintenanceWindow, Severity::Info)]
    );
    assert!(found[0].message.contains("SQL_WestEurope_MI_1"));
    assert!(found[0].message.contains("Monday to Thursday"));
    assert!(!blocks(&found));
}

#[test]
fn blocking_findings_come_first() {
    let mut list = simple();
    list.push(file("Sales_log2", 'L', None, 3, 20));
    let (plan, files) = folder(16, list);
    let mut facts = gp_2022();
    facts.maintenance_configuration_id = Some("SQL_Default".into());
    let found = run(&plan, &files, &facts);
    assert_eq!(found.first().map(|f| f.severity), Some(Severity::Blocking));
    assert_eq!(found.last().map(|f| f.severity), Some(Severity::Info));
}

#[test]
fn tier_and_policy_parse_from_flags_and_arm() {
    assert_eq!("GeneralPurpose".parse(), Ok(Tier::GeneralPurpose));
    assert_eq!(
        "next-gen-general-purpose".parse(),
        Ok(Tier::NextGenGeneralPurpose)
    );
    assert!("Premium".parse::<Tier>().is_err());
    assert_eq!("sqlserver2022".parse(), Ok(UpdatePolicy::SQLServer2022));
    assert!("2019".parse::<UpdatePolicy>().is_err());
    assert_eq!(
        Tier::from_arm(Some("GeneralPurpose"), Some("GP_Gen5"), true),
        Some(Tier::NextGenGeneralPurpose)
    );
    assert_eq!(
        Tier::from_arm(None, Some("BC_G8IM"), false),
        Some(Tier::BusinessCritical)
    );
    assert_eq!(Tier::from_arm(None, None, false), None);
}
