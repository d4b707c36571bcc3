//! Hostile and broken input over real HTTP: events for blobs outside the account, nested paths, a
//! foreign database's file, a PostgreSQL dump named `.bak`, a file that is still being written, and
//! messages that are not events at all. Each gets a clear answer, never a panic, and only the
//! right things are read.

mod pipeline_support;
mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use lrs_autopilot::chain::{FailureKind, FileRead, FindingCode};
use lrs_autopilot::migration::Phase;
use pipeline_support::{
    CLEAN, Encoding, Rig, RigOptions, Schema, Trap, blob_created_at, clean_dir, ledger,
    postgres_dump, rig_with_fixtures,
};
use serde_json::json;

fn no_meta() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// Events whose URL is in another account (another host, port or account path, a look-alike
/// prefix), another container, or uses path tricks: refused with 200 and a log line that says
/// why, and nothing is read: no call reaches the pipeline's blob store, and a listener standing in
/// for the other account sees no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_another_account_is_refused_without_reading_anything() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let blob = rig
        .upload_clean_full(&fixtures, "db1", "RestoreTimeClean.bak")
        .await;
    let trap = Trap::start().await;
    let path = format!("{}/db1/RestoreTimeClean.bak", rig.backups);
    let azurite_host = rig.account.trim_end_matches("/devstoreaccount1").to_owned();
    let cases = [
        (
            format!("{}/devstoreaccount1/{path}", trap.base),
            "another storage account",
        ),
        (
            format!("{azurite_host}/devstoreaccount2/{path}"),
            "another storage account",
        ),
        (
            format!("{azurite_host}/devstoreaccount1x/{path}"),
            "another storage account",
        ),
        (
            format!("https://evil.blob.core.windows.net/{path}"),
            "another storage account",
        ),
        (
            format!("{}/other-container/db1/RestoreTimeClean.bak", rig.account),
            "does not watch",
        ),
        (
            format!("{}/{}/RestoreTimeClean.bak", rig.account, rig.backups),
            "not inside a database folder",
        ),
        (
            // URL parsing resolves `%2e%2e` first: this names `<container>/x.bak`.
            format!("{}/{}/db1/%2e%2e/x.bak", rig.account, rig.backups),
            "not inside a database folder",
        ),
        (
            format!("{}/{}/.hidden/x.bak", rig.account, rig.backups),
            "starts with '.'",
        ),
        ("not a url at all".to_owned(), "malformed"),
    ];
    let before = rig.blobs.snapshot();
    for (i, (url, why)) in cases.iter().enumerate() {
        let reply = rig
            .endpoint()
            .deliver(
                &blob_created_at(url, &blob, Schema::alternate(i)),
                Encoding::Twice,
            )
            .await;
        assert_eq!(reply.status, 200, "a refusal is not retried: {reply:?}");
        let logs = reply.log_text();
        assert!(logs.starts_with("refused: "), "{url}: {logs}");
        assert!(logs.contains(why), "{url}: {logs}");
    }
    assert_eq!(rig.blobs.snapshot(), before, "no blob was touched");
    assert_eq!(
        trap.connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the other account was never contacted"
    );
    assert!(rig.raw_states().await.is_empty(), "no state was written");
    assert!(rig.requests().is_empty(), "no ARM call");
    assert_eq!(
        rig.handler.pipeline.metrics().events_rejected.get(),
        cases.len() as u64
    );
}

/// A backup in a subfolder of the database folder (`db/FULL/x.bak`): LRS does not look into
/// subfolders, so the file is recorded with a `nested_path` finding and LRS is not started on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_path_is_recorded_as_a_finding() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let blob = rig
        .upload_clean_full(&fixtures, "Nested", "FULL/RestoreTimeClean.bak")
        .await;
    let reply = rig
        .endpoint()
        .deliver(&rig.event(&blob, Schema::EventGrid), Encoding::Twice)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let state = rig.state_of("Nested").await.expect("the folder's state");
    assert!(state.files.contains_key("FULL/RestoreTimeClean.bak"));
    let nested = state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::NestedPath)
        .unwrap_or_else(|| panic!("a nested_path finding: {:?}", state.findings()));
    assert_eq!(nested.files, ["FULL/RestoreTimeClean.bak"]);
    assert!(nested.message.contains("Nested"), "{}", nested.message);
    assert_ne!(state.phase, Phase::Starting);
    assert_eq!(ledger(&rig.requests(), "Nested").start_attempts, 0);
}

