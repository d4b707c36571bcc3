//! The pipeline end to end over real HTTP: real fixture chains uploaded to Azurite, BlobCreated
//! events posted in the Functions host's envelope (both schemas, encoded once and twice), timer
//! invocations, and the LRS simulator reading the same blobs. What happened is read back from the
//! simulator's request log and restoreDetails, and from the state documents in Azurite.

mod pipeline_support;
mod support;

use std::collections::BTreeMap;

use lrs_autopilot::chain::FindingCode;
use lrs_autopilot::migration::{Phase, TailSource};
use lrs_autopilot::pipeline::INVOCATION_BUDGET;
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, RigOptions, Schema, Serve, assert_migrated, ledger,
    rig_with_fixtures, stripe_files,
};

/// Every event goes through a different schema and encoding, in turn.
fn delivery(i: usize) -> (Schema, Encoding) {
    let schema = Schema::alternate(i);
    let encoding = match i % 4 {
        0 => Encoding::Twice,
        1 => Encoding::Once,
        2 => Encoding::ArrayTwice,
        _ => Encoding::Object,
    };
    (schema, encoding)
}

/// RestoreTimeClean, tail marked by blob metadata (`lrs_tail=true`), under the simulator's default
/// model: the create operation stays `InProgress` until the database is Online. LRS is started
/// once, as soon as the full backup is recorded, and no BackupCreated invocation waits on the
/// operation (each ends within the stated bound); completion is sent while the create operation
/// still runs, once LRS reports the tail restored, and the database ends `Online`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_time_clean_migrates_to_online_in_process() {
    migrate_clean_in_process(None).await;
}

/// The same under the short model: the create operation succeeds after a few simulated seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_time_clean_migrates_to_online_in_process_with_short_operations() {
    migrate_clean_in_process(Some(5.0)).await;
}

async fn migrate_clean_in_process(operation_secs: Option<f64>) {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        operation_secs,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let folder = "RestoreTimeClean";
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    let endpoint = rig.endpoint();

    let mut slowest = std::time::Duration::ZERO;
    for (i, blob) in uploaded.iter().enumerate() {
        let (schema, encoding) = delivery(i);
        let began = std::time::Instant::now();
        let reply = endpoint.deliver(&rig.event(blob, schema), encoding).await;
        slowest = slowest.max(began.elapsed());
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(
            reply
                .log_text()
                .starts_with(&format!("recorded {}/{folder}/{}", rig.backups, blob.name)),
            "{reply:?}"
        );
        if i == 0 {
            // The full backup alone is a sound chain: LRS starts at once.
            let l = ledger(&rig.requests(), folder);
            assert_eq!(
                l.starts_accepted, 1,
                "LRS started on the full backup: {l:?}"
            );
        }
    }
    eprintln!("slowest BackupCreated invocation ({operation_secs:?}): {slowest:?}");
    assert!(
        slowest < INVOCATION_BUDGET,
        "a BackupCreated invocation took {slowest:?}, over the {INVOCATION_BUDGET:?} bound"
    );
    let state = rig.state_of(folder).await.expect("a state document");
    assert_eq!(state.phase, Phase::CutoverPending, "{:?}", state.reason);
    let tail = state.tail.as_ref().expect("the tail is recognised");
    assert_eq!(tail.file_name, CLEAN_TAIL);
    assert_eq!(tail.source, TailSource::Metadata);
    if operation_secs.is_none() {
        assert!(
            state.lrs.start_operation.is_some(),
            "the running create operation is recorded for the timer: {:?}",
            state.lrs
        );
    }
    assert!(
        state.lrs.complete_claimed_at.is_none(),
        "no completion before LRS restored the tail"
    );

    let done = rig
        .drive(endpoint, folder, 40, |s| s.phase == Phase::Completed)
        .await;
    assert!(done.lrs.online_at.is_some());
    assert!(done.lrs.tail_restored_at.is_some());
    assert!(
        done.lrs.tail_restored_at <= done.lrs.complete_sent_at,
        "completion followed the tail's restore"
    );
    assert_migrated(&rig, folder, folder, &CLEAN, CLEAN_TAIL).await;
    if operation_secs.is_none() {
        // In this model the create operation runs until Online: completeRestore went out while it
        // ran, and the timer had polled it (once per due tick) before.
        let requests = rig.requests();
        let complete_at = requests
            .iter()
            .position(|r| r.method == "POST" && r.path.ends_with("/completeRestore"))
            .expect("a completeRestore");
        assert!(
            requests[..complete_at].iter().any(|r| r.method == "GET"
                && (r.path.contains("managedDatabaseAzureAsyncOperation")
                    || r.path.contains("managedDatabaseOperationResults"))),
            "the create operation was polled before completion"
        );
    }

    // What LRS restored (its last restoreDetails before completion): the full, the differential
    // and the logs after it, the tail last.
    let view = rig
        .recorder
        .last_view(folder)
        .expect("restoreDetails was read");
    for restored in [
        "RestoreTimeClean.bak",
        "RestoreTimeClean2.bak",
        "RestoreTimeClean2_1.trn",
        "RestoreTimeClean2_2.trn",
        CLEAN_TAIL,
    ] {
        assert!(
            view.sets
                .contains(&(restored.to_owned(), "Restored".to_owned())),
            "{restored} restored: {:?}",
            view.sets
        );
    }

    // The start asked for the folder's URL, without a query string, and the full's collation.
    let put = rig
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a start request");
    let props = &put.body["properties"];
    assert_eq!(
        props["storageContainerUri"],
        format!("{}/{}/{folder}", rig.account, rig.backups)
    );
    assert_eq!(props["storageContainerIdentity"], "ManagedIdentity");
    assert_eq!(props["collation"], "SQL_Latin1_General_CP1_CI_AS");
    assert_eq!(props["autoCompleteRestore"], false);
}

