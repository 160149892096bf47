//! The application: what the central system's calls do, by functional block.
//!
//! Every call the central system sends is decoded into its generated type
//! ([`ocpp_types::v16`], [`ocpp_types::v201`], [`ocpp_types::v21`]) and answered by a method
//! of one of the block traits below, grouped the way the specifications group their use
//! cases: [`Provisioning`], [`Availability`], [`Authorization`], [`Transactions`],
//! [`RemoteControl`], [`SmartCharging`], [`Firmware`], [`Diagnostics`], [`Reservations`],
//! [`LocalList`], [`Security`], [`Display`], [`DataTransfer`] and [`V21Additions`].
//!
//! - Where the versions agree (reset, availability, remote start / stop, unlock, trigger
//!   message, clear cache, data transfer, local list version) the method is version-neutral:
//!   it takes a plain struct ([`Reset`], [`ChangeAvailability`], [`RemoteStart`], ...) and
//!   answers a plain status; the typed request stays reachable through
//!   [`Context::raw_request`].
//! - Everything else has one method per version, suffixed `_v16`, `_v201` or `_v21`, taking
//!   the version's typed request and returning its typed response.
//! - Every method has a default: exactly what the station does on its own (see the crate
//!   README), or the refusal its response defines ([`refusal`]). An override that wants the
//!   built-in behaviour as well calls it on [`BuiltIn`].
//! - A method answers `Err(CallError)` for a CALLERROR.
//!
//! The application is an [`Application`], given to the station with
//! [`StationConfig::application`](crate::StationConfig::application); each of its block
//! accessors returns `Some(self)` for the blocks it overrides:
//!
//! ```
//! use ocpp_charger::app::{Application, CallError, Context, Firmware};
//! use ocpp_charger::ocpp_types::v201;
//! use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
//! use ocpp_charger::{MemoryStore, Version};
//!
//! #[derive(Default)]
//! struct MyCharger {
//!     firmware_url: Option<String>,
//! }
//!
//! impl Firmware for MyCharger {
//!     fn update_firmware_v201(
//!         &mut self,
//!         _ctx: &mut Context<'_>,
//!         request: v201::UpdateFirmwareRequest,
//!     ) -> Result<v201::UpdateFirmwareResponse, CallError> {
//!         self.firmware_url = Some(request.firmware.location.as_str().to_owned());
//!         Ok(v201::UpdateFirmwareResponse::new(v201::UpdateFirmwareStatusEnumType::Accepted))
//!     }
//! }
//!
//! impl Application for MyCharger {
//!     fn firmware(&mut self) -> Option<&mut dyn Firmware> {
//!         Some(self)
//!     }
//! }
//!
//! let clock = TestClock::new();
//! let config = test_config(Version::V201, &clock).application(MyCharger::default());
//! let central = MockCentral::new(Version::V201);
//! let mut pair = VirtualPair::with(config, Box::new(MemoryStore::new()), central, clock);
//! pair.connect();
//! let id = pair.central_call_raw(
//!     "UpdateFirmware",
//!     r#"{"requestId":1,"firmware":{"location":"https://fw.example/1.2.bin","retrieveDateTime":"2025-01-01T00:00:00Z"}}"#,
//! );
//! let answer = pair.central.answer(&id).unwrap().as_ref().unwrap();
//! assert_eq!(answer["status"], "Accepted");
//! ```

use std::str::FromStr;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ocpp_codec::typed::{TypedRequest, TypedResponse};
use ocpp_codec::{ErrorCode, Version};
use serde_json::Value;

use crate::hardware::Hardware;
use crate::station::{DataTransferReply, Station};

/// A CALLERROR answer: the error code and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The code (spelled for the connection's version when sent).
    pub code: ErrorCode,
    /// A short description for the central system.
    pub description: String,
}

impl CallError {
    /// A CALLERROR with `code` and `description`.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> CallError {
        CallError {
            code,
            description: description.into(),
        }
    }

    /// CALLERROR `NotSupported` ("recognized but not supported", OCPP-J §4.2.3), the answer
    /// of an action whose response defines no refusal.
    pub fn not_supported(action: &str) -> CallError {
        CallError::new(
            ErrorCode::NotSupported,
            format!("{action} is not supported"),
        )
    }
}

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

