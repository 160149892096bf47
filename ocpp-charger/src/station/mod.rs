//! The sans-IO charging station.
//!
//! A [`Station`] is a plain state machine (quinn-proto style) over an
//! [`ocpp_codec::rpc::Endpoint`]: text from the central system, physical inputs and the current
//! time go in ([`Station::handle_text`], [`Station::handle_hardware`],
//! [`Station::handle_timeout`], [`Station::on_connected`], [`Station::on_disconnected`]); text to
//! send ([`Station::poll_transmit`]), events for the application ([`Station::poll_event`]) and
//! the next deadline ([`Station::poll_timeout`]) and the writes to make durable
//! ([`Station::poll_persist`]) come out. It never reads a clock and does no I/O besides its
//! [`Hardware`]: storage is the driver's ([`crate::store`]).
//!
//! After **every** `handle_*` / `on_*` call the driver must drain [`Station::poll_transmit`]
//! (sending each text in order), drain [`Station::poll_event`], drain
//! [`Station::poll_persist`] (performing each write in order, off the async runtime's threads,
//! and reporting it with [`Station::handle_persisted`]), and re-arm its one timer at
//! [`Station::poll_timeout`]. [`Station::persist_to`] does the persistence part in place, for
//! drivers that may block.
//!
//! The station is split along its seams: `config` ([`StationConfig`]), `boot` (boot,
//! heartbeat, answers to the station's calls), `status` (connector status, physical inputs),
//! `authorization`, [`local_list`] (the local authorization list), [`reservations`],
//! `transactions` (start, stop, reset), [`firmware`] and [`logs`] (updates and uploads the
//! application performs), `meter` (samples and clock-aligned readings), `outbox` (the durable queue of transaction messages, its own type) and `step`
//! (the step after every input); calls from the central system are [`crate::central`], the
//! application's part of them [`crate::app`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use ocpp_codec::rpc::{Endpoint, EndpointConfig, Event as RpcEvent, RandomIds};
use ocpp_codec::typed::{Side, TypedCodec};
use ocpp_codec::Version;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::app::Application;
use crate::hardware::{Hardware, HardwareEvent, MeterReading, ResetKind, SignRequest};
use crate::settings::{Setting, Settings};
use crate::store::{Persist, Saved, Store, StoreError, StoredMessage};
mod authorization;
mod boot;
mod config;
pub mod cost;
pub mod customer;
pub mod der;
pub mod display;
pub mod firmware;
pub mod local_list;
pub mod logs;
mod meter;
pub mod monitoring;
mod outbox;
pub mod reservations;
pub mod security;
mod status;
mod step;
pub mod streams;
#[cfg(feature = "v21")]
pub mod tariffs;
mod transactions;

pub use config::StationConfig;
pub use cost::COST_VENDOR_ID;
pub use customer::{Customer, CUSTOMER_DATA_PER_PART, MAX_CUSTOMER_PARTS};
pub use der::{DerControlInfo, DER_CONTROL_TYPES, DER_REPORT_ITEMS, MAX_DER_CONTROLS};
pub use display::{
    DisplayConfig, DisplayMessage, MessagePriority, DEFAULT_MAX_DISPLAY_MESSAGES,
    DISPLAY_MESSAGES_PER_REPORT,
};
pub use firmware::{FirmwareProgress, FirmwareStatus, FirmwareUpdate};
pub use local_list::{DEFAULT_LOCAL_LIST_MAX, DEFAULT_SEND_LOCAL_LIST_MAX};
pub use logs::{LogKind, LogProgress, LogUpload};
pub(crate) use meter::Signing;
pub use monitoring::{MonitorInfo, MAX_MONITORS};
use outbox::Outbox;
pub use reservations::{ReservationInfo, MAX_PENDING_RESERVATION_UPDATES};
pub use security::{SecurityEvent, MAX_QUEUED_SECURITY_EVENTS, MAX_TECH_INFO};
pub use streams::{
    StreamInfo, StreamParams, StreamStatus, MAX_STREAMS, MAX_STREAM_BACKLOG, MAX_STREAM_BATCH,
};
pub(crate) use transactions::Stop;

use crate::rand::Rng;
use crate::time::{deadline, next_aligned, seconds, AnchoredClock, TimeSource, MAX_TIMER};

/// The shortest wait between two BootNotifications the station chooses itself: when the
/// answer's `interval` is 0 or negative (OCPP 1.6 §4.2 and 2.0.1 B02/B03 leave the wait to the
/// station then), when the call failed, or when [`StationConfig::boot_retry`] was set lower.
/// A positive `interval` from the central system is honoured as given ("the minimum wait time
/// before sending a next BootNotification", up to [`MAX_BOOT_RETRY`]).
pub const MIN_BOOT_RETRY: Duration = Duration::from_secs(10);

