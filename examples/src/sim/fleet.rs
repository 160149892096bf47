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
use super::{ramp_offset, SimConfig, SimError};

/// How many commands of the application wait for one charger at most ([`Fleet::plug_in`],
/// [`Fleet::present_id_token`], ...); beyond it a command is refused with
/// [`SimError::Busy`].
pub const COMMAND_QUEUE: usize = 64;

/// The measurands the simulated stations sample during transactions.
const SAMPLED_MEASURANDS: &str =
    "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC";

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
            let (hardware, hw) = FleetHardware::new(config.evses, config.power_w);
            let station_config = StationConfig::new(identity.to_string(), version)
                .vendor_model(config.vendor.clone(), config.model.clone())
                .firmware_version(env!("CARGO_PKG_VERSION"))
                .evses(config.evses)
                .call_timeout(config.call_timeout)
                .time_source(clock.clone())
                .seed(seed)
                .setting(Setting::SampleInterval, interval.to_string())
                .setting(Setting::SampledMeasurands, SAMPLED_MEASURANDS)
                // 1.6: the running cost through the California Pricing DataTransfers.
                .cost_messages(true);
            let station = Station::new(station_config, Box::new(hardware), Saved::default(), now);
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
            let driver = tokio::spawn(ws::run(
                station,
                Box::new(MemoryStore::new()),
                client,
                driver_rx,
                Some(event_tx),
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
                    Some(e) => self.on_event(e),
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
