//! The messages of the codec benchmark (`benches/benches/codec.rs`): whole OCPP-J text
//! messages, each conforming and in a non-conforming variant that lenient mode repairs.
//!
//! The Python benchmark (`benches/python/bench_ocpp_py.py`) builds the same frames from the
//! same payload files, under the same keys.

use ocpp_codec::Version;

/// The message id of every benchmarked frame.
pub const ID: &str = "19223201";

/// Whether a case is a CALL or a CALLRESULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[2, id, action, payload]`.
    Call,
    /// `[3, id, payload]`, answering a CALL of `action`.
    CallResult,
}

/// One benchmarked message.
#[derive(Debug, Clone)]
pub struct Case {
    /// The key: criterion's group is `codec_<key>`, the Python script prints the same key.
    pub key: &'static str,
    /// The OCPP version.
    pub version: Version,
    /// The action.
    pub action: &'static str,
    /// CALL or CALLRESULT.
    pub kind: Kind,
    /// The conforming payload.
    pub payload: String,
    /// The payload with what field devices get wrong (timestamps without an offset, a
    /// number sent as a string, or an unknown property), which lenient mode repairs.
    pub repairable: String,
    /// What was broken in `repairable`, for the report.
    pub defects: &'static str,
}

impl Case {
    /// The whole text message carrying `payload`.
    pub fn frame(&self, payload: &str) -> String {
        match self.kind {
            Kind::Call => format!("[2,\"{ID}\",\"{}\",{payload}]", self.action),
            Kind::CallResult => format!("[3,\"{ID}\",{payload}]"),
        }
    }

    /// The conforming text message.
    pub fn text(&self) -> String {
        self.frame(&self.payload)
    }

    /// The non-conforming text message.
    pub fn repairable_text(&self) -> String {
        self.frame(&self.repairable)
    }
}

/// A payload file of `benches/payloads/`.
pub fn payload(file: &str) -> String {
    let path = format!("{}/payloads/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("benchmark payload")
}

/// `text` with every `from` replaced by `to`; panics when `from` does not occur, so a changed
/// payload file cannot silently make the repair benchmark measure a conforming message.
fn breaking(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the payload");
    text.replace(from, to)
}

/// The benchmarked messages: Heartbeat (1.6, request and response), 1.6 MeterValues with 8
/// sampled values, 2.0.1 TransactionEvent and 2.1 NotifyReport with 200 report entries.
pub fn cases() -> Vec<Case> {
    let meter_values = payload("v16_meter_values.json");
    let transaction_event = payload("v201_transaction_event.json");
    let notify_report = payload("v21_notify_report.json");
    vec![
        Case {
            key: "heartbeat_req",
            version: Version::V16,
            action: "Heartbeat",
            kind: Kind::Call,
            payload: "{}".into(),
            repairable: r#"{"vendorSeq":17}"#.into(),
            defects: "an unknown property",
        },
        Case {
            key: "heartbeat_res",
            version: Version::V16,
            action: "Heartbeat",
            kind: Kind::CallResult,
            payload: r#"{"currentTime":"2026-11-25T08:30:00.000Z"}"#.into(),
            repairable: r#"{"currentTime":"2026-11-25T08:30:00.000"}"#.into(),
            defects: "timestamp without offset",
        },
        Case {
            key: "v16_meter_values",
            version: Version::V16,
            action: "MeterValues",
            kind: Kind::Call,
            repairable: breaking(
                &breaking(&meter_values, "08:30:00Z", "08:30:00"),
                r#""transactionId": 1842"#,
                r#""transactionId": "1842""#,
            ),
            payload: meter_values,
            defects: "timestamp without offset, transactionId as a string",
        },
        Case {
            key: "v201_transaction_event",
            version: Version::V201,
            action: "TransactionEvent",
            kind: Kind::Call,
            repairable: breaking(
                &breaking(&transaction_event, ":00.000Z", ":00.000"),
                r#""seqNo": 42"#,
                r#""seqNo": "42""#,
            ),
            payload: transaction_event,
            defects: "2 timestamps without offset, seqNo as a string",
        },
        Case {
            key: "v21_notify_report",
            version: Version::V21,
            action: "NotifyReport",
            kind: Kind::Call,
            repairable: breaking(
                &breaking(&notify_report, "08:30:00Z", "08:30:00"),
                r#""requestId": 7"#,
                r#""requestId": "7""#,
            ),
            payload: notify_report,
            defects: "generatedAt without offset, requestId as a string",
        },
    ]
}
