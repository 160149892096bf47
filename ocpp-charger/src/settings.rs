//! Configuration: the 1.6 configuration keys and the 2.x device model.
//!
//! Both are a static table of definitions (name, type, access, reboot flag, default) plus a
//! small per-station map of changed values, so an untouched station costs a few bytes (the
//! simulator runs thousands of them). The station reads its behaviour from here through
//! [`Setting`]; the central system reads and changes it with 1.6 Get/ChangeConfiguration or
//! 2.x Get/SetVariables and GetBaseReport.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use ocpp_codec::Version;

/// The largest value, in seconds, of every interval setting (heartbeat, sampling,
/// clock-aligned, message retry, connection time-out, WebSocket ping): one day. A larger value
/// from the central system is refused (`Rejected`): no flow of either version needs a longer
/// period, and a station that keeps silent longer looks dead. Equal to
/// [`MAX_TIMER`](crate::time::MAX_TIMER).
pub const MAX_INTERVAL_SECS: u32 = 86_400;

/// The settings the station's behaviour depends on, by meaning (independent of version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Setting {
    /// Seconds between heartbeats (1.6 `HeartbeatInterval`, 2.x `OCPPCommCtrlr.HeartbeatInterval`).
    HeartbeatInterval,
    /// Attempts per transaction message (1.6 `TransactionMessageAttempts`, 2.x
    /// `OCPPCommCtrlr.MessageAttempts[TransactionEvent]`).
    MessageAttempts,
    /// Seconds between attempts, multiplied by the attempts so far (1.6
    /// `TransactionMessageRetryInterval`, 2.x `OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]`).
    MessageAttemptInterval,
    /// Seconds between transaction meter samples, 0 = off (1.6 `MeterValueSampleInterval`,
    /// 2.x `SampledDataCtrlr.TxUpdatedInterval`).
    SampleInterval,
    /// Measurands of periodic samples (1.6 `MeterValuesSampledData`, 2.x
    /// `SampledDataCtrlr.TxUpdatedMeasurands`).
    SampledMeasurands,
    /// Seconds between clock-aligned readings, 0 = off (1.6 `ClockAlignedDataInterval`,
    /// 2.x `AlignedDataCtrlr.Interval`).
    AlignedInterval,
    /// Measurands of clock-aligned readings (1.6 `MeterValuesAlignedData`, 2.x
    /// `AlignedDataCtrlr.Measurands`).
    AlignedMeasurands,
    /// Measurands at transaction start and end (1.6 `StopTxnSampledData`, 2.x
    /// `SampledDataCtrlr.TxEndedMeasurands`).
    TxEndedMeasurands,
    /// Seconds an authorization waits for the cable (1.6 `ConnectionTimeOut`, 2.x
    /// `TxCtrlr.EVConnectionTimeOut`).
    ConnectionTimeout,
    /// Stop the transaction when the EV unplugs (1.6 `StopTransactionOnEVSideDisconnect`, 2.x
    /// `TxCtrlr.StopTxOnEVSideDisconnect`).
    StopOnEvDisconnect,
    /// Stop the transaction when the central system rejects its id (1.6
    /// `StopTransactionOnInvalidId`, 2.x `TxCtrlr.StopTxOnInvalidId`).
    StopOnInvalidId,
    /// Authorize remote starts first (1.6 `AuthorizeRemoteTxRequests`, 2.x
    /// `AuthCtrlr.AuthorizeRemoteStart`).
    AuthorizeRemoteStart,
    /// Accept cached tokens while offline (1.6 `LocalAuthorizeOffline`, 2.x
    /// `AuthCtrlr.LocalAuthorizeOffline`).
    LocalAuthorizeOffline,
    /// Start at once for a cached token while online (1.6 `LocalPreAuthorize`, 2.x
    /// `AuthCtrlr.LocalPreAuthorize`).
    LocalPreAuthorize,
    /// Allow offline transactions for unknown tokens (1.6 `AllowOfflineTxForUnknownId`, 2.x
    /// `AuthCtrlr.OfflineTxForUnknownIdEnabled`).
    OfflineTxForUnknownId,
    /// The authorization cache is used (1.6 `AuthorizationCacheEnabled`, 2.x
    /// `AuthCacheCtrlr.Enabled`).
    AuthCacheEnabled,
    /// Seconds between WebSocket pings, 0 = off (1.6 `WebSocketPingInterval`, 2.x
    /// `OCPPCommCtrlr.WebSocketPingInterval`).
    WebSocketPingInterval,
    /// The HTTP Basic-auth password (security profile 1), write-only: 1.6 `AuthorizationKey`
    /// (security whitepaper: hex-encoded, 16 to 20 bytes), 2.x
    /// `SecurityCtrlr.BasicAuthPassword` (a `passwordString` of 16 to 40 characters). Empty:
    /// none set over OCPP (the driver's configured password is used).
    BasicAuthPassword,
    /// The local authorization list is used (1.6 `LocalAuthListEnabled`, 2.x
    /// `LocalAuthListCtrlr.Enabled`).
    LocalAuthListEnabled,
    /// (2.x) Reservations are accepted (`ReservationCtrlr.Enabled`; 1.6 always).
    ReservationEnabled,
    /// A reservation may leave the EVSE open (1.6 `ReserveConnectorZeroSupported`, 2.x
    /// `ReservationCtrlr.NonEvseSpecific`).
    ReserveAnyEvse,
    /// Transaction readings (begin, periodic, end) are sent signed when the meter can sign
    /// (1.6 `SampledDataSignReadings`, 2.x `SampledDataCtrlr.SignReadings`).
    SampledSignReadings,
    /// Clock-aligned readings are sent signed when the meter can sign (1.6
    /// `AlignedDataSignReadings`, 2.x `AlignedDataCtrlr.SignReadings`).
    AlignedSignReadings,
    /// (2.x) When a signed value carries the meter's public key: `Never`,
    /// `OncePerTransaction` or `EveryMeterValue` (`OCPPCommCtrlr.PublicKeyWithSignedMeterValue`).
    PublicKeyWithSignedMeterValue,
}

