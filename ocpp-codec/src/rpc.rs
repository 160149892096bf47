//! The sans-IO RPC endpoint both sides of an OCPP-J connection use.
//!
//! An [`Endpoint`] is a plain state machine in the style of quinn-proto: text messages and the
//! current time go in ([`Endpoint::handle_text`], [`Endpoint::handle_timeout`],
//! [`Endpoint::call`], [`Endpoint::respond`]); text messages to send
//! ([`Endpoint::poll_transmit`]), events for the application ([`Endpoint::poll_event`]) and the
//! next deadline ([`Endpoint::poll_timeout`]) come out. It never reads the clock, never does
//! I/O and never panics on peer input.
//!
//! Semantics (OCPP-J §4.1.1 / 2.x part 2 FR.01: "the sender of a request SHALL wait for a
//! response or a timeout before sending another request"):
//!
//! - One outgoing CALL in flight; further calls wait in a FIFO queue and are transmitted one at
//!   a time, each after the previous one was answered (CALLRESULT or CALLERROR) or timed out.
//! - Peer CALLs are surfaced as [`Event::Call`] and may be answered at any time, in any order,
//!   also while our own CALL is in flight.
//! - A CALLRESULT/CALLERROR is matched to the call in flight by id. One for a call that timed
//!   out is [`Event::Late`], one for a call already answered is [`Event::Duplicate`], any other
//!   is [`Event::Unmatched`]; none of them disturbs the call in flight.
//! - A second CALL from the peer with the id of one still being handled (unanswered) is
//!   reported as [`Event::DuplicateCall`]. OCPP-J §4.2.3 names "an existing call with the same
//!   unique identifier is being handled already" among the situations for a CALLERROR, so the
//!   copy gets one: CALLERROR `RpcFrameworkError` (1.6: `FormationViolation`), sent right
//!   *after* the answer to the original. Sent first, it would arrive before the real answer
//!   and the peer would take it as the answer to its call (and drop the real one as unknown);
//!   sent after, a peer that retried with the same id (2.1 part 4 §4.1.4 allows it) gets the
//!   real answer and can ignore the error.
//! - A malformed message gets the reply [`FrameError::reply`] prescribes, queued for
//!   transmission, and an [`Event::ProtocolError`].
//! - OCPP 2.1 SEND ([`Endpoint::send`]) is transmitted at once, also while a CALL is in flight:
//!   it is not a request and gets no response, so it neither waits for nor blocks the CALL
//!   queue. Incoming SENDs are [`Event::Send`]. A CALLRESULTERROR from the peer is
//!   [`Event::ResultError`]; [`Endpoint::result_error`] sends one.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ocpp_codec::rpc::{Endpoint, EndpointConfig, Event};
//! use ocpp_codec::Version;
//! use serde_json::value::RawValue;
//!
//! let now = Instant::now(); // in real code: the driver's clock
//! let mut ep = Endpoint::new(EndpointConfig::new(Version::V16));
//! let payload = RawValue::from_string("{}".into()).unwrap();
//! let id = ep.call(now, "Heartbeat", payload).unwrap();
//! assert_eq!(ep.poll_transmit().unwrap(), format!(r#"[2,"{id}","Heartbeat",{{}}]"#));
//! assert_eq!(ep.poll_timeout(), Some(now + Duration::from_secs(30)));
//!
//! ep.handle_text(now, &format!(r#"[3,"{id}",{{"currentTime":"2024-01-01T00:00:00Z"}}]"#));
//! match ep.poll_event().unwrap() {
//!     Event::Result { action, payload, .. } => {
//!         assert_eq!(action, "Heartbeat");
//!         assert!(payload.get().contains("currentTime"));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use ocpp_schemas::Version;
use serde_json::value::RawValue;

use crate::error::{
    truncate_description, ErrorCode, FrameError, Reply, ReplyKind, MAX_MESSAGE_ID_LEN,
};
use crate::frame::{
    encode_call_into, encode_error_into, encode_result_into, Decoder, Frame, MessageType,
    DEFAULT_MAX_MESSAGE_SIZE,
};

