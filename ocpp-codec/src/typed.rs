//! Typed dispatch per version: CALL, CALLRESULT and (2.1) SEND payloads into the generated
//! types, with the exact CALLERROR for everything that goes wrong, and typed encoding.
//!
//! Strict by default at no cost: the generated types are schema-exact, so a successful typed
//! decode *is* the validation. Only when it fails does [`TypedCodec`] run the JSON-schema
//! validator, to name the error ([`Reply::for_violations`], with the JSON pointer in
//! `errorDetails`). The schema accepts three things the types refuse by design (integers beyond
//! 32 bits, decimals beyond 28 significant digits, duplicate keys); those are answered with
//! `TypeConstraintViolation` (numbers) or `FormatViolation` (duplicate keys), with the pointer.
//!
//! | What is wrong | Reply |
//! |---|---|
//! | action unknown to the version | `NotImplemented` |
//! | action the receiving [`Side`] does not accept (wrong direction; a SEND action in a CALL or the reverse) | `NotSupported` |
//! | payload breaks the schema | [`Reply::for_violations`]: type, occurrence, property or format violation |
//! | integer beyond 32 bits / decimal beyond 28 digits (schema accepts, types refuse) | `TypeConstraintViolation` |
//! | duplicate key (schema accepts, types refuse) | `FormatViolation` (1.6: `FormationViolation`) |
//!
//! Lenient mode ([`TypedCodec::lenient`], off by default) runs only after the strict decode
//! failed, on a [`serde_json::Value`] copy of the payload: it removes properties the schema does
//! not define, appends `Z` to timestamps without an offset, turns numeric strings into numbers
//! where the schema wants a number, and drops an optional enum field whose value is outside the
//! list; then it retries the typed decode and reports each [`Repair`]. What it cannot repair (a
//! required enum field with a value outside the list, anything else) gets the strict reply.
//! The lenient copy keeps every number as the text that was sent (no `f64` on the way), so a
//! repaired payload's decimals are exactly the charger's: `2935.600` stays `2935.600`.
//!
//! ```
//! use ocpp_codec::typed::{Side, TypedCodec, TypedRequest};
//! use ocpp_codec::Version;
//! use serde_json::value::RawValue;
//!
//! let codec = TypedCodec::new(Version::V16).side(Side::CentralSystem);
//! let payload = RawValue::from_string("{}".into()).unwrap();
//! let decoded = codec.decode_call("1", "Heartbeat", &payload).unwrap();
//! assert!(matches!(decoded.value, TypedRequest::V16(_)));
//!
//! // A request the central system does not accept, answered as the specification asks:
//! let reply = codec.decode_call("2", "Reset", &RawValue::from_string(r#"{"type":"Hard"}"#.into()).unwrap()).unwrap_err();
//! assert_eq!(reply.encode(), r#"[4,"2","NotSupported","Reset is not sent by a charging station",{}]"#);
//! ```

use std::collections::HashSet;
use std::fmt;

use ocpp_schemas::{MessageKind, Version, Violation};
#[cfg(feature = "v21")]
use ocpp_types::v21;
use ocpp_types::Initiator;
/// The version-neutral typed payloads live in ocpp-types (so a request converts into them
/// without JSON); they are re-exported here, where they are decoded and encoded.
pub use ocpp_types::{AnyAction, TypedRequest, TypedResponse};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{truncate_description, ErrorCode, Reply, ReplyKind};
use crate::frame::{encode_call_into, encode_result_into, MessageType};

/// The side of the connection that receives the CALLs being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The central system (CSMS): accepts requests a charging station sends.
    CentralSystem,
    /// The charging station (charge point): accepts requests a central system sends.
    ChargingStation,
}

impl Side {
    /// Whether this side accepts a request whose sender is `initiator`.
    pub const fn accepts(self, initiator: Initiator) -> bool {
        match self {
            Side::CentralSystem => initiator.charging_station_may_send(),
            Side::ChargingStation => initiator.central_system_may_send(),
        }
    }

    fn peer(self) -> &'static str {
        match self {
            Side::CentralSystem => "a charging station",
            Side::ChargingStation => "a central system",
        }
    }
}

