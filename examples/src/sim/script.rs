//! The simulated drivers: per EVSE a queue of timed actions, planned one session at a time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ocpp_charger::Rng;

use super::Scenario;

/// Something a driver (or the application) does at a charger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Plug a cable (with a fresh EV) into `evse`.
    Plug(u32),
    /// Pull the cable out of `evse`.
    Unplug(u32),
    /// Present the scripted id tag at `evse`.
    Token(u32),
    /// Present the scripted id tag at `evse` only while a transaction runs there (a local
    /// stop).
    StopToken(u32),
    /// The EV on `evse` pauses (`true`) or resumes (`false`) drawing power.
    Suspend(u32, bool),
    /// The battery of the EV on `evse` is full.
    Fill(u32),
}

/// The driver script of one charger.
#[derive(Debug)]
pub(crate) struct Script {
    scenario: Scenario,
    rng: Rng,
    evses: u32,
    charge: Duration,
    pause: Duration,
    /// Charge: one queue (sessions rotate over the EVSEs); random: one per EVSE.
    queues: Vec<VecDeque<(Instant, Action)>>,
    next_evse: u32,
    started: bool,
    /// Charge: the first driver's delay after the first boot (else a random one).
    first: Option<Duration>,
    /// Charge: how many sessions in all (else without end).
    sessions: Option<u32>,
    planned: u32,
}

impl Script {
    pub(crate) fn new(
        scenario: Scenario,
        evses: u32,
        charge: Duration,
        pause: Duration,
        seed: u64,
    ) -> Script {
        let queues = match scenario {
            Scenario::Idle => 0,
            Scenario::Charge => 1,
            Scenario::Random => evses as usize,
        };
        Script {
            scenario,
            rng: Rng::new(seed),
            evses: evses.max(1),
            charge,
            pause,
            queues: (0..queues).map(|_| VecDeque::new()).collect(),
            next_evse: 1,
            started: false,
            first: None,
            sessions: None,
            planned: 0,
        }
    }

    /// (Charge) The first driver arrives `first` after the first boot instead of after a
    /// random delay, and drivers come `sessions` times in all (then the charger stays idle).
    pub(crate) fn arrivals(mut self, first: Option<Duration>, sessions: Option<u32>) -> Script {
        self.first = first;
        self.sessions = sessions;
        self
    }

