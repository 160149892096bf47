//! Bad-input conformance of the charger, over real sockets.
//!
//! A raw WebSocket server on 127.0.0.1 (tokio-tungstenite, no OCPP library on that side: the
//! central system's answers and its bad input are hand-written JSON) is what our charger
//! ([`ws::spawn`] + [`Station`]) connects to, for OCPP 1.6, 2.0.1 and 2.1. Two stations
//! connect; the first starts a transaction and then gets every kind of bad input. Each must get
//! exactly the answer below, and afterwards the connection, the transaction and the second
//! station must carry on: the second station answers promptly throughout (also during the
//! flood), a triggered Heartbeat still goes out, and the transaction ends with its meter stop
//! equal to the meter's register and every transaction message delivered, in order.
//!
//! | input | 1.6 | 2.0.1 | 2.1 |
//! |---|---|---|---|
//! | truncated JSON | `[4,"t1","FormationViolation",..]` | `[4,"t1","RpcFrameworkError",..]` | as 2.0.1 |
//! | JSON object instead of an array | `[4,"-1","FormationViolation",..]` | `[4,"-1","RpcFrameworkError",..]` | as 2.0.1 |
//! | message type 7 | nothing | `[4,id,"MessageTypeNotSupported",..]` | nothing |
//! | unknown action | `NotImplemented` | `NotImplemented` | `NotImplemented` |
//! | an action of the other direction (BootNotification) | `NotSupported` | `NotSupported` | `NotSupported` |
//! | wrong type of a field / of the payload | `TypeConstraintViolation` | same | same |
//! | missing required field | `OccurenceConstraintViolation` | `OccurrenceConstraintViolation` | same |
//! | enum value not in the list | `PropertyConstraintViolation` | same | same |
//! | over-long string | `TypeConstraintViolation` | same | same |
//! | message id of 41 characters | `[4,"-1","FormationViolation",..]` | `[4,"-1","RpcFrameworkError",..]` | as 2.0.1 |
//! | the same CALL id twice in a row | both answered (the first is answered before the second is read) | same | same |
//! | a 2 MiB message (limit 1 MiB) | `[4,id,"FormationViolation",..]` | `[4,id,"FormatViolation",..]` | as 2.0.1 |
//! | a message over 4 times the limit | WebSocket close 1009, then reconnect | same | same |
//! | CALLRESULT / CALLERROR for an id never sent | nothing | nothing | nothing |
//! | binary frame holding a CALL | answered like a text frame | same | same |
//! | binary frame that is not UTF-8 | `[4,"-1","FormationViolation",..]` | `[4,"-1","RpcFrameworkError",..]` | as 2.0.1 |
//! | 10,000 CALLs without waiting | all 10,000 answered, in order | same | same |
//! | a text message that is not UTF-8 (to the second station) | WebSocket close 1007, then reconnect | same | same |
//!
//! The frame-level rows (the same for both sides) are `ocpp_codec::testing::raw`'s, shared
//! with the other side's conformance test; the rows about actions are this side's own.
//!
//! "Nothing" is checked by sending a GetLocalListVersion right after: its answer must be the
//! next answer. The specification references are in `examples/CONFORMANCE.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ocpp_charger::testing::plug_in_and_present;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, ClientHandle};
use ocpp_charger::{
    HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station, StationConfig, StationEvent,
    Version,
};
use ocpp_codec::testing::raw::{
    assert_call_error, error_words, frame_level_bad_input, ErrorWords, Expected,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(15);
const FLOOD: usize = 10_000;

/// What the raw central system saw.
#[derive(Default)]
struct Seen {
    /// (identity, action, payload) of every CALL the stations sent.
    calls: Vec<(String, String, Value)>,
    /// Connections accepted per identity.
    connections: HashMap<String, usize>,
    /// (identity, close code) of the close frames the stations sent.
    closes: Vec<(String, Option<CloseCode>)>,
}

/// The raw central system: answers the stations' CALLs with hand-written JSON, sends whatever
/// the test asks, and hands the stations' answers (CALLRESULT / CALLERROR) to the test.
struct RawCentral {
    url: String,
    seen: Arc<Mutex<Seen>>,
    /// The writer of each identity's current connection.
    writers: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>>,
    answers: HashMap<String, mpsc::UnboundedReceiver<Value>>,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The central system's answer to a station's CALL, by hand.
fn answer(v: Version, action: &str) -> Value {
    let v16 = v == Version::V16;
    match action {
        "BootNotification" => {
            json!({"status": "Accepted", "currentTime": now_text(), "interval": 300})
        }
        "Heartbeat" => json!({"currentTime": now_text()}),
        "Authorize" if v16 => json!({"idTagInfo": {"status": "Accepted"}}),
        "Authorize" => json!({"idTokenInfo": {"status": "Accepted"}}),
        "StartTransaction" => json!({"transactionId": 7, "idTagInfo": {"status": "Accepted"}}),
        "DataTransfer" => json!({"status": "UnknownVendorId"}),
        _ => json!({}),
    }
}

impl RawCentral {
    async fn start(v: Version, identities: &[&str]) -> RawCentral {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ocpp", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let writers: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>> = Arc::default();
        let mut answer_tx = HashMap::new();
        let mut answers = HashMap::new();
        for id in identities {
            let (tx, rx) = mpsc::unbounded_channel();
            answer_tx.insert(id.to_string(), tx);
            answers.insert(id.to_string(), rx);
        }
        let (s, w) = (seen.clone(), writers.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, writers, answer_tx) = (s.clone(), w.clone(), answer_tx.clone());
                tokio::spawn(async move {
                    let mut identity = String::new();
                    #[allow(clippy::result_large_err)] // tungstenite's callback signature
                    let callback = |req: &Request, mut resp: Response| {
                        identity = req.uri().path().rsplit('/').next().unwrap().to_owned();
                        resp.headers_mut().insert(
                            "Sec-WebSocket-Protocol",
                            HeaderValue::from_static(v.subprotocol()),
                        );
                        Ok(resp)
                    };
                    let config = WebSocketConfig::default()
                        .max_message_size(Some(64 << 20))
                        .max_frame_size(Some(64 << 20));
                    let ws = tokio_tungstenite::accept_hdr_async_with_config(
                        stream,
                        callback,
                        Some(config),
                    )
                    .await
                    .unwrap();
                    let (mut sink, mut source) = ws.split();
                    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
                    *seen
                        .lock()
                        .unwrap()
                        .connections
                        .entry(identity.clone())
                        .or_default() += 1;
                    writers.lock().unwrap().insert(identity.clone(), tx.clone());
                    tokio::spawn(async move {
                        while let Some(msg) = rx.recv().await {
                            if sink.feed(msg).await.is_err() {
                                return;
                            }
                            // Write in batches: flush only when nothing else is queued.
                            if rx.is_empty() && sink.flush().await.is_err() {
                                return;
                            }
                        }
                    });
                    while let Some(Ok(msg)) = source.next().await {
                        let text = match msg {
                            Message::Text(t) => t,
                            Message::Close(frame) => {
                                seen.lock()
                                    .unwrap()
                                    .closes
                                    .push((identity.clone(), frame.map(|f| f.code)));
                                return;
                            }
                            _ => continue,
                        };
                        let msg: Value = serde_json::from_str(text.as_str()).unwrap();
                        if msg[0] == 2 {
                            let action = msg[2].as_str().unwrap().to_owned();
                            let reply = json!([3, msg[1], answer(v, &action)]);
                            seen.lock().unwrap().calls.push((
                                identity.clone(),
                                action,
                                msg[3].clone(),
                            ));
                            let _ = tx.send(Message::text(reply.to_string()));
                        } else if let Some(answers) = answer_tx.get(&identity) {
                            let _ = answers.send(msg);
                        }
                    }
                });
            }
        });
        RawCentral {
            url,
            seen,
            writers,
            answers,
        }
    }

    fn send(&self, identity: &str, msg: Message) {
        let writers = self.writers.lock().unwrap();
        writers[identity].send(msg).unwrap();
    }

    fn send_text(&self, identity: &str, text: impl Into<String>) {
        self.send(identity, Message::text(text.into()));
    }

    /// The station's next answer (CALLRESULT / CALLERROR) to one of our CALLs.
    async fn answer(&mut self, identity: &str) -> Value {
        let rx = self.answers.get_mut(identity).unwrap();
        tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{identity} answers in time"))
            .unwrap()
    }

    /// A CALL to the station answered with a CALLRESULT; returns its payload.
    async fn call(&mut self, identity: &str, id: &str, action: &str, payload: Value) -> Value {
        self.send_text(identity, json!([2, id, action, payload]).to_string());
        let reply = self.answer(identity).await;
        assert_eq!((&reply[0], &reply[1]), (&json!(3), &json!(id)), "{reply}");
        reply[2].clone()
    }

    fn calls(&self, identity: &str, action: &str) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        seen.calls
            .iter()
            .filter(|(who, a, _)| who == identity && a == action)
            .map(|(_, _, p)| p.clone())
            .collect()
    }

    fn connections(&self, identity: &str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.connections.get(identity).copied().unwrap_or(0)
    }
}

