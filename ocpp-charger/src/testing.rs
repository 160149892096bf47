//! Test kit (feature `test-util`): test your charger code the way this crate tests its own.
//!
//! - [`MockCentral`]: a sans-IO central system that answers every station call with a valid
//!   default (Accepted boot, Accepted tokens, increasing 1.6 transaction ids), records what it
//!   received, and can call the station.
//! - [`VirtualPair`]: a [`Station`] and a [`MockCentral`] on a virtual clock; `advance` jumps
//!   from deadline to deadline, so hours of protocol time run in microseconds. The pair is the
//!   station's driver: it performs the station's writes on its store
//!   ([`Station::persist_to`]) before it moves the messages.
//! - [`spawn_mock_central`]: the same mock central system behind a real WebSocket server on a
//!   loopback port, in one line.
//!
//! ```
//! use std::time::Duration;
//! use ocpp_charger::testing::VirtualPair;
//! use ocpp_charger::{HardwareEvent, Version};
//!
//! let mut pair = VirtualPair::new(Version::V16);
//! pair.connect();
//! pair.station_input(|s, now| s.handle_hardware(now, HardwareEvent::CablePlugged { evse: 1 }));
//! pair.station_input(|s, now| s.present_id_token(now, Some(1), "TAG1"));
//! pair.advance(Duration::from_secs(120));
//! assert_eq!(pair.central.actions_named("StartTransaction"), 1);
//! assert!(pair.central.actions_named("MeterValues") >= 1);
//! ```

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ocpp_codec::rpc::{Answer, Endpoint, EndpointConfig, Event};
pub use ocpp_codec::testing::TestClock;
use ocpp_codec::Version;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::hardware::{HardwareEvent, SimulatedHardware};
use crate::station::{Station, StationConfig, StationEvent};
use crate::store::{MemoryStore, Saved, Store};
use crate::time::AnchoredClock;

/// A sans-IO central system with valid default answers.
#[derive(Debug)]
pub struct MockCentral {
    /// Its RPC endpoint (public for tests that want raw access).
    pub ep: Endpoint,
    version: Version,
    /// Every CALL received from the station, in order: (action, payload).
    pub received: Vec<(String, Value)>,
    /// Answers to the calls this central system made: (message id, result or error code).
    pub answers: Vec<(String, Result<Value, String>)>,
    boot_statuses: VecDeque<&'static str>,
    boot_replies: VecDeque<String>,
    heartbeat_interval: u32,
    next_tx_id: i32,
    /// Tokens answered as not accepted (`Invalid` / `Blocked`).
    pub blocked: HashSet<String>,
    /// Actions left unanswered (to provoke timeouts).
    pub silent: HashSet<String>,
    /// Actions answered with CALLERROR `InternalError` (to provoke retries).
    pub failing: HashSet<String>,
    /// Actions answered with this text verbatim instead of the default answer (e.g. a
    /// TransactionEvent answer with an exact `totalCost`).
    pub replies: std::collections::HashMap<String, String>,
    /// Every OCPP 2.1 SEND received from the station, in order: (action, payload).
    pub sends: Vec<(String, Value)>,
    wall: DateTime<Utc>,
}

impl MockCentral {
    /// A central system speaking `version`.
    pub fn new(version: Version) -> MockCentral {
        MockCentral {
            ep: Endpoint::new(Self::endpoint_config(version)),
            version,
            received: Vec::new(),
            answers: Vec::new(),
            boot_statuses: VecDeque::new(),
            boot_replies: VecDeque::new(),
            heartbeat_interval: 300,
            next_tx_id: 1,
            blocked: HashSet::new(),
            silent: HashSet::new(),
            failing: HashSet::new(),
            replies: std::collections::HashMap::new(),
            sends: Vec::new(),
            wall: "2025-01-01T00:00:00Z".parse().unwrap_or_default(),
        }
    }

    /// Its endpoint's configuration: the version's defaults, except that calls left
    /// unanswered on purpose ([`MockCentral::silent`]) never make it refuse further ones.
    fn endpoint_config(version: Version) -> EndpointConfig {
        EndpointConfig::new(version).max_unanswered_calls(usize::MAX)
    }

