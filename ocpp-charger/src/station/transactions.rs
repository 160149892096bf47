//! Transactions: start, stop, reset.

use super::*;

impl Station {
    // ----- transactions -----

    pub(crate) fn try_start(&mut self, now: Instant, evse: u32, by_auth: bool) {
        let ok = self.evse_mut(evse).is_some_and(|e| {
            e.plugged && e.auth.is_some() && e.tx.is_none() && !e.faulted && !e.inoperative
        }) && !self.station_inoperative;
        if !ok {
            return;
        }
        let reading = self.hw.meter(now, evse);
        self.hw.set_contactor(now, evse, true);
        let local = self.next_local_tx;
        self.next_local_tx += 1;
        let Some(auth) = self.evse_mut(evse).and_then(|e| e.auth.clone()) else {
            return;
        };
        let interval = self.settings.duration(Setting::SampleInterval);
        let mut tx = TxState {
            evse,
            local,
            id: None,
            token: auth.token.clone(),
            token_type: auth.token_type.clone(),
            meter_start: reading.energy_wh.to_string(),
            seq_no: 0,
            remote_start_id: auth.remote_start_id,
            key_sent: false,
        };
        if let Some(id) = auth.reservation {
            self.use_reservation(id);
        }
        if self.v16() {
            let mut p = json!({
                "connectorId": evse,
                "idTag": auth.token,
                "meterStart": reading.energy_wh.floor().to_i64().unwrap_or(0),
                "timestamp": self.wall(now),
            });
            if let Some(id) = auth.reservation {
                p["reservationId"] = json!(id);
            }
            self.enqueue("StartTransaction", &p, Some(local));
            // StartTransaction carries no meter value: the signed begin reading (metering
            // law wants begin and end) follows as MeterValues with context
            // Transaction.Begin; the outbox fills in the transaction id once it is known.
            if self.settings.flag(Setting::SampledSignReadings) {
                let register = ["Energy.Active.Import.Register"];
                let mut mv = self.meter_value(now, &reading, &register, "Transaction.Begin");
                let sign = Signing {
                    evse,
                    context: "Transaction.Begin",
                    transaction_id: None,
                    id_token: Some(&auth.token),
                    key_sent: false,
                };
                self.sign_meter_value(now, &reading, &sign, &mut mv);
                let signed = mv["sampledValue"].as_array().is_some_and(|v| v.len() > 1);
                if signed {
                    let p = json!({ "connectorId": evse, "transactionId": 0, "meterValue": [mv] });
                    self.enqueue("MeterValues", &p, Some(local));
                }
            }
        } else {
            let id = self.rng.uuid();
            tx.id = Some(id.clone());
            let trigger = if auth.remote {
                "RemoteStart"
            } else if by_auth {
                "Authorized"
            } else {
                "CablePluggedIn"
            };
            let measurands = self.settings.measurands(Setting::TxEndedMeasurands);
            let mut mv = self.meter_value(now, &reading, &measurands, "Transaction.Begin");
            let sign = Signing {
                evse,
                context: "Transaction.Begin",
                transaction_id: Some(&id),
                id_token: Some(&auth.token),
                key_sent: false,
            };
            tx.key_sent = self.sign_meter_value(now, &reading, &sign, &mut mv);
            let mut info = json!({ "transactionId": id, "chargingState": "Charging" });
            if let Some(r) = auth.remote_start_id {
                info["remoteStartId"] = json!(r);
            }
            // 2.1: the tariff in force on the EVSE prices this transaction ([`tariffs`]).
            #[cfg(feature = "v21")]
            if self.cfg.version == Version::V21 {
                let wall = self.cfg.time.wall(now);
                if let Some(t) = self.tariff_in_force(evse, wall) {
                    info["tariffId"] = json!(t.tariff_id.as_str());
                }
            }
            let mut p = json!({
                "eventType": "Started",
                "timestamp": self.wall(now),
                "triggerReason": trigger,
                "seqNo": 0,
                "offline": !self.accepted(),
                "transactionInfo": info,
                "evse": { "id": evse, "connectorId": 1 },
                "idToken": { "idToken": auth.token, "type": auth.token_type },
                "meterValue": [mv],
            });
            if let Some(id) = auth.reservation {
                p["reservationId"] = json!(id);
            }
            tx.seq_no = 1;
            self.enqueue("TransactionEvent", &p, Some(local));
        }
        let transaction_id = tx.id.clone();
        if let Some(e) = self.evse_mut(evse) {
            e.tx = Some(tx);
            e.finishing = false;
            e.auth_deadline = None;
            e.next_sample = (!interval.is_zero()).then(|| deadline(now, interval));
        }
        self.save();
        self.events.push_back(StationEvent::TransactionStarted {
            evse,
            local_id: local,
            transaction_id,
        });
    }

