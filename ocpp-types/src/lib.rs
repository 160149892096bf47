//! Schema-exact Rust types for every OCPP-J message of OCPP 1.6, 2.0.1 and 2.1.
//!
//! The per-version modules [`v16`], [`v201`] and [`v21`] are generated from the official JSON
//! schemas (embedded in [`ocpp_schemas`]) by the generator in `ocpp-types/codegen`, and
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
//! ```
//! use ocpp_types::v16::{BootNotificationRequest, BootNotificationResponse};
//! use ocpp_types::Request;
//!
//! let req: BootNotificationRequest =
//!     serde_json::from_str(r#"{"chargePointVendor":"ACME","chargePointModel":"Volt 22"}"#).unwrap();
//! assert_eq!(req.charge_point_vendor.as_str(), "ACME");
//! assert_eq!(BootNotificationRequest::ACTION, "BootNotification");
//! // A 21-character vendor is refused, exactly as the schema refuses it.
//! assert!(serde_json::from_str::<BootNotificationRequest>(
//!     r#"{"chargePointVendor":"ACME-ACME-ACME-ACME-","chargePointModel":"Volt 22"}"#
//! ).is_err());
//! # let _: Option<<BootNotificationRequest as Request>::Response> = None::<BootNotificationResponse>;
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

mod datetime;
pub mod number;
#[doc(hidden)]
pub mod rt;
mod string;
mod uri;

#[cfg(feature = "v16")]
pub mod v16;
#[cfg(feature = "v201")]
pub mod v201;
#[cfg(feature = "v21")]
pub mod v21;

pub use datetime::{DateTime, InvalidDateTime};
pub use ocpp_schemas::{MessageKind, Version};
pub use rust_decimal::Decimal;
pub use string::{BoundedString, StringTooLong};

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
pub trait Request: Message {
    /// The response payload type.
    type Response: Response<Request = Self>;
    /// Who sends this request.
    const INITIATOR: Initiator;
}

/// A CALLRESULT payload, with the type of the request it answers.
pub trait Response: Message {
    /// The request payload type.
    type Request: Request<Response = Self>;
}

/// An OCPP 2.1 SEND payload: sent without a response. It deliberately does not implement
/// [`Request`], so it cannot be used where a response is awaited.
pub trait SendMessage: Message {
    /// Who sends this message.
    const INITIATOR: Initiator;
}
