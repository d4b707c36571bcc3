//! A target instance's facts for the preflight: read through ARM, kept in one state document per
//! instance (`_instance/<name>.<resource group>.<subscription>.json`, so two instances of one name
//! in different groups or subscriptions never share facts) and refreshed at most every [`REFRESH_AFTER`]. A failed refresh keeps
//! the last facts and says how old they are.
//!
//! Each process also keeps the fresh facts it last read ([`Memo`]): a wave of starts on one
//! instance reads the document once per process, not once per start. The copy obeys the same
//! ten-minute age as the document, so it is never staler than the document could be.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tracing::warn;

use super::lrs_port::LrsApi;
use crate::lrs::{Database, ManagedInstance};
use crate::preflight::{InstanceDatabase, InstanceFacts, Tier, UpdatePolicy};
use crate::storage::{self, Precondition, StateStore};

/// How long cached facts are used before ARM is asked again.
pub const REFRESH_AFTER: Duration = Duration::minutes(10);

/// The prefix of the instance documents; database state keys are `<container>/<folder>.json`
/// and a container name never starts with `_`.
pub const PREFIX: &str = "_instance/";

/// The cached document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cached {
    /// The last facts read, if any.
    #[serde(default)]
    facts: Option<InstanceFacts>,
    /// When a refresh last failed, and why.
    #[serde(default, with = "time::serde::rfc3339::option")]
    failed_at: Option<OffsetDateTime>,
    #[serde(default)]
    error: Option<String>,
}

/// The facts to check against, and a note when they are stale or missing.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// What is known (empty when nothing could be read).
    pub facts: InstanceFacts,
    /// Why the facts are old or missing, for the audit and the log.
    pub note: Option<String>,
}

/// The fresh facts this process last read, by instance document name.
#[derive(Debug, Default)]
pub struct Memo(Mutex<HashMap<String, InstanceFacts>>);

impl Memo {
    /// The kept facts of `instance` if they are younger than [`REFRESH_AFTER`] at `now`.
    fn fresh(&self, instance: &str, now: OffsetDateTime) -> Option<InstanceFacts> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(instance).filter(|f| is_fresh(f, now)).cloned()
    }

    fn keep(&self, instance: &str, facts: &InstanceFacts) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.insert(instance.to_owned(), facts.clone());
    }
}

/// Facts read less than [`REFRESH_AFTER`] before `now` (and not after it: a clock step back
/// refreshes rather than trusting a read from the future).
fn is_fresh(facts: &InstanceFacts, now: OffsetDateTime) -> bool {
    facts
        .read_at
        .is_some_and(|at| now - at < REFRESH_AFTER && at <= now)
}

/// The facts from ARM's answers.
pub fn facts_from_arm(
    name: &str,
    mi: &ManagedInstance,
    databases: &[Database],
    storage_used_mb: Option<u64>,
) -> InstanceFacts {
    let props = &mi.properties;
    let sku = mi.sku.as_ref();
    InstanceFacts {
        name: Some(mi.name.clone().unwrap_or_else(|| name.to_owned())),
        tier: Tier::from_arm(
            sku.and_then(|s| s.tier.as_deref()),
            sku.and_then(|s| s.name.as_deref()),
            props.is_general_purpose_v2.unwrap_or(false),
        ),
        vcores: props.v_cores.or_else(|| sku.and_then(|s| s.capacity)),
        storage_size_mb: props.storage_size_in_gb.map(|gb| gb.saturating_mul(1024)),
        storage_used_mb,
        update_policy: props
            .database_format
            .as_deref()
            .and_then(|f| f.parse::<UpdatePolicy>().ok()),
        state: props.state.clone(),
        maintenance_configuration_id: props.maintenance_configuration_id.clone(),
        databases: Some(
            databases
                .iter()
                .filter_map(|d| {
                    Some(InstanceDatabase {
                        name: d.name.clone()?,
                        status: d.properties.status.as_ref().map(ToString::to_string),
                        lrs_restore: d
                            .properties
                            .create_mode
                            .as_deref()
                            .is_some_and(|m| m.eq_ignore_ascii_case("RestoreExternalBackup")),
                    })
                })
                .collect(),
        ),
        read_at: None,
    }
}

