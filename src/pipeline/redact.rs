//! Every LRS error passes through the same redaction as storage errors before the pipeline logs
//! it, records it in a state document or answers it to a caller: ARM may echo the SAS it was given
//! (in a message about the token, a URL, a request body), and a configured SAS is removed by value
//! whatever text surrounds it.

use async_trait::async_trait;

use super::lrs_port::{LrsApi, LrsCallError, OperationState, RestoreView, StartRequest};
use crate::storage::sas::redact_text;

/// Wraps the pipeline's LRS port: what comes back from it is redacted.
pub(super) struct RedactedLrs(pub std::sync::Arc<dyn LrsApi>);

fn redacted(e: LrsCallError) -> LrsCallError {
    LrsCallError {
        code: e.code.as_deref().map(redact_text),
        message: redact_text(&e.message),
        ..e
    }
}

fn redacted_view(mut v: RestoreView) -> RestoreView {
    v.snapshot.block_reason = v.snapshot.block_reason.as_deref().map(redact_text);
    v
}

#[async_trait]
impl LrsApi for RedactedLrs {
    async fn start(&self, request: &StartRequest) -> Result<Option<String>, LrsCallError> {
        self.0.start(request).await.map_err(redacted)
    }

    async fn restore_details(&self, database_name: &str) -> Result<RestoreView, LrsCallError> {
        self.0
            .restore_details(database_name)
            .await
            .map(redacted_view)
            .map_err(redacted)
    }

    async fn complete(
        &self,
        database_name: &str,
        last_backup_name: &str,
    ) -> Result<Option<String>, LrsCallError> {
        self.0
            .complete(database_name, last_backup_name)
            .await
            .map_err(redacted)
    }

    async fn poll_operation(&self, url: &str) -> Result<OperationState, LrsCallError> {
        match self.0.poll_operation(url).await {
            Ok(OperationState::Failed(e)) => Ok(OperationState::Failed(redacted(e))),
            other => other.map_err(redacted),
        }
    }

    async fn instance_facts(&self) -> Result<crate::preflight::InstanceFacts, LrsCallError> {
        self.0.instance_facts().await.map_err(redacted)
    }

    fn instance_name(&self) -> String {
        self.0.instance_name()
    }

    async fn database_status(&self, database_name: &str) -> Result<String, LrsCallError> {
        self.0
            .database_status(database_name)
            .await
            .map_err(redacted)
    }
}
