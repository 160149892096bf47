//! The hardware boundary: what the physical charging station does, and a simulated one.
//!
//! The [`Station`](crate::Station) calls a [`Hardware`] synchronously for its outputs
//! (contactor, connector lock, reboot) and for meter readings. Physical inputs (a cable plugged
//! in or pulled out, an RFID card presented) go the other way, as [`HardwareEvent`]s passed to
//! [`Station::handle_hardware`](crate::Station::handle_hardware) or returned by
//! [`Hardware::poll_event`].

use std::time::Instant;

use rust_decimal::Decimal;

use crate::smart_charging::ChargingLimit;

/// One meter reading of an EVSE. Energy is a register (it only grows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeterReading {
    /// Active energy imported, register, in Wh (`Energy.Active.Import.Register`).
    pub energy_wh: Decimal,
    /// Active power imported, in W (`Power.Active.Import`); negative while the EV
    /// discharges (2.1 V2X).
    pub power_w: Decimal,
    /// Active energy exported (V2X discharge), register, in Wh
    /// (`Energy.Active.Export.Register`).
    pub energy_export_wh: Decimal,
    /// Current imported, in A (`Current.Import`).
    pub current_a: Decimal,
    /// Voltage, in V (`Voltage`).
    pub voltage_v: Decimal,
    /// The EV's state of charge in percent (`SoC`), when known.
    pub soc_percent: Option<Decimal>,
}

/// What a signed reading is asked for ([`Hardware::sign_reading`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignRequest<'a> {
    /// EVSE / connector id, from 1.
    pub evse: u32,
    /// The reading context (`Transaction.Begin`, `Sample.Periodic`, `Sample.Clock`,
    /// `Transaction.End`, ...).
    pub context: &'a str,
    /// The transaction's id, when the reading belongs to one and the id is known (1.6: the
    /// central system's id, once StartTransaction was answered; 2.x: the station's id).
    pub transaction_id: Option<&'a str>,
    /// The token of the transaction, if any (OCMF `ID`).
    pub id_token: Option<&'a str>,
    /// The wall-clock time of the reading (the station's clock).
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

/// A meter's signed form of a reading (metering law, e.g. Germany's Eichrecht), as the meter
/// gives it. The station sends it verbatim: 1.6 as a sampled value of format `SignedData`,
/// 2.x as the energy register's `signedMeterValue` (data base64-encoded, as 2.x asks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReading {
    /// The signed data, e.g. an OCMF string `OCMF|{payload}|{signature}`.
    pub data: String,
    /// The encoding (2.x `encodingMethod`), e.g. `OCMF`.
    pub encoding: String,
    /// The signature algorithm (2.x `signingMethod`), e.g. `ECDSA-secp256r1-SHA256`.
    pub signing_method: Option<String>,
    /// The meter's public key (hex of the DER SubjectPublicKeyInfo, the OCMF convention; sent
    /// base64-encoded in 2.x as `PublicKeyWithSignedMeterValue` asks).
    pub public_key: Option<String>,
}

/// A function that signs readings, for [`SimulatedHardware::with_signer`].
pub type SignFn = dyn Fn(&SignRequest<'_>, &MeterReading) -> Option<SignedReading> + Send + Sync;

/// How a reboot is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetKind {
    /// 1.6 `Soft` / 2.x `OnIdle`: restart the software.
    Soft,
    /// 1.6 `Hard` / 2.x `Immediate`: restart the hardware.
    Hard,
}

/// A physical input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HardwareEvent {
    /// A cable was plugged into the connector of `evse` (1.6: connector id).
    CablePlugged {
        /// EVSE / connector id, from 1.
        evse: u32,
    },
    /// The cable was pulled out of the connector of `evse`.
    CableUnplugged {
        /// EVSE / connector id, from 1.
        evse: u32,
    },
    /// An ID token (RFID card, app token) was presented, at an EVSE or at the station.
    IdTokenPresented {
        /// Where, when the reader belongs to one EVSE.
        evse: Option<u32>,
        /// The token (1.6 idTag, at most 20 characters; 2.x idToken, at most 36).
        id_token: String,
    },
    /// The EV stopped drawing energy although the contactor is closed (battery full, EV
    /// paused: `suspended = true`), or resumed (`false`).
    EvSuspended {
        /// EVSE / connector id, from 1.
        evse: u32,
        /// Suspended by the EV, or drawing again.
        suspended: bool,
    },
    /// The EVSE reports a fault (`true`) or its recovery (`false`).
    Fault {
        /// EVSE / connector id, from 1.
        evse: u32,
        /// Faulted or recovered.
        faulted: bool,
    },
}

