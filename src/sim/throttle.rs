//! Azure Resource Manager's request throttling: one token bucket for reads and one for writes per
//! subscription and region. Figures from Microsoft's "Understand how Azure Resource Manager throttles
//! requests" (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling):
//! reads bucket 250, refill 25 per second; writes bucket 200, refill 10 per second; per subscription
//! per region. Every ARM answer carries `x-ms-ratelimit-remaining-subscription-reads` (or `-writes`),
//! and an empty bucket answers 429 `SubscriptionTooManyRequests` with `Retry-After`.
//!
//! Model choice: buckets refill on wall time ([`std::time::Instant`]), never on the simulator's
//! [`super::Clock`]:
//! a test that jumps the virtual clock 30 days forward must not refill them, and a rehearsal on the
//! system clock runs in real time anyway, so both see ARM's real request budget.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

/// The kind of an ARM request, which decides its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// GET (and HEAD).
    Read,
    /// PUT, PATCH, POST, DELETE.
    Write,
}

/// A bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketLimits {
    /// Tokens when full.
    pub bucket: f64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

/// ARM's documented figures for reads.
pub const READS: BucketLimits = BucketLimits {
    bucket: 250.0,
    refill_per_sec: 25.0,
};

/// ARM's documented figures for writes.
pub const WRITES: BucketLimits = BucketLimits {
    bucket: 200.0,
    refill_per_sec: 10.0,
};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Requests admitted and throttled, for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Requests that took a token.
    pub admitted: u64,
    /// Requests answered 429.
    pub throttled: u64,
}

/// The outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Admission {
    /// Let through; whole tokens left in the bucket.
    Admitted { remaining: u64 },
    /// Refused; whole seconds until a token is back (at least 1).
    Throttled { retry_after_secs: u64 },
}

/// Every subscription's buckets and counters.
#[derive(Debug)]
pub(crate) struct Throttle {
    started: Instant,
    buckets: HashMap<(String, Kind), Bucket>,
    counts: HashMap<(String, Kind), Counts>,
}

impl Throttle {
    pub fn new(now: Instant) -> Self {
        Throttle {
            started: now,
            buckets: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    fn limits(kind: Kind) -> BucketLimits {
        match kind {
            Kind::Read => READS,
            Kind::Write => WRITES,
        }
    }

    /// Takes a token for a request of `kind` on `subscription` at wall time `now`.
    pub fn admit(&mut self, subscription: &str, kind: Kind, now: Instant) -> Admission {
        let limits = Self::limits(kind);
        let key = (subscription.to_ascii_lowercase(), kind);
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: limits.bucket,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limits.refill_per_sec).min(limits.bucket);
        bucket.at = now;
        let counts = self.counts.entry(key).or_default();
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            counts.admitted += 1;
            Admission::Admitted {
                remaining: bucket.tokens.floor() as u64,
            }
        } else {
            counts.throttled += 1;
            let wait = (1.0 - bucket.tokens) / limits.refill_per_sec;
            Admission::Throttled {
                retry_after_secs: (wait.ceil() as u64).max(1),
            }
        }
    }

    /// The counters as `GET /_sim/stats` shows them: per kind, summed and per subscription, with the
    /// budget ARM would have allowed one subscription since the simulator started (a full bucket
    /// plus the refill) and each subscription's admitted requests as a percentage of it.
    pub fn stats(&self, now: Instant) -> serde_json::Value {
        let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
        let kind_stats = |kind: Kind| {
            let limits = Self::limits(kind);
            let budget = limits.bucket + limits.refill_per_sec * elapsed;
            let mut total = Counts::default();
            let mut per_subscription = serde_json::Map::new();
            for ((sub, k), c) in &self.counts {
                if *k == kind {
                    total.admitted += c.admitted;
                    total.throttled += c.throttled;
                    let percent = c.admitted as f64 / budget * 100.0;
                    per_subscription.insert(
                        sub.clone(),
                        serde_json::json!({
                            "admitted": c.admitted,
                            "throttled": c.throttled,
                            "percentOfBudget": (percent * 10.0).round() / 10.0,
                        }),
                    );
                }
            }
            serde_json::json!({
                "admitted": total.admitted,
                "throttled": total.throttled,
                "bucket": limits.bucket,
                "refillPerSec": limits.refill_per_sec,
                "budgetPerSubscriptionSinceStart": budget.floor(),
                "perSubscription": per_subscription,
            })
        };
        serde_json::json!({
            "elapsedWallSecs": elapsed,
            "reads": kind_stats(Kind::Read),
            "writes": kind_stats(Kind::Write),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_empties_then_refills_at_the_documented_rate() {
        let t0 = Instant::now();
        let mut t = Throttle::new(t0);
        for i in 0..250u64 {
            assert_eq!(
                t.admit("s", Kind::Read, t0),
                Admission::Admitted { remaining: 249 - i }
            );
        }
        assert_eq!(
            t.admit("s", Kind::Read, t0),
            Admission::Throttled {
                retry_after_secs: 1
            }
        );
        // Another subscription and the write bucket are separate.
        assert!(matches!(
            t.admit("other", Kind::Read, t0),
            Admission::Admitted { remaining: 249 }
        ));
        assert!(matches!(
            t.admit("s", Kind::Write, t0),
            Admission::Admitted { remaining: 199 }
        ));
        // A second refills 25 reads.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..25 {
            assert!(matches!(
                t.admit("S", Kind::Read, t1),
                Admission::Admitted { .. }
            ));
        }
        assert!(matches!(
            t.admit("s", Kind::Read, t1),
            Admission::Throttled { .. }
        ));
        let stats = t.stats(t1);
        assert_eq!(stats["reads"]["admitted"], 276);
        assert_eq!(stats["reads"]["throttled"], 2);
        assert_eq!(stats["writes"]["admitted"], 1);
        assert_eq!(stats["reads"]["budgetPerSubscriptionSinceStart"], 275.0);
        // 275 of s's reads admitted against a budget of 250 + 25 after one second.
        assert_eq!(
            stats["reads"]["perSubscription"]["s"]["percentOfBudget"],
            100.0
        );
        assert_eq!(
            stats["reads"]["perSubscription"]["other"]["percentOfBudget"],
            0.4
        );
    }

    #[test]
    fn writes_refill_at_ten_a_second_and_retry_after_says_when() {
        let t0 = Instant::now();
        let mut t = Throttle::new(t0);
        for _ in 0..200 {
            assert!(matches!(
                t.admit("s", Kind::Write, t0),
                Admission::Admitted { .. }
            ));
        }
        assert_eq!(
            t.admit("s", Kind::Write, t0),
            Admission::Throttled {
                retry_after_secs: 1
            }
        );
        let later = t0 + Duration::from_millis(100);
        assert!(matches!(
            t.admit("s", Kind::Write, later),
            Admission::Admitted { remaining: 0 }
        ));
        // A full hour refills no more than the bucket.
        let hour = t0 + Duration::from_secs(3600);
        assert_eq!(
            t.admit("s", Kind::Write, hour),
            Admission::Admitted { remaining: 199 }
        );
    }
}
