//! Raw OCPP-J frames for conformance tests that talk to a peer over a real socket with no OCPP
//! library on their own side: the frame-level bad inputs every receiver must answer the same
//! way whichever side it is (`examples/CONFORMANCE.md` gives the references), the error code
//! spellings of each version, and the check of a CALLERROR. The central system's and the
//! charger's conformance tests (`ocpp-central/tests/conformance.rs`,
//! `ocpp-charger/tests/conformance.rs`) both build on it.
//!
//! ```
//! use ocpp_codec::testing::raw::{assert_call_error, error_words, frame_level_bad_input, Expected};
//! use ocpp_codec::Version;
//!
//! let words = error_words(Version::V16);
//! assert_eq!(words.format, "FormationViolation");
//! let cases = frame_level_bad_input(Version::V201, "Heartbeat");
//! assert!(cases.iter().any(|c| c.expect == Expected::Error { id: "-1", code: "RpcFrameworkError" }));
//! let reply = serde_json::json!([4, "t1", "RpcFrameworkError", "truncated", {}]);
//! assert_call_error(&reply, "t1", "RpcFrameworkError", "truncated JSON");
//! ```

use serde_json::Value;

use crate::Version;

/// A version's spellings of the codes whose names differ between 1.6 and 2.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorWords {
    /// A payload that is not well-formed: 1.6 `FormationViolation`, 2.x `FormatViolation`.
    pub format: &'static str,
    /// A required field missing: 1.6 `OccurenceConstraintViolation` (sic), 2.x
    /// `OccurrenceConstraintViolation`.
    pub occurrence: &'static str,
    /// A message that is not a valid RPC frame: 1.6 `FormationViolation` (it has no other
    /// word), 2.x `RpcFrameworkError`.
    pub rpc_framework: &'static str,
}

/// The spellings of version `v`.
pub fn error_words(v: Version) -> ErrorWords {
    if v == Version::V16 {
        ErrorWords {
            format: "FormationViolation",
            occurrence: "OccurenceConstraintViolation",
            rpc_framework: "FormationViolation",
        }
    } else {
        ErrorWords {
            format: "FormatViolation",
            occurrence: "OccurrenceConstraintViolation",
            rpc_framework: "RpcFrameworkError",
        }
    }
}

/// The text of a CALL `[2,"id","action",payload]` with `payload` as written (it may be
/// malformed on purpose).
pub fn call(id: &str, action: &str, payload: &str) -> String {
    format!("[2,{},{},{payload}]", Value::from(id), Value::from(action))
}

/// What a receiver must answer to a bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A CALLERROR with this message id (`"-1"` when the id could not be read) and code.
    Error {
        /// The message id of the CALLERROR.
        id: &'static str,
        /// Its error code.
        code: &'static str,
    },
    /// A CALLRESULT with this message id (for inputs that are odd but valid, e.g. a CALL in
    /// a binary frame).
    Result {
        /// The message id of the CALLRESULT.
        id: &'static str,
    },
    /// Nothing at all.
    Nothing,
}

impl Expected {
    /// A CALLERROR with message id `id` and error code `code`.
    pub const fn error(id: &'static str, code: &'static str) -> Expected {
        Expected::Error { id, code }
    }

    /// A CALLRESULT with message id `id`.
    pub const fn result(id: &'static str) -> Expected {
        Expected::Result { id }
    }
}

/// One bad input: a text message and what it must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// What is wrong with it, for assertion messages.
    pub what: &'static str,
    /// The text message.
    pub text: String,
    /// The answer it must get.
    pub expect: Expected,
}

/// The frame-level bad inputs, the same for a central system and a charger of version `v`;
/// `action` is an action the receiver accepts with an empty payload (`Heartbeat` for a
/// central system, `GetLocalListVersion` for a charger):
///
/// | input | 1.6 | 2.0.1 | 2.1 |
/// |---|---|---|---|
/// | truncated JSON | `FormationViolation`, its id | `RpcFrameworkError`, its id | as 2.0.1 |
/// | a JSON object instead of an array | `FormationViolation`, id `-1` | `RpcFrameworkError`, id `-1` | as 2.0.1 |
/// | message type 7 | nothing | `MessageTypeNotSupported` | nothing |
/// | unknown action | `NotImplemented` | same | same |
/// | a payload that is not an object | `TypeConstraintViolation` | same | same |
/// | a message id of 41 characters | `FormationViolation`, id `-1` | `RpcFrameworkError`, id `-1` | as 2.0.1 |
/// | CALLRESULT / CALLERROR for an id never sent | nothing | nothing | nothing |
///
/// The specification references of every row are in `examples/CONFORMANCE.md`.
pub fn frame_level_bad_input(v: Version, action: &str) -> Vec<BadFrame> {
    let rpc = error_words(v).rpc_framework;
    let bad = |what, text: String, expect| BadFrame { what, text, expect };
    let error = Expected::error;
    vec![
        bad(
            "truncated JSON",
            format!("[2,\"t1\",{},{{", Value::from(action)),
            error("t1", rpc),
        ),
        bad(
            "a JSON object instead of an array",
            format!(
                r#"{{"messageTypeId":2,"messageId":"o1","action":{},"payload":{{}}}}"#,
                Value::from(action)
            ),
            error("-1", rpc),
        ),
        bad(
            "message type 7",
            format!("[7,\"m7\",{},{{}}]", Value::from(action)),
            match v {
                Version::V201 => error("m7", "MessageTypeNotSupported"),
                _ => Expected::Nothing,
            },
        ),
        bad(
            "unknown action",
            call("ua", "FlyToTheMoon", "{}"),
            error("ua", "NotImplemented"),
        ),
        bad(
            "wrong type of the payload",
            call("wp", action, "[]"),
            error("wp", "TypeConstraintViolation"),
        ),
        bad(
            "message id of 41 characters",
            call(&"i".repeat(41), action, "{}"),
            error("-1", rpc),
        ),
        bad(
            "CALLRESULT for an id never sent",
            r#"[3,"never-sent",{}]"#.to_owned(),
            Expected::Nothing,
        ),
        bad(
            "CALLERROR for an id never sent",
            r#"[4,"never-sent-either","GenericError","",{}]"#.to_owned(),
            Expected::Nothing,
        ),
    ]
}

/// Checks that `reply` is a CALLERROR `[4,id,code,description,details]` with this `id` and
/// `code`, a description of at most 255 characters and an object as details; `what` names the
/// input in the panic message.
///
/// # Panics
///
/// When `reply` is anything else (it is a test assertion).
pub fn assert_call_error(reply: &Value, id: &str, code: &str, what: &str) {
    assert_eq!(reply[0], 4, "{what}: {reply}");
    assert_eq!(reply[1], id, "{what}: {reply}");
    assert_eq!(reply[2], code, "{what}: {reply}");
    let description = reply[3].as_str().expect("a description");
    assert!(description.chars().count() <= 255, "{what}: {reply}");
    assert!(reply[4].is_object(), "{what}: {reply}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_as_written() {
        assert_eq!(call("a", "Heartbeat", "{}"), r#"[2,"a","Heartbeat",{}]"#);
        let cases = frame_level_bad_input(Version::V16, "Heartbeat");
        assert_eq!(cases[0].text, r#"[2,"t1","Heartbeat",{"#);
        assert_eq!(cases[5].text.len(), r#"[2,"","Heartbeat",{}]"#.len() + 41);
    }
}