#[cfg(feature = "v21")]
fn send_from_json(action: AnyAction, json: &str) -> Result<v21::AnySend, serde_json::Error> {
    match action {
        AnyAction::V21(a) => v21::AnySend::from_json(a, json),
        #[allow(unreachable_patterns)]
        other => Err(serde::de::Error::custom(format_args!(
            "{other} has no SEND payload in OCPP {}",
            other.version()
        ))),
    }
}

/// What lenient mode changed in a payload to make it decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RepairKind {
    /// A property the schema does not define was removed.
    UnknownPropertyRemoved,
    /// A timestamp without a UTC offset got `Z` appended.
    TimestampOffsetAdded,
    /// A string holding a number was turned into that number.
    NumberFromString,
    /// An optional enumeration field with a value outside the list was removed.
    EnumValueDropped,
}

impl fmt::Display for RepairKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RepairKind::UnknownPropertyRemoved => "unknown property removed",
            RepairKind::TimestampOffsetAdded => "timestamp offset Z added",
            RepairKind::NumberFromString => "number read from a string",
            RepairKind::EnumValueDropped => "optional enumeration value outside the list dropped",
        })
    }
}

/// One repair lenient mode made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repair {
    /// JSON pointer (RFC 6901) of the repaired value in the original payload.
    pub pointer: String,
    /// What was done.
    pub kind: RepairKind,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.kind)
    }
}

/// A decoded payload and the repairs lenient mode made to get it (empty in strict mode and for
/// conforming payloads).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The typed payload.
    pub value: T,
    /// The repairs made, in document order per object.
    pub repairs: Vec<Repair>,
}

impl<T> Decoded<T> {
    /// A value decoded as sent, without repairs.
    fn new(value: T) -> Self {
        Decoded {
            value,
            repairs: Vec::new(),
        }
    }
}

/// Why a typed payload could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload belongs to another version than the codec's.
    #[error("an OCPP {found} message cannot be sent on an OCPP {expected} connection")]
    VersionMismatch {
        /// The codec's version.
        expected: Version,
        /// The payload's version.
        found: Version,
    },
    /// Outgoing validation is on and the encoded payload breaks its schema.
    #[error("outgoing {action} payload breaks its schema: {}", .violations.first().map(ToString::to_string).unwrap_or_default())]
    Invalid {
        /// The action.
        action: &'static str,
        /// Every violation.
        violations: Vec<Violation>,
    },
}

/// Typed decoding and encoding for one connection's version (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypedCodec {
    version: Version,
    side: Option<Side>,
    lenient: bool,
    validate_outgoing: bool,
}

impl TypedCodec {
    /// A strict codec for `version` that accepts CALLs of both directions; outgoing validation
    /// is on in debug builds (`cfg!(debug_assertions)`), off in release builds.
    pub const fn new(version: Version) -> TypedCodec {
        TypedCodec {
            version,
            side: None,
            lenient: false,
            validate_outgoing: cfg!(debug_assertions),
        }
    }

    /// Refuse incoming CALLs this side does not accept (by [`AnyAction::initiator`]) with
    /// `NotSupported`.
    pub const fn side(mut self, side: Side) -> TypedCodec {
        self.side = Some(side);
        self
    }

    /// Turn lenient mode on or off (default off).
    pub const fn lenient(mut self, lenient: bool) -> TypedCodec {
        self.lenient = lenient;
        self
    }

    /// Validate every encoded payload against its schema (default: on in debug builds).
    pub const fn validate_outgoing(mut self, validate: bool) -> TypedCodec {
        self.validate_outgoing = validate;
        self
    }

    /// The codec's version.
    pub const fn version(&self) -> Version {
        self.version
    }

    /// Whether lenient mode is on.
    pub const fn is_lenient(&self) -> bool {
        self.lenient
    }

