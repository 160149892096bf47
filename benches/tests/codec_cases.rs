//! The codec benchmark's messages and mirrors measure what they claim: the mirrors read every
//! property of the payloads, the conforming messages decode strictly, and the non-conforming
//! variants are refused strictly and repaired leniently into the same message.

use ocpp_benches::cases::{cases, Case, Kind, ID};
use ocpp_benches::plain;
use ocpp_codec::frame::{Decoder, Frame};
use ocpp_codec::typed::TypedCodec;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// Numbers as `f64`, so `11040` and `11040.0` compare equal.
fn normalized(v: Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().expect("finite")),
        Value::Array(items) => Value::Array(items.into_iter().map(normalized).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalized(v))).collect())
        }
        other => other,
    }
}

fn mirror_round_trips<M: DeserializeOwned + Serialize>(case: &Case) {
    let text = case.text();
    let payload = match case.kind {
        Kind::Call => {
            serde_json::from_str::<(u8, &str, &str, &RawValue)>(&text)
                .unwrap()
                .3
        }
        Kind::CallResult => {
            serde_json::from_str::<(u8, &str, &RawValue)>(&text)
                .unwrap()
                .2
        }
    };
    let mirror: M = serde_json::from_str(payload.get()).expect(case.key);
    assert_eq!(
        normalized(serde_json::to_value(&mirror).unwrap()),
        normalized(serde_json::from_str(&case.payload).unwrap()),
        "{}: the mirror loses or invents properties",
        case.key
    );
}

#[test]
fn mirrors_read_every_property_of_the_payloads() {
    for case in cases() {
        match case.key {
            "heartbeat_req" => mirror_round_trips::<plain::v16::HeartbeatRequest>(&case),
            "heartbeat_res" => mirror_round_trips::<plain::v16::HeartbeatResponse>(&case),
            "v16_meter_values" => mirror_round_trips::<plain::v16::MeterValuesRequest>(&case),
            "v201_transaction_event" => {
                mirror_round_trips::<plain::v201::TransactionEventRequest>(&case)
            }
            "v21_notify_report" => mirror_round_trips::<plain::v21::NotifyReportRequest>(&case),
            other => panic!("no mirror for {other}"),
        }
    }
}

/// Decodes a whole text message; `Ok` is the payload re-encoded canonically and the number
/// of repairs.
fn decode(case: &Case, codec: TypedCodec, text: &str) -> Result<(String, usize), String> {
    match Decoder::new(case.version).decode(text).expect("frame") {
        Frame::Call {
            id,
            action,
            payload,
        } => codec
            .decode_call(&id, &action, payload)
            .map(|d| (d.value.to_json(), d.repairs.len())),
        Frame::CallResult { id, payload } => codec
            .decode_result(&id, case.action, payload)
            .map(|d| (d.value.to_json(), d.repairs.len())),
        other => panic!("unexpected {other:?}"),
    }
    .map_err(|reply| reply.encode())
}

#[test]
fn strict_decodes_the_messages_and_lenient_repairs_the_variants() {
    for case in cases() {
        let strict = TypedCodec::new(case.version);
        let lenient = strict.lenient(true);
        let (canonical, repairs) = decode(&case, strict, &case.text()).expect(case.key);
        assert_eq!(repairs, 0);
        assert_eq!(
            decode(&case, lenient, &case.text()),
            Ok((canonical.clone(), 0))
        );
        let refused = decode(&case, strict, &case.repairable_text()).unwrap_err();
        assert!(refused.contains(ID), "{}: {refused}", case.key);
        let (repaired, repairs) = decode(&case, lenient, &case.repairable_text()).expect(case.key);
        assert!(repairs >= 1, "{}: nothing repaired", case.key);
        assert_eq!(
            normalized(serde_json::from_str(&repaired).unwrap()),
            normalized(serde_json::from_str(&canonical).unwrap()),
            "{}: the repair gives another message",
            case.key
        );
    }
}
