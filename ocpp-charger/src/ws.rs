//! The WebSocket client (feature `ws`): one task owns the socket and the [`Station`]
//! (the h2/quinn "driver" pattern, no `Mutex` around the core).
//!
//! The driver `select!`s over socket input, a command channel and one timer at
//! [`Station::poll_timeout`]; after every step it sends everything from
//! [`Station::poll_transmit`] and forwards [`Station::poll_event`]. While disconnected the
//! station keeps running (meter samples and transactions are queued in its outbox) and the
//! driver reconnects with exponential backoff and jitter; after reconnecting the station
//! resumes the outbox in order.
//!
//! Connection: `<url>/<identity>` with the version's subprotocol (`ocpp1.6`, `ocpp2.0.1`,
//! `ocpp2.1`) and, with a password, HTTP Basic auth (security profile 1: user = identity).
//! A handshake whose response does not select our subprotocol is refused. WebSocket pings go
//! out every `WebSocketPingInterval` seconds (0 = off); pongs to the server's pings are sent
//! by tungstenite.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::hardware::HardwareEvent;
use crate::settings::Setting;
use crate::station::{Station, StationEvent};
use crate::time::Rng;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `ws://127.0.0.1:9000/ocpp`; the identity is appended as the last path
    /// segment.
    pub url: String,
    /// Basic-auth password (security profile 1); `None` sends no `Authorization` header.
    pub password: Option<String>,
    /// First reconnect delay.
    pub min_backoff: Duration,
    /// Largest reconnect delay (the delay doubles per failed attempt up to this).
    pub max_backoff: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// Largest message accepted. A larger one is answered with CALLERROR `FormatViolation`
    /// (1.6 `FormationViolation`) carrying its message id, and the connection goes on; one
    /// more than 4 times as large is not read: the connection is closed with WebSocket status
    /// 1009 (Message Too Big) and opened again.
    pub max_message_size: usize,
    /// Seed of the jitter generator.
    pub seed: u64,
}

impl ClientConfig {
    /// Defaults: no password, backoff 1 s doubling to 60 s with up to 50 % jitter, 10 s
    /// connect timeout, 1 MiB messages.
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            password: None,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_message_size: 1 << 20,
            seed: 0,
        }
    }

    /// Sets the Basic-auth password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the backoff range.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// The delay before reconnect attempt `n` (1-based): `min * 2^(n-1)` capped at `max`,
    /// plus up to half of it as jitter.
    pub fn backoff_delay(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let base = self
            .min_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        base + rng.jitter(base / 2)
    }
}

/// An operation on the station, run inside the driver task.
pub type StationFn = Box<dyn FnOnce(&mut Station, std::time::Instant) + Send>;

/// A command to the driver task.
pub enum Command {
    /// A physical input.
    Hardware(HardwareEvent),
    /// Anything else done with the station (query it, start a data transfer, ...).
    With(StationFn),
    /// Closes the connection and ends the task (which returns the station).
    Shutdown,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Hardware(e) => f.debug_tuple("Hardware").field(e).finish(),
            Command::With(_) => f.write_str("With(..)"),
            Command::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// Talks to a running client task.
#[derive(Debug)]
pub struct ClientHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// Station events (and [`ClientEvent`]s), in order. At most [`EVENT_QUEUE`] wait here;
    /// an application that does not keep up misses the newest and gets
    /// [`ClientEvent::Lagged`] with how many, instead of the station stalling or memory
    /// growing with what the central system sends.
    pub events: mpsc::Receiver<ClientEvent>,
    task: tokio::task::JoinHandle<Station>,
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The WebSocket is open.
    Connected,
    /// The WebSocket closed or failed; `reconnect_in` until the next attempt.
    Disconnected {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        reconnect_in: Duration,
    },
    /// A station event.
    Station(StationEvent),
    /// This many events were dropped because [`EVENT_QUEUE`] events were waiting unread.
    Lagged(u64),
}

/// How many [`ClientEvent`]s wait for the application at most ([`ClientHandle::events`]).
pub const EVENT_QUEUE: usize = 1024;

impl ClientHandle {
    /// Sends a physical input to the station.
    pub fn hardware(&self, event: HardwareEvent) -> bool {
        self.commands.send(Command::Hardware(event)).is_ok()
    }

    /// Runs `f` with the station inside the task.
    pub fn with(&self, f: impl FnOnce(&mut Station, std::time::Instant) + Send + 'static) -> bool {
        self.commands.send(Command::With(Box::new(f))).is_ok()
    }