/// A value's type, for validation and for 2.x `variableCharacteristics.dataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A non-negative integer.
    Integer,
    /// `true` / `false`.
    Boolean,
    /// Free text.
    Text,
    /// A comma-separated list of measurands.
    Measurands,
    /// A Basic-auth password ([`Setting::BasicAuthPassword`]): 1.6 hex digits decoding to 16
    /// to 20 bytes, 2.x 16 to 40 `passwordString` characters. Never read back, never in a
    /// `Debug` output.
    Password,
}

/// Who may change a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
    /// Write only: the central system sets it, no read (GetConfiguration lists the key
    /// without a value, GetVariables answers `Rejected`, reports carry no value).
    WriteOnly,
}

/// One definition: a 1.6 key, or a 2.x component/variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// 2.x component name; empty for 1.6 keys.
    pub component: &'static str,
    /// The 1.6 key or 2.x variable name.
    pub name: &'static str,
    /// 2.x variable instance.
    pub instance: Option<&'static str>,
    /// Value type.
    pub kind: Kind,
    /// Access.
    pub access: Access,
    /// A change only takes effect after a reboot (ChangeConfiguration / SetVariables answer
    /// `RebootRequired`).
    pub reboot_required: bool,
    /// The default value.
    pub default: &'static str,
    /// What the station uses it for.
    pub setting: Option<Setting>,
}

impl Definition {
    /// The values an [`Kind::Integer`] definition accepts from the central system (anything
    /// else is answered `Rejected`):
    ///
    /// - `HeartbeatInterval`: `1..=`[`MAX_INTERVAL_SECS`]. OCPP 1.6 §9.1.8 defines it as the
    ///   interval of inactivity after which a Heartbeat is sent, a positive number of seconds; 0
    ///   would silently stop heartbeats, so it is refused (2.x `OCPPCommCtrlr.HeartbeatInterval`
    ///   likewise).
    /// - `ConnectionTimeOut` / `TxCtrlr.EVConnectionTimeOut`: `1..=`[`MAX_INTERVAL_SECS`]; 0
    ///   would keep an authorization waiting for a cable for ever.
    /// - Sampling, clock-aligned and WebSocket ping intervals: `0..=`[`MAX_INTERVAL_SECS`], 0
    ///   meaning off (1.6 §9.1 `MeterValueSampleInterval`, `ClockAlignedDataInterval`,
    ///   `WebSocketPingInterval`: "0 ... no data" / "disabled").
    /// - `TransactionMessageRetryInterval` / `MessageAttemptInterval`: `0..=`
    ///   [`MAX_INTERVAL_SECS`]; the station still waits at least
    ///   [`MIN_RETRY`](crate::station::MIN_RETRY) between attempts.
    /// - Any other integer: `0..=u32::MAX` (OCPP integers are 32-bit; negatives make no sense
    ///   for these counts).
    ///
    /// Other kinds: the full `u32` range (unused).
    pub fn range(&self) -> RangeInclusive<u32> {
        match self.setting {
            Some(Setting::HeartbeatInterval | Setting::ConnectionTimeout) => 1..=MAX_INTERVAL_SECS,
            Some(
                Setting::SampleInterval
                | Setting::AlignedInterval
                | Setting::MessageAttemptInterval
                | Setting::WebSocketPingInterval,
            ) => 0..=MAX_INTERVAL_SECS,
            _ => 0..=u32::MAX,
        }
    }
}

const fn d(
    component: &'static str,
    name: &'static str,
    instance: Option<&'static str>,
    kind: Kind,
    access: Access,
    default: &'static str,
    setting: Option<Setting>,
) -> Definition {
    Definition {
        component,
        name,
        instance,
        kind,
        access,
        reboot_required: false,
        default,
        setting,
    }
}

const fn reboot(mut def: Definition) -> Definition {
    def.reboot_required = true;
    def
}

use Access::{ReadOnly as RO, ReadWrite as RW, WriteOnly as WO};
use Kind::{Boolean as B, Integer as I, Measurands as M, Password as PW, Text as T};
use Setting as S;