/// Makes message ids for outgoing CALLs and SENDs.
///
/// Ids must be unique per connection and at most 36 characters; the endpoint refuses a call
/// whose generated id breaks either rule. Any `FnMut() -> String + Send` is a generator.
pub trait IdGenerator: Send {
    /// The next id.
    fn next_id(&mut self) -> String;
}

impl<F: FnMut() -> String + Send> IdGenerator for F {
    fn next_id(&mut self) -> String {
        self()
    }
}

/// Deterministic ids: a prefix followed by a counter (`"1"`, `"2"`, ... by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterIds {
    prefix: String,
    next: u64,
}

impl CounterIds {
    /// Ids `prefix1`, `prefix2`, ...; keep the prefix at most 16 characters so ids stay
    /// within 36.
    pub fn new(prefix: impl Into<String>) -> CounterIds {
        CounterIds {
            prefix: prefix.into(),
            next: 1,
        }
    }
}

impl Default for CounterIds {
    fn default() -> Self {
        CounterIds::new("")
    }
}

impl IdGenerator for CounterIds {
    fn next_id(&mut self) -> String {
        let id = format!("{}{}", self.prefix, self.next);
        self.next = self.next.wrapping_add(1);
        id
    }
}

/// Random-looking ids in UUID version 4 format (36 characters), from a pseudo-random
/// generator seeded by the caller (the same seed gives the same ids: seed it from a real
/// entropy source in production, e.g. the OS random generator or the connection's start time).
///
/// Not cryptographic: ids need to be unique, not secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomIds {
    state: u64,
}

