//! Plain serde mirrors of the benchmarked messages: the limit typed decoding can reach.
//!
//! Hand-written, one struct per schema object with every property of the official schema,
//! as a user would derive them: `String` for strings, timestamps and enumerations, `f64` for
//! decimals, `i32` for integers, `Option`, `Vec`, and `customData` as a `serde_json::Value`.
//! No length, range, format or enumeration checks and no `deny_unknown_fields`: they accept a
//! superset of what the schemas accept and cost what serde_json alone costs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `plain!(Name { required: T, optional?: T })`: a camelCase serde struct; `optional?: T`
/// is an `Option<T>` left out of the output when `None`.
macro_rules! plain {
    ($(#[$m:meta])* $name:ident { $($fields:tt)* }) => {
        plain!(@munch [$(#[$m])* $name] [] $($fields)*);
    };
    (@munch $head:tt [$($done:tt)*] $(#[$fm:meta])* $f:ident ?: $t:ty $(, $($rest:tt)*)?) => {
        plain!(@munch $head [$($done)*
            $(#[$fm])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $f: Option<$t>,
        ] $($($rest)*)?);
    };
    (@munch $head:tt [$($done:tt)*] $(#[$fm:meta])* $f:ident : $t:ty $(, $($rest:tt)*)?) => {
        plain!(@munch $head [$($done)* $(#[$fm])* pub $f: $t,] $($($rest)*)?);
    };
    (@munch [$(#[$m:meta])* $name:ident] [$($done:tt)*]) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name { $($done)* }
    };
}

/// OCPP 1.6 (no customData in 1.6).
pub mod v16 {
    use super::*;

    plain!(/** `HeartbeatRequest` (no properties). */ HeartbeatRequest {});
    plain!(/** `HeartbeatResponse`. */ HeartbeatResponse { current_time: String });
    plain!(/** `MeterValuesRequest`. */ MeterValuesRequest {
        connector_id: i32, transaction_id?: i32, meter_value: Vec<MeterValue>,
    });
    plain!(/** `MeterValue`. */ MeterValue { timestamp: String, sampled_value: Vec<SampledValue> });
    plain!(/** `SampledValue`. */ SampledValue {
        value: String, context?: String, format?: String, measurand?: String, phase?: String,
        location?: String, unit?: String,
    });
}

/// OCPP 2.0.1.
pub mod v201 {
    use super::*;

    plain!(/** `TransactionEventRequest`. */ TransactionEventRequest {
        custom_data?: Value, event_type: String, meter_value?: Vec<MeterValue>, timestamp: String,
        trigger_reason: String, seq_no: i32, offline?: bool, number_of_phases_used?: i32,
        cable_max_current?: i32, reservation_id?: i32, transaction_info: Transaction,
        evse?: Evse, id_token?: IdToken,
    });
    plain!(/** `TransactionType`. */ Transaction {
        custom_data?: Value, transaction_id: String, charging_state?: String,
        time_spent_charging?: i32, stopped_reason?: String, remote_start_id?: i32,
    });
    plain!(/** `EVSEType`. */ Evse { custom_data?: Value, id: i32, connector_id?: i32 });
    plain!(/** `IdTokenType`. */ IdToken {
        custom_data?: Value, additional_info?: Vec<AdditionalInfo>, id_token: String,
        #[serde(rename = "type")] kind: String,
    });
    plain!(/** `AdditionalInfoType`. */ AdditionalInfo {
        custom_data?: Value, additional_id_token: String, #[serde(rename = "type")] kind: String,
    });
    plain!(/** `MeterValueType`. */ MeterValue {
        custom_data?: Value, sampled_value: Vec<SampledValue>, timestamp: String,
    });
    plain!(/** `SampledValueType`. */ SampledValue {
        custom_data?: Value, value: f64, context?: String, measurand?: String, phase?: String,
        location?: String, signed_meter_value?: SignedMeterValue, unit_of_measure?: UnitOfMeasure,
    });
    plain!(/** `SignedMeterValueType`. */ SignedMeterValue {
        custom_data?: Value, signed_meter_data: String, signing_method: String,
        encoding_method: String, public_key: String,
    });
    plain!(/** `UnitOfMeasureType`. */ UnitOfMeasure {
        custom_data?: Value, unit?: String, multiplier?: i32,
    });
}

/// OCPP 2.1.
pub mod v21 {
    use super::*;

    plain!(/** `NotifyReportRequest`. */ NotifyReportRequest {
        request_id: i32, generated_at: String, report_data?: Vec<ReportData>, tbc?: bool,
        seq_no: i32, custom_data?: Value,
    });
    plain!(/** `ReportDataType`. */ ReportData {
        component: Component, variable: Variable, variable_attribute: Vec<VariableAttribute>,
        variable_characteristics?: VariableCharacteristics, custom_data?: Value,
    });
    plain!(/** `ComponentType`. */ Component {
        evse?: Evse, name: String, instance?: String, custom_data?: Value,
    });
    plain!(/** `EVSEType`. */ Evse { id: i32, connector_id?: i32, custom_data?: Value });
    plain!(/** `VariableType`. */ Variable { name: String, instance?: String, custom_data?: Value });
    plain!(/** `VariableAttributeType`. */ VariableAttribute {
        #[serde(rename = "type")] kind?: String, value?: String, mutability?: String,
        persistent?: bool, constant?: bool, custom_data?: Value,
    });
    plain!(/** `VariableCharacteristicsType`. */ VariableCharacteristics {
        unit?: String, data_type: String, min_limit?: f64, max_limit?: f64, max_elements?: i32,
        values_list?: String, supports_monitoring: bool, custom_data?: Value,
    });
}
