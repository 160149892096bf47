//! The OCPP-J protocol versions and the kinds of payload an action has.
//!
//! They live here, in the crate of the generated types, so that the types name their version
//! without depending on the embedded schemas; `ocpp-schemas` re-exports them.

use std::fmt;
use std::str::FromStr;

/// An OCPP-J protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Version {
    /// OCPP 1.6 J (edition 2) with the 1.6 security whitepaper messages.
    V16,
    /// OCPP 2.0.1.
    V201,
    /// OCPP 2.1.
    V21,
}

impl Version {
    /// Every version this build supports (all three, whatever the enabled features).
    pub const ALL: [Version; 3] = [Version::V16, Version::V201, Version::V21];

    /// The version number as people write it: `"1.6"`, `"2.0.1"`, `"2.1"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V16 => "1.6",
            Version::V201 => "2.0.1",
            Version::V21 => "2.1",
        }
    }

    /// The WebSocket subprotocol: `"ocpp1.6"`, `"ocpp2.0.1"`, `"ocpp2.1"`.
    pub const fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
            Version::V21 => "ocpp2.1",
        }
    }

    /// The version a WebSocket subprotocol names, if any (exact, case-sensitive match).
    pub fn from_subprotocol(subprotocol: &str) -> Option<Version> {
        Version::ALL
            .into_iter()
            .find(|v| v.subprotocol() == subprotocol)
    }

    /// Whether this is one of the 2.x versions (JSON Schema draft-06, 2.x error code spelling).
    pub const fn is_2x(self) -> bool {
        !matches!(self, Version::V16)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no OCPP version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OCPP version {0:?}: expected 1.6, 2.0.1 or 2.1 (or ocpp1.6, ocpp2.0.1, ocpp2.1)")]
pub struct UnknownVersion(pub String);

impl FromStr for Version {
    type Err = UnknownVersion;

    /// Accepts `1.6`, `2.0.1`, `2.1` and the subprotocol names `ocpp1.6`, `ocpp2.0.1`, `ocpp2.1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.strip_prefix("ocpp").unwrap_or(s);
        Version::ALL
            .into_iter()
            .find(|v| v.as_str() == bare)
            .ok_or_else(|| UnknownVersion(s.to_owned()))
    }
}

/// Which payload of an action a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// The payload of a CALL.
    Request,
    /// The payload of the CALLRESULT that answers it.
    Response,
    /// The payload of an OCPP 2.1 SEND message, which has no response.
    Send,
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Request => "request",
            MessageKind::Response => "response",
            MessageKind::Send => "send",
        })
    }
}
