//! Plans a folder of one full backup and 10,000 log backups from synthetic facts (no I/O), the
//! size of a month of 5-minute log backups. Goal: at most 20 ms.
//!
//! `cargo bench --bench planner`

use criterion::{Criterion, criterion_group, criterion_main};
use lrs_autopilot::chain::synthetic::Synthetic;
use lrs_autopilot::chain::{self, FolderFile, PlanInput, TailRule};

const LOGS: u32 = 10_000;

/// A full backup and `LOGS` chained log backups, listed in reverse name order so the planner
/// cannot rely on the listing.
fn folder() -> Vec<FolderFile> {
    let mut db = Synthetic::new("Sales");
    let mut files = vec![db.full(100, 105).file("Sales_FULL.bak")];
    for k in 0..LOGS {
        let first = 100 + k * 10;
        files.push(
            db.log(first, first + 10)
                .file(&format!("Sales_LOG_{k:05}.trn")),
        );
    }
    files.reverse();
    files
}

fn bench(c: &mut Criterion) {
    let files = folder();
    let tail = TailRule::with_pattern(chain::DEFAULT_TAIL_PATTERN);
    let input = PlanInput {
        folder: "Sales",
        files: &files.iter().collect::<Vec<_>>(),
        fixed_base: None,
        tail: &tail,
    };
    let plan = chain::plan(input);
    assert_eq!(
        plan.steps.len(),
        1 + LOGS as usize,
        "the whole chain is planned"
    );
    assert!(plan.can_start, "{:#?}", plan.findings);
    c.bench_function("plan 10,000 log backups", |b| b.iter(|| chain::plan(input)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