/// What the physical station does, as the station core sees it.
pub trait Hardware: Send {
    /// Reads the meter of `evse` at `now`.
    fn meter(&mut self, now: Instant, evse: u32) -> MeterReading;
    /// Closes (energy flows) or opens the contactor of `evse`.
    fn set_contactor(&mut self, now: Instant, evse: u32, closed: bool);
    /// Releases the connector lock of `evse`; `false` when it failed.
    fn unlock_connector(&mut self, now: Instant, evse: u32) -> bool;
    /// Reboots the station (after the core has queued its last messages).
    fn reboot(&mut self, kind: ResetKind);
    /// The next physical input the hardware has noticed, if it is polled rather than pushed
    /// (the station drains this on every input and timeout). Default: none.
    fn poll_event(&mut self, now: Instant) -> Option<HardwareEvent> {
        let _ = now;
        None
    }
    /// The charging limit of `evse` (0: the whole station) changed: the composite of the
    /// installed charging profiles at `now` ([`crate::smart_charging`]); `None`: no profile
    /// limits it. Called once for every EVSE at start and then on every change (a profile
    /// set or cleared, a transaction started or ended, a period boundary). Default: ignored.
    fn set_charging_limit(&mut self, now: Instant, evse: u32, limit: Option<ChargingLimit>) {
        let _ = (now, evse, limit);
    }
    /// The meter's signed form of `reading` (taken just before, at `now`), when the station's
    /// settings ask for signed readings (1.6 `SampledDataSignReadings` /
    /// `AlignedDataSignReadings`, 2.x `SampledDataCtrlr.SignReadings` /
    /// `AlignedDataCtrlr.SignReadings`). Default: the meter cannot sign (`None`: the reading
    /// goes unsigned).
    fn sign_reading(
        &mut self,
        now: Instant,
        request: &SignRequest<'_>,
        reading: &MeterReading,
    ) -> Option<SignedReading> {
        let _ = (now, request, reading);
        None
    }
}

/// A simulated EV on one EVSE: a battery that charges at a fixed power until full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatedEv {
    /// Battery capacity in Wh.
    pub capacity_wh: Decimal,
    /// Energy in the battery now, in Wh.
    pub stored_wh: Decimal,
}

#[derive(Debug, Clone)]
struct SimEvse {
    contactor: bool,
    energy_wh: Decimal,
    last: Option<Instant>,
    ev: Option<SimulatedEv>,
    unlock_ok: bool,
    full_reported: bool,
    limit: Option<ChargingLimit>,
    /// Energy discharged (V2X), register.
    exported_wh: Decimal,
}

/// A simulated station: per EVSE a meter whose energy grows with `power_w` over injected time
/// while the contactor is closed, and optionally an EV battery that stops drawing power when
/// full. Each EVSE draws no more than its charging limit ([`Hardware::set_charging_limit`]) nor
/// than the station's (EVSE 0); the simulator does not share the station's limit between its
/// EVSEs. Used by the tests and by `charger-sim`.
#[derive(Debug, Clone)]
pub struct SimulatedHardware {
    power_w: Decimal,
    voltage_v: Decimal,
    evses: Vec<SimEvse>,
    station_limit: Option<ChargingLimit>,
    reboots: Vec<ResetKind>,
    events: std::collections::VecDeque<HardwareEvent>,
    signer: Option<Signer>,
}

