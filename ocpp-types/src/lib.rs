//! Schema-exact Rust types for every OCPP-J message of OCPP 1.6, 2.0.1 and 2.1.
//!
//! The per-version modules `v16`, `v201` and `v21` (each behind the feature of that name) are generated from the official JSON
//! schemas (embedded in the `ocpp-schemas` crate) by the generator in `ocpp-types/codegen`, and
//! committed. A payload deserializes into its type **if and only if** the official schema
//! accepts it, which is what lets the codec validate at the speed of plain deserialization:
//!
//! - strings with `maxLength` are [`BoundedString`]s, counted in characters: an over-long value
//!   cannot even be built;
//! - every OCPP `number` is an exact [`Decimal`] (never `f64`): `2935.600` keeps its three
//!   decimals, differences are exact, 1.6's `multipleOf: 0.1` is checked exactly (see [`number`]);
//! - integers are `i32` (OCPP's `integer` is 32-bit), with `minimum`/`maximum` checked, and
//!   draft-04 vs draft-06 integer rules followed per schema file;
//! - timestamps are [`DateTime`], parsed as strictly as the `date-time` format;
//! - enums carry their exact wire names; unknown properties are refused (`additionalProperties:
//!   false`), except in `CustomData`, which stays open to vendor properties;
//! - optional fields are omitted when `None` and refuse an explicit `null`;
//! - array lengths (`minItems`, `maxItems`) are checked.
//!
//! Each request type implements [`Request`], whose associated type is its response; 2.1's
//! SEND message implements [`SendMessage`] instead, so it cannot be used where a response is
//! awaited.
//!
//! Per version, `AnyRequest` and `AnyResponse` (2.1 also `AnySend`) hold any payload of that
//! version, and [`TypedRequest`] / [`TypedResponse`] any payload of any enabled version. Every
//! conversion between a payload type and these enums is a move, never a trip through JSON:
//! [`Request::into_any`], `From`, and `TryFrom` back to the concrete type.
//!
//! ```
//! use ocpp_types::v16::{BootNotificationRequest, BootNotificationResponse};
//! use ocpp_types::{Message, Request};
//!
//! let req: BootNotificationRequest =
//!     serde_json::from_str(r#"{"chargePointVendor":"ACME","chargePointModel":"Volt 22"}"#).unwrap();
//! assert_eq!(req.charge_point_vendor.as_str(), "ACME");
//! assert_eq!(BootNotificationRequest::ACTION, "BootNotification");
//! // A 21-character vendor is refused, exactly as the schema refuses it.
//! assert!(serde_json::from_str::<BootNotificationRequest>(
//!     r#"{"chargePointVendor":"ACME-ACME-ACME-ACME-X","chargePointModel":"Volt 22"}"#
//! ).is_err());
//! # let _: Option<<BootNotificationRequest as Request>::Response> = None::<BootNotificationResponse>;
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

mod any;
mod datetime;
pub mod number;
#[doc(hidden)]
pub mod rt;
pub mod smart_charging;
mod string;
#[cfg(feature = "v21")]
pub mod tariff;
mod uri;
mod version;

#[cfg(feature = "v16")]
pub mod v16;
#[cfg(feature = "v201")]
pub mod v201;
#[cfg(feature = "v21")]
pub mod v21;

pub use any::{AnyAction, TypedRequest, TypedResponse, UnexpectedMessage};
pub use datetime::{DateTime, InvalidDateTime};
pub use rust_decimal::Decimal;
pub use string::{BoundedString, StringTooLong};
pub use version::{MessageKind, UnknownVersion, Version};

/// A string that is not a value of a generated enumeration (from its `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {type_name} value")]
pub struct UnknownEnumValue {
    /// The enumeration's type name, e.g. `"RegistrationStatus"`.
    pub type_name: &'static str,
    /// The string given.
    pub value: String,
}

/// A string that names no action of a version (from `Action`'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action:?} is not an OCPP {version} action")]
pub struct UnknownAction {
    /// The version whose actions were searched.
    pub version: Version,
    /// The string given.
    pub action: String,
}

