//! OCPP-J frames: decode one WebSocket text message, encode frames.
//!
//! ```
//! use ocpp_codec::frame::{Decoder, Frame};
//! use ocpp_codec::Version;
//!
//! let decoder = Decoder::new(Version::V201);
//! let text = r#"[2,"19223201","Heartbeat",{}]"#;
//! match decoder.decode(text).unwrap() {
//!     Frame::Call { id, action, payload } => {
//!         assert_eq!((&*id, &*action, payload.get()), ("19223201", "Heartbeat", "{}"));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! // The reply to a malformed message, in the peer's words:
//! let err = decoder.decode(r#"[2,"19223201"]"#).unwrap_err();
//! let reply = err.reply(Version::V201).unwrap();
//! assert_eq!(
//!     reply.encode(),
//!     r#"[4,"19223201","RpcFrameworkError","CALL must have 4 elements, found 2",{}]"#
//! );
//! ```
//!
//! Decoding borrows from the input: the payload (and a CALLERROR's details) stay borrowed as
//! [`RawValue`] until typed decoding, and ids, actions and descriptions are borrowed unless
//! they contain escapes.
//!
//! A well-formed message (a known message type, strings without escapes, the right number of
//! elements) is read in one pass: the envelope byte by byte, each payload once by `serde_json`.
//! Anything else is read again element by element with a serde visitor, to name exactly what
//! is wrong: the error path pays for the precision, the common path does not. A property test
//! holds the one-pass reader to the careful one: whenever it reads a message, the careful
//! reader gives the same frame.

use std::borrow::Cow;
use std::fmt;

use ocpp_schemas::Version;
use serde::de::{self, Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

pub use crate::error::MessageType;
use crate::error::{BadMessageId, ErrorCode, FrameError, MAX_MESSAGE_ID_LEN};

/// The default maximum message size: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 20;

/// One decoded OCPP-J frame, borrowing from the message text.
#[derive(Debug, Clone)]
pub enum Frame<'a> {
    /// `[2, id, action, payload]`.
    Call {
        /// The message id.
        id: Cow<'a, str>,
        /// The action name.
        action: Cow<'a, str>,
        /// The request payload, not yet decoded.
        payload: &'a RawValue,
    },
    /// `[3, id, payload]`.
    CallResult {
        /// The id of the CALL it answers.
        id: Cow<'a, str>,
        /// The response payload, not yet decoded.
        payload: &'a RawValue,
    },
    /// `[4, id, code, description, details]`.
    CallError {
        /// The id of the CALL it answers.
        id: Cow<'a, str>,
        /// The error code.
        code: ErrorCode,
        /// The error description.
        description: Cow<'a, str>,
        /// The error details (a JSON object, by the specification; any value is accepted).
        details: &'a RawValue,
    },
    /// `[5, id, code, description, details]` (OCPP 2.1): the CALLRESULT with this id could not
    /// be processed.
    CallResultError {
        /// The id of the CALL whose CALLRESULT failed.
        id: Cow<'a, str>,
        /// The error code.
        code: ErrorCode,
        /// The error description.
        description: Cow<'a, str>,
        /// The error details.
        details: &'a RawValue,
    },
    /// `[6, id, action, payload]` (OCPP 2.1): a message that gets no reply.
    Send {
        /// The message id.
        id: Cow<'a, str>,
        /// The action name.
        action: Cow<'a, str>,
        /// The payload, not yet decoded.
        payload: &'a RawValue,
    },
}

