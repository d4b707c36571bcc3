//! The migration state machine: one database's state document plus a new fact (a file seen, an LRS
//! status, a timer tick, an operator command) to a new state and the actions to carry out.
//!
//! Pure: time comes in through [`Context`], nothing here does I/O. The rules that keep a cutover safe
//! live here and nowhere else:
//! - LRS is asked to start once: the start is claimed in the document before ARM is called;
//! - no ARM long-running operation is waited on: its polling URL is recorded and polled once per
//!   due tick; the create operation may run until cutover, so its state is information only, except
//!   that a `Failed` one is a fact to act on;
//! - completion is sent only when LRS reports the recognised tail-log backup as the last restored
//!   file (and, when restoreDetails lists backup sets, the tail's set as `Restored` with nothing else
//!   queued), the plan reaches it unbroken and no log follows it; after that the database's own
//!   status is the truth;
//! - a database that disappears after its start is `Lost` only on positive evidence (GET database
//!   404), and nothing restarts it until an operator asks;
//! - nothing here ever asks to delete a database.

mod io;
mod limits;
mod state;
mod target;
#[cfg(test)]
mod tests;

use time::{Duration, OffsetDateTime};

pub use io::{
    Action, Alert, AlertKind, CallError, Context, ErrorClass, Input, OperationKind, OperationPoll,
};
pub use limits::{
    MAX_AUDIT_ENTRY_CHARS, MAX_LAST_BACKUP_NAME_CHARS, MAX_RESTORES_PER_SUBSCRIPTION,
    MAX_STATE_DOCUMENT_BYTES, cap_text, check_last_backup,
};
pub use state::{
    AUDIT_LIMIT, AuditEntry, FileRecord, LrsProgress, LrsSnapshot, MigrationState, Phase,
    SCHEMA_VERSION, SetSnapshot, Tail, TailSource,
};
pub use target::TargetInstance;

use crate::backup::BackupType;
use crate::chain::{
    self, FileRead, Finding, FindingCode, FolderFile, PlanInput, Severity, TailRule,
};

/// LRS cancels a job this long after it started.
pub const LRS_LIMIT: Duration = Duration::days(30);
/// When to warn that the limit is near.
pub const LIMIT_WARNING: Duration = Duration::days(25);
/// A claimed start not confirmed after this long is reconciled by the timer.
pub const START_RECONCILE_AFTER: Duration = Duration::minutes(5);
/// Files queued with no restore progress for this long raise a stall alert.
pub const STALL_AFTER: Duration = Duration::hours(1);
/// How long after the newest file a finding that more files may resolve (a gap, a missing stripe,
/// a file still uploading) waits before it blocks and alerts: AzCopy uploads a folder in parallel
/// and Event Grid reorders events, so such findings are often only a moment old.
pub const SETTLE_GRACE: Duration = Duration::minutes(10);
/// Alert when the SAS token expires within this many days.
pub const SAS_WARNING_DAYS: i64 = 3;
/// The only restoreDetails `status` value Microsoft documents (in its examples).
pub const DOCUMENTED_STATUSES: &[&str] = &["Restoring"];

/// How often the timer polls a `Restoring` database.
pub const RESTORING_POLL: Duration = Duration::minutes(5);

/// How often the timer polls a database in each phase. `CutoverPending` and `Completing` are polled
/// on every tick (cutover lag is the downtime users feel), `Restoring` rarely: with 1,000 databases
/// restoring, three reads (restoreDetails, the database, the create operation) every 5 minutes
/// (plus up to a quarter of it in spread) is about 9 reads/s, a third of a region's 25/s read
/// refill, which leaves the rest for the databases awaiting cutover and for other ARM clients in
/// the subscription. A `CutoverPending` database reads only restoreDetails on each tick, and the
/// other two on the `Restoring` cadence; a `Completing` one its completion's operation and its
/// status, and the create operation on that cadence.
pub fn poll_interval(phase: Phase) -> Option<Duration> {
    match phase {
        Phase::Ready | Phase::CutoverPending | Phase::Completing => Some(Duration::ZERO),
        Phase::Starting => Some(START_RECONCILE_AFTER),
        Phase::Restoring => Some(RESTORING_POLL),
        Phase::Blocked | Phase::Paused => Some(Duration::minutes(10)),
        Phase::Waiting | Phase::Completed | Phase::Failed | Phase::Expired | Phase::Lost => None,
    }
}

