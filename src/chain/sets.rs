//! Backup sets: the stripe files of one backup (same media set GUID, families 1..n) gathered into one
//! unit, the way LRS counts `numberOfStripes` and names a set by its first stripe.

use std::collections::{BTreeMap, HashMap};

use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::backup::{BackupSet, BackupType, Lsn};

use super::screen::Entry;
use super::types::PlannedSet;

/// One backup set and the stripe files present for it.
#[derive(Debug)]
pub(crate) struct SetGroup<'a> {
    /// The set header (equal in every stripe).
    pub set: &'a BackupSet,
    /// How many stripes the media set has.
    pub family_count: u16,
    /// The stripes present, by family number; the first file seen wins a family.
    pub stripes: BTreeMap<u16, Entry<'a>>,
    /// Further copies of a family already present (the same stripe uploaded under another name).
    pub duplicates: Vec<&'a str>,
    /// The database name, lowercased: SQL Server compares names case-insensitively by default.
    pub name_key: String,
}

impl<'a> SetGroup<'a> {
    /// Backup type.
    pub fn kind(&self) -> BackupType {
        self.set.backup_type
    }

    /// The set's backup set GUID.
    pub fn guid(&self) -> Uuid {
        self.set.backup_set_guid
    }

    /// First LSN.
    pub fn first(&self) -> Lsn {
        self.set.first_lsn
    }

    /// Last LSN (the next LSN after the set).
    pub fn last(&self) -> Lsn {
        self.set.last_lsn
    }

    /// When the backup started (server local time), for "newest" comparisons.
    pub fn time(&self) -> Option<PrimitiveDateTime> {
        self.set.backup_start
    }

    /// Every stripe is present and written to the end.
    pub fn is_complete(&self) -> bool {
        self.missing_families().is_empty() && self.stripes.values().all(|e| e.usable)
    }

    /// The families (1..=n) with no file at all, at most the first 100 of them (enough to say so).
    pub fn missing_families(&self) -> Vec<u16> {
        (1..=self.family_count)
            .filter(|k| !self.stripes.contains_key(k))
            .take(100)
            .collect()
    }

    /// The stripe files present, in family order: the first is LRS's `firstStripeName`.
    pub fn files(&self) -> Vec<String> {
        self.stripes.values().map(|e| e.file.name.clone()).collect()
    }

    /// The first stripe's name, for messages.
    pub fn first_name(&self) -> &'a str {
        self.stripes
            .values()
            .next()
            .map_or("", |e| e.file.name.as_str())
    }

    /// Every file of the set, duplicates included.
    pub fn all_files(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.stripes
            .values()
            .map(|e| e.file.name.as_str())
            .chain(self.duplicates.iter().copied())
    }

    /// The set as a plan step.
    pub fn to_step(&self) -> PlannedSet {
        PlannedSet {
            backup_type: self.kind(),
            files: self.files(),
            backup_set_guid: self.guid(),
            first_lsn: self.first(),
            last_lsn: self.last(),
            size: self
                .stripes
                .values()
                .fold(0u64, |sum, e| sum.saturating_add(e.file.size)),
            backup_time: self.set.backup_finish.or(self.set.backup_start),
        }
    }

    /// Ordering key for "newest": start time, then LSN, then name.
    pub fn newness(&self) -> (Option<PrimitiveDateTime>, Lsn, &'a str) {
        (self.time(), self.last(), self.first_name())
    }
}

/// Gathers entries (sorted by name) into backup sets, in order of first appearance.
pub(crate) fn group<'a>(entries: &[Entry<'a>]) -> Vec<SetGroup<'a>> {
    let mut index: HashMap<(Uuid, Uuid, u16), usize> = HashMap::with_capacity(entries.len());
    let mut groups: Vec<SetGroup<'a>> = Vec::with_capacity(entries.len());
    for entry in entries {
        let media = &entry.facts.media;
        let key = (
            media.media_set_guid,
            entry.set.backup_set_guid,
            media.family_count,
        );
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(SetGroup {
                set: entry.set,
                family_count: media.family_count,
                stripes: BTreeMap::new(),
                duplicates: Vec::new(),
                name_key: entry.set.database_name.to_lowercase(),
            });
            groups.len() - 1
        });
        let Some(group) = groups.get_mut(at) else {
            continue;
        };
        match group.stripes.get(&media.family_sequence) {
            // A complete copy replaces an unfinished one of the same stripe.
            Some(held) if !held.usable && entry.usable => {
                group.duplicates.push(held.file.name.as_str());
                group.stripes.insert(media.family_sequence, *entry);
            }
            Some(_) => group.duplicates.push(entry.file.name.as_str()),
            None => {
                if group.stripes.is_empty() || media.family_sequence == 1 {
                    group.set = entry.set;
                }
                group.stripes.insert(media.family_sequence, *entry);
            }
        }
    }
    groups
}
