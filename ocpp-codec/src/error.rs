//! RPC error codes, everything that can be wrong with an incoming frame, and the reply the
//! specification asks for.
//!
//! [`ErrorCode`] is an open type: the codes the specifications define are variants, anything
//! else a peer sends survives as [`ErrorCode::Other`] and round-trips unchanged. Each known
//! code is spelled in the peer's words by [`ErrorCode::as_str`].
//!
//! [`FrameError`] lists every way an incoming text message can fail to be a frame;
//! [`FrameError::reply`] gives the exact frame to answer it with (or `None` when the
//! specification says not to answer). See the crate README for the full table and the
//! specification references.

use std::borrow::Cow;
use std::fmt;

use ocpp_schemas::{Version, Violation, ViolationCode};

/// The maximum length of a message id, in characters (OCPP-J 1.6 §4.1.4, 2.x §4.1.4: "maximum
/// of 36 characters, to allow for GUIDs").
pub const MAX_MESSAGE_ID_LEN: usize = 36;

/// The maximum length of an `errorDescription` we send, in characters (OCPP-J 2.x §4.2.3
/// limits it to 255; we apply the same cap to 1.6 peers).
pub const MAX_ERROR_DESCRIPTION_LEN: usize = 255;

/// The message id a reply carries when the offending message's id could not be read
/// (OCPP-J 2.0.1 / 2.1 part 4, §4.2.3: "-1"; applied to 1.6 peers too, see the README).
pub const UNKNOWN_MESSAGE_ID: &str = "-1";

/// An RPC framework error code, as carried by CALLERROR and (2.1) CALLRESULTERROR.
///
/// Known codes are variants; [`ErrorCode::from_wire`] maps both the 1.6 and the 2.x spelling of
/// a code to the same variant, and keeps any other string as [`ErrorCode::Other`], so an
/// unknown code from a peer still round-trips. Build `Other` only through `from_wire` so a known
/// code is never wrapped in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The payload is syntactically incorrect or does not conform to the PDU structure:
    /// 2.x `FormatViolation`, 1.6 `FormationViolation`.
    FormatViolation,
    /// Any other error: `GenericError`.
    GenericError,
    /// The receiver failed to process the action: `InternalError`.
    InternalError,
    /// A message type number the receiver does not support (2.x only; sent as `NotSupported`
    /// to 1.6 peers, which have no such code).
    MessageTypeNotSupported,
    /// The action is not known by the receiver: `NotImplemented`.
    NotImplemented,
    /// The action is known but not supported by the receiver: `NotSupported`.
    NotSupported,
    /// A field violates occurrence constraints: 2.x `OccurrenceConstraintViolation`,
    /// 1.6 `OccurenceConstraintViolation` (sic).
    OccurrenceConstraintViolation,
    /// A field contains an invalid value: `PropertyConstraintViolation`.
    PropertyConstraintViolation,
    /// The payload is incomplete: `ProtocolError`.
    ProtocolError,
    /// The content is not a valid RPC message, e.g. the message id could not be read
    /// (2.x only; sent as `FormationViolation` to 1.6 peers).
    RpcFrameworkError,
    /// A security issue prevented the receiver from completing the action: `SecurityError`.
    SecurityError,
    /// A field violates data type constraints: `TypeConstraintViolation`.
    TypeConstraintViolation,
    /// Any other code, exactly as received.
    Other(String),
}

impl ErrorCode {
    /// Every known code (not [`ErrorCode::Other`]).
    pub const KNOWN: [ErrorCode; 12] = [
        ErrorCode::FormatViolation,
        ErrorCode::GenericError,
        ErrorCode::InternalError,
        ErrorCode::MessageTypeNotSupported,
        ErrorCode::NotImplemented,
        ErrorCode::NotSupported,
        ErrorCode::OccurrenceConstraintViolation,
        ErrorCode::PropertyConstraintViolation,
        ErrorCode::ProtocolError,
        ErrorCode::RpcFrameworkError,
        ErrorCode::SecurityError,
        ErrorCode::TypeConstraintViolation,
    ];