/// The longest wait between two BootNotifications: one day. A larger `interval` in a
/// Pending/Rejected answer is treated as a day, so the station never stops trying to register.
pub const MAX_BOOT_RETRY: Duration = MAX_TIMER;

/// The shortest wait before a transaction message is sent again after a failure, whatever
/// `TransactionMessageRetryInterval` / `MessageAttemptInterval` say (0 is a valid setting:
/// "retry at once" would otherwise resend as fast as the central system can refuse).
pub const MIN_RETRY: Duration = Duration::from_secs(1);

/// The most calls the station lets wait behind the one in flight that it may also not send
/// (heartbeats, status and meter notifications, reports, authorizations). When the queue is
/// this long, a TriggerMessage, GetBaseReport or remote start that would add to it is answered
/// `Rejected`, and a status change is sent later. Transaction messages have their own durable
/// outbox and are not counted. Together with one Heartbeat and one BootNotification at a time
/// at most, this bounds what a central system can make the station send.
pub const MAX_QUEUED_CALLS: usize = 32;

/// Where the boot sequence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootState {
    /// Not sent yet on this connection / since the last reboot.
    NotSent,
    /// BootNotification in flight.
    Waiting,
    /// The central system answered Pending; retrying later.
    Pending,
    /// The central system answered Rejected; retrying later, sending and answering nothing.
    Rejected,
    /// Accepted: normal operation.
    Accepted,
}

