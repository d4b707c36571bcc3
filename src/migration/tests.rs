//! Scenario tests of the state machine on synthetic folders and a virtual clock.

use proptest::prelude::*;
use time::macros::datetime;

use super::*;
use crate::chain::FolderFile;
use crate::chain::synthetic::Synthetic;

const T0: OffsetDateTime = datetime!(2026-01-05 08:00 UTC);

/// A scripted world: one database's state, a virtual clock and everything the machine asked for.
struct World {
    state: MigrationState,
    now: OffsetDateTime,
    slot: bool,
    target: Option<TargetInstance>,
    actions: Vec<Action>,
}

impl World {
    fn new() -> Self {
        World {
            state: MigrationState::new("sqlfiles", "Sales", "Sales", T0),
            now: T0,
            slot: true,
            target: None,
            actions: Vec::new(),
        }
    }

    fn ctx(&self) -> Context {
        Context {
            now: self.now,
            tail_pattern: Some("*tail*".into()),
            default_collation: "Latin1_General_CI_AS".into(),
            slot_available: self.slot,
            sas_days_left: None,
            name_owner: None,
            target: self.target.clone(),
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        let ctx = self.ctx();
        let out = handle(&mut self.state, input, &ctx);
        self.actions.extend(out.iter().cloned());
        out
    }

    fn file(&mut self, file: FolderFile) -> Vec<Action> {
        let record = FileRecord {
            file,
            etag: Some("e".into()),
            pending: false,
            tail_metadata: false,
            bytes_read: 1,
            first_seen: self.now,
        };
        self.feed(Input::FileSeen(Box::new(record)))
    }

    fn restored(&mut self, last: &str, restored: u64, queued: u64) -> Vec<Action> {
        self.feed(Input::Restore(LrsSnapshot {
            restore_type: Some("LRSRestore".into()),
            status: Some("Restoring".into()),
            last_restored_file: Some(last.into()),
            files_restored: restored,
            files_queued: queued,
            ..LrsSnapshot::default()
        }))
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn count(&self, pred: impl Fn(&Action) -> bool) -> usize {
        self.actions.iter().filter(|a| pred(a)).count()
    }

    fn starts(&self) -> usize {
        self.count(|a| matches!(a, Action::StartLrs { .. }))
    }

    fn completes(&self) -> usize {
        self.count(|a| matches!(a, Action::CompleteRestore { .. }))
    }

    fn alerts(&self, kind: AlertKind) -> usize {
        self.count(|a| matches!(a, Action::Alert(al) if al.kind == kind))
    }
}

/// Full, two logs and a tail, with checksums.
fn chain() -> Vec<FolderFile> {
    let mut db = Synthetic::new("Sales").checksums(true);
    let full = db.full(100, 200);
    vec![
        full.file("Sales_full.bak"),
        db.log(200, 300).file("Sales_1.trn"),
        db.log(300, 400).file("Sales_2.trn"),
        db.log(400, 410).file("Sales_tail.trn"),
    ]
}

fn err(status: u16, code: &str, class: ErrorClass) -> CallError {
    CallError {
        status: Some(status),
        code: Some(code.into()),
        message: format!("{code} happened"),
        class,
        advice: "do the thing".into(),
    }
}

#[test]
fn starts_once_when_a_full_backup_lands_and_never_again() {
    let mut w = World::new();
    let files = chain();
    let out = w.file(files[0].clone());
    assert!(
        matches!(&out[..], [.., Action::StartLrs { database_name, .. }] if database_name == "Sales"),
        "{out:?}"
    );
    assert_eq!(w.state.phase, Phase::Starting);
    w.feed(Input::StartAccepted { operation: None });
    assert_eq!(w.state.phase, Phase::Restoring);
    for f in &files[1..] {
        w.file(f.clone());
    }
    w.file(files[0].clone());
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 1);
}

#[test]
fn waits_in_ready_while_the_instance_has_no_free_slot() {
    let mut w = World::new();
    w.slot = false;
    w.file(chain()[0].clone());
    assert_eq!(w.state.phase, Phase::Ready);
    assert_eq!(w.starts(), 0);
    w.slot = true;
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 1);
    assert_eq!(w.state.phase, Phase::Starting);
}

#[test]
fn completes_only_once_the_tail_is_the_last_restored_file() {
    let mut w = World::new();
    for f in chain() {
        w.file(f);
    }
    w.feed(Input::StartAccepted { operation: None });
    assert_eq!(w.state.phase, Phase::CutoverPending);
    assert_eq!(
        w.state.tail.as_ref().map(|t| t.source),
        Some(TailSource::Pattern)
    );
    w.restored("Sales_2.trn", 3, 1);
    assert_eq!(w.completes(), 0, "completed before the tail was restored");
    let out = w.restored("Sales_tail.trn", 4, 0);
    assert!(
        out.contains(&Action::CompleteRestore {
            last_backup_name: "Sales_tail.trn".into()
        }),
        "{out:?}"
    );
    assert_eq!(w.state.phase, Phase::Completing);
    // A second snapshot while completing does not send it again.
    w.restored("Sales_tail.trn", 4, 0);
    assert_eq!(w.completes(), 1);
    let out = w.feed(Input::CompleteAccepted { operation: None });
    assert!(out.contains(&Action::PollDatabaseStatus));
    w.feed(Input::DatabaseStatus("Restoring".into()));
    assert_eq!(w.state.phase, Phase::Completing);
    w.feed(Input::DatabaseStatus("Online".into()));
    assert_eq!(w.state.phase, Phase::Completed);
}

