//! Calls from the central system: every action of every version gets a working behaviour or
//! the specified refusal, never silence.
//!
//! Each CALL is decoded by [`ocpp_codec::typed::TypedCodec`] (side
//! [`Side::ChargingStation`]), so what it refuses gets exactly the CALLERROR ocpp-codec names:
//!
//! - An action the version does not define: CALLERROR `NotImplemented` ("requested action is
//!   not known by receiver", OCPP-J §4.2.3 error codes).
//! - An action the version defines but only the charging station sends (e.g. a central system
//!   sending `BootNotification`): CALLERROR `NotSupported`.
//! - A payload its schema refuses: the CALLERROR of the first violation, spelled for the
//!   version, with its JSON pointer (`ocpp_codec::Reply::for_violations`); an integer beyond
//!   32 bits: `TypeConstraintViolation` with the pointer.
//!
//! A decoded call goes to the application's method ([`crate::app`]); the built-in behaviour
//! of each (the defaults) lives here:
//!
//! - An implemented action: its behaviour (see the crate README for the list).
//! - Any other action: the refusal its own response defines ([`crate::app::refusal`]); when
//!   the response has no status (1.6 `UpdateFirmware`, `GetDiagnostics`, 2.x `CostUpdated`,
//!   ...), CALLERROR `NotSupported` ("recognized but not supported").
//! - Numbers from the wire: integers are 32-bit (typed decoding refuses more with
//!   `TypeConstraintViolation`); an id that is negative or beyond the station's EVSEs
//!   ([`wire_id`]) is refused with the action's own `Rejected` / `UnknownConnector` /
//!   `NotSupported`; lists longer than the station's advertised maximum get CALLERROR
//!   `OccurrenceConstraintViolation` (1.6 `OccurenceConstraintViolation`), see
//!   `GetConfiguration`, `GetVariables` and `SetVariables` below.

use std::time::Instant;

use ocpp_codec::typed::{Side, TypedCodec};
use ocpp_codec::ErrorCode;
use ocpp_types::{v16, BoundedString};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::app::{
    self, AvailabilityStatus, CallError, ChangeAvailability, Context, IncomingDataTransfer,
    RemoteStart, RemoteStop, RequestStatus, Reset, ResetStatus, ResetType, TriggerMessage,
    TriggerStatus, UnlockConnector, UnlockStatus,
};
use crate::hardware::ResetKind;
use crate::settings::{Access, Kind, SetError, SUPPORTED_MEASURANDS};
use crate::station::{DataTransferReply, Pending, Station, StationEvent, Stop};

/// An EVSE / connector id from the wire as `u32`: a negative id (the schemas set no minimum)
/// becomes `u32::MAX`, an id no station has, so it is refused like any unknown id instead of
/// wrapping around (`-5 as u32`) or turning into "no id".
pub fn wire_id(id: impl Into<i64>) -> u32 {
    u32::try_from(id.into()).unwrap_or(u32::MAX)
}

/// What the station does after its answer went out.
pub(crate) enum After {
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
    /// The Basic-auth password changed: log it as a security event, reconnect with it.
    NewPassword,
    /// Smart charging: the reports of a GetChargingProfiles.
    Smart(crate::smart_charging::FollowUp),
    /// A new key pair and CSR, sent in SignCertificate ([`crate::certificates`]).
    Sign,
    /// The NotifyDisplayMessages of a GetDisplayMessages ([`crate::station::display`]).
    Display(crate::station::display::FollowUp),
    /// The report and clear of a CustomerInformation ([`crate::station::customer`]).
    Customer(crate::station::customer::FollowUp),
}

