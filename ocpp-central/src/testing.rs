//! The test kit (feature `test-util`): what this crate's own tests use, so you test your
//! handlers the same way.
//!
//! - [`Harness`]: a session on virtual time with a manual wall clock. The charger side is
//!   you: feed its messages, read the answers; time jumps to the next deadline, no sleeping.
//! - [`MockCharger`] (with feature `ws`): a scripted charger that connects to a loopback
//!   server in one line.
//! - [`pki`] (feature `test-pki`): a throwaway CA minting server and charger certificates
//!   (rcgen), for security profiles 2 and 3 in tests; no key material on disk.
//!
//! ```
//! use ocpp_central::testing::Harness;
//! use ocpp_central::BootState;
//! use ocpp_types::Version;
//!
//! let mut h = Harness::new(Version::V201);
//! let replies = h.charger_sends(r#"[2,"b1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#);
//! assert!(replies[0].contains(r#""status":"Accepted""#));
//! assert_eq!(h.session.state().boot, BootState::Accepted);
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ocpp_codec::rpc::CounterIds;
use ocpp_codec::testing::TestClock;
use ocpp_types::Version;

use crate::defaults::{CallFailure, CounterTransactionIds, Defaults, ManualClock};
use crate::incoming::IncomingCall;
use crate::message::{AnyRequest, AnyResponse};
use crate::model::Event;
use crate::session::{CallError, Session, SessionConfig, SessionEvent};

#[cfg(feature = "test-pki")]
pub mod pki;

type Responder =
    Box<dyn FnMut(&AnyRequest, &IncomingCall) -> Result<AnyResponse, CallFailure> + Send>;

/// A session on virtual time (monotonic [`TestClock`] and wall [`ManualClock`], both starting
/// at 2025-01-01T00:00:00Z), answering charger requests with a responder (the [`Defaults`]
/// unless set) and recording everything.
pub struct Harness {
    /// The session under test.
    pub session: Session,
    /// The monotonic virtual clock.
    pub clock: TestClock,
    /// The wall clock the session uses.
    pub wall: Arc<ManualClock>,
    /// Every model event so far.
    pub events: Vec<Event>,
    /// Every answer to a central call so far: (message id, result).
    pub answers: Vec<(String, Result<AnyResponse, CallError>)>,
    /// Every message the session sent, in order.
    pub sent: Vec<String>,
    /// Every protocol irregularity reported ([`SessionEvent::Protocol`]), in order.
    pub protocol: Vec<String>,
    /// Every valid 2.1 SEND ([`SessionEvent::Send`]): (action, payload).
    pub sends: Vec<(String, String)>,
    responder: Option<Responder>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("session", &self.session)
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness for charger `CP1` speaking `version`, central message ids `c1`, `c2`, ...,
    /// 1.6 transaction ids from 1.
    pub fn new(version: Version) -> Harness {
        Harness::with_config(|c| c, version)
    }