impl<'a> Frame<'a> {
    /// A CALL, or a SEND when `message_type` says so.
    fn request(
        message_type: MessageType,
        id: Cow<'a, str>,
        action: Cow<'a, str>,
        payload: &'a RawValue,
    ) -> Frame<'a> {
        if message_type == MessageType::Send {
            Frame::Send {
                id,
                action,
                payload,
            }
        } else {
            Frame::Call {
                id,
                action,
                payload,
            }
        }
    }

    /// A CALLERROR, or a CALLRESULTERROR when `message_type` says so.
    fn error(
        message_type: MessageType,
        id: Cow<'a, str>,
        code: ErrorCode,
        description: Cow<'a, str>,
        details: &'a RawValue,
    ) -> Frame<'a> {
        if message_type == MessageType::CallResultError {
            Frame::CallResultError {
                id,
                code,
                description,
                details,
            }
        } else {
            Frame::CallError {
                id,
                code,
                description,
                details,
            }
        }
    }
}

impl Frame<'_> {
    /// The frame's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Frame::Call { .. } => MessageType::Call,
            Frame::CallResult { .. } => MessageType::CallResult,
            Frame::CallError { .. } => MessageType::CallError,
            Frame::CallResultError { .. } => MessageType::CallResultError,
            Frame::Send { .. } => MessageType::Send,
        }
    }

    /// The message id.
    pub fn id(&self) -> &str {
        match self {
            Frame::Call { id, .. }
            | Frame::CallResult { id, .. }
            | Frame::CallError { id, .. }
            | Frame::CallResultError { id, .. }
            | Frame::Send { id, .. } => id,
        }
    }

    /// Appends the frame as JSON text to `out`; error codes are spelled for `version`.
    pub fn encode_into(&self, out: &mut String, version: Version) {
        match self {
            Frame::Call {
                id,
                action,
                payload,
            } => encode_call_into(out, MessageType::Call, id, action, payload.get()),
            Frame::Send {
                id,
                action,
                payload,
            } => encode_call_into(out, MessageType::Send, id, action, payload.get()),
            Frame::CallResult { id, payload } => encode_result_into(out, id, payload.get()),
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => encode_error_into(
                out,
                MessageType::CallError,
                id,
                code.as_str(version),
                description,
                details.get(),
            ),
            Frame::CallResultError {
                id,
                code,
                description,
                details,
            } => encode_error_into(
                out,
                MessageType::CallResultError,
                id,
                code.as_str(version),
                description,
                details.get(),
            ),
        }
    }

    /// The frame as JSON text; error codes are spelled for `version`.
    pub fn encode(&self, version: Version) -> String {
        let mut out = String::new();
        self.encode_into(&mut out, version);
        out
    }
}

/// Decodes text messages into frames for one connection's version, with a size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    version: Version,
    max_message_size: usize,
}

impl Decoder {
    /// A decoder for `version` with the [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub const fn new(version: Version) -> Decoder {
        Decoder {
            version,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// Sets the maximum message size in bytes; larger messages are refused before parsing.
    pub const fn with_max_message_size(mut self, bytes: usize) -> Decoder {
        self.max_message_size = bytes;
        self
    }

    /// The connection's version.
    pub const fn version(&self) -> Version {
        self.version
    }

    /// The maximum message size in bytes.
    pub const fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Decodes one text message. Never panics, whatever the input.
    pub fn decode<'a>(&self, text: &'a str) -> Result<Frame<'a>, FrameError> {
        if text.len() > self.max_message_size {
            let (message_type, id) = scan_prefix(text);
            return Err(FrameError::TooLarge {
                size: text.len(),
                max: self.max_message_size,
                message_type,
                id,
            });
        }
        // The common case, in one pass; `None` means: read it again, carefully.
        match well_formed(text, self.version) {
            Some(frame) => Ok(frame),
            None => self.decode_carefully(text),
        }
    }

    /// Reads a message element by element, naming exactly what is wrong with it.
    fn decode_carefully<'a>(&self, text: &'a str) -> Result<Frame<'a>, FrameError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = de
            .deserialize_any(EnvelopeVisitor {
                version: self.version,
            })
            .and_then(|r| de.end().map(|()| r));
        match parsed {
            Ok(result) => result,
            Err(e) => {
                let (message_type, id) = scan_prefix(text);
                Err(FrameError::NotJson {
                    reason: e.to_string(),
                    message_type,
                    id,
                })
            }
        }
    }
}