/// What happened, for the application. Drain with [`Station::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StationEvent {
    /// The central system accepted the BootNotification.
    BootAccepted {
        /// Heartbeat interval it gave.
        interval: Duration,
    },
    /// The central system answered Pending or Rejected (or failed); retrying after `retry_in`.
    BootNotAccepted {
        /// `"Pending"`, `"Rejected"` or `"Error"`.
        status: String,
        /// When the next BootNotification goes out.
        retry_in: Duration,
    },
    /// A connector's status changed (the version's status value).
    StatusChanged {
        /// EVSE / connector id (0 = the station, 1.6 only).
        evse: u32,
        /// The new status, e.g. `"Charging"` (1.6) or `"Occupied"` (2.x).
        status: &'static str,
    },
    /// The result of an authorization (online, from the cache, or the offline rules).
    Authorization {
        /// The token.
        id_token: String,
        /// Whether it may charge.
        accepted: bool,
    },
    /// A transaction started.
    TransactionStarted {
        /// EVSE / connector id.
        evse: u32,
        /// The station-local transaction key.
        local_id: u64,
        /// The transaction id when already known (2.x always; 1.6 once the central system
        /// issued it, see [`StationEvent::TransactionIdAssigned`]).
        transaction_id: Option<String>,
    },
    /// (1.6) The central system issued the id of a transaction in StartTransaction.conf.
    TransactionIdAssigned {
        /// The station-local transaction key.
        local_id: u64,
        /// The central-issued transactionId.
        transaction_id: i32,
    },
    /// A transaction ended.
    TransactionEnded {
        /// EVSE / connector id.
        evse: u32,
        /// The station-local transaction key.
        local_id: u64,
        /// The version's stop reason, e.g. `"Local"`, `"Remote"`, `"EVDisconnected"`.
        reason: &'static str,
    },
    /// A queued transaction message was confirmed by the central system.
    Delivered {
        /// Outbox sequence number.
        seq: u64,
        /// The action.
        action: String,
    },
    /// A queued transaction message was given up after the configured attempts (or because
    /// its 1.6 transaction never got an id).
    Dropped {
        /// Outbox sequence number.
        seq: u64,
        /// The action.
        action: String,
    },
    /// The central system asked for a reset; the hardware was told to reboot and the station
    /// boots again.
    Rebooting(ResetKind),
    /// The central system's time (BootNotification / Heartbeat answers).
    CentralTime(DateTime<Utc>),
    /// The central system changed a configuration value / variable.
    ConfigurationChanged {
        /// 1.6 key, or 2.x `Component.Variable[instance]`.
        key: String,
    },
    /// The central system sent a call; `answered` is false only while Rejected (2.x use case B03:
    /// no answers while Rejected).
    CentralCall {
        /// The action.
        action: String,
        /// Whether an answer was sent.
        answered: bool,
    },
    /// The answer to our DataTransfer.
    DataTransferResult {
        /// The status, or the CALLERROR code.
        status: String,
        /// Returned data.
        data: Option<Value>,
    },
    /// A security event happened ([`security`]): for the application's security log. It is
    /// also sent to the central system with [`StationConfig::security_events`].
    SecurityEvent {
        /// The type, spelled for the version (e.g. `"ResetOrReboot"`).
        kind: String,
        /// Free text about it, if any.
        tech_info: Option<String>,
    },
    /// The central system answered the station's `SignCertificate` (feature
    /// `certificates`): `Accepted` (the certificate follows in `CertificateSigned`),
    /// `Rejected`, or the CALLERROR code / `Timeout`.
    SignCertificateAnswered {
        /// The status.
        status: String,
    },
    /// A certificate the central system signed was checked and installed as the station's
    /// client certificate (feature `certificates`); the driver presents it from its next
    /// connection on.
    ClientCertificateInstalled {
        /// The end of its validity, Unix seconds.
        not_after: i64,
    },
    /// The central system set a new Basic-auth password: the driver closes the connection
    /// and connects again with it ([`Station::poll_reconnect`]).
    CredentialsChanged,
    /// The station took a reservation (ReserveNow answered `Accepted`).
    Reserved {
        /// The reservation id.
        reservation_id: i32,
        /// The EVSE (1.6 connector); 0: any EVSE.
        evse: u32,
    },
    /// A reservation ended.
    ReservationEnded {
        /// The reservation id.
        reservation_id: i32,
        /// `"Used"` (a transaction started with it), `"Cancelled"`, `"Expired"` or
        /// `"Removed"` (its EVSE became Faulted or Unavailable).
        reason: &'static str,
    },
    /// An authorized token found no EVSE it may use: the free ones are reserved for others.
    ReservationRefused {
        /// The token.
        id_token: String,
    },
    /// Download the firmware of update `request_id` from `location` ([`firmware`]); report
    /// with [`Station::firmware_progress`].
    FirmwareDownload {
        /// The update (0 for a 1.6 UpdateFirmware).
        request_id: i32,
        /// Where from.
        location: String,
        /// Which attempt (from 1).
        attempt: u32,
        /// The signing certificate (PEM), when given.
        signing_certificate: Option<String>,
        /// The signature (base64) to check, when given.
        signature: Option<String>,
    },
    /// Install the downloaded firmware of update `request_id` (no transaction runs); report
    /// with [`Station::firmware_progress`].
    FirmwareInstall {
        /// The update.
        request_id: i32,
    },
    /// Update `request_id` was replaced by a new one: stop what it was doing.
    FirmwareCanceled {
        /// The update.
        request_id: i32,
    },
    /// Upload the log file ([`logs`]); report with [`Station::log_progress`].
    LogUpload {
        /// The request (0 for 1.6 GetDiagnostics).
        request_id: i32,
        /// Which log.
        kind: LogKind,
        /// Where to.
        location: String,
        /// The file name announced to the central system.
        file_name: String,
        /// The oldest entries wanted.
        oldest: Option<DateTime<Utc>>,
        /// The latest entries wanted.
        latest: Option<DateTime<Utc>>,
        /// Which attempt (from 1).
        attempt: u32,
    },
    /// Upload `request_id` was replaced by a new request: stop it.
    LogCanceled {
        /// The request.
        request_id: i32,
    },
    /// What the display shows changed ([`Station::displayed_messages`], [`display`]).
    DisplayChanged,
    /// The central system told the cost of a transaction ([`cost`]).
    Cost {
        /// The transaction (1.6: the central system's id as text).
        transaction_id: String,
        /// The total cost so far, exactly as sent, in the station's currency.
        total_cost: Decimal,
        /// Whether it is the final cost (the answer to the 2.x `Ended` event, 1.6
        /// FinalCost).
        final_cost: bool,
        /// `"CostUpdated"`, `"TransactionEvent"`, `"RunningCost"` or `"FinalCost"`.
        source: &'static str,
    },
    /// A personal message for a transaction's driver (a 2.x TransactionEvent answer's
    /// `updatedPersonalMessage`, a 1.6 FinalCost's `priceText`).
    PersonalMessage {
        /// The transaction.
        transaction_id: String,
        /// The text.
        content: String,
    },
    /// A CustomerInformation cleared what the station held about a customer ([`customer`]).
    CustomerCleared {
        /// The customer.
        customer: Customer,
    },
    /// The store failed (message or state not persisted). A message whose append failed is
    /// still sent: it is kept in memory only.
    StoreFailed(String),
    /// An outgoing payload failed schema validation (only with
    /// [`StationConfig::validate_outgoing`]); this is a bug in the station.
    InvalidOutgoing {
        /// The action.
        action: String,
        /// What the typed decoder said.
        error: String,
    },
}