impl Station {
    pub(crate) fn on_call(&mut self, now: Instant, id: &str, action: &str, payload: &RawValue) {
        let version = self.cfg.version;
        if self.boot == crate::BootState::Rejected {
            // 2.x use case B03 / 1.6 BootNotification: nothing is sent while Rejected. The central system's
            // call times out on its side; the endpoint forgets it, so it does not count against
            // the unanswered calls once the station is accepted.
            if let Some(ep) = self.ep.as_mut() {
                let _ = ep.ignore_call(id);
            }
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
        let codec = TypedCodec::new(version)
            .side(Side::ChargingStation)
            .validate_outgoing(false);
        let request = match codec.decode_call(id, action, payload) {
            Ok(decoded) => decoded.value,
            Err(reply) => {
                let details = RawValue::from_string(reply.details).ok();
                if let Some(ep) = self.ep.as_mut() {
                    let _ =
                        ep.respond_error(id, &reply.code, &reply.description, details.as_deref());
                }
                return;
            }
        };
        let mut application = self.app.take().unwrap_or_else(|| Box::new(app::BuiltIn));
        let mut ctx = Context {
            station: self,
            now,
            after: Vec::new(),
            raw: None,
        };
        let answer = app::dispatch(&mut *application, &mut ctx, request);
        let after = std::mem::take(&mut ctx.after);
        self.app = Some(application);
        match answer {
            Ok(response) => {
                let text = response.to_json();
                if !self.check_outgoing(action, ocpp_types::MessageKind::Response, &text) {
                    self.respond_error(id, ErrorCode::InternalError, "invalid response");
                    return;
                }
                if let Some(ep) = self.ep.as_mut() {
                    if let Ok(raw) = RawValue::from_string(text) {
                        let _ = ep.respond(id, &raw);
                    }
                }
            }
            Err(e) => {
                self.respond_error(id, e.code, &e.description);
                return;
            }
        }
        for a in after {
            self.follow_up(now, a);
        }
    }

    fn respond_error(&mut self, id: &str, code: ErrorCode, why: &str) {
        if let Some(ep) = self.ep.as_mut() {
            let _ = ep.respond_error(id, &code, why, None);
        }
    }

    fn change_availability_of(&mut self, target: u32, operative: bool) -> &'static str {
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
        self.save();
        if scheduled {
            "Scheduled"
        } else {
            "Accepted"
        }
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
            After::NewPassword => {
                self.raise_security_event(
                    now,
                    crate::station::SecurityEvent::ReconfigurationOfSecurityParameters,
                    Some("Basic-auth password changed by the central system"),
                );
                self.reconnect = true;
                self.events.push_back(StationEvent::CredentialsChanged);
            }
            After::Smart(f) => self.smart_follow_up(now, f),
            After::Sign => crate::certificates::station::triggered_sign(self, now),
            After::Display(f) => self.display_follow_up(now, f),
            After::Customer(f) => self.customer_follow_up(now, f),
        }
    }

    fn changed(&mut self, now: Instant, key: String) {
        self.save();
        self.reschedule(now);
        self.events
            .push_back(StationEvent::ConfigurationChanged { key });
    }
}

// ----- built-in behaviour of the version-neutral calls -----

/// `ChangeAvailability`: Accepted, Scheduled (a transaction is ongoing) or Rejected (unknown).
pub(crate) fn change_availability(
    ctx: &mut Context<'_>,
    request: &ChangeAvailability,
) -> AvailabilityStatus {
    match ctx
        .station
        .change_availability_of(wire_id(request.evse), request.operative)
    {
        "Rejected" => AvailabilityStatus::Rejected,
        "Scheduled" => AvailabilityStatus::Scheduled,
        _ => AvailabilityStatus::Accepted,
    }
}

/// Remote start: a free EVSE (not 0) and room for its Authorize.
pub(crate) fn remote_start(ctx: &mut Context<'_>, request: RemoteStart) -> RequestStatus {
    let st = &*ctx.station;
    let evse = request.evse.map(wire_id);
    if evse == Some(0)
        || st.choose_evse(evse, &request.id_token, None).is_none()
        || !st.room_for_remote()
    {
        return RequestStatus::Rejected;
    }
    // Its charging profile becomes the transaction's TxProfile, or refuses the start.
    if crate::smart_charging::handlers::remote_start_profile(ctx, evse, &request.id_token).is_err()
    {
        return RequestStatus::Rejected;
    }
    ctx.after.push(After::Grant {
        evse,
        token: request.id_token,
        token_type: request.token_type,
        remote_start_id: request.remote_start_id,
    });
    RequestStatus::Accepted
}

