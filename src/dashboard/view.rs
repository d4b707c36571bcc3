//! The dashboard's data: built from the state documents, rendered by [`super::page`] and served as
//! JSON unchanged, so the page and the JSON endpoint cannot disagree. Field names are a contract.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::forecast::{Arrival, Forecast, Observation, SetSample, forecast};
use crate::backup::{BackupType, Lsn};
use crate::chain::{FileRead, Finding, Severity};
use crate::migration::{AuditEntry, MigrationState, Phase, SetSnapshot, TailSource};

const MB: f64 = 1024.0 * 1024.0;

/// The whole estate.
#[derive(Debug, Clone, Serialize)]
pub struct Estate {
    /// When this view was built.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The summary line.
    pub summary: Summary,
    /// One entry per database, by container and folder.
    pub databases: Vec<DatabaseView>,
}

/// The summary line.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Databases per phase, in lifecycle order (phases with none left out).
    pub phases: Vec<PhaseCount>,
    /// Databases a person must act on (`Blocked`, `Failed`, `Expired`).
    pub blocked: usize,
    /// Databases falling behind.
    pub falling_behind: usize,
    /// The nearest 30-day limit among databases still restoring.
    pub nearest_deadline: Option<Deadline>,
    /// When the SAS token LRS reads the container with expires (None with a managed identity).
    #[serde(with = "time::serde::rfc3339::option")]
    pub sas_expiry: Option<OffsetDateTime>,
}

/// How many databases are in a phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseCount {
    /// The phase.
    pub phase: Phase,
    /// How many.
    pub count: usize,
}

/// A database's 30-day limit.
#[derive(Debug, Clone, Serialize)]
pub struct Deadline {
    /// Its folder.
    pub folder: String,
    /// When LRS cancels the job.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Days left.
    pub days_left: f64,
}

/// Where the tail-log backup is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TailState {
    /// No tail-log backup yet.
    NotTaken,
    /// Recognised, not yet restored.
    Recognised {
        /// Its file.
        file: String,
        /// How it was recognised.
        source: TailSource,
    },
    /// LRS reported it restored.
    Restored {
        /// Its file.
        file: String,
    },
    /// completeRestore was sent.
    CompletionSent {
        /// The name sent.
        file: String,
    },
}

impl TailState {
    /// In words.
    pub fn describe(&self) -> String {
        match self {
            TailState::NotTaken => "not yet taken".into(),
            TailState::Recognised { file, .. } => format!("recognised: {file}"),
            TailState::Restored { file } => format!("restored: {file}"),
            TailState::CompletionSent { file } => format!("completion sent: {file}"),
        }
    }
}

/// One box of the chain picture, in restore order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChainLink {
    /// A backup set with its stripe files.
    Set(ChainSet),
    /// No log backup in the folder covers these LSNs.
    Gap {
        /// The LSN the chain reaches.
        from_lsn: Lsn,
        /// The LSN the next backup begins at.
        to_lsn: Lsn,
        /// The file before the gap.
        before: String,
        /// The file after it.
        after: String,
    },
}

/// A backup set in the chain picture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainSet {
    /// Full, differential or log.
    pub backup_type: BackupType,
    /// Stripe files, in name order.
    pub files: Vec<String>,
    /// First LSN.
    pub first_lsn: Lsn,
    /// Last LSN.
    pub last_lsn: Lsn,
    /// Total size in bytes.
    pub size: u64,
    /// In LRS's restore plan (a set after a gap is not).
    pub planned: bool,
    /// LRS restored it.
    pub restored: bool,
    /// LRS is restoring it now.
    pub restoring: bool,
    /// It is the tail-log backup.
    pub tail: bool,
}

/// What the cutover form offers, where the pipeline accepts a cutover.
#[derive(Debug, Clone, Serialize)]
pub struct CutoverOffer {
    /// The folder's log backups, newest first: the tail-log name is chosen from these.
    pub log_backups: Vec<String>,
}

