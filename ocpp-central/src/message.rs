//! Typed messages of any version: [`AnyRequest`] and [`AnyResponse`] hold the generated
//! per-version enums ([`ocpp_types::v16::AnyRequest`], ...) behind one type, so a session,
//! handler or event can carry the raw typed message of whatever version its charger speaks.

use ocpp_types::Version;

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
    ($(#[$doc:meta])* $name:ident, $inner:ident) => {
        $(#[$doc])*
        ///
        /// The generated per-version enums are large (2.1's is kilobytes, sized by its largest
        /// message), so each is boxed: this type is two words, and a Heartbeat moved through
        /// queues and events does not move kilobytes. Build one with `From` (`v16::AnyRequest`
        /// into `AnyRequest`) and match through the box (`AnyRequest::V16(q) => match &**q`).
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            /// An OCPP 1.6 message.
            #[cfg(feature = "v16")]
            V16(Box<ocpp_types::v16::$inner>),
            /// An OCPP 2.0.1 message.
            #[cfg(feature = "v201")]
            V201(Box<ocpp_types::v201::$inner>),
            /// An OCPP 2.1 message.
            #[cfg(feature = "v21")]
            V21(Box<ocpp_types::v21::$inner>),
        }

        #[cfg(feature = "v16")]
        impl From<ocpp_types::v16::$inner> for $name {
            fn from(m: ocpp_types::v16::$inner) -> Self {
                $name::V16(Box::new(m))
            }
        }

        #[cfg(feature = "v201")]
        impl From<ocpp_types::v201::$inner> for $name {
            fn from(m: ocpp_types::v201::$inner) -> Self {
                $name::V201(Box::new(m))
            }
        }

        #[cfg(feature = "v21")]
        impl From<ocpp_types::v21::$inner> for $name {
            fn from(m: ocpp_types::v21::$inner) -> Self {
                $name::V21(Box::new(m))
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
                        Ok($name::V16(Box::new(ocpp_types::v16::$inner::from_json(a, json)?)))
                    }
                    #[cfg(feature = "v201")]
                    Version::V201 => {
                        let a: ocpp_types::v201::Action = action.parse().map_err(|_| unknown())?;
                        Ok($name::V201(Box::new(ocpp_types::v201::$inner::from_json(a, json)?)))
                    }
                    #[cfg(feature = "v21")]
                    Version::V21 => {
                        let a: ocpp_types::v21::Action = action.parse().map_err(|_| unknown())?;
                        if !a.has_response() {
                            return Err(unknown());
                        }
                        Ok($name::V21(Box::new(ocpp_types::v21::$inner::from_json(a, json)?)))
                    }
                    #[allow(unreachable_patterns)]
                    _ => Err(unknown()),
                }
            }

            /// Decodes a typed message of the same action into `T` (e.g. the concrete
            /// response type a caller expects).
            pub fn to_typed<T: ocpp_types::Message>(&self) -> Result<T, serde_json::Error> {
                serde_json::from_str(&self.to_json())
            }

            /// Wraps a concrete typed message of any enabled version.
            pub fn from_typed<T: ocpp_types::Message>(message: &T) -> Result<Self, DecodeError> {
                let json = serde_json::to_string(message)?;
                Self::from_json(T::VERSION, T::ACTION, &json)
            }
        }
    };
}

any_enum!(
    /// A CALL payload (request) of any version, typed.
    AnyRequest,
    AnyRequest
);
any_enum!(
    /// A CALLRESULT payload (response) of any version, typed.
    AnyResponse,
    AnyResponse
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
