//! The WebSocket server over real sockets on 127.0.0.1, tokio-tungstenite as the client.

use std::sync::Arc;
use std::time::Duration;

use ocpp_central::server::RunningServer;
use ocpp_central::testing::MockCharger;
use ocpp_central::{
    Admission, Auth, Chargers, HandleV16, HandleV201, HandleV21, Handler, Server, ServerConfig,
};
use ocpp_types::{v16, Version};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

struct App;
impl Handler for App {}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

async fn start(config: ServerConfig) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::new(config, Arc::new(App)).start(listener).unwrap()
}

/// A 1.6 charger `identity` connected to a server with `config` over an in-memory pipe of
/// `buffer` bytes each way (no TCP): the charger's WebSocket, the handshake's response, the
/// server's registry, and the task serving the connection.
async fn over_a_pipe(
    config: ServerConfig,
    identity: &str,
    buffer: usize,
) -> (
    WebSocketStream<tokio::io::DuplexStream>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
    Chargers,
    tokio::task::JoinHandle<()>,
) {
    over_a_pipe_as(config, identity, buffer, "ocpp1.6").await
}

/// [`over_a_pipe`] with the charger asking for `subprotocol`.
async fn over_a_pipe_as(
    config: ServerConfig,
    identity: &str,
    buffer: usize,
    subprotocol: &str,
) -> (
    WebSocketStream<tokio::io::DuplexStream>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
    Chargers,
    tokio::task::JoinHandle<()>,
) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (client_io, server_io) = tokio::io::duplex(buffer);
    let server = Server::new(config, Arc::new(App));
    let chargers = server.chargers();
    let task = tokio::spawn(server.serve_stream(server_io, "127.0.0.1:1".parse().unwrap()));
    let mut req = format!("ws://localhost/ocpp/{identity}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", subprotocol.parse().unwrap());
    let (ws, resp) = tokio_tungstenite::client_async(req, client_io)
        .await
        .unwrap();
    (ws, resp, chargers, task)
}

fn status_of(err: WsError) -> u16 {
    match err {
        WsError::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

async fn eventually(mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn basic_auth_subprotocols_and_admission() {
    let server = start(
        ServerConfig::new(Auth::passwords([("CP1", "secret"), ("CP2", "other")]))
            .admission(Admission::known(["CP1"])),
    )
    .await;
    let url = format!("ws://{}/ocpp/CP1", server.local_addr());
    // Right credentials; the server prefers 2.1 among those offered.
    let cp = MockCharger::connect_with(&url, &["ocpp1.6", "ocpp2.1"], Some(("CP1", "secret")))
        .await
        .unwrap();
    assert_eq!(cp.subprotocol.as_deref(), Some("ocpp2.1"));
    cp.close().await;
    // Wrong password, username not the identity, no credentials: 401 before any application code.
    for auth in [Some(("CP1", "nope")), Some(("CP2", "other")), None] {
        let err = MockCharger::connect_with(&url, &["ocpp1.6"], auth)
            .await
            .unwrap_err();
        assert_eq!(status_of(err), 401, "{auth:?}");
    }
    // No acceptable subprotocol: refused.
    let err = MockCharger::connect_with(&url, &["ocpp1.5", "wamp"], Some(("CP1", "secret")))
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 400);
    let err = MockCharger::connect_with(&url, &[], Some(("CP1", "secret")))
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 400);
    // Right password but not a known identity.
    let url2 = format!("ws://{}/ocpp/CP2", server.local_addr());
    let err = MockCharger::connect_with(&url2, &["ocpp1.6"], Some(("CP2", "other")))
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 404);
    server.shutdown().await.unwrap();
}

