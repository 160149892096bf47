//! The step after every input: RPC events, the call queue, outgoing checks, the state document.

use super::*;

impl Station {
    // ----- internals: the step after every input -----

    pub(crate) fn v16(&self) -> bool {
        self.cfg.version == Version::V16
    }

    pub(crate) fn accepted(&self) -> bool {
        self.ep.is_some() && self.boot == BootState::Accepted
    }

    pub(crate) fn wall(&self, now: Instant) -> String {
        self.cfg
            .time
            .wall(now)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub(crate) fn evse_mut(&mut self, id: u32) -> Option<&mut Evse> {
        self.evses.get_mut((id as usize).wrapping_sub(1))
    }

    pub(crate) fn step(&mut self, now: Instant) {
        while let Some(ev) = self.hw.poll_event(now) {
            self.apply_hardware(now, ev);
        }
        self.process_rpc_events(now);
        if let Some(kind) = self.reset_pending {
            let busy = self.evses.iter().any(|e| e.tx.is_some());
            if !busy {
                self.reset_pending = None;
                self.do_reboot(now, kind);
            }
        }
        self.reservation_step(now);
        self.firmware_step(now);
        self.log_step(now);
        self.refresh_status();
        // Transaction messages first: a StatusNotification describing the new state follows
        // the Start/Stop message that caused it (as in the specifications' sequence diagrams).
        self.pump_outbox(now);
        self.flush_status(now);
        self.process_rpc_events(now);
        self.smart_step(now);
        self.monitoring_step(now);
        self.streams_step(now);
        #[cfg(feature = "v21")]
        self.tariff_step(now);
        self.display_step(now);
    }

    pub(crate) fn process_rpc_events(&mut self, now: Instant) {
        loop {
            let Some(ev) = self.ep.as_mut().and_then(Endpoint::poll_event) else {
                return;
            };
            match ev {
                RpcEvent::Call {
                    id,
                    action,
                    payload,
                } => self.on_call(now, &id, &action, &payload),
                RpcEvent::Result {
                    id,
                    action,
                    payload,
                } => {
                    // Typed decoding, as ocpp-codec names its errors. OCPP 2.1 part 2 FR.06:
                    // a CALLRESULT that cannot be processed is answered with a
                    // CALLRESULTERROR (1.6 and 2.0.1 have no answer to it).
                    let codec = TypedCodec::new(self.cfg.version)
                        .side(Side::ChargingStation)
                        .validate_outgoing(false);
                    let valid = match codec.decode_result(&id, &action, &payload) {
                        Ok(_) => true,
                        Err(reply) => {
                            if self.cfg.version == Version::V21 {
                                let details = RawValue::from_string(reply.details).ok();
                                if let Some(ep) = self.ep.as_mut() {
                                    let _ = ep.result_error(
                                        &id,
                                        &reply.code,
                                        &reply.description,
                                        details.as_deref(),
                                    );
                                }
                            }
                            false
                        }
                    };
                    if let (true, Some(Pending::Outbox(seq))) = (valid, self.pending.get(&id)) {
                        // The cost in a TransactionEvent answer, read exactly ([`cost`]).
                        let seq = *seq;
                        self.transaction_event_answered(seq, payload.get());
                    }
                    if let Some(p) = self.pending.remove(&id) {
                        if valid {
                            let value: Value =
                                serde_json::from_str(payload.get()).unwrap_or_default();
                            self.on_result(now, p, &value);
                        } else {
                            self.on_failure(now, p, "invalid response");
                        }
                    }
                }
                RpcEvent::Error { id, code, .. } => {
                    if let Some(p) = self.pending.remove(&id) {
                        let code = code.as_str(self.cfg.version).to_owned();
                        self.on_failure(now, p, &code);
                    }
                }
                RpcEvent::Timeout { id, .. } => {
                    if let Some(p) = self.pending.remove(&id) {
                        self.on_failure(now, p, "Timeout");
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether `n` more calls fit in the queue ([`MAX_QUEUED_CALLS`]); `false` when not
    /// connected.
    pub(crate) fn room_for(&self, n: usize) -> bool {
        self.ep
            .as_ref()
            .is_some_and(|ep| ep.queued_calls().saturating_add(n) <= MAX_QUEUED_CALLS)
    }

    /// Whether a call of this kind waits for its answer (in flight or queued).
    pub(crate) fn is_pending(&self, f: impl Fn(&Pending) -> bool) -> bool {
        self.pending.values().any(f)
    }

    /// Queues a Heartbeat unless one is already waiting for its answer (a heartbeat timer or
    /// a TriggerMessage never piles up heartbeats behind a silent central system).
    pub(crate) fn heartbeat(&mut self, now: Instant) {
        if !self.is_pending(|p| matches!(p, Pending::Heartbeat)) {
            self.call(now, "Heartbeat", &json!({}), Pending::Heartbeat);
        }
    }

    /// Queues a CALL; `false` when not connected, or when the queue already holds
    /// [`MAX_QUEUED_CALLS`] (BootNotification excepted: at most one is ever pending).
    pub(crate) fn call(&mut self, now: Instant, action: &str, payload: &Value, p: Pending) -> bool {
        if !matches!(p, Pending::Boot) && !self.room_for(1) {
            return false;
        }
        let text = payload.to_string();
        self.check_outgoing(action, ocpp_types::MessageKind::Request, &text);
        let Some(ep) = self.ep.as_mut() else {
            return false;
        };
        let Ok(raw) = serde_json::value::RawValue::from_string(text) else {
            return false;
        };
        match ep.call(now, action, raw) {
            Ok(id) => {
                self.pending.insert(id, p);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn check_outgoing(
        &mut self,
        action: &str,
        kind: ocpp_types::MessageKind,
        text: &str,
    ) -> bool {
        if !self.cfg.validate_outgoing {
            return true;
        }
        // The typed codec, as for incoming messages, names what is wrong.
        let codec = TypedCodec::new(self.cfg.version).validate_outgoing(false);
        let checked = match RawValue::from_string(text.to_owned()) {
            Ok(raw) if kind == ocpp_types::MessageKind::Response => {
                codec.decode_result("outgoing", action, &raw).map(|_| ())
            }
            #[cfg(feature = "v21")]
            Ok(raw) if kind == ocpp_types::MessageKind::Send => {
                codec.decode_send("outgoing", action, &raw).map(|_| ())
            }
            Ok(raw) => codec.decode_call("outgoing", action, &raw).map(|_| ()),
            Err(e) => {
                self.events.push_back(StationEvent::InvalidOutgoing {
                    action: action.to_owned(),
                    error: format!("not JSON: {e}"),
                });
                return false;
            }
        };
        match checked {
            Ok(()) => true,
            Err(e) => {
                let e = format!("{} {}", e.code.as_str(self.cfg.version), e.description);
                self.events.push_back(StationEvent::InvalidOutgoing {
                    action: action.to_owned(),
                    error: format!("{e}: {text}"),
                });
                false
            }
        }
    }

    /// The state document changed: the next [`Station::poll_persist`] hands out a rewrite.
    pub(crate) fn save(&mut self) {
        self.state_dirty = true;
    }

    /// The state document as it is now.
    pub(crate) fn state_document(&self) -> String {
        let p = StateDoc {
            next_seq: self.outbox.next_seq,
            next_local_tx: self.next_local_tx,
            tx_ids: self.tx_ids.clone(),
            txs: self.evses.iter().filter_map(|e| e.tx.clone()).collect(),
            inoperative: std::iter::once(0)
                .filter(|_| self.station_inoperative)
                .chain(self.evses.iter().filter(|e| e.inoperative).map(|e| e.id))
                .collect(),
            settings: self.settings.changed().clone(),
            rng_mix: self.rng_mix,
            smart: self.smart.doc.clone(),
            reservations: self.reservations.clone(),
            local_list: self.local_list.clone(),
            firmware: self.firmware.clone(),
            logs: self.logs.clone(),
            monitoring: self.monitoring.doc.clone(),
            display: self.display.doc.clone(),
            der: self.der.clone(),
            #[cfg(feature = "v21")]
            tariffs: (*self.tariffs).clone(),
        };
        serde_json::to_string(&p).unwrap_or_default()
    }
}