    /// Reads a code from the wire. Both spellings of a renamed code (`FormationViolation` /
    /// `FormatViolation`, `OccurenceConstraintViolation` / `OccurrenceConstraintViolation`) give
    /// the same variant, whatever the version; anything unknown is kept as [`ErrorCode::Other`].
    pub fn from_wire(code: &str) -> ErrorCode {
        match code {
            "FormatViolation" | "FormationViolation" => ErrorCode::FormatViolation,
            "GenericError" => ErrorCode::GenericError,
            "InternalError" => ErrorCode::InternalError,
            "MessageTypeNotSupported" => ErrorCode::MessageTypeNotSupported,
            "NotImplemented" => ErrorCode::NotImplemented,
            "NotSupported" => ErrorCode::NotSupported,
            "OccurrenceConstraintViolation" | "OccurenceConstraintViolation" => {
                ErrorCode::OccurrenceConstraintViolation
            }
            "PropertyConstraintViolation" => ErrorCode::PropertyConstraintViolation,
            "ProtocolError" => ErrorCode::ProtocolError,
            "RpcFrameworkError" => ErrorCode::RpcFrameworkError,
            "SecurityError" => ErrorCode::SecurityError,
            "TypeConstraintViolation" => ErrorCode::TypeConstraintViolation,
            other => ErrorCode::Other(other.to_owned()),
        }
    }

    /// Whether the version defines this code. 1.6 lacks `MessageTypeNotSupported` and
    /// `RpcFrameworkError`; [`ErrorCode::Other`] is defined by no version.
    pub fn is_defined_in(&self, version: Version) -> bool {
        match self {
            ErrorCode::MessageTypeNotSupported | ErrorCode::RpcFrameworkError => version.is_2x(),
            ErrorCode::Other(_) => false,
            _ => true,
        }
    }

    /// The code a peer of `version` understands: 2.x-only codes become their nearest 1.6 code
    /// for 1.6 (`RpcFrameworkError` -> `FormatViolation`, `MessageTypeNotSupported` ->
    /// `NotSupported`); everything else is unchanged.
    pub fn for_version(&self, version: Version) -> ErrorCode {
        match (self, version) {
            (ErrorCode::RpcFrameworkError, Version::V16) => ErrorCode::FormatViolation,
            (ErrorCode::MessageTypeNotSupported, Version::V16) => ErrorCode::NotSupported,
            _ => self.clone(),
        }
    }

    /// The code as `version` spells it on the wire (after [`ErrorCode::for_version`]).
    pub fn as_str(&self, version: Version) -> &str {
        let v16 = version == Version::V16;
        match self {
            ErrorCode::FormatViolation if v16 => "FormationViolation",
            ErrorCode::FormatViolation => "FormatViolation",
            ErrorCode::GenericError => "GenericError",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::MessageTypeNotSupported if v16 => "NotSupported",
            ErrorCode::MessageTypeNotSupported => "MessageTypeNotSupported",
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::OccurrenceConstraintViolation if v16 => "OccurenceConstraintViolation",
            ErrorCode::OccurrenceConstraintViolation => "OccurrenceConstraintViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::RpcFrameworkError if v16 => "FormationViolation",
            ErrorCode::RpcFrameworkError => "RpcFrameworkError",
            ErrorCode::SecurityError => "SecurityError",
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::Other(s) => s,
        }
    }
}

impl From<ViolationCode> for ErrorCode {
    fn from(code: ViolationCode) -> Self {
        match code {
            ViolationCode::Format => ErrorCode::FormatViolation,
            ViolationCode::OccurrenceConstraint => ErrorCode::OccurrenceConstraintViolation,
            ViolationCode::TypeConstraint => ErrorCode::TypeConstraintViolation,
            ViolationCode::PropertyConstraint => ErrorCode::PropertyConstraintViolation,
        }
    }
}

