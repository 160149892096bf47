//! The simulated hardware of one fleet charger: per EVSE an ocpp-charger
//! [`SimulatedHardware`] (meter, contactor) with the [`SimulatedEv`] currently plugged in.
//!
//! `SimulatedHardware` takes its EV at construction, so a new EV (a cable plugged in) or a
//! full battery is a fresh one-EVSE instance that continues the meter register and the
//! contactor of the previous one. The driver task tells the hardware about EVs through a
//! channel that the hardware drains on every call (the station owns the hardware; nothing is
//! shared or locked).

use std::collections::VecDeque;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use ocpp_charger::smart_charging::ChargingLimit;
use ocpp_charger::{
    Hardware, HardwareEvent, MeterReading, ResetKind, SignRequest, SignedReading, SimulatedEv,
    SimulatedHardware,
};
use rust_decimal::Decimal;

use super::ocmf::MeterKey;

/// What the driver tells the hardware.
#[derive(Debug, Clone)]
pub(crate) enum HwCommand {
    /// An EV (or none) is now connected to `evse`.
    Ev { evse: u32, ev: Option<SimulatedEv> },
    /// The battery of the EV on `evse` is full (it stops drawing power).
    Fill { evse: u32 },
}

pub(crate) struct FleetHardware {
    power: Decimal,
    evses: Vec<Slot>,
    inbox: mpsc::Receiver<HwCommand>,
    events: VecDeque<HardwareEvent>,
    /// The signing meter (`--sign-readings`) and the charger's identity (its meter serials).
    signer: Option<(Arc<MeterKey>, Arc<str>)>,
}

struct Slot {
    hw: SimulatedHardware,
    ev: Option<SimulatedEv>,
    suspended: bool,
    /// The station's smart-charging limit of this EVSE, carried over to a fresh instance.
    limit: Option<ChargingLimit>,
    /// The station-wide limit (EVSE 0), applied to each EVSE's instance.
    station_limit: Option<ChargingLimit>,
}

impl FleetHardware {
    /// `evses` EVSEs of `power_w` watts each, and the sender the driver keeps.
    pub(crate) fn new(evses: u32, power_w: u32) -> (FleetHardware, mpsc::Sender<HwCommand>) {
        let (tx, rx) = mpsc::channel();
        let power = Decimal::from(power_w);
        let hw = FleetHardware {
            power,
            evses: (0..evses)
                .map(|_| Slot {
                    hw: SimulatedHardware::new(1, power),
                    ev: None,
                    suspended: false,
                    limit: None,
                    station_limit: None,
                })
                .collect(),
            inbox: rx,
            events: VecDeque::new(),
            signer: None,
        };
        (hw, tx)
    }

    /// Signs readings with `key` as charger `identity`'s meters ([`super::ocmf`]).
    pub(crate) fn with_signer(mut self, key: Arc<MeterKey>, identity: Arc<str>) -> Self {
        self.signer = Some((key, identity));
        self
    }

    fn slot(&mut self, evse: u32) -> Option<&mut Slot> {
        let i = (evse as usize).checked_sub(1)?;
        self.evses.get_mut(i)
    }

    /// Applies the driver's commands and collects the EVSEs' own events.
    fn drain(&mut self, now: Instant) {
        while let Ok(cmd) = self.inbox.try_recv() {
            match cmd {
                HwCommand::Ev { evse, ev } => self.replace(now, evse, ev),
                HwCommand::Fill { evse } => {
                    let ev = self.slot(evse).and_then(|s| s.ev).map(|ev| SimulatedEv {
                        stored_wh: ev.capacity_wh,
                        ..ev
                    });
                    if ev.is_some() {
                        self.replace(now, evse, ev);
                        // Let the new instance notice the full battery at once.
                        if let Some(s) = self.slot(evse) {
                            let _ = s.hw.meter(now, 1);
                        }
                    }
                }
            }
        }
        for i in 0..self.evses.len() {
            self.collect(now, i);
        }
    }

    /// Moves the events of EVSE index `i`'s instance to the queue, with the right EVSE id.
    fn collect(&mut self, now: Instant, i: usize) {
        let Some(slot) = self.evses.get_mut(i) else {
            return;
        };
        let evse = i as u32 + 1;
        while let Some(e) = slot.hw.poll_event(now) {
            let e = match e {
                HardwareEvent::EvSuspended { suspended, .. } => {
                    slot.suspended = suspended;
                    HardwareEvent::EvSuspended { evse, suspended }
                }
                HardwareEvent::CablePlugged { .. } => HardwareEvent::CablePlugged { evse },
                HardwareEvent::CableUnplugged { .. } => HardwareEvent::CableUnplugged { evse },
                HardwareEvent::Fault { faulted, .. } => HardwareEvent::Fault { evse, faulted },
                other => other,
            };
            self.events.push_back(e);
        }
    }

    /// A fresh one-EVSE instance for `evse` with `ev`, continuing register and contactor.
    fn replace(&mut self, now: Instant, evse: u32, ev: Option<SimulatedEv>) {
        let Some(i) = (evse as usize)
            .checked_sub(1)
            .filter(|i| *i < self.evses.len())
        else {
            return;
        };
        let register = self.evses[i].hw.meter(now, 1).energy_wh;
        self.collect(now, i);
        let power = self.power;
        let slot = &mut self.evses[i];
        let closed = slot.hw.contactor(1);
        let mut hw = SimulatedHardware::new(1, power).with_register(register);
        if let Some(ev) = ev {
            hw = hw.with_ev(1, ev);
        }
        if closed {
            hw.set_contactor(now, 1, true);
        }
        hw.set_charging_limit(now, 1, slot.limit);
        hw.set_charging_limit(now, 0, slot.station_limit);
        slot.hw = hw;
        slot.ev = ev;
        if std::mem::replace(&mut slot.suspended, false) {
            // The old EV's "full" does not carry over to the new one.
            self.events.push_back(HardwareEvent::EvSuspended {
                evse,
                suspended: false,
            });
        }
    }
}