#[test]
fn a_log_after_the_tail_blocks_the_cutover() {
    let mut w = World::new();
    let mut db = Synthetic::new("Sales").checksums(true);
    let full = db.full(100, 200);
    w.file(full.file("Sales_full.bak"));
    w.feed(Input::StartAccepted { operation: None });
    w.file(db.log(200, 300).file("Sales_tail.trn"));
    w.file(db.log(300, 400).file("Sales_late.trn"));
    w.restored("Sales_tail.trn", 2, 1);
    assert_eq!(w.completes(), 0);
    assert_eq!(w.state.phase, Phase::Blocked);
    assert!(
        w.state
            .findings()
            .iter()
            .any(|f| f.code == FindingCode::TailRefused)
    );
    assert_eq!(
        w.state.tail, None,
        "a named file with a later log is not the tail"
    );
    assert_eq!(w.alerts(AlertKind::DatabaseBlocked), 1);
}

#[test]
fn an_operator_cutover_names_the_tail() {
    let mut w = World::new();
    let files = chain();
    for f in &files[..3] {
        w.file(f.clone());
    }
    w.feed(Input::StartAccepted { operation: None });
    assert_eq!(w.state.phase, Phase::Restoring);
    w.feed(Input::Cutover { last_backup: None });
    let tail = w.state.tail.clone().expect("tail");
    assert_eq!(
        (tail.file_name.as_str(), tail.source),
        ("Sales_2.trn", TailSource::Operator)
    );
    assert_eq!(w.state.phase, Phase::CutoverPending);
    let out = w.restored("Sales_2.trn", 3, 0);
    assert!(out.contains(&Action::CompleteRestore {
        last_backup_name: "Sales_2.trn".into()
    }));
}

#[test]
fn a_refused_completion_is_retried_on_a_later_tick_not_at_once() {
    let mut w = World::new();
    for f in chain() {
        w.file(f);
    }
    w.feed(Input::StartAccepted { operation: None });
    w.restored("Sales_tail.trn", 4, 0);
    assert_eq!(w.completes(), 1);
    let out = w.feed(Input::CompleteFailed(err(
        400,
        "RequiredBackupIsNotLastRestored",
        ErrorClass::Retry,
    )));
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::CompleteRestore { .. })),
        "{out:?}"
    );
    assert_eq!(w.state.phase, Phase::CutoverPending);
    w.restored("Sales_tail.trn", 4, 0);
    assert_eq!(w.completes(), 2);
}

#[test]
fn a_refused_start_blocks_until_an_operator_resumes() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartFailed(err(
        400,
        "InvalidCollation",
        ErrorClass::Block,
    )));
    assert_eq!(w.state.phase, Phase::Blocked);
    assert!(
        w.state
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("InvalidCollation"))
    );
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 1);
    w.feed(Input::Resume);
    assert_eq!(w.starts(), 2);
    assert_eq!(w.state.phase, Phase::Starting);
}

#[test]
fn a_name_in_use_by_our_own_earlier_start_is_adopted() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartNameInUse { lrs_restore: true });
    assert_eq!(w.state.phase, Phase::Restoring);
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartNameInUse { lrs_restore: false });
    assert_eq!(w.state.phase, Phase::Blocked);
    let finding = w
        .state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::NameInUse)
        .expect("a name_in_use finding");
    assert!(finding.message.contains("Sales"), "{}", finding.message);
    assert!(finding.message.contains("LRS_DATABASE_NAME_MAP"));
    assert_eq!(w.alerts(AlertKind::DatabaseBlocked), 1);
}

#[test]
fn a_start_cut_off_before_it_was_confirmed_is_reconciled() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    // The instance died between the claim and ARM's answer: no outcome came back.
    assert_eq!(w.state.phase, Phase::Starting);
    w.advance(START_RECONCILE_AFTER);
    let out = w.feed(Input::Tick);
    assert!(out.contains(&Action::PollRestoreDetails), "{out:?}");
    // restoreDetails does not know it: only GET database can tell.
    let out = w.feed(Input::RestoreDetailsFailed(err(
        400,
        "RestoreDetailsNotAvailableOrExpired",
        ErrorClass::Retry,
    )));
    assert_eq!(out, [Action::PollDatabaseStatus]);
    // The database does not exist: the start never arrived, so it is sent again.
    let out = w.feed(Input::DatabaseGone);
    assert!(
        out.iter().any(|a| matches!(a, Action::StartLrs { .. })),
        "{out:?}"
    );
    assert_ne!(w.state.phase, Phase::Lost);
    // Or LRS answers: the first start did arrive; it is adopted.
    let mut w2 = World::new();
    w2.file(chain()[0].clone());
    w2.advance(START_RECONCILE_AFTER);
    w2.feed(Input::Tick);
    w2.restored("Sales_full.bak", 1, 0);
    assert_eq!(w2.state.phase, Phase::Restoring);
    assert_eq!(w2.starts(), 1);
}

