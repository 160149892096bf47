//! The sans-IO session of one charger connection (quinn-proto style).
//!
//! A [`Session`] wraps the codec's RPC [`Endpoint`] and adds what a central system must know
//! about a charger: typed decoding of its calls with the exact refusals, the boot state, the
//! connectors, the transactions (1.6 central-issued ids, 2.x `seqNo` ordering with gap and
//! duplicate detection and the `offline` flag, re-sent messages answered idempotently) and the
//! meter data, reported as version-neutral [`Event`]s.
//!
//! Driving it: feed every text message with [`Session::handle_text`] and the passing of time
//! with [`Session::handle_timeout`]; after each call drain [`Session::poll_transmit`] (send in
//! order) and [`Session::poll_event`]; sleep until [`Session::poll_timeout`]. Charger requests
//! come out as [`SessionEvent::Request`]: answer each with [`Session::respond`] (or
//! [`Session::respond_default`], [`Session::respond_error`]). The session never reads a clock:
//! `now` is passed in and wall-clock time comes from the injected [`WallClock`](crate::WallClock).
//!
//! ```
//! use std::time::Instant;
//! use ocpp_central::{Session, SessionConfig, SessionEvent, Event, BootState};
//! use ocpp_types::Version;
//!
//! let mut s = Session::new(SessionConfig::new("CP1", Version::V16));
//! let now = Instant::now();
//! s.handle_text(now, r#"[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#);
//! while let Some(ev) = s.poll_event() {
//!     if let SessionEvent::Request { id, .. } = ev {
//!         s.respond_default(now, &id).unwrap(); // Accepted, interval 300
//!     }
//! }
//! assert!(s.poll_transmit().unwrap().starts_with(r#"[3,"1",{"status":"Accepted""#));
//! assert_eq!(s.state().boot, BootState::Accepted);
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ocpp_codec::rpc::{Endpoint, EndpointConfig, Event as RpcEvent, IdGenerator, RandomIds};
use ocpp_codec::typed::{Side, TypedCodec, TypedRequest, TypedResponse};
use ocpp_codec::ErrorCode;
use ocpp_types::Version;
use serde_json::value::RawValue;

use crate::defaults::{CallFailure, Defaults};
use crate::incoming::IncomingCall;
use crate::message::{central_may_send, AnyRequest, AnyResponse};
use crate::model::{BootState, ChargerState, Event, Limits, Transaction};