    pub(crate) fn tx_id_of(&self, tx: &TxState) -> Option<String> {
        if self.v16() {
            self.tx_ids.get(&tx.local).map(i32::to_string)
        } else {
            tx.id.clone()
        }
    }

    /// Finds the EVSE whose transaction has this (central / 2.x) id.
    pub(crate) fn evse_of_tx(&self, id: &str) -> Option<u32> {
        self.evses
            .iter()
            .find(|e| {
                e.tx.as_ref()
                    .is_some_and(|t| self.tx_id_of(t).as_deref() == Some(id))
            })
            .map(|e| e.id)
    }

    /// Ends the transaction on `evse`.
    pub(crate) fn stop_tx(&mut self, now: Instant, evse: u32, why: Stop, token: Option<String>) {
        let Some(tx) = self.evse_mut(evse).and_then(|e| e.tx.take()) else {
            return;
        };
        let reading = self.hw.meter(now, evse);
        self.hw.set_contactor(now, evse, false);
        let measurands = self.settings.measurands(Setting::TxEndedMeasurands);
        let plugged = self.evse_mut(evse).is_some_and(|e| e.plugged);
        if self.v16() {
            let mut p = json!({
                "meterStop": reading.energy_wh.floor().to_i64().unwrap_or(0),
                "timestamp": self.wall(now),
                "transactionId": self.tx_ids.get(&tx.local).copied().unwrap_or(0),
                "reason": why.v16,
            });
            if let Some(t) = &token {
                p["idTag"] = json!(t);
            }
            let tx_id = self.tx_ids.get(&tx.local).map(i32::to_string);
            let sign = Signing {
                evse,
                context: "Transaction.End",
                transaction_id: tx_id.as_deref(),
                id_token: Some(&tx.token),
                key_sent: tx.key_sent,
            };
            if !measurands.is_empty() || self.settings.flag(Setting::SampledSignReadings) {
                let mut mv = self.meter_value(now, &reading, &measurands, "Transaction.End");
                self.sign_meter_value(now, &reading, &sign, &mut mv);
                p["transactionData"] = json!([mv]);
            }
            self.enqueue("StopTransaction", &p, Some(tx.local));
        } else {
            let mut measurands = measurands;
            if measurands.is_empty() {
                measurands.push("Energy.Active.Import.Register");
            }
            let mut mv = self.meter_value(now, &reading, &measurands, "Transaction.End");
            let sign = Signing {
                evse,
                context: "Transaction.End",
                transaction_id: tx.id.as_deref(),
                id_token: Some(&tx.token),
                key_sent: tx.key_sent,
            };
            self.sign_meter_value(now, &reading, &sign, &mut mv);
            let mut p = json!({
                "eventType": "Ended",
                "timestamp": self.wall(now),
                "triggerReason": why.trigger,
                "seqNo": tx.seq_no,
                "offline": !self.accepted(),
                "transactionInfo": {
                    "transactionId": tx.id,
                    "chargingState": if plugged { "EVConnected" } else { "Idle" },
                    "stoppedReason": why.stopped,
                },
                "evse": { "id": evse, "connectorId": 1 },
                "meterValue": [mv],
            });
            if let Some(t) = &token {
                p["idToken"] = json!({ "idToken": t, "type": tx.token_type });
            }
            // 2.1 with local cost: the cost the station computed (use case I05).
            #[cfg(feature = "v21")]
            if let Some(id) = tx.id.as_deref() {
                if let Some(details) = self.local_cost_details(now, evse, id) {
                    p["costDetails"] = details;
                }
            }
            self.enqueue("TransactionEvent", &p, Some(tx.local));
        }
        if let Some(e) = self.evse_mut(evse) {
            e.auth = None;
            e.auth_deadline = None;
            e.suspended = false;
            e.next_sample = None;
            e.finishing = plugged;
            if let Some(inop) = e.pending_inoperative.take() {
                e.inoperative = inop;
            }
        }
        self.save();
        self.events.push_back(StationEvent::TransactionEnded {
            evse,
            local_id: tx.local,
            reason: if self.v16() { why.v16 } else { why.stopped },
        });
    }