#[test]
fn warns_near_the_thirty_day_limit_and_expires_after_it() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartAccepted { operation: None });
    w.advance(Duration::days(25));
    w.feed(Input::Tick);
    w.feed(Input::Tick);
    assert_eq!(w.alerts(AlertKind::LimitNear), 1);
    w.advance(Duration::days(5));
    w.feed(Input::Tick);
    assert_eq!(w.state.phase, Phase::Expired);
}

#[test]
fn raises_a_stall_alert_when_queued_files_make_no_progress() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartAccepted { operation: None });
    w.restored("Sales_full.bak", 1, 2);
    w.advance(STALL_AFTER);
    w.feed(Input::Tick);
    assert_eq!(w.alerts(AlertKind::Stalled), 1);
}

#[test]
fn a_gap_waits_for_late_files_before_it_blocks() {
    let mut w = World::new();
    let files = chain();
    w.file(files[0].clone());
    w.feed(Input::StartAccepted { operation: None });
    w.file(files[2].clone()); // Sales_2.trn before Sales_1.trn: a gap, for now
    assert_ne!(w.state.phase, Phase::Blocked);
    assert_eq!(w.alerts(AlertKind::DatabaseBlocked), 0);
    assert!(
        w.state
            .next_poll_at
            .is_some_and(|t| t <= w.now + SETTLE_GRACE)
    );
    w.file(files[1].clone()); // the late one arrives
    w.advance(SETTLE_GRACE);
    w.feed(Input::Tick);
    assert_eq!(w.state.phase, Phase::Restoring);
    assert_eq!(w.alerts(AlertKind::DatabaseBlocked), 0);

    let mut w = World::new();
    w.file(files[0].clone());
    w.feed(Input::StartAccepted { operation: None });
    w.file(files[2].clone());
    w.advance(SETTLE_GRACE);
    w.feed(Input::Tick);
    assert_eq!(w.state.phase, Phase::Blocked);
    assert_eq!(w.alerts(AlertKind::DatabaseBlocked), 1);
}

#[test]
fn pause_holds_everything_and_resume_goes_on() {
    let mut w = World::new();
    w.slot = true;
    w.feed(Input::Pause);
    w.file(chain()[0].clone());
    assert_eq!(w.state.phase, Phase::Paused);
    assert_eq!(w.starts(), 0);
    w.feed(Input::Resume);
    assert_eq!(w.starts(), 1);
}

#[test]
fn the_audit_trail_is_bounded() {
    let mut w = World::new();
    for _ in 0..(AUDIT_LIMIT * 2) {
        w.feed(Input::Pause);
    }
    assert_eq!(w.state.audit.len(), AUDIT_LIMIT);
}

#[test]
fn state_documents_round_trip_through_json() {
    let mut w = World::new();
    for f in chain() {
        w.file(f);
    }
    w.feed(Input::StartAccepted { operation: None });
    w.restored("Sales_1.trn", 2, 2);
    let json = serde_json::to_string(&w.state).expect("serialise");
    let back: MigrationState = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, w.state);
}

#[derive(Debug, Clone)]
enum Step {
    File(usize),
    Tick(i64),
    Restored(usize),
    StartOk,
    StartTransient,
    CompleteOk,
    CompleteNotYet,
    Online,
    Cutover,
    Gone,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..4).prop_map(Step::File),
        (0i64..2000).prop_map(Step::Tick),
        (0usize..4).prop_map(Step::Restored),
        Just(Step::StartOk),
        Just(Step::StartTransient),
        Just(Step::CompleteOk),
        Just(Step::CompleteNotYet),
        Just(Step::Online),
        Just(Step::Cutover),
        Just(Step::Gone),
    ]
}

proptest! {
    /// Whatever happens, in whatever order: completion is asked for only with the tail as LRS's last
    /// restored file, at most one start is in flight at a time, and nothing is ever deleted.
    #[test]
    fn never_completes_early_nor_starts_twice_in_flight(steps in proptest::collection::vec(step(), 1..60)) {
        let files = chain();
        let mut w = World::new();
        let mut last_restored: Option<String> = None;
        for s in steps {
            let before = w.actions.len();
            match s {
                Step::File(i) => { w.file(files[i].clone()); }
                Step::Tick(secs) => { w.advance(Duration::seconds(secs)); w.feed(Input::Tick); }
                Step::Restored(i) => {
                    last_restored = Some(files[i].name.clone());
                    w.restored(&files[i].name, i as u64 + 1, 0);
                }
                Step::StartOk => { w.feed(Input::StartAccepted { operation: None }); }
                Step::StartTransient => { w.feed(Input::StartFailed(err(429, "SubscriptionTooManyRequests", ErrorClass::Retry))); }
                Step::CompleteOk => { w.feed(Input::CompleteAccepted { operation: None }); }
                Step::CompleteNotYet => { w.feed(Input::CompleteFailed(err(400, "RequiredBackupIsNotLastRestored", ErrorClass::Retry))); }
                Step::Gone => { w.feed(Input::DatabaseGone); }
                Step::Online => { w.feed(Input::DatabaseStatus("Online".into())); }
                Step::Cutover => { w.feed(Input::Cutover { last_backup: None }); }
            }
            for a in &w.actions[before..] {
                if let Action::CompleteRestore { last_backup_name } = a {
                    prop_assert_eq!(Some(last_backup_name), last_restored.as_ref(), "completed before the named tail was restored");
                    prop_assert_eq!(w.state.tail.as_ref().map(|t| &t.file_name), Some(last_backup_name));
                }
            }
            let starts_here = w.actions[before..].iter().filter(|a| matches!(a, Action::StartLrs { .. })).count();
            prop_assert!(starts_here <= 1);
            if w.state.phase == Phase::Lost {
                prop_assert_eq!(starts_here, 0, "a lost database is never restarted on its own");
            }
            if w.state.phase == Phase::Completed {
                prop_assert!(w.state.lrs.complete_sent_at.is_some());
            }
        }
    }
}

