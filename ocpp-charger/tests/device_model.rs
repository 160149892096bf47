//! The device model (2.x block B) and monitoring (2.x block N) on the station, on virtual
//! time: every GetVariables / SetVariables per-item status, value checks against the
//! characteristics, base reports and GetReport with filters split into NotifyReport parts,
//! 1.6 Get/ChangeConfiguration, monitors (threshold, delta, periodic) and their NotifyEvents,
//! persistence across a restart, and the bounds.

use std::time::Duration;

use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{HardwareEvent, MemoryStore, Version};
use serde_json::{json, Value};

const V2: [Version; 2] = [Version::V201, Version::V21];

fn connected_with(v: Version, store: MemoryStore, clock: TestClock) -> VirtualPair {
    let cfg = test_config(v, &clock);
    let mut pair = VirtualPair::with(cfg, Box::new(store), MockCentral::new(v), clock);
    pair.connect();
    pair
}

fn connected(v: Version) -> VirtualPair {
    connected_with(v, MemoryStore::new(), TestClock::new())
}

fn result(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("no result for {id}: {other:?}"),
    }
}

fn error_code(pair: &VirtualPair, id: &str) -> String {
    match pair.central.answer(id) {
        Some(Err(code)) => code.clone(),
        other => panic!("no error for {id}: {other:?}"),
    }
}

fn get(component: Value, variable: &str, attribute: Option<&str>) -> Value {
    let mut d = json!({ "component": component, "variable": { "name": variable } });
    if let Some(a) = attribute {
        d["attributeType"] = json!(a);
    }
    d
}

fn set(component: Value, variable: &str, value: &str) -> Value {
    json!({ "component": component, "variable": { "name": variable }, "attributeValue": value })
}

fn statuses(r: &Value, list: &str, field: &str) -> Vec<String> {
    r[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn get_variables_answers_every_item_status() {
    for v in V2 {
        let mut pair = connected(v);
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": [
                get(json!({"name": "OCPPCommCtrlr"}), "HeartbeatInterval", None),
                get(json!({"name": "NoSuchCtrlr"}), "HeartbeatInterval", None),
                get(json!({"name": "OCPPCommCtrlr"}), "NoSuchVariable", None),
                get(json!({"name": "OCPPCommCtrlr"}), "HeartbeatInterval", Some("Target")),
                get(json!({"name": "SecurityCtrlr"}), "BasicAuthPassword", None),
                get(json!({"name": "EVSE", "evse": {"id": 1}}), "Power", Some("MaxSet")),
                get(json!({"name": "EVSE", "evse": {"id": 9}}), "Power", None),
                get(json!({"name": "Connector", "evse": {"id": 1, "connectorId": 1}}), "AvailabilityState", None),
                get(json!({"name": "ChargingStation"}), "Problem", None),
            ]}),
        );
        let r = result(&pair, &id);
        assert_eq!(
            statuses(&r, "getVariableResult", "attributeStatus"),
            [
                "Accepted",
                "UnknownComponent",
                "UnknownVariable",
                "NotSupportedAttributeType",
                "Rejected",
                "Accepted",
                "UnknownComponent",
                "Accepted",
                "Accepted"
            ],
            "{v}: {r}"
        );
        let results = r["getVariableResult"].as_array().unwrap();
        assert_eq!(results[0]["attributeValue"], "300");
        assert!(
            results[4].get("attributeValue").is_none(),
            "write-only read back"
        );
        // 32 A on 3 phases at 230 V.
        assert_eq!(results[5]["attributeValue"], "22080", "{r}");
        assert_eq!(results[7]["attributeValue"], "Available");
        assert_eq!(results[8]["attributeValue"], "false");
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn set_variables_checks_values_against_characteristics() {
    for v in V2 {
        let mut pair = connected(v);
        let ctrl = |n: &str| json!({ "name": n });
        let mut max_set = set(ctrl("OCPPCommCtrlr"), "HeartbeatInterval", "10");
        max_set["attributeType"] = json!("MaxSet");
        let id = pair.central_call(
            "SetVariables",
            json!({ "setVariableData": [
                set(ctrl("OCPPCommCtrlr"), "HeartbeatInterval", "120"),
                set(ctrl("OCPPCommCtrlr"), "WebSocketPingInterval", "20"),
                set(ctrl("OCPPCommCtrlr"), "HeartbeatInterval", "0"),
                set(ctrl("OCPPCommCtrlr"), "HeartbeatInterval", "86401"),
                set(ctrl("AuthCtrlr"), "LocalPreAuthorize", "maybe"),
                set(ctrl("SampledDataCtrlr"), "TxUpdatedMeasurands", "Energy.Active.Import.Register,Bogus"),
                set(ctrl("SampledDataCtrlr"), "TxUpdatedMeasurands", "Power.Active.Import, Voltage"),
                set(ctrl("SecurityCtrlr"), "SecurityProfile", "2"),
                set(ctrl("Nope"), "HeartbeatInterval", "1"),
                set(ctrl("OCPPCommCtrlr"), "Nope", "1"),
                max_set,
                set(json!({"name": "EVSE", "evse": {"id": 1}}), "Power", "1000"),
            ]}),
        );
        let r = result(&pair, &id);
        assert_eq!(
            statuses(&r, "setVariableResult", "attributeStatus"),
            [
                "Accepted",
                "RebootRequired",
                "Rejected",
                "Rejected",
                "Rejected",
                "Rejected",
                "Accepted",
                "Rejected",
                "UnknownComponent",
                "UnknownVariable",
                "NotSupportedAttributeType",
                "Rejected"
            ],
            "{v}: {r}"
        );
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": [
                get(ctrl("OCPPCommCtrlr"), "HeartbeatInterval", None),
                get(ctrl("SampledDataCtrlr"), "TxUpdatedMeasurands", None),
            ]}),
        );
        let r = result(&pair, &id);
        assert_eq!(r["getVariableResult"][0]["attributeValue"], "120");
        assert_eq!(
            r["getVariableResult"][1]["attributeValue"],
            "Power.Active.Import,Voltage"
        );
    }
}

