//! The fault matrix: duplicated, reordered and concurrent events, state document conflicts, ARM
//! throttling and server errors, and a handler killed and restarted between steps. Every run must
//! end with 0 lost files, exactly 1 accepted start, 0 early completes and 0 deletes, read from the
//! simulator's request log ([`pipeline_support::assert_migrated`]).

mod pipeline_support;
mod support;

use std::sync::Arc;

use lrs_autopilot::chain::FindingCode;
use lrs_autopilot::migration::Phase;
use lrs_autopilot::pipeline::{
    ArmLrs, LrsApi, LrsCallError, OperationState, RestoreView, StartRequest,
};
use lrs_autopilot::sim::Faults;
use pipeline_support::{
    CLEAN, CLEAN_TAIL, Encoding, InProcess, Rig, RigOptions, Schema, Serve, Uploaded,
    assert_migrated, ledger, rig_with_fixtures,
};

const FOLDER: &str = "RestoreTimeClean";

fn schema(i: usize) -> Schema {
    Schema::alternate(i)
}

async fn rig_with_clean(options: RigOptions) -> Option<(Rig, Vec<Uploaded>)> {
    let (rig, fixtures) = rig_with_fixtures(options).await?;
    let uploaded = rig.upload_clean(&fixtures, FOLDER, true).await;
    Some((rig, uploaded))
}

async fn complete(rig: &Rig) {
    rig.drive(rig.endpoint(), FOLDER, 60, |s| s.phase == Phase::Completed)
        .await;
    assert_migrated(rig, FOLDER, FOLDER, &CLEAN, CLEAN_TAIL).await;
}

/// Every event three times (as Service Bus may redeliver, and as Event Grid may send twice): the
/// repeats are recognised by the blob's ETag and read nothing; a fourth round after completion
/// changes nothing at ARM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_three_times() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions::default()).await else {
        return;
    };
    let endpoint = rig.endpoint();
    for (i, blob) in uploaded.iter().enumerate() {
        let event = rig.event(blob, schema(i));
        let first = endpoint.deliver(&event, Encoding::Twice).await;
        assert_eq!(first.status, 200, "{first:?}");
        assert!(first.log_text().starts_with("recorded "), "{first:?}");
        let reads = rig.blobs.snapshot().1;
        for encoding in [Encoding::Once, Encoding::Object] {
            let again = endpoint.deliver(&event, encoding).await;
            assert_eq!(again.status, 200, "{again:?}");
            assert!(
                again.log_text().starts_with("already recorded"),
                "a repeated event with the same ETag is a duplicate: {again:?}"
            );
        }
        assert_eq!(
            rig.blobs.snapshot().1,
            reads,
            "a duplicate event reads no blob"
        );
    }
    complete(&rig).await;
    let before = rig.requests().len();
    for (i, blob) in uploaded.iter().enumerate() {
        let reply = endpoint
            .deliver(&rig.event(blob, schema(i)), Encoding::Twice)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let writes = rig.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "late duplicates cause no ARM write");
    assert_migrated(&rig, FOLDER, FOLDER, &CLEAN, CLEAN_TAIL).await;
}

/// The events in reverse order: the tail first, the full backup last. LRS starts only when the
/// full backup is recorded, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_reverse_order() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions::default()).await else {
        return;
    };
    for (i, blob) in uploaded.iter().enumerate().rev() {
        let reply = rig
            .endpoint()
            .deliver(&rig.event(blob, schema(i)), Encoding::Twice)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let starts = ledger(&rig.requests(), FOLDER).start_attempts;
        assert_eq!(starts, usize::from(i == 0), "after {}", blob.name);
    }
    complete(&rig).await;
}

/// Twenty invocations for one database at the same moment (the eight events and twelve repeats),
/// as `maxConcurrentCalls` allows: racing writers re-read and re-decide, and only one start leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_invocations_for_one_database() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions::default()).await else {
        return;
    };
    let endpoint = rig.endpoint().clone();
    let events: Vec<_> = (0..20)
        .map(|i| rig.event(&uploaded[i % uploaded.len()], schema(i)))
        .collect();
    let replies = futures::future::join_all(events.iter().map(|event| {
        let endpoint = endpoint.clone();
        async move { endpoint.deliver_until_ok(event, Encoding::Twice).await }
    }))
    .await;
    assert_eq!(replies.len(), 20);
    let conflicts = rig.handler.pipeline.metrics().state_conflicts.get();
    assert!(
        conflicts > 0,
        "twenty writers on one document must have raced at least once"
    );
    assert_eq!(ledger(&rig.requests(), FOLDER).start_attempts, 1);
    complete(&rig).await;
}

