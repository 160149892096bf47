//! Payloads for the interop flows: the actions of each version with their initiator (from
//! the generated types), and a minimal valid payload of any action, built from its official
//! schema (every required property, the first enum value, short strings), for the calls that
//! only need to cross the socket once.

use chrono::{SecondsFormat, Utc};
use ocpp_types::{Initiator, MessageKind, Version};
use serde_json::{json, Map, Value};

use super::peer::workspace;

/// Every action of `version` with who sends it.
pub fn actions(version: Version) -> Vec<(&'static str, Initiator)> {
    match version {
        Version::V16 => ocpp_types::v16::Action::ALL
            .iter()
            .map(|a| (a.as_str(), a.initiator()))
            .collect(),
        Version::V201 => ocpp_types::v201::Action::ALL
            .iter()
            .map(|a| (a.as_str(), a.initiator()))
            .collect(),
        Version::V21 => ocpp_types::v21::Action::ALL
            .iter()
            .filter(|a| a.has_response()) // SEND (NotifyPeriodicEventStream): neither peer speaks it
            .map(|a| (a.as_str(), a.initiator()))
            .collect(),
        other => panic!("no interop flows for OCPP {other}"),
    }
}

/// The actions of `version` the central system sends.
pub fn central_actions(version: Version) -> Vec<&'static str> {
    actions(version)
        .into_iter()
        .filter(|(_, i)| i.central_system_may_send())
        .map(|(a, _)| a)
        .collect()
}

/// The actions of `version` the charging station sends.
pub fn charger_actions(version: Version) -> Vec<&'static str> {
    actions(version)
        .into_iter()
        .filter(|(_, i)| i.charging_station_may_send())
        .map(|(a, _)| a)
        .collect()
}

/// The official schema of `action`'s request or response.
fn schema(version: Version, action: &str, kind: MessageKind) -> Value {
    let (folder, file) = match (version, kind) {
        (Version::V16, MessageKind::Response) => ("v16", format!("{action}Response")),
        (Version::V16, _) => ("v16", action.to_owned()),
        (v, MessageKind::Response) => (folder_of(v), format!("{action}Response")),
        (v, _) => (folder_of(v), format!("{action}Request")),
    };
    let path = workspace()
        .join("ocpp-schemas/schemas")
        .join(folder)
        .join(format!("{file}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("schema {}: {e}", path.display()));
    serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .unwrap_or_else(|e| panic!("schema {}: {e}", path.display()))
}

fn folder_of(version: Version) -> &'static str {
    match version {
        Version::V16 => "v16",
        Version::V201 => "v201",
        Version::V21 => "v21",
        other => panic!("no schemas for OCPP {other}"),
    }
}

/// Now, as OCPP date-times are written.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn instance(node: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    assert!(depth < 32, "schema nesting too deep");
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        return instance(&defs[name], defs, depth + 1);
    }
    if let Some(first) = node
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let num = |k: &str| node.get(k).and_then(Value::as_f64);
    match node.get("type").and_then(Value::as_str) {
        Some("object") => {
            let props = node.get("properties").and_then(Value::as_object);
            let mut out = Map::new();
            for key in node
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Some(p) = props.and_then(|p| p.get(key)) {
                    out.insert(key.to_owned(), instance(p, defs, depth + 1));
                }
            }
            Value::Object(out)
        }
        Some("array") => {
            let n = num("minItems").unwrap_or(1.0).max(1.0) as usize;
            let item = node.get("items").cloned().unwrap_or(json!({}));
            Value::Array((0..n).map(|_| instance(&item, defs, depth + 1)).collect())
        }
        Some("string") => match node.get("format").and_then(Value::as_str) {
            Some("date-time") => json!(now()),
            Some("uri") => json!("https://example.com/ocpp-rs/file.bin"),
            _ => {
                let len = num("maxLength").unwrap_or(8.0).min(8.0) as usize;
                json!("x".repeat(len.max(1)))
            }
        },
        Some("integer") => {
            let v = num("minimum").unwrap_or(1.0).max(1.0);
            let v = num("maximum").map_or(v, |m| v.min(m));
            json!(v as i64)
        }
        Some("number") => {
            let v = num("maximum").map_or(1.5, |m| m.min(1.5));
            json!(v)
        }
        Some("boolean") => json!(true),
        _ => json!({}),
    }
}

/// A minimal payload of `action` that its schema accepts.
pub fn minimal(version: Version, action: &str, kind: MessageKind) -> Value {
    let s = schema(version, action, kind);
    let defs = s
        .get("definitions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let v = instance(&s, &defs, 0);
    check(version, action, kind, &v);
    v
}

/// Panics unless `payload` is a valid `action` request/response of `version` (our typed
/// decoding, which accepts exactly what the official schema accepts): a payload the test
/// itself got wrong must not be blamed on a peer.
pub fn check(version: Version, action: &str, kind: MessageKind, payload: &Value) {
    if let Err(e) = ocpp_types::decode_payload(version, action, kind, &payload.to_string()) {
        panic!(
            "test payload of {} {action} ({kind:?}) is invalid: {e}\n{payload:#}",
            version.as_str()
        );
    }
}

#[test]
fn every_minimal_payload_is_valid() {
    for version in [Version::V16, Version::V201, Version::V21] {
        for (action, _) in actions(version) {
            minimal(version, action, MessageKind::Request);
            minimal(version, action, MessageKind::Response);
        }
    }
}
