//! The WebSocket server over TLS (security profiles 2 and 3), over real sockets on 127.0.0.1,
//! with certificates minted by the test kit's CA; tokio-rustls + tokio-tungstenite as the
//! client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocpp_central::server::RunningServer;
use ocpp_central::testing::pki::{Issued, Pki};
use ocpp_central::tls::{rustls, ServerTls};
use ocpp_central::{
    Admission, Auth, HandleV16, HandleV201, HandleV21, Handler, Server, ServerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use futures::{SinkExt, StreamExt};

struct App;
impl Handler for App {}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

async fn start(config: ServerConfig) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::new(config, Arc::new(App)).start(listener).unwrap()
}

/// A server certificate for localhost from `pki`, as a profile-2 TLS builder.
fn server_tls(pki: &Pki) -> ocpp_central::tls::ServerTlsBuilder {
    let server = pki.server(&["localhost", "127.0.0.1"]);
    ServerTls::from_pem(server.cert_pem.as_bytes(), server.key_pem.as_bytes()).unwrap()
}

/// A client trusting `ca_pem`, presenting `client` if given, with the given TLS versions.
fn client_config(
    ca_pem: &str,
    client: Option<&Issued>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let roots = ocpp_central::tls::root_store_from_pem(ca_pem.as_bytes()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match client {
        Some(c) => builder
            .with_client_auth_cert(
                ocpp_central::tls::certificates_from_pem(c.cert_pem.as_bytes()).unwrap(),
                ocpp_central::tls::private_key_from_pem(c.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

fn tls13_and_12() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS13, &rustls::version::TLS12]
}

/// How a connection attempt failed.
#[derive(Debug)]
enum Failed {
    /// During or right after the TLS handshake (an alert, a closed socket).
    Tls(#[allow(dead_code)] String), // shown by the assertions' Debug output
    /// An HTTP answer instead of the upgrade.
    Status(u16),
}

/// Connects as `identity` over TLS (SNI `server_name`), offering ocpp1.6; the WebSocket and
/// the certificate the server presented.
async fn connect(
    addr: std::net::SocketAddr,
    server_name: &str,
    identity: &str,
    tls: Arc<rustls::ClientConfig>,
    password: Option<&str>,
) -> Result<(Wss, Vec<u8>), Failed> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| Failed::Tls(e.to_string()))?;
    let served = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let mut req = format!("wss://{server_name}/ocpp/{identity}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().unwrap());
    if let Some(pw) = password {
        let value = ocpp_central::ocpp_codec::transport::basic_auth_header(identity, pw);
        req.headers_mut()
            .insert("Authorization", value.parse().unwrap());
    }
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, _)) => Ok((ws, served)),
        Err(WsError::Http(resp)) => Err(Failed::Status(resp.status().as_u16())),
        // TLS 1.3: a refused client certificate shows as an alert on the first read.
        Err(e) => Err(Failed::Tls(e.to_string())),
    }
}