/// The refusal of an action the station does not implement: the response with the first of
/// `NotSupported`, `NotImplemented`, `Rejected`, `Unknown`, `NoProfiles`, `NotFound`,
/// `NoFirmware`, `Failed` that its type accepts as its only field `status`; when none fits
/// (1.6 `UpdateFirmware`, `GetDiagnostics`, 2.x `CostUpdated`, ...), CALLERROR
/// `NotSupported` ([`CallError::not_supported`]).
///
/// ```
/// use ocpp_charger::app::refusal;
/// use ocpp_charger::ocpp_types::{v16, v201};
///
/// let r: v201::SetChargingProfileResponse = refusal("SetChargingProfile").unwrap();
/// assert_eq!(r.status, v201::ChargingProfileStatusEnumType::Rejected);
/// assert!(refusal::<v16::UpdateFirmwareResponse>("UpdateFirmware").is_err());
/// ```
pub fn refusal<R: serde::de::DeserializeOwned>(action: &str) -> Result<R, CallError> {
    REFUSALS
        .iter()
        .find_map(|s| serde_json::from_str::<R>(&format!(r#"{{"status":"{s}"}}"#)).ok())
        .ok_or_else(|| CallError::not_supported(action))
}

/// The refusal of any action of any version (see [`refusal`]).
pub(crate) fn refusal_any(request: &TypedRequest) -> Result<TypedResponse, CallError> {
    let action = request.action();
    REFUSALS
        .iter()
        .find_map(|s| TypedResponse::from_json(action, &format!(r#"{{"status":"{s}"}}"#)).ok())
        .ok_or_else(|| CallError::not_supported(action.as_str()))
}

/// A version-neutral status as the version's typed enum (they share their wire names).
fn wire<T: FromStr>(status: &str, version: Version, action: &str) -> Result<T, CallError> {
    status.parse().map_err(|_| {
        CallError::new(
            ErrorCode::InternalError,
            format!("{status} is not an answer to {action} in OCPP {version}"),
        )
    })
}

/// What a method sees of the station while answering a call, and what it can do.
pub struct Context<'a> {
    pub(crate) station: &'a mut Station,
    pub(crate) now: Instant,
    pub(crate) after: Vec<crate::central::After>,
    pub(crate) raw: Option<TypedRequest>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("station", &self.station)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// The time of the call (the driver's `Instant`).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The wall-clock time of the call, from the station's
    /// [`TimeSource`](crate::TimeSource).
    pub fn wall_clock(&self) -> DateTime<Utc> {
        self.station.cfg.time.wall(self.now)
    }

    /// The connection's OCPP version.
    pub fn version(&self) -> Version {
        self.station.cfg.version
    }

    /// The station: status, transactions, settings, outbox length.
    pub fn station(&self) -> &Station {
        self.station
    }

    /// The station's hardware.
    pub fn hardware(&mut self) -> &mut dyn Hardware {
        &mut *self.station.hw
    }

    /// The typed request behind a version-neutral method (e.g. the charging profile of a
    /// 2.x `RequestStartTransaction`); `None` in the per-version methods, which get it as
    /// their argument.
    pub fn raw_request(&self) -> Option<&TypedRequest> {
        self.raw.as_ref()
    }
}

macro_rules! neutral_enum {
    ($(#[$doc:meta])* $Name:ident { $($(#[$vdoc:meta])* $Variant:ident,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $Name {
            $($(#[$vdoc])* $Variant,)*
        }

        impl $Name {
            /// The value as written on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($Name::$Variant => stringify!($Variant),)*
                }
            }
        }
    };
}

neutral_enum! {
    /// The kind of reset asked for (1.6 `Hard` / `Soft`, 2.x `Immediate` / `OnIdle`).
    ResetType {
        /// 1.6 `Hard`.
        Hard,
        /// 1.6 `Soft`.
        Soft,
        /// 2.x `Immediate`.
        Immediate,
        /// 2.x `OnIdle`: once no transaction is ongoing.
        OnIdle,
    }
}

neutral_enum! {
    /// The answer to a reset. `Scheduled` exists in 2.x only.
    ResetStatus {
        /// Accepted.
        Accepted,
        /// Rejected.
        Rejected,
        /// (2.x) Done once the ongoing transactions end.
        Scheduled,
    }
}

neutral_enum! {
    /// The answer to a change of availability.
    AvailabilityStatus {
        /// Accepted.
        Accepted,
        /// Rejected.
        Rejected,
        /// Done once the ongoing transactions end.
        Scheduled,
    }
}

neutral_enum! {
    /// The answer to a remote start or stop, or to a clear-cache request.
    RequestStatus {
        /// Accepted.
        Accepted,
        /// Rejected.
        Rejected,
    }
}

neutral_enum! {
    /// The answer to an unlock request. On 1.6 `UnknownConnector` is sent as `NotSupported`
    /// and `OngoingAuthorizedTransaction` as `UnlockFailed`.
    UnlockStatus {
        /// Unlocked.
        Unlocked,
        /// The connector did not unlock.
        UnlockFailed,
        /// No such connector (1.6: `NotSupported`).
        UnknownConnector,
        /// (2.x) A transaction is ongoing on it (1.6: `UnlockFailed`).
        OngoingAuthorizedTransaction,
    }
}

neutral_enum! {
    /// The answer to a trigger message.
    TriggerStatus {
        /// The message will be sent.
        Accepted,
        /// It will not.
        Rejected,
        /// The requested message is not implemented.
        NotImplemented,
    }
}

/// A reset request (1.6 and 2.x `Reset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// The kind of reset.
    pub kind: ResetType,
    /// (2.x) The EVSE to reset, as sent; `None`: the whole station.
    pub evse: Option<i32>,
}

/// A change of availability (1.6 and 2.x `ChangeAvailability`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeAvailability {
    /// The EVSE (1.6: connector) as sent; 0 (or absent in 2.x): the whole station.
    pub evse: i32,
    /// (2.x) The connector of the EVSE, as sent.
    pub connector: Option<i32>,
    /// Operative (`true`) or inoperative.
    pub operative: bool,
}

/// A remote start (1.6 `RemoteStartTransaction`, 2.x `RequestStartTransaction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStart {
    /// The EVSE (1.6: connector) as sent; `None`: the station chooses.
    pub evse: Option<i32>,
    /// The token to start with.
    pub id_token: String,
    /// Its type (2.x `IdToken.type`; 1.6: `ISO14443`).
    pub token_type: String,
    /// (2.x) The `remoteStartId`, echoed in the TransactionEvent.
    pub remote_start_id: Option<i32>,
}

/// A remote stop (1.6 `RemoteStopTransaction`, 2.x `RequestStopTransaction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStop {
    /// The transaction id as text (1.6: the integer the central system issued).
    pub transaction_id: String,
}

/// An unlock request (`UnlockConnector`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockConnector {
    /// The EVSE (1.6: connector) as sent.
    pub evse: i32,
    /// (2.x) The connector of the EVSE as sent.
    pub connector: Option<i32>,
}

/// A trigger (1.6 `TriggerMessage` / `ExtendedTriggerMessage`, 2.x `TriggerMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerMessage {
    /// The requested message's wire name, e.g. `"StatusNotification"`.
    pub requested: String,
    /// The EVSE (1.6: connector) as sent.
    pub evse: Option<i32>,
    /// (2.x) The connector of the EVSE as sent.
    pub connector: Option<i32>,
}

/// A DataTransfer from the central system.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingDataTransfer {
    /// The vendor.
    pub vendor_id: String,
    /// The message id.
    pub message_id: Option<String>,
    /// The data (1.6: a JSON string).
    pub data: Option<Value>,
}

/// The charger application: one accessor per functional block, each `None` by default (the
/// station's built-in behaviour, [`BuiltIn`]). Return `Some(self)` from the accessor of every
/// block you implement (see the [module docs](self)).
pub trait Application: Send {
    /// B: configuration keys, device model, reports, network profiles.
    fn provisioning(&mut self) -> Option<&mut dyn Provisioning> {
        None
    }
    /// G: availability.
    fn availability(&mut self) -> Option<&mut dyn Availability> {
        None
    }
    /// C: authorization (cache).
    fn authorization(&mut self) -> Option<&mut dyn Authorization> {
        None
    }
    /// E / I: transactions and their cost.
    fn transactions(&mut self) -> Option<&mut dyn Transactions> {
        None
    }
    /// F: remote control (start, stop, reset, unlock, trigger).
    fn remote_control(&mut self) -> Option<&mut dyn RemoteControl> {
        None
    }
    /// K: smart charging.
    fn smart_charging(&mut self) -> Option<&mut dyn SmartCharging> {
        None
    }
    /// L: firmware management.
    fn firmware(&mut self) -> Option<&mut dyn Firmware> {
        None
    }
    /// N: diagnostics, logs, monitoring, customer information.
    fn diagnostics(&mut self) -> Option<&mut dyn Diagnostics> {
        None
    }
    /// H: reservations.
    fn reservations(&mut self) -> Option<&mut dyn Reservations> {
        None
    }
    /// D: the local authorization list.
    fn local_list(&mut self) -> Option<&mut dyn LocalList> {
        None
    }
    /// A / M: security and certificates.
    fn security(&mut self) -> Option<&mut dyn Security> {
        None
    }
    /// O: display messages.
    fn display(&mut self) -> Option<&mut dyn Display> {
        None
    }
    /// P: data transfer.
    fn data_transfer(&mut self) -> Option<&mut dyn DataTransfer> {
        None
    }
    /// The blocks new in OCPP 2.1 (tariffs, DER control, periodic event streams, ...).
    fn v21_additions(&mut self) -> Option<&mut dyn V21Additions> {
        None
    }
}

