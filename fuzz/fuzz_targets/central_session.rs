//! A whole central-system session (ocpp-central/src/session.rs) driven through arbitrary
//! sequences of charger CALLs (valid-shaped payloads of every charger action, with extreme
//! values), raw text, time steps, central calls and the charger's answers to them, held and
//! late application answers, and close.
//!
//! Invariants (a panic is a finding):
//! - nothing panics;
//! - every CALL the charger sent is answered exactly once, repeated ids by the rule of
//!   ocpp-codec/src/rpc.rs (see `common::Ledger`), and every frame the session sends decodes;
//! - at most one central call is in flight (OCPP-J §4.1.1);
//! - the model stays within `Session::limits()` (ocpp-central/src/model.rs `Limits`):
//!   transactions, connectors and each transaction's `seq_gaps` ranges;
//! - the session does not spin: after `handle_timeout(now)`, `poll_timeout()` is after `now`.
//!
//! Input: see `common/mod.rs`. Header: version, limits, flags, responder.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Gen, Incoming, Ledger, Outgoing, Reader};
use libfuzzer_sys::fuzz_target;
use ocpp_central::testing::Harness;
use ocpp_central::{AnyRequest, AnyResponse, CallFailure, Limits, Session, SessionEvent};
use ocpp_codec::{ErrorCode, Version};
use ocpp_types::MessageKind;

struct Driver {
    h: Harness,
    version: Version,
    ledger: Ledger,
    charger_actions: Vec<&'static str>,
    central_actions: Vec<&'static str>,
    /// Charger requests held back (answered by a later operation or at the end).
    held: Vec<String>,
    hold: bool,
    /// How requests are answered when not held: 0 defaults, else from the input.
    responder: u8,
    /// The central call in flight: (id, action).
    in_flight: Option<(String, String)>,
    /// Ids of central calls answered (for duplicate and late answers).
    done: Vec<String>,
    next_id: u32,
    elapsed: Duration,
}

fuzz_target!(|data: &[u8]| {
    let (header, ops) = common::split(data);
    let version = Version::ALL[usize::from(header[0]) % 3];
    let mut limits = Limits::default();
    if header[1] != 0 {
        limits.max_transactions = 1 + usize::from(header[1] & 3);
        limits.max_connectors = 1 + usize::from((header[1] >> 2) & 3);
        limits.max_sequence_gaps = 1 + usize::from((header[1] >> 4) & 3);
    }
    let flags = header[2];
    let h = Harness::with_config(
        |c| {
            c.limits(limits)
                .lenient(flags & 1 != 0)
                .refuse_before_accepted(flags & 2 == 0)
                .remembered_answers(if flags & 4 != 0 { 2 } else { 1024 })
        },
        version,
    );
    let mut d = Driver {
        h,
        version,
        ledger: Ledger::new(version),
        charger_actions: common::actions(version, true),
        central_actions: common::actions(version, false),
        held: Vec::new(),
        hold: flags & 8 != 0,
        responder: header[3],
        in_flight: None,
        done: Vec::new(),
        next_id: 0,
        elapsed: Duration::ZERO,
    };
    // The harness answered nothing yet; drain what the session queued at creation.
    d.pump(&mut Reader::new(&[]));
    for (op, params) in ops {
        let mut r = Reader::new(params);
        d.op(op, &mut r);
        d.pump(&mut r);
        d.check();
    }
    d.finish();
});

/// `FUZZ_TRACE=1` prints what goes in and out (to describe a finding).
fn trace() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

impl Driver {
    fn now(&self) -> Instant {
        self.h.clock.now()
    }

    fn session(&mut self) -> &mut Session {
        &mut self.h.session
    }

