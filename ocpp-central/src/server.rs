//! The WebSocket server (feature `ws`): tokio + tokio-tungstenite, one task per connection.
//!
//! The handshake callback is where the charger is admitted, before any application code
//! runs, in this order: the identity is the last path segment of the URL, percent-decoded,
//! and must follow the specifications' rules (1 to 48 `identifierString` characters, no `:`;
//! [`ocpp_codec::transport::check_identity`]), else 400 with the reason; the subprotocol is
//! the first of [`ServerConfig::versions`] the charger offers (a handshake offering none is
//! refused with 400); security profile 1 (HTTP Basic auth, [`Auth`]) checks the username
//! equals the identity, refuses a password longer than the version allows (20 bytes for 1.6,
//! 40 for 2.x: [`ocpp_codec::transport::max_password_len`]) without checking it, then asks the
//! [`Authenticator`] (401 when refused, 503 when it is too busy); [`Admission`] decides which
//! identities may connect (404 otherwise). Then the connection task owns the socket and the session
//! ([`Connection`]); a ping keeps it alive and a peer silent for
//! [`ServerConfig::dead_peer_timeout`] is dropped.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocpp_types::Version;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use ocpp_codec::transport::{choose_subprotocol, max_password_len, read_limit};

use crate::defaults::Defaults;
use crate::driver::Connection;
use crate::handler::{CentralSystem, Chargers};
use crate::proxy::Prefixed;
use crate::session::{Session, SessionConfig};
use crate::socket::{LeanIo, Timing, WsTransport};
pub use ocpp_codec::deflate::Compression;
use ocpp_codec::deflate::{Agreed, DeflateIo};

/// Checks a charger's Basic-auth password (security profile 1). The username has already been
/// checked to equal the identity, and the password to be no longer than the version allows.
///
/// It runs inside the WebSocket handshake, on the runtime's thread. A slow check (a password
/// hash such as argon2 is slow by design) should move off the runtime (e.g.
/// `tokio::task::block_in_place` on a multi-threaded runtime) and bound how many run at once,
/// answering [`Verdict::Busy`] beyond: the handshakes a peer can open are bounded
/// ([`ServerConfig::max_handshakes`]), the CPU they can burn should be too.
pub trait Authenticator: Send + Sync {
    /// Whether `password` is right for `identity`.
    fn verify(&self, identity: &str, password: &[u8]) -> bool;

    /// The verdict for a handshake of `identity` with `password` (`None`: no `Authorization`
    /// header). By default: [`Verdict::Accept`] when [`Authenticator::verify`] says so,
    /// [`Verdict::Refuse`] otherwise and without a password.
    fn check(&self, identity: &str, password: Option<&[u8]>) -> Verdict {
        match password {
            Some(pw) if self.verify(identity, pw) => Verdict::Accept,
            _ => Verdict::Refuse,
        }
    }
}

/// What an [`Authenticator`] decides about a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Admitted.
    Accept,
    /// Refused: 401 with `WWW-Authenticate: Basic`.
    Refuse,
    /// Not decided now (too many checks running): 503 with `Retry-After`; the charger
    /// retries after its backoff.
    Busy,
}

impl<F: Fn(&str, &[u8]) -> bool + Send + Sync> Authenticator for F {
    fn verify(&self, identity: &str, password: &[u8]) -> bool {
        self(identity, password)
    }
}

/// How chargers authenticate. There is no default: accepting everyone must be spelled out.
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// No authentication (security profile 0 / behind a trusted proxy). Chargers that send
    /// Basic credentials anyway are accepted without checking them.
    AllowAnyone,
    /// Security profile 1: HTTP Basic auth, username = identity, password checked by the
    /// authenticator. A missing header, another username or a wrong password gets 401.
    Basic(Arc<dyn Authenticator>),
}

impl Auth {
    /// Basic auth checked by `authenticator`.
    pub fn basic(authenticator: impl Authenticator + 'static) -> Auth {
        Auth::Basic(Arc::new(authenticator))
    }

