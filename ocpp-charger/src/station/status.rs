//! Connector status and physical inputs.

use super::*;

impl Station {
    // ----- status -----

    pub(crate) fn station_status(&self) -> &'static str {
        if self.station_inoperative {
            "Unavailable"
        } else {
            "Available"
        }
    }

    pub(crate) fn status_of(&self, e: &Evse) -> &'static str {
        let unavailable = e.inoperative || self.station_inoperative;
        if self.v16() {
            if e.faulted {
                "Faulted"
            } else if e.tx.is_some() {
                if e.plugged && !e.suspended {
                    "Charging"
                } else {
                    "SuspendedEV"
                }
            } else if unavailable {
                "Unavailable"
            } else if e.finishing && e.plugged {
                "Finishing"
            } else if e.plugged || e.auth.is_some() {
                "Preparing"
            } else if self.shows_reserved(e) {
                "Reserved"
            } else {
                "Available"
            }
        } else if e.faulted {
            "Faulted"
        } else if e.tx.is_some() || e.plugged {
            "Occupied"
        } else if unavailable {
            "Unavailable"
        } else if self.shows_reserved(e) {
            "Reserved"
        } else {
            "Available"
        }
    }

    pub(crate) fn refresh_status(&mut self) {
        for i in 0..self.evses.len() {
            let s = self.status_of(&self.evses[i]);
            if self.evses[i].seen != Some(s) {
                self.evses[i].seen = Some(s);
                self.events.push_back(StationEvent::StatusChanged {
                    evse: self.evses[i].id,
                    status: s,
                });
            }
        }
    }

    /// Sends the latest status of every connector whose reported status differs (while
    /// offline nothing is sent, so only the latest status per connector goes out later).
    pub(crate) fn flush_status(&mut self, now: Instant) {
        if !self.accepted() {
            return;
        }
        let station = self.station_status();
        // A status that finds the queue full ([`MAX_QUEUED_CALLS`]) stays unreported and goes
        // out with a later step.
        if self.v16() && self.station_reported != Some(station) {
            let p = self.status_payload(now, 0, station);
            if self.call(now, "StatusNotification", &p, Pending::Plain) {
                self.station_reported = Some(station);
            }
        }
        for i in 0..self.evses.len() {
            let s = self.status_of(&self.evses[i]);
            if self.evses[i].reported != Some(s) {
                let p = self.status_payload(now, self.evses[i].id, s);
                if self.call(now, "StatusNotification", &p, Pending::Plain) {
                    self.evses[i].reported = Some(s);
                }
            }
        }
    }

    pub(crate) fn status_payload(&self, now: Instant, evse: u32, status: &str) -> Value {
        if self.v16() {
            json!({
                "connectorId": evse,
                "errorCode": if status == "Faulted" { "OtherError" } else { "NoError" },
                "status": status,
                "timestamp": self.wall(now),
            })
        } else {
            json!({
                "timestamp": self.wall(now),
                "connectorStatus": status,
                "evseId": evse,
                "connectorId": 1,
            })
        }
    }

    /// Re-sends the status of `evse` (all when `None`), for TriggerMessage.
    pub(crate) fn send_status_now(&mut self, now: Instant, evse: Option<u32>) {
        let ids: Vec<u32> = match evse {
            Some(id) => vec![id],
            None if self.v16() => (0..=self.evses.len() as u32).collect(),
            None => (1..=self.evses.len() as u32).collect(),
        };
        for id in ids {
            let Some(s) = self.status(id) else { continue };
            let p = self.status_payload(now, id, s);
            if self.call(now, "StatusNotification", &p, Pending::Plain) {
                if let Some(e) = self.evse_mut(id) {
                    e.reported = Some(s);
                }
            }
        }
    }

    // ----- hardware -----

    pub(crate) fn apply_hardware(&mut self, now: Instant, event: HardwareEvent) {
        match event {
            HardwareEvent::CablePlugged { evse } => {
                let Some(e) = self.evse_mut(evse) else { return };
                e.plugged = true;
                e.finishing = false;
                e.auth_deadline = None;
                self.try_start(now, evse, false);
            }
            HardwareEvent::CableUnplugged { evse } => {
                let stop = self.settings.flag(Setting::StopOnEvDisconnect);
                let Some(e) = self.evse_mut(evse) else { return };
                e.plugged = false;
                e.finishing = false;
                if e.tx.is_some() {
                    if stop {
                        self.stop_tx(now, evse, Stop::EV_DISCONNECTED, None);
                    } else {
                        self.hw.set_contactor(now, evse, false);
                    }
                }
            }
            HardwareEvent::IdTokenPresented { evse, id_token } => {
                self.present(now, evse, id_token, "ISO14443".into(), None, false)
            }
            HardwareEvent::EvSuspended { evse, suspended } => {
                let Some(e) = self.evse_mut(evse) else { return };
                if e.suspended == suspended {
                    return;
                }
                e.suspended = suspended;
                if e.tx.is_some() && !self.v16() {
                    let measurands = self.settings.measurands(Setting::SampledMeasurands);
                    let reading = self.hw.meter(now, evse);
                    self.tx_meter_message(now, evse, &reading, &measurands, "Other");
                }
            }
            HardwareEvent::Fault { evse, faulted } => {
                let Some(e) = self.evse_mut(evse) else { return };
                e.faulted = faulted;
                if faulted && e.tx.is_some() {
                    self.stop_tx(now, evse, Stop::FAULT, None);
                }
            }
        }
    }
}