/// A Heartbeat CALL and its CALLRESULT over `ws`.
async fn heartbeat(ws: &mut Wss) {
    ws.send(Message::text(r#"[2,"hb","Heartbeat",{}]"#))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer in time")
        .expect("open")
        .unwrap();
    let text = answer.into_text().unwrap();
    assert!(text.starts_with(r#"[3,"hb",{"currentTime":"#), "{text}");
}

#[tokio::test]
async fn profile_3_binds_the_client_certificate_to_the_identity() {
    let pki = Pki::new("CSMS CA");
    let other_ca = Pki::new("Someone else's CA");
    // (identity, certificate CN) of every peer the admission saw.
    type Seen = Vec<(String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let admission = {
        let seen = seen.clone();
        Admission::peer(move |peer| {
            let cn = peer
                .certificate
                .and_then(|c| c.common_name())
                .map(str::to_owned);
            seen.lock().unwrap().push((peer.identity.to_owned(), cn));
            true
        })
    };
    let tls = server_tls(&pki)
        .client_ca_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    assert!(tls.requires_client_certificates());
    let server = start(
        ServerConfig::new(Auth::AllowAnyone)
            .tls(tls)
            .admission(admission),
    )
    .await;
    let addr = server.local_addr();
    let versions = tls13_and_12();

    // Its own certificate: admitted, and the admission saw the verified certificate.
    let cp1 = pki.client("CP1");
    let (mut ws, _) = connect(
        addr,
        "localhost",
        "CP1",
        client_config(&pki.ca_pem, Some(&cp1), &versions),
        None,
    )
    .await
    .unwrap();
    heartbeat(&mut ws).await;
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[("CP1".to_owned(), Some("CP1".to_owned()))]
    );

    // A valid certificate of another charger: 403 before the upgrade, over TLS 1.3 and 1.2.
    let cp2 = pki.client("CP2");
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let err = connect(
            addr,
            "localhost",
            "CP1",
            client_config(&pki.ca_pem, Some(&cp2), &[version]),
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Failed::Status(403)), "{version:?}: {err:?}");
    }

    // Expired, from another CA, or none at all: refused during TLS, nothing admitted.
    let expired = pki.expired_client("CP3");
    let foreign = other_ca.client("CP3");
    for (what, cert) in [
        ("expired", Some(&expired)),
        ("untrusted", Some(&foreign)),
        ("none", None),
    ] {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let err = connect(
                addr,
                "localhost",
                "CP3",
                client_config(&pki.ca_pem, cert, &[version]),
                None,
            )
            .await
            .unwrap_err();
            assert!(matches!(err, Failed::Tls(_)), "{what} {version:?}: {err:?}");
        }
    }
    assert!(server.chargers().get("CP3").is_none());
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "refused peers never reach the admission"
    );
    // The first charger was not disturbed.
    heartbeat(&mut ws).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn profile_2_checks_the_basic_auth_password_over_tls() {
    let pki = Pki::new("CSMS CA");
    let server = start(
        ServerConfig::new(Auth::passwords([("CP1", "0123456789abcdef")]))
            .tls(server_tls(&pki).build().unwrap()),
    )
    .await;
    let addr = server.local_addr();
    let client = client_config(&pki.ca_pem, None, &tls13_and_12());
    for pw in [Some("wrong-password!!"), None] {
        let err = connect(addr, "localhost", "CP1", client.clone(), pw)
            .await
            .unwrap_err();
        assert!(matches!(err, Failed::Status(401)), "{pw:?}: {err:?}");
    }
    let (mut ws, _) = connect(addr, "localhost", "CP1", client, Some("0123456789abcdef"))
        .await
        .unwrap();
    heartbeat(&mut ws).await;
    // A client that does not trust the server's CA gives up during TLS.
    let stranger = Pki::new("Unrelated CA");
    let err = connect(
        addr,
        "localhost",
        "CP1",
        client_config(&stranger.ca_pem, None, &tls13_and_12()),
        Some("0123456789abcdef"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Failed::Tls(_)), "{err:?}");
    server.shutdown().await.unwrap();
}

/// Reads what the server sends until it closes (at most 10 s).
async fn read_to_close(mut tcp: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got))
        .await
        .expect("the server closes the connection");
    got
}

