//! End-to-end load balancing over real sockets: the example central system (OCPP server,
//! backend, HTTP API, SQLite) and 20 simulated chargers (a 1.6 / 2.0.1 / 2.1 mix, one EVSE
//! of 11 kW each, meter values every second) on one site limited to 100 kW. Drivers arrive
//! in two waves, the limit is lowered to 60 kW, five drivers leave, then the limit drops so
//! low that one session must queue.
//!
//! One battery fills up: the others get what that EV leaves.
//!
//! After each change the site's measured power (the sum of the sessions' last meter values,
//! from the API) must be under the limit within one meter interval (plus the time to plan
//! and send, bounded below), stay there, and every session must draw exactly its share.
//! Waiting is polling the API with a deadline; nothing sleeps to wait for a protocol flow.

use std::time::{Duration, Instant};

use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_examples::sim::{Fleet, Scenario, SimConfig, VersionMix};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

const CHARGERS: usize = 20;
const METER_INTERVAL: Duration = Duration::from_secs(1);
/// How long a change may take to show in the meter values: one meter interval, plus the
/// balancer's coalescing interval (200 ms) and the round trip of the profiles, with room
/// for a busy 2-core machine.
const SETTLE: Duration = Duration::from_millis(2_500);
const WAIT: Duration = Duration::from_secs(30);

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a decimal string, not {v}"))
}

struct Site {
    api: Api,
    id: i64,
}

