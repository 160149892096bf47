//! What the stateful targets (`central_session`, `charger_station`) share: the byte-level
//! input format, a schema-driven generator of valid-shaped payloads with extreme values, and
//! the "every CALL answered exactly once" bookkeeping.
//!
//! Input format (mirrored by `fuzz/make_seeds.py`): a 4-byte header, then operations, each an
//! op byte, a length byte and that many parameter bytes. Parameters are read one byte per
//! decision through `arbitrary::Unstructured` (a missing byte reads as 0), and a 0 byte always
//! means "the typical, valid choice": an all-zero operation is a minimal valid message, and a
//! mutation of one byte changes one decision of one operation.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use arbitrary::Unstructured;
use ocpp_codec::frame::Decoder;
use ocpp_codec::{Frame, FrameError, ReplyKind, Version};
use ocpp_types::MessageKind;
use serde_json::{Map, Value};

/// Reads decisions from the fuzz input, one byte each (0 once the bytes run out).
pub struct Reader<'a> {
    u: Unstructured<'a>,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            u: Unstructured::new(bytes),
        }
    }

    pub fn byte(&mut self) -> u8 {
        self.u.arbitrary::<u8>().unwrap_or(0)
    }

    /// A choice among `n` (0 when `n` is 0); two bytes when `n` exceeds 256.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let v = if n > 256 {
            usize::from(self.u.arbitrary::<u16>().unwrap_or(0))
        } else {
            usize::from(self.byte())
        };
        v % n
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let n = self.u.len();
        self.u.bytes(n).unwrap_or(&[])
    }

    /// A short string from the input: length byte, then bytes (lossy UTF-8).
    pub fn text(&mut self, max: usize) -> String {
        let len = usize::from(self.byte()).min(max).min(self.u.len());
        let bytes = self.u.bytes(len).unwrap_or(&[]);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Splits `data` into the 4-byte header and the operations `(op, parameters)`.
pub fn split(data: &[u8]) -> ([u8; 4], Vec<(u8, &[u8])>) {
    let mut header = [0u8; 4];
    for (h, b) in header.iter_mut().zip(data) {
        *h = *b;
    }
    let mut rest = data.get(4..).unwrap_or(&[]);
    let mut ops = Vec::new();
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(tail.first().copied().unwrap_or(0)).min(tail.len().saturating_sub(1));
        ops.push((op, tail.get(1..1 + len).unwrap_or(&[])));
        rest = tail.get(1 + len..).unwrap_or(&[]);
        if ops.len() >= 256 {
            break;
        }
    }
    (header, ops)
}

/// The actions of `version` whose requests `charger` (or else the central system) sends,
/// sorted by name, as the schemas list them.
pub fn actions(version: Version, charger: bool) -> Vec<&'static str> {
    ocpp_schemas::actions(version)
        .filter(|a| {
            let may = if charger {
                ocpp_central::message::charger_may_send(version, a)
            } else {
                ocpp_central::message::central_may_send(version, a)
            };
            may == Some(true) && ocpp_schemas::schema(version, a, MessageKind::Request).is_some()
        })
        .collect()
}

// ----- the payload generator -----

