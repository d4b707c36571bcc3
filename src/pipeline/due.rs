//! The due-time index: one document listing each database's next poll time and phase, so a timer
//! pass with nothing to do reads one document instead of every state document.
//!
//! Invariant: an entry is never later than its state document's `next_poll_at` (a missing time is
//! "never"). Writers keep it by lowering the entry right after a state write that moved the time
//! earlier (rare: a database becoming Ready, a tail recognised, an operator command); a time that
//! moves later needs no index write, so the sixteen events in flight almost never touch the
//! index. The timer reads a state document only when its entry is due, and raises entries to
//! what it found, conditionally (If-Match; on a race it keeps the lower of the two).
//!
//! A process writes the index through one writer ([`SharedDoc`]): its lowerings, queued while a
//! write is in flight, go out together in the next write, which starts from the index as last
//! written (If-Match on its ETag), so a wave of starts neither races itself nor re-reads the index.
//!
//! A writer that stops between its state write and its index write would leave a database
//! unseen, and state documents written by anything else (an operator's tool) are unseen too: so
//! the timer reads every state document and rebuilds the index every [`FULL_SCAN_EVERY`], and
//! whenever the index is missing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::PipelineError;
use super::shared_doc::{Document, SharedDoc};
use crate::migration::Phase;

/// The index's key: no `/`, so it is never taken for a database's state.
pub(super) const DUE_KEY: &str = "lrs-due.json";

/// How often the timer reads every state document regardless of the index.
pub const FULL_SCAN_EVERY: Duration = Duration::minutes(10);

/// The index document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct DueIndex {
    /// When the timer last read every state document (on the pipeline's clock).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub full_scan_at: Option<OffsetDateTime>,
    /// State key → entry.
    #[serde(default)]
    pub entries: BTreeMap<String, Entry>,
}

impl Document for DueIndex {
    const KEY: &'static str = DUE_KEY;
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the index always serialises")
    }
}

/// One database's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Entry {
    /// When the timer must read its state document next; `None`: only after a write lowers it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next: Option<OffsetDateTime>,
    /// Its phase when the entry was written (for the phase counts only; never decides anything).
    pub phase: Phase,
    /// How many times a writer lowered it: a timer pass that read the state document before a
    /// writer's lowering sees the count changed and keeps the lower time, even when the writer
    /// found the entry already early enough.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lowered: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Entry {
    /// Whether the timer must read the state document at `now`.
    pub fn due(&self, now: OffsetDateTime) -> bool {
        self.next.is_some_and(|t| t <= now)
    }
}

