//! OCPP 2.1 tariffs on the station (block I: SetDefaultTariff, GetTariffs, ClearTariffs,
//! ChangeTransactionTariff) and the local cost calculation, on virtual time: every answer
//! word, the bounds, a restart, and the cost equal to the shared calculator.

use std::time::Duration;

use ocpp_charger::station::tariffs::TariffConfig;
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, StationConfig, StationEvent, Version};
use ocpp_types::tariff::{CostContext, CostMeter, Tariff, Usage};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn pair_with(f: impl FnOnce(StationConfig) -> StationConfig) -> VirtualPair {
    let clock = TestClock::new();
    let cfg = f(test_config(Version::V21, &clock).evses(2));
    let mut pair = VirtualPair::with(
        cfg,
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
        other => panic!("no result for {id}: {other:?}"),
    }
}

fn tariff(id: &str, kwh: &str) -> Value {
    serde_json::from_str(&format!(
        r#"{{"tariffId":"{id}","currency":"EUR","energy":{{"prices":[{{"priceKwh":{kwh}}}]}}}}"#
    ))
    .unwrap()
}

fn set_default(pair: &mut VirtualPair, evse: i64, t: Value) -> Value {
    let id = pair.central_call("SetDefaultTariff", json!({"evseId": evse, "tariff": t}));
    answer(pair, &id)
}

fn change(pair: &mut VirtualPair, tx: &str, t: Value) -> Value {
    let id = pair.central_call(
        "ChangeTransactionTariff",
        json!({"transactionId": tx, "tariff": t}),
    );
    answer(pair, &id)
}

fn get(pair: &mut VirtualPair, evse: i64) -> Value {
    let id = pair.central_call("GetTariffs", json!({ "evseId": evse }));
    answer(pair, &id)
}

fn start_tx(pair: &mut VirtualPair, evse: u32, tag: &str) -> String {
    pair.plug_in(evse);
    pair.present(evse, tag);
    pair.station
        .transaction(evse)
        .and_then(|t| t.transaction_id)
        .expect("a transaction")
}

#[test]
fn set_default_tariff_answers_every_status() {
    let mut pair = pair_with(|c| c);
    assert_eq!(
        set_default(&mut pair, 1, tariff("T1", "0.30"))["status"],
        "Accepted"
    );
    // The same tariff on another EVSE is fine; the same id with another content is not.
    assert_eq!(
        set_default(&mut pair, 2, tariff("T1", "0.30"))["status"],
        "Accepted"
    );
    assert_eq!(
        set_default(&mut pair, 0, tariff("T1", "0.35"))["status"],
        "DuplicateTariffId"
    );
    // An EVSE the station does not have.
    let a = set_default(&mut pair, 3, tariff("T2", "0.30"));
    assert_eq!(a["status"], "Rejected");
    assert_eq!(a["statusInfo"]["reasonCode"], "UnknownEvse");
    // Too many elements for TariffCostCtrlr.MaxElements[Tariff] (100 by default).
    let prices: Vec<Value> = (0..101).map(|_| json!({"priceKwh": 0.1})).collect();
    let big = json!({"tariffId": "BIG", "currency": "EUR", "energy": {"prices": prices}});
    let a = set_default(&mut pair, 1, big);
    assert_eq!(a["status"], "TooManyElements");
    assert!(a["statusInfo"]["additionalInfo"]
        .as_str()
        .unwrap()
        .contains("101"));
    // A payment condition the station cannot evaluate.
    let pay = json!({"tariffId": "PAY", "currency": "EUR",
        "fixedFee": {"prices": [{"priceFixed": 1, "conditions": {"paymentBrand": "VISA"}}]}});
    let a = set_default(&mut pair, 1, pay);
    assert_eq!(a["status"], "ConditionNotSupported");
    assert_eq!(a["statusInfo"]["additionalInfo"], "PaymentBrand");
    // Invalid values: the reason in statusInfo.
    for (bad, why) in [
        (
            json!({"tariffId": "B", "currency": "EUR", "energy": {"prices": [{"priceKwh": -0.1}]}}),
            "negative priceKwh",
        ),
        (
            json!({"tariffId": "B", "currency": "eu", "energy": {"prices": [{"priceKwh": 0.1}]}}),
            "ISO 4217",
        ),
        (
            json!({"tariffId": "B", "currency": "EUR", "energy": {"prices": [{"priceKwh": 0.1,
                "conditions": {"startTimeOfDay": "7:5"}}]}}),
            "HH:MM",
        ),
    ] {
        let a = set_default(&mut pair, 1, bad);
        assert_eq!(a["status"], "Rejected");
        assert_eq!(a["statusInfo"]["reasonCode"], "InvalidValue");
        assert!(
            a["statusInfo"]["additionalInfo"]
                .as_str()
                .unwrap()
                .contains(why),
            "{a}"
        );
    }
    // At most 4 tariffs per EVSE (the one in force and those waiting for their validFrom).
    for i in 0..3 {
        let mut t = tariff(&format!("F{i}"), "0.2");
        t["validFrom"] = json!(format!("2030-01-0{}T00:00:00Z", i + 1));
        assert_eq!(set_default(&mut pair, 1, t)["status"], "Accepted");
    }
    let mut t = tariff("F9", "0.2");
    t["validFrom"] = json!("2031-01-01T00:00:00Z");
    let a = set_default(&mut pair, 1, t);
    assert_eq!(a["status"], "Rejected");
    assert_eq!(a["statusInfo"]["reasonCode"], "TooManyTariffs");
    // Disabled by the central system: Rejected.
    let id = pair.central_call(
        "SetVariables",
        json!({"setVariableData": [{"component": {"name": "TariffCostCtrlr"},
            "variable": {"name": "Enabled", "instance": "Tariff"}, "attributeValue": "false"}]}),
    );
    assert_eq!(
        answer(&pair, &id)["setVariableResult"][0]["attributeStatus"],
        "Accepted"
    );
    let a = set_default(&mut pair, 1, tariff("T3", "0.30"));
    assert_eq!(a["status"], "Rejected");
    assert_eq!(a["statusInfo"]["reasonCode"], "Disabled");
    pair.assert_no_invalid_outgoing();
}

