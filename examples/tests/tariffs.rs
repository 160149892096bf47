//! OCPP 2.1 tariffs end to end over real sockets: the example central system (its API, its
//! database) and ocpp-charger stations on 127.0.0.1. A tariff stored, made a charger's
//! default (SetDefaultTariff), listed (GetTariffs), a session priced by it, its tariff
//! changed mid-transaction (ChangeTransactionTariff), the final cost in the TransactionEvent
//! answer equal to the shared calculator replayed over the session's samples and kept with
//! its breakdown; bad input answered; ClearTariffs; a 2.0.1 charger refused.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ocpp_charger::ws::ClientHandle;
use ocpp_charger::{HardwareEvent, MemoryStore, Setting, StationEvent};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_types::tariff::{CostContext, CostMeter, Tariff, Usage};
use ocpp_types::v21::TariffType;
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{booted, next_event, station, WAIT};
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
fn charger(central: &RunningCentral, identity: &str, v: Version) -> ClientHandle {
    // One Updated an hour: the change below falls in the last interval.
    station(central, identity, v, (2, 22000), MemoryStore::new(), |c| {
        c.setting(Setting::SampleInterval, "3600")
    })
}

#[path = "support/api.rs"]
mod api;
use api::Api;

fn t1() -> Value {
    serde_json::from_str(
        r#"{"tariffId":"T1","currency":"EUR",
        "energy":{"prices":[{"priceKwh":0.30}],"taxRates":[{"type":"VAT","tax":21}]},
        "fixedFee":{"prices":[{"priceFixed":1.00}],"taxRates":[{"type":"VAT","tax":21}]}}"#,
    )
    .unwrap()
}

fn t2() -> Value {
    serde_json::from_str(
        r#"{"tariffId":"T2","currency":"EUR",
        "energy":{"prices":[{"priceKwh":0.60}],"taxRates":[{"type":"VAT","tax":21}]},
        "fixedFee":{"prices":[{"priceFixed":5.00}]}}"#,
    )
    .unwrap()
}

fn tariff(v: &Value) -> Tariff {
    let wire: TariffType = serde_json::from_str(&v.to_string()).unwrap();
    Tariff::new(&wire, 100).unwrap()
}

#[tokio::test]
async fn default_tariff_change_and_final_cost_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    flow(format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test]
async fn default_tariff_change_and_final_cost_on_postgres() {
    if let Some(url) = postgres_database("tariffs").await {
        flow(url).await;
    }
}