/// How many transaction messages the station still holds.
async fn outbox_len(client: &ClientHandle) -> usize {
    let (tx, rx) = tokio::sync::oneshot::channel();
    client
        .with(move |station, _| {
            let _ = tx.send(station.outbox_len());
        })
        .unwrap();
    rx.await.unwrap()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn station(identity: &str, v: Version, url: &str) -> ClientHandle {
    let station = Station::new(
        StationConfig::new(identity, v)
            .seed(7)
            .validate_outgoing(true),
        Box::new(SimulatedHardware::new(1, Decimal::from(11_000)).with_register(1000.into())),
        Saved::default(),
        Instant::now(),
    );
    ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(url).backoff(Duration::from_millis(10), Duration::from_millis(50)),
    )
}

struct Case {
    what: &'static str,
    input: Message,
    expect: Expected,
}

fn text(what: &'static str, input: impl Into<String>, expect: Expected) -> Case {
    Case {
        what,
        input: Message::text(input.into()),
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
        r#"[2,"od","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
    } else {
        r#"[2,"od","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#
    };
    let wrong_field_type = if v16 {
        r#"[2,"wt","ChangeAvailability",{"connectorId":"one","type":"Operative"}]"#
    } else {
        r#"[2,"wt","ChangeAvailability",{"operationalStatus":"Operative","evse":{"id":"one"}}]"#
    };
    let missing = if v16 {
        r#"[2,"mr","RemoteStartTransaction",{}]"#
    } else {
        r#"[2,"mr","RequestStartTransaction",{"remoteStartId":1}]"#
    };
    let bad_enum = if v16 {
        r#"[2,"en","ChangeAvailability",{"connectorId":1,"type":"Sideways"}]"#
    } else {
        r#"[2,"en","ChangeAvailability",{"operationalStatus":"Sideways"}]"#
    };
    let mut cases: Vec<Case> = frame_level_bad_input(v, "GetLocalListVersion")
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
        text("missing required field", missing, error("mr", occurrence)),
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
            input: Message::binary(br#"[2,"bin","GetLocalListVersion",{}]"#.to_vec()),
            expect: result("bin"),
        },
        Case {
            what: "binary frame that is not UTF-8",
            input: Message::binary(vec![0x00, 0xff, 0xfe, 0x80]),
            expect: error("-1", rpc),
        },
    ]);
    cases
}