    /// Basic auth against a fixed table of identity -> password, compared in constant time
    /// ([`ocpp_codec::transport::constant_time_eq`]). Plain passwords live in memory: a real
    /// deployment keeps hashes (the example backend's `secrets` module uses argon2).
    pub fn passwords<I, K, V>(table: I) -> Auth
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Vec<u8>>,
    {
        let table: std::collections::HashMap<String, Vec<u8>> = table
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Auth::basic(move |id: &str, pw: &[u8]| {
            table
                .get(id)
                .is_some_and(|p| ocpp_codec::transport::constant_time_eq(p, pw))
        })
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::AllowAnyone => f.write_str("AllowAnyone"),
            Auth::Basic(_) => f.write_str("Basic(..)"),
        }
    }
}

/// Which charger identities may connect (the charger registry's policy).
#[derive(Clone)]
#[non_exhaustive]
pub enum Admission {
    /// Any identity.
    AnyIdentity,
    /// Only these identities.
    Known(HashSet<String>),
    /// Decided by a function.
    Custom(Arc<dyn Fn(&str) -> bool + Send + Sync>),
    /// Decided by a function of what the server knows of the peer at its handshake: the
    /// identity, the address and (security profile 3) the verified client certificate.
    Peer(Arc<dyn Fn(&Peer<'_>) -> bool + Send + Sync>),
}

/// What the server knows of a charger at its handshake, after its credentials were checked
/// ([`Admission::Peer`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Peer<'a> {
    /// The identity (the last segment of the URL path).
    pub identity: &'a str,
    /// The source address of the connection.
    pub address: SocketAddr,
    /// The client certificate the TLS layer verified (security profile 3); `None` without
    /// TLS or without client certificates.
    pub certificate: Option<&'a PeerCertificate>,
}

/// A charger's verified client certificate (security profile 3), as the admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    der: Vec<u8>,
    common_name: Option<String>,
}

impl PeerCertificate {
    /// Reads the subject CN of `der` (a certificate rustls has verified); a certificate whose
    /// subject cannot be read has no CN.
    #[cfg(feature = "tls")]
    pub fn from_der(der: &[u8]) -> PeerCertificate {
        let common_name = x509_parser::parse_x509_certificate(der)
            .ok()
            .and_then(|(_, cert)| {
                cert.subject()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok())
                    .map(str::to_owned)
            });
        PeerCertificate {
            der: der.to_vec(),
            common_name,
        }
    }

    /// The end-entity certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The first commonName of its subject, if it has one.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }
}

impl Admission {
    /// Only the given identities.
    pub fn known<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Admission {
        Admission::Known(ids.into_iter().map(Into::into).collect())
    }

    /// Decided by `f` from the [`Peer`] (identity, address, verified client certificate).
    pub fn peer(f: impl Fn(&Peer<'_>) -> bool + Send + Sync + 'static) -> Admission {
        Admission::Peer(Arc::new(f))
    }

    fn admits(&self, peer: &Peer<'_>) -> bool {
        match self {
            Admission::AnyIdentity => true,
            Admission::Known(set) => set.contains(peer.identity),
            Admission::Custom(f) => f(peer.identity),
            Admission::Peer(f) => f(peer),
        }
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Admission::AnyIdentity => f.write_str("AnyIdentity"),
            Admission::Known(s) => f.debug_tuple("Known").field(s).finish(),
            Admission::Custom(_) => f.write_str("Custom(..)"),
            Admission::Peer(_) => f.write_str("Peer(..)"),
        }
    }
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    auth: Auth,
    admission: Admission,
    versions: Vec<Version>,
    replace_duplicates: bool,
    handshake_timeout: Duration,
    ping_interval: Option<Duration>,
    dead_peer_timeout: Option<Duration>,
    max_message_size: usize,
    call_timeout: Duration,
    shutdown_grace: Duration,
    defaults: Defaults,
    lenient: bool,
    max_connections: usize,
    max_connections_per_address: usize,
    max_handshakes: usize,
    write_timeout: Duration,
    limits: crate::model::Limits,
    compression: Compression,
    proxy_protocol: Option<crate::proxy::ProxyProtocol>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTls>,
}

