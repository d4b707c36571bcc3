//! Item 1 of issue 11, end to end: a database whose name contains "tail" (RetailDB, Cocktail,
//! Detail) is never completed on an ordinary log backup under the default settings, and a real
//! `<db>_tail.trn` still completes. The built binary (`serve`) runs with no `LRS_TAIL_PATTERN`, so
//! the configuration's default is what is tested; the backups are written by the backup writer with
//! each database's own name in the header, uploaded to Azurite, and restored by the LRS simulator.

mod pipeline_support;
mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use lrs_autopilot::backup::writer::{WriteOptions, write};
use lrs_autopilot::chain::synthetic::{Synthetic, SyntheticSet};
use lrs_autopilot::chain::{FileRead, FolderFile};
use lrs_autopilot::migration::{Phase, TailSource};
use pipeline_support::{Encoding, Rig, RigOptions, Serve, Uploaded, ledger};

const DATABASES: [&str; 3] = ["RetailDB", "Cocktail", "Detail"];

fn bytes_of(file: &FolderFile) -> Bytes {
    let FileRead::Read { facts } = &file.read else {
        panic!("a synthetic file has facts");
    };
    Bytes::from(write(
        facts,
        &WriteOptions {
            data_len: 16 * 1024,
            complete: true,
        },
    ))
}

async fn upload(rig: &Rig, folder: &str, set: &SyntheticSet, name: &str) -> Uploaded {
    rig.upload(folder, name, bytes_of(&set.file(name)), &BTreeMap::new())
        .await
}

fn completes(rig: &Rig) -> Vec<String> {
    rig.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.to_ascii_lowercase().ends_with("/completerestore"))
        .map(|r| r.path.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_named_like_tail_are_never_completed_on_a_log_backup() {
    let rig = Rig::new(RigOptions {
        // Not set: `serve` runs with the configuration's default pattern.
        tail_pattern: None,
        ..RigOptions::default()
    })
    .await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    let env = rig.env();
    assert!(env.iter().all(|(k, _)| k != "LRS_TAIL_PATTERN"));
    let (serve, _) = Serve::start(binary, &env).await;

    let mut sources = Vec::new();
    for (i, db) in DATABASES.into_iter().enumerate() {
        let mut source = Synthetic::new(db);
        let full = source.full(1000, 1100);
        let logs = [
            (
                source.log(1100, 1200),
                format!("{db}_LOG_20250601_0815.trn"),
            ),
            (
                source.log(1200, 1300),
                format!("{db}_LOG_20250601_0830.trn"),
            ),
            (
                source.log(1300, 1400),
                format!("SQL01_{db}_LOG_20250601_0845.trn"),
            ),
        ];
        let full = upload(&rig, db, &full, &format!("{db}_FULL_20250601.bak")).await;
        rig.deliver_each(&serve.endpoint, [(0, &full)], Encoding::Once)
            .await;
        assert_eq!(
            ledger(&rig.requests(), db).starts_accepted,
            1,
            "{db}: LRS started on the full backup"
        );
        // One log backup at a time, each restored before the next is taken: each is the newest
        // file when LRS restores it, the moment the old default (`*tail*`) completed the database.
        for (k, (set, name)) in logs.iter().enumerate() {
            let uploaded = upload(&rig, db, set, name).await;
            rig.deliver_each(&serve.endpoint, [(k + 1, &uploaded)], Encoding::Once)
                .await;
            let state = rig.state_of(db).await.expect("a state document");
            assert_eq!(state.tail, None, "{db}: {:?}", state.audit);
            assert_eq!(state.phase, Phase::Restoring, "{db}: {:?}", state.reason);
            let mut ticks = 0;
            while rig
                .sim
                .restore_details(db)
                .await
                .last_restored_file_name
                .as_deref()
                != Some(name.as_str())
            {
                ticks += 1;
                assert!(ticks < 60, "{db}: LRS did not restore {name}");
                rig.advance(pipeline_support::TICK);
                assert_eq!(serve.endpoint.timer().await.status, 200);
            }
            // The timer polls a database waiting for its cutover on every pass.
            for _ in 0..2 {
                rig.advance(pipeline_support::TICK);
                assert_eq!(serve.endpoint.timer().await.status, 200);
            }
            assert!(
                completes(&rig).is_empty(),
                "{db} ({i}): completeRestore sent after {name}: {:?}",
                completes(&rig)
            );
        }
        sources.push(source);
    }
    // More timer passes change nothing.
    for _ in 0..5 {
        rig.advance(pipeline_support::TICK);
        assert_eq!(serve.endpoint.timer().await.status, 200);
    }
    assert!(completes(&rig).is_empty(), "{:?}", completes(&rig));
    for db in DATABASES {
        let state = rig.state_of(db).await.expect("a state document");
        assert_eq!(state.phase, Phase::Restoring, "{db}");
        assert!(state.lrs.complete_claimed_at.is_none(), "{db}");
    }

    // The real tail-log backup of RetailDB completes it; the others stay restoring.
    let tail_name = "RetailDB_tail.trn";
    let tail = sources[0].log(1400, 1420);
    let uploaded = upload(&rig, "RetailDB", &tail, tail_name).await;
    rig.deliver_each(&serve.endpoint, [(0, &uploaded)], Encoding::Once)
        .await;
    let state = rig.state_of("RetailDB").await.expect("a state document");
    assert_eq!(
        state
            .tail
            .as_ref()
            .map(|t| (t.file_name.as_str(), t.source)),
        Some((tail_name, TailSource::Pattern))
    );
    let done = rig
        .drive(&serve.endpoint, "RetailDB", 60, |s| {
            s.phase == Phase::Completed
        })
        .await;
    assert!(done.lrs.tail_restored_at <= done.lrs.complete_sent_at);
    let l = ledger(&rig.requests(), "RetailDB");
    assert_eq!(l.completes_accepted, [tail_name]);
    assert_eq!(l.deletes, 0);
    for db in ["Cocktail", "Detail"] {
        assert!(
            ledger(&rig.requests(), db).completes_accepted.is_empty(),
            "{db}"
        );
        let state = rig.state_of(db).await.expect("a state document");
        assert_eq!(state.phase, Phase::Restoring, "{db}");
    }
    drop(serve);
}
