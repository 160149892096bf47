//! The central-system (CSMS) side of OCPP-J 1.6, 2.0.1 and 2.1.
//!
//! Layers, bottom up (see the crate README for a complete central system):
//!
//! - [`session`]: the sans-IO [`Session`] of one charger connection, on the codec's RPC
//!   endpoint: typed decoding with the exact refusals, boot state, connectors, transactions,
//!   meter data, as version-neutral [`Event`]s ([`model`]).
//! - [`handler`]: the application API: [`Handler`] and the per-version handler traits
//!   (`HandleV16`, `HandleV201`, `HandleV21`) with defaults from [`Defaults`], the
//!   cloneable [`ChargerHandle`] and the [`Chargers`] registry. No runtime needed.
//! - `driver` (feature `tokio`): `Connection` drives a session over any stream/sink of text
//!   messages, for central systems that own their sockets.
//! - `server` (feature `ws`, default): the WebSocket server.
//! - `tls` (feature `tls`): `wss://` for the server, security profiles 2 and 3 (rustls).
//! - `testing` (feature `test-util`): a virtual-time harness and a mock charger.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// With only some versions enabled, helpers of the others are unused.
#![cfg_attr(
    not(all(feature = "v16", feature = "v201", feature = "v21")),
    allow(unused)
)]

#[cfg(not(any(feature = "v16", feature = "v201", feature = "v21")))]
compile_error!("ocpp-central needs at least one of the features v16, v201, v21");

mod apply;
pub mod certificates;
pub mod commands;
pub mod defaults;
pub mod der;
pub mod device_model;
pub mod display;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod firmware;
pub mod handler;
pub mod incoming;
pub mod message;
pub mod model;
#[cfg(feature = "ws")]
pub mod proxy;
pub mod reservations;
#[cfg(feature = "ws")]
pub mod server;
pub mod session;
pub mod signed;
pub mod smart_charging;
#[cfg(feature = "ws")]
mod socket;
pub mod streams;
#[cfg(feature = "v21")]
pub mod tariffs;
#[cfg(feature = "test-util")]
pub mod testing;
#[cfg(feature = "tls")]
pub mod tls;

pub use commands::{Answer, ResetKind, VariableRef, VariableValue};
pub use defaults::{
    CallFailure, CounterTransactionIds, Defaults, ManualClock, SystemClock, TransactionIdSource,
    WallClock,
};
#[cfg(feature = "tokio")]
pub use driver::{Connection, DriveError};
#[cfg(feature = "v16")]
pub use handler::HandleV16;
#[cfg(feature = "v201")]
pub use handler::HandleV201;
#[cfg(feature = "v21")]
pub use handler::HandleV21;
pub use handler::{
    dispatch, CentralSystem, ChargerHandle, Chargers, Command, CommandReceiver, Handler,
    MAX_QUEUED_COMMANDS,
};
pub use incoming::{with_incoming_call, IncomingCall};
pub use message::{AnyRequest, AnyResponse};
pub use model::{
    AuthorizationStatus, BootState, ChargerInfo, ChargerState, ConnectorRef, ConnectorState,
    ConnectorStatus, Event, Limit, Limits, MeterSample, SeqGaps, SignedMeterValue, SmallMap,
    Transaction,
};
#[cfg(feature = "ws")]
pub use server::{
    Admission, Auth, Authenticator, Compression, Peer, PeerCertificate, RunningServer, Server,
    ServerConfig, Verdict,
};
pub use session::{CallError, RespondError, Session, SessionConfig, SessionEvent};
pub use smart_charging::{
    ClearProfiles, CompositeAnswer, ProfileQuery, ProfileReport, ReportedProfile,
    SmartChargingNotice,
};

pub use async_trait::async_trait;
pub use ocpp_codec;
pub use ocpp_types;

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
