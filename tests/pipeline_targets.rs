//! Several target instances (`LRS_TARGETS`): folders in three containers migrate to three managed
//! instances (two in one subscription, one in another, the third with the same name and resource
//! group as the first), each completing on the instance the map names, as the simulator's request
//! log shows; slots are counted per instance and per subscription; a folder mapped elsewhere after
//! LRS started is not moved; a watched container no key covers is refused at start-up.

mod pipeline_support;
mod support;

use std::collections::BTreeMap;

use lrs_autopilot::chain::FindingCode;
use lrs_autopilot::config::Targets;
use lrs_autopilot::lrs::InstanceId;
use lrs_autopilot::migration::{Phase, TargetInstance};
use lrs_autopilot::sim::LoggedRequest;
use lrs_autopilot::storage::StateStore;
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, InProcess, Rig, RigOptions, Serve, TICK, Uploaded, clean_dir,
    rig_with_fixtures,
};
use support::azurite;

const SUB_1: &str = "11111111-0000-0000-0000-000000000001";
const SUB_2: &str = "22222222-0000-0000-0000-000000000002";

/// Three instances: two in one subscription, the third in another with the first one's name and
/// resource group (its facts, slots and databases must never mix with the first's).
fn instances() -> [TargetInstance; 3] {
    [
        TargetInstance::new(SUB_1, "rg-east", "mi-one").expect("valid"),
        TargetInstance::new(SUB_1, "rg-west", "mi-two").expect("valid"),
        TargetInstance::new(SUB_2, "rg-east", "mi-one").expect("valid"),
    ]
}

/// `/subscriptions/.../managedInstances/<name>/`, lowercased, for matching logged paths.
fn prefix(t: &TargetInstance) -> String {
    format!("{}/", t.resource_id().to_ascii_lowercase())
}

/// Uploads the `RestoreTimeClean` chain as `<container>/<folder>/`, the tail marked by metadata.
async fn upload_clean_to(
    rig: &Rig,
    fixtures: &std::path::Path,
    container: &str,
    folder: &str,
) -> Vec<Uploaded> {
    let dir = clean_dir(fixtures);
    let mut out = Vec::new();
    for name in CLEAN {
        let mut meta = BTreeMap::new();
        if name == CLEAN_TAIL {
            meta.insert("lrs_tail".to_owned(), "true".to_owned());
        }
        let data = std::fs::read(dir.join(name)).expect("read a fixture");
        out.push(
            rig.upload_to(container, folder, name, data.into(), &meta)
                .await,
        );
    }
    out
}

/// The database's PUTs and completeRestores in the log, by the instance path they went to.
fn calls_for<'a>(requests: &'a [LoggedRequest], db: &str) -> Vec<&'a LoggedRequest> {
    let db_path = format!("/databases/{}", db.to_ascii_lowercase());
    requests
        .iter()
        .filter(|r| {
            let path = r.path.to_ascii_lowercase();
            (r.method == "PUT" && path.ends_with(&db_path))
                || (r.method == "POST" && path.ends_with(&format!("{db_path}/completerestore")))
        })
        .collect()
}

/// Every PUT and completeRestore of `db` went to `on`, one start and one complete (with the tail)
/// were accepted, and the database is Online there and absent from the other instances.
async fn assert_completed_on(rig: &Rig, db: &str, on: &TargetInstance, others: &[&TargetInstance]) {
    let requests = rig.requests();
    let calls = calls_for(&requests, db);
    assert!(!calls.is_empty(), "{db}: no PUT or completeRestore at all");
    for r in &calls {
        assert!(
            r.path.to_ascii_lowercase().starts_with(&prefix(on)),
            "{db}: {} {} went to another instance than {on}",
            r.method,
            r.path
        );
    }
    let accepted = |method: &str| {
        calls
            .iter()
            .filter(|r| r.method == method && r.status == 202)
            .count()
    };
    assert_eq!(accepted("PUT"), 1, "{db}: one accepted start");
    assert_eq!(accepted("POST"), 1, "{db}: one accepted complete");
    let complete = calls
        .iter()
        .find(|r| r.method == "POST" && r.status == 202)
        .expect("an accepted complete");
    assert_eq!(complete.body["lastBackupName"], CLEAN_TAIL);
    let client = rig.sim.client();
    let id = |t: &TargetInstance| {
        InstanceId::new(&t.subscription, &t.resource_group, &t.name)
            .expect("valid")
            .database(db)
            .expect("valid")
    };
    let database = client.get_database(&id(on)).await.expect("GET database");
    assert_eq!(database.status().as_str(), "Online", "{db} on {on}");
    for other in others {
        let err = client
            .get_database(&id(other))
            .await
            .expect_err("no such database on another instance");
        assert_eq!(err.status(), Some(404), "{db} on {other}: {err}");
    }
}

