//! Typed messages of any version: [`AnyRequest`] and [`AnyResponse`] hold the generated
//! per-version enums ([`ocpp_types::v16::AnyRequest`], ...) behind one type, so a session,
//! handler or event can carry the raw typed message of whatever version its charger speaks.
//!
//! Every conversion (from a concrete message, to one, from and to the codec's
//! [`TypedRequest`] / [`TypedResponse`]) moves the typed value: nothing is re-encoded as JSON.

use ocpp_types::{TypedRequest, TypedResponse, UnexpectedMessage, Version};

/// Why a payload could not be decoded into its typed message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The version has no such action (or the version's feature is disabled).
    #[error("{action:?} is not an OCPP {version} action")]
    UnknownAction {
        /// The version searched.
        version: Version,
        /// The action given.
        action: String,
    },
    /// The payload does not decode into its type (the schema refuses it).
    #[error(transparent)]
    Invalid(#[from] serde_json::Error),
}

macro_rules! any_enum {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $Trait:ident, $Typed:ident) => {
        $(#[$doc])*
        ///
        /// The per-version enums box every payload larger than a few words, so this type
        /// stays small (a Heartbeat does not move kilobytes) with no box of its own: one
        /// allocation per message at most. Build one with `From` (`v16::AnyRequest` or the
        /// codec's typed enum into this type) or from a concrete message with `from_message`,
        /// and match the version's enum inside (`AnyRequest::V16(q) => match q`).
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            /// An OCPP 1.6 message.
            #[cfg(feature = "v16")]
            V16(ocpp_types::v16::$inner),
            /// An OCPP 2.0.1 message.
            #[cfg(feature = "v201")]
            V201(ocpp_types::v201::$inner),
            /// An OCPP 2.1 message.
            #[cfg(feature = "v21")]
            V21(ocpp_types::v21::$inner),
        }

        #[cfg(feature = "v16")]
        impl From<ocpp_types::v16::$inner> for $name {
            fn from(m: ocpp_types::v16::$inner) -> Self {
                $name::V16(m)
            }
        }

        #[cfg(feature = "v201")]
        impl From<ocpp_types::v201::$inner> for $name {
            fn from(m: ocpp_types::v201::$inner) -> Self {
                $name::V201(m)
            }
        }

        #[cfg(feature = "v21")]
        impl From<ocpp_types::v21::$inner> for $name {
            fn from(m: ocpp_types::v21::$inner) -> Self {
                $name::V21(m)
            }
        }

        /// Fails only for a version whose feature is off in this crate (the codec's typed
        /// enums may have more versions enabled).
        impl TryFrom<$Typed> for $name {
            type Error = DecodeError;

            fn try_from(typed: $Typed) -> Result<Self, DecodeError> {
                match typed {
                    #[cfg(feature = "v16")]
                    $Typed::V16(m) => Ok($name::V16(m)),
                    #[cfg(feature = "v201")]
                    $Typed::V201(m) => Ok($name::V201(m)),
                    #[cfg(feature = "v21")]
                    $Typed::V21(m) => Ok($name::V21(m)),
                    #[allow(unreachable_patterns)]
                    other => Err(DecodeError::UnknownAction {
                        version: other.version(),
                        action: other.action().as_str().to_owned(),
                    }),
                }
            }
        }

        impl From<$name> for $Typed {
            fn from(any: $name) -> Self {
                match any {
                    #[cfg(feature = "v16")]
                    $name::V16(m) => $Typed::V16(m),
                    #[cfg(feature = "v201")]
                    $name::V201(m) => $Typed::V201(m),
                    #[cfg(feature = "v21")]
                    $name::V21(m) => $Typed::V21(m),
                }
            }
        }

        impl $name {
            /// The message's version.
            pub fn version(&self) -> Version {
                match self {
                    #[cfg(feature = "v16")]
                    $name::V16(_) => Version::V16,
                    #[cfg(feature = "v201")]
                    $name::V201(_) => Version::V201,
                    #[cfg(feature = "v21")]
                    $name::V21(_) => Version::V21,
                }
            }

            /// The action name on the wire.
            pub fn action(&self) -> &'static str {
                match self {
                    #[cfg(feature = "v16")]
                    $name::V16(m) => m.action().as_str(),
                    #[cfg(feature = "v201")]
                    $name::V201(m) => m.action().as_str(),
                    #[cfg(feature = "v21")]
                    $name::V21(m) => m.action().as_str(),
                }
            }

            /// The payload as JSON text (exact decimals kept verbatim).
            pub fn to_json(&self) -> String {
                match self {
                    #[cfg(feature = "v16")]
                    $name::V16(m) => m.to_json(),
                    #[cfg(feature = "v201")]
                    $name::V201(m) => m.to_json(),
                    #[cfg(feature = "v21")]
                    $name::V21(m) => m.to_json(),
                }
            }

            /// Decodes the payload of `action` in `version` from JSON text.
            pub fn from_json(version: Version, action: &str, json: &str) -> Result<Self, DecodeError> {
                let unknown = || DecodeError::UnknownAction {
                    version,
                    action: action.to_owned(),
                };
                let _ = json;
                match version {
                    #[cfg(feature = "v16")]
                    Version::V16 => {
                        let a: ocpp_types::v16::Action = action.parse().map_err(|_| unknown())?;
                        Ok($name::V16(ocpp_types::v16::$inner::from_json(a, json)?))
                    }
                    #[cfg(feature = "v201")]
                    Version::V201 => {
                        let a: ocpp_types::v201::Action = action.parse().map_err(|_| unknown())?;
                        Ok($name::V201(ocpp_types::v201::$inner::from_json(a, json)?))
                    }
                    #[cfg(feature = "v21")]
                    Version::V21 => {
                        let a: ocpp_types::v21::Action = action.parse().map_err(|_| unknown())?;
                        if !a.has_response() {
                            return Err(unknown());
                        }
                        Ok($name::V21(ocpp_types::v21::$inner::from_json(a, json)?))
                    }
                    #[allow(unreachable_patterns)]
                    _ => Err(unknown()),
                }
            }

            /// The concrete message `T` (e.g. the response type a caller expects), if this is
            /// one: a clone of the payload, no JSON.
            pub fn to_typed<T: ocpp_types::$Trait>(&self) -> Result<T, UnexpectedMessage> {
                self.clone().into_message()
            }

            /// The concrete message `T`, if this is one (a move, no JSON).
            pub fn into_message<T: ocpp_types::$Trait>(self) -> Result<T, UnexpectedMessage> {
                T::try_from_typed(self.into())
            }

            /// Wraps a concrete typed message (a move, no JSON). Fails only when the message's
            /// version is not enabled in this crate.
            pub fn from_message<T: ocpp_types::$Trait>(message: T) -> Result<Self, DecodeError> {
                message.into_typed().try_into()
            }

            /// Wraps a clone of a concrete typed message ([`Self::from_message`] by reference).
            pub fn from_typed<T: ocpp_types::$Trait>(message: &T) -> Result<Self, DecodeError> {
                Self::from_message(message.clone())
            }
        }
    };
}