/// How a [`Session`] behaves.
pub struct SessionConfig {
    identity: String,
    version: Version,
    call_timeout: Duration,
    max_message_size: usize,
    ids: Option<Box<dyn IdGenerator>>,
    defaults: Defaults,
    refuse_before_accepted: bool,
    remembered_answers: usize,
    lenient: bool,
    limits: Limits,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("identity", &self.identity)
            .field("version", &self.version)
            .field("call_timeout", &self.call_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("defaults", &self.defaults)
            .field("refuse_before_accepted", &self.refuse_before_accepted)
            .field("lenient", &self.lenient)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// Defaults for charger `identity` speaking `version`: 30 s call timeout, 1 MiB maximum
    /// message size, message ids in UUID form seeded from the identity, [`Defaults::default`],
    /// requests before an `Accepted` boot refused, 16 transaction answers remembered.
    pub fn new(identity: impl Into<String>, version: Version) -> SessionConfig {
        SessionConfig {
            identity: identity.into(),
            version,
            call_timeout: Duration::from_secs(30),
            max_message_size: 1 << 20,
            ids: None,
            defaults: Defaults::default(),
            refuse_before_accepted: true,
            remembered_answers: 16,
            lenient: false,
            limits: Limits::default(),
        }
    }

    /// The bounds of the charger's model ([`Limits::default`] unless set).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Lenient mode for this charger's requests (off by default): a request its schema
    /// refuses is repaired where field devices commonly go wrong (unknown properties removed,
    /// a missing timestamp offset taken as UTC, a number sent as a string, an optional enum
    /// value outside the list dropped; see [`ocpp_codec::typed`]) and accepted, with an
    /// [`Event::Repaired`] listing every repair. It runs only after the strict decode failed,
    /// so conforming traffic pays nothing; what it cannot repair gets the strict CALLERROR.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// How long to wait for the charger's answer to a central call.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The largest message accepted, in bytes.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The generator of outgoing message ids.
    pub fn id_generator(mut self, ids: impl IdGenerator + 'static) -> Self {
        self.ids = Some(Box::new(ids));
        self
    }

    /// The default answers, wall clock and 1.6 transaction id source.
    pub fn defaults(mut self, defaults: Defaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// Whether charger requests other than BootNotification (and what the central system
    /// triggered) are refused with `SecurityError` after a `Pending` or `Rejected` boot answer
    /// (default `true`; OCPP 2.0.1 part 2 use cases B02/B03, see the crate README).
    pub fn refuse_before_accepted(mut self, refuse: bool) -> Self {
        self.refuse_before_accepted = refuse;
        self
    }

    /// How many answers to transaction messages are remembered to answer re-sent copies
    /// identically (default 16; the oldest is forgotten beyond). They live as long as the
    /// connection, and a charger has one CALL outstanding at a time on it, so a copy re-sent
    /// on the same connection is of one of its latest messages. Each remembered answer costs
    /// about a hundred bytes per connection: at 1,024, a 2.x charger in a transaction, whose
    /// every `TransactionEvent` is remembered, grew the process by some 150 KB per connection
    /// over its first thousand meter updates. Each transaction message is looked up by a scan
    /// of the remembered answers' hashes: a bound of thousands costs microseconds a message.
    pub fn remembered_answers(mut self, n: usize) -> Self {
        self.remembered_answers = n;
        self
    }

    /// The charger identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }
}

/// Why a central call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No answer within the call timeout.
    #[error("the charger did not answer in time")]
    Timeout,
    /// The charger answered with a CALLERROR.
    #[error("the charger answered {code}: {description}")]
    CallError {
        /// The code.
        code: ErrorCode,
        /// The description.
        description: String,
        /// The details JSON.
        details: String,
    },
    /// The connection closed before an answer came.
    #[error("the charger is disconnected")]
    Disconnected,
    /// The answer does not conform to the response schema.
    #[error("invalid answer: {0}")]
    InvalidResponse(String),
    /// The call was not sent: the charger's boot was rejected (2.0.1 B03: the CSMS sends
    /// nothing to a rejected charger).
    #[error("the charger's boot was rejected; no calls may be sent")]
    BootRejected,
    /// The call was not sent: this many calls already wait for the charger
    /// ([`MAX_QUEUED_COMMANDS`](crate::handler::MAX_QUEUED_COMMANDS)).
    #[error("too many calls queued for the charger ({0})")]
    QueueFull(usize),
    /// The call was not sent: wrong version, not a central-system action, or the endpoint
    /// refused it.
    #[error("call refused: {0}")]
    Refused(String),
}

impl CallError {
    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, CallError::Timeout)
    }

    /// Whether the connection closed.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, CallError::Disconnected)
    }
}

/// Why the application's answer to a charger request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// No unanswered charger request has this id.
    #[error("no unanswered request with id {0:?}")]
    UnknownRequest(String),
    /// The response is not the answer to that request (other action or version).
    #[error("response {found} does not answer {expected}")]
    WrongResponse {
        /// The request's action.
        expected: String,
        /// The response's action.
        found: String,
    },
}

/// Something a driver or application must handle; drain with [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // carries typed messages; see `AnyRequest`
pub enum SessionEvent {
    /// A valid charger request awaits the application's answer ([`Session::respond`]).
    Request {
        /// The message id to answer.
        id: String,
        /// The typed request.
        request: AnyRequest,
        /// The request as it came over the wire: hand it to the handler future with
        /// [`answering`](crate::incoming::answering).
        call: IncomingCall,
    },
    /// A version-neutral model event.
    Model(Event),
    /// The answer to a central call ([`Session::call`]).
    Answer {
        /// The call's message id (returned by [`Session::call`]).
        id: String,
        /// The call's action.
        action: String,
        /// The typed response, or why there is none.
        result: Result<AnyResponse, CallError>,
    },
    /// (2.1) A SEND message from the charger (no answer is expected).
    Send {
        /// The action.
        action: String,
        /// The payload, as received.
        payload: String,
    },
    /// A protocol irregularity the RPC layer already handled (malformed frame answered,
    /// late/duplicate/unmatched answers, repeated call ids); for logs and metrics.
    Protocol(String),
}

