//! The chain planner: the files of one database folder to the restore plan LRS will follow, and
//! every finding that stands in its way. Pure: no I/O, no clock; it imports only [`crate::backup`]
//! facts.
//!
//! The plan, in LRS's order:
//! 1. the base: the newest complete full backup set (all stripes, family 1..n of one media set,
//!    each written to the end), or the fixed base LRS already restored;
//! 2. the newest differential whose base GUID is the base's backup set GUID;
//! 3. the log chain from the restore point (see [`walk`](self) for the rule RESTORE LOG applies).
//!
//! Findings say what stands in the way, in words a DBA can act on; [`Plan::findings`] lists the
//! blocking ones first.

mod lineage;
mod screen;
mod sets;
pub mod synthetic;
mod types;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use uuid::Uuid;

use crate::backup::{BackupType, RecoveryModel};

pub use screen::{RESERVED_WORD, contains_reserved_word};
use sets::SetGroup;
pub use types::{
    DEFAULT_TAIL_PATTERN, FailureKind, FileRead, Finding, FindingCode, FolderFile, Plan,
    PlannedSet, Severity, TailRule, tail_match_text,
};

/// What the planner is asked.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The database folder's name (the container path segment), for messages.
    pub folder: &'a str,
    /// Every file seen in the folder.
    pub files: &'a [&'a FolderFile],
    /// Once LRS has started, the backup set GUID of the full set it restored: the plan keeps it.
    pub fixed_base: Option<uuid::Uuid>,
    /// How to recognise the tail-log backup.
    pub tail: &'a TailRule,
}

/// Plans the folder.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let mut findings = Vec::new();
    let (entries, nested) = screen::screen(input.folder, input.files, &mut findings);
    let groups = sets::group(&entries);
    let database = lineage::choose(input.folder, &groups, &mut findings);
    let mut members = database.members;

    let base = choose_base(&groups, &members, input.fixed_base, &mut findings);
    if base.is_none() && nested > 0 {
        if let Some(f) = findings
            .iter_mut()
            .find(|f| f.code == FindingCode::NoFullBackup)
        {
            f.message.push_str(&format!(
                "; {} in subfolders, where LRS does not look (see nested_path)",
                screen::count(nested, "file is", "files are")
            ));
        }
    }
    if let Some(b) = base {
        let foreign = lineage::foreign_lineages(&groups, &members, b, &mut findings);
        if !foreign.is_empty() {
            let foreign: HashSet<usize> = foreign.into_iter().collect();
            members.retain(|m| !foreign.contains(m));
        }
    }
    let mut planner = Planner {
        fixed: input.fixed_base.is_some(),
        groups: &groups,
        members: &members,
        findings,
        older: Vec::new(),
        skipped: Vec::new(),
    };
    let steps = planner.steps(base);
    let tail = planner.tail(input.folder, input.tail, &steps);
    planner.step_warnings(&steps);
    planner.report_older();

    let Planner {
        mut findings,
        mut skipped,
        ..
    } = planner;
    let TailCheck {
        name: tail_name,
        findings: cutover_only,
        in_chain: tail_ok,
    } = tail;
    let blocked = |list: &[Finding]| list.iter().any(|f| f.severity == Severity::Blocking);
    // In the fixed-base case LRS has the base already, so a stripe deleted since does not matter.
    let can_start = base.is_some() && !blocked(&findings);
    let can_complete = can_start && tail_ok && !blocked(&cutover_only);
    findings.extend(cutover_only);
    // Stable: within one code the findings keep their order (gaps in LSN order, files by name).
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(&b.code)));
    skipped.sort();
    skipped.dedup();

    let planned: Vec<PlannedSet> = steps
        .iter()
        .filter_map(|&i| groups.get(i).map(SetGroup::to_step))
        .collect();
    let last = steps.last().and_then(|&i| groups.get(i));
    Plan {
        database_name: database.name,
        restorable_to_lsn: last.map(SetGroup::last),
        restorable_to_time: last.and_then(|g| g.set.backup_finish.or(g.set.backup_start)),
        tail: tail_name,
        steps: planned,
        skipped,
        findings,
        can_start,
        can_complete,
    }
}

