//! Time, injected: the station's inputs carry the driver's monotonic `now: Instant`, and the
//! wall-clock time written into messages is derived from it by the configured [`TimeSource`].
//! Nothing in the station reads a clock; randomness is in [`crate::rand`].

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Maps the driver's monotonic `Instant` to the wall-clock time written into messages
/// (timestamps, clock-aligned meter intervals).
///
/// The station never reads a clock itself: every input carries `now: Instant`, and the wall
/// time of that instant comes from here, so tests control both.
pub trait TimeSource: Send + Sync {
    /// The wall-clock time at monotonic instant `now`.
    fn wall(&self, now: Instant) -> DateTime<Utc>;
}

/// A [`TimeSource`] anchored at one (`Instant`, wall time) pair: the wall time moves exactly
/// with the monotonic clock from there.
///
/// [`AnchoredClock::system`] reads the real clocks once (for production); tests use
/// [`AnchoredClock::new`] with a fixed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchoredClock {
    instant: Instant,
    wall: DateTime<Utc>,
}

impl AnchoredClock {
    /// Wall time `wall` at instant `instant`.
    pub fn new(instant: Instant, wall: DateTime<Utc>) -> AnchoredClock {
        AnchoredClock { instant, wall }
    }

    /// Anchored at the real current instant and UTC time (read once).
    pub fn system() -> AnchoredClock {
        AnchoredClock::new(Instant::now(), Utc::now())
    }
}

impl TimeSource for AnchoredClock {
    fn wall(&self, now: Instant) -> DateTime<Utc> {
        if now >= self.instant {
            let d = now - self.instant;
            self.wall + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
        } else {
            let d = self.instant - now;
            self.wall - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
        }
    }
}

/// The longest delay any of the station's timers is armed with: one day.
///
/// Every period that reaches a timer from the wire or from the settings (heartbeat, boot
/// retry, sampling, clock-aligned readings, connection time-out, message retries) is clamped to
/// it, so no value, however large, silences the station or overflows an [`Instant`].
pub const MAX_TIMER: Duration = Duration::from_secs(86_400);

/// The instant `after` from `now`, with `after` clamped to [`MAX_TIMER`] and the addition
/// checked (`Instant + Duration` panics on overflow). Should even `now + MAX_TIMER` overflow the
/// platform's `Instant` (no platform we know of), the deadline is `now`.
pub fn deadline(now: Instant, after: Duration) -> Instant {
    now.checked_add(after.min(MAX_TIMER)).unwrap_or(now)
}

/// A number of seconds from the wire as a [`Duration`]: negative counts as 0 (never
/// `Duration::from_secs(x as u64)`, which turns -5 into 584 billion years).
pub fn seconds(secs: i64) -> Duration {
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// When `interval` divides the day into slots starting at midnight UTC, the next slot start
/// strictly after `wall` (OCPP 1.6 `ClockAlignedDataInterval`, 2.x
/// `AlignedDataCtrlr.Interval`: "aligned to midnight"). The interval counts as at least 1 s
/// and at most [`MAX_TIMER`] (a day: one slot per day at midnight).
pub fn next_aligned(wall: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let secs = i64::try_from(interval.as_secs().clamp(1, MAX_TIMER.as_secs())).unwrap_or(86_400);
    let midnight = wall
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|m| m.and_utc())
        .unwrap_or(wall);
    let since = (wall - midnight).num_milliseconds();
    let slot = secs * 1000;
    let next = (since / slot + 1) * slot;
    midnight + chrono::Duration::milliseconds(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_slots_start_at_midnight() {
        let t: DateTime<Utc> = "2025-01-01T10:07:30Z".parse().unwrap();
        let n = next_aligned(t, Duration::from_secs(900));
        assert_eq!(n.to_rfc3339(), "2025-01-01T10:15:00+00:00");
        let t: DateTime<Utc> = "2025-01-01T10:15:00Z".parse().unwrap();
        assert_eq!(
            next_aligned(t, Duration::from_secs(900)).to_rfc3339(),
            "2025-01-01T10:30:00+00:00"
        );
    }

    #[test]
    fn deadlines_and_seconds_are_checked() {
        let now = Instant::now();
        assert_eq!(deadline(now, Duration::MAX), now + MAX_TIMER);
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(seconds(-5), Duration::ZERO);
        assert_eq!(seconds(i64::MIN), Duration::ZERO);
        assert_eq!(seconds(7), Duration::from_secs(7));
        let t: DateTime<Utc> = "2025-01-01T10:07:30Z".parse().unwrap();
        assert_eq!(
            next_aligned(t, Duration::MAX).to_rfc3339(),
            "2025-01-02T00:00:00+00:00"
        );
        assert_eq!(
            next_aligned(t, Duration::ZERO).to_rfc3339(),
            "2025-01-01T10:07:31+00:00"
        );
    }
}
