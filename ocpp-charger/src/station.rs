//! The sans-IO charging station.
//!
//! A [`Station`] is a plain state machine (quinn-proto style) over an
//! [`ocpp_codec::rpc::Endpoint`]: text from the central system, physical inputs and the current
//! time go in ([`Station::handle_text`], [`Station::handle_hardware`],
//! [`Station::handle_timeout`], [`Station::on_connected`], [`Station::on_disconnected`]); text to
//! send ([`Station::poll_transmit`]), events for the application ([`Station::poll_event`]) and
//! the next deadline ([`Station::poll_timeout`]) come out. It never reads a clock and does no
//! I/O besides its [`Store`] and [`Hardware`].
//!
//! After **every** `handle_*` / `on_*` call the driver must drain [`Station::poll_transmit`]
//! (sending each text in order), drain [`Station::poll_event`], and re-arm its one timer at
//! [`Station::poll_timeout`].

use std::collections::{BTreeMap, HashMap, VecDeque};
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
use crate::hardware::{Hardware, HardwareEvent, MeterReading, ResetKind};
use crate::settings::{Setting, Settings};
use crate::store::{Store, StoreError, StoredMessage};
use crate::time::{deadline, next_aligned, seconds, AnchoredClock, Rng, TimeSource, MAX_TIMER};

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

/// How a station is set up. Build with [`StationConfig::new`] and the setters.
pub struct StationConfig {
    pub(crate) identity: String,
    pub(crate) version: Version,
    pub(crate) vendor: String,
    pub(crate) model: String,
    pub(crate) serial_number: Option<String>,
    pub(crate) firmware_version: Option<String>,
    pub(crate) evses: u32,
    pub(crate) call_timeout: Duration,
    pub(crate) boot_retry: Duration,
    pub(crate) time: Arc<dyn TimeSource>,
    pub(crate) seed: u64,
    pub(crate) boot_on_reconnect: bool,
    pub(crate) auth_cache_size: usize,
    pub(crate) validate_outgoing: bool,
    pub(crate) settings: Vec<(Setting, String)>,
    pub(crate) app: Option<Box<dyn Application>>,
}

impl fmt::Debug for StationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StationConfig")
            .field("identity", &self.identity)
            .field("version", &self.version)
            .field("evses", &self.evses)
            .finish_non_exhaustive()
    }
}

impl StationConfig {
    /// A station called `identity` speaking `version`, with one EVSE (one connector each),
    /// vendor `"ocpp-rs"`, model `"ocpp-charger"`, a 30 s call timeout, a 30 s boot retry
    /// when the central system gives no interval, the real clock ([`AnchoredClock::system`])
    /// and seed 0.
    pub fn new(identity: impl Into<String>, version: Version) -> StationConfig {
        StationConfig {
            identity: identity.into(),
            version,
            vendor: "ocpp-rs".into(),
            model: "ocpp-charger".into(),
            serial_number: None,
            firmware_version: None,
            evses: 1,
            call_timeout: Duration::from_secs(30),
            boot_retry: Duration::from_secs(30),
            time: Arc::new(AnchoredClock::system()),
            seed: 0,
            boot_on_reconnect: false,
            auth_cache_size: 64,
            validate_outgoing: false,
            settings: Vec::new(),
            app: None,
        }
    }

    /// The application that answers the central system's calls, by functional block (see
    /// [`crate::app`]); default [`BuiltIn`](crate::app::BuiltIn), the station's own
    /// behaviour.
    pub fn application(mut self, app: impl Application + 'static) -> Self {
        self.app = Some(Box::new(app));
        self
    }

    /// Sets the factory value of a setting (1.6 configuration key / 2.x variable), e.g. a
    /// short `SampleInterval` for a demo. Values the central system changed later and that
    /// were persisted in the store take precedence after a restart.
    pub fn setting(mut self, setting: Setting, value: impl Into<String>) -> Self {
        self.settings.push((setting, value.into()));
        self
    }

    /// The identity (last URL path segment, Basic-auth user).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The OCPP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Vendor and model sent in BootNotification (1.6: at most 20 characters each).
    pub fn vendor_model(mut self, vendor: impl Into<String>, model: impl Into<String>) -> Self {
        self.vendor = vendor.into();
        self.model = model.into();
        self
    }

    /// Serial number sent in BootNotification.
    pub fn serial_number(mut self, serial: impl Into<String>) -> Self {
        self.serial_number = Some(serial.into());
        self
    }

    /// Firmware version sent in BootNotification.
    pub fn firmware_version(mut self, version: impl Into<String>) -> Self {
        self.firmware_version = Some(version.into());
        self
    }

    /// Number of EVSEs (2.x, one connector each) or connectors (1.6), at least 1.
    pub fn evses(mut self, n: u32) -> Self {
        self.evses = n.max(1);
        self
    }

    /// How long a CALL waits for its answer.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Boot retry delay when the answer carries no positive interval, errs or times out; used
    /// within [`MIN_BOOT_RETRY`]`..=`[`MAX_BOOT_RETRY`] (a delay of 0 still waits 10 s).
    pub fn boot_retry(mut self, delay: Duration) -> Self {
        self.boot_retry = delay;
        self
    }

    /// Where wall-clock timestamps come from.
    pub fn time_source(mut self, time: Arc<dyn TimeSource>) -> Self {
        self.time = time;
        self
    }

    /// Seed of the random generator (message ids, 2.x transaction ids, jitter).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Send BootNotification again on every new connection, not only after a (re)boot.
    /// Off by default: the specifications ask for it at start-up only.
    pub fn boot_on_reconnect(mut self, yes: bool) -> Self {
        self.boot_on_reconnect = yes;
        self
    }

    /// Entries kept in the authorization cache.
    pub fn auth_cache_size(mut self, n: usize) -> Self {
        self.auth_cache_size = n;
        self
    }

    /// Check every outgoing payload against its schema (typed decoding); a failure is
    /// reported as [`StationEvent::InvalidOutgoing`] (a response is then replaced by a
    /// CALLERROR `InternalError`). Meant for tests.
    pub fn validate_outgoing(mut self, yes: bool) -> Self {
        self.validate_outgoing = yes;
        self
    }
}

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
    /// The store failed (message or state not persisted).
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
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    next_seq: u64,
    next_local_tx: u64,
    tx_ids: BTreeMap<u64, i32>,
    txs: Vec<TxState>,
    inoperative: Vec<u32>,
    settings: BTreeMap<u16, String>,
    rng_mix: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) token: String,
    pub(crate) token_type: String,
    pub(crate) remote_start_id: Option<i32>,
    pub(crate) remote: bool,
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
    Authorize { evse: Option<u32>, auth: Auth },
    Outbox(u64),
    DataTransfer,
    Plain,
}

#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    accepted: bool,
    expiry: Option<DateTime<Utc>>,
}

