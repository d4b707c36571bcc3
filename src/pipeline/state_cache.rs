//! The state documents this process last read or wrote, with their ETags: a hint that spares the
//! read before a read-modify-write. Every write that starts from it is conditional (If-Match on
//! the cached ETag, If-None-Match for a document cached as absent), so a stale entry (another
//! instance wrote since) costs a conflict and a re-read, never a decision on old facts. Nothing is
//! decided from the cache without such a write; a duplicate event is confirmed by a read.
//!
//! Bounded by the documents' serialised size; the least recently used go first.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::migration::MigrationState;
use crate::storage::ETag;

/// How many bytes of documents (as stored) the cache holds at most: a few hundred restoring
/// databases' documents, a few MiB of a Functions instance's memory.
const CAPACITY_BYTES: usize = 8 << 20;

/// What the cache knows of one key.
#[derive(Debug, Clone)]
pub(super) enum Cached {
    /// The document, as of its ETag.
    Present(Box<MigrationState>, ETag),
    /// There was no document when last looked.
    Absent,
}

#[derive(Debug)]
struct Slot {
    doc: Cached,
    /// Its size as stored (the weight).
    bytes: usize,
    /// When it was last used, by [`Inner::clock`].
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    bytes: usize,
    clock: u64,
}

/// The cache (shared by the pipeline's clones).
#[derive(Debug, Default)]
pub(super) struct StateCache {
    inner: Mutex<Inner>,
}

impl StateCache {
    /// What the cache holds for `key`, if anything.
    pub fn get(&self, key: &str) -> Option<Cached> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        let slot = inner.slots.get_mut(key)?;
        slot.used = now;
        Some(slot.doc.clone())
    }

    /// Remembers `doc` for `key` (`bytes`: its size as stored).
    pub fn put(&self, key: &str, mut doc: Cached, bytes: usize) {
        // The weight counts the document as stored: a planner memo would be a second copy of
        // its files, unweighed.
        if let Cached::Present(state, _) = &mut doc {
            state.plan_memo.clear();
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let used = inner.clock;
        if let Some(old) = inner
            .slots
            .insert(key.to_owned(), Slot { doc, bytes, used })
        {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > CAPACITY_BYTES && inner.slots.len() > 1 {
            let Some(oldest) = inner
                .slots
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.slots.remove(&oldest) {
                inner.bytes -= gone.bytes;
            }
        }
    }

    /// Forgets `key` (its write lost a race: the next use reads it).
    pub fn forget(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(gone) = inner.slots.remove(key) {
            inner.bytes -= gone.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn doc(folder: &str) -> Cached {
        let state = MigrationState::new("c", folder, folder, datetime!(2026-01-01 0:00 UTC));
        Cached::Present(Box::new(state), ETag::from("\"1\""))
    }

    #[test]
    fn the_least_recently_used_go_first_when_full() {
        let cache = StateCache::default();
        let third = CAPACITY_BYTES / 3;
        cache.put("c/a.json", doc("a"), third);
        cache.put("c/b.json", doc("b"), third);
        cache.put("c/c.json", doc("c"), third);
        assert!(
            cache.get("c/a.json").is_some(),
            "a is used: b is now the oldest"
        );
        cache.put("c/d.json", doc("d"), third);
        assert!(cache.get("c/b.json").is_none());
        assert!(cache.get("c/a.json").is_some() && cache.get("c/d.json").is_some());
        cache.forget("c/a.json");
        assert!(cache.get("c/a.json").is_none());
    }

    #[test]
    fn a_replaced_entry_is_weighed_once() {
        let cache = StateCache::default();
        for _ in 0..10 {
            cache.put("c/a.json", doc("a"), CAPACITY_BYTES / 2);
        }
        cache.put("c/b.json", Cached::Absent, CAPACITY_BYTES / 2);
        assert!(cache.get("c/a.json").is_some() && cache.get("c/b.json").is_some());
    }
}
