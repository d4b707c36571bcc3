//! Which database the folder holds: by database name, then, among backups of one name, by LSN chain.
//!
//! The GUIDs at SCIN 0x7C/0x9C change when a database is restored mid-chain, so they are not used:
//! two backups belong to one database when their names match and their LSNs connect (a diff's base,
//! a `DatabaseBackupLSN` pointing at a full's checkpoint, a log continuing another or covering a
//! full). Unconnected backups of one name are only called two databases when something contradicts
//! a single database: different source servers, a newer backup with lower LSNs, or a version going
//! backwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::backup::{BackupType, Lsn};

use super::screen::count;
use super::sets::SetGroup;
use super::types::{Finding, FindingCode, Severity};

/// The database the plan is for.
#[derive(Debug)]
pub(crate) struct Database {
    /// Its name as written in the headers, when the folder holds backups of one name only.
    pub name: Option<String>,
    /// Indices of the sets with the primary name.
    pub members: Vec<usize>,
}

/// Picks the database the folder is for and reports backups of other databases.
pub(crate) fn choose(
    folder: &str,
    groups: &[SetGroup<'_>],
    findings: &mut Vec<Finding>,
) -> Database {
    // By exact name first (no allocation per set), then merged case-insensitively, as SQL Server
    // compares names under the default collations.
    let mut exact: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        exact
            .entry(g.set.database_name.as_str())
            .or_default()
            .push(i);
    }
    let mut names: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (name, members) in exact {
        names
            .entry(name.to_lowercase())
            .or_default()
            .extend(members);
    }
    for members in names.values_mut() {
        members.sort_unstable();
    }
    let display = |key: &str| -> String {
        names
            .get(key)
            .and_then(|members| members.first())
            .and_then(|&i| groups.get(i))
            .map_or_else(|| key.to_owned(), |g| g.set.database_name.clone())
    };
    let folder_key = folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_lowercase();
    let newest_full = |members: &Vec<usize>| {
        members
            .iter()
            .filter_map(|&i| groups.get(i))
            .filter(|g| g.kind() == BackupType::Full && g.is_complete())
            .map(SetGroup::newness)
            .max()
    };
    let primary: Option<&str> = if names.contains_key(folder_key.as_str()) {
        Some(folder_key.as_str())
    } else {
        names
            .iter()
            .max_by(|a, b| {
                (newest_full(a.1), a.1.len())
                    .cmp(&(newest_full(b.1), b.1.len()))
                    // On a tie the alphabetically first name wins.
                    .then_with(|| b.0.cmp(a.0))
            })
            .map(|(k, _)| k.as_str())
    };
    let Some(primary) = primary else {
        return Database {
            name: None,
            members: Vec::new(),
        };
    };
    if names.len() > 1 {
        let others: Vec<&str> = names
            .keys()
            .map(String::as_str)
            .filter(|k| *k != primary)
            .collect();
        let files: Vec<String> = others
            .iter()
            .filter_map(|k| names.get(*k))
            .flatten()
            .filter_map(|&i| groups.get(i))
            .flat_map(|g| g.all_files().map(str::to_owned))
            .collect();
        let other_names: Vec<String> = others.iter().map(|k| display(k)).collect();
        findings.push(Finding {
            code: FindingCode::MultipleDatabases,
            severity: Severity::Blocking,
            message: format!(
                "the folder holds backups of {} databases: {} and {}; LRS fails the whole folder \
                 when it finds backups of more than one database; move the backups of {} to a \
                 folder of their own (one folder per database)",
                names.len(),
                display(primary),
                other_names.join(", "),
                other_names.join(", "),
            ),
            files,
        });
    }
    Database {
        name: (names.len() == 1).then(|| display(primary)),
        members: names.get(primary).cloned().unwrap_or_default(),
    }
}