    fn op(&mut self, op: u8, r: &mut Reader) {
        if trace() {
            eprintln!("{:>10?} op {}", self.elapsed, op % 10);
        }
        match op % 10 {
            // A charger CALL of any charger action, valid-shaped, extreme values.
            0 | 1 => {
                let action = self.charger_actions[r.below(self.charger_actions.len())];
                let id = self.call_id(r);
                let payload = Gen::new(r).payload(self.version, action, MessageKind::Request);
                self.charger_sends(&common::call(&id, action, &payload));
            }
            // Raw text.
            2 => {
                let text = String::from_utf8_lossy(r.rest()).into_owned();
                self.charger_sends(&text);
            }
            // Time passes.
            3 => {
                let by = common::STEPS[r.below(common::STEPS.len())];
                self.advance(by);
            }
            // The next deadline.
            4 => {
                if let Some(t) = self.session().poll_timeout() {
                    let by = t.saturating_duration_since(self.now());
                    self.advance(by);
                }
            }
            // A central call.
            5 => {
                if self.central_actions.is_empty() {
                    return;
                }
                let action = self.central_actions[r.below(self.central_actions.len())];
                let payload = Gen::new(r).payload(self.version, action, MessageKind::Request);
                if let Ok(req) = AnyRequest::from_json(self.version, action, &payload) {
                    let now = self.now();
                    let _ = self.session().call(now, &req);
                }
            }
            // The charger answers the central call in flight (or another id).
            6 => self.charger_answers(r),
            // A held request is answered.
            7 => {
                if !self.held.is_empty() {
                    let i = r.below(self.held.len());
                    let id = self.held.swap_remove(i);
                    self.respond(&id, r.byte(), r);
                }
            }
            // Hold requests back, or answer them as they come.
            8 => self.hold = r.byte() % 2 == 1,
            // Close.
            _ => {
                if r.byte() % 4 == 0 {
                    self.session().handle_close(Some("fuzz".into()));
                }
            }
        }
    }

    fn call_id(&mut self, r: &mut Reader) -> String {
        match r.byte() {
            0..=191 => {
                self.next_id += 1;
                format!("k{}", self.next_id)
            }
            b @ 192..=247 => format!("r{}", b % 4),
            248..=251 => format!("k{}", self.next_id),
            252 => "c1".to_owned(),
            253 => "x".repeat(36),
            254 => "x".repeat(37),
            _ => String::new(),
        }
    }

    fn charger_sends(&mut self, text: &str) {
        let now = self.now();
        if trace() {
            eprintln!("{:>10?} charger> {text}", self.elapsed);
        }
        let closed = self.h.session.is_closed();
        let incoming = if closed {
            Incoming::Other
        } else {
            self.ledger.incoming(text)
        };
        self.session().handle_text(now, text);
        if let Incoming::New(id) = incoming {
            // Unless it reached the application, the session answered it itself.
            let mut reached = false;
            let mut events = Vec::new();
            while let Some(ev) = self.session().poll_event() {
                if matches!(&ev, SessionEvent::Request { id: rid, .. } if *rid == id) {
                    reached = true;
                }
                events.push(ev);
            }
            if !reached {
                self.ledger.answered(&id);
            }
            self.handle_events(events, &mut Reader::new(&[]));
        }
        // Answers of the charger to our calls and everything else: see pump.
    }

    fn charger_answers(&mut self, r: &mut Reader) {
        let b = r.byte();
        let target = match (b >> 4, &self.in_flight) {
            (0..=11, Some((id, action))) => Some((id.clone(), action.clone())),
            (12..=13, _) if !self.done.is_empty() => {
                Some((self.done[r.below(self.done.len())].clone(), String::new()))
            }
            _ => Some(("nope".to_owned(), String::new())),
        };
        let Some((id, action)) = target else { return };
        let text = match b % 8 {
            0..=2 => {
                let payload = Gen::new(r).payload(self.version, &action, MessageKind::Response);
                common::result(&id, &payload)
            }
            3 => common::error(&id, "GenericError"),
            4 => common::result(&id, "{\"status\":7}"),
            5 => format!("[5,{},\"FormatViolation\",\"\",{{}}]", serde_json::json!(id)),
            6 => common::result(&id, "[]"),
            _ => common::error(&id, "NotAnErrorCode"),
        };
        self.charger_sends(&text);
    }

    fn advance(&mut self, by: Duration) {
        if self.elapsed + by > common::MAX_VIRTUAL {
            return;
        }
        self.elapsed += by;
        let now = self.h.clock.advance(by);
        self.h
            .wall
            .advance(chrono::Duration::from_std(by).unwrap_or_default());
        self.session().handle_timeout(now);
        // No spinning: a deadline that has passed is gone after handle_timeout.
        for _ in 0..64 {
            match self.session().poll_timeout() {
                Some(t) if t <= now => self.session().handle_timeout(now),
                _ => return,
            }
        }
        panic!("the session spins: its deadline stays at or before now after 64 timeouts");
    }