/// `a` earlier than `b`, where `None` is never.
pub(super) fn earlier(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The lower of two entries (the current one's phase when they tie).
fn lower_of(current: &Entry, other: &Entry) -> Entry {
    if earlier(other.next, current.next) {
        other.clone()
    } else {
        current.clone()
    }
}

/// The index as stored now, or `None` when there is none yet.
pub(super) async fn load(index: &SharedDoc<DueIndex>) -> Result<Option<DueIndex>, PipelineError> {
    index.read().await
}

/// After a state write that moved `key`'s poll time earlier: lowers its entry and counts the
/// lowering (written even when the entry is already as early, so a timer pass in flight cannot
/// raise it past the document).
pub(super) async fn lower(
    index: &SharedDoc<DueIndex>,
    key: &str,
    entry: Entry,
) -> Result<(), PipelineError> {
    let key = key.to_owned();
    index
        .modify(move |index: &mut DueIndex| {
            let merged = match index.entries.get(&key) {
                Some(current) => Entry {
                    lowered: current.lowered.wrapping_add(1),
                    ..lower_of(current, &entry)
                },
                None => Entry {
                    lowered: 1,
                    ..entry.clone()
                },
            };
            index.entries.insert(key.clone(), merged);
            (true, ())
        })
        .await
}

/// What a timer pass found, to write back.
pub(super) struct PassResult {
    /// The entries the pass read, by state key: what it found in each state document.
    pub found: BTreeMap<String, Entry>,
    /// A complete full scan: every key that exists, and when.
    pub full_scan: Option<(BTreeSet<String>, OffsetDateTime)>,
}

/// Writes a pass's findings over `seen` (the index as the pass read it). An entry that changed
/// since the pass read it was lowered by a writer meanwhile: the lower one stays.
pub(super) async fn record_pass(
    index: &SharedDoc<DueIndex>,
    seen: Option<DueIndex>,
    pass: PassResult,
) -> Result<(), PipelineError> {
    let snapshot = seen.unwrap_or_default();
    index
        .modify(move |index: &mut DueIndex| {
            let before = index.clone();
            for (key, found) in &pass.found {
                let untouched = index.entries.get(key) == snapshot.entries.get(key);
                let merged = match index.entries.get(key) {
                    Some(current) if !untouched => lower_of(current, found),
                    current => Entry {
                        lowered: current.map_or(0, |c| c.lowered),
                        ..found.clone()
                    },
                };
                index.entries.insert(key.clone(), merged);
            }
            if let Some((keys, at)) = &pass.full_scan {
                // Drop deleted databases, unless a writer touched the entry since the pass began.
                index.entries.retain(|key, entry| {
                    keys.contains(key) || snapshot.entries.get(key) != Some(entry)
                });
                index.full_scan_at = Some(*at);
            }
            (*index != before, ())
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pipeline::shared_doc::testing::GatedStore;
    use time::macros::datetime;

    fn entry(next: Option<OffsetDateTime>) -> Entry {
        Entry {
            next,
            phase: Phase::Restoring,
            lowered: 0,
        }
    }

    #[test]
    fn never_is_later_than_any_time() {
        let t = datetime!(2026-01-01 0:00 UTC);
        assert!(earlier(Some(t), None));
        assert!(!earlier(None, Some(t)));
        assert!(!earlier(None, None));
        assert!(earlier(Some(t), Some(t + Duration::SECOND)));
        assert!(!earlier(Some(t), Some(t)));
    }

    #[test]
    fn the_lower_entry_wins_a_merge() {
        let t = datetime!(2026-01-01 0:00 UTC);
        let early = entry(Some(t));
        let late = entry(Some(t + Duration::MINUTE));
        assert_eq!(lower_of(&late, &early), early);
        assert_eq!(lower_of(&early, &late), early);
        assert_eq!(lower_of(&entry(None), &late), late);
        assert!(early.due(t) && !late.due(t) && !entry(None).due(t));
    }

    fn index_over(store: &Arc<GatedStore>) -> SharedDoc<DueIndex> {
        SharedDoc::new(store.clone())
    }

    async fn read(index: &SharedDoc<DueIndex>) -> DueIndex {
        load(index).await.expect("readable").expect("an index")
    }

    #[tokio::test]
    async fn a_lowering_during_a_pass_is_never_raised_away() {
        // The timer and the writer in one process: one writer of the index.
        let index = index_over(&GatedStore::new(false));
        let t = datetime!(2026-01-01 0:00 UTC);
        // The index says due at t (stale-early); the document says t + 3 min.
        lower(&index, "c/db", entry(Some(t)))
            .await
            .expect("lowered");
        let seen = read(&index).await;
        // The pass reads the document (t + 3 min); meanwhile a writer moves the document to
        // t + 1 min: the entry is already earlier, but the lowering is still counted.
        lower(&index, "c/db", entry(Some(t + Duration::MINUTE)))
            .await
            .expect("lowered");
        let pass = PassResult {
            found: BTreeMap::from([("c/db".to_owned(), entry(Some(t + 3 * Duration::MINUTE)))]),
            full_scan: None,
        };
        record_pass(&index, Some(seen), pass)
            .await
            .expect("recorded");
        let index = read(&index).await;
        assert_eq!(index.entries["c/db"].next, Some(t), "kept the earlier time");
    }

    #[tokio::test]
    async fn an_untouched_entry_is_raised_to_what_the_pass_found() {
        // The timer in one process, a writer in another.
        let store = GatedStore::new(false);
        let (timer, writer) = (index_over(&store), index_over(&store.sibling(false)));
        let t = datetime!(2026-01-01 0:00 UTC);
        lower(&writer, "c/a", entry(Some(t)))
            .await
            .expect("lowered");
        lower(&writer, "c/gone", entry(Some(t)))
            .await
            .expect("lowered");
        let seen = read(&timer).await;
        // Another database appears while the pass runs: the pass's write conflicts and merges.
        lower(&writer, "c/new", entry(Some(t)))
            .await
            .expect("lowered");
        let later = entry(Some(t + 3 * Duration::MINUTE));
        let pass = PassResult {
            found: BTreeMap::from([("c/a".to_owned(), later.clone())]),
            full_scan: Some((BTreeSet::from(["c/a".to_owned()]), t)),
        };
        let puts = store.puts();
        record_pass(&timer, Some(seen), pass)
            .await
            .expect("recorded");
        assert_eq!(
            store.puts(),
            puts + 2,
            "the write on the pass's copy lost, then merged"
        );
        let index = read(&writer).await;
        assert_eq!(index.entries["c/a"].next, later.next);
        assert!(
            index.entries.contains_key("c/new"),
            "a new database is kept"
        );
        assert!(
            !index.entries.contains_key("c/gone"),
            "a deleted one is dropped"
        );
        assert_eq!(index.full_scan_at, Some(t));
    }
}