/// Folders in three containers go to three instances: `finance` (container key) to the first,
/// `hr` (container key) to the second, `sales` (container key) to the third, and
/// `finance/Payroll` (a folder key, the most specific) to the second. The built binary runs with
/// `LRS_TARGETS` and without the three single-instance variables; each database completes on the
/// instance the map names, by the simulator's request log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_in_three_containers_complete_on_the_three_instances_the_map_names() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let [one, two, three] = instances();
    let finance = rig.backups.clone();
    let hr = azurite::create_container("hr").await.0;
    let sales = azurite::create_container("sales").await.0;
    let map = BTreeMap::from([
        (finance.clone(), one.resource_id()),
        (format!("{finance}/Payroll"), two.resource_id()),
        (hr.clone(), two.resource_id()),
        (sales.clone(), three.resource_id()),
    ]);
    let mut env: Vec<(String, String)> = rig
        .env()
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "LRS_SUBSCRIPTION_ID" | "LRS_RESOURCE_GROUP" | "LRS_MANAGED_INSTANCE"
            )
        })
        .collect();
    for (k, v) in &mut env {
        if k == "LRS_CONTAINERS" {
            *v = [finance.as_str(), hr.as_str(), sales.as_str()].join(",");
        }
    }
    env.push((
        "LRS_TARGETS".into(),
        serde_json::to_string(&map).expect("a map serialises"),
    ));
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    let (serve, _) = Serve::start(binary, &env).await;

    let folders = [
        (finance.as_str(), "Ledger", &one),
        (finance.as_str(), "Payroll", &two),
        (hr.as_str(), "People", &two),
        (sales.as_str(), "Orders", &three),
    ];
    for (container, folder, _) in &folders {
        let uploaded = upload_clean_to(&rig, &fixtures, container, folder).await;
        rig.deliver_each(
            &serve.endpoint,
            uploaded.iter().enumerate(),
            Encoding::Twice,
        )
        .await;
    }
    for (container, folder, on) in &folders {
        let state = rig.state_in(container, folder).await.expect("a state");
        assert_eq!(
            state.target.as_ref(),
            Some(*on),
            "{folder}'s recorded target"
        );
    }
    let mut done = false;
    for _ in 0..60 {
        let mut all = true;
        for (container, folder, _) in &folders {
            let state = rig.state_in(container, folder).await.expect("a state");
            all &= state.phase == Phase::Completed;
        }
        if all {
            done = true;
            break;
        }
        rig.advance(TICK);
        let reply = serve.endpoint.timer().await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let mut phases = Vec::new();
    for (container, folder, _) in &folders {
        let state = rig.state_in(container, folder).await.expect("a state");
        phases.push((folder.to_owned(), state.phase, state.reason));
    }
    assert!(done, "not every database completed: {phases:?}");
    let all = instances();
    for (_, folder, on) in &folders {
        let others: Vec<&TargetInstance> = all.iter().filter(|t| t != on).collect();
        assert_completed_on(&rig, folder, on, &others).await;
    }
    // The preflight read each instance's facts from that instance and cached them apart.
    let requests = rig.requests();
    for t in &all {
        let path = t.resource_id().to_ascii_lowercase();
        assert!(
            requests
                .iter()
                .any(|r| r.method == "GET" && r.path.to_ascii_lowercase() == path),
            "the preflight read {t}"
        );
        let key = format!("_instance/{}.json", t.document_name());
        assert!(
            rig.state.get(&key).await.expect("read").is_some(),
            "{key} cached"
        );
    }
    let logs = serve.kill();
    assert!(logs.contains("mi-two"), "serve logs its instances: {logs}");
}

