//! The charge-point side of OCPP-J 1.6, 2.0.1 and 2.1.
//!
//! - [`Station`]: the sans-IO charging station (boot, heartbeat, status, authorization with a
//!   local list and a cache, reservations, transactions, meter sampling, every central-system
//!   call), on
//!   [`ocpp_codec::rpc::Endpoint`], with time passed in.
//! - [`app`]: the application, one trait per functional block (provisioning, availability,
//!   authorization, transactions, remote control, smart charging, firmware, diagnostics,
//!   reservations, local list, security, display, data transfer, 2.1 additions), every method
//!   defaulting to the station's own behaviour; given with [`StationConfig::application`].
//! - [`Hardware`]: the boundary to the physical station, and [`SimulatedHardware`].
//! - [`Store`]: the durable, ordered outbox of transaction messages ([`MemoryStore`],
//!   [`FileStore`]). The station hands out the writes ([`Persist`]); its driver performs them
//!   off the async runtime; [`Saved`] is what a store held at start-up.
//! - [`Settings`]: 1.6 configuration keys and the 2.x device model.
//! - [`smart_charging`]: charging profiles (one [`ChargingProfile`] model for every version),
//!   their store per EVSE, the composite schedule and the limit given to the [`Hardware`].
//! - `ws` (feature `ws`, default): the tokio + tokio-tungstenite client that drives a station
//!   over a WebSocket, reconnecting with backoff; with `tls`, `wss://` (security profiles 2
//!   and 3, rustls, `tls`).
//! - `certificates` (feature `certificates`): the certificate store and the built-in
//!   certificate messages (install, list, delete, the station's own certificate signed
//!   through SignCertificate / CertificateSigned).
//! - `testing` (feature `test-util`): a virtual-time driver and a mock central system.
//!
//! See the crate README for a complete charger and the design notes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod central;
#[cfg(feature = "certificates")]
pub mod certificates;
#[cfg(not(feature = "certificates"))]
#[path = "certificates/off.rs"]
pub(crate) mod certificates;
pub mod device_model;
pub mod hardware;
pub mod rand;
pub mod settings;
pub mod smart_charging;
pub mod station;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod time;
#[cfg(feature = "ws")]
pub mod tls;
#[cfg(feature = "ws")]
pub mod ws;

pub use hardware::{
    Hardware, HardwareEvent, MeterReading, ResetKind, SignFn, SignRequest, SignedReading,
    SimulatedEv, SimulatedHardware,
};
pub use ocpp_codec::Version;
pub use ocpp_types;
pub use rand::Rng;
pub use settings::{Setting, Settings};
pub use smart_charging::{ChargingLimit, ChargingProfile, SmartChargingConfig};
pub use station::{
    BootState, DataTransferHandler, DataTransferReply, SecurityEvent, Station, StationConfig,
    StationEvent, TransactionInfo,
};
pub use station::{Customer, DisplayConfig, DisplayMessage, MessagePriority};
pub use station::{DerControlInfo, DER_CONTROL_TYPES, MAX_DER_CONTROLS};
pub use station::{
    StreamInfo, StreamParams, StreamStatus, MAX_STREAMS, MAX_STREAM_BACKLOG, MAX_STREAM_BATCH,
};
pub use store::{FileStore, MemoryStore, Persist, Saved, Store, StoreError, StoredMessage};
pub use time::{AnchoredClock, TimeSource};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