#[derive(Debug)]
struct Pending {
    /// Shared with the model's events of its answer (a typed request is large, and the map
    /// keeps its capacity per connection).
    request: Arc<AnyRequest>,
    /// Key under which the answer is remembered for re-sent copies.
    memo: Option<MemoKey>,
}

/// What identifies a transaction message for its re-sent copies (see [`Session::memo_key`]),
/// with its hash: a lookup compares the hashes of the connection's few remembered answers,
/// which lie together in memory, and the text only where they match.
#[derive(Debug)]
struct MemoKey {
    hash: u64,
    text: String,
}

impl MemoKey {
    fn new(text: String) -> MemoKey {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        text.hash(&mut h);
        MemoKey {
            hash: h.finish(),
            text,
        }
    }
}

/// The answers of a connection's latest transaction messages, oldest first, at most
/// [`SessionConfig::remembered_answers`]. A charger has one CALL outstanding at a time, so
/// there are few, and a scan of their hashes is cheaper than a map: a map's lookup and
/// removal per message touched its table, its keys and its entries, cold, on every
/// transaction message of a connection.
#[derive(Debug, Default)]
struct Remembered {
    hashes: VecDeque<u64>,
    /// Key text and answer, in the order of `hashes`.
    entries: VecDeque<(String, String)>,
}

impl Remembered {
    fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    fn get(&self, key: &MemoKey) -> Option<&str> {
        self.hashes
            .iter()
            .zip(&self.entries)
            .find(|(h, (text, _))| **h == key.hash && *text == key.text)
            .map(|(_, (_, answer))| answer.as_str())
    }

    /// Remembers `answer` under `key`, forgetting the oldest beyond `bound`.
    fn insert(&mut self, key: MemoKey, answer: String, bound: usize) {
        while self.hashes.len() >= bound {
            self.hashes.pop_front();
            self.entries.pop_front();
        }
        self.hashes.push_back(key.hash);
        self.entries.push_back((key.text, answer));
    }
}

/// The parts of a session most chargers never use (central calls, triggers before the boot
/// was accepted, re-sent transaction messages), boxed apart: an idle charger's session stays
/// small.
#[derive(Debug, Default)]
struct Rare {
    /// Central calls in flight: id -> action.
    outgoing: HashMap<String, String>,
    /// Actions the central system triggered while not accepted (allowed through).
    triggered: HashSet<String>,
    /// Remembered answers of transaction messages.
    answers: Remembered,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.outgoing.is_empty() && self.triggered.is_empty() && self.answers.is_empty()
    }
}

/// The sans-IO session of one charger connection (see the [module docs](self)).
pub struct Session {
    ep: Endpoint,
    version: Version,
    defaults: Defaults,
    refuse_before_accepted: bool,
    lenient: bool,
    remembered: usize,
    /// Shared with the state the driver published ([`Session::shared_state`]) until it
    /// changes again: an idle charger's state is held once.
    state: Arc<ChargerState>,
    pending: HashMap<String, Pending>,
    /// What most chargers never need, allocated when first needed.
    rare: Option<Box<Rare>>,
    events: VecDeque<SessionEvent>,
    closed: bool,
    limits: Limits,
    /// Changes whenever the model changed (see [`Session::generation`]).
    generation: u64,
    last_seen: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("identity", &self.state.identity)
            .field("version", &self.version)
            .field("boot", &self.state.boot)
            .finish_non_exhaustive()
    }
}