/// The OCPP 1.6 standard configuration keys this station implements (1.6 §9.1 Core profile,
/// plus the Smart Charging / Local Auth List keys answered as read-only where relevant).
/// `NumberOfConnectors` is filled from the station configuration.
pub const V16_KEYS: &[Definition] = &[
    d(
        "",
        "AllowOfflineTxForUnknownId",
        None,
        B,
        RW,
        "false",
        Some(S::OfflineTxForUnknownId),
    ),
    d(
        "",
        "AuthorizationCacheEnabled",
        None,
        B,
        RW,
        "true",
        Some(S::AuthCacheEnabled),
    ),
    d(
        "",
        "AuthorizeRemoteTxRequests",
        None,
        B,
        RW,
        "false",
        Some(S::AuthorizeRemoteStart),
    ),
    d(
        "",
        "ClockAlignedDataInterval",
        None,
        I,
        RW,
        "0",
        Some(S::AlignedInterval),
    ),
    d(
        "",
        "ConnectionTimeOut",
        None,
        I,
        RW,
        "120",
        Some(S::ConnectionTimeout),
    ),
    d(
        "",
        "ConnectorPhaseRotation",
        None,
        T,
        RW,
        "NotApplicable",
        None,
    ),
    d("", "GetConfigurationMaxKeys", None, I, RO, "50", None),
    d(
        "",
        "HeartbeatInterval",
        None,
        I,
        RW,
        "300",
        Some(S::HeartbeatInterval),
    ),
    d(
        "",
        "LocalAuthListEnabled",
        None,
        B,
        RW,
        "true",
        Some(S::LocalAuthListEnabled),
    ),
    d(
        "",
        "LocalAuthorizeOffline",
        None,
        B,
        RW,
        "true",
        Some(S::LocalAuthorizeOffline),
    ),
    d(
        "",
        "LocalPreAuthorize",
        None,
        B,
        RW,
        "false",
        Some(S::LocalPreAuthorize),
    ),
    d(
        "",
        "MeterValuesAlignedData",
        None,
        M,
        RW,
        "Energy.Active.Import.Register",
        Some(S::AlignedMeasurands),
    ),
    d(
        "",
        "MeterValuesSampledData",
        None,
        M,
        RW,
        "Energy.Active.Import.Register",
        Some(S::SampledMeasurands),
    ),
    d(
        "",
        "MeterValueSampleInterval",
        None,
        I,
        RW,
        "60",
        Some(S::SampleInterval),
    ),
    d("", "NumberOfConnectors", None, I, RO, "1", None),
    d("", "ResetRetries", None, I, RW, "1", None),
    d(
        "",
        "StopTransactionOnEVSideDisconnect",
        None,
        B,
        RW,
        "true",
        Some(S::StopOnEvDisconnect),
    ),
    d(
        "",
        "StopTransactionOnInvalidId",
        None,
        B,
        RW,
        "true",
        Some(S::StopOnInvalidId),
    ),
    d("", "StopTxnAlignedData", None, M, RW, "", None),
    d(
        "",
        "StopTxnSampledData",
        None,
        M,
        RW,
        "Energy.Active.Import.Register",
        Some(S::TxEndedMeasurands),
    ),
    d(
        "",
        "SupportedFeatureProfiles",
        None,
        T,
        RO,
        "Core,LocalAuthListManagement,Reservation,RemoteTrigger,SmartCharging",
        None,
    ),
    d(
        "",
        "TransactionMessageAttempts",
        None,
        I,
        RW,
        "3",
        Some(S::MessageAttempts),
    ),
    d(
        "",
        "TransactionMessageRetryInterval",
        None,
        I,
        RW,
        "60",
        Some(S::MessageAttemptInterval),
    ),
    d(
        "",
        "UnlockConnectorOnEVSideDisconnect",
        None,
        B,
        RW,
        "true",
        None,
    ),
    reboot(d(
        "",
        "WebSocketPingInterval",
        None,
        I,
        RW,
        "30",
        Some(S::WebSocketPingInterval),
    )),
    // Persisted changes are keyed by position: new definitions go at the end.
    d(
        "",
        "AuthorizationKey",
        None,
        PW,
        WO,
        "",
        Some(S::BasicAuthPassword),
    ),
    // Smart charging (1.6 §9.4): the bounds of `crate::smart_charging`, filled in from
    // `SmartChargingConfig` when the station is built.
    d("", "ChargeProfileMaxStackLevel", None, I, RO, "100", None),
    d(
        "",
        "ChargingScheduleAllowedChargingRateUnit",
        None,
        T,
        RO,
        "Current,Power",
        None,
    ),
    d("", "ChargingScheduleMaxPeriods", None, I, RO, "96", None),
    d("", "MaxChargingProfilesInstalled", None, I, RO, "32", None),
    // Local list and reservations (1.6 §9.2, §9.3): the bounds of the station's
    // `LocalListConfig`, filled in when the station is built.
    d("", "LocalAuthListMaxLength", None, I, RO, "1000", None),
    d("", "SendLocalListMaxLength", None, I, RO, "250", None),
    d(
        "",
        "ReserveConnectorZeroSupported",
        None,
        B,
        RO,
        "true",
        Some(S::ReserveAnyEvse),
    ),
    // Signed meter values (appended: stores keep changed values by index).
    d(
        "",
        "AlignedDataSignReadings",
        None,
        B,
        RW,
        "false",
        Some(S::AlignedSignReadings),
    ),
    d(
        "",
        "SampledDataSignReadings",
        None,
        B,
        RW,
        "false",
        Some(S::SampledSignReadings),
    ),
];