/// Why [`decode_payload`] refused a payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The version has no such action, or the action has no payload of that kind (a SEND
    /// action has no request or response; a CALL action has no SEND payload), or the version's
    /// feature is disabled.
    #[error("no payload type for action {0:?}")]
    UnknownAction(String),
    /// The payload does not decode into its type (which means the schema refuses it).
    #[error(transparent)]
    Invalid(#[from] serde_json::Error),
}

/// Decodes a payload into its generated type and discards it: `Ok(())` if and only if the
/// payload is valid for (`version`, `action`, `kind`).
///
/// ```
/// use ocpp_types::{decode_payload, MessageKind, PayloadError, Version};
///
/// assert!(decode_payload(Version::V16, "Heartbeat", MessageKind::Request, "{}").is_ok());
/// assert!(matches!(
///     decode_payload(Version::V16, "Heartbeat", MessageKind::Request, r#"{"x":1}"#),
///     Err(PayloadError::Invalid(_))
/// ));
/// assert!(matches!(
///     decode_payload(Version::V16, "Nope", MessageKind::Request, "{}"),
///     Err(PayloadError::UnknownAction(_))
/// ));
/// ```
pub fn decode_payload(
    version: Version,
    action: &str,
    kind: MessageKind,
    json: &str,
) -> Result<(), PayloadError> {
    let _ = (kind, json);
    match version {
        #[cfg(feature = "v16")]
        Version::V16 => v16::decode_payload(action, kind, json),
        #[cfg(feature = "v201")]
        Version::V201 => v201::decode_payload(action, kind, json),
        #[cfg(feature = "v21")]
        Version::V21 => v21::decode_payload(action, kind, json),
        #[allow(unreachable_patterns)]
        _ => Err(PayloadError::UnknownAction(action.to_owned())),
    }
}

/// proptest strategies shared by the generated `Arbitrary` implementations.
#[cfg(feature = "proptest")]
#[doc(hidden)]
pub mod arb {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    /// A small exact decimal within `min..=max`, with 0 to 3 decimals (0 or 1 when `tenths`).
    pub fn decimal(min: Option<i64>, max: Option<i64>, tenths: bool) -> BoxedStrategy<Decimal> {
        let max_scale: u32 = if tenths { 1 } else { 3 };
        (0..=max_scale)
            .prop_flat_map(move |scale| {
                let f = 10i64.pow(scale);
                let span = 1_000_000i64;
                let lo = min.map(|m| m.saturating_mul(f));
                let hi = max.map(|m| m.saturating_mul(f));
                let (lo, hi) = match (lo, hi) {
                    (Some(l), Some(h)) => (l, h),
                    (Some(l), None) => (l, l.saturating_add(span)),
                    (None, Some(h)) => (h.saturating_sub(span), h),
                    (None, None) => (-span, span),
                };
                (lo..=hi).prop_map(move |m| Decimal::new(m, scale))
            })
            .boxed()
    }

    /// An absolute URI.
    pub fn uri() -> BoxedStrategy<String> {
        proptest::string::string_regex("(https|ftp|sftp)://[a-z]{1,10}\\.example/[a-z0-9]{0,10}")
            .expect("valid regex")
            .boxed()
    }

    /// A small JSON value (no fractional numbers, which `serde_json::Value` would round).
    pub fn json() -> BoxedStrategy<serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-zA-Z0-9 ]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
    }

    /// Vendor properties for an open object: none, or one.
    pub fn extra() -> BoxedStrategy<serde_json::Map<String, serde_json::Value>> {
        prop_oneof![
            Just(serde_json::Map::new()),
            (any::<bool>(), "[a-z]{0,8}").prop_map(|(b, s)| {
                let mut m = serde_json::Map::new();
                m.insert("vendorFlag".into(), serde_json::Value::Bool(b));
                m.insert("vendorText".into(), serde_json::Value::String(s));
                m
            }),
        ]
        .boxed()
    }
}

/// Which side of the connection sends a message first (the schemas do not say; the
/// specifications do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The charging station (charge point) sends the request.
    ChargingStation,
    /// The central system (CSMS) sends the request.
    CentralSystem,
    /// Either side may send it (DataTransfer).
    Either,
}