    /// Decodes the payload of the CALL `id` for `action`. `Err` is the CALLERROR to answer
    /// with: `NotImplemented` (unknown action), `NotSupported` (an action this side does not
    /// accept, or a SEND action), or the payload's violation.
    pub fn decode_call(
        &self,
        id: &str,
        action: &str,
        payload: &RawValue,
    ) -> Result<Decoded<TypedRequest>, Reply> {
        let kind = ReplyKind::CallError;
        let Some(action) = AnyAction::from_name(self.version, action) else {
            return Err(self.unknown_action(kind, id, action));
        };
        if !action.has_response() {
            return Err(self.not_supported(kind, id, action, "is a SEND message, not a CALL"));
        }
        if let Some(side) = self.side {
            if !side.accepts(action.initiator()) {
                return Err(self.not_sent_by(id, action, side));
            }
        }
        match TypedRequest::from_json(action, payload.get()) {
            Ok(value) => Ok(Decoded::new(value)),
            Err(error) => self.refused(
                id,
                action,
                MessageKind::Request,
                payload.get(),
                error,
                TypedRequest::from_json,
            ),
        }
    }

    /// Decodes the payload of a CALLRESULT to our CALL of `action`. `Err` is a
    /// CALLRESULTERROR (OCPP 2.1 part 2 FR.06); send it only on 2.1 connections (1.6 and
    /// 2.0.1 have no answer to a bad CALLRESULT), its code names the problem on every version.
    pub fn decode_result(
        &self,
        id: &str,
        action: &str,
        payload: &RawValue,
    ) -> Result<Decoded<TypedResponse>, Reply> {
        let kind = ReplyKind::CallResultError;
        let Some(action) = AnyAction::from_name(self.version, action) else {
            return Err(self.unknown_action(kind, id, action));
        };
        if !action.has_response() {
            return Err(self.not_supported(
                kind,
                id,
                action,
                "is a SEND message and has no CALLRESULT",
            ));
        }
        match TypedResponse::from_json(action, payload.get()) {
            Ok(value) => Ok(Decoded::new(value)),
            Err(error) => self.refused(
                id,
                action,
                MessageKind::Response,
                payload.get(),
                error,
                TypedResponse::from_json,
            ),
        }
    }

    /// Decodes an OCPP 2.1 SEND payload (feature `v21`). `Err` names the problem as a CALLERROR would, but a
    /// SEND is never answered: do not transmit it.
    #[cfg(feature = "v21")]
    pub fn decode_send(
        &self,
        id: &str,
        action: &str,
        payload: &RawValue,
    ) -> Result<Decoded<v21::AnySend>, Reply> {
        let kind = ReplyKind::CallError;
        let Some(action) = AnyAction::from_name(self.version, action) else {
            return Err(self.unknown_action(kind, id, action));
        };
        if action.has_response() {
            return Err(self.not_supported(kind, id, action, "is a CALL, not a SEND message"));
        }
        if let Some(side) = self.side {
            if !side.accepts(action.initiator()) {
                return Err(self.not_sent_by(id, action, side));
            }
        }
        match send_from_json(action, payload.get()) {
            Ok(value) => Ok(Decoded::new(value)),
            Err(error) => self.refused(
                id,
                action,
                MessageKind::Send,
                payload.get(),
                error,
                send_from_json,
            ),
        }
    }

    /// Encodes a CALL frame carrying `request` with message id `id`.
    pub fn encode_call(&self, id: &str, request: &TypedRequest) -> Result<String, EncodeError> {
        let action = request.action();
        let json = self.outgoing(action, MessageKind::Request, request.to_json())?;
        let mut out = String::with_capacity(json.len() + id.len() + 32);
        encode_call_into(&mut out, MessageType::Call, id, action.as_str(), &json);
        Ok(out)
    }

    /// Encodes a CALLRESULT frame carrying `response`, answering the CALL `id`.
    pub fn encode_result(&self, id: &str, response: &TypedResponse) -> Result<String, EncodeError> {
        let json = self.outgoing(response.action(), MessageKind::Response, response.to_json())?;
        let mut out = String::with_capacity(json.len() + id.len() + 8);
        encode_result_into(&mut out, id, &json);
        Ok(out)
    }

    /// Encodes an OCPP 2.1 SEND frame carrying `message` with message id `id` (feature `v21`).
    #[cfg(feature = "v21")]
    pub fn encode_send(&self, id: &str, message: &v21::AnySend) -> Result<String, EncodeError> {
        let action = AnyAction::V21(message.action());
        let json = self.outgoing(action, MessageKind::Send, message.to_json())?;
        let mut out = String::with_capacity(json.len() + id.len() + 32);
        encode_call_into(&mut out, MessageType::Send, id, action.as_str(), &json);
        Ok(out)
    }