    /// Answers charger request `id`: 0 the defaults, else a generated response, a CALLERROR
    /// or a response to another action (refused, then answered with the defaults).
    fn respond(&mut self, id: &str, how: u8, r: &mut Reader) {
        let now = self.now();
        let request = self
            .h
            .session
            .unanswered()
            .find(|(k, _)| *k == id)
            .map(|(_, q)| q.action().to_owned());
        let Some(action) = request else {
            return;
        };
        let result = match how % 4 {
            0 => self.session().respond_default(now, id),
            1 => {
                let payload = Gen::new(r).payload(self.version, &action, MessageKind::Response);
                match AnyResponse::from_json(self.version, &action, &payload) {
                    Ok(resp) => self.session().respond(now, id, resp),
                    Err(_) => self.session().respond_default(now, id),
                }
            }
            2 => self.session().respond_error(
                id,
                &CallFailure::new(ErrorCode::InternalError, "fuzz"),
            ),
            _ => {
                let other = if action == "Heartbeat" {
                    "BootNotification"
                } else {
                    "Heartbeat"
                };
                let payload = Gen::new(r).payload(self.version, other, MessageKind::Response);
                match AnyResponse::from_json(self.version, other, &payload) {
                    Ok(resp) => {
                        let wrong = self.session().respond(now, id, resp);
                        assert!(wrong.is_err(), "a {other} response answered a {action}");
                    }
                    Err(_) => {}
                }
                self.session().respond_default(now, id)
            }
        };
        assert!(result.is_ok(), "answering {action} {id} failed: {result:?}");
        self.ledger.answered(id);
    }

    fn handle_events(&mut self, events: Vec<SessionEvent>, r: &mut Reader) {
        for ev in events {
            match ev {
                SessionEvent::Request { id, .. } => {
                    if self.hold {
                        self.held.push(id);
                    } else {
                        let how = if self.responder == 0 { 0 } else { r.byte() };
                        self.respond(&id, how, r);
                    }
                }
                SessionEvent::Answer { id, .. } => {
                    if self.in_flight.as_ref().is_some_and(|(f, _)| *f == id) {
                        self.in_flight = None;
                    }
                    self.done.push(id);
                    if self.done.len() > 64 {
                        self.done.remove(0);
                    }
                }
                _ => {}
            }
        }
    }

    fn pump(&mut self, r: &mut Reader) {
        loop {
            let mut events = Vec::new();
            while let Some(ev) = self.session().poll_event() {
                events.push(ev);
            }
            let mut progressed = !events.is_empty();
            self.handle_events(events, r);
            while let Some(text) = self.session().poll_transmit() {
                progressed = true;
                if trace() {
                    eprintln!("{:>10?} central> {text}", self.elapsed);
                }
                match common::outgoing(self.version, &text) {
                    Outgoing::Call { id, action } => {
                        assert!(
                            self.in_flight.is_none(),
                            "a second central call ({action} {id}) while {:?} is in flight",
                            self.in_flight
                        );
                        self.in_flight = Some((id, action));
                    }
                    Outgoing::Answer(id) => self.ledger.answer(&id, &text),
                    Outgoing::Other => {}
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn check(&self) {
        let s = &self.h.session;
        let limits = s.limits();
        let state = s.state();
        assert!(
            state.transactions.len() <= limits.max_transactions,
            "{} transactions tracked, limit {}",
            state.transactions.len(),
            limits.max_transactions
        );
        assert!(
            state.connectors.len() <= limits.max_connectors,
            "{} connectors tracked, limit {}",
            state.connectors.len(),
            limits.max_connectors
        );
        for tx in state.transactions.values() {
            assert!(
                tx.seq_gaps.ranges().len() <= limits.max_sequence_gaps,
                "transaction {} keeps {} gap ranges, limit {}",
                tx.id,
                tx.seq_gaps.ranges().len(),
                limits.max_sequence_gaps
            );
            assert!(
                tx.seq_gaps.ranges().windows(2).all(|w| w[0].1 < w[1].0)
                    && tx.seq_gaps.ranges().iter().all(|(a, b)| a <= b),
                "transaction {} gap ranges not ascending and disjoint: {:?}",
                tx.id,
                tx.seq_gaps.ranges()
            );
        }
        if !s.is_closed() {
            assert!(
                self.ledger.unanswered() <= common::MAX_UNANSWERED,
                "more unanswered charger calls than the endpoint admits"
            );
        }
    }

    fn finish(&mut self) {
        self.hold = false;
        let now = self.now();
        for id in std::mem::take(&mut self.held) {
            if self.h.session.unanswered().any(|(k, _)| k == id) {
                let _ = self.session().respond_default(now, &id);
                self.ledger.answered(&id);
            }
        }
        self.pump(&mut Reader::new(&[]));
        self.check();
        if !self.h.session.is_closed() {
            let left: Vec<String> = self.h.session.unanswered().map(|(k, _)| k.to_owned()).collect();
            assert!(left.is_empty(), "requests neither answered nor held: {left:?}");
            let owed = self.ledger.outstanding();
            assert!(owed.is_empty(), "charger CALLs never answered: {owed:?}");
        }
    }
}
