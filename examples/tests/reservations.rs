//! Reservations and local lists end to end over real sockets: the example central system
//! (its API, its database) and ocpp-charger stations on 127.0.0.1, for 1.6, 2.0.1 and 2.1.
//! Reserve → Reserved → another token refused → the reserved one starts and the reservation
//! is `Used`; cancel; expiry; a station restart keeps the reservation; the token table as
//! the local list (a full push in pieces, differential updates as tokens change), offline
//! authorization from it; bad input answered.

use chrono::Utc;
use ocpp_charger::ws::ClientHandle;
use ocpp_charger::{HardwareEvent, MemoryStore, StationEvent};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_types::Version;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn charger(
    central: &RunningCentral,
    identity: &str,
    v: Version,
    store: MemoryStore,
) -> ClientHandle {
    station(central, identity, v, (2, 7400), store, |c| c)
}

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{next_matching, station, until};
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

const ALL: [(Version, &str); 3] = [
    (Version::V16, "RES-16"),
    (Version::V201, "RES-201"),
    (Version::V21, "RES-21"),
];

/// Which database the central system runs on.
#[derive(Clone, Copy)]
enum Database {
    Sqlite,
    /// A fresh database on the server `OCPP_TEST_POSTGRES_URL` names (set by the test
    /// command; without it the test says loudly that it was skipped).
    Postgres,
}

/// The URL of a fresh database named after `name`; `None` (and a loud line) when PostgreSQL
/// is asked for and not configured.
async fn database_url(which: Database, dir: &tempfile::TempDir, name: &str) -> Option<String> {
    match which {
        Database::Sqlite => Some(format!("sqlite://{}", dir.path().join("c.db").display())),
        Database::Postgres => postgres_database(name).await,
    }
}

async fn central_at(url: String) -> RunningCentral {
    start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts")
}

async fn central(dir: &tempfile::TempDir) -> RunningCentral {
    let url = database_url(Database::Sqlite, dir, "bad")
        .await
        .expect("sqlite");
    central_at(url).await
}

async fn connector_status(api: &Api, id: &str, evse: i64) -> Option<String> {
    let (_, c) = api.get(&format!("/api/chargers/{id}")).await;
    c["connectors"]
        .as_array()?
        .iter()
        .find(|x| x["evse"] == evse)
        .and_then(|x| x["status"].as_str())
        .map(str::to_owned)
}

