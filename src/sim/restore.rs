//! One database's simulated LRS job: which backup sets are restored, restoring, queued or skipped,
//! and the restoreDetails document that shows it. Deterministic: every change is driven by a scan
//! (files + the planner's plan) or by the time passed in, so tests replay it exactly.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::backup::{BackupType, Lsn};
use crate::chain::{FailureKind, FileRead, FolderFile, Plan, PlannedSet, Severity};

const MIB: f64 = 1024.0 * 1024.0;

/// A skipped set being rebuilt from its files: type, first LSN, (stripe, file) pairs, bytes.
type SkippedGroup = (BackupType, Lsn, Vec<(u16, String)>, u64);

/// A file as the job last saw it, and when it was first seen in that shape.
#[derive(Debug, Clone)]
struct Seen {
    file: FolderFile,
    detected: OffsetDateTime,
}

/// A backup set that started restoring.
#[derive(Debug, Clone)]
struct Run {
    set: PlannedSet,
    started: OffsetDateTime,
    finished: OffsetDateTime,
}

/// One database's LRS job.
#[derive(Debug, Clone)]
pub struct RestoreJob {
    files: BTreeMap<String, Seen>,
    plan: Option<Plan>,
    restored: Vec<Run>,
    current: Option<Run>,
    storage_error: Option<String>,
    bytes_per_sec: f64,
}

impl RestoreJob {
    /// A job that restores at `mbps` megabytes (MiB) per second.
    pub fn new(mbps: f64) -> Self {
        let mbps = if mbps.is_finite() && mbps > 0.0 {
            mbps
        } else {
            1.0
        };
        RestoreJob {
            files: BTreeMap::new(),
            plan: None,
            restored: Vec::new(),
            current: None,
            storage_error: None,
            bytes_per_sec: mbps * MIB,
        }
    }

    /// The base full backup set once restored: the planner must keep it.
    pub fn fixed_base(&self) -> Option<Uuid> {
        self.restored
            .iter()
            .find(|r| r.set.backup_type == BackupType::Full)
            .map(|r| r.set.backup_set_guid)
    }

    /// Every file read so far, by name: a scan run outside the simulator's lock skips these.
    pub fn known_files(&self) -> std::collections::HashMap<String, FolderFile> {
        self.files
            .iter()
            .map(|(name, seen)| (name.clone(), seen.file.clone()))
            .collect()
    }

    /// Feeds a scan of the folder: every file, read, and the plan made from them.
    pub fn handle_scan(&mut self, files: Vec<FolderFile>, plan: Plan, now: OffsetDateTime) {
        let mut next = BTreeMap::new();
        for file in files {
            let detected = self
                .files
                .get(&file.name)
                .filter(|s| s.file.size == file.size && s.file.last_modified == file.last_modified)
                .map(|s| s.detected)
                .unwrap_or(now);
            next.insert(file.name.clone(), Seen { file, detected });
        }
        self.files = next;
        self.plan = Some(plan);
        self.storage_error = None;
    }

    /// Records that storage could not be read; shown in `blockReason` until a scan succeeds.
    pub fn handle_storage_error(&mut self, message: String) {
        self.storage_error = Some(message);
    }

    /// Restores whatever can be restored up to `now`, one set after the other, each taking its size
    /// divided by the speed.
    pub fn advance(&mut self, now: OffsetDateTime) {
        loop {
            if let Some(current) = &self.current {
                if current.finished > now {
                    return;
                }
                if let Some(done) = self.current.take() {
                    self.restored.push(done);
                }
                continue;
            }
            if self.storage_error.is_some() {
                return;
            }
            let Some(next) = self.next_step() else {
                return;
            };
            let available = next
                .files
                .iter()
                .filter_map(|f| self.files.get(f).map(|s| s.detected))
                .max()
                .unwrap_or(now);
            let start = self
                .restored
                .last()
                .map(|r| r.finished.max(available))
                .unwrap_or(available);
            let finished = start + self.duration_of(next.size);
            self.current = Some(Run {
                set: next,
                started: start,
                finished,
            });
        }
    }

    fn duration_of(&self, bytes: u64) -> Duration {
        Duration::seconds_f64(bytes as f64 / self.bytes_per_sec)
    }