impl fmt::Display for ErrorCode {
    /// The 2.x spelling (use [`ErrorCode::as_str`] for a given version).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str(Version::V21))
    }
}

/// Which frame an incoming message claimed to be, read from its first element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 2: CALL.
    Call,
    /// 3: CALLRESULT.
    CallResult,
    /// 4: CALLERROR.
    CallError,
    /// 5: CALLRESULTERROR (OCPP 2.1).
    CallResultError,
    /// 6: SEND (OCPP 2.1).
    Send,
}

impl MessageType {
    /// The message type number on the wire.
    pub const fn number(self) -> u8 {
        match self {
            MessageType::Call => 2,
            MessageType::CallResult => 3,
            MessageType::CallError => 4,
            MessageType::CallResultError => 5,
            MessageType::Send => 6,
        }
    }

    /// The type with this number, if any version defines it.
    pub const fn from_number(n: u64) -> Option<MessageType> {
        match n {
            2 => Some(MessageType::Call),
            3 => Some(MessageType::CallResult),
            4 => Some(MessageType::CallError),
            5 => Some(MessageType::CallResultError),
            6 => Some(MessageType::Send),
            _ => None,
        }
    }

    /// Whether `version` defines this type (5 and 6 are OCPP 2.1 only).
    pub const fn is_defined_in(self, version: Version) -> bool {
        match self {
            MessageType::CallResultError | MessageType::Send => matches!(version, Version::V21),
            _ => true,
        }
    }

    /// How many elements the frame has (4, 3, 5, 5, 4).
    pub const fn arity(self) -> usize {
        match self {
            MessageType::Call | MessageType::Send => 4,
            MessageType::CallResult => 3,
            MessageType::CallError | MessageType::CallResultError => 5,
        }
    }

    /// The name the specification uses: `CALL`, `CALLRESULT`, ...
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Call => "CALL",
            MessageType::CallResult => "CALLRESULT",
            MessageType::CallError => "CALLERROR",
            MessageType::CallResultError => "CALLRESULTERROR",
            MessageType::Send => "SEND",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a message id is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BadMessageId {
    /// The element is absent (the array has fewer than two elements).
    Missing,
    /// The element is not a JSON string.
    NotString,
    /// The string has more than [`MAX_MESSAGE_ID_LEN`] characters (the count is given).
    TooLong(usize),
}

impl fmt::Display for BadMessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadMessageId::Missing => f.write_str("the message id is missing"),
            BadMessageId::NotString => f.write_str("the message id is not a string"),
            BadMessageId::TooLong(n) => write!(
                f,
                "the message id has {n} characters (at most {MAX_MESSAGE_ID_LEN} allowed)"
            ),
        }
    }
}

