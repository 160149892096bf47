//! OCPP 2.1 periodic event streams on the station, on virtual time: the open after a
//! monitor with `periodicEventStream`, the NotifyPeriodicEventStream SENDs at the `values`
//! and `interval` bounds, Get / Adjust with their statuses, the close when the monitor is
//! cleared, a refused open, samples held offline (bounded) and a restart.

use std::time::Duration;

use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, StreamStatus, Version, MAX_STREAMS, MAX_STREAM_BACKLOG};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn connected_with(store: MemoryStore, clock: TestClock, central: MockCentral) -> VirtualPair {
    let cfg = test_config(Version::V21, &clock);
    let mut pair = VirtualPair::with(cfg, Box::new(store), central, clock);
    pair.connect();
    pair
}

fn connected() -> VirtualPair {
    connected_with(
        MemoryStore::new(),
        TestClock::new(),
        MockCentral::new(Version::V21),
    )
}

fn result(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("no result for {id}: {other:?}"),
    }
}

/// A 1 s periodic monitor on EVSE 1's power, streamed with `params`; returns its id.
fn stream_monitor(pair: &mut VirtualPair, params: Value) -> i64 {
    let id = pair.central_call(
        "SetVariableMonitoring",
        json!({ "setMonitoringData": [{
            "component": { "name": "EVSE", "evse": { "id": 1 } },
            "variable": { "name": "Power" },
            "type": "Periodic",
            "value": 1,
            "severity": 5,
            "periodicEventStream": params,
        }]}),
    );
    let r = result(pair, &id);
    assert_eq!(r["setMonitoringResult"][0]["status"], "Accepted", "{r}");
    r["setMonitoringResult"][0]["id"].as_i64().unwrap()
}

fn sends(pair: &VirtualPair) -> Vec<Value> {
    pair.central
        .sends
        .iter()
        .filter(|(a, _)| a == "NotifyPeriodicEventStream")
        .map(|(_, p)| p.clone())
        .collect()
}

fn samples(pair: &VirtualPair) -> usize {
    sends(pair)
        .iter()
        .map(|p| p["data"].as_array().unwrap().len())
        .sum()
}

fn charging(pair: &mut VirtualPair) {
    pair.plug_in(1);
    pair.present(1, "TAG");
}

#[test]
fn a_stream_opens_and_sends_every_values_samples() {
    let mut pair = connected();
    charging(&mut pair);
    let id = stream_monitor(&mut pair, json!({ "values": 5 }));
    let opens = pair.central.payloads("OpenPeriodicEventStream");
    assert_eq!(opens.len(), 1);
    assert_eq!(
        *opens[0],
        json!({ "constantStreamData": { "id": id, "variableMonitoringId": id, "params": { "values": 5 } } })
    );
    assert_eq!(pair.station.streams()[0].status, StreamStatus::Open);

    pair.advance(Duration::from_secs(4));
    assert!(sends(&pair).is_empty());
    pair.advance(Duration::from_secs(1));
    let s = sends(&pair);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["id"], id);
    assert_eq!(s[0]["pending"], 0);
    let data = s[0]["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    let offsets: Vec<Decimal> = data
        .iter()
        .map(|d| d["t"].to_string().parse().unwrap())
        .collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4].map(Decimal::from));
    assert!(data.iter().all(|d| d["v"] == "7400"), "{data:?}");

    pair.advance(Duration::from_secs(10));
    assert_eq!(sends(&pair).len(), 3);
    // The monitor's events went to the stream, never to NotifyEvent.
    assert!(pair
        .central
        .payloads("NotifyEvent")
        .iter()
        .all(|p| p["eventData"][0]["variableMonitoringId"] != id));
    // The frames were SENDs (message type 6) and valid.
    assert!(pair
        .station_sent
        .iter()
        .any(|t| t.starts_with("[6,") && t.contains("NotifyPeriodicEventStream")));
    pair.assert_no_invalid_outgoing();
}