/// One database.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseView {
    /// The container.
    pub container: String,
    /// The database folder.
    pub folder: String,
    /// The target database name: what the operator types to confirm a cutover.
    pub database_name: String,
    /// The managed instance it migrates to, when one is recorded.
    pub target: Option<crate::migration::TargetInstance>,
    /// Where it is.
    pub phase: Phase,
    /// Why it is blocked, failed or expired.
    pub reason: Option<String>,
    /// Files in the plan.
    pub files_planned: usize,
    /// Files LRS reports restored.
    pub files_restored: u64,
    /// Restored of planned, percent.
    pub percent: Option<f64>,
    /// The file LRS is restoring.
    pub restoring_file: Option<String>,
    /// The last file LRS restored.
    pub last_restored_file: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_restored_at: Option<OffsetDateTime>,
    /// The tail-log backup.
    pub tail: TailState,
    /// The forecast.
    pub forecast: Forecast,
    /// Findings, blocking first.
    pub findings: Vec<Finding>,
    /// The chain picture.
    pub chain: Vec<ChainLink>,
    /// Files that are not part of any set: unreadable, or refused, with why.
    pub other_files: BTreeMap<String, String>,
    /// The backup sets LRS reports.
    pub backup_sets: Vec<SetSnapshot>,
    /// The audit trail, newest first.
    pub audit: Vec<AuditEntry>,
    /// Present where a cutover may be declared.
    pub cutover: Option<CutoverOffer>,
}

impl DatabaseView {
    /// Blocking findings.
    pub fn blocking(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Blocking)
            .count()
    }

    /// An id safe in HTML ids and fragments, unique per container and folder.
    pub fn anchor(&self) -> String {
        let mut out = String::from("db-");
        for b in format!("{}/{}", self.container, self.folder).bytes() {
            if b.is_ascii_alphanumeric() {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("_{b:02x}"));
            }
        }
        out
    }
}

/// Where an operator may declare a cutover: LRS restores and no completion has been claimed. The
/// pipeline's state machine decides again on the POST; this only keeps the button away elsewhere.
pub fn cutover_allowed(s: &MigrationState) -> bool {
    matches!(s.phase, Phase::Restoring | Phase::CutoverPending)
        && s.lrs.complete_claimed_at.is_none()
}

/// A person must act.
fn needs_person(phase: Phase) -> bool {
    matches!(phase, Phase::Blocked | Phase::Failed | Phase::Expired)
}

/// The estate from every state document.
pub fn estate(
    states: &[MigrationState],
    now: OffsetDateTime,
    sas_expiry: Option<OffsetDateTime>,
) -> Estate {
    let mut databases: Vec<DatabaseView> = states.iter().map(|s| database(s, now)).collect();
    databases.sort_by(|a, b| (&a.container, &a.folder).cmp(&(&b.container, &b.folder)));
    let phases = Phase::ALL
        .iter()
        .map(|&phase| PhaseCount {
            phase,
            count: databases.iter().filter(|d| d.phase == phase).count(),
        })
        .filter(|c| c.count > 0)
        .collect();
    let nearest_deadline = databases
        .iter()
        .filter(|d| !d.phase.is_final() && d.phase != Phase::Completing)
        .filter_map(|d| {
            Some(Deadline {
                folder: d.folder.clone(),
                at: d.forecast.limit_at?,
                days_left: d.forecast.days_left?,
            })
        })
        .min_by_key(|d| d.at);
    Estate {
        generated_at: now,
        summary: Summary {
            phases,
            blocked: databases.iter().filter(|d| needs_person(d.phase)).count(),
            falling_behind: databases
                .iter()
                .filter(|d| d.forecast.falling_behind)
                .count(),
            nearest_deadline,
            sas_expiry,
        },
        databases,
    }
}

struct Group {
    backup_type: BackupType,
    guid: Uuid,
    files: Vec<String>,
    first_lsn: Lsn,
    last_lsn: Lsn,
    size: u64,
}

