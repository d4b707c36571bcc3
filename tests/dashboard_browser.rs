//! The dashboard of a live rehearsal of the demo estate, over HTTP and in headless Chromium.
//!
//! The estate is the one `lrs-autopilot demo` writes, plus a file named like markup in HrDb. The
//! rehearsal runs with a tail pattern that matches nothing, so SalesDb and InventoryDb stay
//! `Restoring` until an operator declares the tail-log backup: the browser test does that from the
//! page. The browser part needs Debian's /usr/bin/chromium and `playwright-core` (npm ci): under
//! CI=true their absence fails the test, elsewhere it skips with a message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOSTILE: &str = "<img src=x onerror=alert(1)>.trn";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lrs-autopilot")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `rehearse --dashboard`, killed on drop.
struct Rehearsal {
    child: Child,
    url: String,
    _root: tempfile::TempDir,
}

impl Drop for Rehearsal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_estate() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let out = Command::new(bin())
        .args(["demo", "--json", "--out"])
        .arg(root.path())
        .output()
        .expect("run demo");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        root.path().join("HrDb").join(HOSTILE),
        b"<html>not a backup",
    )
    .expect("write the hostile file");
    root
}

fn start() -> Rehearsal {
    let root = demo_estate();
    let mut child = Command::new(bin())
        .arg("rehearse")
        .arg(root.path())
        .args([
            "--tail-pattern",
            "no-tail-is-named-this",
            "--dashboard",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rehearse --dashboard");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent {
                if let Some(rest) = line.strip_prefix("dashboard: ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                    sent = true;
                }
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("rehearse printed the dashboard's address");
    Rehearsal {
        child,
        url,
        _root: root,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Polls the JSON endpoint until the demo estate has settled into its phases.
async fn settled(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = client
            .get(format!("{url}dashboard.json"))
            .send()
            .await
            .expect("GET json")
            .text()
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let phase = |f: &str| {
            v["databases"]
                .as_array()
                .and_then(|a| a.iter().find(|d| d["folder"] == f))
                .map(|d| d["phase"].as_str().unwrap_or_default().to_owned())
        };
        let want = [
            ("SalesDb", "Restoring"),
            ("InventoryDb", "Restoring"),
            ("OrdersDb", "Blocked"),
            ("HrDb", "Blocked"),
            ("AnalyticsDb", "Blocked"),
        ];
        let restored = v["databases"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["folder"] == "SalesDb"))
            .is_some_and(|d| d["files_restored"] == 5);
        if restored && want.iter().all(|(f, p)| phase(f).as_deref() == Some(*p)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the estate did not settle: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn the_page_is_escaped_strict_and_refuses_cross_site_cutovers() {
    let r = start();
    rt().block_on(async {
        let client = reqwest::Client::new();
        let estate = settled(&client, &r.url).await;
        let sales = estate["databases"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["folder"] == "SalesDb"))
            .expect("SalesDb");
        assert_eq!(sales["cutover"]["log_backups"][0], "SalesDb_05_tail.trn");
        assert!(
            estate["databases"]
                .as_array()
                .expect("list")
                .iter()
                .all(|d| d["folder"] == "SalesDb" || d["folder"] == "InventoryDb" || d["cutover"].is_null()),
            "no cutover is offered for blocked databases"
        );

        let page = client.get(&r.url).send().await.expect("GET page");
        let csp = page
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        let html = page.text().await.expect("html");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.trn"), "escaped name shown");
        assert!(!html.contains("<img"), "no markup from a file name");
        assert!(!html.contains("<script>") && !html.contains(" style="), "no inline script or style");
        let token = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the form carries a token")
            .to_owned();

        // The page's weight, without JavaScript needed to see it.
        let mut bytes = html.len();
        for asset in ["dashboard.css", "dashboard.js"] {
            bytes += client
                .get(format!("{}assets/{asset}", r.url))
                .send()
                .await
                .expect("asset")
                .bytes()
                .await
                .expect("bytes")
                .len();
        }
        eprintln!("dashboard page for the demo estate: {} bytes HTML, {bytes} bytes with CSS and JS", html.len());
        assert!(bytes < 100_000, "the page stays small: {bytes} bytes");

        let origin = r.url.trim_end_matches('/').to_owned();
        let form = |confirm: &str, token: &str| {
            format!(
                "csrf={token}&container=rehearsal&folder=SalesDb&lastBackupName=SalesDb_05_tail.trn&confirm={confirm}"
            )
        };
        let post = |origin: Option<&str>, body: String| {
            let mut req = client
                .post(format!("{}cutover", r.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            req.send()
        };
        let status = |r: reqwest::Response| r.status().as_u16();
        assert_eq!(status(post(None, form("SalesDb", &token)).await.expect("post")), 403, "no Origin");
        assert_eq!(
            status(post(Some("http://evil.example"), form("SalesDb", &token)).await.expect("post")),
            403,
            "another site's form"
        );
        assert_eq!(status(post(Some(&origin), form("SalesDb", "0000")).await.expect("post")), 403, "bad token");
        assert_eq!(status(post(Some(&origin), form("salesdb", &token)).await.expect("post")), 400, "name not typed exactly");
        let get = client.get(format!("{}cutover", r.url)).send().await.expect("get");
        assert_eq!(get.status().as_u16(), 405, "GET changes nothing");
        let rebinding = client
            .get(&r.url)
            .header("host", "evil.example:8090")
            .send()
            .await
            .expect("get");
        assert_eq!(rebinding.status().as_u16(), 421, "a foreign Host is refused");
        // After all of that, SalesDb still waits for a real cutover.
        let after = settled(&client, &r.url).await;
        let tail = after["databases"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["folder"] == "SalesDb"))
            .map(|d| d["tail"]["state"].clone());
        assert_eq!(tail, Some(serde_json::json!("not_taken")));
    });
}

fn browser_ready() -> Option<String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing = |what: &str| {
        if ci {
            panic!("CI=true and {what} is missing: .ci/run installs it");
        }
        eprintln!(
            "skipping the browser test: {what} is missing (apt-get install chromium; npm ci)"
        );
        None
    };
    if !Path::new("/usr/bin/chromium").exists() {
        return missing("/usr/bin/chromium");
    }
    if !repo().join("node_modules/playwright-core").exists() {
        return missing("node_modules/playwright-core");
    }
    Some("node".to_owned())
}

#[test]
fn the_demo_estate_in_headless_chromium() {
    let Some(node) = browser_ready() else { return };
    let r = start();
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let out = Command::new(node)
        .arg(repo().join("tests/browser/dashboard.mjs"))
        .current_dir(repo())
        .env("DASHBOARD_URL", &r.url)
        .env("SCREENSHOT", &shot)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser checks passed"), "{stdout}");
    let png = std::fs::read(&shot).expect("the screenshot was saved");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    eprintln!("screenshot: {}", shot.display());
}
