//! The facts the schemas do not carry: names for OCPP 1.6's inline types and who initiates
//! each action. Both tables are explicit so the output is stable; anything missing from them is
//! a generation error that tells the maintainer what to add.

use crate::Ver;

/// Names of OCPP 1.6's inline objects and enums, keyed by (schema file stem, JSON path inside
/// the file; `items` marks an array's item). The names are the 1.6 specification's own type
/// names (section 7, "Types"). Where the specification reuses a name for different value sets,
/// the table gives each its own name. Structures reached from several messages under the same
/// name must be identical (checked), and become one shared type.
///
/// One genuine difference: StopTransaction.req's `transactionData` unit enumeration lacks
/// `Hertz`, which MeterValues.req's has (as published by the OCA). So StopTransaction gets its
/// own `TransactionMeterValue` / `TransactionSampledValue` / `TransactionUnitOfMeasure`; the
/// other sampled-value enumerations are identical and shared.
pub const V16_NAMES: &[(&str, &str, &str)] = &[
    ("AuthorizeResponse", "idTagInfo", "IdTagInfo"),
    (
        "AuthorizeResponse",
        "idTagInfo/status",
        "AuthorizationStatus",
    ),
    ("BootNotificationResponse", "status", "RegistrationStatus"),
    (
        "CancelReservationResponse",
        "status",
        "CancelReservationStatus",
    ),
    ("ChangeAvailability", "type", "AvailabilityType"),
    ("ChangeAvailabilityResponse", "status", "AvailabilityStatus"),
    (
        "ChangeConfigurationResponse",
        "status",
        "ConfigurationStatus",
    ),
    ("ClearCacheResponse", "status", "ClearCacheStatus"),
    (
        "ClearChargingProfile",
        "chargingProfilePurpose",
        "ChargingProfilePurposeType",
    ),
    (
        "ClearChargingProfileResponse",
        "status",
        "ClearChargingProfileStatus",
    ),
    ("DataTransferResponse", "status", "DataTransferStatus"),
    (
        "DiagnosticsStatusNotification",
        "status",
        "DiagnosticsStatus",
    ),
    ("FirmwareStatusNotification", "status", "FirmwareStatus"),
    (
        "GetCompositeSchedule",
        "chargingRateUnit",
        "ChargingRateUnitType",
    ),
    (
        "GetCompositeScheduleResponse",
        "status",
        "GetCompositeScheduleStatus",
    ),
    (
        "GetCompositeScheduleResponse",
        "chargingSchedule",
        "ChargingSchedule",
    ),
    (
        "GetCompositeScheduleResponse",
        "chargingSchedule/chargingRateUnit",
        "ChargingRateUnitType",
    ),
    (
        "GetCompositeScheduleResponse",
        "chargingSchedule/chargingSchedulePeriod/items",
        "ChargingSchedulePeriod",
    ),
    (
        "GetConfigurationResponse",
        "configurationKey/items",
        "KeyValue",
    ),
    ("MeterValues", "meterValue/items", "MeterValue"),
    (
        "MeterValues",
        "meterValue/items/sampledValue/items",
        "SampledValue",
    ),
    (
        "MeterValues",
        "meterValue/items/sampledValue/items/context",
        "ReadingContext",
    ),
    (
        "MeterValues",
        "meterValue/items/sampledValue/items/format",
        "ValueFormat",
    ),
    (
        "MeterValues",
        "meterValue/items/sampledValue/items/measurand",
        "Measurand",
    ),
    (
        "MeterValues",
        "meterValue/items/sampledValue/items/phase",
        "Phase",
    ),
    (
        "MeterValues",
        "meterValue/items/sampledValue/items/location",
        "Location",
    ),
    (
        "MeterValues",
        "meterValue/items/sampledValue/items/unit",
        "UnitOfMeasure",
    ),
    (
        "RemoteStartTransaction",
        "chargingProfile",
        "ChargingProfile",
    ),
    (
        "RemoteStartTransaction",
        "chargingProfile/chargingProfilePurpose",
        "ChargingProfilePurposeType",
    ),
    (
        "RemoteStartTransaction",
        "chargingProfile/chargingProfileKind",
        "ChargingProfileKindType",
    ),
    (
        "RemoteStartTransaction",
        "chargingProfile/recurrencyKind",
        "RecurrencyKindType",
    ),
    (
        "RemoteStartTransaction",
        "chargingProfile/chargingSchedule",
        "ChargingSchedule",
    ),
    (
        "RemoteStartTransaction",
        "chargingProfile/chargingSchedule/chargingRateUnit",
        "ChargingRateUnitType",
    ),
    (
        "RemoteStartTransaction",
        "chargingProfile/chargingSchedule/chargingSchedulePeriod/items",
        "ChargingSchedulePeriod",
    ),
    (
        "RemoteStartTransactionResponse",
        "status",
        "RemoteStartStopStatus",
    ),
    (
        "RemoteStopTransactionResponse",
        "status",
        "RemoteStartStopStatus",
    ),
    ("ReserveNowResponse", "status", "ReservationStatus"),
    ("Reset", "type", "ResetType"),
    ("ResetResponse", "status", "ResetStatus"),
    (
        "SendLocalList",
        "localAuthorizationList/items",
        "AuthorizationData",
    ),
    (
        "SendLocalList",
        "localAuthorizationList/items/idTagInfo",
        "IdTagInfo",
    ),
    (
        "SendLocalList",
        "localAuthorizationList/items/idTagInfo/status",
        "AuthorizationStatus",
    ),
    ("SendLocalList", "updateType", "UpdateType"),
    ("SendLocalListResponse", "status", "UpdateStatus"),
    (
        "SetChargingProfile",
        "csChargingProfiles",
        "ChargingProfile",
    ),
    (
        "SetChargingProfile",
        "csChargingProfiles/chargingProfilePurpose",
        "ChargingProfilePurposeType",
    ),
    (
        "SetChargingProfile",
        "csChargingProfiles/chargingProfileKind",
        "ChargingProfileKindType",
    ),
    (
        "SetChargingProfile",
        "csChargingProfiles/recurrencyKind",
        "RecurrencyKindType",
    ),
    (
        "SetChargingProfile",
        "csChargingProfiles/chargingSchedule",
        "ChargingSchedule",
    ),
    (
        "SetChargingProfile",
        "csChargingProfiles/chargingSchedule/chargingRateUnit",
        "ChargingRateUnitType",
    ),
    (
        "SetChargingProfile",
        "csChargingProfiles/chargingSchedule/chargingSchedulePeriod/items",
        "ChargingSchedulePeriod",
    ),
    (
        "SetChargingProfileResponse",
        "status",
        "ChargingProfileStatus",
    ),
    ("StartTransactionResponse", "idTagInfo", "IdTagInfo"),
    (
        "StartTransactionResponse",
        "idTagInfo/status",
        "AuthorizationStatus",
    ),
    ("StatusNotification", "errorCode", "ChargePointErrorCode"),
    ("StatusNotification", "status", "ChargePointStatus"),
    ("StopTransaction", "reason", "Reason"),
    (
        "StopTransaction",
        "transactionData/items",
        "TransactionMeterValue",
    ),
    (
        "StopTransaction",
        "transactionData/items/sampledValue/items",
        "TransactionSampledValue",
    ),
    (
        "StopTransaction",
        "transactionData/items/sampledValue/items/context",
        "ReadingContext",
    ),
    (
        "StopTransaction",
        "transactionData/items/sampledValue/items/format",
        "ValueFormat",
    ),
    (
        "StopTransaction",
        "transactionData/items/sampledValue/items/measurand",
        "Measurand",
    ),
    (
        "StopTransaction",
        "transactionData/items/sampledValue/items/phase",
        "Phase",
    ),
    (
        "StopTransaction",
        "transactionData/items/sampledValue/items/location",
        "Location",
    ),
    (
        "StopTransaction",
        "transactionData/items/sampledValue/items/unit",
        "TransactionUnitOfMeasure",
    ),
    ("StopTransactionResponse", "idTagInfo", "IdTagInfo"),
    (
        "StopTransactionResponse",
        "idTagInfo/status",
        "AuthorizationStatus",
    ),
    ("TriggerMessage", "requestedMessage", "MessageTrigger"),
    ("TriggerMessageResponse", "status", "TriggerMessageStatus"),
    ("UnlockConnectorResponse", "status", "UnlockStatus"),
];

