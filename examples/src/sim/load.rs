//! The load generator of the benchmark (`charger-sim --load`).
//!
//! Each charger is an [`ocpp_codec::rpc::Endpoint`] (framing, message ids, answer matching,
//! call timeouts) on a WebSocket, in one tokio task; payloads are the generated `ocpp_types`
//! structs of its version. A charger connects (at [`LoadConfig::ramp`] per second), boots
//! (BootNotification until Accepted, then a StatusNotification per EVSE), and waits. When all
//! chargers are booted (or [`LoadConfig::warmup_timeout`] passed) the measurement window of
//! [`LoadConfig::duration`] opens:
//!
//! - [`LoadMode::Calls`]: every charger alternates Heartbeat and MeterValues (seven sampled
//!   values: energy register, active power, current L1, L2 and L3, voltage, state of charge;
//!   2.x with `evseId` and the `sampledValue` array) with exactly one call in flight, back to
//!   back;
//! - [`LoadMode::Idle`]: every charger sends a Heartbeat every interval (the first at a
//!   random offset), holding its connection otherwise idle;
//! - [`LoadMode::Transactions`]: what chargers that are charging send. Each charger starts a
//!   transaction on EVSE 1 before the window (1.6: StartTransaction with an idTag and
//!   meterStart, keeping the central system's transactionId; 2.x: TransactionEvent Started
//!   with a charger-made transactionId, seqNo 0, the idToken and the energy register), then
//!   alternates Heartbeat and the transaction's meter values (1.6: MeterValues with
//!   `transactionId`; 2.x: TransactionEvent Updated, trigger MeterValuePeriodic, seqNo 1, 2,
//!   ... and the seven sampled values), one call in flight, back to back;
//! - [`LoadMode::TransactionsOpen`]: the same chargers in a transaction, open loop: meter
//!   values every `meter_interval` and a Heartbeat every `heartbeat_interval` per charger,
//!   each at a random phase, so the calls arrive spread uniformly over time whatever the
//!   server's speed (a call due while the charger's previous one is unanswered waits for it,
//!   one call in flight per direction as OCPP-J requires);
//! - [`LoadMode::CallsOpen`]: the same open loop without a transaction (the meter values of
//!   [`LoadMode::Calls`]), so the two open modes at the same intervals are the same calls at
//!   the same rate, one in a transaction and one not.
//!
//! The energy register grows with the simulated power (about 11 kW, three phases of 16 A at
//! 230 V) over real time, so it increases as a charging car's would.
//!
//! Latency is measured per call from writing the CALL to reading its answer; only answers
//! read inside the window count, overall and per action. [`LoadReport`] gives calls/s,
//! percentiles and every error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ocpp_charger::Rng;
use ocpp_codec::rpc::{CounterIds, Endpoint, EndpointConfig, Event};
use ocpp_codec::{ErrorCode, Version};
use ocpp_types::{v16, v201, v21, BoundedString, DateTime, Decimal};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message;

use super::connect::{Target, Ws};
use super::histogram::{Histogram, LatencySummary};
use super::{identity, ramp_offset, validate_common, SimError, VersionMix};

/// What the chargers do in the measurement window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Heartbeat and MeterValues alternately, one call in flight per charger, back to back.
    Calls,
    /// A Heartbeat every `heartbeat_interval` per charger, otherwise idle connections.
    Idle {
        /// Time between heartbeats.
        heartbeat_interval: Duration,
    },
    /// In a transaction (started before the window): Heartbeat and the transaction's meter
    /// values alternately, one call in flight per charger, back to back.
    Transactions,
    /// In a transaction, open loop: meter values every `meter_interval` and a Heartbeat every
    /// `heartbeat_interval` per charger, each at a random phase.
    TransactionsOpen {
        /// Time between meter values (1.6 MeterValueSampleInterval, 2.x
        /// SampledDataCtrlr.TxUpdatedInterval).
        meter_interval: Duration,
        /// Time between heartbeats.
        heartbeat_interval: Duration,
    },
    /// The open loop of [`LoadMode::TransactionsOpen`] without a transaction: meter values
    /// (seven sampled values, no transaction) every `meter_interval` and a Heartbeat every
    /// `heartbeat_interval` per charger, each at a random phase. The same load as
    /// `TransactionsOpen` at the same intervals, for comparing what a transaction costs.
    CallsOpen {
        /// Time between meter values.
        meter_interval: Duration,
        /// Time between heartbeats.
        heartbeat_interval: Duration,
    },
}

impl LoadMode {
    /// The mode's name in reports and on charger-sim's command line: `calls`, `idle`, `tx`,
    /// `tx-open` or `calls-open`.
    pub fn name(&self) -> &'static str {
        match self {
            LoadMode::Calls => "calls",
            LoadMode::Idle { .. } => "idle",
            LoadMode::Transactions => "tx",
            LoadMode::TransactionsOpen { .. } => "tx-open",
            LoadMode::CallsOpen { .. } => "calls-open",
        }
    }

    /// Whether the chargers start a transaction before the window.
    fn in_transaction(&self) -> bool {
        matches!(
            self,
            LoadMode::Transactions | LoadMode::TransactionsOpen { .. }
        )
    }
}

/// How a load run is set up. Build with [`LoadConfig::new`] and change the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadConfig {
    /// Base URL, `ws://HOST:PORT/PATH`; each charger appends `/<its identity>`.
    pub url: String,
    /// How many chargers.
    pub count: usize,
    /// Index of the first charger (identities `prefix-<index>`).
    pub first_index: usize,
    /// Which versions they speak.
    pub versions: VersionMix,
    /// EVSEs per charger (a StatusNotification each at boot; MeterValues rotate over them).
    pub evses: u32,
    /// Identity prefix.
    pub prefix: String,
    /// Basic-auth password (security profile 1).
    pub password: Option<String>,
    /// Seed of the idle heartbeat offsets and the meter readings.
    pub seed: u64,
    /// New connections per second (0: all at once).
    pub ramp: f64,
    /// Local source addresses, used in turn.
    pub bind_ips: Vec<std::net::IpAddr>,
    /// Length of the measurement window.
    pub duration: Duration,
    /// What the chargers do.
    pub mode: LoadMode,
    /// How long a CALL waits for its answer (a timeout counts as an error).
    pub call_timeout: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// The window opens at the latest this long after the start, booted or not.
    pub warmup_timeout: Duration,
    /// When set, the window opens at this wall-clock time rather than as soon as the warm-up
    /// is over (never before: a late warm-up opens it late, see [`LoadReport::settle_s`]);
    /// in between, the load runs unmeasured. Generator processes given the same time measure
    /// the same window, after every one of them has started its chargers and transactions.
    pub window_at: Option<std::time::SystemTime>,
    /// Vendor in BootNotification (at most 20 characters).
    pub vendor: String,
    /// Model in BootNotification (at most 20 characters).
    pub model: String,
    /// The idTag (1.6) / idToken (2.x, type ISO14443) that starts the transactions of the
    /// transaction modes (at most 20 characters).
    pub id_tag: String,
    /// Put the latency histograms' buckets in the report ([`LoadReport::buckets`]), so the
    /// reports of several generator processes can be merged.
    pub buckets: bool,
    /// WebSocket compression the chargers offer (default: none, as before the extension
    /// existed, so load results stay comparable).
    pub compression: ocpp_codec::deflate::Compression,
}