/// The base full set: the fixed one, or the newest complete one.
fn choose_base(
    groups: &[SetGroup<'_>],
    members: &[usize],
    fixed: Option<Uuid>,
    findings: &mut Vec<Finding>,
) -> Option<usize> {
    let fulls: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| groups.get(i).is_some_and(|g| g.kind() == BackupType::Full))
        .collect();
    let group = |i: usize| groups.get(i);
    if let Some(guid) = fixed {
        let Some(base) = fulls
            .iter()
            .copied()
            .find(|&i| group(i).is_some_and(|g| g.guid() == guid))
        else {
            findings.push(Finding {
                code: FindingCode::NoFullBackup,
                severity: Severity::Blocking,
                message: format!(
                    "the full backup LRS restored (backup set {guid}) is no longer in the folder: \
                     LRS has restored it already, but the chain cannot be checked against it; put \
                     the file back under its original name"
                ),
                files: Vec::new(),
            });
            return None;
        };
        let base_key = group(base).map(SetGroup::newness);
        let newer: Vec<String> = fulls
            .iter()
            .filter_map(|&i| group(i))
            .filter(|g| Some(g.newness()) > base_key)
            .flat_map(|g| g.all_files().map(str::to_owned))
            .collect();
        if !newer.is_empty() {
            let base_name = group(base).map_or("", SetGroup::first_name);
            findings.push(Finding {
                code: FindingCode::NewerFullBackup,
                severity: Severity::Info,
                message: format!(
                    "LRS already restored the full backup {base_name} and does not switch to a \
                     newer full backup ({}): the log chain continues from {base_name}, so keep \
                     uploading log backups; to start from the newer full instead, stop this \
                     migration and start a new one",
                    newer.join(", ")
                ),
                files: newer,
            });
        }
        return Some(base);
    }
    let best = fulls
        .iter()
        .copied()
        .filter(|&i| group(i).is_some_and(SetGroup::is_complete))
        .max_by_key(|&i| group(i).map(SetGroup::newness));
    if best.is_none() {
        let database = members
            .first()
            .and_then(|&i| group(i))
            .map_or(String::new(), |g| format!(" of {}", g.set.database_name));
        let message = if fulls.is_empty() {
            format!(
                "no full backup{database} in the folder: LRS starts from a full backup; upload one \
                 (BACKUP DATABASE ... WITH CHECKSUM), with its differential and log backups"
            )
        } else {
            format!(
                "no complete full backup set{database}: {} still being written or missing stripes \
                 (see the other findings); wait for the upload to finish or upload the missing files",
                screen::count(fulls.len(), "full backup is", "full backups are")
            )
        };
        findings.push(Finding {
            code: FindingCode::NoFullBackup,
            severity: Severity::Blocking,
            message,
            files: Vec::new(),
        });
    }
    best
}

/// Working state while the plan is assembled.
struct Planner<'g, 'a> {
    /// The base is the one LRS already restored.
    fixed: bool,
    groups: &'g [SetGroup<'a>],
    members: &'g [usize],
    findings: Vec<Finding>,
    /// Files LRS skips because they are older than the base (or than the newest differential).
    older: Vec<String>,
    /// Every file LRS skips.
    skipped: Vec<String>,
}

/// What the tail rule found.
#[derive(Default)]
struct TailCheck {
    /// The tail's file name (its first stripe), when one is recognised.
    name: Option<String>,
    /// Findings that block only the cutover.
    findings: Vec<Finding>,
    /// The tail is in the chain.
    in_chain: bool,
}

impl<'g, 'a> Planner<'g, 'a> {
    fn group(&self, i: usize) -> Option<&'g SetGroup<'a>> {
        self.groups.get(i)
    }

