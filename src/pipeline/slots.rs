//! LRS slots, as one shared document written with If-Match: counting the databases' own documents
//! and then claiming in each let two databases take the last slot at once. Each claim names its
//! instance, so `LRS_MAX_CONCURRENT_RESTORES` is counted per instance and LRS's concurrent
//! restores per subscription across the instances of one subscription, in one atomic write. A
//! claim is taken before a database's start is claimed, released when it ends, and stale claims
//! are pruned by the timer.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::PipelineError;
use crate::migration::TargetInstance;
use crate::storage::{self, Precondition, StateStore};

/// The slots document's key: no `/`, so it is never taken for a database's state.
pub(super) const SLOTS_KEY: &str = "lrs-slots.json";

/// How often a claim is retried after losing a race.
const MAX_RETRIES: u32 = 64;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Slots {
    /// Database state key → its claim.
    claims: BTreeMap<String, Claim>,
}

/// One database's slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Claim {
    /// When it was claimed, and on which instance ([`TargetInstance::key`]).
    On { at: String, instance: String },
    /// A claim written before claims named their instance (only the time): it counts against
    /// every instance and subscription until it is released, so no limit is ever exceeded.
    Legacy(String),
}

impl Claim {
    fn instance(&self) -> Option<&str> {
        match self {
            Claim::On { instance, .. } => Some(instance),
            Claim::Legacy(_) => None,
        }
    }
}

/// The limits a claim must stay within.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Restores per instance (`LRS_MAX_CONCURRENT_RESTORES`).
    pub per_instance: usize,
    /// Restores per subscription (LRS's 150).
    pub per_subscription: usize,
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

/// Claims a slot for `key` on `instance`: true if it holds one now (newly or already), false if
/// the instance or its subscription has none free.
pub(super) async fn claim(
    store: &dyn StateStore,
    key: &str,
    instance: &TargetInstance,
    limits: Limits,
    now: OffsetDateTime,
) -> Result<bool, PipelineError> {
    let mine = instance.key();
    let subscription = instance.subscription_key();
    let slots = modify(store, |slots| {
        if slots.claims.contains_key(key) {
            return false;
        }
        let (mut on_instance, mut in_subscription) = (0, 0);
        for claim in slots.claims.values() {
            let (same_instance, same_subscription) = match claim.instance() {
                Some(other) => (
                    other == mine,
                    other.split('/').next() == Some(subscription.as_str()),
                ),
                None => (true, true),
            };
            on_instance += usize::from(same_instance);
            in_subscription += usize::from(same_subscription);
        }
        if on_instance >= limits.per_instance || in_subscription >= limits.per_subscription {
            return false;
        }
        slots.claims.insert(
            key.to_owned(),
            Claim::On {
                at: now.to_string(),
                instance: mine.clone(),
            },
        );
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::storage::folder::FolderStateStore;

    const NOW: OffsetDateTime = datetime!(2026-01-01 10:00 UTC);

    fn mi(sub: &str, name: &str) -> TargetInstance {
        TargetInstance::new(sub, "rg", name).expect("valid")
    }

    #[tokio::test]
    async fn slots_are_counted_per_instance_and_per_subscription() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStateStore::new(dir.path()).expect("store");
        let limits = Limits {
            per_instance: 2,
            per_subscription: 3,
        };
        let (a, b, c) = (mi("s1", "a"), mi("s1", "b"), mi("s2", "c"));
        let claim = |key: &'static str, on: &TargetInstance| {
            let (store, on) = (&store, on.clone());
            async move { claim(store, key, &on, limits, NOW).await.expect("claim") }
        };
        assert!(claim("c/a1.json", &a).await);
        assert!(claim("c/a2.json", &a).await);
        assert!(!claim("c/a3.json", &a).await, "instance a is full");
        assert!(claim("c/a1.json", &a).await, "a holder keeps its slot");
        assert!(claim("c/b1.json", &b).await);
        assert!(
            !claim("c/b2.json", &b).await,
            "instance b has a free slot, but subscription s1 is full"
        );
        assert!(
            claim("c/c1.json", &c).await,
            "another subscription counts apart"
        );
        release(&store, "c/a1.json").await.expect("release");
        assert!(claim("c/b2.json", &b).await, "a slot freed in s1");
        // The other spelling of an instance's id is the same instance.
        let a_upper = TargetInstance::new("S1", "RG", "A").expect("valid");
        assert!(!claim("c/a4.json", &a_upper).await);
    }

    #[tokio::test]
    async fn a_claim_from_before_instances_were_named_counts_everywhere() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStateStore::new(dir.path()).expect("store");
        store
            .put(
                SLOTS_KEY,
                br#"{"claims":{"c/old.json":"2025-12-31 10:00:00.0 +00:00:00"}}"#.to_vec(),
                Precondition::IfNoneMatch,
            )
            .await
            .expect("put");
        let one = Limits {
            per_instance: 1,
            per_subscription: 150,
        };
        assert!(
            !claim(&store, "c/new.json", &mi("s9", "z"), one, NOW)
                .await
                .expect("claim")
        );
        prune(&store, &BTreeSet::new()).await.expect("prune");
        assert!(
            claim(&store, "c/new.json", &mi("s9", "z"), one, NOW)
                .await
                .expect("claim")
        );
    }
}
