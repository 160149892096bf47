//! Bad-input conformance of the central system, over real sockets.
//!
//! A raw WebSocket client (tokio-tungstenite, no OCPP library on that side: every message is
//! hand-written JSON) connects to our [`Server`] on 127.0.0.1 for OCPP 1.6, 2.0.1 and 2.1,
//! starts a transaction, and then sends every kind of bad input. Each must get exactly the
//! answer below, and afterwards the connection, its transaction and a second charger connected
//! alongside must carry on: the transaction ends with the right energy, the second charger's
//! Heartbeats are answered throughout (also during the flood), and a Heartbeat on the first
//! connection is still answered.
//!
//! | input | 1.6 | 2.0.1 | 2.1 |
//! |---|---|---|---|
//! | truncated JSON `[2,"t1","Heartbeat",{` | `[4,"t1","FormationViolation",..]` | `[4,"t1","RpcFrameworkError",..]` | as 2.0.1 |
//! | JSON object instead of an array | `[4,"-1","FormationViolation",..]` | `[4,"-1","RpcFrameworkError",..]` | as 2.0.1 |
//! | message type 7 | nothing | `[4,id,"MessageTypeNotSupported",..]` | nothing |
//! | unknown action | `NotImplemented` | `NotImplemented` | `NotImplemented` |
//! | an action of the other direction | `NotSupported` | `NotSupported` | `NotSupported` |
//! | wrong type of a field / of the payload | `TypeConstraintViolation` | same | same |
//! | missing required field | `OccurenceConstraintViolation` | `OccurrenceConstraintViolation` | same |
//! | enum value not in the list | `PropertyConstraintViolation` | same | same |
//! | over-long string | `TypeConstraintViolation` | same | same |
//! | message id of 41 characters | `[4,"-1","FormationViolation",..]` | `[4,"-1","RpcFrameworkError",..]` | as 2.0.1 |
//! | same CALL id while the first is being handled | the first's answer, then `[4,id,"FormationViolation",..]` | the answer, then `[4,id,"RpcFrameworkError",..]` | as 2.0.1 |
//! | same CALL id again after it was answered | answered again | answered again | answered again |
//! | a 2 MiB message (limit 1 MiB) | `[4,id,"FormationViolation",..]` | `[4,id,"FormatViolation",..]` | as 2.0.1 |
//! | a message over 4 times the limit | WebSocket close 1009 | close 1009 | close 1009 |
//! | CALLRESULT for an id never sent | nothing | nothing | nothing |
//! | binary frame holding a CALL | answered like a text frame | same | same |
//! | binary frame that is not UTF-8 | `[4,"-1","FormationViolation",..]` | `[4,"-1","RpcFrameworkError",..]` | as 2.0.1 |
//! | 10,000 CALLs without waiting | all 10,000 answered, in order, none refused | same | same |
//! | a text message that is not UTF-8 | WebSocket close 1007 | close 1007 | close 1007 |
//!
//! The frame-level rows (the same for both sides) are `ocpp_codec::testing::raw`'s, shared
//! with the other side's conformance test; the rows about actions are this side's own.
//!
//! "Nothing" is checked by sending a Heartbeat right after: its answer must be the next
//! message. The specification references for every row are in `examples/CONFORMANCE.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ocpp_central::ocpp_types::{v16, v201, v21, Decimal, Version};
use ocpp_central::{
    async_trait, Auth, CallFailure, ChargerHandle, Event, HandleV16, HandleV201, HandleV21,
    Handler, Server, ServerConfig, Transaction,
};
use ocpp_codec::testing::raw::{
    assert_call_error, error_words, frame_level_bad_input, ErrorWords, Expected,
};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the DataTransfer handler takes for vendor "slow" (to hold a CALL "being handled").
const SLOW: Duration = Duration::from_millis(300);
/// How long any single answer may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);
const FLOOD: usize = 10_000;