impl Hardware for FleetHardware {
    fn meter(&mut self, now: Instant, evse: u32) -> MeterReading {
        self.drain(now);
        let reading = match self.slot(evse) {
            Some(s) => s.hw.meter(now, 1),
            None => MeterReading::default(),
        };
        self.drain(now);
        reading
    }

    fn set_contactor(&mut self, now: Instant, evse: u32, closed: bool) {
        self.drain(now);
        if let Some(s) = self.slot(evse) {
            s.hw.set_contactor(now, 1, closed);
        }
    }

    fn unlock_connector(&mut self, now: Instant, evse: u32) -> bool {
        self.drain(now);
        match self.slot(evse) {
            Some(s) => s.hw.unlock_connector(now, 1),
            None => false,
        }
    }

    fn reboot(&mut self, _kind: ResetKind) {}

    /// The EV draws no more than the station's limit: EVSE `n`'s limit goes to its instance;
    /// the station-wide one (EVSE 0) to every EVSE's instance (each EVSE alone then keeps
    /// under it).
    fn set_charging_limit(&mut self, now: Instant, evse: u32, limit: Option<ChargingLimit>) {
        self.drain(now);
        if evse == 0 {
            for s in &mut self.evses {
                s.station_limit = limit;
                s.hw.set_charging_limit(now, 0, limit);
            }
        } else if let Some(s) = self.slot(evse) {
            s.limit = limit;
            s.hw.set_charging_limit(now, 1, limit);
        }
    }

    fn poll_event(&mut self, now: Instant) -> Option<HardwareEvent> {
        self.drain(now);
        self.events.pop_front()
    }

    fn sign_reading(
        &mut self,
        _now: Instant,
        request: &SignRequest<'_>,
        reading: &MeterReading,
    ) -> Option<SignedReading> {
        let (key, identity) = self.signer.as_ref()?;
        key.sign(identity, request, reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn register_continues_and_full_battery_suspends() {
        let t0 = Instant::now();
        let (mut hw, tx) = FleetHardware::new(2, 3600);
        let ev = SimulatedEv {
            capacity_wh: Decimal::from(1000),
            stored_wh: Decimal::from(100),
        };
        tx.send(HwCommand::Ev {
            evse: 2,
            ev: Some(ev),
        })
        .unwrap();
        hw.set_contactor(t0, 2, true);
        let r = hw.meter(t0 + Duration::from_secs(60), 2);
        assert_eq!(r.energy_wh, Decimal::from(60));
        assert_eq!(r.soc_percent, Some(Decimal::from(16)));
        assert_eq!(hw.meter(t0, 1).energy_wh, Decimal::ZERO);
        tx.send(HwCommand::Fill { evse: 2 }).unwrap();
        assert_eq!(
            hw.poll_event(t0 + Duration::from_secs(61)),
            Some(HardwareEvent::EvSuspended {
                evse: 2,
                suspended: true
            })
        );
        let r = hw.meter(t0 + Duration::from_secs(120), 2);
        assert_eq!(r.energy_wh, Decimal::from(61));
        assert_eq!(r.power_w, Decimal::ZERO);
        // A new EV: drawing again, register continued.
        tx.send(HwCommand::Ev { evse: 2, ev: None }).unwrap();
        assert_eq!(
            hw.poll_event(t0 + Duration::from_secs(120)),
            Some(HardwareEvent::EvSuspended {
                evse: 2,
                suspended: false
            })
        );
        let r = hw.meter(t0 + Duration::from_secs(180), 2);
        assert_eq!(r.energy_wh, Decimal::from(121));
        assert_eq!(hw.meter(t0, 7), MeterReading::default());
    }

    #[test]
    fn the_ev_draws_no_more_than_the_limit_also_after_a_new_ev() {
        let t0 = Instant::now();
        let (mut hw, tx) = FleetHardware::new(1, 11_000);
        hw.set_contactor(t0, 1, true);
        assert_eq!(hw.meter(t0, 1).power_w, Decimal::from(11_000));
        let limit = ChargingLimit {
            power_w: Decimal::from(4_000),
            current_a: Decimal::new(58, 1),
            phases: 3,
            setpoint_w: None,
            discharge_limit_w: None,
        };
        hw.set_charging_limit(t0, 1, Some(limit));
        assert_eq!(hw.meter(t0, 1).power_w, Decimal::from(4_000));
        tx.send(HwCommand::Ev { evse: 1, ev: None }).unwrap();
        assert_eq!(hw.meter(t0, 1).power_w, Decimal::from(4_000));
        hw.set_charging_limit(
            t0,
            0,
            Some(ChargingLimit {
                power_w: Decimal::from(3_000),
                ..limit
            }),
        );
        assert_eq!(hw.meter(t0, 1).power_w, Decimal::from(3_000));
        hw.set_charging_limit(t0, 0, None);
        hw.set_charging_limit(t0, 1, None);
        assert_eq!(hw.meter(t0, 1).power_w, Decimal::from(11_000));
    }
}