/// Feeds one input to the machine: updates `state` and returns the actions to carry out, in order.
///
/// The shell must persist `state` (If-Match) before carrying out a `StartLrs` or `CompleteRestore`,
/// and feed the outcome back as the next input.
pub fn handle(state: &mut MigrationState, input: Input, ctx: &Context) -> Vec<Action> {
    let now = ctx.now;
    let mut actions = Vec::new();
    let was = state.phase;
    let hold = matches!(
        &input,
        Input::StartFailed(_)
            | Input::CompleteFailed(_)
            | Input::Restart
            | Input::PreflightRefused(_)
    );
    match input {
        Input::FileSeen(record) => {
            let name = record.file.name.clone();
            if state
                .files
                .get(&name)
                .is_some_and(|old| is_older(&record, old))
            {
                // A slower invocation read a version that has since been replaced.
                state.audit(
                    now,
                    format!("file {name}: an older version's read was ignored"),
                );
            } else {
                state.audit(now, format!("file recorded: {name}"));
                state.rejected.remove(&name);
                state.files.insert(name, *record);
            }
        }
        Input::FileRejected { name, reason } => {
            state.audit(now, format!("file refused: {name}: {reason}"));
            state.rejected.insert(name, reason);
        }
        Input::StartAccepted { operation } => {
            accept_start(state, now);
            state.lrs.start_operation = operation.filter(|u| !carries_secret(u));
            state.lrs.start_operation_state = Some("InProgress".into());
        }
        Input::StartNameInUse { lrs_restore: true } => {
            state.audit(
                now,
                "start found an LRS restore of this database already running: adopted it",
            );
            accept_start(state, now);
        }
        Input::StartNameInUse { lrs_restore: false } => handle_name_in_use(state, now),
        Input::StartFailed(e) => start_failed(state, &e, now),
        Input::PreflightRefused(findings) => preflight_refused(state, findings, now),
        // The outcome is handled as if it came alone (its own hold and phase checks included).
        Input::Preflighted { findings, outcome } => {
            note_preflight(state, findings, now);
            return handle(state, *outcome, ctx);
        }
        Input::Restore(snapshot) => handle_snapshot(state, snapshot, now, &mut actions),
        Input::RestoreDetailsFailed(e) => details_failed(state, &e, now, &mut actions),
        Input::CompleteAccepted { operation } => {
            state.lrs.complete_sent_at = Some(now);
            state.lrs.complete_operation = operation.filter(|u| !carries_secret(u));
            state.audit(now, "completeRestore accepted");
            actions.push(Action::PollDatabaseStatus);
        }
        Input::CompleteFailed(e) => complete_failed(state, &e, now, &mut actions),
        Input::Operation { kind, poll } => operation_polled(state, kind, poll, now, &mut actions),
        Input::DatabaseStatus(status) => {
            if status.eq_ignore_ascii_case("Online") && state.lrs.complete_sent_at.is_some() {
                if state.lrs.online_at.is_none() {
                    state.audit(now, "database online: migration completed");
                }
                state.lrs.online_at.get_or_insert(now);
            }
            state.lrs.database_status = Some(status);
        }
        Input::DatabaseGone => database_gone(state, ctx, &mut actions),
        Input::Tick => tick(state, ctx, &mut actions),
        Input::Cutover { last_backup } => cutover(state, last_backup, now, &mut actions),
        Input::Pause => {
            state.paused = true;
            state.audit(now, "paused by an operator");
        }
        Input::Resume => {
            state.paused = false;
            // Evidence from before the pause may be hours old: wait for a fresh restoreDetails.
            state.lrs.snapshot = None;
            state.lrs.start_error = None;
            state.lrs.block = None;
            state.name_taken_by = None;
            state.audit(now, "resumed by an operator");
        }
        Input::Restart => restart(state, now),
    }

    if let Some(owner) = &ctx.name_owner {
        if !state.start_claimed() && state.name_taken_by.as_deref() != Some(owner.as_str()) {
            state.audit(
                now,
                format!("target name {} is owned by {owner}", state.database_name),
            );
            state.name_taken_by = Some(owner.clone());
        }
    }

    follow_target(state, ctx);

    // After a failed start or completion, decide again on the next tick, not in this same breath:
    // an immediate retry would spin against an LRS that just said "not now".
    replan(state, ctx, &mut actions);
    decide(state, ctx, &mut actions, hold);
    if state.phase != was {
        state.audit(now, format!("phase {was} -> {}", state.phase));
        let reason = state.reason.clone().unwrap_or_default();
        match state.phase {
            Phase::Blocked => push_alert_once(
                state,
                &mut actions,
                format!("blocked:{reason}"),
                alert(AlertKind::DatabaseBlocked, Severity::Blocking, reason),
            ),
            Phase::Failed | Phase::Expired => push_alert_once(
                state,
                &mut actions,
                format!("failed:{reason}"),
                alert(
                    AlertKind::LrsFailed,
                    Severity::Blocking,
                    format!("{}: {reason}", state.database_name),
                ),
            ),
            _ => {}
        }
    }
    state.next_poll_at = next_poll(state, now);
    state.updated_at = now;
    actions
}

/// Follows `LRS_TARGETS` while LRS has not started; after that the database stays on the instance
/// it started on (its restore runs there) and a changed map is only reported (`target_moved`).
fn follow_target(state: &mut MigrationState, ctx: &Context) {
    let Some(mapped) = &ctx.target else { return };
    let now = ctx.now;
    if state.target.as_ref() == Some(mapped) {
        if state.target_moved_to.take().is_some() {
            state.audit(now, format!("LRS_TARGETS names {mapped} again"));
        }
        return;
    }
    if !state.start_claimed() {
        match &state.target {
            Some(old) => state.audit(
                now,
                format!("target instance changed from {old} to {mapped}"),
            ),
            None => state.audit(now, format!("target instance: {mapped}")),
        }
        state.target = Some(mapped.clone());
        state.target_moved_to = None;
    } else if state.target_moved_to.as_ref() != Some(mapped) {
        let from = state
            .target
            .as_ref()
            .map_or_else(|| "the default instance".to_owned(), ToString::to_string);
        state.audit(
            now,
            format!("LRS_TARGETS now names {mapped}; LRS already started on {from}: not moved"),
        );
        state.target_moved_to = Some(mapped.clone());
    }
}

/// The target name is taken by a database that is not an LRS restore: block, never adopt.
fn handle_name_in_use(state: &mut MigrationState, now: OffsetDateTime) {
    let message = format!(
        "a database named {} already exists on the managed instance and restoreDetails does not \
         show it as an LRS restore, so the pipeline will not adopt it: map the folder to another \
         name with LRS_DATABASE_NAME_MAP, or, if that database is a leftover you no longer need, \
         drop it yourself; then `resume`",
        state.database_name
    );
    state.audit(now, format!("start refused: {message}"));
    state.lrs.start_claimed_at = None;
    state.lrs.block = Some(blocking_finding(FindingCode::NameInUse, message));
}

