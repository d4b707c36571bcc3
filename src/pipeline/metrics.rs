//! Counters the pipeline keeps: events processed and rejected, bytes read, LRS starts and
//! completions, cutover lag and databases per phase. The shell logs them and exports them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::migration::Phase;

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

/// The pipeline's counters.
#[derive(Debug, Default, Serialize)]
pub struct Metrics {
    /// Events recorded in a state document.
    pub events_processed: Counter,
    /// Events refused (outside the account or containers, or not in a folder).
    pub events_rejected: Counter,
    /// Events already recorded (same blob ETag).
    pub events_duplicate: Counter,
    /// Bytes read from blobs to validate headers.
    pub bytes_read: Counter,
    /// LRS starts accepted.
    pub lrs_starts: Counter,
    /// completeRestore calls accepted.
    pub lrs_completions: Counter,
    /// Sum of cutover lags (tail restored → completion sent), in milliseconds.
    pub cutover_lag_ms: Counter,
    /// Alerts raised.
    pub alerts: Counter,
    /// State document writes that lost a race and were retried.
    pub state_conflicts: Counter,
    /// Databases per phase after the last timer pass.
    pub phases: Mutex<BTreeMap<String, usize>>,
}

impl Metrics {
    /// Records the phase counts of a timer pass.
    pub fn set_phases(&self, phases: &BTreeMap<Phase, usize>) {
        if let Ok(mut guard) = self.phases.lock() {
            *guard = phases
                .iter()
                .map(|(p, n)| (p.as_str().to_owned(), *n))
                .collect();
        }
    }
}