#[test]
fn oversized_requests_are_refused_whole() {
    for v in V2 {
        let mut pair = connected(v);
        let item = get(json!({"name": "OCPPCommCtrlr"}), "HeartbeatInterval", None);
        // 60,000 items: refused whole (the frame is beyond what the station reads, a
        // FormatViolation), nothing read.
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": vec![item.clone(); 60_000] }),
        );
        assert_eq!(error_code(&pair, &id), "FormatViolation");
        // One more than ItemsPerMessage[GetVariables] (50): OccurrenceConstraintViolation.
        let id = pair.central_call("GetVariables", json!({ "getVariableData": vec![item; 51] }));
        assert_eq!(error_code(&pair, &id), "OccurrenceConstraintViolation");
        let item = set(json!({"name": "OCPPCommCtrlr"}), "HeartbeatInterval", "60");
        let id = pair.central_call("SetVariables", json!({ "setVariableData": vec![item; 51] }));
        assert_eq!(error_code(&pair, &id), "OccurrenceConstraintViolation");
        // Nothing was set.
        assert_eq!(
            pair.station
                .settings()
                .get(ocpp_charger::Setting::HeartbeatInterval),
            "300"
        );
        // The station still answers.
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": [get(json!({"name": "OCPPCommCtrlr"}), "HeartbeatInterval", None)] }),
        );
        assert_eq!(
            result(&pair, &id)["getVariableResult"][0]["attributeStatus"],
            "Accepted"
        );
    }
}

/// The NotifyReports of `request_id`, in order.
fn reports(pair: &VirtualPair, request_id: i64) -> Vec<Value> {
    pair.central
        .payloads("NotifyReport")
        .into_iter()
        .filter(|p| p["requestId"] == request_id)
        .cloned()
        .collect()
}

