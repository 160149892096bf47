//! Payloads of any enabled version: [`AnyAction`], [`TypedRequest`], [`TypedResponse`], and
//! the conversions between them and the generated per-version enums.
//!
//! Every variant is gated by its version's cargo feature, so these types exist (possibly
//! empty) with any subset of `v16`, `v201` and `v21`.

// With no version feature the enums are empty and every method body is unreachable.
#![cfg_attr(
    not(any(feature = "v16", feature = "v201", feature = "v21")),
    allow(unreachable_code)
)]

use std::fmt;

#[cfg(feature = "v16")]
use crate::v16;
#[cfg(feature = "v201")]
use crate::v201;
#[cfg(feature = "v21")]
use crate::v21;
use crate::{Initiator, UnknownAction, Version};

/// A typed payload was not the one asked for: another action, or another version.
///
/// ```
/// use ocpp_types::v16::{AnyRequest, HeartbeatRequest, ResetRequest, ResetType};
///
/// let any = AnyRequest::from(ResetRequest::new(ResetType::Soft));
/// let err = HeartbeatRequest::try_from(any).unwrap_err();
/// assert_eq!(err.to_string(), "expected an OCPP 1.6 Heartbeat payload, found an OCPP 1.6 Reset payload");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnexpectedMessage {
    /// The version asked for, and the action when one action was asked for.
    pub expected: (Version, Option<&'static str>),
    /// The version and action of the payload given.
    pub found: (Version, &'static str),
}

impl fmt::Display for UnexpectedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            (v, Some(action)) => write!(f, "expected an OCPP {v} {action} payload, ")?,
            (v, None) => write!(f, "expected an OCPP {v} payload, ")?,
        }
        write!(f, "found an OCPP {} {} payload", self.found.0, self.found.1)
    }
}

impl std::error::Error for UnexpectedMessage {}

/// An action of one of the enabled versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnyAction {
    /// An OCPP 1.6 action.
    #[cfg(feature = "v16")]
    V16(v16::Action),
    /// An OCPP 2.0.1 action.
    #[cfg(feature = "v201")]
    V201(v201::Action),
    /// An OCPP 2.1 action.
    #[cfg(feature = "v21")]
    V21(v21::Action),
}

impl AnyAction {
    /// The action named `action` in `version` (exact, case-sensitive). A version whose feature
    /// is off has no actions.
    pub fn parse(version: Version, action: &str) -> Result<AnyAction, UnknownAction> {
        AnyAction::from_name(version, action).ok_or_else(|| UnknownAction {
            version,
            action: action.to_owned(),
        })
    }

    /// The action named `name` in `version` (exact, case-sensitive), or `None`: [`parse`](Self::parse)
    /// without building an error.
    pub fn from_name(version: Version, name: &str) -> Option<AnyAction> {
        let _ = name;
        match version {
            #[cfg(feature = "v16")]
            Version::V16 => v16::Action::from_name(name).map(AnyAction::V16),
            #[cfg(feature = "v201")]
            Version::V201 => v201::Action::from_name(name).map(AnyAction::V201),
            #[cfg(feature = "v21")]
            Version::V21 => v21::Action::from_name(name).map(AnyAction::V21),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The action name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            #[cfg(feature = "v16")]
            AnyAction::V16(a) => a.as_str(),
            #[cfg(feature = "v201")]
            AnyAction::V201(a) => a.as_str(),
            #[cfg(feature = "v21")]
            AnyAction::V21(a) => a.as_str(),
        }
    }

    /// Who sends the action's request (or SEND message).
    pub const fn initiator(self) -> Initiator {
        match self {
            #[cfg(feature = "v16")]
            AnyAction::V16(a) => a.initiator(),
            #[cfg(feature = "v201")]
            AnyAction::V201(a) => a.initiator(),
            #[cfg(feature = "v21")]
            AnyAction::V21(a) => a.initiator(),
        }
    }

