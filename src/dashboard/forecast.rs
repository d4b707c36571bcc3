//! When will a database be caught up, is it falling behind, and by when must the tail-log backup be
//! taken? Pure arithmetic on what LRS reported (backup-set sizes and restore times) and what landed
//! in the folder (log backups and when they arrived): no clock, no I/O, so recorded progress series
//! can be replayed in tests.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::migration::LRS_LIMIT;

/// Time kept in hand before the 30-day limit when saying "take the tail-log backup by": LRS must
/// still restore the tail and the database must come online before the job is cancelled.
///
/// Model choice: two days. Microsoft documents the 30-day limit but no completion time; a margin
/// of days rather than hours leaves room for a weekend and a slow completion.
pub const TAIL_MARGIN: Duration = Duration::days(2);

/// One backup set LRS reported, reduced to what throughput needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetSample {
    /// `backupSizeMB`.
    pub size_mb: f64,
    /// When its restore started.
    pub started: Option<OffsetDateTime>,
    /// When its restore finished.
    pub finished: Option<OffsetDateTime>,
}

/// A log backup that landed in the folder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// When the pipeline first saw it.
    pub at: OffsetDateTime,
    /// Its size in MB.
    pub size_mb: f64,
}

/// What the forecast is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Now.
    pub now: OffsetDateTime,
    /// When LRS started: the 30-day limit runs from here.
    pub started_at: Option<OffsetDateTime>,
    /// Backup sets LRS reported, with their restore times.
    pub sets: Vec<SetSample>,
    /// Log backups in the folder, by arrival.
    pub arrivals: Vec<Arrival>,
    /// MB of planned backups LRS has not restored yet.
    pub backlog_mb: f64,
    /// The migration is finished or being completed: nothing is left to forecast but the record.
    pub done: bool,
}

/// The forecast. Field names are a contract (the dashboard's JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// Restore throughput, MB/s, measured over the sets LRS reported finished.
    pub throughput_mbps: Option<f64>,
    /// Log backups landing, MB/s, measured between the first and last arrival.
    pub arrival_mbps: Option<f64>,
    /// MB still to restore.
    pub backlog_mb: f64,
    /// Nothing planned is left to restore.
    pub caught_up: bool,
    /// Seconds until caught up at the measured rates (None: unknown, or never at these rates).
    pub caught_up_in_secs: Option<f64>,
    /// When that is.
    #[serde(with = "time::serde::rfc3339::option")]
    pub caught_up_at: Option<OffsetDateTime>,
    /// Log backups arrive faster than LRS restores them: the backlog grows (an alert).
    pub falling_behind: bool,
    /// When LRS cancels the job (30 days after its start).
    #[serde(with = "time::serde::rfc3339::option")]
    pub limit_at: Option<OffsetDateTime>,
    /// Days left before then (negative once past).
    pub days_left: Option<f64>,
    /// Take the tail-log backup by this time to complete with [`TAIL_MARGIN`] in hand.
    #[serde(with = "time::serde::rfc3339::option")]
    pub tail_log_by: Option<OffsetDateTime>,
    /// That time has passed (an alert).
    pub tail_log_overdue: bool,
}

impl Forecast {
    /// One line for people.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.throughput_mbps {
            parts.push(format!("{t:.1} MB/s"));
        }
        if self.caught_up {
            parts.push("caught up".to_owned());
        } else if self.falling_behind {
            parts.push("FALLING BEHIND: logs arrive faster than LRS restores them".to_owned());
        } else if let Some(secs) = self.caught_up_in_secs {
            parts.push(format!(
                "caught up in {} ({:.0} MB left)",
                human(secs),
                self.backlog_mb
            ));
        } else {
            parts.push(format!(
                "{:.0} MB left, rate not measured yet",
                self.backlog_mb
            ));
        }
        if self.tail_log_overdue {
            parts.push("tail-log backup overdue".to_owned());
        }
        parts.join(", ")
    }
}

