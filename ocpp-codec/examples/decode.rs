//! Decodes OCPP-J frames as a central system of a chosen version receives them, and prints
//! either the typed message or the exact CALLERROR the central system answers with (code,
//! description, JSON pointer of the offending value).
//!
//! Run: `cargo run -p ocpp-codec --example decode -- <1.6|2.0.1|2.1> [frame]`, for example
//! `cargo run -p ocpp-codec --example decode -- 1.6 '[2,"19","Heartbeat",{}]'`; without
//! `frame`, one frame per line from stdin. `--station` decodes as a charging station instead
//! (CALLs from a central system).

use std::io::BufRead;

use ocpp_codec::frame::{Decoder, Frame};
use ocpp_codec::typed::{Side, TypedCodec};
use ocpp_codec::{Reply, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let side = if let Some(i) = args.iter().position(|a| a == "--station") {
        args.remove(i);
        Side::ChargingStation
    } else {
        Side::CentralSystem
    };
    let Some(version) = args.first() else {
        eprintln!("usage: decode [--station] <1.6|2.0.1|2.1> [frame]");
        std::process::exit(2);
    };
    let version: Version = version.parse()?;
    let decoder = Decoder::new(version);
    let codec = TypedCodec::new(version).side(side);

    match args.get(1) {
        Some(frame) => decode(&decoder, &codec, frame),
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if !line.trim().is_empty() {
                    decode(&decoder, &codec, &line);
                }
            }
        }
    }
    Ok(())
}

fn decode(decoder: &Decoder, codec: &TypedCodec, text: &str) {
    let version = decoder.version();
    // First the envelope: `[type, id, ...]`.
    let frame = match decoder.decode(text) {
        Ok(frame) => frame,
        Err(e) => match e.reply(version) {
            Some(reply) => return print_reply(&reply),
            None => return println!("ignored, no answer: {e}"),
        },
    };
    // Then the payload, into its generated type (which is the schema validation).
    match frame {
        Frame::Call {
            id,
            action,
            payload,
        } => match codec.decode_call(&id, &action, payload) {
            Ok(decoded) => println!("CALL {id} {action}: {:?}", decoded.value),
            Err(reply) => print_reply(&reply),
        },
        Frame::Send {
            id,
            action,
            payload,
        } => match codec.decode_send(&id, &action, payload) {
            Ok(decoded) => println!("SEND {id} {action}: {:?}", decoded.value),
            Err(reply) => println!("SEND {id} invalid, never answered: {}", reply.description),
        },
        // A CALLRESULT is decoded with the action of the call it answers:
        // `codec.decode_result(&id, action, payload)`.
        Frame::CallResult { id, payload } => println!("CALLRESULT {id}: {payload}"),
        Frame::CallError {
            id,
            code,
            description,
            details,
        }
        | Frame::CallResultError {
            id,
            code,
            description,
            details,
        } => println!("error answer to {id}: {code} {description:?} {details}"),
    }
}

fn print_reply(reply: &Reply) {
    println!("answer: {}", reply.encode());
    println!("  code:        {}", reply.code.as_str(reply.version));
    println!("  description: {}", reply.description);
    // `errorDetails` carries the JSON pointer of a payload violation.
    let details: serde_json::Value = serde_json::from_str(&reply.details).unwrap_or_default();
    if let Some(pointer) = details.get("pointer").and_then(|p| p.as_str()) {
        println!("  pointer:     {pointer:?}");
    }
}