    /// Whether the action is a CALL answered by a CALLRESULT (`false` for 2.1 SEND messages).
    pub const fn has_response(self) -> bool {
        match self {
            #[cfg(feature = "v16")]
            AnyAction::V16(a) => a.has_response(),
            #[cfg(feature = "v201")]
            AnyAction::V201(a) => a.has_response(),
            #[cfg(feature = "v21")]
            AnyAction::V21(a) => a.has_response(),
        }
    }

    /// The version of the action.
    pub const fn version(self) -> Version {
        match self {
            #[cfg(feature = "v16")]
            AnyAction::V16(_) => Version::V16,
            #[cfg(feature = "v201")]
            AnyAction::V201(_) => Version::V201,
            #[cfg(feature = "v21")]
            AnyAction::V21(_) => Version::V21,
        }
    }
}

impl fmt::Display for AnyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares a version-neutral enum over the per-version `$inner` enums.
macro_rules! typed_enum {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// The per-version enums box their large payloads, so this type is small (a test
        /// measures it) and moving it never copies a large message.
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            #[doc = concat!("An OCPP 1.6 ", $what, ".")]
            #[cfg(feature = "v16")]
            V16(v16::$inner),
            #[doc = concat!("An OCPP 2.0.1 ", $what, ".")]
            #[cfg(feature = "v201")]
            V201(v201::$inner),
            #[doc = concat!("An OCPP 2.1 ", $what, ".")]
            #[cfg(feature = "v21")]
            V21(v21::$inner),
        }

        impl $name {
            #[doc = concat!("Decodes the ", $what, " payload of `action` (strict: a payload")]
            /// decodes if and only if its schema accepts it, minus the documented deviations).
            ///
            /// One dispatch: the version's arm decodes the payload straight into `Self`.
            pub fn from_json(action: AnyAction, json: &str) -> Result<$name, serde_json::Error> {
                let _ = json;
                match action {
                    #[cfg(feature = "v16")]
                    AnyAction::V16(a) => v16::$inner::from_json_into(a, json, $name::V16),
                    #[cfg(feature = "v201")]
                    AnyAction::V201(a) => v201::$inner::from_json_into(a, json, $name::V201),
                    #[cfg(feature = "v21")]
                    AnyAction::V21(a) => v21::$inner::from_json_into(a, json, $name::V21),
                }
            }

            /// The action.
            pub fn action(&self) -> AnyAction {
                match *self {
                    #[cfg(feature = "v16")]
                    $name::V16(ref r) => AnyAction::V16(r.action()),
                    #[cfg(feature = "v201")]
                    $name::V201(ref r) => AnyAction::V201(r.action()),
                    #[cfg(feature = "v21")]
                    $name::V21(ref r) => AnyAction::V21(r.action()),
                }
            }

            /// The version.
            pub fn version(&self) -> Version {
                self.action().version()
            }

            /// The payload as JSON text (exact decimals kept verbatim).
            pub fn to_json(&self) -> String {
                match *self {
                    #[cfg(feature = "v16")]
                    $name::V16(ref r) => r.to_json(),
                    #[cfg(feature = "v201")]
                    $name::V201(ref r) => r.to_json(),
                    #[cfg(feature = "v21")]
                    $name::V21(ref r) => r.to_json(),
                }
            }
        }

        typed_enum!(@version $name, $inner, v16, V16, "v16");
        typed_enum!(@version $name, $inner, v201, V201, "v201");
        typed_enum!(@version $name, $inner, v21, V21, "v21");
    };
    (@version $name:ident, $inner:ident, $m:ident, $V:ident, $feature:literal) => {
        #[cfg(feature = $feature)]
        impl From<$m::$inner> for $name {
            fn from(m: $m::$inner) -> Self {
                $name::$V(m)
            }
        }

        #[cfg(feature = $feature)]
        impl TryFrom<$name> for $m::$inner {
            type Error = UnexpectedMessage;

            fn try_from(typed: $name) -> Result<Self, UnexpectedMessage> {
                match typed {
                    $name::$V(m) => Ok(m),
                    #[allow(unreachable_patterns)]
                    other => Err(UnexpectedMessage {
                        expected: (Version::$V, None),
                        found: (other.version(), other.action().as_str()),
                    }),
                }
            }
        }
    };
}

