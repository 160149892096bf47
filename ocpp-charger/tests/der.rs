//! OCPP 2.1 DER control on the station, on virtual time: SetDERControl with every status
//! (NotSupported, Rejected for missing data and the bound, Accepted with supersededIds),
//! GetDERControl with its ReportDERControl parts, ClearDERControl, persistence across a
//! restart, and the station's NotifyDERAlarm / NotifyDERStartStop.

use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, Version, MAX_DER_CONTROLS};
use serde_json::{json, Value};

fn connected_with(store: MemoryStore, der: &[&str]) -> VirtualPair {
    let clock = TestClock::new();
    let mut cfg = test_config(Version::V21, &clock);
    if !der.is_empty() {
        cfg = cfg.der(der);
    }
    let mut pair = VirtualPair::with(cfg, Box::new(store), MockCentral::new(Version::V21), clock);
    pair.connect();
    pair
}

fn result(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("no result for {id}: {other:?}"),
    }
}

fn limit(id: &str, priority: i64, pct: i64) -> Value {
    json!({ "isDefault": false, "controlId": id, "controlType": "LimitMaxDischarge",
            "limitMaxDischarge": { "priority": priority, "pctMaxDischargePower": pct } })
}

fn volt_var(id: &str, priority: i64) -> Value {
    json!({ "isDefault": true, "controlId": id, "controlType": "VoltVar",
            "curve": { "priority": priority, "yUnit": "PctMaxVar",
                       "curveData": [{ "x": 90, "y": 30 }, { "x": 110, "y": -30 }] } })
}