/// Every way an incoming text message can fail to be an OCPP-J frame.
///
/// Fields named `id` hold the message id when it could be read and is valid; `message_type`
/// the frame type when the first element named one. [`FrameError::reply`] turns the error into
/// the reply the peer's version calls for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The message is larger than the configured maximum; it was not parsed (the type and id
    /// come from a bounded scan of its first bytes).
    #[error("message of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The message size in bytes.
        size: usize,
        /// The configured maximum.
        max: usize,
        /// The type named by the message's first bytes, if any.
        message_type: Option<MessageType>,
        /// The message id read from the message's first bytes, if any.
        id: Option<String>,
    },
    /// The message is not valid JSON (the type and id come from a bounded scan of its first
    /// bytes).
    #[error("message is not valid JSON: {reason}")]
    NotJson {
        /// What the JSON parser said.
        reason: String,
        /// The type named by the message's first bytes, if any.
        message_type: Option<MessageType>,
        /// The message id read from the message's first bytes, if any.
        id: Option<String>,
    },
    /// The message is JSON but not an array.
    #[error("message is not a JSON array")]
    NotArray,
    /// The message is an empty array.
    #[error("message is an empty array")]
    EmptyArray,
    /// The first element is not a number.
    #[error("the message type is not a number")]
    InvalidMessageType {
        /// The message id (second element), if valid.
        id: Option<String>,
    },
    /// The first element is a number no version defines as a message type, or (5, 6) one the
    /// connection's version does not define.
    #[error("message type {number} is not supported")]
    UnknownMessageType {
        /// The first element's JSON text (at most 32 bytes of it).
        number: String,
        /// The message id (second element), if valid.
        id: Option<String>,
    },
    /// The message id is missing, not a string or too long.
    #[error("invalid message id in {message_type}: {problem}")]
    InvalidMessageId {
        /// The frame type.
        message_type: MessageType,
        /// What is wrong with the id.
        problem: BadMessageId,
    },
    /// The array has the wrong number of elements for its type.
    #[error("{message_type} must have {expected} elements, found {found}")]
    WrongArity {
        /// The frame type.
        message_type: MessageType,
        /// The message id.
        id: String,
        /// The number of elements the type requires.
        expected: usize,
        /// The number of elements found.
        found: usize,
    },
    /// An element that must be a string (action, errorCode, errorDescription) is not one.
    #[error("{message_type} field {field} is not a string")]
    NotAString {
        /// The frame type.
        message_type: MessageType,
        /// The message id.
        id: String,
        /// The field: `"action"`, `"errorCode"` or `"errorDescription"`.
        field: &'static str,
    },
}

impl FrameError {
    /// The frame type the message claimed, when it could be read.
    pub fn message_type(&self) -> Option<MessageType> {
        match self {
            FrameError::TooLarge { message_type, .. }
            | FrameError::NotJson { message_type, .. } => *message_type,
            FrameError::NotArray
            | FrameError::EmptyArray
            | FrameError::InvalidMessageType { .. }
            | FrameError::UnknownMessageType { .. } => None,
            FrameError::InvalidMessageId { message_type, .. }
            | FrameError::WrongArity { message_type, .. }
            | FrameError::NotAString { message_type, .. } => Some(*message_type),
        }
    }

    /// The message id, when it could be read and is valid.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            FrameError::TooLarge { id, .. }
            | FrameError::NotJson { id, .. }
            | FrameError::InvalidMessageType { id }
            | FrameError::UnknownMessageType { id, .. } => id.as_deref(),
            FrameError::WrongArity { id, .. } | FrameError::NotAString { id, .. } => Some(id),
            FrameError::NotArray | FrameError::EmptyArray | FrameError::InvalidMessageId { .. } => {
                None
            }
        }
    }

    /// The reply this error calls for on a connection of `version`, or `None` when the
    /// specification says to send nothing. The rules (README table, with references):
    ///
    /// - A message whose type is CALLERROR, CALLRESULTERROR or SEND is never answered (errors
    ///   answer CALLs only: 2.0.1 part 2 FR.03, OCPP-J §4.2.3; SEND has no reply, 2.1 §4.2.5).
    /// - A malformed CALLRESULT is not answered on 1.6 and 2.0.1; on 2.1 it is answered with a
    ///   CALLRESULTERROR `FormatViolation` when its id could be read (2.1 part 2 FR.06).
    /// - An unknown message type number is ignored on 1.6 (OCPP-J 1.6 §4.1.3) and 2.1 (2.1
    ///   part 4 §4.1.3 and §4.4, "Updated in OCPP 2.1": "it SHALL ignore the message
    ///   payload"); on 2.0.1 it gets a CALLERROR `MessageTypeNotSupported` (2.0.1 part 4 §4.4:
    ///   "it SHALL respond with an CALLERROR"). See
    ///   [`EndpointConfig::ignore_unknown_message_types`](crate::rpc::EndpointConfig) for the
    ///   2.0.1 errata that deprecates it.
    /// - Everything else (a CALL, or a message whose type could not be read) gets a CALLERROR:
    ///   2.x `RpcFrameworkError` (`FormatViolation` for [`FrameError::TooLarge`]), 1.6
    ///   `FormationViolation`, with the message id when it could be read and `"-1"` otherwise.
    ///   The details are `{}`; the description is this error's message.
    pub fn reply(&self, version: Version) -> Option<Reply> {
        let description = self.to_string();
        let with_id = |kind: ReplyKind, code: ErrorCode| {
            Some(Reply {
                kind,
                id: self.message_id().unwrap_or(UNKNOWN_MESSAGE_ID).to_owned(),
                code,
                description: truncate_description(&description).into_owned(),
                details: "{}".to_owned(),
                version,
            })
        };
        if let FrameError::UnknownMessageType { .. } = self {
            return if version == Version::V201 {
                with_id(ReplyKind::CallError, ErrorCode::MessageTypeNotSupported)
            } else {
                None
            };
        }
        match self.message_type() {
            Some(MessageType::CallError | MessageType::CallResultError | MessageType::Send) => None,
            Some(MessageType::CallResult) => {
                if version == Version::V21 && self.message_id().is_some() {
                    with_id(ReplyKind::CallResultError, ErrorCode::FormatViolation)
                } else {
                    None
                }
            }
            Some(MessageType::Call) | None => {
                let code = match self {
                    FrameError::TooLarge { .. } => ErrorCode::FormatViolation,
                    _ => ErrorCode::RpcFrameworkError,
                };
                with_id(ReplyKind::CallError, code.for_version(version))
            }
        }
    }
}