/// The same chain through the built binary, configured only by `LRS_*` variables and started as
/// the Functions host starts it; the tail is recognised by `LRS_TAIL_PATTERN`, LRS is given a
/// read+list SAS, and the binary's logs never show either SAS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_time_clean_migrates_to_online_through_the_binary() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        tail_pattern: Some("*2_3.trn".into()),
        lrs_sas: true,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let folder = "RestoreTimeClean";
    let uploaded = rig.upload_clean(&fixtures, folder, false).await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    let (serve, _) = Serve::start(binary, &rig.env()).await;

    for (i, blob) in uploaded.iter().enumerate() {
        let (schema, encoding) = delivery(i + 1);
        let reply = serve
            .endpoint
            .deliver(&rig.event(blob, schema), encoding)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let state = rig.state_of(folder).await.expect("a state document");
    assert_eq!(state.phase, Phase::CutoverPending, "{:?}", state.reason);
    assert_eq!(
        state
            .tail
            .as_ref()
            .map(|t| (t.file_name.as_str(), t.source)),
        Some((CLEAN_TAIL, TailSource::Pattern))
    );
    // The binary runs on the real clock; only the simulator's time is moved.
    let done = rig
        .drive(&serve.endpoint, folder, 40, |s| s.phase == Phase::Completed)
        .await;
    assert!(done.lrs.online_at.is_some());
    assert_migrated(&rig, folder, folder, &CLEAN, CLEAN_TAIL).await;

    let put = rig
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a start request");
    assert_eq!(
        put.body["properties"]["storageContainerIdentity"],
        "SharedAccessSignature"
    );

    let logs = serve.kill();
    assert!(
        logs.contains("lrs started"),
        "the binary logged its work at debug: {logs}"
    );
    let account_sas = rig.account_url.split_once('?').expect("a SAS").1.to_owned();
    let lrs_sas = rig.lrs_sas.clone().expect("an LRS SAS");
    for secret in pipeline_support::signature_forms(&account_sas)
        .into_iter()
        .chain(pipeline_support::signature_forms(&lrs_sas))
    {
        assert!(
            !logs.contains(&secret),
            "a SAS signature is in the binary's logs"
        );
    }
}

/// `sql2008-backups/RestoreTimeStripe` flattened into one folder holds two databases (both named
/// RestoreTimeStripe, from different servers) and log backups striped over two files, which LRS
/// cannot restore, so it can never reach `Online`. Delivered in name order, the first striped full
/// backup is a sound start: LRS starts once; then the pipeline records every file, blocks with both
/// findings, and never completes or deletes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_time_stripe_flattened_blocks_after_one_start_and_never_completes() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "RestoreTimeStripe";
    let files = stripe_files(&fixtures);
    assert_eq!(files.len(), 32);
    let mut names = Vec::new();
    for (i, (name, path)) in files.iter().enumerate() {
        let blob = rig.upload_file(folder, name, path, &BTreeMap::new()).await;
        let (schema, encoding) = delivery(i);
        let reply = rig
            .endpoint()
            .deliver(&rig.event(&blob, schema), encoding)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        names.push(name.clone());
    }
    // Past the settling grace, the findings block.
    let state = rig
        .drive(rig.endpoint(), folder, 30, |s| s.phase == Phase::Blocked)
        .await;
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !state.files.contains_key(*n))
        .collect();
    assert!(missing.is_empty(), "files lost: {missing:?}");
    let codes: Vec<FindingCode> = state.findings().iter().map(|f| f.code).collect();
    assert!(codes.contains(&FindingCode::MultipleDatabases), "{codes:?}");
    assert!(codes.contains(&FindingCode::SplitLogBackup), "{codes:?}");
    assert!(state.reason.is_some(), "a blocked database says why");
    let l = ledger(&rig.requests(), folder);
    assert_eq!((l.start_attempts, l.starts_accepted), (1, 1), "{l:?}");
    assert_eq!(l.deletes, 0, "{l:?}");
    assert!(l.completes_accepted.is_empty(), "{l:?}");
    assert!(
        !rig.requests()
            .iter()
            .any(|r| r.path.ends_with("/completeRestore"))
    );
}