#[test]
fn an_interval_sends_what_is_held() {
    let mut pair = connected();
    charging(&mut pair);
    stream_monitor(&mut pair, json!({ "interval": 10 }));
    pair.advance(Duration::from_secs(10));
    assert!(sends(&pair).is_empty());
    // The first sample came at 1 s: its interval ends at 11 s (samples of 1 to 11 s).
    pair.advance(Duration::from_secs(1));
    assert_eq!(sends(&pair).len(), 1);
    assert_eq!(samples(&pair), 11);
    // Then every 10 s from the last send.
    pair.advance(Duration::from_secs(9));
    assert_eq!(sends(&pair).len(), 1);
    pair.advance(Duration::from_secs(1));
    assert_eq!(sends(&pair).len(), 2);
    pair.advance(Duration::from_secs(20));
    assert_eq!(sends(&pair).len(), 4);
    assert_eq!(samples(&pair), 41);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn get_and_adjust_answer_per_stream() {
    let mut pair = connected();
    charging(&mut pair);
    let id = stream_monitor(&mut pair, json!({ "values": 5 }));

    let q = pair.central_call("GetPeriodicEventStream", json!({}));
    assert_eq!(
        result(&pair, &q),
        json!({ "constantStreamData": [{ "id": id, "variableMonitoringId": id, "params": { "values": 5 } }] })
    );

    let q = pair.central_call(
        "AdjustPeriodicEventStream",
        json!({ "id": 999, "params": { "values": 2 } }),
    );
    assert_eq!(
        result(&pair, &q),
        json!({ "status": "Rejected", "statusInfo": { "reasonCode": "UnknownStream" } })
    );
    let q = pair.central_call(
        "AdjustPeriodicEventStream",
        json!({ "id": id, "params": { "interval": 86_401 } }),
    );
    assert_eq!(
        result(&pair, &q),
        json!({ "status": "Rejected", "statusInfo": { "reasonCode": "InvalidParams" } })
    );
    let q = pair.central_call(
        "AdjustPeriodicEventStream",
        json!({ "id": id, "params": { "values": 2 } }),
    );
    assert_eq!(result(&pair, &q), json!({ "status": "Accepted" }));
    pair.advance(Duration::from_secs(6));
    let s = sends(&pair);
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(s.iter().all(|p| p["data"].as_array().unwrap().len() == 2));

    // A schema violation is refused before any handler runs.
    let q = pair.central_call(
        "AdjustPeriodicEventStream",
        json!({ "id": id, "params": { "values": -1 } }),
    );
    assert_eq!(
        pair.central.answer(&q),
        Some(&Err("PropertyConstraintViolation".to_owned()))
    );
    assert!(pair.central.answer(&q).unwrap().is_err());
    assert_eq!(pair.station.streams()[0].params.values, Some(2));
}

#[test]
fn clearing_the_monitor_closes_the_stream() {
    let mut pair = connected();
    charging(&mut pair);
    let id = stream_monitor(&mut pair, json!({ "values": 3 }));
    pair.advance(Duration::from_secs(3));
    assert_eq!(sends(&pair).len(), 1);
    let q = pair.central_call("ClearVariableMonitoring", json!({ "id": [id] }));
    assert_eq!(
        result(&pair, &q)["clearMonitoringResult"][0]["status"],
        "Accepted"
    );
    assert_eq!(
        pair.central.payloads("ClosePeriodicEventStream"),
        [&json!({ "id": id })]
    );
    assert!(pair.station.streams().is_empty());
    pair.advance(Duration::from_secs(30));
    assert_eq!(sends(&pair).len(), 1);
    let q = pair.central_call("GetPeriodicEventStream", json!({}));
    assert_eq!(result(&pair, &q), json!({}));
    pair.assert_no_invalid_outgoing();
}

#[test]
fn a_refused_open_falls_back_to_notify_event() {
    let mut central = MockCentral::new(Version::V21);
    central.replies.insert(
        "OpenPeriodicEventStream".into(),
        r#"{"status":"Rejected"}"#.into(),
    );
    let mut pair = connected_with(MemoryStore::new(), TestClock::new(), central);
    charging(&mut pair);
    let id = stream_monitor(&mut pair, json!({ "values": 3 }));
    assert!(pair.station.streams().is_empty());
    pair.advance(Duration::from_secs(3));
    assert!(sends(&pair).is_empty());
    let periodic = pair
        .central
        .payloads("NotifyEvent")
        .iter()
        .filter(|p| p["eventData"][0]["variableMonitoringId"] == id)
        .count();
    assert_eq!(periodic, 3);
}

#[test]
fn a_failed_open_is_retried_later() {
    let mut central = MockCentral::new(Version::V21);
    central.failing.insert("OpenPeriodicEventStream".into());
    let mut pair = connected_with(MemoryStore::new(), TestClock::new(), central);
    stream_monitor(&mut pair, json!({ "values": 3 }));
    assert_eq!(pair.central.actions_named("OpenPeriodicEventStream"), 1);
    assert_eq!(pair.station.streams()[0].status, StreamStatus::ToOpen);
    pair.advance(Duration::from_secs(59));
    assert_eq!(pair.central.actions_named("OpenPeriodicEventStream"), 1);
    pair.central.failing.clear();
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.central.actions_named("OpenPeriodicEventStream"), 2);
    assert_eq!(pair.station.streams()[0].status, StreamStatus::Open);
}