    /// Answers the next BootNotifications with these statuses (then `Accepted`).
    pub fn boot_statuses(mut self, statuses: &[&'static str]) -> Self {
        self.boot_statuses = statuses.iter().copied().collect();
        self
    }

    /// Answers the next BootNotifications with these payloads, sent verbatim (so a test can
    /// send what `serde_json::Value` cannot hold, e.g. `"interval": 99999999999999999999`);
    /// they come before [`MockCentral::boot_statuses`].
    pub fn boot_replies(mut self, payloads: &[&str]) -> Self {
        self.boot_replies = payloads.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// The heartbeat interval given at boot (default 300 s).
    pub fn heartbeat_interval(mut self, secs: u32) -> Self {
        self.heartbeat_interval = secs;
        self
    }

    /// The next 1.6 transaction id it issues (default 1).
    pub fn first_transaction_id(mut self, id: i32) -> Self {
        self.next_tx_id = id;
        self
    }

    /// A fresh endpoint (a new connection), keeping what was recorded.
    pub fn reconnect(&mut self) {
        self.ep = Endpoint::new(Self::endpoint_config(self.version));
    }

    /// How many calls of `action` were received.
    pub fn actions_named(&self, action: &str) -> usize {
        self.received.iter().filter(|(a, _)| a == action).count()
    }

    /// The payloads of `action` received, in order.
    pub fn payloads(&self, action: &str) -> Vec<&Value> {
        self.received
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, p)| p)
            .collect()
    }

    /// The received actions, in order.
    pub fn actions(&self) -> Vec<&str> {
        self.received.iter().map(|(a, _)| a.as_str()).collect()
    }

    /// The answer to our call `id`, if it came.
    pub fn answer(&self, id: &str) -> Option<&Result<Value, String>> {
        self.answers.iter().find(|(i, _)| i == id).map(|(_, a)| a)
    }

    /// Calls the station.
    pub fn call(&mut self, now: Instant, action: &str, payload: Value) -> String {
        let raw = serde_json::value::RawValue::from_string(payload.to_string())
            .unwrap_or_else(|_| serde_json::value::RawValue::from_string("{}".into()).unwrap());
        self.ep.call(now, action, raw).unwrap_or_default()
    }

    /// Calls the station with a payload sent verbatim (numbers beyond 64 bits, malformed
    /// JSON...). Returns the message id, empty when the endpoint refused the call.
    pub fn call_raw(&mut self, now: Instant, action: &str, payload: &str) -> String {
        match serde_json::value::RawValue::from_string(payload.to_owned()) {
            Ok(raw) => self.ep.call(now, action, raw).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Handles one text from the station and answers its calls.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        self.ep.handle_text(now, text);
        self.process();
    }

    /// Handles the passing of time (our call timeouts).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
        self.process();
    }

    fn process(&mut self) {
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                Event::Call {
                    id,
                    action,
                    payload,
                } => {
                    let value: Value = serde_json::from_str(payload.get()).unwrap_or_default();
                    let verbatim = (action == "BootNotification")
                        .then(|| self.boot_replies.pop_front())
                        .flatten()
                        .or_else(|| self.replies.get(&action).cloned());
                    let reply = match verbatim {
                        Some(text) => text,
                        None => self.reply(&action, &value).to_string(),
                    };
                    self.received.push((action.clone(), value));
                    if self.silent.contains(&action) {
                        continue;
                    }
                    if self.failing.contains(&action) {
                        let _ = self.ep.respond_error(
                            &id,
                            &ocpp_codec::ErrorCode::InternalError,
                            "failing on purpose",
                            None,
                        );
                        continue;
                    }
                    if let Ok(raw) = serde_json::value::RawValue::from_string(reply) {
                        let _ = self.ep.respond(&id, &raw);
                    }
                }
                Event::Result { id, payload, .. } => {
                    let v = serde_json::from_str(payload.get()).unwrap_or_default();
                    self.answers.push((id, Ok(v)));
                }
                Event::Send {
                    action, payload, ..
                } => {
                    let v = serde_json::from_str(payload.get()).unwrap_or_default();
                    self.sends.push((action, v));
                }
                Event::Error { id, code, .. } => {
                    self.answers
                        .push((id, Err(code.as_str(self.version).to_owned())));
                }
                Event::Late {
                    id,
                    answer: Answer::Result(p),
                    ..
                } => {
                    let v = serde_json::from_str(p.get()).unwrap_or_default();
                    self.answers.push((id, Ok(v)));
                }
                _ => {}
            }
        }
    }

    fn reply(&mut self, action: &str, v: &Value) -> Value {
        let v16 = self.version == Version::V16;
        let now = self.wall.to_rfc3339();
        match action {
            "BootNotification" => {
                let status = self.boot_statuses.pop_front().unwrap_or("Accepted");
                json!({ "status": status, "currentTime": now, "interval": self.heartbeat_interval })
            }
            "Heartbeat" => json!({ "currentTime": now }),
            "Authorize" => {
                let token = if v16 {
                    v.get("idTag").and_then(Value::as_str)
                } else {
                    v.pointer("/idToken/idToken").and_then(Value::as_str)
                }
                .unwrap_or_default();
                let status = if self.blocked.contains(token) {
                    if v16 {
                        "Blocked"
                    } else {
                        "Invalid"
                    }
                } else {
                    "Accepted"
                };
                if v16 {
                    json!({ "idTagInfo": { "status": status } })
                } else {
                    json!({ "idTokenInfo": { "status": status } })
                }
            }
            "StartTransaction" => {
                let id = self.next_tx_id;
                self.next_tx_id = self.next_tx_id.checked_add(1).unwrap_or(1);
                json!({ "idTagInfo": { "status": "Accepted" }, "transactionId": id })
            }
            "DataTransfer" => json!({ "status": "Accepted" }),
            "OpenPeriodicEventStream" => json!({ "status": "Accepted" }),
            _ => json!({}),
        }
    }
}