#[test]
fn sixty_thousand_elements_over_the_wire_are_too_many() {
    let mut pair = pair_with(|c| c);
    let prices: Vec<Value> = (0..60_000).map(|_| json!({"priceKwh": 0.1})).collect();
    let big = json!({"tariffId": "BIG", "currency": "EUR", "energy": {"prices": prices}});
    let a = set_default(&mut pair, 0, big);
    assert_eq!(a["status"], "TooManyElements");
    assert_eq!(
        a["statusInfo"]["additionalInfo"],
        "the tariff has 60000 price elements, at most 100 are allowed"
    );
    // Nothing else broke: a normal tariff is taken.
    assert_eq!(
        set_default(&mut pair, 0, tariff("T", "0.3"))["status"],
        "Accepted"
    );
}

#[test]
fn get_and_clear_tariffs() {
    let mut pair = pair_with(|c| c);
    assert_eq!(get(&mut pair, 0)["status"], "NoTariff");
    assert_eq!(get(&mut pair, 7)["status"], "Rejected");
    set_default(&mut pair, 1, tariff("A", "0.30"));
    set_default(&mut pair, 2, tariff("A", "0.30"));
    set_default(&mut pair, 0, tariff("S", "0.40"));
    let a = get(&mut pair, 0);
    assert_eq!(a["status"], "Accepted");
    let list = a["tariffAssignments"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{a}");
    assert_eq!(list[0]["tariffId"], "A");
    assert_eq!(list[0]["tariffKind"], "DefaultTariff");
    assert_eq!(list[0]["evseIds"], json!([1, 2]));
    assert_eq!(list[1]["evseIds"], json!([0]));
    // EVSE 2 sees its own and the station's.
    assert_eq!(
        get(&mut pair, 2)["tariffAssignments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let id = pair.central_call(
        "ClearTariffs",
        json!({"tariffIds": ["A", "X"], "evseId": 1}),
    );
    let r = answer(&pair, &id);
    assert_eq!(r["clearTariffsResult"][0]["status"], "Accepted");
    assert_eq!(r["clearTariffsResult"][0]["tariffId"], "A");
    assert_eq!(r["clearTariffsResult"][1]["status"], "NoTariff");
    let id = pair.central_call("ClearTariffs", json!({}));
    assert_eq!(
        answer(&pair, &id)["clearTariffsResult"][0]["status"],
        "Accepted"
    );
    let id = pair.central_call("ClearTariffs", json!({}));
    assert_eq!(
        answer(&pair, &id)["clearTariffsResult"][0]["status"],
        "NoTariff"
    );
    assert_eq!(get(&mut pair, 0)["status"], "NoTariff");
    pair.assert_no_invalid_outgoing();
}

#[test]
fn change_transaction_tariff_answers_every_status() {
    let mut pair = pair_with(|c| c);
    assert_eq!(
        change(&mut pair, "nope", tariff("X", "0.3"))["status"],
        "TxNotFound"
    );
    set_default(&mut pair, 0, tariff("D", "0.30"));
    let tx = start_tx(&mut pair, 1, "ALICE");
    // The transaction took the default tariff: GetTariffs shows it as in force.
    let usd = json!({"tariffId": "U", "currency": "USD"});
    assert_eq!(change(&mut pair, &tx, usd)["status"], "NoCurrencyChange");
    let prices: Vec<Value> = (0..200).map(|_| json!({"priceKwh": 0.1})).collect();
    let big = json!({"tariffId": "BIG", "currency": "EUR", "energy": {"prices": prices}});
    assert_eq!(change(&mut pair, &tx, big)["status"], "TooManyElements");
    let pay = json!({"tariffId": "P", "currency": "EUR",
        "fixedFee": {"prices": [{"priceFixed": 1, "conditions": {"paymentRecognition": "x"}}]}});
    assert_eq!(
        change(&mut pair, &tx, pay)["status"],
        "ConditionNotSupported"
    );
    let bad = json!({"tariffId": "B", "currency": "EUR", "minCost": {"exclTax": 5},
        "maxCost": {"exclTax": 1}});
    assert_eq!(change(&mut pair, &tx, bad)["status"], "Rejected");
    assert_eq!(
        change(&mut pair, &tx, tariff("N", "0.20"))["status"],
        "Accepted"
    );
    let txs = pair.station.transaction_tariffs();
    assert_eq!(txs.len(), 1);
    assert_eq!((txs[0].0, txs[0].1.tariff_id.as_str()), (tx.as_str(), "N"));
    let a = get(&mut pair, 1);
    assert!(a["tariffAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["tariffId"] == "N" && t["tariffKind"] == "DriverTariff"));
    pair.assert_no_invalid_outgoing();
}

fn local() -> TariffConfig {
    TariffConfig {
        local_cost: true,
        ..TariffConfig::default()
    }
}

fn priced() -> Value {
    json!({"tariffId": "L", "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 0.30}], "taxRates": [{"type": "VAT", "tax": 20}]},
        "chargingTime": {"prices": [{"priceMinute": 0.05}]},
        "fixedFee": {"prices": [{"priceFixed": 1}]}})
}

#[test]
fn local_cost_follows_the_injected_clock_and_equals_the_calculator() {
    let mut pair = pair_with(|c| c.tariffs(local()));
    assert_eq!(set_default(&mut pair, 0, priced())["status"], "Accepted");
    let tx = start_tx(&mut pair, 1, "ALICE");
    assert!(
        pair.station.local_cost(&tx).is_some(),
        "the transaction has a cost meter"
    );
    for _ in 0..6 {
        pair.advance(Duration::from_secs(600));
    }
    let b = pair.station.local_cost(&tx).unwrap().clone();
    assert_eq!(b.charging_s, 3600);
    assert!(b.energy_wh > Decimal::from(7000), "{}", b.energy_wh);
    // The same hour through the calculator directly.
    let wire = serde_json::from_value(priced()).unwrap();
    let t = Tariff::new(&wire, 100).unwrap();
    // The tariff has no condition, so the hour in one interval prices the same.
    let s0: chrono::DateTime<chrono::Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    let mut m = CostMeter::new(t.clone(), CostContext::default(), s0).unwrap();
    m.add(&Usage {
        start: s0,
        end: s0 + chrono::Duration::seconds(3600),
        energy_wh: b.energy_wh,
        charging: true,
        current_a: None,
    })
    .unwrap();
    assert_eq!(m.breakdown().total, b.total);
    // 1 + 0.30 × kWh × 1.2 + 3.00.
    let kwh = b.energy_wh / Decimal::from(1000);
    assert_eq!(
        b.total.incl,
        Decimal::from(4) + kwh * Decimal::new(30, 2) * Decimal::new(12, 1)
    );
    let costs = pair.events_where(|e| {
        matches!(
            e,
            StationEvent::Cost {
                source: "LocalCost",
                final_cost: false,
                ..
            }
        )
    });
    assert!(costs.len() >= 6, "{costs:?}");

    // A tariff change keeps what was priced; the end gives the final cost.
    let cheaper = json!({"tariffId": "L2", "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 0.10}]}});
    assert_eq!(change(&mut pair, &tx, cheaper)["status"], "Accepted");
    pair.advance(Duration::from_secs(600));
    let after = pair.station.local_cost(&tx).unwrap().clone();
    assert_eq!(after.tariff_id, "L2");
    assert!(after.total.excl > b.total.excl);
    assert_eq!(
        after.charging_time.excl, b.charging_time.excl,
        "no time price in L2"
    );
    pair.unplug(1);
    pair.advance(Duration::from_secs(1));
    assert!(pair.station.local_cost(&tx).is_none());
    let finals = pair.events_where(|e| {
        matches!(
            e,
            StationEvent::Cost {
                source: "LocalCost",
                final_cost: true,
                ..
            }
        )
    });
    assert_eq!(finals.len(), 1);
    let fin = match finals[0] {
        StationEvent::Cost { total_cost, .. } => *total_cost,
        _ => unreachable!(),
    };
    // The TransactionEvents: Started names the tariff, Ended carries the cost (I05).
    let events = pair.central.payloads("TransactionEvent");
    let started = events.iter().find(|p| p["eventType"] == "Started").unwrap();
    assert_eq!(started["transactionInfo"]["tariffId"], "L");
    let ended = events.iter().find(|p| p["eventType"] == "Ended").unwrap();
    let details = &ended["costDetails"];
    assert_eq!(details["totalCost"]["currency"], "EUR");
    assert_eq!(details["totalCost"]["typeOfCost"], "NormalCost");
    assert_eq!(
        details["totalCost"]["total"]["inclTax"].to_string(),
        fin.to_string(),
        "{details}"
    );
    assert_eq!(details["totalUsage"]["chargingTime"], 4200, "{details}");
    pair.assert_no_invalid_outgoing();
}

#[test]
fn tariffs_and_cost_meters_survive_a_restart() {
    let clock = TestClock::new();
    let store = MemoryStore::new();
    let cfg = |clock: &TestClock| test_config(Version::V21, clock).tariffs(local());
    let mut pair = VirtualPair::with(
        cfg(&clock),
        Box::new(store.clone()),
        MockCentral::new(Version::V21),
        clock,
    );
    pair.connect();
    set_default(&mut pair, 0, priced());
    let tx = start_tx(&mut pair, 1, "ALICE");
    pair.advance(Duration::from_secs(600));
    let before = pair.station.local_cost(&tx).unwrap().clone();
    pair.station_input(|_, _| {});
    let VirtualPair { central, clock, .. } = pair;
    let mut pair = VirtualPair::with(cfg(&clock), Box::new(store.clone()), central, clock);
    pair.connect();
    let defaults = pair.station.default_tariffs();
    assert_eq!(defaults.len(), 1);
    let after = pair.station.local_cost(&tx).expect("the meter is back");
    assert!(after.total.excl >= before.total.excl);
    assert_eq!(after.tariff_id, "L");
}

#[test]
fn a_2_0_1_station_does_not_know_the_actions() {
    let clock = TestClock::new();
    let mut pair = VirtualPair::with(
        test_config(Version::V201, &clock),
        Box::new(MemoryStore::new()),
        MockCentral::new(Version::V201),
        clock,
    );
    pair.connect();
    let id = pair.central_call("GetTariffs", json!({"evseId": 0}));
    match pair.central.answer(&id) {
        Some(Err(code)) => assert_eq!(code, "NotImplemented"),
        other => panic!("{other:?}"),
    }
}
