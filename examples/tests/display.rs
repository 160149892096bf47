//! Display messages, customer information and the running cost end to end over real
//! sockets: the example central system (its API, its database) and ocpp-charger stations on
//! 127.0.0.1. Set → list (the charger's report) → clear, each answer word; bad input
//! answered and bounded; a message to many chargers; customer information reported,
//! stored, listed with the backend's own data and cleared on the backend and the
//! chargers; the running cost in TransactionEvent answers, CostUpdated and the 1.6
//! California Pricing messages, exact decimals.

use std::time::{Duration, Instant};

use ocpp_charger::ws::ClientHandle;
use ocpp_charger::{HardwareEvent, MemoryStore, StationConfig, StationEvent};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{booted, next_event, station, WAIT};
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
fn charger(
    central: &RunningCentral,
    identity: &str,
    v: Version,
    f: impl FnOnce(StationConfig) -> StationConfig,
) -> ClientHandle {
    station(central, identity, v, (2, 7400), MemoryStore::new(), f)
}

#[path = "support/api.rs"]
mod api;
use api::Api;

async fn central_with(url: String, f: impl FnOnce(&mut CentralArgs)) -> RunningCentral {
    let mut args = CentralArgs::with_database(url).ephemeral();
    f(&mut args);
    start(&args).await.expect("starts")
}

fn sqlite(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("c.db").display())
}