/// The preflight refused the start before it was sent: the claim goes and the first blocking
/// finding (with the others appended) blocks until an operator's `resume` re-checks.
fn preflight_refused(state: &mut MigrationState, findings: Vec<Finding>, now: OffsetDateTime) {
    for f in &findings {
        state.audit(
            now,
            format!("preflight {} {}: {}", f.severity, f.code, f.message),
        );
    }
    state.preflight = findings.clone();
    state.lrs.start_claimed_at = None;
    let mut blocking = findings
        .into_iter()
        .filter(|f| f.severity == Severity::Blocking);
    if let Some(mut first) = blocking.next() {
        for other in blocking {
            first
                .message
                .push_str(&format!("; also {}: {}", other.code, other.message));
            first.files.extend(other.files);
        }
        state.audit(
            now,
            "start not sent: the preflight found the instance cannot take it",
        );
        state.lrs.block = Some(first);
    }
}

/// The preflight passed: its findings (warnings, info) replace the last ones, and are audited
/// when they changed.
fn note_preflight(state: &mut MigrationState, findings: Vec<Finding>, now: OffsetDateTime) {
    if findings == state.preflight {
        return;
    }
    for f in &findings {
        state.audit(
            now,
            format!("preflight {} {}: {}", f.severity, f.code, f.message),
        );
    }
    state.preflight = findings;
}

/// A polling URL that carries a SAS (`sig=`) is never stored.
fn carries_secret(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|p| {
            p.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("sig"))
        })
    })
}

fn blocking_finding(code: FindingCode, message: String) -> Finding {
    Finding {
        code,
        severity: Severity::Blocking,
        files: Vec::new(),
        message,
    }
}

/// The finding for an ARM error a person must act on: the code, ARM's message and the advice.
fn lrs_error_finding(state: &MigrationState, what: &str, e: &CallError) -> Finding {
    blocking_finding(
        FindingCode::LrsError,
        format!(
            "{what} for {}: Azure answered {} ({}): {}",
            state.database_name,
            if e.code().is_empty() {
                "an error"
            } else {
                e.code()
            },
            e.message,
            e.advice
        ),
    )
}

fn start_failed(state: &mut MigrationState, e: &CallError, now: OffsetDateTime) {
    let code = e.code();
    state.audit(now, format!("start failed ({code}): {}", e.message));
    if e.status.is_none() && e.class == ErrorClass::Retry {
        // No answer: ARM may have accepted it. The claim stays; the timer reconciles it from
        // restoreDetails and GET database, so no second PUT goes out blind.
        state.audit(now, "no answer to the start: the timer reconciles it");
        return;
    }
    // ARM answered: nothing was started. The claim goes, so the database is Ready (retry),
    // Blocked or Failed.
    state.lrs.start_claimed_at = None;
    match e.class {
        ErrorClass::Retry | ErrorClass::Benign => {
            state.audit(now, "left Ready: the start is tried again on a later tick")
        }
        ErrorClass::Block => state.lrs.block = Some(lrs_error_finding(state, "the start", e)),
        ErrorClass::Terminal => {
            state.lrs.failure = Some(format!(
                "LRS refused the start ({code}): {}: {}",
                e.message, e.advice
            ));
        }
    }
}

fn details_failed(
    state: &mut MigrationState,
    e: &CallError,
    now: OffsetDateTime,
    actions: &mut Vec<Action>,
) {
    let status = e.status.unwrap_or(0);
    state.audit(
        now,
        format!(
            "restoreDetails failed ({status} {}): {}",
            e.code(),
            e.message
        ),
    );
    if state.lrs.complete_sent_at.is_some() {
        // After completeRestore, errors such as ManagedDatabaseNotInRestoringState are expected:
        // the database's own status is the truth.
        actions.push(Action::PollDatabaseStatus);
        return;
    }
    if status == 404 || e.is("RestoreDetailsNotAvailableOrExpired") {
        // Only GET database can prove the database is gone.
        actions.push(Action::PollDatabaseStatus);
        return;
    }
    if state.lrs.started_at.is_none() {
        return;
    }
    match e.class {
        ErrorClass::Retry | ErrorClass::Benign => {}
        ErrorClass::Block => {
            state.lrs.block = Some(lrs_error_finding(state, "restoreDetails", e));
        }
        ErrorClass::Terminal => {
            state.lrs.failure = Some(format!(
                "LRS reports {} for {}: {}: {}",
                e.code(),
                state.database_name,
                e.message,
                e.advice
            ));
        }
    }
}

fn complete_failed(
    state: &mut MigrationState,
    e: &CallError,
    now: OffsetDateTime,
    actions: &mut Vec<Action>,
) {
    let code = e.code();
    state.audit(
        now,
        format!("completeRestore failed ({code}): {}", e.message),
    );
    if e.is("ExternalBackupAlreadySignaledToComplete") || e.class == ErrorClass::Benign {
        // An earlier complete got through.
        state.lrs.complete_sent_at.get_or_insert(now);
        actions.push(Action::PollDatabaseStatus);
        return;
    }
    state.lrs.complete_claimed_at = None;
    state.lrs.completed_with = None;
    // What LRS reported before a refused completion is not evidence for the next one: LRS may
    // have dropped the database since, so only a fresh restoreDetails makes the tail ready again.
    // An answer that never came (no status) may hide an accepted completion: the read that led
    // to it still stands, and sending it again is safe (LRS answers
    // ExternalBackupAlreadySignaledToComplete), while restoreDetails no longer answers at all.
    if e.status.is_some() {
        state.lrs.snapshot = None;
    }
    match e.class {
        ErrorClass::Retry | ErrorClass::Benign => {
            if e.status == Some(404) {
                actions.push(Action::PollDatabaseStatus);
            }
        }
        ErrorClass::Block => {
            state.lrs.block = Some(lrs_error_finding(state, "completeRestore", e));
        }
        ErrorClass::Terminal => {
            state.lrs.failure = Some(format!(
                "LRS refused completion ({code}): {}: {}",
                e.message, e.advice
            ));
        }
    }
}

