//! OCPP 2.1 bidirectional charging (V2X) on the station, on virtual time: discharge limits,
//! setpoints and operation modes in the composite schedule (the discharge limit closest to
//! zero of every profile, the transaction's setpoint kept within it and the limit), the
//! setpoint given to the hardware, and the simulated EV discharging: negative power, the
//! export register growing, the import register standing still.

use std::time::Duration;

use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, Version};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn connected() -> VirtualPair {
    let clock = TestClock::new();
    let mut pair = VirtualPair::with(
        test_config(Version::V21, &clock),
        Box::new(MemoryStore::new()),
        MockCentral::new(Version::V21),
        clock,
    );
    pair.connect();
    pair
}

fn answer(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("call {id}: {other:?}"),
    }
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.to_string().parse().unwrap(),
    }
}

fn set(pair: &mut VirtualPair, evse: i64, profile: Value) -> Value {
    let id = pair.central_call(
        "SetChargingProfile",
        json!({ "evseId": evse, "chargingProfile": profile }),
    );
    answer(pair, &id)
}

/// The station maximum: 11 kW, discharge at most 3 kW.
fn station_max() -> Value {
    json!({ "id": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [{ "id": 1, "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 11000, "dischargeLimit": -3000 }] }] })
}

/// The EVSE's default: ten minutes of a central setpoint of -5 kW (discharge, at most
/// 7 kW), then charging only at 7.4 kW.
fn v2x_default() -> Value {
    json!({ "id": 2, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [{ "id": 2, "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    { "startPeriod": 0, "limit": 11000, "dischargeLimit": -7000, "setpoint": -5000,
                      "setpointReactive": 100, "operationMode": "CentralSetpoint" },
                    { "startPeriod": 600, "limit": 7400, "operationMode": "ChargingOnly" }
                ] }] })
}

#[test]
fn the_composite_carries_discharge_limits_and_setpoints() {
    let mut pair = connected();
    assert_eq!(set(&mut pair, 0, station_max())["status"], "Accepted");
    assert_eq!(set(&mut pair, 1, v2x_default())["status"], "Accepted");
    let id = pair.central_call(
        "GetCompositeSchedule",
        json!({ "evseId": 1, "duration": 1200, "chargingRateUnit": "W" }),
    );
    let a = answer(&pair, &id);
    assert_eq!(a["status"], "Accepted", "{a}");
    let periods = a["schedule"]["chargingSchedulePeriod"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "{a}");
    // The setpoint -5 kW is kept within the station's discharge limit of -3 kW.
    let p0 = &periods[0];
    assert_eq!(p0["startPeriod"], 0);
    assert_eq!(dec(&p0["limit"]), Decimal::from(11000));
    assert_eq!(dec(&p0["dischargeLimit"]), Decimal::from(-3000));
    assert_eq!(dec(&p0["setpoint"]), Decimal::from(-3000));
    assert_eq!(dec(&p0["setpointReactive"]), Decimal::from(100));
    assert_eq!(p0["operationMode"], "CentralSetpoint");
    let p1 = &periods[1];
    assert_eq!(p1["startPeriod"], 600);
    assert_eq!(dec(&p1["limit"]), Decimal::from(7400));
    assert!(p1.get("setpoint").is_none(), "{p1}");
    assert_eq!(p1["operationMode"], "ChargingOnly");
    assert_eq!(dec(&p1["dischargeLimit"]), Decimal::from(-3000));

    // In amperes (230 V, 3 phases): -3000 W is -4.3 A rounded towards zero.
    let id = pair.central_call(
        "GetCompositeSchedule",
        json!({ "evseId": 1, "duration": 300, "chargingRateUnit": "A" }),
    );
    let a = answer(&pair, &id);
    let p0 = &a["schedule"]["chargingSchedulePeriod"][0];
    assert_eq!(dec(&p0["setpoint"]), Decimal::new(-43, 1));

    // A setpoint above the limit is held at the limit.
    let mut high = v2x_default();
    high["id"] = json!(3);
    high["stackLevel"] = json!(1);
    high["chargingSchedule"][0]["chargingSchedulePeriod"] =
        json!([{ "startPeriod": 0, "limit": 11000, "setpoint": 20000 }]);
    assert_eq!(set(&mut pair, 1, high)["status"], "Accepted");
    let id = pair.central_call(
        "GetCompositeSchedule",
        json!({ "evseId": 1, "duration": 60, "chargingRateUnit": "W" }),
    );
    let p0 = answer(&pair, &id)["schedule"]["chargingSchedulePeriod"][0].clone();
    assert_eq!(dec(&p0["setpoint"]), Decimal::from(11000));
    pair.assert_no_invalid_outgoing();
}

#[test]
fn a_negative_setpoint_makes_the_simulated_ev_discharge() {
    let mut pair = connected();
    let id = pair.central_call(
        "SetVariables",
        json!({ "setVariableData": [{ "component": { "name": "SampledDataCtrlr" },
            "variable": { "name": "TxUpdatedMeasurands" },
            "attributeValue": "Energy.Active.Import.Register,Energy.Active.Export.Register,Power.Active.Import" }] }),
    );
    assert_eq!(
        answer(&pair, &id)["setVariableResult"][0]["attributeStatus"],
        "Accepted"
    );
    assert_eq!(set(&mut pair, 0, station_max())["status"], "Accepted");
    assert_eq!(set(&mut pair, 1, v2x_default())["status"], "Accepted");
    pair.plug_in(1);
    pair.present(1, "TAG1");
    pair.advance(Duration::from_secs(300));
    let mut samples: Vec<(String, Decimal)> = Vec::new();
    for p in pair.central.payloads("TransactionEvent") {
        for mv in p["meterValue"].as_array().into_iter().flatten() {
            for sv in mv["sampledValue"].as_array().into_iter().flatten() {
                samples.push((
                    sv["measurand"].as_str().unwrap_or("").to_owned(),
                    dec(&sv["value"]),
                ));
            }
        }
    }
    let last = |m: &str| {
        samples
            .iter()
            .rev()
            .find(|(n, _)| n == m)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {m} in {samples:?}"))
    };
    // Discharging at the station's limit of 3 kW: the power is negative, the export
    // register grows (3 kW for ~300 s is ~250 Wh), the import register stands still.
    assert_eq!(last("Power.Active.Import"), Decimal::from(-3000));
    let exported = last("Energy.Active.Export.Register");
    assert!(
        exported > Decimal::from(200) && exported <= Decimal::from(250),
        "{exported}"
    );
    assert_eq!(last("Energy.Active.Import.Register"), Decimal::ZERO);
    // After ten minutes the default charges again.
    pair.advance(Duration::from_secs(400));
    let mut powers = Vec::new();
    for p in pair.central.payloads("TransactionEvent") {
        for mv in p["meterValue"].as_array().into_iter().flatten() {
            for sv in mv["sampledValue"].as_array().into_iter().flatten() {
                if sv["measurand"] == "Power.Active.Import" {
                    powers.push(dec(&sv["value"]));
                }
            }
        }
    }
    assert_eq!(*powers.last().unwrap(), Decimal::from(7400));
    pair.assert_no_invalid_outgoing();
}
