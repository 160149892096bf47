//! OCPP 2.1 periodic event streams end to end over real sockets: the example central
//! system (its API, SQLite or PostgreSQL) and an ocpp-charger station on 127.0.0.1. A
//! stream opened through the API becomes a monitor with `periodicEventStream`, the station
//! opens it (OpenPeriodicEventStream) and sends NotifyPeriodicEventStream SENDs, the samples
//! are stored and read back, the stream is adjusted and closed (ClosePeriodicEventStream);
//! bad input is refused with its status before anything is sent.

use std::time::Duration;

use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_types::Version;
use reqwest::StatusCode;
use serde_json::json;

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{charger, until};
#[path = "support/api.rs"]
mod api;
use api::Api;
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;

async fn connected(api: &Api, id: &str) {
    until("connected", || async {
        let (s, c) = api.get(&format!("/api/chargers/{id}")).await;
        (s == StatusCode::OK && c["connected"] == true).then_some(c)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_opened_stored_read_back_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    flow(format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

/// The same on PostgreSQL (skipped loudly without `OCPP_TEST_POSTGRES_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_postgres() {
    if let Some(url) = postgres_database("streams").await {
        flow(url).await;
    }
}

async fn flow(url: String) {
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts");
    let api = Api::admin(&central).await;
    let id = "ST-21";
    let cp = charger(&central, id, Version::V21);
    connected(&api, id).await;
    let path = format!("/api/chargers/{id}/streams");

    // Bad input: 400 before anything is sent.
    for (body, what) in [
        (
            json!({ "component": "EVSE", "variable": "Power", "kind": "Bogus" }),
            "kind",
        ),
        (json!({ "component": "", "variable": "Power" }), "component"),
        (
            json!({ "component": "EVSE", "variable": "Power", "interval": 90000 }),
            "interval",
        ),
        (
            json!({ "component": "EVSE", "variable": "Power", "value": "abc" }),
            "decimal",
        ),
        (
            json!({ "component": "EVSE", "variable": "Power", "value": "0" }),
            "86400",
        ),
        (
            json!({ "component": "EVSE", "variable": "Power", "severity": 10 }),
            "severity",
        ),
        (
            json!({ "component": "EVSE", "variable": "Power", "connector": 1 }),
            "evse",
        ),
    ] {
        let (s, e) = api.post(&path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(what),
            "{e}"
        );
    }
    // An unknown field: 422 (as every body of the API).
    let (s, e) = api
        .post(
            &path,
            json!({ "component": "EVSE", "variable": "Power", "extra": 1 }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // An unknown variable: the charger's own status, no stream.
    let (s, r) = api
        .post(
            &path,
            json!({ "component": "EVSE", "evse": 1, "variable": "NoSuchVariable" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "UnknownVariable");
    assert!(r["stream"].is_null());

    // Open: one sample a second, sent three at a time.
    let (s, r) = api
        .post(
            &path,
            json!({ "component": "EVSE", "evse": 1, "variable": "Power", "value": "1", "values": 3 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "Accepted", "{r}");
    let stream = r["stream"]["streamId"].as_i64().unwrap();
    assert_eq!(r["stream"]["component"], "EVSE/1");
    let row = until("six samples stored", || async {
        let (_, list) = api.get(&path).await;
        list.as_array()?
            .iter()
            .find(|s| {
                s["streamId"] == stream
                    && s["status"] == "Open"
                    && s["samples"].as_i64().unwrap_or(0) >= 6
            })
            .cloned()
    })
    .await;
    assert_eq!(row["values"], 3);
    assert_eq!(row["lastValue"], "0");
    let (s, samples) = api.get(&format!("{path}/{stream}/samples?limit=5")).await;
    assert_eq!(s, StatusCode::OK, "{samples}");
    let samples = samples.as_array().unwrap();
    assert_eq!(samples.len(), 5);
    let times: Vec<chrono::DateTime<chrono::Utc>> = samples
        .iter()
        .map(|x| x["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(samples.iter().all(|x| x["value"] == "0"));

    // Reads: bad limit, unknown stream, unknown charger.
    let (s, _) = api.get(&format!("{path}/{stream}/samples?limit=0")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api.get(&format!("{path}/999/samples")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.get("/api/chargers/NOPE/streams").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Adjust: accepted, stored; an unknown stream is 404.
    let (s, r) = api
        .put(&format!("{path}/{stream}"), json!({ "values": 2 }))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "Accepted");
    assert_eq!(r["stream"]["values"], 2);
    let (s, _) = api
        .put(&format!("{path}/999"), json!({ "values": 2 }))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Close: the monitor is cleared, the charger closes the stream, no more samples.
    let (s, r) = api.delete(&format!("{path}/{stream}")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "Accepted");
    let closed = until("closed", || async {
        let (_, list) = api.get(&path).await;
        list.as_array()?
            .iter()
            .find(|s| s["streamId"] == stream && s["status"] == "Closed")
            .cloned()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, list) = api.get(&path).await;
    let after = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["streamId"] == stream)
        .cloned()
        .unwrap();
    assert_eq!(after["samples"], closed["samples"]);

    // A 2.0.1 charger has no streams.
    let cp201 = charger(&central, "ST-201", Version::V201);
    connected(&api, "ST-201").await;
    let (s, e) = api
        .post(
            "/api/chargers/ST-201/streams",
            json!({ "component": "EVSE", "evse": 1, "variable": "Power" }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "unsupported_version", "{e}");
    cp201.shutdown().await;
    cp.shutdown().await;
}