#[test]
fn offline_samples_are_held_bounded_and_sent_on_reconnect() {
    let mut pair = connected();
    charging(&mut pair);
    let id = stream_monitor(&mut pair, json!({ "values": 100 }));
    pair.disconnect();
    let extra = 50;
    pair.advance(Duration::from_secs(MAX_STREAM_BACKLOG as u64 + extra));
    let info = &pair.station.streams()[0];
    assert_eq!(info.held, MAX_STREAM_BACKLOG);
    assert_eq!(info.dropped, extra);
    pair.connect();
    let s = sends(&pair);
    // 1000 held, 100 a message: ten messages with a falling `pending`.
    assert_eq!(s.len(), MAX_STREAM_BACKLOG / 100);
    assert_eq!(s[0]["pending"], MAX_STREAM_BACKLOG - 100);
    assert_eq!(s[9]["pending"], 0);
    assert!(s.iter().all(|p| p["id"] == id));
    assert_eq!(pair.station.streams()[0].held, 0);
}

#[test]
fn streams_survive_a_restart() {
    let store = MemoryStore::new();
    let clock = TestClock::new();
    let mut pair = connected_with(store.clone(), clock, MockCentral::new(Version::V21));
    charging(&mut pair);
    let id = stream_monitor(&mut pair, json!({ "values": 4 }));
    pair.advance(Duration::from_secs(6));
    assert_eq!(sends(&pair).len(), 1);
    assert_eq!(pair.station.streams()[0].held, 2);
    drop(pair);

    let mut pair = connected_with(store, clock, MockCentral::new(Version::V21));
    let info = &pair.station.streams()[0];
    assert_eq!(
        (info.id as i64, info.status, info.held),
        (id, StreamStatus::Open, 2)
    );
    // Not opened again; the held samples go out with the next ones.
    assert_eq!(pair.central.actions_named("OpenPeriodicEventStream"), 0);
    charging(&mut pair);
    pair.advance(Duration::from_secs(2));
    let s = sends(&pair);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["data"].as_array().unwrap().len(), 4);
}

#[test]
fn streams_are_bounded_and_parameters_checked() {
    let mut pair = connected();
    let item = |var: &str, severity: i64, params: Value| {
        json!({
            "component": { "name": "OCPPCommCtrlr" },
            "variable": { "name": var },
            "type": "Delta",
            "value": 1,
            "severity": severity,
            "periodicEventStream": params,
        })
    };
    // Bad parameters: Rejected.
    let q = pair.central_call(
        "SetVariableMonitoring",
        json!({ "setMonitoringData": [item("HeartbeatInterval", 0, json!({ "interval": 86_401 }))] }),
    );
    assert_eq!(
        result(&pair, &q)["setMonitoringResult"][0]["status"],
        "Rejected"
    );
    // MAX_STREAMS streams, then Rejected.
    let vars = ["HeartbeatInterval", "OfflineThreshold"];
    let mut statuses = Vec::new();
    for n in 0..=MAX_STREAMS {
        let q = pair.central_call(
            "SetVariableMonitoring",
            json!({ "setMonitoringData": [item(vars[n % 2], (n / 2) as i64 % 10, json!({ "values": 1 }))] }),
        );
        statuses.push(result(&pair, &q)["setMonitoringResult"][0]["status"].clone());
    }
    assert!(
        statuses[..MAX_STREAMS].iter().all(|s| s == "Accepted"),
        "{statuses:?}"
    );
    assert_eq!(statuses[MAX_STREAMS], "Rejected");
    assert_eq!(pair.station.streams().len(), MAX_STREAMS);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn a_2_0_1_station_has_no_streams() {
    let clock = TestClock::new();
    let cfg = test_config(Version::V201, &clock);
    let mut pair = VirtualPair::with(
        cfg,
        Box::new(MemoryStore::new()),
        MockCentral::new(Version::V201),
        clock,
    );
    pair.connect();
    let q = pair.central_call("GetPeriodicEventStream", json!({}));
    assert!(pair.central.answer(&q).unwrap().is_err());
    assert!(pair.central.sends.is_empty());
}