    fn restored_to(&self) -> Option<Lsn> {
        self.restored.last().map(|r| r.set.last_lsn)
    }

    fn started_guids(&self) -> HashSet<Uuid> {
        self.restored
            .iter()
            .chain(self.current.as_ref())
            .map(|r| r.set.backup_set_guid)
            .collect()
    }

    /// Whether a plan step not yet started is still to come (else LRS skips it).
    fn is_pending(&self, step: &PlannedSet) -> bool {
        let reached = self
            .current
            .as_ref()
            .map(|c| c.set.last_lsn)
            .or(self.restored_to());
        match reached {
            None => true,
            Some(lsn) => step.last_lsn > lsn,
        }
    }

    fn next_step(&self) -> Option<PlannedSet> {
        let plan = self.plan.as_ref()?;
        let started = self.started_guids();
        let step = plan
            .steps
            .iter()
            .filter(|s| !started.contains(&s.backup_set_guid))
            .find(|s| self.is_pending(s))?;
        if self.restored.is_empty() && step.backup_type != BackupType::Full {
            return None;
        }
        Some(step.clone())
    }

    /// When the set holding `file` finished restoring, if it has.
    pub fn restored_at(&self, file: &str) -> Option<OffsetDateTime> {
        self.restored
            .iter()
            .find(|r| r.set.files.iter().any(|f| f == file))
            .map(|r| r.finished)
    }

    /// The first stripe of the last restored set: the name completeRestore must be given.
    pub fn last_restored_file(&self) -> Option<&str> {
        self.restored
            .last()
            .and_then(|r| r.set.files.first())
            .map(String::as_str)
    }

    /// Whether nothing is restoring or queued: everything in the folder that can be restored is.
    pub fn is_caught_up(&self) -> bool {
        self.current.is_none() && self.next_step().is_none()
    }