/// The striped full backup of RestoreTimeStripe (two stripes, one per original folder) is a sound
/// start: LRS is started once only when both stripes are there, and restores the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_time_stripe_full_backup_starts_once_both_stripes_arrived() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "RestoreTimeStripe";
    let files: BTreeMap<String, std::path::PathBuf> = stripe_files(&fixtures).into_iter().collect();
    let stripes = ["RestoreTimeStripe2.bak", "RestoreTimeStripe2a.bak"];
    for (i, name) in stripes.iter().enumerate() {
        let blob = rig
            .upload_file(folder, name, &files[*name], &BTreeMap::new())
            .await;
        let reply = rig
            .endpoint()
            .deliver(&rig.event(&blob, Schema::CloudEvents), Encoding::Twice)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let l = ledger(&rig.requests(), folder);
        assert_eq!(
            l.starts_accepted, i,
            "no start with one stripe of two; one start with both: {l:?}"
        );
    }
    let state = rig
        .drive(rig.endpoint(), folder, 30, |s| {
            s.lrs
                .snapshot
                .as_ref()
                .is_some_and(|snap| snap.last_restored_file.is_some())
        })
        .await;
    assert_eq!(state.phase, Phase::Restoring, "{:?}", state.reason);
    let details = rig.sim.restore_details(folder).await;
    assert_eq!(
        details
            .full_backup_sets
            .iter()
            .map(|s| (s.number_of_stripes, s.status.to_string()))
            .collect::<Vec<_>>(),
        [(Some(2), "Restored".to_owned())]
    );
    assert_eq!(ledger(&rig.requests(), folder).starts_accepted, 1);
}

/// Issue 14 item 3: once this instance has the folder's state document (it wrote it), a new file
/// whose event gives its ETag and size costs the head and tail reads, at once, and one conditional
/// write; a redelivered event costs one read of the document and no blob read. A document another
/// instance changed meanwhile costs a conflict and a re-read, never a lost file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_costs_three_storage_calls_and_a_redelivery_one() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        count_state: true,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let folder = "Calls";
    let uploaded = rig.upload_clean(&fixtures, folder, false).await;
    let endpoint = rig.endpoint();
    let deliver = |i: usize, endpoint: &pipeline_support::Endpoint| {
        let event = rig.event(&uploaded[i], Schema::alternate(i));
        let endpoint = endpoint.clone();
        async move {
            let reply = endpoint.deliver(&event, Encoding::Twice).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.log_text()
        }
    };
    let state = rig.wrapped_state.clone().expect("the counted state store");
    let calls = || {
        (
            rig.blobs.snapshot().0,
            state.calls.load(std::sync::atomic::Ordering::SeqCst),
        )
    };
    // The full backup starts LRS (the slot, the name check, the index: not counted here).
    deliver(0, endpoint).await;
    assert_eq!(
        rig.state_of(folder).await.map(|s| s.phase),
        Some(Phase::Restoring)
    );

    let before = calls();
    let log = deliver(1, endpoint).await;
    let after = calls();
    assert!(log.contains("recorded"), "{log}");
    assert_eq!(after.0 - before.0, 2, "the head and tail reads only");
    assert_eq!(after.1 - before.1, 1, "one conditional write");

    let log = deliver(1, endpoint).await;
    let again = calls();
    assert!(log.contains("already recorded"), "{log}");
    assert_eq!((again.0 - after.0, again.1 - after.1), (0, 1));

    // Another instance records a file: this instance's cached ETag is stale now.
    let other = pipeline_support::InProcess::serve(rig.pipeline()).await;
    deliver(2, &other.endpoint).await;
    let log = deliver(3, endpoint).await;
    assert!(log.contains("recorded"), "{log}");
    let doc = rig.state_of(folder).await.expect("a state document");
    for file in &uploaded[..4] {
        assert!(
            doc.files.contains_key(&file.name),
            "{} is recorded",
            file.name
        );
    }
    assert!(rig.handler.pipeline.metrics().state_conflicts.get() >= 1);
}

/// An event for a version that has since been overwritten (a re-upload): the version the event
/// names cannot be read any more, so the current one is read and recorded with its own ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_an_overwritten_version_records_the_current_one() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "Overwritten";
    let dir = pipeline_support::clean_dir(&fixtures);
    let read = |name: &str| bytes::Bytes::from(std::fs::read(dir.join(name)).expect("a fixture"));
    let meta = BTreeMap::new();
    let old = rig.upload(folder, CLEAN[1], read(CLEAN[2]), &meta).await;
    let current = rig.upload(folder, CLEAN[1], read(CLEAN[1]), &meta).await;
    assert_ne!(old.etag, current.etag);
    let reply = rig
        .endpoint()
        .deliver(&rig.event(&old, Schema::EventGrid), Encoding::Twice)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let doc = rig.state_of(folder).await.expect("a state document");
    let record = &doc.files[CLEAN[1]];
    assert_eq!(record.etag.as_ref(), Some(&current.etag.0));
    assert_eq!(record.file.size, current.size);
}
