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
use serde_json::Value;

use crate::app::{
    self, AvailabilityStatus, CallError, ChangeAvailability, Context, IncomingDataTransfer,
    RemoteStart, RemoteStop, RequestStatus, Reset, ResetStatus, ResetType, TriggerMessage,
    TriggerStatus, UnlockConnector, UnlockStatus,
};
use crate::hardware::ResetKind;
use crate::settings::{Access, Kind};
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
    /// A status notification of firmware ([`crate::station::firmware`]) or an upload
    /// ([`crate::station::logs`]), for a TriggerMessage.
    Transfer(TransferStatus),
    Grant {
        evse: Option<u32>,
        token: String,
        token_type: String,
        remote_start_id: Option<i32>,
    },
    Stop(u32),
    Reset(ResetKind),
    /// A device-model report's items, sent as NotifyReports ([`crate::device_model`]).
    Report {
        request_id: i64,
        data: Vec<Value>,
    },
    /// A monitoring report's items, sent as NotifyMonitoringReports.
    MonitoringReport {
        request_id: i64,
        data: Vec<Value>,
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
    /// The ReportDERControls of a GetDERControl ([`crate::station::der`]).
    Der {
        request_id: i64,
        ids: Vec<String>,
    },
}

/// Which transfer status a TriggerMessage asks for.
pub(crate) enum TransferStatus {
    /// FirmwareStatusNotification (1.6 `signed`: SignedFirmwareStatusNotification).
    Firmware { signed: bool },
    /// 1.6 DiagnosticsStatusNotification.
    Diagnostics,
    /// LogStatusNotification.
    Log,
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
            After::Transfer(TransferStatus::Firmware { signed }) => {
                self.trigger_firmware_status(now, signed)
            }
            After::Transfer(TransferStatus::Diagnostics) => self.trigger_log_status(now, true),
            After::Transfer(TransferStatus::Log) => self.trigger_log_status(now, false),
            After::Grant {
                evse,
                token,
                token_type,
                remote_start_id,
            } => self.present(now, evse, token, token_type, remote_start_id, true),
            After::Stop(evse) => self.stop_tx(now, evse, Stop::REMOTE, None),
            After::Reset(kind) => self.do_reboot(now, kind),
            After::Report { request_id, data } => self.notify_report(now, request_id, data),
            After::MonitoringReport { request_id, data } => {
                self.notify_monitoring_report(now, request_id, data)
            }
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
            After::Der { request_id, ids } => self.report_der(now, request_id, ids),
        }
    }

    pub(crate) fn changed(&mut self, now: Instant, key: String) {
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
        "DiagnosticsStatusNotification" => After::Transfer(TransferStatus::Diagnostics),
        // 1.6 ExtendedTriggerMessage asks for the whitepaper's signed notification.
        "FirmwareStatusNotification" => After::Transfer(TransferStatus::Firmware {
            signed: v16
                && matches!(
                    ctx.raw,
                    Some(ocpp_codec::typed::TypedRequest::V16(
                        v16::AnyRequest::ExtendedTriggerMessage(_)
                    ))
                ),
        }),
        "LogStatusNotification" => After::Transfer(TransferStatus::Log),
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
        After::Status(Some(_)) | After::Meter(Some(_)) | After::Transfer(_) | After::Sign => {
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

/// The 2.x built-ins, written once for 2.0.1 and 2.1 (their types share names and fields);
/// the device model's are in [`crate::device_model`].
macro_rules! device_model {
    ($v:ident) => {
        pub(crate) mod $v {
            use super::*;
            use ocpp_types::$v as t;

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