any_enum!(
    /// A CALL payload (request) of any version, typed.
    AnyRequest,
    AnyRequest,
    Request,
    TypedRequest
);
any_enum!(
    /// A CALLRESULT payload (response) of any version, typed.
    AnyResponse,
    AnyResponse,
    Response,
    TypedResponse
);

/// Whether `action` names an action of `version` (a CALL or, on 2.1, a SEND), and if so
/// whether the charging station may send it.
pub fn charger_may_send(version: Version, action: &str) -> Option<bool> {
    match version {
        #[cfg(feature = "v16")]
        Version::V16 => action
            .parse::<ocpp_types::v16::Action>()
            .ok()
            .map(|a| a.initiator().charging_station_may_send()),
        #[cfg(feature = "v201")]
        Version::V201 => action
            .parse::<ocpp_types::v201::Action>()
            .ok()
            .map(|a| a.initiator().charging_station_may_send()),
        #[cfg(feature = "v21")]
        Version::V21 => action
            .parse::<ocpp_types::v21::Action>()
            .ok()
            .map(|a| a.initiator().charging_station_may_send()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whether `action` names an action of `version` the central system may send.
pub fn central_may_send(version: Version, action: &str) -> Option<bool> {
    match version {
        #[cfg(feature = "v16")]
        Version::V16 => action
            .parse::<ocpp_types::v16::Action>()
            .ok()
            .map(|a| a.initiator().central_system_may_send()),
        #[cfg(feature = "v201")]
        Version::V201 => action
            .parse::<ocpp_types::v201::Action>()
            .ok()
            .map(|a| a.initiator().central_system_may_send()),
        #[cfg(feature = "v21")]
        Version::V21 => action
            .parse::<ocpp_types::v21::Action>()
            .ok()
            .map(|a| a.initiator().central_system_may_send()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No box of its own, and still small: the version's enum (bounded in ocpp-types) and a
    /// tag.
    #[test]
    fn any_messages_stay_small() {
        let map = std::mem::size_of::<serde_json::Map<String, serde_json::Value>>();
        let bound = 88 + 2 * map.saturating_sub(24);
        for (name, size) in [
            ("AnyRequest", std::mem::size_of::<AnyRequest>()),
            ("AnyResponse", std::mem::size_of::<AnyResponse>()),
        ] {
            assert!(size <= bound, "{name} is {size} bytes (bound {bound})");
        }
    }
}