impl ServerConfig {
    /// A configuration with the given authentication (there is no default) and: any
    /// identity admitted; subprotocols preferred in the order ocpp2.1, ocpp2.0.1, ocpp1.6
    /// (those enabled); a second connection of an identity replaces the first; 10 s handshake
    /// timeout; a ping every 30 s and a peer silent for 75 s dropped; 1 MiB messages; 30 s call
    /// timeout; 5 s shutdown grace; [`Defaults::default`]; at most 16,384 connections (as many
    /// per source address) and 1,024 handshakes in progress; a peer that takes more than 30 s
    /// to accept a message is dropped; [`Limits::default`](crate::Limits::default);
    /// `permessage-deflate` accepted with [`Compression::default`] (no context takeover,
    /// messages below 256 bytes uncompressed).
    pub fn new(auth: Auth) -> ServerConfig {
        let versions = [Version::V21, Version::V201, Version::V16]
            .into_iter()
            .filter(|v| enabled(*v))
            .collect();
        ServerConfig {
            auth,
            admission: Admission::AnyIdentity,
            versions,
            replace_duplicates: true,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            dead_peer_timeout: Some(Duration::from_secs(75)),
            max_message_size: 1 << 20,
            call_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            defaults: Defaults::default(),
            lenient: false,
            max_connections: 16_384,
            max_connections_per_address: 16_384,
            max_handshakes: 1_024,
            write_timeout: Duration::from_secs(30),
            limits: crate::model::Limits::default(),
            compression: Compression::default(),
            proxy_protocol: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Reads the PROXY protocol (version 2, and 1) from the load balancers at the trusted
    /// addresses of `proxy` ([`crate::proxy`]): the charger's address in the header stands
    /// for the connection's in the per-address bound, the logs and the admission. Off by
    /// default. The header is read inside the [handshake
    /// timeout](ServerConfig::handshake_timeout) and while the connection counts against
    /// [`ServerConfig::max_connections`] and [`ServerConfig::max_handshakes`]; a missing,
    /// malformed or slow header from a trusted address, or a header from any other address,
    /// closes the connection, logged and counted ([`crate::proxy::ProxyProtocol::refusals`]).
    pub fn proxy_protocol(mut self, proxy: crate::proxy::ProxyProtocol) -> Self {
        self.proxy_protocol = Some(proxy);
        self
    }

    /// Serves `wss://` only (feature `tls`): security profile 2 with [`Auth::Basic`], profile
    /// 3 with client certificates ([`crate::tls`]). The TLS handshake runs inside the
    /// [handshake timeout](ServerConfig::handshake_timeout) and counts as a handshake in
    /// progress ([`ServerConfig::max_handshakes`]); a connection turned away by a bound is
    /// closed without an answer (no 503 before TLS).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The most connections served at once, handshakes included (a process holds as many
    /// sockets as its open-file limit allows; keep this below it). A connection beyond is
    /// answered `503 Service Unavailable` and closed before its handshake is read.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// The most connections from one source address (IP) at once; beyond: 503 as for
    /// [`ServerConfig::max_connections`]. By default as many as in total: chargers on
    /// cellular links share their carrier's NAT addresses by the thousand. Lower it where
    /// every charger or site has its own address.
    pub fn max_connections_per_address(mut self, n: usize) -> Self {
        self.max_connections_per_address = n;
        self
    }

    /// The most WebSocket handshakes in progress at once (each may take up to the
    /// [handshake timeout](ServerConfig::handshake_timeout)); beyond: 503.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n;
        self
    }

    /// WebSocket compression (RFC 7692 `permessage-deflate`, OCPP 2.x part 4): whether a
    /// charger's offer is accepted, with or without context takeover, the window and the
    /// size below which messages go out uncompressed ([`Compression`]; the default accepts,
    /// without context takeover). An offer the server cannot honour is declined and the
    /// connection goes on uncompressed; [`Compression::off`] declines every offer. A
    /// compressed message is inflated up to the same limit as an uncompressed one is read
    /// ([`ServerConfig::max_message_size`] times
    /// [`OVERSIZE_FACTOR`](ocpp_codec::transport::OVERSIZE_FACTOR)); beyond, the connection
    /// is closed with 1009 without inflating further.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// How long writing one message to a charger may take before the connection is dropped
    /// (a peer that stopped reading must not hold its queue and its task forever).
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = t;
        self
    }