/// Started, restoring, with the snapshot seen.
fn restoring() -> World {
    let mut w = World::new();
    for f in &chain()[..2] {
        w.file(f.clone());
    }
    w.feed(Input::StartAccepted {
        operation: Some("location https://management.azure.com/op/1?api-version=2025-01-01".into()),
    });
    w.restored("Sales_1.trn", 2, 0);
    assert_eq!(w.state.phase, Phase::Restoring);
    w
}

#[test]
fn a_broken_restore_plan_in_restore_details_blocks_with_an_alert() {
    let mut w = restoring();
    w.feed(Input::RestoreDetailsFailed(err(
        400,
        "BrokenRestorePlanGapInLogBackups",
        ErrorClass::Block,
    )));
    assert_eq!(w.state.phase, Phase::Blocked);
    let f = w
        .state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::LrsError)
        .expect("an lrs_error finding");
    assert!(f.message.contains("BrokenRestorePlanGapInLogBackups"));
    assert!(f.message.contains("do the thing"), "the advice is in it");
    assert_eq!(w.alerts(AlertKind::DatabaseBlocked), 1);
    // A transient one only retries.
    let mut w = restoring();
    w.feed(Input::RestoreDetailsFailed(err(
        429,
        "SubscriptionTooManyRequests",
        ErrorClass::Retry,
    )));
    assert_eq!(w.state.phase, Phase::Restoring);
    // A terminal one fails, with an alert.
    let mut w = restoring();
    w.feed(Input::RestoreDetailsFailed(err(
        400,
        "SqlRestoreError",
        ErrorClass::Terminal,
    )));
    assert_eq!(w.state.phase, Phase::Failed);
    assert_eq!(w.alerts(AlertKind::LrsFailed), 1);
}

#[test]
fn a_database_gone_after_its_start_is_lost_until_an_operator_restarts_it() {
    let mut w = restoring();
    let out = w.feed(Input::RestoreDetailsFailed(err(
        400,
        "RestoreDetailsNotAvailableOrExpired",
        ErrorClass::Retry,
    )));
    assert_eq!(
        out,
        [Action::PollDatabaseStatus],
        "only GET database decides"
    );
    assert_eq!(w.state.phase, Phase::Restoring);
    w.feed(Input::DatabaseGone);
    assert_eq!(w.state.phase, Phase::Lost);
    assert_eq!(w.alerts(AlertKind::Lost), 1);
    let detail = w
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Alert(al) if al.kind == AlertKind::Lost => Some(al.detail.clone()),
            _ => None,
        })
        .expect("a lost alert");
    for words in [
        "failover",
        "Business Critical",
        "30-day limit did not",
        "restart",
    ] {
        assert!(detail.contains(words), "{words}: {detail}");
    }
    // Nothing restarts it on its own.
    for _ in 0..5 {
        w.advance(Duration::hours(1));
        w.feed(Input::Tick);
    }
    assert_eq!(w.starts(), 1);
    assert_eq!(w.state.phase, Phase::Lost);
    // A restart while LRS still runs changes nothing.
    let mut running = restoring();
    running.feed(Input::Restart);
    assert_eq!(running.state.phase, Phase::Restoring);
    assert_eq!(running.state.restarts, 0);
    // The operator's restart starts again from the newest full, keeping files and audit.
    let audit_before = w.state.audit.len();
    w.feed(Input::Restart);
    assert_eq!(w.state.files.len(), 2);
    assert!(w.state.lrs.started_at.is_none() && w.state.lrs.lost_at.is_none());
    assert!(w.state.audit.len() > audit_before.min(AUDIT_LIMIT - 1));
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 2);
    assert_eq!(w.state.phase, Phase::Starting);
    assert_eq!(w.state.restarts, 1);
}

#[test]
fn a_lost_database_after_thirty_days_says_the_limit_did_it() {
    let mut w = restoring();
    w.advance(LRS_LIMIT + Duration::hours(1));
    w.feed(Input::DatabaseGone);
    assert_eq!(w.state.phase, Phase::Lost);
    let reason = w.state.reason.clone().expect("a reason");
    assert!(reason.contains("30-day limit did:"), "{reason}");
}

#[test]
fn a_404_before_the_database_was_ever_seen_is_not_lost() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartAccepted {
        operation: Some("location https://management.azure.com/op/1".into()),
    });
    w.feed(Input::DatabaseGone);
    assert_ne!(w.state.phase, Phase::Lost);
    // A failed create operation and then a 404 is positive evidence.
    w.feed(Input::Operation {
        kind: OperationKind::Start,
        poll: OperationPoll::Failed(err(400, "OperationCancelled", ErrorClass::Retry)),
    });
    w.feed(Input::DatabaseGone);
    assert_eq!(w.state.phase, Phase::Lost);
}