    fn members_of(&self, kind: BackupType) -> impl Iterator<Item = (usize, &'g SetGroup<'a>)> + '_ {
        self.members
            .iter()
            .filter_map(|&i| self.groups.get(i).map(|g| (i, g)))
            .filter(move |(_, g)| g.kind() == kind)
    }

    fn skip(&mut self, g: &SetGroup<'_>, older: bool) {
        for name in g.all_files() {
            self.skipped.push(name.to_owned());
            if older {
                self.older.push(name.to_owned());
            }
        }
    }

    /// The sets LRS restores, in order, with the findings along the way.
    fn steps(&mut self, base: Option<usize>) -> Vec<usize> {
        let Some(base_group) = base.and_then(|b| self.group(b)) else {
            // Without a base nothing is restored; still say what is wrong with the rest.
            let diffs: Vec<_> = self.members_of(BackupType::Differential).collect();
            for (_, g) in diffs {
                self.check_orphan(g);
            }
            for &i in self.members {
                if let Some(g) = self.group(i) {
                    self.check_stripes(g);
                }
            }
            return Vec::new();
        };
        let base = base.unwrap_or(usize::MAX);
        let base_time = base_group.time();
        let is_older = move |g: &SetGroup<'_>| g.time().is_some() && g.time() < base_time;

        // Fulls other than the base: older ones are skipped; newer ones were reported already.
        let fulls: Vec<_> = self.members_of(BackupType::Full).collect();
        for (i, g) in fulls {
            if i == base {
                continue;
            }
            if g.newness() < base_group.newness() {
                self.skip(g, true);
            } else if self.fixed {
                self.skip(g, false);
            } else {
                // Newer but incomplete: LRS will want it once it is whole.
                self.check_stripes(g);
            }
        }
        for name in &base_group.duplicates {
            self.skipped.push((*name).to_owned());
        }

        let diff = self.choose_diff(base_group, &is_older);
        let point = diff
            .and_then(|d| self.group(d))
            .map_or(base_group.last(), SetGroup::last);
        let point_name = diff
            .and_then(|d| self.group(d))
            .unwrap_or(base_group)
            .first_name();

        let mut pool = Vec::new();
        let logs: Vec<_> = self.members_of(BackupType::Log).collect();
        for (i, g) in logs {
            if g.is_complete() {
                pool.push(i);
            } else if g.last() <= point || is_older(g) {
                self.skip(g, true);
            } else {
                self.check_stripes(g);
            }
        }
        let walked = walk::walk(self.groups, &pool, point, point_name, is_older);
        for gap in &walked.gaps {
            self.findings.push(Finding {
                code: FindingCode::LogChainGap,
                severity: Severity::Blocking,
                message: format!(
                    "the log chain breaks after {}: no log backup in the folder covers LSN {} up \
                     to {}, where {} begins, so LRS stops there; find the log backups taken \
                     between them (msdb.dbo.backupset, first_lsn = {}) and upload them, or take a \
                     new full backup WITH CHECKSUM to start a new chain",
                    gap.before, gap.from, gap.to, gap.after, gap.from
                ),
                files: vec![gap.before.clone(), gap.after.clone()],
            });
        }
        for &i in &walked.leftovers {
            if let Some(g) = self.group(i) {
                let older = g.last() <= point || is_older(g);
                self.skip(g, older);
            }
        }
        let mut steps = vec![base];
        steps.extend(diff);
        steps.extend(walked.chain.iter().copied());
        for &i in walked.chain.iter().chain(&walked.unreachable) {
            if let Some(g) = self.group(i) {
                self.check_split(g);
                for name in &g.duplicates {
                    self.skipped.push((*name).to_owned());
                }
            }
        }
        steps
    }

    /// The newest complete differential of the base; reports orphans and skips the others.
    fn choose_diff(
        &mut self,
        base: &SetGroup<'_>,
        is_older: &impl Fn(&SetGroup<'_>) -> bool,
    ) -> Option<usize> {
        let diffs: Vec<_> = self.members_of(BackupType::Differential).collect();
        let chosen = diffs
            .iter()
            .filter(|(_, g)| g.set.differential_base_guid == Some(base.guid()) && g.is_complete())
            .max_by_key(|(_, g)| (g.last(), g.time(), g.first_name()))
            .map(|&(i, _)| i);
        let chosen_key = chosen
            .and_then(|c| self.group(c))
            .map(|g| (g.last(), g.time(), g.first_name()));
        for (i, g) in diffs {
            if Some(i) == chosen {
                for name in &g.duplicates {
                    self.skipped.push((*name).to_owned());
                }
                continue;
            }
            if g.set.differential_base_guid == Some(base.guid()) {
                let key = Some((g.last(), g.time(), g.first_name()));
                if key < chosen_key {
                    self.skip(g, true);
                } else {
                    self.check_stripes(g);
                }
            } else if self.check_orphan(g) {
                self.skipped.extend(g.all_files().map(str::to_owned));
            } else {
                self.skip(g, is_older(g) || base_older_than(self, g, base));
            }
        }
        chosen
    }

    /// Reports a differential whose base full backup is not in the folder; true when it is one.
    fn check_orphan(&mut self, g: &SetGroup<'_>) -> bool {
        let known = g.set.differential_base_guid.is_some_and(|guid| {
            self.members_of(BackupType::Full)
                .any(|(_, full)| full.guid() == guid)
        });
        if known {
            return false;
        }
        let base = g.set.differential_base_guid.map_or_else(
            || "an unknown backup set".to_owned(),
            |u| format!("backup set {u}"),
        );
        self.findings.push(Finding {
            code: FindingCode::OrphanDifferential,
            severity: Severity::Warning,
            message: format!(
                "differential backup {} is based on a full backup ({base}) that is not in the \
                 folder, so LRS cannot restore it; upload that full backup, or move this file out \
                 and take a new differential after the full backup you uploaded",
                g.first_name()
            ),
            files: g.all_files().map(str::to_owned).collect(),
        });
        true
    }

    /// Reports the absent stripes of a set LRS would need.
    fn check_stripes(&mut self, g: &SetGroup<'_>) {
        let missing = g.missing_families();
        if missing.is_empty() {
            return;
        }
        let n = g.family_count;
        let list = missing
            .iter()
            .map(|k| format!("{k} of {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.findings.push(Finding {
            code: FindingCode::MissingStripes,
            severity: Severity::Blocking,
            message: format!(
                "the {} backup {} is striped over {n} files but family {list} is not in the \
                 folder: LRS restores a striped backup only with all its stripes; upload the \
                 missing stripe {}",
                g.kind(),
                g.first_name(),
                if missing.len() == 1 { "file" } else { "files" },
            ),
            files: g.files(),
        });
    }

    /// Reports a log backup striped over several files.
    fn check_split(&mut self, g: &SetGroup<'_>) {
        if g.kind() != BackupType::Log || g.family_count < 2 {
            return;
        }
        self.findings.push(Finding {
            code: FindingCode::SplitLogBackup,
            severity: Severity::Blocking,
            message: format!(
                "the log backup {} is striped over {} files: LRS does not restore a log backup \
                 split across files; take log backups to a single file (BACKUP LOG ... TO one \
                 URL or DISK) and take a new full backup WITH CHECKSUM to restart the chain",
                g.first_name(),
                g.family_count
            ),
            files: g.all_files().map(str::to_owned).collect(),
        });
    }

    /// Recognises the tail-log backup: the operator's file as given (what stands in its way blocks
    /// the cutover), else the newest log named by metadata or the pattern, provided it continues
    /// the chain and nothing in the folder is newer (otherwise it is refused, with a finding).
    fn tail(&mut self, folder: &str, rule: &TailRule, steps: &[usize]) -> TailCheck {
        if let Some(t) = find_declared(self.groups, self.members, rule) {
            return self.declared_tail(t, steps);
        }
        let mut check = TailCheck::default();
        self.refuse_non_logs(rule, &mut check.findings);
        let Some(t) = find_candidate(self.groups, self.members, folder, rule) else {
            return check;
        };
        let Some(tail) = self.group(t) else {
            return check;
        };
        let name = tail.first_name();
        let by = if rule
            .metadata
            .iter()
            .any(|m| tail.all_files().any(|f| f == m))
        {
            "carries the blob metadata lrs_tail=true"
        } else {
            "matches the tail-log pattern"
        };
        let mut after = self.after(t, steps);
        // A full or differential backup ending later is newer too (a copy-only one, say).
        let newer = self
            .members
            .iter()
            .filter_map(|&i| self.group(i))
            .filter(|g| g.kind() != BackupType::Log && g.last() > tail.last());
        for g in newer {
            after.extend(g.files());
        }
        let refusal = if !after.is_empty() {
            Some((
                Severity::Blocking,
                format!(
                    "{name} {by} but is not the newest backup: {} {} taken after it ({}); a \
                     tail-log backup is the last backup of the source, so {name} is not treated \
                     as the tail and the migration will not complete on it; if the source is \
                     still in use, stop the workload and take the real tail-log backup (BACKUP LOG \
                     ... WITH NORECOVERY) named *_tail.trn, or declare the last backup with \
                     `cutover --last-backup`",
                    after.len(),
                    if after.len() == 1 {
                        "file was"
                    } else {
                        "files were"
                    },
                    after.join(", "),
                ),
            ))
        } else if !steps.contains(&t) {
            Some((
                Severity::Warning,
                format!(
                    "{name} {by} but the log chain does not reach it yet (see the other \
                     findings): it is not treated as the tail until the chain reaches it"
                ),
            ))
        } else if rule.header_hint_confirmed && !tail.set.tail_log_hint() {
            Some((
                Severity::Warning,
                format!(
                    "{name} {by} but its header says it is not a tail-log backup (taken without \
                     NORECOVERY or NO_TRUNCATE): the header wins, so it is not treated as the \
                     tail; rename it, or declare the last backup with `cutover --last-backup`"
                ),
            ))
        } else {
            None
        };
        if let Some((severity, message)) = refusal {
            check.findings.push(Finding {
                code: FindingCode::TailRefused,
                severity,
                message,
                files: vec![name.to_owned()],
            });
            return check;
        }
        self.check_tail_name(name, &mut check.findings);
        check.name = Some(name.to_owned());
        check.in_chain = true;
        check
    }

    /// The operator's tail: trusted as the tail, with what stands in the way of the cutover.
    fn declared_tail(&mut self, t: usize, steps: &[usize]) -> TailCheck {
        let mut findings = Vec::new();
        let Some(tail) = self.group(t) else {
            return TailCheck::default();
        };
        let after = self.after(t, steps);
        let tail_name = tail.first_name();
        if !after.is_empty() {
            findings.push(Finding {
                code: FindingCode::LogAfterTail,
                severity: Severity::Blocking,
                message: format!(
                    "{} taken after the tail-log backup {tail_name}: LRS restores {} too, and \
                     the migration cannot complete on {tail_name}; if the source is still in use, \
                     stop the workload and its log backups; if {tail_name} was not the last \
                     backup, declare the newest log backup as the tail instead",
                    screen::count(after.len(), "log backup was", "log backups were"),
                    if after.len() == 1 { "it" } else { "them" },
                ),
                files: after,
            });
        }
        self.check_tail_name(tail_name, &mut findings);
        TailCheck {
            name: Some(tail_name.to_owned()),
            findings,
            in_chain: steps.contains(&t),
        }
    }

    /// The files of the log backups after the tail set `t`: chained after it, or starting at or
    /// after its end.
    fn after(&self, t: usize, steps: &[usize]) -> Vec<String> {
        let Some(tail) = self.group(t) else {
            return Vec::new();
        };
        let position = steps.iter().position(|&s| s == t);
        let chained = position.map_or(&[][..], |p| steps.get(p + 1..).unwrap_or(&[]));
        let later = self
            .members_of(BackupType::Log)
            .filter(|&(i, g)| i != t && (g.first() >= tail.last() || g.last() > tail.last()))
            .map(|(i, _)| i);
        let mut after = Vec::new();
        let mut seen = HashSet::new();
        for i in chained.iter().copied().chain(later) {
            if seen.insert(i) {
                if let Some(g) = self.group(i) {
                    after.extend(g.files());
                }
            }
        }
        after
    }

    /// LRS refuses a last backup name with non-ASCII characters or line breaks.
    fn check_tail_name(&self, tail_name: &str, findings: &mut Vec<Finding>) {
        if !screen::valid_last_backup_name(tail_name) {
            findings.push(Finding {
                code: FindingCode::PathNeedsEncoding,
                severity: Severity::Blocking,
                message: format!(
                    "the tail-log backup {tail_name} has a non-ASCII character or a line break in \
                     its name, which LRS refuses as the last backup name at cutover; upload it \
                     again under a plain ASCII name"
                ),
                files: vec![tail_name.to_owned()],
            });
        }
    }

    /// A file marked `lrs_tail=true` that is a full or differential backup is not the tail.
    fn refuse_non_logs(&self, rule: &TailRule, findings: &mut Vec<Finding>) {
        for &i in self.members {
            let Some(g) = self.group(i) else { continue };
            if g.kind() == BackupType::Log {
                continue;
            }
            if let Some(name) = g.all_files().find(|f| rule.metadata.iter().any(|m| m == f)) {
                findings.push(Finding {
                    code: FindingCode::TailRefused,
                    severity: Severity::Warning,
                    message: format!(
                        "{name} carries the blob metadata lrs_tail=true but is a {} backup: only \
                         a log backup can be the tail; remove the metadata",
                        g.kind()
                    ),
                    files: vec![name.to_owned()],
                });
            }
        }
    }

    /// Warnings about the sets LRS restores: no checksums, SIMPLE recovery.
    fn step_warnings(&mut self, steps: &[usize]) {
        let planned: Vec<&SetGroup<'_>> = steps.iter().filter_map(|&i| self.group(i)).collect();
        let no_checksum: Vec<String> = planned
            .iter()
            .filter(|g| !g.set.has_checksums)
            .flat_map(|g| g.files())
            .collect();
        if !no_checksum.is_empty() {
            self.findings.push(Finding {
                code: FindingCode::NoChecksum,
                severity: Severity::Warning,
                message: format!(
                    "{} written without WITH CHECKSUM: LRS restores such backups more slowly and \
                     cannot verify them (LRS has refused a full backup without checksums); take a \
                     new full backup WITH CHECKSUM and add WITH CHECKSUM to the differential and \
                     log backup jobs",
                    screen::count(no_checksum.len(), "file was", "files were"),
                ),
                files: no_checksum,
            });
        }
        let simple: Vec<String> = planned
            .iter()
            .filter(|g| g.set.recovery_model == Some(RecoveryModel::Simple))
            .flat_map(|g| g.files())
            .collect();
        if !simple.is_empty() {
            self.findings.push(Finding {
                code: FindingCode::SimpleRecovery,
                severity: Severity::Warning,
                message: "the database looks like it is in the SIMPLE recovery model (inferred \
                          from the backup header): it has no log backups, so LRS can restore the \
                          full and differential backups but never catch up; switch it to FULL \
                          (ALTER DATABASE ... SET RECOVERY FULL), take a new full backup WITH \
                          CHECKSUM and schedule log backups"
                    .to_owned(),
                files: simple,
            });
        }
    }

    /// One info finding for everything LRS skips as older than the base.
    fn report_older(&mut self) {
        if self.older.is_empty() {
            return;
        }
        self.older.sort();
        self.older.dedup();
        self.findings.push(Finding {
            code: FindingCode::OlderThanBase,
            severity: Severity::Info,
            message: format!(
                "LRS will skip {}: older than the full backup it starts from (or than the newest \
                 differential); they can stay in the folder or be moved out",
                screen::count(self.older.len(), "file", "files")
            ),
            files: std::mem::take(&mut self.older),
        });
    }
}