/// How many deadlines in a row at one instant [`VirtualPair::advance`] tolerates before it
/// calls the station spinning.
pub const SPIN_LIMIT: u32 = 10_000;

/// A [`Station`] wired to a [`MockCentral`] on a virtual clock.
pub struct VirtualPair {
    /// The station under test.
    pub station: Station,
    /// The store the pair writes the station's work to.
    pub store: Box<dyn Store>,
    /// The central system.
    pub central: MockCentral,
    /// The shared virtual clock.
    pub clock: TestClock,
    /// Every event the station reported, in order.
    pub events: Vec<StationEvent>,
    /// Every text the station sent, in order.
    pub station_sent: Vec<String>,
    connected: bool,
}

impl std::fmt::Debug for VirtualPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualPair")
            .field("station", &self.station)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

/// The default test configuration: identity `"CP1"`, wall clock 2025-01-01T00:00:00Z at the
/// virtual start, seed 7, outgoing payloads validated.
pub fn test_config(version: Version, clock: &TestClock) -> StationConfig {
    let wall: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap_or_default();
    StationConfig::new("CP1", version)
        .time_source(std::sync::Arc::new(AnchoredClock::new(clock.now(), wall)))
        .seed(7)
        .validate_outgoing(true)
}

impl VirtualPair {
    /// A 1-EVSE station with [`SimulatedHardware`] at 7.4 kW and a [`MemoryStore`], and a
    /// default [`MockCentral`]; not connected yet.
    pub fn new(version: Version) -> VirtualPair {
        let clock = TestClock::new();
        let cfg = test_config(version, &clock);
        VirtualPair::with(
            cfg,
            Box::new(MemoryStore::new()),
            MockCentral::new(version),
            clock,
        )
    }

    /// A pair from parts: the station is built from what `store` holds.
    pub fn with(
        config: StationConfig,
        mut store: Box<dyn Store>,
        central: MockCentral,
        clock: TestClock,
    ) -> VirtualPair {
        let hw = SimulatedHardware::new(config.evses, Decimal::from(7400));
        let saved = Saved::load(&mut *store).expect("the store loads");
        let station = Station::new(config, Box::new(hw), saved, clock.now());
        VirtualPair::from_station(station, store, central, clock)
    }

    /// A pair around an existing station, writing to `store` (the one it was loaded from).
    pub fn from_station(
        station: Station,
        store: Box<dyn Store>,
        central: MockCentral,
        clock: TestClock,
    ) -> VirtualPair {
        VirtualPair {
            station,
            store,
            central,
            clock,
            events: Vec::new(),
            station_sent: Vec::new(),
            connected: false,
        }
    }

    /// Opens the connection.
    pub fn connect(&mut self) {
        self.central.reconnect();
        self.connected = true;
        let now = self.clock.now();
        self.station.on_connected(now);
        self.drive();
    }

    /// Marks the pair connected without telling the station (for tests that called
    /// [`Station::on_connected`] themselves), then drives.
    pub fn connect_existing(&mut self) {
        self.central.reconnect();
        self.connected = true;
        self.drive();
    }

    /// Drops the connection (messages in transit are lost).
    pub fn disconnect(&mut self) {
        self.connected = false;
        let now = self.clock.now();
        self.station.on_disconnected(now);
        self.drive();
    }

    /// Whether connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Runs `f` on the station at the current time, then drives.
    pub fn station_input(&mut self, f: impl FnOnce(&mut Station, Instant)) {
        let now = self.clock.now();
        f(&mut self.station, now);
        self.drive();
    }