    /// Stops the task and returns the station.
    pub async fn shutdown(self) -> Option<Station> {
        let _ = self.commands.send(Command::Shutdown);
        self.task.await.ok()
    }
}

/// Spawns the driver task for `station` (needs a tokio runtime).
pub fn spawn(station: Station, config: ClientConfig) -> ClientHandle {
    let (ctx, crx) = mpsc::unbounded_channel();
    let (etx, erx) = mpsc::channel(EVENT_QUEUE);
    let task = tokio::spawn(run(station, config, crx, Some(etx)));
    ClientHandle {
        commands: ctx,
        events: erx,
        task,
    }
}

/// The `Authorization` header value of HTTP Basic auth (RFC 7617), `Basic base64(user:password)`,
/// as the client sends it for security profile 1 (for other clients of the same central system).
pub fn basic_auth(user: &str, password: &str) -> String {
    ocpp_codec::transport::basic_auth_header(user, password)
}

async fn connect(
    identity: &str,
    version: crate::Version,
    config: &ClientConfig,
) -> Result<Ws, String> {
    let url = format!("{}/{}", config.url.trim_end_matches('/'), identity);
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let protocol = version.subprotocol();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    if let Some(password) = &config.password {
        let value = basic_auth(identity, password);
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&value).map_err(|e| e.to_string())?,
        );
    }
    // Messages up to `OVERSIZE_FACTOR` times the limit are read, so that one over the limit
    // can be answered with a CALLERROR naming its id; a larger one ends the connection (1009).
    let read_limit = ocpp_codec::transport::read_limit(config.max_message_size);
    let mut ws_config = WebSocketConfig::default();
    // 4 KiB instead of tungstenite's 128 KiB read buffer (zeroed on every read, held per
    // connection): OCPP messages are small.
    ws_config.read_buffer_size = 4096;
    ws_config.max_message_size = Some(read_limit);
    ws_config.max_frame_size = Some(read_limit);
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
    let (ws, response) = tokio::time::timeout(config.connect_timeout, connecting)
        .await
        .map_err(|_| "connect timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|h| h.to_str().ok());
    if !ocpp_codec::transport::selects(chosen, version) {
        return Err(format!("server did not select subprotocol {protocol}"));
    }
    Ok(ws)
}

/// The close frame for an error on the reading side, when it has a WebSocket status code
/// ([`ocpp_codec::transport::ReadFailure`]: 1009, 1007 or 1002, RFC 6455 §7.4.1).
fn close_frame_for(error: &tokio_tungstenite::tungstenite::Error) -> Option<CloseFrame> {
    use ocpp_codec::transport::ReadFailure;
    use tokio_tungstenite::tungstenite::Error;
    let failure = match error {
        Error::Capacity(_) => ReadFailure::TooBig,
        Error::Utf8(_) => ReadFailure::NotUtf8,
        Error::Protocol(_) => ReadFailure::Protocol,
        _ => return None,
    };
    Some(CloseFrame {
        code: failure.close_code().into(),
        reason: failure.reason().into(),
    })
}

/// Hands one message to the station; one over the size limit is answered here instead, as the
/// codec prescribes (CALLERROR `FormatViolation` with its message id).
async fn deliver(
    station: &mut Station,
    ws: &mut Option<Ws>,
    config: &ClientConfig,
    now: std::time::Instant,
    text: &str,
) {
    if text.len() > config.max_message_size {
        let decoder = ocpp_codec::frame::Decoder::new(station.version())
            .with_max_message_size(config.max_message_size);
        if let Err(error) = decoder.decode(text) {
            if let (Some(reply), Some(s)) = (error.reply(station.version()), ws.as_mut()) {
                let _ = s.send(Message::text(reply.encode())).await;
            }
            return;
        }
    }
    station.handle_text(now, text);
}