/// A log backup of another database dropped into a folder that is migrating: recorded, reported
/// as `multiple_databases` naming the file, and the migration blocks rather than completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_database_file_blocks_the_folder() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "RestoreTimeClean";
    let uploaded = rig.upload_clean(&fixtures, folder, false).await;
    let foreign = fixtures
        .join("appveyor-lab/sql2008-backups/DBWithoutOwner/FULL")
        .join("SQL2008_DBWithoutOwner_FULL_20170518_041741.bak");
    let stray = rig
        .upload_file(
            folder,
            "SQL2008_DBWithoutOwner_FULL.bak",
            &foreign,
            &no_meta(),
        )
        .await;
    for blob in uploaded.iter().chain([&stray]) {
        let reply = rig
            .endpoint()
            .deliver(&rig.event(blob, Schema::CloudEvents), Encoding::Once)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let state = rig
        .drive(rig.endpoint(), folder, 40, |s| s.phase == Phase::Blocked)
        .await;
    let finding = state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::MultipleDatabases)
        .unwrap_or_else(|| panic!("multiple_databases: {:?}", state.findings()));
    assert!(
        finding
            .files
            .contains(&"SQL2008_DBWithoutOwner_FULL.bak".to_owned()),
        "{finding:?}"
    );
    assert!(state.reason.is_some());
    let l = ledger(&rig.requests(), folder);
    assert!(l.completes_accepted.is_empty(), "{l:?}");
    assert_eq!(l.deletes, 0);
    assert!(l.starts_accepted <= 1, "{l:?}");
}

/// A PostgreSQL dump named `AdventureWorksLT2017.bak`: read, recorded as not a backup with a
/// finding, and LRS is never started for its folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_dump_is_recorded_as_not_a_backup() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let blob = rig
        .upload_file(
            "AdventureWorks",
            "AdventureWorksLT2017.bak",
            &postgres_dump(&fixtures),
            &no_meta(),
        )
        .await;
    let reply = rig
        .endpoint()
        .deliver(&rig.event(&blob, Schema::EventGrid), Encoding::Twice)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Past the settling grace, and a timer pass.
    rig.advance(lrs_autopilot::migration::SETTLE_GRACE + time::Duration::minutes(1));
    assert_eq!(rig.endpoint().timer().await.status, 200);
    let state = rig.state_of("AdventureWorks").await.expect("state");
    let record = &state.files["AdventureWorksLT2017.bak"];
    assert!(
        matches!(
            record.file.read,
            FileRead::Failed {
                kind: FailureKind::NotABackup,
                ..
            }
        ),
        "{:?}",
        record.file.read
    );
    assert!(
        !record.pending,
        "a file that is not a backup is not waited for"
    );
    assert!(
        state
            .findings()
            .iter()
            .any(|f| f.code == FindingCode::NotABackup),
        "{:?}",
        state.findings()
    );
    assert!(matches!(state.phase, Phase::Waiting | Phase::Blocked));
    assert_eq!(ledger(&rig.requests(), "AdventureWorks").start_attempts, 0);
}

/// A full backup whose upload is cut short, then completed: first by a new upload and its event,
/// then (in a second folder) by an overwrite with no event, which the timer finds by re-reading
/// the pending file. LRS starts only on the complete file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_that_later_becomes_complete() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let full = std::fs::read(clean_dir(&fixtures).join(CLEAN[0])).expect("fixture");
    let half = Bytes::copy_from_slice(full.get(..full.len() / 2).expect("half"));

    for (folder, second_event) in [("ByEvent", true), ("ByTimer", false)] {
        let truncated = rig.upload(folder, CLEAN[0], half.clone(), &no_meta()).await;
        let reply = rig
            .endpoint()
            .deliver(&rig.event(&truncated, Schema::EventGrid), Encoding::Twice)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let state = rig.state_of(folder).await.expect("state");
        let record = &state.files[CLEAN[0]];
        assert!(
            record.pending,
            "{folder}: a truncated backup waits to be re-read: {:?}",
            record.file.read
        );
        assert_eq!(state.phase, Phase::Waiting, "{folder}");
        assert_eq!(ledger(&rig.requests(), folder).start_attempts, 0);

        let complete = rig
            .upload(folder, CLEAN[0], Bytes::from(full.clone()), &no_meta())
            .await;
        if second_event {
            let reply = rig
                .endpoint()
                .deliver(&rig.event(&complete, Schema::CloudEvents), Encoding::Once)
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
        } else {
            rig.advance(pipeline_support::TICK);
            let reply = rig.endpoint().timer().await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        let state = rig.state_of(folder).await.expect("state");
        let record = &state.files[CLEAN[0]];
        assert!(!record.pending, "{folder}: {:?}", record.file.read);
        assert!(matches!(record.file.read, FileRead::Read { .. }));
        assert_eq!(
            record.etag.as_deref(),
            Some(complete.etag.0.as_str()),
            "{folder}: the complete version is recorded"
        );
        let l = ledger(&rig.requests(), folder);
        assert_eq!(l.starts_accepted, 1, "{folder}: {l:?}");
    }
}