/// Remote stop of an ongoing transaction.
pub(crate) fn remote_stop(ctx: &mut Context<'_>, request: &RemoteStop) -> RequestStatus {
    match ctx.station.evse_of_tx(&request.transaction_id) {
        Some(evse) => {
            ctx.after.push(After::Stop(evse));
            RequestStatus::Accepted
        }
        None => RequestStatus::Rejected,
    }
}

/// Reset: the whole station only (resetting one EVSE is optional, 2.x B11/B12).
pub(crate) fn reset(ctx: &mut Context<'_>, request: &Reset) -> ResetStatus {
    if request.evse.is_some() {
        return ResetStatus::Rejected;
    }
    let busy = ctx.station.evses.iter().any(|e| e.tx.is_some());
    let kind = match request.kind {
        ResetType::Soft => ResetKind::Soft,
        ResetType::OnIdle if busy => {
            ctx.station.reset_pending = Some(ResetKind::Soft);
            return ResetStatus::Scheduled;
        }
        ResetType::OnIdle => ResetKind::Soft,
        ResetType::Hard | ResetType::Immediate => ResetKind::Hard,
    };
    ctx.after.push(After::Reset(kind));
    ResetStatus::Accepted
}

/// UnlockConnector: 1.6 stops a transaction on it first; 2.x refuses while one is ongoing.
pub(crate) fn unlock_connector(ctx: &mut Context<'_>, request: &UnlockConnector) -> UnlockStatus {
    let now = ctx.now;
    let st = &mut *ctx.station;
    let v16 = st.v16();
    let evse = wire_id(request.evse);
    let known =
        evse >= 1 && (evse as usize) <= st.evses.len() && (v16 || request.connector == Some(1));
    if !known {
        return UnlockStatus::UnknownConnector;
    }
    let busy = st.evse_mut(evse).is_some_and(|e| e.tx.is_some());
    if !v16 && busy {
        return UnlockStatus::OngoingAuthorizedTransaction;
    }
    if busy {
        st.stop_tx(now, evse, Stop::UNLOCK, None);
    }
    if st.hw.unlock_connector(now, evse) {
        UnlockStatus::Unlocked
    } else {
        UnlockStatus::UnlockFailed
    }
}