async fn next_message(
    ws: &mut Option<Ws>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

/// The driver: runs `station` over a WebSocket until [`Command::Shutdown`] (or the command
/// channel closes), then returns it. `events` receives [`ClientEvent`]s (pass `None` to
/// ignore them, e.g. in a load generator).
pub async fn run(
    mut station: Station,
    config: ClientConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: Option<mpsc::Sender<ClientEvent>>,
) -> Station {
    let mut rng = Rng::new(config.seed ^ 0x5eed);
    let mut ws: Option<Ws> = None;
    let mut attempts: u32 = 0;
    let mut reconnect_at = TokioInstant::now();
    let mut next_ping: Option<TokioInstant> = None;
    let identity = station.identity().to_owned();
    let version = station.version();
    let mut lagged: u64 = 0;
    let mut emit = |e: ClientEvent| {
        let Some(tx) = &events else { return };
        if lagged > 0 && tx.try_send(ClientEvent::Lagged(lagged)).is_ok() {
            lagged = 0;
        }
        if lagged > 0 || tx.try_send(e).is_err() {
            lagged = lagged.saturating_add(1);
        }
    };
    loop {
        let now = TokioInstant::now();
        if ws.is_none() && now >= reconnect_at {
            match connect(&identity, version, &config).await {
                Ok(s) => {
                    ws = Some(s);
                    attempts = 0;
                    emit(ClientEvent::Connected);
                    station.on_connected(TokioInstant::now().into_std());
                }
                Err(reason) => {
                    attempts += 1;
                    let delay = config.backoff_delay(attempts, &mut rng);
                    reconnect_at = TokioInstant::now() + delay;
                    emit(ClientEvent::Disconnected {
                        reason,
                        reconnect_in: delay,
                    });
                }
            }
            // WebSocketPingInterval: 0 = off, at most a day (Settings::duration).
            let ping = station.settings().duration(Setting::WebSocketPingInterval);
            next_ping = (ws.is_some() && !ping.is_zero())
                .then(|| TokioInstant::now().checked_add(ping))
                .flatten();
        }
        // Send everything the station has, forward its events.
        let mut failed = None;
        while let Some(text) = station.poll_transmit() {
            if let Some(s) = ws.as_mut() {
                if let Err(e) = s.send(Message::text(text)).await {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        while let Some(e) = station.poll_event() {
            emit(ClientEvent::Station(e));
        }
        if let Some(reason) = failed {
            ws = None;
            attempts += 1;
            let delay = config.backoff_delay(attempts, &mut rng);
            reconnect_at = TokioInstant::now() + delay;
            station.on_disconnected(TokioInstant::now().into_std());
            emit(ClientEvent::Disconnected {
                reason,
                reconnect_in: delay,
            });
            continue;
        }
        let mut deadline = station.poll_timeout().map(TokioInstant::from_std);
        let mut consider = |t: Option<TokioInstant>| {
            if let Some(t) = t {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        };
        consider(if ws.is_none() {
            Some(reconnect_at)
        } else {
            None
        });
        consider(next_ping);
        let sleep_until =
            deadline.unwrap_or_else(|| TokioInstant::now() + Duration::from_secs(3600));
        tokio::select! {
            msg = next_message(&mut ws) => {
                let now = TokioInstant::now().into_std();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        deliver(&mut station, &mut ws, &config, now, text.as_str()).await;
                    }
                    // A binary message is read as text, as the reference implementations do.
                    Some(Ok(Message::Binary(bytes))) => {
                        let text = ocpp_codec::frame::binary_message_text(&bytes);
                        deliver(&mut station, &mut ws, &config, now, &text).await;
                    }
                    Some(Ok(Message::Ping(_))) => {
                        // tungstenite queued the pong; flush it now.
                        if let Some(s) = ws.as_mut() {
                            let _ = s.flush().await;
                        }
                    }
                    Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        let reason = match &msg {
                            Some(Err(e)) => {
                                // Tell the server why before the connection ends.
                                if let (Some(frame), Some(s)) = (close_frame_for(e), ws.as_mut()) {
                                    let _ = s.send(Message::Close(Some(frame))).await;
                                }
                                e.to_string()
                            }
                            _ => "closed".to_owned(),
                        };
                        ws = None;
                        attempts += 1;
                        let delay = config.backoff_delay(attempts, &mut rng);
                        reconnect_at = TokioInstant::now() + delay;
                        station.on_disconnected(now);
                        emit(ClientEvent::Disconnected { reason, reconnect_in: delay });
                    }
                }
            }
            cmd = commands.recv() => {
                let now = TokioInstant::now().into_std();
                match cmd {
                    Some(Command::Hardware(e)) => station.handle_hardware(now, e),
                    Some(Command::With(f)) => f(&mut station, now),
                    Some(Command::Shutdown) | None => {
                        if let Some(mut s) = ws.take() {
                            let _ = s.close(None).await;
                        }
                        station.on_disconnected(now);
                        while let Some(e) = station.poll_event() {
                            emit(ClientEvent::Station(e));
                        }
                        return station;
                    }
                }
            }
            _ = tokio::time::sleep_until(sleep_until) => {
                let now = TokioInstant::now();
                station.handle_timeout(now.into_std());
                if next_ping.is_some_and(|p| p <= now) {
                    if let Some(s) = ws.as_mut() {
                        let _ = s.send(Message::Ping(Vec::new().into())).await;
                    }
                    let ping = station.settings().duration(Setting::WebSocketPingInterval);
                    next_ping = (!ping.is_zero()).then(|| now.checked_add(ping)).flatten();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts one station connection on `listener` for `version`.
    async fn accept(listener: &tokio::net::TcpListener, version: crate::Version) -> Ws {
        use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
        let (stream, _) = listener.accept().await.unwrap();
        #[allow(clippy::result_large_err)] // tungstenite's callback signature
        let callback = move |_: &Request, mut resp: Response| {
            resp.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(version.subprotocol()),
            );
            Ok(resp)
        };
        let ws = tokio_tungstenite::accept_hdr_async(MaybeTlsStream::Plain(stream), callback)
            .await
            .unwrap();
        ws
    }

    /// The next message that is not one of the station's own CALLs.
    async fn next_non_call(ws: &mut Ws) -> Message {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("an answer in time")
                .expect("the connection is open")
                .unwrap();
            if let Message::Text(t) = &msg {
                if t.as_str().starts_with("[2,") {
                    continue;
                }
            }
            return msg;
        }
    }

    #[tokio::test]
    async fn oversized_binary_and_unreadable_messages_get_their_answers() {
        use crate::{MemoryStore, SimulatedHardware, StationConfig, Version};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let station = Station::new(
            StationConfig::new("CP", Version::V201),
            Box::new(SimulatedHardware::new(1, 7400.into())),
            Box::new(MemoryStore::new()),
            std::time::Instant::now(),
        )
        .unwrap();
        let mut config = ClientConfig::new(format!("ws://{}/ocpp", listener.local_addr().unwrap()))
            .backoff(Duration::from_millis(10), Duration::from_millis(20));
        config.max_message_size = 1024;
        let client = spawn(station, config);
        let mut ws = accept(&listener, Version::V201).await;
        // Over the limit: answered with the message id; the connection goes on.
        let big = format!(
            r#"[2,"big","DataTransfer",{{"vendorId":"V","data":"{}"}}]"#,
            "x".repeat(2000)
        );
        ws.send(Message::text(big)).await.unwrap();
        let Message::Text(reply) = next_non_call(&mut ws).await else {
            panic!("a text answer")
        };
        assert!(
            reply.as_str().starts_with(r#"[4,"big","FormatViolation","#),
            "{reply}"
        );
        // A binary message is read as text.
        ws.send(Message::binary(
            br#"[2,"bin","GetLocalListVersion",{}]"#.to_vec(),
        ))
        .await
        .unwrap();
        let Message::Text(reply) = next_non_call(&mut ws).await else {
            panic!("a text answer")
        };
        assert!(reply.as_str().starts_with(r#"[3,"bin","#), "{reply}");
        // More than 4 times the limit is not read: close 1009, then a new connection.
        let huge = format!(
            r#"[2,"huge","DataTransfer",{{"vendorId":"V","data":"{}"}}]"#,
            "x".repeat(5000)
        );
        ws.send(Message::text(huge)).await.unwrap();
        let Message::Close(Some(frame)) = next_non_call(&mut ws).await else {
            panic!("a close frame")
        };
        assert_eq!(u16::from(frame.code), 1009);
        let _again = accept(&listener, Version::V201).await;
        client.shutdown().await;
    }

    #[test]
    fn basic_auth_encodes_like_rfc7617() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_auth("CP1", "pw"), "Basic Q1AxOnB3");
    }

    #[test]
    fn backoff_doubles_and_caps_with_jitter() {
        let c = ClientConfig::new("ws://x").backoff(Duration::from_secs(1), Duration::from_secs(8));
        let mut rng = Rng::new(1);
        for (n, base) in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)] {
            let d = c.backoff_delay(n, &mut rng);
            let base = Duration::from_secs(base);
            assert!(d >= base && d <= base + base / 2, "{n}: {d:?}");
        }
    }
}