    /// A cable is plugged into `evse` (a [`HardwareEvent::CablePlugged`]).
    pub fn plug_in(&mut self, evse: u32) {
        self.station_input(|s, now| s.handle_hardware(now, HardwareEvent::CablePlugged { evse }));
    }

    /// The cable is pulled out of `evse` (a [`HardwareEvent::CableUnplugged`]).
    pub fn unplug(&mut self, evse: u32) {
        self.station_input(|s, now| s.handle_hardware(now, HardwareEvent::CableUnplugged { evse }));
    }

    /// The driver presents `tag` at the reader of `evse`.
    pub fn present(&mut self, evse: u32, tag: &str) {
        self.station_input(|s, now| s.present_id_token(now, Some(evse), tag));
    }

    /// The central system calls the station; returns the message id (see
    /// [`MockCentral::answer`]).
    pub fn central_call(&mut self, action: &str, payload: Value) -> String {
        let now = self.clock.now();
        let id = self.central.call(now, action, payload);
        self.drive();
        id
    }

    /// The central system calls the station with a payload sent verbatim (see
    /// [`MockCentral::call_raw`]); returns the message id.
    pub fn central_call_raw(&mut self, action: &str, payload: &str) -> String {
        let now = self.clock.now();
        let id = self.central.call_raw(now, action, payload);
        self.drive();
        id
    }

    /// The frame the station answered the central system's call `id` with (CALLRESULT or
    /// CALLERROR), exactly as sent.
    pub fn answer_frame(&self, id: &str) -> Option<&str> {
        let result = format!("[3,{}", Value::from(id));
        let error = format!("[4,{}", Value::from(id));
        self.station_sent
            .iter()
            .find(|t| t.starts_with(&result) || t.starts_with(&error))
            .map(String::as_str)
    }

