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
//!
//! Storage: the driver owns the station's [`Store`] and performs the writes the station hands
//! out ([`Station::poll_persist`]) on tokio's blocking pool (`spawn_blocking`), one batch at
//! a time and in order, so no `fsync` runs on the runtime's worker threads. The station holds
//! a transaction message back until its append is reported, so nothing is sent that a crash
//! could lose. On shutdown the driver waits for every pending write before it returns.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ocpp_codec::transport::ReadFailure;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::hardware::HardwareEvent;
use crate::rand::Rng;
use crate::settings::Setting;
use crate::station::{Station, StationEvent};
use crate::store::{Persist, Store, StoreError};

use crate::tls::ClientTls;
pub use ocpp_codec::deflate::Compression;
use ocpp_codec::deflate::DeflateIo;

type Ws = WebSocketStream<DeflateIo<Io>>;

/// The socket under the WebSocket: TCP, or TLS over TCP (`wss://`, feature `tls`).
enum Io {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

macro_rules! io_dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Io::Plain($s) => {
                let $s = std::pin::Pin::new($s);
                $e
            }
            #[cfg(feature = "tls")]
            Io::Tls($s) => {
                let $s = std::pin::Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        io_dispatch!(self, s => s.poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        io_dispatch!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        io_dispatch!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        io_dispatch!(self, s => s.poll_shutdown(cx))
    }
}

/// Why a connection attempt failed ([`ClientEvent::ConnectFailed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The attempt took longer than [`ClientConfig::connect_timeout`].
    #[error("connect timeout")]
    Timeout,
    /// The URL is not usable (not `ws://`/`wss://`, no host, `wss://` without
    /// [`ClientConfig::tls`]).
    #[error("{0}")]
    Url(String),
    /// The host could not be resolved or reached over TCP.
    #[error("{0}")]
    Network(String),
    /// The central system's certificate did not verify (unknown CA, expired, another name):
    /// the security event `InvalidCentralSystemCertificate` (1.6) / `InvalidCsmsCertificate`
    /// (2.x), see [`ConnectError::security_event`].
    #[error("the central system's certificate is invalid: {0}")]
    InvalidServerCertificate(String),
    /// Another TLS failure (no common version or cipher suite, the central system refused
    /// our client certificate, a peer that does not speak TLS).
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The WebSocket handshake failed (e.g. `401 Unauthorized`, `403 Forbidden`).
    #[error("{0}")]
    Handshake(String),
    /// The central system did not select our subprotocol.
    #[error("server did not select subprotocol {0}")]
    Subprotocol(&'static str),
}

impl ConnectError {
    /// The security event (the specifications' list of security events) this failure is,
    /// for a station of `version`: `InvalidCentralSystemCertificate` (1.6) or
    /// `InvalidCsmsCertificate` (2.x) for [`ConnectError::InvalidServerCertificate`].
    pub fn security_event(&self, version: crate::Version) -> Option<&'static str> {
        match (self, version) {
            (ConnectError::InvalidServerCertificate(_), crate::Version::V16) => {
                Some("InvalidCentralSystemCertificate")
            }
            (ConnectError::InvalidServerCertificate(_), _) => Some("InvalidCsmsCertificate"),
            _ => None,
        }
    }

    /// [`ConnectError::security_event`] as the station's [`SecurityEvent`]: what the driver
    /// raises with [`Station::security_event`] when a connection attempt fails, so the
    /// event is queued and reaches the central system once a connection succeeds.
    ///
    /// [`SecurityEvent`]: crate::SecurityEvent
    pub fn as_security_event(&self) -> Option<crate::SecurityEvent> {
        match self {
            ConnectError::InvalidServerCertificate(_) => {
                Some(crate::SecurityEvent::InvalidCentralCertificate)
            }
            _ => None,
        }
    }

    /// Whether TLS failed ([`ConnectError::InvalidServerCertificate`] or
    /// [`ConnectError::Tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            ConnectError::InvalidServerCertificate(_) | ConnectError::Tls(_)
        )
    }
}

/// The TLS failure inside an I/O error, if it is one.
#[cfg(feature = "tls")]
fn tls_failure(e: &std::io::Error) -> Option<ConnectError> {
    let inner = e.get_ref()?.downcast_ref::<tokio_rustls::rustls::Error>()?;
    Some(match inner {
        tokio_rustls::rustls::Error::InvalidCertificate(_) => {
            ConnectError::InvalidServerCertificate(inner.to_string())
        }
        _ => ConnectError::Tls(inner.to_string()),
    })
}