    /// The bounds of every charger's model ([`SessionConfig::limits`]).
    pub fn limits(mut self, limits: crate::model::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Which identities may connect.
    pub fn admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// The versions accepted, in order of preference (disabled versions are ignored).
    pub fn versions(mut self, versions: impl IntoIterator<Item = Version>) -> Self {
        self.versions = versions.into_iter().filter(|v| enabled(*v)).collect();
        self
    }

    /// Whether a second connection of an identity replaces the first (`true`) or is refused
    /// with 409 (`false`).
    pub fn replace_duplicates(mut self, replace: bool) -> Self {
        self.replace_duplicates = replace;
        self
    }

    /// How long the WebSocket handshake may take.
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// How often to ping (`None`: never).
    pub fn ping_interval(mut self, t: Option<Duration>) -> Self {
        self.ping_interval = t;
        self
    }

    /// How long a peer may stay silent (no message, pong or ping) before it is dropped
    /// (`None`: forever).
    pub fn dead_peer_timeout(mut self, t: Option<Duration>) -> Self {
        self.dead_peer_timeout = t;
        self
    }

    /// The largest message accepted, in bytes. A larger message is answered with CALLERROR
    /// `FormatViolation` (1.6 `FormationViolation`) carrying its message id, and the
    /// connection goes on; one more than 4 times as large is not read: the connection is
    /// closed with WebSocket status 1009 (Message Too Big).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How long to wait for a charger's answer to a central call.
    pub fn call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// How long a graceful shutdown waits for connections to close.
    pub fn shutdown_grace(mut self, t: Duration) -> Self {
        self.shutdown_grace = t;
        self
    }

    /// Lenient mode for every charger's requests (off by default; see
    /// [`SessionConfig::lenient`]).
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// The default answers, wall clock and 1.6 transaction id source.
    pub fn defaults(mut self, defaults: Defaults) -> Self {
        self.defaults = defaults;
        self
    }
}

fn enabled(v: Version) -> bool {
    (v == Version::V16 && cfg!(feature = "v16"))
        || (v == Version::V201 && cfg!(feature = "v201"))
        || (v == Version::V21 && cfg!(feature = "v21"))
}

/// The OCPP WebSocket server.
pub struct Server<H: CentralSystem> {
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    chargers: Chargers,
    gate: Arc<Gate>,
}

/// Counts connections (in total and per source address) and handshakes in progress against
/// the configured bounds.
#[derive(Debug, Default)]
struct Gate {
    per_address: Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    total: std::sync::atomic::AtomicUsize,
    handshakes: std::sync::atomic::AtomicUsize,
}

/// Why a connection was turned away before its handshake.
#[derive(Debug, Clone, Copy)]
enum Turned {
    Total,
    Address,
    Handshakes,
}

impl Gate {
    /// Admits one connection from `ip`, or says which bound it hits.
    fn enter(
        self: &Arc<Self>,
        ip: std::net::IpAddr,
        config: &ServerConfig,
    ) -> Result<Entry, Turned> {
        use std::sync::atomic::Ordering;
        let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if self.total.load(Ordering::Relaxed) >= config.max_connections {
            return Err(Turned::Total);
        }
        if self.handshakes.load(Ordering::Relaxed) >= config.max_handshakes {
            return Err(Turned::Handshakes);
        }
        let n = map.entry(ip).or_insert(0);
        if *n >= config.max_connections_per_address {
            return Err(Turned::Address);
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(Entry {
            gate: self.clone(),
            ip: Some(ip),
            handshaking: true,
        })
    }

    /// Admits one connection whose address is not known yet (its PROXY header is still to
    /// be read): the total and handshake bounds now, the address's with [`Entry::locate`].
    fn enter_unplaced(self: &Arc<Self>, config: &ServerConfig) -> Result<Entry, Turned> {
        use std::sync::atomic::Ordering;
        let _map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if self.total.load(Ordering::Relaxed) >= config.max_connections {
            return Err(Turned::Total);
        }
        if self.handshakes.load(Ordering::Relaxed) >= config.max_handshakes {
            return Err(Turned::Handshakes);
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(Entry {
            gate: self.clone(),
            ip: None,
            handshaking: true,
        })
    }
}

/// One admitted connection; leaving (drop) gives its places back.
struct Entry {
    gate: Arc<Gate>,
    /// Its address, once known.
    ip: Option<std::net::IpAddr>,
    handshaking: bool,
}

impl Entry {
    /// Counts a connection admitted by [`Gate::enter_unplaced`] against `ip`'s bound.
    fn locate(&mut self, ip: std::net::IpAddr, config: &ServerConfig) -> Result<(), Turned> {
        if self.ip.is_some() {
            return Ok(());
        }
        let mut map = self
            .gate
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= config.max_connections_per_address {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(Turned::Address);
        }
        *n += 1;
        self.ip = Some(ip);
        Ok(())
    }

    fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.gate
                .handshakes
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.handshake_done();
        self.gate
            .total
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let Some(ip) = self.ip else {
            return;
        };
        let mut map = self
            .gate
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

impl<H: CentralSystem> std::fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("chargers", &self.chargers)
            .finish_non_exhaustive()
    }
}

/// A server running in the background ([`Server::start`]).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    chargers: Chargers,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry of connected chargers.
    pub fn chargers(&self) -> &Chargers {
        &self.chargers
    }