    fn outgoing(
        &self,
        action: AnyAction,
        kind: MessageKind,
        json: String,
    ) -> Result<String, EncodeError> {
        if action.version() != self.version {
            return Err(EncodeError::VersionMismatch {
                expected: self.version,
                found: action.version(),
            });
        }
        if self.validate_outgoing {
            let value: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
            if let Ok(Err(violations)) =
                ocpp_schemas::validate(self.version, action.as_str(), kind, &value)
            {
                return Err(EncodeError::Invalid {
                    action: action.as_str(),
                    violations,
                });
            }
        }
        Ok(json)
    }

    /// `NotImplemented`: `action` names no action of the codec's version.
    #[cold]
    #[inline(never)]
    fn unknown_action(&self, kind: ReplyKind, id: &str, action: &str) -> Reply {
        let error = ocpp_types::UnknownAction {
            version: self.version,
            action: action.to_owned(),
        };
        self.reply(kind, id, ErrorCode::NotImplemented, error.to_string(), None)
    }

    /// `NotSupported`: "`action` `what`".
    #[cold]
    #[inline(never)]
    fn not_supported(&self, kind: ReplyKind, id: &str, action: AnyAction, what: &str) -> Reply {
        self.reply(
            kind,
            id,
            ErrorCode::NotSupported,
            format!("{action} {what}"),
            None,
        )
    }

    /// `NotSupported`: a request `side` does not accept.
    #[cold]
    #[inline(never)]
    fn not_sent_by(&self, id: &str, action: AnyAction, side: Side) -> Reply {
        self.reply(
            ReplyKind::CallError,
            id,
            ErrorCode::NotSupported,
            format!("{action} is not sent by {}", side.peer()),
            None,
        )
    }

    fn reply(
        &self,
        kind: ReplyKind,
        id: &str,
        code: ErrorCode,
        description: String,
        pointer: Option<&str>,
    ) -> Reply {
        Reply {
            kind,
            id: id.to_owned(),
            code,
            description: truncate_description(&description).into_owned(),
            details: match pointer {
                Some(p) => serde_json::json!({ "pointer": p }).to_string(),
                None => "{}".to_owned(),
            },
            version: self.version,
        }
    }