/// The facts of `instance` (its document name, [`crate::migration::TargetInstance::document_name`],
/// read through `lrs`): the cached ones when younger than [`REFRESH_AFTER`], else freshly read
/// (and cached); on a failed read, the last ones with a note saying how old they are. Fresh
/// facts kept in `memo` answer without reading the document.
///
/// # Errors
/// Storage trouble reading the cache; ARM trouble is a note, never an error.
pub async fn facts(
    state: &dyn StateStore,
    lrs: &dyn LrsApi,
    memo: &Memo,
    instance: &str,
    now: OffsetDateTime,
) -> Result<Facts, storage::Error> {
    if let Some(facts) = memo.fresh(instance, now) {
        return Ok(Facts { facts, note: None });
    }
    let key = format!("{PREFIX}{instance}.json");
    let (cached, precondition) = match state.get(&key).await? {
        Some((bytes, etag)) => (
            serde_json::from_slice::<Cached>(&bytes).unwrap_or_default(),
            Precondition::IfMatch(etag),
        ),
        None => (Cached::default(), Precondition::IfNoneMatch),
    };
    if let Some(facts) = cached.facts.as_ref().filter(|f| is_fresh(f, now)) {
        memo.keep(instance, facts);
        return Ok(Facts {
            facts: facts.clone(),
            note: None,
        });
    }
    match lrs.instance_facts().await {
        Ok(mut facts) => {
            facts.read_at = Some(now);
            memo.keep(instance, &facts);
            let doc = Cached {
                facts: Some(facts.clone()),
                failed_at: None,
                error: None,
            };
            write(state, &key, &doc, precondition).await;
            Ok(Facts { facts, note: None })
        }
        Err(e) => {
            let note = match cached.facts.as_ref().and_then(|f| f.read_at) {
                Some(at) => format!(
                    "the instance could not be read ({e}); checking against facts {} minutes old",
                    (now - at).whole_minutes().max(0)
                ),
                None => {
                    format!("the instance could not be read ({e}); only the backups are checked")
                }
            };
            warn!(note = %note, "instance facts");
            if cached.facts.is_some() {
                let doc = Cached {
                    failed_at: Some(now),
                    error: Some(e.to_string()),
                    ..cached.clone()
                };
                write(state, &key, &doc, precondition).await;
            }
            Ok(Facts {
                facts: cached.facts.unwrap_or_default(),
                note: Some(note),
            })
        }
    }
}