#[test]
fn the_create_operation_is_polled_each_due_tick_and_in_progress_is_information() {
    let mut w = restoring();
    w.advance(Duration::minutes(10));
    let out = w.feed(Input::Tick);
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::PollOperation {
                kind: OperationKind::Start,
                ..
            }
        )),
        "{out:?}"
    );
    assert!(out.contains(&Action::PollRestoreDetails));
    assert!(out.contains(&Action::PollDatabaseStatus));
    w.feed(Input::Operation {
        kind: OperationKind::Start,
        poll: OperationPoll::InProgress,
    });
    assert_eq!(w.state.phase, Phase::Restoring);
    w.feed(Input::Operation {
        kind: OperationKind::Start,
        poll: OperationPoll::Succeeded,
    });
    assert!(w.state.lrs.start_operation.is_none(), "no more polls");
    assert_eq!(w.state.phase, Phase::Restoring);
}

#[test]
fn polling_urls_with_a_sas_are_never_stored() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartAccepted {
        operation: Some("location https://x/op?sv=1&SIG=abc".into()),
    });
    assert!(w.state.lrs.start_operation.is_none());
}

#[test]
fn cutover_waits_for_the_tail_set_and_ignores_current_restoring_file() {
    let mut w = World::new();
    for f in chain() {
        w.file(f);
    }
    w.feed(Input::StartAccepted { operation: None });
    let snap = |tail_status: &str, pending: &[&str]| LrsSnapshot {
        status: Some("Restoring".into()),
        last_restored_file: Some("Sales_tail.trn".into()),
        current_restoring_file: Some("Sales_tail.trn".into()),
        files_restored: 4,
        sets_reported: true,
        tail_set_status: Some(tail_status.into()),
        pending_sets: pending.iter().map(|s| s.to_string()).collect(),
        ..LrsSnapshot::default()
    };
    w.feed(Input::Restore(snap("Restoring", &[])));
    assert_eq!(w.completes(), 0, "the tail's set is not Restored yet");
    w.feed(Input::Restore(snap("Restored", &["Sales_x.trn"])));
    assert_eq!(w.completes(), 0, "something is still queued");
    w.feed(Input::Restore(snap("Restored", &[])));
    assert_eq!(
        w.completes(),
        1,
        "currentRestoringFileName is not a condition"
    );
}

#[test]
fn after_completion_the_database_status_is_the_truth() {
    let mut w = World::new();
    for f in chain() {
        w.file(f);
    }
    w.feed(Input::StartAccepted { operation: None });
    w.restored("Sales_tail.trn", 4, 0);
    w.feed(Input::CompleteAccepted { operation: None });
    let out = w.feed(Input::RestoreDetailsFailed(err(
        400,
        "ManagedDatabaseNotInRestoringState",
        ErrorClass::Benign,
    )));
    assert_eq!(out, [Action::PollDatabaseStatus]);
    // Hours of seeding on Business Critical: still Completing, never a timeout.
    for _ in 0..10 {
        w.advance(Duration::hours(1));
        w.feed(Input::Tick);
        w.feed(Input::DatabaseStatus("Restoring".into()));
    }
    assert_eq!(w.state.phase, Phase::Completing);
    w.feed(Input::DatabaseStatus("Online".into()));
    assert_eq!(w.state.phase, Phase::Completed);
}

#[test]
fn an_undocumented_status_is_shown_once_and_never_blocks() {
    let mut w = restoring();
    for _ in 0..3 {
        w.feed(Input::Restore(LrsSnapshot {
            status: Some("Completed".into()),
            last_restored_file: Some("Sales_1.trn".into()),
            files_restored: 2,
            ..LrsSnapshot::default()
        }));
    }
    assert_eq!(w.alerts(AlertKind::Undocumented), 1);
    assert_eq!(w.state.phase, Phase::Restoring);
}

#[test]
fn a_throttled_or_limited_start_leaves_the_database_ready() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartFailed(err(
        429,
        "SubscriptionTooManyCreateUpdateRequests",
        ErrorClass::Retry,
    )));
    assert_eq!(w.state.phase, Phase::Ready);
    assert_eq!(w.starts(), 1, "not again in the same breath");
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 2);
    // The database number limit blocks, with the tier's limit.
    let mut w = World::new();
    w.file(chain()[0].clone());
    let mut e = err(400, "DatabaseNumberLimitReached", ErrorClass::Block);
    e.advice = "100 on General Purpose, 500 on Next-gen General Purpose".into();
    w.feed(Input::StartFailed(e));
    assert_eq!(w.state.phase, Phase::Blocked);
    let reason = w.state.reason.clone().expect("a reason");
    assert!(
        reason.contains("100 on General Purpose") && reason.contains("500"),
        "{reason}"
    );
}