/// A TLS 1.1 ClientHello (legacy version 0x0302, no supported_versions extension).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two CBC suites
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn old_tls_and_plain_http_are_refused_without_harming_others() {
    let pki = Pki::new("CSMS CA");
    let server =
        start(ServerConfig::new(Auth::AllowAnyone).tls(server_tls(&pki).build().unwrap())).await;
    let addr = server.local_addr();
    let (mut ws, _) = connect(
        addr,
        "localhost",
        "CP1",
        client_config(&pki.ca_pem, None, &tls13_and_12()),
        None,
    )
    .await
    .unwrap();

    // TLS 1.1: a fatal alert (record type 21), then the connection closes.
    let mut old = TcpStream::connect(addr).await.unwrap();
    old.write_all(&tls11_client_hello()).await.unwrap();
    let answer = read_to_close(old).await;
    assert_eq!(answer.first(), Some(&0x15), "an alert record: {answer:?}");

    // A plain WebSocket handshake on the TLS port: never upgraded.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /ocpp/CP2 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(plain).await;
    assert!(!answer.starts_with(b"HTTP/1.1 101"), "{answer:?}");

    // Random bytes.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(&[0xde; 300]).await.unwrap();
    read_to_close(junk).await;

    assert!(server.chargers().get("CP2").is_none());
    heartbeat(&mut ws).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_tls_client_holds_a_handshake_place_until_the_timeout() {
    let pki = Pki::new("CSMS CA");
    let server = start(
        ServerConfig::new(Auth::AllowAnyone)
            .tls(server_tls(&pki).build().unwrap())
            .handshake_timeout(Duration::from_millis(500))
            .max_handshakes(1),
    )
    .await;
    let addr = server.local_addr();
    let client = client_config(&pki.ca_pem, None, &tls13_and_12());
    // Connects and never says a word: it holds the only handshake place.
    let silent = TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    // Meanwhile a charger is turned away (closed before TLS: no place left)...
    let mut turned_away = false;
    while started.elapsed() < Duration::from_millis(400) {
        match connect(addr, "localhost", "CP1", client.clone(), None).await {
            Err(Failed::Tls(_)) => {
                turned_away = true;
                break;
            }
            Ok((ws, _)) => drop(ws), // the silent client's task had not entered yet
            Err(e) => panic!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        turned_away,
        "a second handshake was let in beside the silent one"
    );
    // ...the silent client is dropped at the handshake timeout...
    let got = read_to_close(silent).await;
    assert!(got.is_empty(), "{got:?}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    // ...and then there is room again.
    let (mut ws, _) = connect(addr, "localhost", "CP1", client, None)
        .await
        .unwrap();
    heartbeat(&mut ws).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn certificates_reload_without_restart_and_sni_picks_by_name() {
    let pki = Pki::new("CSMS CA");
    let first = pki.server(&["localhost", "127.0.0.1"]);
    let second = pki.server(&["localhost", "127.0.0.1"]);
    let named = pki.server(&["csms.example.test"]);
    let tls = ServerTls::from_pem(first.cert_pem.as_bytes(), first.key_pem.as_bytes())
        .unwrap()
        .sni(
            "csms.example.test",
            named.cert_pem.as_bytes(),
            named.key_pem.as_bytes(),
        )
        .unwrap()
        .build()
        .unwrap();
    let handle = tls.handle();
    let server = start(ServerConfig::new(Auth::AllowAnyone).tls(tls)).await;
    let addr = server.local_addr();
    let client = client_config(&pki.ca_pem, None, &tls13_and_12());

    let (mut established, served) = connect(addr, "localhost", "CP1", client.clone(), None)
        .await
        .unwrap();
    assert_eq!(served, first.der);
    let (mut by_name, served) = connect(addr, "csms.example.test", "CP3", client.clone(), None)
        .await
        .unwrap();
    assert_eq!(served, named.der);

    // A broken reload changes nothing.
    assert!(handle
        .reload(b"not pem", second.key_pem.as_bytes())
        .is_err());
    assert!(
        handle
            .reload(second.cert_pem.as_bytes(), first.key_pem.as_bytes())
            .is_err(),
        "a key that is not the certificate's"
    );
    assert_eq!(handle.default_certificate(), first.der);

    handle
        .reload(second.cert_pem.as_bytes(), second.key_pem.as_bytes())
        .unwrap();
    assert_eq!(handle.default_certificate(), second.der);
    // A new client: one that resumes its earlier TLS session is not shown a certificate again.
    let new_client = client_config(&pki.ca_pem, None, &tls13_and_12());
    let (mut fresh, served) = connect(addr, "localhost", "CP2", new_client, None)
        .await
        .unwrap();
    assert_eq!(
        served, second.der,
        "a handshake after the reload sees the new certificate"
    );
    // The connection made before the reload goes on.
    heartbeat(&mut established).await;
    heartbeat(&mut fresh).await;
    heartbeat(&mut by_name).await;

    // A name removed falls back to the default.
    assert!(handle.remove_name("csms.example.test"));
    let new_client = client_config(&pki.ca_pem, None, &tls13_and_12());
    let err = connect(addr, "csms.example.test", "CP4", new_client, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failed::Tls(_)),
        "the default certificate is not for that name: {err:?}"
    );
    server.shutdown().await.unwrap();
}