/// Decodes one text message for `version` with the default size limit (see [`Decoder`]).
pub fn decode(text: &str, version: Version) -> Result<Frame<'_>, FrameError> {
    Decoder::new(version).decode(text)
}

/// The text of a WebSocket *binary* message, to be handled like a text message.
///
/// OCPP-J messages are UTF-8 JSON (OCPP-J §4.1.2) and peers send them as text messages, but
/// the specifications do not forbid binary ones, and the reference implementations read a
/// binary message as UTF-8 text too (the Python `ocpp` library hands the bytes to
/// `json.loads`, ocpp-rpc calls `buffer.toString('utf8')`). So a peer that sends its JSON in
/// binary frames is understood instead of being met with silence. Bytes that are not UTF-8 give
/// their valid prefix followed by U+FFFD, a text that never parses, so the message is answered
/// like any other malformed message (with its message id when the prefix shows one).
///
/// ```
/// use ocpp_codec::frame::binary_message_text;
///
/// assert_eq!(binary_message_text(br#"[2,"a","Heartbeat",{}]"#), r#"[2,"a","Heartbeat",{}]"#);
/// assert_eq!(binary_message_text(b"[2,\"a\",\xff"), "[2,\"a\",\u{FFFD}");
/// ```
pub fn binary_message_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let mut text = String::from_utf8_lossy(valid).into_owned();
            text.push(char::REPLACEMENT_CHARACTER);
            Cow::Owned(text)
        }
    }
}

/// Reads a well-formed message in one pass: `Some` frame exactly when [`EnvelopeVisitor`]
/// would give the same frame with borrowed strings; `None` for anything else, which the caller
/// then reads with [`EnvelopeVisitor`].
///
/// The envelope is read here, byte by byte: `[`, a message type of one digit that the version
/// defines, the strings (id, action, error code and description) without escapes or control
/// characters, commas, `]`, JSON whitespace anywhere between; each payload (and a CALLERROR's
/// details) is one JSON value read by `serde_json` as a [`RawValue`], which is also what the
/// careful reader does with every element. A test holds this to the careful reader.
fn well_formed(text: &str, version: Version) -> Option<Frame<'_>> {
    let mut r = Scanner { text, at: 0 };
    r.token(b'[')?;
    r.skip_ws();
    // One digit, then (whitespace and) a comma: a JSON integer without sign, fraction or
    // exponent, as the careful reader's `parse::<u64>()` wants (`20`, `2.0`, `2e0`, `-2` are
    // not read here).
    let digit = r.bytes().get(r.at)?.wrapping_sub(b'0');
    r.at += 1;
    let message_type =
        MessageType::from_number(u64::from(digit)).filter(|t| t.is_defined_in(version))?;
    r.token(b',')?;
    let id = r.string()?;
    if id.len() > MAX_MESSAGE_ID_LEN && id.chars().count() > MAX_MESSAGE_ID_LEN {
        return None;
    }
    let id = Cow::Borrowed(id);
    r.token(b',')?;
    let frame = match message_type {
        MessageType::Call | MessageType::Send => {
            let action = r.string()?;
            r.token(b',')?;
            let payload = r.value()?;
            Frame::request(message_type, id, Cow::Borrowed(action), payload)
        }
        MessageType::CallResult => Frame::CallResult {
            id,
            payload: r.value()?,
        },
        MessageType::CallError | MessageType::CallResultError => {
            let code = r.string()?;
            r.token(b',')?;
            let description = r.string()?;
            r.token(b',')?;
            let details = r.value()?;
            let code = ErrorCode::from_wire(code);
            Frame::error(message_type, id, code, Cow::Borrowed(description), details)
        }
    };
    r.token(b']')?;
    r.skip_ws();
    (r.at == text.len()).then_some(frame)
}

