//! Calls from the central system: every action of every version gets a working behaviour or
//! the specified refusal, never silence.
//!
//! - An action the version does not define: CALLERROR `NotImplemented` ("requested action is
//!   not known by receiver", OCPP-J §4.2.3 error codes).
//! - An action the version defines but only the charging station sends (e.g. a central system
//!   sending `BootNotification`): CALLERROR `NotSupported`.
//! - A payload its schema refuses: the CALLERROR of the first violation, spelled for the version
//!   (`ocpp_codec::Reply::for_violations`).
//! - An implemented action: its behaviour (see the crate README for the list).
//! - Any other action: the refusal its own response defines, found by trying the refusal
//!   statuses (`NotSupported`, `NotImplemented`, `Rejected`, `Unknown`, ...) against the
//!   response schema; when the response has no status (1.6 `UpdateFirmware`,
//!   `GetDiagnostics`, 2.x `CostUpdated`, ...), CALLERROR `NotSupported` ("recognized but not
//!   supported").
//! - Numbers from the wire: integers are 32-bit (typed decoding refuses more with
//!   `TypeConstraintViolation`); an id that is negative or beyond the station's EVSEs
//!   ([`wire_id`]) is refused with the action's own `Rejected` / `UnknownConnector` /
//!   `NotSupported`; lists longer than the station's advertised maximum get CALLERROR
//!   `OccurrenceConstraintViolation` (1.6 `OccurenceConstraintViolation`), see
//!   `GetConfiguration`, `GetVariables` and `SetVariables` below.

use std::time::Instant;

use ocpp_codec::typed::{Side, TypedCodec};
use ocpp_codec::{ErrorCode, Version};
use ocpp_types::{Initiator, MessageKind};
use serde_json::{json, Value};

use crate::hardware::ResetKind;
use crate::settings::{Access, Kind, SetError, SUPPORTED_MEASURANDS};
use crate::station::{int, text, Answer, Pending, Station, StationEvent, Stop};

/// Statuses tried, in order, as the refusal of an action this station does not implement.
const REFUSALS: &[&str] = &[
    "NotSupported",
    "NotImplemented",
    "Rejected",
    "Unknown",
    "NoProfiles",
    "NotFound",
    "NoFirmware",
    "Failed",
];

/// An EVSE / connector id from the wire as `u32`: a negative id (the schemas set no minimum)
/// becomes `u32::MAX`, an id no station has, so it is refused like any unknown id instead of
/// wrapping around (`-5 as u32`) or turning into "no id".
pub fn wire_id(id: i64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX)
}