/// A second writer rewrites the state document just before every other write of the pipeline, so
/// Azurite answers 412 to half of them; and two handler instances share the storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_document_conflicts() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions {
        race_state: true,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    let other = InProcess::serve(rig.pipeline()).await;
    let endpoints = [rig.endpoint().clone(), other.endpoint.clone()];
    let deliveries = uploaded.iter().enumerate().map(|(i, blob)| {
        let endpoint = endpoints[i % 2].clone();
        let event = rig.event(blob, schema(i));
        async move { endpoint.deliver_until_ok(&event, Encoding::Once).await }
    });
    futures::future::join_all(deliveries).await;
    let raced = rig
        .wrapped_state
        .as_ref()
        .map(|r| r.raced.load(std::sync::atomic::Ordering::SeqCst))
        .unwrap_or_default();
    let retried = rig.handler.pipeline.metrics().state_conflicts.get()
        + other.pipeline.metrics().state_conflicts.get();
    assert!(raced > 0, "the racing writer ran");
    assert!(
        retried >= raced,
        "every raced write was retried: {retried} < {raced}"
    );
    // The timer alternates between the two instances.
    for i in 0..60 {
        let state = rig.state_of(FOLDER).await.expect("state");
        if state.phase == Phase::Completed {
            break;
        }
        rig.advance(pipeline_support::TICK);
        let reply = endpoints[i % 2].timer().await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_migrated(&rig, FOLDER, FOLDER, &CLEAN, CLEAN_TAIL).await;
}

/// ARM answers 429 (with Retry-After) and 500 to a third of the requests each: the client retries,
/// a start or completion that still fails is decided again on a later tick, never sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm_throttling_and_server_errors() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions {
        faults: Faults {
            throttle_rate: 0.3,
            retry_after_secs: 0,
            server_error_rate: 0.3,
            // A sequence in which a write meets a fault, with the preflight's instance reads
            // (GET instance, database list, metrics) before the start.
            seed: 11,
            ..Faults::default()
        },
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    for (i, blob) in uploaded.iter().enumerate() {
        rig.endpoint()
            .deliver_until_ok(&rig.event(blob, schema(i)), Encoding::Twice)
            .await;
    }
    complete(&rig).await;
    let requests = rig.requests();
    let statuses = |code: u16| requests.iter().filter(|r| r.status == code).count();
    assert!(statuses(429) > 0, "throttling was injected");
    assert!(statuses(500) > 0, "server errors were injected");
    let writes_refused = requests
        .iter()
        .filter(|r| r.method != "GET" && matches!(r.status, 429 | 500))
        .count();
    assert!(writes_refused > 0, "a start or completion met a fault");
}

/// The binary killed (SIGKILL) and restarted between steps: after the first half of the events,
/// after the second half (one message redelivered, as Service Bus does for an invocation that
/// died), and between timer passes. The state lives in Azurite, so each new process carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_killed_and_restarted_between_steps() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions::default()).await else {
        return;
    };
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_lrs-autopilot"));
    let env = rig.env();

    let (first, _) = Serve::start(binary, &env).await;
    rig.deliver_each(
        &first.endpoint,
        uploaded.iter().enumerate().take(4),
        Encoding::Twice,
    )
    .await;
    first.kill();
    assert_eq!(ledger(&rig.requests(), FOLDER).starts_accepted, 1);

    let (second, _) = Serve::start(binary, &env).await;
    rig.deliver_each(
        &second.endpoint,
        uploaded.iter().enumerate().skip(3),
        Encoding::Once,
    )
    .await;
    // One timer pass: LRS has not restored the tail yet, so nothing completes.
    let reply = second.endpoint.timer().await;
    assert_eq!(reply.status, 200, "{reply:?}");
    second.kill();
    let state = rig.state_of(FOLDER).await.expect("state");
    assert_eq!(state.phase, Phase::CutoverPending, "{:?}", state.reason);
    assert_eq!(state.files.len(), CLEAN.len());

    let (third, _) = Serve::start(binary, &env).await;
    rig.drive(&third.endpoint, FOLDER, 60, |s| s.phase == Phase::Completed)
        .await;
    let logs = third.kill();
    assert!(logs.contains("lrs completion sent"), "{logs}");
    assert_migrated(&rig, FOLDER, FOLDER, &CLEAN, CLEAN_TAIL).await;
}