fn operation_polled(
    state: &mut MigrationState,
    kind: OperationKind,
    poll: OperationPoll,
    now: OffsetDateTime,
    actions: &mut Vec<Action>,
) {
    let url = match kind {
        OperationKind::Start => &mut state.lrs.start_operation,
        OperationKind::Complete => &mut state.lrs.complete_operation,
    };
    let ended = match &poll {
        OperationPoll::InProgress | OperationPoll::Unavailable(_) => false,
        OperationPoll::Succeeded | OperationPoll::Failed(_) | OperationPoll::Forgotten => true,
    };
    if ended {
        *url = None;
    }
    let label = match kind {
        OperationKind::Start => "create",
        OperationKind::Complete => "completeRestore",
    };
    match poll {
        OperationPoll::InProgress | OperationPoll::Unavailable(_) => {}
        OperationPoll::Succeeded => {
            state.audit(now, format!("the {label} operation succeeded"));
        }
        OperationPoll::Forgotten => {
            state.audit(now, format!("arm no longer knows the {label} operation"));
        }
        OperationPoll::Failed(e) => {
            state.audit(
                now,
                format!(
                    "the {label} operation ended Failed ({}): {}",
                    e.code(),
                    e.message
                ),
            );
            // Is the database still there? If not, it is Lost.
            actions.push(Action::PollDatabaseStatus);
            match kind {
                OperationKind::Start => {
                    state.lrs.start_operation_failed = true;
                    state.lrs.start_operation_state = Some(format!("Failed: {}", e.code()));
                    match e.class {
                        ErrorClass::Block => {
                            state.lrs.block =
                                Some(lrs_error_finding(state, "the create operation", &e));
                        }
                        ErrorClass::Terminal => {
                            state.lrs.failure = Some(format!(
                                "the create operation failed ({}): {}: {}",
                                e.code(),
                                e.message,
                                e.advice
                            ));
                        }
                        ErrorClass::Retry | ErrorClass::Benign => {}
                    }
                }
                OperationKind::Complete => {
                    if e.class == ErrorClass::Terminal {
                        state.lrs.failure = Some(format!(
                            "completion failed ({}): {}: {}",
                            e.code(),
                            e.message,
                            e.advice
                        ));
                    }
                }
            }
            return;
        }
    }
    if kind == OperationKind::Start {
        state.lrs.start_operation_state = Some(
            match ended {
                true => "Succeeded",
                false => "InProgress",
            }
            .into(),
        );
    }
}

/// GET database answered 404.
fn database_gone(state: &mut MigrationState, ctx: &Context, actions: &mut Vec<Action>) {
    let now = ctx.now;
    if state.lrs.online_at.is_some() || state.lrs.lost_at.is_some() {
        return;
    }
    if state.lrs.started_at.is_none() {
        if state.start_claimed() {
            // The claimed start never reached LRS: send it again (reconcile).
            state.audit(
                now,
                "the claimed start never created the database: sending it again",
            );
            if let Some(action) = start_action(state, ctx) {
                state.lrs.start_attempts += 1;
                actions.push(action);
            }
        }
        return;
    }
    // It existed: LRS or ARM showed it, or its create operation has ended (failed or succeeded,
    // or there was none to follow). A 404 while the create still runs and nothing was ever seen
    // is not evidence of anything yet.
    let existed = state.lrs.snapshot.is_some()
        || state.lrs.database_status.is_some()
        || state.lrs.start_operation_failed
        || state.lrs.start_operation.is_none();
    if !existed {
        state.audit(
            now,
            "GET database answered 404 before the database was ever seen: waiting",
        );
        return;
    }
    state.lrs.lost_at = Some(now);
    let message = lost_message(state);
    state.audit(now, format!("database lost: {message}"));
    let key = format!(
        "lost:{}",
        state
            .lrs
            .started_at
            .map(|t| t.to_string())
            .unwrap_or_default()
    );
    push_alert_once(
        state,
        actions,
        key,
        alert(AlertKind::Lost, Severity::Blocking, message),
    );
}

/// Why a database is `Lost`, which cases cause it and whether the 30-day limit did.
fn lost_message(state: &MigrationState) -> String {
    let db = &state.database_name;
    let (Some(started), Some(lost)) = (state.lrs.started_at, state.lrs.lost_at) else {
        return format!("{db} is lost");
    };
    let days = (lost - started).whole_days();
    let limit = if lost >= started + LRS_LIMIT {
        format!("the 30-day limit did: LRS started it {days} days ago, so LRS cancelled the job")
    } else {
        format!("the 30-day limit did not: LRS started it {days} days ago")
    };
    let when = if state.lrs.complete_sent_at.is_some() {
        "after cutover started"
    } else if state.files_restored() <= 1 {
        "during the first full restore"
    } else {
        "while restoring"
    };
    format!(
        "{db} disappeared from the managed instance {when} (GET database answered 404 after LRS \
         accepted its start on {started}). LRS loses a database on a failover during the first full \
         restore or after cutover started, on a Business Critical update, and when it cancels a job \
         after 30 days; {limit}. Nothing restarts it on its own: run `lrs-autopilot restart {db}` \
         or POST migrations/{db}/restart to start again from the newest complete full backup"
    )
}

