//! LRS slots, as one shared document written with If-Match: counting the databases' own documents
//! and then claiming in each let two databases take the last slot at once. Each claim names its
//! instance, so `LRS_MAX_CONCURRENT_RESTORES` is counted per instance and LRS's concurrent
//! restores per subscription across the instances of one subscription, in one atomic write. A
//! claim is taken before a database's start is claimed, released when it ends, and stale claims
//! are pruned by the timer. A process's claims and releases go through one writer
//! ([`SharedDoc`]), so its concurrent starts are written together instead of racing each other.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::PipelineError;
use super::shared_doc::{Document, SharedDoc};
use crate::migration::TargetInstance;

/// The slots document's key: no `/`, so it is never taken for a database's state.
pub(super) const SLOTS_KEY: &str = "lrs-slots.json";

/// The slots document, written through this process's [`SharedDoc`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Slots {
    /// Database state key → its claim.
    claims: BTreeMap<String, Claim>,
}

impl Document for Slots {
    const KEY: &'static str = SLOTS_KEY;
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("the slots document always serialises")
    }
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

/// Claims a slot for `key` on `instance`: true if it holds one now (newly or already), false if
/// the instance or its subscription has none free. Claims queued together are counted in order,
/// each against the claims before it.
pub(super) async fn claim(
    slots: &SharedDoc<Slots>,
    key: &str,
    instance: &TargetInstance,
    limits: Limits,
    now: OffsetDateTime,
) -> Result<bool, PipelineError> {
    let (key, mine, subscription) = (key.to_owned(), instance.key(), instance.subscription_key());
    let at = now.to_string();
    slots
        .modify(move |slots: &mut Slots| {
            if slots.claims.contains_key(&key) {
                return (false, true);
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
                return (false, false);
            }
            slots.claims.insert(
                key.clone(),
                Claim::On {
                    at: at.clone(),
                    instance: mine.clone(),
                },
            );
            (true, true)
        })
        .await
}

/// Gives `key`'s slot back, if it holds one.
pub(super) async fn release(slots: &SharedDoc<Slots>, key: &str) -> Result<(), PipelineError> {
    let key = key.to_owned();
    slots
        .modify(move |slots: &mut Slots| (slots.claims.remove(&key).is_some(), ()))
        .await
}