    /// What follows a payload the types refused: lenient repairs (when on), else the reply
    /// naming the violation. Out of line: the common path never pays for it.
    /// The reply is a CALLRESULTERROR for a response, a CALLERROR otherwise.
    #[cold]
    #[inline(never)]
    fn refused<T>(
        &self,
        id: &str,
        action: AnyAction,
        kind: MessageKind,
        payload: &str,
        error: serde_json::Error,
        decode: impl Fn(AnyAction, &str) -> Result<T, serde_json::Error>,
    ) -> Result<Decoded<T>, Reply> {
        let reply_kind = match kind {
            MessageKind::Response => ReplyKind::CallResultError,
            _ => ReplyKind::CallError,
        };
        let value: Option<Value> = serde_json::from_str(payload).ok();
        let schema = ocpp_schemas::schema(self.version, action.as_str(), kind);
        if self.lenient {
            if let (Some(mut copy), Some(schema)) = (parse_node(payload), schema) {
                let mut repairs = Vec::new();
                let root = schema.json();
                repair(&mut copy, root, root, &mut String::new(), &mut repairs);
                if !repairs.is_empty() {
                    let mut text = String::with_capacity(payload.len());
                    write_node(&copy, &mut text);
                    if let Ok(typed) = decode(action, &text) {
                        return Ok(Decoded {
                            value: typed,
                            repairs,
                        });
                    }
                }
            }
        }
        if let (Some(value), Some(schema)) = (&value, schema) {
            if let Err(violations) = schema.validate(value) {
                if let Some(mut reply) = Reply::for_violations(id, &violations, self.version) {
                    reply.kind = reply_kind;
                    return Err(reply);
                }
            }
        }
        // The schema accepts what the types refuse: one of the documented deviations.
        let mut anomalies = Vec::new();
        scan(payload, &mut String::new(), &mut anomalies);
        anomalies.sort_by_key(|a| a.rank());
        Err(match anomalies.into_iter().next() {
            Some(a) => self.reply(reply_kind, id, a.code(), a.description(), Some(a.pointer())),
            None => self.reply(
                reply_kind,
                id,
                ErrorCode::FormatViolation,
                format!("payload refused: {error}"),
                None,
            ),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Deviations: what the schema accepts and the types refuse.

enum Anomaly {
    Duplicate { pointer: String },
    Decimal { pointer: String, text: String },
    Integer { pointer: String, text: String },
}

impl Anomaly {
    fn rank(&self) -> u8 {
        match self {
            Anomaly::Duplicate { .. } => 0,
            Anomaly::Decimal { .. } => 1,
            Anomaly::Integer { .. } => 2,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Anomaly::Duplicate { .. } => ErrorCode::FormatViolation,
            Anomaly::Decimal { .. } | Anomaly::Integer { .. } => ErrorCode::TypeConstraintViolation,
        }
    }

    fn pointer(&self) -> &str {
        match self {
            Anomaly::Duplicate { pointer }
            | Anomaly::Decimal { pointer, .. }
            | Anomaly::Integer { pointer, .. } => pointer,
        }
    }

    fn description(&self) -> String {
        match self {
            Anomaly::Duplicate { pointer } => {
                format!("{pointer}: the key appears more than once in its object")
            }
            Anomaly::Decimal { pointer, text } => format!(
                "{pointer}: {text} cannot be held exactly (at most 28 significant digits, \
                 magnitude below 7.9e28)"
            ),
            Anomaly::Integer { pointer, text } => {
                format!("{pointer}: {text} is beyond the 32-bit range of an OCPP integer")
            }
        }
    }
}

/// An object's entries in order, duplicates kept.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

fn push_pointer(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Walks JSON text (re-parsing each element: this is the error path only), collecting duplicate
/// keys, numbers beyond an exact decimal and integral numbers beyond 32 bits.
fn scan(text: &str, pointer: &mut String, out: &mut Vec<Anomaly>) {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    match text.as_bytes().first() {
        Some(b'{') => {
            let Ok(Entries(entries)) = serde_json::from_str::<Entries<'_>>(text) else {
                return;
            };
            let mut seen = HashSet::new();
            for (key, value) in entries {
                let len = pointer.len();
                push_pointer(pointer, &key);
                if !seen.insert(key) {
                    out.push(Anomaly::Duplicate {
                        pointer: pointer.clone(),
                    });
                }
                scan(value.get(), pointer, out);
                pointer.truncate(len);
            }
        }
        Some(b'[') => {
            let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) else {
                return;
            };
            for (i, item) in items.into_iter().enumerate() {
                let len = pointer.len();
                push_pointer(pointer, &i.to_string());
                scan(item.get(), pointer, out);
                pointer.truncate(len);
            }
        }
        Some(b'-' | b'0'..=b'9') => match ocpp_types::number::parse_decimal(text) {
            Err(_) => out.push(Anomaly::Decimal {
                pointer: pointer.clone(),
                text: text.to_owned(),
            }),
            Ok(d) => {
                let beyond = d.fract().is_zero()
                    && (d < ocpp_types::Decimal::from(i32::MIN)
                        || d > ocpp_types::Decimal::from(i32::MAX));
                if beyond {
                    out.push(Anomaly::Integer {
                        pointer: pointer.clone(),
                        text: text.to_owned(),
                    });
                }
            }
        },
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient repairs, guided by the schema.

/// Follows local `$ref`s (`#/definitions/...`).
fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| root.pointer(p))
        else {
            break;
        };
        schema = target;
    }
    schema
}

fn wants_number(schema: &Value) -> Option<bool> {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => Some(true),
        Some("number") => Some(false),
        _ => None,
    }
}

/// A date-time (`YYYY-MM-DDThh:mm:ss...`) without `Z` or a numeric offset.
fn lacks_offset(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let time = &s[11..];
    !time.ends_with(['Z', 'z']) && !time.contains(['+', '-'])
}

/// A JSON document for lenient repairs: objects keep their entries in order (duplicates
/// too), and numbers, booleans and null keep their exact text.
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    String(String),
    Raw(String),
}