#[test]
fn a_target_name_owned_by_another_folder_blocks_and_never_starts() {
    let mut w = World::new();
    let mut ctx = w.ctx();
    ctx.name_owner = Some("other/Sales".into());
    let record = FileRecord {
        file: chain()[0].clone(),
        etag: None,
        pending: false,
        tail_metadata: false,
        bytes_read: 1,
        first_seen: w.now,
    };
    let out = handle(&mut w.state, Input::FileSeen(Box::new(record)), &ctx);
    assert!(
        !out.iter().any(|a| matches!(a, Action::StartLrs { .. })),
        "{out:?}"
    );
    assert_eq!(w.state.phase, Phase::Blocked);
    let f = w
        .state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::TargetNameTaken)
        .expect("target_name_taken");
    assert!(f.message.contains("other/Sales"), "{}", f.message);
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 0);
}

fn mi(name: &str) -> TargetInstance {
    TargetInstance::new("sub", "rg", name).expect("valid")
}

#[test]
fn the_target_follows_the_map_until_lrs_starts_and_is_never_moved_after() {
    let mut w = World::new();
    w.slot = false;
    w.target = Some(mi("first"));
    w.file(chain()[0].clone());
    assert_eq!(w.state.phase, Phase::Ready);
    assert_eq!(w.state.target, Some(mi("first")));
    // Before the start: the database follows the map.
    w.target = Some(mi("second"));
    w.feed(Input::Tick);
    assert_eq!(w.state.target, Some(mi("second")));
    assert!(w.state.target_moved_to.is_none());
    w.slot = true;
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 1);
    w.feed(Input::StartAccepted { operation: None });
    // After it: not moved; a warning finding names both instances, alerted once.
    w.target = Some(mi("third"));
    w.feed(Input::Tick);
    w.feed(Input::Tick);
    assert_eq!(w.state.target, Some(mi("second")));
    assert_eq!(w.state.target_moved_to, Some(mi("third")));
    let f = w
        .state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::TargetMoved)
        .expect("target_moved");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.message.contains("managedInstances/second")
            && f.message.contains("managedInstances/third"),
        "{}",
        f.message
    );
    assert_eq!(w.alerts(AlertKind::Finding), 1);
    assert_eq!(w.starts(), 1, "no second start anywhere");
    assert_ne!(w.state.phase, Phase::Blocked, "the running restore goes on");
    // Mapped back: the finding goes.
    w.target = Some(mi("second"));
    w.feed(Input::Tick);
    assert!(w.state.target_moved_to.is_none());
    assert!(
        !w.state
            .findings()
            .iter()
            .any(|f| f.code == FindingCode::TargetMoved)
    );
}

#[test]
fn the_sas_expiry_alert_says_the_token_is_set_only_at_start() {
    let mut w = restoring();
    let mut ctx = w.ctx();
    ctx.sas_days_left = Some(2);
    w.advance(Duration::minutes(10));
    ctx.now = w.now;
    let out = handle(&mut w.state, Input::Tick, &ctx);
    let detail = out
        .iter()
        .find_map(|a| match a {
            Action::Alert(al) if al.kind == AlertKind::SasExpiring => Some(al.detail.clone()),
            _ => None,
        })
        .expect("a SAS expiry alert");
    for words in [
        "can be set only when LRS starts",
        "parallel restores from one container need the same",
        "before the token expires",
        "restart from a full backup with a new token",
    ] {
        assert!(detail.contains(words), "{words}: {detail}");
    }
}

#[test]
fn a_reconciled_start_adopts_only_an_lrs_restore() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    assert_eq!(w.state.phase, Phase::Starting);
    w.advance(START_RECONCILE_AFTER);
    w.feed(Input::Tick);
    // restoreDetails answers, but not as an LRS restore: someone else's database.
    w.feed(Input::Restore(LrsSnapshot {
        restore_type: Some("PointInTimeRestore".into()),
        ..LrsSnapshot::default()
    }));
    assert_eq!(w.state.phase, Phase::Blocked);
    assert!(w.state.lrs.started_at.is_none());
    assert!(
        w.state
            .findings()
            .iter()
            .any(|f| f.code == FindingCode::NameInUse)
    );
    assert_eq!(w.starts(), 1);
}

#[test]
fn a_restart_replans_from_the_newest_complete_full_backup() {
    let mut w = World::new();
    let mut db = Synthetic::new("Sales").checksums(true);
    let first = db.full(100, 200);
    w.file(first.file("Sales_full1.bak"));
    w.feed(Input::StartAccepted { operation: None });
    w.restored("Sales_full1.bak", 1, 0);
    let old_base = w.state.lrs.base_guid.expect("a base");
    w.file(db.log(200, 300).file("Sales_1.trn"));
    let second = db.full(300, 400);
    w.file(second.file("Sales_full2.bak"));
    w.feed(Input::DatabaseGone);
    assert_eq!(w.state.phase, Phase::Lost);
    w.feed(Input::Restart);
    w.feed(Input::Tick);
    assert_eq!(w.starts(), 2);
    let new_base = w.state.lrs.base_guid.expect("a new base");
    assert_ne!(
        new_base, old_base,
        "the restart starts from the newer full backup"
    );
    let plan = w.state.plan.as_ref().expect("a plan");
    assert_eq!(plan.steps[0].files, ["Sales_full2.bak"]);
}

