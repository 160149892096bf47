//! Typed dispatch: the error table per version (exact reply text), lenient repairs, typed
//! encoding with outgoing validation.

use ocpp_codec::typed::{
    AnyAction, EncodeError, Repair, RepairKind, Side, TypedCodec, TypedRequest, TypedResponse,
};
use ocpp_codec::Version;
use ocpp_types::{v16, v201, v21};
use serde_json::value::RawValue;

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

const BOOT_2X_OK: &str = r#"{"chargingStation":{"model":"M","vendorName":"V"},"reason":"PowerUp"}"#;

/// (version, side, action, payload, exact CALLERROR). Side `None`: both directions accepted.
type Row = (
    Version,
    Option<Side>,
    &'static str,
    &'static str,
    &'static str,
);

fn rows() -> Vec<Row> {
    use Version::*;
    let cs = Some(Side::CentralSystem);
    let st = Some(Side::ChargingStation);
    vec![
        // Unknown action: NotImplemented.
        (
            V16,
            cs,
            "Nope",
            "{}",
            r#"[4,"1","NotImplemented","\"Nope\" is not an OCPP 1.6 action",{}]"#,
        ),
        (
            V201,
            cs,
            "Nope",
            "{}",
            r#"[4,"1","NotImplemented","\"Nope\" is not an OCPP 2.0.1 action",{}]"#,
        ),
        (
            V21,
            cs,
            "Nope",
            "{}",
            r#"[4,"1","NotImplemented","\"Nope\" is not an OCPP 2.1 action",{}]"#,
        ),
        // An action of another version is unknown to this one.
        (
            V16,
            cs,
            "TransactionEvent",
            "{}",
            r#"[4,"1","NotImplemented","\"TransactionEvent\" is not an OCPP 1.6 action",{}]"#,
        ),
        // Other direction: NotSupported.
        (
            V16,
            cs,
            "Reset",
            r#"{"type":"Hard"}"#,
            r#"[4,"1","NotSupported","Reset is not sent by a charging station",{}]"#,
        ),
        (
            V201,
            cs,
            "Reset",
            r#"{"type":"Immediate"}"#,
            r#"[4,"1","NotSupported","Reset is not sent by a charging station",{}]"#,
        ),
        (
            V21,
            cs,
            "Reset",
            r#"{"type":"Immediate"}"#,
            r#"[4,"1","NotSupported","Reset is not sent by a charging station",{}]"#,
        ),
        (
            V16,
            st,
            "Heartbeat",
            "{}",
            r#"[4,"1","NotSupported","Heartbeat is not sent by a central system",{}]"#,
        ),
        (
            V201,
            st,
            "Heartbeat",
            "{}",
            r#"[4,"1","NotSupported","Heartbeat is not sent by a central system",{}]"#,
        ),
        (
            V21,
            st,
            "Heartbeat",
            "{}",
            r#"[4,"1","NotSupported","Heartbeat is not sent by a central system",{}]"#,
        ),
        // A SEND action in a CALL (2.1).
        (
            V21,
            cs,
            "NotifyPeriodicEventStream",
            "{}",
            r#"[4,"1","NotSupported","NotifyPeriodicEventStream is a SEND message, not a CALL",{}]"#,
        ),
        // Wrong payload type.
        (
            V16,
            cs,
            "BootNotification",
            r#"{"chargePointVendor":12,"chargePointModel":"M"}"#,
            r#"[4,"1","TypeConstraintViolation","/chargePointVendor: 12 is not of type \"string\"",{"pointer":"/chargePointVendor"}]"#,
        ),
        (
            V201,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp","chargingStation":{"model":12,"vendorName":"V"}}"#,
            r#"[4,"1","TypeConstraintViolation","/chargingStation/model: 12 is not of type \"string\"",{"pointer":"/chargingStation/model"}]"#,
        ),
        (
            V21,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp","chargingStation":{"model":12,"vendorName":"V"}}"#,
            r#"[4,"1","TypeConstraintViolation","/chargingStation/model: 12 is not of type \"string\"",{"pointer":"/chargingStation/model"}]"#,
        ),
        // Missing required field.
        (
            V16,
            cs,
            "BootNotification",
            r#"{"chargePointModel":"M"}"#,
            r#"[4,"1","OccurenceConstraintViolation","\"chargePointVendor\" is a required property",{"pointer":""}]"#,
        ),
        (
            V201,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp"}"#,
            r#"[4,"1","OccurrenceConstraintViolation","\"chargingStation\" is a required property",{"pointer":""}]"#,
        ),
        (
            V21,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp"}"#,
            r#"[4,"1","OccurrenceConstraintViolation","\"chargingStation\" is a required property",{"pointer":""}]"#,
        ),
        // Enumeration value outside the list.
        (
            V16,
            cs,
            "StatusNotification",
            r#"{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}"#,
            r#"[4,"1","PropertyConstraintViolation","/status: \"Sleeping\" is not one of \"Available\", \"Preparing\" or 7 other candidates",{"pointer":"/status"}]"#,
        ),
        (
            V201,
            cs,
            "BootNotification",
            r#"{"reason":"Bored","chargingStation":{"model":"M","vendorName":"V"}}"#,
            r#"[4,"1","PropertyConstraintViolation","/reason: \"Bored\" is not one of \"ApplicationReset\", \"FirmwareUpdate\" or 7 other candidates",{"pointer":"/reason"}]"#,
        ),
        (
            V21,
            cs,
            "BootNotification",
            r#"{"reason":"Bored","chargingStation":{"model":"M","vendorName":"V"}}"#,
            r#"[4,"1","PropertyConstraintViolation","/reason: \"Bored\" is not one of \"ApplicationReset\", \"FirmwareUpdate\" or 7 other candidates",{"pointer":"/reason"}]"#,
        ),
        // Over-long string.
        (
            V16,
            cs,
            "BootNotification",
            r#"{"chargePointVendor":"ACME-ACME-ACME-ACME-X","chargePointModel":"M"}"#,
            r#"[4,"1","TypeConstraintViolation","/chargePointVendor: \"ACME-ACME-ACME-ACME-X\" is longer than 20 characters",{"pointer":"/chargePointVendor"}]"#,
        ),
        (
            V201,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"}}"#,
            r#"[4,"1","TypeConstraintViolation","/chargingStation/vendorName: \"VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV\" is longer than 50 characters",{"pointer":"/chargingStation/vendorName"}]"#,
        ),
        (
            V21,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"}}"#,
            r#"[4,"1","TypeConstraintViolation","/chargingStation/vendorName: \"VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV\" is longer than 50 characters",{"pointer":"/chargingStation/vendorName"}]"#,
        ),
        // Unknown property.
        (
            V16,
            cs,
            "Heartbeat",
            r#"{"x":1}"#,
            r#"[4,"1","FormationViolation","Additional properties are not allowed ('x' was unexpected)",{"pointer":""}]"#,
        ),
        (
            V201,
            cs,
            "Heartbeat",
            r#"{"x":1}"#,
            r#"[4,"1","FormatViolation","Additional properties are not allowed ('x' was unexpected)",{"pointer":""}]"#,
        ),
        (
            V21,
            cs,
            "Heartbeat",
            r#"{"x":1}"#,
            r#"[4,"1","FormatViolation","Additional properties are not allowed ('x' was unexpected)",{"pointer":""}]"#,
        ),
        // Integer beyond 32 bits (the schema accepts it, OCPP's integer does not).
        (
            V16,
            cs,
            "StatusNotification",
            r#"{"connectorId":4294967296,"errorCode":"NoError","status":"Available"}"#,
            r#"[4,"1","TypeConstraintViolation","/connectorId: 4294967296 is beyond the 32-bit range of an OCPP integer",{"pointer":"/connectorId"}]"#,
        ),
        (
            V201,
            cs,
            "StatusNotification",
            r#"{"timestamp":"2024-01-01T00:00:00Z","connectorStatus":"Available","evseId":4294967296,"connectorId":1}"#,
            r#"[4,"1","TypeConstraintViolation","/evseId: 4294967296 is beyond the 32-bit range of an OCPP integer",{"pointer":"/evseId"}]"#,
        ),
        (
            V21,
            cs,
            "StatusNotification",
            r#"{"timestamp":"2024-01-01T00:00:00Z","connectorStatus":"Available","evseId":4294967296,"connectorId":1}"#,
            r#"[4,"1","TypeConstraintViolation","/evseId: 4294967296 is beyond the 32-bit range of an OCPP integer",{"pointer":"/evseId"}]"#,
        ),
        // Duplicate key (the schema validator sees only the last one).
        (
            V16,
            cs,
            "BootNotification",
            r#"{"chargePointVendor":"A","chargePointVendor":"B","chargePointModel":"M"}"#,
            r#"[4,"1","FormationViolation","/chargePointVendor: the key appears more than once in its object",{"pointer":"/chargePointVendor"}]"#,
        ),
        (
            V201,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp","reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}"#,
            r#"[4,"1","FormatViolation","/reason: the key appears more than once in its object",{"pointer":"/reason"}]"#,
        ),
        (
            V21,
            cs,
            "BootNotification",
            r#"{"reason":"PowerUp","chargingStation":{"model":"M","model":"M","vendorName":"V"}}"#,
            r#"[4,"1","FormatViolation","/chargingStation/model: the key appears more than once in its object",{"pointer":"/chargingStation/model"}]"#,
        ),
    ]
}