/// A duration in seconds as `3d 4h`, `2h 5m`, `40s`.
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// The forecast for one database.
pub fn forecast(obs: &Observation) -> Forecast {
    let throughput = throughput(&obs.sets);
    let arrival = arrival_rate(&obs.arrivals);
    // `+ 0.0` turns the -0.0 of an empty sum into 0.
    let backlog = obs.backlog_mb.max(0.0) + 0.0;
    let caught_up = obs.done || backlog <= f64::EPSILON;
    // The backlog drains at the restore rate less the rate new logs add to it.
    let drain = throughput.map(|t| t - arrival.unwrap_or(0.0));
    let falling_behind = !obs.done && !caught_up && drain.is_some_and(|d| d <= 0.0);
    let caught_up_in = if caught_up {
        Some(0.0)
    } else {
        drain.filter(|d| *d > 0.0).map(|d| backlog / d)
    };
    let caught_up_at = caught_up_in.map(|s| obs.now + secs(s));
    let limit_at = obs.started_at.map(|s| s + LRS_LIMIT);
    let days_left = limit_at.map(|l| (l - obs.now).as_seconds_f64() / 86_400.0);
    // The tail itself is about one more log backup: restoring it plus what is left takes time
    // that must fit before the margin.
    let tail_mb = mean(obs.arrivals.iter().map(|a| a.size_mb)).unwrap_or(0.0);
    let restore_left = throughput
        .filter(|t| *t > 0.0)
        .map_or(0.0, |t| (backlog + tail_mb) / t);
    let tail_log_by = limit_at
        .filter(|_| !obs.done)
        .map(|l| l - TAIL_MARGIN - secs(restore_left));
    Forecast {
        throughput_mbps: throughput,
        arrival_mbps: arrival,
        backlog_mb: backlog,
        caught_up,
        caught_up_in_secs: caught_up_in,
        caught_up_at,
        falling_behind,
        limit_at,
        days_left,
        tail_log_by,
        tail_log_overdue: tail_log_by.is_some_and(|t| obs.now >= t),
    }
}