/// Issue 11 item 3: a slow invocation that read an older version of a file writes last; the newer
/// record stays.
#[test]
fn an_older_read_of_a_file_never_replaces_a_newer_record() {
    let mut w = World::new();
    let files = chain();
    w.file(files[0].clone());
    let record = |file: &FolderFile, etag: &str, at: OffsetDateTime| FileRecord {
        file: FolderFile {
            last_modified: Some(at),
            ..file.clone()
        },
        etag: Some(etag.into()),
        pending: false,
        tail_metadata: false,
        bytes_read: 1,
        first_seen: T0,
    };
    let newer = record(&files[1], "\"v2\"", T0 + Duration::seconds(5));
    let mut older = record(&files[2], "\"v1\"", T0);
    older.file.name = newer.file.name.clone();
    w.feed(Input::FileSeen(Box::new(newer.clone())));
    w.feed(Input::FileSeen(Box::new(older)));
    assert_eq!(w.state.files.get(&newer.file.name), Some(&newer));
    assert!(
        w.state
            .audit
            .iter()
            .any(|a| a.event.contains("older version's read was ignored")),
        "{:?}",
        w.state.audit
    );

    // A newer read replaces it.
    let mut newest = record(&files[1], "\"v3\"", T0 + Duration::seconds(9));
    newest.file.name = newer.file.name.clone();
    w.feed(Input::FileSeen(Box::new(newest.clone())));
    assert_eq!(w.state.files.get(&newer.file.name), Some(&newest));
}

#[test]
fn a_start_that_went_on_after_preflight_warnings_keeps_them_and_is_handled_as_alone() {
    use crate::chain::{Finding, FindingCode, Severity};
    let note = |code, severity| Finding {
        code,
        severity,
        message: format!("{code} says so"),
        files: Vec::new(),
    };
    let findings = vec![
        note(FindingCode::InsufficientStorage, Severity::Warning),
        note(FindingCode::MaintenanceWindow, Severity::Info),
    ];
    let mut plain = World::new();
    plain.file(chain()[0].clone());
    plain.feed(Input::StartAccepted { operation: None });
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::Preflighted {
        findings: findings.clone(),
        outcome: Box::new(Input::StartAccepted { operation: None }),
    });
    assert_eq!(w.state.phase, plain.state.phase);
    assert_eq!(w.state.phase, Phase::Restoring);
    assert_eq!(w.state.preflight, findings);
    // Shown with the plan's findings, and audited once.
    let all = w.state.all_findings();
    assert!(findings.iter().all(|f| all.contains(f)));
    let audited = |w: &World| {
        w.state
            .audit
            .iter()
            .filter(|a| a.event.contains("preflight info maintenance_window"))
            .count()
    };
    assert_eq!(audited(&w), 1);
    // A later start (after a restart) with the same findings is not audited again; with none, they go.
    w.feed(Input::Preflighted {
        findings: findings.clone(),
        outcome: Box::new(Input::Tick),
    });
    assert_eq!(audited(&w), 1);
    w.feed(Input::Preflighted {
        findings: Vec::new(),
        outcome: Box::new(Input::Tick),
    });
    assert!(w.state.preflight.is_empty());
    // A refusal keeps every finding, the non-blocking ones too.
    let mut refused = World::new();
    refused.file(chain()[0].clone());
    let mut all = findings.clone();
    all.insert(
        0,
        note(FindingCode::SourceNewerThanInstance, Severity::Blocking),
    );
    refused.feed(Input::PreflightRefused(all.clone()));
    assert_eq!(refused.state.preflight, all);
}

/// Every file of [`chain`] recorded and the start accepted, with its create operation.
fn started_on_the_whole_chain() -> World {
    let mut w = World::new();
    for f in chain() {
        w.file(f);
    }
    w.feed(Input::StartAccepted {
        operation: Some("https://arm/op/start".into()),
    });
    w
}

/// Issue 14 item 1: completing, each tick reads the completion's operation and the database's
/// status (when it is Online); the create operation, still running, only on the restoring cadence.
#[test]
fn a_completing_database_reads_the_create_operation_on_the_restoring_cadence() {
    let mut w = started_on_the_whole_chain();
    w.restored("Sales_tail.trn", 4, 0);
    w.feed(Input::CompleteAccepted {
        operation: Some("https://arm/op/complete".into()),
    });
    assert_eq!(w.state.phase, Phase::Completing);
    let polls = |out: &[Action], kind: OperationKind| {
        out.iter()
            .filter(|a| matches!(a, Action::PollOperation { kind: k, .. } if *k == kind))
            .count()
    };
    let (mut create, mut complete, mut status) = (0, 0, 0);
    // 10 minutes of 5-second ticks.
    for _ in 0..120 {
        w.advance(Duration::seconds(5));
        let out = w.feed(Input::Tick);
        create += polls(&out, OperationKind::Start);
        complete += polls(&out, OperationKind::Complete);
        status += out
            .iter()
            .filter(|a| **a == Action::PollDatabaseStatus)
            .count();
    }
    assert_eq!((complete, status), (120, 120), "every tick");
    assert!((1..=2).contains(&create), "every 5 minutes: {create}");
}

