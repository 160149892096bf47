//! One typed path: the central session, the charger station and `ocpp-inspect` decode and
//! refuse through the same codec (`ocpp_codec::typed`), so the same bytes get the same answer
//! — code, description and JSON pointer — whoever reads them.
//!
//! The corpus: every bad-payload class (schema violations of each kind, integers beyond 32
//! bits, decimals beyond 28 digits, duplicate keys) in DataTransfer, which both sides receive,
//! plus the classes each side receives in its own actions.

use std::io::Write;
use std::process::{Command, Stdio};

use ocpp_central::testing::Harness;
use ocpp_charger::testing::VirtualPair;
use ocpp_types::Version;
use serde_json::Value;

const INSPECT: &str = env!("CARGO_BIN_EXE_ocpp-inspect");

/// (action, payload) pairs; the payload is sent verbatim.
type Corpus = &'static [(&'static str, &'static str)];

const BOTH_16: Corpus = &[
    ("DataTransfer", r#"{}"#),
    ("DataTransfer", r#"{"vendorId":7}"#),
    (
        "DataTransfer",
        r#"{"vendorId":"V","messageId":"0123456789012345678901234567890123456789012345678901"}"#,
    ),
    ("DataTransfer", r#"{"vendorId":"V","colour":"red"}"#),
    ("DataTransfer", r#"{"vendorId":"V","vendorId":"W"}"#),
    ("DataTransfer", r#"[]"#),
];

const BOTH_2X: Corpus = &[
    ("DataTransfer", r#"{}"#),
    ("DataTransfer", r#"{"vendorId":7}"#),
    (
        "DataTransfer",
        r#"{"vendorId":"V","messageId":"0123456789012345678901234567890123456789012345678901"}"#,
    ),
    ("DataTransfer", r#"{"vendorId":"V","colour":"red"}"#),
    ("DataTransfer", r#"{"vendorId":"V","vendorId":"W"}"#),
    ("DataTransfer", r#"{"vendorId":"V","customData":{}}"#),
];

const TO_CENTRAL_16: Corpus = &[
    (
        "StatusNotification",
        r#"{"connectorId":4294967296,"errorCode":"NoError","status":"Available"}"#,
    ),
    (
        "StatusNotification",
        r#"{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}"#,
    ),
    ("Heartbeat", r#"{"x":1}"#),
    ("BootNotification", r#"{"chargePointVendor":"V"}"#),
    (
        "MeterValues",
        r#"{"connectorId":1,"meterValue":[{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{"value":"1","measurand":"Nope"}]}]}"#,
    ),
    ("Authorize", r#"{"idTag":"012345678901234567890"}"#),
];

const TO_CENTRAL_2X: Corpus = &[
    (
        "StatusNotification",
        r#"{"timestamp":"2025-01-01T00:00:00Z","connectorStatus":"Available","evseId":4294967296,"connectorId":1}"#,
    ),
    ("Heartbeat", r#"{"x":1}"#),
    (
        "MeterValues",
        r#"{"evseId":1,"meterValue":[{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{"value":1e40}]}]}"#,
    ),
    (
        "MeterValues",
        r#"{"evseId":1,"meterValue":[{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{"value":1.00000000000000000000000000001}]}]}"#,
    ),
    ("Authorize", r#"{"idToken":{"idToken":"T"}}"#),
];

const TO_CHARGER_16: Corpus = &[
    (
        "ChangeAvailability",
        r#"{"connectorId":4294967296,"type":"Operative"}"#,
    ),
    ("Reset", r#"{"type":"Nope"}"#),
    ("UnlockConnector", r#"{}"#),
    ("ClearCache", r#"{"x":1}"#),
    ("GetConfiguration", r#"{"key":"HeartbeatInterval"}"#),
];

const TO_CHARGER_2X: Corpus = &[
    (
        "UnlockConnector",
        r#"{"evseId":4294967296,"connectorId":1}"#,
    ),
    ("Reset", r#"{"type":"Nope"}"#),
    ("ClearCache", r#"{"x":1}"#),
    ("GetVariables", r#"{"getVariableData":[]}"#),
];

/// (code, description, details) of a CALLERROR frame.
fn error_of(frame: &str) -> (String, String, Value) {
    let v: Value = serde_json::from_str(frame).unwrap_or_else(|e| panic!("{frame}: {e}"));
    assert_eq!(v[0], 4, "not a CALLERROR: {frame}");
    (
        v[2].as_str().unwrap_or_default().to_owned(),
        v[3].as_str().unwrap_or_default().to_owned(),
        v[4].clone(),
    )
}

fn central_answer(version: Version, action: &str, payload: &str) -> (String, String, Value) {
    let mut h = Harness::new(version);
    let boot = match version {
        Version::V16 => {
            r#"[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
        }
        _ => {
            r#"[2,"b","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#
        }
    };
    h.charger_sends(boot);
    let out = h.charger_sends(&format!(r#"[2,"x","{action}",{payload}]"#));
    error_of(&out[0])
}

fn charger_answer(version: Version, action: &str, payload: &str) -> (String, String, Value) {
    let mut pair = VirtualPair::new(version);
    pair.connect();
    let id = pair.central_call_raw(action, payload);
    let frame = pair
        .answer_frame(&id)
        .unwrap_or_else(|| panic!("no answer to {action} {payload}"))
        .to_owned();
    error_of(&frame)
}

/// (code, description) per line, from `ocpp-inspect`.
fn inspect(version: Version, frames: &[String]) -> Vec<(String, String)> {
    let mut child = Command::new(INSPECT)
        .args(["--version", version.as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocpp-inspect runs");
    let input = frames.join("\n") + "\n";
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            let kind = parts.next().unwrap_or_default();
            assert_eq!(kind, "error", "{l}");
            (
                parts.next().unwrap_or_default().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn check(version: Version, corpus: Corpus, central: bool, charger: bool) {
    let frames: Vec<String> = corpus
        .iter()
        .map(|(a, p)| format!(r#"[2,"x","{a}",{p}]"#))
        .collect();
    let inspected = inspect(version, &frames);
    assert_eq!(inspected.len(), corpus.len());
    for ((action, payload), (code, description)) in corpus.iter().zip(inspected) {
        let what = format!("{version} {action} {payload}");
        let mut answers = Vec::new();
        if central {
            answers.push(("central", central_answer(version, action, payload)));
        }
        if charger {
            answers.push(("charger", charger_answer(version, action, payload)));
        }
        for (who, (c, d, details)) in &answers {
            assert_eq!(
                (c.as_str(), d.as_str()),
                (code.as_str(), description.as_str()),
                "{who} and ocpp-inspect differ on {what}"
            );
            assert!(details.is_object(), "{who}: {what}: {details}");
        }
        if let [(_, a), (_, b)] = answers.as_slice() {
            assert_eq!(a, b, "central and charger differ on {what}");
        }
    }
}

#[test]
fn the_same_bytes_get_the_same_answer_everywhere() {
    check(Version::V16, BOTH_16, true, true);
    check(Version::V16, TO_CENTRAL_16, true, false);
    check(Version::V16, TO_CHARGER_16, false, true);
    for v in [Version::V201, Version::V21] {
        check(v, BOTH_2X, true, true);
        check(v, TO_CENTRAL_2X, true, false);
        check(v, TO_CHARGER_2X, false, true);
    }
}

#[test]
fn an_integer_beyond_32_bits_is_a_type_constraint_violation_with_its_pointer() {
    let payload = r#"{"connectorId":4294967296,"errorCode":"NoError","status":"Available"}"#;
    let (code, _, details) = central_answer(Version::V16, "StatusNotification", payload);
    assert_eq!(code, "TypeConstraintViolation");
    assert_eq!(details["pointer"], "/connectorId");
    let payload = r#"{"connectorId":4294967296,"type":"Operative"}"#;
    let (code, _, details) = charger_answer(Version::V16, "ChangeAvailability", payload);
    assert_eq!(code, "TypeConstraintViolation");
    assert_eq!(details["pointer"], "/connectorId");
}