/// Two slots per instance and three per subscription (lowered from LRS's 150 so a test can reach
/// it), over three instances: the first instance takes two, the second takes one (its
/// subscription's third) and its second folder waits in `Ready` with a free slot on its own
/// instance; the third instance, in another subscription, takes two and its third folder waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_counted_per_instance_and_per_subscription() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        max_concurrent_restores: 2,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let [one, two, three] = instances();
    let (a, b, c) = (
        rig.backups.clone(),
        azurite::create_container("b").await.0,
        azurite::create_container("c").await.0,
    );
    let targets = Targets {
        default: None,
        keys: BTreeMap::from([
            (a.clone(), one.clone()),
            (b.clone(), two.clone()),
            (c.clone(), three.clone()),
        ]),
    };
    let pipeline = rig.pipeline_with_targets(&[a.clone(), b.clone(), c.clone()], targets, 3);
    let handler = InProcess::serve(pipeline).await;
    let order = [
        (&a, "A1"),
        (&a, "A2"),
        (&a, "A3"),
        (&b, "B1"),
        (&b, "B2"),
        (&c, "C1"),
        (&c, "C2"),
        (&c, "C3"),
    ];
    for (container, folder) in order {
        let data = std::fs::read(clean_dir(&fixtures).join(CLEAN[0])).expect("read");
        let blob = rig
            .upload_to(container, folder, CLEAN[0], data.into(), &BTreeMap::new())
            .await;
        rig.deliver_each(&handler.endpoint, [(0, &blob)], Encoding::Once)
            .await;
    }
    let requests = rig.requests();
    let starts_on = |t: &TargetInstance| {
        requests
            .iter()
            .filter(|r| {
                r.method == "PUT"
                    && r.status == 202
                    && r.path.to_ascii_lowercase().starts_with(&prefix(t))
            })
            .count()
    };
    assert_eq!(starts_on(&one), 2, "two slots on the first instance");
    assert_eq!(
        starts_on(&two),
        1,
        "the subscription's third slot on the second instance"
    );
    assert_eq!(starts_on(&three), 2, "another subscription counts apart");
    for (container, folder, why) in [
        (&a, "A3", "its instance is full"),
        (&b, "B2", "its subscription is full"),
        (&c, "C3", "its instance is full"),
    ] {
        let state = rig.state_in(container, folder).await.expect("a state");
        assert_eq!(state.phase, Phase::Ready, "{folder} waits: {why}");
        assert!(
            calls_for(&requests, folder).is_empty(),
            "{folder} sent nothing"
        );
    }
    // A timer pass frees nothing while the restores run: still no start for the waiting ones.
    rig.advance(TICK);
    assert_eq!(handler.endpoint.timer().await.status, 200);
    assert!(calls_for(&rig.requests(), "B2").is_empty());
}

/// A folder whose key is changed to another instance after LRS started on the first is not moved:
/// every later call goes to the first instance, and a `target_moved` warning names both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_mapped_elsewhere_after_lrs_started_is_not_moved() {
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions::default()).await else {
        return;
    };
    let [one, two, _] = instances();
    let containers = [rig.backups.clone()];
    let map_to = |t: &TargetInstance| Targets {
        default: None,
        keys: BTreeMap::from([
            (format!("{}/Moved", rig.backups), t.clone()),
            (rig.backups.clone(), one.clone()),
        ]),
    };
    let first = InProcess::serve(rig.pipeline_with_targets(&containers, map_to(&one), 150)).await;
    let uploaded = upload_clean_to(&rig, &fixtures, &rig.backups, "Moved").await;
    rig.deliver_each(
        &first.endpoint,
        uploaded.iter().take(1).enumerate(),
        Encoding::Once,
    )
    .await;
    let started = rig.state_of("Moved").await.expect("a state");
    assert!(started.start_claimed(), "{:?}", started.phase);

    // The map now names the second instance (a redeployed app): the rest goes to the first.
    let second = InProcess::serve(rig.pipeline_with_targets(&containers, map_to(&two), 150)).await;
    rig.deliver_each(
        &second.endpoint,
        uploaded.iter().enumerate().skip(1),
        Encoding::Once,
    )
    .await;
    let state = rig
        .drive(&second.endpoint, "Moved", 60, |s| {
            s.phase == Phase::Completed
        })
        .await;
    assert_eq!(state.target.as_ref(), Some(&one));
    assert_eq!(state.target_moved_to.as_ref(), Some(&two));
    let f = state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::TargetMoved)
        .expect("a target_moved finding");
    assert!(
        f.message.contains(&one.resource_id()) && f.message.contains(&two.resource_id()),
        "{}",
        f.message
    );
    assert_completed_on(&rig, "Moved", &one, &[&two]).await;
    assert!(
        state.audit.iter().any(|a| a.event.contains("not moved")),
        "{:?}",
        state.audit
    );
}

/// With `LRS_TARGETS` set and the single-instance variables unset, `serve` refuses to start when a
/// watched container has no key, naming the container and what to do.
#[test]
fn serve_refuses_a_watched_container_no_key_covers() {
    let binary = env!("CARGO_BIN_EXE_lrs-autopilot");
    let [one, ..] = instances();
    let out = std::process::Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "1")
        .env(
            "LRS_STORAGE_ACCOUNT_URL",
            "https://acct.blob.core.windows.net",
        )
        .env("LRS_CONTAINERS", "finance,people")
        .env(
            "LRS_TARGETS",
            format!(r#"{{"finance": "{}"}}"#, one.resource_id()),
        )
        .output()
        .expect("run the binary");
    assert!(
        !out.status.success(),
        "serve started without a target for people"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("LRS_TARGETS: the watched container \"people\" has no target instance")
            && text.contains("add the key \"people\""),
        "{text}"
    );
}