const INTS: &[&str] = &[
    "1",
    "0",
    "2",
    "-1",
    "-5",
    "2147483647",
    "-2147483648",
    "2147483648",
    "-2147483649",
    "9007199254740993",
    "99999999999999999999",
    "4294967296",
    "3",
    "300",
    "86400",
];
const IDS: &[&str] = &[
    "1",
    "2",
    "0",
    "3",
    "-1",
    "2147483647",
    "-2147483648",
    "2147483646",
];
const SEQ: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "2000000000",
    "2147483647",
    "2147483646",
    "-1",
    "1000000000",
    "4000000000",
    "-2147483648",
];
pub const INTERVALS: &[&str] = &[
    "300",
    "0",
    "-5",
    "1",
    "2147483647",
    "86400",
    "99999999999999999999",
    "-2147483648",
    "60",
    "86401",
];
const MULTIPLIERS: &[&str] = &[
    "0",
    "3",
    "-3",
    "28",
    "-28",
    "29",
    "-29",
    "2147483647",
    "-2147483648",
];
const NUMBERS: &[&str] = &[
    "1.5",
    "0",
    "-5",
    "0.1",
    "79228162514264337593543950335",
    "-79228162514264337593543950335",
    "7.9228162514264337593543950335e28",
    "1e308",
    "0.0000000000000000000000000001",
    "123456789012345678901234567890.5",
    "1e-400",
    "3.4028235e38",
    "-0",
    "7400",
    "100000",
];
const DECIMAL_STRINGS: &[&str] = &[
    "100",
    "0",
    "1500.5",
    "79228162514264337593543950335",
    "-79228162514264337593543950335",
    "79228162514264337593543950336",
    "1e400",
    "NaN",
    "",
    "7.9e28",
    "0.0000000000000000000000000001",
    "-5",
    " 12 ",
    "1e-30",
];
pub const DATES: &[&str] = &[
    "2025-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2025-01-01T00:00:00+14:00",
    "2025-01-01T00:00:00.123456789Z",
    "2024-12-31T23:59:60Z",
    "2025-01-01T00:00:00",
    "2262-04-11T23:47:16.854775807Z",
    "1677-09-21T00:12:43.145224192Z",
    "2025-01-01T01:00:00Z",
    "2026-01-01T00:00:00Z",
];
const TOKENS: &[&str] = &["TAG1", "TAG2", "TAG3", "ABCDEFGHIJKLMNOPQRST", "", "tag1"];
const TX_IDS: &[&str] = &[
    "T1",
    "T2",
    "T3",
    "T4",
    "T5",
    "",
    "123456789012345678901234567890123456",
];
const STRINGS: &[&str] = &["x", "", "TAG1", "T1", "\u{0}", "\"\\", "é€𝄞", "1"];

/// Output bound of one payload (long lists stop there).
const MAX_PAYLOAD: usize = 256 * 1024;
/// Schema nodes generated per payload before everything optional is left out.
const MAX_NODES: usize = 3_000;

/// A valid-shaped payload for a schema, with values from the extreme palettes above; byte 0
/// everywhere gives the minimal valid payload.
pub struct Gen<'r, 'a> {
    r: &'r mut Reader<'a>,
    nodes: usize,
    out: String,
}

impl<'r, 'a> Gen<'r, 'a> {
    pub fn new(r: &'r mut Reader<'a>) -> Self {
        Gen {
            r,
            nodes: 0,
            out: String::new(),
        }
    }

    /// The payload of `action`'s `kind`, `{}` when there is no such schema.
    pub fn payload(mut self, version: Version, action: &str, kind: MessageKind) -> String {
        let Some(schema) = ocpp_schemas::schema(version, action, kind) else {
            return "{}".to_owned();
        };
        let root = schema.json();
        let empty = Map::new();
        let defs = root
            .get("definitions")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.value(root, defs, "", 0);
        self.out
    }

    fn pick(&mut self, palette: &[&str]) -> String {
        palette[self.r.below(palette.len())].to_owned()
    }

    fn push_str(&mut self, s: &str) {
        self.out
            .push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
    }