/// Readable files grouped into backup sets (stripes together), and the rest with why.
fn groups(s: &MigrationState) -> (Vec<Group>, BTreeMap<String, String>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut other = BTreeMap::new();
    for (name, record) in &s.files {
        match &record.file.read {
            FileRead::Read { facts } => {
                let Some(set) = facts.first_set() else {
                    other.insert(name.clone(), "no backup set in the header".to_owned());
                    continue;
                };
                match groups.iter_mut().find(|g| g.guid == set.backup_set_guid) {
                    Some(g) => {
                        g.files.push(name.clone());
                        g.size += record.file.size;
                    }
                    None => groups.push(Group {
                        backup_type: set.backup_type,
                        guid: set.backup_set_guid,
                        files: vec![name.clone()],
                        first_lsn: set.first_lsn,
                        last_lsn: set.last_lsn,
                        size: record.file.size,
                    }),
                }
            }
            FileRead::Failed { message, .. } => {
                other.insert(name.clone(), message.clone());
            }
        }
    }
    for (name, why) in &s.rejected {
        other.insert(name.clone(), why.clone());
    }
    (groups, other)
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The chain picture: the plan's sets in restore order, then log backups beyond the plan (after a
/// gap) in LSN order, with a gap box wherever the next log does not begin within the previous one.
fn chain(s: &MigrationState, groups: &[Group]) -> Vec<ChainLink> {
    let snapshot = s.lrs.snapshot.as_ref();
    let reported_restored = |first: &str| {
        snapshot.is_some_and(|sn| {
            sn.backup_sets.iter().any(|b| {
                b.status.eq_ignore_ascii_case("Restored")
                    && b.first_stripe_name
                        .as_deref()
                        .is_some_and(|n| same(n, first))
            })
        })
    };
    let last_restored = snapshot.and_then(|sn| sn.last_restored_file.as_deref());
    let restoring = snapshot.and_then(|sn| sn.current_restoring_file.as_deref());
    let tail = s.tail.as_ref().map(|t| t.file_name.as_str());
    let steps = s.plan.as_ref().map(|p| p.steps.as_slice()).unwrap_or(&[]);
    // Sets up to the last restored file are restored, whatever the set lists say.
    let restored_upto = last_restored.and_then(|r| {
        steps
            .iter()
            .position(|st| st.files.iter().any(|f| same(f, r)))
    });
    let has = |files: &[String], name: Option<&str>| {
        name.is_some_and(|n| files.iter().any(|f| same(f, n)))
    };
    let mut sets: Vec<ChainSet> = steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let mut files = st.files.clone();
            files.sort();
            ChainSet {
                backup_type: st.backup_type,
                first_lsn: st.first_lsn,
                last_lsn: st.last_lsn,
                size: st.size,
                planned: true,
                restored: restored_upto.is_some_and(|u| i <= u)
                    || st.files.first().is_some_and(|f| reported_restored(f)),
                restoring: has(&st.files, restoring),
                tail: has(&st.files, tail),
                files,
            }
        })
        .collect();
    let reach = sets.last().map(|s| s.last_lsn);
    let mut beyond: Vec<&Group> = groups
        .iter()
        .filter(|g| g.backup_type == BackupType::Log)
        .filter(|g| !steps.iter().any(|st| st.backup_set_guid == g.guid))
        .filter(|g| reach.is_some_and(|r| g.last_lsn > r))
        .collect();
    beyond.sort_by_key(|g| g.first_lsn);
    sets.extend(beyond.into_iter().map(|g| {
        let mut files = g.files.clone();
        files.sort();
        ChainSet {
            backup_type: g.backup_type,
            first_lsn: g.first_lsn,
            last_lsn: g.last_lsn,
            size: g.size,
            planned: false,
            restored: false,
            restoring: false,
            tail: has(&files, tail),
            files,
        }
    }));
    let mut out = Vec::new();
    let mut prev: Option<&ChainSet> = None;
    for set in &sets {
        if let Some(p) = prev {
            // A log continues the chain when it begins at or before the LSN reached so far.
            if set.backup_type == BackupType::Log && set.first_lsn > p.last_lsn {
                out.push(ChainLink::Gap {
                    from_lsn: p.last_lsn,
                    to_lsn: set.first_lsn,
                    before: p.files.first().cloned().unwrap_or_default(),
                    after: set.files.first().cloned().unwrap_or_default(),
                });
            }
        }
        out.push(ChainLink::Set(set.clone()));
        prev = Some(set);
    }
    out
}