/// An operator's restart: forget everything about the LRS job (keep files, audit and findings'
/// alerts) so the machine re-plans from the newest complete full backup and starts afresh.
fn restart(state: &mut MigrationState, now: OffsetDateTime) {
    if !matches!(state.phase, Phase::Lost | Phase::Failed | Phase::Expired) {
        // A running job is never restarted: that would start a second LRS job for one folder.
        state.audit(
            now,
            format!("restart ignored: the migration is {}", state.phase),
        );
        return;
    }
    state.restarts += 1;
    state.lrs = LrsProgress::default();
    state.alerts_raised.retain(|k| k.starts_with("finding:"));
    state.audit(
        now,
        format!(
            "restarted by an operator (restart {}): LRS starts again from the newest complete full \
             backup",
            state.restarts
        ),
    );
}

/// Whether a new read is of an older version than the recorded one: an earlier last-modified
/// time. Two versions written within the same second (its resolution) cannot be ordered; the
/// later write wins, as before.
fn is_older(new: &FileRecord, old: &FileRecord) -> bool {
    matches!(
        (old.file.last_modified, new.file.last_modified),
        (Some(a), Some(b)) if b < a
    )
}

fn accept_start(state: &mut MigrationState, now: OffsetDateTime) {
    state.lrs.started_at.get_or_insert(now);
    state.lrs.start_claimed_at.get_or_insert(now);
    state.lrs.progress_at.get_or_insert(now);
    state.reason = None;
    state.audit(now, "LRS started");
}

fn handle_snapshot(
    state: &mut MigrationState,
    snapshot: LrsSnapshot,
    now: OffsetDateTime,
    actions: &mut Vec<Action>,
) {
    if state.lrs.started_at.is_none() && state.start_claimed() {
        let ours = snapshot
            .restore_type
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("LRSRestore"));
        if !ours {
            // Not shown as an LRS restore: never adopt it.
            handle_name_in_use(state, now);
            return;
        }
        // LRS answers for the database: the claimed start reached it.
        accept_start(state, now);
    }
    let grew = state
        .lrs
        .snapshot
        .as_ref()
        .is_none_or(|old| snapshot.files_restored > old.files_restored);
    if grew {
        state.lrs.progress_at = Some(now);
    }
    if let Some(tail) = &state.tail {
        if same_file(snapshot.last_restored_file.as_deref(), &tail.file_name)
            && state.lrs.tail_restored_at.is_none()
        {
            state.lrs.tail_restored_at = Some(now);
            state.audit(now, format!("tail-log backup {} restored", tail.file_name));
        }
    }
    if let Some(reason) = snapshot.block_reason.as_deref().filter(|r| !r.is_empty()) {
        let detail = format!("LRS reports for {}: {reason}", state.database_name);
        push_alert_once(
            state,
            actions,
            format!("lrs-block:{reason}"),
            alert(AlertKind::LrsBlocked, Severity::Blocking, detail),
        );
    }
    if !snapshot.unrestorable_files.is_empty() {
        let detail = format!(
            "LRS cannot restore these files of {}: {}; remove them from the folder",
            state.database_name,
            snapshot.unrestorable_files.join(", ")
        );
        push_alert_once(
            state,
            actions,
            format!("unrestorable:{}", snapshot.unrestorable_files.join(",")),
            alert(AlertKind::LrsBlocked, Severity::Warning, detail),
        );
    }
    if let Some(status) = snapshot.status.as_deref().filter(|s| {
        !s.is_empty()
            && !DOCUMENTED_STATUSES
                .iter()
                .any(|d| d.eq_ignore_ascii_case(s))
    }) {
        // Shown once, never acted on: only `Restoring` is documented.
        let detail = format!(
            "restoreDetails for {} reports status {status:?}, which Microsoft does not document; \
             the pipeline goes on deciding from lastRestoredFileName, the backup sets and the \
             database's own status",
            state.database_name
        );
        push_alert_once(
            state,
            actions,
            format!("status:{status}"),
            alert(AlertKind::Undocumented, Severity::Info, detail),
        );
    }
    state.lrs.snapshot = Some(snapshot);
    state.lrs.polled_at = Some(now);
}

fn limit_passed(state: &MigrationState, now: OffsetDateTime) -> bool {
    state.lrs.started_at.is_some_and(|t| now >= t + LRS_LIMIT)
}