/// Found by the state-machine fuzz target: after a completion refused with a retryable error, the
/// next input (here a create-operation poll, then a tick hours later, after LRS dropped the
/// database) sent completeRestore again on the restoreDetails read before the refusal. Now only a
/// fresh restoreDetails showing the tail restored sends it again; the same holds after a pause.
#[test]
fn a_refused_completion_is_retried_only_on_fresh_evidence() {
    let mut w = started_on_the_whole_chain();
    let out = w.restored("Sales_tail.trn", 4, 0);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::CompleteRestore { .. }))
    );
    let refused = CallError {
        status: Some(429),
        code: Some("SubscriptionTooManyRequests".into()),
        message: "throttled".into(),
        class: ErrorClass::Retry,
        advice: String::new(),
    };
    w.feed(Input::CompleteFailed(refused.clone()));
    let sends = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::CompleteRestore { .. }))
            .count()
    };
    let out = w.feed(Input::Operation {
        kind: OperationKind::Start,
        poll: OperationPoll::InProgress,
    });
    assert_eq!(
        sends(&out),
        0,
        "no completion on a poll of another operation"
    );
    w.advance(Duration::hours(4));
    let out = w.feed(Input::Tick);
    assert_eq!(sends(&out), 0, "a tick asks restoreDetails first");
    assert!(out.contains(&Action::PollRestoreDetails));
    let out = w.restored("Sales_tail.trn", 4, 0);
    assert_eq!(sends(&out), 1, "fresh evidence sends it again");
    // Paused with evidence in hand, then resumed: the old read does not complete.
    w.feed(Input::CompleteFailed(refused.clone()));
    w.restored("Sales_tail.trn", 4, 0);
    w.feed(Input::CompleteFailed(refused));
    w.feed(Input::Pause);
    w.restored("Sales_tail.trn", 4, 0);
    let out = w.feed(Input::Resume);
    assert_eq!(sends(&out), 0, "a resume waits for a fresh read");
}

/// Found by the state-machine fuzz target: LRS reported the last log restored, then dropped the
/// database, then an operator declared the cutover; the completion went out on the read from before.
/// Now a cutover asks restoreDetails afresh and completes only on that answer.
#[test]
fn an_operator_cutover_completes_only_on_a_read_taken_after_it() {
    let mut w = World::new();
    let files = chain();
    for f in &files[..3] {
        w.file(f.clone());
    }
    w.feed(Input::StartAccepted { operation: None });
    w.restored("Sales_2.trn", 3, 0);
    let out = w.feed(Input::Cutover { last_backup: None });
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::CompleteRestore { .. })),
        "no completion on the earlier read: {out:?}"
    );
    assert!(out.contains(&Action::PollRestoreDetails));
    let out = w.restored("Sales_2.trn", 3, 0);
    assert!(out.contains(&Action::CompleteRestore {
        last_backup_name: "Sales_2.trn".into()
    }));
}

/// One of [`step`]'s steps in `w`, or a file replaced by another of the same name.
fn apply(w: &mut World, step: &Step, files: &[FolderFile]) -> Vec<Action> {
    match step {
        Step::File(i) => w.file(files[*i].clone()),
        Step::Tick(secs) => {
            w.advance(Duration::seconds(*secs));
            w.feed(Input::Tick)
        }
        Step::Restored(i) => w.restored(&files[*i].name, *i as u64 + 1, 0),
        Step::StartOk => w.feed(Input::StartAccepted { operation: None }),
        Step::StartTransient => w.feed(Input::StartFailed(err(
            429,
            "SubscriptionTooManyRequests",
            ErrorClass::Retry,
        ))),
        Step::CompleteOk => w.feed(Input::CompleteAccepted { operation: None }),
        Step::CompleteNotYet => w.feed(Input::CompleteFailed(err(
            400,
            "RequiredBackupIsNotLastRestored",
            ErrorClass::Retry,
        ))),
        Step::Online => w.feed(Input::DatabaseStatus("Online".into())),
        Step::Cutover => w.feed(Input::Cutover { last_backup: None }),
        Step::Gone => w.feed(Input::DatabaseGone),
    }
}

/// The same four names as [`chain`], with other LSNs: a folder where a file was uploaded again.
fn chain_uploaded_again() -> Vec<FolderFile> {
    let mut db = Synthetic::new("Sales").checksums(true);
    let full = db.full(150, 250);
    vec![
        full.file("Sales_full.bak"),
        db.log(250, 320).file("Sales_1.trn"),
        db.log(330, 400).file("Sales_2.trn"),
        db.log(400, 420).file("Sales_tail.trn"),
    ]
}

proptest! {
    /// The planner memo never changes what the machine does: the same steps, with the memo
    /// forgotten before every input, give the same actions and the same state, also when a file
    /// is replaced by another of the same name or the restored base is fixed.
    #[test]
    fn the_plan_memo_gives_exactly_the_planners_answer(
        steps in proptest::collection::vec((step(), any::<bool>()), 1..50)
    ) {
        let (first, again) = (chain(), chain_uploaded_again());
        let (mut memo, mut fresh) = (World::new(), World::new());
        for (step, uploaded_again) in steps {
            let files = if uploaded_again { &again } else { &first };
            fresh.state.plan_memo.clear();
            let with_memo = apply(&mut memo, &step, files);
            let without = apply(&mut fresh, &step, files);
            prop_assert_eq!(with_memo, without);
            prop_assert_eq!(&memo.state, &fresh.state);
        }
    }
}