/// Proves nothing was sent for the previous input: the answer to a probe is next.
async fn nothing_before_probe(central: &mut RawCentral, n: &mut usize, what: &str) {
    *n += 1;
    let id = format!("probe-{n}");
    central.send_text("CP-A", format!(r#"[2,"{id}","GetLocalListVersion",{{}}]"#));
    let reply = central.answer("CP-A").await;
    assert_eq!(
        (&reply[0], reply[1].as_str()),
        (&json!(3), Some(id.as_str())),
        "{what}: expected no answer, got {reply}"
    );
}

/// 10,000 CALLs to CP-A without waiting while CP-B keeps being called: all answered in order,
/// and CP-B never waits long.
async fn flood(central: &mut RawCentral, v: Version) {
    let mut a_answers = central.answers.remove("CP-A").unwrap();
    let flood_start = Instant::now();
    for i in 0..FLOOD {
        central.send_text("CP-A", format!(r#"[2,"f{i}","GetLocalListVersion",{{}}]"#));
    }
    let reader = tokio::spawn(async move {
        let (mut answered, mut refused, mut out_of_order) = (0, 0, 0);
        for i in 0..FLOOD {
            let reply = tokio::time::timeout(PATIENCE, a_answers.recv())
                .await
                .expect("the flood is answered in time")
                .unwrap();
            match reply[0].as_i64() {
                Some(3) => answered += 1,
                _ => refused += 1,
            }
            if reply[1] != format!("f{i}").as_str() {
                out_of_order += 1;
            }
        }
        (a_answers, (answered, refused, out_of_order))
    });
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    while !reader.is_finished() || rounds < 3 {
        let start = Instant::now();
        central
            .call(
                "CP-B",
                &format!("b-{rounds}"),
                "GetLocalListVersion",
                json!({}),
            )
            .await;
        slowest = slowest.max(start.elapsed());
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (a_answers, counts) = reader.await.unwrap();
    central.answers.insert("CP-A".into(), a_answers);
    assert_eq!(
        counts,
        (FLOOD, 0, 0),
        "{v}: (answered, refused, out of order) of {FLOOD} CALLs"
    );
    eprintln!(
        "{v}: {FLOOD} CALLs answered in {:?}; the other station's slowest answer meanwhile {slowest:?} ({rounds} calls)",
        flood_start.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(2),
        "{v}: the other station waited {slowest:?} during the flood"
    );
}

/// The Energy.Active.Import.Register reading (Wh) in a 2.x meterValue list, if any.
fn register_wh(meter_values: &Value) -> Option<Decimal> {
    meter_values
        .as_array()?
        .iter()
        .flat_map(|mv| mv["sampledValue"].as_array().cloned().unwrap_or_default())
        .find(|s| {
            s["measurand"]
                .as_str()
                .is_none_or(|m| m == "Energy.Active.Import.Register")
                && s["phase"].is_null()
        })
        .map(|s| {
            let value: Decimal = s["value"].to_string().parse().unwrap();
            let kwh = s["unitOfMeasure"]["unit"] == "kWh";
            if kwh {
                value * Decimal::from(1000)
            } else {
                value
            }
        })
}

async fn conformance(v: Version) {
    let mut central = RawCentral::start(v, &["CP-A", "CP-B"]).await;
    let mut a = station("CP-A", v, &central.url);
    let b = station("CP-B", v, &central.url);
    until("both stations booted", || {
        !central.calls("CP-A", "BootNotification").is_empty()
            && !central.calls("CP-B", "BootNotification").is_empty()
            && !central.calls("CP-A", "StatusNotification").is_empty()
    })
    .await;

    // A transaction on CP-A.
    plug_in_and_present(&a, 1, "TAG").unwrap();
    let (start, stop) = if v == Version::V16 {
        ("StartTransaction", "StopTransaction")
    } else {
        ("TransactionEvent", "TransactionEvent")
    };
    until("the transaction started", || {
        !central.calls("CP-A", start).is_empty()
    })
    .await;

    let mut probes = 0;
    for case in cases(v) {
        central.send("CP-A", case.input);
        match case.expect {
            Expected::Error { id, code } => {
                let reply = central.answer("CP-A").await;
                assert_call_error(&reply, id, code, case.what);
            }
            Expected::Result { id } => {
                let reply = central.answer("CP-A").await;
                assert_eq!((&reply[0], &reply[1]), (&json!(3), &json!(id)), "{reply}");
            }
            Expected::Nothing => {}
        }
        nothing_before_probe(&mut central, &mut probes, case.what).await;
        // The other station is unaffected by each of them.
        central
            .call("CP-B", "b", "GetLocalListVersion", json!({}))
            .await;
    }

    // The same CALL id twice in a row: the station answers each CALL as it reads it, so the
    // first is answered before the second arrives, and the second is a new call.
    let dup = r#"[2,"dup","GetLocalListVersion",{}]"#;
    central.send_text("CP-A", dup);
    central.send_text("CP-A", dup);
    for _ in 0..2 {
        let reply = central.answer("CP-A").await;
        assert_eq!(
            (&reply[0], &reply[1]),
            (&json!(3), &json!("dup")),
            "{reply}"
        );
    }
    nothing_before_probe(&mut central, &mut probes, "the same CALL id twice").await;

    flood(&mut central, v).await;

    // Far beyond the limit, the message is not read: the station closes with 1009 (Message
    // Too Big) and reconnects; its transaction goes on.
    central.send_text(
        "CP-A",
        format!(
            r#"[2,"huge","DataTransfer",{{"vendorId":"V","data":"{}"}}]"#,
            "x".repeat(5 << 20)
        ),
    );
    until("the station reconnected", || {
        central.connections("CP-A") == 2
    })
    .await;
    let closes = central.seen.lock().unwrap().closes.clone();
    assert_eq!(closes, [("CP-A".to_owned(), Some(CloseCode::Size))], "{v}");

    // After everything: the connection works, bad input is still answered, a Heartbeat goes
    // out when asked for.
    let heartbeats = central.calls("CP-A", "Heartbeat").len();
    let trigger = central
        .call(
            "CP-A",
            "trigger",
            "TriggerMessage",
            json!({"requestedMessage": "Heartbeat"}),
        )
        .await;
    assert_eq!(trigger["status"], "Accepted");
    until("the triggered Heartbeat", || {
        central.calls("CP-A", "Heartbeat").len() > heartbeats
    })
    .await;
    central.send_text("CP-A", r#"[2,"late","FlyToTheMoon",{}]"#);
    assert_call_error(
        &central.answer("CP-A").await,
        "late",
        "NotImplemented",
        "after all",
    );

    // The transaction ends; its meter stop is the meter's register, every transaction message
    // was delivered, in order.
    a.hardware(HardwareEvent::CableUnplugged { evse: 1 })
        .unwrap();
    until("the transaction ended", || {
        let stops = central.calls("CP-A", stop);
        if v == Version::V16 {
            !stops.is_empty()
        } else {
            stops.iter().any(|p| p["eventType"] == "Ended")
        }
    })
    .await;
    let start_wait = Instant::now();
    while outbox_len(&a).await > 0 {
        assert!(start_wait.elapsed() < PATIENCE, "{v}: the outbox empties");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while let Ok(event) = a.events.try_recv() {
        match event {
            ClientEvent::Station(StationEvent::InvalidOutgoing { error, .. }) => {
                panic!("{v}: invalid outgoing message {error}")
            }
            ClientEvent::Station(StationEvent::Dropped { action, .. }) => {
                panic!("{v}: {action} dropped")
            }
            _ => {}
        }
    }
    let mut station_a = a.shutdown().await.expect("the task returns the station");
    let register = station_a.hardware_mut().meter(Instant::now(), 1).energy_wh;
    if v == Version::V16 {
        let started = central.calls("CP-A", start);
        let stopped = central.calls("CP-A", stop);
        assert_eq!((started.len(), stopped.len()), (1, 1), "{v}");
        assert_eq!(started[0]["meterStart"], 1000);
        assert_eq!(stopped[0]["transactionId"], 7);
        let meter_stop = Decimal::from(stopped[0]["meterStop"].as_i64().unwrap());
        assert!(meter_stop > Decimal::from(1000), "{v}: it charged");
        assert!(
            (register - meter_stop).abs() < Decimal::ONE,
            "{v}: meterStop {meter_stop} vs register {register}"
        );
    } else {
        // A message in flight when the connection closed may arrive twice (the central
        // system deduplicates by seqNo); the seqNos have no gaps and come in order.
        let mut events = central.calls("CP-A", start);
        events.dedup_by(|a, b| a["seqNo"] == b["seqNo"]);
        let seq: Vec<i64> = events
            .iter()
            .map(|e| e["seqNo"].as_i64().unwrap())
            .collect();
        let expected: Vec<i64> = (0..seq.len() as i64).collect();
        assert_eq!(seq, expected, "{v}: seqNo without gaps, in order");
        assert_eq!(events[0]["eventType"], "Started");
        assert_eq!(events.last().unwrap()["eventType"], "Ended");
        let id = &events[0]["transactionInfo"]["transactionId"];
        assert!(events
            .iter()
            .all(|e| &e["transactionInfo"]["transactionId"] == id));
        let first = register_wh(&events[0]["meterValue"]).expect("a start reading");
        let last = register_wh(&events.last().unwrap()["meterValue"]).expect("an end reading");
        assert_eq!(first, Decimal::from(1000), "{v}");
        assert!(last > first, "{v}: it charged");
        assert_eq!(last, register, "{v}: the end reading is the register");
    }

    // The other station never noticed.
    assert_eq!(central.connections("CP-B"), 1, "{v}");
    central
        .call("CP-B", "b-end", "GetLocalListVersion", json!({}))
        .await;

    // A text message that is not UTF-8 cannot be read: the station closes with 1007 and
    // reconnects.
    let not_utf8 = Frame::message(vec![b'[', 0xff, b']'], OpCode::Data(Data::Text), true);
    central.send("CP-B", Message::Frame(not_utf8));
    until("CP-B reconnected", || central.connections("CP-B") == 2).await;
    let closes = central.seen.lock().unwrap().closes.clone();
    let b_closes: Vec<_> = closes.iter().filter(|(who, _)| who == "CP-B").collect();
    assert_eq!(
        b_closes,
        [&("CP-B".to_owned(), Some(CloseCode::Invalid))],
        "{v}"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_charger_v16() {
    conformance(Version::V16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_charger_v201() {
    conformance(Version::V201).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_charger_v21() {
    conformance(Version::V21).await;
}