/// TriggerMessage / ExtendedTriggerMessage.
pub(crate) fn trigger(ctx: &mut Context<'_>, request: &TriggerMessage) -> TriggerStatus {
    let st = &*ctx.station;
    let v16 = st.v16();
    let evse = request.evse.map(wire_id);
    if evse.is_some_and(|e| e as usize > st.evses.len() || (!v16 && e == 0)) {
        return TriggerStatus::Rejected;
    }
    let after = match request.requested.as_str() {
        // 2.x use case F06: a BootNotification that was already accepted is not triggered.
        "BootNotification" if !v16 && st.boot == crate::BootState::Accepted => {
            return TriggerStatus::Rejected
        }
        "BootNotification" => After::Boot,
        "Heartbeat" => After::Heartbeat,
        "StatusNotification" => After::Status(evse.filter(|e| *e > 0 || v16)),
        "MeterValues" => After::Meter(evse.filter(|e| *e > 0)),
        "TransactionEvent" if !v16 => {
            let with_tx = st
                .evses
                .iter()
                .filter(|e| evse.is_none_or(|id| id == e.id))
                .find(|e| e.tx.is_some())
                .map(|e| e.id);
            match with_tx {
                Some(id) => After::TxEvent(id),
                None => return TriggerStatus::Rejected,
            }
        }
        "DiagnosticsStatusNotification" => After::Idle("DiagnosticsStatusNotification"),
        "FirmwareStatusNotification" => After::Idle("FirmwareStatusNotification"),
        "LogStatusNotification" => After::Idle("LogStatusNotification"),
        // 1.6 ExtendedTriggerMessage, 2.x TriggerMessage (use case A02 / A03).
        "SignChargePointCertificate" | "SignChargingStationCertificate"
            if cfg!(feature = "certificates") =>
        {
            After::Sign
        }
        _ => return TriggerStatus::NotImplemented,
    };
    // What the trigger would queue must fit (MAX_QUEUED_CALLS); a Heartbeat or
    // BootNotification already waiting for its answer answers the trigger too.
    let fits = match &after {
        After::Boot => true,
        After::Heartbeat => st.is_pending(|p| matches!(p, Pending::Heartbeat)) || st.room_for(1),
        After::Status(Some(_)) | After::Meter(Some(_)) | After::Idle(_) | After::Sign => {
            st.room_for(1)
        }
        After::Status(None) => st.room_for(st.evses.len() + usize::from(v16)),
        After::Meter(None) => st.room_for(st.evses.len()),
        // Goes to the durable outbox: bounded by the same number of waiting messages.
        After::TxEvent(_) => st.outbox_len() < crate::station::MAX_QUEUED_CALLS,
        _ => true,
    };
    if !fits {
        return TriggerStatus::Rejected;
    }
    ctx.after.push(after);
    TriggerStatus::Accepted
}

