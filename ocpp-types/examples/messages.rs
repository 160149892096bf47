//! Typed OCPP messages: build them, serialize them, and parse JSON into them.
//!
//! Shows the generated types of OCPP 1.6 and 2.0.1: a request built from its required fields
//! (bounded strings and timestamps are checked when built), its wire JSON, JSON decoded into a
//! concrete type or, by action name, into the version-neutral `TypedRequest`, and the errors
//! of invalid payloads. Decoding *is* validation: a payload decodes if and only if the
//! official schema accepts it.
//!
//! Run: `cargo run -p ocpp-types --example messages`

use ocpp_types::{v16, v201, AnyAction, BoundedString, Message, Request, TypedRequest, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // OCPP 1.6 StartTransaction: `idTag` is a string[20], `timestamp` RFC 3339 with an offset.
    let start = v16::StartTransactionRequest::new(
        1,
        "04A2B3C4".parse()?,
        12_345,
        "2025-01-15T09:30:00Z".parse()?,
    );
    let action = v16::StartTransactionRequest::ACTION;
    println!("1.6 {action}: {}", serde_json::to_string(&start)?);

    // An over-long string cannot even be built.
    if let Err(e) = BoundedString::<20>::new("A-TOKEN-OF-21-CHARS-X") {
        println!("1.6 idTag refused: {e}");
    }

    // OCPP 2.0.1 BootNotification, with one optional field set.
    let mut station = v201::ChargingStationType::new("Volt 22".parse()?, "ACME".parse()?);
    station.firmware_version = Some("1.4.2".parse()?);
    let boot = v201::BootNotificationRequest::new(station, v201::BootReasonEnumType::PowerUp);
    let action = v201::BootNotificationRequest::ACTION;
    println!("2.0.1 {action}: {}", serde_json::to_string(&boot)?);

    // JSON into a concrete type; numbers are exact decimals that keep their digits.
    let sample: v201::SampledValueType = serde_json::from_str(r#"{"value":2935.600}"#)?;
    println!("2.0.1 SampledValue: value {} (exact)", sample.value);

    // JSON into `TypedRequest` by version and action name, as a dispatcher receives it, then
    // into the concrete type (a move, no JSON).
    let action = AnyAction::parse(Version::V201, "Authorize")?;
    let json = r#"{"idToken":{"idToken":"04A2B3C4","type":"ISO14443"}}"#;
    let typed = TypedRequest::from_json(action, json)?;
    let authorize = v201::AuthorizeRequest::try_from_typed(typed)?;
    println!("2.0.1 Authorize: id token {}", authorize.id_token.id_token);

    // Invalid payloads: the error says what is wrong.
    let invalid = [
        (
            "BootNotification",
            r#"{"chargePointVendor":"ACME","chargePointModel":"ABCDEFGHIJKLMNOPQRSTU"}"#,
        ),
        (
            "StatusNotification",
            r#"{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}"#,
        ),
        (
            "StartTransaction",
            r#"{"connectorId":1,"idTag":"T1","meterStart":0,"timestamp":"yesterday"}"#,
        ),
        ("Heartbeat", r#"{"extra":true}"#),
    ];
    for (action, json) in invalid {
        match TypedRequest::from_json(AnyAction::parse(Version::V16, action)?, json) {
            Ok(request) => println!("1.6 {action}: valid (unexpected): {request:?}"),
            Err(e) => println!("1.6 {action} invalid: {e}"),
        }
    }
    Ok(())
}