    /// A harness whose session configuration is adjusted by `f` (the clock and id source are
    /// the harness's own unless `f` replaces the defaults).
    pub fn with_config(
        f: impl FnOnce(SessionConfig) -> SessionConfig,
        version: Version,
    ) -> Harness {
        let wall = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        ));
        let defaults = Defaults {
            clock: wall.clone(),
            transaction_ids: Arc::new(CounterTransactionIds::default()),
            ..Defaults::default()
        };
        let config = SessionConfig::new("CP1", version)
            .id_generator(CounterIds::new("c"))
            .defaults(defaults);
        let mut h = Harness {
            session: Session::new(f(config)),
            clock: TestClock::new(),
            wall,
            events: Vec::new(),
            answers: Vec::new(),
            sent: Vec::new(),
            protocol: Vec::new(),
            sends: Vec::new(),
            responder: None,
        };
        h.pump();
        h
    }

    /// Answers charger requests with `f` instead of the defaults.
    pub fn respond_with(
        &mut self,
        mut f: impl FnMut(&AnyRequest) -> Result<AnyResponse, CallFailure> + Send + 'static,
    ) {
        self.responder = Some(Box::new(move |request, _| f(request)));
    }

    /// Answers charger requests by running `handler` (its async methods are run to completion
    /// on the spot; a handler that awaits a call to the charger needs [`MockCharger`] or a
    /// [`Connection`](crate::Connection) instead).
    pub fn respond_with_handler<H: crate::CentralSystem>(&mut self, handler: Arc<H>) {
        let (handle, _rx) = crate::ChargerHandle::new(
            self.session.state().clone(),
            self.session.defaults().clone(),
        );
        // The handler sees the call as it came over the wire (`with_incoming_call`), as
        // under the driver.
        self.responder = Some(Box::new(move |req, call| {
            futures::executor::block_on(crate::incoming::answering(
                call.clone(),
                crate::dispatch(&*handler, &handle, req.clone()),
            ))
        }));
    }

    /// Processes everything queued: answers requests, records events, answers and messages;
    /// returns the messages sent in this step.
    pub fn pump(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let now = self.clock.now();
            let mut progressed = false;
            while let Some(ev) = self.session.poll_event() {
                progressed = true;
                match ev {
                    SessionEvent::Request { id, request, call } => {
                        let answer = match &mut self.responder {
                            Some(f) => f(&request, &call),
                            None => self.session.defaults().response(&request),
                        };
                        match answer {
                            Ok(r) => {
                                if let Err(e) = self.session.respond(now, &id, r) {
                                    let _ = self
                                        .session
                                        .respond_error(&id, &CallFailure::internal(e.to_string()));
                                }
                            }
                            Err(f) => {
                                let _ = self.session.respond_error(&id, &f);
                            }
                        }
                    }
                    SessionEvent::Model(e) => self.events.push(e),
                    SessionEvent::Answer { id, result, .. } => self.answers.push((id, result)),
                    SessionEvent::Protocol(p) => self.protocol.push(p),
                    SessionEvent::Send { action, payload } => self.sends.push((action, payload)),
                }
            }
            while let Some(t) = self.session.poll_transmit() {
                progressed = true;
                out.push(t);
            }
            if !progressed {
                break;
            }
        }
        self.sent.extend(out.iter().cloned());
        out
    }

    /// The charger sends `text`; returns what the central system sent in response.
    pub fn charger_sends(&mut self, text: &str) -> Vec<String> {
        let now = self.clock.now();
        self.session.handle_text(now, text);
        self.pump()
    }

    /// The central system calls the charger; returns the message id (the CALL, if
    /// transmitted now, is in [`Harness::sent`]).
    pub fn central_calls(&mut self, request: &AnyRequest) -> Result<String, CallError> {
        let now = self.clock.now();
        let id = self.session.call(now, request)?;
        self.pump();
        Ok(id)
    }

    /// Moves both clocks forward by `by` and fires due timeouts; returns messages sent.
    pub fn advance(&mut self, by: Duration) -> Vec<String> {
        let now = self.clock.advance(by);
        self.wall
            .advance(chrono::Duration::from_std(by).unwrap_or_default());
        self.session.handle_timeout(now);
        self.pump()
    }

    /// Jumps to the session's next deadline (if any) and fires it; `false` if none.
    pub fn advance_to_next_timeout(&mut self) -> bool {
        let Some(at) = self.session.poll_timeout() else {
            return false;
        };
        let by = at.saturating_duration_since(self.clock.now());
        self.advance(by);
        true
    }

    /// Takes the model events recorded so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

#[cfg(feature = "ws")]
pub use mock::MockCharger;

#[cfg(feature = "ws")]
mod mock {
    use std::collections::VecDeque;
    use std::net::SocketAddr;