/// Messages that are not events fail with 400 and a log line that says so (the host retries them
/// and Service Bus dead-letters them); events that are not for us are answered 200 and ignored;
/// unknown metadata is ignored. None of them reads a blob or calls ARM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_envelopes_and_messages() {
    let rig = Rig::new(RigOptions::default()).await;
    let endpoint = rig.endpoint();
    let meta = json!({"MessageId": "\"m-1\"", "DeliveryCount": "3"});
    let bad = [
        ("BackupCreated", "not json".to_owned(), "not a Functions invocation"),
        ("BackupCreated", "{\"Data\":".to_owned(), "not a Functions invocation"),
        ("BackupCreated", "[1,2]".to_owned(), "not a Functions invocation"),
        ("BackupCreated", json!({"Metadata": meta}).to_string(), "carries no message"),
        (
            "BackupCreated",
            json!({"Data": {"message": "\"{\\\"hello\\\":\\\"world\\\"}\""}, "Metadata": meta}).to_string(),
            "not an Event Grid or CloudEvents event",
        ),
        (
            "BackupCreated",
            json!({"Data": {"message": "just text"}, "Metadata": meta}).to_string(),
            "not an Event Grid or CloudEvents event",
        ),
        (
            "BackupCreated",
            json!({"Data": {"message": [{"id": "1"}, {"id": "2"}]}, "Metadata": meta}).to_string(),
            "an array of 2 items",
        ),
        (
            "BackupCreated",
            json!({"Data": {"message": {"id": "e1", "eventType": "Microsoft.Storage.BlobCreated", "data": {}}}}).to_string(),
            "no usable data.url",
        ),
        (
            "BackupCreated",
            json!({"Data": {"message": {"eventType": "Microsoft.Storage.BlobCreated", "data": {"url": "x"}}}}).to_string(),
            "no id field",
        ),
        ("CutoverTimer", "<timer/>".to_owned(), "not a Functions invocation"),
        (
            "Migrations",
            json!({"Data": {"req": {"Method": 7}}}).to_string(),
            "the HTTP request binding is malformed",
        ),
    ];
    for (function, body, why) in &bad {
        let reply = endpoint.post(function, body.clone()).await;
        assert_eq!(reply.status, 400, "{function} {body}: {reply:?}");
        let logs = reply.log_text();
        assert!(logs.contains(why), "{function} {body}: {logs}");
        assert!(
            logs.chars().next().is_some_and(|c| !c.is_uppercase()) && !logs.ends_with('.'),
            "lowercase, no trailing period: {logs}"
        );
    }
    let message_id_logged = endpoint.post(bad[4].0, bad[4].1.clone()).await.log_text();
    assert!(message_id_logged.contains("m-1"), "{message_id_logged}");

    // Events that are fine as messages but not for this pipeline: 200, ignored.
    let url = format!("{}/{}/db/x.bak", rig.account, rig.backups);
    let deleted =
        json!({"id": "d1", "eventType": "Microsoft.Storage.BlobDeleted", "data": {"url": url}});
    let empty = json!({"id": "z1", "eventType": "Microsoft.Storage.BlobCreated", "data": {"url": url, "contentLength": 0}});
    let gone = json!({"id": "g1", "type": "Microsoft.Storage.BlobCreated", "specversion": "1.0", "data": {"url": url, "contentLength": 5}});
    for (event, why) in [
        (&deleted, "is not BlobCreated"),
        (&empty, "is empty"),
        (&gone, "no longer exists"),
    ] {
        let reply = endpoint.deliver(event, Encoding::Twice).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(reply.log_text().starts_with("ignored: "), "{reply:?}");
        assert!(reply.log_text().contains(why), "{reply:?}");
    }

    // Unknown metadata of every shape is ignored, and the binding may have another name.
    let odd = json!({
        "Data": {"queueItem": json!(json!(deleted).to_string()).to_string()},
        "Metadata": {"Weird": [1, {"a": null}], "Null": null, "Number": 4.5, "MessageReceiver": {"x": {"y": []}}}
    });
    let reply = endpoint.post("BackupCreated", odd.to_string()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.log_text().contains("is not BlobCreated"), "{reply:?}");

    let (calls, _, _) = rig.blobs.snapshot();
    assert_eq!(
        calls, 1,
        "only the vanished blob's properties were asked for"
    );
    assert!(rig.requests().is_empty(), "no ARM call");
    assert!(rig.raw_states().await.is_empty(), "no state written");
}