/// The OCPP 2.x device-model variables this station implements (2.0.1 / 2.1 part 2,
/// appendix "Standardized components and variables"), station-level.
pub const V2X_VARIABLES: &[Definition] = &[
    d("AlignedDataCtrlr", "Enabled", None, B, RO, "true", None),
    d(
        "AlignedDataCtrlr",
        "Interval",
        None,
        I,
        RW,
        "0",
        Some(S::AlignedInterval),
    ),
    d(
        "AlignedDataCtrlr",
        "Measurands",
        None,
        M,
        RW,
        "Energy.Active.Import.Register",
        Some(S::AlignedMeasurands),
    ),
    d(
        "AlignedDataCtrlr",
        "TxEndedInterval",
        None,
        I,
        RW,
        "0",
        None,
    ),
    d(
        "AlignedDataCtrlr",
        "TxEndedMeasurands",
        None,
        M,
        RW,
        "",
        None,
    ),
    d("AuthCacheCtrlr", "Available", None, B, RO, "true", None),
    d(
        "AuthCacheCtrlr",
        "Enabled",
        None,
        B,
        RW,
        "true",
        Some(S::AuthCacheEnabled),
    ),
    d(
        "AuthCtrlr",
        "AuthorizeRemoteStart",
        None,
        B,
        RW,
        "false",
        Some(S::AuthorizeRemoteStart),
    ),
    d("AuthCtrlr", "Enabled", None, B, RO, "true", None),
    d(
        "AuthCtrlr",
        "LocalAuthorizeOffline",
        None,
        B,
        RW,
        "true",
        Some(S::LocalAuthorizeOffline),
    ),
    d(
        "AuthCtrlr",
        "LocalPreAuthorize",
        None,
        B,
        RW,
        "false",
        Some(S::LocalPreAuthorize),
    ),
    d(
        "AuthCtrlr",
        "OfflineTxForUnknownIdEnabled",
        None,
        B,
        RW,
        "false",
        Some(S::OfflineTxForUnknownId),
    ),
    d("ChargingStation", "Available", None, B, RO, "true", None),
    d("ClockCtrlr", "TimeSource", None, T, RO, "Heartbeat", None),
    d(
        "DeviceDataCtrlr",
        "ItemsPerMessage",
        Some("GetReport"),
        I,
        RO,
        "20",
        None,
    ),
    d(
        "DeviceDataCtrlr",
        "ItemsPerMessage",
        Some("GetVariables"),
        I,
        RO,
        "50",
        None,
    ),
    d(
        "DeviceDataCtrlr",
        "ItemsPerMessage",
        Some("SetVariables"),
        I,
        RO,
        "50",
        None,
    ),
    d(
        "DeviceDataCtrlr",
        "BytesPerMessage",
        Some("GetReport"),
        I,
        RO,
        "65000",
        None,
    ),
    d(
        "DeviceDataCtrlr",
        "BytesPerMessage",
        Some("GetVariables"),
        I,
        RO,
        "65000",
        None,
    ),
    d(
        "DeviceDataCtrlr",
        "BytesPerMessage",
        Some("SetVariables"),
        I,
        RO,
        "65000",
        None,
    ),
    d(
        "OCPPCommCtrlr",
        "HeartbeatInterval",
        None,
        I,
        RW,
        "300",
        Some(S::HeartbeatInterval),
    ),
    d(
        "OCPPCommCtrlr",
        "MessageAttemptInterval",
        Some("TransactionEvent"),
        I,
        RW,
        "60",
        Some(S::MessageAttemptInterval),
    ),
    d(
        "OCPPCommCtrlr",
        "MessageAttempts",
        Some("TransactionEvent"),
        I,
        RW,
        "3",
        Some(S::MessageAttempts),
    ),
    d(
        "OCPPCommCtrlr",
        "MessageTimeout",
        Some("Default"),
        I,
        RO,
        "30",
        None,
    ),
    d(
        "OCPPCommCtrlr",
        "NetworkConfigurationPriority",
        None,
        T,
        RO,
        "0",
        None,
    ),
    d(
        "OCPPCommCtrlr",
        "NetworkProfileConnectionAttempts",
        None,
        I,
        RO,
        "3",
        None,
    ),
    d("OCPPCommCtrlr", "OfflineThreshold", None, I, RW, "60", None),
    d("OCPPCommCtrlr", "ResetRetries", None, I, RW, "1", None),
    reboot(d(
        "OCPPCommCtrlr",
        "WebSocketPingInterval",
        None,
        I,
        RW,
        "30",
        Some(S::WebSocketPingInterval),
    )),
    d("SampledDataCtrlr", "Enabled", None, B, RO, "true", None),
    d(
        "SampledDataCtrlr",
        "TxEndedInterval",
        None,
        I,
        RW,
        "0",
        None,
    ),
    d(
        "SampledDataCtrlr",
        "TxEndedMeasurands",
        None,
        M,
        RW,
        "Energy.Active.Import.Register",
        Some(S::TxEndedMeasurands),
    ),
    d(
        "SampledDataCtrlr",
        "TxStartedMeasurands",
        None,
        M,
        RW,
        "Energy.Active.Import.Register",
        None,
    ),
    d(
        "SampledDataCtrlr",
        "TxUpdatedInterval",
        None,
        I,
        RW,
        "60",
        Some(S::SampleInterval),
    ),
    d(
        "SampledDataCtrlr",
        "TxUpdatedMeasurands",
        None,
        M,
        RW,
        "Energy.Active.Import.Register",
        Some(S::SampledMeasurands),
    ),
    d("SecurityCtrlr", "SecurityProfile", None, I, RO, "1", None),
    d(
        "TxCtrlr",
        "EVConnectionTimeOut",
        None,
        I,
        RW,
        "120",
        Some(S::ConnectionTimeout),
    ),
    d(
        "TxCtrlr",
        "StopTxOnEVSideDisconnect",
        None,
        B,
        RW,
        "true",
        Some(S::StopOnEvDisconnect),
    ),
    d(
        "TxCtrlr",
        "StopTxOnInvalidId",
        None,
        B,
        RW,
        "true",
        Some(S::StopOnInvalidId),
    ),
    d(
        "TxCtrlr",
        "TxStartPoint",
        None,
        T,
        RO,
        "PowerPathClosed",
        None,
    ),
    d(
        "TxCtrlr",
        "TxStopPoint",
        None,
        T,
        RO,
        "EVConnected,Authorized",
        None,
    ),
    // Persisted changes are keyed by position: new definitions go at the end.
    d(
        "SecurityCtrlr",
        "BasicAuthPassword",
        None,
        PW,
        WO,
        "",
        Some(S::BasicAuthPassword),
    ),
    // Smart charging (2.x SmartChargingCtrlr): the bounds of `crate::smart_charging`, filled
    // in from `SmartChargingConfig` when the station is built.
    d("SmartChargingCtrlr", "Enabled", None, B, RO, "true", None),
    d("SmartChargingCtrlr", "Available", None, B, RO, "true", None),
    d(
        "SmartChargingCtrlr",
        "Entries",
        Some("ChargingProfiles"),
        I,
        RO,
        "32",
        None,
    ),
    d(
        "SmartChargingCtrlr",
        "PeriodsPerSchedule",
        None,
        I,
        RO,
        "96",
        None,
    ),
    d(
        "SmartChargingCtrlr",
        "ProfileStackLevel",
        None,
        I,
        RO,
        "100",
        None,
    ),
    d("SmartChargingCtrlr", "RateUnit", None, T, RO, "A,W", None),
    // The local authorization list (2.x block D) and reservations (block H); the bounds are
    // the station's `LocalListConfig`, filled in when the station is built. `Entries` is the
    // number of tokens in the list.
    d("LocalAuthListCtrlr", "Available", None, B, RO, "true", None),
    d(
        "LocalAuthListCtrlr",
        "Enabled",
        None,
        B,
        RW,
        "true",
        Some(S::LocalAuthListEnabled),
    ),
    d("LocalAuthListCtrlr", "Entries", None, I, RO, "0", None),
    d(
        "LocalAuthListCtrlr",
        "ItemsPerMessage",
        None,
        I,
        RO,
        "250",
        None,
    ),
    d(
        "LocalAuthListCtrlr",
        "BytesPerMessage",
        None,
        I,
        RO,
        "65000",
        None,
    ),
    // Display messages (2.x block O); the values are the station's `DisplayConfig`, filled
    // in when the station is built.
    d(
        "DisplayMessageCtrlr",
        "Available",
        None,
        B,
        RO,
        "true",
        None,
    ),
    d("DisplayMessageCtrlr", "Enabled", None, B, RO, "true", None),
    d(
        "DisplayMessageCtrlr",
        "DisplayMessages",
        None,
        I,
        RO,
        "32",
        None,
    ),
    d(
        "DisplayMessageCtrlr",
        "SupportedFormats",
        None,
        T,
        RO,
        "ASCII,UTF8",
        None,
    ),
    d(
        "DisplayMessageCtrlr",
        "SupportedPriorities",
        None,
        T,
        RO,
        "AlwaysFront,InFront,NormalCycle",
        None,
    ),
    d(
        "DisplayMessageCtrlr",
        "SupportedStates",
        None,
        T,
        RO,
        "Charging,Faulted,Idle,Unavailable",
        None,
    ),
    d("ReservationCtrlr", "Available", None, B, RO, "true", None),
    d(
        "ReservationCtrlr",
        "Enabled",
        None,
        B,
        RW,
        "true",
        Some(S::ReservationEnabled),
    ),
    d(
        "ReservationCtrlr",
        "NonEvseSpecific",
        None,
        B,
        RO,
        "true",
        Some(S::ReserveAnyEvse),
    ),
    // Monitoring (2.x block N, `crate::station::monitoring`): `Enabled` false stops the
    // evaluation; the active base and level follow SetMonitoringBase / SetMonitoringLevel.
    d("MonitoringCtrlr", "Available", None, B, RO, "true", None),
    d("MonitoringCtrlr", "Enabled", None, B, RW, "true", None),
    d(
        "MonitoringCtrlr",
        "ItemsPerMessage",
        Some("SetVariableMonitoring"),
        I,
        RO,
        "20",
        None,
    ),
    d(
        "MonitoringCtrlr",
        "ItemsPerMessage",
        Some("ClearVariableMonitoring"),
        I,
        RO,
        "20",
        None,
    ),
    d(
        "MonitoringCtrlr",
        "ActiveMonitoringBase",
        None,
        T,
        RO,
        "All",
        None,
    ),
    d(
        "MonitoringCtrlr",
        "ActiveMonitoringLevel",
        None,
        I,
        RO,
        "9",
        None,
    ),
    // Signed meter values (appended: stores keep changed values by index).
    d(
        "SampledDataCtrlr",
        "SignReadings",
        None,
        B,
        RW,
        "false",
        Some(S::SampledSignReadings),
    ),
    d(
        "AlignedDataCtrlr",
        "SignReadings",
        None,
        B,
        RW,
        "false",
        Some(S::AlignedSignReadings),
    ),
    d(
        "OCPPCommCtrlr",
        "PublicKeyWithSignedMeterValue",
        None,
        T,
        RW,
        "Never",
        Some(S::PublicKeyWithSignedMeterValue),
    ),
    // Tariffs and cost (2.1 block I); the read-only values are the station's
    // `TariffConfig`, filled in when the station is built.
    d(
        "TariffCostCtrlr",
        "Enabled",
        Some("Tariff"),
        B,
        RW,
        "true",
        None,
    ),
    d(
        "TariffCostCtrlr",
        "MaxElements",
        Some("Tariff"),
        I,
        RO,
        "100",
        None,
    ),
    d(
        "TariffCostCtrlr",
        "ConditionsSupported",
        Some("Tariff"),
        T,
        RO,
        "",
        None,
    ),
    d(
        "TariffCostCtrlr",
        "LocalCostCalculation",
        None,
        B,
        RO,
        "false",
        None,
    ),
];