/// Same-named 2.x definitions whose structures genuinely differ between files of one version
/// would be listed here as (version, definition name, file stem, name to use in that file).
/// The official schemas need none today: every same-named definition is structurally
/// identical (only descriptions differ, see `merge`), so the table is empty and any future
/// divergence fails generation with a message pointing here.
pub const RENAMES: &[(Ver, &str, &str, &str)] = &[];

const CS: &str = "ChargingStation";
const CSMS: &str = "CentralSystem";
const EITHER: &str = "Either";

/// Who sends each request (from the specifications; the schemas do not say).
pub fn initiator(ver: Ver, action: &str) -> Option<&'static str> {
    const V16_CS: &[&str] = &[
        "Authorize",
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    ];
    const V16_CSMS: &[&str] = &[
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "InstallCertificate",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SignedUpdateFirmware",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    ];
    const V201_CS: &[&str] = &[
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    ];
    const V201_CSMS: &[&str] = &[
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDisplayMessage",
        "ClearVariableMonitoring",
        "CostUpdated",
        "CustomerInformation",
        "DeleteCertificate",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDisplayMessages",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "GetTransactionStatus",
        "GetVariables",
        "InstallCertificate",
        "PublishFirmware",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetNetworkProfile",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UnpublishFirmware",
        "UpdateFirmware",
    ];
    // New in 2.1 (OCPP 2.1 specification, part 2, per message: "sent by the Charging Station
    // to the CSMS" or "sent by the CSMS to the Charging Station").
    const V21_CS: &[&str] = &[
        "BatterySwap",
        "ClosePeriodicEventStream",
        "GetCertificateChainStatus",
        "NotifyDERAlarm",
        "NotifyDERStartStop",
        "NotifyPeriodicEventStream",
        "NotifyPriorityCharging",
        "NotifyQRCodeScanned",
        "NotifySettlement",
        "OpenPeriodicEventStream",
        "PullDynamicScheduleUpdate",
        "ReportDERControl",
        "VatNumberValidation",
    ];
    const V21_CSMS: &[&str] = &[
        "AFRRSignal",
        "AdjustPeriodicEventStream",
        "ChangeTransactionTariff",
        "ClearDERControl",
        "ClearTariffs",
        "GetDERControl",
        "GetPeriodicEventStream",
        "GetTariffs",
        "NotifyAllowedEnergyTransfer",
        "NotifyWebPaymentStarted",
        "RequestBatterySwap",
        "SetDERControl",
        "SetDefaultTariff",
        "UpdateDynamicSchedule",
        "UsePriorityCharging",
    ];
    if action == "DataTransfer" {
        return Some(EITHER);
    }
    let (cs, csms): (Vec<&[&str]>, Vec<&[&str]>) = match ver {
        Ver::V16 => (vec![V16_CS], vec![V16_CSMS]),
        Ver::V201 => (vec![V201_CS], vec![V201_CSMS]),
        Ver::V21 => (vec![V201_CS, V21_CS], vec![V201_CSMS, V21_CSMS]),
    };
    if cs.iter().any(|l| l.contains(&action)) {
        Some(CS)
    } else if csms.iter().any(|l| l.contains(&action)) {
        Some(CSMS)
    } else {
        None
    }
}