/// A cursor over a message's bytes for [`well_formed`]. Every read is checked: a message that
/// ends early gives `None`, never a panic.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return).
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// Whitespace, then `byte`.
    fn token(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        if *self.bytes().get(self.at)? != byte {
            return None;
        }
        self.at += 1;
        Some(())
    }

    /// Whitespace, then a JSON string without escapes or control characters: its content,
    /// borrowed. A string with an escape is left to the careful reader (it may need unescaping);
    /// a control character makes the message invalid JSON.
    fn string(&mut self) -> Option<&'a str> {
        self.token(b'"')?;
        let start = self.at;
        let bytes = self.bytes();
        loop {
            match *bytes.get(self.at)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        // Both ends are at an ASCII quote, so on character boundaries.
        let content = self.text.get(start..self.at)?;
        self.at += 1;
        Some(content)
    }

    /// One JSON value (whitespace before it skipped), borrowed as a [`RawValue`], by
    /// `serde_json`.
    fn value(&mut self) -> Option<&'a RawValue> {
        let rest = self.text.get(self.at..)?;
        let mut de = serde_json::Deserializer::from_str(rest);
        let raw = <&RawValue as serde::Deserialize>::deserialize(&mut de).ok()?;
        // The raw value is a slice of `rest`: continue right after it.
        let end = (raw.get().as_ptr() as usize)
            .checked_sub(rest.as_ptr() as usize)?
            .checked_add(raw.get().len())?;
        self.at = self.at.checked_add(end)?;
        Some(raw)
    }
}

struct EnvelopeVisitor {
    version: Version,
}

type Envelope<'a> = Result<Frame<'a>, FrameError>;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OCPP-J message array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elems: [Option<&'de RawValue>; 5] = [None; 5];
        let mut count = 0usize;
        while count < elems.len() {
            match seq.next_element::<&'de RawValue>()? {
                Some(v) => {
                    elems[count] = Some(v);
                    count += 1;
                }
                None => break,
            }
        }
        if count == elems.len() {
            while seq.next_element::<IgnoredAny>()?.is_some() {
                count += 1;
            }
        }
        Ok(interpret(self.version, &elems, count))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(FrameError::NotArray))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(FrameError::NotArray))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(FrameError::NotArray))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(FrameError::NotArray))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(FrameError::NotArray))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(FrameError::NotArray))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(FrameError::NotArray))
    }
}

/// A JSON string element, borrowed when it has no escapes; `None` when it is not a string.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    if let Ok(s) = serde_json::from_str::<&str>(text) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

fn read_id(raw: Option<&RawValue>) -> Result<Cow<'_, str>, BadMessageId> {
    let raw = raw.ok_or(BadMessageId::Missing)?;
    let id = json_str(raw).ok_or(BadMessageId::NotString)?;
    let n = id.chars().count();
    if n > MAX_MESSAGE_ID_LEN {
        return Err(BadMessageId::TooLong(n));
    }
    Ok(id)
}

fn interpret<'a>(
    version: Version,
    elems: &[Option<&'a RawValue>; 5],
    count: usize,
) -> Envelope<'a> {
    let Some(first) = elems[0] else {
        return Err(FrameError::EmptyArray);
    };
    let id_opt = || read_id(elems[1]).ok().map(Cow::into_owned);
    let first_text = first.get();
    if !first_text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(FrameError::InvalidMessageType { id: id_opt() });
    }
    let message_type = first_text
        .parse::<u64>()
        .ok()
        .and_then(MessageType::from_number)
        .filter(|t| t.is_defined_in(version));
    let Some(message_type) = message_type else {
        let mut number = first_text.to_owned();
        if number.len() > 32 {
            let mut cut = 32;
            while !number.is_char_boundary(cut) {
                cut -= 1;
            }
            number.truncate(cut);
        }
        return Err(FrameError::UnknownMessageType {
            number,
            id: id_opt(),
        });
    };
    let id = read_id(elems[1]).map_err(|problem| FrameError::InvalidMessageId {
        message_type,
        problem,
    })?;
    if count != message_type.arity() {
        return Err(FrameError::WrongArity {
            message_type,
            id: id.into_owned(),
            expected: message_type.arity(),
            found: count,
        });
    }
    // Arity checked: elements up to `arity` are present.
    let at = |i: usize| elems[i].unwrap_or_else(|| unreachable_raw());
    let string = |i: usize, field: &'static str| {
        json_str(at(i)).ok_or_else(|| FrameError::NotAString {
            message_type,
            id: id.clone().into_owned(),
            field,
        })
    };
    Ok(match message_type {
        MessageType::Call | MessageType::Send => {
            let action = string(2, "action")?;
            Frame::request(message_type, id, action, at(3))
        }
        MessageType::CallResult => Frame::CallResult { id, payload: at(2) },
        MessageType::CallError | MessageType::CallResultError => {
            let code = ErrorCode::from_wire(&string(2, "errorCode")?);
            let description = string(3, "errorDescription")?;
            Frame::error(message_type, id, code, description, at(4))
        }
    })
}