/// Whether a differential's base full backup is older than the plan's base.
fn base_older_than(planner: &Planner<'_, '_>, diff: &SetGroup<'_>, base: &SetGroup<'_>) -> bool {
    planner
        .members_of(BackupType::Full)
        .find(|(_, full)| Some(full.guid()) == diff.set.differential_base_guid)
        .is_some_and(|(_, full)| full.newness() < base.newness())
}

/// The log sets of the folder.
fn logs<'g, 'a>(
    groups: &'g [SetGroup<'a>],
    members: &'g [usize],
) -> impl Iterator<Item = (usize, &'g SetGroup<'a>)> + 'g {
    members
        .iter()
        .filter_map(|&i| groups.get(i).map(|g| (i, g)))
        .filter(|(_, g)| g.kind() == BackupType::Log)
}

/// The log set the operator named.
fn find_declared(groups: &[SetGroup<'_>], members: &[usize], rule: &TailRule) -> Option<usize> {
    let wanted = rule.file_name.as_deref()?;
    logs(groups, members)
        .find(|(_, g)| {
            g.all_files()
                .any(|name| name == wanted || name.rsplit('/').next() == Some(wanted))
        })
        .map(|(i, _)| i)
}

/// The newest log set named by metadata or matching the pattern (see [`types::tail_match_text`]).
fn find_candidate(
    groups: &[SetGroup<'_>],
    members: &[usize],
    folder: &str,
    rule: &TailRule,
) -> Option<usize> {
    let matcher = rule.matcher().ok().flatten();
    let named = |g: &SetGroup<'_>, name: &str| {
        rule.metadata.iter().any(|m| m == name)
            || matcher.as_ref().is_some_and(|m| {
                m.is_match(types::tail_match_text(name, &g.set.database_name, folder))
            })
    };
    logs(groups, members)
        .filter(|(_, g)| g.all_files().any(|name| named(g, name)))
        .max_by_key(|(_, g)| (g.last(), g.time(), g.first_name()))
        .map(|(i, _)| i)
}
