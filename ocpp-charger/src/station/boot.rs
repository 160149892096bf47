//! Boot and heartbeat, and the answers to the station's own calls.

use super::*;

impl Station {
    // ----- boot and heartbeat -----

    /// Sends a BootNotification, unless one is already waiting for its answer (then that
    /// answer decides).
    pub(crate) fn send_boot(&mut self, now: Instant) {
        if self.is_pending(|p| matches!(p, Pending::Boot)) {
            if self.boot != BootState::Accepted {
                self.boot = BootState::Waiting;
            }
            return;
        }
        let p = if self.v16() {
            let mut p = json!({
                "chargePointVendor": self.cfg.vendor,
                "chargePointModel": self.cfg.model,
            });
            if let Some(s) = &self.cfg.serial_number {
                p["chargePointSerialNumber"] = json!(s);
            }
            if let Some(s) = &self.cfg.firmware_version {
                p["firmwareVersion"] = json!(s);
            }
            p
        } else {
            let mut cs = json!({ "model": self.cfg.model, "vendorName": self.cfg.vendor });
            if let Some(s) = &self.cfg.serial_number {
                cs["serialNumber"] = json!(s);
            }
            if let Some(s) = &self.cfg.firmware_version {
                cs["firmwareVersion"] = json!(s);
            }
            json!({ "reason": self.boot_reason, "chargingStation": cs })
        };
        if self.call(now, "BootNotification", &p, Pending::Boot) && self.boot != BootState::Accepted
        {
            self.boot = BootState::Waiting;
        }
    }

    /// Arms the heartbeat timer at `HeartbeatInterval` (always within
    /// `1..=`[`MAX_INTERVAL_SECS`](crate::settings::MAX_INTERVAL_SECS), see
    /// [`Settings::duration`]: heartbeats cannot be turned off from the wire).
    pub(crate) fn schedule_heartbeat(&mut self, now: Instant) {
        let every = self.settings.duration(Setting::HeartbeatInterval);
        self.next_heartbeat = (!every.is_zero()).then(|| deadline(now, every));
    }

    /// The wait before the next BootNotification the station chooses itself:
    /// [`StationConfig::boot_retry`] within [`MIN_BOOT_RETRY`]`..=`[`MAX_BOOT_RETRY`].
    pub(crate) fn boot_retry(&self) -> Duration {
        self.cfg.boot_retry.clamp(MIN_BOOT_RETRY, MAX_BOOT_RETRY)
    }

    /// BootNotification.conf. `interval` (a 32-bit integer, checked by the typed decoding):
    ///
    /// - Accepted, `interval > 0`: the new HeartbeatInterval, clamped to at most
    ///   [`MAX_INTERVAL_SECS`](crate::settings::MAX_INTERVAL_SECS) (a day).
    /// - Accepted, `interval <= 0`: the current HeartbeatInterval stays (300 s unless changed).
    ///   OCPP 1.6 §4.2 says a central system that returns 0 leaves the interval to the charge
    ///   point; heartbeats are never turned off by it.
    /// - Pending/Rejected, `interval > 0`: retry after `interval` seconds ("the minimum wait
    ///   time before sending a next BootNotification request"), at most [`MAX_BOOT_RETRY`].
    /// - Pending/Rejected, `interval <= 0`: retry after the station's own choice
    ///   ([`Station::boot_retry`], at least [`MIN_BOOT_RETRY`]).
    pub(crate) fn on_boot_answer(&mut self, now: Instant, v: &Value) {
        let status = text(v, "status").unwrap_or_default();
        let interval = int(v, "interval").filter(|i| *i > 0);
        if let Some(t) = text(v, "currentTime").and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
            self.events.push_back(StationEvent::CentralTime(t));
        }
        if status == "Accepted" {
            self.boot = BootState::Accepted;
            self.boot_reason = "PowerUp";
            if let Some(secs) = interval {
                let secs = secs.min(i64::from(crate::settings::MAX_INTERVAL_SECS));
                self.settings
                    .set_internal(Setting::HeartbeatInterval, &secs.to_string());
                self.save();
            }
            self.schedule_heartbeat(now);
            for e in &mut self.evses {
                e.reported = None;
            }
            self.station_reported = None;
            self.events.push_back(StationEvent::BootAccepted {
                interval: self.settings.duration(Setting::HeartbeatInterval),
            });
            self.outbox.reset_attempts();
        } else {
            self.boot = if status == "Pending" {
                BootState::Pending
            } else {
                BootState::Rejected
            };
            let retry = match interval {
                Some(secs) => seconds(secs).min(MAX_BOOT_RETRY),
                None => self.boot_retry(),
            };
            self.boot_retry_at = Some(deadline(now, retry));
            self.events.push_back(StationEvent::BootNotAccepted {
                status,
                retry_in: retry,
            });
        }
    }

    pub(crate) fn on_result(&mut self, now: Instant, p: Pending, v: &Value) {
        match p {
            Pending::Boot => {
                self.on_boot_answer(now, v);
                self.run_deferred(now);
            }
            Pending::Heartbeat => {
                if let Some(t) = text(v, "currentTime").and_then(|t| t.parse().ok()) {
                    self.events.push_back(StationEvent::CentralTime(t));
                }
            }
            Pending::Authorize { evse, auth } => {
                let info = v.get(if self.v16() {
                    "idTagInfo"
                } else {
                    "idTokenInfo"
                });
                let info = info.cloned().unwrap_or_default();
                let accepted = self.update_cache(&auth.token, &info);
                self.events.push_back(StationEvent::Authorization {
                    id_token: auth.token.clone(),
                    accepted,
                });
                if accepted {
                    let mut auth = auth;
                    auth.group = self.group_of(&info);
                    self.grant(now, evse, auth);
                }
            }
            Pending::Outbox(seq) => self.on_outbox_confirmed(now, seq, v),
            Pending::DataTransfer => self.events.push_back(StationEvent::DataTransferResult {
                status: text(v, "status").unwrap_or_default(),
                data: v.get("data").cloned(),
            }),
            Pending::Plain => {}
            Pending::StreamOpen(id) => self.on_stream_open(now, id, Some(v)),
            Pending::Sign => crate::certificates::station::on_sign_answer(
                self,
                &text(v, "status").unwrap_or_default(),
            ),
        }
    }

    pub(crate) fn on_failure(&mut self, now: Instant, p: Pending, why: &str) {
        match p {
            Pending::Boot => {
                if self.boot != BootState::Accepted {
                    let retry = self.boot_retry();
                    self.boot = BootState::Pending;
                    self.boot_retry_at = Some(deadline(now, retry));
                    self.events.push_back(StationEvent::BootNotAccepted {
                        status: "Error".into(),
                        retry_in: retry,
                    });
                }
                self.run_deferred(now);
            }
            Pending::Authorize { evse, auth } => self.authorize_offline(now, evse, auth),
            Pending::Outbox(seq) => self.on_outbox_failed(now, seq),
            Pending::DataTransfer => self.events.push_back(StationEvent::DataTransferResult {
                status: why.to_owned(),
                data: None,
            }),
            Pending::Sign => crate::certificates::station::on_sign_answer(self, why),
            Pending::StreamOpen(id) => self.on_stream_open(now, id, None),
            Pending::Heartbeat | Pending::Plain => {}
        }
    }
}