/// The station's own behaviour: every block with its defaults. The application a station has
/// when none is configured; an override calls it for the built-in part, e.g.
/// `RemoteControl::reset(&mut BuiltIn, ctx, request)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltIn;

impl Application for BuiltIn {}

macro_rules! blocks {
    (@default $ctx:ident, $request:ident, $Action:ident, $v:ident, $Resp:ident) => {{
        let _ = ($ctx, $request);
        refusal::<ocpp_types::$v::$Resp>(stringify!($Action))
    }};
    (@default $ctx:ident, $request:ident, $Action:ident, $v:ident, $Resp:ident, $builtin:path) => {
        $builtin($ctx, $request)
    };
    (@doc) => { "the refusal its response defines ([`refusal`])." };
    (@doc $builtin:path) => { "the station's built-in behaviour (see the crate README)." };
    ($(
        $(#[$doc:meta])*
        $Trait:ident / $accessor:ident {
            neutral { $($neutral:tt)* }
            $( $method:ident: $v:ident $V:ident $Action:ident($Req:ident, $Resp:ident) $(=> $builtin:path)?; )*
        }
    )*) => {
        $(
            $(#[$doc])*
            pub trait $Trait {
                $($neutral)*
                $(
                    #[doc = concat!("`", stringify!($Action), "` (OCPP ", stringify!($v), "). Default: ", blocks!(@doc $($builtin)?))]
                    fn $method(
                        &mut self,
                        ctx: &mut Context<'_>,
                        request: ocpp_types::$v::$Req,
                    ) -> Result<ocpp_types::$v::$Resp, CallError> {
                        blocks!(@default ctx, request, $Action, $v, $Resp $(, $builtin)?)
                    }
                )*
            }

            impl $Trait for BuiltIn {}
        )*

        /// Routes a per-version request to its method; gives back what it does not route.
        // The request is handed back by value, not boxed: this is the path of every call.
        #[allow(clippy::result_large_err)]
        fn dispatch_per_version(
            app: &mut dyn Application,
            ctx: &mut Context<'_>,
            request: TypedRequest,
        ) -> Result<Result<TypedResponse, CallError>, TypedRequest> {
            let mut builtin = BuiltIn;
            Ok(match request {
                $($(
                    TypedRequest::$V(ocpp_types::$v::AnyRequest::$Action(q)) => {
                        let h: &mut dyn $Trait = match app.$accessor() {
                            Some(h) => h,
                            None => &mut builtin,
                        };
                        // `into`: unboxed when the generated enum boxes the payload.
                        h.$method(ctx, q.into())
                            .map(|r| TypedResponse::$V(ocpp_types::$v::AnyResponse::from(r)))
                    }
                )*)*
                other => return Err(other),
            })
        }
    };
}

blocks! {
    /// Provisioning (2.x block B; 1.6 configuration keys): GetConfiguration, ChangeConfiguration,
    /// GetBaseReport, GetReport, GetVariables, SetVariables, SetNetworkProfile.
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::provisioning`] to override some.
    Provisioning / provisioning {
        neutral {        }
        get_configuration_v16: v16 V16 GetConfiguration(GetConfigurationRequest, GetConfigurationResponse) => crate::central::get_configuration;
        change_configuration_v16: v16 V16 ChangeConfiguration(ChangeConfigurationRequest, ChangeConfigurationResponse) => crate::central::change_configuration;
        get_base_report_v201: v201 V201 GetBaseReport(GetBaseReportRequest, GetBaseReportResponse) => crate::device_model::get_base_report;
        get_base_report_v21: v21 V21 GetBaseReport(GetBaseReportRequest, GetBaseReportResponse) => crate::device_model::get_base_report;
        get_report_v201: v201 V201 GetReport(GetReportRequest, GetReportResponse) => crate::device_model::get_report;
        get_report_v21: v21 V21 GetReport(GetReportRequest, GetReportResponse) => crate::device_model::get_report;
        get_variables_v201: v201 V201 GetVariables(GetVariablesRequest, GetVariablesResponse) => crate::device_model::get_variables;
        get_variables_v21: v21 V21 GetVariables(GetVariablesRequest, GetVariablesResponse) => crate::device_model::get_variables;
        set_variables_v201: v201 V201 SetVariables(SetVariablesRequest, SetVariablesResponse) => crate::device_model::set_variables;
        set_variables_v21: v21 V21 SetVariables(SetVariablesRequest, SetVariablesResponse) => crate::device_model::set_variables;
        set_network_profile_v201: v201 V201 SetNetworkProfile(SetNetworkProfileRequest, SetNetworkProfileResponse);
        set_network_profile_v21: v21 V21 SetNetworkProfile(SetNetworkProfileRequest, SetNetworkProfileResponse);
    }
    /// Availability (2.x block G).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::availability`] to override some.
    Availability / availability {
        neutral {
        /// `ChangeAvailability` (1.6 and 2.x). Default: the station's own (Accepted, or
        /// Scheduled for an EVSE with a transaction; Rejected for an unknown EVSE).
        fn change_availability(
            &mut self,
            ctx: &mut Context<'_>,
            request: ChangeAvailability,
        ) -> Result<AvailabilityStatus, CallError> {
            Ok(crate::central::change_availability(ctx, &request))
        }
        }
    }
    /// Authorization (2.x block C): the authorization cache.
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::authorization`] to override some.
    Authorization / authorization {
        neutral {
        /// `ClearCache` (1.6 and 2.x). Default: empties the authorization cache, Accepted;
        /// 2.x with `AuthCacheCtrlr.Enabled` false: Rejected (use case C11).
        fn clear_cache(&mut self, ctx: &mut Context<'_>) -> Result<RequestStatus, CallError> {
            if ctx.version() != Version::V16
                && !ctx.station.settings.flag(crate::Setting::AuthCacheEnabled)
            {
                return Ok(RequestStatus::Rejected);
            }
            ctx.station.clear_cache();
            Ok(RequestStatus::Accepted)
        }
        }
    }
    /// Transactions (2.x blocks E and I): transaction status and cost.
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::transactions`] to override some.
    Transactions / transactions {
        neutral {        }
        get_transaction_status_v201: v201 V201 GetTransactionStatus(GetTransactionStatusRequest, GetTransactionStatusResponse) => crate::central::v201::get_transaction_status;
        get_transaction_status_v21: v21 V21 GetTransactionStatus(GetTransactionStatusRequest, GetTransactionStatusResponse) => crate::central::v21::get_transaction_status;
        cost_updated_v201: v201 V201 CostUpdated(CostUpdatedRequest, CostUpdatedResponse) => crate::station::cost::cost_updated;
        cost_updated_v21: v21 V21 CostUpdated(CostUpdatedRequest, CostUpdatedResponse) => crate::station::cost::cost_updated;
    }
    /// Remote control (2.x block F; 1.6 core and remote trigger profiles).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::remote_control`] to override some.
    RemoteControl / remote_control {
        neutral {
        /// 1.6 `RemoteStartTransaction`, 2.x `RequestStartTransaction`. Default: Accepted
        /// when a free EVSE takes it (authorized first with `AuthorizeRemoteTxRequests` /
        /// `AuthorizeRemoteStart`), else Rejected.
        fn remote_start(
            &mut self,
            ctx: &mut Context<'_>,
            request: RemoteStart,
        ) -> Result<RequestStatus, CallError> {
            Ok(crate::central::remote_start(ctx, request))
        }

        /// 1.6 `RemoteStopTransaction`, 2.x `RequestStopTransaction`. Default: Accepted and
        /// stopped when the transaction is ongoing, else Rejected.
        fn remote_stop(
            &mut self,
            ctx: &mut Context<'_>,
            request: RemoteStop,
        ) -> Result<RequestStatus, CallError> {
            Ok(crate::central::remote_stop(ctx, &request))
        }

        /// `Reset` (1.6 and 2.x). Default: Accepted and rebooted through
        /// [`Hardware::reboot`] once answered; 2.x `OnIdle` during a
        /// transaction: Scheduled; a single EVSE: Rejected.
        fn reset(&mut self, ctx: &mut Context<'_>, request: Reset) -> Result<ResetStatus, CallError> {
            Ok(crate::central::reset(ctx, &request))
        }

        /// `UnlockConnector` (1.6 and 2.x). Default: stops a 1.6 transaction on it (2.x:
        /// OngoingAuthorizedTransaction) and asks
        /// [`Hardware::unlock_connector`].
        fn unlock_connector(
            &mut self,
            ctx: &mut Context<'_>,
            request: UnlockConnector,
        ) -> Result<UnlockStatus, CallError> {
            Ok(crate::central::unlock_connector(ctx, &request))
        }

        /// `TriggerMessage` (1.6 and 2.x) and 1.6 `ExtendedTriggerMessage`. Default:
        /// BootNotification, Heartbeat, MeterValues, StatusNotification, 2.x
        /// TransactionEvent, and the idle Diagnostics / Firmware / Log status notifications;
        /// NotImplemented for the rest.
        fn trigger_message(
            &mut self,
            ctx: &mut Context<'_>,
            request: TriggerMessage,
        ) -> Result<TriggerStatus, CallError> {
            Ok(crate::central::trigger(ctx, &request))
        }
        }
    }
    /// Smart charging (2.x block K; 1.6 smart charging profile).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::smart_charging`] to override some.
    SmartCharging / smart_charging {
        neutral {        }
        set_charging_profile_v16: v16 V16 SetChargingProfile(SetChargingProfileRequest, SetChargingProfileResponse) => crate::smart_charging::handlers::set_charging_profile_v16;
        set_charging_profile_v201: v201 V201 SetChargingProfile(SetChargingProfileRequest, SetChargingProfileResponse) => crate::smart_charging::handlers::set_charging_profile_v201;
        set_charging_profile_v21: v21 V21 SetChargingProfile(SetChargingProfileRequest, SetChargingProfileResponse) => crate::smart_charging::handlers::set_charging_profile_v21;
        clear_charging_profile_v16: v16 V16 ClearChargingProfile(ClearChargingProfileRequest, ClearChargingProfileResponse) => crate::smart_charging::handlers::clear_charging_profile_v16;
        clear_charging_profile_v201: v201 V201 ClearChargingProfile(ClearChargingProfileRequest, ClearChargingProfileResponse) => crate::smart_charging::handlers::clear_charging_profile_v201;
        clear_charging_profile_v21: v21 V21 ClearChargingProfile(ClearChargingProfileRequest, ClearChargingProfileResponse) => crate::smart_charging::handlers::clear_charging_profile_v21;
        get_composite_schedule_v16: v16 V16 GetCompositeSchedule(GetCompositeScheduleRequest, GetCompositeScheduleResponse) => crate::smart_charging::handlers::get_composite_schedule_v16;
        get_composite_schedule_v201: v201 V201 GetCompositeSchedule(GetCompositeScheduleRequest, GetCompositeScheduleResponse) => crate::smart_charging::handlers::get_composite_schedule_v201;
        get_composite_schedule_v21: v21 V21 GetCompositeSchedule(GetCompositeScheduleRequest, GetCompositeScheduleResponse) => crate::smart_charging::handlers::get_composite_schedule_v21;
        get_charging_profiles_v201: v201 V201 GetChargingProfiles(GetChargingProfilesRequest, GetChargingProfilesResponse) => crate::smart_charging::handlers::get_charging_profiles_v201;
        get_charging_profiles_v21: v21 V21 GetChargingProfiles(GetChargingProfilesRequest, GetChargingProfilesResponse) => crate::smart_charging::handlers::get_charging_profiles_v21;
    }
    /// Firmware management (2.x block L; 1.6 firmware management profile and signed updates).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::firmware`] to override some.
    Firmware / firmware {
        neutral {        }
        update_firmware_v16: v16 V16 UpdateFirmware(UpdateFirmwareRequest, UpdateFirmwareResponse) => crate::station::firmware::update_firmware_v16;
        update_firmware_v201: v201 V201 UpdateFirmware(UpdateFirmwareRequest, UpdateFirmwareResponse) => crate::station::firmware::update_firmware_v2;
        update_firmware_v21: v21 V21 UpdateFirmware(UpdateFirmwareRequest, UpdateFirmwareResponse) => crate::station::firmware::update_firmware_v2;
        signed_update_firmware_v16: v16 V16 SignedUpdateFirmware(SignedUpdateFirmwareRequest, SignedUpdateFirmwareResponse) => crate::station::firmware::signed_update_firmware_v16;
        publish_firmware_v201: v201 V201 PublishFirmware(PublishFirmwareRequest, PublishFirmwareResponse);
        publish_firmware_v21: v21 V21 PublishFirmware(PublishFirmwareRequest, PublishFirmwareResponse);
        unpublish_firmware_v201: v201 V201 UnpublishFirmware(UnpublishFirmwareRequest, UnpublishFirmwareResponse);
        unpublish_firmware_v21: v21 V21 UnpublishFirmware(UnpublishFirmwareRequest, UnpublishFirmwareResponse);
    }
    /// Diagnostics (2.x block N; 1.6 GetDiagnostics and the security whitepaper's GetLog).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::diagnostics`] to override some.
    Diagnostics / diagnostics {
        neutral {
        /// What the application holds about a customer, one line each, added to the
        /// NotifyCustomerInformation report after the station's own lines
        /// ([`crate::station::customer`]). Default: nothing.
        fn customer_data(
            &mut self,
            ctx: &mut Context<'_>,
            customer: &crate::station::Customer,
        ) -> Vec<String> {
            let _ = (ctx, customer);
            Vec::new()
        }
        /// Clears what the application holds about a customer (a CustomerInformation with
        /// `clear`), after the station cleared its own. Default: nothing.
        fn clear_customer(&mut self, ctx: &mut Context<'_>, customer: &crate::station::Customer) {
            let _ = (ctx, customer);
        }
        }
        get_diagnostics_v16: v16 V16 GetDiagnostics(GetDiagnosticsRequest, GetDiagnosticsResponse) => crate::station::logs::get_diagnostics_v16;
        get_log_v16: v16 V16 GetLog(GetLogRequest, GetLogResponse) => crate::station::logs::get_log;
        get_log_v201: v201 V201 GetLog(GetLogRequest, GetLogResponse) => crate::station::logs::get_log;
        get_log_v21: v21 V21 GetLog(GetLogRequest, GetLogResponse) => crate::station::logs::get_log;
        customer_information_v201: v201 V201 CustomerInformation(CustomerInformationRequest, CustomerInformationResponse) => crate::station::customer::customer_information;
        customer_information_v21: v21 V21 CustomerInformation(CustomerInformationRequest, CustomerInformationResponse) => crate::station::customer::customer_information;
        get_monitoring_report_v201: v201 V201 GetMonitoringReport(GetMonitoringReportRequest, GetMonitoringReportResponse) => crate::station::monitoring::get_monitoring_report;
        get_monitoring_report_v21: v21 V21 GetMonitoringReport(GetMonitoringReportRequest, GetMonitoringReportResponse) => crate::station::monitoring::get_monitoring_report;
        set_monitoring_base_v201: v201 V201 SetMonitoringBase(SetMonitoringBaseRequest, SetMonitoringBaseResponse) => crate::station::monitoring::set_monitoring_base;
        set_monitoring_base_v21: v21 V21 SetMonitoringBase(SetMonitoringBaseRequest, SetMonitoringBaseResponse) => crate::station::monitoring::set_monitoring_base;
        set_monitoring_level_v201: v201 V201 SetMonitoringLevel(SetMonitoringLevelRequest, SetMonitoringLevelResponse) => crate::station::monitoring::set_monitoring_level;
        set_monitoring_level_v21: v21 V21 SetMonitoringLevel(SetMonitoringLevelRequest, SetMonitoringLevelResponse) => crate::station::monitoring::set_monitoring_level;
        set_variable_monitoring_v201: v201 V201 SetVariableMonitoring(SetVariableMonitoringRequest, SetVariableMonitoringResponse) => crate::station::monitoring::set_variable_monitoring;
        set_variable_monitoring_v21: v21 V21 SetVariableMonitoring(SetVariableMonitoringRequest, SetVariableMonitoringResponse) => crate::station::monitoring::set_variable_monitoring;
        clear_variable_monitoring_v201: v201 V201 ClearVariableMonitoring(ClearVariableMonitoringRequest, ClearVariableMonitoringResponse) => crate::station::monitoring::clear_variable_monitoring;
        clear_variable_monitoring_v21: v21 V21 ClearVariableMonitoring(ClearVariableMonitoringRequest, ClearVariableMonitoringResponse) => crate::station::monitoring::clear_variable_monitoring;
    }
    /// Reservations (2.x block H; 1.6 reservation profile).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::reservations`] to override some.
    Reservations / reservations {
        neutral {        }
        reserve_now_v16: v16 V16 ReserveNow(ReserveNowRequest, ReserveNowResponse) => crate::station::reservations::reserve_now;
        reserve_now_v201: v201 V201 ReserveNow(ReserveNowRequest, ReserveNowResponse) => crate::station::reservations::reserve_now;
        reserve_now_v21: v21 V21 ReserveNow(ReserveNowRequest, ReserveNowResponse) => crate::station::reservations::reserve_now;
        cancel_reservation_v16: v16 V16 CancelReservation(CancelReservationRequest, CancelReservationResponse) => crate::station::reservations::cancel_reservation;
        cancel_reservation_v201: v201 V201 CancelReservation(CancelReservationRequest, CancelReservationResponse) => crate::station::reservations::cancel_reservation;
        cancel_reservation_v21: v21 V21 CancelReservation(CancelReservationRequest, CancelReservationResponse) => crate::station::reservations::cancel_reservation;
    }
    /// The local authorization list (2.x block D; 1.6 local auth list management profile).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::local_list`] to override some.
    LocalList / local_list {
        neutral {
        /// `GetLocalListVersion` (1.6 and 2.x): the version number of the local list.
        /// Default: the station's list ([`Station::local_list_version`]): 0 when empty, 1.6
        /// -1 when `LocalAuthListEnabled` is false.
        fn get_local_list_version(&mut self, ctx: &mut Context<'_>) -> Result<i32, CallError> {
            Ok(ctx.station.local_list_version())
        }
        }
        send_local_list_v16: v16 V16 SendLocalList(SendLocalListRequest, SendLocalListResponse) => crate::station::local_list::send_local_list;
        send_local_list_v201: v201 V201 SendLocalList(SendLocalListRequest, SendLocalListResponse) => crate::station::local_list::send_local_list;
        send_local_list_v21: v21 V21 SendLocalList(SendLocalListRequest, SendLocalListResponse) => crate::station::local_list::send_local_list;
    }
    /// Security and certificates (2.x blocks A and M; the 1.6 security whitepaper).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::security`] to override some.
    Security / security {
        neutral {        }
        certificate_signed_v16: v16 V16 CertificateSigned(CertificateSignedRequest, CertificateSignedResponse) => crate::certificates::station::certificate_signed_v16;
        certificate_signed_v201: v201 V201 CertificateSigned(CertificateSignedRequest, CertificateSignedResponse) => crate::certificates::station::certificate_signed_v201;
        certificate_signed_v21: v21 V21 CertificateSigned(CertificateSignedRequest, CertificateSignedResponse) => crate::certificates::station::certificate_signed_v21;
        delete_certificate_v16: v16 V16 DeleteCertificate(DeleteCertificateRequest, DeleteCertificateResponse) => crate::certificates::station::delete_certificate_v16;
        delete_certificate_v201: v201 V201 DeleteCertificate(DeleteCertificateRequest, DeleteCertificateResponse) => crate::certificates::station::delete_certificate_v201;
        delete_certificate_v21: v21 V21 DeleteCertificate(DeleteCertificateRequest, DeleteCertificateResponse) => crate::certificates::station::delete_certificate_v21;
        get_installed_certificate_ids_v16: v16 V16 GetInstalledCertificateIds(GetInstalledCertificateIdsRequest, GetInstalledCertificateIdsResponse) => crate::certificates::station::get_installed_certificate_ids_v16;
        get_installed_certificate_ids_v201: v201 V201 GetInstalledCertificateIds(GetInstalledCertificateIdsRequest, GetInstalledCertificateIdsResponse) => crate::certificates::station::get_installed_certificate_ids_v201;
        get_installed_certificate_ids_v21: v21 V21 GetInstalledCertificateIds(GetInstalledCertificateIdsRequest, GetInstalledCertificateIdsResponse) => crate::certificates::station::get_installed_certificate_ids_v21;
        install_certificate_v16: v16 V16 InstallCertificate(InstallCertificateRequest, InstallCertificateResponse) => crate::certificates::station::install_certificate_v16;
        install_certificate_v201: v201 V201 InstallCertificate(InstallCertificateRequest, InstallCertificateResponse) => crate::certificates::station::install_certificate_v201;
        install_certificate_v21: v21 V21 InstallCertificate(InstallCertificateRequest, InstallCertificateResponse) => crate::certificates::station::install_certificate_v21;
    }
    /// Display messages (2.x block O).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::display`] to override some.
    Display / display {
        neutral {
        /// What the display shows changed: `messages` is what to show now, highest priority
        /// first ([`Station::displayed_messages`]); called after the input that changed it
        /// (a set, a clear, a start or end on the clock, a transaction's end, a cost).
        /// Default: nothing (the station reports `StationEvent::DisplayChanged` as well).
        fn show_messages(
            &mut self,
            ctx: &mut Context<'_>,
            messages: &[crate::station::DisplayMessage],
        ) {
            let _ = (ctx, messages);
        }
        }
        set_display_message_v201: v201 V201 SetDisplayMessage(SetDisplayMessageRequest, SetDisplayMessageResponse) => crate::station::display::set_display_message;
        set_display_message_v21: v21 V21 SetDisplayMessage(SetDisplayMessageRequest, SetDisplayMessageResponse) => crate::station::display::set_display_message;
        get_display_messages_v201: v201 V201 GetDisplayMessages(GetDisplayMessagesRequest, GetDisplayMessagesResponse) => crate::station::display::get_display_messages;
        get_display_messages_v21: v21 V21 GetDisplayMessages(GetDisplayMessagesRequest, GetDisplayMessagesResponse) => crate::station::display::get_display_messages;
        clear_display_message_v201: v201 V201 ClearDisplayMessage(ClearDisplayMessageRequest, ClearDisplayMessageResponse) => crate::station::display::clear_display_message;
        clear_display_message_v21: v21 V21 ClearDisplayMessage(ClearDisplayMessageRequest, ClearDisplayMessageResponse) => crate::station::display::clear_display_message;
    }
    /// Data transfer (2.x block P; 1.6 core).
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::data_transfer`] to override some.
    DataTransfer / data_transfer {
        neutral {
        /// `DataTransfer` from the central system (1.6 and 2.x). Default: the handler set
        /// with [`Station::set_data_transfer_handler`], else `UnknownVendorId`.
        fn data_transfer(
            &mut self,
            ctx: &mut Context<'_>,
            request: IncomingDataTransfer,
        ) -> Result<DataTransferReply, CallError> {
            Ok(crate::central::data_transfer(ctx, &request))
        }
        }
    }
    /// The central-system calls new in OCPP 2.1: tariffs, DER control, periodic event streams,
    /// battery swap, priority charging, dynamic schedules, web payments.
    ///
    /// The default of every method is the station's built-in behaviour; implement the trait and
    /// return `Some(self)` from [`Application::v21_additions`] to override some.
    V21Additions / v21_additions {
        neutral {        }
        afrr_signal_v21: v21 V21 AFRRSignal(AFRRSignalRequest, AFRRSignalResponse);
        adjust_periodic_event_stream_v21: v21 V21 AdjustPeriodicEventStream(AdjustPeriodicEventStreamRequest, AdjustPeriodicEventStreamResponse) => crate::station::streams::adjust_periodic_event_stream;
        change_transaction_tariff_v21: v21 V21 ChangeTransactionTariff(ChangeTransactionTariffRequest, ChangeTransactionTariffResponse) => crate::station::tariffs::change_transaction_tariff;
        clear_der_control_v21: v21 V21 ClearDERControl(ClearDERControlRequest, ClearDERControlResponse) => crate::station::der::clear_der_control;
        clear_tariffs_v21: v21 V21 ClearTariffs(ClearTariffsRequest, ClearTariffsResponse) => crate::station::tariffs::clear_tariffs;
        get_der_control_v21: v21 V21 GetDERControl(GetDERControlRequest, GetDERControlResponse) => crate::station::der::get_der_control;
        get_periodic_event_stream_v21: v21 V21 GetPeriodicEventStream(GetPeriodicEventStreamRequest, GetPeriodicEventStreamResponse) => crate::station::streams::get_periodic_event_stream;
        get_tariffs_v21: v21 V21 GetTariffs(GetTariffsRequest, GetTariffsResponse) => crate::station::tariffs::get_tariffs;
        notify_allowed_energy_transfer_v21: v21 V21 NotifyAllowedEnergyTransfer(NotifyAllowedEnergyTransferRequest, NotifyAllowedEnergyTransferResponse);
        notify_web_payment_started_v21: v21 V21 NotifyWebPaymentStarted(NotifyWebPaymentStartedRequest, NotifyWebPaymentStartedResponse);
        request_battery_swap_v21: v21 V21 RequestBatterySwap(RequestBatterySwapRequest, RequestBatterySwapResponse);
        set_der_control_v21: v21 V21 SetDERControl(SetDERControlRequest, SetDERControlResponse) => crate::station::der::set_der_control;
        set_default_tariff_v21: v21 V21 SetDefaultTariff(SetDefaultTariffRequest, SetDefaultTariffResponse) => crate::station::tariffs::set_default_tariff;
        update_dynamic_schedule_v21: v21 V21 UpdateDynamicSchedule(UpdateDynamicScheduleRequest, UpdateDynamicScheduleResponse);
        use_priority_charging_v21: v21 V21 UsePriorityCharging(UsePriorityChargingRequest, UsePriorityChargingResponse);
    }
}

/// Routes a decoded call from the central system to the application's method, and its answer
/// into the version's typed response.
pub(crate) fn dispatch(
    app: &mut dyn Application,
    ctx: &mut Context<'_>,
    request: TypedRequest,
) -> Result<TypedResponse, CallError> {
    let request = match dispatch_per_version(app, ctx, request) {
        Ok(answer) => return answer,
        Err(request) => request,
    };
    let neutral = match Neutral::of(&request) {
        Some(n) => n,
        None => return refusal_any(&request),
    };
    let version = ctx.version();
    let action = request.action().as_str();
    ctx.raw = Some(request);
    let mut builtin = BuiltIn;
    macro_rules! block {
        ($accessor:ident, $Trait:ident) => {
            match app.$accessor() {
                Some(h) => h as &mut dyn $Trait,
                None => &mut builtin as &mut dyn $Trait,
            }
        };
    }
    let answer = match neutral {
        Neutral::Reset(r) => Answer::Status(
            block!(remote_control, RemoteControl)
                .reset(ctx, r)?
                .as_str(),
        ),
        Neutral::Availability(r) => Answer::Status(
            block!(availability, Availability)
                .change_availability(ctx, r)?
                .as_str(),
        ),
        Neutral::ClearCache => Answer::Status(
            block!(authorization, Authorization)
                .clear_cache(ctx)?
                .as_str(),
        ),
        Neutral::Start(r) => Answer::Status(
            block!(remote_control, RemoteControl)
                .remote_start(ctx, r)?
                .as_str(),
        ),
        Neutral::Stop(r) => Answer::Status(
            block!(remote_control, RemoteControl)
                .remote_stop(ctx, r)?
                .as_str(),
        ),
        Neutral::Unlock(r) => {
            let s = block!(remote_control, RemoteControl).unlock_connector(ctx, r)?;
            Answer::Status(match (version, s) {
                (Version::V16, UnlockStatus::UnknownConnector) => "NotSupported",
                (Version::V16, UnlockStatus::OngoingAuthorizedTransaction) => "UnlockFailed",
                (_, s) => s.as_str(),
            })
        }
        Neutral::Trigger(r) => Answer::Status(
            block!(remote_control, RemoteControl)
                .trigger_message(ctx, r)?
                .as_str(),
        ),
        Neutral::DataTransfer(r) => {
            Answer::Data(block!(data_transfer, DataTransfer).data_transfer(ctx, r)?)
        }
        Neutral::LocalListVersion => {
            Answer::Version(block!(local_list, LocalList).get_local_list_version(ctx)?)
        }
    };
    let Some(request) = ctx.raw.take() else {
        return Err(CallError::new(ErrorCode::InternalError, "request lost"));
    };
    answer.typed(request, version, action)
}

/// A version-neutral request, read from the typed one.
enum Neutral {
    Reset(Reset),
    Availability(ChangeAvailability),
    ClearCache,
    Start(RemoteStart),
    Stop(RemoteStop),
    Unlock(UnlockConnector),
    Trigger(TriggerMessage),
    DataTransfer(IncomingDataTransfer),
    LocalListVersion,
}

/// The answer of a version-neutral method.
enum Answer {
    Status(&'static str),
    Data(DataTransferReply),
    Version(i32),
}

impl Neutral {
    fn of(request: &TypedRequest) -> Option<Neutral> {
        use ocpp_codec::typed::TypedRequest as T;
        use ocpp_types::{v16, v201, v21};
        macro_rules! v2x {
            ($v:ident, $q:expr) => {{
                use $v::AnyRequest as Q;
                match $q {
                    Q::Reset(q) => Neutral::Reset(Reset {
                        kind: match q.r#type {
                            $v::ResetEnumType::Immediate => ResetType::Immediate,
                            $v::ResetEnumType::OnIdle => ResetType::OnIdle,
                            #[allow(unreachable_patterns)]
                            _ => ResetType::Immediate,
                        },
                        evse: q.evse_id,
                    }),
                    Q::ChangeAvailability(q) => Neutral::Availability(ChangeAvailability {
                        evse: q.evse.as_ref().map_or(0, |e| e.id),
                        connector: q.evse.as_ref().and_then(|e| e.connector_id),
                        operative: q.operational_status.as_str() == "Operative",
                    }),
                    Q::ClearCache(_) => Neutral::ClearCache,
                    Q::RequestStartTransaction(q) => Neutral::Start(RemoteStart {
                        evse: q.evse_id,
                        id_token: q.id_token.id_token.as_str().to_owned(),
                        token_type: q.id_token.r#type.to_string(),
                        remote_start_id: Some(q.remote_start_id),
                    }),
                    Q::RequestStopTransaction(q) => Neutral::Stop(RemoteStop {
                        transaction_id: q.transaction_id.as_str().to_owned(),
                    }),
                    Q::UnlockConnector(q) => Neutral::Unlock(UnlockConnector {
                        evse: q.evse_id,
                        connector: Some(q.connector_id),
                    }),
                    Q::TriggerMessage(q) => Neutral::Trigger(TriggerMessage {
                        requested: q.requested_message.as_str().to_owned(),
                        evse: q.evse.as_ref().map(|e| e.id),
                        connector: q.evse.as_ref().and_then(|e| e.connector_id),
                    }),
                    Q::DataTransfer(q) => Neutral::DataTransfer(IncomingDataTransfer {
                        vendor_id: q.vendor_id.as_str().to_owned(),
                        message_id: q.message_id.as_ref().map(|m| m.as_str().to_owned()),
                        data: q.data.clone(),
                    }),
                    Q::GetLocalListVersion(_) => Neutral::LocalListVersion,
                    _ => return None,
                }
            }};
        }
        Some(match request {
            T::V16(q) => {
                use v16::AnyRequest as Q;
                match q {
                    Q::Reset(q) => Neutral::Reset(Reset {
                        kind: match q.r#type {
                            v16::ResetType::Hard => ResetType::Hard,
                            v16::ResetType::Soft => ResetType::Soft,
                        },
                        evse: None,
                    }),
                    Q::ChangeAvailability(q) => Neutral::Availability(ChangeAvailability {
                        evse: q.connector_id,
                        connector: None,
                        operative: q.r#type == v16::AvailabilityType::Operative,
                    }),
                    Q::ClearCache(_) => Neutral::ClearCache,
                    Q::RemoteStartTransaction(q) => Neutral::Start(RemoteStart {
                        evse: q.connector_id,
                        id_token: q.id_tag.as_str().to_owned(),
                        token_type: "ISO14443".into(),
                        remote_start_id: None,
                    }),
                    Q::RemoteStopTransaction(q) => Neutral::Stop(RemoteStop {
                        transaction_id: q.transaction_id.to_string(),
                    }),
                    Q::UnlockConnector(q) => Neutral::Unlock(UnlockConnector {
                        evse: q.connector_id,
                        connector: None,
                    }),
                    Q::TriggerMessage(q) => Neutral::Trigger(TriggerMessage {
                        requested: q.requested_message.as_str().to_owned(),
                        evse: q.connector_id,
                        connector: None,
                    }),
                    Q::ExtendedTriggerMessage(q) => Neutral::Trigger(TriggerMessage {
                        requested: q.requested_message.as_str().to_owned(),
                        evse: q.connector_id,
                        connector: None,
                    }),
                    Q::DataTransfer(q) => Neutral::DataTransfer(IncomingDataTransfer {
                        vendor_id: q.vendor_id.as_str().to_owned(),
                        message_id: q.message_id.as_ref().map(|m| m.as_str().to_owned()),
                        data: q.data.clone().map(Value::String),
                    }),
                    Q::GetLocalListVersion(_) => Neutral::LocalListVersion,
                    _ => return None,
                }
            }
            T::V201(q) => v2x!(v201, q),
            T::V21(q) => v2x!(v21, q),
        })
    }
}

/// 1.6 DataTransfer data is a string: other JSON goes as its text.
fn data_v16(data: Option<Value>) -> Option<String> {
    data.map(|d| match d {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

impl Answer {
    /// The typed response of `request` carrying this answer.
    fn typed(
        self,
        request: TypedRequest,
        version: Version,
        action: &str,
    ) -> Result<TypedResponse, CallError> {
        use ocpp_codec::typed::TypedRequest as T;
        use ocpp_types::{v16, v201, v21};
        let bad = || {
            CallError::new(
                ErrorCode::InternalError,
                format!("the application's answer does not fit {action}"),
            )
        };
        macro_rules! v2x {
            ($v:ident, $V:ident, $q:expr) => {{
                use $v::{AnyRequest as Q, AnyResponse as R};
                TypedResponse::$V(match (self, $q) {
                    (Answer::Status(s), Q::Reset(_)) => {
                        R::from($v::ResetResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Status(s), Q::ChangeAvailability(_)) => R::from(
                        $v::ChangeAvailabilityResponse::new(wire(s, version, action)?),
                    ),
                    (Answer::Status(s), Q::ClearCache(_)) => {
                        R::from($v::ClearCacheResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Status(s), Q::RequestStartTransaction(_)) => R::from(
                        $v::RequestStartTransactionResponse::new(wire(s, version, action)?),
                    ),
                    (Answer::Status(s), Q::RequestStopTransaction(_)) => R::from(
                        $v::RequestStopTransactionResponse::new(wire(s, version, action)?),
                    ),
                    (Answer::Status(s), Q::UnlockConnector(_)) => {
                        R::from($v::UnlockConnectorResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Status(s), Q::TriggerMessage(_)) => {
                        R::from($v::TriggerMessageResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Data(d), Q::DataTransfer(_)) => {
                        let mut r =
                            $v::DataTransferResponse::new(wire(&d.status, version, action)?);
                        r.data = d.data;
                        R::from(r)
                    }
                    (Answer::Version(n), Q::GetLocalListVersion(_)) => {
                        R::from($v::GetLocalListVersionResponse::new(n))
                    }
                    _ => return Err(bad()),
                })
            }};
        }
        Ok(match request {
            T::V16(q) => {
                use v16::{AnyRequest as Q, AnyResponse as R};
                TypedResponse::V16(match (self, q) {
                    (Answer::Status(s), Q::Reset(_)) => {
                        R::from(v16::ResetResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Status(s), Q::ChangeAvailability(_)) => R::from(
                        v16::ChangeAvailabilityResponse::new(wire(s, version, action)?),
                    ),
                    (Answer::Status(s), Q::ClearCache(_)) => {
                        R::from(v16::ClearCacheResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Status(s), Q::RemoteStartTransaction(_)) => R::from(
                        v16::RemoteStartTransactionResponse::new(wire(s, version, action)?),
                    ),
                    (Answer::Status(s), Q::RemoteStopTransaction(_)) => R::from(
                        v16::RemoteStopTransactionResponse::new(wire(s, version, action)?),
                    ),
                    (Answer::Status(s), Q::UnlockConnector(_)) => {
                        R::from(v16::UnlockConnectorResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Status(s), Q::TriggerMessage(_)) => {
                        R::from(v16::TriggerMessageResponse::new(wire(s, version, action)?))
                    }
                    (Answer::Status(s), Q::ExtendedTriggerMessage(_)) => R::from(
                        v16::ExtendedTriggerMessageResponse::new(wire(s, version, action)?),
                    ),
                    (Answer::Data(d), Q::DataTransfer(_)) => {
                        let mut r =
                            v16::DataTransferResponse::new(wire(&d.status, version, action)?);
                        r.data = data_v16(d.data);
                        R::from(r)
                    }
                    (Answer::Version(n), Q::GetLocalListVersion(_)) => {
                        R::from(v16::GetLocalListVersionResponse::new(n))
                    }
                    _ => return Err(bad()),
                })
            }
            T::V201(q) => v2x!(v201, V201, q),
            T::V21(q) => v2x!(v21, V21, q),
        })
    }
}
