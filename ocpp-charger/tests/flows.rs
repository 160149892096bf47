//! Station flows on virtual time against the mock central system, for every version.

use std::time::Duration;

use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{
    BootState, FileStore, HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station,
    StationEvent, Version,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const ALL: [Version; 3] = [Version::V16, Version::V201, Version::V21];

fn ok(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("call {id}: {other:?}"),
    }
}

fn tx_actions(pair: &VirtualPair) -> Vec<&str> {
    pair.central
        .actions()
        .into_iter()
        .filter(|a| {
            matches!(
                *a,
                "StartTransaction" | "StopTransaction" | "TransactionEvent"
            ) || *a == "MeterValues"
        })
        .collect()
}

#[test]
fn boot_rejected_then_accepted_sends_nothing_else_before() {
    for v in ALL {
        let clock = TestClock::new();
        let central = MockCentral::new(v)
            .boot_statuses(&["Rejected", "Pending"])
            .heartbeat_interval(100);
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(MemoryStore::new()),
            central,
            clock,
        );
        pair.connect();
        assert_eq!(pair.station.boot_state(), BootState::Rejected);
        pair.plug_in(1);
        // While Rejected: no answers to the central system either.
        let id = pair.central_call("ClearCache", json!({}));
        assert!(
            pair.central.answer(&id).is_none(),
            "{v}: answered while Rejected"
        );
        pair.advance(Duration::from_secs(99));
        assert_eq!(pair.central.actions(), ["BootNotification"], "{v}");
        pair.advance(Duration::from_secs(1));
        assert_eq!(pair.station.boot_state(), BootState::Pending, "{v}");
        assert_eq!(pair.central.actions(), ["BootNotification"; 2], "{v}");
        // While Pending the central system may call, and gets answers.
        let id = pair.central_call("ClearCache", json!({}));
        assert_eq!(ok(&pair, &id)["status"], "Accepted", "{v}");
        pair.advance(Duration::from_secs(100));
        assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
        let actions = pair.central.actions();
        assert_eq!(&actions[..3], ["BootNotification"; 3], "{v}");
        assert!(
            actions[3..].iter().all(|a| *a == "StatusNotification"),
            "{v}: {actions:?}"
        );
        // Heartbeat at the interval from the boot response.
        pair.advance(Duration::from_secs(100));
        assert_eq!(pair.central.actions_named("Heartbeat"), 1, "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn transaction_lifecycle_v16() {
    let mut pair = VirtualPair::new(Version::V16);
    pair.connect();
    pair.plug_in(1);
    assert_eq!(pair.station.status(1), Some("Preparing"));
    pair.present(1, "TAG1");
    assert_eq!(pair.station.status(1), Some("Charging"));
    pair.advance(Duration::from_secs(125));
    pair.present(1, "TAG1");
    assert_eq!(pair.station.status(1), Some("Finishing"));
    pair.unplug(1);
    assert_eq!(pair.station.status(1), Some("Available"));
    assert_eq!(
        tx_actions(&pair),
        [
            "StartTransaction",
            "MeterValues",
            "MeterValues",
            "StopTransaction"
        ]
    );
    let start = pair.central.payloads("StartTransaction")[0];
    assert_eq!(start["idTag"], "TAG1");
    assert_eq!(start["meterStart"], 0);
    assert_eq!(start["timestamp"], "2025-01-01T00:00:00.000Z");
    let mv = pair.central.payloads("MeterValues")[0];
    assert_eq!(mv["transactionId"], 1);
    // 7.4 kW for 60 s = 123.333 Wh, exact, as a 1.6 string.
    assert_eq!(mv["meterValue"][0]["sampledValue"][0]["value"], "123.333");
    assert_eq!(
        mv["meterValue"][0]["sampledValue"][0]["context"],
        "Sample.Periodic"
    );
    let stop = pair.central.payloads("StopTransaction")[0];
    assert_eq!(stop["transactionId"], 1);
    assert_eq!(stop["reason"], "Local");
    assert_eq!(stop["meterStop"], 256); // 125 s at 7.4 kW = 256.944 Wh
    let statuses: Vec<&str> = pair
        .central
        .payloads("StatusNotification")
        .iter()
        .filter(|p| p["connectorId"] == 1)
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "Available",
            "Preparing",
            "Charging",
            "Finishing",
            "Available"
        ]
    );
    assert_eq!(pair.station.outbox_len(), 0);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn transaction_lifecycle_v2x() {
    for v in [Version::V201, Version::V21] {
        let mut pair = VirtualPair::new(v);
        pair.connect();
        pair.present(1, "TAG1");
        assert_eq!(pair.central.actions_named("Authorize"), 1);
        pair.plug_in(1);
        pair.advance(Duration::from_secs(61));
        pair.unplug(1);
        let events = pair.central.payloads("TransactionEvent");
        assert_eq!(events.len(), 3, "{v}");
        let kinds: Vec<(&str, &str, i64)> = events
            .iter()
            .map(|e| {
                (
                    e["eventType"].as_str().unwrap(),
                    e["triggerReason"].as_str().unwrap(),
                    e["seqNo"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("Started", "CablePluggedIn", 0),
                ("Updated", "MeterValuePeriodic", 1),
                ("Ended", "EVCommunicationLost", 2)
            ],
            "{v}"
        );
        assert!(events.iter().all(|e| e["offline"] == false));
        let id = &events[0]["transactionInfo"]["transactionId"];
        assert!(events
            .iter()
            .all(|e| &e["transactionInfo"]["transactionId"] == id));
        assert_eq!(
            events[2]["transactionInfo"]["stoppedReason"],
            "EVDisconnected"
        );
        // 2.x values are exact JSON numbers.
        let sv = &events[1]["meterValue"][0]["sampledValue"][0];
        assert_eq!(sv["value"].to_string(), "123.333");
        assert_eq!(sv["unitOfMeasure"]["unit"], "Wh");
        let statuses: Vec<&str> = pair
            .central
            .payloads("StatusNotification")
            .iter()
            .map(|p| p["connectorStatus"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["Available", "Occupied", "Available"], "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ocpp-charger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A 1.6 transaction starts offline, survives a process restart with the file store, and is
/// delivered in order, once, with the central-issued id patched in.
#[test]
fn offline_transaction_survives_restart_v16() {
    let dir = temp_dir("restart16");
    let clock = TestClock::new();
    let central = MockCentral::new(Version::V16).first_transaction_id(4242);
    let mut pair = VirtualPair::with(
        test_config(Version::V16, &clock),
        Box::new(FileStore::open(&dir).unwrap()),
        central,
        clock,
    );
    pair.connect();
    let id = pair.central_call(
        "ChangeConfiguration",
        json!({ "key": "AllowOfflineTxForUnknownId", "value": "true" }),
    );
    assert_eq!(ok(&pair, &id)["status"], "Accepted");
    pair.disconnect();
    pair.plug_in(1);
    pair.present(1, "OFFLINE1");
    assert!(pair.station.transaction(1).is_some());
    pair.advance(Duration::from_secs(130)); // two periodic samples, queued
    assert_eq!(pair.station.outbox_len(), 3);

    // The process dies: drop the station, build a new one from the same directory.
    let VirtualPair {
        station,
        mut central,
        clock,
        ..
    } = pair;
    drop(station);
    central.reconnect();
    let hw = SimulatedHardware::new(1, Decimal::from(7400)).with_register(Decimal::from(300));
    let mut store = FileStore::open(&dir).unwrap();
    let saved = Saved::load(&mut store).unwrap();
    assert_eq!(
        saved.messages().len(),
        3,
        "every queued message reached the disk"
    );
    let station = Station::new(
        test_config(Version::V16, &clock),
        Box::new(hw),
        saved,
        clock.now(),
    );
    assert_eq!(station.outbox_len(), 3);
    assert!(
        station.transaction(1).is_some(),
        "the transaction was restored"
    );
    let mut pair = VirtualPair::from_station(station, Box::new(store), central, clock);
    pair.connect();
    assert!(pair.events.iter().any(|e| matches!(
        e,
        StationEvent::TransactionIdAssigned {
            transaction_id: 4242,
            ..
        }
    )));
    assert_eq!(
        pair.station
            .transaction(1)
            .unwrap()
            .transaction_id
            .as_deref(),
        Some("4242")
    );
    pair.unplug(1);
    assert_eq!(
        tx_actions(&pair),
        [
            "StartTransaction",
            "MeterValues",
            "MeterValues",
            "StopTransaction"
        ]
    );
    assert_eq!(
        pair.central.payloads("StartTransaction")[0]["idTag"],
        "OFFLINE1"
    );
    for mv in pair.central.payloads("MeterValues") {
        assert_eq!(mv["transactionId"], 4242);
    }
    let stop = pair.central.payloads("StopTransaction")[0];
    assert_eq!(stop["transactionId"], 4242);
    assert_eq!(stop["reason"], "EVDisconnected");
    assert_eq!(pair.station.outbox_len(), 0);
    assert_eq!(
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("msg-"))
            .count(),
        0
    );
    pair.assert_no_invalid_outgoing();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// 2.x: offline TransactionEvents carry `offline: true`, seqNo continues across a restart
/// without gaps, and everything arrives in order.
#[test]
fn offline_transaction_survives_restart_v2x() {
    for v in [Version::V201, Version::V21] {
        let dir = temp_dir(&format!("restart{v}"));
        let clock = TestClock::new();
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(FileStore::open(&dir).unwrap()),
            MockCentral::new(v),
            clock,
        );
        pair.connect();
        // Fill the authorization cache online, then go offline.
        pair.present(1, "CACHED");
        // The authorization waits for a cable for EVConnectionTimeOut (120 s), then lapses.
        pair.advance(Duration::from_secs(121));
        pair.disconnect();
        pair.plug_in(1);
        assert!(pair.station.transaction(1).is_none());
        pair.present(1, "CACHED");
        assert!(
            pair.station.transaction(1).is_some(),
            "{v}: cached token starts offline"
        );
        pair.advance(Duration::from_secs(61));
        let VirtualPair {
            station,
            mut central,
            clock,
            ..
        } = pair;
        drop(station);
        central.reconnect();
        let mut store = FileStore::open(&dir).unwrap();
        let station = Station::new(
            test_config(v, &clock),
            Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
            Saved::load(&mut store).unwrap(),
            clock.now(),
        );
        let mut pair = VirtualPair::from_station(station, Box::new(store), central, clock);
        pair.advance(Duration::from_secs(60)); // one more sample, still offline
        pair.connect();
        pair.unplug(1);
        let events = pair.central.payloads("TransactionEvent");
        let seq: Vec<i64> = events
            .iter()
            .map(|e| e["seqNo"].as_i64().unwrap())
            .collect();
        assert_eq!(seq, [0, 1, 2, 3], "{v}");
        let offline: Vec<bool> = events
            .iter()
            .map(|e| e["offline"].as_bool().unwrap())
            .collect();
        assert_eq!(offline, [true, true, true, false], "{v}");
        pair.assert_no_invalid_outgoing();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn transaction_messages_retry_then_give_up() {
    for v in ALL {
        let mut pair = VirtualPair::new(v);
        pair.connect();
        let start = if v == Version::V16 {
            "StartTransaction"
        } else {
            "TransactionEvent"
        };
        pair.central.silent.insert(start.to_owned());
        pair.plug_in(1);
        pair.present(1, "T");
        assert_eq!(pair.central.actions_named(start), 1);
        // Attempt 1 times out after 30 s; attempt 2 after 60 s more (interval x 1),
        // attempt 3 after 120 s more (interval x 2); then it is dropped.
        pair.advance(Duration::from_secs(30 + 59));
        assert_eq!(pair.central.actions_named(start), 1, "{v}");
        pair.advance(Duration::from_secs(1));
        assert_eq!(pair.central.actions_named(start), 2, "{v}");
        pair.advance(Duration::from_secs(30 + 120));
        assert_eq!(pair.central.actions_named(start), 3, "{v}");
        pair.advance(Duration::from_secs(30));
        assert!(pair
            .events
            .iter()
            .any(|e| matches!(e, StationEvent::Dropped { action, .. } if action == start)));
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn remote_start_and_stop() {
    for v in ALL {
        let mut pair = VirtualPair::new(v);
        pair.connect();
        pair.plug_in(1);
        let id = if v == Version::V16 {
            pair.central_call(
                "RemoteStartTransaction",
                json!({ "connectorId": 1, "idTag": "REMOTE" }),
            )
        } else {
            pair.central_call(
                "RequestStartTransaction",
                json!({ "evseId": 1, "remoteStartId": 7, "idToken": { "idToken": "REMOTE", "type": "Central" } }),
            )
        };
        assert_eq!(ok(&pair, &id)["status"], "Accepted", "{v}");
        let tx = pair.station.transaction(1).expect("started");
        let tx_id = tx.transaction_id.expect("id known");
        let id = if v == Version::V16 {
            pair.central_call(
                "RemoteStopTransaction",
                json!({ "transactionId": tx_id.parse::<i32>().unwrap() }),
            )
        } else {
            pair.central_call("RequestStopTransaction", json!({ "transactionId": tx_id }))
        };
        assert_eq!(ok(&pair, &id)["status"], "Accepted", "{v}");
        assert!(pair.station.transaction(1).is_none());
        if v == Version::V16 {
            assert_eq!(
                pair.central.payloads("StopTransaction")[0]["reason"],
                "Remote"
            );
        } else {
            let ev = pair.central.payloads("TransactionEvent");
            assert_eq!(ev[0]["triggerReason"], "RemoteStart");
            assert_eq!(ev[0]["transactionInfo"]["remoteStartId"], 7);
            assert_eq!(ev[1]["triggerReason"], "RemoteStop");
            assert_eq!(ev[1]["transactionInfo"]["stoppedReason"], "Remote");
        }
        // Unknown transaction: Rejected.
        let id = if v == Version::V16 {
            pair.central_call("RemoteStopTransaction", json!({ "transactionId": 999 }))
        } else {
            pair.central_call("RequestStopTransaction", json!({ "transactionId": "nope" }))
        };
        assert_eq!(ok(&pair, &id)["status"], "Rejected", "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn configuration_round_trip_v16() {
    let mut pair = VirtualPair::new(Version::V16);
    pair.connect();
    let id = pair.central_call("GetConfiguration", json!({}));
    let all = ok(&pair, &id);
    let keys = all["configurationKey"].as_array().unwrap();
    assert!(keys
        .iter()
        .any(|k| k["key"] == "HeartbeatInterval" && k["value"] == "300"));
    assert!(keys
        .iter()
        .any(|k| k["key"] == "NumberOfConnectors" && k["readonly"] == true));
    let change = |pair: &mut VirtualPair, key: &str, value: &str| {
        let id = pair.central_call("ChangeConfiguration", json!({ "key": key, "value": value }));
        ok(pair, &id)["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(change(&mut pair, "HeartbeatInterval", "60"), "Accepted");
    assert_eq!(change(&mut pair, "HeartbeatInterval", "sixty"), "Rejected");
    assert_eq!(change(&mut pair, "NumberOfConnectors", "4"), "Rejected");
    assert_eq!(change(&mut pair, "NoSuchKey", "1"), "NotSupported");
    assert_eq!(
        change(&mut pair, "WebSocketPingInterval", "10"),
        "RebootRequired"
    );
    assert_eq!(
        change(&mut pair, "MeterValuesSampledData", "Bogus"),
        "Rejected"
    );
    let id = pair.central_call(
        "GetConfiguration",
        json!({ "key": ["HeartbeatInterval", "Nope"] }),
    );
    let got = ok(&pair, &id);
    assert_eq!(got["configurationKey"][0]["value"], "60");
    assert_eq!(got["unknownKey"], json!(["Nope"]));
    // The new heartbeat interval is used at once.
    pair.advance(Duration::from_secs(60));
    assert_eq!(pair.central.actions_named("Heartbeat"), 1);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn variables_round_trip_and_base_report_v2x() {
    for v in [Version::V201, Version::V21] {
        let mut pair = VirtualPair::new(v);
        pair.connect();
        let var = |c: &str, n: &str, inst: Option<&str>| {
            let mut var = json!({ "name": n });
            if let Some(i) = inst {
                var["instance"] = json!(i);
            }
            json!({ "component": { "name": c }, "variable": var })
        };
        let mut set = var("OCPPCommCtrlr", "HeartbeatInterval", None);
        set["attributeValue"] = json!("45");
        let mut ro = var("TxCtrlr", "TxStartPoint", None);
        ro["attributeValue"] = json!("EVConnected");
        let mut unknown = var("NoSuchCtrlr", "X", None);
        unknown["attributeValue"] = json!("1");
        let mut ws = var("OCPPCommCtrlr", "WebSocketPingInterval", None);
        ws["attributeValue"] = json!("5");
        let id = pair.central_call(
            "SetVariables",
            json!({ "setVariableData": [set, ro, unknown, ws] }),
        );
        let statuses: Vec<String> = ok(&pair, &id)["setVariableResult"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["attributeStatus"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            statuses,
            ["Accepted", "Rejected", "UnknownComponent", "RebootRequired"],
            "{v}"
        );
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": [
                var("OCPPCommCtrlr", "HeartbeatInterval", None),
                var("OCPPCommCtrlr", "MessageAttempts", Some("TransactionEvent")),
                var("OCPPCommCtrlr", "Nope", None),
                { "component": { "name": "EVSE", "evse": { "id": 1 } }, "variable": { "name": "AvailabilityState" } },
            ] }),
        );
        let results = ok(&pair, &id)["getVariableResult"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(results[0]["attributeValue"], "45");
        assert_eq!(results[1]["attributeValue"], "3");
        assert_eq!(results[2]["attributeStatus"], "UnknownVariable");
        assert_eq!(results[3]["attributeValue"], "Available");
        let id = pair.central_call(
            "GetBaseReport",
            json!({ "requestId": 9, "reportBase": "FullInventory" }),
        );
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        let reports = pair.central.payloads("NotifyReport");
        assert!(reports.len() >= 2, "{v}: split by ItemsPerMessage");
        for (i, r) in reports.iter().enumerate() {
            assert_eq!(r["requestId"], 9);
            assert_eq!(r["seqNo"], i);
            assert_eq!(r["tbc"], i + 1 < reports.len());
        }
        let all: Vec<&Value> = reports
            .iter()
            .flat_map(|r| r["reportData"].as_array().unwrap())
            .collect();
        assert!(all
            .iter()
            .any(|d| d["variable"]["name"] == "HeartbeatInterval"
                && d["variableAttribute"][0]["value"] == "45"));
        let id = pair.central_call(
            "GetBaseReport",
            json!({ "requestId": 10, "reportBase": "SummaryInventory" }),
        );
        // SummaryInventory is supported since the device model (`tests/device_model.rs`).
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        pair.assert_no_invalid_outgoing();
    }
}

/// Every action the central system may send, in every version, gets an answer (a result or
/// the specified CALLERROR), also with a payload its schema refuses.
#[test]
fn every_central_action_is_answered() {
    for v in ALL {
        let mut pair = VirtualPair::new(v);
        pair.connect();
        let actions: Vec<(&str, bool)> = match v {
            Version::V16 => ocpp_charger::ocpp_types::v16::Action::ALL
                .iter()
                .map(|a| (a.as_str(), a.initiator().central_system_may_send()))
                .collect(),
            Version::V201 => ocpp_charger::ocpp_types::v201::Action::ALL
                .iter()
                .map(|a| (a.as_str(), a.initiator().central_system_may_send()))
                .collect(),
            _ => ocpp_charger::ocpp_types::v21::Action::ALL
                .iter()
                .filter(|a| a.has_response())
                .map(|a| (a.as_str(), a.initiator().central_system_may_send()))
                .collect(),
        };
        for (action, central) in actions {
            let id = pair.central_call(action, json!({}));
            let answer = pair.central.answer(&id).cloned();
            match answer {
                Some(Ok(_)) => {}
                Some(Err(code)) if !central => assert_eq!(code, "NotSupported", "{v} {action}"),
                Some(Err(code)) => assert!(
                    [
                        "NotSupported",
                        "FormationViolation",
                        "FormatViolation",
                        "OccurenceConstraintViolation",
                        "OccurrenceConstraintViolation",
                        "TypeConstraintViolation",
                        "PropertyConstraintViolation"
                    ]
                    .contains(&code.as_str()),
                    "{v} {action}: {code}"
                ),
                None => panic!("{v} {action}: no answer"),
            }
        }
        let id = pair.central_call("NoSuchAction", json!({}));
        assert_eq!(
            pair.central.answer(&id),
            Some(&Err("NotImplemented".to_owned()))
        );
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn unimplemented_actions_get_their_own_refusal() {
    let mut pair = VirtualPair::new(Version::V16);
    pair.connect();
    let id = pair.central_call(
        "UpdateFirmware",
        json!({ "location": "https://x.example/fw", "retrieveDate": "2025-01-01T01:00:00Z" }),
    );
    assert_eq!(
        pair.central.answer(&id),
        Some(&Err("NotSupported".to_owned()))
    );
    pair.assert_no_invalid_outgoing();
}

#[test]
fn central_operations() {
    for v in ALL {
        let v16 = v == Version::V16;
        let mut pair = VirtualPair::new(v);
        pair.connect();
        // TriggerMessage: the answer goes out before the triggered message.
        let before = pair.central.actions_named("Heartbeat");
        let id = pair.central_call("TriggerMessage", json!({ "requestedMessage": "Heartbeat" }));
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        assert_eq!(pair.central.actions_named("Heartbeat"), before + 1, "{v}");
        let id = pair.central_call(
            "TriggerMessage",
            json!({ "requestedMessage": "MeterValues" }),
        );
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        let mv = pair.central.payloads("MeterValues");
        assert_eq!(
            mv[0]["meterValue"][0]["sampledValue"][0]["context"],
            "Trigger"
        );
        let n = pair.central.actions_named("StatusNotification");
        let id = pair.central_call(
            "TriggerMessage",
            json!({ "requestedMessage": "StatusNotification" }),
        );
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        assert!(pair.central.actions_named("StatusNotification") > n);
        // ChangeAvailability.
        let inop = if v16 {
            json!({ "connectorId": 1, "type": "Inoperative" })
        } else {
            json!({ "operationalStatus": "Inoperative", "evse": { "id": 1 } })
        };
        let id = pair.central_call("ChangeAvailability", inop.clone());
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        assert_eq!(pair.station.status(1), Some("Unavailable"));
        let op = if v16 {
            json!({ "connectorId": 1, "type": "Operative" })
        } else {
            json!({ "operationalStatus": "Operative", "evse": { "id": 1 } })
        };
        let id = pair.central_call("ChangeAvailability", op);
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        // During a transaction: Scheduled, applied when it ends.
        pair.plug_in(1);
        pair.present(1, "T");
        let id = pair.central_call("ChangeAvailability", inop);
        assert_eq!(ok(&pair, &id)["status"], "Scheduled", "{v}");
        // UnlockConnector.
        let unlock = if v16 {
            json!({ "connectorId": 1 })
        } else {
            json!({ "evseId": 1, "connectorId": 1 })
        };
        let id = pair.central_call("UnlockConnector", unlock.clone());
        if v16 {
            assert_eq!(ok(&pair, &id)["status"], "Unlocked");
            assert!(
                pair.station.transaction(1).is_none(),
                "1.6 unlock stops the transaction"
            );
            assert_eq!(
                pair.central.payloads("StopTransaction")[0]["reason"],
                "UnlockCommand"
            );
        } else {
            assert_eq!(ok(&pair, &id)["status"], "OngoingAuthorizedTransaction");
            pair.present(1, "T");
            let id = pair.central_call("UnlockConnector", unlock);
            assert_eq!(ok(&pair, &id)["status"], "Unlocked");
        }
        pair.unplug(1);
        assert_eq!(
            pair.station.status(1),
            Some("Unavailable"),
            "{v}: scheduled change applied"
        );
        // ClearCache, DataTransfer.
        let id = pair.central_call("ClearCache", json!({}));
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        let id = pair.central_call("DataTransfer", json!({ "vendorId": "acme" }));
        assert_eq!(ok(&pair, &id)["status"], "UnknownVendorId");
        // Reset: the station reboots and boots again.
        let id = pair.central_call(
            "Reset",
            json!({ "type": if v16 { "Soft" } else { "Immediate" } }),
        );
        assert_eq!(ok(&pair, &id)["status"], "Accepted");
        assert!(pair
            .events
            .iter()
            .any(|e| matches!(e, StationEvent::Rebooting(_))));
        assert_eq!(pair.central.actions_named("BootNotification"), 2, "{v}");
        if !v16 {
            assert_eq!(
                pair.central.payloads("BootNotification")[1]["reason"],
                "RemoteReset"
            );
        }
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn clock_aligned_readings_use_wall_time() {
    for v in ALL {
        let mut pair = VirtualPair::new(v);
        pair.connect();
        let id = if v == Version::V16 {
            pair.central_call(
                "ChangeConfiguration",
                json!({ "key": "ClockAlignedDataInterval", "value": "900" }),
            )
        } else {
            pair.central_call(
                "SetVariables",
                json!({ "setVariableData": [{ "attributeValue": "900", "component": { "name": "AlignedDataCtrlr" }, "variable": { "name": "Interval" } }] }),
            )
        };
        assert!(pair.central.answer(&id).is_some());
        pair.advance(Duration::from_secs(1800));
        let mv = pair.central.payloads("MeterValues");
        assert_eq!(mv.len(), 2, "{v}");
        assert_eq!(
            mv[0]["meterValue"][0]["timestamp"],
            "2025-01-01T00:15:00.000Z"
        );
        assert_eq!(
            mv[1]["meterValue"][0]["timestamp"],
            "2025-01-01T00:30:00.000Z"
        );
        assert_eq!(
            mv[0]["meterValue"][0]["sampledValue"][0]["context"],
            "Sample.Clock"
        );
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn only_the_latest_status_is_sent_after_offline() {
    for v in ALL {
        let mut pair = VirtualPair::new(v);
        pair.connect();
        let before = pair.central.actions_named("StatusNotification");
        pair.disconnect();
        pair.plug_in(1);
        pair.unplug(1);
        pair.plug_in(1);
        pair.connect();
        let after: Vec<&Value> = pair.central.payloads("StatusNotification")[before..].to_vec();
        assert_eq!(after.len(), 1, "{v}: {after:?}");
        let s = if v == Version::V16 {
            &after[0]["status"]
        } else {
            &after[0]["connectorStatus"]
        };
        assert_eq!(
            s,
            if v == Version::V16 {
                "Preparing"
            } else {
                "Occupied"
            }
        );
    }
}

#[test]
fn authorization_cache_and_rejection() {
    for v in ALL {
        let mut pair = VirtualPair::new(v);
        pair.central.blocked.insert("BAD".into());
        pair.connect();
        pair.plug_in(1);
        pair.present(1, "BAD");
        assert!(pair.station.transaction(1).is_none());
        assert!(pair.events.iter().any(|e| matches!(
            e,
            StationEvent::Authorization {
                accepted: false,
                ..
            }
        )));
        // A good token online, then offline it is accepted from the cache.
        pair.present(1, "GOOD");
        pair.present(1, "GOOD"); // stops
        pair.disconnect();
        pair.present(1, "GOOD");
        assert!(
            pair.station.transaction(1).is_some(),
            "{v}: cache used offline"
        );
        pair.present(1, "GOOD");
        pair.present(1, "BAD");
        assert!(
            pair.station.transaction(1).is_none(),
            "{v}: cached rejection offline"
        );
        pair.present(1, "UNKNOWN");
        assert!(
            pair.station.transaction(1).is_none(),
            "{v}: unknown offline refused"
        );
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn token_presented_while_boot_in_flight_waits_for_the_answer() {
    for v in ALL {
        let mut pair = VirtualPair::new(v);
        // Connect but hold the central system's answer: the boot is in flight.
        let now = pair.clock.now();
        pair.station.on_connected(now);
        pair.station
            .handle_hardware(now, HardwareEvent::CablePlugged { evse: 1 });
        pair.station.present_id_token(now, Some(1), "EARLY");
        assert_eq!(pair.station.boot_state(), BootState::Waiting);
        assert!(pair.station.transaction(1).is_none());
        pair.connect_existing();
        assert_eq!(pair.station.boot_state(), BootState::Accepted);
        assert_eq!(pair.central.actions_named("Authorize"), 1, "{v}");
        assert!(pair.station.transaction(1).is_some(), "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn station_wide_availability_v16_reports_connector_zero() {
    let mut pair = VirtualPair::new(Version::V16);
    pair.connect();
    let id = pair.central_call(
        "ChangeAvailability",
        json!({ "connectorId": 0, "type": "Inoperative" }),
    );
    assert_eq!(ok(&pair, &id)["status"], "Accepted");
    let zero: Vec<&str> = pair
        .central
        .payloads("StatusNotification")
        .iter()
        .filter(|p| p["connectorId"] == 0)
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(zero, ["Available", "Unavailable"]);
    assert_eq!(pair.station.status(1), Some("Unavailable"));
    // A token cannot start anything while unavailable.
    pair.plug_in(1);
    pair.present(1, "T");
    assert!(pair.station.transaction(1).is_none());
    pair.assert_no_invalid_outgoing();
}

#[test]
fn full_battery_suspends_the_transaction() {
    for v in ALL {
        let clock = TestClock::new();
        let ev = ocpp_charger::SimulatedEv {
            capacity_wh: Decimal::from(200),
            stored_wh: Decimal::from(150),
        };
        let hw = SimulatedHardware::new(1, Decimal::from(7400)).with_ev(1, ev);
        let station = Station::new(
            test_config(v, &clock),
            Box::new(hw),
            Saved::default(),
            clock.now(),
        );
        let mut pair = VirtualPair::from_station(
            station,
            Box::new(MemoryStore::new()),
            MockCentral::new(v),
            clock,
        );
        pair.connect();
        pair.plug_in(1);
        pair.present(1, "T");
        pair.advance(Duration::from_secs(60)); // 123 Wh > the 50 Wh of room: full
        if v == Version::V16 {
            assert_eq!(pair.station.status(1), Some("SuspendedEV"));
            let last = *pair.central.payloads("StatusNotification").last().unwrap();
            assert_eq!(last["status"], "SuspendedEV");
        } else {
            let ev = pair.central.payloads("TransactionEvent");
            let changed = ev
                .iter()
                .find(|e| e["triggerReason"] == "ChargingStateChanged")
                .expect("ChargingStateChanged");
            assert_eq!(changed["transactionInfo"]["chargingState"], "SuspendedEV");
        }
        pair.assert_no_invalid_outgoing();
    }
}

/// Time has one source, injected: the virtual clock's `now` fires the heartbeats, and the wall
/// time in messages is that `now` mapped by the configured time source (test_config anchors
/// 2025-01-01T00:00:00Z at the virtual start).
#[test]
fn injected_time_drives_heartbeats_and_timestamps() {
    for v in ALL {
        let clock = TestClock::new();
        let central = MockCentral::new(v).heartbeat_interval(60);
        let mut pair = VirtualPair::with(
            test_config(v, &clock),
            Box::new(MemoryStore::new()),
            central,
            clock,
        );
        pair.connect();
        assert_eq!(pair.central.actions_named("Heartbeat"), 0, "{v}");
        pair.advance(Duration::from_secs(600));
        assert_eq!(pair.central.actions_named("Heartbeat"), 10, "{v}");
        pair.plug_in(1);
        let status = pair.central.payloads("StatusNotification");
        let last = status.last().unwrap();
        assert_eq!(last["timestamp"], "2025-01-01T00:10:00.000Z", "{v}: {last}");
        pair.assert_no_invalid_outgoing();
    }
}
