//! [`Fleet`]: many full simulated chargers. Each runs on `ocpp_charger`'s own WebSocket driver
//! ([`ocpp_charger::ws::run`]: one task owning the socket, the station and its store), beside a
//! small controller task that plays its [`Script`], forwards the fleet's commands and keeps the
//! fleet's counters from the driver's events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocpp_charger::settings::Setting;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, Traffic};
use ocpp_charger::{
    AnchoredClock, HardwareEvent, MemoryStore, Rng, Saved, SimulatedEv, Station, StationConfig,
    StationEvent, TimeSource, TransactionInfo,
};
use ocpp_codec::Version;
use rust_decimal::Decimal;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

use super::connect::Target;
use super::hardware::{FleetHardware, HwCommand};
use super::script::{Action, Script};
use super::transfers::{self, Downloaded, LogLines};
use super::{ramp_offset, SimConfig, SimError};
use chrono::Utc;
use ocpp_charger::station::{FirmwareProgress, LogProgress};

/// How many commands of the application wait for one charger at most ([`Fleet::plug_in`],
/// [`Fleet::present_id_token`], ...); beyond it a command is refused with
/// [`SimError::Busy`].
pub const COMMAND_QUEUE: usize = 64;

/// The measurands the simulated stations sample during transactions (the export register
/// moves when a 2.1 V2X setpoint makes the EV discharge).
const SAMPLED_MEASURANDS: &str =
    "Energy.Active.Import.Register,Energy.Active.Export.Register,Power.Active.Import,Current.Import,Voltage,SoC";

/// The DER control types the simulated 2.1 stations' inverters take.
const SIM_DER_CONTROLS: &[&str] = &["LimitMaxDischarge", "FixedPFInject", "VoltVar", "FreqWatt"];
/// The connector types the simulated chargers report (2.x `ConnectorType`), by charger index.
const SIM_CONNECTOR_TYPES: [&str; 3] = ["cType2", "cCCS2", "sType2"];

/// An event of one simulated charger: its connection ([`ClientEvent::Connected`],
/// [`ClientEvent::Disconnected`]) or its station ([`ClientEvent::Station`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetEvent {
    /// The charger's identity.
    pub identity: Arc<str>,
    /// What happened.
    pub event: ClientEvent,
}

impl FleetEvent {
    /// The station event, if this is one.
    pub fn station(&self) -> Option<&StationEvent> {
        match &self.event {
            ClientEvent::Station(e) => Some(e),
            _ => None,
        }
    }
}

/// A snapshot of the fleet's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Simulated chargers.
    pub chargers: usize,
    /// Chargers with an open WebSocket.
    pub connected: usize,
    /// Chargers whose BootNotification was accepted (and not rebooting).
    pub booted: usize,
    /// Transactions running now.
    pub charging: usize,
    /// CALLs the chargers sent.
    pub calls_sent: u64,
    /// CALLRESULTs the chargers received.
    pub answers: u64,
    /// CALLERRORs (and 2.1 CALLRESULTERRORs) the chargers received.
    pub call_errors: u64,
    /// CALLs the central system sent to the chargers.
    pub central_calls: u64,
    /// Failed connection attempts.
    pub connect_failures: u64,
    /// Connections lost (not counting the shutdown).
    pub disconnects: u64,
    /// Transactions started so far.
    pub transactions_started: u64,
    /// Transactions ended so far.
    pub transactions_ended: u64,
    /// Transaction messages given up after their retries.
    pub messages_dropped: u64,
}

impl Stats {
    /// Everything that went wrong: CALLERRORs received, failed connection attempts, lost
    /// connections and dropped transaction messages.
    pub fn errors(&self) -> u64 {
        self.call_errors + self.connect_failures + self.disconnects + self.messages_dropped
    }
}

#[derive(Debug, Default)]
struct Counters {
    connected: AtomicU64,
    booted: AtomicU64,
    charging: AtomicU64,
    connect_failures: AtomicU64,
    disconnects: AtomicU64,
    transactions_started: AtomicU64,
    transactions_ended: AtomicU64,
    messages_dropped: AtomicU64,
}