/// The reason text of an HTTP refusal.
fn reason_of(err: WsError) -> (u16, String) {
    match err {
        WsError::Http(resp) => (
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn identities_and_password_lengths_follow_the_specifications() {
    let long16 = "p".repeat(20);
    let long2x = "p".repeat(40);
    let id48 = "A".repeat(48);
    let server = start(ServerConfig::new(Auth::passwords([
        ("CP1", long16.as_str()),
        ("CP2", long2x.as_str()),
        (id48.as_str(), "secret"),
        ("CP|1", "secret"),
    ])))
    .await;
    let addr = server.local_addr();
    // The identity comes first: too long, bad characters, a colon (the Basic-auth separator)
    // or a broken escape are refused with 400 and the reason, whatever the credentials.
    for (path, why) in [
        (format!("/ocpp/{}", "A".repeat(49)), "49 characters"),
        ("/ocpp/CP%201".to_owned(), "' '"),
        ("/ocpp/CP:1".to_owned(), "':'"),
        ("/ocpp/CP%3A1".to_owned(), "':'"),
        ("/ocpp/CP%2".to_owned(), "'%'"),
        ("/ocpp/Z%C3%BCrich".to_owned(), "'ü'"),
    ] {
        let url = format!("ws://{addr}{path}");
        let err = MockCharger::connect_with(&url, &["ocpp1.6"], Some(("CP1", &long16)))
            .await
            .unwrap_err();
        let (status, reason) = reason_of(err);
        assert_eq!(status, 400, "{path}");
        assert!(reason.contains(why), "{path}: {reason}");
    }
    // Before the subprotocol too: no subprotocol offered, still the identity's reason.
    let url = format!("ws://{addr}/ocpp/CP%201");
    let (status, reason) = reason_of(
        MockCharger::connect_with(&url, &[], None)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert!(reason.contains("identity"), "{reason}");
    // 48 characters and a percent-encoded '|' are fine.
    let cp = MockCharger::connect_with(
        &format!("ws://{addr}/ocpp/{id48}"),
        &["ocpp2.0.1"],
        Some((&id48, "secret")),
    )
    .await
    .unwrap();
    cp.close().await;
    let cp = MockCharger::connect_with(
        &format!("ws://{addr}/ocpp/CP%7C1"),
        &["ocpp2.0.1"],
        Some(("CP|1", "secret")),
    )
    .await
    .unwrap();
    cp.close().await;
    // The longest password each version allows is checked; one byte more is refused (401)
    // before the authenticator sees it.
    let url1 = format!("ws://{addr}/ocpp/CP1");
    let cp = MockCharger::connect_with(&url1, &["ocpp1.6"], Some(("CP1", &long16)))
        .await
        .unwrap();
    cp.close().await;
    let err = MockCharger::connect_with(&url1, &["ocpp1.6"], Some(("CP1", &format!("{long16}p"))))
        .await
        .unwrap_err();
    let (status, reason) = reason_of(err);
    assert_eq!(status, 401);
    assert!(reason.contains("longer"), "{reason}");
    let url2 = format!("ws://{addr}/ocpp/CP2");
    let cp = MockCharger::connect_with(&url2, &["ocpp2.0.1"], Some(("CP2", &long2x)))
        .await
        .unwrap();
    cp.close().await;
    // 40 bytes are too many for 1.6, not for 2.0.1; 41 too many for both.
    let err = MockCharger::connect_with(&url2, &["ocpp1.6"], Some(("CP2", &long2x)))
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 401);
    let err =
        MockCharger::connect_with(&url2, &["ocpp2.0.1"], Some(("CP2", &format!("{long2x}p"))))
            .await
            .unwrap_err();
    assert_eq!(status_of(err), 401);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_busy_authenticator_is_answered_503() {
    struct Busy;
    impl ocpp_central::Authenticator for Busy {
        fn verify(&self, _: &str, _: &[u8]) -> bool {
            true
        }
        fn check(&self, _: &str, _: Option<&[u8]>) -> ocpp_central::Verdict {
            ocpp_central::Verdict::Busy
        }
    }
    let server = start(ServerConfig::new(Auth::basic(Busy))).await;
    let url = format!("ws://{}/ocpp/CP1", server.local_addr());
    let err = MockCharger::connect_with(&url, &["ocpp1.6"], Some(("CP1", "secret")))
        .await
        .unwrap_err();
    match err {
        WsError::Http(resp) => {
            assert_eq!(resp.status().as_u16(), 503);
            assert_eq!(resp.headers().get("Retry-After").unwrap(), "5");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_whole_1_6_session_over_a_socket_with_remote_start() {
    let server = start(ServerConfig::new(Auth::AllowAnyone).versions([Version::V16])).await;
    let mut cp = MockCharger::connect(server.local_addr(), "CP1", Version::V16)
        .await
        .unwrap();
    let boot = cp
        .call(
            "BootNotification",
            r#"{"chargePointVendor":"V","chargePointModel":"M"}"#,
        )
        .await
        .unwrap();
    assert_eq!(boot[2]["status"], "Accepted");
    // Bad input is answered and the connection lives on.
    let bad = cp.call("Authorize", "{}").await.unwrap();
    assert_eq!(bad[2], "OccurenceConstraintViolation");
    cp.send_raw("garbage").await.unwrap();
    assert_eq!(cp.recv().await.unwrap()[2], "FormationViolation");
    let start = cp
        .call(
            "StartTransaction",
            r#"{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2025-01-01T00:00:00Z"}"#,
        )
        .await
        .unwrap();
    assert_eq!(start[2]["transactionId"], 1);

    // The application reaches the charger through the registry.
    let chargers = server.chargers().clone();
    eventually(|| {
        chargers
            .get("CP1")
            .is_some_and(|h| !h.state().transactions.is_empty())
    })
    .await;
    let handle = chargers.get("CP1").unwrap();
    assert_eq!(&*chargers.list()[0].identity, "CP1");
    let remote =
        tokio::spawn(async move { handle.call(v16::RemoteStopTransactionRequest::new(1)).await });
    let call = cp.next_call().await.unwrap();
    assert_eq!(call[2], "RemoteStopTransaction");
    assert_eq!(call[3]["transactionId"], 1);
    cp.reply(call[1].as_str().unwrap(), r#"{"status":"Accepted"}"#)
        .await
        .unwrap();
    let answer = remote.await.unwrap().unwrap();
    assert_eq!(answer.status, v16::RemoteStartStopStatus::Accepted);

    // Graceful shutdown closes the charger's connection.
    server.shutdown().await.unwrap();
    assert!(cp.recv().await.is_none());
}

#[tokio::test]
async fn a_second_connection_replaces_the_first_or_is_refused() {
    let server = start(ServerConfig::new(Auth::AllowAnyone)).await;
    let mut first = MockCharger::connect(server.local_addr(), "CP1", Version::V201)
        .await
        .unwrap();
    let chargers = server.chargers().clone();
    eventually(|| chargers.len() == 1).await;
    let first_conn = chargers.get("CP1").unwrap().connection_id();
    let mut second = MockCharger::connect(server.local_addr(), "CP1", Version::V201)
        .await
        .unwrap();
    // The first is closed by the server; the second works.
    assert!(first.recv().await.is_none());
    let hb = second.call("Heartbeat", "{}").await.unwrap();
    assert!(hb[2]["currentTime"].is_string());
    eventually(|| {
        chargers
            .get("CP1")
            .is_some_and(|h| h.connection_id() != first_conn)
    })
    .await;
    assert_eq!(chargers.len(), 1);
    server.shutdown().await.unwrap();

    let server = start(ServerConfig::new(Auth::AllowAnyone).replace_duplicates(false)).await;
    let _first = MockCharger::connect(server.local_addr(), "CP1", Version::V16)
        .await
        .unwrap();
    let chargers = server.chargers().clone();
    eventually(|| chargers.len() == 1).await;
    let err = MockCharger::connect(server.local_addr(), "CP1", Version::V16)
        .await
        .unwrap_err();
    assert_eq!(status_of(err), 409);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_connection_does_not_delay_others_and_dead_peers_are_dropped() {
    let server = start(
        ServerConfig::new(Auth::AllowAnyone)
            .ping_interval(Some(Duration::from_millis(50)))
            .dead_peer_timeout(Some(Duration::from_millis(400)))
            .handshake_timeout(Duration::from_millis(300)),
    )
    .await;
    // A raw TCP client that never completes the handshake.
    let _stuck = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    // A charger that connects and then never reads: its pings pile up unanswered.
    let silent = MockCharger::connect(server.local_addr(), "SILENT", Version::V16)
        .await
        .unwrap();
    let mut busy = MockCharger::connect(server.local_addr(), "BUSY", Version::V16)
        .await
        .unwrap();
    // `busy` keeps talking (and so stays alive) and is served all along; `silent` never
    // reads, so it never answers the pings: it is dropped after the dead-peer timeout.
    let chargers = server.chargers().clone();
    let mut rounds = 0;
    while chargers.get("SILENT").is_some() {
        let hb = busy.call("Heartbeat", "{}").await.unwrap();
        assert!(hb[2]["currentTime"].is_string());
        rounds += 1;
        assert!(rounds < 200, "the silent charger was never dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(chargers.get("BUSY").is_some());
    drop(silent);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let server = start(ServerConfig::new(Auth::AllowAnyone).max_message_size(1024)).await;
    let mut cp = MockCharger::connect(server.local_addr(), "CP1", Version::V16)
        .await
        .unwrap();
    // Over the limit: a CALLERROR with the message id, and the connection goes on.
    let big = format!(r#"{{"vendorId":"V","data":"{}"}}"#, "x".repeat(2000));
    let refused = cp.call("DataTransfer", &big).await.unwrap();
    assert_eq!(refused[0], 4);
    assert_eq!(refused[2], "FormationViolation");
    let hb = cp.call("Heartbeat", "{}").await.unwrap();
    assert!(hb[2]["currentTime"].is_string());
    // More than 4 times the limit is not read: the server closes the connection (1009).
    let huge = format!(r#"{{"vendorId":"V","data":"{}"}}"#, "x".repeat(5000));
    let _ = cp.call("DataTransfer", &huge).await;
    let chargers = server.chargers().clone();
    eventually(|| chargers.is_empty()).await;
    server.shutdown().await.unwrap();
}

struct Recorder(tokio::sync::mpsc::UnboundedSender<ocpp_central::Event>);

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn on_event(&self, _charger: &ocpp_central::ChargerHandle, event: &ocpp_central::Event) {
        let _ = self.0.send(event.clone());
    }
}
impl HandleV16 for Recorder {}
impl HandleV201 for Recorder {}
impl HandleV21 for Recorder {}

#[tokio::test]
async fn a_2_0_1_and_a_2_1_transaction_over_sockets_reach_the_handler_as_one_model() {
    use ocpp_central::Event;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(ServerConfig::new(Auth::AllowAnyone), Arc::new(Recorder(tx)))
        .start(listener)
        .unwrap();
    for (identity, version) in [("CP201", Version::V201), ("CP21", Version::V21)] {
        let mut cp = MockCharger::connect(server.local_addr(), identity, version)
            .await
            .unwrap();
        assert_eq!(cp.subprotocol.as_deref(), Some(version.subprotocol()));
        let boot = cp
            .call(
                "BootNotification",
                r#"{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}"#,
            )
            .await
            .unwrap();
        assert_eq!(boot[2]["status"], "Accepted");
        for (seq, kind, kwh) in [
            (0, "Started", "1.000"),
            (1, "Updated", "2.5"),
            (2, "Ended", "3.125"),
        ] {
            let ans = cp
                .call(
                    "TransactionEvent",
                    &format!(
                        r#"{{"eventType":"{kind}","timestamp":"2025-01-01T00:0{seq}:00Z","triggerReason":"MeterValuePeriodic","seqNo":{seq},"transactionInfo":{{"transactionId":"T-{identity}"}},"evse":{{"id":1,"connectorId":1}},"meterValue":[{{"timestamp":"2025-01-01T00:0{seq}:00Z","sampledValue":[{{"value":{kwh},"unitOfMeasure":{{"unit":"kWh"}}}}]}}]}}"#
                    ),
                )
                .await
                .unwrap();
            assert_eq!(ans[0], 3, "{ans}");
        }
        let ended = loop {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Event::TransactionEnded {
                    transaction,
                    request,
                    ..
                } => {
                    assert_eq!(request.version(), version);
                    break transaction;
                }
                _ => continue,
            }
        };
        assert_eq!(ended.id, format!("T-{identity}"));
        assert_eq!(ended.energy_wh, ocpp_types::Decimal::new(2125, 0));
        cp.close().await;
        loop {
            if let Event::Disconnected { .. } = rx.recv().await.unwrap() {
                break;
            }
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn serve_stream_takes_any_transport() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    // An in-memory pipe instead of TCP (the same path serves a TLS stream for profile 2).
    let (mut ws, resp, chargers, task) =
        over_a_pipe(ServerConfig::new(Auth::AllowAnyone), "PIPE", 64 * 1024).await;
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], "ocpp1.6");
    ws.send(Message::Text(r#"[2,"h","Heartbeat",{}]"#.into()))
        .await
        .unwrap();
    let Some(Ok(Message::Text(answer))) = ws.next().await else {
        panic!("no answer")
    };
    assert!(answer.as_str().starts_with(r#"[3,"h",{"currentTime""#));
    assert_eq!(chargers.identities(), ["PIPE"]);
    ws.close(None).await.unwrap();
    task.await.unwrap();
    assert!(chargers.is_empty());
}

/// Reads what the server sent a raw TCP client until it closes the connection.
async fn refusal_of(addr: std::net::SocketAddr) -> String {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the server closes a refused connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_beyond_the_caps_get_503_before_their_handshake() {
    // In total: two places; the third connection is turned away, the two are served.
    let server = start(ServerConfig::new(Auth::AllowAnyone).max_connections(2)).await;
    let mut a = MockCharger::connect(server.local_addr(), "A", Version::V16)
        .await
        .unwrap();
    let mut b = MockCharger::connect(server.local_addr(), "B", Version::V16)
        .await
        .unwrap();
    let refused = refusal_of(server.local_addr()).await;
    assert!(
        refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{refused}"
    );
    assert!(a.call("Heartbeat", "{}").await.is_some());
    assert!(b.call("Heartbeat", "{}").await.is_some());
    // A place frees when a charger leaves.
    a.close().await;
    let chargers = server.chargers().clone();
    eventually(|| chargers.get("A").is_none()).await;
    let mut c = MockCharger::connect(server.local_addr(), "C", Version::V16)
        .await
        .unwrap();
    assert!(c.call("Heartbeat", "{}").await.is_some());
    server.shutdown().await.unwrap();

    // Per source address: one place for 127.0.0.1.
    let server = start(ServerConfig::new(Auth::AllowAnyone).max_connections_per_address(1)).await;
    let mut a = MockCharger::connect(server.local_addr(), "A", Version::V16)
        .await
        .unwrap();
    let refused = refusal_of(server.local_addr()).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(a.call("Heartbeat", "{}").await.is_some());
    server.shutdown().await.unwrap();

    // Handshakes in progress: one silent handshake holds the only place.
    let server = start(
        ServerConfig::new(Auth::AllowAnyone)
            .max_handshakes(1)
            .shutdown_grace(Duration::from_millis(100)),
    )
    .await;
    let _silent = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    // (The test runtime runs tasks in the order they were spawned: the silent connection's
    // handshake has begun when the next one arrives.)
    let refused = refusal_of(server.local_addr()).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    server.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_charger_that_stops_reading_is_dropped_after_the_write_timeout() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    // A 4 KiB pipe the charger writes into and never reads from: the server's answers fill it,
    // its write stalls, and the write timeout (default 30 s, on the test's paused clock) ends
    // the connection instead of holding it, its queues and its task forever.
    let (mut ws, _, chargers, task) =
        over_a_pipe(ServerConfig::new(Auth::AllowAnyone), "DEAF", 4096).await;
    assert_eq!(chargers.identities(), ["DEAF"]);
    let started = tokio::time::Instant::now();
    // Heartbeats until the server stops taking them (it stops reading once its answers cannot
    // be written) and then drops the connection.
    let mut sent = 0u32;
    for i in 0..100_000 {
        let call = format!(r#"[2,"{i}","Heartbeat",{{}}]"#);
        if ws.send(Message::Text(call.into())).await.is_err() {
            break;
        }
        sent += 1;
    }
    task.await.unwrap();
    let waited = started.elapsed();
    assert!(chargers.is_empty(), "the deaf charger left the registry");
    assert!(sent < 100_000, "the server stopped reading: {sent} sent");
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(40),
        "dropped after the write timeout, not before: {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn pings_keep_a_quiet_charger_and_a_silent_one_is_dropped_after_the_dead_peer_timeout() {
    use futures::StreamExt;
    use tokio::time::{Duration, Instant};
    use tokio_tungstenite::tungstenite::Message;
    // The defaults: a ping every 30 s, a peer silent for 75 s dropped (on the test's paused
    // clock). The charger sends nothing; while it reads, its WebSocket answers the pings.
    let (mut ws, _, chargers, task) =
        over_a_pipe(ServerConfig::new(Auth::AllowAnyone), "QUIET", 4096).await;
    let started = Instant::now();
    let mut pings = 0;
    while let Ok(frame) =
        tokio::time::timeout_at(started + Duration::from_secs(290), ws.next()).await
    {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings only, got {other:?}"),
        }
    }
    assert_eq!(pings, 9, "a ping every 30 s");
    assert_eq!(chargers.identities(), ["QUIET"], "answered pings keep it");
    // It stops reading (and so answering): dropped 75 s after its last pong (at 270 s).
    task.await.unwrap();
    let dropped = started.elapsed();
    assert!(chargers.is_empty());
    assert!(
        dropped >= Duration::from_secs(345) && dropped < Duration::from_secs(350),
        "dropped after the dead-peer timeout: {dropped:?}"
    );
}

/// A call to a charger that has not booted (or never answers) ends at the call timeout, for
/// every version.
#[tokio::test(start_paused = true)]
async fn a_central_call_the_charger_leaves_unanswered_times_out_on_the_connections_timer() {
    use futures::StreamExt;
    use ocpp_types::{v201, v21};
    use tokio::time::{Duration, Instant};
    use tokio_tungstenite::tungstenite::Message;
    for subprotocol in ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"] {
        let config = ServerConfig::new(Auth::AllowAnyone).call_timeout(Duration::from_secs(5));
        let (mut ws, _, chargers, _task) = over_a_pipe_as(config, "SLOW", 4096, subprotocol).await;
        let handle = loop {
            match chargers.get("SLOW") {
                Some(handle) => break handle,
                None => tokio::task::yield_now().await,
            }
        };
        let started = Instant::now();
        let call = tokio::spawn(async move {
            match subprotocol {
                "ocpp1.6" => handle.call(v16::ClearCacheRequest::new()).await.map(|_| ()),
                "ocpp2.0.1" => handle
                    .call(v201::ClearCacheRequest::new())
                    .await
                    .map(|_| ()),
                _ => handle.call(v21::ClearCacheRequest::new()).await.map(|_| ()),
            }
        });
        // The charger reads the CALL and never answers it.
        let Some(Ok(Message::Text(sent))) = ws.next().await else {
            panic!("{subprotocol}: no CALL")
        };
        assert!(sent.as_str().contains(r#""ClearCache""#), "{sent}");
        let answer = call.await.unwrap();
        assert!(answer.unwrap_err().is_timeout(), "{subprotocol}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
            "{subprotocol}: timed out after the call timeout: {waited:?}"
        );
    }
}

/// A PROXY protocol v2 header from `source` to `destination` (what HAProxy's
/// `send-proxy-v2` writes).
fn proxy_v2(source: std::net::SocketAddr, destination: std::net::SocketAddr) -> Vec<u8> {
    let (std::net::SocketAddr::V4(s), std::net::SocketAddr::V4(d)) = (source, destination) else {
        panic!("IPv4 only here");
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&s.port().to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// A 1.6 WebSocket handshake as `identity` after `header`, on a new connection to `addr`.
async fn handshake_after(
    addr: std::net::SocketAddr,
    header: &[u8],
    identity: &str,
) -> Result<WebSocketStream<tokio::net::TcpStream>, WsError> {
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(header).await.unwrap();
    let mut req = format!("ws://{addr}/ocpp/{identity}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().unwrap());
    tokio_tungstenite::client_async(req, stream)
        .await
        .map(|(ws, _)| ws)
}

/// Whether the server closes a connection that sent `bytes`, within `within`.
async fn closes_after(addr: std::net::SocketAddr, bytes: &[u8], within: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn behind_a_balancer_the_proxy_header_gives_the_address_and_the_bounds_hold() {
    use ocpp_central::proxy::{ProxyProtocol, Refusals};
    let proxy = ProxyProtocol::new(["127.0.0.1".parse().unwrap()]);
    let server = start(
        ServerConfig::new(Auth::AllowAnyone)
            .proxy_protocol(proxy.clone())
            .max_connections_per_address(1)
            .handshake_timeout(Duration::from_millis(300)),
    )
    .await;
    let addr = server.local_addr();
    let a: std::net::SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let b: std::net::SocketAddr = "192.0.2.11:40001".parse().unwrap();
    // The per-address bound counts the address in the header, not the balancer's.
    let first = handshake_after(addr, &proxy_v2(a, addr), "PA1")
        .await
        .unwrap();
    let second = handshake_after(addr, &proxy_v2(a, addr), "PA2").await;
    assert_eq!(status_of(second.unwrap_err()), 503, "a second from {a}");
    let other = handshake_after(addr, &proxy_v2(b, addr), "PB1")
        .await
        .unwrap();
    assert_eq!(server.chargers().len(), 2);
    // A slow header is refused at the handshake timeout, a missing one at once.
    let t0 = std::time::Instant::now();
    assert!(closes_after(addr, b"\r\n\r\n\0\r\nQ", Duration::from_secs(5)).await);
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        closes_after(
            addr,
            b"GET /ocpp/X HTTP/1.1\r\n\r\n",
            Duration::from_secs(5)
        )
        .await
    );
    assert_eq!(
        proxy.refusals(),
        Refusals {
            untrusted: 0,
            malformed: 1,
            timed_out: 1
        }
    );
    drop((first, other));
    server.shutdown().await.unwrap();

    // Only the trusted balancer may send one; the handshake bound holds while it is read.
    let proxy = ProxyProtocol::new(["192.0.2.1".parse().unwrap()]);
    let server = start(
        ServerConfig::new(Auth::AllowAnyone)
            .proxy_protocol(proxy.clone())
            .max_handshakes(1)
            .shutdown_grace(Duration::from_millis(100)),
    )
    .await;
    let addr = server.local_addr();
    assert!(closes_after(addr, &proxy_v2(a, addr), Duration::from_secs(5)).await);
    assert_eq!(proxy.refusals().untrusted, 1);
    // Without a header, a connection from an untrusted address is served as itself.
    let direct = handshake_after(addr, b"", "DIRECT").await.unwrap();
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    eventually(|| server.chargers().len() == 1).await;
    assert!(
        closes_after(addr, b"", Duration::from_secs(5)).await,
        "the silent handshake holds the only place"
    );
    drop(direct);
    server.shutdown().await.unwrap();
}