fn items(parts: &[Value]) -> Vec<Value> {
    parts
        .iter()
        .flat_map(|p| p["reportData"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn base_reports_are_split_into_numbered_parts() {
    for v in V2 {
        let mut pair = connected(v);
        let id = pair.central_call(
            "GetBaseReport",
            json!({ "requestId": 7, "reportBase": "FullInventory" }),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.drive();
        let parts = reports(&pair, 7);
        assert!(parts.len() > 2, "{}", parts.len());
        for (n, p) in parts.iter().enumerate() {
            assert_eq!(p["seqNo"], n as i64);
            assert_eq!(p["tbc"], n + 1 < parts.len());
            assert!(p["reportData"].as_array().unwrap().len() <= 20);
        }
        let all = items(&parts);
        let hb = all
            .iter()
            .find(|i| i["variable"]["name"] == "HeartbeatInterval")
            .unwrap();
        assert_eq!(hb["variableCharacteristics"]["unit"], "s");
        assert_eq!(hb["variableCharacteristics"]["minLimit"], 1);
        assert_eq!(hb["variableCharacteristics"]["maxLimit"], 86400);
        assert_eq!(hb["variableAttribute"][0]["mutability"], "ReadWrite");
        let power = all
            .iter()
            .find(|i| i["component"]["name"] == "EVSE" && i["variable"]["name"] == "Power")
            .unwrap();
        let kinds: Vec<&str> = power["variableAttribute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Actual", "MaxSet"]);
        let start = all
            .iter()
            .find(|i| i["variable"]["name"] == "TxStartPoint")
            .unwrap();
        assert_eq!(start["variableCharacteristics"]["dataType"], "MemberList");

        // Configuration: only what can be set; the password without its value.
        let id = pair.central_call(
            "GetBaseReport",
            json!({ "requestId": 8, "reportBase": "ConfigurationInventory" }),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.drive();
        let config = items(&reports(&pair, 8));
        assert!(config.len() < all.len());
        assert!(config
            .iter()
            .all(|i| i["variableAttribute"][0]["mutability"] != "ReadOnly"));
        let pw = config
            .iter()
            .find(|i| i["variable"]["name"] == "BasicAuthPassword")
            .unwrap();
        assert!(pw["variableAttribute"][0].get("value").is_none());

        // Summary: availability of the station, EVSE and connector.
        let id = pair.central_call(
            "GetBaseReport",
            json!({ "requestId": 9, "reportBase": "SummaryInventory" }),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.drive();
        let summary = items(&reports(&pair, 9));
        let names: Vec<String> = summary
            .iter()
            .map(|i| {
                format!(
                    "{}.{}",
                    i["component"]["name"].as_str().unwrap(),
                    i["variable"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "ChargingStation.Available",
                "ChargingStation.AvailabilityState",
                "EVSE.AvailabilityState",
                "EVSE.Available",
                "Connector.AvailabilityState",
                "Connector.Available"
            ]
        );
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn get_report_filters_by_component_variable_and_criteria() {
    for v in V2 {
        let mut pair = connected(v);
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": 1, "componentVariable": [
                { "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": "HeartbeatInterval" } },
                { "component": { "name": "EVSE", "evse": { "id": 1 } } },
            ]}),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.drive();
        let got = items(&reports(&pair, 1));
        let names: Vec<String> = got
            .iter()
            .map(|i| {
                format!(
                    "{}.{}",
                    i["component"]["name"].as_str().unwrap(),
                    i["variable"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "OCPPCommCtrlr.HeartbeatInterval",
                "EVSE.AvailabilityState",
                "EVSE.Available",
                "EVSE.Problem",
                "EVSE.SupplyPhases",
                "EVSE.Power"
            ]
        );

        // The connector's type and the EVSE's phases and most power: what a CSMS's driver
        // search needs (the default connector type, three phases of 32 A at 230 V).
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": 9, "componentVariable": [
                { "component": { "name": "Connector", "evse": { "id": 1, "connectorId": 1 } }, "variable": { "name": "ConnectorType" } },
                { "component": { "name": "EVSE", "evse": { "id": 1 } }, "variable": { "name": "SupplyPhases" } },
                { "component": { "name": "EVSE", "evse": { "id": 1 } }, "variable": { "name": "Power" } },
            ]}),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.drive();
        let got = items(&reports(&pair, 9));
        let of = |name: &str| {
            got.iter()
                .find(|i| i["variable"]["name"] == name)
                .unwrap_or_else(|| panic!("no {name} in {got:?}"))
                .clone()
        };
        assert_eq!(
            (
                of("ConnectorType")["variableAttribute"][0]["value"].clone(),
                of("SupplyPhases")["variableAttribute"][0]["value"].clone(),
                of("Power")["variableCharacteristics"]["maxLimit"].clone()
            ),
            (json!("cType2"), json!("3"), json!(22080))
        );

        // Components whose Enabled is true: AuthCacheCtrlr is, until it is set false.
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": 2, "componentCriteria": ["Enabled"],
                    "componentVariable": [{ "component": { "name": "AuthCacheCtrlr" } }] }),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        let id = pair.central_call(
            "SetVariables",
            json!({ "setVariableData": [set(json!({"name": "AuthCacheCtrlr"}), "Enabled", "false")] }),
        );
        assert_eq!(
            result(&pair, &id)["setVariableResult"][0]["attributeStatus"],
            "Accepted"
        );
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": 3, "componentCriteria": ["Enabled"],
                    "componentVariable": [{ "component": { "name": "AuthCacheCtrlr" } }] }),
        );
        assert_eq!(result(&pair, &id)["status"], "EmptyResultSet");
        // Problem: nothing is faulted.
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": 4, "componentCriteria": ["Problem"] }),
        );
        assert_eq!(result(&pair, &id)["status"], "EmptyResultSet");
        pair.drive();
        assert!(reports(&pair, 3).is_empty() && reports(&pair, 4).is_empty());
        // Too many filters: refused whole.
        let cv = json!({ "component": { "name": "OCPPCommCtrlr" } });
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": 5, "componentVariable": vec![cv; 21] }),
        );
        assert_eq!(error_code(&pair, &id), "OccurrenceConstraintViolation");
    }
}

