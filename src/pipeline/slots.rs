//! The instance's LRS slots (`LRS_MAX_CONCURRENT_RESTORES`), as one shared document written with
//! If-Match: counting the databases' own documents and then claiming in each let two databases take
//! the last slot at once. A claim is taken before a database's start is claimed, released when it
//! ends, and stale claims are pruned by the timer.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::PipelineError;
use crate::storage::{self, Precondition, StateStore};

/// The slots document's key: no `/`, so it is never taken for a database's state.
pub(super) const SLOTS_KEY: &str = "lrs-slots.json";

/// How often a claim is retried after losing a race.
const MAX_RETRIES: u32 = 64;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Slots {
    /// Database state key → when its slot was claimed.
    claims: BTreeMap<String, String>,
}

async fn load(store: &dyn StateStore) -> Result<(Slots, Precondition), PipelineError> {
    match store.get(SLOTS_KEY).await? {
        None => Ok((Slots::default(), Precondition::IfNoneMatch)),
        Some((bytes, etag)) => {
            let slots =
                serde_json::from_slice(&bytes).map_err(|e| PipelineError::CorruptState {
                    key: SLOTS_KEY.into(),
                    reason: e.to_string(),
                })?;
            Ok((slots, Precondition::IfMatch(etag)))
        }
    }
}

/// Changes the document with `change` (which says whether it changed anything), retrying races.
async fn modify(
    store: &dyn StateStore,
    mut change: impl FnMut(&mut Slots) -> bool,
) -> Result<Slots, PipelineError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (mut slots, precondition) = load(store).await?;
        if !change(&mut slots) {
            return Ok(slots);
        }
        let bytes =
            serde_json::to_vec_pretty(&slots).expect("the slots document always serialises");
        match store.put(SLOTS_KEY, bytes, precondition).await {
            Ok(_) => return Ok(slots),
            Err(storage::Error::Conflict { .. }) if attempt < MAX_RETRIES => {
                let jitter = rand::random::<u64>() % (3 * u64::from(attempt.min(10)) + 1);
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Claims a slot for `key`: true if it holds one now (newly or already), false if all are taken.
pub(super) async fn claim(
    store: &dyn StateStore,
    key: &str,
    max: usize,
    now: OffsetDateTime,
) -> Result<bool, PipelineError> {
    let slots = modify(store, |slots| {
        if slots.claims.contains_key(key) || slots.claims.len() >= max {
            return false;
        }
        slots.claims.insert(key.to_owned(), now.to_string());
        true
    })
    .await?;
    Ok(slots.claims.contains_key(key))
}

/// Gives `key`'s slot back, if it holds one.
pub(super) async fn release(store: &dyn StateStore, key: &str) -> Result<(), PipelineError> {
    modify(store, |slots| slots.claims.remove(key).is_some())
        .await
        .map(drop)
}

/// Drops claims of databases that no longer hold a start (ended, refused, or never written).
pub(super) async fn prune(
    store: &dyn StateStore,
    holders: &BTreeSet<String>,
) -> Result<(), PipelineError> {
    modify(store, |slots| {
        let before = slots.claims.len();
        slots.claims.retain(|k, _| holders.contains(k));
        slots.claims.len() != before
    })
    .await
    .map(drop)
}