/// DataTransfer: the handler of [`Station::set_data_transfer_handler`], else UnknownVendorId.
pub(crate) fn data_transfer(
    ctx: &mut Context<'_>,
    request: &IncomingDataTransfer,
) -> DataTransferReply {
    // 1.6 California Pricing messages, when taken ([`crate::station::cost`]).
    if let Some(status) = ctx.station.cost_message_v16(
        &request.vendor_id,
        request.message_id.as_deref(),
        request.data.as_ref(),
    ) {
        return DataTransferReply {
            status: status.into(),
            data: None,
        };
    }
    match ctx.station.data_transfer.as_mut() {
        Some(h) => h(
            &request.vendor_id,
            request.message_id.as_deref(),
            request.data.as_ref(),
        ),
        None => DataTransferReply {
            status: "UnknownVendorId".into(),
            data: None,
        },
    }
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
pub(crate) fn get_configuration(
    ctx: &mut Context<'_>,
    request: v16::GetConfigurationRequest,
) -> Result<v16::GetConfigurationResponse, CallError> {
    let st = &*ctx.station;
    let max = st.limit("", "GetConfigurationMaxKeys", None, 50);
    let keys = request.key.unwrap_or_default();
    if keys.len() > max {
        return Err(CallError::new(
            ErrorCode::OccurrenceConstraintViolation,
            format!(
                "{} keys requested; GetConfigurationMaxKeys is {max}",
                keys.len()
            ),
        ));
    }
    let defs = st.settings.definitions();
    let entry = |i: usize| {
        let key = BoundedString::new(defs[i].name).ok()?;
        let mut kv = v16::KeyValue::new(key, defs[i].access == Access::ReadOnly);
        // A write-only key (AuthorizationKey) is listed without its value.
        if defs[i].access != Access::WriteOnly {
            kv.value = BoundedString::new(st.settings.value_at(i)).ok();
        }
        Some(kv)
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    if keys.is_empty() {
        known = (0..defs.len()).filter_map(entry).collect();
    } else {
        for k in keys {
            match st.settings.index("", k.as_str(), None).and_then(entry) {
                Some(kv) => known.push(kv),
                None => unknown.push(k),
            }
        }
    }
    let mut response = v16::GetConfigurationResponse::new();
    response.configuration_key = (!known.is_empty()).then_some(known);
    response.unknown_key = (!unknown.is_empty()).then_some(unknown);
    Ok(response)
}

/// ChangeConfiguration.req: read-only or invalid → Rejected, unknown → NotSupported, a key
/// that needs a reboot → RebootRequired. An accepted `AuthorizationKey` (security whitepaper:
/// hex-encoded, 16 to 20 bytes; anything else → Rejected) is persisted with the settings and
/// the station reconnects with it after the answer ([`Station::poll_reconnect`]).
pub(crate) fn change_configuration(
    ctx: &mut Context<'_>,
    request: v16::ChangeConfigurationRequest,
) -> Result<v16::ChangeConfigurationResponse, CallError> {
    use v16::ConfigurationStatus as S;
    let now = ctx.now;
    let st = &mut *ctx.station;
    let key = request.key.as_str();
    let status = match st.settings.index("", key, None) {
        None => S::NotSupported,
        Some(i) => match st.settings.set_at(i, request.value.as_str()) {
            Ok(reboot) => {
                st.changed(now, key.to_owned());
                if st.settings.definitions()[i].kind == Kind::Password {
                    ctx.after.push(After::NewPassword);
                }
                if reboot {
                    S::RebootRequired
                } else {
                    S::Accepted
                }
            }
            Err(_) => S::Rejected,
        },
    };
    Ok(v16::ChangeConfigurationResponse::new(status))
}

// ----- 2.x device model -----

/// A component / variable pair from the wire, as plain values.
struct VarQuery<'a> {
    component: &'a str,
    component_instance: Option<&'a str>,
    evse: Option<i32>,
    connector: Option<i32>,
    variable: &'a str,
    variable_instance: Option<&'a str>,
}

impl Station {
    /// Finds a variable: `Ok(VarRef::Table(i))` a table entry, `Ok(VarRef::Computed)` a
    /// computed EVSE/Connector variable (value given), `Err(status)` unknown.
    fn find_variable(&self, q: &VarQuery<'_>) -> Result<VarRef, &'static str> {
        if matches!(q.component, "EVSE" | "Connector") {
            let Some(id) = q
                .evse
                .filter(|e| *e >= 1 && *e as usize <= self.evses.len())
            else {
                return Err("UnknownComponent");
            };
            if q.component == "Connector" && q.connector.is_some_and(|c| c != 1) {
                return Err("UnknownComponent");
            }
            return match q.variable {
                "AvailabilityState" if q.variable_instance.is_none() => Ok(VarRef::Computed(
                    self.status(id as u32).unwrap_or("Unavailable").into(),
                )),
                "Available" if q.variable_instance.is_none() => Ok(VarRef::Computed("true".into())),
                _ => Err("UnknownVariable"),
            };
        }
        if q.evse.is_some() || q.component_instance.is_some() {
            return Err("UnknownComponent");
        }
        let defs = self.settings.definitions();
        if !defs.iter().any(|d| d.component == q.component) {
            return Err("UnknownComponent");
        }
        match self
            .settings
            .index(q.component, q.variable, q.variable_instance)
        {
            Some(i) => Ok(VarRef::Table(i)),
            None => Err("UnknownVariable"),
        }
    }
}

/// The 2.x built-ins, written once for 2.0.1 and 2.1 (their types share names and fields).
macro_rules! device_model {
    ($v:ident) => {
        pub(crate) mod $v {
            use super::*;
            use ocpp_types::$v as t;

            fn query<'a>(
                component: &'a t::ComponentType,
                variable: &'a t::VariableType,
            ) -> VarQuery<'a> {
                VarQuery {
                    component: component.name.as_str(),
                    component_instance: component.instance.as_ref().map(|i| i.as_str()),
                    evse: component.evse.as_ref().map(|e| e.id),
                    connector: component.evse.as_ref().and_then(|e| e.connector_id),
                    variable: variable.name.as_str(),
                    variable_instance: variable.instance.as_ref().map(|i| i.as_str()),
                }
            }

            fn status<T: std::str::FromStr>(s: &str) -> Result<T, CallError> {
                s.parse()
                    .map_err(|_| CallError::new(ErrorCode::InternalError, format!("no status {s}")))
            }

            /// GetVariablesRequest. OCPP 2.0.1 part 2 use case B06: the CSMS shall not send more
            /// GetVariableData elements than `ItemsPerMessageGetVariables`
            /// (`DeviceDataCtrlr.ItemsPerMessage[GetVariables]`); a request with more is answered with
            /// CALLERROR `OccurrenceConstraintViolation` (B06.FR.16). Nothing is read then.
            pub(crate) fn get_variables(
                ctx: &mut Context<'_>,
                request: t::GetVariablesRequest,
            ) -> Result<t::GetVariablesResponse, CallError> {
                let st = &*ctx.station;
                let items = request.get_variable_data;
                let max = st.limit(
                    "DeviceDataCtrlr",
                    "ItemsPerMessage",
                    Some("GetVariables"),
                    50,
                );
                if items.len() > max {
                    return Err(CallError::new(
                        ErrorCode::OccurrenceConstraintViolation,
                        format!(
                            "{} items requested; ItemsPerMessageGetVariables is {max}",
                            items.len()
                        ),
                    ));
                }
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    let attr = item.attribute_type.unwrap_or(t::AttributeEnumType::Actual);
                    let mut value = None;
                    let s = match st.find_variable(&query(&item.component, &item.variable)) {
                        Err(s) => s,
                        Ok(_) if attr != t::AttributeEnumType::Actual => {
                            "NotSupportedAttributeType"
                        }
                        Ok(VarRef::Computed(v)) => {
                            value = Some(v);
                            "Accepted"
                        }
                        // A WriteOnly variable (BasicAuthPassword) is not read: Rejected.
                        Ok(VarRef::Table(i))
                            if st.settings.definitions()[i].access == Access::WriteOnly =>
                        {
                            "Rejected"
                        }
                        Ok(VarRef::Table(i)) => {
                            value = Some(st.settings.value_at(i).to_owned());
                            "Accepted"
                        }
                    };
                    let mut r =
                        t::GetVariableResultType::new(status(s)?, item.component, item.variable);
                    r.attribute_type = Some(attr);
                    r.attribute_value = value.and_then(|v| BoundedString::new(v).ok());
                    results.push(r);
                }
                Ok(t::GetVariablesResponse::new(results))
            }

            /// SetVariablesRequest. OCPP 2.0.1 part 2 use case B05: the CSMS shall not send more
            /// SetVariableData elements than `ItemsPerMessageSetVariables`
            /// (`DeviceDataCtrlr.ItemsPerMessage[SetVariables]`); a request with more is answered, as
            /// its GetVariables counterpart (B06.FR.16), with CALLERROR
            /// `OccurrenceConstraintViolation`, and none of its values is applied.
            pub(crate) fn set_variables(
                ctx: &mut Context<'_>,
                request: t::SetVariablesRequest,
            ) -> Result<t::SetVariablesResponse, CallError> {
                let now = ctx.now;
                let st = &mut *ctx.station;
                let items = request.set_variable_data;
                let max = st.limit(
                    "DeviceDataCtrlr",
                    "ItemsPerMessage",
                    Some("SetVariables"),
                    50,
                );
                if items.len() > max {
                    return Err(CallError::new(
                        ErrorCode::OccurrenceConstraintViolation,
                        format!(
                            "{} items sent; ItemsPerMessageSetVariables is {max}",
                            items.len()
                        ),
                    ));
                }
                let mut changed = Vec::new();
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    let attr = item.attribute_type.unwrap_or(t::AttributeEnumType::Actual);
                    let found = st.find_variable(&query(&item.component, &item.variable));
                    let s = match found {
                        Err(s) => s,
                        Ok(_) if attr != t::AttributeEnumType::Actual => {
                            "NotSupportedAttributeType"
                        }
                        Ok(VarRef::Computed(_)) => "Rejected",
                        Ok(VarRef::Table(i)) => match st
                            .settings
                            .set_at(i, item.attribute_value.as_str())
                        {
                            Ok(reboot) => {
                                let d = st.settings.definitions()[i];
                                if d.kind == Kind::Password
                                    && !ctx.after.iter().any(|a| matches!(a, After::NewPassword))
                                {
                                    ctx.after.push(After::NewPassword);
                                }
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
                    let mut r =
                        t::SetVariableResultType::new(status(s)?, item.component, item.variable);
                    r.attribute_type = Some(attr);
                    results.push(r);
                }
                for key in changed {
                    st.changed(now, key);
                }
                Ok(t::SetVariablesResponse::new(results))
            }

            /// GetBaseReport: ConfigurationInventory and FullInventory as NotifyReports after the
            /// answer (Rejected when they would not fit in the queue), SummaryInventory NotSupported.
            pub(crate) fn get_base_report(
                ctx: &mut Context<'_>,
                request: t::GetBaseReportRequest,
            ) -> Result<t::GetBaseReportResponse, CallError> {
                use t::GenericDeviceModelStatusEnumType as S;
                use t::ReportBaseEnumType as B;
                let st = &*ctx.station;
                let configuration_only = match request.report_base {
                    B::ConfigurationInventory => true,
                    B::FullInventory => false,
                    #[allow(unreachable_patterns)]
                    _ => return Ok(t::GetBaseReportResponse::new(S::NotSupported)),
                };
                if !st.room_for(st.report_messages(configuration_only)) {
                    // Its NotifyReports would not fit in the queue (MAX_QUEUED_CALLS).
                    return Ok(t::GetBaseReportResponse::new(S::Rejected));
                }
                ctx.after.push(After::Report {
                    request_id: i64::from(request.request_id),
                    configuration_only,
                });
                Ok(t::GetBaseReportResponse::new(S::Accepted))
            }

            /// GetTransactionStatus: whether the transaction is ongoing and whether messages
            /// (of it, or any) wait in the outbox.
            pub(crate) fn get_transaction_status(
                ctx: &mut Context<'_>,
                request: t::GetTransactionStatusRequest,
            ) -> Result<t::GetTransactionStatusResponse, CallError> {
                let st = &*ctx.station;
                Ok(match request.transaction_id {
                    Some(id) => {
                        let local = st.local_of(id.as_str());
                        let mut r = t::GetTransactionStatusResponse::new(
                            local.is_some_and(|l| st.has_queued(Some(l))),
                        );
                        r.ongoing_indicator = Some(st.evse_of_tx(id.as_str()).is_some());
                        r
                    }
                    None => t::GetTransactionStatusResponse::new(st.has_queued(None)),
                })
            }
        }
    };
}

device_model!(v201);
device_model!(v21);

impl Station {
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
                Kind::Text | Kind::Password => ("string", None),
                Kind::Measurands => ("MemberList", Some(SUPPORTED_MEASURANDS.join(","))),
            };
            let mut characteristics = json!({ "dataType": data_type, "supportsMonitoring": false });
            if let Some(l) = values_list {
                characteristics["valuesList"] = json!(l);
            }
            let mut attribute = json!({
                "type": "Actual",
                "mutability": match d.access {
                    Access::ReadOnly => "ReadOnly",
                    Access::ReadWrite => "ReadWrite",
                    Access::WriteOnly => "WriteOnly",
                },
                "persistent": true,
                "constant": d.access == Access::ReadOnly,
            });
            // A WriteOnly variable (BasicAuthPassword) is reported without its value.
            if d.access != Access::WriteOnly {
                attribute["value"] = json!(self.settings.value_at(i));
            }
            out.push(json!({
                "component": { "name": d.component },
                "variable": variable,
                "variableAttribute": [attribute],
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
