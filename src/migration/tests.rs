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
    actions: Vec<Action>,
}

impl World {
    fn new() -> Self {
        World {
            state: MigrationState::new("backups", "Sales", "Sales", T0),
            now: T0,
            slot: true,
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
    w.feed(Input::StartAccepted);
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
    w.feed(Input::StartAccepted);
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
    let out = w.feed(Input::CompleteAccepted);
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
    w.feed(Input::StartAccepted);
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
    w.feed(Input::StartAccepted);
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
    w.feed(Input::StartAccepted);
    w.restored("Sales_tail.trn", 4, 0);
    assert_eq!(w.completes(), 1);
    let out = w.feed(Input::CompleteFailed {
        code: Some("RequiredBackupIsNotLastRestored".into()),
        message: "not yet".into(),
        retryable: false,
    });
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
    w.feed(Input::StartFailed {
        code: Some("InvalidCollation".into()),
        message: "bad".into(),
        retryable: false,
    });
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
    w.feed(Input::StartNameInUse {
        lrs_restoring: true,
    });
    assert_eq!(w.state.phase, Phase::Restoring);
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartNameInUse {
        lrs_restoring: false,
    });
    assert_eq!(w.state.phase, Phase::Blocked);
}

#[test]
fn a_start_cut_off_before_it_was_confirmed_is_reconciled() {
    let mut w = World::new();
    w.file(chain()[0].clone());
    w.feed(Input::StartFailed {
        code: None,
        message: "timeout".into(),
        retryable: true,
    });
    assert_eq!(w.state.phase, Phase::Starting);
    w.advance(START_RECONCILE_AFTER);
    let out = w.feed(Input::Tick);
    assert!(out.contains(&Action::PollRestoreDetails), "{out:?}");
    // LRS does not know the database: the start never arrived, so it is sent again.
    let out = w.feed(Input::RestoreDetailsFailed {
        status: 404,
        code: Some("ResourceNotFound".into()),
        message: String::new(),
    });
    assert!(
        out.iter().any(|a| matches!(a, Action::StartLrs { .. })),
        "{out:?}"
    );
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
    w.feed(Input::StartAccepted);
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
    w.feed(Input::StartAccepted);
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
    w.feed(Input::StartAccepted);
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
    w.feed(Input::StartAccepted);
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
    w.feed(Input::StartAccepted);
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
                Step::StartOk => { w.feed(Input::StartAccepted); }
                Step::StartTransient => { w.feed(Input::StartFailed { code: None, message: "x".into(), retryable: true }); }
                Step::CompleteOk => { w.feed(Input::CompleteAccepted); }
                Step::CompleteNotYet => { w.feed(Input::CompleteFailed { code: Some("RequiredBackupIsNotLastRestored".into()), message: "x".into(), retryable: false }); }
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
            if w.state.phase == Phase::Completed {
                prop_assert!(w.state.lrs.complete_sent_at.is_some());
            }
        }
    }
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