fn secs(s: f64) -> Duration {
    Duration::seconds_f64(s.clamp(0.0, 1e10))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// MB restored per second LRS spent restoring, over every set with a positive restore time.
fn throughput(sets: &[SetSample]) -> Option<f64> {
    let (mb, secs) = sets
        .iter()
        .filter_map(|s| {
            let d = (s.finished? - s.started?).as_seconds_f64();
            (d > 0.0 && s.size_mb.is_finite() && s.size_mb >= 0.0).then_some((s.size_mb, d))
        })
        .fold((0.0, 0.0), |(m, t), (sm, sd)| (m + sm, t + sd));
    // LRS reports whole MB: sets under 1 MB each say 0 and measure nothing.
    (secs > 0.0 && mb > 0.0).then(|| mb / secs)
}

/// MB/s of log backups landing: every arrival after the first, over the time since the first.
fn arrival_rate(arrivals: &[Arrival]) -> Option<f64> {
    let first = arrivals.iter().map(|a| a.at).min()?;
    let last = arrivals.iter().map(|a| a.at).max()?;
    let span = (last - first).as_seconds_f64();
    if arrivals.len() < 2 || span <= 0.0 {
        return None;
    }
    let mb: f64 = arrivals
        .iter()
        .filter(|a| a.at > first)
        .map(|a| a.size_mb)
        .sum();
    Some(mb / span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);

    fn set(mb: f64, start_min: i64, secs_taken: i64) -> SetSample {
        let started = T0 + Duration::minutes(start_min);
        SetSample {
            size_mb: mb,
            started: Some(started),
            finished: Some(started + Duration::seconds(secs_taken)),
        }
    }

    /// A log backup of `mb` every `every` minutes, `n` of them, from T0.
    fn logs(n: i64, every: i64, mb: f64) -> Vec<Arrival> {
        (0..n)
            .map(|i| Arrival {
                at: T0 + Duration::minutes(i * every),
                size_mb: mb,
            })
            .collect()
    }

    #[test]
    fn a_caught_up_chain_has_nothing_left_and_a_tail_date_two_days_before_the_limit() {
        // Recorded: a 10 GB full in 100 s, then 15-minute logs of 50 MB restored in 1 s each.
        let mut sets = vec![set(10_000.0, 0, 100)];
        sets.extend((1..=8).map(|i| set(50.0, i * 15, 1)));
        let obs = Observation {
            now: T0 + Duration::hours(2),
            started_at: Some(T0),
            sets,
            arrivals: logs(8, 15, 50.0),
            backlog_mb: 0.0,
            done: false,
        };
        let f = forecast(&obs);
        let t = f.throughput_mbps.unwrap();
        assert!((t - 10_400.0 / 108.0).abs() < 1e-9, "{t}");
        assert!(f.caught_up);
        assert_eq!(f.caught_up_in_secs, Some(0.0));
        assert!(!f.falling_behind);
        assert_eq!(f.limit_at, Some(T0 + Duration::days(30)));
        let by = f.tail_log_by.unwrap();
        // The margin, less the time to restore one more (average) log at the measured rate.
        let expected = T0 + Duration::days(28) - Duration::seconds_f64(50.0 / t);
        assert!((by - expected).abs() < Duration::milliseconds(1), "{by}");
        assert!(!f.tail_log_overdue);
        assert!((f.days_left.unwrap() - (30.0 - 2.0 / 24.0)).abs() < 1e-9);
        assert!(f.describe().contains("caught up"));
    }

    #[test]
    fn a_chain_with_a_backlog_is_caught_up_when_the_net_drain_empties_it() {
        // Restores at 10 MB/s; logs of 60 MB every minute (1 MB/s): 900 MB drain at 9 MB/s.
        let obs = Observation {
            now: T0 + Duration::hours(1),
            started_at: Some(T0),
            sets: vec![set(600.0, 0, 60)],
            arrivals: logs(11, 1, 60.0),
            backlog_mb: 900.0,
            done: false,
        };
        let f = forecast(&obs);
        assert_eq!(f.throughput_mbps, Some(10.0));
        assert_eq!(f.arrival_mbps, Some(1.0));
        assert!(!f.caught_up && !f.falling_behind);
        assert_eq!(f.caught_up_in_secs, Some(100.0));
        assert_eq!(f.caught_up_at, Some(obs.now + Duration::seconds(100)));
    }

    #[test]
    fn logs_arriving_faster_than_restores_are_falling_behind() {
        // Restores at 2 MB/s (a slow instance); logs of 300 MB every minute (5 MB/s).
        let obs = Observation {
            now: T0 + Duration::hours(3),
            started_at: Some(T0),
            sets: vec![set(1200.0, 0, 600), set(300.0, 20, 150)],
            arrivals: logs(30, 1, 300.0),
            backlog_mb: 4_000.0,
            done: false,
        };
        let f = forecast(&obs);
        assert_eq!(f.throughput_mbps, Some(2.0));
        assert_eq!(f.arrival_mbps, Some(5.0));
        assert!(f.falling_behind);
        assert_eq!(f.caught_up_in_secs, None, "never, at these rates");
        assert!(f.describe().contains("FALLING BEHIND"));
    }

    #[test]
    fn near_the_30_day_limit_the_tail_log_backup_is_overdue() {
        // 28.5 days in, a 100 GB backlog at 1 MB/s: it cannot be restored before the margin.
        let obs = Observation {
            now: T0 + Duration::days(28) + Duration::hours(12),
            started_at: Some(T0),
            sets: vec![set(3_600.0, 0, 3_600)],
            arrivals: logs(2, 60, 10.0),
            backlog_mb: 100_000.0,
            done: false,
        };
        let f = forecast(&obs);
        assert!((f.days_left.unwrap() - 1.5).abs() < 1e-9);
        assert!(f.tail_log_overdue);
        assert!(f.tail_log_by.unwrap() < obs.now);
        assert!(f.describe().contains("overdue"));
    }

    #[test]
    fn without_measurements_nothing_is_invented() {
        let obs = Observation {
            now: T0,
            started_at: None,
            sets: vec![SetSample {
                size_mb: 10.0,
                started: Some(T0),
                finished: None,
            }],
            arrivals: logs(1, 1, 5.0),
            backlog_mb: 10.0,
            done: false,
        };
        let f = forecast(&obs);
        assert_eq!(f.throughput_mbps, None);
        let tiny = Observation {
            sets: vec![set(0.0, 0, 1), set(0.0, 1, 1)],
            ..obs.clone()
        };
        assert_eq!(
            forecast(&tiny).throughput_mbps,
            None,
            "0 MB sets measure nothing"
        );
        assert_eq!(f.arrival_mbps, None);
        assert_eq!(f.caught_up_in_secs, None);
        assert!(!f.falling_behind);
        assert_eq!((f.limit_at, f.tail_log_by), (None, None));
        assert!(f.describe().contains("not measured"));
    }

    #[test]
    fn a_completed_migration_asks_for_no_tail() {
        let obs = Observation {
            now: T0 + Duration::days(3),
            started_at: Some(T0),
            sets: vec![set(100.0, 0, 10)],
            arrivals: Vec::new(),
            backlog_mb: 0.0,
            done: true,
        };
        let f = forecast(&obs);
        assert!(f.caught_up && f.tail_log_by.is_none() && !f.tail_log_overdue);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(40.0), "40s");
        assert_eq!(human(125.0), "2m 5s");
        assert_eq!(human(7_500.0), "2h 5m");
        assert_eq!(human(3.0 * 86_400.0 + 4.0 * 3600.0), "3d 4h");
    }
}
