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

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ocpp_codec::rpc::{Endpoint, EndpointConfig, Event as RpcEvent, IdGenerator, RandomIds};
use ocpp_codec::{ErrorCode, Reply};
use ocpp_types::{MessageKind, Version};
use serde_json::value::RawValue;

use crate::defaults::{CallFailure, Defaults};
use crate::message::{central_may_send, charger_may_send, AnyRequest, AnyResponse};
use crate::model::{
    AuthorizationStatus, BootState, ChargerInfo, ChargerState, ConnectorRef, ConnectorState,
    ConnectorStatus, Event, MeterSample, Transaction,
};

/// How many transactions a session tracks at once per charger.
pub const MAX_ACTIVE_TRANSACTIONS: usize = 256;

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
    /// requests before an `Accepted` boot refused, 1024 transaction answers remembered.
    pub fn new(identity: impl Into<String>, version: Version) -> SessionConfig {
        SessionConfig {
            identity: identity.into(),
            version,
            call_timeout: Duration::from_secs(30),
            max_message_size: 1 << 20,
            ids: None,
            defaults: Defaults::default(),
            refuse_before_accepted: true,
            remembered_answers: 1024,
            lenient: false,
        }
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
    /// identically.
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
    /// Boxed: a typed request is large, and the map keeps its capacity per connection.
    request: Box<AnyRequest>,
    /// Key under which the answer is remembered for re-sent copies.
    memo: Option<String>,
}

/// The sans-IO session of one charger connection (see the [module docs](self)).
pub struct Session {
    ep: Endpoint,
    version: Version,
    defaults: Defaults,
    refuse_before_accepted: bool,
    lenient: bool,
    remembered: usize,
    state: ChargerState,
    pending: HashMap<String, Pending>,
    outgoing: HashMap<String, String>,
    /// Actions the central system triggered while not accepted (allowed through).
    triggered: HashSet<String>,
    /// Remembered answers of transaction messages, by memo key.
    answers: HashMap<String, String>,
    answer_order: VecDeque<String>,
    /// 2.x: seqNos seen per transaction (also for ended transactions, for duplicates).
    seq_seen: HashMap<String, BTreeSet<i32>>,
    events: VecDeque<SessionEvent>,
    closed: bool,
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

fn to_utc(t: &ocpp_types::DateTime) -> DateTime<Utc> {
    t.to_utc()
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
            state: ChargerState::new(identity, version, now),
            defaults,
            pending: HashMap::new(),
            outgoing: HashMap::new(),
            triggered: HashSet::new(),
            answers: HashMap::new(),
            answer_order: VecDeque::new(),
            seq_seen: HashMap::new(),
            events,
            closed: false,
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

    /// The default answers in use.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
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
        self.state.last_seen = Some(self.defaults.clock.now());
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
        self.state.connected = false;
        let mut ids: Vec<_> = self.outgoing.drain().collect();
        ids.sort();
        for (id, action) in ids {
            self.events.push_back(SessionEvent::Answer {
                id,
                action,
                result: Err(CallError::Disconnected),
            });
        }
        self.pending.clear();
        self.events
            .push_back(SessionEvent::Model(Event::Disconnected { reason }));
    }

