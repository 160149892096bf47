//! Shared library of the example binaries: the central system's backend (API, database,
//! dashboard, metrics) and the charger simulator. The binaries in `src/bin/` are thin command
//! lines over these modules, built only from the ocpp-rs crates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod sim;