typed_enum!(
    /// A typed CALL payload (request) of any enabled version.
    TypedRequest,
    AnyRequest,
    "request"
);

typed_enum!(
    /// A typed CALLRESULT payload (response) of any enabled version.
    TypedResponse,
    AnyResponse,
    "response"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action is found by its name, and nothing else is: each name cut short, made
    /// longer, with one byte changed or in another case finds an action only if that is the
    /// other action's exact name.
    #[test]
    fn actions_by_name() {
        fn check(version: Version, names: &[&'static str]) {
            for &name in names {
                let found = AnyAction::from_name(version, name).map(AnyAction::as_str);
                assert_eq!(found, Some(name), "{version} {name}");
                let mut near = vec![
                    name[..name.len() - 1].to_owned(),
                    format!("{name}s"),
                    format!(" {name}"),
                    name.to_lowercase(),
                    name.to_uppercase(),
                ];
                for i in 0..name.len() {
                    for b in [
                        b'a',
                        b'Z',
                        b'0',
                        b'\0',
                        0xff_u8.wrapping_sub(name.as_bytes()[i]),
                    ] {
                        let mut bytes = name.as_bytes().to_vec();
                        bytes[i] = b;
                        if let Ok(s) = String::from_utf8(bytes) {
                            near.push(s);
                        }
                    }
                }
                for other in near {
                    let found = AnyAction::from_name(version, &other).map(AnyAction::as_str);
                    let expected = names.iter().copied().find(|n| *n == other);
                    assert_eq!(found, expected, "{version} {other:?}");
                    assert_eq!(
                        AnyAction::parse(version, &other)
                            .ok()
                            .map(AnyAction::as_str),
                        expected
                    );
                }
            }
            assert_eq!(AnyAction::from_name(version, ""), None);
        }
        #[cfg(feature = "v16")]
        check(Version::V16, &v16::Action::ALL.map(v16::Action::as_str));
        #[cfg(feature = "v201")]
        check(Version::V201, &v201::Action::ALL.map(v201::Action::as_str));
        #[cfg(feature = "v21")]
        check(Version::V21, &v21::Action::ALL.map(v21::Action::as_str));
    }

    /// The enums stay small: a Heartbeat moved through queues and events does not move the
    /// largest message's size. `serde_json::Map` is a `BTreeMap` (24 bytes) unless a build
    /// turns on serde_json's `preserve_order` (as the workspace's codegen does); the bound
    /// allows for the larger map in the payloads that embed one or two.
    #[test]
    fn enums_stay_small() {
        use std::mem::size_of;
        let map = size_of::<serde_json::Map<String, serde_json::Value>>();
        let bound = 80 + 2 * map.saturating_sub(24);
        let sizes = [
            ("TypedRequest", size_of::<TypedRequest>()),
            ("TypedResponse", size_of::<TypedResponse>()),
            #[cfg(feature = "v16")]
            ("v16::AnyRequest", size_of::<v16::AnyRequest>()),
            #[cfg(feature = "v16")]
            ("v16::AnyResponse", size_of::<v16::AnyResponse>()),
            #[cfg(feature = "v201")]
            ("v201::AnyRequest", size_of::<v201::AnyRequest>()),
            #[cfg(feature = "v201")]
            ("v201::AnyResponse", size_of::<v201::AnyResponse>()),
            #[cfg(feature = "v21")]
            ("v21::AnyRequest", size_of::<v21::AnyRequest>()),
            #[cfg(feature = "v21")]
            ("v21::AnyResponse", size_of::<v21::AnyResponse>()),
            #[cfg(feature = "v21")]
            ("v21::AnySend", size_of::<v21::AnySend>()),
        ];
        for (name, size) in sizes {
            eprintln!("{name}: {size} bytes");
            assert!(size <= bound, "{name} is {size} bytes (bound {bound})");
        }
    }
}
