//! OCPP 2.1 bidirectional charging (V2X) and DER control end to end over real sockets: the
//! example central system and an ocpp-charger station with the simulated hardware on
//! 127.0.0.1. A TxDefaultProfile with a negative setpoint, sent through the API, makes the
//! simulator discharge: the session's power is negative, the export register grows and
//! the import register stands still. DER controls are set and cleared through the API with
//! the station's answers, and the station's DER alarm is stored and listed.

use std::time::{Duration, Instant};

use ocpp_charger::ws::{self, ClientConfig, ClientHandle};
use ocpp_charger::{HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station, StationConfig};
use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[path = "support/e2e.rs"]
mod e2e;
use e2e::until;
#[path = "support/api.rs"]
mod api;
use api::Api;

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => s.parse().unwrap_or_default(),
        other => other.to_string().parse().unwrap_or_default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discharge_setpoint_makes_the_simulator_export() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts");
    let api = Api::admin(&central).await;
    let id = "V2X-21";
    let mut store = MemoryStore::new();
    let saved = Saved::load(&mut store).expect("loads");
    let station = Station::new(
        StationConfig::new(id, Version::V21)
            .evses(1)
            .validate_outgoing(true)
            .der(&["LimitMaxDischarge", "VoltVar"]),
        Box::new(SimulatedHardware::new(1, Decimal::from(11_000))),
        saved,
        Instant::now(),
    );
    let cp: ClientHandle = ws::spawn(
        station,
        Box::new(store),
        ClientConfig::new(format!("ws://{}/ocpp", central.ocpp_addr()))
            .backoff(Duration::from_millis(50), Duration::from_millis(300)),
    );
    until("connected", || async {
        let (s, c) = api.get(&format!("/api/chargers/{id}")).await;
        (s == StatusCode::OK && c["connected"] == true).then_some(c)
    })
    .await;

    // Sample power and both registers every second.
    let (s, r) = api
        .post(
            &format!("/api/chargers/{id}/call/SetVariables"),
            json!({ "setVariableData": [
                { "component": { "name": "SampledDataCtrlr" }, "variable": { "name": "TxUpdatedMeasurands" },
                  "attributeValue": "Energy.Active.Import.Register,Energy.Active.Export.Register,Power.Active.Import" },
                { "component": { "name": "SampledDataCtrlr" }, "variable": { "name": "TxUpdatedInterval" },
                  "attributeValue": "1" } ] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // A default profile: follow a setpoint of -3 kW (discharge at most 5 kW).
    let (s, r) = api
        .post(
            &format!("/api/chargers/{id}/call/SetChargingProfile"),
            json!({ "evseId": 1, "chargingProfile": {
                "id": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [{ "id": 7, "startSchedule": "2020-01-01T00:00:00Z", "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 11000, "dischargeLimit": -5000,
                        "setpoint": -3000, "operationMode": "CentralSetpoint" }] }] } }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "Accepted", "{r}");

    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .unwrap();
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: "V2X-TAG".into(),
    })
    .unwrap();
    let session = until("a discharging session", || async {
        let (_, list) = api.get(&format!("/api/sessions?charger={id}")).await;
        list.as_array()?
            .iter()
            .find(|s| dec(&s["powerW"]) == Decimal::from(-3000))
            .cloned()
    })
    .await;
    let sid = session["id"].as_i64().unwrap();
    let detail = until("export registered", || async {
        let (_, s) = api.get(&format!("/api/sessions/{sid}")).await;
        let exported = s["samples"].as_array()?.iter().rev().find(|x| {
            x["measurand"] == "Energy.Active.Export.Register" && dec(&x["value"]) > Decimal::ZERO
        })?;
        let _ = exported;
        Some(s)
    })
    .await;
    // The import register stood still: the session imported nothing.
    assert_eq!(dec(&detail["energyWhExact"]), Decimal::ZERO, "{detail}");
    let imports: Vec<Decimal> = detail["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["measurand"] == "Energy.Active.Import.Register")
        .map(|x| dec(&x["value"]))
        .collect();
    assert!(imports.iter().all(|v| v.is_zero()), "{imports:?}");

    // DER control through the API: accepted, a missing curve rejected, cleared.
    let path = format!("/api/chargers/{id}/der-controls");
    let (s, r) = api
        .post(
            &path,
            json!({ "isDefault": false, "controlId": "LMD-1", "controlType": "LimitMaxDischarge",
                    "limitMaxDischarge": { "priority": 1, "pctMaxDischargePower": 50 } }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "Accepted", "{r}");
    let (_, r) = api
        .post(
            &path,
            json!({ "isDefault": true, "controlId": "VV-1", "controlType": "VoltVar" }),
        )
        .await;
    assert_eq!(r["status"], "Rejected", "{r}");
    let (s, r) = api
        .post(&path, json!({ "isDefault": true, "controlType": "Bogus" }))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");
    let (_, r) = api.delete(&format!("{path}/LMD-1")).await;
    assert_eq!(r["status"], "Accepted", "{r}");
    let (_, r) = api.delete(&format!("{path}/LMD-1")).await;
    assert_eq!(r["status"], "NotFound", "{r}");

    // The station's DER alarm is stored and listed.
    cp.with(|st, now| {
        st.der_alarm(now, "HVMustTrip", Some("OverVoltage"), false, Some("253 V"));
    })
    .unwrap();
    let alarm = until("the DER alarm", || async {
        let (_, list) = api.get(&format!("/api/der-events?charger={id}")).await;
        list.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(alarm["kind"], "Alarm");
    assert_eq!(alarm["control"], "HVMustTrip");
    assert_eq!(alarm["gridEventFault"], "OverVoltage");
    assert_eq!(alarm["detail"], "253 V");
    let (s, _) = api.get("/api/der-events?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    cp.shutdown().await;
}