impl RandomIds {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> RandomIds {
        RandomIds { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl IdGenerator for RandomIds {
    fn next_id(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

/// How an [`Endpoint`] behaves.
pub struct EndpointConfig {
    version: Version,
    call_timeout: Duration,
    max_message_size: usize,
    ids: Box<dyn IdGenerator>,
    ignore_unknown_message_types: bool,
    max_unanswered_calls: usize,
    remembered_ids: usize,
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("version", &self.version)
            .field("call_timeout", &self.call_timeout)
            .field("max_message_size", &self.max_message_size)
            .field(
                "ignore_unknown_message_types",
                &self.ignore_unknown_message_types,
            )
            .field("max_unanswered_calls", &self.max_unanswered_calls)
            .field("remembered_ids", &self.remembered_ids)
            .finish_non_exhaustive()
    }
}

impl EndpointConfig {
    /// Defaults for `version`: 30 s call timeout, 1 MiB maximum message size, [`CounterIds`],
    /// unknown message types answered as the version prescribes, at most 16 unanswered peer
    /// calls, the last 32 finished call ids remembered.
    pub fn new(version: Version) -> EndpointConfig {
        EndpointConfig {
            version,
            call_timeout: Duration::from_secs(30),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            ids: Box::new(CounterIds::default()),
            ignore_unknown_message_types: false,
            max_unanswered_calls: 16,
            remembered_ids: 32,
        }
    }

    /// How long to wait for the answer to a CALL, counted from its transmission.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The largest incoming message accepted, in bytes; larger ones are refused unparsed.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The generator of outgoing message ids.
    pub fn id_generator(mut self, ids: impl IdGenerator + 'static) -> Self {
        self.ids = Box::new(ids);
        self
    }

    /// Send nothing for a message with an unknown message type number, on every version
    /// (default `false`: 2.0.1 peers get CALLERROR `MessageTypeNotSupported`, 1.6 and 2.1 peers
    /// nothing).
    ///
    /// OCPP-J 2.0.1 §4.1.3 says to ignore such a message, while its §4.4 (extension fallback)
    /// answers it with `MessageTypeNotSupported`; the 2.0.1 errata deprecate that code in
    /// favour of silence, and OCPP 2.1 (§4.1.3 and §4.4, updated in 2.1) ignores the message.
    /// Turn this on to follow the errata on 2.0.1 connections too.
    pub fn ignore_unknown_message_types(mut self, ignore: bool) -> Self {
        self.ignore_unknown_message_types = ignore;
        self
    }

    /// How many peer CALLs may await our answer at once; further ones are refused with
    /// CALLERROR `GenericError` (a conforming peer has at most one in flight).
    pub fn max_unanswered_calls(mut self, n: usize) -> Self {
        self.max_unanswered_calls = n;
        self
    }

    /// How many finished outgoing call ids are remembered to tell late and duplicate answers
    /// from unknown ones.
    pub fn remembered_ids(mut self, n: usize) -> Self {
        self.remembered_ids = n;
        self
    }

    /// The connection's version.
    pub fn version(&self) -> Version {
        self.version
    }
}

/// The answer a peer gave to one of our CALLs.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A CALLRESULT payload.
    Result(Box<RawValue>),
    /// A CALLERROR.
    Error {
        /// The error code.
        code: ErrorCode,
        /// The description.
        description: String,
        /// The details JSON.
        details: Box<RawValue>,
    },
}

/// Something the application needs to know; drain with [`Endpoint::poll_event`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The peer sent a CALL; answer it with [`Endpoint::respond`] or
    /// [`Endpoint::respond_error`].
    Call {
        /// The message id to answer.
        id: String,
        /// The action.
        action: String,
        /// The request payload, not yet validated.
        payload: Box<RawValue>,
    },
    /// The peer sent an OCPP 2.1 SEND (no answer expected).
    Send {
        /// The message id.
        id: String,
        /// The action.
        action: String,
        /// The payload, not yet validated.
        payload: Box<RawValue>,
    },
    /// Our CALL in flight got its CALLRESULT.
    Result {
        /// The call's id.
        id: String,
        /// The call's action.
        action: String,
        /// The response payload, not yet validated.
        payload: Box<RawValue>,
    },
    /// Our CALL in flight got a CALLERROR.
    Error {
        /// The call's id.
        id: String,
        /// The call's action.
        action: String,
        /// The error code.
        code: ErrorCode,
        /// The description.
        description: String,
        /// The details JSON.
        details: Box<RawValue>,
    },
    /// Our CALL in flight got no answer within the call timeout; the next queued call is
    /// transmitted.
    Timeout {
        /// The call's id.
        id: String,
        /// The call's action.
        action: String,
    },
    /// An answer to one of our calls that had already timed out.
    Late {
        /// The call's id.
        id: String,
        /// The call's action.
        action: String,
        /// What the peer answered.
        answer: Answer,
    },
    /// A second answer to one of our calls that was already answered.
    Duplicate {
        /// The call's id.
        id: String,
        /// The call's action.
        action: String,
        /// What the peer answered the second time.
        answer: Answer,
    },
    /// An answer whose id matches none of our calls (in flight or remembered).
    Unmatched {
        /// The id the peer sent.
        id: String,
        /// What the peer answered.
        answer: Answer,
    },
    /// The peer repeated a CALL id that still awaits our answer. The copy is answered with
    /// CALLERROR `RpcFrameworkError` (1.6: `FormationViolation`) right after our answer to the
    /// original (see the [module docs](self)).
    DuplicateCall {
        /// The repeated id.
        id: String,
        /// The action of the copy.
        action: String,
    },
    /// The peer sent a CALL while [`EndpointConfig::max_unanswered_calls`] of its calls
    /// awaited our answer; it was refused with CALLERROR `GenericError`.
    CallRefused {
        /// The refused call's id.
        id: String,
        /// The refused call's action.
        action: String,
    },
    /// (OCPP 2.1) The peer could not process our CALLRESULT to its call `id`.
    ResultError {
        /// The id of the peer's call we answered.
        id: String,
        /// The error code.
        code: ErrorCode,
        /// The description.
        description: String,
        /// The details JSON.
        details: Box<RawValue>,
    },
    /// The peer sent a message that is not a valid frame.
    ProtocolError {
        /// What is wrong with it.
        error: FrameError,
        /// The reply queued for transmission, if the specification calls for one.
        reply: Option<Reply>,
    },
}

/// Why an endpoint refused a request from the application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The id generator produced an id longer than 36 characters.
    #[error("generated message id {0:?} is longer than 36 characters")]
    IdTooLong(String),
    /// The id generator produced an id already used by a pending or queued call.
    #[error("generated message id {0:?} is already in use")]
    DuplicateId(String),
    /// [`Endpoint::respond`] or [`Endpoint::respond_error`] for an id that is not an
    /// unanswered peer CALL.
    #[error("no unanswered call with id {0:?}")]
    UnknownCall(String),
    /// The operation does not exist in the connection's version (SEND, CALLRESULTERROR
    /// before 2.1).
    #[error("{what} is not available in OCPP {version}")]
    NotInVersion {
        /// The operation.
        what: &'static str,
        /// The connection's version.
        version: Version,
    },
    /// A typed message of another version than the connection's.
    #[error("an OCPP {found} message cannot be sent on an OCPP {expected} connection")]
    VersionMismatch {
        /// The connection's version.
        expected: Version,
        /// The message's version.
        found: Version,
    },
    /// A typed message failed to serialize.
    #[error("payload does not serialize: {0}")]
    Serialize(String),
}

#[derive(Debug)]
struct InFlight {
    id: String,
    action: String,
    deadline: Instant,
}

#[derive(Debug)]
struct Queued {
    id: String,
    action: String,
    payload: Box<RawValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    TimedOut,
}

/// The sans-IO OCPP-J RPC endpoint (see the [module docs](self)).
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    decoder: Decoder,
    in_flight: Option<InFlight>,
    queue: VecDeque<Queued>,
    unanswered: HashMap<String, String>,
    /// Copies of unanswered peer CALLs (id -> how many), answered after the original.
    copies: HashMap<String, usize>,
    recent: VecDeque<(String, String, Outcome)>,
    transmit: VecDeque<String>,
    events: VecDeque<Event>,
}