    use futures::{SinkExt, StreamExt};
    use ocpp_types::Version;
    use serde_json::Value;
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    /// A scripted charger over a real WebSocket: sends what you tell it, collects the central
    /// system's calls for you to answer.
    ///
    /// ```no_run
    /// # async fn f(addr: std::net::SocketAddr) {
    /// use ocpp_central::testing::MockCharger;
    /// use ocpp_types::Version;
    /// let mut cp = MockCharger::connect(addr, "CP1", Version::V16).await.unwrap();
    /// let answer = cp.call("Heartbeat", "{}").await.unwrap();
    /// assert!(answer[2]["currentTime"].is_string());
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct MockCharger {
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        next_id: u64,
        calls: VecDeque<Value>,
        /// The subprotocol the server chose.
        pub subprotocol: Option<String>,
    }

    fn basic(user: &str, password: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let raw = format!("{user}:{password}").into_bytes();
        let mut out = String::new();
        for chunk in raw.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("Basic {out}")
    }

    impl MockCharger {
        /// Connects to `ws://{addr}/ocpp/{identity}` offering `version`'s subprotocol.
        pub async fn connect(
            addr: SocketAddr,
            identity: &str,
            version: Version,
        ) -> Result<MockCharger, WsError> {
            MockCharger::connect_with(
                &format!("ws://{addr}/ocpp/{identity}"),
                &[version.subprotocol()],
                None,
            )
            .await
        }

        /// Connects to `url` offering `subprotocols`, with Basic auth when `auth` is
        /// (username, password).
        pub async fn connect_with(
            url: &str,
            subprotocols: &[&str],
            auth: Option<(&str, &str)>,
        ) -> Result<MockCharger, WsError> {
            let mut req = url.into_client_request()?;
            if !subprotocols.is_empty() {
                let v = HeaderValue::from_str(&subprotocols.join(", "))
                    .map_err(|e| WsError::HttpFormat(e.into()))?;
                req.headers_mut().insert("Sec-WebSocket-Protocol", v);
            }
            if let Some((u, p)) = auth {
                let v = HeaderValue::from_str(&basic(u, p))
                    .map_err(|e| WsError::HttpFormat(e.into()))?;
                req.headers_mut().insert("Authorization", v);
            }
            let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
            let subprotocol = resp
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok(MockCharger {
                ws,
                next_id: 1,
                calls: VecDeque::new(),
                subprotocol,
            })
        }

        /// Sends a raw text message.
        pub async fn send_raw(&mut self, text: &str) -> Result<(), WsError> {
            self.ws.send(Message::Text(text.into())).await
        }

        /// The next text message from the server, parsed (`None` when the connection closed).
        pub async fn recv(&mut self) -> Option<Value> {
            loop {
                match self.ws.next().await? {
                    Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
        }

        /// Sends CALL `action` with `payload` (JSON text) and returns the answer frame
        /// (`[3,..]` or `[4,..]`); central calls arriving meanwhile are kept for
        /// [`MockCharger::next_call`]. `None` when the connection closed.
        pub async fn call(&mut self, action: &str, payload: &str) -> Option<Value> {
            let id = format!("m{}", self.next_id);
            self.next_id += 1;
            self.send_raw(&format!(r#"[2,"{id}","{action}",{payload}]"#))
                .await
                .ok()?;
            loop {
                let msg = self.recv().await?;
                if msg[0] == 2 {
                    self.calls.push_back(msg);
                } else if msg[1] == id.as_str() {
                    return Some(msg);
                }
            }
        }

        /// The next central CALL (`[2,id,action,payload]`), waiting for it if none is kept.
        pub async fn next_call(&mut self) -> Option<Value> {
            if let Some(c) = self.calls.pop_front() {
                return Some(c);
            }
            loop {
                let msg = self.recv().await?;
                if msg[0] == 2 {
                    return Some(msg);
                }
            }
        }

        /// Answers central CALL `id` with `payload` (JSON text).
        pub async fn reply(&mut self, id: &str, payload: &str) -> Result<(), WsError> {
            self.send_raw(&format!(r#"[3,"{id}",{payload}]"#)).await
        }

        /// Closes the connection.
        pub async fn close(mut self) {
            let _ = self.ws.close(None).await;
        }
    }
}