/// How the client connects.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `ws://127.0.0.1:9000/ocpp`; the identity is appended as the last path
    /// segment.
    pub url: String,
    /// Basic-auth password (security profile 1); `None` sends no `Authorization` header.
    /// Once the central system set one over OCPP ([`Station::basic_auth_password`]), that one
    /// is used instead. Never shown by `Debug`.
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
    /// Source address of the TCP connection (a station with several interfaces; a simulator
    /// spreading many stations over local addresses). `None`: the system's choice.
    pub local_addr: Option<IpAddr>,
    /// How long the driver waits before its first connection attempt (ramps of many stations).
    pub start_delay: Duration,
    /// Counters of the frames sent and received, shareable between drivers.
    pub traffic: Option<Arc<Traffic>>,
    /// TLS for `wss://` URLs (security profiles 2 and 3; built with the feature `tls`).
    pub tls: Option<ClientTls>,
    /// WebSocket compression (RFC 7692 `permessage-deflate`): offered by default, without
    /// context takeover ([`Compression::default`]). Offering is safe: a central system
    /// without the extension ignores the offer and the connection goes on uncompressed; a
    /// charger on a cellular link saves most of its traffic. Received compressed messages
    /// inflate up to the same limit as uncompressed ones are read (4 times
    /// [`ClientConfig::max_message_size`]), beyond which the connection is closed with 1009.
    pub compression: Compression,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("local_addr", &self.local_addr)
            .field("start_delay", &self.start_delay)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// Counters of OCPP-J frames a driver sent and received (see [`ClientConfig::traffic`]); one
/// instance may be shared by many drivers.
#[derive(Debug, Default)]
pub struct Traffic {
    calls_sent: AtomicU64,
    calls_received: AtomicU64,
    results_received: AtomicU64,
    errors_received: AtomicU64,
}

impl Traffic {
    /// CALLs the station sent.
    pub fn calls_sent(&self) -> u64 {
        self.calls_sent.load(Ordering::Relaxed)
    }

    /// CALLs the central system sent.
    pub fn calls_received(&self) -> u64 {
        self.calls_received.load(Ordering::Relaxed)
    }

    /// CALLRESULTs received.
    pub fn results_received(&self) -> u64 {
        self.results_received.load(Ordering::Relaxed)
    }

    /// CALLERRORs (and 2.1 CALLRESULTERRORs) received.
    pub fn errors_received(&self) -> u64 {
        self.errors_received.load(Ordering::Relaxed)
    }

