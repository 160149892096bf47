//! The PROXY protocol on the server's listener (feature `ws`, opt-in with
//! [`ServerConfig::proxy_protocol`](crate::server::ServerConfig::proxy_protocol)).
//!
//! A load balancer in TCP mode (HAProxy `mode tcp`) hides the charger's address: every
//! connection comes from the balancer, so per-address bounds
//! ([`ServerConfig::max_connections_per_address`](crate::server::ServerConfig::max_connections_per_address))
//! and logs see only the balancer. With `send-proxy-v2` the balancer writes a PROXY protocol
//! header (version 2, binary; version 1, text, is read too) before the charger's bytes; the
//! server reads it and uses the address in it for the bounds, the logs and the admission.
//!
//! Only the balancer may say where a connection comes from, so only connections from the
//! [trusted addresses](ProxyProtocol::new) are read this way, and each must start with a
//! header. A connection from another address is served with its own address; one that
//! starts with a PROXY header anyway is refused (it would claim someone else's address). A
//! header that is malformed, or not complete within the handshake timeout, refuses the
//! connection too. Every refusal is logged with its reason at `warn` and counted
//! ([`ProxyProtocol::refusals`], and the hook of [`ProxyProtocol::on_refused`]).
//!
//! The header is parsed by the `ppp` crate (HAProxy's specification, both versions). It is
//! read exactly (the fixed 16 bytes of version 2, then the length they announce, at most
//! [`MAX_HEADER`]; version 1 up to its CRLF, at most 107 bytes), so nothing of the charger's
//! own bytes is consumed. The connection counts against the total and handshake bounds while
//! its header is read, and against its real address's bound once it is known.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The largest version 2 header read (the fixed 16 bytes, addresses and TLVs): HAProxy's
/// headers with addresses and a few TLVs are well under it.
pub const MAX_HEADER: usize = 1024;
/// The longest version 1 header (the specification's bound, CRLF included).
const MAX_V1: usize = 107;
/// The version 2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// How many first bytes of a connection from an untrusted address are looked at: enough to
/// tell a PROXY header (either version) from an HTTP request or a TLS ClientHello.
const SNIFF: usize = 6;

/// Why a connection was refused by the PROXY protocol layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A PROXY header from an address that is not trusted.
    Untrusted,
    /// A trusted address sent no header, or a malformed one.
    Malformed,
    /// The header was not complete within the handshake timeout.
    TimedOut,
}

impl Refusal {
    /// A stable word for logs and metrics: `untrusted`, `malformed`, `timeout`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Untrusted => "untrusted",
            Refusal::Malformed => "malformed",
            Refusal::TimedOut => "timeout",
        }
    }
}

/// Connections refused so far, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// PROXY headers from untrusted addresses.
    pub untrusted: u64,
    /// Missing or malformed headers from trusted addresses.
    pub malformed: u64,
    /// Headers not complete within the handshake timeout.
    pub timed_out: u64,
}

#[derive(Default)]
struct Counters {
    untrusted: AtomicU64,
    malformed: AtomicU64,
    timed_out: AtomicU64,
}

type Hook = Arc<dyn Fn(Refusal) + Send + Sync>;

/// The PROXY protocol settings of a listener: which addresses are trusted to send headers.
#[derive(Clone)]
pub struct ProxyProtocol {
    trusted: Arc<[IpAddr]>,
    counters: Arc<Counters>,
    hook: Option<Hook>,
}

impl fmt::Debug for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyProtocol")
            .field("trusted", &self.trusted)
            .field("refusals", &self.refusals())
            .finish_non_exhaustive()
    }
}

/// Why reading a header failed (see [`parse`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Not a PROXY header, or not a well-formed one.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    /// A version 2 header longer than [`MAX_HEADER`].
    #[error("PROXY header of {0} bytes, more than {MAX_HEADER}")]
    TooLong(usize),
    /// A PROXY header from an address that is not trusted.
    #[error("PROXY header from an untrusted address")]
    Untrusted,
    /// The connection failed or ended before the header did.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

impl ProxyError {
    /// The refusal this counts as (`None`: the peer went away, nothing to report).
    fn refusal(&self) -> Option<Refusal> {
        match self {
            ProxyError::Malformed(_) | ProxyError::TooLong(_) => Some(Refusal::Malformed),
            ProxyError::Untrusted => Some(Refusal::Untrusted),
            ProxyError::Io(_) => None,
        }
    }
}

impl ProxyProtocol {
    /// Reads PROXY headers from connections of `trusted` (the load balancers' addresses).
    pub fn new(trusted: impl IntoIterator<Item = IpAddr>) -> ProxyProtocol {
        ProxyProtocol {
            trusted: trusted.into_iter().collect(),
            counters: Arc::new(Counters::default()),
            hook: None,
        }
    }