fn tick(state: &mut MigrationState, ctx: &Context, actions: &mut Vec<Action>) {
    let now = ctx.now;
    for (name, record) in &state.files {
        if record.pending {
            actions.push(Action::RevalidateFile { name: name.clone() });
        }
    }
    if state.lrs.lost_at.is_some() {
        return;
    }
    let Some(started) = state.lrs.started_at else {
        if let Some(claimed) = state.lrs.start_claimed_at {
            if now >= claimed + START_RECONCILE_AFTER {
                // The start was claimed but never confirmed: ask LRS whether it runs.
                actions.push(Action::PollRestoreDetails);
            }
        }
        return;
    };
    if state.phase.is_final() {
        return;
    }
    if limit_passed(state, now) && state.lrs.online_at.is_none() {
        state.lrs.failure = Some("the 30-day LRS limit ran out before completion".into());
        return;
    }
    if now >= started + LIMIT_WARNING {
        let left = (started + LRS_LIMIT - now).whole_hours();
        let detail = format!(
            "{} has been restoring since {started}; LRS cancels it in {left} hours: take the \
             tail-log backup and cut over now",
            state.database_name
        );
        push_alert_once(
            state,
            actions,
            "limit-near".into(),
            alert(AlertKind::LimitNear, Severity::Blocking, detail),
        );
    }
    if let Some(days) = ctx.sas_days_left.filter(|d| *d <= SAS_WARNING_DAYS) {
        let detail = format!(
            "the LRS SAS token expires in {days} days while {} is restoring. storageContainerSasToken \
             can be set only when LRS starts, and parallel restores from one container need the same \
             token, so a renewed token does not reach this job: complete the migration (take the \
             tail-log backup and cut over) before the token expires, or restart from a full backup \
             with a new token",
            state.database_name
        );
        push_alert_once(
            state,
            actions,
            "sas-expiring".into(),
            alert(AlertKind::SasExpiring, Severity::Warning, detail),
        );
    }
    if let (Some(snap), Some(progress)) = (&state.lrs.snapshot, state.lrs.progress_at) {
        if snap.files_queued > 0 && now >= progress + STALL_AFTER {
            let detail = format!(
                "{}: {} files queued but nothing restored since {progress}",
                state.database_name, snap.files_queued
            );
            push_alert_once(
                state,
                actions,
                format!("stalled:{progress}"),
                alert(AlertKind::Stalled, Severity::Warning, detail),
            );
        }
    }
    // Awaiting cutover, each tick reads restoreDetails; the create operation and the database's
    // status are read on the `Restoring` cadence (see `poll_interval`). Completing, each tick reads
    // the completion's operation and the database's status; the create operation on that cadence.
    // Until the first check, the last restoring poll (which read all three) counts as one.
    let awaiting = matches!(state.phase, Phase::CutoverPending | Phase::Completing);
    let slow_reads = !awaiting
        || state
            .lrs
            .checked_at
            .or(state.lrs.polled_at)
            .is_none_or(|t| now >= t + RESTORING_POLL || t > now);
    if slow_reads && awaiting {
        state.lrs.checked_at = Some(now);
    }
    // Each due tick polls the running operations once; never waits on them.
    if let Some(url) = state.lrs.start_operation.clone().filter(|_| slow_reads) {
        actions.push(Action::PollOperation {
            kind: OperationKind::Start,
            url,
        });
    }
    if state.lrs.complete_sent_at.is_some() {
        if let Some(url) = state.lrs.complete_operation.clone() {
            actions.push(Action::PollOperation {
                kind: OperationKind::Complete,
                url,
            });
        }
        actions.push(Action::PollDatabaseStatus);
    } else if let (Some(claimed), Some(last)) = (
        state.lrs.complete_claimed_at,
        state.lrs.completed_with.clone(),
    ) {
        if now >= claimed + START_RECONCILE_AFTER {
            if ready_to_complete(state).as_deref() == Some(last.as_str()) {
                // Completion was claimed but never confirmed: send it again (LRS answers
                // ExternalBackupAlreadySignaledToComplete if the first one went through).
                actions.push(Action::CompleteRestore {
                    last_backup_name: last,
                });
            } else {
                // What LRS now reports no longer allows it: release the claim, decide afresh.
                state.lrs.complete_claimed_at = None;
                state.lrs.completed_with = None;
                actions.push(Action::PollRestoreDetails);
            }
        }
    } else if state.next_poll_at.is_none_or(|t| now >= t) {
        actions.push(Action::PollRestoreDetails);
        if slow_reads {
            actions.push(Action::PollDatabaseStatus);
        }
    }
}
fn cutover(
    state: &mut MigrationState,
    last_backup: Option<String>,
    now: OffsetDateTime,
    actions: &mut Vec<Action>,
) {
    let name = last_backup.or_else(|| {
        let plan = state.plan.as_ref()?;
        let last = plan.steps.last()?;
        (last.backup_type == BackupType::Log)
            .then(|| last.files.first().cloned())
            .flatten()
    });
    match name {
        Some(file_name) => {
            state.audit(
                now,
                format!("cutover declared by an operator: last backup {file_name}"),
            );
            state.tail = Some(Tail {
                file_name,
                source: TailSource::Operator,
                recognised_at: now,
            });
            // Complete on a restoreDetails read after the operator's word, never on an older
            // one: LRS may have dropped the database since (found by the state-machine fuzz target).
            state.lrs.snapshot = None;
            actions.push(Action::PollRestoreDetails);
        }
        None => actions.push(alert(
            AlertKind::Finding,
            Severity::Warning,
            format!(
                "cutover for {} asked without a last backup name and no log backup is planned yet",
                state.database_name
            ),
        )),
    }
}