/// Parses JSON text into a [`Node`] (re-parsing each element: this is the error path only).
fn parse_node(text: &str) -> Option<Node> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    match text.as_bytes().first()? {
        b'{' => {
            let Entries(entries) = serde_json::from_str::<Entries<'_>>(text).ok()?;
            let mut nodes = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                nodes.push((key, parse_node(value.get())?));
            }
            Some(Node::Object(nodes))
        }
        b'[' => {
            let items = serde_json::from_str::<Vec<&RawValue>>(text).ok()?;
            let mut nodes = Vec::with_capacity(items.len());
            for item in items {
                nodes.push(parse_node(item.get())?);
            }
            Some(Node::Array(nodes))
        }
        b'"' => serde_json::from_str::<String>(text).ok().map(Node::String),
        _ => serde_json::from_str::<&RawValue>(text)
            .ok()
            .map(|_| Node::Raw(text.to_owned())),
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serializing a str into a String cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\"")));
}

/// Writes a [`Node`] back as JSON text, numbers verbatim.
fn write_node(node: &Node, out: &mut String) {
    match node {
        Node::Object(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_node(v, out);
            }
            out.push('}');
        }
        Node::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_node(item, out);
            }
            out.push(']');
        }
        Node::String(s) => write_string(s, out),
        Node::Raw(text) => out.push_str(text),
    }
}

/// The JSON number in `s` (surrounding spaces allowed), as its text, if it is one (and
/// integral, when `integer`).
fn number_text(s: &str, integer: bool) -> Option<&str> {
    let t = s.trim();
    if !matches!(t.as_bytes().first(), Some(b'-' | b'0'..=b'9')) {
        return None;
    }
    let n = serde_json::from_str::<serde_json::Number>(t).ok()?;
    if integer && !(n.is_i64() || n.is_u64()) {
        return None;
    }
    Some(t)
}

fn repair(
    node: &mut Node,
    schema: &Value,
    root: &Value,
    pointer: &mut String,
    out: &mut Vec<Repair>,
) {
    let schema = resolve(schema, root);
    match node {
        Node::Object(entries) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut kept = Vec::with_capacity(entries.len());
            for (key, mut value) in std::mem::take(entries) {
                let len = pointer.len();
                push_pointer(pointer, &key);
                match properties.and_then(|p| p.get(&key)) {
                    None if closed => out.push(Repair {
                        pointer: pointer.clone(),
                        kind: RepairKind::UnknownPropertyRemoved,
                    }),
                    None => kept.push((key, value)),
                    Some(sub) => {
                        let sub = resolve(sub, root);
                        let outside_enum = match (sub.get("enum").and_then(Value::as_array), &value)
                        {
                            (Some(list), Node::String(s)) => {
                                !list.iter().any(|e| e.as_str() == Some(s.as_str()))
                            }
                            _ => false,
                        };
                        if outside_enum && !required.contains(&key.as_str()) {
                            out.push(Repair {
                                pointer: pointer.clone(),
                                kind: RepairKind::EnumValueDropped,
                            });
                        } else {
                            repair(&mut value, sub, root, pointer, out);
                            kept.push((key, value));
                        }
                    }
                }
                pointer.truncate(len);
            }
            *entries = kept;
        }
        Node::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = pointer.len();
                    push_pointer(pointer, &i.to_string());
                    repair(item, item_schema, root, pointer, out);
                    pointer.truncate(len);
                }
            }
        }
        Node::String(s) => {
            if let Some(integer) = wants_number(schema) {
                if let Some(text) = number_text(s, integer) {
                    *node = Node::Raw(text.to_owned());
                    out.push(Repair {
                        pointer: pointer.clone(),
                        kind: RepairKind::NumberFromString,
                    });
                }
            } else if schema.get("format").and_then(Value::as_str) == Some("date-time")
                && lacks_offset(s)
            {
                s.push('Z');
                out.push(Repair {
                    pointer: pointer.clone(),
                    kind: RepairKind::TimestampOffsetAdded,
                });
            }
        }
        Node::Raw(_) => {}
    }
}