    // ----- reset -----

    pub(crate) fn do_reboot(&mut self, now: Instant, kind: ResetKind) {
        let why = if kind == ResetKind::Hard {
            Stop::HARD_RESET
        } else {
            Stop::SOFT_RESET
        };
        let busy: Vec<u32> = self
            .evses
            .iter()
            .filter(|e| e.tx.is_some())
            .map(|e| e.id)
            .collect();
        for evse in busy {
            self.stop_tx(now, evse, why, None);
        }
        // A reboot forgets every authorization that did not become a transaction: a remote
        // start still waiting for its cable, a token waiting for its Authorize answer, one
        // waiting for the boot answer. The connector comes back Available (1.6 §5.14 / 2.x B11,
        // B12: after a reset the station starts from scratch), and a cable plugged in later
        // starts nothing nobody asked for.
        for e in &mut self.evses {
            if e.tx.is_none() {
                e.auth = None;
                e.auth_deadline = None;
                e.finishing = false;
            }
        }
        self.deferred.clear();
        for p in self.pending.values_mut() {
            if matches!(p, Pending::Authorize { .. }) {
                *p = Pending::Plain;
            }
        }
        self.hw.reboot(kind);
        self.events.push_back(StationEvent::Rebooting(kind));
        let tech = if kind == ResetKind::Hard {
            "hard reset"
        } else {
            "soft reset"
        };
        self.raise_security_event(now, SecurityEvent::ResetOrReboot, Some(tech));
        self.boot = BootState::NotSent;
        self.boot_reason = "RemoteReset";
        self.next_heartbeat = None;
        self.clear_cache_if_volatile();
        if self.ep.is_some() {
            self.send_boot(now);
        }
    }

    pub(crate) fn clear_cache_if_volatile(&mut self) {}
}

/// Why a transaction stops, in each version's words.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stop {
    pub(crate) v16: &'static str,
    pub(crate) trigger: &'static str,
    pub(crate) stopped: &'static str,
}

impl Stop {
    pub(crate) const LOCAL: Stop = Stop {
        v16: "Local",
        trigger: "StopAuthorized",
        stopped: "Local",
    };
    pub(crate) const REMOTE: Stop = Stop {
        v16: "Remote",
        trigger: "RemoteStop",
        stopped: "Remote",
    };
    pub(crate) const EV_DISCONNECTED: Stop = Stop {
        v16: "EVDisconnected",
        trigger: "EVCommunicationLost",
        stopped: "EVDisconnected",
    };
    pub(crate) const DEAUTHORIZED: Stop = Stop {
        v16: "DeAuthorized",
        trigger: "Deauthorized",
        stopped: "DeAuthorized",
    };
    pub(crate) const HARD_RESET: Stop = Stop {
        v16: "HardReset",
        trigger: "ResetCommand",
        stopped: "ImmediateReset",
    };
    pub(crate) const SOFT_RESET: Stop = Stop {
        v16: "SoftReset",
        trigger: "ResetCommand",
        stopped: "ImmediateReset",
    };
    pub(crate) const UNLOCK: Stop = Stop {
        v16: "UnlockCommand",
        trigger: "UnlockCommand",
        stopped: "Other",
    };
    pub(crate) const FAULT: Stop = Stop {
        v16: "Other",
        trigger: "AbnormalCondition",
        stopped: "Other",
    };
}