/// Event URLs with a percent-encoded `/` (which must not make the folder `nest/sub`), encoded
/// relative segments, a backslash, NUL, a newline, an escape and a name longer than Azure allows:
/// each is answered 200 "refused" with the reason, counted, and nothing is read or written. A
/// 500 would make Service Bus redeliver the message ten times and dead-letter it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_separators_control_characters_and_long_names_are_refused() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    // A real blob at `nest/sub/...`: the encoded form must not reach it as folder `nest/sub`.
    let blob = rig
        .upload_clean_full(&fixtures, "nest", "sub/RestoreTimeClean.bak")
        .await;
    let base = format!("{}/{}", rig.account, rig.backups);
    let long = "a".repeat(1100);
    let cases = [
        (
            format!("{base}/nest%2Fsub/RestoreTimeClean.bak"),
            "encoded '/'",
        ),
        (
            format!("{base}/nest%2fsub/RestoreTimeClean.bak"),
            "encoded '/'",
        ),
        (format!("{base}/db1/%2F..%2F..%2Fx.bak"), "encoded '/'"),
        (format!("{base}/db1%5Cother/x.bak"), "encoded '/'"),
        (format!("{base}/db1/x%00.bak"), "control character"),
        (format!("{base}/db1/x%0A.bak"), "control character"),
        (format!("{base}/db1/x%1B%5B2J.bak"), "control character"),
        (format!("{base}/db1/x%FF.bak"), "not UTF-8"),
        (format!("{base}/db1/{long}.bak"), "at most 1024"),
    ];
    let before = rig.blobs.snapshot();
    for (i, (url, why)) in cases.iter().enumerate() {
        let reply = rig
            .endpoint()
            .deliver(
                &blob_created_at(url, &blob, Schema::alternate(i)),
                Encoding::Twice,
            )
            .await;
        assert_eq!(
            reply.status, 200,
            "{url}: a refusal is not retried: {reply:?}"
        );
        let logs = reply.log_text();
        assert!(logs.starts_with("refused: "), "{url}: {logs}");
        assert!(logs.contains(why), "{url}: {logs}");
        assert!(
            !logs.chars().any(|c| c.is_control() && c != '\n'),
            "{url}: the answer carries no raw control character: {logs:?}"
        );
        assert!(logs.len() < 600, "{url}: the long name is not echoed whole");
    }
    assert_eq!(rig.blobs.snapshot(), before, "no blob was touched");
    let states = rig.raw_states().await;
    assert!(states.is_empty(), "no state was written: {states:?}");
    assert!(rig.requests().is_empty(), "no ARM call");
    assert_eq!(
        rig.handler.pipeline.metrics().events_rejected.get(),
        cases.len() as u64
    );
}

/// A database folder named `SalesBackup` (LRS refuses "backup" in folder names) is Blocked with
/// `reserved_word_in_path` before any start; and `serve` refuses to start when an
/// `LRS_CONTAINERS` entry (`db-backups`) contains the word, naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reserved_word_blocks_a_folder_and_stops_serve() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let folder = "SalesBackup";
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    rig.advance(lrs_autopilot::migration::SETTLE_GRACE + time::Duration::minutes(1));
    assert_eq!(rig.endpoint().timer().await.status, 200);
    let state = rig.state_of(folder).await.expect("state");
    assert_eq!(state.phase, Phase::Blocked, "{:?}", state.audit);
    let finding = state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::ReservedWordInPath)
        .unwrap_or_else(|| panic!("{:?}", state.findings()));
    assert!(finding.message.contains(folder), "{}", finding.message);
    assert_eq!(ledger(&rig.requests(), folder).start_attempts, 0);

    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    let mut env = rig.env();
    env.retain(|(k, _)| k != "LRS_CONTAINERS");
    env.push((
        "LRS_CONTAINERS".into(),
        format!("{},db-backups", rig.backups),
    ));
    let out = std::process::Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "1")
        .envs(env)
        .output()
        .expect("serve runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LRS_CONTAINERS") && stderr.contains("db-backups"),
        "{stderr}"
    );
}
