//! Fault injection: throttling with `Retry-After`, server errors, latency, busy databases and broken
//! storage, at set rates; documented error codes per database for restoreDetails and starts; and
//! databases dropped after a while. Draws come from a seeded generator, so a test with a given seed
//! and the same sequence of requests sees the same faults every run.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The faults to inject. Rates are probabilities per ARM request, from 0 to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Rate of 429 `SubscriptionTooManyRequests` answers.
    pub throttle_rate: f64,
    /// `Retry-After` seconds on those 429s.
    pub retry_after_secs: u64,
    /// Rate of 500 `InternalServerError` answers.
    pub server_error_rate: f64,
    /// Latency added to every ARM request, in milliseconds.
    pub latency_ms: u64,
    /// Rate of 409 `ConflictingDatabaseOperation` answers to writes (PUT, POST, DELETE).
    pub conflict_rate: f64,
    /// Storage cannot be read: jobs stop picking up files and show it in `blockReason`.
    pub storage_failure: bool,
    /// Seed of the generator that decides which requests fail.
    pub seed: u64,
    /// Database name (any case), or `"*"` for every database, to the error code every restoreDetails
    /// answer for it carries, with the HTTP status the spec documents for that code (400 for every
    /// documented restoreDetails code, and 400 for a code the spec does not document).
    pub restore_details_errors: BTreeMap<String, String>,
    /// Drops each database once, this many simulated seconds after its start was accepted, unless it
    /// is `Online` by then: a failover during the first full restore or after cutover starts, a
    /// Business Critical update, or the 30-day cancellation come early. Afterwards GET database
    /// answers 404 `ResourceNotFound`, restoreDetails 400 `RestoreDetailsNotAvailableOrExpired`, and
    /// the create operation ends `Failed`. A later start of the same name is not dropped again.
    /// Model choice: the guide names the causes, not the answers; see `arm::Inner::lifecycle`.
    pub drop_after_secs: Option<f64>,
    /// Database name (any case), or `"*"`, to the error code every start (PUT) of it is answered
    /// with, once per attempt, with the status the spec documents for PUT (400 when undocumented).
    pub start_errors: BTreeMap<String, String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            throttle_rate: 0.0,
            retry_after_secs: 1,
            server_error_rate: 0.0,
            latency_ms: 0,
            conflict_rate: 0.0,
            storage_failure: false,
            seed: 0,
            restore_details_errors: BTreeMap::new(),
            drop_after_secs: None,
            start_errors: BTreeMap::new(),
        }
    }
}

impl Faults {
    /// Checks the rates.
    ///
    /// # Errors
    /// A message naming the rate that is not between 0 and 1.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttle rate", self.throttle_rate),
            ("server error rate", self.server_error_rate),
            ("conflict rate", self.conflict_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("the {name} must be between 0 and 1, not {rate}"));
            }
        }
        if let Some(secs) = self.drop_after_secs
            && !(secs.is_finite() && secs >= 0.0)
        {
            return Err(format!(
                "dropAfterSecs must be zero or more seconds, not {secs}"
            ));
        }
        for (field, map) in [
            ("restoreDetailsErrors", &self.restore_details_errors),
            ("startErrors", &self.start_errors),
        ] {
            for (db, code) in map {
                if db.trim().is_empty() {
                    return Err(format!(
                        "{field} needs a database name or \"*\" as each key"
                    ));
                }
                if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "{field}[{db:?}] must be an error code such as BrokenRestorePlanNoFullBackup, not {code:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The code `map` holds for `database`: its own entry first (any case), else the `"*"` entry.
    pub(crate) fn code_for<'a>(
        map: &'a BTreeMap<String, String>,
        database: &str,
    ) -> Option<&'a str> {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(database))
            .or_else(|| map.get_key_value("*"))
            .map(|(_, v)| v.as_str())
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// Answer it normally.
    None,
    /// 429 with `Retry-After`.
    Throttle {
        /// Seconds.
        retry_after_secs: u64,
    },
    /// 500.
    ServerError,
    /// 409 `ConflictingDatabaseOperation`.
    Conflict,
}

/// The faults and the generator that applies them.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub faults: Faults,
    rng: StdRng,
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        FaultState { faults, rng }
    }

    /// Decides the fate of one request.
    pub fn draw(&mut self, is_write: bool) -> Injected {
        let f = &self.faults;
        let (throttle, server, conflict) = (f.throttle_rate, f.server_error_rate, f.conflict_rate);
        let retry_after_secs = f.retry_after_secs;
        if throttle > 0.0 && self.rng.random_bool(throttle) {
            return Injected::Throttle { retry_after_secs };
        }
        if server > 0.0 && self.rng.random_bool(server) {
            return Injected::ServerError;
        }
        if is_write && conflict > 0.0 && self.rng.random_bool(conflict) {
            return Injected::Conflict;
        }
        Injected::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_for_a_seed() {
        let faults = Faults {
            throttle_rate: 0.3,
            server_error_rate: 0.3,
            conflict_rate: 0.3,
            seed: 42,
            ..Faults::default()
        };
        let draw = |n| {
            let mut s = FaultState::new(faults.clone());
            (0..n).map(|i| s.draw(i % 2 == 0)).collect::<Vec<_>>()
        };
        let a = draw(200);
        assert_eq!(a, draw(200));
        assert!(a.iter().any(|d| matches!(
            d,
            Injected::Throttle {
                retry_after_secs: 1
            }
        )));
        assert!(a.contains(&Injected::ServerError));
        assert!(a.contains(&Injected::Conflict));
        assert!(a.contains(&Injected::None));
    }

    #[test]
    fn no_faults_by_default_and_rates_are_checked() {
        let mut s = FaultState::new(Faults::default());
        assert!((0..100).all(|_| s.draw(true) == Injected::None));
        let bad = Faults {
            throttle_rate: 1.5,
            ..Faults::default()
        };
        assert_eq!(
            bad.validate(),
            Err("the throttle rate must be between 0 and 1, not 1.5".into())
        );
        let bad = Faults {
            drop_after_secs: Some(-1.0),
            ..Faults::default()
        };
        assert!(bad.validate().is_err_and(|e| e.contains("dropAfterSecs")));
        let bad = Faults {
            start_errors: BTreeMap::from([("db1".into(), "not a code".into())]),
            ..Faults::default()
        };
        assert!(bad.validate().is_err_and(|e| e.contains("startErrors")));
    }

    #[test]
    fn a_database_entry_wins_over_the_star_and_names_ignore_case() {
        let map = BTreeMap::from([
            ("*".to_owned(), "SqlRestoreError".to_owned()),
            ("Db1".to_owned(), "BackupSetBroken".to_owned()),
        ]);
        assert_eq!(Faults::code_for(&map, "db1"), Some("BackupSetBroken"));
        assert_eq!(Faults::code_for(&map, "db2"), Some("SqlRestoreError"));
        assert_eq!(Faults::code_for(&BTreeMap::new(), "db2"), None);
    }

    #[test]
    fn the_json_api_uses_the_documented_field_names_and_refuses_others() {
        let f: Faults = serde_json::from_str(
            r#"{"restoreDetailsErrors":{"*":"SqlRestoreError"},"dropAfterSecs":5,"startErrors":{"db1":"DatabaseNumberLimitReached"}}"#,
        )
        .expect("valid faults");
        assert_eq!(f.drop_after_secs, Some(5.0));
        assert_eq!(f.start_errors["db1"], "DatabaseNumberLimitReached");
        assert!(serde_json::from_str::<Faults>(r#"{"dropAfter":5}"#).is_err());
    }
}
