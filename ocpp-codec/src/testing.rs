//! Deterministic test helpers (feature `test-util`): a virtual clock and two connected
//! endpoints, so whole exchanges run with no sockets and no sleeping; and [`raw`], the
//! hand-written bad frames and answer checks the conformance tests of both sides share.
//!
//! ```
//! use std::time::Duration;
//! use ocpp_codec::rpc::{EndpointConfig, Event};
//! use ocpp_codec::testing::Pair;
//! use ocpp_codec::Version;
//! use serde_json::value::RawValue;
//!
//! let mut pair = Pair::new(EndpointConfig::new(Version::V201), EndpointConfig::new(Version::V201));
//! let now = pair.clock.now();
//! pair.a.call(now, "Heartbeat", RawValue::from_string("{}".into()).unwrap()).unwrap();
//! pair.drive();
//! let Some(Event::Call { id, .. }) = pair.b.poll_event() else { panic!() };
//! pair.b.respond(&id, &RawValue::from_string("{}".into()).unwrap()).unwrap();
//! pair.drive();
//! assert!(matches!(pair.a.poll_event(), Some(Event::Result { .. })));
//!
//! // Nothing answers the next call: jump straight to its deadline.
//! pair.a.call(pair.clock.now(), "Heartbeat", RawValue::from_string("{}".into()).unwrap()).unwrap();
//! pair.drive();
//! pair.b.poll_event();
//! assert!(pair.advance_to_next_timeout());
//! assert!(matches!(pair.a.poll_event(), Some(Event::Timeout { .. })));
//! # let _ = Duration::ZERO;
//! ```

use std::time::{Duration, Instant};

use crate::rpc::{Endpoint, EndpointConfig};

pub mod raw;

/// A virtual clock: starts at a fixed `Instant` and moves only when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestClock {
    now: Instant,
}

impl TestClock {
    /// A clock starting at `start`.
    pub fn starting_at(start: Instant) -> TestClock {
        TestClock { now: start }
    }

    /// A clock starting at the real current instant (read once; it then moves only when
    /// advanced).
    pub fn new() -> TestClock {
        TestClock::starting_at(Instant::now())
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward by `by` and returns the new time.
    pub fn advance(&mut self, by: Duration) -> Instant {
        self.now += by;
        self.now
    }

    /// Moves the clock to `to` if that is later; returns the (new) time.
    pub fn advance_to(&mut self, to: Instant) -> Instant {
        if to > self.now {
            self.now = to;
        }
        self.now
    }
}

impl Default for TestClock {
    fn default() -> Self {
        TestClock::new()
    }
}

/// Two endpoints wired together on a [`TestClock`]; `a` and `b` are public so tests call and
/// poll them directly, and [`Pair::drive`] moves the messages between them.
#[derive(Debug)]
pub struct Pair {
    /// One side (by convention the charging station).
    pub a: Endpoint,
    /// The other side (by convention the central system).
    pub b: Endpoint,
    /// The shared virtual clock.
    pub clock: TestClock,
    /// Every message sent by `a`, in order.
    pub a_sent: Vec<String>,
    /// Every message sent by `b`, in order.
    pub b_sent: Vec<String>,
}

impl Pair {
    /// Two endpoints on a fresh clock.
    pub fn new(a: EndpointConfig, b: EndpointConfig) -> Pair {
        Pair {
            a: Endpoint::new(a),
            b: Endpoint::new(b),
            clock: TestClock::new(),
            a_sent: Vec::new(),
            b_sent: Vec::new(),
        }
    }

    /// Delivers every pending message in both directions until neither side has anything to
    /// send; returns how many messages moved. Events stay queued on each side.
    pub fn drive(&mut self) -> usize {
        let now = self.clock.now();
        let mut moved = 0;
        loop {
            let mut progressed = false;
            while let Some(text) = self.a.poll_transmit() {
                self.b.handle_text(now, &text);
                self.a_sent.push(text);
                moved += 1;
                progressed = true;
            }
            while let Some(text) = self.b.poll_transmit() {
                self.a.handle_text(now, &text);
                self.b_sent.push(text);
                moved += 1;
                progressed = true;
            }
            if !progressed {
                return moved;
            }
        }
    }

    /// Advances the clock to the earliest deadline of either side, fires both sides'
    /// timeouts and drives; `false` when neither side has a deadline.
    pub fn advance_to_next_timeout(&mut self) -> bool {
        let next = match (self.a.poll_timeout(), self.b.poll_timeout()) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => return false,
        };
        let now = self.clock.advance_to(next);
        self.a.handle_timeout(now);
        self.b.handle_timeout(now);
        self.drive();
        true
    }
}