#[test]
fn configuration_1_6_is_bounded_and_checked() {
    let mut pair = connected(Version::V16);
    let keys: Vec<String> = (0..51).map(|i| format!("K{i}")).collect();
    let id = pair.central_call("GetConfiguration", json!({ "key": keys }));
    assert_eq!(error_code(&pair, &id), "OccurenceConstraintViolation");
    let id = pair.central_call(
        "GetConfiguration",
        json!({ "key": ["HeartbeatInterval", "Nope", "AuthorizationKey"] }),
    );
    let r = result(&pair, &id);
    assert_eq!(r["unknownKey"], json!(["Nope"]));
    assert_eq!(r["configurationKey"][0]["value"], "300");
    assert!(r["configurationKey"][1].get("value").is_none());
    for (key, value, want) in [
        ("HeartbeatInterval", "60", "Accepted"),
        ("HeartbeatInterval", "-1", "Rejected"),
        ("NumberOfConnectors", "4", "Rejected"),
        ("WebSocketPingInterval", "10", "RebootRequired"),
        ("NoSuchKey", "1", "NotSupported"),
    ] {
        let id = pair.central_call("ChangeConfiguration", json!({ "key": key, "value": value }));
        assert_eq!(result(&pair, &id)["status"], want, "{key}={value}");
    }
    // 1.6 has no device model.
    assert!(pair.station.device_model(pair.clock.now()).is_empty());
}

fn monitor(component: Value, variable: &str, kind: &str, value: Value, severity: i64) -> Value {
    json!({
        "component": component,
        "variable": { "name": variable },
        "type": kind,
        "value": value,
        "severity": severity,
    })
}