fn add(c: &AtomicU64, up: bool) {
    if up {
        c.fetch_add(1, Ordering::Relaxed);
    } else {
        c.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Shared {
    count: usize,
    counters: Counters,
    /// The frames of every charger, counted by their drivers.
    traffic: Arc<Traffic>,
    notify: Notify,
    events: broadcast::Sender<FleetEvent>,
    /// The last log file each charger uploaded ([`Fleet::last_upload`]).
    uploads: std::sync::Mutex<HashMap<Arc<str>, Vec<u8>>>,
}

impl Shared {
    fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            chargers: self.count,
            connected: get(&c.connected) as usize,
            booted: get(&c.booted) as usize,
            charging: get(&c.charging) as usize,
            calls_sent: self.traffic.calls_sent(),
            answers: self.traffic.results_received(),
            call_errors: self.traffic.errors_received(),
            central_calls: self.traffic.calls_received(),
            connect_failures: get(&c.connect_failures),
            disconnects: get(&c.disconnects),
            transactions_started: get(&c.transactions_started),
            transactions_ended: get(&c.transactions_ended),
            messages_dropped: get(&c.messages_dropped),
        }
    }

    fn emit(&self, identity: &Arc<str>, event: ClientEvent) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(FleetEvent {
                identity: identity.clone(),
                event,
            });
        }
    }
}

/// A command of the application to one charger's controller.
enum Command {
    Act(Action),
    Token(Option<u32>, String),
    Hardware(HardwareEvent),
    With(ws::StationFn),
    Shutdown,
}

#[derive(Debug)]
struct Entry {
    identity: Arc<str>,
    version: Version,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

/// Waits for fleet events (see [`Fleet::subscribe`]).
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<FleetEvent>,
    lagged: u64,
}

impl Subscription {
    /// The next event; `None` once the fleet is gone. Events this subscriber was too slow
    /// for are skipped (counted in [`Subscription::lagged`]).
    pub async fn recv(&mut self) -> Option<FleetEvent> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => self.lagged += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Waits at most `timeout` for the first event for which `f` returns `Some`.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&FleetEvent) -> Option<T>,
    ) -> Result<T, SimError> {
        let wait = async {
            while let Some(e) = self.recv().await {
                if let Some(t) = f(&e) {
                    return Ok(t);
                }
            }
            Err(SimError::Closed)
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| SimError::Timeout(timeout, "a fleet event".into()))?
    }

    /// Events skipped because this subscriber fell behind.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }
}

/// Many simulated chargers, each an [`ocpp_charger::Station`] on simulated hardware, driven by
/// one tokio task (see the [module docs](super)).
#[derive(Debug)]
pub struct Fleet {
    shared: Arc<Shared>,
    chargers: Vec<Entry>,
    by_identity: HashMap<Arc<str>, usize>,
}

