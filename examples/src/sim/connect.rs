//! The load generator's connections: `<url>/<identity>`, the version's subprotocol, Basic auth
//! (security profile 1) and an optional local source address, with the host resolved once for
//! all chargers. The transport rules (subprotocol check, Basic auth) are
//! `ocpp_codec::transport`'s, as in `ocpp_charger::ws`; the fleet's full chargers connect
//! through that driver itself. The load generator keeps this lean path on purpose (see
//! [`super::load`]): a bare `WebSocketStream<TcpStream>` per charger and no per-connection
//! DNS lookup, so the benchmark measures the central system, not the generator.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ocpp_codec::deflate::{Compression, DeflateIo};
use ocpp_codec::Version;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use super::SimError;

/// A charger's connection (compressed when the central system took the offer).
pub(crate) type Ws = WebSocketStream<DeflateIo<TcpStream>>;

/// Where and how the chargers connect, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    base: String,
    addrs: Vec<SocketAddr>,
    password: Option<String>,
    bind_ips: Vec<IpAddr>,
    timeout: Duration,
    compression: Compression,
}

impl Target {
    /// Checks `url` (`ws://host[:port][/path]`, or `wss://` when `tls`: the fleet's chargers
    /// connect with a TLS configuration, the load generator's own connections never) and
    /// resolves its host.
    pub(crate) async fn resolve(
        url: &str,
        password: Option<String>,
        bind_ips: Vec<IpAddr>,
        timeout: Duration,
        tls: bool,
    ) -> Result<Target, SimError> {
        let invalid = |reason: &str| SimError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") if tls => true,
            Some("wss") => {
                return Err(invalid(
                    "wss:// needs a TLS configuration (charger-sim --ca FILE; load mode speaks ws:// only)",
                ))
            }
            _ => return Err(invalid("the scheme must be ws:// or wss://")),
        };
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        if uri.query().is_some() {
            return Err(invalid("a query string cannot be followed by the identity"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| invalid(&format!("cannot resolve {host}: {e}")))?
            .collect();
        if let Some(ip) = bind_ips.first() {
            // Prefer addresses of the source addresses' family.
            addrs.sort_by_key(|a| a.is_ipv4() != ip.is_ipv4());
        }
        if addrs.is_empty() {
            return Err(invalid(&format!("{host} has no address")));
        }
        Ok(Target {
            base: url.trim_end_matches('/').to_owned(),
            addrs,
            password,
            bind_ips,
            timeout,
            compression: Compression::off(),
        })
    }

    /// The load generator's chargers offer WebSocket compression as `compression` says (the
    /// fleet's drivers take it from their `ClientConfig`).
    pub(crate) fn with_compression(mut self, compression: Compression) -> Target {
        self.compression = compression;
        self
    }

    /// The source address of charger `index`, if any were given.
    pub(crate) fn bind_ip(&self, index: usize) -> Option<IpAddr> {
        if self.bind_ips.is_empty() {
            None
        } else {
            Some(self.bind_ips[index % self.bind_ips.len()])
        }
    }

    /// Opens the WebSocket of `identity` speaking `version`, from source address `bind`.
    pub(crate) async fn connect(
        &self,
        identity: &str,
        version: Version,
        bind: Option<IpAddr>,
    ) -> Result<Ws, String> {
        tokio::time::timeout(self.timeout, self.connect_inner(identity, version, bind))
            .await
            .map_err(|_| "connect timeout".to_owned())?
    }

    async fn connect_inner(
        &self,
        identity: &str,
        version: Version,
        bind: Option<IpAddr>,
    ) -> Result<Ws, String> {
        let url = format!("{}/{}", self.base, identity);
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        let protocol = version.subprotocol();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        if let Some(offer) = ocpp_codec::deflate::client_offer(&self.compression) {
            request.headers_mut().insert(
                "Sec-WebSocket-Extensions",
                HeaderValue::from_str(&offer).map_err(|e| e.to_string())?,
            );
        }
        if let Some(password) = &self.password {
            let value = ocpp_charger::ws::basic_auth(identity, password);
            request.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&value).map_err(|e| e.to_string())?,
            );
        }
        let mut last_error = String::from("no address");
        let mut stream = None;
        for addr in &self.addrs {
            match ocpp_charger::ws::tcp_connect(*addr, bind).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = format!("{addr}: {e}"),
            }
        }
        let stream = stream.ok_or(last_error)?;
        let (mut ws, response) = tokio_tungstenite::client_async_with_config(
            request,
            DeflateIo::new(stream),
            Some(ws_config()),
        )
        .await
        .map_err(|e| e.to_string())?;
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|h| h.to_str().ok());
        if !ocpp_codec::transport::selects(chosen, version) {
            return Err(format!("server did not select subprotocol {protocol}"));
        }
        let answers = response
            .headers()
            .get_all("sec-websocket-extensions")
            .iter()
            .map(|h| h.to_str().unwrap_or("\u{fffd}"));
        let agreed = ocpp_codec::deflate::client_accept(answers, &self.compression)
            .map_err(|e| e.to_string())?;
        ws.get_mut().set_agreed(
            agreed,
            ocpp_codec::deflate::Limits {
                max_message_size: 1 << 20,
            },
        );
        Ok(ws)
    }
}

/// Small buffers: thousands of connections per process, small OCPP messages.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}