    /// The `properties` of restoreDetails, in the documented schema (api-version 2025-01-01).
    /// Absent values are omitted, as in the spec's example.
    ///
    /// `status` is always `Restoring`, the only value Microsoft's examples show: the simulator
    /// serves restoreDetails only while the database restores and answers an error after that.
    pub fn details(&self, now: OffsetDateTime) -> Value {
        let mut props = Map::new();
        props.insert("type".into(), json!("LRSRestore"));
        props.insert("status".into(), json!("Restoring"));
        if let Some(reason) = self.block_reason() {
            props.insert("blockReason".into(), json!(reason));
        }
        if let Some(last) = self.files.values().max_by_key(|s| {
            (
                s.file.last_modified.unwrap_or(s.detected),
                s.file.name.clone(),
            )
        }) {
            props.insert("lastUploadedFileName".into(), json!(last.file.name));
            props.insert(
                "lastUploadedFileTime".into(),
                json!(timestamp(last.file.last_modified.unwrap_or(last.detected))),
            );
        }
        if let Some(last) = self.restored.last() {
            props.insert("lastRestoredFileName".into(), json!(last.set.files.first()));
            props.insert(
                "lastRestoredFileTime".into(),
                json!(timestamp(last.finished)),
            );
        }

        let plan_steps: Vec<&PlannedSet> = self
            .plan
            .as_ref()
            .map(|p| p.steps.iter().collect())
            .unwrap_or_default();
        let started = self.started_guids();
        let queued: Vec<&PlannedSet> = plan_steps
            .iter()
            .copied()
            .filter(|s| !started.contains(&s.backup_set_guid) && self.is_pending(s))
            .collect();
        let skipped_steps: Vec<&PlannedSet> = plan_steps
            .iter()
            .copied()
            .filter(|s| !started.contains(&s.backup_set_guid) && !self.is_pending(s))
            .collect();

        let restored_bytes: u64 = self.restored.iter().map(|r| r.set.size).sum();
        let (current_bytes, current_done) = match &self.current {
            Some(c) => {
                let total = (c.finished - c.started).as_seconds_f64();
                let elapsed = (now - c.started).as_seconds_f64();
                let fraction = if total > 0.0 {
                    (elapsed / total).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                (c.set.size, c.set.size as f64 * fraction)
            }
            None => (0, 0.0),
        };
        let queued_bytes: u64 = queued.iter().map(|s| s.size).sum();
        let plan_bytes = restored_bytes + current_bytes + queued_bytes;
        let done_bytes = restored_bytes as f64 + current_done;
        let percent = if plan_bytes > 0 {
            (done_bytes / plan_bytes as f64 * 100.0).floor()
        } else {
            0.0
        };
        props.insert("percentCompleted".into(), json!(percent as u64));
        props.insert("currentRestoredSizeMB".into(), json!(mb(done_bytes)));
        props.insert(
            "currentRestorePlanSizeMB".into(),
            json!(mb(plan_bytes as f64)),
        );
        if let Some(c) = &self.current {
            props.insert(
                "currentBackupType".into(),
                json!(type_name(c.set.backup_type)),
            );
            props.insert(
                "currentRestoringFileName".into(),
                json!(c.set.files.first()),
            );
        }

        // Every file lands in exactly one count, so the counts add up to numberOfFilesDetected.
        let mut restoring_files: HashSet<&str> = HashSet::new();
        let mut restored_files: HashSet<&str> = HashSet::new();
        let mut queued_files: HashSet<&str> = HashSet::new();
        let mut skipped_files: HashSet<&str> = HashSet::new();
        for r in &self.restored {
            restored_files.extend(r.set.files.iter().map(String::as_str));
        }
        if let Some(c) = &self.current {
            restoring_files.extend(c.set.files.iter().map(String::as_str));
        }
        for s in &queued {
            queued_files.extend(s.files.iter().map(String::as_str));
        }
        for s in &skipped_steps {
            skipped_files.extend(s.files.iter().map(String::as_str));
        }
        if let Some(plan) = &self.plan {
            skipped_files.extend(plan.skipped.iter().map(String::as_str));
        }
        let database = self.plan.as_ref().and_then(|p| p.database_name.as_deref());
        let mut unrestorable = Vec::new();
        let mut waiting = 0u64;
        for seen in self.files.values() {
            let name = seen.file.name.as_str();
            if restored_files.contains(name)
                || restoring_files.contains(name)
                || queued_files.contains(name)
                || skipped_files.contains(name)
            {
                continue;
            }
            match &seen.file.read {
                FileRead::Failed {
                    kind: FailureKind::Incomplete,
                    ..
                } => waiting += 1,
                FileRead::Failed { .. } => unrestorable.push(name),
                FileRead::Read { facts } => {
                    let foreign = match (database, facts.first_set()) {
                        (Some(db), Some(set)) => !set.database_name.eq_ignore_ascii_case(db),
                        _ => false,
                    };
                    if foreign {
                        unrestorable.push(name);
                    } else {
                        waiting += 1;
                    }
                }
            }
        }
        let count = |set: &HashSet<&str>| {
            set.iter().filter(|n| self.files.contains_key(**n)).count() as u64
        };
        props.insert("numberOfFilesDetected".into(), json!(self.files.len()));
        props.insert(
            "numberOfFilesQueued".into(),
            json!(count(&queued_files) + waiting),
        );
        props.insert("numberOfFilesSkipped".into(), json!(count(&skipped_files)));
        props.insert(
            "numberOfFilesRestoring".into(),
            json!(count(&restoring_files)),
        );
        props.insert(
            "numberOfFilesRestored".into(),
            json!(count(&restored_files)),
        );
        props.insert(
            "numberOfFilesUnrestorable".into(),
            json!(unrestorable.len()),
        );

        let mut sets: Vec<(BackupType, Lsn, Value)> = Vec::new();
        for r in &self.restored {
            sets.push(set_entry(
                &r.set,
                "Restored",
                Some(r.started),
                Some(r.finished),
            ));
        }
        if let Some(c) = &self.current {
            sets.push(set_entry(&c.set, "Restoring", Some(c.started), None));
        }
        for s in &queued {
            sets.push(set_entry(s, "Queued", None, None));
        }
        for s in &skipped_steps {
            sets.push(set_entry(s, "Skipped", None, None));
        }
        sets.extend(self.skipped_sets_from_files());
        sets.sort_by_key(|s| s.1);
        for (kind, key) in [
            (BackupType::Full, "fullBackupSets"),
            (BackupType::Differential, "diffBackupSets"),
            (BackupType::Log, "logBackupSets"),
        ] {
            let list: Vec<Value> = sets
                .iter()
                .filter(|(t, _, _)| *t == kind)
                .map(|(_, _, v)| v.clone())
                .collect();
            props.insert(key.into(), Value::Array(list));
        }
        let unrestorable: Vec<Value> = unrestorable.iter().map(|n| json!({ "name": n })).collect();
        props.insert("unrestorableFiles".into(), Value::Array(unrestorable));
        Value::Object(props)
    }

    /// The planner's skipped files, grouped back into their backup sets.
    fn skipped_sets_from_files(&self) -> Vec<(BackupType, Lsn, Value)> {
        let Some(plan) = &self.plan else {
            return Vec::new();
        };
        let mut groups: BTreeMap<Uuid, SkippedGroup> = BTreeMap::new();
        for name in &plan.skipped {
            let Some(seen) = self.files.get(name) else {
                continue;
            };
            let FileRead::Read { facts } = &seen.file.read else {
                continue;
            };
            let Some(set) = facts.first_set() else {
                continue;
            };
            let entry = groups.entry(set.backup_set_guid).or_insert((
                set.backup_type,
                set.first_lsn,
                Vec::new(),
                0,
            ));
            entry.2.push((facts.media.family_sequence, name.clone()));
            entry.3 += seen.file.size;
        }
        groups
            .into_values()
            .map(|(kind, first_lsn, mut files, size)| {
                files.sort();
                let first = files.first().map(|(_, n)| n.clone()).unwrap_or_default();
                let value = json!({
                    "status": "Skipped",
                    "firstStripeName": first,
                    "numberOfStripes": files.len(),
                    "backupSizeMB": mb(size as f64),
                });
                (kind, first_lsn, value)
            })
            .collect()
    }

    fn block_reason(&self) -> Option<String> {
        if let Some(e) = &self.storage_error {
            return Some(format!("StorageBrokenIssueDetectedWhileInProgress: {e}"));
        }
        let plan = self.plan.as_ref()?;
        let blocking: Vec<&str> = plan
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocking)
            .map(|f| f.message.as_str())
            .collect();
        if !blocking.is_empty() {
            return Some(blocking.join("; "));
        }
        if self.restored.is_empty()
            && self.current.is_none()
            && !self.files.is_empty()
            && !plan.can_start
        {
            return Some(
                "BrokenRestorePlanNoFullBackup: no complete full backup in the folder".into(),
            );
        }
        None
    }
}