/// A snapshot of an ongoing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    /// The station-local key.
    pub local_id: u64,
    /// The transaction id: 2.x always, 1.6 once issued.
    pub transaction_id: Option<String>,
    /// The token that started it.
    pub id_token: String,
    /// Meter register at start, Wh.
    pub meter_start_wh: Decimal,
}

/// What an application handler answers to the central system's DataTransfer.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTransferReply {
    /// `Accepted`, `Rejected`, `UnknownMessageId` or `UnknownVendorId`.
    pub status: String,
    /// Optional data (1.6: sent as a string).
    pub data: Option<Value>,
}

/// A handler for incoming DataTransfer: `(vendor_id, message_id, data)`.
pub type DataTransferHandler =
    Box<dyn FnMut(&str, Option<&str>, Option<&Value>) -> DataTransferReply + Send>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TxState {
    pub(crate) evse: u32,
    pub(crate) local: u64,
    #[serde(default)]
    pub(crate) id: Option<String>,
    pub(crate) token: String,
    pub(crate) token_type: String,
    pub(crate) meter_start: String,
    #[serde(default)]
    pub(crate) seq_no: u32,
    #[serde(default)]
    pub(crate) remote_start_id: Option<i32>,
    /// (2.x) The meter's public key went with a signed value of this transaction
    /// (`PublicKeyWithSignedMeterValue` = `OncePerTransaction`).
    #[serde(default)]
    pub(crate) key_sent: bool,
}

/// The state document the station keeps in its [`Store`] (JSON).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StateDoc {
    next_seq: u64,
    next_local_tx: u64,
    tx_ids: BTreeMap<u64, i32>,
    txs: Vec<TxState>,
    inoperative: Vec<u32>,
    settings: BTreeMap<u16, String>,
    rng_mix: u64,
    /// Charging profiles and the transactions' starts ([`crate::smart_charging`]).
    #[serde(default)]
    smart: crate::smart_charging::SmartDoc,
    /// Reservations ([`reservations`]).
    #[serde(default)]
    reservations: reservations::ReservationDoc,
    /// The local authorization list ([`local_list`]).
    #[serde(default)]
    local_list: local_list::LocalListDoc,
    /// The firmware update ([`firmware`]).
    #[serde(default)]
    firmware: firmware::FirmwareDoc,
    /// The log upload ([`logs`]).
    #[serde(default)]
    logs: logs::LogDoc,
    /// Variable monitors ([`monitoring`]).
    #[serde(default)]
    monitoring: monitoring::MonitoringDoc,
    /// Display messages and the transactions' cost lines ([`display`]).
    #[serde(default)]
    display: display::DisplayDoc,
    /// (2.1) DER controls ([`der`]).
    #[serde(default, skip_serializing_if = "der::DerDoc::is_empty")]
    der: der::DerDoc,
    /// Default and transaction tariffs, with their cost meters ([`tariffs`]).
    #[cfg(feature = "v21")]
    #[serde(default)]
    tariffs: tariffs::TariffDoc,
}

#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) token: String,
    pub(crate) token_type: String,
    pub(crate) remote_start_id: Option<i32>,
    pub(crate) remote: bool,
    /// Its group (1.6 `parentIdTag`, 2.x `groupIdToken`), when known.
    pub(crate) group: Option<String>,
    /// The reservation it uses ([`reservations`]).
    pub(crate) reservation: Option<i32>,
}

#[derive(Debug, Clone)]
pub(crate) struct Evse {
    pub(crate) id: u32,
    pub(crate) plugged: bool,
    pub(crate) faulted: bool,
    pub(crate) inoperative: bool,
    pub(crate) pending_inoperative: Option<bool>,
    pub(crate) auth: Option<Auth>,
    pub(crate) auth_deadline: Option<Instant>,
    pub(crate) tx: Option<TxState>,
    pub(crate) next_sample: Option<Instant>,
    pub(crate) finishing: bool,
    pub(crate) suspended: bool,
    pub(crate) reported: Option<&'static str>,
    pub(crate) seen: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Boot,
    Heartbeat,
    Authorize {
        evse: Option<u32>,
        auth: Auth,
    },
    Outbox(u64),
    DataTransfer,
    Plain,
    /// Our SignCertificate ([`crate::certificates`]).
    #[cfg_attr(not(feature = "certificates"), allow(dead_code))]
    Sign,
    /// (2.1) Our OpenPeriodicEventStream for this stream ([`streams`]).
    StreamOpen(i32),
}