/// Never called (the arity check guarantees the element); returns `null` rather than panic.
fn unreachable_raw() -> &'static RawValue {
    static NULL: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    NULL.get_or_init(Default::default)
}

/// Reads the message type and id from the first bytes of a message that could not be parsed
/// as a whole (too large, or not valid JSON): `[ <digits> , "<id without escapes>"`.
/// Looks at no more than the first 128 bytes.
pub(crate) fn scan_prefix(text: &str) -> (Option<MessageType>, Option<String>) {
    let bytes = &text.as_bytes()[..text.len().min(128)];
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'[') {
        return (None, None);
    }
    i += 1;
    skip_ws(&mut i);
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() && i - start < 3 {
        i += 1;
    }
    let ty = std::str::from_utf8(&bytes[start..i])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(MessageType::from_number);
    let Some(ty) = ty else {
        return (None, None);
    };
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b',') {
        return (Some(ty), None);
    }
    i += 1;
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'"') {
        return (Some(ty), None);
    }
    i += 1;
    let id_start = i;
    while i < bytes.len() && bytes[i] != b'"' {
        if bytes[i] == b'\\' || bytes[i] < 0x20 {
            return (Some(ty), None);
        }
        i += 1;
    }
    if i >= bytes.len() {
        return (Some(ty), None);
    }
    let id = std::str::from_utf8(&bytes[id_start..i])
        .ok()
        .filter(|s| s.chars().count() <= MAX_MESSAGE_ID_LEN)
        .map(str::to_owned);
    (Some(ty), id)
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a CALL (`kind` = [`MessageType::Call`]) or SEND (`kind` = [`MessageType::Send`])
/// frame; `payload` must be JSON text (it is written verbatim).
pub fn encode_call_into(
    out: &mut String,
    kind: MessageType,
    id: &str,
    action: &str,
    payload: &str,
) {
    out.reserve(16 + id.len() + action.len() + payload.len());
    out.push('[');
    out.push(char::from(b'0' + kind.number()));
    out.push(',');
    push_json_str(out, id);
    out.push(',');
    push_json_str(out, action);
    out.push(',');
    out.push_str(payload);
    out.push(']');
}

/// Appends a CALLRESULT frame; `payload` must be JSON text (it is written verbatim).
pub fn encode_result_into(out: &mut String, id: &str, payload: &str) {
    out.reserve(8 + id.len() + payload.len());
    out.push_str("[3,");
    push_json_str(out, id);
    out.push(',');
    out.push_str(payload);
    out.push(']');
}