/// A central system that persists running transactions (as a real one does in its database),
/// so a transaction survives a closed connection, and records the transactions that ended.
#[derive(Default)]
struct App {
    running: Mutex<HashMap<(String, String), Transaction>>,
    ended: Mutex<Vec<(String, Transaction)>>,
    disconnects: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl Handler for App {
    fn v16(&self) -> Option<&dyn HandleV16> {
        Some(self)
    }

    fn v201(&self) -> Option<&dyn HandleV201> {
        Some(self)
    }

    fn v21(&self) -> Option<&dyn HandleV21> {
        Some(self)
    }

    async fn on_event(&self, charger: &ChargerHandle, event: &Event) {
        let who = charger.identity().to_owned();
        match event {
            Event::TransactionStarted { transaction, .. }
            | Event::TransactionUpdated { transaction, .. } => {
                self.running
                    .lock()
                    .unwrap()
                    .insert((who, transaction.id.clone()), transaction.clone());
            }
            Event::TransactionEnded { transaction, .. } => {
                self.running
                    .lock()
                    .unwrap()
                    .remove(&(who.clone(), transaction.id.clone()));
                self.ended.lock().unwrap().push((who, transaction.clone()));
            }
            Event::Disconnected { .. } => {
                *self.disconnects.lock().unwrap().entry(who).or_default() += 1;
            }
            _ => {}
        }
    }

    async fn restore_transactions(&self, identity: &str, _: Version) -> Vec<Transaction> {
        let running = self.running.lock().unwrap();
        running
            .iter()
            .filter(|((who, _), _)| who == identity)
            .map(|(_, tx)| tx.clone())
            .collect()
    }
}

#[async_trait]
impl HandleV16 for App {
    async fn data_transfer(
        &self,
        charger: &ChargerHandle,
        request: v16::DataTransferRequest,
    ) -> Result<v16::DataTransferResponse, CallFailure> {
        if request.vendor_id.as_str() == "slow" {
            tokio::time::sleep(SLOW).await;
        }
        charger.defaults().typed(&request)
    }
}

#[async_trait]
impl HandleV201 for App {
    async fn data_transfer(
        &self,
        charger: &ChargerHandle,
        request: v201::DataTransferRequest,
    ) -> Result<v201::DataTransferResponse, CallFailure> {
        if request.vendor_id.as_str() == "slow" {
            tokio::time::sleep(SLOW).await;
        }
        charger.defaults().typed(&request)
    }
}

#[async_trait]
impl HandleV21 for App {
    async fn data_transfer(
        &self,
        charger: &ChargerHandle,
        request: v21::DataTransferRequest,
    ) -> Result<v21::DataTransferResponse, CallFailure> {
        if request.vendor_id.as_str() == "slow" {
            tokio::time::sleep(SLOW).await;
        }
        charger.defaults().typed(&request)
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The raw charger: a WebSocket and nothing else.
struct Raw {
    ws: Ws,
    probes: usize,
}

impl Raw {
    async fn connect(addr: SocketAddr, identity: &str, version: Version) -> Raw {
        let mut request = format!("ws://{addr}/ocpp/{identity}")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            version.subprotocol().parse().unwrap(),
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let (ws, response) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                .await
                .unwrap();
        assert_eq!(
            response.headers()["Sec-WebSocket-Protocol"],
            version.subprotocol()
        );
        Raw { ws, probes: 0 }
    }

    async fn send(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    /// The next data or close message (pings and pongs skipped); `None` when the connection
    /// ended without a close frame.
    async fn next(&mut self) -> Option<Message> {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the central system answers in time");
            match msg {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => return Some(m),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next text message as JSON.
    async fn reply(&mut self) -> Value {
        match self.next().await {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// A CALL answered with a CALLRESULT; returns its payload.
    async fn call(&mut self, id: &str, action: &str, payload: Value) -> Value {
        self.send(json!([2, id, action, payload]).to_string()).await;
        let reply = self.reply().await;
        assert_eq!(reply[0], 3, "{action}: {reply}");
        assert_eq!(reply[1], id, "{action}: {reply}");
        reply[2].clone()
    }

    /// Proves nothing was sent for the previous input: a Heartbeat's answer is next.
    async fn nothing_before_probe(&mut self, what: &str) {
        self.probes += 1;
        let id = format!("probe-{}", self.probes);
        self.send(format!(r#"[2,"{id}","Heartbeat",{{}}]"#)).await;
        let reply = self.reply().await;
        assert_eq!(
            (&reply[0], reply[1].as_str()),
            (&json!(3), Some(id.as_str())),
            "{what}: expected no answer, got {reply}"
        );
    }
}

enum Input {
    Text(String),
    Binary(Vec<u8>),
}

struct Case {
    what: &'static str,
    input: Input,
    expect: Expected,
}

fn text(what: &'static str, input: impl Into<String>, expect: Expected) -> Case {
    Case {
        what,
        input: Input::Text(input.into()),
        expect,
    }
}

fn cases(v: Version) -> Vec<Case> {
    let (error, result) = (Expected::error, Expected::result);
    let ErrorWords {
        format,
        occurrence,
        rpc_framework: rpc,
    } = error_words(v);
    let v16 = v == Version::V16;
    let other_direction = if v16 {
        r#"[2,"od","RemoteStartTransaction",{"idTag":"T"}]"#
    } else {
        r#"[2,"od","RequestStartTransaction",{"idToken":{"idToken":"T","type":"ISO14443"},"remoteStartId":1}]"#
    };
    let wrong_field_type = if v16 {
        r#"[2,"wt","Authorize",{"idTag":42}]"#
    } else {
        r#"[2,"wt","Authorize",{"idToken":{"idToken":42,"type":"ISO14443"}}]"#
    };
    let bad_enum = if v16 {
        r#"[2,"en","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Exploded"}]"#
    } else {
        r#"[2,"en","StatusNotification",{"timestamp":"2025-01-01T00:00:00Z","connectorStatus":"Exploded","evseId":1,"connectorId":1}]"#
    };
    let mut cases: Vec<Case> = frame_level_bad_input(v, "Heartbeat")
        .into_iter()
        .map(|bad| text(bad.what, bad.text, bad.expect))
        .collect();
    cases.extend([
        text(
            "an action of the other direction",
            other_direction,
            error("od", "NotSupported"),
        ),
        text(
            "wrong type of a field",
            wrong_field_type,
            error("wt", "TypeConstraintViolation"),
        ),
        text(
            "missing required field",
            r#"[2,"mr","Authorize",{}]"#,
            error("mr", occurrence),
        ),
        text(
            "enum value not in the list",
            bad_enum,
            error("en", "PropertyConstraintViolation"),
        ),
        text(
            "over-long string",
            format!(
                r#"[2,"ol","DataTransfer",{{"vendorId":"{}"}}]"#,
                "v".repeat(256)
            ),
            error("ol", "TypeConstraintViolation"),
        ),
        text(
            "a 2 MiB message",
            format!(
                r#"[2,"big","DataTransfer",{{"vendorId":"V","data":"{}"}}]"#,
                "x".repeat(2 << 20)
            ),
            error("big", format),
        ),
        Case {
            what: "binary frame holding a CALL",
            input: Input::Binary(br#"[2,"bin","Heartbeat",{}]"#.to_vec()),
            expect: result("bin"),
        },
        Case {
            what: "binary frame that is not UTF-8",
            input: Input::Binary(vec![0x00, 0xff, 0xfe, 0x80]),
            expect: error("-1", rpc),
        },
    ]);
    cases
}

fn boot(v: Version) -> Value {
    if v == Version::V16 {
        json!({"chargePointVendor": "V", "chargePointModel": "M"})
    } else {
        json!({"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}})
    }
}

/// A transaction driven by hand, version by version: start at 1000 Wh, readings, end at
/// 3500 Wh, so its energy is 2500 Wh.
struct Tx {
    version: Version,
    id: String,
    seq: i64,
}

impl Tx {
    async fn start(raw: &mut Raw, version: Version) -> Tx {
        if version == Version::V16 {
            let answer = raw
                .call(
                    "start",
                    "StartTransaction",
                    json!({"connectorId": 1, "idTag": "TAG", "meterStart": 1000,
                           "timestamp": "2025-01-01T00:00:00Z"}),
                )
                .await;
            let id = answer["transactionId"].as_i64().expect("a transaction id");
            Tx {
                version,
                id: id.to_string(),
                seq: 0,
            }
        } else {
            let mut tx = Tx {
                version,
                id: "TX-1".into(),
                seq: 0,
            };
            tx.event(raw, "Started", 1000).await;
            tx
        }
    }

    async fn event(&mut self, raw: &mut Raw, kind: &str, wh: i64) {
        let seq = self.seq;
        self.seq += 1;
        let ts = format!("2025-01-01T00:{:02}:00Z", seq.min(59));
        let answer = raw
            .call(
                &format!("te-{seq}"),
                "TransactionEvent",
                json!({
                    "eventType": kind, "timestamp": ts, "triggerReason": "MeterValuePeriodic",
                    "seqNo": seq, "transactionInfo": {"transactionId": self.id},
                    "evse": {"id": 1, "connectorId": 1},
                    "idToken": {"idToken": "TAG", "type": "ISO14443"},
                    "meterValue": [{"timestamp": ts, "sampledValue": [
                        {"value": wh, "unitOfMeasure": {"unit": "Wh"}}]}]
                }),
            )
            .await;
        assert!(answer.is_object());
    }

    async fn reading(&mut self, raw: &mut Raw, wh: i64) {
        if self.version == Version::V16 {
            self.seq += 1;
            raw.call(
                &format!("mv-{}", self.seq),
                "MeterValues",
                json!({"connectorId": 1, "transactionId": self.id.parse::<i64>().unwrap(),
                       "meterValue": [{"timestamp": "2025-01-01T00:10:00Z", "sampledValue": [
                           {"value": wh.to_string(), "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh"}]}]}),
            )
            .await;
        } else {
            self.event(raw, "Updated", wh).await;
        }
    }

    async fn end(&mut self, raw: &mut Raw, wh: i64) {
        if self.version == Version::V16 {
            raw.call(
                "stop",
                "StopTransaction",
                json!({"transactionId": self.id.parse::<i64>().unwrap(), "meterStop": wh,
                       "timestamp": "2025-01-01T01:00:00Z"}),
            )
            .await;
        } else {
            self.event(raw, "Ended", wh).await;
        }
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// 10,000 Heartbeats without waiting on `raw`, while `other` (another charger) keeps calling:
/// all answered in order, none refused, and `other` never waits long.
async fn flood(raw: Raw, other: &mut Raw, v: Version) -> Raw {
    let Raw { ws, probes } = raw;
    let flood_start = Instant::now();
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..FLOOD {
            tx.feed(Message::text(format!(r#"[2,"f{i}","Heartbeat",{{}}]"#)))
                .await
                .unwrap();
        }
        tx.flush().await.unwrap();
        tx
    });
    let reader = tokio::spawn(async move {
        // (answers, refusals, answers out of order)
        let (mut answered, mut refused, mut out_of_order) = (0, 0, 0);
        for i in 0..FLOOD {
            let msg = tokio::time::timeout(PATIENCE, rx.next())
                .await
                .expect("the flood is answered in time");
            let Some(Ok(Message::Text(t))) = msg else {
                panic!("flood {i}: {msg:?}");
            };
            let reply: Value = serde_json::from_str(t.as_str()).unwrap();
            match reply[0].as_i64() {
                Some(3) => answered += 1,
                _ => refused += 1,
            }
            if reply[1] != format!("f{i}").as_str() {
                out_of_order += 1;
            }
        }
        (rx, (answered, refused, out_of_order))
    });
    // The other charger is served while the flood is processed.
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    while !reader.is_finished() || rounds < 3 {
        let start = Instant::now();
        let answer = other
            .call(&format!("other-{rounds}"), "Heartbeat", json!({}))
            .await;
        assert!(answer["currentTime"].is_string());
        slowest = slowest.max(start.elapsed());
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tx = writer.await.unwrap();
    let (rx, counts) = reader.await.unwrap();
    assert_eq!(
        counts,
        (FLOOD, 0, 0),
        "{v}: (answered, refused, out of order) of {FLOOD} CALLs"
    );
    eprintln!(
        "{v}: {FLOOD} CALLs answered in {:?}; the other charger's slowest answer meanwhile {slowest:?} ({rounds} calls)",
        flood_start.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(2),
        "{v}: the other charger waited {slowest:?} during the flood"
    );
    Raw {
        ws: tx.reunite(rx).unwrap(),
        probes,
    }
}

async fn conformance(v: Version) {
    let app = Arc::new(App::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(
        ServerConfig::new(Auth::AllowAnyone)
            .versions([v])
            .ping_interval(None),
        app.clone(),
    )
    .start(listener)
    .unwrap();
    let addr = server.local_addr();
    let ErrorWords {
        occurrence,
        rpc_framework: rpc,
        ..
    } = error_words(v);

    let mut cp = Raw::connect(addr, "CP-A", v).await;
    let mut other = Raw::connect(addr, "CP-B", v).await;
    assert_eq!(
        cp.call("boot", "BootNotification", boot(v)).await["status"],
        "Accepted"
    );
    assert_eq!(
        other.call("boot", "BootNotification", boot(v)).await["status"],
        "Accepted"
    );
    let mut tx = Tx::start(&mut cp, v).await;
    tx.reading(&mut cp, 1500).await;

    for case in cases(v) {
        match case.input {
            Input::Text(t) => cp.send(t).await,
            Input::Binary(b) => cp.ws.send(Message::binary(b)).await.unwrap(),
        }
        match case.expect {
            Expected::Error { id, code } => {
                let reply = cp.reply().await;
                assert_call_error(&reply, id, code, case.what);
                cp.nothing_before_probe(case.what).await;
            }
            Expected::Result { id } => {
                let reply = cp.reply().await;
                assert_eq!((&reply[0], &reply[1]), (&json!(3), &json!(id)), "{reply}");
                cp.nothing_before_probe(case.what).await;
            }
            Expected::Nothing => cp.nothing_before_probe(case.what).await,
        }
        // The other charger is unaffected by each of them.
        let hb = other.call("hb", "Heartbeat", json!({})).await;
        assert!(hb["currentTime"].is_string(), "{}", case.what);
    }

    // The same CALL id while the first is still being handled: the one answer, then a
    // CALLERROR for the copy.
    let dup = r#"[2,"dup","DataTransfer",{"vendorId":"slow"}]"#;
    cp.send(dup).await;
    cp.send(dup).await;
    let first = cp.reply().await;
    assert_eq!(
        (&first[0], &first[1]),
        (&json!(3), &json!("dup")),
        "{first}"
    );
    assert_eq!(first[2]["status"], "UnknownVendorId");
    assert_call_error(&cp.reply().await, "dup", rpc, "the same CALL id twice");
    cp.nothing_before_probe("the same CALL id twice").await;
    // The same id again after it was answered is a new call (a retry, 2.1 part 4 §4.1.4).
    for _ in 0..2 {
        cp.call("again", "Heartbeat", json!({})).await;
    }

    // A flood of CALLs without waiting.
    cp = flood(cp, &mut other, v).await;

    // The connection and its transaction carry on.
    tx.reading(&mut cp, 2000).await;
    assert!(cp.call("hb", "Heartbeat", json!({})).await["currentTime"].is_string());
    cp.send(r#"[2,"late","Authorize",{}]"#).await;
    assert_call_error(&cp.reply().await, "late", occurrence, "after the flood");

    // Far beyond the limit, the message is not read: WebSocket close 1009 (Message Too Big).
    let huge = format!(
        r#"[2,"huge","DataTransfer",{{"vendorId":"V","data":"{}"}}]"#,
        "x".repeat(5 << 20)
    );
    let (mut w, mut r) = cp.ws.split();
    let sending = tokio::spawn(async move {
        let _ = w.send(Message::text(huge)).await;
    });
    let close = loop {
        match tokio::time::timeout(PATIENCE, r.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Size));
    let _ = sending.await;
    eventually("the close seen by the application", || {
        app.disconnects.lock().unwrap().get("CP-A") == Some(&1)
    })
    .await;

    // The charger reconnects; its transaction goes on where it was and ends with the right
    // energy.
    let mut cp = Raw::connect(addr, "CP-A", v).await;
    assert!(cp.call("hb", "Heartbeat", json!({})).await["currentTime"].is_string());
    tx.reading(&mut cp, 3000).await;
    tx.end(&mut cp, 3500).await;
    eventually("the transaction ended", || {
        !app.ended.lock().unwrap().is_empty()
    })
    .await;
    let ended = app.ended.lock().unwrap().clone();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].0, "CP-A");
    assert_eq!(ended[0].1.id, tx.id);
    assert_eq!(ended[0].1.energy_wh, Decimal::from(2500), "{v}");

    // The other charger never noticed.
    assert!(other.call("hb", "Heartbeat", json!({})).await["currentTime"].is_string());
    assert_eq!(app.disconnects.lock().unwrap().get("CP-B"), None);
    let chargers = server.chargers().clone();
    assert_eq!(chargers.len(), 2);

    // A text message that is not UTF-8 cannot be read either: close 1007.
    let not_utf8 = Frame::message(vec![b'[', 0xff, b']'], OpCode::Data(Data::Text), true);
    cp.ws.send(Message::Frame(not_utf8)).await.unwrap();
    match cp.next().await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Invalid),
        other => panic!("expected close 1007, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_central_system_v16() {
    conformance(Version::V16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_central_system_v201() {
    conformance(Version::V201).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_central_system_v21() {
    conformance(Version::V21).await;
}