/// The signer of a [`SimulatedHardware`] (a shared function; `Debug` shows only that it is
/// there).
#[derive(Clone)]
struct Signer(std::sync::Arc<SignFn>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

impl SimulatedHardware {
    /// `evses` EVSEs drawing `power_w` watts each while charging (230 V single phase).
    pub fn new(evses: u32, power_w: Decimal) -> SimulatedHardware {
        SimulatedHardware {
            power_w,
            voltage_v: Decimal::from(230),
            evses: (0..evses)
                .map(|_| SimEvse {
                    contactor: false,
                    energy_wh: Decimal::ZERO,
                    last: None,
                    ev: None,
                    unlock_ok: true,
                    full_reported: false,
                    limit: None,
                    exported_wh: Decimal::ZERO,
                })
                .collect(),
            reboots: Vec::new(),
            events: std::collections::VecDeque::new(),
            station_limit: None,
            signer: None,
        }
    }

    /// Signs readings with `signer` ([`Hardware::sign_reading`]); without one the simulated
    /// meter cannot sign.
    pub fn with_signer(mut self, signer: std::sync::Arc<SignFn>) -> Self {
        self.signer = Some(Signer(signer));
        self
    }

    /// Starts the meter register of every EVSE at `wh`.
    pub fn with_register(mut self, wh: Decimal) -> Self {
        for e in &mut self.evses {
            e.energy_wh = wh;
        }
        self
    }

    /// Puts an EV with a battery on `evse` (from 1).
    pub fn with_ev(mut self, evse: u32, ev: SimulatedEv) -> Self {
        if let Some(e) = self.evses.get_mut(evse as usize - 1) {
            e.ev = Some(ev);
        }
        self
    }

    /// Makes unlocking `evse` fail (to test UnlockFailed).
    pub fn with_stuck_lock(mut self, evse: u32) -> Self {
        if let Some(e) = self.evses.get_mut(evse as usize - 1) {
            e.unlock_ok = false;
        }
        self
    }

    /// Whether the contactor of `evse` is closed.
    pub fn contactor(&self, evse: u32) -> bool {
        self.evses
            .get(evse as usize - 1)
            .is_some_and(|e| e.contactor)
    }

    /// The reboots requested so far.
    pub fn reboots(&self) -> &[ResetKind] {
        &self.reboots
    }

    fn power_of(&self, e: &SimEvse) -> Decimal {
        if !e.contactor {
            return Decimal::ZERO;
        }
        let limits = [e.limit, self.station_limit];
        let cap = limits
            .iter()
            .flatten()
            .fold(self.power_w, |p, l| p.min(l.power_w.max(Decimal::ZERO)));
        // (2.1 V2X) A setpoint is followed: up to the limits when positive; when negative
        // the EV discharges, down to the discharge limits (the one closest to zero) and the
        // inverter's rating (`power_w`).
        let setpoint = limits.iter().flatten().find_map(|l| l.setpoint_w);
        let Some(setpoint) = setpoint else {
            return match e.ev {
                Some(ev) if ev.stored_wh >= ev.capacity_wh => Decimal::ZERO,
                _ => cap,
            };
        };
        if setpoint >= Decimal::ZERO {
            return match e.ev {
                Some(ev) if ev.stored_wh >= ev.capacity_wh => Decimal::ZERO,
                _ => setpoint.min(cap),
            };
        }
        if e.ev.is_some_and(|ev| ev.stored_wh <= Decimal::ZERO) {
            return Decimal::ZERO;
        }
        limits
            .iter()
            .flatten()
            .filter_map(|l| l.discharge_limit_w)
            .fold(setpoint.max(-self.power_w), |p, d| {
                p.max(d.min(Decimal::ZERO))
            })
    }

    /// The charging limit `evse` (0: the station) was last given.
    pub fn charging_limit(&self, evse: u32) -> Option<ChargingLimit> {
        match evse {
            0 => self.station_limit,
            _ => self
                .evses
                .get((evse as usize).wrapping_sub(1))
                .and_then(|e| e.limit),
        }
    }

    fn advance(&mut self, now: Instant, evse: u32) {
        let Some(idx) = (evse as usize).checked_sub(1) else {
            return;
        };
        let Some(e) = self.evses.get(idx) else {
            return;
        };
        let power = self.power_of(e);
        let e = &mut self.evses[idx];
        if let Some(last) = e.last {
            if now > last {
                let ms = Decimal::from((now - last).as_millis() as u64);
                // Wh = W * ms / 3_600_000, kept to 3 decimals (mWh), checked.
                let mut added = power
                    .checked_mul(ms)
                    .and_then(|x| x.checked_div(Decimal::from(3_600_000u32)))
                    .unwrap_or_default()
                    .round_dp(3);
                if added < Decimal::ZERO {
                    // Discharging: the export register grows, the battery empties.
                    let mut out = -added;
                    if let Some(ev) = &mut e.ev {
                        out = out.min(ev.stored_wh.max(Decimal::ZERO));
                        ev.stored_wh = ev.stored_wh.checked_sub(out).unwrap_or_default();
                    }
                    e.exported_wh = e.exported_wh.checked_add(out).unwrap_or(e.exported_wh);
                } else {
                    if let Some(ev) = &mut e.ev {
                        let room = ev.capacity_wh - ev.stored_wh;
                        if added > room {
                            added = room.max(Decimal::ZERO);
                        }
                        ev.stored_wh += added;
                    }
                    e.energy_wh = e.energy_wh.checked_add(added).unwrap_or(e.energy_wh);
                }
            }
        }
        e.last = Some(now);
        let full = e.contactor && e.ev.is_some_and(|ev| ev.stored_wh >= ev.capacity_wh);
        if full != e.full_reported {
            e.full_reported = full;
            self.events.push_back(HardwareEvent::EvSuspended {
                evse,
                suspended: full,
            });
        }
    }
}

impl Hardware for SimulatedHardware {
    fn meter(&mut self, now: Instant, evse: u32) -> MeterReading {
        self.advance(now, evse);
        let Some(e) = self.evses.get(evse as usize - 1) else {
            return MeterReading::default();
        };
        let power = self.power_of(e);
        MeterReading {
            energy_wh: e.energy_wh,
            energy_export_wh: e.exported_wh,
            power_w: power,
            current_a: (power / self.voltage_v).round_dp(2),
            voltage_v: self.voltage_v,
            soc_percent: e.ev.map(|ev| {
                if ev.capacity_wh.is_zero() {
                    Decimal::ZERO
                } else {
                    (ev.stored_wh * Decimal::from(100) / ev.capacity_wh).round_dp(1)
                }
            }),
        }
    }

    fn set_contactor(&mut self, now: Instant, evse: u32, closed: bool) {
        self.advance(now, evse);
        if let Some(e) = self.evses.get_mut(evse as usize - 1) {
            e.contactor = closed;
        }
    }

    fn unlock_connector(&mut self, _now: Instant, evse: u32) -> bool {
        self.evses
            .get(evse as usize - 1)
            .is_some_and(|e| e.unlock_ok)
    }

    fn reboot(&mut self, kind: ResetKind) {
        self.reboots.push(kind);
    }

    fn sign_reading(
        &mut self,
        _now: Instant,
        request: &SignRequest<'_>,
        reading: &MeterReading,
    ) -> Option<SignedReading> {
        self.signer.as_ref().and_then(|s| (s.0)(request, reading))
    }

    fn poll_event(&mut self, _now: Instant) -> Option<HardwareEvent> {
        self.events.pop_front()
    }

    fn set_charging_limit(&mut self, now: Instant, evse: u32, limit: Option<ChargingLimit>) {
        // The energy drawn so far was drawn at the old limit.
        for id in 1..=self.evses.len() as u32 {
            if evse == 0 || id == evse {
                self.advance(now, id);
            }
        }
        if evse == 0 {
            self.station_limit = limit;
        } else if let Some(e) = self.evses.get_mut((evse as usize).wrapping_sub(1)) {
            e.limit = limit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn energy_grows_with_power_over_time() {
        let t0 = Instant::now();
        let mut hw = SimulatedHardware::new(1, Decimal::from(7400));
        hw.set_contactor(t0, 1, true);
        let r = hw.meter(t0 + Duration::from_secs(60), 1);
        assert_eq!(r.energy_wh.to_string(), "123.333");
        assert_eq!(r.power_w, Decimal::from(7400));
        hw.set_contactor(t0 + Duration::from_secs(60), 1, false);
        let r = hw.meter(t0 + Duration::from_secs(120), 1);
        assert_eq!(r.energy_wh.to_string(), "123.333");
    }

    #[test]
    fn the_limit_caps_the_power_from_when_it_is_given() {
        let t0 = Instant::now();
        let limit = |w: u32| {
            Some(ChargingLimit {
                power_w: Decimal::from(w),
                current_a: Decimal::ZERO,
                phases: 1,
                setpoint_w: None,
                discharge_limit_w: None,
            })
        };
        let mut hw = SimulatedHardware::new(2, Decimal::from(7400));
        hw.set_contactor(t0, 1, true);
        // Half an hour unlimited (3700 Wh), then half an hour at 2300 W (1150 Wh).
        hw.set_charging_limit(t0 + Duration::from_secs(1800), 1, limit(2300));
        let r = hw.meter(t0 + Duration::from_secs(3600), 1);
        assert_eq!(r.energy_wh, Decimal::from(4850));
        assert_eq!(r.power_w, Decimal::from(2300));
        // The station's limit applies to every EVSE, the lower one wins.
        hw.set_charging_limit(t0 + Duration::from_secs(3600), 0, limit(1000));
        assert_eq!(
            hw.meter(t0 + Duration::from_secs(3600), 1).power_w,
            Decimal::from(1000)
        );
        hw.set_charging_limit(t0 + Duration::from_secs(3600), 0, None);
        hw.set_charging_limit(t0 + Duration::from_secs(3600), 1, None);
        assert_eq!(
            hw.meter(t0 + Duration::from_secs(3600), 1).power_w,
            Decimal::from(7400)
        );
        assert_eq!(hw.charging_limit(1), None);
    }

    #[test]
    fn full_battery_draws_nothing() {
        let t0 = Instant::now();
        let ev = SimulatedEv {
            capacity_wh: Decimal::from(100),
            stored_wh: Decimal::from(90),
        };
        let mut hw = SimulatedHardware::new(1, Decimal::from(3600)).with_ev(1, ev);
        hw.set_contactor(t0, 1, true);
        let r = hw.meter(t0 + Duration::from_secs(60), 1);
        assert_eq!(r.energy_wh, Decimal::from(10));
        assert_eq!(r.power_w, Decimal::ZERO);
        assert_eq!(r.soc_percent, Some(Decimal::from(100)));
    }
}