/// Appends a CALLERROR (`kind` = [`MessageType::CallError`]) or CALLRESULTERROR (`kind` =
/// [`MessageType::CallResultError`]) frame; `details` must be JSON text (written verbatim) and
/// `code` is written as given (spell it with [`ErrorCode::as_str`]).
pub fn encode_error_into(
    out: &mut String,
    kind: MessageType,
    id: &str,
    code: &str,
    description: &str,
    details: &str,
) {
    out.reserve(16 + id.len() + code.len() + description.len() + details.len());
    out.push('[');
    out.push(char::from(b'0' + kind.number()));
    out.push(',');
    push_json_str(out, id);
    out.push(',');
    push_json_str(out, code);
    out.push(',');
    push_json_str(out, description);
    out.push(',');
    out.push_str(details);
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The one-pass reader reads a message only when the careful reader gives the same frame.
    fn agree(version: Version, text: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = well_formed(text, version) {
            let careful = Decoder::new(version).decode_carefully(text);
            prop_assert_eq!(
                format!("{:?}", Ok::<_, FrameError>(fast)),
                format!("{careful:?}")
            );
        }
        Ok(())
    }

    fn element() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("2".to_owned()),
            Just("3".to_owned()),
            Just("4".to_owned()),
            Just("5".to_owned()),
            Just("6".to_owned()),
            Just("1".to_owned()),
            Just("7".to_owned()),
            Just("0".to_owned()),
            Just("20".to_owned()),
            Just("02".to_owned()),
            Just("-0".to_owned()),
            Just("-2".to_owned()),
            Just("2.0".to_owned()),
            Just("2e0".to_owned()),
            Just("2E1".to_owned()),
            Just("18446744073709551618".to_owned()),
            Just("{}".to_owned()),
            Just("[]".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("nul".to_owned()),
            Just("1e400".to_owned()),
            Just(r#"{"a":[1,2]}"#.to_owned()),
            Just(r#"{"a":"]}\"[","b":{"c":[{}]}}"#.to_owned()),
            Just("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]".to_owned()),
            Just(r#"{"a":1,}"#.to_owned()),
            Just(r#"{"a" 1}"#.to_owned()),
            Just("\"\"".to_owned()),
            Just("\"Heartbeat\"".to_owned()),
            Just("\"NotImplemented\"".to_owned()),
            Just("\"a\\u0041\"".to_owned()),
            Just("\"a\\\"".to_owned()),
            Just("\"a\u{1}b\"".to_owned()),
            Just("\"a\u{7f}b\"".to_owned()),
            Just("\"unterminated".to_owned()),
            Just(format!("\"{}\"", "x".repeat(36))),
            Just(format!("\"{}\"", "x".repeat(37))),
            Just(format!("\"{}\"", "é".repeat(20))),
            Just(format!("\"{}\"", "é".repeat(37))),
            "\"[a-zA-Z0-9 \\\\\"é]{0,8}\"",
        ]
    }

    /// JSON whitespace, or something that is not.
    fn gap() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            40 => Just(""),
            2 => Just(" "),
            2 => Just("\t\n"),
            1 => Just("\r\n  "),
            1 => Just("\u{b}"),
            1 => Just("\u{a0}"),
        ]
    }

    /// A string element, mostly well-formed.
    fn string() -> BoxedStrategy<String> {
        prop_oneof![
            8 => "[a-zA-Z0-9 é-]{0,10}".prop_map(|s| format!("\"{s}\"")),
            1 => element(),
        ]
        .boxed()
    }

    /// A JSON value element, mostly well-formed.
    fn value() -> BoxedStrategy<String> {
        prop_oneof![
            2 => Just("{}".to_owned()),
            2 => Just(r#"{"currentTime":"2026-01-01T00:00:00Z"}"#.to_owned()),
            1 => Just(r#" [ 1 , {"a" : null} ] "#.to_owned()),
            1 => Just("\"text\"".to_owned()),
            1 => Just("-1.5e3".to_owned()),
            2 => element(),
        ]
        .boxed()
    }

    /// An array of elements with gaps around every token, sometimes cut short or followed by
    /// more text. Mostly frame-shaped: a message type, then an id, then strings or values.
    fn message() -> impl Strategy<Value = String> {
        // A message type, then per position a string and a value, picked by the type's shape
        // (CALL: string, string, value; CALLRESULT: string, value; errors: three strings and
        // a value), or, sometimes, any element and any length.
        let shaped = (
            2u8..=6,
            prop_oneof![8 => Just(None), 1 => element().prop_map(Some)],
            proptest::collection::vec((string(), value()), 6),
            prop_oneof![3 => Just(None), 1 => (0usize..=6).prop_map(Some)],
        )
            .prop_map(|(t, number, elems, len)| {
                let strings = match t {
                    2 | 6 => 3,
                    3 => 2,
                    _ => 4,
                };
                let mut v: Vec<String> = elems
                    .into_iter()
                    .enumerate()
                    .map(|(i, (s, v))| if i < strings { s } else { v })
                    .collect();
                v[0] = number.unwrap_or_else(|| t.to_string());
                v.truncate(len.unwrap_or(strings + 1));
                v
            });
        let elements = prop_oneof![
            3 => shaped,
            1 => proptest::collection::vec(element(), 0..7),
        ];
        (
            elements,
            proptest::collection::vec((gap(), gap()), 6),
            gap(),
            gap(),
            prop_oneof![12 => Just(""), 1 => Just("]"), 1 => Just(","), 1 => Just("x"), 1 => Just(" {}")],
            any::<prop::sample::Index>(),
            prop_oneof![6 => Just(false), 1 => Just(true)],
        )
            .prop_map(|(elems, gaps, open, close, tail, cut, truncate)| {
                let body: Vec<String> = elems
                    .into_iter()
                    .zip(gaps.into_iter().cycle())
                    .map(|(e, (before, after))| format!("{before}{e}{after}"))
                    .collect();
                let mut text = format!("{open}[{}]{close}{tail}", body.join(","));
                if truncate {
                    let mut at = cut.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    text.truncate(at);
                }
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn one_pass_agrees_with_careful_reading(text in message(), v in 0usize..3) {
            agree(Version::ALL[v], &text)?;
        }
    }

    /// The generated messages are not vacuous: the one-pass reader reads a good share of them.
    #[test]
    fn messages_often_take_the_one_pass_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = message();
        let n = 2_000;
        let read = (0..n)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).unwrap().current();
                Version::ALL
                    .iter()
                    .any(|&v| well_formed(&text, v).is_some())
            })
            .count();
        assert!(
            read * 10 > n,
            "only {read} of {n} messages read in one pass"
        );
    }

    #[test]
    fn common_messages_take_the_one_pass_path() {
        for text in [
            r#"[2,"19223201","Heartbeat",{}]"#,
            r#"[3,"19223201",{"currentTime":"2026-01-01T00:00:00Z"}]"#,
            r#"[4,"1","NotImplemented","",{}]"#,
            "\r\n [ 2 ,\t\"1\" , \"Heartbeat\" ,\n { } ] \n",
            r#"[3,"é",[{"a":"]"}]]"#,
        ] {
            assert!(well_formed(text, Version::V16).is_some(), "{text}");
            agree(Version::V16, text).unwrap();
        }
        for text in [
            r#"[5,"1","FormatViolation","bad",{"pointer":"/x"}]"#,
            r#"[6,"1","NotifyPeriodicEventStream",{"id":1}]"#,
        ] {
            assert!(well_formed(text, Version::V21).is_some(), "{text}");
            agree(Version::V21, text).unwrap();
        }
        // Escapes, a long id, a float type, a SEND on 1.6: read carefully.
        for text in [
            r#"[2,"a\"b","Heartbeat",{}]"#,
            r#"[2,"0123456789012345678901234567890123456","Heartbeat",{}]"#,
            r#"[2.0,"1","Heartbeat",{}]"#,
            r#"[6,"1","NotifyPeriodicEventStream",{}]"#,
            r#"[2,"1","Heartbeat",{},1]"#,
        ] {
            assert!(well_formed(text, Version::V16).is_none(), "{text}");
        }
    }
}