/// What a [`CutOff`] does to the first call of one kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Nothing.
    Pass,
    /// The request never reaches ARM (the worker died before sending it).
    Request,
    /// ARM acts on it but the answer is lost (the connection dropped, the worker died after).
    Answer,
}

/// The ARM port with one start or completion cut off, as a worker that dies mid-call leaves it.
struct CutOff {
    inner: ArmLrs,
    start: Cut,
    complete: Cut,
    used: std::sync::Mutex<(bool, bool)>,
}

fn lost() -> LrsCallError {
    LrsCallError {
        status: None,
        code: None,
        message: "the connection was reset (cut off by the test)".into(),
        retryable: true,
    }
}

impl CutOff {
    /// The cut for this call, once per kind.
    fn take(&self, complete: bool) -> Cut {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let (flag, cut) = if complete {
            (&mut used.1, self.complete)
        } else {
            (&mut used.0, self.start)
        };
        if std::mem::replace(flag, true) {
            Cut::Pass
        } else {
            cut
        }
    }
}

#[async_trait::async_trait]
impl LrsApi for CutOff {
    async fn start(&self, request: &StartRequest) -> Result<Option<String>, LrsCallError> {
        match self.take(false) {
            Cut::Pass => self.inner.start(request).await,
            Cut::Request => Err(lost()),
            Cut::Answer => self.inner.start(request).await.and(Err(lost())),
        }
    }
    async fn restore_details(&self, db: &str) -> Result<RestoreView, LrsCallError> {
        self.inner.restore_details(db).await
    }
    async fn complete(&self, db: &str, last: &str) -> Result<Option<String>, LrsCallError> {
        match self.take(true) {
            Cut::Pass => self.inner.complete(db, last).await,
            Cut::Request => Err(lost()),
            Cut::Answer => self.inner.complete(db, last).await.and(Err(lost())),
        }
    }
    async fn poll_operation(&self, url: &str) -> Result<OperationState, LrsCallError> {
        self.inner.poll_operation(url).await
    }
    async fn database_status(&self, db: &str) -> Result<String, LrsCallError> {
        self.inner.database_status(db).await
    }
    async fn instance_facts(
        &self,
    ) -> Result<lrs_autopilot::preflight::InstanceFacts, LrsCallError> {
        self.inner.instance_facts().await
    }
    fn instance_name(&self) -> String {
        self.inner.instance_name()
    }
}

/// Runs the clean chain through a handler whose first start or completion is cut off.
async fn migrate_with_cut(start: Cut, complete: Cut) -> Option<Rig> {
    let (rig, uploaded) = rig_with_clean(RigOptions::default()).await?;
    let lrs = CutOff {
        inner: ArmLrs::new(rig.sim.client(), pipeline_support::instance()),
        start,
        complete,
        used: std::sync::Mutex::new((false, false)),
    };
    let handler = InProcess::serve(rig.pipeline_with(Arc::new(lrs))).await;
    for (i, blob) in uploaded.iter().enumerate() {
        let (reply, _) = handler
            .endpoint
            .deliver_until_ok(&rig.event(blob, schema(i)), Encoding::Twice)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    if start != Cut::Pass {
        let state = rig.state_of(FOLDER).await.expect("state");
        assert_eq!(
            state.phase,
            Phase::Starting,
            "the claim stays until reconciled"
        );
    }
    // Reconciling a claimed start waits `START_RECONCILE_AFTER` of (simulated) time.
    rig.drive(&handler.endpoint, FOLDER, 60, |s| {
        s.phase == Phase::Completed
    })
    .await;
    assert_migrated(&rig, FOLDER, FOLDER, &CLEAN, CLEAN_TAIL).await;
    Some(rig)
}

/// ARM accepted the start but the answer was lost: the timer finds LRS restoring and adopts it;
/// no second PUT is ever sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_answer_was_lost_is_adopted_not_repeated() {
    let Some(rig) = migrate_with_cut(Cut::Answer, Cut::Pass).await else {
        return;
    };
    assert_eq!(ledger(&rig.requests(), FOLDER).start_attempts, 1);
}

/// The start never reached ARM: the timer finds no LRS job and sends it (once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_never_reached_arm_is_sent_by_the_timer() {
    let Some(rig) = migrate_with_cut(Cut::Request, Cut::Pass).await else {
        return;
    };
    assert_eq!(ledger(&rig.requests(), FOLDER).start_attempts, 1);
}

