//! [`Fleet`]: many full simulated chargers, one tokio task each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ocpp_charger::settings::Setting;
use ocpp_charger::ws::{ClientConfig, ClientEvent};
use ocpp_charger::{
    AnchoredClock, BootState, HardwareEvent, Rng, Saved, SimulatedEv, Station, StationConfig,
    StationEvent, TimeSource, TransactionInfo,
};
use ocpp_codec::Version;
use rust_decimal::Decimal;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message;

use super::connect::{message_type, Target, Ws};
use super::hardware::{FleetHardware, HwCommand};
use super::script::{Action, Script};
use super::{ramp_offset, SimConfig, SimError};

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
    calls_sent: AtomicU64,
    answers: AtomicU64,
    call_errors: AtomicU64,
    central_calls: AtomicU64,
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
            calls_sent: get(&c.calls_sent),
            answers: get(&c.answers),
            call_errors: get(&c.call_errors),
            central_calls: get(&c.central_calls),
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

type StationFn = Box<dyn FnOnce(&mut Station, Instant) + Send>;

enum Command {
    Act(Action),
    Token(Option<u32>, String),
    Hardware(HardwareEvent),
    With(StationFn),
    Shutdown,
}

#[derive(Debug)]
struct Entry {
    identity: Arc<str>,
    version: Version,
    commands: mpsc::UnboundedSender<Command>,
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
            )
            .await?,
        );
        let capacity = (config.count * 8).clamp(1024, 65_536);
        let (events, _) = broadcast::channel(capacity);
        let shared = Arc::new(Shared {
            count: config.count,
            counters: Counters::default(),
            notify: Notify::new(),
            events,
        });
        let interval = config.meter_interval.as_secs().max(1);
        let clock: Arc<dyn TimeSource> = Arc::new(AnchoredClock::system());
        let start = TokioInstant::now();
        let now = start.into_std();
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
                .setting(Setting::SampledMeasurands, SAMPLED_MEASURANDS);
            let station = Station::new(station_config, Box::new(hardware), Saved::default(), now);
            if station.settings().int(Setting::SampleInterval) != interval {
                return Err(station_error(
                    "the meter sample interval could not be set".into(),
                ));
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let driver = Driver {
                identity: identity.clone(),
                station,
                hw,
                script: Script::new(
                    config.scenario,
                    config.evses,
                    config.charge_duration,
                    config.pause,
                    seed ^ 0x5c1f,
                ),
                shared: shared.clone(),
                target: target.clone(),
                bind: target.bind_ip(i),
                rng: Rng::new(seed ^ 0xe7),
                backoff: ClientConfig::new(config.url.clone())
                    .backoff(Duration::from_secs(1), Duration::from_secs(30)),
                id_tag: config.id_tag.clone(),
                evses: config.evses,
                graceful: config.end_transactions_on_shutdown,
                ws: None,
                connected: false,
                booted: false,
                charging: 0,
            };
            let start_at = start + ramp_offset(config.ramp, i);
            let task = tokio::spawn(driver.run(rx, start_at));
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
        entry
            .commands
            .send(command)
            .map_err(|_| SimError::ChargerStopped(identity.to_owned()))
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
        self.send(
            identity,
            Command::With(Box::new(move |station, now| {
                let _ = tx.send(f(station, now));
            })),
        )?;
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
            let _ = c.commands.send(Command::Shutdown);
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

/// One charger's task: owns the socket, the station and its script.
struct Driver {
    identity: Arc<str>,
    station: Station,
    hw: std::sync::mpsc::Sender<HwCommand>,
    script: Script,
    shared: Arc<Shared>,
    target: Arc<Target>,
    bind: Option<IpAddr>,
    rng: Rng,
    backoff: ClientConfig,
    id_tag: String,
    evses: u32,
    graceful: bool,
    ws: Option<Ws>,
    connected: bool,
    booted: bool,
    charging: u64,
}

async fn next_message(
    ws: &mut Option<Ws>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, start_at: TokioInstant) {
        let mut reconnect_at = start_at;
        let mut attempts: u32 = 0;
        let mut actions = Vec::new();
        loop {
            if self.ws.is_none() && TokioInstant::now() >= reconnect_at {
                let version = self.station.version();
                match self
                    .target
                    .connect(&self.identity, version, self.bind)
                    .await
                {
                    Ok(ws) => {
                        self.ws = Some(ws);
                        attempts = 0;
                        self.set_connected(true);
                        self.shared.emit(&self.identity, ClientEvent::Connected);
                        self.station.on_connected(TokioInstant::now().into_std());
                    }
                    Err(reason) => {
                        attempts += 1;
                        let delay = self.backoff.backoff_delay(attempts, &mut self.rng);
                        reconnect_at = TokioInstant::now() + delay;
                        self.shared
                            .counters
                            .connect_failures
                            .fetch_add(1, Ordering::Relaxed);
                        self.shared.notify.notify_waiters();
                        self.shared.emit(
                            &self.identity,
                            ClientEvent::Disconnected {
                                reason,
                                reconnect_in: delay,
                            },
                        );
                    }
                }
            }
            let failed = self.flush().await;
            self.drain_events();
            if let Some(reason) = failed {
                reconnect_at = self.lost(reason, &mut attempts);
                continue;
            }
            let mut deadline = self.station.poll_timeout().map(TokioInstant::from_std);
            let mut consider = |t: Option<TokioInstant>| {
                if let Some(t) = t {
                    deadline = Some(deadline.map_or(t, |d| d.min(t)));
                }
            };
            consider(self.ws.is_none().then_some(reconnect_at));
            consider(self.script.next_at().map(TokioInstant::from_std));
            let sleep_until =
                deadline.unwrap_or_else(|| TokioInstant::now() + Duration::from_secs(3600));
            tokio::select! {
                msg = next_message(&mut self.ws) => {
                    let now = TokioInstant::now().into_std();
                    match msg {
                        Some(Ok(Message::Text(text))) => {
                            self.count_in(text.as_str());
                            self.station.handle_text(now, text.as_str());
                        }
                        Some(Ok(Message::Ping(_))) => {
                            // tungstenite queued the pong; flush it now.
                            if let Some(ws) = self.ws.as_mut() {
                                let _ = ws.flush().await;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => reconnect_at = self.lost(e.to_string(), &mut attempts),
                        None => reconnect_at = self.lost("closed".into(), &mut attempts),
                    }
                }
                cmd = commands.recv() => {
                    let now = TokioInstant::now().into_std();
                    match cmd {
                        Some(Command::Act(a)) => self.apply(now, a),
                        Some(Command::Token(evse, tag)) => self.station.present_id_token(now, evse, &tag),
                        Some(Command::Hardware(e)) => self.station.handle_hardware(now, e),
                        Some(Command::With(f)) => f(&mut self.station, now),
                        Some(Command::Shutdown) | None => {
                            self.close().await;
                            return;
                        }
                    }
                }
                _ = tokio::time::sleep_until(sleep_until) => {
                    let now = TokioInstant::now().into_std();
                    self.station.handle_timeout(now);
                    self.script.due(now, &mut actions);
                    for a in actions.drain(..) {
                        self.apply(now, a);
                    }
                }
            }
        }
    }

    /// Sends everything the station has to send; the error if the socket failed.
    async fn flush(&mut self) -> Option<String> {
        let ws = self.ws.as_mut()?;
        let mut sent = 0;
        while let Some(text) = self.station.poll_transmit() {
            if message_type(&text) == Some(2) {
                self.shared
                    .counters
                    .calls_sent
                    .fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = ws.feed(Message::text(text)).await {
                return Some(e.to_string());
            }
            sent += 1;
        }
        if sent > 0 {
            if let Err(e) = ws.flush().await {
                return Some(e.to_string());
            }
        }
        None
    }

    fn count_in(&self, text: &str) {
        let c = &self.shared.counters;
        let counter = match message_type(text) {
            Some(2) => &c.central_calls,
            Some(3) => &c.answers,
            Some(4) | Some(5) => &c.call_errors,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn drain_events(&mut self) {
        let mut changed = false;
        let now = TokioInstant::now().into_std();
        while let Some(e) = self.station.poll_event() {
            let c = &self.shared.counters;
            match &e {
                StationEvent::BootAccepted { .. } => self.script.start(now),
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
            }
            self.shared.emit(&self.identity, ClientEvent::Station(e));
        }
        let booted = self.station.boot_state() == BootState::Accepted;
        if booted != self.booted {
            self.booted = booted;
            add(&self.shared.counters.booted, booted);
            changed = true;
        }
        if changed {
            self.shared.notify.notify_waiters();
        }
    }

    fn set_connected(&mut self, connected: bool) {
        if connected != self.connected {
            self.connected = connected;
            add(&self.shared.counters.connected, connected);
            self.shared.notify.notify_waiters();
        }
    }

    /// The connection failed: the station goes offline, the next attempt is scheduled.
    fn lost(&mut self, reason: String, attempts: &mut u32) -> TokioInstant {
        self.ws = None;
        *attempts += 1;
        let delay = self.backoff.backoff_delay(*attempts, &mut self.rng);
        self.station.on_disconnected(TokioInstant::now().into_std());
        self.set_connected(false);
        self.shared
            .counters
            .disconnects
            .fetch_add(1, Ordering::Relaxed);
        self.shared.emit(
            &self.identity,
            ClientEvent::Disconnected {
                reason,
                reconnect_in: delay,
            },
        );
        self.drain_events();
        TokioInstant::now() + delay
    }

    /// Shutdown: end running transactions (if configured), close the socket, take the
    /// station offline, retract the gauges.
    async fn close(&mut self) {
        if self.graceful && self.ws.is_some() && self.booted {
            self.end_transactions().await;
        }
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        }
        self.station.on_disconnected(TokioInstant::now().into_std());
        self.drain_events();
        self.set_connected(false);
        if self.booted {
            self.booted = false;
            add(&self.shared.counters.booted, false);
        }
        for _ in 0..self.charging {
            add(&self.shared.counters.charging, false);
        }
        self.charging = 0;
        self.shared.notify.notify_waiters();
    }

    /// Unplugs every EV that is charging and waits up to 5 s for the outbox to empty.
    async fn end_transactions(&mut self) {
        let now = TokioInstant::now().into_std();
        let running: Vec<u32> = (1..=self.evses)
            .filter(|e| self.station.transaction(*e).is_some())
            .collect();
        if running.is_empty() {
            return;
        }
        for evse in running {
            self.station
                .handle_hardware(now, HardwareEvent::CableUnplugged { evse });
        }
        let deadline = TokioInstant::now() + Duration::from_secs(5);
        while self.station.outbox_len() > 0 {
            if self.flush().await.is_some() {
                return;
            }
            self.drain_events();
            let wake = self
                .station
                .poll_timeout()
                .map_or(deadline, |t| TokioInstant::from_std(t).min(deadline));
            match tokio::time::timeout_at(wake, next_message(&mut self.ws)).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    self.count_in(text.as_str());
                    self.station
                        .handle_text(TokioInstant::now().into_std(), text.as_str());
                }
                Ok(Some(Ok(_))) => {}
                Ok(_) => return,
                Err(_) if TokioInstant::now() >= deadline => return,
                Err(_) => self.station.handle_timeout(TokioInstant::now().into_std()),
            }
        }
        eprintln!(
            "DBG {} done outbox {}",
            self.identity,
            self.station.outbox_len()
        );
        let _ = self.flush().await;
        self.drain_events();
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

    fn apply(&mut self, now: Instant, action: Action) {
        match action {
            Action::Plug(evse) => {
                let ev = self.random_ev();
                let _ = self.hw.send(HwCommand::Ev { evse, ev: Some(ev) });
                self.station
                    .handle_hardware(now, HardwareEvent::CablePlugged { evse });
            }
            Action::Unplug(evse) => {
                self.station
                    .handle_hardware(now, HardwareEvent::CableUnplugged { evse });
                let _ = self.hw.send(HwCommand::Ev { evse, ev: None });
            }
            Action::Token(evse) => {
                let tag = self.id_tag.clone();
                self.station.present_id_token(now, Some(evse), &tag);
            }
            Action::StopToken(evse) => {
                if self.station.transaction(evse).is_some() {
                    let tag = self.id_tag.clone();
                    self.station.present_id_token(now, Some(evse), &tag);
                }
            }
            Action::Suspend(evse, suspended) => self
                .station
                .handle_hardware(now, HardwareEvent::EvSuspended { evse, suspended }),
            Action::Fill(evse) => {
                let _ = self.hw.send(HwCommand::Fill { evse });
                // The station reads the hardware's events on its next input.
                self.station.handle_timeout(now);
            }
        }
    }
}
