//! Neither SAS (the one in `LRS_STORAGE_ACCOUNT_URL` that the pipeline reads and writes with, nor
//! the read+list one given to LRS) appears in any log line, state document, handler answer or the
//! Migrations API, over a whole migration and its error paths. In a test binary of its own: it
//! installs a global subscriber to capture every thread's output at TRACE.

mod pipeline_support;
mod support;

use lrs_autopilot::migration::Phase;
use lrs_autopilot::sim::Faults;
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, Rig, RigOptions, Schema, assert_migrated, blob_created_at,
    signature_forms,
};

use support::Captured;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sas_in_logs_state_or_answers() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");

    let rig = Rig::new(RigOptions {
        lrs_sas: true,
        faults: Faults {
            server_error_rate: 0.2,
            seed: 3,
            ..Faults::default()
        },
        ..RigOptions::default()
    })
    .await;
    let folder = "RestoreTimeClean";
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    let endpoint = rig.endpoint();
    let mut answers = Vec::new();
    for (i, blob) in uploaded.iter().enumerate() {
        let (reply, _) = endpoint
            .deliver_until_ok(&rig.event(blob, Schema::alternate(i)), Encoding::Twice)
            .await;
        answers.push(reply.body.to_string());
    }
    // Error paths whose messages carry URLs: a vanished blob, another account, with the SAS
    // appended to the event URL as a careless producer might.
    let query = rig.account_url.split_once('?').expect("a SAS").1.to_owned();
    let vanished = format!("{}/{}/{folder}/gone.trn?{query}", rig.account, rig.backups);
    let foreign = format!("https://evil.blob.core.windows.net/x/y/z.bak?{query}");
    for url in [vanished, foreign] {
        let reply = endpoint
            .deliver(
                &blob_created_at(&url, &uploaded[0], Schema::EventGrid),
                Encoding::Once,
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        answers.push(reply.body.to_string());
    }
    let done = rig
        .drive(endpoint, folder, 60, |s| s.phase == Phase::Completed)
        .await;
    assert_eq!(done.phase, Phase::Completed);
    assert_migrated(&rig, folder, folder, &CLEAN, CLEAN_TAIL).await;
    for (db, action) in [(None, None), (Some(folder), None)] {
        let (status, body) = endpoint.migrations("GET", db, action, None).await;
        assert_eq!(status, 200);
        answers.push(body.to_string());
    }

    // The LRS SAS did reach ARM (the simulator keeps it redacted in its own log).
    let put = rig
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.status == 202)
        .expect("an accepted start");
    assert_eq!(
        put.body["properties"]["storageContainerSasToken"],
        "<redacted>"
    );
    assert_eq!(
        put.body["properties"]["storageContainerIdentity"],
        "SharedAccessSignature"
    );

    let logs = captured.text();
    assert!(
        logs.contains("lrs started"),
        "the pipeline's logs were captured"
    );
    assert!(
        logs.contains(&format!("{}/{folder}/RestoreTimeClean.bak?", rig.backups)),
        "the SDK logs blob URLs, so their query strings must have been sanitised"
    );
    let states = rig.raw_states().await;
    assert!(!states.is_empty());
    let lrs_sas = rig.lrs_sas.clone().expect("an LRS SAS");
    let secrets: Vec<String> = signature_forms(&query)
        .into_iter()
        .chain(signature_forms(&lrs_sas))
        .collect();
    assert!(
        secrets.iter().any(|s| rig.account_url.contains(s.as_str())),
        "the search strings are the SAS as it is written"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a SAS signature is in the logs"
        );
        for (key, doc) in &states {
            assert!(
                !doc.contains(secret.as_str()),
                "a SAS signature is in {key}"
            );
        }
        for answer in &answers {
            assert!(
                !answer.contains(secret.as_str()),
                "a SAS signature is in an answer"
            );
        }
    }
}
