//! The simulator over Azurite: backups uploaded as block blobs, read back through the production
//! `AzureBlobStore` (an account SAS on the blob service URL), restored and completed through the
//! client over real HTTP.

mod sim_support;
mod support;

use std::collections::BTreeMap;

use lrs_autopilot::lrs::DatabaseStatus;
use lrs_autopilot::lrs::ops::{CompleteRestore, SasToken, StartRestore, StorageAuth};
use lrs_autopilot::sim::{SimConfig, Storage};
use sim_support::{caught_up_to, client, database, drive, start};
use support::azurite::{azurite, create_container, upload_file};

const FOLDER: &str = "RestoreTimeClean";
const TAIL: &str = "RestoreTimeClean2_3.trn";

#[tokio::test]
async fn restores_a_chain_read_from_azurite_and_completes() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let fixture = fixtures.join("appveyor-lab").join(FOLDER);
    let (container, service_url) = create_container("simlrs").await;
    let mut uploaded = 0;
    for entry in std::fs::read_dir(&fixture).expect("fixture folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        upload_file(
            &container,
            &format!("{FOLDER}/{name}"),
            &path,
            &BTreeMap::new(),
        )
        .await;
        uploaded += 1;
    }
    assert_eq!(uploaded, 8);

    let mut config = SimConfig::folder("/unused");
    config.storage = Storage::BlobService(service_url);
    config.restore_mbps = 1.0;
    config.operation_secs = Some(0.0);
    config.complete_secs = 1.0;
    config.poll_retry_after_secs = 0;
    let sim = start(config).await;
    let lrs = client(&sim.base);
    let db = database("RestoreTimeClean");

    // The URI LRS is given: the folder on the emulator's blob endpoint, the SAS apart.
    let uri = format!("{}/{container}/{FOLDER}", azurite().url);
    let sas = SasToken::new("sv=2022-11-02&ss=b&srt=co&sp=rl&sig=test").expect("valid token");
    let start_request = StartRestore::new(
        db.clone(),
        "westeurope",
        &uri,
        StorageAuth::SharedAccessSignature(sas),
        "SQL_Latin1_General_CP1_CI_AS",
    )
    .expect("valid start");
    lrs.start(&start_request).await.expect("started");

    let details = drive(&sim, &lrs, &db, |_| {}, caught_up_to(TAIL)).await;
    assert_eq!(details.number_of_files_detected, Some(8));
    assert_eq!(details.number_of_files_restored, Some(5));
    assert_eq!(details.number_of_files_skipped, Some(3));
    assert!(details.block_reason.is_none(), "{:?}", details.block_reason);

    let accepted = lrs
        .begin_complete(&CompleteRestore::new(db.clone(), TAIL).expect("valid"))
        .await
        .expect("complete accepted");
    sim.state.clock().advance(time::Duration::seconds(1));
    lrs.wait(&accepted).await.expect("completed");
    assert_eq!(
        lrs.get_database(&db).await.expect("db").status(),
        DatabaseStatus::Online
    );
}

#[tokio::test]
async fn a_missing_container_on_azurite_shows_in_block_reason() {
    let az = azurite();
    let mut config = SimConfig::folder("/unused");
    config.storage = Storage::BlobService(az.service_url_with_sas());
    config.operation_secs = Some(0.0);
    config.poll_retry_after_secs = 0;
    let sim = start(config).await;
    let lrs = client(&sim.base);
    let db = database("db1");
    let start_request = StartRestore::new(
        db.clone(),
        "westeurope",
        &format!("{}/no-such-container-here/db1", az.url),
        StorageAuth::ManagedIdentity,
        "SQL_Latin1_General_CP1_CI_AS",
    )
    .expect("valid start");
    lrs.start(&start_request).await.expect("started");
    let reason = lrs
        .restore_details(&db)
        .await
        .expect("details")
        .block_reason
        .unwrap_or_default();
    assert!(
        reason.starts_with("StorageBrokenIssueDetectedWhileInProgress"),
        "{reason}"
    );
    assert!(!reason.contains("sig="), "no sas in the reason: {reason}");
}