/// The sans-IO charging station (see the [module docs](self)).
pub struct Station {
    pub(crate) cfg: StationConfig,
    pub(crate) ep: Option<Endpoint>,
    pub(crate) hw: Box<dyn Hardware>,
    store: Box<dyn Store>,
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
    pub(crate) settings: Settings,
    outbox: VecDeque<StoredMessage>,
    outbox_inflight: Option<u64>,
    outbox_attempts: u32,
    outbox_retry_at: Option<Instant>,
    next_seq: u64,
    next_local_tx: u64,
    tx_ids: BTreeMap<u64, i32>,
    rng_mix: u64,
    pub(crate) pending: HashMap<String, Pending>,
    deferred: Vec<(Option<u32>, Auth)>,
    pub(crate) events: VecDeque<StationEvent>,
    pub(crate) reset_pending: Option<ResetKind>,
    pub(crate) data_transfer: Option<DataTransferHandler>,
    pub(crate) app: Option<Box<dyn Application>>,
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

/// A JSON number carrying exactly the decimal `d`. Our readings have at most 15 significant
/// digits (3 decimals), which an `f64` holds exactly in the sense that its shortest printed
/// form is that decimal again.
pub(crate) fn number(d: Decimal) -> Value {
    let d = if d.scale() > 3 { d.round_dp(3) } else { d };
    if d.fract().is_zero() {
        if let Some(i) = d.to_i64() {
            return Value::from(i);
        }
    }
    let f = d.to_f64().unwrap_or(0.0);
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

impl Station {
    /// A station from `config`, its `hardware` and its `store`. Queued messages and ongoing
    /// transactions in the store are restored (a restart resumes where the last process
    /// stopped). The station starts disconnected: call [`Station::on_connected`] once the
    /// WebSocket is open.
    pub fn new(
        mut config: StationConfig,
        hardware: Box<dyn Hardware>,
        mut store: Box<dyn Store>,
        now: Instant,
    ) -> Result<Station, StoreError> {
        let persisted: Persisted = match store.load_state()? {
            Some(text) => {
                serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("state.json".into()))?
            }
            None => Persisted::default(),
        };
        let outbox: VecDeque<StoredMessage> = store.load_messages()?.into();
        let next_seq = persisted
            .next_seq
            .max(outbox.back().map_or(0, |m| m.seq + 1))
            .max(1);
        let mut settings = Settings::new(config.version, config.evses);
        for (setting, value) in &config.settings {
            settings.set_internal(*setting, value);
        }
        settings.restore(persisted.settings);
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
        let mut station = Station {
            rng: Rng::new(config.seed ^ rng_mix.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            station_inoperative: persisted.inoperative.contains(&0),
            station_reported: None,
            cfg: config,
            ep: None,
            hw: hardware,
            store,
            boot: BootState::NotSent,
            boot_retry_at: None,
            boot_reason: "PowerUp",
            next_heartbeat: None,
            next_aligned: None,
            evses,
            cache: HashMap::new(),
            settings,
            outbox,
            outbox_inflight: None,
            outbox_attempts: 0,
            outbox_retry_at: None,
            next_seq,
            next_local_tx: persisted.next_local_tx.max(1),
            tx_ids: persisted.tx_ids,
            rng_mix,
            pending: HashMap::new(),
            deferred: Vec::new(),
            events: VecDeque::new(),
            reset_pending: None,
            data_transfer: None,
            app,
        };
        for tx in persisted.txs {
            let interval = station.settings.duration(Setting::SampleInterval);
            if let Some(e) = station.evse_mut(tx.evse) {
                e.plugged = true;
                e.auth = Some(Auth {
                    token: tx.token.clone(),
                    token_type: tx.token_type.clone(),
                    remote_start_id: tx.remote_start_id,
                    remote: false,
                });
                e.next_sample = (!interval.is_zero()).then(|| deadline(now, interval));
                let evse = e.id;
                e.tx = Some(tx);
                station.hw.set_contactor(now, evse, true);
            }
        }
        station.schedule_aligned(now);
        station.save();
        station.refresh_status();
        Ok(station)
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
        self.outbox_inflight = None;
        self.outbox_retry_at = None;
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
        self.outbox_inflight = None;
        self.outbox_attempts = 0;
        self.outbox_retry_at = None;
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
        self.events.pop_front()
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
                && self.outbox_inflight.is_none()
                && !self.outbox.is_empty()
            {
                add(self.outbox_retry_at);
            }
        }
        for e in &self.evses {
            add(e.next_sample);
            add(e.auth_deadline);
        }
        add(self.next_aligned);
        t
    }

    // ----- internals: the step after every input -----

    pub(crate) fn v16(&self) -> bool {
        self.cfg.version == Version::V16
    }

    pub(crate) fn accepted(&self) -> bool {
        self.ep.is_some() && self.boot == BootState::Accepted
    }

    pub(crate) fn wall(&self, now: Instant) -> String {
        self.cfg
            .time
            .wall(now)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub(crate) fn evse_mut(&mut self, id: u32) -> Option<&mut Evse> {
        self.evses.get_mut((id as usize).wrapping_sub(1))
    }

    fn step(&mut self, now: Instant) {
        while let Some(ev) = self.hw.poll_event(now) {
            self.apply_hardware(now, ev);
        }
        self.process_rpc_events(now);
        if let Some(kind) = self.reset_pending {
            let busy = self.evses.iter().any(|e| e.tx.is_some());
            if !busy {
                self.reset_pending = None;
                self.do_reboot(now, kind);
            }
        }
        self.refresh_status();
        // Transaction messages first: a StatusNotification describing the new state follows
        // the Start/Stop message that caused it (as in the specifications' sequence diagrams).
        self.pump_outbox(now);
        self.flush_status(now);
        self.process_rpc_events(now);
    }

    fn process_rpc_events(&mut self, now: Instant) {
        loop {
            let Some(ev) = self.ep.as_mut().and_then(Endpoint::poll_event) else {
                return;
            };
            match ev {
                RpcEvent::Call {
                    id,
                    action,
                    payload,
                } => self.on_call(now, &id, &action, &payload),
                RpcEvent::Result {
                    id,
                    action,
                    payload,
                } => {
                    // Typed decoding, as ocpp-codec names its errors. OCPP 2.1 part 2 FR.06:
                    // a CALLRESULT that cannot be processed is answered with a
                    // CALLRESULTERROR (1.6 and 2.0.1 have no answer to it).
                    let codec = TypedCodec::new(self.cfg.version)
                        .side(Side::ChargingStation)
                        .validate_outgoing(false);
                    let valid = match codec.decode_result(&id, &action, &payload) {
                        Ok(_) => true,
                        Err(reply) => {
                            if self.cfg.version == Version::V21 {
                                let details = RawValue::from_string(reply.details).ok();
                                if let Some(ep) = self.ep.as_mut() {
                                    let _ = ep.result_error(
                                        &id,
                                        &reply.code,
                                        &reply.description,
                                        details.as_deref(),
                                    );
                                }
                            }
                            false
                        }
                    };
                    if let Some(p) = self.pending.remove(&id) {
                        if valid {
                            let value: Value =
                                serde_json::from_str(payload.get()).unwrap_or_default();
                            self.on_result(now, p, &value);
                        } else {
                            self.on_failure(now, p, "invalid response");
                        }
                    }
                }
                RpcEvent::Error { id, code, .. } => {
                    if let Some(p) = self.pending.remove(&id) {
                        let code = code.as_str(self.cfg.version).to_owned();
                        self.on_failure(now, p, &code);
                    }
                }
                RpcEvent::Timeout { id, .. } => {
                    if let Some(p) = self.pending.remove(&id) {
                        self.on_failure(now, p, "Timeout");
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether `n` more calls fit in the queue ([`MAX_QUEUED_CALLS`]); `false` when not
    /// connected.
    pub(crate) fn room_for(&self, n: usize) -> bool {
        self.ep
            .as_ref()
            .is_some_and(|ep| ep.queued_calls().saturating_add(n) <= MAX_QUEUED_CALLS)
    }

    /// Whether a call of this kind waits for its answer (in flight or queued).
    pub(crate) fn is_pending(&self, f: impl Fn(&Pending) -> bool) -> bool {
        self.pending.values().any(f)
    }

    /// Queues a Heartbeat unless one is already waiting for its answer (a heartbeat timer or
    /// a TriggerMessage never piles up heartbeats behind a silent central system).
    pub(crate) fn heartbeat(&mut self, now: Instant) {
        if !self.is_pending(|p| matches!(p, Pending::Heartbeat)) {
            self.call(now, "Heartbeat", &json!({}), Pending::Heartbeat);
        }
    }

    /// Queues a CALL; `false` when not connected, or when the queue already holds
    /// [`MAX_QUEUED_CALLS`] (BootNotification excepted: at most one is ever pending).
    pub(crate) fn call(&mut self, now: Instant, action: &str, payload: &Value, p: Pending) -> bool {
        if !matches!(p, Pending::Boot) && !self.room_for(1) {
            return false;
        }
        let text = payload.to_string();
        self.check_outgoing(action, ocpp_types::MessageKind::Request, &text);
        let Some(ep) = self.ep.as_mut() else {
            return false;
        };
        let Ok(raw) = serde_json::value::RawValue::from_string(text) else {
            return false;
        };
        match ep.call(now, action, raw) {
            Ok(id) => {
                self.pending.insert(id, p);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn check_outgoing(
        &mut self,
        action: &str,
        kind: ocpp_types::MessageKind,
        text: &str,
    ) -> bool {
        if !self.cfg.validate_outgoing {
            return true;
        }
        // The typed codec, as for incoming messages, names what is wrong.
        let codec = TypedCodec::new(self.cfg.version).validate_outgoing(false);
        let checked = match RawValue::from_string(text.to_owned()) {
            Ok(raw) if kind == ocpp_types::MessageKind::Response => {
                codec.decode_result("outgoing", action, &raw).map(|_| ())
            }
            Ok(raw) => codec.decode_call("outgoing", action, &raw).map(|_| ()),
            Err(e) => {
                self.events.push_back(StationEvent::InvalidOutgoing {
                    action: action.to_owned(),
                    error: format!("not JSON: {e}"),
                });
                return false;
            }
        };
        match checked {
            Ok(()) => true,
            Err(e) => {
                let e = format!("{} {}", e.code.as_str(self.cfg.version), e.description);
                self.events.push_back(StationEvent::InvalidOutgoing {
                    action: action.to_owned(),
                    error: format!("{e}: {text}"),
                });
                false
            }
        }
    }

    fn save(&mut self) {
        let p = Persisted {
            next_seq: self.next_seq,
            next_local_tx: self.next_local_tx,
            tx_ids: self.tx_ids.clone(),
            txs: self.evses.iter().filter_map(|e| e.tx.clone()).collect(),
            inoperative: std::iter::once(0)
                .filter(|_| self.station_inoperative)
                .chain(self.evses.iter().filter(|e| e.inoperative).map(|e| e.id))
                .collect(),
            settings: self.settings.changed().clone(),
            rng_mix: self.rng_mix,
        };
        let text = serde_json::to_string(&p).unwrap_or_default();
        if let Err(e) = self.store.save_state(&text) {
            self.events
                .push_back(StationEvent::StoreFailed(e.to_string()));
        }
    }

    pub(crate) fn save_settings(&mut self) {
        self.save();
    }

    // ----- boot and heartbeat -----

    /// Sends a BootNotification, unless one is already waiting for its answer (then that
    /// answer decides).
    pub(crate) fn send_boot(&mut self, now: Instant) {
        if self.is_pending(|p| matches!(p, Pending::Boot)) {
            if self.boot != BootState::Accepted {
                self.boot = BootState::Waiting;
            }
            return;
        }
        let p = if self.v16() {
            let mut p = json!({
                "chargePointVendor": self.cfg.vendor,
                "chargePointModel": self.cfg.model,
            });
            if let Some(s) = &self.cfg.serial_number {
                p["chargePointSerialNumber"] = json!(s);
            }
            if let Some(s) = &self.cfg.firmware_version {
                p["firmwareVersion"] = json!(s);
            }
            p
        } else {
            let mut cs = json!({ "model": self.cfg.model, "vendorName": self.cfg.vendor });
            if let Some(s) = &self.cfg.serial_number {
                cs["serialNumber"] = json!(s);
            }
            if let Some(s) = &self.cfg.firmware_version {
                cs["firmwareVersion"] = json!(s);
            }
            json!({ "reason": self.boot_reason, "chargingStation": cs })
        };
        if self.call(now, "BootNotification", &p, Pending::Boot) && self.boot != BootState::Accepted
        {
            self.boot = BootState::Waiting;
        }
    }

    /// Arms the heartbeat timer at `HeartbeatInterval` (always within
    /// `1..=`[`MAX_INTERVAL_SECS`](crate::settings::MAX_INTERVAL_SECS), see
    /// [`Settings::duration`]: heartbeats cannot be turned off from the wire).
    fn schedule_heartbeat(&mut self, now: Instant) {
        let every = self.settings.duration(Setting::HeartbeatInterval);
        self.next_heartbeat = (!every.is_zero()).then(|| deadline(now, every));
    }

    /// The wait before the next BootNotification the station chooses itself:
    /// [`StationConfig::boot_retry`] within [`MIN_BOOT_RETRY`]`..=`[`MAX_BOOT_RETRY`].
    fn boot_retry(&self) -> Duration {
        self.cfg.boot_retry.clamp(MIN_BOOT_RETRY, MAX_BOOT_RETRY)
    }

    /// BootNotification.conf. `interval` (a 32-bit integer, checked by the typed decoding):
    ///
    /// - Accepted, `interval > 0`: the new HeartbeatInterval, clamped to at most
    ///   [`MAX_INTERVAL_SECS`](crate::settings::MAX_INTERVAL_SECS) (a day).
    /// - Accepted, `interval <= 0`: the current HeartbeatInterval stays (300 s unless changed).
    ///   OCPP 1.6 §4.2 says a central system that returns 0 leaves the interval to the charge
    ///   point; heartbeats are never turned off by it.
    /// - Pending/Rejected, `interval > 0`: retry after `interval` seconds ("the minimum wait
    ///   time before sending a next BootNotification request"), at most [`MAX_BOOT_RETRY`].
    /// - Pending/Rejected, `interval <= 0`: retry after the station's own choice
    ///   ([`Station::boot_retry`], at least [`MIN_BOOT_RETRY`]).
    fn on_boot_answer(&mut self, now: Instant, v: &Value) {
        let status = text(v, "status").unwrap_or_default();
        let interval = int(v, "interval").filter(|i| *i > 0);
        if let Some(t) = text(v, "currentTime").and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
            self.events.push_back(StationEvent::CentralTime(t));
        }
        if status == "Accepted" {
            self.boot = BootState::Accepted;
            self.boot_reason = "PowerUp";
            if let Some(secs) = interval {
                let secs = secs.min(i64::from(crate::settings::MAX_INTERVAL_SECS));
                self.settings
                    .set_internal(Setting::HeartbeatInterval, &secs.to_string());
                self.save();
            }
            self.schedule_heartbeat(now);
            for e in &mut self.evses {
                e.reported = None;
            }
            self.station_reported = None;
            self.events.push_back(StationEvent::BootAccepted {
                interval: self.settings.duration(Setting::HeartbeatInterval),
            });
            self.outbox_retry_at = None;
            self.outbox_attempts = 0;
        } else {
            self.boot = if status == "Pending" {
                BootState::Pending
            } else {
                BootState::Rejected
            };
            let retry = match interval {
                Some(secs) => seconds(secs).min(MAX_BOOT_RETRY),
                None => self.boot_retry(),
            };
            self.boot_retry_at = Some(deadline(now, retry));
            self.events.push_back(StationEvent::BootNotAccepted {
                status,
                retry_in: retry,
            });
        }
    }

    fn on_result(&mut self, now: Instant, p: Pending, v: &Value) {
        match p {
            Pending::Boot => {
                self.on_boot_answer(now, v);
                self.run_deferred(now);
            }
            Pending::Heartbeat => {
                if let Some(t) = text(v, "currentTime").and_then(|t| t.parse().ok()) {
                    self.events.push_back(StationEvent::CentralTime(t));
                }
            }
            Pending::Authorize { evse, auth } => {
                let info = v.get(if self.v16() {
                    "idTagInfo"
                } else {
                    "idTokenInfo"
                });
                let info = info.cloned().unwrap_or_default();
                let accepted = self.update_cache(&auth.token, &info);
                self.events.push_back(StationEvent::Authorization {
                    id_token: auth.token.clone(),
                    accepted,
                });
                if accepted {
                    self.grant(now, evse, auth);
                }
            }
            Pending::Outbox(seq) => self.on_outbox_confirmed(now, seq, v),
            Pending::DataTransfer => self.events.push_back(StationEvent::DataTransferResult {
                status: text(v, "status").unwrap_or_default(),
                data: v.get("data").cloned(),
            }),
            Pending::Plain => {}
        }
    }

    fn on_failure(&mut self, now: Instant, p: Pending, why: &str) {
        match p {
            Pending::Boot => {
                if self.boot != BootState::Accepted {
                    let retry = self.boot_retry();
                    self.boot = BootState::Pending;
                    self.boot_retry_at = Some(deadline(now, retry));
                    self.events.push_back(StationEvent::BootNotAccepted {
                        status: "Error".into(),
                        retry_in: retry,
                    });
                }
                self.run_deferred(now);
            }
            Pending::Authorize { evse, auth } => self.authorize_offline(now, evse, auth),
            Pending::Outbox(seq) => self.on_outbox_failed(now, seq),
            Pending::DataTransfer => self.events.push_back(StationEvent::DataTransferResult {
                status: why.to_owned(),
                data: None,
            }),
            Pending::Heartbeat | Pending::Plain => {}
        }
    }

    // ----- status -----

    fn station_status(&self) -> &'static str {
        if self.station_inoperative {
            "Unavailable"
        } else {
            "Available"
        }
    }

    pub(crate) fn status_of(&self, e: &Evse) -> &'static str {
        let unavailable = e.inoperative || self.station_inoperative;
        if self.v16() {
            if e.faulted {
                "Faulted"
            } else if e.tx.is_some() {
                if e.plugged && !e.suspended {
                    "Charging"
                } else {
                    "SuspendedEV"
                }
            } else if unavailable {
                "Unavailable"
            } else if e.finishing && e.plugged {
                "Finishing"
            } else if e.plugged || e.auth.is_some() {
                "Preparing"
            } else {
                "Available"
            }
        } else if e.faulted {
            "Faulted"
        } else if e.tx.is_some() || e.plugged {
            "Occupied"
        } else if unavailable {
            "Unavailable"
        } else {
            "Available"
        }
    }

    fn refresh_status(&mut self) {
        for i in 0..self.evses.len() {
            let s = self.status_of(&self.evses[i]);
            if self.evses[i].seen != Some(s) {
                self.evses[i].seen = Some(s);
                self.events.push_back(StationEvent::StatusChanged {
                    evse: self.evses[i].id,
                    status: s,
                });
            }
        }
    }

    /// Sends the latest status of every connector whose reported status differs (while
    /// offline nothing is sent, so only the latest status per connector goes out later).
    fn flush_status(&mut self, now: Instant) {
        if !self.accepted() {
            return;
        }
        let station = self.station_status();
        // A status that finds the queue full ([`MAX_QUEUED_CALLS`]) stays unreported and goes
        // out with a later step.
        if self.v16() && self.station_reported != Some(station) {
            let p = self.status_payload(now, 0, station);
            if self.call(now, "StatusNotification", &p, Pending::Plain) {
                self.station_reported = Some(station);
            }
        }
        for i in 0..self.evses.len() {
            let s = self.status_of(&self.evses[i]);
            if self.evses[i].reported != Some(s) {
                let p = self.status_payload(now, self.evses[i].id, s);
                if self.call(now, "StatusNotification", &p, Pending::Plain) {
                    self.evses[i].reported = Some(s);
                }
            }
        }
    }

    pub(crate) fn status_payload(&self, now: Instant, evse: u32, status: &str) -> Value {
        if self.v16() {
            json!({
                "connectorId": evse,
                "errorCode": if status == "Faulted" { "OtherError" } else { "NoError" },
                "status": status,
                "timestamp": self.wall(now),
            })
        } else {
            json!({
                "timestamp": self.wall(now),
                "connectorStatus": status,
                "evseId": evse,
                "connectorId": 1,
            })
        }
    }

    /// Re-sends the status of `evse` (all when `None`), for TriggerMessage.
    pub(crate) fn send_status_now(&mut self, now: Instant, evse: Option<u32>) {
        let ids: Vec<u32> = match evse {
            Some(id) => vec![id],
            None if self.v16() => (0..=self.evses.len() as u32).collect(),
            None => (1..=self.evses.len() as u32).collect(),
        };
        for id in ids {
            let Some(s) = self.status(id) else { continue };
            let p = self.status_payload(now, id, s);
            if self.call(now, "StatusNotification", &p, Pending::Plain) {
                if let Some(e) = self.evse_mut(id) {
                    e.reported = Some(s);
                }
            }
        }
    }

    // ----- hardware -----

    fn apply_hardware(&mut self, now: Instant, event: HardwareEvent) {
        match event {
            HardwareEvent::CablePlugged { evse } => {
                let Some(e) = self.evse_mut(evse) else { return };
                e.plugged = true;
                e.finishing = false;
                e.auth_deadline = None;
                self.try_start(now, evse, false);
            }
            HardwareEvent::CableUnplugged { evse } => {
                let stop = self.settings.flag(Setting::StopOnEvDisconnect);
                let Some(e) = self.evse_mut(evse) else { return };
                e.plugged = false;
                e.finishing = false;
                if e.tx.is_some() {
                    if stop {
                        self.stop_tx(now, evse, Stop::EV_DISCONNECTED, None);
                    } else {
                        self.hw.set_contactor(now, evse, false);
                    }
                }
            }
            HardwareEvent::IdTokenPresented { evse, id_token } => {
                self.present(now, evse, id_token, "ISO14443".into(), None, false)
            }
            HardwareEvent::EvSuspended { evse, suspended } => {
                let Some(e) = self.evse_mut(evse) else { return };
                if e.suspended == suspended {
                    return;
                }
                e.suspended = suspended;
                if e.tx.is_some() && !self.v16() {
                    let measurands = self.settings.measurands(Setting::SampledMeasurands);
                    let reading = self.hw.meter(now, evse);
                    self.tx_meter_message(now, evse, &reading, &measurands, "Other");
                }
            }
            HardwareEvent::Fault { evse, faulted } => {
                let Some(e) = self.evse_mut(evse) else { return };
                e.faulted = faulted;
                if faulted && e.tx.is_some() {
                    self.stop_tx(now, evse, Stop::FAULT, None);
                }
            }
        }
    }

    // ----- authorization -----

    fn cache_lookup(&self, token: &str, now: Instant) -> Option<bool> {
        if !self.settings.flag(Setting::AuthCacheEnabled) {
            return None;
        }
        let e = self.cache.get(token)?;
        if e.expiry.is_some_and(|x| x <= self.cfg.time.wall(now)) {
            return Some(false);
        }
        Some(e.accepted)
    }

    /// Records an idTagInfo / idTokenInfo in the cache; returns whether it is Accepted.
    pub(crate) fn update_cache(&mut self, token: &str, info: &Value) -> bool {
        let accepted = text(info, "status").as_deref() == Some("Accepted");
        if self.settings.flag(Setting::AuthCacheEnabled) && self.cfg.auth_cache_size > 0 {
            let expiry = text(info, "expiryDate")
                .or_else(|| text(info, "cacheExpiryDateTime"))
                .and_then(|t| t.parse().ok());
            if self.cache.len() >= self.cfg.auth_cache_size && !self.cache.contains_key(token) {
                if let Some(k) = self.cache.keys().next().cloned() {
                    self.cache.remove(&k);
                }
            }
            self.cache
                .insert(token.to_owned(), CacheEntry { accepted, expiry });
        }
        accepted
    }

    pub(crate) fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Handles a presented token (or a remote start): stops the transaction it started, or
    /// authorizes it (online, from the cache, or by the offline rules).
    pub(crate) fn present(
        &mut self,
        now: Instant,
        evse: Option<u32>,
        token: String,
        token_type: String,
        remote_start_id: Option<i32>,
        remote: bool,
    ) {
        if !remote {
            let owner = self
                .evses
                .iter()
                .find(|e| {
                    evse.is_none_or(|id| id == e.id)
                        && e.tx.as_ref().is_some_and(|t| t.token == token)
                })
                .map(|e| e.id);
            if let Some(id) = owner {
                self.stop_tx(now, id, Stop::LOCAL, Some(token));
                return;
            }
        }
        let auth = Auth {
            token,
            token_type,
            remote_start_id,
            remote,
        };
        let needs_online = !remote || self.settings.flag(Setting::AuthorizeRemoteStart);
        if !needs_online {
            self.grant(now, evse, auth);
            return;
        }
        if self.ep.is_some() && self.boot == BootState::Waiting {
            // The boot answer is on its way: decide once it is known.
            self.deferred.push((evse, auth));
            return;
        }
        if self.accepted() {
            if self.settings.flag(Setting::LocalPreAuthorize)
                && self.cache_lookup(&auth.token, now) == Some(true)
            {
                self.events.push_back(StationEvent::Authorization {
                    id_token: auth.token.clone(),
                    accepted: true,
                });
                self.grant(now, evse, auth);
                return;
            }
            let p = if self.v16() {
                json!({ "idTag": auth.token })
            } else {
                json!({ "idToken": { "idToken": auth.token, "type": auth.token_type } })
            };
            let pending = Pending::Authorize {
                evse,
                auth: auth.clone(),
            };
            if !self.call(now, "Authorize", &p, pending) {
                // The queue is full: decide as if offline.
                self.authorize_offline(now, evse, auth);
            }
        } else {
            self.authorize_offline(now, evse, auth);
        }
    }

    fn run_deferred(&mut self, now: Instant) {
        for (evse, auth) in std::mem::take(&mut self.deferred) {
            if self.accepted() {
                self.present(
                    now,
                    evse,
                    auth.token,
                    auth.token_type,
                    auth.remote_start_id,
                    auth.remote,
                );
            } else {
                self.authorize_offline(now, evse, auth);
            }
        }
    }

    fn authorize_offline(&mut self, now: Instant, evse: Option<u32>, auth: Auth) {
        let cached = self.cache_lookup(&auth.token, now);
        let accepted = match cached {
            Some(a) if self.settings.flag(Setting::LocalAuthorizeOffline) => a,
            Some(false) => false,
            _ => self.settings.flag(Setting::OfflineTxForUnknownId),
        };
        self.events.push_back(StationEvent::Authorization {
            id_token: auth.token.clone(),
            accepted,
        });
        if accepted {
            self.grant(now, evse, auth);
        }
    }

    /// The EVSE a new authorization goes to: the one given, else a plugged free one, else
    /// any free one.
    pub(crate) fn free_evse(&self, evse: Option<u32>) -> Option<u32> {
        let free =
            |e: &&Evse| e.tx.is_none() && !e.inoperative && !e.faulted && !self.station_inoperative;
        match evse {
            Some(id) => self
                .evses
                .iter()
                .find(|e| e.id == id)
                .filter(free)
                .map(|e| e.id),
            None => self
                .evses
                .iter()
                .filter(free)
                .find(|e| e.plugged && e.auth.is_none())
                .or_else(|| self.evses.iter().filter(free).find(|e| e.auth.is_none()))
                .map(|e| e.id),
        }
    }

    fn grant(&mut self, now: Instant, evse: Option<u32>, auth: Auth) {
        let Some(id) = self.free_evse(evse) else {
            return;
        };
        // ConnectionTimeOut is at least 1 s and at most a day (Settings::duration).
        let timeout = self.settings.duration(Setting::ConnectionTimeout);
        let Some(e) = self.evse_mut(id) else { return };
        e.auth = Some(auth);
        e.auth_deadline = (!e.plugged && !timeout.is_zero()).then(|| deadline(now, timeout));
        self.try_start(now, id, true);
    }

    // ----- transactions -----

    fn try_start(&mut self, now: Instant, evse: u32, by_auth: bool) {
        let ok = self.evse_mut(evse).is_some_and(|e| {
            e.plugged && e.auth.is_some() && e.tx.is_none() && !e.faulted && !e.inoperative
        }) && !self.station_inoperative;
        if !ok {
            return;
        }
        let reading = self.hw.meter(now, evse);
        self.hw.set_contactor(now, evse, true);
        let local = self.next_local_tx;
        self.next_local_tx += 1;
        let Some(auth) = self.evse_mut(evse).and_then(|e| e.auth.clone()) else {
            return;
        };
        let interval = self.settings.duration(Setting::SampleInterval);
        let mut tx = TxState {
            evse,
            local,
            id: None,
            token: auth.token.clone(),
            token_type: auth.token_type.clone(),
            meter_start: reading.energy_wh.to_string(),
            seq_no: 0,
            remote_start_id: auth.remote_start_id,
        };
        if self.v16() {
            let p = json!({
                "connectorId": evse,
                "idTag": auth.token,
                "meterStart": reading.energy_wh.floor().to_i64().unwrap_or(0),
                "timestamp": self.wall(now),
            });
            self.enqueue(now, "StartTransaction", &p, Some(local));
        } else {
            let id = self.rng.uuid();
            tx.id = Some(id.clone());
            let trigger = if auth.remote {
                "RemoteStart"
            } else if by_auth {
                "Authorized"
            } else {
                "CablePluggedIn"
            };
            let measurands = self.settings.measurands(Setting::TxEndedMeasurands);
            let mv = self.meter_value(now, &reading, &measurands, "Transaction.Begin");
            let mut info = json!({ "transactionId": id, "chargingState": "Charging" });
            if let Some(r) = auth.remote_start_id {
                info["remoteStartId"] = json!(r);
            }
            let p = json!({
                "eventType": "Started",
                "timestamp": self.wall(now),
                "triggerReason": trigger,
                "seqNo": 0,
                "offline": !self.accepted(),
                "transactionInfo": info,
                "evse": { "id": evse, "connectorId": 1 },
                "idToken": { "idToken": auth.token, "type": auth.token_type },
                "meterValue": [mv],
            });
            tx.seq_no = 1;
            self.enqueue(now, "TransactionEvent", &p, Some(local));
        }
        let transaction_id = tx.id.clone();
        if let Some(e) = self.evse_mut(evse) {
            e.tx = Some(tx);
            e.finishing = false;
            e.auth_deadline = None;
            e.next_sample = (!interval.is_zero()).then(|| deadline(now, interval));
        }
        self.save();
        self.events.push_back(StationEvent::TransactionStarted {
            evse,
            local_id: local,
            transaction_id,
        });
    }

    pub(crate) fn tx_id_of(&self, tx: &TxState) -> Option<String> {
        if self.v16() {
            self.tx_ids.get(&tx.local).map(i32::to_string)
        } else {
            tx.id.clone()
        }
    }

    /// Finds the EVSE whose transaction has this (central / 2.x) id.
    pub(crate) fn evse_of_tx(&self, id: &str) -> Option<u32> {
        self.evses
            .iter()
            .find(|e| {
                e.tx.as_ref()
                    .is_some_and(|t| self.tx_id_of(t).as_deref() == Some(id))
            })
            .map(|e| e.id)
    }

    /// Ends the transaction on `evse`.
    pub(crate) fn stop_tx(&mut self, now: Instant, evse: u32, why: Stop, token: Option<String>) {
        let Some(tx) = self.evse_mut(evse).and_then(|e| e.tx.take()) else {
            return;
        };
        let reading = self.hw.meter(now, evse);
        self.hw.set_contactor(now, evse, false);
        let measurands = self.settings.measurands(Setting::TxEndedMeasurands);
        let plugged = self.evse_mut(evse).is_some_and(|e| e.plugged);
        if self.v16() {
            let mut p = json!({
                "meterStop": reading.energy_wh.floor().to_i64().unwrap_or(0),
                "timestamp": self.wall(now),
                "transactionId": self.tx_ids.get(&tx.local).copied().unwrap_or(0),
                "reason": why.v16,
            });
            if let Some(t) = &token {
                p["idTag"] = json!(t);
            }
            if !measurands.is_empty() {
                p["transactionData"] =
                    json!([self.meter_value(now, &reading, &measurands, "Transaction.End")]);
            }
            self.enqueue(now, "StopTransaction", &p, Some(tx.local));
        } else {
            let mut measurands = measurands;
            if measurands.is_empty() {
                measurands.push("Energy.Active.Import.Register");
            }
            let mv = self.meter_value(now, &reading, &measurands, "Transaction.End");
            let mut p = json!({
                "eventType": "Ended",
                "timestamp": self.wall(now),
                "triggerReason": why.trigger,
                "seqNo": tx.seq_no,
                "offline": !self.accepted(),
                "transactionInfo": {
                    "transactionId": tx.id,
                    "chargingState": if plugged { "EVConnected" } else { "Idle" },
                    "stoppedReason": why.stopped,
                },
                "evse": { "id": evse, "connectorId": 1 },
                "meterValue": [mv],
            });
            if let Some(t) = &token {
                p["idToken"] = json!({ "idToken": t, "type": tx.token_type });
            }
            self.enqueue(now, "TransactionEvent", &p, Some(tx.local));
        }
        if let Some(e) = self.evse_mut(evse) {
            e.auth = None;
            e.auth_deadline = None;
            e.suspended = false;
            e.next_sample = None;
            e.finishing = plugged;
            if let Some(inop) = e.pending_inoperative.take() {
                e.inoperative = inop;
            }
        }
        self.save();
        self.events.push_back(StationEvent::TransactionEnded {
            evse,
            local_id: tx.local,
            reason: if self.v16() { why.v16 } else { why.stopped },
        });
    }

    /// A periodic sample of the transaction on `self.evses[i]`.
    fn sample(&mut self, now: Instant, i: usize) {
        let interval = self.settings.duration(Setting::SampleInterval);
        let evse = self.evses[i].id;
        self.evses[i].next_sample = (!interval.is_zero()).then(|| deadline(now, interval));
        if self.evses[i].tx.is_none() {
            return;
        }
        let measurands = self.settings.measurands(Setting::SampledMeasurands);
        let reading = self.hw.meter(now, evse);
        self.tx_meter_message(now, evse, &reading, &measurands, "Sample.Periodic");
    }

    /// MeterValues (1.6) / TransactionEvent Updated (2.x) for the transaction on `evse`.
    pub(crate) fn tx_meter_message(
        &mut self,
        now: Instant,
        evse: u32,
        reading: &MeterReading,
        measurands: &[&str],
        context: &str,
    ) {
        let mv = self.meter_value(now, reading, measurands, context);
        let Some(tx) = self.evse_mut(evse).and_then(|e| e.tx.clone()) else {
            return;
        };
        if self.v16() {
            let p = json!({
                "connectorId": evse,
                "transactionId": self.tx_ids.get(&tx.local).copied().unwrap_or(0),
                "meterValue": [mv],
            });
            self.enqueue(now, "MeterValues", &p, Some(tx.local));
        } else {
            let trigger = match context {
                "Sample.Clock" => "MeterValueClock",
                "Trigger" => "Trigger",
                "Other" => "ChargingStateChanged",
                _ => "MeterValuePeriodic",
            };
            let plugged = self.evse_mut(evse).is_some_and(|e| e.plugged);
            let suspended = self.evse_mut(evse).is_some_and(|e| e.suspended);
            let p = json!({
                "eventType": "Updated",
                "timestamp": self.wall(now),
                "triggerReason": trigger,
                "seqNo": tx.seq_no,
                "offline": !self.accepted(),
                "transactionInfo": {
                    "transactionId": tx.id,
                    "chargingState": match (plugged, suspended) {
                        (false, _) => "Idle",
                        (true, true) => "SuspendedEV",
                        (true, false) => "Charging",
                    },
                },
                "meterValue": [mv],
            });
            if let Some(t) = self.evse_mut(evse).and_then(|e| e.tx.as_mut()) {
                t.seq_no += 1;
            }
            self.enqueue(now, "TransactionEvent", &p, Some(tx.local));
            self.save();
        }
    }

    fn schedule_aligned(&mut self, now: Instant) {
        let every = self.settings.duration(Setting::AlignedInterval);
        self.next_aligned = (!every.is_zero()).then(|| {
            let wall = self.cfg.time.wall(now);
            let next = next_aligned(wall, every);
            let wait = (next - wall)
                .to_std()
                .unwrap_or(every)
                .max(Duration::from_millis(1));
            deadline(now, wait)
        });
    }

    pub(crate) fn reschedule(&mut self, now: Instant) {
        self.schedule_aligned(now);
        if self.accepted() {
            self.schedule_heartbeat(now);
        }
        let interval = self.settings.duration(Setting::SampleInterval);
        for e in &mut self.evses {
            e.next_sample =
                (e.tx.is_some() && !interval.is_zero()).then(|| deadline(now, interval));
        }
    }

    /// Clock-aligned readings of every EVSE.
    fn aligned(&mut self, now: Instant) {
        let measurands = self.settings.measurands(Setting::AlignedMeasurands);
        for i in 0..self.evses.len() {
            let evse = self.evses[i].id;
            let reading = self.hw.meter(now, evse);
            if self.evses[i].tx.is_some() {
                self.tx_meter_message(now, evse, &reading, &measurands, "Sample.Clock");
            } else if self.accepted() {
                // Not transaction-related: sent only while online (nothing to keep).
                self.plain_meter_values(now, evse, &reading, &measurands, "Sample.Clock");
            }
        }
    }

    /// A MeterValues outside the outbox (no transaction).
    pub(crate) fn plain_meter_values(
        &mut self,
        now: Instant,
        evse: u32,
        reading: &MeterReading,
        measurands: &[&str],
        context: &str,
    ) {
        let mv = self.meter_value(now, reading, measurands, context);
        let p = if self.v16() {
            json!({ "connectorId": evse, "meterValue": [mv] })
        } else {
            json!({ "evseId": evse, "meterValue": [mv] })
        };
        self.call(now, "MeterValues", &p, Pending::Plain);
    }

    /// One MeterValue with a sampled value per supported measurand.
    pub(crate) fn meter_value(
        &self,
        now: Instant,
        r: &MeterReading,
        measurands: &[&str],
        context: &str,
    ) -> Value {
        let mut values = Vec::new();
        let list: &[&str] = if measurands.is_empty() {
            &["Energy.Active.Import.Register"]
        } else {
            measurands
        };
        for m in list {
            let (value, unit, location) = match *m {
                "Energy.Active.Import.Register" => (r.energy_wh, "Wh", "Outlet"),
                "Power.Active.Import" => (r.power_w, "W", "Outlet"),
                "Current.Import" => (r.current_a, "A", "Outlet"),
                "Voltage" => (r.voltage_v, "V", "Outlet"),
                "SoC" => match r.soc_percent {
                    Some(s) => (s, "Percent", "EV"),
                    None => continue,
                },
                _ => continue,
            };
            values.push(if self.v16() {
                json!({
                    "value": value.to_string(),
                    "context": context,
                    "format": "Raw",
                    "measurand": m,
                    "location": location,
                    "unit": unit,
                })
            } else {
                json!({
                    "value": number(value),
                    "context": context,
                    "measurand": m,
                    "location": location,
                    "unitOfMeasure": { "unit": unit },
                })
            });
        }
        if values.is_empty() {
            return self.meter_value(now, r, &[], context);
        }
        json!({ "timestamp": self.wall(now), "sampledValue": values })
    }

    // ----- outbox -----

    fn enqueue(&mut self, _now: Instant, action: &str, payload: &Value, local_tx: Option<u64>) {
        let msg = StoredMessage {
            seq: self.next_seq,
            action: action.to_owned(),
            payload: payload.to_string(),
            local_tx,
        };
        self.next_seq += 1;
        if let Err(e) = self.store.append(&msg) {
            self.events
                .push_back(StationEvent::StoreFailed(e.to_string()));
        }
        self.outbox.push_back(msg);
    }

    fn pump_outbox(&mut self, now: Instant) {
        while self.accepted()
            && self.outbox_inflight.is_none()
            && self.outbox_retry_at.is_none_or(|t| t <= now)
        {
            let Some(head) = self.outbox.front().cloned() else {
                return;
            };
            let mut text = head.payload.clone();
            if self.v16() && head.action != "StartTransaction" {
                if let Some(local) = head.local_tx {
                    match self.tx_ids.get(&local) {
                        Some(id) => {
                            let mut v: Value = serde_json::from_str(&text).unwrap_or_default();
                            v["transactionId"] = json!(id);
                            text = v.to_string();
                        }
                        None => {
                            // Its StartTransaction was given up: there is no id to send.
                            self.drop_head(head.seq, &head.action);
                            continue;
                        }
                    }
                }
            }
            self.check_outgoing(&head.action, ocpp_types::MessageKind::Request, &text);
            let Ok(raw) = serde_json::value::RawValue::from_string(text) else {
                self.drop_head(head.seq, &head.action);
                continue;
            };
            let Some(ep) = self.ep.as_mut() else { return };
            match ep.call(now, &head.action, raw) {
                Ok(id) => {
                    self.pending.insert(id, Pending::Outbox(head.seq));
                    self.outbox_inflight = Some(head.seq);
                }
                Err(_) => return,
            }
        }
    }

    fn drop_head(&mut self, seq: u64, action: &str) {
        self.outbox.pop_front();
        if let Err(e) = self.store.remove(seq) {
            self.events
                .push_back(StationEvent::StoreFailed(e.to_string()));
        }
        self.events.push_back(StationEvent::Dropped {
            seq,
            action: action.to_owned(),
        });
        self.outbox_attempts = 0;
        self.outbox_retry_at = None;
    }

    fn on_outbox_confirmed(&mut self, now: Instant, seq: u64, v: &Value) {
        if self.outbox_inflight == Some(seq) {
            self.outbox_inflight = None;
        }
        let Some(pos) = self.outbox.iter().position(|m| m.seq == seq) else {
            return;
        };
        let Some(msg) = self.outbox.remove(pos) else {
            return;
        };
        if let Err(e) = self.store.remove(seq) {
            self.events
                .push_back(StationEvent::StoreFailed(e.to_string()));
        }
        self.outbox_attempts = 0;
        self.outbox_retry_at = None;
        match msg.action.as_str() {
            "StartTransaction" => {
                // A 32-bit integer (checked by the typed decoding of the answer).
                let id = int(v, "transactionId")
                    .and_then(|i| i32::try_from(i).ok())
                    .unwrap_or(0);
                let info = v.get("idTagInfo").cloned().unwrap_or_default();
                if let Some(local) = msg.local_tx {
                    self.tx_ids.insert(local, id);
                    self.events.push_back(StationEvent::TransactionIdAssigned {
                        local_id: local,
                        transaction_id: id,
                    });
                    let token = self
                        .evses
                        .iter()
                        .find_map(|e| e.tx.as_ref().filter(|t| t.local == local))
                        .map(|t| t.token.clone());
                    if let Some(token) = token {
                        let accepted = self.update_cache(&token, &info);
                        if !accepted && self.settings.flag(Setting::StopOnInvalidId) {
                            if let Some(evse) = self.evse_of_tx(&id.to_string()) {
                                self.stop_tx(now, evse, Stop::DEAUTHORIZED, None);
                            }
                        }
                    }
                    self.save();
                }
            }
            "StopTransaction" => {
                if let Some(local) = msg.local_tx {
                    // Later messages of this transaction (none normally) still need the id,
                    // so the mapping goes only when nothing refers to it any more.
                    if !self.outbox.iter().any(|m| m.local_tx == Some(local)) {
                        self.tx_ids.remove(&local);
                        self.save();
                    }
                }
            }
            "TransactionEvent" => {
                if let Some(info) = v.get("idTokenInfo") {
                    let evse = self
                        .evses
                        .iter()
                        .find(|e| e.tx.as_ref().is_some_and(|t| Some(t.local) == msg.local_tx))
                        .map(|e| (e.id, e.tx.as_ref().map(|t| t.token.clone())));
                    if let Some((evse, Some(token))) = evse {
                        let accepted = self.update_cache(&token, info);
                        if !accepted && self.settings.flag(Setting::StopOnInvalidId) {
                            self.stop_tx(now, evse, Stop::DEAUTHORIZED, None);
                        }
                    }
                }
            }
            _ => {}
        }
        self.events.push_back(StationEvent::Delivered {
            seq,
            action: msg.action,
        });
    }

    fn on_outbox_failed(&mut self, now: Instant, seq: u64) {
        if self.outbox_inflight == Some(seq) {
            self.outbox_inflight = None;
        }
        self.outbox_attempts = self.outbox_attempts.saturating_add(1);
        let max = u32::try_from(self.settings.int(Setting::MessageAttempts))
            .unwrap_or(u32::MAX)
            .max(1);
        if self.outbox_attempts >= max {
            let action = self
                .outbox
                .front()
                .filter(|m| m.seq == seq)
                .map(|m| m.action.clone());
            if let Some(action) = action {
                self.drop_head(seq, &action);
            }
        } else {
            // 1.6 TransactionMessageRetryInterval / 2.x E13: the interval times the attempts so
            // far, saturating, at least MIN_RETRY and at most MAX_TIMER (a day).
            let interval = self.settings.duration(Setting::MessageAttemptInterval);
            let wait = interval
                .saturating_mul(self.outbox_attempts)
                .clamp(MIN_RETRY, MAX_TIMER);
            self.outbox_retry_at = Some(deadline(now, wait));
        }
    }

    /// Whether queued messages of a transaction (2.x id) are still undelivered.
    pub(crate) fn has_queued(&self, local: Option<u64>) -> bool {
        match local {
            Some(l) => self.outbox.iter().any(|m| m.local_tx == Some(l)),
            None => !self.outbox.is_empty(),
        }
    }

    /// The local key of a 2.x transaction id, ongoing or still queued.
    pub(crate) fn local_of(&self, id: &str) -> Option<u64> {
        self.evses
            .iter()
            .filter_map(|e| e.tx.as_ref())
            .find(|t| t.id.as_deref() == Some(id))
            .map(|t| t.local)
            .or_else(|| {
                self.outbox.iter().find_map(|m| {
                    let v: Value = serde_json::from_str(&m.payload).ok()?;
                    (v.pointer("/transactionInfo/transactionId")?.as_str()? == id)
                        .then_some(m.local_tx)?
                })
            })
    }

    // ----- reset -----

    pub(crate) fn do_reboot(&mut self, now: Instant, kind: ResetKind) {
        let why = if kind == ResetKind::Hard {
            Stop::HARD_RESET
        } else {
            Stop::SOFT_RESET
        };
        let busy: Vec<u32> = self
            .evses
            .iter()
            .filter(|e| e.tx.is_some())
            .map(|e| e.id)
            .collect();
        for evse in busy {
            self.stop_tx(now, evse, why, None);
        }
        // A reboot forgets every authorization that did not become a transaction: a remote
        // start still waiting for its cable, a token waiting for its Authorize answer, one
        // waiting for the boot answer. The connector comes back Available (1.6 §5.14 / 2.x B11,
        // B12: after a reset the station starts from scratch), and a cable plugged in later
        // starts nothing nobody asked for.
        for e in &mut self.evses {
            if e.tx.is_none() {
                e.auth = None;
                e.auth_deadline = None;
                e.finishing = false;
            }
        }
        self.deferred.clear();
        for p in self.pending.values_mut() {
            if matches!(p, Pending::Authorize { .. }) {
                *p = Pending::Plain;
            }
        }
        self.hw.reboot(kind);
        self.events.push_back(StationEvent::Rebooting(kind));
        self.boot = BootState::NotSent;
        self.boot_reason = "RemoteReset";
        self.next_heartbeat = None;
        self.clear_cache_if_volatile();
        if self.ep.is_some() {
            self.send_boot(now);
        }
    }

    fn clear_cache_if_volatile(&mut self) {}
}

/// Why a transaction stops, in each version's words.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stop {
    pub(crate) v16: &'static str,
    pub(crate) trigger: &'static str,
    pub(crate) stopped: &'static str,
}

impl Stop {
    pub(crate) const LOCAL: Stop = Stop {
        v16: "Local",
        trigger: "StopAuthorized",
        stopped: "Local",
    };
    pub(crate) const REMOTE: Stop = Stop {
        v16: "Remote",
        trigger: "RemoteStop",
        stopped: "Remote",
    };
    pub(crate) const EV_DISCONNECTED: Stop = Stop {
        v16: "EVDisconnected",
        trigger: "EVCommunicationLost",
        stopped: "EVDisconnected",
    };
    pub(crate) const DEAUTHORIZED: Stop = Stop {
        v16: "DeAuthorized",
        trigger: "Deauthorized",
        stopped: "DeAuthorized",
    };
    pub(crate) const HARD_RESET: Stop = Stop {
        v16: "HardReset",
        trigger: "ResetCommand",
        stopped: "ImmediateReset",
    };
    pub(crate) const SOFT_RESET: Stop = Stop {
        v16: "SoftReset",
        trigger: "ResetCommand",
        stopped: "ImmediateReset",
    };
    pub(crate) const UNLOCK: Stop = Stop {
        v16: "UnlockCommand",
        trigger: "UnlockCommand",
        stopped: "Other",
    };
    pub(crate) const FAULT: Stop = Stop {
        v16: "Other",
        trigger: "AbnormalCondition",
        stopped: "Other",
    };
}