    fn value(&mut self, node: &Value, defs: &Map<String, Value>, key: &str, depth: usize) {
        self.nodes += 1;
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or("");
            match defs.get(name) {
                Some(d) if depth < 12 => return self.value(d, defs, key, depth + 1),
                _ => {
                    self.out.push_str("{}");
                    return;
                }
            }
        }
        if let Some(values) = node.get("enum").and_then(Value::as_array) {
            let b = self.r.byte();
            let preferred = match key {
                "measurand" => Some("Energy.Active.Import.Register"),
                _ => None,
            };
            let choice = match (b, preferred) {
                (0..=127, Some(p)) if values.iter().any(|v| v == p) => p.to_owned(),
                (255, _) => "NotAValue".to_owned(),
                _ => values
                    .get(usize::from(b) % values.len().max(1))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            };
            self.push_str(&choice);
            return;
        }
        match node.get("type").and_then(Value::as_str) {
            Some("object") => self.object(node, defs, depth),
            Some("array") => self.array(node, defs, key, depth),
            Some("string") => self.string(node, key),
            Some("integer") => {
                let v = self.integer(node, key);
                self.out.push_str(&v);
            }
            Some("number") => {
                let v = match key {
                    "value" if self.r.byte() % 4 == 1 => format!("{}", self.r.byte()),
                    _ => self.pick(NUMBERS),
                };
                self.out.push_str(&v);
            }
            Some("boolean") => {
                let v = if self.r.byte() % 2 == 0 {
                    "true"
                } else {
                    "false"
                };
                self.out.push_str(v);
            }
            _ => self.out.push_str("{}"),
        }
    }

    fn integer(&mut self, node: &Value, key: &str) -> String {
        let lower = key.to_ascii_lowercase();
        if key == "seqNo" {
            return self.pick(SEQ);
        }
        if key == "multiplier" {
            return self.pick(MULTIPLIERS);
        }
        if lower.contains("interval") || lower == "duration" || lower == "retries" {
            return self.pick(INTERVALS);
        }
        if key == "connectorId" || key == "evseId" || key == "id" || key.ends_with("Id") {
            let b = self.r.byte();
            return match b {
                0..=199 => IDS[usize::from(b) % IDS.len()].to_owned(),
                _ => format!("{}", self.r.byte()),
            };
        }
        let b = self.r.byte();
        if b == 0 {
            let min = node.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            let max = node
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            return min.max(1).min(max).to_string();
        }
        INTS[usize::from(b) % INTS.len()].to_owned()
    }

    fn string(&mut self, node: &Value, key: &str) {
        let max = node
            .get("maxLength")
            .and_then(Value::as_u64)
            .map_or(64, |m| m.min(4096) as usize);
        if node.get("format").and_then(Value::as_str) == Some("date-time") {
            let d = self.pick(DATES);
            return self.push_str(&d);
        }
        let b = self.r.byte();
        let s = match (key, b) {
            ("idTag" | "idToken" | "parentIdTag" | "groupIdToken", _) if b < 200 => {
                TOKENS[usize::from(b) % TOKENS.len()].to_owned()
            }
            ("transactionId", _) if b < 200 => TX_IDS[usize::from(b) % TX_IDS.len()].to_owned(),
            ("value", _) if b < 200 => {
                DECIMAL_STRINGS[usize::from(b) % DECIMAL_STRINGS.len()].to_owned()
            }
            (_, 0) => "x".to_owned(),
            (_, 1..=199) => STRINGS[usize::from(b) % STRINGS.len()].to_owned(),
            (_, 200..=219) => "x".repeat(max),
            (_, 220..=229) => "x".repeat(max + 1),
            _ => self.r.text(64),
        };
        self.push_str(&s);
    }

    fn object(&mut self, node: &Value, defs: &Map<String, Value>, depth: usize) {
        let empty = Map::new();
        let props = node
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: BTreeSet<&str> = node
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.out.push('{');
        let mut first = true;
        for (name, schema) in props {
            let include = if required.contains(name.as_str()) {
                true
            } else if name == "customData" || self.nodes > MAX_NODES || depth > 8 {
                false
            } else {
                self.r.byte() % 2 == 1
            };
            if !include {
                continue;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            self.push_str(name);
            self.out.push(':');
            self.value(schema, defs, name, depth + 1);
        }
        self.out.push('}');
    }

    fn array(&mut self, node: &Value, defs: &Map<String, Value>, key: &str, depth: usize) {
        let min = node.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = node
            .get("maxItems")
            .and_then(Value::as_u64)
            .map_or(3_000, |m| m.min(3_000) as usize);
        let items = node.get("items").unwrap_or(&Value::Null);
        let b = if self.nodes > MAX_NODES || depth > 8 {
            0
        } else {
            self.r.byte()
        };
        let n = match b {
            0..=199 => min.max(1) + usize::from(b) % 3,
            200..=239 => max.max(1),
            240..=249 => 3_000,
            _ => 0,
        };
        self.out.push('[');
        let mut last = String::new();
        for i in 0..n {
            if i > 0 {
                self.out.push(',');
            }
            if i >= 3 {
                // Long lists repeat their third item: cheap, and every item stays valid.
                if self.out.len() + last.len() > MAX_PAYLOAD {
                    self.out.pop();
                    break;
                }
                self.out.push_str(&last);
                continue;
            }
            let item_start = self.out.len();
            self.value(items, defs, key, depth + 1);
            last = self.out[item_start..].to_owned();
        }
        self.out.push(']');
    }
}