/// The measurands the station can sample (from [`MeterReading`](crate::MeterReading)).
pub const SUPPORTED_MEASURANDS: &[&str] = &[
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "SoC",
    "Energy.Active.Export.Register",
    "Power.Active.Export",
];

/// Why a value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    /// No such key / variable.
    Unknown,
    /// Read-only.
    ReadOnly,
    /// Not a valid value of the type.
    Invalid,
}

/// A station's configuration: the version's table plus its changed values.
#[derive(Clone)]
pub struct Settings {
    table: &'static [Definition],
    changed: BTreeMap<u16, String>,
}

impl std::fmt::Debug for Settings {
    /// The changed values by name, a password as `<redacted>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (i, v) in &self.changed {
            let Some(d) = self.table.get(usize::from(*i)) else {
                continue;
            };
            let shown: &str = if d.kind == Kind::Password {
                "<redacted>"
            } else {
                v
            };
            m.entry(
                &format_args!(
                    "{}{}{}",
                    d.component,
                    if d.component.is_empty() { "" } else { "." },
                    d.name
                ),
                &shown,
            );
        }
        m.finish()
    }
}

impl Settings {
    /// The defaults of `version`'s table; `connectors` fills 1.6 `NumberOfConnectors`.
    pub fn new(version: Version, connectors: u32) -> Settings {
        let table = if version == Version::V16 {
            V16_KEYS
        } else {
            V2X_VARIABLES
        };
        let mut s = Settings {
            table,
            changed: BTreeMap::new(),
        };
        if let Some(i) = s.index("", "NumberOfConnectors", None) {
            if connectors != 1 {
                s.changed.insert(i as u16, connectors.to_string());
            }
        }
        s
    }

