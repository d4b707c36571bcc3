//! The simulator's time. Every rule that depends on time (restore speed, operation durations, the
//! 30-day cancellation) reads this clock, never the system's directly, so tests and rehearsals can
//! freeze it or jump it forward.

use std::fmt;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// A source of "now" for the simulator.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current simulated time.
    fn now(&self) -> OffsetDateTime;

    /// Moves simulated time forward; `false` when this clock cannot be moved.
    fn advance(&self, by: Duration) -> bool;
}

/// Real time plus an offset that [`Clock::advance`] grows: a rehearsal runs in real time and can
/// still jump 30 days ahead.
#[derive(Debug, Default)]
pub struct SystemClock {
    offset: Mutex<Duration>,
}

impl SystemClock {
    /// A clock at real time.
    pub fn new() -> Self {
        SystemClock::default()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let offset = self.offset.lock().map(|o| *o).unwrap_or_default();
        OffsetDateTime::now_utc() + offset
    }

    fn advance(&self, by: Duration) -> bool {
        match self.offset.lock() {
            Ok(mut offset) => {
                *offset += by;
                true
            }
            Err(_) => false,
        }
    }
}

/// A frozen clock that moves only when told: tests decide exactly when each restore finishes.
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<OffsetDateTime>,
}

impl VirtualClock {
    /// A clock frozen at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        VirtualClock {
            now: Mutex::new(start),
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> OffsetDateTime {
        self.now
            .lock()
            .map(|t| *t)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn advance(&self, by: Duration) -> bool {
        match self.now.lock() {
            Ok(mut now) => {
                *now += by;
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn virtual_clock_moves_only_when_told() {
        let clock = VirtualClock::new(datetime!(2025-01-01 0:00 UTC));
        assert_eq!(clock.now(), datetime!(2025-01-01 0:00 UTC));
        assert!(clock.advance(Duration::days(30)));
        assert_eq!(clock.now(), datetime!(2025-01-31 0:00 UTC));
    }

    #[test]
    fn system_clock_keeps_its_offset() {
        let clock = SystemClock::new();
        assert!(clock.advance(Duration::days(2)));
        let ahead = clock.now() - OffsetDateTime::now_utc();
        assert!(
            ahead > Duration::hours(47) && ahead < Duration::hours(49),
            "{ahead}"
        );
    }
}