async fn flow(url: String) {
    let args = CentralArgs::with_database(url).ephemeral();
    let central = start(&args).await.expect("starts");
    let api = Api::admin(&central).await;

    // The catalog: stored once, refused when invalid.
    let (s, row) = api.post("/api/tariffs", t1()).await;
    assert_eq!(s, StatusCode::CREATED, "{row}");
    assert_eq!(row["tariffId"], "T1");
    let (s, _) = api.post("/api/tariffs", t2()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = api.post("/api/tariffs", t1()).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("tariff_exists"))
    );
    let bad = json!({"tariffId": "B", "currency": "EUR", "energy": {"prices": [{"priceKwh": -1}]}});
    let (s, e) = api.post("/api/tariffs", bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "invalid_tariff");
    let prices: Vec<Value> = (0..1001).map(|_| json!({"priceKwh": 0.1})).collect();
    let (s, e) = api
        .post(
            "/api/tariffs",
            json!({"tariffId": "BIG", "currency": "EUR", "energy": {"prices": prices}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        e["error"]["message"],
        "the tariff has 1001 price elements, at most 1000 are allowed"
    );
    // 60,000 elements: over the API's body bound before anything is parsed.
    let prices: Vec<Value> = (0..60_000).map(|_| json!({"priceKwh": 0.1})).collect();
    let (s, _) = api
        .post(
            "/api/tariffs",
            json!({"tariffId": "HUGE", "currency": "EUR", "energy": {"prices": prices}}),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, list) = api.get("/api/tariffs").await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    // A 2.0.1 charger has no tariffs.
    let mut old = charger(&central, "TF-201", Version::V201);
    booted(&mut old).await;
    let (s, e) = api
        .post(
            "/api/chargers/TF-201/default-tariff",
            json!({"tariffId": "T1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "unsupported_for_version");
    old.shutdown().await;

    let id = "TF-21";
    let mut cp = charger(&central, id, Version::V21);
    booted(&mut cp).await;
    let (s, e) = api
        .post(
            &format!("/api/chargers/{id}/default-tariff"),
            json!({"tariffId": "NOPE"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_tariff"))
    );
    let (s, e) = api
        .post(
            &format!("/api/chargers/{id}/default-tariff"),
            json!({"tariffId": "T1", "evseId": -1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, a) = api
        .post(
            &format!("/api/chargers/{id}/default-tariff"),
            json!({"tariffId": "T1"}),
        )
        .await;
    assert_eq!(
        (s, a["status"].as_str()),
        (StatusCode::OK, Some("Accepted")),
        "{a}"
    );
    // EVSE 3 does not exist on the charger: its own answer.
    let (_, a) = api
        .post(
            &format!("/api/chargers/{id}/default-tariff"),
            json!({"tariffId": "T2", "evseId": 3}),
        )
        .await;
    assert_eq!(a["status"], "Rejected", "{a}");
    let (s, t) = api.get(&format!("/api/chargers/{id}/tariffs")).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["answer"]["status"], "Accepted");
    assert_eq!(t["answer"]["tariffAssignments"][0]["tariffId"], "T1");
    assert_eq!(t["stored"][0]["tariffId"], "T1");
    assert_eq!(t["stored"][0]["evseId"], 0);
    let (s, _) = api.delete("/api/tariffs/T1").await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a default tariff stays in the catalog"
    );

    // A session: priced by T1 from its start.
    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .unwrap();
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: "ALICE".into(),
    })
    .unwrap();
    let tx = next_event(&mut cp, "transaction", |e| match e {
        StationEvent::TransactionStarted { transaction_id, .. } => transaction_id.clone(),
        _ => None,
    })
    .await;
    let cost_path = format!("/api/chargers/{id}/transactions/{tx}/cost");
    let deadline = Instant::now() + WAIT;
    loop {
        let (s, c) = api.get(&cost_path).await;
        if s == StatusCode::OK {
            assert_eq!(c["tariffId"], "T1");
            assert_eq!(c["fixed"]["inclTax"], "1.21");
            assert_eq!(c["final"], false);
            break;
        }
        assert!(Instant::now() < deadline, "no cost for {tx}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;

    // The change: ChangeTransactionTariff, its statuses.
    let (_, a) = api
        .post(
            &format!("/api/chargers/{id}/transactions/nope/tariff"),
            json!({"tariffId": "T2"}),
        )
        .await;
    assert_eq!(a["status"], "TxNotFound", "{a}");
    let (_, a) = api
        .post(
            &format!("/api/chargers/{id}/transactions/{tx}/tariff"),
            json!({"tariffId": "T2"}),
        )
        .await;
    assert_eq!(a["status"], "Accepted", "{a}");
    let changed_at = Utc::now();
    let (_, c) = api.get(&cost_path).await;
    assert_eq!(c["tariffId"], "T2");
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Stop: the final cost of the TransactionEvent answer.
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: "ALICE".into(),
    })
    .unwrap();
    let fin = next_event(&mut cp, "final cost", |e| match e {
        StationEvent::Cost {
            total_cost,
            final_cost: true,
            source: "TransactionEvent",
            ..
        } => Some(*total_cost),
        _ => None,
    })
    .await;
    let (s, c) = api.get(&cost_path).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["final"], true);
    let total: Decimal = c["total"]["inclTax"].as_str().unwrap().parse().unwrap();
    assert_eq!(total, fin, "{c}");
    // T1's fixed fee only; the tax is the total's.
    assert_eq!(c["fixed"]["inclTax"], "1.21");
    let tax: Decimal = c["tax"].as_str().unwrap().parse().unwrap();
    let excl: Decimal = c["total"]["exclTax"].as_str().unwrap().parse().unwrap();
    assert_eq!(excl + tax, total);

    // The calculator replayed over the session's events (the register of each), T2 from
    // the interval the change fell in.
    let session = {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, sessions) = api.get(&format!("/api/sessions?charger={id}")).await;
            let s = sessions
                .as_array()
                .and_then(|a| a.iter().find(|s| s["transactionId"] == tx.as_str()))
                .cloned();
            if let Some(s) = s.filter(|s| s["status"] == "completed") {
                break s;
            }
            assert!(Instant::now() < deadline, "no completed session {tx}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let stored: Decimal = session["costExact"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        stored, fin,
        "the session row keeps the tariff's cost: {session}"
    );
    let (_, full) = api.get(&format!("/api/sessions/{}", session["id"])).await;
    let mut points: Vec<(DateTime<Utc>, Decimal)> = full["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["measurand"] == "Energy.Active.Import.Register")
        .map(|s| {
            (
                s["timestamp"].as_str().unwrap().parse().unwrap(),
                s["value"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    points.sort();
    points.dedup_by_key(|p| p.0);
    assert!(points.len() >= 2, "{full}");
    let mut m = CostMeter::new(tariff(&t1()), CostContext::default(), points[0].0).unwrap();
    let mut switched = false;
    for w in points.windows(2) {
        if !switched && w[1].0 > changed_at {
            m.change_tariff(tariff(&t2())).unwrap();
            switched = true;
        }
        m.add(&Usage {
            start: w[0].0,
            end: w[1].0,
            energy_wh: w[1].1 - w[0].1,
            charging: true,
            current_a: None,
        })
        .unwrap();
    }
    assert!(switched);
    let t = m.tariff.clone();
    let want = m.breakdown().rounded(2, &t).unwrap();
    assert_eq!(want.total.incl, fin, "{c}");
    assert_eq!(c["energy"]["inclTax"], want.energy.incl.to_string());

    // ClearTariffs: the default goes, on the charger and in the backend.
    let (s, a) = api
        .delete(&format!("/api/chargers/{id}/tariffs?tariffId=T1"))
        .await;
    assert_eq!(
        (s, a["status"].as_str()),
        (StatusCode::OK, Some("Accepted")),
        "{a}"
    );
    let (_, a) = api
        .delete(&format!("/api/chargers/{id}/tariffs?tariffId=T1"))
        .await;
    assert_eq!(a["status"], "NoTariff");
    let (_, t) = api.get(&format!("/api/chargers/{id}/tariffs")).await;
    assert_eq!(t["answer"]["status"], "NoTariff");
    assert_eq!(t["stored"], json!([]));
    let (s, _) = api.delete("/api/tariffs/T1").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    cp.shutdown().await;
    central.shutdown().await.unwrap();
}