    /// Moves every pending message both ways until quiet; collects station events.
    pub fn drive(&mut self) {
        let now = self.clock.now();
        loop {
            let mut moved = false;
            self.station.persist_to(now, &mut *self.store);
            while let Some(t) = self.station.poll_transmit() {
                moved = true;
                if self.connected {
                    self.central.handle_text(now, &t);
                }
                self.station_sent.push(t);
            }
            while let Some(t) = self.central.ep.poll_transmit() {
                if self.connected {
                    moved = true;
                    self.station.handle_text(now, &t);
                }
            }
            while let Some(e) = self.station.poll_event() {
                self.events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    /// Advances virtual time by `by`, firing every deadline on the way.
    ///
    /// Panics when the station keeps asking to be woken without time moving (more than
    /// [`SPIN_LIMIT`] deadlines in a row at one instant): a zero-length timer loop.
    pub fn advance(&mut self, by: Duration) {
        let target = self.clock.now() + by;
        let mut same_instant = 0u32;
        let mut last = self.clock.now();
        loop {
            let next = [self.station.poll_timeout(), self.central.ep.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= target => {
                    if t <= last {
                        same_instant += 1;
                        assert!(
                            same_instant <= SPIN_LIMIT,
                            "the station spins: {SPIN_LIMIT} deadlines in a row at one instant"
                        );
                    } else {
                        same_instant = 0;
                        last = t;
                    }
                    let now = self.clock.advance_to(t);
                    self.station.handle_timeout(now);
                    if self.connected {
                        self.central.handle_timeout(now);
                    }
                    self.drive();
                }
                _ => break,
            }
        }
        let now = self.clock.advance_to(target);
        self.station.handle_timeout(now);
        self.drive();
    }

    /// Events matching `f`.
    pub fn events_where(&self, f: impl Fn(&StationEvent) -> bool) -> Vec<&StationEvent> {
        self.events.iter().filter(|e| f(e)).collect()
    }

    /// Panics if the station reported an invalid outgoing payload.
    pub fn assert_no_invalid_outgoing(&self) {
        let bad = self.events_where(|e| matches!(e, StationEvent::InvalidOutgoing { .. }));
        assert!(bad.is_empty(), "invalid outgoing payloads: {bad:#?}");
    }
}

#[cfg(feature = "ws")]
pub use self::server::{spawn_mock_central, MockCentralHandle};

#[cfg(feature = "ws")]
mod server {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use futures::{SinkExt, StreamExt};
    use ocpp_codec::Version;
    use serde_json::Value;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;

    use super::MockCentral;

    /// A running mock central system (see [`spawn_mock_central`]).
    #[derive(Debug, Clone)]
    pub struct MockCentralHandle {
        /// `ws://127.0.0.1:PORT/ocpp`; stations append `/<identity>`.
        pub url: String,
        /// The address it listens on.
        pub addr: SocketAddr,
        received: Arc<Mutex<Vec<(String, String, Value)>>>,
        connections: Arc<Mutex<u32>>,
        auth: Arc<Mutex<Vec<Option<String>>>>,
        kick: Arc<tokio::sync::watch::Sender<u64>>,
        task: Arc<tokio::task::JoinHandle<()>>,
    }

    impl MockCentralHandle {
        /// Every call received: (station identity, action, payload), in order.
        pub fn received(&self) -> Vec<(String, String, Value)> {
            self.received.lock().map(|r| r.clone()).unwrap_or_default()
        }

        /// How many calls of `action` arrived.
        pub fn count(&self, action: &str) -> usize {
            self.received()
                .iter()
                .filter(|(_, a, _)| a == action)
                .count()
        }

        /// How many WebSocket connections were accepted.
        pub fn connections(&self) -> u32 {
            self.connections.lock().map(|c| *c).unwrap_or(0)
        }

        /// The `Authorization` headers seen, per connection.
        pub fn authorization_headers(&self) -> Vec<Option<String>> {
            self.auth.lock().map(|a| a.clone()).unwrap_or_default()
        }

        /// Closes every open connection (the server keeps accepting new ones), to test
        /// reconnection.
        pub fn drop_connections(&self) {
            self.kick.send_modify(|k| *k += 1);
        }

        /// Stops accepting and closes every open connection.
        pub fn shutdown(&self) {
            self.task.abort();
            self.drop_connections();
        }
    }

    /// Starts a [`MockCentral`] for `version` behind a WebSocket server on `127.0.0.1`, port
    /// chosen by the OS, in one line:
    ///
    /// ```no_run
    /// # async fn f() {
    /// let central = ocpp_charger::testing::spawn_mock_central(ocpp_charger::Version::V201).await;
    /// // connect a station to central.url ...
    /// # }
    /// ```
    pub async fn spawn_mock_central(version: Version) -> MockCentralHandle {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let auth = Arc::new(Mutex::new(Vec::new()));
        let (r, c, a) = (received.clone(), connections.clone(), auth.clone());
        let (kick, kick_rx) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, c, a) = (r.clone(), c.clone(), a.clone());
                let mut kick_rx = kick_rx.clone();
                kick_rx.borrow_and_update();
                tokio::spawn(async move {
                    let mut identity = String::new();
                    #[allow(clippy::result_large_err)] // tungstenite's callback signature
                    let callback = |req: &Request, mut resp: Response| {
                        identity = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
                        let header = req
                            .headers()
                            .get("authorization")
                            .and_then(|h| h.to_str().ok())
                            .map(str::to_owned);
                        if let Ok(mut a) = a.lock() {
                            a.push(header);
                        }
                        let offered = req
                            .headers()
                            .get("sec-websocket-protocol")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or("");
                        if offered
                            .split(',')
                            .any(|p| p.trim() == version.subprotocol())
                        {
                            resp.headers_mut().insert(
                                "sec-websocket-protocol",
                                HeaderValue::from_static(version.subprotocol()),
                            );
                        }
                        Ok(resp)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                        return;
                    };
                    if let Ok(mut c) = c.lock() {
                        *c += 1;
                    }
                    let (mut tx, mut rx) = ws.split();
                    let mut central = MockCentral::new(version);
                    let mut seen = 0;
                    loop {
                        let msg = tokio::select! {
                            m = rx.next() => m,
                            _ = kick_rx.changed() => {
                                let _ = tx.send(Message::Close(None)).await;
                                return;
                            }
                        };
                        let Some(Ok(msg)) = msg else { return };
                        let Message::Text(text) = msg else { continue };
                        central.handle_text(Instant::now(), text.as_str());
                        if let Ok(mut r) = r.lock() {
                            for (action, p) in &central.received[seen..] {
                                r.push((identity.clone(), action.clone(), p.clone()));
                            }
                        }
                        seen = central.received.len();
                        while let Some(out) = central.ep.poll_transmit() {
                            if tx.send(Message::text(out)).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        MockCentralHandle {
            url: format!("ws://{addr}/ocpp"),
            addr,
            received,
            connections,
            auth,
            kick: Arc::new(kick),
            task: Arc::new(task),
        }
    }
}

/// What a driver does to start charging at a running client: plug a cable into `evse`, then
/// present `tag` at its reader.
pub fn plug_in_and_present(
    client: &crate::ws::ClientHandle,
    evse: u32,
    tag: &str,
) -> Result<(), crate::ws::CommandError> {
    client.hardware(HardwareEvent::CablePlugged { evse })?;
    client.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(evse),
        id_token: tag.into(),
    })
}