#[derive(Debug, Clone)]
struct CacheEntry {
    accepted: bool,
    expiry: Option<DateTime<Utc>>,
    group: Option<String>,
}

/// The sans-IO charging station (see the [module docs](self)).
pub struct Station {
    pub(crate) cfg: StationConfig,
    pub(crate) ep: Option<Endpoint>,
    pub(crate) hw: Box<dyn Hardware>,
    /// Writes for the driver, in order ([`Station::poll_persist`]).
    persist: VecDeque<Persist>,
    /// The state document changed since it was last handed out.
    state_dirty: bool,
    pub(crate) rng: Rng,
    pub(crate) boot: BootState,
    boot_retry_at: Option<Instant>,
    boot_reason: &'static str,
    next_heartbeat: Option<Instant>,
    next_aligned: Option<Instant>,
    pub(crate) evses: Vec<Evse>,
    pub(crate) station_inoperative: bool,
    station_reported: Option<&'static str>,
    cache: HashMap<String, CacheEntry>,
    /// The local authorization list ([`local_list`]).
    local_list: local_list::LocalListDoc,
    /// Reservations ([`reservations`]) and the next expiry's deadline.
    reservations: reservations::ReservationDoc,
    next_expiry: Option<Instant>,
    /// The firmware update ([`firmware`]) and its next deadline.
    pub(crate) firmware: firmware::FirmwareDoc,
    pub(crate) firmware_next: Option<Instant>,
    /// The log upload ([`logs`]) and its next deadline.
    pub(crate) logs: logs::LogDoc,
    pub(crate) log_next: Option<Instant>,
    /// Display messages ([`display`]).
    pub(crate) display: display::DisplayState,
    /// Tariffs ([`tariffs`]).
    #[cfg(feature = "v21")]
    pub(crate) tariffs: tariffs::TariffBox,
    pub(crate) settings: Settings,
    outbox: Outbox,
    next_local_tx: u64,
    tx_ids: BTreeMap<u64, i32>,
    rng_mix: u64,
    pub(crate) pending: HashMap<String, Pending>,
    deferred: Vec<(Option<u32>, Auth)>,
    pub(crate) events: VecDeque<StationEvent>,
    pub(crate) reset_pending: Option<ResetKind>,
    pub(crate) data_transfer: Option<DataTransferHandler>,
    pub(crate) app: Option<Box<dyn Application>>,
    /// The connection must be opened again (new Basic-auth password).
    pub(crate) reconnect: bool,
    /// Charging profiles and applied limits ([`crate::smart_charging`]).
    pub(crate) smart: crate::smart_charging::SmartState,
    /// Variable monitors ([`monitoring`]).
    pub(crate) monitoring: monitoring::Monitoring,
    /// (2.1) DER controls ([`der`]).
    pub(crate) der: der::DerDoc,
    /// The certificate store ([`crate::certificates`]).
    #[cfg(feature = "certificates")]
    pub(crate) certs: Box<dyn crate::certificates::CertificateStore>,
    /// Changes with the client certificate.
    #[cfg(feature = "certificates")]
    pub(crate) client_generation: u64,
}