impl LoadConfig {
    /// 100 mixed-version chargers `SIM-0001`... with 2 EVSEs against `url`, mode
    /// [`LoadMode::Calls`], a 10 s window, 1000 connections/s, 30 s call timeout, 120 s
    /// warm-up limit.
    pub fn new(url: impl Into<String>) -> LoadConfig {
        LoadConfig {
            url: url.into(),
            count: 100,
            first_index: 1,
            versions: VersionMix::mixed(),
            evses: 2,
            prefix: "SIM".into(),
            password: None,
            seed: 1,
            ramp: 1000.0,
            bind_ips: Vec::new(),
            duration: Duration::from_secs(10),
            mode: LoadMode::Calls,
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            warmup_timeout: Duration::from_secs(120),
            window_at: None,
            vendor: "ocpp-rs".into(),
            model: "charger-sim".into(),
            id_tag: "04E1A2B3C4D5E6".into(),
            buckets: false,
            compression: ocpp_codec::deflate::Compression::off(),
        }
    }
}

/// The outcome of a load run. [`LoadReport::to_json`] is one line for scripts; `Display` is
/// the human summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LoadReport {
    /// `"calls"`, `"idle"`, `"tx"`, `"tx-open"` or `"calls-open"` ([`LoadMode::name`]).
    pub mode: String,
    /// The version mix, e.g. `"mixed"` or `"1.6"`.
    pub versions: String,
    /// Chargers started.
    pub chargers: usize,
    /// Chargers connected when the window opened.
    pub connected: usize,
    /// Chargers booted when the window opened.
    pub booted: usize,
    /// Seconds from the start until the window opened.
    pub warmup_s: f64,
    /// Seconds the load ran unmeasured before the window opened (with
    /// [`LoadConfig::window_at`]; 0 when the warm-up ended after that time).
    pub settle_s: f64,
    /// Length of the window in seconds.
    pub duration_s: f64,
    /// Calls answered inside the window.
    pub calls: u64,
    /// `calls / duration_s`.
    pub calls_per_s: f64,
    /// Latency of the calls answered inside the window.
    pub latency: LatencySummary,
    /// The same per action (`Heartbeat`, `MeterValues`, `TransactionEvent`), for the
    /// actions sent inside the window.
    pub by_action: BTreeMap<String, LatencySummary>,
    /// Open loop: how late the generator wrote each call after the time it was due (queued
    /// behind the charger's previous call, or a busy generator); zeros in the other modes.
    pub send_lag: LatencySummary,
    /// Transactions started before the window (transaction modes).
    pub transactions: u64,
    /// With [`LoadConfig::buckets`]: the latency histograms of the window, overall (`all`)
    /// and per action, as their non-empty buckets (largest latency of the bucket in ns,
    /// count); log-linear buckets, 64 per power of two, the same in every process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<BTreeMap<String, Vec<(u64, u64)>>>,
    /// Sum of the error counts below.
    pub errors: u64,
    /// CALLERRORs received.
    pub call_errors: u64,
    /// Calls not answered within the call timeout.
    pub timeouts: u64,
    /// Connections lost before the end.
    pub disconnects: u64,
    /// Failed connection attempts.
    pub connect_failures: u64,
    /// BootNotifications answered with something else than Accepted.
    pub boot_rejections: u64,
}

impl LoadReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency;
        writeln!(
            f,
            "load ({}, {}): {} chargers, {} connected, {} booted after {:.1} s",
            self.mode, self.versions, self.chargers, self.connected, self.booted, self.warmup_s
        )?;
        writeln!(
            f,
            "  {} calls in {:.1} s = {:.0} calls/s",
            self.calls, self.duration_s, self.calls_per_s
        )?;
        writeln!(
            f,
            "  latency: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs (mean {:.0} µs)",
            l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.mean_us
        )?;
        for (action, l) in &self.by_action {
            writeln!(
                f,
                "  {action}: {} calls, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
                l.count, l.p50_us, l.p99_us, l.max_us
            )?;
        }
        if self.transactions > 0 {
            writeln!(
                f,
                "  transactions started before the window: {}",
                self.transactions
            )?;
        }
        if self.send_lag.count > 0 {
            let g = &self.send_lag;
            writeln!(
                f,
                "  send lag (open loop): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
                g.p50_us, g.p99_us, g.max_us
            )?;
        }
        write!(
            f,
            "  errors: {} (call errors {}, timeouts {}, disconnects {}, connect failures {}, boot rejections {})",
            self.errors,
            self.call_errors,
            self.timeouts,
            self.disconnects,
            self.connect_failures,
            self.boot_rejections
        )
    }
}

/// Where a running load test stands (see [`LoadRun::progress`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LoadProgress {
    /// `"warmup"`, `"measure"` or `"stop"`.
    pub phase: &'static str,
    /// Chargers started.
    pub chargers: usize,
    /// Chargers connected now.
    pub connected: u64,
    /// Chargers booted so far.
    pub booted: u64,
    /// Calls answered so far (warm-up included).
    pub calls: u64,
    /// Errors so far.
    pub errors: u64,
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;
/// Warmed up, the load running, the window not open yet (see [`LoadConfig::window_at`]).
const SETTLE: u8 = 3;