/// Recomputes the plan from every recorded file and raises an alert for each new finding.
fn replan(state: &mut MigrationState, ctx: &Context, actions: &mut Vec<Action>) {
    // Borrowed, not cloned: the machine plans on every input, and cloning each file's header
    // facts was a tenth of a step.
    let files: Vec<&FolderFile> = state.files.values().map(|r| &r.file).collect();
    let metadata: Vec<String> = state
        .files
        .values()
        .filter(|r| r.tail_metadata)
        .map(|r| r.file.name.clone())
        .collect();
    // Only an operator's choice is taken as given; a tail recognised by metadata or the pattern is
    // checked afresh on every plan (it must continue the chain and be the newest file).
    let declared = state
        .tail
        .as_ref()
        .filter(|t| t.source == TailSource::Operator);
    let rule = TailRule {
        file_name: declared.map(|t| t.file_name.clone()),
        metadata: metadata.clone(),
        pattern: ctx.tail_pattern.clone(),
        header_hint_confirmed: false,
    };
    let fixed_base = state.lrs.base_guid;
    let plan = match state.plan_memo.get(&files, fixed_base, &rule) {
        Some(plan) => plan.clone(),
        None => {
            let plan = chain::plan(PlanInput {
                folder: &state.folder,
                files: &files,
                fixed_base,
                tail: &rule,
            });
            let planned = state::Planned {
                files: files.iter().map(|f| (*f).clone()).collect(),
                fixed_base,
                rule: rule.clone(),
                plan: plan.clone(),
            };
            state.plan_memo.set(planned);
            plan
        }
    };
    let recognised = state.tail.as_ref().map(|t| &t.file_name);
    if declared.is_none() && recognised != plan.tail.as_ref() {
        state.lrs.tail_restored_at = None;
        match plan.tail.clone() {
            Some(file_name) => {
                let source = if metadata.contains(&file_name) {
                    TailSource::Metadata
                } else {
                    TailSource::Pattern
                };
                state.audit(
                    ctx.now,
                    format!("tail-log backup recognised: {file_name} ({source:?})"),
                );
                state.tail = Some(Tail {
                    file_name,
                    source,
                    recognised_at: ctx.now,
                });
            }
            None => {
                if let Some(old) = state.tail.take() {
                    state.audit(
                        ctx.now,
                        format!(
                            "{} is no longer taken as the tail-log backup",
                            old.file_name
                        ),
                    );
                }
            }
        }
    }
    let settling = is_settling(state, ctx.now);
    for finding in &plan.findings {
        if settling && may_resolve_itself(finding.code) {
            continue;
        }
        // Warnings and notes alert once per kind; a blocking finding alerts again when it concerns
        // other files (a second gap is news, a growing list of files without checksums is not).
        let key = match finding.severity {
            Severity::Blocking => format!("finding:{:?}:{}", finding.code, finding.files.join(",")),
            Severity::Warning | Severity::Info => format!("finding:{:?}", finding.code),
        };
        let detail = format!("{}: {}", state.folder, finding.message);
        push_alert_once(
            state,
            actions,
            key,
            alert(AlertKind::Finding, finding.severity, detail),
        );
    }
    if state.tail.is_none() {
        let hinted = state
            .files
            .values()
            .map(|r| &r.file)
            .find_map(|f| match &f.read {
                FileRead::Read { facts } => facts
                    .backup_sets
                    .iter()
                    .any(|s| s.tail_log_hint())
                    .then(|| f.name.clone()),
                FileRead::Failed { .. } => None,
            });
        if let Some(name) = hinted {
            let detail = format!(
                "{name} looks like a tail-log backup from its header; declare it with \
                 `cutover --last-backup {name}` or name it to match the tail pattern"
            );
            push_alert_once(
                state,
                actions,
                format!("tail-hint:{name}"),
                alert(AlertKind::TailHint, Severity::Info, detail),
            );
        }
    }
    let mut plan = plan;
    plan.findings.extend(state.lrs.block.clone());
    if let Some(owner) = &state.name_taken_by {
        plan.findings.push(blocking_finding(
            FindingCode::TargetNameTaken,
            format!(
                "{}/{} maps to the target database name {}, which {owner} already owns: it will \
                 not start, nor share that folder's LRS job; give it another name in \
                 LRS_DATABASE_NAME_MAP (or stop watching one of the two folders), then `resume`",
                state.container, state.folder, state.database_name
            ),
        ));
    }
    if let Some(to) = &state.target_moved_to {
        let from = state
            .target
            .as_ref()
            .map_or_else(|| "the default instance".to_owned(), ToString::to_string);
        let finding = Finding {
            code: FindingCode::TargetMoved,
            severity: Severity::Warning,
            files: Vec::new(),
            message: format!(
                "LRS_TARGETS now maps {}/{} to {to}, but LRS already started it on {from}: the                  database is not moved and its migration goes on on {from}; to migrate it to {to}                  instead, stop the restore on {from} yourself and `restart` it, or map the folder                  back",
                state.container, state.folder
            ),
        };
        push_alert_once(
            state,
            actions,
            format!("target-moved:{}", to.key()),
            alert(
                AlertKind::Finding,
                Severity::Warning,
                finding.message.clone(),
            ),
        );
        plan.findings.push(finding);
    }
    state.plan = Some(plan);
}

/// Findings that the next files to arrive may resolve.
fn may_resolve_itself(code: FindingCode) -> bool {
    matches!(
        code,
        FindingCode::NoFullBackup
            | FindingCode::IncompleteFile
            | FindingCode::LogChainGap
            | FindingCode::MissingStripes
            | FindingCode::OrphanDifferential
    )
}

/// The newest file arrived less than [`SETTLE_GRACE`] ago.
fn is_settling(state: &MigrationState, now: OffsetDateTime) -> bool {
    state
        .files
        .values()
        .map(|r| r.first_seen)
        .max()
        .is_some_and(|t| now < t + SETTLE_GRACE)
}

/// When the settling grace ends, while a finding waits on it.
fn settle_deadline(state: &MigrationState, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let waiting = state
        .findings()
        .iter()
        .any(|f| f.severity == Severity::Blocking && may_resolve_itself(f.code));
    if !waiting || !is_settling(state, now) {
        return None;
    }
    state
        .files
        .values()
        .map(|r| r.first_seen + SETTLE_GRACE)
        .max()
}

/// Findings that mean "wait for more files" rather than "a person must act".
fn is_waiting_finding(code: FindingCode) -> bool {
    matches!(
        code,
        FindingCode::NoFullBackup | FindingCode::IncompleteFile
    )
}