impl fmt::Debug for Station {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Station")
            .field("identity", &self.cfg.identity)
            .field("version", &self.cfg.version)
            .field("connected", &self.ep.is_some())
            .field("boot", &self.boot)
            .field("outbox", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

impl Station {
    /// A station from `config`, its `hardware` and what its store held ([`Saved::load`], or
    /// [`Saved::default`] for a first start). Queued messages and ongoing transactions are
    /// restored (a restart resumes where the last process stopped). The station starts
    /// disconnected: call [`Station::on_connected`] once the WebSocket is open. Its first
    /// [`Station::poll_persist`] saves the state document.
    pub fn new(
        mut config: StationConfig,
        hardware: Box<dyn Hardware>,
        saved: Saved,
        now: Instant,
    ) -> Station {
        let Saved {
            messages,
            state: persisted,
        } = saved;
        let outbox: VecDeque<StoredMessage> = messages.into();
        let next_seq = persisted
            .next_seq
            .max(outbox.back().map_or(0, |m| m.seq + 1))
            .max(1);
        let mut settings = Settings::new(config.version, config.evses);
        for (setting, value) in &config.settings {
            settings.set_internal(*setting, value);
        }
        settings.restore(persisted.settings);
        crate::smart_charging::fill_settings(&mut settings, &config.smart, config.evses);
        local_list::fill_settings(
            &mut settings,
            config.local_list_max,
            config.send_local_list_max,
        );
        display::fill_settings(&mut settings, config.display_config());
        #[cfg(feature = "v21")]
        if config.version == Version::V21 {
            tariffs::fill_settings(&mut settings, config.tariff_config());
        }
        let entries = persisted.local_list.entries.len().to_string();
        settings.set_fixed("LocalAuthListCtrlr", "Entries", None, &entries);
        let evses = (1..=config.evses)
            .map(|id| Evse {
                id,
                plugged: false,
                faulted: false,
                inoperative: persisted.inoperative.contains(&id),
                pending_inoperative: None,
                auth: None,
                auth_deadline: None,
                tx: None,
                next_sample: None,
                finishing: false,
                suspended: false,
                reported: None,
                seen: None,
            })
            .collect();
        let rng_mix = persisted.rng_mix.wrapping_add(1);
        let app = config.app.take();
        #[cfg(feature = "certificates")]
        let certs = config
            .certs
            .take()
            .unwrap_or_else(|| Box::new(crate::certificates::MemoryCertificateStore::new()));
        let mut station = Station {
            rng: Rng::new(config.seed ^ rng_mix.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            station_inoperative: persisted.inoperative.contains(&0),
            station_reported: None,
            cfg: config,
            ep: None,
            hw: hardware,
            persist: VecDeque::new(),
            state_dirty: false,
            boot: BootState::NotSent,
            boot_retry_at: None,
            boot_reason: "PowerUp",
            next_heartbeat: None,
            next_aligned: None,
            evses,
            cache: HashMap::new(),
            local_list: persisted.local_list,
            reservations: persisted.reservations,
            next_expiry: None,
            firmware: persisted.firmware,
            firmware_next: None,
            logs: persisted.logs,
            log_next: None,
            display: display::DisplayState::new(persisted.display),
            #[cfg(feature = "v21")]
            tariffs: persisted.tariffs.into(),
            settings,
            outbox: Outbox::new(outbox, next_seq),
            next_local_tx: persisted.next_local_tx.max(1),
            tx_ids: persisted.tx_ids,
            rng_mix,
            pending: HashMap::new(),
            deferred: Vec::new(),
            events: VecDeque::new(),
            reset_pending: None,
            data_transfer: None,
            app,
            reconnect: false,
            smart: crate::smart_charging::SmartState::new(persisted.smart),
            monitoring: monitoring::Monitoring::new(persisted.monitoring),
            der: persisted.der,
            #[cfg(feature = "certificates")]
            certs,
            #[cfg(feature = "certificates")]
            client_generation: 0,
        };
        station.raise_security_event(now, SecurityEvent::StartupOfTheDevice, None);
        for tx in persisted.txs {
            let interval = station.settings.duration(Setting::SampleInterval);
            if let Some(e) = station.evse_mut(tx.evse) {
                e.plugged = true;
                e.auth = Some(Auth {
                    token: tx.token.clone(),
                    token_type: tx.token_type.clone(),
                    remote_start_id: tx.remote_start_id,
                    remote: false,
                    group: None,
                    reservation: None,
                });
                e.next_sample = (!interval.is_zero()).then(|| deadline(now, interval));
                let evse = e.id;
                e.tx = Some(tx);
                station.hw.set_contactor(now, evse, true);
            }
        }
        station.resume_transfers();
        station.schedule_aligned(now);
        station.save();
        station.refresh_status();
        station.smart_step(now);
        station
    }

    // ----- accessors -----

    /// The OCPP version.
    pub fn version(&self) -> Version {
        self.cfg.version
    }

    /// The identity.
    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &StationConfig {
        &self.cfg
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.ep.is_some()
    }

    /// The boot state.
    pub fn boot_state(&self) -> BootState {
        self.boot
    }

    /// The current status of an EVSE / connector (0 = the station, 1.6), in the version's words.
    pub fn status(&self, evse: u32) -> Option<&'static str> {
        if evse == 0 {
            return Some(self.station_status());
        }
        self.evses
            .get((evse as usize).wrapping_sub(1))
            .map(|e| self.status_of(e))
    }

    /// The ongoing transaction on an EVSE.
    pub fn transaction(&self, evse: u32) -> Option<TransactionInfo> {
        let tx = self
            .evses
            .get((evse as usize).wrapping_sub(1))?
            .tx
            .as_ref()?;
        Some(TransactionInfo {
            local_id: tx.local,
            transaction_id: self.tx_id_of(tx),
            id_token: tx.token.clone(),
            meter_start_wh: tx.meter_start.parse().unwrap_or_default(),
        })
    }

    /// How many transaction messages wait in the outbox (including one in flight).
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The configuration values / device model.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The Basic-auth password the central system set over OCPP (1.6 `AuthorizationKey`
    /// hex-decoded, 2.x `SecurityCtrlr.BasicAuthPassword`), persisted with the settings; the
    /// driver connects with it instead of its configured one. `None`: never set.
    pub fn basic_auth_password(&self) -> Option<Vec<u8>> {
        self.settings.basic_auth_password()
    }

    /// Whether the driver must close the connection and open it again, now that what
    /// [`Station::poll_transmit`] gave is sent: the central system set a new Basic-auth
    /// password (2.x use case A01 and the 1.6 security whitepaper: the station reconnects
    /// with the new password). Asking clears it. Call after draining
    /// [`Station::poll_transmit`]; reconnect at once (no backoff) with
    /// [`Station::basic_auth_password`].
    pub fn poll_reconnect(&mut self) -> bool {
        std::mem::take(&mut self.reconnect)
    }

    /// The hardware.
    pub fn hardware_mut(&mut self) -> &mut dyn Hardware {
        &mut *self.hw
    }

    /// Answers the central system's DataTransfer with `handler` (default: `UnknownVendorId`).
    pub fn set_data_transfer_handler(&mut self, handler: DataTransferHandler) {
        self.data_transfer = Some(handler);
    }

    // ----- inputs -----

    /// The WebSocket connection is open: a fresh RPC endpoint is created and the station
    /// boots (or, already accepted, resumes heartbeats, status and the outbox).
    pub fn on_connected(&mut self, now: Instant) {
        let seed = self.rng.next_u64();
        let config = EndpointConfig::new(self.cfg.version)
            .call_timeout(self.cfg.call_timeout)
            .id_generator(RandomIds::new(seed));
        self.ep = Some(Endpoint::new(config));
        self.pending.clear();
        self.outbox.reset_delivery();
        if self.boot != BootState::Accepted || self.cfg.boot_on_reconnect {
            self.boot = BootState::NotSent;
            self.send_boot(now);
        } else {
            self.schedule_heartbeat(now);
        }
        self.step(now);
    }

    /// The connection was lost or closed. Calls in flight are forgotten; queued transaction
    /// messages stay in the outbox and go out again after the next connection.
    pub fn on_disconnected(&mut self, now: Instant) {
        self.ep = None;
        // Authorizations waiting for an answer fall back to the offline rules.
        let mut pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        pending.extend(
            self.deferred
                .drain(..)
                .map(|(evse, auth)| Pending::Authorize { evse, auth }),
        );
        for p in pending {
            if let Pending::Authorize { evse, auth } = p {
                self.authorize_offline(now, evse, auth);
            }
        }
        self.outbox.reset_delivery();
        self.outbox.attempts = 0;
        if matches!(self.boot, BootState::Waiting) {
            self.boot = BootState::NotSent;
        }
        self.boot_retry_at = None;
        self.next_heartbeat = None;
        self.step(now);
    }

    /// A text message from the central system.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        if let Some(ep) = self.ep.as_mut() {
            ep.handle_text(now, text);
        }
        self.step(now);
    }

    /// A physical input (cable, ID token, fault).
    pub fn handle_hardware(&mut self, now: Instant, event: HardwareEvent) {
        self.apply_hardware(now, event);
        self.step(now);
    }

    /// Shorthand for [`HardwareEvent::IdTokenPresented`].
    pub fn present_id_token(&mut self, now: Instant, evse: Option<u32>, id_token: &str) {
        self.handle_hardware(
            now,
            HardwareEvent::IdTokenPresented {
                evse,
                id_token: id_token.to_owned(),
            },
        );
    }

    /// Sends a DataTransfer to the central system (answer: [`StationEvent::DataTransferResult`]).
    pub fn data_transfer(
        &mut self,
        now: Instant,
        vendor_id: &str,
        message_id: Option<&str>,
        data: Option<Value>,
    ) -> bool {
        let mut p = json!({ "vendorId": vendor_id });
        if let Some(m) = message_id {
            p["messageId"] = json!(m);
        }
        if let Some(d) = data {
            p["data"] = if self.v16() {
                Value::String(match d {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
            } else {
                d
            };
        }
        let sent = self.accepted() && self.call(now, "DataTransfer", &p, Pending::DataTransfer);
        self.step(now);
        sent
    }

    /// Time has passed: fires every deadline up to `now` (call timeouts, boot retry,
    /// heartbeat, meter samples, clock-aligned readings, authorization timeouts, outbox
    /// retries). Calling it early or often is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(ep) = self.ep.as_mut() {
            ep.handle_timeout(now);
        }
        self.process_rpc_events(now);
        if self.boot_retry_at.is_some_and(|t| t <= now) && self.ep.is_some() {
            self.boot_retry_at = None;
            self.send_boot(now);
        }
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.next_heartbeat = None;
            if self.accepted() {
                self.heartbeat(now);
            }
            self.schedule_heartbeat(now);
        }
        for i in 0..self.evses.len() {
            if self.evses[i].next_sample.is_some_and(|t| t <= now) {
                self.sample(now, i);
            }
            if self.evses[i].auth_deadline.is_some_and(|t| t <= now) {
                let e = &mut self.evses[i];
                e.auth_deadline = None;
                if e.tx.is_none() && !e.plugged {
                    e.auth = None;
                }
            }
        }
        if self.next_aligned.is_some_and(|t| t <= now) {
            self.aligned(now);
            self.schedule_aligned(now);
        }
        self.step(now);
    }

