//! The log chain, walked the way RESTORE LOG accepts logs: from the restore point P of the base full
//! or differential, the next log is one that contains P (FirstLSN <= P < LastLSN, or an empty log
//! with FirstLSN = LastLSN = P); each restored log moves P to its LastLSN. A log that starts exactly
//! at P is preferred, the emptiest first, so empty log backups (taken with no activity) stay in the
//! chain and can be the tail. Where no log contains P but later logs exist, that is a gap; the walk
//! goes on after it only to report further gaps.
//!
//! P never decreases, which lets the walk sweep the logs once: O(n log n) for n logs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::backup::Lsn;

use super::sets::SetGroup;

/// A missing stretch of log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The first LSN no log backup covers.
    pub from: Lsn,
    /// Where the next log backup begins.
    pub to: Lsn,
    /// The last file before the gap.
    pub before: String,
    /// The first file after it.
    pub after: String,
}

/// The outcome of a walk, as indices into the groups.
#[derive(Debug, Default)]
pub(crate) struct LogWalk {
    /// The logs LRS restores, in order.
    pub chain: Vec<usize>,
    /// The gaps after the chain.
    pub gaps: Vec<Gap>,
    /// Logs after a gap: LRS cannot reach them.
    pub unreachable: Vec<usize>,
    /// Logs neither in the chain nor after it (covered by the base, older, or a side branch).
    pub leftovers: Vec<usize>,
}

/// Walks the logs `pool` (indices into `groups`) from `point`. `base_name` names the base (or
/// differential) for a gap right after it; `is_older` marks logs that never count as after the
/// chain (taken before the base).
pub(crate) fn walk(
    groups: &[SetGroup<'_>],
    pool: &[usize],
    point: Lsn,
    base_name: &str,
    is_older: impl Fn(&SetGroup<'_>) -> bool,
) -> LogWalk {
    let mut order: Vec<(Lsn, Lsn, &str, usize)> = pool
        .iter()
        .filter_map(|&i| {
            groups
                .get(i)
                .map(|g| (g.first(), g.last(), g.first_name(), i))
        })
        .collect();
    order.sort_unstable();
    let mut walker = Walker::new(&order);

    let mut out = LogWalk::default();
    let mut cur = point;
    while let Some(p) = walker.next(cur) {
        cur = walker.take(p, cur);
        out.chain.push(p);
    }
    let mut before = out
        .chain
        .last()
        .and_then(|&p| order.get(p))
        .map_or(base_name, |o| o.2)
        .to_owned();
    let mut q = 0;
    loop {
        while order.get(q).is_some_and(|&(first, _, _, i)| {
            first <= cur || walker.used(q) || groups.get(i).is_none_or(&is_older)
        }) {
            q += 1;
        }
        let Some(&(first, _, name, _)) = order.get(q) else {
            break;
        };
        out.gaps.push(Gap {
            from: cur,
            to: first,
            before: std::mem::take(&mut before),
            after: name.to_owned(),
        });
        cur = walker.take(q, cur);
        out.unreachable.push(q);
        while let Some(p) = walker.next(cur) {
            cur = walker.take(p, cur);
            out.unreachable.push(p);
        }
        before = out
            .unreachable
            .last()
            .and_then(|&p| order.get(p))
            .map_or("", |o| o.2)
            .to_owned();
    }
    out.leftovers = (0..order.len()).filter(|&p| !walker.used(p)).collect();
    let to_group = |list: &mut Vec<usize>| {
        for p in list.iter_mut() {
            *p = order.get(*p).map_or(usize::MAX, |o| o.3);
        }
    };
    to_group(&mut out.chain);
    to_group(&mut out.unreachable);
    to_group(&mut out.leftovers);
    out
}

/// The sweep state over logs sorted by (FirstLSN, LastLSN, name).
struct Walker<'o> {
    order: &'o [(Lsn, Lsn, &'o str, usize)],
    used: Vec<bool>,
    /// For each FirstLSN, the positions holding it (contiguous in `order`, in LastLSN order) as a
    /// cursor past the dead entries and an end.
    by_first: HashMap<Lsn, (usize, usize)>,
    /// Logs with FirstLSN < P, largest LastLSN on top.
    started: BinaryHeap<(Lsn, Reverse<usize>)>,
    /// How many logs (in order) are in `started`.
    pushed: usize,
}

impl<'o> Walker<'o> {
    fn new(order: &'o [(Lsn, Lsn, &'o str, usize)]) -> Self {
        let mut by_first: HashMap<Lsn, (usize, usize)> = HashMap::with_capacity(order.len());
        for (p, o) in order.iter().enumerate() {
            by_first.entry(o.0).or_insert((p, p)).1 = p + 1;
        }
        Walker {
            order,
            used: vec![false; order.len()],
            by_first,
            started: BinaryHeap::new(),
            pushed: 0,
        }
    }

    fn used(&self, p: usize) -> bool {
        self.used.get(p).copied().unwrap_or(true)
    }

    fn last(&self, p: usize) -> Lsn {
        self.order.get(p).map_or(Lsn::ZERO, |o| o.1)
    }

    /// Marks a log restored; returns the new restore point.
    fn take(&mut self, p: usize, cur: Lsn) -> Lsn {
        if let Some(slot) = self.used.get_mut(p) {
            *slot = true;
        }
        cur.max(self.last(p))
    }

    /// The next log that contains `cur`, if any.
    fn next(&mut self, cur: Lsn) -> Option<usize> {
        while let Some(&(first, last, _, _)) = self.order.get(self.pushed) {
            if first >= cur {
                break;
            }
            self.started.push((last, Reverse(self.pushed)));
            self.pushed += 1;
        }
        if let Some((cursor, end)) = self.by_first.get_mut(&cur) {
            while *cursor < *end {
                let p = *cursor;
                let dead = self.used.get(p).copied().unwrap_or(true)
                    || self.order.get(p).is_none_or(|o| o.1 < cur);
                if !dead {
                    return Some(p);
                }
                *cursor += 1;
            }
        }
        while let Some(&(last, Reverse(p))) = self.started.peek() {
            if self.used(p) || last <= cur {
                self.started.pop();
                continue;
            }
            return Some(p);
        }
        None
    }
}