// ----- every CALL answered exactly once -----

/// What a text sent to the system under test was, as its RPC endpoint sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A CALL with a new id (or one whose earlier CALL was answered): owes one answer, from
    /// the application or the session / station itself.
    New(String),
    /// A CALL repeating the id of one still unanswered: answered with a CALLERROR after the
    /// original's answer (ocpp-codec/src/rpc.rs, at most `MAX_UNANSWERED` copies remembered).
    Copy(String),
    /// A CALL beyond `MAX_UNANSWERED` unanswered ones: refused at once.
    TooMany(String),
    /// A malformed message that gets a CALLERROR reply with this id at once.
    Malformed(String),
    /// A CALLRESULT / CALLERROR / CALLRESULTERROR / SEND / a malformed message with no reply.
    Other,
}

/// `EndpointConfig::max_unanswered_calls`'s default (ocpp-codec/src/rpc.rs), which both the
/// session and the station use.
pub const MAX_UNANSWERED: usize = 16;

/// The answers owed to the peer's CALLs on one connection, by message id, modelled on
/// ocpp-codec/src/rpc.rs: each CALL is answered exactly once, a repeated id of an unanswered
/// CALL gets its CALLERROR after the original's answer, a malformed CALL its error at once.
pub struct Ledger {
    decoder: Decoder,
    owed: BTreeMap<String, u32>,
    unanswered: BTreeSet<String>,
    copies: BTreeMap<String, u32>,
}

impl Ledger {
    pub fn new(version: Version) -> Ledger {
        Ledger {
            decoder: Decoder::new(version),
            owed: BTreeMap::new(),
            unanswered: BTreeSet::new(),
            copies: BTreeMap::new(),
        }
    }

    /// Records a text about to be handed to the system under test.
    pub fn incoming(&mut self, text: &str) -> Incoming {
        match self.decoder.decode(text) {
            Ok(Frame::Call { id, .. }) => {
                let id = id.into_owned();
                if self.unanswered.contains(&id) {
                    let copies = self.copies.entry(id.clone()).or_default();
                    if (*copies as usize) < MAX_UNANSWERED {
                        *copies += 1;
                        *self.owed.entry(id.clone()).or_default() += 1;
                    }
                    Incoming::Copy(id)
                } else if self.unanswered.len() >= MAX_UNANSWERED {
                    *self.owed.entry(id.clone()).or_default() += 1;
                    Incoming::TooMany(id)
                } else {
                    self.unanswered.insert(id.clone());
                    *self.owed.entry(id.clone()).or_default() += 1;
                    Incoming::New(id)
                }
            }
            Ok(_) => Incoming::Other,
            Err(e) => match FrameError::reply(&e, self.version()) {
                Some(r) if r.kind == ReplyKind::CallError => {
                    *self.owed.entry(r.id.clone()).or_default() += 1;
                    Incoming::Malformed(r.id)
                }
                _ => Incoming::Other,
            },
        }
    }

    fn version(&self) -> Version {
        self.decoder.version()
    }

