//! Every LRS error passes through the same redaction as storage errors before the pipeline logs
//! it, records it in a state document or answers it to a caller: ARM may echo the SAS it was given
//! (in a message about the token, a URL, a request body), and a configured SAS is removed by value
//! whatever text surrounds it.

use async_trait::async_trait;

use super::lrs_port::{LrsApi, LrsCallError, StartRequest};
use crate::migration::LrsSnapshot;
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

fn redacted_snapshot(mut s: LrsSnapshot) -> LrsSnapshot {
    s.block_reason = s.block_reason.as_deref().map(redact_text);
    s
}

#[async_trait]
impl LrsApi for RedactedLrs {
    async fn start(&self, request: &StartRequest) -> Result<(), LrsCallError> {
        self.0.start(request).await.map_err(redacted)
    }

    async fn restore_details(&self, database_name: &str) -> Result<LrsSnapshot, LrsCallError> {
        self.0
            .restore_details(database_name)
            .await
            .map(redacted_snapshot)
            .map_err(redacted)
    }

    async fn complete(
        &self,
        database_name: &str,
        last_backup_name: &str,
    ) -> Result<(), LrsCallError> {
        self.0
            .complete(database_name, last_backup_name)
            .await
            .map_err(redacted)
    }

    async fn database_status(&self, database_name: &str) -> Result<String, LrsCallError> {
        self.0
            .database_status(database_name)
            .await
            .map_err(redacted)
    }
}
