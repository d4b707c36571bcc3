//! Fuzzes the migration state machine with arbitrary sequences of events, timer passes, operator
//! commands and LRS answers, through a small shell that answers the machine's actions the way LRS
//! could (accepted, refused, lost) and a model of LRS restoring the planned files in order. The
//! invariants of a safe cutover hold whatever the sequence:
//! - LRS is never asked to start once it has accepted a start (until it drops the database and an
//!   operator restarts the migration);
//! - completion is sent only with the file LRS reports as the last restored, which is the tail;
//! - with no operator cutover, no `lrs_tail` metadata and no file named `*_tail.*`, completion is
//!   never sent (ordinary log backups of RetailDB, Cocktail, Detail... never make a tail);
//! - nothing deletes a database (no action can: the match below is exhaustive).
#![no_main]

#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/backup/mod.rs"]
mod backup;
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/chain/mod.rs"]
mod chain;
#[allow(dead_code, missing_docs, unused_imports)]
#[path = "../../src/migration/mod.rs"]
mod migration;

use chain::synthetic::Synthetic;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use migration::{
    Action, CallError, Context, ErrorClass, FileRecord, Input, LrsSnapshot, MigrationState,
    OperationPoll,
};
use time::{Duration, OffsetDateTime};

const DATABASES: [&str; 4] = ["RetailDB", "Cocktail", "Detail", "Sales"];
/// Inputs are cut to this many operations and files: each input costs a plan of the folder per
/// machine step, so long sequences made the run slow down to 84 execs/s over 20 minutes. A full
/// backup, a few logs, a tail, a start, progress and a cutover fit well within them.
const MAX_OPS: usize = 32;
const MAX_FILES: usize = 12;

#[derive(Debug, Arbitrary)]
enum Op {
    /// A log backup (or, with `full`, a full backup) lands; `tail_name` names it `*_tail.trn`.
    File {
        full: bool,
        span: u8,
        tail_name: bool,
        metadata: bool,
        gap: bool,
    },
    Tick {
        minutes: u8,
    },
    Cutover {
        newest: bool,
    },
    Pause,
    Resume,
    /// LRS restores this many more planned files.
    Progress {
        files: u8,
    },
    /// How the next start or completion is answered: 0 accepted, 1 refused, 2 retryable, 3 lost.
    Answer {
        start: u8,
        complete: u8,
    },
    /// LRS drops the database (a failover, a Business Critical update, the 30-day cancel).
    Drop,
    /// An operator's restart.
    Restart,
}

#[derive(Debug, Arbitrary)]
struct Script {
    database: u8,
    ops: Vec<Op>,
}

#[derive(Default)]
struct Lrs {
    started: bool,
    restored: usize,
    completed: bool,
    start_answer: u8,
    complete_answer: u8,
}

