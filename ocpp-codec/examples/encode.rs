//! Encodes typed messages into OCPP-J frames: a CALL, the CALLRESULT that answers it, and
//! the refusal to put a message of one version on a connection of another.
//!
//! Run: `cargo run -p ocpp-codec --example encode`

use ocpp_codec::ocpp_types::{v16, v201, DateTime, Request, Response};
use ocpp_codec::typed::TypedCodec;
use ocpp_codec::Version;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A codec per connection, for its version. It validates what it encodes against the
    // schema in debug builds (`validate_outgoing` sets it for release builds too).
    let codec = TypedCodec::new(Version::V201).validate_outgoing(true);

    // A charging station's CALL. Message ids are the caller's: unique per connection, at
    // most 36 characters (`ocpp_codec::rpc::Endpoint` makes them and matches the answers).
    let station = v201::ChargingStationType::new("Volt 22".parse()?, "ACME".parse()?);
    let boot = v201::BootNotificationRequest::new(station, v201::BootReasonEnumType::PowerUp);
    let call = codec.encode_call("boot-1", &boot.into_typed())?;
    println!("CALL:       {call}");

    // The central system's CALLRESULT to it.
    let now: DateTime = "2025-01-15T09:30:00Z".parse()?;
    let accepted =
        v201::BootNotificationResponse::new(now, 300, v201::RegistrationStatusEnumType::Accepted);
    let result = codec.encode_result("boot-1", &accepted.into_typed())?;
    println!("CALLRESULT: {result}");

    // A 1.6 message on a 2.0.1 connection is refused, not sent.
    let heartbeat = v16::HeartbeatRequest::new().into_typed();
    match codec.encode_call("hb-1", &heartbeat) {
        Ok(frame) => println!("sent (unexpected): {frame}"),
        Err(e) => println!("refused:    {e}"),
    }
    Ok(())
}
