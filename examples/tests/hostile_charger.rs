//! A hostile or merely busy charger against the example central system, over real sockets:
//! the messages that once crashed it into a restart loop or grew it by gigabytes are
//! answered, the process stays up with flat memory, a second charger is served throughout,
//! and a restart on the same database comes back clean (a journal row that cannot be
//! applied is set aside, not replayed into a crash).
//!
//! Waiting is on the answers and the backend's live feed, never on sleeps.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_examples::backend::wait_for;
use ocpp_types::Version;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/api.rs"]
mod api;
use api::Api;

const WAIT: Duration = Duration::from_secs(30);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A charger that sends raw frames and reads raw answers.
struct Raw {
    ws: Ws,
}

impl Raw {
    async fn connect(central: &RunningCentral, identity: &str, version: Version) -> Raw {
        let url = format!("ws://{}/ocpp/{identity}", central.ocpp_addr());
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            version.subprotocol().parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connects");
        Raw { ws }
    }

    /// Sends `frame` and returns the next text frame.
    async fn call(&mut self, frame: &str) -> String {
        self.ws
            .send(Message::Text(frame.to_owned().into()))
            .await
            .expect("send");
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an answer in time")
                .expect("the connection stays open")
                .expect("a frame");
            if let Message::Text(t) = msg {
                return t.as_str().to_owned();
            }
        }
    }

    async fn heartbeat(&mut self, id: &str) {
        let out = self.call(&format!(r#"[2,"{id}","Heartbeat",{{}}]"#)).await;
        assert!(
            out.starts_with(&format!(r#"[3,"{id}",{{"currentTime":"#)),
            "{out}"
        );
    }
}

async fn boot(cp: &mut Raw, version: Version) {
    let frame = match version {
        Version::V16 => {
            r#"[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
        }
        _ => {
            r#"[2,"b","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#
        }
    };
    let out = cp.call(frame).await;
    assert!(out.contains("Accepted"), "{out}");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("central.db").display())
}

#[tokio::test]
async fn v16_energy_beyond_the_largest_decimal_then_a_clean_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir);
    let central = start(&CentralArgs::with_database(url.clone()).ephemeral())
        .await
        .expect("starts");
    let mut feed = central.backend().subscribe();
    let mut a = Raw::connect(&central, "HOSTILE-16", Version::V16).await;
    let mut b = Raw::connect(&central, "BYSTANDER", Version::V16).await;
    boot(&mut a, Version::V16).await;
    boot(&mut b, Version::V16).await;
    let out = a.call(r#"[2,"s","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":-2147483648,"timestamp":"2030-01-01T00:00:00Z"}]"#).await;
    let answer: Value = serde_json::from_str(&out).expect("json");
    let tx = answer[2]["transactionId"].as_i64().expect("transaction id");
    b.heartbeat("b1").await;
    let out = a.call(&format!(r#"[2,"m","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"2030-01-01T00:01:00Z","sampledValue":[{{"value":"79228162514264337593543950335"}}]}}]}}]"#)).await;
    assert_eq!(out, r#"[3,"m",{}]"#);
    let flagged = wait_for(&mut feed, "HOSTILE-16", "out_of_range", WAIT, |_| true)
        .await
        .expect("flagged");
    assert_eq!(flagged["transactionId"], tx.to_string());
    // The connection, the bystander and the API carry on.
    a.heartbeat("a1").await;
    b.heartbeat("b2").await;
    let api = Api::admin(&central).await;
    let (status, sessions) = api.get("/api/sessions?charger=HOSTILE-16").await;
    assert_eq!(status, 200, "{sessions}");
    assert_eq!(sessions.as_array().map(Vec::len), Some(1), "{sessions}");

    // The process dies with the same messages journaled but not projected, and a row that
    // cannot be read at all: the restart applies what it can and sets the rest aside.
    let db = central.backend().db().clone();
    let ocpp = central.ocpp_addr();
    let http = central.http_addr();
    central.shutdown().await.expect("shutdown");
    let meter = format!(
        r#"{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"2030-01-01T00:02:00Z","sampledValue":[{{"value":"79228162514264337593543950335"}}]}}]}}"#
    );
    db.journal_insert("HOSTILE-16", "1.6", "MeterValues", &meter, "{}")
        .await
        .expect("journal");
    db.journal_insert("HOSTILE-16", "1.6", "MeterValues", "{not json", "{}")
        .await
        .expect("journal");
    let mut args = CentralArgs::with_database(url);
    args.ocpp_listen = ocpp.to_string();
    args.http_listen = http.to_string();
    let central = start(&args).await.expect("restarts");
    let api = Api::admin(&central).await;
    let (status, aside) = api.get("/api/journal/set-aside").await;
    assert_eq!(status, 200);
    let aside = aside.as_array().expect("a list").clone();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(aside[0]["request"], "{not json");
    assert!(aside[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("unreadable")));
    let metrics = api.text("/metrics").await;
    assert!(
        metrics.contains("ocpp_journal_set_aside 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("journal"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(db.journal_unprocessed().await.expect("journal").is_empty());
    // 1.6 transaction ids continue after the restart, never from 1 again.
    let mut a = Raw::connect(&central, "HOSTILE-16", Version::V16).await;
    boot(&mut a, Version::V16).await;
    let out = a.call(r#"[2,"s2","StartTransaction",{"connectorId":2,"idTag":"T","meterStart":0,"timestamp":"2030-01-01T01:00:00Z"}]"#).await;
    let answer: Value = serde_json::from_str(&out).expect("json");
    assert!(
        answer[2]["transactionId"].as_i64().expect("id") > tx,
        "{out}"
    );
    central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn v201_a_sequence_gap_of_two_billion_keeps_memory_flat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = start(&CentralArgs::with_database(sqlite_url(&dir)).ephemeral())
        .await
        .expect("starts");
    let mut feed = central.backend().subscribe();
    let mut a = Raw::connect(&central, "HOSTILE-201", Version::V201).await;
    let mut b = Raw::connect(&central, "BYSTANDER-201", Version::V201).await;
    boot(&mut a, Version::V201).await;
    boot(&mut b, Version::V201).await;
    let event = |id: &str, kind: &str, seq: i64| {
        format!(
            r#"[2,"{id}","TransactionEvent",{{"eventType":"{kind}","timestamp":"2030-01-01T00:00:00Z","triggerReason":"Authorized","seqNo":{seq},"transactionInfo":{{"transactionId":"TX-GAP"}},"evse":{{"id":1,"connectorId":1}}}}]"#
        )
    };
    let before = rss_kib();
    assert_eq!(a.call(&event("e0", "Started", 0)).await, r#"[3,"e0",{}]"#);
    assert_eq!(
        a.call(&event("e1", "Updated", 2147483647)).await,
        r#"[3,"e1",{}]"#
    );
    let gap = wait_for(&mut feed, "HOSTILE-201", "sequence_gap", WAIT, |_| true)
        .await
        .expect("the gap is reported");
    assert_eq!(gap["received"], 2147483647);
    b.heartbeat("b1").await;
    // A charger that skips every other number for a while.
    for i in 1..=300 {
        let id = format!("u{i}");
        let out = a.call(&event(&id, "Updated", 2147483647 - 2 * i)).await;
        assert_eq!(out, format!(r#"[3,"{id}",{{}}]"#));
    }
    a.heartbeat("a1").await;
    b.heartbeat("b2").await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    // Before the bounded model, the first gap alone allocated gigabytes.
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");
    let state = central
        .backend()
        .chargers()
        .get("HOSTILE-201")
        .expect("connected")
        .state();
    let tx = &state.transactions["TX-GAP"];
    assert!(tx.seq_gaps.ranges().len() <= ocpp_central::Limits::default().max_sequence_gaps);
    central.shutdown().await.expect("shutdown");
}

/// A transaction message is journaled as the charger sent it, byte for byte (its spacing,
/// field order and number spelling), and the session reads its samples back from that text.
#[tokio::test]
async fn v16_a_transaction_message_is_journaled_as_the_charger_sent_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = start(&CentralArgs::with_database(sqlite_url(&dir)).ephemeral())
        .await
        .expect("starts");
    let mut feed = central.backend().subscribe();
    let mut a = Raw::connect(&central, "VERBATIM-16", Version::V16).await;
    boot(&mut a, Version::V16).await;
    let start = r#"{ "timestamp" : "2030-01-01T02:00:00+02:00", "meterStart": 1000, "idTag":"T", "connectorId": 1 }"#;
    let out = a
        .call(&format!(r#"[2,"s",  "StartTransaction",{start}]"#))
        .await;
    let answer: Value = serde_json::from_str(&out).expect("json");
    let tx = answer[2]["transactionId"].as_i64().expect("transaction id");
    let meter = format!(
        r#"{{"meterValue":[ {{"sampledValue":[{{"unit":"Wh","measurand":"Energy.Active.Import.Register","value":"1500.250"}}],"timestamp":"2030-01-01T00:05:00Z"}} ],"transactionId":{tx} , "connectorId":1}}"#
    );
    assert_eq!(
        a.call(&format!(r#"[2,"m","MeterValues",{meter}]"#)).await,
        r#"[3,"m",{}]"#
    );
    wait_for(
        &mut feed,
        "VERBATIM-16",
        "transaction_updated",
        WAIT,
        |_| true,
    )
    .await
    .expect("projected");
    central.backend().flush().await;
    let api = Api::admin(&central).await;
    let (status, sessions) = api.get("/api/sessions?charger=VERBATIM-16").await;
    assert_eq!(status, 200, "{sessions}");
    let session = sessions[0]["id"].as_i64().expect("session id");
    let rows = central
        .backend()
        .db()
        .session_journal(session)
        .await
        .expect("journal");
    let texts: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.request.as_str()))
        .collect();
    assert_eq!(
        texts,
        [("StartTransaction", start), ("MeterValues", meter.as_str())]
    );
    let (status, s) = api.get(&format!("/api/sessions/{session}")).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["energyWhExact"], "500.250", "{s}");
    assert_eq!(s["samples"].as_array().map(Vec::len), Some(1), "{s}");
    central.shutdown().await.expect("shutdown");
}