    /// The next text message to send, in order.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.ep.poll_transmit()
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
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
                    self.triggered.insert(m);
                }
            }
        }
        let payload = RawValue::from_string(request.to_json())
            .map_err(|e| CallError::Refused(e.to_string()))?;
        let id = self
            .ep
            .call(now, action, payload)
            .map_err(|e| CallError::Refused(e.to_string()))?;
        self.outgoing.insert(id.clone(), action.to_owned());
        Ok(id)
    }

    /// [`Session::call`] with a concrete typed request.
    pub fn call_typed<R: ocpp_types::Request>(
        &mut self,
        now: Instant,
        request: &R,
    ) -> Result<String, CallError> {
        let any = AnyRequest::from_typed(request).map_err(|e| CallError::Refused(e.to_string()))?;
        self.call(now, &any)
    }

    /// Answers the charger request `id` with `response` and updates the model from the pair.
    pub fn respond(
        &mut self,
        _now: Instant,
        id: &str,
        response: AnyResponse,
    ) -> Result<(), RespondError> {
        let Some(p) = self.pending.get(id) else {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        };
        if response.version() != p.request.version() || response.action() != p.request.action() {
            return Err(RespondError::WrongResponse {
                expected: p.request.action().to_owned(),
                found: response.action().to_owned(),
            });
        }
        let Some(p) = self.pending.remove(id) else {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        };
        let json = response.to_json();
        let raw = match RawValue::from_string(json.clone()) {
            Ok(raw) => raw,
            Err(_) => return Err(RespondError::UnknownRequest(id.to_owned())),
        };
        if self.ep.respond(id, &raw).is_err() {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        }
        if let Some(memo) = p.memo {
            self.remember(memo, json);
        }
        self.apply(*p.request, response);
        Ok(())
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
        if self.pending.remove(id).is_none() {
            return Err(RespondError::UnknownRequest(id.to_owned()));
        }
        self.ep
            .respond_error(id, &failure.code, &failure.description, None)
            .map_err(|_| RespondError::UnknownRequest(id.to_owned()))
    }

    /// Seeds a transaction known from before this connection (e.g. persisted by the
    /// application), so its meter values and end are attributed and its energy computed.
    pub fn restore_transaction(&mut self, transaction: Transaction) {
        self.state
            .transactions
            .insert(transaction.id.clone(), transaction);
    }

    /// The charger requests awaiting an answer.
    pub fn unanswered(&self) -> impl Iterator<Item = (&str, &AnyRequest)> {
        self.pending.iter().map(|(k, p)| (k.as_str(), &*p.request))
    }

    fn remember(&mut self, key: String, json: String) {
        if self.remembered == 0 {
            return;
        }
        while self.answer_order.len() >= self.remembered {
            if let Some(old) = self.answer_order.pop_front() {
                self.answers.remove(&old);
            }
        }
        self.answer_order.push_back(key.clone());
        self.answers.insert(key, json);
    }

    fn pump(&mut self) {
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                RpcEvent::Call {
                    id,
                    action,
                    payload,
                } => self.on_call(id, action, &payload),
                RpcEvent::Send {
                    action, payload, ..
                } => self.events.push_back(SessionEvent::Send {
                    action,
                    payload: payload.get().to_owned(),
                }),
                RpcEvent::Result {
                    id,
                    action,
                    payload,
                } => {
                    self.outgoing.remove(&id);
                    let result = match AnyResponse::from_json(self.version, &action, payload.get())
                    {
                        Ok(r) => Ok(r),
                        Err(e) => {
                            if self.version == Version::V21 {
                                let _ = self.ep.result_error(
                                    &id,
                                    &ErrorCode::FormatViolation,
                                    &e.to_string(),
                                    None,
                                );
                            }
                            Err(CallError::InvalidResponse(e.to_string()))
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
                    self.outgoing.remove(&id);
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
                    self.outgoing.remove(&id);
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
        self.pending.remove(id);
        let _ = self.ep.respond_error(id, &code, &reason, None);
        self.events.push_back(SessionEvent::Model(Event::Refused {
            action: action.to_owned(),
            code,
            reason,
        }));
    }

    /// Lenient mode, after the strict decode failed: the repaired request, reported.
    fn repair(&mut self, id: &str, action: &str, payload: &RawValue) -> Option<AnyRequest> {
        if !self.lenient {
            return None;
        }
        let decoded = ocpp_codec::typed::TypedCodec::new(self.version)
            .side(ocpp_codec::typed::Side::CentralSystem)
            .lenient(true)
            .decode_call(id, action, payload)
            .ok()?;
        if decoded.repairs.is_empty() {
            return None;
        }
        let request = AnyRequest::from_json(self.version, action, &decoded.value.to_json()).ok()?;
        self.events.push_back(SessionEvent::Model(Event::Repaired {
            action: action.to_owned(),
            repairs: decoded.repairs,
        }));
        Some(request)
    }

    fn on_call(&mut self, id: String, action: String, payload: &RawValue) {
        match charger_may_send(self.version, &action) {
            None => {
                return self.refuse(
                    &id,
                    &action,
                    ErrorCode::NotImplemented,
                    format!("{action} is not an OCPP {} action", self.version),
                )
            }
            Some(false) => {
                return self.refuse(
                    &id,
                    &action,
                    ErrorCode::NotSupported,
                    format!("{action} is not sent by a charging station"),
                )
            }
            Some(true) => {}
        }
        let request = match AnyRequest::from_json(self.version, &action, payload.get())
            .or_else(|e| self.repair(&id, &action, payload).ok_or(e))
        {
            Ok(r) => r,
            Err(e) => {
                let reply = serde_json::from_str::<serde_json::Value>(payload.get())
                    .ok()
                    .and_then(|v| {
                        ocpp_schemas::validate(self.version, &action, MessageKind::Request, &v).ok()
                    })
                    .and_then(|r| r.err())
                    .and_then(|violations| Reply::for_violations(&id, &violations, self.version));
                let (code, reason, details) = match reply {
                    Some(r) => (r.code, r.description, Some(r.details)),
                    None => (
                        if matches!(e, crate::message::DecodeError::UnknownAction { .. }) {
                            ErrorCode::NotSupported
                        } else {
                            ErrorCode::FormatViolation
                        },
                        e.to_string(),
                        None,
                    ),
                };
                let details = details.and_then(|d| RawValue::from_string(d).ok());
                let _ = self
                    .ep
                    .respond_error(&id, &code, &reason, details.as_deref());
                self.events.push_back(SessionEvent::Model(Event::Refused {
                    action,
                    code,
                    reason,
                }));
                return;
            }
        };
        if self.refuse_before_accepted
            && matches!(self.state.boot, BootState::Pending | BootState::Rejected)
            && action != "BootNotification"
            && !self.triggered.contains(&action)
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
            if let Some(answer) = self.answers.get(key).cloned() {
                // A re-sent transaction message: answer as the first time, report, skip the app.
                if let Ok(raw) = RawValue::from_string(answer) {
                    let _ = self.ep.respond(&id, &raw);
                }
                self.events
                    .push_back(SessionEvent::Model(Event::DuplicateMessage { request }));
                return;
            }
        }
        self.pending.insert(
            id.clone(),
            Pending {
                request: Box::new(request.clone()),
                memo,
            },
        );
        self.events.push_back(SessionEvent::Request { id, request });
    }

    /// The key under which the answer to a transaction message is remembered, so a re-sent
    /// copy gets the same answer (1.6 StartTransaction: connector, idTag, timestamp,
    /// meterStart; StopTransaction: transactionId; 2.x TransactionEvent: transactionId, seqNo).
    fn memo_key(&self, request: &AnyRequest) -> Option<String> {
        match request {
            #[cfg(feature = "v16")]
            AnyRequest::V16(ocpp_types::v16::AnyRequest::StartTransaction(r)) => Some(format!(
                "start/{}/{}/{}/{}",
                r.connector_id,
                r.id_tag.as_str(),
                r.timestamp,
                r.meter_start
            )),
            #[cfg(feature = "v16")]
            AnyRequest::V16(ocpp_types::v16::AnyRequest::StopTransaction(r)) => {
                Some(format!("stop/{}", r.transaction_id))
            }
            #[cfg(feature = "v201")]
            AnyRequest::V201(ocpp_types::v201::AnyRequest::TransactionEvent(r)) => Some(format!(
                "tx/{}/{}",
                r.transaction_info.transaction_id.as_str(),
                r.seq_no
            )),
            #[cfg(feature = "v21")]
            AnyRequest::V21(ocpp_types::v21::AnyRequest::TransactionEvent(r)) => Some(format!(
                "tx/{}/{}",
                r.transaction_info.transaction_id.as_str(),
                r.seq_no
            )),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Tracks an active transaction; beyond [`MAX_ACTIVE_TRANSACTIONS`] the one started
    /// longest ago is forgotten (a charger has a handful of EVSEs; this only bounds memory
    /// against a hostile peer).
    fn track(&mut self, tx: Transaction) {
        if !self.state.transactions.contains_key(&tx.id)
            && self.state.transactions.len() >= MAX_ACTIVE_TRANSACTIONS
        {
            let oldest = self
                .state
                .transactions
                .values()
                .min_by_key(|t| t.started_at)
                .map(|t| t.id.clone());
            if let Some(old) = oldest {
                self.state.transactions.remove(&old);
                self.seq_seen.remove(&old);
            }
        }
        self.state.transactions.insert(tx.id.clone(), tx);
    }

    fn push(&mut self, event: Event) {
        self.events.push_back(SessionEvent::Model(event));
    }

    fn apply(&mut self, request: AnyRequest, response: AnyResponse) {
        match (&request, &response) {
            #[cfg(feature = "v16")]
            (AnyRequest::V16(q), AnyResponse::V16(r)) => {
                let (q, r) = (q.clone(), r.clone());
                self.apply_v16(&request, &response, q, r)
            }
            #[cfg(feature = "v201")]
            (AnyRequest::V201(q), AnyResponse::V201(r)) => {
                let (q, r) = (q.clone(), r.clone());
                self.apply_v201(&request, &response, q, r)
            }
            #[cfg(feature = "v21")]
            (AnyRequest::V21(q), AnyResponse::V21(r)) => {
                let (q, r) = (q.clone(), r.clone());
                self.apply_v21(&request, &response, q, r)
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    fn booted(
        &mut self,
        info: ChargerInfo,
        status: &str,
        interval: i32,
        q: &AnyRequest,
        r: &AnyResponse,
    ) {
        let state = BootState::from_registration(status);
        self.state.info = Some(info.clone());
        self.state.boot = state;
        self.state.heartbeat_interval = Some(interval);
        if state == BootState::Accepted {
            self.triggered.clear();
        }
        self.push(Event::Booted {
            info,
            state,
            request: q.clone(),
            response: r.clone(),
        });
    }

    fn heartbeat(&mut self) {
        let at = self.defaults.clock.now();
        self.state.last_heartbeat = Some(at);
        self.push(Event::Heartbeat { at });
    }

    fn status(
        &mut self,
        connector: ConnectorRef,
        status: &str,
        error_code: Option<String>,
        since: Option<DateTime<Utc>>,
        q: &AnyRequest,
    ) {
        let status = ConnectorStatus::from_wire(status);
        let since = since.unwrap_or_else(|| self.defaults.clock.now());
        let previous = self
            .state
            .connectors
            .insert(
                connector,
                ConnectorState {
                    status: status.clone(),
                    error_code,
                    since,
                },
            )
            .map(|c| c.status);
        self.push(Event::StatusChanged {
            connector,
            previous,
            status,
            request: q.clone(),
        });
    }

    fn authorized(&mut self, token: String, status: &str, q: &AnyRequest, r: &AnyResponse) {
        self.push(Event::Authorized {
            id_token: token,
            status: AuthorizationStatus(status.to_owned()),
            request: q.clone(),
            response: r.clone(),
        });
    }

    #[cfg(feature = "v16")]
    fn apply_v16(
        &mut self,
        q_any: &AnyRequest,
        r_any: &AnyResponse,
        q: ocpp_types::v16::AnyRequest,
        r: ocpp_types::v16::AnyResponse,
    ) {
        use ocpp_types::v16::{AnyRequest as Q, AnyResponse as R};
        match (q, r) {
            (Q::BootNotification(q), R::BootNotification(r)) => {
                let info = ChargerInfo {
                    vendor: q.charge_point_vendor.as_str().to_owned(),
                    model: q.charge_point_model.as_str().to_owned(),
                    serial_number: q
                        .charge_point_serial_number
                        .as_ref()
                        .or(q.charge_box_serial_number.as_ref())
                        .map(|s| s.as_str().to_owned()),
                    firmware_version: q.firmware_version.as_ref().map(|s| s.as_str().to_owned()),
                };
                self.booted(info, r.status.as_str(), r.interval, q_any, r_any);
            }
            (Q::Heartbeat(_), _) => self.heartbeat(),
            (Q::StatusNotification(q), _) => self.status(
                ConnectorRef::v16(q.connector_id),
                q.status.as_str(),
                Some(q.error_code.as_str().to_owned()),
                q.timestamp.as_ref().map(to_utc),
                q_any,
            ),
            (Q::Authorize(q), R::Authorize(r)) => self.authorized(
                q.id_tag.as_str().to_owned(),
                r.id_tag_info.status.as_str(),
                q_any,
                r_any,
            ),
            (Q::StartTransaction(q), R::StartTransaction(r)) => {
                let mut tx = Transaction::new(
                    r.transaction_id.to_string(),
                    ConnectorRef::v16(q.connector_id),
                    to_utc(&q.timestamp),
                );
                tx.id_token = Some(q.id_tag.as_str().to_owned());
                tx.meter_start_wh = Some(q.meter_start.into());
                tx.meter_last_wh = Some(q.meter_start.into());
                self.track(tx.clone());
                self.push(Event::TransactionStarted {
                    transaction: tx,
                    request: q_any.clone(),
                });
            }
            (Q::MeterValues(q), _) => {
                let samples: Vec<MeterSample> = q
                    .meter_value
                    .iter()
                    .flat_map(|mv| {
                        let ts = to_utc(&mv.timestamp);
                        mv.sampled_value
                            .iter()
                            .filter_map(move |sv| v16_sample(ts, sv))
                    })
                    .collect();
                let connector = ConnectorRef::v16(q.connector_id);
                let tx = q
                    .transaction_id
                    .and_then(|t| self.state.transactions.get_mut(&t.to_string()));
                match tx {
                    Some(tx) => {
                        tx.add_samples(&samples);
                        let transaction = tx.clone();
                        self.push(Event::TransactionUpdated {
                            transaction,
                            samples,
                            request: q_any.clone(),
                        });
                    }
                    None => self.push(Event::MeterValues {
                        connector,
                        transaction_id: q.transaction_id.map(|t| t.to_string()),
                        samples,
                        request: q_any.clone(),
                    }),
                }
            }
            (Q::StopTransaction(q), _) => {
                let id = q.transaction_id.to_string();
                let mut tx = self.state.transactions.remove(&id).unwrap_or_else(|| {
                    // Started before this session (or on another node): what we know now.
                    Transaction::new(id.clone(), ConnectorRef::v16(0), to_utc(&q.timestamp))
                });
                let samples: Vec<MeterSample> = q
                    .transaction_data
                    .iter()
                    .flatten()
                    .flat_map(|mv| {
                        let ts = to_utc(&mv.timestamp);
                        mv.sampled_value.iter().filter_map(move |sv| {
                            let json = serde_json::to_string(sv).ok()?;
                            let sv: ocpp_types::v16::SampledValue =
                                serde_json::from_str(&json).ok()?;
                            v16_sample(ts, &sv)
                        })
                    })
                    .collect();
                tx.add_samples(&samples);
                tx.meter_last_wh = Some(q.meter_stop.into());
                tx.recompute();
                tx.ended_at = Some(to_utc(&q.timestamp));
                tx.stop_reason = Some(q.reason.map_or("Local", |r| r.as_str()).to_owned());
                if tx.id_token.is_none() {
                    tx.id_token = q.id_tag.as_ref().map(|t| t.as_str().to_owned());
                }
                self.push(Event::TransactionEnded {
                    transaction: tx,
                    request: q_any.clone(),
                });
            }
            _ => {}
        }
    }
}

#[cfg(feature = "v16")]
fn v16_sample(ts: DateTime<Utc>, sv: &ocpp_types::v16::SampledValue) -> Option<MeterSample> {
    if sv.format.map(|f| f.as_str()) == Some("SignedData") {
        return None;
    }
    Some(MeterSample {
        timestamp: ts,
        measurand: sv
            .measurand
            .map_or(crate::model::ENERGY_IMPORT_REGISTER, |m| m.as_str())
            .to_owned(),
        value: crate::model::parse_decimal(&sv.value)?,
        unit: sv.unit.map(|u| u.as_str().to_owned()),
        multiplier: 0,
        phase: sv.phase.map(|p| p.as_str().to_owned()),
        context: sv.context.map(|c| c.as_str().to_owned()),
        location: sv.location.map(|l| l.as_str().to_owned()),
    })
}

macro_rules! apply_2x {
    ($fn_name:ident, $sample_fn:ident, $m:ident) => {
        fn $sample_fn(mv: &[ocpp_types::$m::MeterValueType]) -> Vec<MeterSample> {
            mv.iter()
                .flat_map(|mv| {
                    let ts = to_utc(&mv.timestamp);
                    mv.sampled_value.iter().map(move |sv| MeterSample {
                        timestamp: ts,
                        measurand: sv
                            .measurand
                            .map_or(crate::model::ENERGY_IMPORT_REGISTER, |m| m.as_str())
                            .to_owned(),
                        value: sv.value,
                        unit: sv
                            .unit_of_measure
                            .as_ref()
                            .and_then(|u| u.unit.as_ref())
                            .map(|u| u.as_str().to_owned()),
                        multiplier: sv
                            .unit_of_measure
                            .as_ref()
                            .and_then(|u| u.multiplier)
                            .unwrap_or(0),
                        phase: sv.phase.map(|p| p.as_str().to_owned()),
                        context: sv.context.map(|c| c.as_str().to_owned()),
                        location: sv.location.map(|l| l.as_str().to_owned()),
                    })
                })
                .collect()
        }

        impl Session {
            fn $fn_name(
                &mut self,
                q_any: &AnyRequest,
                r_any: &AnyResponse,
                q: ocpp_types::$m::AnyRequest,
                r: ocpp_types::$m::AnyResponse,
            ) {
                use ocpp_types::$m::{AnyRequest as Q, AnyResponse as R};
                match (q, r) {
                    (Q::BootNotification(q), R::BootNotification(r)) => {
                        let cs = &q.charging_station;
                        let info = ChargerInfo {
                            vendor: cs.vendor_name.as_str().to_owned(),
                            model: cs.model.as_str().to_owned(),
                            serial_number: cs.serial_number.as_ref().map(|s| s.as_str().to_owned()),
                            firmware_version: cs
                                .firmware_version
                                .as_ref()
                                .map(|s| s.as_str().to_owned()),
                        };
                        self.booted(info, r.status.as_str(), r.interval, q_any, r_any);
                    }
                    (Q::Heartbeat(_), _) => self.heartbeat(),
                    (Q::StatusNotification(q), _) => self.status(
                        ConnectorRef::evse(q.evse_id, Some(q.connector_id)),
                        q.connector_status.as_str(),
                        None,
                        Some(to_utc(&q.timestamp)),
                        q_any,
                    ),
                    (Q::Authorize(q), R::Authorize(r)) => self.authorized(
                        q.id_token.id_token.as_str().to_owned(),
                        r.id_token_info.status.as_str(),
                        q_any,
                        r_any,
                    ),
                    (Q::MeterValues(q), _) => {
                        let samples = $sample_fn(&q.meter_value);
                        let connector = ConnectorRef::evse(q.evse_id, None);
                        // Meter values of an EVSE with exactly one running transaction belong to it.
                        let mut running = self
                            .state
                            .transactions
                            .values_mut()
                            .filter(|t| t.connector.evse == q.evse_id && q.evse_id > 0);
                        match (running.next(), running.next()) {
                            (Some(tx), None) => {
                                tx.add_samples(&samples);
                                let transaction = tx.clone();
                                self.push(Event::TransactionUpdated {
                                    transaction,
                                    samples,
                                    request: q_any.clone(),
                                });
                            }
                            _ => self.push(Event::MeterValues {
                                connector,
                                transaction_id: None,
                                samples,
                                request: q_any.clone(),
                            }),
                        }
                    }
                    (Q::TransactionEvent(q), _) => {
                        let id = q.transaction_info.transaction_id.as_str().to_owned();
                        let seq = q.seq_no;
                        let samples = q.meter_value.as_deref().map($sample_fn).unwrap_or_default();
                        let connector = q.evse.as_ref().map_or(ConnectorRef::evse(0, None), |e| {
                            ConnectorRef::evse(e.id, e.connector_id)
                        });
                        let seen = self.seq_seen.entry(id.clone()).or_default();
                        let max_before = seen.iter().next_back().copied();
                        seen.insert(seq);
                        let mut gap = None;
                        let is_new = !self.state.transactions.contains_key(&id);
                        let mut tx = self.state.transactions.remove(&id).unwrap_or_else(|| {
                            Transaction::new(id.clone(), connector, to_utc(&q.timestamp))
                        });
                        if tx.connector.evse == 0 && connector.evse != 0 {
                            tx.connector = connector;
                        }
                        match max_before {
                            Some(max) if seq > max + 1 => {
                                tx.missing_seq_nos.extend(max + 1..seq);
                                gap = Some(max + 1);
                            }
                            Some(_) => tx.missing_seq_nos.retain(|s| *s != seq),
                            None => {}
                        }
                        let next = tx.next_seq_no.unwrap_or(0).max(seq + 1);
                        tx.next_seq_no = Some(next);
                        if q.offline == Some(true) {
                            tx.offline = true;
                        }
                        if let Some(t) = &q.id_token {
                            tx.id_token = Some(t.id_token.as_str().to_owned());
                        }
                        tx.add_samples(&samples);
                        if let Some(expected) = gap {
                            self.push(Event::SequenceGap {
                                transaction_id: id.clone(),
                                expected,
                                received: seq,
                            });
                        }
                        if is_new {
                            self.push(Event::TransactionStarted {
                                transaction: tx.clone(),
                                request: q_any.clone(),
                            });
                        }
                        if q.event_type.as_str() == "Ended" {
                            self.seq_seen.remove(&id);
                            tx.ended_at = Some(to_utc(&q.timestamp));
                            tx.stop_reason = q
                                .transaction_info
                                .stopped_reason
                                .map(|r| r.as_str().to_owned())
                                .or(Some("Local".to_owned()));
                            self.push(Event::TransactionEnded {
                                transaction: tx,
                                request: q_any.clone(),
                            });
                        } else {
                            self.track(tx.clone());
                            if !is_new {
                                self.push(Event::TransactionUpdated {
                                    transaction: tx,
                                    samples,
                                    request: q_any.clone(),
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    };
}

#[cfg(feature = "v201")]
apply_2x!(apply_v201, samples_v201, v201);
#[cfg(feature = "v21")]
apply_2x!(apply_v21, samples_v21, v21);

struct BoxedIds(Box<dyn IdGenerator>);

impl IdGenerator for BoxedIds {
    fn next_id(&mut self) -> String {
        self.0.next_id()
    }
}