/// ARM accepted completeRestore but the answer was lost: the second request the next tick sends is
/// refused as already signalled; the database still ends online with one accepted complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_whose_answer_was_lost_is_not_accepted_twice() {
    let Some(rig) = migrate_with_cut(Cut::Pass, Cut::Answer).await else {
        return;
    };
    let l = ledger(&rig.requests(), FOLDER);
    assert_eq!(
        l.completes_refused, 1,
        "the repeat was refused as already signalled: {l:?}"
    );
}

/// A restoreDetails error a person must act on (`BrokenRestorePlanGapInLogBackups`, from the code
/// table) blocks the database with an `lrs_error` finding and a `database blocked` alert line; it is
/// never completed.
#[tokio::test(flavor = "current_thread")]
async fn a_broken_restore_plan_from_lrs_blocks_with_an_alert() {
    let (logs, _guard) = pipeline_support::capture_logs();
    let mut faults = Faults::default();
    faults
        .restore_details_errors
        .insert(FOLDER.into(), "BrokenRestorePlanGapInLogBackups".into());
    let Some((rig, uploaded)) = rig_with_clean(RigOptions {
        faults,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    let state = rig
        .drive(rig.endpoint(), FOLDER, 10, |s| s.phase == Phase::Blocked)
        .await;
    let finding = state
        .findings()
        .iter()
        .find(|f| f.code == FindingCode::LrsError)
        .expect("an lrs_error finding");
    assert!(
        finding.message.contains("BrokenRestorePlanGapInLogBackups")
            && finding.message.contains("resume"),
        "{}",
        finding.message
    );
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("database blocked"))
        .unwrap_or_else(|| panic!("no alert line in:\n{text}"));
    assert!(
        line.contains("ERROR") && line.contains("BrokenRestorePlanGapInLogBackups"),
        "{line}"
    );
    let l = ledger(&rig.requests(), FOLDER);
    assert!(l.completes_accepted.is_empty(), "{l:?}");
    assert_eq!(l.deletes, 0);
}

/// A transient restoreDetails error (`TimeoutDuringRestore`) is retried: the migration neither
/// blocks nor fails while it lasts, and completes once LRS answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_restore_details_error_is_retried() {
    let mut faults = Faults::default();
    faults
        .restore_details_errors
        .insert(FOLDER.into(), "TimeoutDuringRestore".into());
    let Some((rig, uploaded)) = rig_with_clean(RigOptions {
        faults,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    for _ in 0..6 {
        rig.advance(pipeline_support::TICK);
        assert_eq!(rig.endpoint().timer().await.status, 200);
        let state = rig.state_of(FOLDER).await.expect("state");
        assert!(
            !matches!(state.phase, Phase::Blocked | Phase::Failed | Phase::Lost),
            "{:?}: {:?}",
            state.phase,
            state.reason
        );
    }
    let failing = ledger(&rig.requests(), FOLDER);
    assert!(failing.completes_accepted.is_empty(), "{failing:?}");
    rig.sim.state.set_faults(Faults::default());
    complete(&rig).await;
}

/// A database that exists on the instance but is not an LRS restore (restoreDetails `type` is not
/// `LRSRestore`) is never adopted: the folder blocks with `name_taken_on_instance` (the preflight
/// sees it in the instance's database list, before any start) or `name_in_use` (the start's own
/// answer, when the list did not show it yet), naming the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_in_use_by_a_database_that_is_not_an_lrs_restore_is_never_adopted() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions::default()).await else {
        return;
    };
    rig.precreate_foreign_database(FOLDER).await;
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    let state = rig
        .drive(rig.endpoint(), FOLDER, 10, |s| s.phase == Phase::Blocked)
        .await;
    let finding = state
        .findings()
        .iter()
        .find(|f| [FindingCode::NameInUse, FindingCode::NameTakenOnInstance].contains(&f.code))
        .expect("a name_in_use or name_taken_on_instance finding");
    assert!(finding.message.contains(FOLDER), "{}", finding.message);
    assert!(finding.message.contains("LRS_DATABASE_NAME_MAP"));
    // More ticks change nothing: it is never adopted nor completed.
    for _ in 0..5 {
        rig.advance(time::Duration::minutes(10));
        assert_eq!(rig.endpoint().timer().await.status, 200);
    }
    let after = rig.state_of(FOLDER).await.expect("state");
    assert_eq!(after.phase, Phase::Blocked);
    assert!(state.lrs.started_at.is_none() && after.lrs.started_at.is_none());
    let l = ledger(&rig.requests(), FOLDER);
    assert!(l.start_attempts <= 1 && l.starts_accepted == 0, "{l:?}");
    assert!(l.completes_accepted.is_empty(), "{l:?}");
}

