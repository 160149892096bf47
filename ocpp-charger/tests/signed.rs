//! Signed meter values on virtual time: the meter's signed form of a reading goes out as 1.6
//! `SignedData` and 2.x `signedMeterValue` when the sign-readings settings say so, with the
//! public key as `PublicKeyWithSignedMeterValue` asks.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{
    MemoryStore, Saved, SignRequest, SignedReading, SimulatedHardware, Station, Version,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const KEY_HEX: &str = "3059301306072A8648CE3D020106082A8648CE3D03010703420004AB";

/// A pair whose meter "signs" deterministically: the OCMF-like data names the context, the
/// transaction, the token and the register, so each test sees exactly what was signed.
fn pair(version: Version) -> VirtualPair {
    let clock = TestClock::new();
    pair_on(
        version,
        MemoryStore::new(),
        clock,
        MockCentral::new(version),
    )
}

/// A signing pair on `store` (a restart: the same store, the same central system and clock).
fn pair_on(
    version: Version,
    store: MemoryStore,
    clock: TestClock,
    central: MockCentral,
) -> VirtualPair {
    let cfg = test_config(version, &clock);
    let signer = Arc::new(|r: &SignRequest<'_>, m: &ocpp_charger::MeterReading| {
        Some(SignedReading {
            data: format!(
                "OCMF|{{\"TX\":\"{}\",\"TID\":\"{}\",\"ID\":\"{}\",\"RV\":{},\"TM\":\"{}\"}}|{{\"SD\":\"00\"}}",
                r.context,
                r.transaction_id.unwrap_or("-"),
                r.id_token.unwrap_or("-"),
                m.energy_wh,
                r.timestamp.to_rfc3339(),
            ),
            encoding: "OCMF".to_owned(),
            signing_method: Some("ECDSA-secp256r1-SHA256".to_owned()),
            public_key: Some(KEY_HEX.to_owned()),
        })
    });
    let hw = SimulatedHardware::new(1, Decimal::from(7400)).with_signer(signer);
    let mut loader = store.clone();
    let saved = Saved::load(&mut loader).unwrap();
    let station = Station::new(cfg, Box::new(hw), saved, clock.now());
    VirtualPair::from_station(station, Box::new(store), central, clock)
}

fn set(pair: &mut VirtualPair, component: &str, name: &str, value: &str) {
    if pair.station.version() == Version::V16 {
        let id = pair.central_call(
            "ChangeConfiguration",
            json!({ "key": name, "value": value }),
        );
        assert_eq!(
            pair.central.answer(&id).unwrap().as_ref().unwrap()["status"],
            "Accepted"
        );
    } else {
        let id = pair.central_call(
            "SetVariables",
            json!({ "setVariableData": [{
                "attributeValue": value,
                "component": { "name": component },
                "variable": { "name": name },
            }] }),
        );
        let answer = pair.central.answer(&id).unwrap().as_ref().unwrap().clone();
        assert_eq!(
            answer["setVariableResult"][0]["attributeStatus"], "Accepted",
            "{name}={value}: {answer}"
        );
    }
}