    /// Calls `hook` for every refused connection (e.g. to count it in the application's
    /// metrics). It runs on the connection's task: keep it short.
    pub fn on_refused(mut self, hook: impl Fn(Refusal) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Whether `ip` may send PROXY headers.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|t| t.to_canonical() == ip)
    }

    /// The connections refused so far.
    pub fn refusals(&self) -> Refusals {
        Refusals {
            untrusted: self.counters.untrusted.load(Ordering::Relaxed),
            malformed: self.counters.malformed.load(Ordering::Relaxed),
            timed_out: self.counters.timed_out.load(Ordering::Relaxed),
        }
    }

    /// Counts and logs a refused connection from `peer`.
    pub(crate) fn refused(&self, peer: SocketAddr, why: Refusal, detail: &dyn fmt::Display) {
        let counter = match why {
            Refusal::Untrusted => &self.counters.untrusted,
            Refusal::Malformed => &self.counters.malformed,
            Refusal::TimedOut => &self.counters.timed_out,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%peer, reason = why.code(), "connection refused: PROXY protocol: {detail}");
        if let Some(hook) = &self.hook {
            hook(why);
        }
    }

    /// Reads the start of a connection from `peer`: from a trusted address its header (the
    /// address in it is returned; a `LOCAL` header or one without an internet address keeps
    /// `peer`), from another address nothing but a look at its first bytes, which are given
    /// back in the returned stream.
    pub(crate) async fn accept<S>(
        &self,
        mut stream: S,
        peer: SocketAddr,
    ) -> Result<(Prefixed<S>, SocketAddr), ProxyError>
    where
        S: AsyncRead + Unpin,
    {
        if self.trusts(peer.ip()) {
            let header = read_header(&mut stream).await?;
            let source = parse(&header)?.unwrap_or(peer);
            return Ok((Prefixed::new(stream, Vec::new()), source));
        }
        let mut first = [0u8; SNIFF];
        stream.read_exact(&mut first).await?;
        if first.starts_with(b"PROXY ") || V2_SIGNATURE.starts_with(&first) {
            return Err(ProxyError::Untrusted);
        }
        Ok((Prefixed::new(stream, first.to_vec()), peer))
    }

    /// [`ProxyProtocol::accept`] with its failures counted and logged.
    pub(crate) async fn accept_logged<S>(
        &self,
        stream: S,
        peer: SocketAddr,
    ) -> Option<(Prefixed<S>, SocketAddr)>
    where
        S: AsyncRead + Unpin,
    {
        match self.accept(stream, peer).await {
            Ok(x) => Some(x),
            Err(e) => {
                match e.refusal() {
                    Some(why) => self.refused(peer, why, &e),
                    None => tracing::debug!(%peer, "{e}"),
                }
                None
            }
        }
    }
}

/// Reads exactly one PROXY header (either version) from `stream`, nothing after it.
async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, ProxyError> {
    let mut header = vec![0u8; 16];
    stream.read_exact(&mut header[..SNIFF]).await?;
    if header.starts_with(b"PROXY ") {
        header.truncate(SNIFF);
        // Version 1: up to CRLF, byte by byte (a header is short and read once).
        while !header.ends_with(b"\r\n") {
            if header.len() >= MAX_V1 {
                return Err(ProxyError::Malformed(
                    "version 1 header without CRLF".into(),
                ));
            }
            header.push(stream.read_u8().await?);
        }
        return Ok(header);
    }
    if !V2_SIGNATURE.starts_with(&header[..SNIFF]) {
        return Err(ProxyError::Malformed(
            "the connection does not start with a PROXY header".into(),
        ));
    }
    stream.read_exact(&mut header[SNIFF..]).await?;
    let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
    let total = 16usize.saturating_add(length);
    if total > MAX_HEADER {
        return Err(ProxyError::TooLong(total));
    }
    header.resize(total, 0);
    stream.read_exact(&mut header[16..]).await?;
    Ok(header)
}

/// Parses one complete PROXY header (version 1 or 2): the source address it carries, or
/// `None` for a `LOCAL` (version 2) or `UNKNOWN` (version 1) header and for addresses that
/// are not IP (a Unix socket): the connection's own address stands.
pub fn parse(header: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    if header.starts_with(b"PROXY ") {
        let text = std::str::from_utf8(header)
            .map_err(|_| ProxyError::Malformed("version 1 header is not ASCII".into()))?;
        let parsed =
            ppp::v1::Header::try_from(text).map_err(|e| ProxyError::Malformed(e.to_string()))?;
        if parsed.header.len() != header.len() {
            return Err(ProxyError::Malformed(
                "bytes after the version 1 header".into(),
            ));
        }
        return Ok(match parsed.addresses {
            ppp::v1::Addresses::Tcp4(a) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            ppp::v1::Addresses::Tcp6(a) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            ppp::v1::Addresses::Unknown => None,
        });
    }
    let parsed =
        ppp::v2::Header::try_from(header).map_err(|e| ProxyError::Malformed(e.to_string()))?;
    if parsed.len() != header.len() {
        return Err(ProxyError::Malformed(
            "bytes after the version 2 header".into(),
        ));
    }
    if parsed.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match parsed.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        _ => None,
    })
}

