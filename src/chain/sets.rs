//! Backup sets: the stripe files of one backup (same media set GUID, families 1..n) gathered into one
//! unit, the way LRS counts `numberOfStripes` and names a set by its first stripe.

use std::collections::HashMap;

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
    /// The stripes present, sorted by family number (1..=n, each once); the first file seen wins a
    /// family. A short vector: sets have a handful of stripes.
    pub stripes: Vec<(u16, Entry<'a>)>,
    /// Further copies of a family already present (the same stripe uploaded under another name).
    pub duplicates: Vec<&'a str>,
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
        // Families are unique and within 1..=n (screened), so a full count means none is missing.
        self.stripes.len() == usize::from(self.family_count)
            && self.stripes.iter().all(|s| s.1.usable)
    }

    /// The families (1..=n) with no file at all, at most the first 100 of them (enough to say so).
    pub fn missing_families(&self) -> Vec<u16> {
        (1..=self.family_count)
            .filter(|k| self.stripes.binary_search_by_key(k, |s| s.0).is_err())
            .take(100)
            .collect()
    }

    /// The stripe files present and written to the end, in family order: the first is LRS's
    /// `firstStripeName`. An unfinished file is never planned from.
    pub fn files(&self) -> Vec<String> {
        self.stripes
            .iter()
            .filter(|s| s.1.usable)
            .map(|s| s.1.file.name.clone())
            .collect()
    }

    /// The first stripe's name, for messages.
    pub fn first_name(&self) -> &'a str {
        self.stripes.first().map_or("", |s| s.1.file.name.as_str())
    }

    /// Every file of the set, duplicates included.
    pub fn all_files(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.stripes
            .iter()
            .map(|s| s.1.file.name.as_str())
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
                .iter()
                .filter(|s| s.1.usable)
                .fold(0u64, |sum, s| sum.saturating_add(s.1.file.size)),
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
                stripes: Vec::with_capacity(usize::from(media.family_count.min(8))),
                duplicates: Vec::new(),
            });
            groups.len() - 1
        });
        let Some(group) = groups.get_mut(at) else {
            continue;
        };
        let family = media.family_sequence;
        match group.stripes.binary_search_by_key(&family, |s| s.0) {
            // A complete copy replaces an unfinished one of the same stripe.
            Ok(at) => match group.stripes.get_mut(at) {
                Some(held) if !held.1.usable && entry.usable => {
                    group.duplicates.push(held.1.file.name.as_str());
                    held.1 = *entry;
                }
                _ => group.duplicates.push(entry.file.name.as_str()),
            },
            Err(at) => {
                if group.stripes.is_empty() || family == 1 {
                    group.set = entry.set;
                }
                group.stripes.insert(at, (family, *entry));
            }
        }
    }
    groups
}
