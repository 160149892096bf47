//! The charge-point side of OCPP-J 1.6, 2.0.1 and 2.1.
//!
//! This crate is being built (issue 5): a sans-IO charging station, a durable outbox for
//! transaction messages and an optional WebSocket client. Today it re-exports the typed
//! messages of [`ocpp_types`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ocpp_types;
