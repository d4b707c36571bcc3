//! `serve` exports its spans over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: a local
//! collector stand-in (a plain HTTP server recording what it is sent) receives them, with the
//! invocation id, and the binary flushes on SIGTERM.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;

type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn record(State(seen): State<Seen>, uri: Uri, body: Bytes) -> &'static str {
    seen.lock()
        .expect("lock")
        .push((uri.path().to_owned(), body.to_vec()));
    ""
}

/// `GET /` with an invocation id header, over a plain socket.
async fn get_health(port: u16) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Azure-Functions-InvocationId: inv-otlp-1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_invocation_spans_over_otlp_http() {
    let seen: Seen = Arc::default();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let collector_addr = collector.local_addr().expect("addr");
    let app = Router::new().fallback(record).with_state(seen.clone());
    tokio::spawn(async move {
        let _ = axum::serve(collector, app).await;
    });

    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lrs-autopilot"))
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("LRS_ARM_ENDPOINT", "http://127.0.0.1:9")
        .env("LRS_SUBSCRIPTION_ID", "sub")
        .env("LRS_RESOURCE_GROUP", "rg")
        .env("LRS_MANAGED_INSTANCE", "mi")
        .env(
            "LRS_STORAGE_ACCOUNT_URL",
            "http://127.0.0.1:9/devstoreaccount1?sv=2021-01-01&sig=NOTASECRET",
        )
        .env("LRS_CONTAINERS", "sqlfiles")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts");

    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        match get_health(port).await {
            Ok(answer) => break answer,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("serve never answered: {e}"),
        }
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // SIGTERM: the server shuts down gracefully and the providers flush.
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let traces: Vec<Vec<u8>> = seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|(path, _)| path == "/v1/traces")
            .map(|(_, body)| body.clone())
            .collect();
        // OTLP protobuf carries attribute values as plain bytes: the invocation id shows through.
        if traces
            .iter()
            .any(|b| b.windows(10).any(|w| w == b"inv-otlp-1"))
        {
            let all: Vec<u8> = seen
                .lock()
                .expect("lock")
                .iter()
                .flat_map(|(_, b)| b.clone())
                .collect();
            assert!(
                !all.windows(10).any(|w| w == b"NOTASECRET"),
                "a SAS reached the collector"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no span with the invocation id reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
