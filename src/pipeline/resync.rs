//! Reconciliation: list each watched container and record every backup blob that state does not
//! have yet, through the same path as an event. Event Grid can dead-letter an event and a
//! misconfiguration can make Service Bus dead-letter every message; this pass makes the pipeline
//! whole again without them.
//!
//! Cost: one List Blobs call per 5,000 blobs in each watched container (Azure's page size), one
//! state read per database folder, and header reads only for the blobs found missing. The timer
//! runs it every `LRS_RESYNC_INTERVAL_SECS` (6 hours by default: 4 passes a day), claimed through a
//! small shared document so that only one instance runs each pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::{EventOutcome, Pipeline, PipelineError};
use crate::migration::MigrationState;
use crate::storage::event::{BLOB_CREATED, BlobEvent};
use crate::storage::{self, BlobItem, Precondition};

/// The claim document's key: no `/`, so it is never taken for a database's state.
const RESYNC_KEY: &str = "lrs-resync.json";

/// The default interval between periodic passes (`LRS_RESYNC_INTERVAL_SECS`).
pub const DEFAULT_RESYNC_INTERVAL: time::Duration = time::Duration::hours(6);

/// What one reconciliation pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResyncReport {
    /// Blobs listed in the watched containers.
    pub listed: usize,
    /// Blobs already recorded with the same ETag.
    pub known: usize,
    /// Blobs recorded by this pass (they had been missed).
    pub recorded: usize,
    /// Blobs refused, ignored or duplicate when handled (with the event path's reason).
    pub skipped: usize,
    /// Errors, one line each; the pass goes on past them.
    pub errors: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ResyncClaim {
    #[serde(with = "time::serde::rfc3339::option")]
    last: Option<OffsetDateTime>,
}

impl Pipeline {
    /// Lists each watched container and records every blob that state does not have in this
    /// version, as its BlobCreated event would have.
    ///
    /// # Errors
    /// Only when a container cannot be listed; per-blob failures are in the report.
    pub async fn resync(&self) -> Result<ResyncReport, PipelineError> {
        let mut report = ResyncReport::default();
        for container in self.settings.scope.containers().to_vec() {
            let items = self.blobs.list(&container).await?;
            report.listed += items.len();
            let mut by_folder: BTreeMap<String, Vec<BlobItem>> = BTreeMap::new();
            for item in items {
                let Some((_, path)) = item.name.split_once('/') else {
                    continue;
                };
                let folder = path.split('/').next().unwrap_or_default().to_owned();
                by_folder.entry(folder).or_default().push(item);
            }
            for (folder, items) in by_folder {
                // One state read per folder; the document is dropped before the blobs are handled.
                let known: BTreeMap<String, Option<String>> =
                    match self.load(&MigrationState::key(&container, &folder)).await {
                        Ok(Some((state, _))) => state
                            .files
                            .into_iter()
                            .filter(|(_, r)| !r.pending)
                            .map(|(name, r)| (name, r.etag))
                            .collect(),
                        Ok(None) | Err(PipelineError::UnknownDatabase(_)) => BTreeMap::new(),
                        Err(e) => {
                            report.errors.push(format!("{container}/{folder}: {e}"));
                            continue;
                        }
                    };
                for item in items {
                    let name = item
                        .name
                        .split_once('/')
                        .and_then(|(_, p)| p.split_once('/'))
                        .map(|(_, n)| n.to_owned())
                        .unwrap_or_default();
                    let same = known.get(&name).is_some_and(|etag| {
                        etag.as_deref().map(|e| e.trim_matches('"'))
                            == Some(item.etag.0.trim_matches('"'))
                    });
                    if same {
                        report.known += 1;
                        continue;
                    }
                    let event = self.event_for(&item);
                    match self.blob_created(&event).await {
                        Ok(EventOutcome::Recorded { .. }) => {
                            report.recorded += 1;
                            info!(blob = %crate::logline::escape(&item.name), "resync recorded a missed blob");
                        }
                        Ok(_) => report.skipped += 1,
                        Err(e) => report
                            .errors
                            .push(format!("{}: {e}", crate::logline::escape(&item.name))),
                    }
                }
            }
        }
        Ok(report)
    }

    /// The BlobCreated event a listed blob would have had.
    fn event_for(&self, item: &BlobItem) -> BlobEvent {
        let mut url = self.settings.scope.account().clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(item.name.split('/'));
        }
        BlobEvent {
            id: format!("resync:{}", item.name),
            event_type: BLOB_CREATED.to_owned(),
            url: url.to_string(),
            content_length: Some(item.size),
            blob_type: Some(format!("{:?}Blob", item.blob_type)),
            api: None,
            etag: Some(item.etag.0.clone()),
        }
    }

    /// Runs a pass when the interval has passed since the last one (any instance's), claiming it
    /// first so that one instance runs it. `None` when it was not due.
    pub(super) async fn resync_if_due(&self) -> Option<Result<ResyncReport, PipelineError>> {
        let interval = self.resync_interval?;
        let now = (self.clock)();
        let claimed = async {
            let (claim, precondition) = match self.state.get(RESYNC_KEY).await? {
                None => (ResyncClaim::default(), Precondition::IfNoneMatch),
                Some((bytes, etag)) => (
                    serde_json::from_slice(&bytes).unwrap_or_default(),
                    Precondition::IfMatch(etag),
                ),
            };
            if claim.last.is_some_and(|t| now - t < interval) {
                return Ok::<bool, storage::Error>(false);
            }
            let bytes = serde_json::to_vec(&ResyncClaim { last: Some(now) })
                .expect("the claim always serialises");
            match self.state.put(RESYNC_KEY, bytes, precondition).await {
                Ok(_) => Ok(true),
                Err(e) if e.is_conflict() => Ok(false),
                Err(e) => Err(e),
            }
        };
        match claimed.await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                warn!(error = %e, "resync claim failed");
                return Some(Err(e.into()));
            }
        }
        let result = self.resync().await;
        match &result {
            Ok(r) => info!(
                listed = r.listed,
                recorded = r.recorded,
                errors = r.errors.len(),
                "periodic resync pass"
            ),
            Err(e) => warn!(error = %e, "periodic resync pass failed"),
        }
        Some(result)
    }
}