    /// The charger was accepted for the first time: the drivers start arriving.
    pub(crate) fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        match self.scenario {
            Scenario::Idle => {}
            Scenario::Charge => {
                let delay = match self.first {
                    Some(d) => d,
                    None => self.rng.jitter(self.pause.min(Duration::from_secs(10))),
                };
                if self.sessions != Some(0) {
                    self.plan_charge(now + delay);
                }
            }
            Scenario::Random => {
                for evse in 1..=self.evses {
                    let first = now + self.rng.jitter(self.pause);
                    self.plan_random(evse, first);
                }
            }
        }
    }

    /// When [`Script::due`] has something to do next.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|q| q.front().map(|(t, _)| *t))
            .min()
    }

    /// Appends the actions due at `now` to `out`, planning the next sessions as needed.
    pub(crate) fn due(&mut self, now: Instant, out: &mut Vec<Action>) {
        for i in 0..self.queues.len() {
            let mut last = None;
            while let Some((t, _)) = self.queues[i].front() {
                if *t > now {
                    break;
                }
                last = Some(*t);
                if let Some((_, a)) = self.queues[i].pop_front() {
                    out.push(a);
                }
            }
            if let (Some(last), true) = (last, self.queues[i].is_empty()) {
                match self.scenario {
                    Scenario::Idle => {}
                    Scenario::Charge => {
                        if self.sessions.is_none_or(|n| self.planned < n) {
                            let next = last + self.pause;
                            self.plan_charge(next);
                        }
                    }
                    Scenario::Random => {
                        let next = last + self.scaled(self.pause, 0.5, 1.5);
                        self.plan_random(i as u32 + 1, next);
                    }
                }
            }
        }
    }

    /// A uniform number in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }

    fn chance(&mut self, p: f64) -> bool {
        self.uniform(0.0, 1.0) < p
    }

    fn scaled(&mut self, d: Duration, lo: f64, hi: f64) -> Duration {
        d.mul_f64(self.uniform(lo, hi))
    }

    fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(self.uniform(lo, hi))
    }

    /// Plug in, present the tag, charge, present the tag again, unplug 2 s later.
    fn plan_charge(&mut self, at: Instant) {
        self.planned = self.planned.saturating_add(1);
        let evse = self.next_evse;
        self.next_evse = self.next_evse % self.evses + 1;
        let end = at + self.charge;
        let q = &mut self.queues[0];
        q.push_back((at, Action::Plug(evse)));
        q.push_back((at, Action::Token(evse)));
        q.push_back((end, Action::StopToken(evse)));
        q.push_back((end + Duration::from_secs(2), Action::Unplug(evse)));
    }

    /// A random driver: arrives, usually authorizes within seconds, charges 0.5 to 1.5 times
    /// the charge duration, sometimes pauses or fills up the battery, and stops with the tag
    /// or by pulling the cable.
    fn plan_random(&mut self, evse: u32, at: Instant) {
        let mut plan = vec![(at, Action::Plug(evse))];
        let mut t = at;
        if self.chance(0.85) {
            t += self.secs(1.0, 5.0);
            plan.push((t, Action::Token(evse)));
        }
        let len = self.scaled(self.charge, 0.5, 1.5);
        if self.chance(0.25) {
            let pause_at = t + len.mul_f64(self.uniform(0.2, 0.5));
            let resume_at = pause_at + len.mul_f64(self.uniform(0.1, 0.3));
            plan.push((pause_at, Action::Suspend(evse, true)));
            plan.push((resume_at, Action::Suspend(evse, false)));
        }
        if self.chance(0.15) {
            plan.push((t + len.mul_f64(0.8), Action::Fill(evse)));
        }
        let end = t + len;
        if self.chance(0.6) {
            plan.push((end, Action::StopToken(evse)));
            let unplug = end + self.secs(1.0, 5.0);
            plan.push((unplug, Action::Unplug(evse)));
        } else {
            plan.push((end, Action::Unplug(evse)));
        }
        plan.sort_by_key(|(t, _)| *t);
        self.queues[evse as usize - 1].extend(plan);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_rotates_over_evses() {
        let t0 = Instant::now();
        let mut s = Script::new(
            Scenario::Charge,
            2,
            Duration::from_secs(60),
            Duration::from_secs(30),
            7,
        );
        assert_eq!(s.next_at(), None);
        s.start(t0);
        let mut out = Vec::new();
        let mut t = t0;
        while out.len() < 8 {
            t = s.next_at().unwrap();
            s.due(t, &mut out);
        }
        assert_eq!(
            out,
            vec![
                Action::Plug(1),
                Action::Token(1),
                Action::StopToken(1),
                Action::Unplug(1),
                Action::Plug(2),
                Action::Token(2),
                Action::StopToken(2),
                Action::Unplug(2),
            ]
        );
        assert!(t >= t0 + Duration::from_secs(2 * 62 + 30));
    }

    #[test]
    fn charge_arrives_at_the_given_delay_and_stops_after_its_sessions() {
        let t0 = Instant::now();
        let mut s = Script::new(
            Scenario::Charge,
            1,
            Duration::from_secs(60),
            Duration::from_secs(30),
            7,
        )
        .arrivals(Some(Duration::from_secs(45)), Some(2));
        s.start(t0);
        assert_eq!(s.next_at(), Some(t0 + Duration::from_secs(45)));
        let mut out = Vec::new();
        while let Some(t) = s.next_at() {
            s.due(t, &mut out);
        }
        assert_eq!(out.iter().filter(|a| **a == Action::Plug(1)).count(), 2);
        assert_eq!(out.last(), Some(&Action::Unplug(1)));
    }

    #[test]
    fn random_is_seeded_and_every_plug_is_unplugged() {
        let run = |seed| {
            let t0 = Instant::now();
            let mut s = Script::new(
                Scenario::Random,
                3,
                Duration::from_secs(60),
                Duration::from_secs(30),
                seed,
            );
            s.start(t0);
            let mut out = Vec::new();
            for _ in 0..200 {
                let t = s.next_at().unwrap();
                s.due(t, &mut out);
            }
            out
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        for evse in 1..=3 {
            let mut plugged = false;
            for act in &a {
                match act {
                    Action::Plug(e) if *e == evse => {
                        assert!(!plugged);
                        plugged = true;
                    }
                    Action::Unplug(e) if *e == evse => {
                        assert!(plugged);
                        plugged = false;
                    }
                    _ => {}
                }
            }
        }
    }
}