/// Every sampled value of a kind in the messages the central system received.
fn sampled(pair: &VirtualPair, action: &str, key: &str) -> Vec<Value> {
    pair.central
        .payloads(action)
        .into_iter()
        .flat_map(|p| {
            p.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|mv| mv["sampledValue"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn charge(pair: &mut VirtualPair) {
    pair.plug_in(1);
    pair.present(1, "TAG1");
    pair.advance(Duration::from_secs(125));
    pair.present(1, "TAG1");
    pair.unplug(1);
}

#[test]
fn nothing_is_signed_by_default() {
    for v in [Version::V16, Version::V201, Version::V21] {
        let mut pair = pair(v);
        pair.connect();
        charge(&mut pair);
        for (action, key) in [
            ("MeterValues", "meterValue"),
            ("StopTransaction", "transactionData"),
            ("TransactionEvent", "meterValue"),
        ] {
            for s in sampled(&pair, action, key) {
                assert!(s.get("signedMeterValue").is_none(), "{v}: {s}");
                assert_ne!(s["format"], "SignedData", "{v}: {s}");
            }
        }
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn v16_sends_signed_data_next_to_the_plain_register() {
    let mut pair = pair(Version::V16);
    pair.connect();
    set(&mut pair, "", "SampledDataSignReadings", "true");
    charge(&mut pair);
    // The signed begin reading follows StartTransaction as MeterValues (Transaction.Begin),
    // with the central system's transaction id filled in by the outbox.
    let mvs = pair.central.payloads("MeterValues");
    assert_eq!(mvs[0]["transactionId"], 1, "{:?}", mvs[0]);
    let all = sampled(&pair, "MeterValues", "meterValue");
    let begin = all
        .iter()
        .filter(|s| s["format"] == "SignedData" && s["context"] == "Transaction.Begin")
        .count();
    assert_eq!(begin, 1, "{all:?}");
    let periodic: Vec<Value> = all
        .iter()
        .filter(|s| s["context"] == "Sample.Periodic")
        .cloned()
        .collect();
    let signed: Vec<&Value> = periodic
        .iter()
        .filter(|s| s["format"] == "SignedData")
        .collect();
    assert_eq!(signed.len(), 2, "{periodic:?}");
    let plain: Vec<&Value> = periodic.iter().filter(|s| s["format"] == "Raw").collect();
    assert_eq!(plain.len(), 2);
    let first = signed[0];
    assert_eq!(first["context"], "Sample.Periodic");
    assert_eq!(first["measurand"], "Energy.Active.Import.Register");
    let data = first["value"].as_str().unwrap();
    // The central system's transaction id (1 from the mock) and the token are signed.
    assert!(
        data.starts_with(r#"OCMF|{"TX":"Sample.Periodic","TID":"1","ID":"TAG1","RV":"#),
        "{data}"
    );
    // The plain register of the same reading.
    assert!(data.contains(&format!("\"RV\":{}", plain[0]["value"].as_str().unwrap())));
    // The end reading is signed in StopTransaction's transactionData, even with
    // StopTxnSampledData empty.
    let end = sampled(&pair, "StopTransaction", "transactionData");
    assert!(end
        .iter()
        .any(|s| s["format"] == "SignedData" && s["context"] == "Transaction.End"));
    pair.assert_no_invalid_outgoing();
}

#[test]
fn v16_aligned_readings_sign_by_their_own_setting() {
    let mut pair = pair(Version::V16);
    pair.connect();
    set(&mut pair, "", "ClockAlignedDataInterval", "900");
    set(&mut pair, "", "AlignedDataSignReadings", "true");
    pair.advance(Duration::from_secs(901));
    let aligned = sampled(&pair, "MeterValues", "meterValue");
    assert!(
        aligned
            .iter()
            .any(|s| s["format"] == "SignedData" && s["context"] == "Sample.Clock"),
        "{aligned:?}"
    );
    assert!(aligned[0]["value"].is_string());
    pair.assert_no_invalid_outgoing();
}

fn key_b64() -> String {
    let bytes: Vec<u8> = (0..KEY_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&KEY_HEX[i..i + 2], 16).unwrap())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn signed_values(pair: &VirtualPair) -> Vec<Value> {
    sampled(pair, "TransactionEvent", "meterValue")
        .into_iter()
        .filter_map(|s| s.get("signedMeterValue").cloned())
        .collect()
}

#[test]
fn v2_signs_begin_periodic_and_end_with_the_key_once_per_transaction() {
    for v in [Version::V201, Version::V21] {
        let mut pair = pair(v);
        pair.connect();
        set(&mut pair, "SampledDataCtrlr", "SignReadings", "true");
        set(
            &mut pair,
            "OCPPCommCtrlr",
            "PublicKeyWithSignedMeterValue",
            "OncePerTransaction",
        );
        charge(&mut pair);
        let signed = signed_values(&pair);
        // Started (Transaction.Begin), two periodic Updated, Ended.
        assert_eq!(signed.len(), 4, "{v}: {signed:?}");
        let b64 = base64::engine::general_purpose::STANDARD;
        let data: Vec<String> = signed
            .iter()
            .map(|s| {
                String::from_utf8(b64.decode(s["signedMeterData"].as_str().unwrap()).unwrap())
                    .unwrap()
            })
            .collect();
        assert!(data[0].contains("\"TX\":\"Transaction.Begin\""), "{v}");
        assert!(data[1].contains("\"TX\":\"Sample.Periodic\""), "{v}");
        assert!(data[3].contains("\"TX\":\"Transaction.End\""), "{v}");
        assert!(data.iter().all(|d| d.contains("\"ID\":\"TAG1\"")));
        assert!(signed.iter().all(|s| s["encodingMethod"] == "OCMF"));
        // The key goes with the first value only.
        assert_eq!(signed[0]["publicKey"], key_b64(), "{v}");
        for s in &signed[1..] {
            match v {
                // 2.0.1 requires the field: empty.
                Version::V201 => assert_eq!(s["publicKey"], "", "{s}"),
                _ => assert!(s.get("publicKey").is_none(), "{s}"),
            }
        }
        // Each signed value sits on the energy register's sampled value.
        for s in sampled(&pair, "TransactionEvent", "meterValue") {
            if s.get("signedMeterValue").is_some() {
                assert_eq!(s["measurand"], "Energy.Active.Import.Register");
            }
        }
        pair.assert_no_invalid_outgoing();
    }
}

#[test]
fn v2_key_policy_every_value_and_never() {
    for (policy, with_key) in [("EveryMeterValue", 4), ("Never", 0)] {
        let mut pair = pair(Version::V21);
        pair.connect();
        set(&mut pair, "SampledDataCtrlr", "SignReadings", "true");
        set(
            &mut pair,
            "OCPPCommCtrlr",
            "PublicKeyWithSignedMeterValue",
            policy,
        );
        charge(&mut pair);
        let signed = signed_values(&pair);
        assert_eq!(signed.len(), 4);
        assert_eq!(
            signed
                .iter()
                .filter(|s| s.get("publicKey").is_some())
                .count(),
            with_key,
            "{policy}"
        );
        pair.assert_no_invalid_outgoing();
    }
    // A value outside the option list is refused.
    let mut pair = pair(Version::V201);
    pair.connect();
    let id = pair.central_call(
        "SetVariables",
        json!({ "setVariableData": [{
            "attributeValue": "Sometimes",
            "component": { "name": "OCPPCommCtrlr" },
            "variable": { "name": "PublicKeyWithSignedMeterValue" },
        }] }),
    );
    assert_eq!(
        pair.central.answer(&id).unwrap().as_ref().unwrap()["setVariableResult"][0]
            ["attributeStatus"],
        "Rejected"
    );
}

#[test]
fn a_meter_that_cannot_sign_leaves_the_values_plain() {
    let clock = TestClock::new();
    let cfg = test_config(Version::V201, &clock);
    let mut pair = VirtualPair::with(
        cfg,
        Box::new(MemoryStore::new()),
        MockCentral::new(Version::V201),
        clock,
    );
    pair.connect();
    set(&mut pair, "SampledDataCtrlr", "SignReadings", "true");
    charge(&mut pair);
    assert!(signed_values(&pair).is_empty());
    assert_eq!(pair.central.actions_named("TransactionEvent"), 4);
    pair.assert_no_invalid_outgoing();
}

#[test]
fn once_per_transaction_is_remembered_across_a_restart() {
    for v in [Version::V201, Version::V21] {
        let store = MemoryStore::new();
        let mut pair = pair_on(v, store.clone(), TestClock::new(), MockCentral::new(v));
        pair.connect();
        set(&mut pair, "SampledDataCtrlr", "SignReadings", "true");
        set(
            &mut pair,
            "OCPPCommCtrlr",
            "PublicKeyWithSignedMeterValue",
            "OncePerTransaction",
        );
        pair.plug_in(1);
        pair.present(1, "TAG1");
        pair.advance(Duration::from_secs(61));
        let VirtualPair {
            station,
            mut central,
            clock,
            ..
        } = pair;
        drop(station);
        central.reconnect();
        let mut pair = pair_on(v, store, clock, central);
        pair.connect();
        pair.advance(Duration::from_secs(61));
        pair.present(1, "TAG1");
        pair.unplug(1);
        let signed = signed_values(&pair);
        // Begin (with the key), a sample before and one after the restart, the end.
        assert_eq!(signed.len(), 4, "{v}: {signed:?}");
        let with_key = signed
            .iter()
            .filter(|s| {
                s.get("publicKey")
                    .and_then(Value::as_str)
                    .is_some_and(|k| !k.is_empty())
            })
            .count();
        assert_eq!(with_key, 1, "{v}: {signed:?}");
        pair.assert_no_invalid_outgoing();
    }
}
