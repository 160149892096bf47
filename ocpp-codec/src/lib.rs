//! OCPP-J frames, typed dispatch per version, exact RPC errors and the sans-IO RPC endpoint.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ocpp_types;