impl Fleet {
    /// Builds the stations and spawns one task per charger on the current tokio runtime.
    /// Chargers connect at [`SimConfig::ramp`] per second and reconnect with backoff.
    pub async fn start(config: SimConfig) -> Result<Fleet, SimError> {
        config.validate()?;
        tokio::runtime::Handle::try_current().map_err(|_| SimError::NoRuntime)?;
        let target = Arc::new(
            Target::resolve(
                &config.url,
                config.password.clone(),
                config.bind_ips.clone(),
                config.connect_timeout,
                config.tls.is_some(),
            )
            .await?,
        );
        let capacity = (config.count * 8).clamp(1024, 65_536);
        let (events, _) = broadcast::channel(capacity);
        let shared = Arc::new(Shared {
            count: config.count,
            counters: Counters::default(),
            traffic: Arc::new(Traffic::default()),
            notify: Notify::new(),
            events,
            uploads: std::sync::Mutex::new(HashMap::new()),
        });
        let interval = config.meter_interval.as_secs().max(1);
        let clock: Arc<dyn TimeSource> = Arc::new(AnchoredClock::system());
        let now = TokioInstant::now().into_std();
        let config = Arc::new(config);
        let mut chargers = Vec::with_capacity(config.count);
        let mut by_identity = HashMap::with_capacity(config.count);
        for i in 0..config.count {
            let identity: Arc<str> = config.identity(i).into();
            let version = config.versions.version_of(i);
            let seed = config
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(i as u64);
            let station_error = |reason: String| SimError::Station {
                identity: identity.to_string(),
                reason,
            };
            let make: Make = {
                let config = config.clone();
                let clock = clock.clone();
                let identity = identity.clone();
                Arc::new(move |firmware: &str, saved: Saved, now: Instant| {
                    let (mut hardware, hw) = FleetHardware::new(config.evses, config.power_w);
                    let mut station_config = StationConfig::new(identity.to_string(), version)
                        .vendor_model(config.vendor.clone(), config.model.clone())
                        .firmware_version(firmware)
                        .evses(config.evses)
                        // The plug its device model reports (2.x `ConnectorType`), varied
                        // over the fleet so the driver app's plug filter has something to do.
                        .connector_type(SIM_CONNECTOR_TYPES[i % SIM_CONNECTOR_TYPES.len()])
                        .call_timeout(config.call_timeout)
                        .time_source(clock.clone())
                        .seed(seed)
                        .transfers(true)
                        .setting(Setting::SampleInterval, interval.to_string())
                        .setting(Setting::SampledMeasurands, SAMPLED_MEASURANDS)
                        // 1.6: the running cost through the California Pricing DataTransfers.
                        .cost_messages(true)
                        // 2.1: bidirectional (V2X setpoints, DER controls).
                        .der(SIM_DER_CONTROLS);
                    if let Some(key) = &config.sign_readings {
                        hardware = hardware.with_signer(key.clone(), identity.clone());
                        station_config = station_config
                            .setting(Setting::SampledSignReadings, "true")
                            .setting(Setting::AlignedSignReadings, "true")
                            .setting(Setting::PublicKeyWithSignedMeterValue, "OncePerTransaction");
                    }
                    // 2.1: default and transaction tariffs (SetDefaultTariff,
                    // ChangeTransactionTariff), the cost computed locally from them (a
                    // configuration of its own only where it is used).
                    let station_config = if version == Version::V21 {
                        station_config.tariffs(ocpp_charger::station::tariffs::TariffConfig {
                            local_cost: true,
                            ..Default::default()
                        })
                    } else {
                        station_config
                    };
                    let station = Station::new(station_config, Box::new(hardware), saved, now);
                    (station, hw)
                })
            };
            let (station, hw) = make(env!("CARGO_PKG_VERSION"), Saved::default(), now);
            if station.settings().int(Setting::SampleInterval) != interval {
                return Err(station_error(
                    "the meter sample interval could not be set".into(),
                ));
            }
            let mut client = ClientConfig::new(config.url.clone())
                .backoff(Duration::from_secs(1), Duration::from_secs(30))
                .local_addr(target.bind_ip(i))
                .start_delay(ramp_offset(config.ramp, i))
                .traffic(shared.traffic.clone())
                .compression(config.compression);
            client.password = config.password.clone();
            client.tls = config.tls.clone();
            client.connect_timeout = config.connect_timeout;
            client.seed = seed ^ 0xe7;
            let (driver_tx, driver_rx) = ws::command_channel();
            let (event_tx, event_rx) = mpsc::channel(ws::EVENT_QUEUE);
            let store = MemoryStore::new();
            let driver = tokio::spawn(ws::run(
                station,
                Box::new(store.clone()),
                client.clone(),
                driver_rx,
                Some(event_tx.clone()),
            ));
            let controller = Controller {
                identity: identity.clone(),
                driver: driver_tx,
                driver_task: Some(driver),
                hw,
                script: Script::new(
                    config.scenario,
                    config.evses,
                    config.charge_duration,
                    config.pause,
                    seed ^ 0x5c1f,
                )
                .arrivals(
                    config
                        .arrival_stagger
                        .map(|d| d.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX))),
                    config.sessions,
                ),
                shared: shared.clone(),
                rng: Rng::new(seed ^ 0xe7e7),
                id_tag: config.id_tag.clone(),
                evses: config.evses,
                graceful: config.end_transactions_on_shutdown,
                connected: false,
                booted: false,
                charging: 0,
                transfers: Transfers {
                    make,
                    client,
                    store,
                    event_tx: Some(event_tx),
                    firmware: env!("CARGO_PKG_VERSION").to_owned(),
                    log: LogLines::default(),
                    downloaded: Arc::new(std::sync::Mutex::new(None)),
                    restart: None,
                    installed: None,
                },
            };
            let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
            let task = tokio::spawn(controller.run(rx, event_rx));
            by_identity.insert(identity.clone(), i);
            chargers.push(Entry {
                identity,
                version,
                commands: tx,
                task,
            });
        }
        Ok(Fleet {
            shared,
            chargers,
            by_identity,
        })
    }

    /// The last log file charger `identity` uploaded (what it sent, byte for byte).
    pub fn last_upload(&self, identity: &str) -> Option<Vec<u8>> {
        self.shared
            .uploads
            .lock()
            .ok()
            .and_then(|u| u.get(identity).cloned())
    }

    /// The identities, in order.
    pub fn identities(&self) -> Vec<String> {
        self.chargers
            .iter()
            .map(|c| c.identity.to_string())
            .collect()
    }

    /// The version charger `identity` speaks.
    pub fn version_of(&self, identity: &str) -> Option<Version> {
        self.entry(identity).ok().map(|e| e.version)
    }

    fn entry(&self, identity: &str) -> Result<&Entry, SimError> {
        self.by_identity
            .get(identity)
            .map(|i| &self.chargers[*i])
            .ok_or_else(|| SimError::UnknownCharger(identity.to_owned()))
    }

    fn send(&self, identity: &str, command: Command) -> Result<(), SimError> {
        let entry = self.entry(identity)?;
        entry.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SimError::Busy(identity.to_owned()),
            mpsc::error::TrySendError::Closed(_) => SimError::ChargerStopped(identity.to_owned()),
        })
    }

    /// Plugs a cable with a fresh simulated EV (a random battery of 40 to 80 kWh at 10 to
    /// 70 %) into `evse` (from 1).
    pub fn plug_in(&self, identity: &str, evse: u32) -> Result<(), SimError> {
        self.send(identity, Command::Act(Action::Plug(evse)))
    }

    /// Pulls the cable out of `evse`.
    pub fn unplug(&self, identity: &str, evse: u32) -> Result<(), SimError> {
        self.send(identity, Command::Act(Action::Unplug(evse)))
    }

    /// Presents an id token at `evse` (or at the station's own reader with `None`): starts a
    /// transaction where a cable is (or will be) plugged, or stops the one it started.
    pub fn present_id_token(
        &self,
        identity: &str,
        evse: Option<u32>,
        id_token: &str,
    ) -> Result<(), SimError> {
        self.send(identity, Command::Token(evse, id_token.to_owned()))
    }

    /// A simulated driver arrives at `evse`: plugs in and presents their token (the reserved
    /// one when the EVSE, or any EVSE, is reserved; else [`SimConfig::id_tag`]).
    pub fn driver_arrives(&self, identity: &str, evse: u32) -> Result<(), SimError> {
        self.send(identity, Command::Act(Action::Plug(evse)))?;
        self.send(identity, Command::Act(Action::Token(evse)))
    }

    /// The EV on `evse` has a full battery: it stops drawing power (1.6 `SuspendedEV`, 2.x
    /// TransactionEvent with `chargingState` SuspendedEV).
    pub fn ev_full(&self, identity: &str, evse: u32) -> Result<(), SimError> {
        self.send(identity, Command::Act(Action::Fill(evse)))
    }

    /// The EV on `evse` pauses (`true`) or resumes (`false`) charging.
    pub fn ev_suspend(&self, identity: &str, evse: u32, suspended: bool) -> Result<(), SimError> {
        self.send(identity, Command::Act(Action::Suspend(evse, suspended)))
    }

    /// Any other physical input (a fault, ...), passed to the station as it is.
    pub fn hardware(&self, identity: &str, event: HardwareEvent) -> Result<(), SimError> {
        self.send(identity, Command::Hardware(event))
    }

    /// Runs `f` with the station of `identity` inside its task and returns its result (read
    /// its state, start a DataTransfer, ...).
    pub async fn with_station<R: Send + 'static>(
        &self,
        identity: &str,
        f: impl FnOnce(&mut Station, Instant) -> R + Send + 'static,
    ) -> Result<R, SimError> {
        let (tx, rx) = oneshot::channel();
        let command = Command::With(Box::new(move |station, now| {
            let _ = tx.send(f(station, now));
        }));
        // Waits for room in the queue rather than failing: the caller awaits the answer anyway.
        self.entry(identity)?
            .commands
            .send(command)
            .await
            .map_err(|_| SimError::ChargerStopped(identity.to_owned()))?;
        rx.await
            .map_err(|_| SimError::ChargerStopped(identity.to_owned()))
    }

    /// The transaction running on `evse` of `identity`, if any.
    pub async fn transaction(
        &self,
        identity: &str,
        evse: u32,
    ) -> Result<Option<TransactionInfo>, SimError> {
        self.with_station(identity, move |s, _| s.transaction(evse))
            .await
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Waits at most `timeout` until `condition` holds for the counters. It is checked now
    /// and whenever a charger connects, disconnects, fails to connect, boots, or starts or
    /// ends a transaction.
    pub async fn wait_stats(
        &self,
        condition: impl Fn(&Stats) -> bool,
        timeout: Duration,
    ) -> Result<Stats, SimError> {
        let deadline = TokioInstant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let stats = self.stats();
            if condition(&stats) {
                return Ok(stats);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(SimError::Timeout(
                    timeout,
                    format!("a fleet condition (now {stats:?})"),
                ));
            }
        }
    }

    /// Subscribes to the events of every charger from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.shared.events.subscribe(),
            lagged: 0,
        }
    }

    /// Closes every connection and ends the tasks (waiting at most 10 s), and returns the
    /// final counters.
    pub async fn shutdown(self) -> Stats {
        for c in &self.chargers {
            let _ = c.commands.send(Command::Shutdown).await;
        }
        let deadline = TokioInstant::now() + Duration::from_secs(10);
        for c in self.chargers {
            let mut task = c.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
        self.shared.stats()
    }
}

