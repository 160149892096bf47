//! Validates a payload against the official OCPP JSON schema of an action and prints every
//! violation: its JSON pointer, the keyword that failed and the RPC error code the version
//! answers it with.
//!
//! Run: `cargo run -p ocpp-schemas --example validate -- <version> <action> [kind] [json]`,
//! kind `request` (default), `response` or `send`, the payload from stdin without `json`:
//!
//! ```text
//! cargo run -p ocpp-schemas --example validate -- 1.6 BootNotification '{"chargePointVendor":42}'
//! echo '{}' | cargo run -p ocpp-schemas --example validate -- 2.0.1 Heartbeat response
//! ```
//!
//! Exits with status 1 when the payload breaks its schema.

use std::io::Read;
use std::process::ExitCode;

use ocpp_schemas::{MessageKind, Version, ViolationCode};

const USAGE: &str = "usage: validate <1.6|2.0.1|2.1> <action> [request|response|send] [json]";

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(version), Some(action)) = (args.next(), args.next()) else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let version: Version = version.parse()?;
    let mut next = args.next();
    let kind = match next.as_deref() {
        Some("response") => MessageKind::Response,
        Some("send") => MessageKind::Send,
        _ => MessageKind::Request,
    };
    if matches!(next.as_deref(), Some("request" | "response" | "send")) {
        next = args.next(); // the kind was given: the payload follows
    }
    let text = match next {
        Some(json) => json,
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
    };
    let payload: serde_json::Value = serde_json::from_str(&text)?;

    // `Err` here: no such schema (an unknown action, or a kind the action does not have).
    match ocpp_schemas::validate(version, &action, kind, &payload)? {
        Ok(()) => {
            println!("valid OCPP {version} {action} {kind}");
            Ok(ExitCode::SUCCESS)
        }
        Err(violations) => {
            println!("invalid OCPP {version} {action} {kind}:");
            for v in &violations {
                let pointer = if v.pointer.is_empty() {
                    "(payload)"
                } else {
                    &v.pointer
                };
                let code = v.code().as_str(version);
                println!("  {pointer}: {:?} -> {code}: {}", v.keyword, v.message);
            }
            // The one code a CALLERROR answering this payload carries.
            if let Some(code) = ViolationCode::for_violations(&violations) {
                println!("CALLERROR code: {}", code.as_str(version));
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
