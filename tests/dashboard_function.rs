//! The `Dashboard` and `DashboardAssets` functions through the host's HTTP trigger envelope, over
//! Azurite, the LRS simulator and real backup fixtures: the page and its headers, the JSON, the
//! function key kept out of the page and the logs, and the cutover POST with its checks.

mod pipeline_support;
mod support;

use std::collections::BTreeMap;

use lrs_autopilot::migration::TailSource;
use pipeline_support::{CLEAN_TAIL, Encoding, Endpoint, RigOptions, rig_with_fixtures};
use serde_json::{Value, json};

const FOLDER: &str = "RestoreTimeClean";
const TARGET: &str = "RTC_Target";
const KEY: &str = "s3cr3t-function-key-value";
const ORIGIN: &str = "https://func.azurewebsites.net";

struct Res {
    status: u16,
    headers: Value,
    body: String,
    logs: String,
}

async fn call(api: &Endpoint, function: &str, req: Value) -> Res {
    let invocation = json!({"Data": {"req": req}, "Metadata": {"sys": {"MethodName": function}}});
    let reply = api.post(function, invocation.to_string()).await;
    assert_eq!(
        reply.status, 200,
        "the invocation itself succeeds: {reply:?}"
    );
    let res = &reply.body["Outputs"]["res"];
    Res {
        status: res["statusCode"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("statusCode"),
        headers: res["headers"].clone(),
        body: res["body"].as_str().unwrap_or_default().to_owned(),
        logs: reply.log_text(),
    }
}

fn get(query: Value) -> Value {
    let mut url = format!("{ORIGIN}/api/dashboard?code={KEY}");
    if let Some(f) = query.get("format").and_then(Value::as_str) {
        url.push_str("&format=");
        url.push_str(f);
    }
    let mut q = query.as_object().cloned().unwrap_or_default();
    q.insert("code".into(), json!(KEY));
    json!({"Url": url, "Method": "GET", "Query": q, "Headers": {"Accept": ["text/html"]}, "Params": {}})
}

fn post(origin: Option<&str>, form: &str) -> Value {
    let mut headers = serde_json::Map::new();
    headers.insert(
        "Content-Type".into(),
        json!(["application/x-www-form-urlencoded"]),
    );
    headers.insert("Accept".into(), json!(["application/json"]));
    headers.insert("x-functions-key".into(), json!([KEY]));
    if let Some(o) = origin {
        headers.insert("Origin".into(), json!([o]));
    }
    json!({"Url": format!("{ORIGIN}/api/dashboard"), "Method": "POST", "Query": {},
        "Headers": headers, "Params": {}, "Body": form})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_json_assets_and_cutover_through_the_host_envelope() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        name_map: BTreeMap::from([(FOLDER.to_owned(), TARGET.to_owned())]),
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let uploaded = rig.upload_clean(&fixtures, FOLDER, false).await;
    let api = rig.endpoint();
    rig.deliver_each(api, uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    for _ in 0..20 {
        rig.advance(pipeline_support::TICK);
        assert_eq!(api.timer().await.status, 200);
    }

    let page = call(api, "Dashboard", get(json!({}))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.headers["Content-Type"]
            .as_str()
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let csp = page.headers["Content-Security-Policy"]
        .as_str()
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(page.body.contains(FOLDER) && page.body.contains("phase-Restoring"));
    assert!(page.body.contains("/api/dashboard-assets/dashboard.js"));
    for text in [&page.body, &page.logs] {
        assert!(
            !text.contains(KEY),
            "the function key never reaches the page or the logs"
        );
    }
    let token = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a cutover form with its token")
        .to_owned();

    let data = call(api, "Dashboard", get(json!({"format": "json"}))).await;
    assert_eq!(data.status, 200);
    let v: Value = serde_json::from_str(&data.body).expect("json");
    let db = &v["databases"][0];
    assert_eq!(db["phase"], "Restoring", "{v}");
    assert_eq!(db["database_name"], TARGET);
    let instance = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/managedInstances/{}",
        pipeline_support::SUBSCRIPTION,
        pipeline_support::RESOURCE_GROUP,
        pipeline_support::INSTANCE
    );
    assert_eq!(db["target"], instance.as_str(), "{v}");
    assert!(
        page.body
            .contains(&format!("on {}", pipeline_support::INSTANCE))
            && page.body.contains(&instance),
        "the page shows the target instance"
    );
    assert!(db["forecast"]["limit_at"].is_string(), "{v}");
    assert!(
        db["cutover"]["log_backups"]
            .as_array()
            .is_some_and(|l| l.iter().any(|f| f == CLEAN_TAIL))
    );

    let form = |confirm: &str, token: &str| {
        format!(
            "csrf={token}&container={}&folder={FOLDER}&lastBackupName={CLEAN_TAIL}&confirm={confirm}",
            rig.backups
        )
    };
    assert_eq!(
        call(api, "Dashboard", post(None, &form(TARGET, &token)))
            .await
            .status,
        403
    );
    assert_eq!(
        call(
            api,
            "Dashboard",
            post(Some("https://evil.example"), &form(TARGET, &token))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        call(api, "Dashboard", post(Some(ORIGIN), &form(TARGET, "stale")))
            .await
            .status,
        403
    );
    assert_eq!(
        call(api, "Dashboard", post(Some(ORIGIN), &form(FOLDER, &token)))
            .await
            .status,
        400
    );
    assert!(
        rig.state_of(FOLDER).await.expect("state").tail.is_none(),
        "nothing declared yet"
    );

    let done = call(api, "Dashboard", post(Some(ORIGIN), &form(TARGET, &token))).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(!done.logs.contains(KEY));
    let tail = rig
        .state_of(FOLDER)
        .await
        .expect("state")
        .tail
        .expect("declared");
    assert_eq!(
        (tail.file_name.as_str(), tail.source),
        (CLEAN_TAIL, TailSource::Operator)
    );

    let js = call(
        api,
        "DashboardAssets",
        json!({"Url": format!("{ORIGIN}/api/dashboard-assets/dashboard.js"),
        "Method": "GET", "Query": {}, "Headers": {}, "Params": {"name": "dashboard.js"}}),
    )
    .await;
    assert_eq!(js.status, 200);
    assert!(
        js.headers["Content-Type"]
            .as_str()
            .is_some_and(|c| c.starts_with("text/javascript"))
    );
    let other = call(
        api,
        "DashboardAssets",
        json!({"Url": format!("{ORIGIN}/api/dashboard-assets/x"),
        "Method": "GET", "Query": {}, "Headers": {}, "Params": {"name": "../host.json"}}),
    )
    .await;
    assert_eq!(other.status, 404);
}