    fn sent(&self, text: &str) {
        if message_type(text) == Some(2) {
            self.calls_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn received(&self, text: &str) {
        let counter = match message_type(text) {
            Some(2) => &self.calls_received,
            Some(3) => &self.results_received,
            Some(4) | Some(5) => &self.errors_received,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The OCPP-J message type digit of a frame (`[2,...` CALL, 3 CALLRESULT, 4 CALLERROR, 5
/// CALLRESULTERROR, 6 SEND) from its first bytes, for counting only.
fn message_type(text: &str) -> Option<u8> {
    let rest = text.trim_start().strip_prefix('[')?.trim_start();
    let d = *rest.as_bytes().first()?;
    d.is_ascii_digit().then_some(d - b'0')
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
            local_addr: None,
            start_delay: Duration::ZERO,
            traffic: None,
            tls: None,
            compression: Compression::default(),
        }
    }

    /// WebSocket compression ([`ClientConfig::compression`]); [`Compression::off`] offers
    /// none.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Connects to `wss://` URLs with `tls` (security profile 2, or 3 with a client
    /// certificate).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the source address of the TCP connection.
    pub fn local_addr(mut self, addr: Option<IpAddr>) -> Self {
        self.local_addr = addr;
        self
    }

    /// Waits `delay` before the first connection attempt.
    pub fn start_delay(mut self, delay: Duration) -> Self {
        self.start_delay = delay;
        self
    }

    /// Counts frames in `traffic`.
    pub fn traffic(mut self, traffic: Arc<Traffic>) -> Self {
        self.traffic = Some(traffic);
        self
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

/// How many [`Command`]s wait for the driver task at most. A command sent while this many wait
/// is refused with [`CommandError::Full`] (the driver handles commands between socket reads, so
/// a full queue means the application sends faster than the station can work).
pub const COMMAND_QUEUE: usize = 256;

/// Why a command did not reach the driver task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// [`COMMAND_QUEUE`] commands already wait; try again later.
    #[error("the charger's command queue is full ({COMMAND_QUEUE} commands wait)")]
    Full,
    /// The driver task has ended.
    #[error("the charger's driver task has ended")]
    Stopped,
}

impl<T> From<mpsc::error::TrySendError<T>> for CommandError {
    fn from(e: mpsc::error::TrySendError<T>) -> CommandError {
        match e {
            mpsc::error::TrySendError::Full(_) => CommandError::Full,
            mpsc::error::TrySendError::Closed(_) => CommandError::Stopped,
        }
    }
}

/// Talks to a running client task.
#[derive(Debug)]
pub struct ClientHandle {
    commands: mpsc::Sender<Command>,
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
    /// A connection attempt failed, and why (a TLS failure is told apart, see
    /// [`ConnectError::security_event`]); followed by [`ClientEvent::Disconnected`].
    ConnectFailed(ConnectError),
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
    /// Sends a physical input to the station; refused when [`COMMAND_QUEUE`] commands wait.
    pub fn hardware(&self, event: HardwareEvent) -> Result<(), CommandError> {
        Ok(self.commands.try_send(Command::Hardware(event))?)
    }

    /// Runs `f` with the station inside the task; refused when [`COMMAND_QUEUE`] commands
    /// wait.
    pub fn with(
        &self,
        f: impl FnOnce(&mut Station, std::time::Instant) + Send + 'static,
    ) -> Result<(), CommandError> {
        Ok(self.commands.try_send(Command::With(Box::new(f)))?)
    }

    /// Sends `command`, waiting for room in the queue.
    pub async fn send(&self, command: Command) -> Result<(), CommandError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| CommandError::Stopped)
    }

    /// Stops the task (after every pending write reached the store) and returns the station.
    pub async fn shutdown(self) -> Option<Station> {
        let _ = self.commands.send(Command::Shutdown).await;
        self.task.await.ok()
    }
}

/// The command channel of a driver: bounded at [`COMMAND_QUEUE`]. For [`run`]; [`spawn`]
/// makes its own.
pub fn command_channel() -> (mpsc::Sender<Command>, mpsc::Receiver<Command>) {
    mpsc::channel(COMMAND_QUEUE)
}

/// Spawns the driver task for `station`, whose writes go to `store` (the store it was
/// loaded from, see [`Saved::load`](crate::Saved::load)). Needs a tokio runtime.
pub fn spawn(station: Station, store: Box<dyn Store>, config: ClientConfig) -> ClientHandle {
    let (ctx, crx) = command_channel();
    let (etx, erx) = mpsc::channel(EVENT_QUEUE);
    let task = tokio::spawn(run(station, store, config, crx, Some(etx)));
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
    password: Option<&[u8]>,
) -> Result<Ws, ConnectError> {
    tokio::time::timeout(
        config.connect_timeout,
        connect_inner(identity, version, config, password),
    )
    .await
    .map_err(|_| ConnectError::Timeout)?
}

async fn connect_inner(
    identity: &str,
    version: crate::Version,
    config: &ClientConfig,
    password: Option<&[u8]>,
) -> Result<Ws, ConnectError> {
    let url = format!("{}/{}", config.url.trim_end_matches('/'), identity);
    let uri: Uri = url
        .parse()
        .map_err(|_| ConnectError::Url(format!("not a URL: {url}")))?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") if config.tls.is_some() => true,
        Some("wss") => {
            return Err(ConnectError::Url(
                "wss:// needs ClientConfig::tls (feature tls)".to_owned(),
            ))
        }
        _ => {
            return Err(ConnectError::Url(format!(
                "not a ws:// or wss:// URL: {url}"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::Url(format!("no host in {url}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Url(e.to_string()))?;
    let protocol = version.subprotocol();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    if let Some(offer) = ocpp_codec::deflate::client_offer(&config.compression) {
        let value = HeaderValue::from_str(&offer).map_err(|e| ConnectError::Url(e.to_string()))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Extensions", value);
    }
    if let Some(password) = password {
        let value = ocpp_codec::transport::basic_auth_header_bytes(identity, password);
        let mut value =
            HeaderValue::from_str(&value).map_err(|e| ConnectError::Url(e.to_string()))?;
        value.set_sensitive(true);
        request.headers_mut().insert("Authorization", value);
    }
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectError::Network(format!("cannot resolve {host}: {e}")))?
        .collect();
    if let Some(ip) = config.local_addr {
        // Addresses of the source address's family first.
        addrs.sort_by_key(|a| a.is_ipv4() != ip.is_ipv4());
    }
    let mut last_error = format!("{host} has no address");
    let mut stream = None;
    for addr in addrs {
        match tcp_connect(addr, config.local_addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("{addr}: {e}"),
        }
    }
    let stream = stream.ok_or(ConnectError::Network(last_error))?;
    let io = match (&config.tls, secure) {
        #[cfg(feature = "tls")]
        (Some(tls), true) => {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|_| ConnectError::Url(format!("not a server name: {host}")))?;
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let tls = connector
                .connect(name, stream)
                .await
                .map_err(|e| tls_failure(&e).unwrap_or_else(|| ConnectError::Tls(e.to_string())))?;
            Io::Tls(Box::new(tls))
        }
        _ => Io::Plain(stream),
    };
    let (mut ws, response) = tokio_tungstenite::client_async_with_config(
        request,
        DeflateIo::new(io),
        Some(ws_config(config.max_message_size)),
    )
    .await
    .map_err(|e| {
        // With TLS 1.3 a refused client certificate shows on the first read.
        #[cfg(feature = "tls")]
        if let tokio_tungstenite::tungstenite::Error::Io(io) = &e {
            if let Some(failure) = tls_failure(io) {
                return failure;
            }
        }
        ConnectError::Handshake(e.to_string())
    })?;
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|h| h.to_str().ok());
    if !ocpp_codec::transport::selects(chosen, version) {
        return Err(ConnectError::Subprotocol(protocol));
    }
    let answers = response
        .headers()
        .get_all("sec-websocket-extensions")
        .iter()
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    let agreed = ocpp_codec::deflate::client_accept(answers, &config.compression)
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    ws.get_mut().set_agreed(
        agreed,
        ocpp_codec::deflate::Limits {
            max_message_size: ocpp_codec::transport::read_limit(config.max_message_size),
        },
    );
    Ok(ws)
}

/// Opens a TCP connection to `addr`, from `bind` when given (a source address of this host,
/// e.g. to spread many chargers over several addresses), with Nagle's algorithm off: OCPP
/// messages are small and each waits for its answer.
pub async fn tcp_connect(addr: SocketAddr, bind: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = bind {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The WebSocket limits: messages up to [`ocpp_codec::transport::OVERSIZE_FACTOR`] times the
/// limit are read, so that one over the limit can be answered with a CALLERROR naming its id;
/// a larger one ends the connection (1009). Small buffers: OCPP messages are small, and a
/// simulator holds thousands of connections (4 KiB instead of tungstenite's 128 KiB read
/// buffer, no write buffer: the driver flushes after each batch).
fn ws_config(max_message_size: usize) -> WebSocketConfig {
    let read_limit = ocpp_codec::transport::read_limit(max_message_size);
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(read_limit))
        .max_frame_size(Some(read_limit))
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

/// The store's writes, off the runtime: one batch at a time on tokio's blocking pool, in order.
struct Persister {
    /// The store, while no batch runs (`None` while one does, or once it was lost).
    store: Option<Box<dyn Store>>,
    running: Option<tokio::task::JoinHandle<Batch>>,
    /// The store was lost (its thread panicked): every later write fails with this.
    lost: Option<String>,
}

/// A finished batch: the store back, and each write with its result.
type Batch = (Box<dyn Store>, Vec<(Persist, Result<(), StoreError>)>);

impl Persister {
    fn new(store: Box<dyn Store>) -> Persister {
        Persister {
            store: Some(store),
            running: None,
            lost: None,
        }
    }

    /// Starts a batch with everything the station has to write, unless one runs.
    fn start(&mut self, station: &mut Station, now: std::time::Instant) {
        if self.running.is_some() || !station.wants_persist() {
            return;
        }
        let batch: Vec<Persist> = std::iter::from_fn(|| station.poll_persist()).collect();
        let Some(mut store) = self.store.take() else {
            let reason = self.lost.clone().unwrap_or_default();
            for work in &batch {
                station.handle_persisted(now, work, Err(StoreError::Unavailable(reason.clone())));
            }
            return;
        };
        self.running = Some(tokio::task::spawn_blocking(move || {
            let done = batch
                .into_iter()
                .map(|work| {
                    let result = work.apply(&mut *store);
                    (work, result)
                })
                .collect();
            (store, done)
        }));
    }

    /// Waits for the running batch (forever when none runs).
    async fn wait(&mut self) -> Result<Batch, tokio::task::JoinError> {
        match self.running.as_mut() {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    }

    /// Reports a finished batch to the station.
    fn finished(
        &mut self,
        station: &mut Station,
        now: std::time::Instant,
        batch: Result<Batch, tokio::task::JoinError>,
    ) {
        self.running = None;
        match batch {
            Ok((store, done)) => {
                self.store = Some(store);
                for (work, result) in done {
                    station.handle_persisted(now, &work, result);
                }
            }
            Err(e) => {
                // The store panicked: what it was writing is reported failed (and sent all
                // the same), as is every later write.
                self.lost = Some(format!("the store's thread failed: {e}"));
            }
        }
    }

    /// Writes everything still pending (shutdown).
    async fn flush(&mut self, station: &mut Station) {
        loop {
            if self.running.is_some() {
                let batch = self.wait().await;
                self.finished(station, TokioInstant::now().into_std(), batch);
            }
            self.start(station, TokioInstant::now().into_std());
            if self.running.is_none() && !station.wants_persist() {
                return;
            }
        }
    }
}

/// The driver: runs `station` over a WebSocket until [`Command::Shutdown`] (or the command
/// channel closes), then returns it. Writes go to `store` off the runtime (see the
/// [module docs](self)). `commands` comes from [`command_channel`]; `events` receives
/// [`ClientEvent`]s (pass `None` to ignore them).
pub async fn run(
    mut station: Station,
    store: Box<dyn Store>,
    #[allow(unused_mut)] mut config: ClientConfig,
    mut commands: mpsc::Receiver<Command>,
    events: Option<mpsc::Sender<ClientEvent>>,
) -> Station {
    let mut rng = Rng::new(config.seed ^ 0x5eed);
    let mut persister = Persister::new(store);
    let mut ws: Option<Ws> = None;
    let mut attempts: u32 = 0;
    let mut reconnect_at = TokioInstant::now() + config.start_delay;
    let mut next_ping: Option<TokioInstant> = None;
    let identity = station.identity().to_owned();
    let version = station.version();
    let traffic = config.traffic.clone();
    let mut lagged: u64 = 0;
    // The station's own client certificate (feature `certificates`): presented from the
    // next connection on whenever it changes, as long as it is valid.
    #[cfg(all(feature = "tls", feature = "certificates"))]
    let base_tls = config.tls.clone();
    #[cfg(all(feature = "tls", feature = "certificates"))]
    let mut presented: Option<(u64, bool)> = None;
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
        // Writes first: they run while the socket is served.
        persister.start(&mut station, now.into_std());
        if ws.is_none() && now >= reconnect_at {
            // The password the central system set, else the configured one.
            let password = station
                .basic_auth_password()
                .or_else(|| config.password.as_ref().map(|p| p.as_bytes().to_vec()));
            #[cfg(all(feature = "tls", feature = "certificates"))]
            {
                let mine = station.client_certificate();
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let valid = mine.as_ref().is_some_and(|m| m.not_after > unix);
                let key = (station.client_certificate_generation(), valid);
                if presented != Some(key) {
                    presented = Some(key);
                    config.tls = match (&base_tls, mine) {
                        (Some(base), Some(mine)) if valid && base.has_roots() => base
                            .clone()
                            .with_client_certificate(
                                mine.chain_pem.as_bytes(),
                                mine.key_pem.as_bytes(),
                            )
                            .ok()
                            .or_else(|| base_tls.clone()),
                        _ => base_tls.clone(),
                    };
                }
            }
            match connect(&identity, version, &config, password.as_deref()).await {
                Ok(s) => {
                    ws = Some(s);
                    attempts = 0;
                    emit(ClientEvent::Connected);
                    station.on_connected(TokioInstant::now().into_std());
                }
                Err(error) => {
                    attempts += 1;
                    let delay = config.backoff_delay(attempts, &mut rng);
                    reconnect_at = TokioInstant::now() + delay;
                    let reason = error.to_string();
                    if let Some(event) = error.as_security_event() {
                        station.security_event(
                            TokioInstant::now().into_std(),
                            event,
                            Some(&reason),
                        );
                    }
                    emit(ClientEvent::ConnectFailed(error));
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
        let mut sent = 0usize;
        while let Some(text) = station.poll_transmit() {
            if let Some(s) = ws.as_mut() {
                if let Some(t) = &traffic {
                    t.sent(&text);
                }
                if let Err(e) = s.feed(Message::text(text)).await {
                    failed = Some(e.to_string());
                    break;
                }
                sent += 1;
            }
        }
        if failed.is_none() && sent > 0 {
            if let Some(s) = ws.as_mut() {
                if let Err(e) = s.flush().await {
                    failed = Some(e.to_string());
                }
            }
        }
        while let Some(e) = station.poll_event() {
            emit(ClientEvent::Station(e));
        }
        // A new Basic-auth password: its answer is sent; close and connect again with it at
        // once (2.x A01, 1.6 security whitepaper).
        if failed.is_none() && station.poll_reconnect() {
            if let Some(mut s) = ws.take() {
                let _ = s
                    .close(Some(CloseFrame {
                        code: 1000.into(),
                        reason: "reconnecting with new credentials".into(),
                    }))
                    .await;
                attempts = 0;
                reconnect_at = TokioInstant::now();
                station.on_disconnected(TokioInstant::now().into_std());
                emit(ClientEvent::Disconnected {
                    reason: "reconnecting with new credentials".into(),
                    reconnect_in: Duration::ZERO,
                });
                continue;
            }
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
            batch = persister.wait() => {
                persister.finished(&mut station, TokioInstant::now().into_std(), batch);
            }
            msg = next_message(&mut ws) => {
                let now = TokioInstant::now().into_std();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(t) = &traffic {
                            t.received(text.as_str());
                        }
                        deliver(&mut station, &mut ws, &config, now, text.as_str()).await;
                    }
                    // A binary message is read as text, as the reference implementations do.
                    Some(Ok(Message::Binary(bytes))) => {
                        let text = ocpp_codec::frame::binary_message_text(&bytes);
                        if let Some(t) = &traffic {
                            t.received(&text);
                        }
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
                                let frame = ReadFailure::from_tungstenite(e).map(ReadFailure::close_frame);
                                if let (Some(frame), Some(s)) = (frame, ws.as_mut()) {
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
                        persister.flush(&mut station).await;
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

    type ServerWs = WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

    /// Accepts one station connection on `listener` for `version`.
    async fn accept(listener: &tokio::net::TcpListener, version: crate::Version) -> ServerWs {
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
        let ws = tokio_tungstenite::accept_hdr_async(
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
            callback,
        )
        .await
        .unwrap();
        ws
    }

    /// The next message that is not one of the station's own CALLs.
    async fn next_non_call(ws: &mut ServerWs) -> Message {
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
        use crate::{MemoryStore, Saved, SimulatedHardware, StationConfig, Version};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let station = Station::new(
            StationConfig::new("CP", Version::V201),
            Box::new(SimulatedHardware::new(1, 7400.into())),
            Saved::default(),
            std::time::Instant::now(),
        );
        let mut config = ClientConfig::new(format!("ws://{}/ocpp", listener.local_addr().unwrap()))
            .backoff(Duration::from_millis(10), Duration::from_millis(20));
        config.max_message_size = 1024;
        let client = spawn(station, Box::new(MemoryStore::new()), config);
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
    fn message_types_from_the_first_bytes() {
        assert_eq!(message_type(r#"[2,"1","Heartbeat",{}]"#), Some(2));
        assert_eq!(message_type(r#" [ 4,"1","x","y",{}]"#), Some(4));
        assert_eq!(message_type("{}"), None);
        assert_eq!(message_type(""), None);
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