fuzz_target!(|script: Script| {
    let db_name = DATABASES[usize::from(script.database) % DATABASES.len()];
    let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let mut now = t0;
    let mut state = MigrationState::new("sqlfiles", db_name, db_name, now);
    let mut source = Synthetic::new(db_name);
    let mut lsn = 100u32;
    let mut files = 0usize;
    let mut lrs = Lrs::default();
    let mut named_tail = false;
    let mut queue: Vec<Input> = Vec::new();
    for op in script.ops.iter().take(MAX_OPS) {
        match *op {
            Op::File {
                full,
                span,
                tail_name,
                metadata,
                gap,
            } => {
                if files >= MAX_FILES {
                    continue;
                }
                files += 1;
                if gap {
                    lsn += 10;
                }
                let end = lsn + 1 + u32::from(span);
                let set = if full {
                    source.full(lsn, end)
                } else {
                    source.log(lsn, end)
                };
                lsn = end;
                let ext = if full { "bak" } else { "trn" };
                let name = if tail_name && !full {
                    named_tail = true;
                    format!("{db_name}_{files}_tail.{ext}")
                } else {
                    format!("{db_name}_LOG_20250601_{files:04}.{ext}")
                };
                named_tail |= metadata;
                let file = set.file(&name);
                queue.push(Input::FileSeen(Box::new(FileRecord {
                    file: chain::FolderFile {
                        last_modified: Some(now),
                        ..file
                    },
                    etag: Some(format!("\"{files}\"")),
                    pending: false,
                    tail_metadata: metadata,
                    bytes_read: 1,
                    first_seen: now,
                })));
            }
            Op::Tick { minutes } => {
                now += Duration::minutes(i64::from(minutes));
                queue.push(Input::Tick);
            }
            Op::Cutover { newest } => {
                named_tail = true;
                let last = (!newest).then(|| format!("{db_name}_LOG_20250601_{:04}.trn", files));
                queue.push(Input::Cutover { last_backup: last });
            }
            Op::Pause => queue.push(Input::Pause),
            Op::Resume => queue.push(Input::Resume),
            Op::Progress { files } => {
                if lrs.started {
                    lrs.restored += usize::from(files % 4);
                }
            }
            Op::Answer { start, complete } => {
                lrs.start_answer = start % 4;
                lrs.complete_answer = complete % 4;
            }
            Op::Drop => {
                if !lrs.completed {
                    lrs.started = false;
                    lrs.restored = 0;
                }
            }
            Op::Restart => queue.push(Input::Restart),
        }
        // Feed the queued inputs and the answers to what the machine asks, until it is quiet.
        let mut rounds = 0;
        while let Some(input) = queue.pop() {
            rounds += 1;
            if rounds > 32 {
                queue.clear();
                break;
            }
            let ctx = Context {
                now,
                tail_pattern: Some(chain::DEFAULT_TAIL_PATTERN.to_owned()),
                default_collation: "SQL_Latin1_General_CP1_CI_AS".to_owned(),
                slot_available: true,
                sas_days_left: None,
                name_owner: None,
                target: None,
            };
            let planned: Vec<String> = state
                .plan
                .as_ref()
                .map(|p| {
                    p.steps
                        .iter()
                        .filter_map(|s| s.files.first().cloned())
                        .collect()
                })
                .unwrap_or_default();
            let last_restored = lrs
                .restored
                .min(planned.len())
                .checked_sub(1)
                .and_then(|i| planned.get(i).cloned());
            let actions = migration::handle(&mut state, input, &ctx);
            let tail = state.tail.as_ref().map(|t| t.file_name.clone());
            for action in actions {
                match action {
                    Action::StartLrs { .. } => {
                        assert!(!lrs.started, "a second start after LRS accepted one");
                        match lrs.start_answer {
                            0 => {
                                lrs.started = true;
                                queue.push(Input::StartAccepted {
                                    operation: Some("location https://arm/op/start".into()),
                                });
                            }
                            1 => queue.push(Input::StartFailed(error(
                                400,
                                "InvalidCollation",
                                ErrorClass::Block,
                            ))),
                            2 => queue.push(Input::StartFailed(error(
                                429,
                                "SubscriptionTooManyRequests",
                                ErrorClass::Retry,
                            ))),
                            _ => lrs.started = true, // accepted, the answer lost
                        }
                    }
                    Action::CompleteRestore { last_backup_name } => {
                        assert!(
                            named_tail,
                            "completed with no tail named: {last_backup_name}"
                        );
                        assert_eq!(
                            Some(&last_backup_name),
                            last_restored.as_ref(),
                            "completed before LRS restored {last_backup_name}"
                        );
                        assert_eq!(Some(&last_backup_name), tail.as_ref());
                        match lrs.complete_answer {
                            0 => {
                                lrs.completed = true;
                                queue.push(Input::CompleteAccepted {
                                    operation: Some("location https://arm/op/complete".into()),
                                });
                            }
                            1 => queue.push(Input::CompleteFailed(error(
                                400,
                                "RequiredBackupIsNotLastRestored",
                                ErrorClass::Retry,
                            ))),
                            2 => queue.push(Input::CompleteFailed(error(
                                429,
                                "SubscriptionTooManyRequests",
                                ErrorClass::Retry,
                            ))),
                            _ => lrs.completed = true,
                        }
                    }
                    Action::PollRestoreDetails => {
                        // Documented: only `Restoring`; after completion the database is no
                        // longer restoring; a database that is not there is "not available".
                        queue.push(if lrs.completed {
                            Input::RestoreDetailsFailed(error(
                                400,
                                "ManagedDatabaseNotInRestoringState",
                                ErrorClass::Benign,
                            ))
                        } else if lrs.started {
                            let restored = lrs.restored.min(planned.len());
                            Input::Restore(LrsSnapshot {
                                restore_type: Some("LRSRestore".into()),
                                status: Some("Restoring".into()),
                                last_restored_file: last_restored.clone(),
                                files_restored: restored as u64,
                                files_queued: (planned.len() - restored) as u64,
                                ..LrsSnapshot::default()
                            })
                        } else {
                            Input::RestoreDetailsFailed(error(
                                400,
                                "RestoreDetailsNotAvailableOrExpired",
                                ErrorClass::Retry,
                            ))
                        });
                    }
                    Action::PollDatabaseStatus => {
                        queue.push(if lrs.completed {
                            Input::DatabaseStatus("Online".into())
                        } else if lrs.started {
                            Input::DatabaseStatus("Restoring".into())
                        } else {
                            Input::DatabaseGone
                        });
                    }
                    Action::PollOperation { kind, .. } => {
                        // The worst plausible model: the create runs until the database is Online.
                        let poll = if lrs.completed {
                            OperationPoll::Succeeded
                        } else if lrs.started {
                            OperationPoll::InProgress
                        } else {
                            OperationPoll::Failed(error(
                                409,
                                "OperationInterrupted",
                                ErrorClass::Retry,
                            ))
                        };
                        queue.push(Input::Operation { kind, poll });
                    }
                    Action::RevalidateFile { .. } | Action::Alert(_) => {}
                }
            }
        }
    }
});

fn error(status: u16, code: &str, class: ErrorClass) -> CallError {
    CallError {
        status: Some(status),
        code: Some(code.to_owned()),
        message: format!("{code} (fuzz model)"),
        class,
        advice: String::new(),
    }
}