#[test]
fn set_der_control_answers_every_status() {
    // A station without DER: NotSupported.
    let mut pair = connected_with(MemoryStore::new(), &[]);
    let q = pair.central_call("SetDERControl", limit("L1", 1, 50));
    assert_eq!(
        result(&pair, &q),
        json!({ "status": "NotSupported", "statusInfo": { "reasonCode": "UnsupportedType" } })
    );

    let mut pair = connected_with(MemoryStore::new(), &["LimitMaxDischarge", "VoltVar"]);
    // A type the inverter does not take.
    let q = pair.central_call(
        "SetDERControl",
        json!({ "isDefault": false, "controlId": "F1", "controlType": "FixedVar",
                "fixedVar": { "priority": 1, "setpoint": 10, "unit": "PctMaxVar" } }),
    );
    assert_eq!(result(&pair, &q)["status"], "NotSupported");
    // The type's data missing: Rejected.
    let q = pair.central_call(
        "SetDERControl",
        json!({ "isDefault": false, "controlId": "L0", "controlType": "LimitMaxDischarge" }),
    );
    assert_eq!(
        result(&pair, &q),
        json!({ "status": "Rejected", "statusInfo": { "reasonCode": "MissingControlData" } })
    );
    // Accepted; a second of the same type with a higher priority supersedes the first.
    let q = pair.central_call("SetDERControl", limit("L1", 5, 50));
    assert_eq!(result(&pair, &q), json!({ "status": "Accepted" }));
    let q = pair.central_call("SetDERControl", limit("L2", 1, 20));
    assert_eq!(
        result(&pair, &q),
        json!({ "status": "Accepted", "supersededIds": ["L1"] })
    );
    let held = pair.station.der_controls();
    assert_eq!(held.len(), 2);
    assert!(held.iter().find(|c| c.id == "L1").unwrap().superseded);
    assert!(!held.iter().find(|c| c.id == "L2").unwrap().superseded);
    // The same id replaces.
    let q = pair.central_call("SetDERControl", limit("L2", 1, 30));
    assert_eq!(result(&pair, &q)["status"], "Accepted");
    assert_eq!(pair.station.der_controls().len(), 2);
    // A schema violation is refused before the handler.
    let q = pair.central_call(
        "SetDERControl",
        json!({ "isDefault": false, "controlId": "X", "controlType": "Nope" }),
    );
    assert_eq!(
        pair.central.answer(&q),
        Some(&Err("PropertyConstraintViolation".to_owned()))
    );
    // The bound.
    for n in 2..MAX_DER_CONTROLS {
        let q = pair.central_call("SetDERControl", volt_var(&format!("V{n}"), 3));
        assert_eq!(result(&pair, &q)["status"], "Accepted");
    }
    let q = pair.central_call("SetDERControl", volt_var("one-more", 3));
    assert_eq!(
        result(&pair, &q),
        json!({ "status": "Rejected", "statusInfo": { "reasonCode": "TooManyControls" } })
    );
    assert_eq!(pair.station.der_controls().len(), MAX_DER_CONTROLS);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn get_reports_and_clear_removes() {
    let store = MemoryStore::new();
    let mut pair = connected_with(store.clone(), &["LimitMaxDischarge", "VoltVar"]);
    for q in [limit("L1", 5, 50), limit("L2", 1, 20), volt_var("V1", 2)] {
        let id = pair.central_call("SetDERControl", q);
        assert_eq!(result(&pair, &id)["status"], "Accepted");
    }
    let q = pair.central_call(
        "GetDERControl",
        json!({ "requestId": 4, "controlId": "nope" }),
    );
    assert_eq!(result(&pair, &q)["status"], "NotFound");
    let q = pair.central_call("GetDERControl", json!({ "requestId": 5 }));
    assert_eq!(result(&pair, &q)["status"], "Accepted");
    let reports = pair.central.payloads("ReportDERControl");
    assert_eq!(reports.len(), 1);
    let r = reports[0];
    assert_eq!(r["requestId"], 5);
    assert!(r.get("tbc").is_none());
    let limits = r["limitMaxDischarge"].as_array().unwrap();
    assert_eq!(limits.len(), 2);
    let l1 = limits.iter().find(|l| l["id"] == "L1").unwrap();
    assert_eq!(l1["isSuperseded"], true);
    assert_eq!(l1["limitMaxDischarge"]["pctMaxDischargePower"], 50);
    assert_eq!(r["curve"][0]["curveType"], "VoltVar");
    assert_eq!(r["curve"][0]["isDefault"], true);

    // A filtered one.
    let q = pair.central_call(
        "GetDERControl",
        json!({ "requestId": 6, "controlType": "VoltVar" }),
    );
    assert_eq!(result(&pair, &q)["status"], "Accepted");
    let r = pair.central.payloads("ReportDERControl")[1].clone();
    assert!(r.get("limitMaxDischarge").is_none());
    assert_eq!(r["curve"].as_array().unwrap().len(), 1);

    // A restart keeps them.
    drop(pair);
    let mut pair = connected_with(store, &["LimitMaxDischarge", "VoltVar"]);
    assert_eq!(pair.station.der_controls().len(), 3);

    // Clear: by id, then what is left of a type; nothing left: NotFound.
    let q = pair.central_call(
        "ClearDERControl",
        json!({ "isDefault": false, "controlId": "L2" }),
    );
    assert_eq!(result(&pair, &q)["status"], "Accepted");
    assert!(!pair.station.der_controls()[0].superseded);
    let q = pair.central_call(
        "ClearDERControl",
        json!({ "isDefault": true, "controlType": "VoltVar" }),
    );
    assert_eq!(result(&pair, &q)["status"], "Accepted");
    let q = pair.central_call(
        "ClearDERControl",
        json!({ "isDefault": true, "controlType": "VoltVar" }),
    );
    assert_eq!(result(&pair, &q)["status"], "NotFound");
    assert_eq!(pair.station.der_controls().len(), 1);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn reports_are_split_into_parts() {
    let mut pair = connected_with(MemoryStore::new(), &["VoltVar"]);
    for n in 0..12 {
        let id = pair.central_call("SetDERControl", volt_var(&format!("V{n}"), n));
        assert_eq!(result(&pair, &id)["status"], "Accepted");
    }
    let q = pair.central_call("GetDERControl", json!({ "requestId": 9 }));
    assert_eq!(result(&pair, &q)["status"], "Accepted");
    let reports = pair.central.payloads("ReportDERControl");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["tbc"], true);
    assert_eq!(reports[0]["curve"].as_array().unwrap().len(), 10);
    assert_eq!(reports[1]["curve"].as_array().unwrap().len(), 2);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn alarms_and_start_stop_are_sent() {
    let mut pair = connected_with(MemoryStore::new(), &["LimitMaxDischarge"]);
    pair.station_input(|st, now| {
        assert!(st.der_alarm(now, "HVMustTrip", Some("OverVoltage"), false, Some("253 V")));
        assert!(st.der_alarm(now, "HVMustTrip", Some("OverVoltage"), true, None));
        assert!(st.der_started(now, "L1", true, &["L0".to_owned()]));
    });
    let alarms = pair.central.payloads("NotifyDERAlarm");
    assert_eq!(alarms.len(), 2);
    assert_eq!(alarms[0]["gridEventFault"], "OverVoltage");
    assert_eq!(alarms[0]["extraInfo"], "253 V");
    assert!(alarms[0].get("alarmEnded").is_none());
    assert_eq!(alarms[1]["alarmEnded"], true);
    let ss = pair.central.payloads("NotifyDERStartStop");
    assert_eq!(ss[0]["controlId"], "L1");
    assert_eq!(ss[0]["supersededIds"], json!(["L0"]));
    pair.assert_no_invalid_outgoing();

    // Not on 2.0.1.
    let clock = TestClock::new();
    let cfg = test_config(Version::V201, &clock).der(&["LimitMaxDischarge"]);
    let mut pair = VirtualPair::with(
        cfg,
        Box::new(MemoryStore::new()),
        MockCentral::new(Version::V201),
        clock,
    );
    pair.connect();
    pair.station_input(|st, now| {
        assert!(!st.der_alarm(now, "HVMustTrip", None, false, None));
    });
}