async fn start_tx(cp: &mut ClientHandle, tag: &str) {
    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .unwrap();
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: tag.into(),
    })
    .unwrap();
    next_event(cp, "transaction", |e| match e {
        StationEvent::TransactionStarted { .. } => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn set_list_clear_and_bad_input_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    display_flow(sqlite(&dir)).await;
}

#[tokio::test]
async fn set_list_clear_and_bad_input_on_postgres() {
    if let Some(url) = postgres_database("display").await {
        display_flow(url).await;
    }
}

async fn display_flow(url: String) {
    let central = central_with(url, |_| {}).await;
    let api = Api::admin(&central).await;
    for (v, id) in [(Version::V201, "DM-201"), (Version::V21, "DM-21")] {
        let mut cp = charger(&central, id, v, |c| c);
        booted(&mut cp).await;
        let path = format!("/api/chargers/{id}/display-messages");

        let (s, m) = api
            .post(
                &path,
                json!({ "id": 1, "content": "Welcome", "priority": "InFront" }),
            )
            .await;
        assert_eq!(
            (s, m["status"].as_str()),
            (StatusCode::OK, Some("Accepted")),
            "{v}: {m}"
        );
        let (_, m) = api
            .post(
                &path,
                json!({ "id": 2, "content": "<b>x</b>", "format": "HTML" }),
            )
            .await;
        assert_eq!(m["status"], "NotSupportedMessageFormat", "{v}");
        let (_, m) = api
            .post(
                &path,
                json!({ "id": 3, "content": "x", "transactionId": "nope" }),
            )
            .await;
        assert_eq!(m["status"], "UnknownTransaction", "{v}");
        // id 2³¹−1 with an end in year 9999: accepted.
        let (_, m) = api
            .post(
                &path,
                json!({ "id": i32::MAX, "content": "far", "endsAt": "9999-12-31T23:59:59Z" }),
            )
            .await;
        assert_eq!(m["status"], "Accepted", "{v}: {m}");

        // The charger's own list (GetDisplayMessages → NotifyDisplayMessages).
        let (s, list) = api.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let ids: Vec<i64> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [1, i64::from(i32::MAX)], "{v}: {list}");
        assert_eq!(list[0]["content"], "Welcome");
        assert_eq!(list[0]["priority"], "InFront");

        let (_, c) = api.delete(&format!("{path}/1")).await;
        assert_eq!(c["status"], "Accepted", "{v}: {c}");
        assert_eq!(c["message"]["status"], "Cleared");
        let (_, c) = api.delete(&format!("{path}/1")).await;
        assert_eq!(c["status"], "Unknown", "{v}");
        let (_, list) = api.get(&path).await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{v}: {list}");

        // Bad input: answered, nothing sent, the charger still answers.
        let long = "x".repeat(60_000);
        for body in [
            json!({ "id": 5, "content": long }),
            json!({ "id": -1, "content": "x" }),
            json!({ "id": 4_294_967_296_i64, "content": "x" }),
            json!({ "id": 5, "content": "" }),
            json!({ "id": 5, "content": "x", "priority": "Loud" }),
            json!({ "id": 5, "content": "x", "startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z" }),
        ] {
            let (s, e) = api.post(&path, body.clone()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        }
        let (s, _) = api.delete(&format!("{path}/99999999999")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // 2.0.1 takes at most 512 characters: refused by the typed command, 400.
        if v == Version::V201 {
            let (s, e) = api
                .post(&path, json!({ "id": 6, "content": "y".repeat(600) }))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        }
        let (_, list) = api.get(&path).await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{v}: {list}");
        cp.shutdown().await;
    }

    // Many chargers at once; an offline one answers Offline; a 1.6 charger cannot.
    let mut a = charger(&central, "DM-A", Version::V201, |c| c);
    booted(&mut a).await;
    let mut old = charger(&central, "DM-16", Version::V16, |c| c);
    booted(&mut old).await;
    let (s, r) = api
        .post(
            "/api/display-messages",
            json!({ "chargers": ["DM-A", "DM-16", "DM-201"], "message": { "id": 9, "content": "Closing at 22:00" } }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let status: Vec<(&str, &str)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["charger"].as_str().unwrap(),
                x["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("DM-16", "Failed"),
            ("DM-201", "Offline"),
            ("DM-A", "Accepted")
        ],
        "{r}"
    );
    let (s, _) = api
        .post(
            "/api/chargers/DM-16/display-messages",
            json!({ "id": 1, "content": "x" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api
        .post(
            "/api/display-messages",
            json!({ "chargers": [], "message": { "id": 9, "content": "x" } }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let many: Vec<String> = (0..1001).map(|i| format!("C{i}")).collect();
    let (s, _) = api
        .post(
            "/api/display-messages",
            json!({ "chargers": many, "message": { "id": 9, "content": "x" } }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api
        .post(
            "/api/display-messages",
            json!({ "site": 12345, "message": { "id": 9, "content": "x" } }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    a.shutdown().await;
    old.shutdown().await;
    central.shutdown().await.unwrap();
}

#[tokio::test]
async fn customer_information_report_and_clear_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let central = central_with(sqlite(&dir), |_| {}).await;
    let api = Api::admin(&central).await;
    let mut cp = charger(&central, "CU-1", Version::V201, |c| c);
    booted(&mut cp).await;
    start_tx(&mut cp, "ALICE").await;

    let path = "/api/chargers/CU-1/customer-information";
    let (s, r) = api
        .post(
            path,
            json!({ "idToken": "ALICE", "report": true, "clear": false }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "Accepted", "{r}");
    assert!(r["parts"].as_i64().unwrap() >= 1);
    assert!(
        r["data"].as_str().unwrap().contains("ongoing transaction"),
        "{r}"
    );
    // Exactly one identifier, something to do.
    for body in [
        json!({ "report": true, "clear": false }),
        json!({ "idToken": "ALICE", "customerIdentifier": "C-1", "report": true, "clear": false }),
        json!({ "idToken": "ALICE", "report": false, "clear": false }),
        json!({ "idToken": "x".repeat(60_000), "report": true, "clear": false }),
    ] {
        let (s, e) = api.post(path, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
    }

    // The backend's own data: the session, the report.
    let (s, c) = api.get("/api/customers/ALICE").await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["sessions"].as_array().map(Vec::len), Some(1), "{c}");
    assert_eq!(c["reports"].as_array().map(Vec::len), Some(1), "{c}");

    // Clear: on the backend and on the charger.
    let (s, d) = api.delete("/api/customers/ALICE?chargers=true").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(
        d["chargers"],
        json!([{ "charger": "CU-1", "status": "Accepted" }]),
        "{d}"
    );
    next_event(&mut cp, "customer cleared", |e| {
        matches!(e, StationEvent::CustomerCleared { .. }).then_some(())
    })
    .await;
    let (_, c) = api.get("/api/customers/ALICE").await;
    assert_eq!(c["sessions"], json!([]), "{c}");
    assert_eq!(c["reports"], json!([]), "{c}");
    // The session itself (the billing record) is still there, without the customer.
    let (_, sessions) = api.get("/api/sessions").await;
    assert!(!sessions.as_array().unwrap().is_empty());
    cp.shutdown().await;
    central.shutdown().await.unwrap();
}

#[tokio::test]
async fn running_cost_in_answers_and_cost_updated() {
    let dir = tempfile::tempdir().unwrap();
    let central = central_with(sqlite(&dir), |a| {
        a.session_fee = Decimal::new(50, 2);
        a.price_per_kwh = Decimal::new(39, 2);
        a.cost_update_interval = 1;
        a.personal_message = Some("So far {cost} {currency}".into());
        a.v16_cost_messages = true;
    })
    .await;
    let api = Api::admin(&central).await;
    for (v, id) in [
        (Version::V201, "CO-201"),
        (Version::V21, "CO-21"),
        (Version::V16, "CO-16"),
    ] {
        let mut cp = charger(&central, id, v, |c| c.cost_messages(true));
        booted(&mut cp).await;
        start_tx(&mut cp, "ALICE").await;
        // CostUpdated (1.6: RunningCost) from the periodic task: cents, at least the fee.
        let want = if v == Version::V16 {
            "RunningCost"
        } else {
            "CostUpdated"
        };
        let running = next_event(&mut cp, "running cost", |e| match e {
            StationEvent::Cost {
                total_cost, source, ..
            } if *source == want => Some(*total_cost),
            _ => None,
        })
        .await;
        assert!(
            running >= Decimal::new(50, 2) && running.scale() <= 2,
            "{v}: {running}"
        );
        // Stop: the final cost, equal to the session's stored cost, to the cent.
        cp.hardware(HardwareEvent::IdTokenPresented {
            evse: Some(1),
            id_token: "ALICE".into(),
        })
        .unwrap();
        let want = if v == Version::V16 {
            "FinalCost"
        } else {
            "TransactionEvent"
        };
        let (tx, fin) = next_event(&mut cp, "final cost", |e| match e {
            StationEvent::Cost {
                transaction_id,
                total_cost,
                final_cost: true,
                source,
            } if *source == want => Some((transaction_id.clone(), *total_cost)),
            _ => None,
        })
        .await;
        let stored = {
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
                assert!(Instant::now() < deadline, "{v}: no completed session {tx}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let cost: Decimal = stored["costExact"].as_str().unwrap().parse().unwrap();
        assert_eq!(fin, cost, "{v}: {stored}");
        assert!(fin.scale() <= 2);
        cp.shutdown().await;
    }
    central.shutdown().await.unwrap();
}