/// Which error frame a [`Reply`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// `[4, id, code, description, details]`.
    CallError,
    /// `[5, id, code, description, details]` (OCPP 2.1).
    CallResultError,
}

/// An error frame to send: a CALLERROR or a CALLRESULTERROR, spelled for a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// CALLERROR or CALLRESULTERROR.
    pub kind: ReplyKind,
    /// The message id it answers (`"-1"` when that could not be read).
    pub id: String,
    /// The error code.
    pub code: ErrorCode,
    /// The description, at most [`MAX_ERROR_DESCRIPTION_LEN`] characters.
    pub description: String,
    /// The `errorDetails` JSON object, as text.
    pub details: String,
    /// The version whose spelling the code is sent in.
    pub version: Version,
}

impl Reply {
    /// A CALLERROR answering a CALL whose payload broke its schema: the code is the one
    /// [`ViolationCode::for_violations`] picks (spelled for `version`), the description the first
    /// violation, and the details `{"pointer": <JSON pointer of the first violation>}`.
    /// `None` for an empty list.
    pub fn for_violations(id: &str, violations: &[Violation], version: Version) -> Option<Reply> {
        let code = ViolationCode::for_violations(violations)?;
        let first = violations.iter().find(|v| v.code() == code)?;
        let details = serde_json::json!({ "pointer": first.pointer }).to_string();
        Some(Reply {
            kind: ReplyKind::CallError,
            id: id.to_owned(),
            code: code.into(),
            description: truncate_description(&first.to_string()).into_owned(),
            details,
            version,
        })
    }

    /// The frame as JSON text, ready to send.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64 + self.description.len() + self.details.len());
        crate::frame::encode_error_into(
            &mut out,
            self.kind.message_type(),
            &self.id,
            self.code.as_str(self.version),
            &self.description,
            &self.details,
        );
        out
    }
}

/// Cuts a description to [`MAX_ERROR_DESCRIPTION_LEN`] characters.
pub fn truncate_description(description: &str) -> Cow<'_, str> {
    match description.char_indices().nth(MAX_ERROR_DESCRIPTION_LEN) {
        Some((i, _)) => Cow::Owned(description[..i].to_owned()),
        None => Cow::Borrowed(description),
    }
}