fn seed_of(identity: &str) -> u64 {
    identity.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Session {
    /// A new session; the [`Event::Connected`] event is queued.
    pub fn new(config: SessionConfig) -> Session {
        let SessionConfig {
            identity,
            version,
            call_timeout,
            max_message_size,
            ids,
            defaults,
            refuse_before_accepted,
            remembered_answers,
            lenient,
            limits,
        } = config;
        let mut ep_config = EndpointConfig::new(version)
            .call_timeout(call_timeout)
            .max_message_size(max_message_size);
        ep_config = match ids {
            Some(ids) => ep_config.id_generator(BoxedIds(ids)),
            None => ep_config.id_generator(RandomIds::new(
                seed_of(&identity) ^ defaults.clock.now().timestamp_nanos_opt().unwrap_or(0) as u64,
            )),
        };
        let now = defaults.clock.now();
        let mut events = VecDeque::new();
        events.push_back(SessionEvent::Model(Event::Connected {
            identity: identity.clone(),
            version,
        }));
        Session {
            ep: Endpoint::new(ep_config),
            version,
            refuse_before_accepted,
            lenient,
            remembered: remembered_answers,
            state: Arc::new(ChargerState::new(identity, version, now)),
            defaults,
            pending: HashMap::new(),
            rare: None,
            events,
            closed: false,
            limits,
            generation: 0,
            last_seen: None,
        }
    }

    /// The connection's version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The charger identity.
    pub fn identity(&self) -> &str {
        &self.state.identity
    }

    /// The version-neutral state of the charger.
    pub fn state(&self) -> &ChargerState {
        &self.state
    }

    /// The state, shared (a driver publishes it without copying it).
    #[cfg(feature = "tokio")]
    pub(crate) fn shared_state(&self) -> Arc<ChargerState> {
        self.state.clone()
    }

    /// The default answers in use.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// A number that changes whenever [`Session::state`] changed (boot, statuses,
    /// transactions, heartbeat, connection): a driver republishes the state only then.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the charger last sent anything (wall clock).
    pub fn last_seen(&self) -> Option<DateTime<Utc>> {
        self.last_seen
    }

    /// The bounds of the model.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether [`Session::handle_close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Handles one text message from the charger. Afterwards drain
    /// [`Session::poll_transmit`] and [`Session::poll_event`] and re-read
    /// [`Session::poll_timeout`].
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        if self.closed {
            return;
        }
        self.last_seen = Some(self.defaults.clock.now());
        self.ep.handle_text(now, text);
        self.pump();
    }

    /// Handles the passing of time (call timeouts). Call it when [`Session::poll_timeout`]
    /// has passed; calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
        self.pump();
    }

    /// The connection closed: pending central calls fail with [`CallError::Disconnected`]
    /// and [`Event::Disconnected`] is reported.
    pub fn handle_close(&mut self, reason: Option<String>) {
        if self.closed {
            return;
        }
        self.closed = true;
        Arc::make_mut(&mut self.state).connected = false;
        self.generation = self.generation.wrapping_add(1);
        let mut ids: Vec<_> = self
            .rare
            .take()
            .map(|rare| rare.outgoing.into_iter().collect())
            .unwrap_or_default();
        ids.sort();
        for (id, action) in ids {
            self.events.push_back(SessionEvent::Answer {
                id,
                action,
                result: Err(CallError::Disconnected),
            });
        }
        self.pending = HashMap::new();
        self.events
            .push_back(SessionEvent::Model(Event::Disconnected { reason }));
    }

    /// The next text message to send, in order.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.ep.poll_transmit()
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            // An idle connection holds no queue memory (thousands of them add up).
            self.events = VecDeque::new();
        }
        event
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
    }

    /// How many central calls wait behind the one in flight.
    pub fn queued_calls(&self) -> usize {
        self.ep.queued_calls()
    }

    /// Sends a central call (queued behind the one in flight, if any) and returns its message
    /// id; its answer comes as [`SessionEvent::Answer`] with that id.
    pub fn call(&mut self, now: Instant, request: &AnyRequest) -> Result<String, CallError> {
        if self.closed {
            return Err(CallError::Disconnected);
        }
        if request.version() != self.version {
            return Err(CallError::Refused(format!(
                "an OCPP {} request cannot be sent to an OCPP {} charger",
                request.version(),
                self.version
            )));
        }
        let action = request.action();
        if central_may_send(self.version, action) != Some(true) {
            return Err(CallError::Refused(format!(
                "{action} is not sent by the central system"
            )));
        }
        if self.state.boot == BootState::Rejected {
            return Err(CallError::BootRejected);
        }
        if self.state.boot != BootState::Accepted
            && (action == "TriggerMessage" || action == "ExtendedTriggerMessage")
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&request.to_json()) {
                if let Some(m) = v.get("requestedMessage").and_then(|m| m.as_str()) {
                    // The trigger names the message; certificate triggers name the kind of
                    // certificate and all lead to SignCertificate.
                    let m = if m.starts_with("Sign") && m.ends_with("Certificate") {
                        "SignCertificate".to_owned()
                    } else {
                        m.to_owned()
                    };
                    self.rare().triggered.insert(m);
                }
            }
        }
        let payload = RawValue::from_string(request.to_json())
            .map_err(|e| CallError::Refused(e.to_string()))?;
        let id = self
            .ep
            .call(now, action, payload)
            .map_err(|e| CallError::Refused(e.to_string()))?;
        self.rare().outgoing.insert(id.clone(), action.to_owned());
        Ok(id)
    }

    /// [`Session::call`] with a concrete typed request.
    pub fn call_typed<R: ocpp_types::Request>(
        &mut self,
        now: Instant,
        request: &R,
    ) -> Result<String, CallError> {
        let any = AnyRequest::from_message(request.clone())
            .map_err(|e| CallError::Refused(e.to_string()))?;
        self.call(now, &any)
    }

    /// Answers the charger request `id` with `response` and updates the model from the pair.
    pub fn respond(
        &mut self,
        now: Instant,
        id: &str,
        response: AnyResponse,
    ) -> Result<(), RespondError> {
        self.respond_taking(now, id, response).map(drop)
    }

    /// [`Session::respond`], giving the request and the response back: the driver hands
    /// them to the application's `after` hook as they are, without copying them.
    pub(crate) fn respond_taking(
        &mut self,
        _now: Instant,
        id: &str,
        response: AnyResponse,
    ) -> Result<(Arc<AnyRequest>, AnyResponse), RespondError> {
        let Some(p) = self.pending.get(id) else {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        };
        if response.version() != p.request.version() || response.action() != p.request.action() {
            return Err(RespondError::WrongResponse {
                expected: p.request.action().to_owned(),
                found: response.action().to_owned(),
            });
        }
        let Some(p) = self.take_pending(id) else {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        };
        let raw = match RawValue::from_string(response.to_json()) {
            Ok(raw) => raw,
            Err(_) => return Err(RespondError::UnknownRequest(id.to_owned())),
        };
        if self.ep.respond(id, &raw).is_err() {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        }
        if let Some(memo) = p.memo {
            // The answer's text itself, not a copy of it.
            self.remember(memo, Box::<str>::from(raw).into_string());
        }
        self.apply(&p.request, &response);
        Ok((p.request, response))
    }

    /// Answers the charger request `id` with the [`Defaults`].
    pub fn respond_default(&mut self, now: Instant, id: &str) -> Result<(), RespondError> {
        let Some(p) = self.pending.get(id) else {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        };
        match self.defaults.response(&p.request) {
            Ok(resp) => self.respond(now, id, resp),
            Err(failure) => self.respond_error(id, &failure),
        }
    }

    /// Answers the charger request `id` with a CALLERROR.
    pub fn respond_error(&mut self, id: &str, failure: &CallFailure) -> Result<(), RespondError> {
        if self.take_pending(id).is_none() {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        }
        self.ep
            .respond_error(id, &failure.code, &failure.description, None)
            .map_err(|_| RespondError::UnknownRequest(id.to_owned()))
    }

    /// Seeds a transaction known from before this connection (e.g. persisted by the
    /// application), so its meter values and end are attributed and its energy computed.
    pub fn restore_transaction(&mut self, transaction: Transaction) {
        Arc::make_mut(&mut self.state).restore_transaction(transaction, &self.limits);
        self.generation = self.generation.wrapping_add(1);
    }

    /// The charger requests awaiting an answer.
    pub fn unanswered(&self) -> impl Iterator<Item = (&str, &AnyRequest)> {
        self.pending.iter().map(|(k, p)| (k.as_str(), &*p.request))
    }

    /// Removes an unanswered request; the map holds no memory once none is left (a
    /// conforming charger has one request at a time, and an idle one none).
    fn take_pending(&mut self, id: &str) -> Option<Pending> {
        let p = self.pending.remove(id);
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = HashMap::new();
        }
        p
    }

    /// A central call got its answer (or timed out); the map of those in flight holds no
    /// memory once none is left.
    fn answered(&mut self, id: &str) {
        if let Some(rare) = self.rare.as_mut() {
            rare.outgoing.remove(id);
            if rare.outgoing.is_empty() && rare.outgoing.capacity() > 0 {
                rare.outgoing = HashMap::new();
            }
        }
        self.tidy_rare();
    }

    /// The rarely used parts, allocated now if they were not.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Frees the rarely used parts once they hold nothing.
    fn tidy_rare(&mut self) {
        if self.rare.as_ref().is_some_and(|rare| rare.is_empty()) {
            self.rare = None;
        }
    }

    fn remember(&mut self, key: MemoKey, json: String) {
        let remembered = self.remembered;
        if remembered == 0 {
            return;
        }
        self.rare().answers.insert(key, json, remembered);
    }

    fn pump(&mut self) {
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                RpcEvent::Call {
                    id,
                    action,
                    payload,
                } => self.on_call(id, action, payload),
                RpcEvent::Send {
                    id,
                    action,
                    payload,
                } => self.on_send(&id, action, &payload),
                RpcEvent::Result {
                    id,
                    action,
                    payload,
                } => {
                    self.answered(&id);
                    let decoded =
                        self.codec()
                            .decode_result(&id, &action, &payload)
                            .and_then(|d| {
                                response_of(d.value)
                                    .ok_or_else(|| not_enabled(&id, &action, self.version))
                            });
                    let result = match decoded {
                        Ok(r) => Ok(r),
                        Err(reply) => {
                            // OCPP 2.1 answers a bad CALLRESULT (part 2 FR.06); 1.6 and 2.0.1
                            // have no answer to one.
                            if self.version == Version::V21 {
                                let details = RawValue::from_string(reply.details.clone()).ok();
                                let _ = self.ep.result_error(
                                    &id,
                                    &reply.code,
                                    &reply.description,
                                    details.as_deref(),
                                );
                            }
                            Err(CallError::InvalidResponse(reply.description))
                        }
                    };
                    self.events
                        .push_back(SessionEvent::Answer { id, action, result });
                }
                RpcEvent::Error {
                    id,
                    action,
                    code,
                    description,
                    details,
                } => {
                    self.answered(&id);
                    self.events.push_back(SessionEvent::Answer {
                        id,
                        action,
                        result: Err(CallError::CallError {
                            code,
                            description,
                            details: details.get().to_owned(),
                        }),
                    });
                }
                RpcEvent::Timeout { id, action } => {
                    self.answered(&id);
                    self.events.push_back(SessionEvent::Answer {
                        id,
                        action,
                        result: Err(CallError::Timeout),
                    });
                }
                other => self
                    .events
                    .push_back(SessionEvent::Protocol(format!("{other:?}"))),
            }
        }
    }

    fn refuse(&mut self, id: &str, action: &str, code: ErrorCode, reason: String) {
        self.take_pending(id);
        let _ = self.ep.respond_error(id, &code, &reason, None);
        self.events.push_back(SessionEvent::Model(Event::Refused {
            action: action.to_owned(),
            code,
            reason,
        }));
    }

    /// The codec that decodes and refuses this charger's messages (the one typed path the
    /// charger station and `ocpp-inspect` use too).
    fn codec(&self) -> TypedCodec {
        TypedCodec::new(self.version)
            .side(Side::CentralSystem)
            .lenient(self.lenient)
    }

    /// A SEND: checked and decoded like a CALL, never answered. A valid one is a
    /// [`SessionEvent::Send`] and, for NotifyPeriodicEventStream, an [`Event::StreamData`];
    /// an invalid one only a [`SessionEvent::Protocol`].
    fn on_send(&mut self, id: &str, action: String, payload: &RawValue) {
        #[cfg(feature = "v21")]
        {
            let decoded = self.codec().decode_send(id, &action, payload);
            let data = match decoded {
                Err(reply) => Err(format!(
                    "{} {}",
                    reply.code.as_str(self.version),
                    reply.description
                )),
                Ok(d) => match d.value {
                    ocpp_types::v21::AnySend::NotifyPeriodicEventStream(m) => {
                        crate::streams::stream_data(&m).map_err(|e| e.to_string())
                    }
                },
            };
            match data {
                Ok(data) => {
                    self.events.push_back(SessionEvent::Send {
                        action,
                        payload: payload.get().to_owned(),
                    });
                    self.events
                        .push_back(SessionEvent::Model(Event::StreamData { data }));
                }
                Err(e) => self.events.push_back(SessionEvent::Protocol(format!(
                    "SEND {action} {id} refused (not answered): {e}"
                ))),
            }
        }
        #[cfg(not(feature = "v21"))]
        {
            let _ = payload;
            self.events.push_back(SessionEvent::Protocol(format!(
                "SEND {action} {id} ignored: OCPP 2.1 is not built in"
            )));
        }
    }

    fn on_call(&mut self, id: String, action: String, payload: Box<RawValue>) {
        let decoded =
            self.codec()
                .decode_call(&id, &action, &payload)
                .and_then(|d| match request_of(d.value) {
                    Some(request) => Ok((request, d.repairs)),
                    None => Err(not_enabled(&id, &action, self.version)),
                });
        let mut repaired = false;
        let request = match decoded {
            Ok((request, repairs)) => {
                if !repairs.is_empty() {
                    repaired = true;
                    self.events.push_back(SessionEvent::Model(Event::Repaired {
                        action: action.clone(),
                        repairs,
                    }));
                }
                request
            }
            Err(reply) => {
                let details = RawValue::from_string(reply.details).ok();
                let _ =
                    self.ep
                        .respond_error(&id, &reply.code, &reply.description, details.as_deref());
                self.events.push_back(SessionEvent::Model(Event::Refused {
                    action,
                    code: reply.code,
                    reason: reply.description,
                }));
                return;
            }
        };
        if self.refuse_before_accepted
            && matches!(self.state.boot, BootState::Pending | BootState::Rejected)
            && action != "BootNotification"
            && !self
                .rare
                .as_ref()
                .is_some_and(|rare| rare.triggered.contains(&action))
        {
            return self.refuse(
                &id,
                &action,
                ErrorCode::SecurityError,
                format!(
                    "the charging station is not accepted (boot {}); only BootNotification is allowed",
                    self.state.boot.as_str()
                ),
            );
        }
        let memo = self.memo_key(&request);
        if let Some(key) = &memo {
            let remembered = self.rare.as_ref().and_then(|rare| rare.answers.get(key));
            if let Some(answer) = remembered.map(str::to_owned) {
                // A re-sent transaction message: answer as the first time, report, skip the app.
                if let Ok(raw) = RawValue::from_string(answer) {
                    let _ = self.ep.respond(&id, &raw);
                }
                self.events
                    .push_back(SessionEvent::Model(Event::DuplicateMessage {
                        request: Arc::new(request),
                    }));
                return;
            }
        }
        self.pending.insert(
            id.clone(),
            Pending {
                request: Arc::new(request.clone()),
                memo,
            },
        );
        let call = IncomingCall::new(request.action(), payload, repaired);
        self.events
            .push_back(SessionEvent::Request { id, request, call });
    }

    /// The key under which the answer to a transaction message is remembered, so a re-sent
    /// copy gets the same answer (1.6 StartTransaction: connector, idTag, timestamp,
    /// meterStart; StopTransaction: transactionId; 2.x TransactionEvent: transactionId, seqNo).
    fn memo_key(&self, request: &AnyRequest) -> Option<MemoKey> {
        let text = match request {
            #[cfg(feature = "v16")]
            AnyRequest::V16(q) => match q {
                ocpp_types::v16::AnyRequest::StartTransaction(r) => Some(format!(
                    "start/{}/{}/{}/{}",
                    r.connector_id,
                    r.id_tag.as_str(),
                    r.timestamp,
                    r.meter_start
                )),
                ocpp_types::v16::AnyRequest::StopTransaction(r) => {
                    Some(format!("stop/{}", r.transaction_id))
                }
                _ => None,
            },
            #[cfg(feature = "v201")]
            AnyRequest::V201(q) => match q {
                ocpp_types::v201::AnyRequest::TransactionEvent(r) => Some(format!(
                    "tx/{}/{}",
                    r.transaction_info.transaction_id.as_str(),
                    r.seq_no
                )),
                _ => None,
            },
            #[cfg(feature = "v21")]
            AnyRequest::V21(q) => match q {
                ocpp_types::v21::AnyRequest::TransactionEvent(r) => Some(format!(
                    "tx/{}/{}",
                    r.transaction_info.transaction_id.as_str(),
                    r.seq_no
                )),
                _ => None,
            },
        };
        text.map(MemoKey::new)
    }

    fn push(&mut self, event: Event) {
        self.events.push_back(SessionEvent::Model(event));
    }

    /// Applies an answered request to the model (the pure projector,
    /// [`ChargerState::apply`]) and queues the events.
    fn apply(&mut self, request: &Arc<AnyRequest>, response: &AnyResponse) {
        let mut events = Vec::new();
        let now = self.defaults.clock.now();
        Arc::make_mut(&mut self.state).apply(request, response, now, &self.limits, &mut events);
        if !events.is_empty() {
            self.generation = self.generation.wrapping_add(1);
        }
        if self.state.boot == BootState::Accepted {
            if let Some(rare) = self.rare.as_mut() {
                // Its memory back, but no new set (and no drop of an empty one) per message.
                if rare.triggered.capacity() > 0 {
                    rare.triggered = HashSet::new();
                }
            }
            self.tidy_rare();
        }
        for e in events {
            self.push(e);
        }
    }
}