    /// Stops accepting, closes every connection and waits (up to the grace period).
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.map_err(std::io::Error::other)?
    }
}

impl<H: CentralSystem> Server<H> {
    /// A server for `handler` (shared with the rest of the application through the `Arc`).
    pub fn new(config: ServerConfig, handler: Arc<H>) -> Server<H> {
        Server {
            config: Arc::new(config),
            handler,
            chargers: Chargers::new(),
            gate: Arc::new(Gate::default()),
        }
    }

    /// Uses an existing registry (e.g. shared with an HTTP API) instead of a fresh one.
    pub fn with_chargers(mut self, chargers: Chargers) -> Self {
        self.chargers = chargers;
        self
    }

    /// The registry of connected chargers.
    pub fn chargers(&self) -> Chargers {
        self.chargers.clone()
    }

    /// Binds `addr` and serves forever.
    pub async fn bind_and_serve(self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener).await
    }

    /// Serves on `listener` forever.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        self.serve_with_shutdown(listener, futures::future::pending())
            .await
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, closes every
    /// connection (chargers see a WebSocket close) and waits for them up to the grace period.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    #[cfg(feature = "tls")]
                    if let Some(tls) = &self.config.tls {
                        tasks.spawn(self.serve_tls(tls, stream, peer));
                        continue;
                    }
                    tasks.spawn(self.serve_stream(stream, peer));
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        for id in self.chargers.identities() {
            if let Some(h) = self.chargers.get(&id) {
                h.close(Some("server shutting down".into()));
            }
        }
        let grace = self.config.shutdown_grace;
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        Ok(())
    }

    /// Serves one already-accepted connection: the handshake (identity, subprotocol,
    /// admission, Basic auth) and then the charger. Use it to serve over your own transport,
    /// e.g. a TLS stream from tokio-rustls for security profile 2 (TLS + Basic auth), or a
    /// Unix socket behind a proxy. `peer` is only logged. Chargers served this way are in
    /// [`Server::chargers`] (a graceful shutdown closes them too, but does not wait for them).
    pub fn serve_stream<S>(
        &self,
        stream: S,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_upgraded(stream, peer, Plain)
    }

    /// Serves one already-accepted connection over TLS (feature `tls`): the TLS handshake with
    /// `tls` (client certificates verified when it requires them), then as
    /// [`serve_stream`](Self::serve_stream), the client certificate bound to the identity and
    /// shown to the admission. Both handshakes run inside the handshake timeout.
    #[cfg(feature = "tls")]
    pub fn serve_tls<S>(
        &self,
        tls: &crate::tls::ServerTls,
        stream: S,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_upgraded(stream, peer, tls.clone())
    }

    /// The handshake under `upgrade` (nothing, or TLS), then the charger.
    fn serve_upgraded<S, U>(
        &self,
        stream: S,
        peer: SocketAddr,
        upgrade: U,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        U: Upgrade<Prefixed<S>>,
    {
        let handshake = Box::pin(handshake(
            stream,
            peer,
            self.config.clone(),
            self.chargers.clone(),
            self.gate.clone(),
            upgrade,
        ));
        serve_connection(
            handshake,
            self.config.clone(),
            self.handler.clone(),
            self.chargers.clone(),
        )
    }

    /// Starts serving on `listener` in a background task.
    pub fn start(self, listener: TcpListener) -> std::io::Result<RunningServer> {
        let addr = listener.local_addr()?;
        let chargers = self.chargers.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.serve_with_shutdown(listener, async move {
            let _ = stopped.await;
        }));
        Ok(RunningServer {
            addr,
            chargers,
            stop: Some(stop),
            task,
        })
    }
}