impl Endpoint {
    /// A new endpoint with nothing in flight.
    pub fn new(config: EndpointConfig) -> Endpoint {
        let decoder = Decoder::new(config.version).with_max_message_size(config.max_message_size);
        Endpoint {
            config,
            decoder,
            in_flight: None,
            queue: VecDeque::new(),
            unanswered: HashMap::new(),
            copies: HashMap::new(),
            recent: VecDeque::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The connection's version.
    pub fn version(&self) -> Version {
        self.config.version
    }

    /// The id of our CALL in flight, if any.
    pub fn in_flight(&self) -> Option<&str> {
        self.in_flight.as_ref().map(|c| c.id.as_str())
    }

    /// How many of our CALLs wait behind the one in flight.
    pub fn queued_calls(&self) -> usize {
        self.queue.len()
    }

    /// The ids of peer CALLs that await our answer.
    pub fn unanswered_calls(&self) -> impl Iterator<Item = &str> {
        self.unanswered.keys().map(String::as_str)
    }

    fn fresh_id(&mut self) -> Result<String, EndpointError> {
        let id = self.config.ids.next_id();
        if id.chars().count() > MAX_MESSAGE_ID_LEN {
            return Err(EndpointError::IdTooLong(id));
        }
        let in_use = self.in_flight.as_ref().is_some_and(|c| c.id == id)
            || self.queue.iter().any(|q| q.id == id);
        if in_use {
            return Err(EndpointError::DuplicateId(id));
        }
        Ok(id)
    }

    /// Queues a CALL with a fresh id and returns the id. It is transmitted at once when no
    /// other CALL is in flight, otherwise after those before it were answered or timed out.
    /// `payload` is sent verbatim.
    pub fn call(
        &mut self,
        now: Instant,
        action: &str,
        payload: Box<RawValue>,
    ) -> Result<String, EndpointError> {
        let id = self.fresh_id()?;
        self.queue.push_back(Queued {
            id: id.clone(),
            action: action.to_owned(),
            payload,
        });
        self.start_next(now);
        Ok(id)
    }

    /// [`Endpoint::call`] with a typed request of the connection's version.
    pub fn call_typed<R: ocpp_types::Request>(
        &mut self,
        now: Instant,
        request: &R,
    ) -> Result<String, EndpointError> {
        let payload = self.typed_payload::<R>(request)?;
        self.call(now, R::ACTION, payload)
    }

    /// Transmits an OCPP 2.1 SEND at once (it gets no response, so it does not wait for the
    /// CALL in flight) and returns its id.
    pub fn send(
        &mut self,
        _now: Instant,
        action: &str,
        payload: &RawValue,
    ) -> Result<String, EndpointError> {
        self.require_21("SEND")?;
        let id = self.fresh_id()?;
        let mut out = String::new();
        encode_call_into(&mut out, MessageType::Send, &id, action, payload.get());
        self.transmit.push_back(out);
        Ok(id)
    }

    /// [`Endpoint::send`] with a typed SEND message.
    pub fn send_typed<S: ocpp_types::SendMessage>(
        &mut self,
        now: Instant,
        message: &S,
    ) -> Result<String, EndpointError> {
        let payload = self.typed_payload::<S>(message)?;
        self.send(now, S::ACTION, &payload)
    }

    /// Answers the peer's CALL `id` with a CALLRESULT carrying `payload` (sent verbatim).
    pub fn respond(&mut self, id: &str, payload: &RawValue) -> Result<(), EndpointError> {
        if self.unanswered.remove(id).is_none() {
            return Err(EndpointError::UnknownCall(id.to_owned()));
        }
        let mut out = String::new();
        encode_result_into(&mut out, id, payload.get());
        self.transmit.push_back(out);
        self.refuse_copies(id);
        Ok(())
    }

    /// [`Endpoint::respond`] with a typed response of the connection's version.
    pub fn respond_typed<R: ocpp_types::Response>(
        &mut self,
        id: &str,
        response: &R,
    ) -> Result<(), EndpointError> {
        let payload = self.typed_payload::<R>(response)?;
        self.respond(id, &payload)
    }

    /// Answers the peer's CALL `id` with a CALLERROR. The code is spelled for the connection's
    /// version, the description cut to 255 characters, and `details` (a JSON object) defaults
    /// to `{}`.
    pub fn respond_error(
        &mut self,
        id: &str,
        code: &ErrorCode,
        description: &str,
        details: Option<&RawValue>,
    ) -> Result<(), EndpointError> {
        if self.unanswered.remove(id).is_none() {
            return Err(EndpointError::UnknownCall(id.to_owned()));
        }
        self.push_error(MessageType::CallError, id, code, description, details);
        self.refuse_copies(id);
        Ok(())
    }

    /// Forgets the peer's CALL `id` without answering it, for the cases where the
    /// specification says to send nothing (a charging station whose boot was rejected answers
    /// no CALL of the central system: OCPP 2.0.1 part 2 B03, 1.6 §4.2). Copies of it received
    /// meanwhile are forgotten too. Without this, such calls would count against
    /// [`EndpointConfig::max_unanswered_calls`] for the rest of the connection.
    pub fn ignore_call(&mut self, id: &str) -> Result<(), EndpointError> {
        if self.unanswered.remove(id).is_none() {
            return Err(EndpointError::UnknownCall(id.to_owned()));
        }
        self.copies.remove(id);
        Ok(())
    }

    /// After the answer to `id`: a CALLERROR for each copy of it received meanwhile.
    fn refuse_copies(&mut self, id: &str) {
        for _ in 0..self.copies.remove(id).unwrap_or(0) {
            self.push_error(
                MessageType::CallError,
                id,
                &ErrorCode::RpcFrameworkError,
                "a CALL with this message id was being handled already; its answer came first",
                None,
            );
        }
    }

    /// (OCPP 2.1) Tells the peer its CALLRESULT to our call `id` could not be processed
    /// (2.1 part 2 FR.06), with a CALLRESULTERROR.
    pub fn result_error(
        &mut self,
        id: &str,
        code: &ErrorCode,
        description: &str,
        details: Option<&RawValue>,
    ) -> Result<(), EndpointError> {
        self.require_21("CALLRESULTERROR")?;
        self.push_error(MessageType::CallResultError, id, code, description, details);
        Ok(())
    }

    /// Handles one text message from the peer. Afterwards, drain [`Endpoint::poll_transmit`]
    /// and [`Endpoint::poll_event`], and re-arm the timer from [`Endpoint::poll_timeout`].
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        match self.decoder.decode(text) {
            Ok(frame) => self.handle_frame(frame),
            Err(error) => {
                let ignore = self.config.ignore_unknown_message_types
                    && matches!(error, FrameError::UnknownMessageType { .. });
                let reply = if ignore {
                    None
                } else {
                    error.reply(self.config.version)
                };
                if let Some(reply) = &reply {
                    self.transmit.push_back(reply.encode());
                }
                self.events.push_back(Event::ProtocolError { error, reply });
            }
        }
        self.start_next(now);
    }

    fn handle_frame(&mut self, frame: Frame<'_>) {
        match frame {
            Frame::Call {
                id,
                action,
                payload,
            } => {
                if self.unanswered.contains_key(&*id) {
                    // Answered after the original; at most `max_unanswered_calls` copies of
                    // an id are remembered (a conforming peer sends none).
                    let copies = self.copies.entry(id.clone().into_owned()).or_default();
                    *copies = (*copies + 1).min(self.config.max_unanswered_calls.max(1));
                    self.events.push_back(Event::DuplicateCall {
                        id: id.into_owned(),
                        action: action.into_owned(),
                    });
                } else if self.unanswered.len() >= self.config.max_unanswered_calls {
                    self.push_error(
                        MessageType::CallError,
                        &id,
                        &ErrorCode::GenericError,
                        "too many unanswered calls",
                        None,
                    );
                    self.events.push_back(Event::CallRefused {
                        id: id.into_owned(),
                        action: action.into_owned(),
                    });
                } else {
                    self.unanswered
                        .insert(id.clone().into_owned(), action.clone().into_owned());
                    self.events.push_back(Event::Call {
                        id: id.into_owned(),
                        action: action.into_owned(),
                        payload: payload.to_owned(),
                    });
                }
            }
            Frame::Send {
                id,
                action,
                payload,
            } => self.events.push_back(Event::Send {
                id: id.into_owned(),
                action: action.into_owned(),
                payload: payload.to_owned(),
            }),
            Frame::CallResult { id, payload } => {
                self.handle_answer(id.into_owned(), Answer::Result(payload.to_owned()))
            }
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => self.handle_answer(
                id.into_owned(),
                Answer::Error {
                    code,
                    description: description.into_owned(),
                    details: details.to_owned(),
                },
            ),
            Frame::CallResultError {
                id,
                code,
                description,
                details,
            } => self.events.push_back(Event::ResultError {
                id: id.into_owned(),
                code,
                description: description.into_owned(),
                details: details.to_owned(),
            }),
        }
    }

    fn handle_answer(&mut self, id: String, answer: Answer) {
        if self.in_flight.as_ref().is_some_and(|c| c.id == id) {
            let Some(call) = self.in_flight.take() else {
                return;
            };
            self.remember(call.id.clone(), call.action.clone(), Outcome::Answered);
            self.events.push_back(match answer {
                Answer::Result(payload) => Event::Result {
                    id: call.id,
                    action: call.action,
                    payload,
                },
                Answer::Error {
                    code,
                    description,
                    details,
                } => Event::Error {
                    id: call.id,
                    action: call.action,
                    code,
                    description,
                    details,
                },
            });
            return;
        }
        let known = self
            .recent
            .iter_mut()
            .find(|(rid, _, _)| *rid == id)
            .map(|entry| {
                let outcome = entry.2;
                entry.2 = Outcome::Answered;
                (entry.1.clone(), outcome)
            });
        self.events.push_back(match known {
            Some((action, Outcome::TimedOut)) => Event::Late { id, action, answer },
            Some((action, Outcome::Answered)) => Event::Duplicate { id, action, answer },
            None => Event::Unmatched { id, answer },
        });
    }

    /// Handles the passing of time: when the CALL in flight has reached its deadline, reports
    /// [`Event::Timeout`] and transmits the next queued call. Call it when the deadline from
    /// [`Endpoint::poll_timeout`] has passed (calling it early or often is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.in_flight.as_ref().is_some_and(|c| c.deadline <= now) {
            if let Some(call) = self.in_flight.take() {
                self.remember(call.id.clone(), call.action.clone(), Outcome::TimedOut);
                self.events.push_back(Event::Timeout {
                    id: call.id,
                    action: call.action,
                });
            }
        }
        self.start_next(now);
    }

    /// The next text message to send to the peer, in order. Call it after every
    /// `handle_*`, `call*`, `send*`, `respond*` until it returns `None`.
    pub fn poll_transmit(&mut self) -> Option<String> {
        let text = self.transmit.pop_front();
        if text.is_none() && self.transmit.capacity() > 0 {
            // An idle endpoint holds no queue memory (thousands of them add up).
            self.transmit = VecDeque::new();
        }
        text
    }

    /// The next event for the application, in order. Call it after every `handle_*` until it
    /// returns `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        event
    }

    /// When [`Endpoint::handle_timeout`] must be called next: the deadline of the CALL in
    /// flight, or `None` when nothing is waiting. Re-read it after every other call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|c| c.deadline)
    }

    fn start_next(&mut self, now: Instant) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(next) = self.queue.pop_front() else {
            return;
        };
        let mut out = String::new();
        encode_call_into(
            &mut out,
            MessageType::Call,
            &next.id,
            &next.action,
            next.payload.get(),
        );
        self.transmit.push_back(out);
        let deadline = now.checked_add(self.config.call_timeout).unwrap_or(now);
        self.in_flight = Some(InFlight {
            id: next.id,
            action: next.action,
            deadline,
        });
    }

    fn remember(&mut self, id: String, action: String, outcome: Outcome) {
        if self.config.remembered_ids == 0 {
            return;
        }
        while self.recent.len() >= self.config.remembered_ids {
            self.recent.pop_front();
        }
        self.recent.push_back((id, action, outcome));
    }

    fn push_error(
        &mut self,
        kind: MessageType,
        id: &str,
        code: &ErrorCode,
        description: &str,
        details: Option<&RawValue>,
    ) {
        let mut out = String::new();
        encode_error_into(
            &mut out,
            kind,
            id,
            code.as_str(self.config.version),
            &truncate_description(description),
            details.map_or("{}", RawValue::get),
        );
        self.transmit.push_back(out);
    }

    fn require_21(&self, what: &'static str) -> Result<(), EndpointError> {
        if self.config.version == Version::V21 {
            Ok(())
        } else {
            Err(EndpointError::NotInVersion {
                what,
                version: self.config.version,
            })
        }
    }

    fn typed_payload<M: ocpp_types::Message>(
        &self,
        message: &M,
    ) -> Result<Box<RawValue>, EndpointError> {
        if M::VERSION != self.config.version {
            return Err(EndpointError::VersionMismatch {
                expected: self.config.version,
                found: M::VERSION,
            });
        }
        serde_json::value::to_raw_value(message)
            .map_err(|e| EndpointError::Serialize(e.to_string()))
    }
}

impl ReplyKind {
    /// The frame type of this reply.
    pub const fn message_type(self) -> MessageType {
        match self {
            ReplyKind::CallError => MessageType::CallError,
            ReplyKind::CallResultError => MessageType::CallResultError,
        }
    }
}