    /// The next text message to send, in order; call after every input until `None`.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.ep.as_mut()?.poll_transmit()
    }

    /// The next event for the application; call after every input until `None`.
    pub fn poll_event(&mut self) -> Option<StationEvent> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            // Drained: an idle station keeps no event buffer (a few hundred bytes each
            // across thousands of simulated stations).
            self.events = VecDeque::new();
        }
        event
    }

    /// The next write to make durable, in order; call after every input until `None`.
    ///
    /// Perform each ([`Persist::apply`]) in the order given, where blocking is allowed (not
    /// on an async runtime's worker thread: `fsync` may take long), then report it with
    /// [`Station::handle_persisted`]. Writes may be batched and reported later; an outbox
    /// message is not transmitted until its [`Persist::Append`] is reported.
    pub fn poll_persist(&mut self) -> Option<Persist> {
        if let Some(work) = self.persist.pop_front() {
            return Some(work);
        }
        if !self.state_dirty {
            return None;
        }
        self.state_dirty = false;
        Some(Persist::State(self.state_document()))
    }

    /// Whether writes wait to be polled with [`Station::poll_persist`].
    pub fn wants_persist(&self) -> bool {
        self.state_dirty || !self.persist.is_empty()
    }

    /// A write from [`Station::poll_persist`] was performed with `result`. A failure is
    /// reported as [`StationEvent::StoreFailed`]; a message whose append failed is sent all
    /// the same (it then lives in memory only).
    pub fn handle_persisted(
        &mut self,
        now: Instant,
        work: &Persist,
        result: Result<(), StoreError>,
    ) {
        self.persisted(work, result);
        self.step(now);
    }

    /// Performs every pending write on `store` at once, in order, and reports them
    /// ([`Station::poll_persist`] and [`Station::handle_persisted`] in one call). For drivers
    /// that may block (tests, a synchronous main loop, a dedicated thread); an async driver
    /// moves the writes off its runtime instead.
    pub fn persist_to(&mut self, now: Instant, store: &mut dyn Store) {
        if !self.wants_persist() {
            return;
        }
        // The step after the writes may give up a message (one more removal): loop until
        // quiet.
        while self.wants_persist() {
            while let Some(work) = self.poll_persist() {
                let result = work.apply(store);
                self.persisted(&work, result);
            }
            self.step(now);
        }
    }

    fn persisted(&mut self, work: &Persist, result: Result<(), StoreError>) {
        if let Err(e) = result {
            self.events
                .push_back(StationEvent::StoreFailed(e.to_string()));
        }
        if let Persist::Append(message) = work {
            self.outbox.persisted(message.seq);
        }
    }

    /// When [`Station::handle_timeout`] must be called next (`None`: only inputs can change
    /// anything). Re-read after every input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if let Some(ep) = &self.ep {
            add(ep.poll_timeout());
            add(self.boot_retry_at);
            add(self.next_heartbeat);
            if self.boot == BootState::Accepted
                && self.outbox.inflight.is_none()
                && !self.outbox.is_empty()
            {
                add(self.outbox.retry_at);
            }
        }
        for e in &self.evses {
            add(e.next_sample);
            add(e.auth_deadline);
        }
        add(self.next_aligned);
        add(self.smart.next_check);
        add(self.next_expiry);
        add(self.firmware_next);
        add(self.log_next);
        add(self.monitoring.next_due());
        add(self.display.next);
        t
    }
}