#[test]
fn every_row_of_the_typed_error_table_gives_its_exact_reply() {
    let mut failures = Vec::new();
    for (version, side, action, payload, expected) in rows() {
        let mut codec = TypedCodec::new(version);
        if let Some(side) = side {
            codec = codec.side(side);
        }
        let got = match codec.decode_call("1", action, &raw(payload)) {
            Ok(d) => format!("decoded {:?}", d.value),
            Err(reply) => reply.encode(),
        };
        if got != expected {
            failures.push(format!(
                "{version} {action} {payload}\n  expected {expected}\n  got      {got}"
            ));
        }
        // Lenient mode cannot repair any of these rows except the unknown property.
        if action != "Heartbeat" || side != Some(Side::CentralSystem) {
            let lenient = codec.lenient(true).decode_call("1", action, &raw(payload));
            if let Ok(d) = lenient {
                failures.push(format!(
                    "{version} {action} {payload}: lenient repaired it: {:?}",
                    d.repairs
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decimals_beyond_28_digits_are_a_type_constraint_violation() {
    let codec = TypedCodec::new(Version::V21);
    let payload = r#"{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z","data":[{"t":0.12345678901234567890123456789,"v":"1"}]}"#;
    let reply = codec
        .decode_send("s1", "NotifyPeriodicEventStream", &raw(payload))
        .unwrap_err();
    assert_eq!(
        reply.encode(),
        r#"[4,"s1","TypeConstraintViolation","/data/0/t: 0.12345678901234567890123456789 cannot be held exactly (at most 28 significant digits, magnitude below 7.9e28)",{"pointer":"/data/0/t"}]"#
    );
}

#[test]
fn send_messages_decode_and_calls_are_not_sends() {
    let codec = TypedCodec::new(Version::V21).side(Side::CentralSystem);
    let payload =
        r#"{"data":[{"t":1.5,"v":"230.1"}],"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z"}"#;
    let d = codec
        .decode_send("s1", "NotifyPeriodicEventStream", &raw(payload))
        .unwrap();
    assert!(d.repairs.is_empty());
    assert_eq!(
        codec.encode_send("s1", &d.value).unwrap(),
        format!(r#"[6,"s1","NotifyPeriodicEventStream",{payload}]"#)
    );
    let reply = codec
        .decode_send("s2", "Heartbeat", &raw("{}"))
        .unwrap_err();
    assert_eq!(
        reply.encode(),
        r#"[4,"s2","NotSupported","Heartbeat is a CALL, not a SEND message",{}]"#
    );
}

#[test]
fn results_decode_by_the_pending_action_and_errors_are_callresulterrors() {
    let codec = TypedCodec::new(Version::V16);
    let d = codec
        .decode_result(
            "7",
            "Heartbeat",
            &raw(r#"{"currentTime":"2024-01-01T00:00:00Z"}"#),
        )
        .unwrap();
    assert!(matches!(
        d.value,
        TypedResponse::V16(v16::AnyResponse::Heartbeat(_))
    ));
    let reply = codec
        .decode_result("7", "Heartbeat", &raw(r#"{"currentTime":12}"#))
        .unwrap_err();
    assert_eq!(
        reply.encode(),
        r#"[5,"7","TypeConstraintViolation","/currentTime: 12 is not of type \"string\"",{"pointer":"/currentTime"}]"#
    );
    let reply = TypedCodec::new(Version::V21)
        .decode_result("8", "BootNotification", &raw(r#"{"status":"Accepted"}"#))
        .unwrap_err();
    assert_eq!(
        reply.encode(),
        r#"[5,"8","OccurrenceConstraintViolation","\"currentTime\" is a required property",{"pointer":""}]"#
    );
}

fn repairs(list: &[(&str, RepairKind)]) -> Vec<Repair> {
    list.iter()
        .map(|(p, k)| Repair {
            pointer: (*p).to_owned(),
            kind: *k,
        })
        .collect()
}

#[test]
fn lenient_removes_unknown_properties() {
    let payload = r#"{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V","colour":"red"},"extra":1}"#;
    let strict = TypedCodec::new(Version::V201).decode_call("1", "BootNotification", &raw(payload));
    assert_eq!(
        strict.unwrap_err().code.as_str(Version::V201),
        "FormatViolation"
    );
    let d = TypedCodec::new(Version::V201)
        .lenient(true)
        .decode_call("1", "BootNotification", &raw(payload))
        .unwrap();
    assert_eq!(
        d.repairs,
        repairs(&[
            (
                "/chargingStation/colour",
                RepairKind::UnknownPropertyRemoved
            ),
            ("/extra", RepairKind::UnknownPropertyRemoved),
        ])
    );
    assert_eq!(d.value.to_json(), BOOT_2X_OK);
}

#[test]
fn lenient_adds_the_missing_offset_and_reads_numbers_from_strings() {
    let payload = r#"{"connectorId":"1","errorCode":"NoError","status":"Available","timestamp":"2024-01-01T10:00:00"}"#;
    let d = TypedCodec::new(Version::V16)
        .lenient(true)
        .decode_call("1", "StatusNotification", &raw(payload))
        .unwrap();
    assert_eq!(
        d.repairs,
        repairs(&[
            ("/connectorId", RepairKind::NumberFromString),
            ("/timestamp", RepairKind::TimestampOffsetAdded),
        ])
    );
    let TypedRequest::V16(v16::AnyRequest::StatusNotification(r)) = &d.value else {
        panic!("{:?}", d.value)
    };
    assert_eq!(r.connector_id, 1);
    assert_eq!(
        d.value.to_json(),
        r#"{"connectorId":1,"errorCode":"NoError","status":"Available","timestamp":"2024-01-01T10:00:00Z"}"#
    );
}

#[test]
fn lenient_repairs_keep_every_number_exactly() {
    // 2.0.1 sampledValue.value is a number; a charger sends one as a string and puts a vendor
    // property next to another: both repaired, every decimal kept digit for digit.
    let payload = r#"{"evseId":1,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z","sampledValue":[{"value":"2935.600"},{"value":0.1000,"vendorX":1}]}]}"#;
    let d = TypedCodec::new(Version::V201)
        .lenient(true)
        .decode_call("1", "MeterValues", &raw(payload))
        .unwrap();
    assert_eq!(
        d.repairs,
        repairs(&[
            (
                "/meterValue/0/sampledValue/0/value",
                RepairKind::NumberFromString
            ),
            (
                "/meterValue/0/sampledValue/1/vendorX",
                RepairKind::UnknownPropertyRemoved
            ),
        ])
    );
    assert_eq!(
        d.value.to_json(),
        r#"{"evseId":1,"meterValue":[{"sampledValue":[{"value":2935.600},{"value":0.1000}],"timestamp":"2024-01-01T00:00:00Z"}]}"#
    );
    // An integer field refuses a non-integral string: the strict reply.
    let payload = r#"{"evseId":"1.5","meterValue":[{"timestamp":"2024-01-01T00:00:00Z","sampledValue":[{"value":1}]}]}"#;
    let reply = TypedCodec::new(Version::V201)
        .lenient(true)
        .decode_call("1", "MeterValues", &raw(payload))
        .unwrap_err();
    assert_eq!(reply.code.as_str(Version::V201), "TypeConstraintViolation");
}

#[test]
fn lenient_drops_an_optional_enum_value_outside_the_list_but_not_a_required_one() {
    let payload = r#"{"connectorId":1,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z","sampledValue":[{"value":"12","measurand":"Bogus"}]}]}"#;
    let d = TypedCodec::new(Version::V16)
        .lenient(true)
        .decode_call("1", "MeterValues", &raw(payload))
        .unwrap();
    assert_eq!(
        d.repairs,
        repairs(&[(
            "/meterValue/0/sampledValue/0/measurand",
            RepairKind::EnumValueDropped
        )])
    );
    // Required: no repair, the strict reply.
    let payload = r#"{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}"#;
    let reply = TypedCodec::new(Version::V16)
        .lenient(true)
        .decode_call("1", "StatusNotification", &raw(payload))
        .unwrap_err();
    assert_eq!(
        reply.code.as_str(Version::V16),
        "PropertyConstraintViolation"
    );
    // 2.0.1: a conforming payload gets no repairs.
    let payload = r#"{"timestamp":"2024-01-01T00:00:00Z","connectorStatus":"Available","evseId":1,"connectorId":1}"#;
    assert!(TypedCodec::new(Version::V201)
        .lenient(true)
        .decode_call("1", "StatusNotification", &raw(payload))
        .unwrap()
        .repairs
        .is_empty());
}

#[test]
fn lenient_is_off_by_default() {
    let payload = r#"{"connectorId":"1","errorCode":"NoError","status":"Available"}"#;
    let reply = TypedCodec::new(Version::V16)
        .decode_call("1", "StatusNotification", &raw(payload))
        .unwrap_err();
    assert_eq!(reply.code.as_str(Version::V16), "TypeConstraintViolation");
    assert!(!TypedCodec::new(Version::V16).is_lenient());
}

#[test]
fn conforming_traffic_is_unchanged_in_lenient_mode() {
    let cases: &[(Version, &str, &str)] = &[
        (Version::V16, "Heartbeat", "{}"),
        (
            Version::V16,
            "BootNotification",
            r#"{"chargePointVendor":"ACME","chargePointModel":"Volt 22"}"#,
        ),
        (
            Version::V16,
            "MeterValues",
            r#"{"connectorId":1,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z","sampledValue":[{"value":"2935.600","measurand":"Energy.Active.Import.Register"}]}]}"#,
        ),
        (Version::V201, "BootNotification", BOOT_2X_OK),
        (Version::V21, "BootNotification", BOOT_2X_OK),
    ];
    for &(version, action, payload) in cases {
        let strict = TypedCodec::new(version)
            .decode_call("1", action, &raw(payload))
            .unwrap();
        let lenient = TypedCodec::new(version)
            .lenient(true)
            .decode_call("1", action, &raw(payload))
            .unwrap();
        assert_eq!(strict, lenient);
        assert!(lenient.repairs.is_empty());
        assert_eq!(lenient.value.to_json(), payload);
    }
}

#[test]
fn typed_encoding_validates_outgoing_payloads_and_checks_the_version() {
    let codec = TypedCodec::new(Version::V16).validate_outgoing(true);
    let req: v16::BootNotificationRequest =
        serde_json::from_str(r#"{"chargePointVendor":"ACME","chargePointModel":"Volt 22"}"#)
            .unwrap();
    let req = TypedRequest::V16(req.into());
    assert_eq!(req.action(), AnyAction::V16(v16::Action::BootNotification));
    assert_eq!(
        codec.encode_call("c1", &req).unwrap(),
        r#"[2,"c1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"Volt 22"}]"#
    );
    let res: v16::HeartbeatResponse =
        serde_json::from_str(r#"{"currentTime":"2024-01-01T00:00:00Z"}"#).unwrap();
    assert_eq!(
        codec
            .encode_result("c2", &TypedResponse::V16(res.into()))
            .unwrap(),
        r#"[3,"c2",{"currentTime":"2024-01-01T00:00:00Z"}]"#
    );
    let other: v201::HeartbeatRequest = serde_json::from_str("{}").unwrap();
    assert_eq!(
        codec.encode_call("c3", &TypedRequest::V201(other.into())),
        Err(EncodeError::VersionMismatch {
            expected: Version::V16,
            found: Version::V201
        })
    );
    let _: Option<v21::AnySend> = None;
}
