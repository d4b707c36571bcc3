//! An ARM error that echoes the SAS token LRS was given (in any wrapping: quoted, bare, without
//! `sig=`, percent-encoded) never reaches a state document, an API answer or a log line: LRS
//! errors pass through the same redaction as storage errors, and configured SAS values are
//! redacted by value. In a test binary of its own: it installs a global subscriber to capture
//! every thread's output at TRACE.

mod pipeline_support;
mod support;

use std::sync::Arc;

use async_trait::async_trait;
use lrs_autopilot::config::StorageIdentity;
use lrs_autopilot::pipeline::{
    ArmLrs, LrsApi, LrsCallError, OperationState, RestoreView, StartRequest,
};
use pipeline_support::{
    Encoding, InProcess, RigOptions, instance, rig_with_fixtures, signature_forms,
};
use support::Captured;

/// A mock of ARM's error text, named as one: the simulator never echoes a token, the real service
/// may (a message about the token, the request body). Everything else goes to the simulator.
struct EchoingArm(ArmLrs);

#[async_trait]
impl LrsApi for EchoingArm {
    async fn start(&self, request: &StartRequest) -> Result<Option<String>, LrsCallError> {
        let StorageIdentity::SharedAccessSignature(token) = &request.identity else {
            return self.0.start(request).await;
        };
        let sig = signature_forms(token).remove(0);
        Err(LrsCallError {
            status: Some(400),
            code: Some(format!("InvalidSasToken {sig}")),
            message: format!(
                "The storageContainerSasToken '{token}' was refused: signature {sig} does not \
                 match; body {{\"storageContainerSasToken\":\"?{token}\"}}"
            ),
            retryable: false,
        })
    }

    async fn restore_details(&self, database_name: &str) -> Result<RestoreView, LrsCallError> {
        self.0.restore_details(database_name).await
    }

    async fn complete(
        &self,
        database_name: &str,
        last: &str,
    ) -> Result<Option<String>, LrsCallError> {
        self.0.complete(database_name, last).await
    }

    async fn poll_operation(&self, url: &str) -> Result<OperationState, LrsCallError> {
        self.0.poll_operation(url).await
    }

    async fn instance_facts(
        &self,
    ) -> Result<lrs_autopilot::preflight::InstanceFacts, LrsCallError> {
        self.0.instance_facts().await
    }

    fn instance_name(&self) -> String {
        self.0.instance_name()
    }

    async fn database_status(&self, database_name: &str) -> Result<String, LrsCallError> {
        self.0.database_status(database_name).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_error_echoing_the_token_is_redacted_everywhere() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");
    let Some((rig, fixtures)) = rig_with_fixtures(RigOptions {
        lrs_sas: true,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let echoing = EchoingArm(ArmLrs::new(rig.sim.client(), instance()));
    let handler = InProcess::serve(rig.pipeline_with(Arc::new(echoing))).await;
    let folder = "Echoed";
    let uploaded = rig.upload_clean(&fixtures, folder, true).await;
    rig.deliver_each(
        &handler.endpoint,
        uploaded.iter().enumerate(),
        Encoding::Once,
    )
    .await;
    let state = rig.state_of(folder).await.expect("state");
    let refused = state.lrs.start_error.clone().or(state.reason.clone());
    assert!(
        refused.as_deref().is_some_and(|r| r.contains("[redacted]")),
        "the start was refused with the echo, redacted: {refused:?} / {:?}",
        state.audit
    );
    let mut answers = Vec::new();
    for db in [None, Some(folder)] {
        let (status, body) = handler.endpoint.migrations("GET", db, None, None).await;
        assert_eq!(status, 200);
        answers.push(body.to_string());
    }
    let logs = captured.text();
    assert!(logs.contains("lrs start failed"), "the failure was logged");
    let token = rig.lrs_sas.clone().expect("an LRS SAS");
    let states = rig.raw_states().await;
    for secret in signature_forms(&token) {
        assert!(!logs.contains(&secret), "the signature is in the logs");
        for (key, doc) in &states {
            assert!(!doc.contains(&secret), "the signature is in {key}");
        }
        for answer in &answers {
            assert!(!answer.contains(&secret), "the signature is in an answer");
        }
    }
}
