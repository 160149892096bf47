//! OCPP-J frames, exact RPC errors and the sans-IO RPC endpoint, for OCPP 1.6, 2.0.1 and 2.1.
//!
//! - [`frame`]: decode one WebSocket text message into a [`Frame`] (payload borrowed as a
//!   [`RawValue`](serde_json::value::RawValue) until typed decoding) and encode frames.
//! - [`error`]: [`ErrorCode`] spelled per version, [`FrameError`] for every way an incoming
//!   message can be wrong, and the exact [`Reply`] the specification requires.
//! - [`rpc`]: the sans-IO [`Endpoint`]: one CALL in flight with a FIFO queue, call timeouts
//!   on injected time, peer calls surfaced as events, late/unknown/duplicate answers reported.
//! - [`typed`] (with any subset of the features `v16`, `v201` and `v21`; all three by default):
//!   typed dispatch per version,
//!   the exact CALLERROR for unknown actions, wrong directions and payload violations, lenient
//!   repairs, typed encoding with optional outgoing validation.
//! - `deflate` (feature `deflate`): WebSocket compression (RFC 7692 `permessage-deflate`)
//!   under tungstenite, bounded by the message size limit.
//! - `testing` (feature `test-util`): a virtual clock and a pair of connected endpoints.
//!
//! See the crate README for the error-mapping table with its specification references.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
pub mod frame;
pub mod rpc;
#[cfg(feature = "test-util")]
pub mod testing;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
pub mod typed;

pub use error::{ErrorCode, FrameError, MessageType, Reply, ReplyKind};
pub use frame::{Decoder, Frame};
pub use ocpp_types;
pub use ocpp_types::Version;
pub use rpc::{Endpoint, EndpointConfig, Event};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