/// Derives the phase and decides on start and completion (unless `hold`).
fn decide(state: &mut MigrationState, ctx: &Context, actions: &mut Vec<Action>, hold: bool) {
    let settling = is_settling(state, ctx.now);
    let blocking = state
        .findings()
        .iter()
        .find(|f| {
            f.severity == Severity::Blocking
                && !is_waiting_finding(f.code)
                && !(settling && may_resolve_itself(f.code))
        })
        .map(|f| f.message.clone());

    state.phase = if state.lrs.online_at.is_some() {
        Phase::Completed
    } else if state.lrs.lost_at.is_some() {
        state.reason = Some(lost_message(state));
        Phase::Lost
    } else if let Some(failure) = state.lrs.failure.clone() {
        state.reason = Some(failure.clone());
        if failure.contains("30-day") {
            Phase::Expired
        } else {
            Phase::Failed
        }
    } else if state.paused {
        Phase::Paused
    } else if state.lrs.complete_claimed_at.is_some() {
        // Until the database says Online, however long that takes (hours on Business Critical
        // while secondaries seed): never a timeout.
        Phase::Completing
    } else if state.start_claimed() {
        if state.lrs.started_at.is_none() {
            Phase::Starting
        } else if let Some(reason) = blocking {
            state.reason = Some(reason);
            Phase::Blocked
        } else if state
            .tail
            .as_ref()
            .is_some_and(|t| t.source >= TailSource::Metadata)
        {
            Phase::CutoverPending
        } else {
            Phase::Restoring
        }
    } else if let Some(reason) = blocking.or_else(|| state.lrs.start_error.clone()) {
        state.reason = Some(reason);
        Phase::Blocked
    } else if state.plan.as_ref().is_some_and(|p| p.can_start) {
        Phase::Ready
    } else {
        Phase::Waiting
    };
    if !matches!(
        state.phase,
        Phase::Blocked | Phase::Failed | Phase::Expired | Phase::Lost
    ) {
        state.reason = None;
    }

    if hold {
        return;
    }
    match state.phase {
        Phase::Ready if ctx.slot_available => {
            if let Some(action) = start_action(state, ctx) {
                state.lrs.start_claimed_at = Some(ctx.now);
                state.lrs.start_attempts += 1;
                state.lrs.base_guid = state
                    .plan
                    .as_ref()
                    .and_then(|p| p.steps.first())
                    .map(|s| s.backup_set_guid);
                state.phase = Phase::Starting;
                state.audit(ctx.now, "start claimed");
                actions.push(action);
            }
        }
        Phase::CutoverPending => {
            if let Some(last) = ready_to_complete(state) {
                state.lrs.complete_claimed_at = Some(ctx.now);
                state.lrs.completed_with = Some(last.clone());
                state.phase = Phase::Completing;
                state.audit(
                    ctx.now,
                    format!("completion claimed with lastBackupName {last}"),
                );
                actions.push(Action::CompleteRestore {
                    last_backup_name: last,
                });
            }
        }
        _ => {}
    }
}

/// The tail's name when it is safe to complete, on documented facts only: LRS reports it as
/// `lastRestoredFileName`; when restoreDetails lists backup sets, the tail's set is `Restored` and no
/// other set is queued or restoring; without the lists, no file is queued. The plan reaches the tail
/// unbroken and nothing follows it.
fn ready_to_complete(state: &MigrationState) -> Option<String> {
    let tail = state.tail.as_ref()?;
    let plan = state.plan.as_ref()?;
    if !plan.can_complete || plan.tail.as_deref() != Some(tail.file_name.as_str()) {
        return None;
    }
    let snapshot = state.lrs.snapshot.as_ref()?;
    if !same_file(snapshot.last_restored_file.as_deref(), &tail.file_name) {
        return None;
    }
    if snapshot.sets_reported {
        let restored = snapshot
            .tail_set_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Restored"));
        if !restored || !snapshot.pending_sets.is_empty() {
            return None;
        }
    } else if snapshot.files_queued > 0 {
        return None;
    }
    Some(tail.file_name.clone())
}

fn start_action(state: &MigrationState, ctx: &Context) -> Option<Action> {
    let plan = state.plan.as_ref()?;
    let base = plan.steps.first()?;
    let collation = base
        .files
        .iter()
        .filter_map(|name| state.files.get(name))
        .find_map(|record| match &record.file.read {
            FileRead::Read { facts } => facts.first_set()?.collation.name.clone(),
            FileRead::Failed { .. } => None,
        })
        .unwrap_or_else(|| ctx.default_collation.clone());
    Some(Action::StartLrs {
        database_name: state.database_name.clone(),
        collation,
    })
}

/// LRS reports file names as uploaded; compare without case, since blob names and what LRS echoes
/// have been seen to differ in case.
pub fn same_file(reported: Option<&str>, name: &str) -> bool {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_ascii_lowercase();
    reported.is_some_and(|r| base(r) == base(name))
}

fn alert(kind: AlertKind, severity: Severity, detail: String) -> Action {
    Action::Alert(Alert {
        kind,
        severity,
        detail,
    })
}

fn push_alert_once(
    state: &mut MigrationState,
    actions: &mut Vec<Action>,
    key: String,
    action: Action,
) {
    if state.alerts_raised.insert(key) {
        actions.push(action);
    }
}

/// When the timer should next look: by phase, spread over the interval by the folder name so that
/// a thousand databases do not all poll on the same tick.
fn next_poll(state: &MigrationState, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let by_phase = next_poll_by_phase(state, now);
    match (by_phase, settle_deadline(state, now)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn next_poll_by_phase(state: &MigrationState, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let pending = state.files.values().any(|r| r.pending);
    let interval = match poll_interval(state.phase) {
        Some(i) => i,
        None if pending => Duration::ZERO,
        None => return None,
    };
    let spread = if interval > Duration::ZERO {
        let hash = state
            .folder
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let secs = interval.whole_seconds().max(1) as u64;
        Duration::seconds((hash % secs) as i64 / 4)
    } else {
        Duration::ZERO
    };
    Some(now + interval + spread)
}