    /// Every definition of this version.
    pub fn definitions(&self) -> &'static [Definition] {
        self.table
    }

    /// The index of a definition by component (empty for 1.6), name and instance.
    pub fn index(&self, component: &str, name: &str, instance: Option<&str>) -> Option<usize> {
        self.table
            .iter()
            .position(|d| d.component == component && d.name == name && d.instance == instance)
    }

    fn index_of(&self, setting: Setting) -> Option<usize> {
        self.table.iter().position(|d| d.setting == Some(setting))
    }

    /// The current value of definition `i`.
    pub fn value_at(&self, i: usize) -> &str {
        self.changed
            .get(&(i as u16))
            .map(String::as_str)
            .unwrap_or(self.table[i].default)
    }

    /// The current value of a setting (its default when this version lacks it).
    pub fn get(&self, setting: Setting) -> &str {
        self.index_of(setting).map_or("", |i| self.value_at(i))
    }

    /// A setting as an integer (0 when unset or not a number).
    pub fn int(&self, setting: Setting) -> u64 {
        self.get(setting).trim().parse().unwrap_or(0)
    }

    /// An interval setting as a [`Duration`], always within its definition's
    /// [`range`](Definition::range): a stored value outside it (possible only from factory
    /// settings or a store written by an older version) counts as the definition's default,
    /// so e.g. a factory `HeartbeatInterval` of 0 still gives heartbeats every 300 s.
    /// `Duration::ZERO` means off (or a setting this version lacks).
    pub fn duration(&self, setting: Setting) -> Duration {
        let Some(i) = self.index_of(setting) else {
            return Duration::ZERO;
        };
        let def = &self.table[i];
        let range = def.range();
        let valid = |text: &str| {
            text.trim()
                .parse::<u32>()
                .ok()
                .filter(|v| range.contains(v))
        };
        let secs = valid(self.value_at(i))
            .or_else(|| valid(def.default))
            .unwrap_or(*range.start());
        Duration::from_secs(u64::from(secs))
    }

    /// A setting as a boolean.
    pub fn flag(&self, setting: Setting) -> bool {
        self.get(setting).trim().eq_ignore_ascii_case("true")
    }

    /// A measurand list setting.
    pub fn list(&self, setting: Setting) -> Vec<&str> {
        self.get(setting)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// A measurand list setting, as the supported measurand names it contains.
    pub fn measurands(&self, setting: Setting) -> Vec<&'static str> {
        self.list(setting)
            .into_iter()
            .filter_map(|m| SUPPORTED_MEASURANDS.iter().find(|s| **s == m).copied())
            .collect()
    }

    /// Sets a value by meaning, bypassing access checks (the station's own updates, e.g. the
    /// heartbeat interval from BootNotification).
    pub fn set_internal(&mut self, setting: Setting, value: &str) {
        if let Some(i) = self.index_of(setting) {
            self.store(i, value);
        }
    }

    /// Sets a read-only value the station derives from its configuration (the smart-charging
    /// bounds); a name this version lacks is ignored.
    pub(crate) fn set_fixed(
        &mut self,
        component: &str,
        name: &str,
        instance: Option<&str>,
        value: &str,
    ) {
        if let Some(i) = self.index(component, name, instance) {
            self.store(i, value);
        }
    }

    fn store(&mut self, i: usize, value: &str) {
        if value == self.table[i].default {
            self.changed.remove(&(i as u16));
        } else {
            self.changed.insert(i as u16, value.to_owned());
        }
    }

    /// Sets definition `i` as the central system asks: checks access and type. Returns
    /// whether a reboot is required for the change to take effect.
    pub fn set_at(&mut self, i: usize, value: &str) -> Result<bool, SetError> {
        let def = self.table.get(i).ok_or(SetError::Unknown)?;
        if def.access == Access::ReadOnly {
            return Err(SetError::ReadOnly);
        }
        let normalized = match def.kind {
            Kind::Integer => {
                // A 32-bit unsigned number within the definition's range: "-5",
                // "99999999999999999999" and a HeartbeatInterval of "0" are all refused.
                let n = value.trim().parse::<u32>().map_err(|_| SetError::Invalid)?;
                if !def.range().contains(&n) {
                    return Err(SetError::Invalid);
                }
                n.to_string()
            }
            Kind::Boolean => match value.trim().to_ascii_lowercase().as_str() {
                "true" => "true".to_owned(),
                "false" => "false".to_owned(),
                _ => return Err(SetError::Invalid),
            },
            Kind::Measurands => {
                let items: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                if items.iter().any(|m| !SUPPORTED_MEASURANDS.contains(m)) {
                    return Err(SetError::Invalid);
                }
                items.join(",")
            }
            Kind::Text => match crate::device_model::list_of(def) {
                // OptionList / MemberList / SequenceList: members of its valuesList.
                Some((data_type, list)) => crate::device_model::check_list(data_type, list, value)?,
                None => value.to_owned(),
            },
            Kind::Password if def.component.is_empty() => {
                // 1.6 AuthorizationKey: hex digits of 16 to 20 bytes.
                ocpp_codec::transport::decode_authorization_key(value).ok_or(SetError::Invalid)?;
                value.trim().to_ascii_uppercase()
            }
            Kind::Password => {
                if !ocpp_codec::transport::is_valid_v2_password(value) {
                    return Err(SetError::Invalid);
                }
                value.to_owned()
            }
        };
        self.store(i, &normalized);
        Ok(def.reboot_required)
    }

    /// The Basic-auth password set over OCPP ([`Setting::BasicAuthPassword`]) as the bytes
    /// to send: a 1.6 `AuthorizationKey` hex-decoded, a 2.x `BasicAuthPassword` as is.
    /// `None` when none is set (or a stored value no longer decodes).
    pub fn basic_auth_password(&self) -> Option<Vec<u8>> {
        let i = self.index_of(Setting::BasicAuthPassword)?;
        let value = self.value_at(i);
        if value.is_empty() {
            return None;
        }
        if self.table[i].component.is_empty() {
            ocpp_codec::transport::decode_authorization_key(value)
        } else {
            Some(value.as_bytes().to_vec())
        }
    }

    /// The changed values, for persisting (index -> value).
    pub(crate) fn changed(&self) -> &BTreeMap<u16, String> {
        &self.changed
    }

    /// Restores persisted changes.
    /// Restores persisted changes over the current values (factory overrides included).
    pub(crate) fn restore(&mut self, changed: BTreeMap<u16, String>) {
        let len = self.table.len();
        self.changed
            .extend(changed.into_iter().filter(|(i, _)| (*i as usize) < len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_and_types_are_enforced() {
        let mut s = Settings::new(Version::V16, 2);
        let n = s.index("", "NumberOfConnectors", None).unwrap();
        assert_eq!(s.value_at(n), "2");
        assert_eq!(s.set_at(n, "3"), Err(SetError::ReadOnly));
        let hb = s.index("", "HeartbeatInterval", None).unwrap();
        assert_eq!(s.set_at(hb, "x"), Err(SetError::Invalid));
        assert_eq!(s.set_at(hb, "60"), Ok(false));
        assert_eq!(s.int(Setting::HeartbeatInterval), 60);
        let ws = s.index("", "WebSocketPingInterval", None).unwrap();
        assert_eq!(s.set_at(ws, "10"), Ok(true));
        let m = s.index("", "MeterValuesSampledData", None).unwrap();
        assert_eq!(
            s.set_at(m, "Energy.Active.Import.Register,Bogus"),
            Err(SetError::Invalid)
        );
        assert_eq!(
            s.set_at(m, "Energy.Active.Import.Register, Power.Active.Import"),
            Ok(false)
        );
        assert_eq!(
            s.list(Setting::SampledMeasurands),
            ["Energy.Active.Import.Register", "Power.Active.Import"]
        );
    }

    #[test]
    fn interval_bounds_are_enforced() {
        let mut s = Settings::new(Version::V16, 1);
        let hb = s.index("", "HeartbeatInterval", None).unwrap();
        for bad in ["0", "-5", "86401", "99999999999999999999", "2147483647"] {
            assert_eq!(s.set_at(hb, bad), Err(SetError::Invalid), "{bad}");
        }
        assert_eq!(s.set_at(hb, "86400"), Ok(false));
        assert_eq!(s.duration(Setting::HeartbeatInterval).as_secs(), 86_400);
        let sample = s.index("", "MeterValueSampleInterval", None).unwrap();
        assert_eq!(s.set_at(sample, "0"), Ok(false));
        assert_eq!(s.duration(Setting::SampleInterval), Duration::ZERO);
        // Out-of-range stored values (factory settings) count as the default.
        s.set_internal(Setting::HeartbeatInterval, "0");
        assert_eq!(s.duration(Setting::HeartbeatInterval).as_secs(), 300);
        s.set_internal(Setting::ConnectionTimeout, "99999999999");
        assert_eq!(s.duration(Setting::ConnectionTimeout).as_secs(), 120);
    }

    #[test]
    fn passwords_are_validated_write_only_and_redacted() {
        let mut s = Settings::new(Version::V16, 1);
        let k = s.index("", "AuthorizationKey", None).unwrap();
        assert_eq!(s.definitions()[k].access, Access::WriteOnly);
        assert_eq!(s.basic_auth_password(), None);
        for bad in [
            "",
            "00",
            &"00".repeat(21),
            &"zz".repeat(16),
            "0123456789abcdef",
        ] {
            assert_eq!(s.set_at(k, bad), Err(SetError::Invalid), "{bad}");
        }
        let key = ocpp_codec::transport::encode_authorization_key(b"0123456789abcdefghij");
        assert_eq!(s.set_at(k, &key.to_lowercase()), Ok(false));
        assert_eq!(
            s.basic_auth_password().as_deref(),
            Some(&b"0123456789abcdefghij"[..])
        );
        assert!(!format!("{s:?}").contains(&key), "{s:?}");
        assert!(format!("{s:?}").contains("<redacted>"));

        let mut s = Settings::new(Version::V201, 1);
        let p = s.index("SecurityCtrlr", "BasicAuthPassword", None).unwrap();
        for bad in ["short", &"x".repeat(41), "sixteen chars ok"] {
            assert_eq!(s.set_at(p, bad), Err(SetError::Invalid), "{bad}");
        }
        assert_eq!(s.set_at(p, "Abcdefgh12345678:+|@."), Ok(false));
        assert_eq!(
            s.basic_auth_password().as_deref(),
            Some(&b"Abcdefgh12345678:+|@."[..])
        );
        assert!(!format!("{s:?}").contains("Abcdefgh"), "{s:?}");
    }

    #[test]
    fn v2x_variables_have_instances() {
        let s = Settings::new(Version::V201, 1);
        assert!(s
            .index("OCPPCommCtrlr", "MessageAttempts", Some("TransactionEvent"))
            .is_some());
        assert_eq!(s.int(Setting::MessageAttempts), 3);
    }
}