fn reject(status: StatusCode, why: &str) -> Box<ErrorResponse> {
    let mut r = Box::new(ErrorResponse::new(Some(why.to_owned())));
    *r.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert("Retry-After", HeaderValue::from_static("5"));
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "WWW-Authenticate",
            HeaderValue::from_static("Basic realm=\"OCPP\""),
        );
    }
    r
}

pub use ocpp_codec::transport::{identity_from_path, parse_basic_auth};

fn admit(
    req: &Request,
    mut resp: Response,
    config: &ServerConfig,
    chargers: &Chargers,
    peer: SocketAddr,
    certificate: Option<&PeerCertificate>,
) -> Result<(Response, String, Version), Box<ErrorResponse>> {
    let identity = identity_from_path(req.uri().path()).ok_or_else(|| {
        reject(
            StatusCode::BAD_REQUEST,
            "no charger identity in the URL path",
        )
    })?;
    if let Err(e) = ocpp_codec::transport::check_identity(&identity) {
        return Err(reject(StatusCode::BAD_REQUEST, &e.to_string()));
    }
    let offered = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let version = choose_subprotocol(offered, &config.versions).ok_or_else(|| {
        reject(
            StatusCode::BAD_REQUEST,
            "no acceptable OCPP subprotocol offered (Sec-WebSocket-Protocol)",
        )
    })?;
    if let Auth::Basic(auth) = &config.auth {
        let creds = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic_auth);
        let password = match &creds {
            Some((user, _)) if *user != identity => {
                return Err(reject(StatusCode::UNAUTHORIZED, "authentication failed"));
            }
            Some((_, pw)) if pw.len() > max_password_len(version) => {
                return Err(reject(
                    StatusCode::UNAUTHORIZED,
                    "password longer than the OCPP version allows",
                ));
            }
            Some((_, pw)) => Some(pw.as_slice()),
            None => None,
        };
        match auth.check(&identity, password) {
            Verdict::Accept => {}
            Verdict::Refuse => {
                return Err(reject(StatusCode::UNAUTHORIZED, "authentication failed"))
            }
            Verdict::Busy => {
                return Err(reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many password checks running; retry later",
                ))
            }
        }
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        if tls.client_certificates {
            // rustls refuses a handshake without a valid certificate; this only guards a TLS
            // stream served some other way.
            let bound = certificate.is_some_and(|c| tls.binding.binds(&identity, c));
            if !bound {
                return Err(reject(
                    StatusCode::FORBIDDEN,
                    "the client certificate is not for this charger identity",
                ));
            }
        }
    }
    let who = Peer {
        identity: &identity,
        address: peer,
        certificate,
    };
    if !config.admission.admits(&who) {
        return Err(reject(StatusCode::NOT_FOUND, "unknown charger"));
    }
    if !config.replace_duplicates && chargers.get(&identity).is_some() {
        return Err(reject(
            StatusCode::CONFLICT,
            "a charger with this identity is already connected",
        ));
    }
    resp.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(version.subprotocol()),
    );
    Ok((resp, identity, version))
}