#[derive(Debug)]
struct Shared {
    config: LoadConfig,
    target: Target,
    phase: AtomicU8,
    phase_changed: Notify,
    stop_requested: AtomicBool,
    stop_notify: Notify,
    booted_notify: Notify,
    connected: AtomicU64,
    booted: AtomicU64,
    answered: AtomicU64,
    window_calls: AtomicU64,
    histogram: Histogram,
    /// Per [`ACTIONS`].
    by_action: [Histogram; 3],
    send_lag: Histogram,
    transactions: AtomicU64,
    call_errors: AtomicU64,
    timeouts: AtomicU64,
    disconnects: AtomicU64,
    connect_failures: AtomicU64,
    boot_rejections: AtomicU64,
}

impl Shared {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Whether the chargers send their load (settling or measuring).
    fn loading(&self) -> bool {
        matches!(self.phase(), SETTLE | MEASURE)
    }

    fn set_phase(&self, p: u8) {
        self.phase.store(p, Ordering::Release);
        self.phase_changed.notify_waiters();
    }

    /// Waits until the phase is at least `p`.
    async fn reach(&self, p: u8) {
        loop {
            let changed = self.phase_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.phase() >= p {
                return;
            }
            changed.await;
        }
    }

    fn errors(&self) -> u64 {
        [
            &self.call_errors,
            &self.timeouts,
            &self.disconnects,
            &self.connect_failures,
            &self.boot_rejections,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// A running load test.
#[derive(Debug)]
pub struct LoadRun {
    shared: Arc<Shared>,
    coordinator: JoinHandle<LoadReport>,
}

/// Runs a whole load test and returns its report.
pub async fn run(config: LoadConfig) -> Result<LoadReport, SimError> {
    LoadRun::start(config).await?.finish().await
}

impl LoadRun {
    /// Starts the chargers and the coordinator on the current tokio runtime.
    pub async fn start(config: LoadConfig) -> Result<LoadRun, SimError> {
        validate_common(
            &config.prefix,
            config.count,
            config.evses,
            config.ramp,
            config.password.as_deref(),
        )?;
        if config.vendor.chars().count() > 20 || config.model.chars().count() > 20 {
            return Err(SimError::InvalidConfig(
                "vendor and model may have at most 20 characters".into(),
            ));
        }
        let intervals = match config.mode {
            LoadMode::Idle { heartbeat_interval } => vec![heartbeat_interval],
            LoadMode::TransactionsOpen {
                meter_interval,
                heartbeat_interval,
            }
            | LoadMode::CallsOpen {
                meter_interval,
                heartbeat_interval,
            } => vec![meter_interval, heartbeat_interval],
            LoadMode::Calls | LoadMode::Transactions => Vec::new(),
        };
        if intervals.iter().any(|i| i.is_zero()) {
            return Err(SimError::InvalidConfig(
                "the heartbeat and meter intervals must be above 0".into(),
            ));
        }
        if config.mode.in_transaction() && BoundedString::<20>::new(&config.id_tag).is_err() {
            return Err(SimError::InvalidConfig(
                "the id tag may have at most 20 characters".into(),
            ));
        }
        tokio::runtime::Handle::try_current().map_err(|_| SimError::NoRuntime)?;
        let target = Target::resolve(
            &config.url,
            config.password.clone(),
            config.bind_ips.clone(),
            config.connect_timeout,
            false,
        )
        .await?
        .with_compression(config.compression);
        let shared = Arc::new(Shared {
            config,
            target,
            phase: AtomicU8::new(WARMUP),
            phase_changed: Notify::new(),
            stop_requested: AtomicBool::new(false),
            stop_notify: Notify::new(),
            booted_notify: Notify::new(),
            connected: AtomicU64::new(0),
            booted: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            window_calls: AtomicU64::new(0),
            histogram: Histogram::new(),
            by_action: [Histogram::new(), Histogram::new(), Histogram::new()],
            send_lag: Histogram::new(),
            transactions: AtomicU64::new(0),
            call_errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            boot_rejections: AtomicU64::new(0),
        });
        let coordinator = tokio::spawn(coordinate(shared.clone()));
        Ok(LoadRun {
            shared,
            coordinator,
        })
    }

    /// The counters now.
    pub fn progress(&self) -> LoadProgress {
        let s = &self.shared;
        LoadProgress {
            phase: match s.phase() {
                WARMUP => "warmup",
                SETTLE => "settle",
                MEASURE => "measure",
                _ => "stop",
            },
            chargers: s.config.count,
            connected: s.connected.load(Ordering::Relaxed),
            booted: s.booted.load(Ordering::Relaxed),
            calls: s.answered.load(Ordering::Relaxed),
            errors: s.errors(),
        }
    }

    /// Ends the warm-up or the window now (e.g. on Ctrl-C); [`LoadRun::finish`] then reports.
    pub fn stop(&self) {
        self.shared.stop_requested.store(true, Ordering::Release);
        self.shared.stop_notify.notify_waiters();
    }

    /// Waits for the end of the run and returns the report.
    pub async fn finish(self) -> Result<LoadReport, SimError> {
        self.coordinator
            .await
            .map_err(|e| SimError::Task(format!("the load coordinator failed: {e}")))
    }
}

/// Waits until `deadline` or a stop request; `true` if stopped.
async fn wait_or_stop(shared: &Shared, deadline: TokioInstant, until_booted: bool) -> bool {
    loop {
        let stop = shared.stop_notify.notified();
        let booted = shared.booted_notify.notified();
        tokio::pin!(stop, booted);
        stop.as_mut().enable();
        booted.as_mut().enable();
        if shared.stop_requested.load(Ordering::Acquire) {
            return true;
        }
        if until_booted && shared.booted.load(Ordering::Relaxed) >= shared.config.count as u64 {
            return false;
        }
        tokio::select! {
            _ = &mut stop => {}
            _ = &mut booted, if until_booted => {}
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

async fn coordinate(shared: Arc<Shared>) -> LoadReport {
    let start = TokioInstant::now();
    let config = &shared.config;
    let tasks: Vec<JoinHandle<()>> = (0..config.count)
        .map(|i| {
            tokio::spawn(load_charger(
                shared.clone(),
                i,
                start + ramp_offset(config.ramp, i),
            ))
        })
        .collect();
    let mut stopped = wait_or_stop(&shared, start + config.warmup_timeout, true).await;
    let connected = shared.connected.load(Ordering::Relaxed) as usize;
    let booted = shared.booted.load(Ordering::Relaxed) as usize;
    let warm = TokioInstant::now();
    if let (false, Some(at)) = (stopped, config.window_at) {
        if let Ok(wait) = at.duration_since(std::time::SystemTime::now()) {
            shared.set_phase(SETTLE);
            stopped = wait_or_stop(&shared, warm + wait, false).await;
        }
    }
    let window_start = TokioInstant::now();
    shared.set_phase(MEASURE);
    if !stopped {
        wait_or_stop(&shared, window_start + config.duration, false).await;
    }
    shared.set_phase(STOP);
    let window = window_start.elapsed();
    let calls = shared.window_calls.load(Ordering::Relaxed);
    let latency = shared.histogram.summary();
    let by_action = ACTIONS
        .iter()
        .zip(&shared.by_action)
        .map(|(name, h)| (name.to_string(), h.summary()))
        .filter(|(_, l)| l.count > 0)
        .collect();
    let send_lag = shared.send_lag.summary();
    let buckets = config.buckets.then(|| {
        std::iter::once(("all".to_string(), shared.histogram.buckets()))
            .chain(
                ACTIONS
                    .iter()
                    .zip(&shared.by_action)
                    .map(|(name, h)| (name.to_string(), h.buckets()))
                    .filter(|(_, b)| !b.is_empty()),
            )
            .collect()
    });
    let deadline = TokioInstant::now() + Duration::from_secs(10).max(config.call_timeout);
    for mut t in tasks {
        if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
            t.abort();
        }
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let secs = window.as_secs_f64();
    LoadReport {
        mode: config.mode.name().into(),
        versions: config.versions.to_string(),
        chargers: config.count,
        connected,
        booted,
        warmup_s: round3((window_start - start).as_secs_f64()),
        settle_s: round3((window_start - warm).as_secs_f64()),
        duration_s: round3(secs),
        calls,
        calls_per_s: if secs > 0.0 {
            (calls as f64 / secs).round()
        } else {
            0.0
        },
        latency,
        by_action,
        send_lag,
        transactions: get(&shared.transactions),
        buckets,
        errors: shared.errors(),
        call_errors: get(&shared.call_errors),
        timeouts: get(&shared.timeouts),
        disconnects: get(&shared.disconnects),
        connect_failures: get(&shared.connect_failures),
        boot_rejections: get(&shared.boot_rejections),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Why a call did not get its CALLRESULT.
#[derive(Debug)]
enum Fail {
    /// CALLERROR.
    CallError,
    /// No answer in time.
    Timeout,
    /// The connection closed or failed.
    Closed,
    /// The payload could not be built or queued (a bug).
    Build,
    /// The run is over.
    Stopped,
}

/// What a load charger sends.
#[derive(Debug, Clone, Copy)]
enum Msg {
    Boot,
    Status(u32),
    Heartbeat,
    /// MeterValues without a transaction, of that EVSE.
    Meter(u32),
    /// 1.6 StartTransaction / 2.x TransactionEvent Started, on EVSE 1.
    StartTx,
    /// The running transaction's meter values: 1.6 MeterValues with `transactionId`, 2.x
    /// TransactionEvent Updated.
    TxMeter,
}

/// The actions whose latency the report gives separately, in the order of
/// `Shared::by_action`.
const ACTIONS: [&str; 3] = ["Heartbeat", "MeterValues", "TransactionEvent"];

impl Msg {
    /// The index in [`ACTIONS`] of what `self` is in `version`; `None` for the boot-time
    /// messages, which are not sent in the window.
    fn action(self, version: Version) -> Option<usize> {
        match self {
            Msg::Heartbeat => Some(0),
            Msg::Meter(_) => Some(1),
            Msg::TxMeter if version == Version::V16 => Some(1),
            Msg::TxMeter => Some(2),
            Msg::Boot | Msg::Status(_) | Msg::StartTx => None,
        }
    }
}

/// The transaction of a load charger.
#[derive(Debug, Default)]
struct Tx {
    /// 1.6: the id the central system gave in StartTransaction.conf.
    id16: i32,
    /// 2.x: the charger-made id (a random UUID).
    id2x: String,
    /// 2.x: the seqNo of the last TransactionEvent.
    seq_no: i32,
}

impl Tx {
    /// Sets the seqNo of the TransactionEvent `msg` is (0 for the start, one more than the
    /// last otherwise, without gaps); `true` for the start.
    fn next_seq_no(&mut self, msg: Msg) -> bool {
        let started = matches!(msg, Msg::StartTx);
        self.seq_no = if started { 0 } else { self.seq_no + 1 };
        started
    }
}

/// The meter of a load charger: energy grows with the power between readings.
#[derive(Debug)]
struct Meter {
    rng: Rng,
    /// Energy at the start, Wh.
    base_wh: u64,
    /// Energy since, in W·µs.
    energy_wus: u64,
    soc: u64,
    last: Instant,
    /// The energy register at the last reading, Wh.
    wh: u64,
}

/// Seven sampled values, as (measurand, phase, value, unit).
type Readings = [(Measurand, Option<Phase>, Decimal, &'static str); 7];

#[derive(Debug, Clone, Copy)]
enum Measurand {
    Energy,
    Power,
    Current,
    Voltage,
    SoC,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    L1,
    L2,
    L3,
}

impl Meter {
    /// The energy register now, in Wh.
    fn register_wh(&mut self) -> u64 {
        self.read();
        self.wh
    }

    fn read(&mut self) -> Readings {
        let now = Instant::now();
        let amps_x10 = 158 + self.rng.next_u64() % 5; // 15.8 .. 16.2 A
        let volts_x10 = 2290 + self.rng.next_u64() % 21; // 229.0 .. 231.0 V
        let power_w = 3 * amps_x10 * volts_x10 / 100;
        let us = (now - self.last).as_micros() as u64;
        self.last = now;
        self.energy_wus = self.energy_wus.saturating_add(power_w.saturating_mul(us));
        let energy_wh = self.base_wh + self.energy_wus / 3_600_000_000;
        self.wh = energy_wh;
        if self.rng.next_u64().is_multiple_of(50) {
            self.soc = if self.soc >= 100 { 20 } else { self.soc + 1 };
        }
        let amps = |a: u64| Decimal::new(a as i64, 1);
        [
            (Measurand::Energy, None, Decimal::from(energy_wh), "Wh"),
            (Measurand::Power, None, Decimal::from(power_w), "W"),
            (Measurand::Current, Some(Phase::L1), amps(amps_x10), "A"),
            (Measurand::Current, Some(Phase::L2), amps(amps_x10 + 1), "A"),
            (
                Measurand::Current,
                Some(Phase::L3),
                amps(amps_x10.saturating_sub(1)),
                "A",
            ),
            (
                Measurand::Voltage,
                Some(Phase::L1),
                Decimal::new(volts_x10 as i64, 1),
                "V",
            ),
            (Measurand::SoC, None, Decimal::from(self.soc), "Percent"),
        ]
    }
}

fn bounded<const N: usize>(s: &str) -> Result<BoundedString<N>, Fail> {
    BoundedString::new(s).map_err(|_| Fail::Build)
}

fn v16_meter(evse: u32, readings: Readings, at: DateTime) -> v16::MeterValuesRequest {
    let values = readings
        .into_iter()
        .map(|(m, phase, value, unit)| {
            let mut sv = v16::SampledValue::new(value.to_string());
            sv.context = Some(v16::ReadingContext::SamplePeriodic);
            sv.measurand = Some(match m {
                Measurand::Energy => v16::Measurand::EnergyActiveImportRegister,
                Measurand::Power => v16::Measurand::PowerActiveImport,
                Measurand::Current => v16::Measurand::CurrentImport,
                Measurand::Voltage => v16::Measurand::Voltage,
                Measurand::SoC => v16::Measurand::SoC,
            });
            sv.phase = phase.map(|p| match p {
                Phase::L1 => v16::Phase::L1,
                Phase::L2 => v16::Phase::L2,
                Phase::L3 => v16::Phase::L3,
            });
            sv.unit = Some(match unit {
                "Wh" => v16::UnitOfMeasure::Wh,
                "W" => v16::UnitOfMeasure::W,
                "A" => v16::UnitOfMeasure::A,
                "V" => v16::UnitOfMeasure::V,
                _ => v16::UnitOfMeasure::Percent,
            });
            if matches!(m, Measurand::SoC) {
                sv.location = Some(v16::Location::Ev);
            }
            sv
        })
        .collect();
    v16::MeterValuesRequest::new(evse as i32, vec![v16::MeterValue::new(at, values)])
}

/// The 2.0.1 and 2.1 sampled values of `readings` (a [`Readings`] or a part of it), alike
/// but for the module.
macro_rules! v2x_sampled {
    ($m:ident, $readings:expr, $context:ident) => {{
        use ocpp_types::$m as t;
        $readings
            .into_iter()
            .map(|(m, phase, value, unit)| {
                let mut sv = t::SampledValueType::new(value);
                sv.context = Some(t::ReadingContextEnumType::$context);
                sv.measurand = Some(match m {
                    Measurand::Energy => t::MeasurandEnumType::EnergyActiveImportRegister,
                    Measurand::Power => t::MeasurandEnumType::PowerActiveImport,
                    Measurand::Current => t::MeasurandEnumType::CurrentImport,
                    Measurand::Voltage => t::MeasurandEnumType::Voltage,
                    Measurand::SoC => t::MeasurandEnumType::SoC,
                });
                sv.phase = phase.map(|p| match p {
                    Phase::L1 => t::PhaseEnumType::L1,
                    Phase::L2 => t::PhaseEnumType::L2,
                    Phase::L3 => t::PhaseEnumType::L3,
                });
                let mut uom = t::UnitOfMeasureType::new();
                uom.unit = BoundedString::new(unit).ok();
                sv.unit_of_measure = Some(uom);
                if matches!(m, Measurand::SoC) {
                    sv.location = Some(t::LocationEnumType::Ev);
                }
                sv
            })
            .collect::<Vec<_>>()
    }};
}

/// The 2.0.1 and 2.1 MeterValues, alike but for the module.
macro_rules! v2x_meter {
    ($m:ident, $evse:expr, $readings:expr, $at:expr) => {{
        use ocpp_types::$m as t;
        let values = v2x_sampled!($m, $readings, SamplePeriodic);
        t::MeterValuesRequest::new($evse as i32, vec![t::MeterValueType::new(values, $at)])
    }};
}

/// The 2.0.1 and 2.1 TransactionEvent Started (with the idToken and the energy register at
/// the start, `Transaction.Begin`) or Updated (trigger MeterValuePeriodic, the seven sampled
/// values), on EVSE 1, connector 1.
macro_rules! v2x_tx_event {
    ($m:ident, started: $started:expr, $tx:expr, $readings:expr, $at:expr, $id_token:expr) => {{
        use ocpp_types::$m as t;
        let tx: &Tx = $tx;
        let mut info = t::TransactionType::new(bounded(&tx.id2x)?);
        info.charging_state = Some(t::ChargingStateEnumType::Charging);
        let readings: Readings = $readings;
        let (event, trigger, values) = if $started {
            (
                t::TransactionEventEnumType::Started,
                t::TriggerReasonEnumType::Authorized,
                v2x_sampled!($m, readings.into_iter().take(1), TransactionBegin),
            )
        } else {
            (
                t::TransactionEventEnumType::Updated,
                t::TriggerReasonEnumType::MeterValuePeriodic,
                v2x_sampled!($m, readings, SamplePeriodic),
            )
        };
        let mut req = t::TransactionEventRequest::new(event, $at, trigger, tx.seq_no, info);
        req.meter_value = Some(vec![t::MeterValueType::new(values, $at)]);
        if $started {
            let mut evse = t::EVSEType::new(1);
            evse.connector_id = Some(1);
            req.evse = Some(evse);
            req.id_token = Some($id_token);
        }
        req
    }};
}

/// One load charger's connection.
struct Conn {
    ws: Ws,
    ep: Endpoint,
    version: Version,
    shared: Arc<Shared>,
    tx: Tx,
}

impl Conn {
    /// Queues `msg` as a typed CALL of the connection's version.
    fn queue(&mut self, msg: Msg, meter: &mut Meter) -> Result<String, Fail> {
        let now = Instant::now();
        let at = DateTime::from_utc(chrono::Utc::now());
        let config = &self.shared.config;
        let ep = &mut self.ep;
        let queued = match (self.version, msg) {
            (Version::V16, Msg::Boot) => ep.call_typed(
                now,
                &v16::BootNotificationRequest::new(
                    bounded(&config.vendor)?,
                    bounded(&config.model)?,
                ),
            ),
            (Version::V16, Msg::Status(evse)) => {
                let mut req = v16::StatusNotificationRequest::new(
                    evse as i32,
                    v16::ChargePointErrorCode::NoError,
                    v16::ChargePointStatus::Available,
                );
                req.timestamp = Some(at);
                ep.call_typed(now, &req)
            }
            (Version::V16, Msg::Heartbeat) => ep.call_typed(now, &v16::HeartbeatRequest::new()),
            (Version::V16, Msg::Meter(evse)) => {
                ep.call_typed(now, &v16_meter(evse, meter.read(), at))
            }
            (Version::V16, Msg::StartTx) => ep.call_typed(
                now,
                &v16::StartTransactionRequest::new(
                    1,
                    bounded(&config.id_tag)?,
                    i32::try_from(meter.register_wh()).map_err(|_| Fail::Build)?,
                    at,
                ),
            ),
            (Version::V16, Msg::TxMeter) => {
                let mut req = v16_meter(1, meter.read(), at);
                req.transaction_id = Some(self.tx.id16);
                ep.call_typed(now, &req)
            }
            (Version::V201, Msg::Boot) => ep.call_typed(
                now,
                &v201::BootNotificationRequest::new(
                    v201::ChargingStationType::new(
                        bounded(&config.model)?,
                        bounded(&config.vendor)?,
                    ),
                    v201::BootReasonEnumType::PowerUp,
                ),
            ),
            (Version::V201, Msg::Status(evse)) => ep.call_typed(
                now,
                &v201::StatusNotificationRequest::new(
                    at,
                    v201::ConnectorStatusEnumType::Available,
                    evse as i32,
                    1,
                ),
            ),
            (Version::V201, Msg::Heartbeat) => ep.call_typed(now, &v201::HeartbeatRequest::new()),
            (Version::V201, Msg::Meter(evse)) => {
                ep.call_typed(now, &v2x_meter!(v201, evse, meter.read(), at))
            }
            (Version::V201, Msg::StartTx | Msg::TxMeter) => {
                let started = self.tx.next_seq_no(msg);
                let token = v201::IdTokenType::new(
                    bounded(&config.id_tag)?,
                    v201::IdTokenEnumType::Iso14443,
                );
                let req = v2x_tx_event!(v201, started: started, &self.tx, meter.read(), at, token);
                ep.call_typed(now, &req)
            }
            (Version::V21, Msg::Boot) => ep.call_typed(
                now,
                &v21::BootNotificationRequest::new(
                    v21::ChargingStationType::new(
                        bounded(&config.model)?,
                        bounded(&config.vendor)?,
                    ),
                    v21::BootReasonEnumType::PowerUp,
                ),
            ),
            (Version::V21, Msg::Status(evse)) => ep.call_typed(
                now,
                &v21::StatusNotificationRequest::new(
                    at,
                    v21::ConnectorStatusEnumType::Available,
                    evse as i32,
                    1,
                ),
            ),
            (Version::V21, Msg::Heartbeat) => ep.call_typed(now, &v21::HeartbeatRequest::new()),
            (Version::V21, Msg::Meter(evse)) => {
                ep.call_typed(now, &v2x_meter!(v21, evse, meter.read(), at))
            }
            (Version::V21, Msg::StartTx | Msg::TxMeter) => {
                let started = self.tx.next_seq_no(msg);
                let token = v21::IdTokenType::new(bounded(&config.id_tag)?, bounded("ISO14443")?);
                let req = v2x_tx_event!(v21, started: started, &self.tx, meter.read(), at, token);
                ep.call_typed(now, &req)
            }
            _ => return Err(Fail::Build),
        };
        queued.map_err(|_| Fail::Build)
    }

    /// Writes everything the endpoint has to send.
    async fn flush(&mut self) -> Result<(), Fail> {
        let mut sent = false;
        while let Some(text) = self.ep.poll_transmit() {
            self.ws
                .feed(Message::text(text))
                .await
                .map_err(|_| Fail::Closed)?;
            sent = true;
        }
        if sent {
            self.ws.flush().await.map_err(|_| Fail::Closed)?;
        }
        Ok(())
    }

    /// Handles the endpoint's events; the outcome of call `id` once it is known.
    fn events(&mut self, id: Option<&str>) -> Option<Result<Box<RawValue>, Fail>> {
        let mut outcome = None;
        while let Some(event) = self.ep.poll_event() {
            match event {
                Event::Result {
                    id: rid, payload, ..
                } if Some(rid.as_str()) == id => outcome = Some(Ok(payload)),
                Event::Error { id: rid, .. } if Some(rid.as_str()) == id => {
                    outcome = Some(Err(Fail::CallError))
                }
                Event::Timeout { id: rid, .. } if Some(rid.as_str()) == id => {
                    outcome = Some(Err(Fail::Timeout))
                }
                Event::Call { id, .. } => {
                    // A load charger implements none of the central system's calls.
                    let _ = self.ep.respond_error(
                        &id,
                        &ErrorCode::NotImplemented,
                        "load generator",
                        None,
                    );
                }
                _ => {}
            }
        }
        outcome
    }

    /// Reads the socket until call `id` is answered or, with `id` `None`, until `until` or
    /// a phase change, answering the central system's calls meanwhile.
    async fn wait(&mut self, id: Option<&str>, until: Option<TokioInstant>) -> Result<Woke, Fail> {
        let shared = self.shared.clone();
        let entry_phase = shared.phase();
        loop {
            let deadline = [self.ep.poll_timeout().map(TokioInstant::from_std), until]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| TokioInstant::now() + Duration::from_secs(3600));
            let changed = shared.phase_changed.notified();
            tokio::pin!(changed);
            if id.is_none() {
                // Only idle waits watch the phase (registering takes the Notify's lock).
                changed.as_mut().enable();
            }
            if id.is_none() && shared.phase() != entry_phase {
                return Ok(Woke::PhaseChanged);
            }
            tokio::select! {
                msg = self.ws.next() => {
                    let at = Instant::now();
                    match msg {
                        Some(Ok(Message::Text(text))) => self.ep.handle_text(at, text.as_str()),
                        Some(Ok(Message::Ping(_))) => {
                            self.ws.flush().await.map_err(|_| Fail::Closed)?;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return Err(Fail::Closed),
                    }
                    let outcome = self.events(id);
                    self.flush().await?;
                    if let Some(o) = outcome {
                        return o.map(|p| Woke::Answer(p, at));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    self.ep.handle_timeout(now);
                    let outcome = self.events(id);
                    self.flush().await?;
                    if let Some(o) = outcome {
                        return o.map(|p| Woke::Answer(p, now));
                    }
                    if id.is_none() && until.is_some_and(|u| u.into_std() <= now) {
                        return Ok(Woke::Until);
                    }
                }
                _ = &mut changed, if id.is_none() => {}
            }
        }
    }

    /// One call: queue, write, wait for the answer. Returns the answer and the latency.
    async fn call(
        &mut self,
        msg: Msg,
        meter: &mut Meter,
    ) -> Result<(Box<RawValue>, Duration), Fail> {
        let id = self.queue(msg, meter)?;
        let sent = Instant::now();
        self.flush().await?;
        match self.wait(Some(&id), None).await? {
            Woke::Answer(payload, at) => Ok((payload, at.saturating_duration_since(sent))),
            Woke::Until | Woke::PhaseChanged => Err(Fail::Build),
        }
    }

    /// Idles until `until` or the next phase (answering calls meanwhile); `Err(Stopped)`
    /// once the run is over.
    async fn idle_until(&mut self, until: TokioInstant) -> Result<(), Fail> {
        self.wait(None, Some(until)).await?;
        if self.shared.phase() == STOP {
            return Err(Fail::Stopped);
        }
        Ok(())
    }
}

/// Why [`Conn::wait`] returned.
enum Woke {
    /// The answer to the call, and when it was read.
    Answer(Box<RawValue>, Instant),
    /// The time given.
    Until,
    /// The run's phase changed.
    PhaseChanged,
}

/// Whether a BootNotification answer says Accepted, and the retry interval it gives.
fn boot_accepted(version: Version, payload: &RawValue) -> (bool, u64) {
    let parsed: Option<(bool, i32)> = match version {
        Version::V16 => serde_json::from_str::<v16::BootNotificationResponse>(payload.get())
            .ok()
            .map(|r| (r.status == v16::RegistrationStatus::Accepted, r.interval)),
        Version::V201 => serde_json::from_str::<v201::BootNotificationResponse>(payload.get())
            .ok()
            .map(|r| {
                (
                    r.status == v201::RegistrationStatusEnumType::Accepted,
                    r.interval,
                )
            }),
        Version::V21 => serde_json::from_str::<v21::BootNotificationResponse>(payload.get())
            .ok()
            .map(|r| {
                (
                    r.status == v21::RegistrationStatusEnumType::Accepted,
                    r.interval,
                )
            }),
        _ => None,
    };
    match parsed {
        Some((ok, interval)) => (ok, interval.clamp(1, 60) as u64),
        None => (false, 10),
    }
}

async fn load_charger(shared: Arc<Shared>, i: usize, start_at: TokioInstant) {
    let config = &shared.config;
    let identity = identity(&config.prefix, config.first_index, config.count, i);
    let version = config.versions.version_of(i);
    let seed = config
        .seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i as u64);
    let mut rng = Rng::new(seed);
    let mut meter = Meter {
        rng: Rng::new(seed ^ 0x3e7e),
        base_wh: 1000 + seed % 100_000,
        energy_wus: 0,
        soc: 20 + seed % 60,
        last: Instant::now(),
        wh: 0,
    };
    tokio::select! {
        _ = tokio::time::sleep_until(start_at) => {}
        _ = shared.reach(STOP) => return,
    }
    let bind = shared.target.bind_ip(i);
    let mut attempts = 0u32;
    let ws = loop {
        if shared.phase() == STOP {
            return;
        }
        match shared.target.connect(&identity, version, bind).await {
            Ok(ws) => break ws,
            Err(_) => {
                shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                attempts += 1;
                let base = Duration::from_millis(500 << attempts.min(5));
                let delay = base + rng.jitter(base / 2);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shared.reach(STOP) => return,
                }
            }
        }
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let endpoint = Endpoint::new(
        EndpointConfig::new(version)
            .call_timeout(config.call_timeout)
            .id_generator(CounterIds::default()),
    );
    let mut conn = Conn {
        ws,
        ep: endpoint,
        version,
        shared: shared.clone(),
        tx: Tx {
            id2x: uuid(&mut rng),
            ..Tx::default()
        },
    };
    let result = drive(&mut conn, &shared, &mut rng, &mut meter).await;
    if matches!(result, Err(Fail::Closed)) && shared.phase() != STOP {
        shared.disconnects.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.ws.close(None)).await;
    shared.connected.fetch_sub(1, Ordering::Relaxed);
}

/// A random (version 4) UUID, the 2.x transactionId.
fn uuid(rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// A random offset in `[0, interval)`, to the microsecond: the phase of a periodic call.
fn phase(rng: &mut Rng, interval: Duration) -> Duration {
    let us = interval.as_micros().max(1) as u64;
    Duration::from_micros(rng.next_u64() % us)
}

/// Counts a failed call; `Err` if the charger must stop.
fn failed(shared: &Shared, fail: Fail) -> Result<(), Fail> {
    match fail {
        Fail::CallError => {
            shared.call_errors.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Fail::Timeout => {
            shared.timeouts.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        other => Err(other),
    }
}

async fn drive(
    conn: &mut Conn,
    shared: &Shared,
    rng: &mut Rng,
    meter: &mut Meter,
) -> Result<(), Fail> {
    // Boot until accepted.
    loop {
        if shared.phase() == STOP {
            return Err(Fail::Stopped);
        }
        match conn.call(Msg::Boot, meter).await {
            Ok((payload, _)) => {
                let (accepted, retry) = boot_accepted(conn.version, &payload);
                if accepted {
                    break;
                }
                shared.boot_rejections.fetch_add(1, Ordering::Relaxed);
                conn.idle_until(TokioInstant::now() + Duration::from_secs(retry))
                    .await?;
            }
            Err(fail) => {
                failed(shared, fail)?;
                conn.idle_until(TokioInstant::now() + Duration::from_secs(1))
                    .await?;
            }
        }
    }
    for evse in 1..=shared.config.evses {
        if let Err(fail) = conn.call(Msg::Status(evse), meter).await {
            failed(shared, fail)?;
        }
    }
    if shared.config.mode.in_transaction() {
        start_transaction(conn, shared, meter).await?;
    }
    shared.booted.fetch_add(1, Ordering::Relaxed);
    shared.booted_notify.notify_waiters();
    // Hold the connection until the window opens.
    while shared.phase() == WARMUP {
        conn.idle_until(TokioInstant::now() + Duration::from_secs(3600))
            .await?;
    }
    match shared.config.mode {
        mode @ (LoadMode::Calls | LoadMode::Transactions) => {
            let mut n: u64 = 0;
            while shared.loading() {
                let msg = if n.is_multiple_of(2) {
                    Msg::Heartbeat
                } else if mode == LoadMode::Transactions {
                    Msg::TxMeter
                } else {
                    Msg::Meter(evse_in_turn(n / 2, shared.config.evses))
                };
                n += 1;
                let outcome = conn.call(msg, meter).await;
                record(shared, msg.action(conn.version), outcome)?;
            }
        }
        LoadMode::Idle { heartbeat_interval } => {
            let mut next = TokioInstant::now() + rng.jitter(heartbeat_interval);
            loop {
                conn.idle_until(next).await?;
                if !shared.loading() {
                    break;
                }
                next += heartbeat_interval;
                let outcome = conn.call(Msg::Heartbeat, meter).await;
                record(shared, Some(0), outcome)?;
            }
        }
        mode @ (LoadMode::TransactionsOpen {
            meter_interval,
            heartbeat_interval,
        }
        | LoadMode::CallsOpen {
            meter_interval,
            heartbeat_interval,
        }) => {
            let in_transaction = mode.in_transaction();
            let mut n: u64 = 0;
            let start = TokioInstant::now();
            let mut next_meter = start + phase(rng, meter_interval);
            let mut next_heartbeat = start + phase(rng, heartbeat_interval);
            loop {
                let due = next_meter.min(next_heartbeat);
                if TokioInstant::now() < due {
                    conn.idle_until(due).await?;
                }
                if !shared.loading() {
                    break;
                }
                let now = TokioInstant::now();
                if now < due {
                    continue;
                }
                let msg = if next_meter <= next_heartbeat {
                    next_meter += meter_interval;
                    if in_transaction {
                        Msg::TxMeter
                    } else {
                        let evse = evse_in_turn(n, shared.config.evses);
                        n += 1;
                        Msg::Meter(evse)
                    }
                } else {
                    next_heartbeat += heartbeat_interval;
                    Msg::Heartbeat
                };
                shared.send_lag.record(now - due);
                let outcome = conn.call(msg, meter).await;
                record(shared, msg.action(conn.version), outcome)?;
            }
        }
    }
    Ok(())
}

/// The EVSE of a charger's `k`-th meter value outside a transaction (from 0): EVSE 1, 2, ...
/// `evses`, then 1 again (EVSE 1 when `evses` is 0).
fn evse_in_turn(k: u64, evses: u32) -> u32 {
    let turn = k.checked_rem(u64::from(evses)).unwrap_or(0);
    // Below `evses`, so it fits.
    1 + u32::try_from(turn).unwrap_or(0)
}

/// Starts the charger's transaction on EVSE 1, trying again every second until the central
/// system answers it (1.6: keeps the transactionId it gives).
async fn start_transaction(
    conn: &mut Conn,
    shared: &Shared,
    meter: &mut Meter,
) -> Result<(), Fail> {
    loop {
        if shared.phase() == STOP {
            return Err(Fail::Stopped);
        }
        match conn.call(Msg::StartTx, meter).await {
            Ok((payload, _)) => {
                if conn.version == Version::V16 {
                    match serde_json::from_str::<v16::StartTransactionResponse>(payload.get()) {
                        Ok(r) => conn.tx.id16 = r.transaction_id,
                        Err(_) => {
                            shared.call_errors.fetch_add(1, Ordering::Relaxed);
                            conn.idle_until(TokioInstant::now() + Duration::from_secs(1))
                                .await?;
                            continue;
                        }
                    }
                }
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(fail) => {
                failed(shared, fail)?;
                conn.idle_until(TokioInstant::now() + Duration::from_secs(1))
                    .await?;
            }
        }
    }
}

/// Counts an answered call (its latency inside the window, overall and for `action`, an
/// index in [`ACTIONS`]) or a failure.
fn record(
    shared: &Shared,
    action: Option<usize>,
    outcome: Result<(Box<RawValue>, Duration), Fail>,
) -> Result<(), Fail> {
    match outcome {
        Ok((_, latency)) => {
            shared.answered.fetch_add(1, Ordering::Relaxed);
            if shared.phase() == MEASURE {
                shared.window_calls.fetch_add(1, Ordering::Relaxed);
                shared.histogram.record(latency);
                if let Some(h) = action.and_then(|a| shared.by_action.get(a)) {
                    h.record(latency);
                }
            }
            Ok(())
        }
        Err(fail) => failed(shared, fail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meter values outside a transaction go to EVSE 1, 2, ... in turn, from EVSE 1, in the
    /// closed loop (every other message) and the open one alike.
    #[test]
    fn meter_values_take_the_evses_in_turn_from_the_first() {
        let turns: Vec<u32> = (0..5).map(|k| evse_in_turn(k, 2)).collect();
        assert_eq!(turns, [1, 2, 1, 2, 1]);
        assert_eq!(evse_in_turn(u64::MAX, 3), 1 + (u64::MAX % 3) as u32);
        assert_eq!(evse_in_turn(7, 0), 1);
    }

    #[test]
    fn transaction_ids_and_seq_nos() {
        let mut rng = Rng::new(7);
        let id = uuid(&mut rng);
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "4", "{id}");
        assert_ne!(id, uuid(&mut rng));
        let mut tx = Tx::default();
        assert!(tx.next_seq_no(Msg::StartTx));
        assert_eq!(tx.seq_no, 0);
        assert!(!tx.next_seq_no(Msg::TxMeter));
        assert!(!tx.next_seq_no(Msg::TxMeter));
        assert_eq!(tx.seq_no, 2);
        assert_eq!(Msg::TxMeter.action(Version::V16), Some(1));
        assert_eq!(Msg::TxMeter.action(Version::V21), Some(2));
    }

    #[test]
    fn phases_stay_inside_the_interval() {
        let mut rng = Rng::new(1);
        let interval = Duration::from_secs(10);
        assert!((0..1000).all(|_| phase(&mut rng, interval) < interval));
    }

    #[test]
    fn the_energy_register_grows() {
        let mut meter = Meter {
            rng: Rng::new(3),
            base_wh: 5000,
            energy_wus: 0,
            soc: 50,
            last: Instant::now() - Duration::from_secs(3600),
            wh: 0,
        };
        let first = meter.register_wh();
        // About 11 kW for the hour since `last`.
        assert!((15_000..17_000).contains(&first), "{first}");
        assert!(meter.register_wh() >= first);
    }
}