/// Who initiates `action` in `version`, or `None` when the version has no such action.
pub fn initiator(version: Version, action: &str) -> Option<Initiator> {
    let _ = action; // unused when no version feature is enabled
    match version {
        #[cfg(feature = "v16")]
        Version::V16 => action
            .parse::<ocpp_types::v16::Action>()
            .ok()
            .map(|a| a.initiator()),
        #[cfg(feature = "v201")]
        Version::V201 => action
            .parse::<ocpp_types::v201::Action>()
            .ok()
            .map(|a| a.initiator()),
        #[cfg(feature = "v21")]
        Version::V21 => action
            .parse::<ocpp_types::v21::Action>()
            .ok()
            .map(|a| a.initiator()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The refusal answer of an unimplemented action: `{"status": X}` for the first status its
/// response schema accepts, or `None` (then CALLERROR NotSupported).
pub fn refusal(version: Version, action: &str) -> Option<Value> {
    REFUSALS.iter().find_map(|s| {
        let v = json!({ "status": s });
        ocpp_types::decode_payload(version, action, MessageKind::Response, &v.to_string())
            .ok()
            .map(|_| v)
    })
}

enum After {
    None,
    Boot,
    Heartbeat,
    Status(Option<u32>),
    Meter(Option<u32>),
    TxEvent(u32),
    Idle(&'static str),
    Grant {
        evse: Option<u32>,
        token: String,
        token_type: String,
        remote_start_id: Option<i32>,
    },
    Stop(u32),
    Reset(ResetKind),
    Report {
        request_id: i64,
        configuration_only: bool,
    },
}

impl Station {
    pub(crate) fn on_call(&mut self, now: Instant, id: &str, action: &str, payload: &str) {
        let version = self.cfg.version;
        if self.boot == crate::BootState::Rejected {
            // 2.x use case B03 / 1.6 BootNotification: nothing is sent while Rejected. The central system's
            // call times out on its side.
            self.events.push_back(StationEvent::CentralCall {
                action: action.to_owned(),
                answered: false,
            });
            return;
        }
        self.events.push_back(StationEvent::CentralCall {
            action: action.to_owned(),
            answered: true,
        });
        let answer = match initiator(version, action) {
            None => {
                self.respond_error(id, ErrorCode::NotImplemented, "unknown action");
                return;
            }
            Some(Initiator::ChargingStation) => {
                self.respond_error(
                    id,
                    ErrorCode::NotSupported,
                    "sent by charging stations only",
                );
                return;
            }
            Some(_) => {
                if ocpp_types::decode_payload(version, action, MessageKind::Request, payload)
                    .is_err()
                {
                    self.respond_invalid(id, action, payload);
                    return;
                }
                let v: Value = serde_json::from_str(payload).unwrap_or_default();
                self.dispatch(now, action, &v)
            }
        };
        let (answer, after) = answer;
        match answer {
            Answer::Ok(v) => {
                let text = v.to_string();
                if !self.check_outgoing(action, MessageKind::Response, &text) {
                    self.respond_error(id, ErrorCode::InternalError, "invalid response");
                    return;
                }
                if let Some(ep) = self.ep.as_mut() {
                    if let Ok(raw) = serde_json::value::RawValue::from_string(text) {
                        let _ = ep.respond(id, &raw);
                    }
                }
            }
            Answer::Err(code, why) => {
                self.respond_error(id, code, &why);
                return;
            }
        }
        self.follow_up(now, after);
    }

    fn respond_error(&mut self, id: &str, code: ErrorCode, why: &str) {
        if let Some(ep) = self.ep.as_mut() {
            let _ = ep.respond_error(id, &code, why, None);
        }
    }

    /// Answers a payload the typed decoding refused with the CALLERROR the typed codec names:
    /// the schema violation's code, or `TypeConstraintViolation` for an integer beyond 32 bits
    /// (e.g. a connectorId of 99999999999999999999, which the schema's `integer` accepts).
    fn respond_invalid(&mut self, id: &str, action: &str, payload: &str) {
        let version = self.cfg.version;
        let codec = TypedCodec::new(version)
            .side(Side::ChargingStation)
            .validate_outgoing(false);
        let reply = serde_json::value::RawValue::from_string(payload.to_owned())
            .ok()
            .and_then(|raw| codec.decode_call(id, action, &raw).err());
        let Some(ep) = self.ep.as_mut() else { return };
        match reply {
            Some(r) => {
                let details = serde_json::value::RawValue::from_string(r.details).ok();
                let _ = ep.respond_error(id, &r.code, &r.description, details.as_deref());
            }
            None => {
                let _ = ep.respond_error(
                    id,
                    &ErrorCode::FormatViolation,
                    "payload does not match its schema",
                    None,
                );
            }
        }
    }

    fn dispatch(&mut self, now: Instant, action: &str, v: &Value) -> (Answer, After) {
        let v16 = self.v16();
        let ok = |v: Value| (Answer::Ok(v), After::None);
        let status = |s: &str| json!({ "status": s });
        match action {
            "RemoteStartTransaction" => {
                let evse = int(v, "connectorId").map(wire_id);
                if evse == Some(0) || self.free_evse(evse).is_none() || !self.room_for_remote() {
                    return ok(status("Rejected"));
                }
                let token = text(v, "idTag").unwrap_or_default();
                (
                    Answer::Ok(status("Accepted")),
                    After::Grant {
                        evse,
                        token,
                        token_type: "ISO14443".into(),
                        remote_start_id: None,
                    },
                )
            }
            "RequestStartTransaction" => {
                let evse = int(v, "evseId").map(wire_id);
                if evse == Some(0) || self.free_evse(evse).is_none() || !self.room_for_remote() {
                    return ok(status("Rejected"));
                }
                let tok = v.get("idToken").cloned().unwrap_or_default();
                (
                    Answer::Ok(status("Accepted")),
                    After::Grant {
                        evse,
                        token: text(&tok, "idToken").unwrap_or_default(),
                        token_type: text(&tok, "type").unwrap_or_else(|| "Central".into()),
                        // A 32-bit integer (typed decoding), echoed in TransactionEvent.
                        remote_start_id: int(v, "remoteStartId")
                            .and_then(|r| i32::try_from(r).ok()),
                    },
                )
            }
            "RemoteStopTransaction" | "RequestStopTransaction" => {
                let id = match v.get("transactionId") {
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::String(s)) => s.clone(),
                    _ => String::new(),
                };
                match self.evse_of_tx(&id) {
                    Some(evse) => (Answer::Ok(status("Accepted")), After::Stop(evse)),
                    None => ok(status("Rejected")),
                }
            }
            "Reset" => {
                let kind = text(v, "type").unwrap_or_default();
                if !v16 && v.get("evseId").is_some() {
                    // Resetting a single EVSE is optional (2.x B11/B12); not supported.
                    return ok(status("Rejected"));
                }
                let busy = self.evses.iter().any(|e| e.tx.is_some());
                match kind.as_str() {
                    "Hard" => (
                        Answer::Ok(status("Accepted")),
                        After::Reset(ResetKind::Hard),
                    ),
                    "Soft" => (
                        Answer::Ok(status("Accepted")),
                        After::Reset(ResetKind::Soft),
                    ),
                    "OnIdle" if busy => {
                        self.reset_pending = Some(ResetKind::Soft);
                        ok(status("Scheduled"))
                    }
                    "OnIdle" => (
                        Answer::Ok(status("Accepted")),
                        After::Reset(ResetKind::Soft),
                    ),
                    _ => (
                        Answer::Ok(status("Accepted")),
                        After::Reset(ResetKind::Hard),
                    ),
                }
            }
            "ChangeAvailability" => {
                let (target, operative) = if v16 {
                    (
                        int(v, "connectorId").map_or(0, wire_id),
                        text(v, "type").as_deref() == Some("Operative"),
                    )
                } else {
                    (
                        v.pointer("/evse/id")
                            .and_then(Value::as_i64)
                            .map_or(0, wire_id),
                        text(v, "operationalStatus").as_deref() == Some("Operative"),
                    )
                };
                ok(status(self.change_availability(target, operative)))
            }
            "UnlockConnector" => {
                let evse = int(v, if v16 { "connectorId" } else { "evseId" }).map_or(0, wire_id);
                let known = evse >= 1
                    && (evse as usize) <= self.evses.len()
                    && (v16 || int(v, "connectorId") == Some(1));
                if !known {
                    return ok(status(if v16 {
                        "NotSupported"
                    } else {
                        "UnknownConnector"
                    }));
                }
                let busy = self.evse_mut(evse).is_some_and(|e| e.tx.is_some());
                if !v16 && busy {
                    return ok(status("OngoingAuthorizedTransaction"));
                }
                if busy {
                    self.stop_tx(now, evse, Stop::UNLOCK, None);
                }
                let unlocked = self.hw.unlock_connector(now, evse);
                ok(status(if unlocked { "Unlocked" } else { "UnlockFailed" }))
            }
            "TriggerMessage" | "ExtendedTriggerMessage" => self.trigger(v),
            "ClearCache" => {
                self.clear_cache();
                ok(status("Accepted"))
            }
            "DataTransfer" => {
                let vendor = text(v, "vendorId").unwrap_or_default();
                let message = text(v, "messageId");
                let reply = match self.data_transfer.as_mut() {
                    Some(h) => h(&vendor, message.as_deref(), v.get("data")),
                    None => crate::DataTransferReply {
                        status: "UnknownVendorId".into(),
                        data: None,
                    },
                };
                let mut out = json!({ "status": reply.status });
                if let Some(d) = reply.data {
                    out["data"] = if v16 {
                        Value::String(match d {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                    } else {
                        d
                    };
                }
                ok(out)
            }
            "GetLocalListVersion" => {
                // 1.6 GetLocalListVersion (-1: not supported) / 2.x D02 (0: no list).
                if v16 {
                    ok(json!({ "listVersion": -1 }))
                } else {
                    ok(json!({ "versionNumber": 0 }))
                }
            }
            "GetConfiguration" if v16 => (self.get_configuration(v), After::None),
            "ChangeConfiguration" if v16 => {
                let key = text(v, "key").unwrap_or_default();
                let value = text(v, "value").unwrap_or_default();
                let s = match self.settings.index("", &key, None) {
                    None => "NotSupported",
                    Some(i) => match self.settings.set_at(i, &value) {
                        Ok(reboot) => {
                            self.changed(now, key);
                            if reboot {
                                "RebootRequired"
                            } else {
                                "Accepted"
                            }
                        }
                        Err(_) => "Rejected",
                    },
                };
                ok(status(s))
            }
            "GetVariables" if !v16 => (self.get_variables(v), After::None),
            "SetVariables" if !v16 => (self.set_variables(now, v), After::None),
            "GetBaseReport" if !v16 => {
                let base = text(v, "reportBase").unwrap_or_default();
                let request_id = int(v, "requestId").unwrap_or(0);
                match base.as_str() {
                    "ConfigurationInventory" | "FullInventory"
                        if !self
                            .room_for(self.report_messages(base == "ConfigurationInventory")) =>
                    {
                        // Its NotifyReports would not fit in the queue (MAX_QUEUED_CALLS).
                        ok(status("Rejected"))
                    }
                    "ConfigurationInventory" | "FullInventory" => (
                        Answer::Ok(status("Accepted")),
                        After::Report {
                            request_id,
                            configuration_only: base == "ConfigurationInventory",
                        },
                    ),
                    _ => ok(status("NotSupported")),
                }
            }
            "GetTransactionStatus" if !v16 => {
                let mut out = json!({});
                match text(v, "transactionId") {
                    Some(id) => {
                        let ongoing = self.evse_of_tx(&id).is_some();
                        let local = self.local_of(&id);
                        out["ongoingIndicator"] = json!(ongoing);
                        out["messagesInQueue"] =
                            json!(local.is_some_and(|l| self.has_queued(Some(l))));
                    }
                    None => out["messagesInQueue"] = json!(self.has_queued(None)),
                }
                ok(out)
            }
            _ => match refusal(self.cfg.version, action) {
                Some(v) => ok(v),
                None => (
                    Answer::Err(
                        ErrorCode::NotSupported,
                        format!("{action} is not supported"),
                    ),
                    After::None,
                ),
            },
        }
    }

    fn change_availability(&mut self, target: u32, operative: bool) -> &'static str {
        if target as usize > self.evses.len() {
            return "Rejected";
        }
        let mut scheduled = false;
        if target == 0 {
            self.station_inoperative = !operative;
            for e in &mut self.evses {
                if e.tx.is_some() && !operative {
                    e.pending_inoperative = Some(true);
                    scheduled = true;
                } else {
                    e.inoperative = !operative;
                    e.pending_inoperative = None;
                }
            }
            if !operative && scheduled {
                // The station becomes unavailable once the transactions end.
                self.station_inoperative = false;
                for e in &mut self.evses {
                    if e.tx.is_none() {
                        e.inoperative = true;
                    }
                }
            }
        } else if let Some(e) = self.evse_mut(target) {
            if e.tx.is_some() && !operative {
                e.pending_inoperative = Some(true);
                scheduled = true;
            } else {
                e.inoperative = !operative;
                e.pending_inoperative = None;
            }
        }
        self.save_settings();
        if scheduled {
            "Scheduled"
        } else {
            "Accepted"
        }
    }

    fn trigger(&mut self, v: &Value) -> (Answer, After) {
        let v16 = self.v16();
        let requested = text(v, "requestedMessage").unwrap_or_default();
        let evse = if v16 {
            int(v, "connectorId").map(wire_id)
        } else {
            v.pointer("/evse/id").and_then(Value::as_i64).map(wire_id)
        };
        let status = |s: &str| Answer::Ok(json!({ "status": s }));
        if evse.is_some_and(|e| e as usize > self.evses.len() || (!v16 && e == 0)) {
            return (status("Rejected"), After::None);
        }
        let after = match requested.as_str() {
            // 2.x use case F06: a BootNotification that was already accepted is not triggered.
            "BootNotification" if !v16 && self.boot == crate::BootState::Accepted => {
                return (status("Rejected"), After::None)
            }
            "BootNotification" => After::Boot,
            "Heartbeat" => After::Heartbeat,
            "StatusNotification" => After::Status(evse.filter(|e| *e > 0 || v16)),
            "MeterValues" => After::Meter(evse.filter(|e| *e > 0)),
            "TransactionEvent" if !v16 => {
                let with_tx = self
                    .evses
                    .iter()
                    .filter(|e| evse.is_none_or(|id| id == e.id))
                    .find(|e| e.tx.is_some())
                    .map(|e| e.id);
                match with_tx {
                    Some(id) => After::TxEvent(id),
                    None => return (status("Rejected"), After::None),
                }
            }
            "DiagnosticsStatusNotification" => After::Idle("DiagnosticsStatusNotification"),
            "FirmwareStatusNotification" => After::Idle("FirmwareStatusNotification"),
            "LogStatusNotification" => After::Idle("LogStatusNotification"),
            _ => return (status("NotImplemented"), After::None),
        };
        // What the trigger would queue must fit (MAX_QUEUED_CALLS); a Heartbeat or
        // BootNotification already waiting for its answer answers the trigger too.
        let fits = match &after {
            After::Boot => true,
            After::Heartbeat => {
                self.is_pending(|p| matches!(p, Pending::Heartbeat)) || self.room_for(1)
            }
            After::Status(Some(_)) | After::Meter(Some(_)) | After::Idle(_) => self.room_for(1),
            After::Status(None) => self.room_for(self.evses.len() + usize::from(v16)),
            After::Meter(None) => self.room_for(self.evses.len()),
            // Goes to the durable outbox: bounded by the same number of waiting messages.
            After::TxEvent(_) => self.outbox_len() < crate::station::MAX_QUEUED_CALLS,
            _ => true,
        };
        if !fits {
            return (status("Rejected"), After::None);
        }
        (status("Accepted"), after)
    }

    /// Whether a remote start can be taken: when it is to be authorized first
    /// (`AuthorizeRemoteTxRequests` / `AuthorizeRemoteStart`), its Authorize must fit in the
    /// queue ([`MAX_QUEUED_CALLS`](crate::station::MAX_QUEUED_CALLS)).
    fn room_for_remote(&self) -> bool {
        !self.settings.flag(crate::Setting::AuthorizeRemoteStart) || self.room_for(1)
    }

    /// The value of a read-only integer limit (`GetConfigurationMaxKeys`,
    /// `DeviceDataCtrlr.ItemsPerMessage[...]`), or `fallback`.
    fn limit(&self, component: &str, name: &str, instance: Option<&str>, fallback: usize) -> usize {
        self.settings
            .index(component, name, instance)
            .and_then(|i| self.settings.value_at(i).trim().parse::<usize>().ok())
            .unwrap_or(fallback)
    }

    fn follow_up(&mut self, now: Instant, after: After) {
        match after {
            After::None => {}
            After::Boot => self.send_boot(now),
            After::Heartbeat => self.heartbeat(now),
            After::Status(evse) => self.send_status_now(now, evse),
            After::Meter(evse) => {
                let measurands = self.settings.measurands(crate::Setting::SampledMeasurands);
                let ids: Vec<u32> = match evse {
                    Some(e) => vec![e],
                    None => self.evses.iter().map(|e| e.id).collect(),
                };
                for id in ids {
                    let reading = self.hw.meter(now, id);
                    self.plain_meter_values(now, id, &reading, &measurands, "Trigger");
                }
            }
            After::TxEvent(evse) => {
                let measurands = self.settings.measurands(crate::Setting::SampledMeasurands);
                let reading = self.hw.meter(now, evse);
                self.tx_meter_message(now, evse, &reading, &measurands, "Trigger");
            }
            After::Idle(action) => {
                let p = json!({ "status": "Idle" });
                self.call(now, action, &p, Pending::Plain);
            }
            After::Grant {
                evse,
                token,
                token_type,
                remote_start_id,
            } => self.present(now, evse, token, token_type, remote_start_id, true),
            After::Stop(evse) => self.stop_tx(now, evse, Stop::REMOTE, None),
            After::Reset(kind) => self.do_reboot(now, kind),
            After::Report {
                request_id,
                configuration_only,
            } => self.notify_report(now, request_id, configuration_only),
        }
    }

    fn changed(&mut self, now: Instant, key: String) {
        self.save_settings();
        self.reschedule(now);
        self.events
            .push_back(StationEvent::ConfigurationChanged { key });
    }

    // ----- 1.6 configuration -----

    /// GetConfiguration.req. OCPP 1.6 §5.8: "The number of configuration keys requested in a
    /// single PDU MAY be limited by the Charge Point. This maximum can be retrieved by reading
    /// the configuration key GetConfigurationMaxKeys" (§9.1: "Maximum number of requested
    /// configuration keys in a GetConfiguration.req PDU"). A request with more keys breaks that
    /// occurrence limit of its `key` list, so it is answered with CALLERROR
    /// `OccurenceConstraintViolation` (OCPP-J 1.6 §4.2.3: "at least one of the fields violates
    /// occurence constraints") rather than with a silently shortened answer that would leave
    /// keys neither known nor unknown.
    fn get_configuration(&self, v: &Value) -> Answer {
        let max = self.limit("", "GetConfigurationMaxKeys", None, 50);
        let requested = v.get("key").and_then(Value::as_array).map_or(0, Vec::len);
        if requested > max {
            return Answer::Err(
                ErrorCode::OccurrenceConstraintViolation,
                format!("{requested} keys requested; GetConfigurationMaxKeys is {max}"),
            );
        }
        let defs = self.settings.definitions();
        let entry = |i: usize| {
            json!({
                "key": defs[i].name,
                "readonly": defs[i].access == Access::ReadOnly,
                "value": self.settings.value_at(i),
            })
        };
        let keys: Vec<String> = v
            .get("key")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        if keys.is_empty() {
            known = (0..defs.len()).map(entry).collect();
        } else {
            for k in keys {
                match self.settings.index("", &k, None) {
                    Some(i) => known.push(entry(i)),
                    None => unknown.push(json!(k)),
                }
            }
        }
        let mut out = json!({});
        if !known.is_empty() {
            out["configurationKey"] = Value::Array(known);
        }
        if !unknown.is_empty() {
            out["unknownKey"] = Value::Array(unknown);
        }
        Answer::Ok(out)
    }

    // ----- 2.x device model -----

    /// Finds a variable: `Ok(Some(i))` a table entry, `Ok(None)` a computed EVSE/Connector
    /// variable (value given), `Err(status)` unknown.
    fn find_variable(&self, item: &Value) -> Result<VarRef, &'static str> {
        let comp = item.get("component").cloned().unwrap_or_default();
        let var = item.get("variable").cloned().unwrap_or_default();
        let cname = text(&comp, "name").unwrap_or_default();
        let cinst = text(&comp, "instance");
        let evse = comp.pointer("/evse/id").and_then(Value::as_i64);
        let vname = text(&var, "name").unwrap_or_default();
        let vinst = text(&var, "instance");
        if matches!(cname.as_str(), "EVSE" | "Connector") {
            let Some(id) = evse.filter(|e| *e >= 1 && *e as usize <= self.evses.len()) else {
                return Err("UnknownComponent");
            };
            if cname == "Connector"
                && comp
                    .pointer("/evse/connectorId")
                    .and_then(Value::as_i64)
                    .is_some_and(|c| c != 1)
            {
                return Err("UnknownComponent");
            }
            return match vname.as_str() {
                "AvailabilityState" if vinst.is_none() => Ok(VarRef::Computed(
                    self.status(id as u32).unwrap_or("Unavailable").into(),
                )),
                "Available" if vinst.is_none() => Ok(VarRef::Computed("true".into())),
                _ => Err("UnknownVariable"),
            };
        }
        if evse.is_some() || cinst.is_some() {
            return Err("UnknownComponent");
        }
        let defs = self.settings.definitions();
        if !defs.iter().any(|d| d.component == cname) {
            return Err("UnknownComponent");
        }
        match self.settings.index(&cname, &vname, vinst.as_deref()) {
            Some(i) => Ok(VarRef::Table(i)),
            None => Err("UnknownVariable"),
        }
    }

    /// GetVariablesRequest. OCPP 2.0.1 part 2 use case B06: the CSMS shall not send more
    /// GetVariableData elements than `ItemsPerMessageGetVariables`
    /// (`DeviceDataCtrlr.ItemsPerMessage[GetVariables]`); a request with more is answered with
    /// CALLERROR `OccurrenceConstraintViolation` (B06.FR.16). Nothing is read then.
    fn get_variables(&self, v: &Value) -> Answer {
        let empty = Vec::new();
        let items = v
            .get("getVariableData")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let max = self.limit(
            "DeviceDataCtrlr",
            "ItemsPerMessage",
            Some("GetVariables"),
            50,
        );
        if items.len() > max {
            return Answer::Err(
                ErrorCode::OccurrenceConstraintViolation,
                format!(
                    "{} items requested; ItemsPerMessageGetVariables is {max}",
                    items.len()
                ),
            );
        }
        let results: Vec<Value> = items
            .iter()
            .map(|item| {
                let attr = text(item, "attributeType").unwrap_or_else(|| "Actual".into());
                let mut r = json!({
                    "attributeType": attr,
                    "component": item.get("component").cloned().unwrap_or_default(),
                    "variable": item.get("variable").cloned().unwrap_or_default(),
                });
                let status = match self.find_variable(item) {
                    Err(s) => s,
                    Ok(_) if attr != "Actual" => "NotSupportedAttributeType",
                    Ok(VarRef::Computed(value)) => {
                        r["attributeValue"] = json!(value);
                        "Accepted"
                    }
                    Ok(VarRef::Table(i)) => {
                        r["attributeValue"] = json!(self.settings.value_at(i));
                        "Accepted"
                    }
                };
                r["attributeStatus"] = json!(status);
                r
            })
            .collect();
        Answer::Ok(json!({ "getVariableResult": results }))
    }

    /// SetVariablesRequest. OCPP 2.0.1 part 2 use case B05: the CSMS shall not send more
    /// SetVariableData elements than `ItemsPerMessageSetVariables`
    /// (`DeviceDataCtrlr.ItemsPerMessage[SetVariables]`); a request with more is answered, as
    /// its GetVariables counterpart (B06.FR.16), with CALLERROR
    /// `OccurrenceConstraintViolation`, and none of its values is applied.
    fn set_variables(&mut self, now: Instant, v: &Value) -> Answer {
        let items = v
            .get("setVariableData")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let max = self.limit(
            "DeviceDataCtrlr",
            "ItemsPerMessage",
            Some("SetVariables"),
            50,
        );
        if items.len() > max {
            return Answer::Err(
                ErrorCode::OccurrenceConstraintViolation,
                format!(
                    "{} items sent; ItemsPerMessageSetVariables is {max}",
                    items.len()
                ),
            );
        }
        let mut changed = Vec::new();
        let results: Vec<Value> = items
            .iter()
            .map(|item| {
                let attr = text(item, "attributeType").unwrap_or_else(|| "Actual".into());
                let value = text(item, "attributeValue").unwrap_or_default();
                let status = match self.find_variable(item) {
                    Err(s) => s,
                    Ok(_) if attr != "Actual" => "NotSupportedAttributeType",
                    Ok(VarRef::Computed(_)) => "Rejected",
                    Ok(VarRef::Table(i)) => match self.settings.set_at(i, &value) {
                        Ok(reboot) => {
                            let d = self.settings.definitions()[i];
                            changed.push(match d.instance {
                                Some(inst) => format!("{}.{}[{}]", d.component, d.name, inst),
                                None => format!("{}.{}", d.component, d.name),
                            });
                            if reboot {
                                "RebootRequired"
                            } else {
                                "Accepted"
                            }
                        }
                        Err(SetError::ReadOnly | SetError::Invalid | SetError::Unknown) => {
                            "Rejected"
                        }
                    },
                };
                json!({
                    "attributeType": attr,
                    "attributeStatus": status,
                    "component": item.get("component").cloned().unwrap_or_default(),
                    "variable": item.get("variable").cloned().unwrap_or_default(),
                })
            })
            .collect();
        for key in changed {
            self.changed(now, key);
        }
        Answer::Ok(json!({ "setVariableResult": results }))
    }

    /// The report data of every variable (only read-write ones for ConfigurationInventory).
    fn report_data(&self, configuration_only: bool) -> Vec<Value> {
        let defs = self.settings.definitions();
        let mut out = Vec::new();
        for (i, d) in defs.iter().enumerate() {
            if configuration_only && d.access != Access::ReadWrite {
                continue;
            }
            let mut variable = json!({ "name": d.name });
            if let Some(inst) = d.instance {
                variable["instance"] = json!(inst);
            }
            let (data_type, values_list) = match d.kind {
                Kind::Integer => ("integer", None),
                Kind::Boolean => ("boolean", None),
                Kind::Text => ("string", None),
                Kind::Measurands => ("MemberList", Some(SUPPORTED_MEASURANDS.join(","))),
            };
            let mut characteristics = json!({ "dataType": data_type, "supportsMonitoring": false });
            if let Some(l) = values_list {
                characteristics["valuesList"] = json!(l);
            }
            out.push(json!({
                "component": { "name": d.component },
                "variable": variable,
                "variableAttribute": [{
                    "type": "Actual",
                    "value": self.settings.value_at(i),
                    "mutability": if d.access == Access::ReadOnly { "ReadOnly" } else { "ReadWrite" },
                    "persistent": true,
                    "constant": d.access == Access::ReadOnly,
                }],
                "variableCharacteristics": characteristics,
            }));
        }
        if !configuration_only {
            for e in &self.evses {
                for (comp, evse) in [
                    ("EVSE", json!({ "id": e.id })),
                    ("Connector", json!({ "id": e.id, "connectorId": 1 })),
                ] {
                    out.push(json!({
                        "component": { "name": comp, "evse": evse },
                        "variable": { "name": "AvailabilityState" },
                        "variableAttribute": [{
                            "type": "Actual",
                            "value": self.status_of(e),
                            "mutability": "ReadOnly",
                            "persistent": false,
                            "constant": false,
                        }],
                        "variableCharacteristics": {
                            "dataType": "OptionList",
                            "supportsMonitoring": false,
                            "valuesList": "Available,Occupied,Reserved,Unavailable,Faulted",
                        },
                    }));
                }
            }
        }
        out
    }

    /// NotifyReport messages for GetBaseReport, `ItemsPerMessage[GetReport]` items each,
    /// `tbc` on all but the last (2.x B07).
    /// How many NotifyReport messages a base report takes.
    fn report_messages(&self, configuration_only: bool) -> usize {
        let per = self.report_items_per_message();
        self.report_data(configuration_only).len().div_ceil(per)
    }

    fn report_items_per_message(&self) -> usize {
        self.limit("DeviceDataCtrlr", "ItemsPerMessage", Some("GetReport"), 20)
            .max(1)
    }

    fn notify_report(&mut self, now: Instant, request_id: i64, configuration_only: bool) {
        let data = self.report_data(configuration_only);
        let per = self.report_items_per_message();
        let chunks: Vec<&[Value]> = data.chunks(per).collect();
        let n = chunks.len();
        for (seq, chunk) in chunks.into_iter().enumerate() {
            let p = json!({
                "requestId": request_id,
                "generatedAt": self.wall(now),
                "tbc": seq + 1 < n,
                "seqNo": seq,
                "reportData": chunk,
            });
            self.call(now, "NotifyReport", &p, Pending::Plain);
        }
    }
}

enum VarRef {
    Table(usize),
    Computed(String),
}