    /// The original CALL `id` was answered (its copies' errors follow).
    pub fn answered(&mut self, id: &str) {
        if self.unanswered.remove(id) {
            self.copies.remove(id);
        }
    }

    /// The original CALL `id` will never be answered on this connection (the station while
    /// its boot is Rejected): its endpoint forgets it (`Endpoint::ignore_call`), so it does
    /// not count against the unanswered calls and a later CALL with its id is a new one.
    pub fn never_answered(&mut self, id: &str) {
        if let Some(n) = self.owed.get_mut(id) {
            *n = n.saturating_sub(1);
        }
        self.unanswered.remove(id);
        self.copies.remove(id);
    }

    /// A CALLRESULT / CALLERROR the system under test sent for `id`.
    pub fn answer(&mut self, id: &str, frame: &str) {
        match self.owed.get_mut(id) {
            Some(n) if *n > 0 => *n -= 1,
            _ => panic!("answered a CALL that was never sent or already answered: {frame}"),
        }
    }

    /// Ids still owed an answer.
    pub fn outstanding(&self) -> Vec<(&str, u32)> {
        self.owed
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.as_str(), *n))
            .collect()
    }

    /// How many CALLs of the peer are unanswered, to the endpoint's mind.
    pub fn unanswered(&self) -> usize {
        self.unanswered.len()
    }
}

/// An outgoing text, decoded (a frame the system under test sends must always decode).
pub enum Outgoing {
    Call { id: String, action: String },
    Answer(String),
    Other,
}

pub fn outgoing(version: Version, text: &str) -> Outgoing {
    match Decoder::new(version)
        .with_max_message_size(usize::MAX)
        .decode(text)
    {
        Ok(Frame::Call { id, action, .. }) => Outgoing::Call {
            id: id.into_owned(),
            action: action.into_owned(),
        },
        Ok(Frame::CallResult { id, .. } | Frame::CallError { id, .. }) => {
            Outgoing::Answer(id.into_owned())
        }
        Ok(_) => Outgoing::Other,
        Err(e) => panic!("sent a frame that does not decode ({e}): {text}"),
    }
}

/// A frame answering `id`: CALLRESULT with `payload`.
pub fn result(id: &str, payload: &str) -> String {
    let mut s = String::from("[3,");
    s.push_str(&serde_json::to_string(id).unwrap_or_default());
    let _ = write!(s, ",{payload}]");
    s
}

/// A CALL frame.
pub fn call(id: &str, action: &str, payload: &str) -> String {
    format!(
        "[2,{},{},{payload}]",
        serde_json::to_string(id).unwrap_or_default(),
        serde_json::to_string(action).unwrap_or_default()
    )
}

/// A CALLERROR frame.
pub fn error(id: &str, code: &str) -> String {
    format!(
        "[4,{},{},\"fuzz\",{{}}]",
        serde_json::to_string(id).unwrap_or_default(),
        serde_json::to_string(code).unwrap_or_default()
    )
}

/// Durations a time step takes, from none to ten years.
pub const STEPS: &[std::time::Duration] = &[
    std::time::Duration::from_secs(0),
    std::time::Duration::from_millis(1),
    std::time::Duration::from_millis(999),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(10),
    std::time::Duration::from_secs(29),
    std::time::Duration::from_secs(30),
    std::time::Duration::from_secs(31),
    std::time::Duration::from_secs(60),
    std::time::Duration::from_secs(300),
    std::time::Duration::from_secs(3_600),
    std::time::Duration::from_secs(86_400),
    std::time::Duration::from_secs(86_401),
    std::time::Duration::from_secs(30 * 86_400),
    std::time::Duration::from_secs(366 * 86_400),
    std::time::Duration::from_secs(3_653 * 86_400),
];

/// Virtual time an input may pass in all (the wall clock stays far from chrono's limits).
pub const MAX_VIRTUAL: std::time::Duration = std::time::Duration::from_secs(200 * 366 * 86_400);
