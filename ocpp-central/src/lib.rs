//! The central-system (CSMS) side of OCPP-J 1.6, 2.0.1 and 2.1.
//!
//! This crate is being built (issue 4): a sans-IO session per charger connection, a
//! version-neutral model of chargers and transactions, an application handler API and an
//! optional WebSocket server. Today it re-exports the typed messages of [`ocpp_types`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ocpp_types;