fn set_entry(
    set: &PlannedSet,
    status: &str,
    started: Option<OffsetDateTime>,
    finished: Option<OffsetDateTime>,
) -> (BackupType, Lsn, Value) {
    let mut value = json!({
        "status": status,
        "firstStripeName": set.files.first(),
        "numberOfStripes": set.files.len(),
        "backupSizeMB": mb(set.size as f64),
    });
    if let Some(t) = started {
        value["restoreStartedTimestampUtc"] = json!(timestamp(t));
    }
    if let Some(t) = finished {
        value["restoreFinishedTimestampUtc"] = json!(timestamp(t));
    }
    (set.backup_type, set.first_lsn, value)
}

fn mb(bytes: f64) -> u64 {
    (bytes / MIB).round() as u64
}

fn type_name(t: BackupType) -> &'static str {
    match t {
        BackupType::Full => "Full",
        BackupType::Differential => "Differential",
        BackupType::Log => "Log",
        _ => "Other",
    }
}

/// RFC 3339 in UTC, as ARM writes timestamps.
pub fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Finding, FindingCode};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);

    fn lsn(n: u32) -> Lsn {
        Lsn {
            vlf: n,
            block: 0,
            slot: 0,
        }
    }

    fn step(kind: BackupType, name: &str, first: u32, last: u32, mib: u64) -> PlannedSet {
        PlannedSet {
            backup_type: kind,
            files: vec![name.into()],
            backup_set_guid: Uuid::new_v4(),
            first_lsn: lsn(first),
            last_lsn: lsn(last),
            size: mib * 1024 * 1024,
            backup_time: None,
        }
    }

    fn failed(name: &str, kind: FailureKind) -> FolderFile {
        FolderFile {
            name: name.into(),
            size: 10,
            last_modified: None,
            read: FileRead::Failed {
                kind,
                message: "x".into(),
            },
        }
    }

    fn plan(steps: Vec<PlannedSet>) -> Plan {
        Plan {
            database_name: Some("db".into()),
            can_start: steps
                .first()
                .is_some_and(|s| s.backup_type == BackupType::Full),
            steps,
            skipped: Vec::new(),
            restorable_to_lsn: None,
            restorable_to_time: None,
            tail: None,
            findings: Vec::new(),
            can_complete: false,
        }
    }

    /// The plan's files as unread files: the engine only needs their names and sizes.
    fn files_of(plan: &Plan) -> Vec<FolderFile> {
        plan.steps
            .iter()
            .map(|s| FolderFile {
                name: s.files[0].clone(),
                size: s.size,
                last_modified: None,
                read: FileRead::Failed {
                    kind: FailureKind::Unsupported,
                    message: "not read in this test".into(),
                },
            })
            .collect()
    }

    fn props(job: &RestoreJob, now: OffsetDateTime) -> Value {
        job.details(now)
    }

    fn statuses(v: &Value, key: &str) -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["status"].as_str().unwrap_or("?").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn restores_sets_in_order_at_the_configured_speed() {
        let p = plan(vec![
            step(BackupType::Full, "full.bak", 10, 20, 10),
            step(BackupType::Log, "log1.trn", 15, 30, 5),
            step(BackupType::Log, "log2.trn", 30, 40, 5),
        ]);
        let mut job = RestoreJob::new(1.0);
        job.handle_scan(files_of(&p), p, T0);
        job.advance(T0);
        let v = props(&job, T0);
        assert_eq!(v["currentRestoringFileName"], "full.bak");
        assert_eq!(v["currentBackupType"], "Full");
        assert_eq!(v["percentCompleted"], 0);
        assert_eq!(v["numberOfFilesQueued"], 2);

        // Half the full backup (5 of 20 MiB in the plan) is 25 percent.
        let t = T0 + Duration::seconds(5);
        job.advance(t);
        assert_eq!(props(&job, t)["percentCompleted"], 25);

        let t = T0 + Duration::seconds(12);
        job.advance(t);
        let v = props(&job, t);
        assert_eq!(v["lastRestoredFileName"], "full.bak");
        assert_eq!(v["currentRestoringFileName"], "log1.trn");
        assert_eq!(statuses(&v, "fullBackupSets"), ["Restored"]);
        assert_eq!(statuses(&v, "logBackupSets"), ["Restoring", "Queued"]);
        assert_eq!(
            v["fullBackupSets"][0]["restoreFinishedTimestampUtc"],
            "2025-03-01T12:00:10Z"
        );

        let t = T0 + Duration::seconds(20);
        job.advance(t);
        let v = props(&job, t);
        assert_eq!(v["lastRestoredFileName"], "log2.trn");
        assert_eq!(v["percentCompleted"], 100);
        assert_eq!(v["numberOfFilesRestored"], 3);
        assert!(v.get("currentRestoringFileName").is_none());
        assert!(job.is_caught_up());
    }

    #[test]
    fn picks_up_files_that_arrive_later() {
        let full = step(BackupType::Full, "full.bak", 10, 20, 1);
        let log = step(BackupType::Log, "log1.trn", 15, 30, 1);
        let mut job = RestoreJob::new(1.0);
        let p = plan(vec![full.clone()]);
        job.handle_scan(files_of(&p), p, T0);
        job.advance(T0 + Duration::minutes(10));
        assert_eq!(job.last_restored_file(), Some("full.bak"));
        assert!(job.is_caught_up());

        let later = T0 + Duration::minutes(10);
        let p = plan(vec![full, log]);
        job.handle_scan(files_of(&p), p, later);
        job.advance(later);
        assert_eq!(props(&job, later)["currentRestoringFileName"], "log1.trn");
        // The log could not start before it was seen, so it finishes a second after that.
        job.advance(later + Duration::seconds(1));
        assert_eq!(job.last_restored_file(), Some("log1.trn"));
        let v = props(&job, later + Duration::seconds(1));
        assert_eq!(
            v["logBackupSets"][0]["restoreStartedTimestampUtc"],
            "2025-03-01T12:10:00Z"
        );
    }

    #[test]
    fn a_late_set_behind_the_restored_point_is_skipped() {
        let full = step(BackupType::Full, "full.bak", 10, 20, 1);
        let log = step(BackupType::Log, "log1.trn", 15, 30, 1);
        let diff = step(BackupType::Differential, "diff.bak", 18, 25, 1);
        let mut job = RestoreJob::new(100.0);
        let p = plan(vec![full.clone(), log.clone()]);
        job.handle_scan(files_of(&p), p, T0);
        job.advance(T0 + Duration::minutes(1));
        let p = plan(vec![full, diff, log]);
        job.handle_scan(files_of(&p), p, T0 + Duration::minutes(1));
        job.advance(T0 + Duration::minutes(2));
        let v = props(&job, T0 + Duration::minutes(2));
        assert_eq!(statuses(&v, "diffBackupSets"), ["Skipped"]);
        assert_eq!(v["numberOfFilesSkipped"], 1);
        assert_eq!(job.last_restored_file(), Some("log1.trn"));
    }

    #[test]
    fn nothing_restores_without_a_full_backup_and_the_reason_is_shown() {
        let mut p = plan(vec![step(BackupType::Log, "log1.trn", 15, 30, 1)]);
        p.findings.push(Finding {
            code: FindingCode::NoFullBackup,
            severity: Severity::Blocking,
            files: vec![],
            message: "no complete full backup in folder db".into(),
        });
        let mut job = RestoreJob::new(100.0);
        job.handle_scan(files_of(&p), p, T0);
        job.advance(T0 + Duration::hours(1));
        let v = props(&job, T0 + Duration::hours(1));
        assert_eq!(v["blockReason"], "no complete full backup in folder db");
        assert_eq!(job.last_restored_file(), None);
        assert_eq!(v["numberOfFilesRestored"], 0);
    }

    #[test]
    fn unreadable_files_are_unrestorable_and_counts_add_up() {
        let p = plan(vec![step(BackupType::Full, "full.bak", 10, 20, 1)]);
        let mut files = files_of(&p);
        files.push(failed("ImageFile.JPG", FailureKind::NotABackup));
        files.push(failed("uploading.trn", FailureKind::Incomplete));
        let mut job = RestoreJob::new(100.0);
        job.handle_scan(files, p, T0);
        job.advance(T0);
        let v = props(&job, T0);
        assert_eq!(v["unrestorableFiles"], json!([{ "name": "ImageFile.JPG" }]));
        assert_eq!(v["numberOfFilesUnrestorable"], 1);
        let sum: u64 = [
            "numberOfFilesQueued",
            "numberOfFilesSkipped",
            "numberOfFilesRestoring",
            "numberOfFilesRestored",
            "numberOfFilesUnrestorable",
        ]
        .iter()
        .filter_map(|k| v[*k].as_u64())
        .sum();
        assert_eq!(Some(sum), v["numberOfFilesDetected"].as_u64());
        assert_eq!(sum, 3);
    }

    #[test]
    fn a_storage_failure_blocks_new_sets_and_shows_in_block_reason() {
        let p = plan(vec![
            step(BackupType::Full, "full.bak", 10, 20, 1),
            step(BackupType::Log, "log1.trn", 15, 30, 1),
        ]);
        let mut job = RestoreJob::new(1.0);
        job.handle_scan(files_of(&p), p.clone(), T0);
        job.advance(T0);
        job.handle_storage_error("403 AuthorizationPermissionMismatch".into());
        job.advance(T0 + Duration::minutes(5));
        assert_eq!(
            job.last_restored_file(),
            Some("full.bak"),
            "the running set finishes"
        );
        let v = props(&job, T0 + Duration::minutes(5));
        assert!(v["blockReason"].as_str().is_some_and(|r| {
            r.starts_with("StorageBrokenIssueDetectedWhileInProgress") && r.contains("403")
        }));
        assert!(
            v.get("currentRestoringFileName").is_none(),
            "no new set starts"
        );
        job.handle_scan(files_of(&p), p, T0 + Duration::minutes(6));
        job.advance(T0 + Duration::minutes(10));
        assert_eq!(job.last_restored_file(), Some("log1.trn"));
    }
}