/// A lost race is fine: another Functions instance refreshed the same facts at the same time.
async fn write(state: &dyn StateStore, key: &str, doc: &Cached, precondition: Precondition) {
    let bytes = serde_json::to_vec(doc).expect("the instance document always serialises");
    match state.put(key, bytes, precondition).await {
        Ok(_) | Err(storage::Error::Conflict { .. }) => {}
        Err(e) => warn!(error = %e, key, "could not cache the instance facts"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use time::macros::datetime;

    use super::*;
    use crate::pipeline::{LrsCallError, OperationState, RestoreView, StartRequest};
    use crate::storage::folder::FolderStateStore;

    /// A mock LRS port (no simulator needed for the cache rules): answers instance reads from a
    /// script and counts them; every other call is unused here.
    struct Scripted {
        answers: Mutex<Vec<Result<InstanceFacts, LrsCallError>>>,
        reads: Mutex<usize>,
    }

    fn unused() -> LrsCallError {
        LrsCallError {
            status: None,
            code: None,
            message: "unused".into(),
            retryable: false,
        }
    }

    #[async_trait]
    impl LrsApi for Scripted {
        async fn start(&self, _: &StartRequest) -> Result<Option<String>, LrsCallError> {
            Err(unused())
        }
        async fn restore_details(&self, _: &str) -> Result<RestoreView, LrsCallError> {
            Err(unused())
        }
        async fn complete(&self, _: &str, _: &str) -> Result<Option<String>, LrsCallError> {
            Err(unused())
        }
        async fn poll_operation(&self, _: &str) -> Result<OperationState, LrsCallError> {
            Err(unused())
        }
        async fn database_status(&self, _: &str) -> Result<String, LrsCallError> {
            Err(unused())
        }
        async fn instance_facts(&self) -> Result<InstanceFacts, LrsCallError> {
            *self.reads.lock().expect("lock") += 1;
            self.answers.lock().expect("lock").remove(0)
        }
        fn instance_name(&self) -> String {
            "mi1".into()
        }
    }

    /// The facts as a process without a kept copy reads them: through the document.
    async fn by_new_process(store: &FolderStateStore, lrs: &Scripted, at: OffsetDateTime) -> Facts {
        facts(store, lrs, &Memo::default(), "mi1", at)
            .await
            .expect("read")
    }

    fn gp() -> InstanceFacts {
        InstanceFacts {
            tier: Some(Tier::GeneralPurpose),
            ..InstanceFacts::default()
        }
    }

    #[tokio::test]
    async fn facts_are_cached_ten_minutes_and_a_failed_refresh_keeps_them_with_their_age() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStateStore::new(dir.path()).expect("store");
        let lrs = Scripted {
            answers: Mutex::new(vec![
                Ok(gp()),
                Err(LrsCallError {
                    status: Some(503),
                    code: Some("ServiceUnavailable".into()),
                    message: "down".into(),
                    retryable: true,
                }),
            ]),
            reads: Mutex::new(0),
        };
        let t0 = datetime!(2026-01-01 10:00 UTC);
        let first = by_new_process(&store, &lrs, t0).await;
        assert_eq!(first.facts.tier, Some(Tier::GeneralPurpose));
        assert!(first.note.is_none());
        assert!(
            store
                .get("_instance/mi1.json")
                .await
                .expect("get")
                .is_some()
        );
        // Within ten minutes: the cache, no read.
        let cached = by_new_process(&store, &lrs, t0 + Duration::minutes(9)).await;
        assert_eq!(cached.facts.tier, Some(Tier::GeneralPurpose));
        assert_eq!(*lrs.reads.lock().expect("lock"), 1);
        // After: a read, which fails; the last facts stay, with their age.
        let stale = by_new_process(&store, &lrs, t0 + Duration::minutes(25)).await;
        assert_eq!(*lrs.reads.lock().expect("lock"), 2);
        assert_eq!(stale.facts.tier, Some(Tier::GeneralPurpose));
        let note = stale.note.expect("a note");
        assert!(
            note.contains("25 minutes old") && note.contains("ServiceUnavailable"),
            "{note}"
        );
    }

    #[tokio::test]
    async fn without_any_facts_a_failed_read_checks_the_backups_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStateStore::new(dir.path()).expect("store");
        let lrs = Scripted {
            answers: Mutex::new(vec![Err(unused())]),
            reads: Mutex::new(0),
        };
        let got = by_new_process(&store, &lrs, datetime!(2026-01-01 10:00 UTC)).await;
        assert!(got.facts.is_empty());
        assert!(got.note.expect("a note").contains("only the backups"));
        assert!(
            store
                .get("_instance/mi1.json")
                .await
                .expect("get")
                .is_none()
        );
    }

    #[tokio::test]
    async fn two_instances_of_one_name_keep_their_own_facts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStateStore::new(dir.path()).expect("store");
        let bc = InstanceFacts {
            tier: Some(Tier::BusinessCritical),
            ..InstanceFacts::default()
        };
        let scripted = |f: InstanceFacts| Scripted {
            answers: Mutex::new(vec![Ok(f)]),
            reads: Mutex::new(0),
        };
        let (one, two) = (scripted(gp()), scripted(bc));
        let t0 = datetime!(2026-01-01 10:00 UTC);
        let in_s1 = crate::migration::TargetInstance::new("s1", "rg", "mi1").expect("valid");
        let in_s2 = crate::migration::TargetInstance::new("s2", "rg", "mi1").expect("valid");
        let a = facts(&store, &one, &Memo::default(), &in_s1.document_name(), t0)
            .await
            .expect("read");
        let b = facts(&store, &two, &Memo::default(), &in_s2.document_name(), t0)
            .await
            .expect("read");
        assert_eq!(a.facts.tier, Some(Tier::GeneralPurpose));
        assert_eq!(b.facts.tier, Some(Tier::BusinessCritical));
        // Both cached, apart: a second read of each answers from its own document.
        let again = facts(&store, &one, &Memo::default(), &in_s1.document_name(), t0)
            .await
            .expect("read");
        assert_eq!(again.facts.tier, Some(Tier::GeneralPurpose));
        assert_eq!(*one.reads.lock().expect("lock"), 1);
        let mut keys = store.list(PREFIX).await.expect("list");
        keys.sort();
        assert_eq!(
            keys,
            ["_instance/mi1.rg.s1.json", "_instance/mi1.rg.s2.json"]
        );
    }

    #[tokio::test]
    async fn a_process_keeps_fresh_facts_and_reads_neither_document_nor_arm_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FolderStateStore::new(dir.path()).expect("store");
        let lrs = Scripted {
            answers: Mutex::new(vec![Ok(gp()), Ok(InstanceFacts::default())]),
            reads: Mutex::new(0),
        };
        let memo = Memo::default();
        let t0 = datetime!(2026-01-01 10:00 UTC);
        facts(&store, &lrs, &memo, "mi1", t0).await.expect("read");
        // The document is gone: only the process's own copy can answer now.
        std::fs::remove_file(dir.path().join("_instance/mi1.json")).expect("remove");
        let kept = facts(&store, &lrs, &memo, "mi1", t0 + Duration::minutes(9))
            .await
            .expect("read");
        assert_eq!(kept.facts.tier, Some(Tier::GeneralPurpose));
        assert_eq!(*lrs.reads.lock().expect("lock"), 1);
        // Ten minutes on, the copy is as stale as the document would be: ARM is asked.
        let later = facts(&store, &lrs, &memo, "mi1", t0 + Duration::minutes(10))
            .await
            .expect("read");
        assert_eq!(*lrs.reads.lock().expect("lock"), 2);
        assert_eq!(later.facts.tier, None);
    }

    #[test]
    fn arm_answers_become_facts() {
        let mi: ManagedInstance = serde_json::from_str(
            r#"{"location":"westeurope","name":"mi1","sku":{"name":"GP_Gen5","tier":"GeneralPurpose"},
            "properties":{"storageSizeInGB":64,"databaseFormat":"SQLServer2025","isGeneralPurposeV2":true}}"#,
        )
        .expect("valid");
        let dbs: Vec<Database> = serde_json::from_str(
            r#"[{"name":"a","properties":{"status":"Online"}},
               {"name":"b","properties":{"status":"Restoring","createMode":"RestoreExternalBackup"}}]"#,
        )
        .expect("valid");
        let f = facts_from_arm("mi1", &mi, &dbs, Some(1000));
        assert_eq!(f.tier, Some(Tier::NextGenGeneralPurpose));
        assert_eq!(f.update_policy, Some(UpdatePolicy::SQLServer2025));
        assert_eq!(f.free_storage_mb(), Some(64 * 1024 - 1000));
        let list = f.databases.expect("list");
        assert!(!list[0].lrs_restore && list[1].lrs_restore);
        assert_eq!(list[0].status.as_deref(), Some("Online"));
    }
}