impl Initiator {
    /// Whether a request with this initiator may be sent by the charging station.
    pub const fn charging_station_may_send(self) -> bool {
        matches!(self, Initiator::ChargingStation | Initiator::Either)
    }

    /// Whether a request with this initiator may be sent by the central system.
    pub const fn central_system_may_send(self) -> bool {
        matches!(self, Initiator::CentralSystem | Initiator::Either)
    }
}

/// Any generated OCPP payload type: what version, action and kind it belongs to.
pub trait Message:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The OCPP version.
    const VERSION: Version;
    /// The action name on the wire, e.g. `"BootNotification"`.
    const ACTION: &'static str;
    /// Request, response or SEND payload.
    const KIND: MessageKind;
}

/// A CALL payload, with the type of the CALLRESULT payload that answers it.
///
/// ```
/// use ocpp_types::v16::{AnyRequest, HeartbeatRequest};
/// use ocpp_types::{Request, TypedRequest};
///
/// let any: AnyRequest = HeartbeatRequest::new().into_any();
/// assert_eq!(any.action().as_str(), "Heartbeat");
/// let typed = TypedRequest::from(any);
/// assert_eq!(HeartbeatRequest::try_from_typed(typed), Ok(HeartbeatRequest::new()));
/// ```
pub trait Request: Message {
    /// The response payload type.
    type Response: Response<Request = Self>;
    /// The version's enum of every request (`v16::AnyRequest`, ...).
    type Any: From<Self>
        + TryInto<Self, Error = UnexpectedMessage>
        + Into<TypedRequest>
        + TryFrom<TypedRequest, Error = UnexpectedMessage>;
    /// Who sends this request.
    const INITIATOR: Initiator;

    /// The request in its version's `AnyRequest` (a move; large payloads are boxed).
    fn into_any(self) -> Self::Any {
        Self::Any::from(self)
    }

    /// The request in a [`TypedRequest`].
    fn into_typed(self) -> TypedRequest {
        self.into_any().into()
    }

    /// The request a [`TypedRequest`] holds, if it is one of this type.
    fn try_from_typed(typed: TypedRequest) -> Result<Self, UnexpectedMessage> {
        Self::Any::try_from(typed)?.try_into()
    }
}

/// A CALLRESULT payload, with the type of the request it answers.
///
/// ```
/// use ocpp_types::v16::{AnyResponse, ResetResponse, ResetStatus};
/// use ocpp_types::Response;
///
/// let any: AnyResponse = ResetResponse::new(ResetStatus::Accepted).into_any();
/// assert_eq!(ResetResponse::try_from(any.clone()).map(|r| r.status), Ok(ResetStatus::Accepted));
/// // Another action's response is refused, without touching JSON.
/// assert!(ocpp_types::v16::ClearCacheResponse::try_from(any).is_err());
/// ```
pub trait Response: Message {
    /// The request payload type.
    type Request: Request<Response = Self>;
    /// The version's enum of every response (`v16::AnyResponse`, ...).
    type Any: From<Self>
        + TryInto<Self, Error = UnexpectedMessage>
        + Into<TypedResponse>
        + TryFrom<TypedResponse, Error = UnexpectedMessage>;

    /// The response in its version's `AnyResponse` (a move; large payloads are boxed).
    fn into_any(self) -> Self::Any {
        Self::Any::from(self)
    }

    /// The response in a [`TypedResponse`].
    fn into_typed(self) -> TypedResponse {
        self.into_any().into()
    }

    /// The response a [`TypedResponse`] holds, if it is one of this type.
    fn try_from_typed(typed: TypedResponse) -> Result<Self, UnexpectedMessage> {
        Self::Any::try_from(typed)?.try_into()
    }
}

/// An OCPP 2.1 SEND payload: sent without a response. It deliberately does not implement
/// [`Request`], so it cannot be used where a response is awaited.
pub trait SendMessage: Message {
    /// The version's enum of every SEND payload (`v21::AnySend`).
    type Any: From<Self> + TryInto<Self, Error = UnexpectedMessage>;
    /// Who sends this message.
    const INITIATOR: Initiator;

    /// The message in its version's `AnySend`.
    fn into_any(self) -> Self::Any {
        Self::Any::from(self)
    }
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