fn events(pair: &VirtualPair) -> Vec<Value> {
    pair.central
        .payloads("NotifyEvent")
        .into_iter()
        .flat_map(|p| p["eventData"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn set_variable_monitoring_answers_every_status() {
    for v in V2 {
        let mut pair = connected(v);
        let comm = json!({ "name": "OCPPCommCtrlr" });
        let id = pair.central_call(
            "SetVariableMonitoring",
            json!({ "setMonitoringData": [
                monitor(comm.clone(), "HeartbeatInterval", "UpperThreshold", json!(600), 2),
                monitor(comm.clone(), "HeartbeatInterval", "UpperThreshold", json!(900), 2),
                monitor(json!({"name": "Nope"}), "HeartbeatInterval", "Delta", json!(1), 5),
                monitor(comm.clone(), "Nope", "Delta", json!(1), 5),
                monitor(json!({"name": "TxCtrlr"}), "TxStartPoint", "UpperThreshold", json!(1), 5),
                monitor(comm.clone(), "HeartbeatInterval", "Periodic", json!(0), 5),
                monitor(json!({"name": "SecurityCtrlr"}), "BasicAuthPassword", "Delta", json!(1), 5),
                // A threshold of 10^15 W: accepted, never crossed.
                monitor(json!({"name": "EVSE", "evse": {"id": 1}}), "Power", "UpperThreshold",
                        json!(1_000_000_000_000_000_i64), 1),
            ]}),
        );
        let r = result(&pair, &id);
        assert_eq!(
            statuses(&r, "setMonitoringResult", "status"),
            [
                "Accepted",
                "Duplicate",
                "UnknownComponent",
                "UnknownVariable",
                "Rejected",
                "Rejected",
                "Rejected",
                "Accepted"
            ],
            "{v}: {r}"
        );
        let first = r["setMonitoringResult"][0]["id"].as_i64().unwrap();
        // The largest decimal is not held exactly by the station's types: Rejected, nothing
        // is installed.
        let id = pair.central_call_raw(
            "SetVariableMonitoring",
            r#"{"setMonitoringData":[{"component":{"name":"EVSE","evse":{"id":1}},"variable":{"name":"Power"},"type":"UpperThreshold","value":79228162514264337593543950335,"severity":2}]}"#,
        );
        assert_eq!(
            result(&pair, &id)["setMonitoringResult"][0]["status"],
            "Rejected"
        );
        assert_eq!(pair.station.monitors().len(), 2);
        // Replacing a monitor by id; an unknown id is Rejected.
        let mut again = monitor(
            comm.clone(),
            "HeartbeatInterval",
            "UpperThreshold",
            json!(700),
            2,
        );
        again["id"] = json!(first);
        let mut unknown = monitor(
            comm.clone(),
            "HeartbeatInterval",
            "LowerThreshold",
            json!(5),
            2,
        );
        unknown["id"] = json!(9999);
        let id = pair.central_call(
            "SetVariableMonitoring",
            json!({ "setMonitoringData": [again, unknown] }),
        );
        assert_eq!(
            statuses(&result(&pair, &id), "setMonitoringResult", "status"),
            ["Accepted", "Rejected"]
        );
        assert_eq!(pair.station.monitors().len(), 2);
        // The report, then clearing.
        let id = pair.central_call(
            "GetMonitoringReport",
            json!({ "requestId": 4, "monitoringCriteria": ["ThresholdMonitoring"] }),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.drive();
        let report = pair.central.payloads("NotifyMonitoringReport");
        assert_eq!(report.len(), 1);
        assert_eq!(report[0]["monitor"].as_array().unwrap().len(), 2);
        let id = pair.central_call(
            "GetMonitoringReport",
            json!({ "requestId": 5, "monitoringCriteria": ["PeriodicMonitoring"] }),
        );
        assert_eq!(result(&pair, &id)["status"], "EmptyResultSet");
        let id = pair.central_call("ClearVariableMonitoring", json!({ "id": [first, 4242] }));
        assert_eq!(
            statuses(&result(&pair, &id), "clearMonitoringResult", "status"),
            ["Accepted", "NotFound"]
        );
        let id = pair.central_call("SetMonitoringLevel", json!({ "severity": 10 }));
        assert_eq!(result(&pair, &id)["status"], "Rejected");
        let id = pair.central_call(
            "SetMonitoringBase",
            json!({ "monitoringBase": "FactoryDefault" }),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        assert!(pair.station.monitors().is_empty());
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn monitors_raise_events_on_threshold_delta_and_period() {
    for v in V2 {
        let mut pair = connected(v);
        let evse = json!({ "name": "EVSE", "evse": { "id": 1 } });
        let comm = json!({ "name": "OCPPCommCtrlr" });
        let id = pair.central_call(
            "SetVariableMonitoring",
            json!({ "setMonitoringData": [
                monitor(evse.clone(), "Power", "UpperThreshold", json!(5000), 3),
                monitor(comm.clone(), "HeartbeatInterval", "Delta", json!(100), 4),
                monitor(json!({"name": "ChargingStation"}), "AvailabilityState", "Periodic", json!(60), 8),
            ]}),
        );
        let r = result(&pair, &id);
        assert_eq!(
            statuses(&r, "setMonitoringResult", "status"),
            ["Accepted", "Accepted", "Accepted"]
        );
        let power_id = r["setMonitoringResult"][0]["id"].clone();
        pair.drive();
        assert!(events(&pair).is_empty(), "{:?}", events(&pair));

        // Charging at 7.4 kW crosses 5 kW: Alerting.
        pair.plug_in(1);
        pair.present(1, "TAG");
        pair.advance(Duration::from_secs(1));
        let e = events(&pair);
        let alert: Vec<&Value> = e.iter().filter(|e| e["trigger"] == "Alerting").collect();
        assert_eq!(alert.len(), 1, "{e:?}");
        assert_eq!(alert[0]["variableMonitoringId"], power_id);
        assert!(alert[0].get("cleared").is_none());
        assert_eq!(alert[0]["actualValue"], "7400");

        // A change of 50 s is below the delta; 200 s more is not.
        let hb = |pair: &mut VirtualPair, value: &str| {
            let id = pair.central_call(
                "SetVariables",
                json!({ "setVariableData": [set(json!({"name": "OCPPCommCtrlr"}), "HeartbeatInterval", value)] }),
            );
            assert_eq!(
                result(pair, &id)["setVariableResult"][0]["attributeStatus"],
                "Accepted"
            );
            pair.drive();
        };
        hb(&mut pair, "350");
        assert!(!events(&pair).iter().any(|e| e["trigger"] == "Delta"));
        hb(&mut pair, "500");
        let deltas: Vec<Value> = events(&pair)
            .into_iter()
            .filter(|e| e["trigger"] == "Delta")
            .collect();
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0]["actualValue"], "500");

        // The periodic monitor: one event a minute on the injected clock.
        let periodic = |pair: &VirtualPair| {
            events(pair)
                .iter()
                .filter(|e| e["trigger"] == "Periodic")
                .count()
        };
        let before = periodic(&pair);
        pair.advance(Duration::from_secs(60));
        assert_eq!(periodic(&pair), before + 1);
        pair.advance(Duration::from_secs(120));
        assert_eq!(periodic(&pair), before + 3);

        // The monitoring level hides the periodic one (severity 8).
        let id = pair.central_call("SetMonitoringLevel", json!({ "severity": 5 }));
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.advance(Duration::from_secs(120));
        assert_eq!(periodic(&pair), before + 3);

        // Unplugged: the power falls back, the alert is cleared.
        pair.unplug(1);
        pair.advance(Duration::from_secs(1));
        let cleared: Vec<Value> = events(&pair)
            .into_iter()
            .filter(|e| e["cleared"] == true)
            .collect();
        assert_eq!(cleared.len(), 1, "{:?}", events(&pair));
        assert_eq!(cleared[0]["variableMonitoringId"], power_id);

        // Event ids are unique.
        let mut ids: Vec<i64> = events(&pair)
            .iter()
            .map(|e| e["eventId"].as_i64().unwrap())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn variables_and_monitors_survive_a_restart() {
    for v in V2 {
        let store = MemoryStore::new();
        let clock = TestClock::new();
        let mut pair = connected_with(v, store.clone(), clock);
        let id = pair.central_call(
            "SetVariables",
            json!({ "setVariableData": [
                set(json!({"name": "OCPPCommCtrlr"}), "OfflineThreshold", "123"),
                set(json!({"name": "TxCtrlr"}), "EVConnectionTimeOut", "45"),
            ]}),
        );
        assert_eq!(
            statuses(&result(&pair, &id), "setVariableResult", "attributeStatus"),
            ["Accepted", "Accepted"]
        );
        let id = pair.central_call(
            "SetVariableMonitoring",
            json!({ "setMonitoringData": [monitor(json!({"name": "EVSE", "evse": {"id": 1}}), "Power", "LowerThreshold", json!(10), 1)] }),
        );
        assert_eq!(
            result(&pair, &id)["setMonitoringResult"][0]["status"],
            "Accepted"
        );
        pair.drive();
        drop(pair);

        let mut pair = connected_with(v, store, clock);
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": [
                get(json!({"name": "OCPPCommCtrlr"}), "OfflineThreshold", None),
                get(json!({"name": "TxCtrlr"}), "EVConnectionTimeOut", None),
            ]}),
        );
        let r = result(&pair, &id);
        assert_eq!(r["getVariableResult"][0]["attributeValue"], "123");
        assert_eq!(r["getVariableResult"][1]["attributeValue"], "45");
        assert_eq!(pair.station.monitors().len(), 1);
    }
}

#[test]
fn a_hardware_fault_is_a_problem_in_reports() {
    for v in V2 {
        let mut pair = connected(v);
        pair.station_input(|st, now| {
            st.handle_hardware(
                now,
                HardwareEvent::Fault {
                    evse: 1,
                    faulted: true,
                },
            )
        });
        pair.drive();
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": 11, "componentCriteria": ["Problem"] }),
        );
        assert_eq!(result(&pair, &id)["status"], "Accepted");
        pair.drive();
        let got = items(&reports(&pair, 11));
        assert!(got.iter().all(
            |i| ["EVSE", "ChargingStation"].contains(&i["component"]["name"].as_str().unwrap())
        ));
        assert!(got
            .iter()
            .any(|i| i["variable"]["name"] == "Problem"
                && i["variableAttribute"][0]["value"] == "true"));
    }
}
