//! The generated API's shape: actions, the Any* enums, constructors, open CustomData, enum and
//! struct strictness beyond what the differential test covers.

use std::str::FromStr;

use ocpp_types::{Initiator, Message, MessageKind, Request, SendMessage};

#[test]
fn actions_parse_and_know_their_initiator() {
    use ocpp_types::v16::Action;
    assert_eq!(
        Action::from_str("BootNotification"),
        Ok(Action::BootNotification)
    );
    assert!(Action::from_str("bootnotification").is_err());
    assert_eq!(
        Action::BootNotification.initiator(),
        Initiator::ChargingStation
    );
    assert_eq!(Action::Reset.initiator(), Initiator::CentralSystem);
    assert_eq!(Action::DataTransfer.initiator(), Initiator::Either);
    assert!(Action::ALL.iter().all(|a| a.has_response()));
    // ocpp-schemas/tests/schemas.rs counts the same 39 in the schema files.
    assert_eq!(Action::ALL.len(), 39);
    for a in ocpp_types::v21::Action::ALL {
        assert_eq!(a.to_string().parse::<ocpp_types::v21::Action>(), Ok(a));
    }
    assert!(!ocpp_types::v21::Action::NotifyPeriodicEventStream.has_response());
    assert_eq!(
        <ocpp_types::v21::NotifyPeriodicEventStream as SendMessage>::INITIATOR,
        Initiator::ChargingStation
    );
    assert_eq!(
        <ocpp_types::v21::NotifyPeriodicEventStream as Message>::KIND,
        MessageKind::Send
    );
    assert_eq!(
        <ocpp_types::v201::ResetRequest as Request>::INITIATOR,
        Initiator::CentralSystem
    );
}

#[test]
fn any_request_round_trips() {
    use ocpp_types::v201::{Action, AnyRequest, HeartbeatRequest};
    let any = AnyRequest::from_json(Action::Heartbeat, "{}").unwrap();
    assert_eq!(any, AnyRequest::from(HeartbeatRequest::new()));
    assert_eq!(any.action(), Action::Heartbeat);
    assert_eq!(any.to_json(), "{}");
    assert!(AnyRequest::from_json(Action::Heartbeat, "[]").is_err());
    let v = serde_json::json!({"idToken": {"idToken": "ABC", "type": "ISO14443"}});
    let any = AnyRequest::from_value(Action::Authorize, v.clone()).unwrap();
    assert_eq!(any.to_value(), v);
    assert!(ocpp_types::v21::AnyRequest::from_json(
        ocpp_types::v21::Action::NotifyPeriodicEventStream,
        "{}"
    )
    .is_err());
}

#[test]
fn enums_are_strings_only() {
    use ocpp_types::v16::RegistrationStatus;
    let s: RegistrationStatus = serde_json::from_str(r#""Accepted""#).unwrap();
    assert_eq!(s, RegistrationStatus::Accepted);
    assert_eq!(s.as_str(), "Accepted");
    assert!(serde_json::from_str::<RegistrationStatus>(r#"{"Accepted":null}"#).is_err());
    assert!(serde_json::from_str::<RegistrationStatus>(r#""accepted""#).is_err());
    assert_eq!(
        ocpp_types::v16::Measurand::from_str("Energy.Active.Import.Register"),
        Ok(ocpp_types::v16::Measurand::EnergyActiveImportRegister)
    );
    assert_eq!(ocpp_types::v16::Phase::L1N.as_str(), "L1-N");
    assert_eq!(ocpp_types::v201::IdTokenEnumType::EMaid.as_str(), "eMAID");
}

#[test]
fn custom_data_stays_open() {
    use ocpp_types::v201::CustomDataType;
    let json = r#"{"vendorId":"ACME","color":"red","n":[1,2]}"#;
    let c: CustomDataType = serde_json::from_str(json).unwrap();
    assert_eq!(c.vendor_id.as_str(), "ACME");
    assert_eq!(c.extra.len(), 2);
    assert_eq!(serde_json::to_string(&c).unwrap(), json);
    let req: ocpp_types::v201::HeartbeatRequest =
        serde_json::from_str(r#"{"customData":{"vendorId":"X","k":1}}"#).unwrap();
    assert_eq!(req.custom_data.unwrap().extra["k"], 1);
    assert!(serde_json::from_str::<CustomDataType>(r#"{"color":"red"}"#).is_err());
}

#[test]
fn decimals_keep_their_digits() {
    let json = r#"{"value":"12","unit":"kWh","measurand":"Energy.Active.Import.Register"}"#;
    let sv: ocpp_types::v16::SampledValue = serde_json::from_str(json).unwrap();
    assert_eq!(sv.value, "12");
    let json = r#"{"startPeriod":0,"limit":16.5}"#;
    let p: ocpp_types::v16::ChargingSchedulePeriod = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), json);
    // multipleOf 0.1
    assert!(
        serde_json::from_str::<ocpp_types::v16::ChargingSchedulePeriod>(
            r#"{"startPeriod":0,"limit":16.55}"#
        )
        .is_err()
    );
    // 1.6 draft-04 integers refuse 1.0; 2.x draft-06 integers accept it.
    assert!(
        serde_json::from_str::<ocpp_types::v16::ChargingSchedulePeriod>(
            r#"{"startPeriod":1.0,"limit":16}"#
        )
        .is_err()
    );
    assert!(serde_json::from_str::<ocpp_types::v201::HeartbeatResponse>(
        r#"{"currentTime":"2026-01-01T00:00:00Z"}"#
    )
    .is_ok());
    assert!(serde_json::from_str::<ocpp_types::v201::ResetRequest>(
        r#"{"type":"Immediate","evseId":1.0}"#
    )
    .is_ok());
}

#[test]
fn decode_payload_dispatches() {
    use ocpp_types::{decode_payload, PayloadError, Version};
    assert!(decode_payload(
        Version::V21,
        "NotifyPeriodicEventStream",
        MessageKind::Request,
        "{}"
    )
    .is_err_and(|e| matches!(e, PayloadError::UnknownAction(_))));
    assert!(
        decode_payload(Version::V201, "Heartbeat", MessageKind::Send, "{}")
            .is_err_and(|e| matches!(e, PayloadError::UnknownAction(_)))
    );
    assert!(
        decode_payload(Version::V201, "Heartbeat", MessageKind::Response, "{}")
            .is_err_and(|e| matches!(e, PayloadError::Invalid(_)))
    );
}
