//! `lrs-autopilot demo`: writes a small synthetic estate of real-format backup files, rehearses it
//! with the real pipeline and the LRS simulator, and explains what happened and why. No Azure, no
//! Azurite; well under a minute.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::rehearse::{self, DatabaseReport, Progress, Report};
use super::runtime;
use crate::backup::RecoveryModel;
use crate::backup::writer::{WriteOptions, write};
use crate::chain::synthetic::{Synthetic, SyntheticSet};
use crate::chain::{FileRead, FindingCode, FolderFile, Severity};
use crate::migration::Phase;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the estate here (kept) instead of a temporary folder (removed afterwards).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the rehearsal's report as JSON instead of the explanation.
    #[arg(long)]
    json: bool,
    /// The simulated instance's tier, as `rehearse --tier`.
    #[arg(long)]
    tier: Option<crate::preflight::Tier>,
    /// The simulated instance's update policy, as `rehearse --update-policy` (default
    /// SQLServer2022: the SQL Server 2025 database is refused).
    #[arg(long)]
    update_policy: Option<crate::preflight::UpdatePolicy>,
    /// The simulated instance's free storage in GB, as `rehearse --free-storage-gb`.
    #[arg(long, value_name = "GB")]
    free_storage_gb: Option<f64>,
}

/// Runs `demo`. Exit 0 when the rehearsal came out as the estate was built to: two databases
/// completed and three blocked for the right reasons (the SQL Server 2025 one completes when
/// `--update-policy` takes it).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let temp;
    let root = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let written = write_estate(&root)?;
    if !args.json {
        println!(
            "Wrote a synthetic estate of {written} backup files to {}:",
            root.display()
        );
        for (folder, about) in ESTATE {
            println!("  {folder:<12} {about}");
        }
        println!(
            "\nRehearsing it: the real pipeline, a folder for the container, the LRS simulator for the instance.\n"
        );
    }
    let rehearse_args = rehearse::Args {
        root: root.clone(),
        state: None,
        tail_pattern: crate::chain::DEFAULT_TAIL_PATTERN.into(),
        restore_mbps: 200.0,
        follow: false,
        json: args.json,
        max_hours: 24,
        dashboard: None,
        tier: args.tier,
        update_policy: args.update_policy,
        free_storage_gb: args.free_storage_gb,
    };
    let report = runtime()?.block_on(rehearse::rehearse(
        &rehearse_args,
        &mut Progress::new(args.json),
    ))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", explain(&report));
        if args.out.is_some() {
            println!(
                "\nThe files are still in {}: try `lrs-autopilot check --all {0}` or `lrs-autopilot inspect` on them.",
                root.display()
            );
        }
    }
    let takes_2025 = args
        .update_policy
        .is_some_and(|p| p.max_source_major() >= 17);
    Ok(if as_built(&report, takes_2025) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The estate's databases and what each is built to show.
const ESTATE: [(&str, &str); 5] = [
    (
        "SalesDb",
        "healthy: full, differential, two logs and a tail-log backup",
    ),
    (
        "InventoryDb",
        "a full backup striped over two files, a log and a tail-log backup",
    ),
    (
        "OrdersDb",
        "a log backup is missing in the middle of the chain",
    ),
    (
        "HrDb",
        "a backup of another database (PayrollDb) was dropped in its folder",
    ),
    (
        "AnalyticsDb",
        "a SQL Server 2025 database, for an instance on the SQL Server 2022 update policy",
    ),
];

/// Writes the estate; returns how many files.
fn write_estate(root: &Path) -> anyhow::Result<usize> {
    let mut files: Vec<(&str, FolderFile)> = Vec::new();

    let mut sales = Synthetic::new("SalesDb").version(15, 0, 4153);
    let full = sales.full(1000, 1100);
    files.push(("SalesDb", full.file("SalesDb_01_full.bak")));
    files.push((
        "SalesDb",
        sales.diff(&full, 1200, 1300).file("SalesDb_02_diff.bak"),
    ));
    files.push(("SalesDb", sales.log(1100, 1350).file("SalesDb_03_log.trn")));
    files.push(("SalesDb", sales.log(1350, 1400).file("SalesDb_04_log.trn")));
    files.push(("SalesDb", sales.log(1400, 1420).file("SalesDb_05_tail.trn")));

    let mut inventory = Synthetic::new("InventoryDb").version(14, 0, 3465);
    let full = inventory.full(500, 600);
    for f in full.striped(&[
        "InventoryDb_01_full_1of2.bak",
        "InventoryDb_01_full_2of2.bak",
    ]) {
        files.push(("InventoryDb", f));
    }
    files.push((
        "InventoryDb",
        inventory.log(600, 700).file("InventoryDb_02_log.trn"),
    ));
    files.push((
        "InventoryDb",
        inventory.log(700, 720).file("InventoryDb_03_tail.trn"),
    ));

    let mut orders = Synthetic::new("OrdersDb").version(13, 0, 5026);
    files.push((
        "OrdersDb",
        orders.full(2000, 2100).file("OrdersDb_01_full.bak"),
    ));
    files.push((
        "OrdersDb",
        orders.log(2100, 2200).file("OrdersDb_02_log.trn"),
    ));
    let _missing: SyntheticSet = orders.log(2200, 2300); // taken, but never uploaded
    files.push((
        "OrdersDb",
        orders.log(2300, 2400).file("OrdersDb_04_log.trn"),
    ));
    files.push((
        "OrdersDb",
        orders.log(2400, 2420).file("OrdersDb_05_tail.trn"),
    ));

    let mut hr = Synthetic::new("HrDb")
        .version(15, 0, 4153)
        .recovery(RecoveryModel::Full);
    files.push(("HrDb", hr.full(3000, 3100).file("HrDb_01_full.bak")));
    files.push(("HrDb", hr.log(3100, 3200).file("HrDb_02_log.trn")));
    let mut payroll = Synthetic::new("PayrollDb").version(15, 0, 4153);
    files.push(("HrDb", payroll.full(9000, 9100).file("PayrollDb_full.bak")));

    let mut analytics = Synthetic::new("AnalyticsDb").version(17, 0, 1000);
    files.push((
        "AnalyticsDb",
        analytics.full(4000, 4100).file("AnalyticsDb_01_full.bak"),
    ));
    files.push((
        "AnalyticsDb",
        analytics.log(4100, 4200).file("AnalyticsDb_02_log.trn"),
    ));
    files.push((
        "AnalyticsDb",
        analytics.log(4200, 4220).file("AnalyticsDb_03_tail.trn"),
    ));

    for (folder, file) in &files {
        let FileRead::Read { facts } = &file.read else {
            continue;
        };
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let bytes = write(
            facts,
            &WriteOptions {
                data_len: 64 * 1024,
                complete: true,
            },
        );
        let path = dir.join(&file.name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files.len())
}

/// Whether the rehearsal came out the way the estate was built: AnalyticsDb (SQL Server 2025)
/// completes only when the instance's update policy takes it.
fn as_built(report: &Report, takes_2025: bool) -> bool {
    let phase = |folder: &str| {
        report
            .databases
            .iter()
            .find(|d| d.folder == folder)
            .map(|d| d.phase)
    };
    let has = |folder: &str, code: FindingCode| {
        report
            .databases
            .iter()
            .any(|d| d.folder == folder && d.findings.iter().any(|f| f.code == code))
    };
    phase("SalesDb") == Some(Phase::Completed)
        && phase("InventoryDb") == Some(Phase::Completed)
        && phase("OrdersDb") == Some(Phase::Blocked)
        && has("OrdersDb", FindingCode::LogChainGap)
        && phase("HrDb") == Some(Phase::Blocked)
        && has("HrDb", FindingCode::MultipleDatabases)
        && if takes_2025 {
            phase("AnalyticsDb") == Some(Phase::Completed)
        } else {
            phase("AnalyticsDb") == Some(Phase::Blocked)
                && has("AnalyticsDb", FindingCode::SourceNewerThanInstance)
        }
}

/// Plain words for each database: what the pipeline did, and why.
fn explain(report: &Report) -> String {
    let mut out = String::from("\nWhat happened, and why\n======================\n");
    for d in &report.databases {
        out.push_str(&format!(
            "\n{} ({} of {} planned files restored): {}\n",
            d.folder, d.files_restored, d.files_planned, d.phase
        ));
        out.push_str(&format!("  {}\n", story(d)));
        for f in d
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocking)
        {
            out.push_str(&format!("  - {}\n", f.message));
        }
    }
    out.push_str(
        "\nThe pipeline never deletes a database and never completes before LRS reports the tail-log backup restored.\n",
    );
    out
}

fn story(d: &DatabaseReport) -> String {
    let plan = if d.plan.is_empty() {
        "no plan".to_owned()
    } else {
        d.plan.join(" → ")
    };
    match d.phase {
        Phase::Completed => format!(
            "LRS started as soon as a complete full backup landed and restored {plan}. {} matched the \
             tail pattern; once LRS reported it as the last file restored, the pipeline sent completeRestore \
             with it, and the database came online.",
            d.tail.as_deref().unwrap_or("The tail-log backup")
        ),
        Phase::Blocked => format!(
            "The pipeline stopped here and raised an alert, because LRS would stall or fail on this folder: {}",
            d.reason.as_deref().unwrap_or("see the findings")
        ),
        Phase::Restoring => format!(
            "LRS restored {plan} and waits for more logs; no tail-log backup is declared yet."
        ),
        Phase::CutoverPending => format!(
            "The tail-log backup {} is known; LRS is still restoring up to it.",
            d.tail.as_deref().unwrap_or("?")
        ),
        Phase::Waiting => "No complete full backup yet: the pipeline waits for one.".to_owned(),
        other => format!("The migration is {other}."),
    }
}
