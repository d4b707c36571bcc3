//! What `serve` logs, as the Functions host records it (stdout): input cannot forge a log line in
//! either format, and a storage 403 is logged as a configuration error that the alert rule matches.

mod pipeline_support;
mod support;

use pipeline_support::{
    CLEAN, Encoding, RigOptions, Schema, Serve, blob_created_at, rig_with_fixtures,
};

const FORGED: &str = "2026-12-02T00:00:00.000000Z ERROR lrs_autopilot: database blocked db=Forged";

/// An event id, a message id, a blob name and operator input carrying a newline and a terminal
/// escape: in the text format every line still starts with a timestamp and no forged line appears;
/// in the JSON format every line is one JSON object. The escaped forms are there instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_cannot_forge_log_lines_in_either_format() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let blob = rig.upload_clean_full(&fixtures, "Logs", CLEAN[0]).await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    for format in ["text", "json"] {
        let mut env = rig.env();
        env.retain(|(k, _)| k != "RUST_LOG");
        env.push(("RUST_LOG".into(), "lrs_autopilot=info".into()));
        env.push(("LRS_LOG_FORMAT".into(), format.into()));
        let (serve, _) = Serve::start(binary, &env).await;
        let mut event = rig.event(&blob, Schema::EventGrid);
        event["id"] = format!("evil\n{FORGED}\u{1b}[2J").into();
        let reply = serve.endpoint.deliver(&event, Encoding::Twice).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let url = format!("{}/{}/Logs/x%0A{}.bak", rig.account, rig.backups, "y");
        let refused = serve
            .endpoint
            .deliver(
                &blob_created_at(&url, &blob, Schema::CloudEvents),
                Encoding::Once,
            )
            .await;
        assert_eq!(refused.status, 200, "{refused:?}");
        let (status, _) = serve
            .endpoint
            .migrations("POST", Some(&format!("x\n{FORGED}")), Some("pause"), None)
            .await;
        assert_eq!(status, 404);
        let logs = serve.kill();
        let lines: Vec<&str> = logs.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines.len() >= 3, "{format}: {logs}");
        assert!(
            !logs.contains('\u{1b}'),
            "{format}: a raw escape reached the log"
        );
        for line in &lines {
            assert!(!line.starts_with(FORGED), "{format}: forged line: {logs}");
            match format {
                "json" => {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|e| panic!("{format}: not one JSON object ({e}): {line}"));
                }
                _ => assert!(
                    line.starts_with("20") && line.as_bytes().get(4) == Some(&b'-'),
                    "{format}: a line that does not start with a timestamp: {line:?}\n{logs}"
                ),
            }
        }
        assert!(
            logs.contains("evil"),
            "{format}: the event id is logged: {logs}"
        );
    }
}

/// Storage refusing access (a SAS whose signature is wrong): the event fails for the host to
/// retry and dead-letter, and the log says "storage access refused", which the alert rule
/// `storage-access-refused` matches; the Migrations API answers a JSON configuration error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_403_is_logged_as_a_configuration_error() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let blob = rig.upload_clean_full(&fixtures, "Denied", CLEAN[0]).await;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    let mut env = rig.env();
    let (_, query) = rig.account_url.split_once('?').expect("a SAS");
    let broken: String = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let v = if k == "sig" {
                "AAAA".repeat(11)
            } else {
                v.into_owned()
            };
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    env.retain(|(k, _)| k != "LRS_STORAGE_ACCOUNT_URL");
    env.push((
        "LRS_STORAGE_ACCOUNT_URL".into(),
        format!("{}?{broken}", rig.account),
    ));
    let (serve, _) = Serve::start(binary, &env).await;
    let reply = serve
        .endpoint
        .deliver(&rig.event(&blob, Schema::EventGrid), Encoding::Once)
        .await;
    assert_eq!(reply.status, 500, "{reply:?}");
    let (status, body) = serve.endpoint.migrations("GET", None, None, None).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("configuration error")),
        "{body}"
    );
    let logs = serve.kill();
    assert!(logs.contains("storage access refused"), "{logs}");
    assert!(rig.raw_states().await.is_empty());
}