async fn reservation(api: &Api, id: &Value) -> Value {
    let (s, r) = api.get(&format!("/api/reservations/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

#[tokio::test]
async fn reserve_refuse_use_cancel_expire_and_survive_a_restart() {
    reserve_flow(Database::Sqlite).await;
}

#[tokio::test]
async fn reserve_refuse_use_cancel_expire_and_survive_a_restart_on_postgres() {
    reserve_flow(Database::Postgres).await;
}

async fn reserve_flow(which: Database) {
    for (v, id) in ALL {
        let dir = tempfile::tempdir().unwrap();
        let Some(url) = database_url(which, &dir, &format!("res_{id}")).await else {
            return;
        };
        let central = central_at(url).await;
        let api = Api::admin(&central).await;
        let store = MemoryStore::new();
        let mut cp = charger(&central, id, v, store.clone());
        next_matching(&mut cp, "boot", |e| {
            matches!(e, StationEvent::BootAccepted { .. })
        })
        .await;

        // Reserve EVSE 1 for ALICE: Accepted, Reserved at the central system.
        let expires = (Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
        let (s, r) = api
            .post(
                &format!("/api/chargers/{id}/reservations"),
                json!({ "evse": 1, "idTag": "ALICE", "expiresAt": expires }),
            )
            .await;
        assert_eq!(
            (s, r["status"].as_str()),
            (StatusCode::OK, Some("Accepted")),
            "{v}: {r}"
        );
        let rid = r["id"].clone();
        until("Reserved", || async {
            (connector_status(&api, id, 1).await.as_deref() == Some("Reserved"))
                .then_some(Value::Null)
        })
        .await;
        // The same EVSE again: the charger's word, stored.
        let (_, again) = api
            .post(
                &format!("/api/chargers/{id}/reservations"),
                json!({ "evse": 1, "idTag": "BOB", "expiresAt": expires }),
            )
            .await;
        assert_eq!(again["status"], "Occupied", "{v}: {again}");

        // The station restarts (same store): the reservation is still held and enforced.
        let station = cp.shutdown().await.expect("station");
        drop(station);
        let mut cp = charger(&central, id, v, store.clone());
        next_matching(&mut cp, "reconnection", |e| {
            matches!(e, StationEvent::BootAccepted { .. })
        })
        .await;

        // BOB is refused on EVSE 1; ALICE starts and uses the reservation.
        cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
            .unwrap();
        cp.hardware(HardwareEvent::IdTokenPresented {
            evse: Some(1),
            id_token: "BOB".into(),
        })
        .unwrap();
        next_matching(
            &mut cp,
            "BOB refused",
            |e| matches!(e, StationEvent::ReservationRefused { id_token } if id_token == "BOB"),
        )
        .await;
        cp.hardware(HardwareEvent::IdTokenPresented {
            evse: Some(1),
            id_token: "ALICE".into(),
        })
        .unwrap();
        let used = until("reservation used", || async {
            let r = reservation(&api, &rid).await;
            (r["status"] == "Used").then_some(r)
        })
        .await;
        assert!(used["transactionId"].is_string(), "{v}: {used}");

        // Cancel: EVSE 2 reserved, then cancelled; cancelling again is Rejected.
        let (_, r2) = api
            .post(
                &format!("/api/chargers/{id}/reservations"),
                json!({ "evse": 2, "idTag": "CAROL", "expiresAt": expires }),
            )
            .await;
        assert_eq!(r2["status"], "Accepted", "{v}: {r2}");
        let (s, c) = api.delete(&format!("/api/reservations/{}", r2["id"])).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["status"], "Accepted", "{v}: {c}");
        assert_eq!(c["reservation"]["status"], "Cancelled", "{v}: {c}");
        let (_, c) = api.delete(&format!("/api/reservations/{}", r2["id"])).await;
        assert_eq!(c["status"], "Rejected", "{v}: {c}");
        until("EVSE 2 available", || async {
            (connector_status(&api, id, 2).await.as_deref() == Some("Available"))
                .then_some(Value::Null)
        })
        .await;

        // Expiry: one second from now; the row says Expired (2.x: from the charger's
        // ReservationStatusUpdate) and EVSE 2 is Available again.
        let soon = (Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
        let (_, r3) = api
            .post(
                &format!("/api/chargers/{id}/reservations"),
                json!({ "evse": 2, "idTag": "DAVE", "expiresAt": soon }),
            )
            .await;
        assert_eq!(r3["status"], "Accepted", "{v}: {r3}");
        next_matching(&mut cp, "expiry", |e| {
            matches!(
                e,
                StationEvent::ReservationEnded {
                    reason: "Expired",
                    ..
                }
            )
        })
        .await;
        let expired = until("Expired", || async {
            let r = reservation(&api, &r3["id"]).await;
            (r["status"] == "Expired").then_some(r)
        })
        .await;
        assert!(expired["transactionId"].is_null(), "{v}: {expired}");
        until("EVSE 2 available after expiry", || async {
            (connector_status(&api, id, 2).await.as_deref() == Some("Available"))
                .then_some(Value::Null)
        })
        .await;

        // The list shows them, newest first.
        let (_, all) = api.get(&format!("/api/reservations?charger={id}")).await;
        let statuses: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["Expired", "Cancelled", "Occupied", "Used"],
            "{v}: {all}"
        );
        cp.shutdown().await;
        central.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn bad_reservations_are_answered_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let central = central(&dir).await;
    let api = Api::admin(&central).await;
    let mut cp = charger(&central, "RES-BAD", Version::V16, MemoryStore::new());
    next_matching(&mut cp, "boot", |e| {
        matches!(e, StationEvent::BootAccepted { .. })
    })
    .await;
    let path = "/api/chargers/RES-BAD/reservations";
    let soon = (Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    for (body, what) in [
        (
            json!({ "idTag": "A", "expiresAt": "9999-12-31T23:59:59Z" }),
            "year 9999",
        ),
        (
            json!({ "idTag": "A", "expiresAt": "2000-01-01T00:00:00Z" }),
            "in the past",
        ),
        (
            json!({ "idTag": "A", "evse": 2147483648i64, "expiresAt": soon }),
            "evse beyond 32 bits",
        ),
        (
            json!({ "idTag": "A", "evse": 0, "expiresAt": soon }),
            "evse 0",
        ),
        (json!({ "idTag": "", "expiresAt": soon }), "empty token"),
        (
            json!({ "idTag": "X".repeat(21), "expiresAt": soon }),
            "1.6 token of 21",
        ),
    ] {
        let (s, r) = api.post(path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {r}");
    }
    let (s, _) = api.post(path, json!({ "idTag": "A" })).await;
    assert!(s.is_client_error());
    let (s, _) = api.get("/api/reservations/not-a-number").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api.get("/api/reservations/2147483647").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.delete("/api/reservations/2147483647").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nothing was written for the refused ones; an offline charger is 409.
    let (_, all) = api.get("/api/reservations").await;
    assert_eq!(all, json!([]));
    let (s, r) = api
        .post(
            "/api/chargers/NOBODY/reservations",
            json!({ "idTag": "A", "expiresAt": soon }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");
    cp.shutdown().await;
    central.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_token_table_is_the_local_list() {
    local_list_flow(Database::Sqlite).await;
}

#[tokio::test]
async fn the_token_table_is_the_local_list_on_postgres() {
    local_list_flow(Database::Postgres).await;
}

async fn local_list_flow(which: Database) {
    for (v, id) in ALL {
        let dir = tempfile::tempdir().unwrap();
        let Some(url) = database_url(which, &dir, &format!("list_{id}")).await else {
            return;
        };
        let central = central_at(url.clone()).await;
        let api = Api::admin(&central).await;
        // 250 tokens: the full push goes in three pieces (Full, then two Differential).
        for i in 0..248 {
            central
                .backend()
                .db()
                .upsert_token(&format!("T{i:03}"), "Accepted", None)
                .await
                .unwrap();
        }
        for (token, status) in [("ALICE", "Accepted"), ("BOB", "Blocked")] {
            let (s, _) = api
                .post("/api/tokens", json!({ "idTag": token, "status": status }))
                .await;
            assert_eq!(s, StatusCode::OK);
        }
        let mut cp = charger(&central, id, v, MemoryStore::new());
        next_matching(&mut cp, "boot", |e| {
            matches!(e, StationEvent::BootAccepted { .. })
        })
        .await;
        let (s, state) = api.get(&format!("/api/chargers/{id}/local-list")).await;
        assert_eq!(s, StatusCode::OK, "{state}");
        assert_eq!(state["version"], Value::Null, "{v}: never pushed");
        assert_eq!(state["chargerVersion"], 0, "{v}: {state}");
        let (s, pushed) = api
            .post(&format!("/api/chargers/{id}/local-list"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{pushed}");
        assert_eq!(
            pushed,
            json!({ "status": "Accepted", "version": 3, "entries": 250, "messages": 3 }),
            "{v}"
        );
        // A new token: a differential update, version 4 on both sides.
        api.post(
            "/api/tokens",
            json!({ "idTag": "CAROL", "status": "Accepted" }),
        )
        .await;
        until("version 4", || async {
            let (_, s) = api.get(&format!("/api/chargers/{id}/local-list")).await;
            (s["version"] == 4 && s["chargerVersion"] == 4).then_some(s)
        })
        .await;
        // A removed token: version 5.
        let (s, _) = api.delete("/api/tokens/T000").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        until("version 5", || async {
            let (_, s) = api.get(&format!("/api/chargers/{id}/local-list")).await;
            (s["version"] == 5 && s["chargerVersion"] == 5).then_some(s)
        })
        .await;

        // The central system restarts (same address, same database): the charger's list is
        // still managed, a new token follows as version 6.
        let addr = central.ocpp_addr();
        central.shutdown().await.unwrap();
        let mut args = CentralArgs::with_database(url).ephemeral();
        args.ocpp_listen = addr.to_string();
        let central = start(&args).await.expect("restarts");
        let api = Api::admin(&central).await;
        until("reconnected", || async {
            let (_, c) = api.get(&format!("/api/chargers/{id}")).await;
            (c["connected"] == true).then_some(c)
        })
        .await;
        api.post(
            "/api/tokens",
            json!({ "idTag": "DAVE", "status": "Accepted" }),
        )
        .await;
        until("version 6", || async {
            let (_, s) = api.get(&format!("/api/chargers/{id}/local-list")).await;
            (s["version"] == 6 && s["chargerVersion"] == 6).then_some(s)
        })
        .await;

        // Offline, the list decides: ALICE starts, BOB (Blocked) does not.
        central.shutdown().await.unwrap();
        for (evse, token) in [(2, "BOB"), (1, "ALICE")] {
            cp.hardware(HardwareEvent::CablePlugged { evse }).unwrap();
            cp.hardware(HardwareEvent::IdTokenPresented {
                evse: Some(evse),
                id_token: token.into(),
            })
            .unwrap();
        }
        next_matching(&mut cp, "BOB refused offline", |e| {
            matches!(e, StationEvent::Authorization { id_token, accepted: false } if id_token == "BOB")
        })
        .await;
        next_matching(&mut cp, "ALICE started offline", |e| {
            matches!(e, StationEvent::TransactionStarted { evse: 1, .. })
        })
        .await;
        let station = cp.shutdown().await.expect("station");
        assert!(station.transaction(2).is_none(), "{v}");
        assert_eq!(station.local_list_version(), 6, "{v}");
        assert_eq!(station.local_list_len(), 251, "{v}");

        // A charger that lost its list (a new store) connects: the version differs, so it
        // gets a full push (251 tokens: versions 7, 8 and 9).
        let central = start(&args).await.expect("restarts");
        let api = Api::admin(&central).await;
        let mut cp = charger(&central, id, v, MemoryStore::new());
        next_matching(&mut cp, "boot", |e| {
            matches!(e, StationEvent::BootAccepted { .. })
        })
        .await;
        until("a full push on connection", || async {
            let (_, s) = api.get(&format!("/api/chargers/{id}/local-list")).await;
            (s["version"] == 9 && s["chargerVersion"] == 9).then_some(s)
        })
        .await;
        let station = cp.shutdown().await.expect("station");
        assert_eq!(station.local_list_len(), 251, "{v}");
        central.shutdown().await.unwrap();
    }
}