/// One charger's connection: the handshake, then the charger. The handshake comes boxed
/// (by the caller), apart from the connection's future: what only it holds (the socket
/// before it is a WebSocket, the TLS and HTTP handshakes, tungstenite's 4 KiB handshake
/// buffer, the handshake timeout) is freed once it is done, and the connection's task is
/// sized by what it keeps for its whole life.
async fn serve_connection<H: CentralSystem, T>(
    handshake: std::pin::Pin<Box<impl Future<Output = Option<Admitted<T>>> + Send + 'static>>,
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    chargers: Chargers,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(Admitted {
        ws,
        entry,
        identity,
        version,
        peer,
    }) = handshake.await
    else {
        return;
    };
    tracing::info!(%peer, charger = %identity, %version, "charger connected");
    let session = Session::new(
        SessionConfig::new(identity, version)
            .call_timeout(config.call_timeout)
            .max_message_size(config.max_message_size)
            .lenient(config.lenient)
            .limits(config.limits.clone())
            .defaults(config.defaults.clone()),
    );
    // From here on this task is the whole connection: the session, the WebSocket (read
    // and written here, pinged on its timer) and nothing else held per connection.
    let mut conn = Connection::new(session, handler).register(&chargers);
    conn.handle()
        .set_compressed(ws.get_ref().agreed().is_some());
    let transport = std::pin::pin!(WsTransport::new(
        ws,
        Timing {
            ping_every: config.ping_interval,
            dead_after: config.dead_peer_timeout,
            write_timeout: config.write_timeout,
        },
    ));
    match conn.run_on(transport).await {
        Ok(()) => {}
        Err(e @ crate::driver::DriveError::Panicked(_)) => {
            tracing::error!(charger = conn.identity(), "connection ended: {e}");
        }
        Err(e) => tracing::info!(charger = conn.identity(), "connection ended: {e}"),
    }
    drop(entry);
    tracing::info!(%peer, charger = conn.identity(), "charger disconnected");
}

/// An admitted charger, its handshake done.
struct Admitted<S> {
    ws: WebSocketStream<DeflateIo<LeanIo<S>>>,
    /// Its place in the connection bounds, given back on drop.
    entry: Entry,
    identity: String,
    version: Version,
    /// Its address (the one in its PROXY header behind a load balancer).
    peer: SocketAddr,
}

/// What runs under the WebSocket handshake: nothing ([`Plain`]) or the TLS handshake.
trait Upgrade<S>: Send + 'static {
    /// The stream the WebSocket is read from.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Whether a connection turned away by a bound is answered 503 (plain HTTP only).
    const ANSWERS_503: bool;
    /// The stream under the WebSocket, and the peer's verified certificate.
    fn upgrade(
        self,
        stream: S,
    ) -> impl Future<Output = std::io::Result<(Self::Io, Option<PeerCertificate>)>> + Send;
}

/// The WebSocket straight on the socket (`ws://`).
struct Plain;

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Upgrade<S> for Plain {
    type Io = S;
    const ANSWERS_503: bool = true;
    fn upgrade(
        self,
        stream: S,
    ) -> impl Future<Output = std::io::Result<(S, Option<PeerCertificate>)>> + Send {
        std::future::ready(Ok((stream, None)))
    }
}

#[cfg(feature = "tls")]
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Upgrade<S> for crate::tls::ServerTls {
    type Io = tokio_rustls::server::TlsStream<S>;
    const ANSWERS_503: bool = false;
    async fn upgrade(self, stream: S) -> std::io::Result<(Self::Io, Option<PeerCertificate>)> {
        let tls = self.acceptor.accept(stream).await?;
        let certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| PeerCertificate::from_der(der));
        Ok((tls, certificate))
    }
}

/// The answer to the charger's `Sec-WebSocket-Extensions` offers (RFC 7692): adds the
/// accepted `permessage-deflate` to the response and returns what was agreed.
fn negotiate(req: &Request, resp: &mut Response, config: &Compression) -> Option<Agreed> {
    let offers = req
        .headers()
        .get_all("Sec-WebSocket-Extensions")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let (agreed, answer) = ocpp_codec::deflate::server_accept(offers, config)?;
    let value = HeaderValue::from_str(&answer).ok()?;
    resp.headers_mut().insert("Sec-WebSocket-Extensions", value);
    Some(agreed)
}