/// The central model's request from the codec's typed request (moved, never re-encoded);
/// `None` for a version whose feature is off in this crate.
fn request_of(typed: TypedRequest) -> Option<AnyRequest> {
    match typed {
        #[cfg(feature = "v16")]
        TypedRequest::V16(q) => Some(AnyRequest::from(q)),
        #[cfg(feature = "v201")]
        TypedRequest::V201(q) => Some(AnyRequest::from(q)),
        #[cfg(feature = "v21")]
        TypedRequest::V21(q) => Some(AnyRequest::from(q)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The central model's response from the codec's typed response (moved, never re-encoded).
fn response_of(typed: TypedResponse) -> Option<AnyResponse> {
    match typed {
        #[cfg(feature = "v16")]
        TypedResponse::V16(r) => Some(AnyResponse::from(r)),
        #[cfg(feature = "v201")]
        TypedResponse::V201(r) => Some(AnyResponse::from(r)),
        #[cfg(feature = "v21")]
        TypedResponse::V21(r) => Some(AnyResponse::from(r)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn not_enabled(id: &str, action: &str, version: Version) -> ocpp_codec::Reply {
    ocpp_codec::Reply {
        kind: ocpp_codec::error::ReplyKind::CallError,
        id: id.to_owned(),
        code: ErrorCode::NotImplemented,
        description: format!("{action}: OCPP {version} is not enabled in this central system"),
        details: "{}".to_owned(),
        version,
    }
}

struct BoxedIds(Box<dyn IdGenerator>);

impl IdGenerator for BoxedIds {
    fn next_id(&mut self) -> String {
        self.0.next_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_session_holds_no_queue_memory() {
        let mut s = Session::new(SessionConfig::new("CP1", Version::V16));
        let now = Instant::now();
        for (i, call) in [
            r#"[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#,
            r#"[2,"2","Heartbeat",{}]"#,
        ]
        .into_iter()
        .enumerate()
        {
            s.handle_text(now, call);
            while let Some(ev) = s.poll_event() {
                if let SessionEvent::Request { id, .. } = ev {
                    assert_eq!(s.pending.len(), 1);
                    s.respond_default(now, &id).unwrap();
                }
            }
            assert!(s.poll_transmit().is_some(), "answer {i}");
            assert!(s.pending.is_empty() && s.pending.capacity() == 0);
            assert_eq!(s.events.capacity(), 0);
        }
        let id = s
            .call_typed(now, &ocpp_types::v16::ClearCacheRequest::new())
            .unwrap();
        assert_eq!(s.rare.as_ref().map(|rare| rare.outgoing.len()), Some(1));
        let sent = s.poll_transmit().unwrap();
        assert!(sent.contains(&id));
        s.handle_text(now, &format!(r#"[3,"{id}",{{"status":"Accepted"}}]"#));
        while s.poll_event().is_some() {}
        assert!(s.rare.is_none());
    }
}