/// One charger's controller: plays its script and the application's commands into the
/// charger's driver task (the `ocpp_charger::ws` driver, which owns socket and station) and
/// keeps the fleet's counters from the driver's events.
struct Controller {
    identity: Arc<str>,
    driver: mpsc::Sender<ws::Command>,
    driver_task: Option<JoinHandle<Station>>,
    hw: std::sync::mpsc::Sender<HwCommand>,
    script: Script,
    shared: Arc<Shared>,
    rng: Rng,
    id_tag: String,
    evses: u32,
    graceful: bool,
    connected: bool,
    booted: bool,
    charging: u64,
    transfers: Transfers,
}

/// Builds a charger's station: its firmware version, what its store held, the time.
type Make = Arc<
    dyn Fn(&str, Saved, Instant) -> (Station, std::sync::mpsc::Sender<HwCommand>) + Send + Sync,
>;

/// A charger's firmware and log transfers ([`super::transfers`]) and what a restart needs.
struct Transfers {
    make: Make,
    client: ClientConfig,
    /// The store the driver writes to (shared: a restart loads from it).
    store: MemoryStore,
    /// The drivers' event sender (dropped at shutdown so the event stream ends).
    event_tx: Option<mpsc::Sender<ClientEvent>>,
    /// The firmware version the station runs.
    firmware: String,
    log: LogLines,
    /// The last download: its request id and what came of it.
    downloaded: Arc<std::sync::Mutex<Option<(i32, Downloaded)>>>,
    /// Restart with this firmware version.
    restart: Option<String>,
    /// After the restart's boot: report update `id` Installed.
    installed: Option<i32>,
}