/// Among the members, the sets that belong to another database of the same name than the base's
/// (see the module docs), with the finding that says so; empty when all can be one database.
pub(crate) fn foreign_lineages(
    groups: &[SetGroup<'_>],
    members: &[usize],
    base: usize,
    findings: &mut Vec<Finding>,
) -> Vec<usize> {
    let fulls = members
        .iter()
        .filter(|&&i| groups.get(i).is_some_and(|g| g.kind() == BackupType::Full))
        .count();
    if fulls < 2 {
        return Vec::new();
    }
    let mut sets = UnionFind::new(members.len());
    connect(groups, members, &mut sets);

    let position = |g: usize| members.iter().position(|&m| m == g);
    let Some(base_root) = position(base).map(|p| sets.find(p)) else {
        return Vec::new();
    };
    let mut lineages: BTreeMap<usize, Lineage> = BTreeMap::new();
    for (p, &g) in members.iter().enumerate() {
        let root = sets.find(p);
        if let Some(group) = groups.get(g) {
            lineages.entry(root).or_default().add(g, group);
        }
    }
    let Some(ours) = lineages.get(&base_root) else {
        return Vec::new();
    };
    let mut foreign = Vec::new();
    let mut reasons = BTreeSet::new();
    for (root, lineage) in &lineages {
        if *root == base_root || lineage.newest_full.is_none() {
            continue;
        }
        if let Some(reason) = ours.contradiction(lineage) {
            reasons.insert(reason);
            foreign.extend(lineage.groups.iter().copied());
        }
    }
    if foreign.is_empty() {
        return foreign;
    }
    let name = groups
        .get(base)
        .map_or("", |g| g.set.database_name.as_str());
    let files: Vec<String> = foreign
        .iter()
        .filter_map(|&i| groups.get(i))
        .flat_map(|g| g.all_files().map(str::to_owned))
        .collect();
    let first_foreign = files.first().cloned().unwrap_or_default();
    findings.push(Finding {
        code: FindingCode::MultipleDatabases,
        severity: Severity::Blocking,
        message: format!(
            "backups of two different databases named {name} are in this folder: {} (such as \
             {first_foreign}) do not connect to the LSN chain of the base full backup {} and {}; \
             LRS fails the whole folder when backups of two databases are mixed; keep only the \
             backups of the database you are migrating in this folder",
            count(files.len(), "file", "files"),
            groups.get(base).map_or("", SetGroup::first_name),
            reasons.into_iter().collect::<Vec<_>>().join(" and "),
        ),
        files,
    });
    foreign
}

/// Links the members that provably belong to one database.
fn connect(groups: &[SetGroup<'_>], members: &[usize], sets: &mut UnionFind) {
    let mut full_by_guid = HashMap::new();
    let mut full_by_checkpoint = HashMap::new();
    let mut log_by_last: HashMap<Lsn, Vec<usize>> = HashMap::new();
    let mut logs = Vec::new();
    let mut bases = Vec::new();
    for (p, g) in members.iter().filter_map(|&i| groups.get(i)).enumerate() {
        match g.kind() {
            BackupType::Full => {
                full_by_guid.insert(g.guid(), p);
                full_by_checkpoint.insert(g.set.checkpoint_lsn, p);
                bases.push(p);
            }
            BackupType::Differential => bases.push(p),
            _ => {
                log_by_last.entry(g.last()).or_default().push(p);
                logs.push(p);
            }
        }
    }
    for (p, g) in members.iter().filter_map(|&i| groups.get(i)).enumerate() {
        let set = g.set;
        let links = [
            set.differential_base_guid
                .and_then(|guid| full_by_guid.get(&guid)),
            set.differential_base_lsn
                .and_then(|lsn| full_by_checkpoint.get(&lsn)),
            set.database_backup_lsn
                .and_then(|lsn| full_by_checkpoint.get(&lsn)),
        ];
        for &q in links.into_iter().flatten() {
            sets.union(p, q);
        }
        if g.kind() == BackupType::Log {
            for &q in log_by_last.get(&g.first()).into_iter().flatten() {
                sets.union(p, q);
            }
        }
    }
    let set_at = |p: usize| members.get(p).and_then(|&i| groups.get(i));
    for &b in &bases {
        let Some(point) = set_at(b).map(SetGroup::last) else {
            continue;
        };
        for &l in &logs {
            if set_at(l).is_some_and(|log| log.first() <= point && point <= log.last()) {
                sets.union(b, l);
            }
        }
    }
}

/// What one connected group of backups looks like, to compare with another.
#[derive(Debug, Default)]
struct Lineage {
    groups: Vec<usize>,
    newest_full: Option<time::PrimitiveDateTime>,
    max_last: Lsn,
    servers: BTreeSet<String>,
    min_major: u8,
    max_major: u8,
}

impl Lineage {
    fn add(&mut self, index: usize, g: &SetGroup<'_>) {
        if self.groups.is_empty() {
            self.min_major = u8::MAX;
        }
        self.groups.push(index);
        if g.kind() == BackupType::Full {
            self.newest_full = self.newest_full.max(g.time());
        }
        self.max_last = self.max_last.max(g.last());
        self.servers.insert(g.set.server_name.to_lowercase());
        let major = g.set.software_version.major;
        self.min_major = self.min_major.min(major);
        self.max_major = self.max_major.max(major);
    }

    /// Why `other` cannot be the same database as `self`, if something says so.
    fn contradiction(&self, other: &Lineage) -> Option<&'static str> {
        if self.servers.is_disjoint(&other.servers) {
            return Some("they come from a different server");
        }
        let (older, newer) = match (self.newest_full, other.newest_full) {
            (Some(a), Some(b)) if a < b => (self, other),
            (Some(a), Some(b)) if b < a => (other, self),
            _ => return None,
        };
        if newer.max_last < older.max_last {
            return Some("the newer backups have lower LSNs");
        }
        if newer.max_major < older.min_major {
            return Some("the newer backups come from an older SQL Server version");
        }
        None
    }
}

/// Disjoint sets over 0..n, with path halving.
struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while let Some(&p) = self.parent.get(x) {
            if p == x {
                break;
            }
            let grand = self.parent.get(p).copied().unwrap_or(p);
            if let Some(slot) = self.parent.get_mut(x) {
                *slot = grand;
            }
            x = grand;
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            if let Some(slot) = self.parent.get_mut(ra.max(rb)) {
                *slot = ra.min(rb);
            }
        }
    }
}