/// Drops claims of databases that no longer hold a start (ended, refused, or never written).
pub(super) async fn prune(
    slots: &SharedDoc<Slots>,
    holders: BTreeSet<String>,
) -> Result<(), PipelineError> {
    slots
        .modify(move |slots: &mut Slots| {
            let before = slots.claims.len();
            slots.claims.retain(|k, _| holders.contains(k));
            (slots.claims.len() != before, ())
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::pipeline::shared_doc::testing::{GatedStore, until};
    use crate::storage::{Precondition, StateStore};

    const NOW: OffsetDateTime = datetime!(2026-01-01 10:00 UTC);

    fn mi(sub: &str, name: &str) -> TargetInstance {
        TargetInstance::new(sub, "rg", name).expect("valid")
    }

    fn slots_over(store: &Arc<GatedStore>) -> Arc<SharedDoc<Slots>> {
        Arc::new(SharedDoc::new(store.clone()))
    }

    /// The claims as stored.
    async fn stored(store: &GatedStore) -> BTreeSet<String> {
        let (bytes, _) = store.get(SLOTS_KEY).await.expect("get").expect("written");
        let slots: Slots = serde_json::from_slice(&bytes).expect("readable");
        slots.claims.into_keys().collect()
    }

    fn spawn_claim(
        slots: &Arc<SharedDoc<Slots>>,
        key: String,
        on: &TargetInstance,
        limits: Limits,
    ) -> tokio::task::JoinHandle<(String, bool)> {
        let (slots, on) = (slots.clone(), on.clone());
        tokio::spawn(async move {
            let held = claim(&slots, &key, &on, limits, NOW).await.expect("claim");
            (key, held)
        })
    }

    #[tokio::test]
    async fn slots_are_counted_per_instance_and_per_subscription() {
        let store = GatedStore::new(false);
        let slots = slots_over(&store);
        let limits = Limits {
            per_instance: 2,
            per_subscription: 3,
        };
        let (a, b, c) = (mi("s1", "a"), mi("s1", "b"), mi("s2", "c"));
        let claim = |key: &'static str, on: &TargetInstance| {
            let (slots, on) = (&slots, on.clone());
            async move { claim(slots, key, &on, limits, NOW).await.expect("claim") }
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
        release(&slots, "c/a1.json").await.expect("release");
        assert!(claim("c/b2.json", &b).await, "a slot freed in s1");
        // The other spelling of an instance's id is the same instance.
        let a_upper = TargetInstance::new("S1", "RG", "A").expect("valid");
        assert!(!claim("c/a4.json", &a_upper).await);
    }

    #[tokio::test]
    async fn a_claim_from_before_instances_were_named_counts_everywhere() {
        let store = GatedStore::new(false);
        store
            .put(
                SLOTS_KEY,
                br#"{"claims":{"c/old.json":"2025-12-31 10:00:00.0 +00:00:00"}}"#.to_vec(),
                Precondition::IfNoneMatch,
            )
            .await
            .expect("put");
        let slots = slots_over(&store);
        let one = Limits {
            per_instance: 1,
            per_subscription: 150,
        };
        assert!(
            !claim(&slots, "c/new.json", &mi("s9", "z"), one, NOW)
                .await
                .expect("claim")
        );
        prune(&slots, BTreeSet::new()).await.expect("prune");
        assert!(
            claim(&slots, "c/new.json", &mi("s9", "z"), one, NOW)
                .await
                .expect("claim")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_get_exactly_the_free_slots_each_answer_as_written() {
        let store = GatedStore::new(true);
        let slots = slots_over(&store);
        let limits = Limits {
            per_instance: 5,
            per_subscription: 150,
        };
        let a = mi("s1", "a");
        // One claim's write waits at the gate while 31 queue behind it: they go out together.
        let first = spawn_claim(&slots, "c/db00.json".into(), &a, limits);
        until("the first claim at the gate", || store.gets() == 1).await;
        let rest: Vec<_> = (1..32)
            .map(|i| spawn_claim(&slots, format!("c/db{i:02}.json"), &a, limits))
            .collect();
        until("the claims queued", || slots.queued() == 31).await;
        store.open(1 << 20);
        let mut granted = BTreeSet::new();
        for task in std::iter::once(first).chain(rest) {
            let (key, held) = task.await.expect("joined");
            if held {
                granted.insert(key);
            }
        }
        assert_eq!(granted.len(), 5, "{granted:?}");
        assert_eq!(
            stored(&store).await,
            granted,
            "each answer is what was written"
        );
        assert_eq!(store.puts(), 2, "the 31 queued claims took one write");
    }

    #[tokio::test]
    async fn another_process_claiming_meanwhile_is_counted_never_over_granted() {
        let store = GatedStore::new(false);
        let (ours, theirs) = (slots_over(&store), slots_over(&store.sibling(false)));
        let two = Limits {
            per_instance: 2,
            per_subscription: 150,
        };
        let a = mi("s1", "a");
        assert!(claim(&ours, "c/1.json", &a, two, NOW).await.expect("claim"));
        // The other process takes the last slot; our kept copy still shows one free.
        assert!(
            claim(&theirs, "c/2.json", &a, two, NOW)
                .await
                .expect("claim")
        );
        let puts = store.puts();
        assert!(
            !claim(&ours, "c/3.json", &a, two, NOW).await.expect("claim"),
            "the If-Match write failed, and the claim was counted again on the stored document"
        );
        assert_eq!(store.puts(), puts + 1, "the one refused write");
        assert_eq!(
            stored(&store).await,
            BTreeSet::from(["c/1.json".to_owned(), "c/2.json".to_owned()])
        );
        // And a slot the other process freed is seen although our copy shows it taken.
        release(&theirs, "c/2.json").await.expect("release");
        assert!(claim(&ours, "c/3.json", &a, two, NOW).await.expect("claim"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_release_and_a_claim_written_together_are_counted_in_their_order() {
        let one = Limits {
            per_instance: 1,
            per_subscription: 150,
        };
        let a = mi("s1", "a");
        for release_first in [true, false] {
            let store = GatedStore::new(false);
            let slots = slots_over(&store);
            assert!(
                claim(&slots, "c/held.json", &a, one, NOW)
                    .await
                    .expect("claim")
            );
            store.close();
            // A third change holds the write while the release and the claim queue behind it.
            let blocker = spawn_claim(&slots, "c/other.json".into(), &mi("s2", "b"), one);
            until("the blocker at the gate", || {
                slots.queued() == 0 && store.waiting() == 1
            })
            .await;
            let release_task = |slots: &Arc<SharedDoc<Slots>>| {
                let slots = slots.clone();
                tokio::spawn(async move { release(&slots, "c/held.json").await.expect("release") })
            };
            let (released, claimed) = if release_first {
                let r = release_task(&slots);
                until("the release queued", || slots.queued() == 1).await;
                let c = spawn_claim(&slots, "c/new.json".into(), &a, one);
                (r, c)
            } else {
                let c = spawn_claim(&slots, "c/new.json".into(), &a, one);
                until("the claim queued", || slots.queued() == 1).await;
                (release_task(&slots), c)
            };
            until("both queued", || slots.queued() == 2).await;
            store.open(1 << 20);
            blocker.await.expect("joined");
            released.await.expect("joined");
            let (_, held) = claimed.await.expect("joined");
            assert_eq!(held, release_first, "release first: {release_first}");
            let expected: BTreeSet<String> = ["c/other.json"]
                .into_iter()
                .chain(release_first.then_some("c/new.json"))
                .map(str::to_owned)
                .collect();
            assert_eq!(stored(&store).await, expected);
        }
    }
}