impl Controller {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut events: mpsc::Receiver<ClientEvent>,
    ) {
        let mut actions = Vec::new();
        loop {
            let wake = self.script.next_at().map(TokioInstant::from_std);
            tokio::select! {
                event = events.recv() => match event {
                    Some(e) => {
                        self.on_event(e);
                        if let Some(version) = self.transfers.restart.take() {
                            self.restart(version).await;
                        }
                    }
                    // The driver ended on its own (it does not, short of a panic).
                    None => {
                        self.retract();
                        return;
                    }
                },
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => {
                        self.close(&mut events).await;
                        return;
                    }
                    Some(command) => self.command(command).await,
                },
                _ = sleep_until(wake) => {
                    let now = TokioInstant::now().into_std();
                    self.script.due(now, &mut actions);
                    for a in actions.drain(..) {
                        self.apply(a).await;
                    }
                }
            }
        }
    }

    /// Hands `command` to the driver, waiting for room in its queue.
    async fn drive(&self, command: ws::Command) {
        // Fails only once the driver has ended; the fleet's shutdown then follows.
        let _ = self.driver.send(command).await;
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Act(a) => self.apply(a).await,
            Command::Token(evse, id_token) => {
                self.drive(ws::Command::Hardware(HardwareEvent::IdTokenPresented {
                    evse,
                    id_token,
                }))
                .await
            }
            Command::Hardware(e) => self.drive(ws::Command::Hardware(e)).await,
            Command::With(f) => self.drive(ws::Command::With(f)).await,
            Command::Shutdown => {}
        }
    }

    fn on_event(&mut self, event: ClientEvent) {
        if let ClientEvent::Station(e) = &event {
            self.transfers.log.push(Utc::now(), format!("{e:?}"));
            self.on_transfer(e);
        }
        let c = &self.shared.counters;
        let mut changed = false;
        match &event {
            ClientEvent::Connected => self.set_connected(true),
            ClientEvent::Disconnected { .. } => {
                if self.connected {
                    c.disconnects.fetch_add(1, Ordering::Relaxed);
                    self.set_connected(false);
                } else {
                    c.connect_failures.fetch_add(1, Ordering::Relaxed);
                    changed = true;
                }
            }
            ClientEvent::Station(e) => match e {
                StationEvent::BootAccepted { .. } => {
                    self.script.start(TokioInstant::now().into_std());
                    changed |= self.set_booted(true);
                }
                StationEvent::BootNotAccepted { .. } | StationEvent::Rebooting(_) => {
                    changed |= self.set_booted(false);
                }
                StationEvent::TransactionStarted { .. } => {
                    self.charging += 1;
                    add(&c.charging, true);
                    c.transactions_started.fetch_add(1, Ordering::Relaxed);
                    changed = true;
                }
                StationEvent::TransactionEnded { .. } => {
                    if self.charging > 0 {
                        self.charging -= 1;
                        add(&c.charging, false);
                    }
                    c.transactions_ended.fetch_add(1, Ordering::Relaxed);
                    changed = true;
                }
                StationEvent::Dropped { .. } => {
                    c.messages_dropped.fetch_add(1, Ordering::Relaxed);
                }
                // The cost the central system told or (2.1, by a tariff) the station
                // computed: what the station's display shows.
                StationEvent::Cost {
                    transaction_id,
                    total_cost,
                    final_cost,
                    source,
                } => {
                    tracing::debug!(
                        charger = %self.identity,
                        transaction = %transaction_id,
                        cost = %total_cost,
                        final_cost,
                        source,
                        "cost"
                    );
                }
                _ => {}
            },
            _ => {}
        }
        if changed {
            self.shared.notify.notify_waiters();
        }
        self.shared.emit(&self.identity, event);
    }

    fn set_connected(&mut self, connected: bool) {
        if connected != self.connected {
            self.connected = connected;
            add(&self.shared.counters.connected, connected);
            self.shared.notify.notify_waiters();
        }
    }

    /// Whether the booted gauge changed.
    fn set_booted(&mut self, booted: bool) -> bool {
        if booted == self.booted {
            return false;
        }
        self.booted = booted;
        add(&self.shared.counters.booted, booted);
        true
    }

    /// Shutdown: end running transactions (if configured), stop the driver (which closes the
    /// socket and takes the station offline), take its last events, retract the gauges.
    async fn close(&mut self, events: &mut mpsc::Receiver<ClientEvent>) {
        if self.graceful && self.connected && self.booted && self.charging > 0 {
            self.end_transactions(events).await;
        }
        self.transfers.event_tx = None;
        self.drive(ws::Command::Shutdown).await;
        if let Some(mut task) = self.driver_task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        // The driver has ended: its sender is gone, so this ends.
        while let Some(e) = events.recv().await {
            self.on_event(e);
        }
        self.retract();
    }

    /// Runs `f` on the station in the driver task, without waiting (a full queue drops it:
    /// the station's timers then retry or give up).
    fn report(
        driver: &mpsc::Sender<ws::Command>,
        f: impl FnOnce(&mut Station, Instant) + Send + 'static,
    ) {
        let _ = driver.try_send(ws::Command::With(Box::new(f)));
    }

    /// The station asks for a download, an install or an upload.
    fn on_transfer(&mut self, e: &StationEvent) {
        match e {
            StationEvent::FirmwareDownload {
                request_id,
                location,
                signing_certificate,
                signature,
                ..
            } => {
                let (id, location) = (*request_id, location.clone());
                let (cert, sig) = (signing_certificate.clone(), signature.clone());
                let driver = self.driver.clone();
                let slot = self.transfers.downloaded.clone();
                tokio::spawn(async move {
                    let got = transfers::download(&location, sig.as_deref(), cert.as_deref()).await;
                    if let Ok(mut s) = slot.lock() {
                        *s = Some((id, got.clone()));
                    }
                    let signed = sig.is_some();
                    Controller::report(&driver, move |s, now| match got {
                        Downloaded::Failed(_) => {
                            s.firmware_progress(now, id, FirmwareProgress::DownloadFailed);
                        }
                        Downloaded::File { verified, .. } if signed => {
                            s.firmware_progress(now, id, FirmwareProgress::Downloaded);
                            let p = if verified {
                                FirmwareProgress::SignatureVerified
                            } else {
                                FirmwareProgress::InvalidSignature
                            };
                            s.firmware_progress(now, id, p);
                        }
                        Downloaded::File { .. } => {
                            s.firmware_progress(now, id, FirmwareProgress::Downloaded);
                        }
                    });
                });
            }
            StationEvent::FirmwareInstall { request_id } => {
                let id = *request_id;
                let got = self
                    .transfers
                    .downloaded
                    .lock()
                    .ok()
                    .and_then(|s| s.clone());
                match got {
                    Some((
                        got_id,
                        Downloaded::File {
                            version,
                            verified: true,
                        },
                    )) if got_id == id => {
                        Controller::report(&self.driver, move |s, now| {
                            s.firmware_progress(now, id, FirmwareProgress::Installing);
                            s.firmware_progress(now, id, FirmwareProgress::InstallRebooting);
                        });
                        self.transfers.restart = Some(version);
                        self.transfers.installed = Some(id);
                    }
                    _ => Controller::report(&self.driver, move |s, now| {
                        s.firmware_progress(now, id, FirmwareProgress::InstallVerificationFailed);
                    }),
                }
            }
            StationEvent::LogUpload {
                request_id,
                location,
                file_name,
                oldest,
                latest,
                ..
            } => {
                let id = *request_id;
                let (location, file_name) = (location.clone(), file_name.clone());
                let body = self.transfers.log.file(*oldest, *latest);
                let driver = self.driver.clone();
                let shared = self.shared.clone();
                let identity = self.identity.clone();
                tokio::spawn(async move {
                    let result = transfers::upload(&location, &file_name, body.clone()).await;
                    if result.is_ok() {
                        if let Ok(mut u) = shared.uploads.lock() {
                            u.insert(identity, body);
                        }
                    }
                    Controller::report(&driver, move |s, now| {
                        let p = if result.is_ok() {
                            LogProgress::Uploaded
                        } else {
                            LogProgress::UploadFailed
                        };
                        s.log_progress(now, id, p);
                    });
                });
            }
            StationEvent::BootAccepted { .. } => {
                if let Some(id) = self.transfers.installed.take() {
                    Controller::report(&self.driver, move |s, now| {
                        s.firmware_progress(now, id, FirmwareProgress::Installed);
                    });
                }
            }
            _ => {}
        }
    }

    /// "Installs" firmware `version`: stops the driver (which closes the socket and saves
    /// the station), builds the station again from its store with the new version, and
    /// starts a new driver; its BootNotification carries the version.
    async fn restart(&mut self, version: String) {
        self.drive(ws::Command::Shutdown).await;
        if let Some(mut task) = self.driver_task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        let Some(event_tx) = self.transfers.event_tx.clone() else {
            return;
        };
        let mut store = self.transfers.store.clone();
        let saved = Saved::load(&mut store).unwrap_or_default();
        let now = TokioInstant::now().into_std();
        let (station, hw) = (self.transfers.make)(&version, saved, now);
        self.transfers.firmware = version;
        self.hw = hw;
        let (driver_tx, driver_rx) = ws::command_channel();
        self.driver = driver_tx;
        self.driver_task = Some(tokio::spawn(ws::run(
            station,
            Box::new(store),
            self.transfers.client.clone(),
            driver_rx,
            Some(event_tx),
        )));
    }

    fn retract(&mut self) {
        self.set_connected(false);
        self.set_booted(false);
        for _ in 0..self.charging {
            add(&self.shared.counters.charging, false);
        }
        self.charging = 0;
        self.shared.notify.notify_waiters();
    }

    /// Unplugs every EV that is charging and waits up to 5 s for the outbox to empty,
    /// looking again after each of the charger's events.
    async fn end_transactions(&mut self, events: &mut mpsc::Receiver<ClientEvent>) {
        let evses = self.evses;
        self.drive(ws::Command::With(Box::new(move |s, now| {
            for evse in 1..=evses {
                if s.transaction(evse).is_some() {
                    s.handle_hardware(now, HardwareEvent::CableUnplugged { evse });
                }
            }
        })))
        .await;
        let deadline = TokioInstant::now() + Duration::from_secs(5);
        loop {
            let (tx, rx) = oneshot::channel();
            self.drive(ws::Command::With(Box::new(move |s, _| {
                let _ = tx.send(s.outbox_len());
            })))
            .await;
            if rx.await.map_or(true, |n| n == 0) {
                return;
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(e)) => {
                    let lost = matches!(e, ClientEvent::Disconnected { .. });
                    self.on_event(e);
                    if lost {
                        return;
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// A random EV: 40 to 80 kWh, 10 to 70 % charged.
    fn random_ev(&mut self) -> SimulatedEv {
        let capacity = 40_000 + self.rng.next_u64() % 40_001;
        let percent = 10 + self.rng.next_u64() % 61;
        SimulatedEv {
            capacity_wh: Decimal::from(capacity),
            stored_wh: Decimal::from(capacity * percent / 100),
        }
    }

    async fn apply(&mut self, action: Action) {
        let hardware = |e| ws::Command::Hardware(e);
        match action {
            Action::Plug(evse) => {
                let ev = self.random_ev();
                let _ = self.hw.send(HwCommand::Ev { evse, ev: Some(ev) });
                self.drive(hardware(HardwareEvent::CablePlugged { evse }))
                    .await;
            }
            Action::Unplug(evse) => {
                self.drive(hardware(HardwareEvent::CableUnplugged { evse }))
                    .await;
                let _ = self.hw.send(HwCommand::Ev { evse, ev: None });
            }
            Action::Token(evse) => {
                // The driver who reserved this EVSE (or any EVSE) is the one who comes: the
                // reserved token, else the fleet's tag.
                let default = self.id_tag.clone();
                self.drive(ws::Command::With(Box::new(move |s, now| {
                    let held = s.reservations();
                    let token = held
                        .iter()
                        .find(|r| r.evse == evse)
                        .or_else(|| held.iter().find(|r| r.evse == 0))
                        .map_or(default, |r| r.id_token.clone());
                    s.present_id_token(now, Some(evse), &token);
                })))
                .await;
            }
            Action::StopToken(evse) => {
                // The driver who started the transaction stops it.
                self.drive(ws::Command::With(Box::new(move |s, now| {
                    if let Some(tx) = s.transaction(evse) {
                        s.present_id_token(now, Some(evse), &tx.id_token);
                    }
                })))
                .await;
            }
            Action::Suspend(evse, suspended) => {
                self.drive(hardware(HardwareEvent::EvSuspended { evse, suspended }))
                    .await
            }
            Action::Fill(evse) => {
                let _ = self.hw.send(HwCommand::Fill { evse });
                // The station reads the hardware's events on its next input.
                self.drive(ws::Command::With(Box::new(|s, now| s.handle_timeout(now))))
                    .await;
            }
        }
    }
}

/// Sleeps until `at`; never returns for `None`.
async fn sleep_until(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