/// One database's view.
pub fn database(s: &MigrationState, now: OffsetDateTime) -> DatabaseView {
    let (groups, other_files) = groups(s);
    let chain = chain(s, &groups);
    let snapshot = s.lrs.snapshot.as_ref();
    let files_planned = s
        .plan
        .as_ref()
        .map_or(0, |p| p.steps.iter().map(|st| st.files.len()).sum());
    let files_restored = s.files_restored();
    let percent = (files_planned > 0)
        .then(|| (files_restored as f64 / files_planned as f64 * 100.0).min(100.0));
    let backlog_mb: f64 = chain
        .iter()
        .filter_map(|l| match l {
            ChainLink::Set(set) if set.planned && !set.restored => Some(set.size as f64 / MB),
            _ => None,
        })
        .sum();
    let sets = snapshot
        .map(|sn| {
            sn.backup_sets
                .iter()
                .map(|b| SetSample {
                    size_mb: b.size_mb.unwrap_or(0.0),
                    started: b.restore_started_at,
                    finished: b.restore_finished_at,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut logs: Vec<(&Group, OffsetDateTime)> = groups
        .iter()
        .filter(|g| g.backup_type == BackupType::Log)
        .filter_map(|g| {
            let seen = g
                .files
                .iter()
                .filter_map(|f| s.files.get(f).map(|r| r.first_seen))
                .min()?;
            Some((g, seen))
        })
        .collect();
    let arrivals = logs
        .iter()
        .map(|(g, at)| Arrival {
            at: *at,
            size_mb: g.size as f64 / MB,
        })
        .collect();
    let forecast = forecast(&Observation {
        now,
        started_at: s.lrs.started_at,
        sets,
        arrivals,
        backlog_mb,
        done: matches!(s.phase, Phase::Completing | Phase::Completed),
    });
    let tail = match (&s.tail, &s.lrs) {
        (_, lrs) if lrs.complete_sent_at.is_some() => TailState::CompletionSent {
            file: lrs.completed_with.clone().unwrap_or_default(),
        },
        (Some(t), lrs) if lrs.tail_restored_at.is_some() => TailState::Restored {
            file: t.file_name.clone(),
        },
        (Some(t), _) => TailState::Recognised {
            file: t.file_name.clone(),
            source: t.source,
        },
        (None, _) => TailState::NotTaken,
    };
    logs.sort_by_key(|(g, _)| std::cmp::Reverse(g.last_lsn));
    let cutover = cutover_allowed(s).then(|| CutoverOffer {
        log_backups: logs
            .iter()
            .flat_map(|(g, _)| g.files.iter().cloned())
            .collect(),
    });
    let mut findings = s.findings().to_vec();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    DatabaseView {
        container: s.container.clone(),
        folder: s.folder.clone(),
        database_name: s.database_name.clone(),
        target: s.target.clone(),
        phase: s.phase,
        reason: s.reason.clone(),
        files_planned,
        files_restored,
        percent,
        restoring_file: snapshot.and_then(|sn| sn.current_restoring_file.clone()),
        last_restored_file: snapshot.and_then(|sn| sn.last_restored_file.clone()),
        last_restored_at: snapshot
            .and_then(|sn| sn.last_restored_at)
            .or(s.lrs.progress_at),
        tail,
        forecast,
        findings,
        chain,
        other_files,
        backup_sets: snapshot
            .map(|sn| sn.backup_sets.clone())
            .unwrap_or_default(),
        audit: s.audit.iter().rev().cloned().collect(),
        cutover: cutover.filter(|c| !c.log_backups.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::chain::synthetic::Synthetic;
    use crate::chain::{FolderFile, PlanInput, TailRule, plan};
    use crate::dashboard::page::{Links, render};
    use crate::migration::{FileRecord, LrsSnapshot, Tail};

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn state(folder: &str, files: Vec<FolderFile>, tail: Option<&str>) -> MigrationState {
        let mut s = MigrationState::new("sqlfiles", folder, folder, NOW);
        for f in files {
            s.files.insert(
                f.name.clone(),
                FileRecord {
                    file: f,
                    etag: None,
                    pending: false,
                    tail_metadata: false,
                    bytes_read: 1,
                    first_seen: NOW,
                },
            );
        }
        let all: Vec<FolderFile> = s.files.values().map(|r| r.file.clone()).collect();
        let rule = TailRule {
            file_name: tail.map(str::to_owned),
            metadata: Vec::new(),
            pattern: None,
            header_hint_confirmed: false,
        };
        s.plan = Some(plan(PlanInput {
            folder,
            files: &all.iter().collect::<Vec<_>>(),
            fixed_base: None,
            tail: &rule,
        }));
        s.tail = tail.map(|t| Tail {
            file_name: t.to_owned(),
            source: TailSource::Operator,
            recognised_at: NOW,
        });
        s
    }

    fn sets(v: &DatabaseView) -> Vec<(String, bool)> {
        v.chain
            .iter()
            .map(|l| match l {
                ChainLink::Set(s) => (s.files.join("+"), s.restored),
                ChainLink::Gap { before, after, .. } => (format!("gap {before}..{after}"), false),
            })
            .collect()
    }

    #[test]
    fn the_chain_draws_the_gap_where_it_is_and_fills_what_lrs_restored() {
        let mut g = Synthetic::new("OrdersDb");
        let files = vec![
            g.full(2000, 2100).file("01_full.bak"),
            g.log(2100, 2200).file("02_log.trn"),
            g.log(2300, 2400).file("04_log.trn"),
        ];
        let _missing = g.log(2200, 2300);
        let mut s = state("OrdersDb", files, None);
        s.phase = Phase::Blocked;
        s.lrs.snapshot = Some(LrsSnapshot {
            last_restored_file: Some("01_FULL.bak".into()),
            files_restored: 1,
            ..LrsSnapshot::default()
        });
        let v = database(&s, NOW);
        assert_eq!(
            sets(&v),
            [
                ("01_full.bak".to_owned(), true),
                ("02_log.trn".to_owned(), false),
                ("gap 02_log.trn..04_log.trn".to_owned(), false),
                ("04_log.trn".to_owned(), false),
            ]
        );
        let ChainLink::Gap {
            from_lsn, to_lsn, ..
        } = &v.chain[2]
        else {
            panic!("a gap")
        };
        assert!(from_lsn < to_lsn);
        assert!(v.cutover.is_none(), "no cutover for a blocked database");
        assert_eq!(v.percent, Some(50.0));
    }

    #[test]
    fn stripes_stay_one_set_and_the_tail_is_marked_and_offered_first() {
        let mut g = Synthetic::new("InventoryDb");
        let full = g.full(500, 600);
        let mut files = full.striped(&["f_2of2.bak", "f_1of2.bak"]);
        files.push(g.log(600, 700).file("02_log.trn"));
        files.push(g.log(700, 720).file("03_tail.trn"));
        let mut s = state("InventoryDb", files, Some("03_tail.trn"));
        s.phase = Phase::CutoverPending;
        let v = database(&s, NOW);
        let ChainLink::Set(first) = &v.chain[0] else {
            panic!("a set")
        };
        assert_eq!(first.files, ["f_1of2.bak", "f_2of2.bak"]);
        let ChainLink::Set(last) = v.chain.last().expect("sets") else {
            panic!("a set")
        };
        assert!(last.tail && !first.tail);
        assert_eq!(
            v.tail,
            TailState::Recognised {
                file: "03_tail.trn".into(),
                source: TailSource::Operator
            }
        );
        let offer = v.cutover.expect("offered while LRS restores");
        assert_eq!(offer.log_backups, ["03_tail.trn", "02_log.trn"]);
    }

    #[test]
    fn the_summary_counts_every_phase_and_finds_the_nearest_limit() {
        let mut g = Synthetic::new("A");
        let mut a = state("A", vec![g.full(1, 2).file("a.bak")], None);
        a.phase = Phase::Restoring;
        a.lrs.started_at = Some(NOW - time::Duration::days(20));
        let mut b = a.clone();
        b.folder = "B".into();
        b.lrs.started_at = Some(NOW - time::Duration::days(27));
        let mut c = a.clone();
        c.folder = "C".into();
        c.phase = Phase::Blocked;
        c.lrs.started_at = None;
        let e = estate(&[a, b, c], NOW, None);
        let counts: Vec<(Phase, usize)> = e
            .summary
            .phases
            .iter()
            .map(|p| (p.phase, p.count))
            .collect();
        assert_eq!(counts, [(Phase::Restoring, 2), (Phase::Blocked, 1)]);
        assert_eq!(e.summary.blocked, 1);
        let d = e.summary.nearest_deadline.expect("a deadline");
        assert_eq!(d.folder, "B");
        assert!((d.days_left - 3.0).abs() < 1e-9);
    }

    #[test]
    fn hostile_names_render_as_text() {
        let hostile = "<img src=x onerror=alert(1)>.trn";
        let mut g = Synthetic::new("X\"><script>alert(1)</script>");
        let files = vec![g.full(1, 2).file("a.bak"), g.log(2, 3).file("b.trn")];
        let mut s = state("X\"><script>alert(1)</script>", files, None);
        s.phase = Phase::Restoring;
        s.rejected
            .insert(hostile.into(), "not a backup: \"<b>\"".into());
        s.audit(NOW, format!("file recorded: {hostile}"));
        let html = render(&estate(&[s], NOW, None), &Links::local(), "tok\"en");
        assert!(!html.contains("<img") && !html.contains("<script>alert") && !html.contains("<b>"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.trn"));
        assert!(
            html.contains("value=\"tok&quot;en\""),
            "the form's token is escaped too"
        );
        assert!(html.contains("data-database=\"X&quot;&gt;&lt;script&gt;"));
        let anchor = database(&estate_state(), NOW).anchor();
        assert!(
            anchor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
    }

    fn estate_state() -> MigrationState {
        MigrationState::new("c", "we<ird>/\"name", "n", NOW)
    }
}