/// The database disappears after its start was accepted (the simulator drops it, as a failover, a
/// Business Critical update or the 30-day cancel would): it goes to `Lost` with a `lrs database
/// lost` alert line, stays there, and an operator's `restart` (the Migrations API) starts LRS again
/// from the full backup and brings it Online.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_database_is_lost_until_an_operator_restarts_it() {
    lost_and_restarted(None).await;
}

/// The same under the short model, where the create operation had already succeeded when the
/// database disappeared.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_database_is_lost_under_short_operations_too() {
    lost_and_restarted(Some(5.0)).await;
}

async fn lost_and_restarted(operation_secs: Option<f64>) {
    let (logs, _guard) = pipeline_support::capture_logs();
    let Some((rig, uploaded)) = rig_with_clean(RigOptions {
        faults: Faults {
            drop_after_secs: Some(20.0),
            ..Faults::default()
        },
        operation_secs,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    let state = rig
        .drive(rig.endpoint(), FOLDER, 10, |s| s.phase == Phase::Lost)
        .await;
    let reason = state.reason.clone().expect("a lost database says why");
    assert!(
        reason.contains("failover") && reason.contains("30-day limit did not"),
        "{reason}"
    );
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("lrs database lost") && l.contains("ERROR")),
        "no alert line in:\n{text}"
    );
    // Nothing restarts it on its own.
    for _ in 0..4 {
        rig.advance(time::Duration::minutes(10));
        assert_eq!(rig.endpoint().timer().await.status, 200);
    }
    assert_eq!(
        rig.state_of(FOLDER).await.expect("state").phase,
        Phase::Lost
    );
    assert_eq!(ledger(&rig.requests(), FOLDER).start_attempts, 1);

    let (status, body) = rig
        .endpoint()
        .migrations("POST", Some(FOLDER), Some("restart"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let done = rig
        .drive(rig.endpoint(), FOLDER, 40, |s| s.phase == Phase::Completed)
        .await;
    assert_eq!(done.restarts, 1);
    assert_eq!(
        done.files.len(),
        CLEAN.len(),
        "files kept across the restart"
    );
    let l = ledger(&rig.requests(), FOLDER);
    assert_eq!(l.starts_accepted, 2, "{l:?}");
    assert_eq!(l.completes_accepted, [CLEAN_TAIL.to_owned()], "{l:?}");
    assert_eq!(l.deletes, 0);
    let id = pipeline_support::instance()
        .database(FOLDER)
        .expect("valid name");
    let db = rig
        .sim
        .client()
        .get_database(&id)
        .await
        .expect("GET database");
    assert_eq!(db.status().as_str(), "Online");
    // A restart of a completed migration is refused.
    let (status, body) = rig
        .endpoint()
        .migrations("POST", Some(FOLDER), Some("restart"), None)
        .await;
    assert_eq!(status, 409, "{body}");
}

/// Business Critical: completion takes hours while secondaries seed (the simulator's complete
/// operation runs 4 simulated hours). The database stays `Completing`, polled each tick, never
/// failed by a timeout, and ends `Completed` once its own status is Online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_that_takes_hours_stays_completing_until_online() {
    let Some((rig, uploaded)) = rig_with_clean(RigOptions {
        complete_secs: 4.0 * 3600.0,
        ..RigOptions::default()
    })
    .await
    else {
        return;
    };
    rig.deliver_each(rig.endpoint(), uploaded.iter().enumerate(), Encoding::Twice)
        .await;
    rig.drive(rig.endpoint(), FOLDER, 40, |s| s.phase == Phase::Completing)
        .await;
    for _ in 0..3 {
        rig.advance(time::Duration::hours(1));
        assert_eq!(rig.endpoint().timer().await.status, 200);
        let state = rig.state_of(FOLDER).await.expect("state");
        assert_eq!(state.phase, Phase::Completing, "{:?}", state.reason);
        assert_eq!(state.lrs.database_status.as_deref(), Some("Restoring"));
    }
    rig.advance(time::Duration::hours(1));
    complete(&rig).await;
}