impl Site {
    async fn plan(&self) -> Vec<Value> {
        let (s, v) = self.api.get(&format!("/api/sites/{}/plan", self.id)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    async fn measured(&self) -> Decimal {
        let (s, v) = self.api.get(&format!("/api/sites/{}", self.id)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        dec(&v["measuredW"])
    }

    async fn set_limit(&self, kw: u32) {
        let (s, v) = self
            .api
            .put(
                &format!("/api/sites/{}/limit", self.id),
                json!({ "limit": kw.to_string(), "unit": "kW" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(dec(&v["limitW"]), Decimal::from(kw * 1000));
    }

    /// Polls until every one of `n` sessions draws its share of `limit_w` (by the plan: the
    /// equal share, queued ones nothing), its limit sent, and the measured sum is under the
    /// limit; fails after `WAIT`. Returns the plan.
    async fn settled(&self, n: usize, limit_w: u32, queued: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        let active = n - queued;
        let share = if active == 0 {
            Decimal::ZERO
        } else {
            (Decimal::from(limit_w) / Decimal::from(active as u32))
                .floor()
                .min(Decimal::from(11_000))
        };
        let mut last = Vec::new();
        while Instant::now() < deadline {
            let plan = self.plan().await;
            let ok = plan.len() == n
                && plan.iter().all(|p| {
                    let want = if p["queued"].is_null() {
                        share
                    } else {
                        Decimal::ZERO
                    };
                    dec(&p["limit"]) == want
                        && p["sent"].as_str().and_then(|s| s.parse::<Decimal>().ok()) == Some(want)
                        && p["measuredW"]
                            .as_str()
                            .and_then(|s| s.parse::<Decimal>().ok())
                            == Some(want)
                })
                && plan.iter().filter(|p| !p["queued"].is_null()).count() == queued;
            if ok {
                return plan;
            }
            last = plan;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("site not settled at {n} sessions on {limit_w} W ({queued} queued): {last:#?}");
    }

    /// From `since + SETTLE` until `until`, the measured power must stay at or under
    /// `limit_w`; polled every 50 ms.
    async fn under_limit(&self, since: Instant, limit_w: u32, until: Instant) {
        let limit = Decimal::from(limit_w);
        while Instant::now() < since + SETTLE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        while Instant::now() < until {
            let m = self.measured().await;
            assert!(
                m <= limit,
                "measured {m} W over the {limit} W limit {:?} after the change",
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_chargers_share_a_site_limit_that_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("balancer.db");
    let args = CentralArgs::with_database(db.display().to_string()).ephemeral();
    let central = start(&args).await.expect("central system starts");
    let api = Api::admin(&central).await;

    // The site, and the chargers on it before they connect.
    let (s, site) = api
        .post(
            "/api/sites",
            json!({ "name": "Depot", "limit": 100, "unit": "kW", "minRate": 1.38, "evseMax": 11 }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{site}");
    assert_eq!(dec(&site["limit"]), Decimal::from(100_000));
    assert_eq!(site["unit"], "W");
    let id = site["id"].as_i64().unwrap();
    let mut config = SimConfig::new(format!("ws://{}/ocpp", central.ocpp_addr()));
    config.count = CHARGERS;
    config.evses = 1;
    config.prefix = "BAL".into();
    config.versions = VersionMix::mixed();
    config.scenario = Scenario::Idle;
    config.meter_interval = METER_INTERVAL;
    config.power_w = 11_000;
    let identities: Vec<String> = (0..CHARGERS).map(|i| config.identity(i)).collect();
    for c in &identities {
        let (s, v) = api
            .put(&format!("/api/sites/{id}/chargers/{c}"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let site = Site { api, id };
    let fleet = Fleet::start(config).await.expect("fleet starts");
    fleet
        .wait_stats(|s| s.booted == CHARGERS, WAIT)
        .await
        .expect("all booted");

    // Wave 1: ten drivers; 100 kW / 10 = 10 kW each (under the 11 kW an EVSE can do).
    for c in &identities[..10] {
        fleet.plug_in(c, 1).unwrap();
        fleet.present_id_token(c, Some(1), "DRIVER").unwrap();
    }
    let t = Instant::now();
    site.settled(10, 100_000, 0).await;
    site.under_limit(t, 100_000, Instant::now()).await;

    // Wave 2: ten more; 5 kW each.
    for c in &identities[10..] {
        fleet.plug_in(c, 1).unwrap();
        fleet.present_id_token(c, Some(1), "DRIVER").unwrap();
    }
    let t = Instant::now();
    site.settled(20, 100_000, 0).await;
    site.under_limit(t, 100_000, Instant::now() + METER_INTERVAL * 2)
        .await;

    // The grid operator lowers the limit to 60 kW: 3 kW each, within a meter interval.
    site.set_limit(60).await;
    let t = Instant::now();
    site.under_limit(t, 60_000, t + SETTLE + METER_INTERVAL * 2)
        .await;
    site.settled(20, 60_000, 0).await;

    // Five drivers leave: the fifteen others get 4 kW each.
    for c in &identities[..5] {
        fleet.unplug(c, 1).unwrap();
    }
    let t = Instant::now();
    site.settled(15, 60_000, 0).await;
    site.under_limit(t, 60_000, Instant::now() + METER_INTERVAL * 2)
        .await;

    // 20 kW cannot give fifteen sessions 1.38 kW: the last arrival queues, with a reason,
    // and draws nothing; the fourteen others share the 20 kW.
    site.set_limit(20).await;
    let t = Instant::now();
    let plan = site.settled(15, 20_000, 1).await;
    site.under_limit(t, 20_000, Instant::now() + METER_INTERVAL * 2)
        .await;
    let queued: Vec<&Value> = plan.iter().filter(|p| !p["queued"].is_null()).collect();
    assert_eq!(queued[0]["queued"], "below_minimum");
    assert!(queued[0]["reason"].as_str().unwrap().contains("minimum"));
    let last_arrival = plan.iter().map(|p| p["arrival"].as_u64().unwrap()).max();
    assert_eq!(queued[0]["arrival"].as_u64(), last_arrival);

    // Raised again: it is admitted.
    site.set_limit(60).await;
    site.settled(15, 60_000, 0).await;

    // One battery is full: that EV draws nothing, its meter values show it, and the other
    // fourteen get what it leaves (its cap is one step, 1 W).
    let full = &identities[5];
    fleet.ev_full(full, 1).unwrap();
    let deadline = Instant::now() + WAIT;
    let share = (Decimal::from(60_000 - 1) / Decimal::from(14)).floor();
    loop {
        let plan = site.plan().await;
        let ok = plan.len() == 15
            && plan.iter().all(|p| {
                let want = if p["charger"] == full.as_str() {
                    Decimal::ONE
                } else {
                    share
                };
                dec(&p["limit"]) == want
                    && p["sent"].as_str().and_then(|s| s.parse::<Decimal>().ok()) == Some(want)
            });
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the others did not get what the full EV left: {plan:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = Instant::now();
    site.under_limit(t, 60_000, t + SETTLE + METER_INTERVAL)
        .await;

    // Bounded work. Each plan sends at most one profile per session it changes, besides
    // the twenty TxDefaultProfiles: how many plans a change takes depends on how the
    // arrivals fall into the coalescing interval, so that is the bound, not a count of the
    // changes. Refused ones are at most those of the five departures (a lower limit for an
    // EV that stopped drawing can cross its transaction's end).
    let (_, b) = site.api.get("/api/balancer").await;
    eprintln!("balancer test: {}", b["stats"]);
    let stats = |b: &Value, k: &str| b["stats"][k].as_u64().unwrap();
    assert!(stats(&b, "profilesFailed") <= 5, "{b}");
    let (plans, sent) = (stats(&b, "plans"), stats(&b, "profilesSent"));
    assert!(sent >= 100, "{b}");
    assert!(sent <= CHARGERS as u64 * (plans + 1), "{b}");
    // And nothing is sent while nothing changes: three more meter values from every
    // charger (45 readings) bring no profile.
    tokio::time::sleep(METER_INTERVAL * 3).await;
    let (_, after) = site.api.get("/api/balancer").await;
    assert_eq!(stats(&after, "profilesSent"), sent, "{b} then {after}");

    // The chart's series: points with the limit in W.
    let (_, power) = site.api.get(&format!("/api/sites/{id}/power")).await;
    let power = power.as_array().unwrap();
    assert!(power.len() > 5);
    assert!(power
        .iter()
        .any(|p| dec(&p["limitW"]) == Decimal::from(20_000)));
    fleet.shutdown().await;
    central.shutdown().await.expect("clean shutdown");
}

/// The sites API on SQLite.
#[tokio::test]
async fn the_sites_api_refuses_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("sites.db");
    sites_api(db.display().to_string()).await;
}

/// The sites API on PostgreSQL (`OCPP_TEST_POSTGRES_URL`, set by the test command; without
/// it the test says loudly that it was skipped).
#[tokio::test]
async fn the_sites_api_refuses_bad_input_on_postgres() {
    let Some(url) = postgres_database("sites_api").await else {
        return;
    };
    sites_api(url).await;
}

/// The sites API: what it refuses, and the CRUD around it; a restart keeps the sites.
async fn sites_api(url: String) {
    let args = CentralArgs::with_database(url).ephemeral();
    let central = start(&args).await.expect("central system starts");
    let api = Api::admin(&central).await;
    let bad = [
        json!({ "name": "S", "limit": -1, "unit": "kW" }),
        json!({ "name": "S", "limit": "1000000001", "unit": "W" }),
        json!({ "name": "S", "limit": 10, "unit": "MW" }),
        json!({ "name": " ", "limit": 10, "unit": "kW" }),
        json!({ "name": "x".repeat(101), "limit": 10, "unit": "kW" }),
        json!({ "name": "S", "limit": 10, "unit": "kW", "minRate": 12, "evseMax": 11 }),
    ];
    for body in bad {
        let (s, v) = api.post("/api/sites", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_body");
    }
    let (s, _) = api
        .post(
            "/api/sites",
            json!({ "name": "S", "limit": 10, "unit": "kW", "extra": 1 }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = api.get("/api/sites").await;
    assert_eq!((s, v), (StatusCode::OK, json!([])), "nothing stored");

    // A site in A per phase, with its defaults.
    let (s, site) = api
        .post(
            "/api/sites",
            json!({ "name": "Garage", "limit": "63.5", "unit": "A" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{site}");
    let id = site["id"].as_i64().unwrap();
    assert_eq!(site["unit"], "A");
    assert_eq!(dec(&site["minRate"]), Decimal::from(6));
    assert_eq!(dec(&site["evseMax"]), Decimal::from(32));
    assert_eq!(
        dec(&site["limitW"]),
        Decimal::new(635, 1) * Decimal::from(690)
    );
    let (s, _) = api
        .put(
            &format!("/api/sites/{id}/limit"),
            json!({ "limit": 40, "unit": "kW" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "kW for a site in A");
    let (s, v) = api
        .put(&format!("/api/sites/{id}/limit"), json!({ "limit": 40 }))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(dec(&v["limit"]), Decimal::from(40));
    let (s, _) = api
        .put(
            &format!("/api/sites/{id}/chargers/{}", "a".repeat(49)),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = api
        .put(&format!("/api/sites/{id}/chargers/CP-1"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["chargers"], json!(["CP-1"]));
    for (path, body) in [
        ("/api/sites/999", Value::Null),
        ("/api/sites/999/plan", Value::Null),
        ("/api/sites/999/power", Value::Null),
    ] {
        let _ = body;
        let (s, v) = api.get(path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(v["error"]["code"], "unknown_site");
    }
    let (s, _) = api.put("/api/sites/999/limit", json!({ "limit": 1 })).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.put("/api/sites/999/chargers/CP-1", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Update, unassign, delete.
    let (s, v) = api
        .put(
            &format!("/api/sites/{id}"),
            json!({ "name": "Garage 2", "limit": 22, "unit": "kW" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["unit"].as_str()),
        (Some("Garage 2"), Some("W"))
    );
    assert_eq!(dec(&v["limit"]), Decimal::from(22_000));
    // Stored: a restart reads the site and its charger back.
    central.shutdown().await.expect("clean shutdown");
    let central = start(&args).await.expect("central system starts again");
    let api = Api::admin(&central).await;
    let (s, v) = api.get(&format!("/api/sites/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "Garage 2");
    assert_eq!(dec(&v["limit"]), Decimal::from(22_000));
    assert_eq!(v["chargers"], json!(["CP-1"]));
    let (s, _) = api.delete(&format!("/api/sites/{id}/chargers/CP-1")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.delete(&format!("/api/sites/{id}/chargers/CP-1")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.delete(&format!("/api/sites/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.delete(&format!("/api/sites/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    central.shutdown().await.expect("clean shutdown");
}