/// The bounds, then (within the handshake timeout) the TLS handshake if any and the WebSocket
/// handshake (identity, subprotocol, credentials, admission); `None` when the connection is
/// turned away or fails.
// tungstenite's handshake callback returns its `ErrorResponse` by value.
#[allow(clippy::result_large_err)]
async fn handshake<S, U>(
    stream: S,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    chargers: Chargers,
    gate: Arc<Gate>,
    upgrade: U,
) -> Option<Admitted<U::Io>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: Upgrade<Prefixed<S>>,
{
    // One deadline for the PROXY header, the TLS and the WebSocket handshakes.
    let deadline = tokio::time::Instant::now() + config.handshake_timeout;
    let (mut stream, peer, entry) = match &config.proxy_protocol {
        None => (
            Prefixed::new(stream, Vec::new()),
            peer,
            gate.enter(peer.ip(), &config),
        ),
        Some(proxy) => {
            let mut entry = match gate.enter_unplaced(&config) {
                Ok(entry) => entry,
                Err(turned) => {
                    // Nothing is read from it: close it as it is.
                    tracing::warn!(%peer, ?turned, "connection refused: limit reached");
                    return None;
                }
            };
            let read = tokio::time::timeout_at(deadline, proxy.accept_logged(stream, peer));
            let (stream, real) = match read.await {
                Ok(Some(x)) => x,
                Ok(None) => return None,
                Err(_) => {
                    proxy.refused(
                        peer,
                        crate::proxy::Refusal::TimedOut,
                        &"no complete header within the handshake timeout",
                    );
                    return None;
                }
            };
            let placed = entry.locate(real.ip(), &config).map(|()| entry);
            (stream, real, placed)
        }
    };
    let mut entry = match entry {
        Ok(entry) => entry,
        Err(turned) => {
            tracing::warn!(%peer, ?turned, "connection refused: limit reached");
            use tokio::io::AsyncWriteExt;
            let refuse = async {
                if U::ANSWERS_503 {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 30\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                }
                let _ = stream.shutdown().await;
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), refuse).await;
            return None;
        }
    };
    type Chosen = (String, Version, Option<Agreed>);
    let admitted: Arc<Mutex<Option<Chosen>>> = Arc::new(Mutex::new(None));
    let callback = |certificate: Option<PeerCertificate>| {
        let admitted = admitted.clone();
        let config = config.clone();
        let chargers = chargers.clone();
        move |req: &Request, resp: Response| match admit(
            req,
            resp,
            &config,
            &chargers,
            peer,
            certificate.as_ref(),
        ) {
            Ok((mut resp, identity, version)) => {
                let agreed = negotiate(req, &mut resp, &config.compression);
                *admitted.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((identity, version, agreed));
                Ok(resp)
            }
            Err(e) => {
                tracing::info!(%peer, status = %e.status(), "handshake refused");
                Err(*e)
            }
        }
    };
    // The WebSocket layer reads messages up to `OVERSIZE_FACTOR` times the limit, so that the
    // codec can answer one over the limit with a CALLERROR naming its id (and the connection
    // goes on); a larger one is not read at all: close 1009 (Message Too Big).
    let read_limit = read_limit(config.max_message_size);
    // A small read buffer (tungstenite's default is 128 KiB, held by every connection); the
    // socket is read through `LeanIo`, one system call per message all the same.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(crate::socket::READ_BUFFER)
        .max_message_size(Some(read_limit))
        .max_frame_size(Some(read_limit));
    let both = async {
        let (io, certificate) = upgrade.upgrade(stream).await.map_err(|e| {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
        })?;
        tokio_tungstenite::accept_hdr_async_with_config(
            DeflateIo::new(LeanIo::new(io)),
            callback(certificate),
            Some(ws_config),
        )
        .await
        .map_err(|e| {
            tracing::debug!(%peer, "handshake failed: {e}");
        })
    };
    let mut ws = match tokio::time::timeout_at(deadline, both).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(())) => return None,
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            return None;
        }
    };
    entry.handshake_done();
    let admitted = {
        let taken = admitted.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(admitted);
        taken
    };
    let (identity, version, agreed) = admitted?;
    ws.get_mut().set_agreed(
        agreed,
        ocpp_codec::deflate::Limits {
            max_message_size: read_limit,
        },
    );
    if let Some(agreed) = agreed {
        tracing::debug!(%peer, ?agreed, "permessage-deflate in use");
    }
    Some(Admitted {
        ws,
        entry,
        identity,
        version,
        peer,
    })
}