/// A stream whose first bytes were read already: they are read again first.
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(inner: S, prefix: Vec<u8>) -> Prefixed<S> {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if let Some(rest) = me.prefix.get(me.at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            me.at += n;
            if me.at >= me.prefix.len() {
                me.prefix = Vec::new();
                me.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
        ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (source, destination),
        )
        .build()
        .expect("a header")
    }

    #[test]
    fn a_version_2_header_gives_the_client_address() {
        let client: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let node: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(parse(&v2(client, node)).unwrap(), Some(client));
        let client6: SocketAddr = "[2001:db8::7]:4242".parse().unwrap();
        let node6: SocketAddr = "[2001:db8::1]:9000".parse().unwrap();
        assert_eq!(parse(&v2(client6, node6)).unwrap(), Some(client6));
    }

    #[test]
    fn version_1_and_local_headers() {
        assert_eq!(
            parse(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n").unwrap(),
            Some("192.0.2.7:56324".parse().unwrap())
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap(), None);
        let local = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Local,
            ppp::v2::Protocol::Unspecified,
            ppp::v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local).unwrap(), None);
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            &b"GET /ocpp/CP HTTP/1.1\r\n"[..],
            b"PROXY TCP4 not-an-address 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x00",
        ] {
            assert!(
                matches!(parse(bad), Err(ProxyError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn a_trusted_connection_is_read_up_to_its_header_and_no_further() {
        let proxy = ProxyProtocol::new(["127.0.0.1".parse().unwrap()]);
        let client: SocketAddr = "127.0.0.3:5555".parse().unwrap();
        let mut bytes = v2(client, "127.0.0.1:9000".parse().unwrap());
        bytes.extend_from_slice(b"GET /ocpp/CP HTTP/1.1\r\n");
        let (mut stream, source) = proxy
            .accept(&bytes[..], "127.0.0.1:33333".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(source, client);
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "GET /ocpp/CP HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn an_untrusted_connection_keeps_its_address_and_bytes_and_may_not_send_a_header() {
        let proxy = ProxyProtocol::new(["10.0.0.1".parse().unwrap()]);
        let peer: SocketAddr = "127.0.0.9:1234".parse().unwrap();
        let request = b"GET /ocpp/CP HTTP/1.1\r\n\r\n";
        let (mut stream, source) = proxy.accept(&request[..], peer).await.unwrap();
        assert_eq!(source, peer);
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, request);
        let header = v2("1.2.3.4:1".parse().unwrap(), peer);
        assert!(matches!(
            proxy.accept(&header[..], peer).await,
            Err(ProxyError::Untrusted)
        ));
        assert!(matches!(
            proxy
                .accept(&b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[..], peer)
                .await,
            Err(ProxyError::Untrusted)
        ));
        // The trusted address must send one.
        let trusted = ProxyProtocol::new([peer.ip()]);
        assert!(matches!(
            trusted.accept(&request[..], peer).await,
            Err(ProxyError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn an_oversized_or_cut_header_is_refused() {
        let proxy = ProxyProtocol::new(["127.0.0.1".parse().unwrap()]);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut long = V2_SIGNATURE.to_vec();
        long.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(
            proxy.accept(&long[..], peer).await,
            Err(ProxyError::TooLong(65551))
        ));
        let cut = &v2("127.0.0.2:1".parse().unwrap(), peer)[..20];
        assert!(matches!(
            proxy.accept(cut, peer).await,
            Err(ProxyError::Io(_))
        ));
        let v1 = [b"PROXY ".as_slice(), &[b'x'; 200]].concat();
        assert!(matches!(
            proxy.accept(&v1[..], peer).await,
            Err(ProxyError::Malformed(_))
        ));
    }

    proptest::proptest! {
        /// Whatever a peer sends, reading and parsing a header ends with an address or an
        /// error, never a panic, and never reads past a header's announced end.
        #[test]
        fn any_bytes_give_an_answer_never_a_panic(
            prefix in proptest::sample::select(vec![
                V2_SIGNATURE.to_vec(), b"PROXY ".to_vec(), Vec::new()
            ]),
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let bytes = [prefix, rest].concat();
            let _ = parse(&bytes);
            let proxy = ProxyProtocol::new(["127.0.0.1".parse().unwrap()]);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let read = runtime.block_on(proxy.accept(&bytes[..], "127.0.0.1:1".parse().unwrap()));
            if let Ok((stream, _)) = read {
                // What is left for the WebSocket handshake is exactly what follows one
                // well-formed header.
                let header = &bytes[..bytes.len() - stream.inner.len()];
                proptest::prop_assert!(bytes.ends_with(stream.inner));
                proptest::prop_assert!(parse(header).is_ok());
            }
        }
    }

    #[test]
    fn refusals_are_counted_and_reported() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let proxy = ProxyProtocol::new([]).on_refused(move |r| s.lock().unwrap().push(r));
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        proxy.refused(peer, Refusal::Untrusted, &"test");
        proxy.refused(peer, Refusal::TimedOut, &"test");
        assert_eq!(
            proxy.refusals(),
            Refusals {
                untrusted: 1,
                malformed: 0,
                timed_out: 1
            }
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [Refusal::Untrusted, Refusal::TimedOut]
        );
    }
}
