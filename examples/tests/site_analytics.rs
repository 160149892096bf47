//! Per-site analytics and health alerts end to end through the example API: energy and
//! sessions per day per site, a site's power over time against its limit from stored meter
//! values, heartbeat gaps and reconnect storms per charger, all with exact figures from data
//! written straight into the database; and the health alerts' HMAC-signed webhook to a local
//! receiver: one delivery per transition (down, recovered), retried with backoff after a
//! failure, bounded in attempts, in the delivery log.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use chrono::{DateTime, Duration, DurationRound, Utc};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{booted, charger, until};
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.expect("database")
}

async fn exec(pool: &sqlx::AnyPool, sql: &str, binds: &[&str]) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A session row: (id, charger, started, ended, energy Wh).
async fn session(
    pool: &sqlx::AnyPool,
    id: i64,
    charger: &str,
    started: DateTime<Utc>,
    ended: Option<DateTime<Utc>>,
    wh: &str,
) {
    sqlx::query(
        "INSERT INTO sessions (id, charger, transaction_id, evse, connector, started_at, ended_at,
             meter_start_wh, meter_last_wh, energy_wh, cost, currency, status)
         VALUES ($1, $2, $3, 1, 1, $4, $5, '0', $6, $6, '0', 'EUR', $7)",
    )
    .bind(id)
    .bind(charger)
    .bind(format!("T{id}"))
    .bind(ts(started))
    .bind(ended.map(ts))
    .bind(wh)
    .bind(if ended.is_some() {
        "completed"
    } else {
        "active"
    })
    .execute(pool)
    .await
    .expect("session");
}

async fn sample(
    pool: &sqlx::AnyPool,
    session: i64,
    at: DateTime<Utc>,
    measurand: &str,
    value: &str,
    unit: &str,
    phase: Option<&str>,
) {
    sqlx::query(
        "INSERT INTO meter_values (session_id, timestamp, measurand, value, unit, phase) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session)
    .bind(ts(at))
    .bind(measurand)
    .bind(value)
    .bind(unit)
    .bind(phase)
    .execute(pool)
    .await
    .expect("sample");
}

async fn event(pool: &sqlx::AnyPool, id: i64, at: DateTime<Utc>, charger: &str, kind: &str) {
    sqlx::query("INSERT INTO events (id, at, charger, kind, detail) VALUES ($1, $2, $3, $4, '{}')")
        .bind(id)
        .bind(ts(at))
        .bind(charger)
        .bind(kind)
        .execute(pool)
        .await
        .expect("event");
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}"))
        .parse()
        .expect("decimal")
}

async fn analytics(url: &str) {
    // The schema first, then the data, then the central system reads it.
    drop(
        ocpp_examples::backend::db::Db::open(url)
            .await
            .expect("migrates"),
    );
    let db = pool(url).await;
    let now = Utc::now();
    exec(
        &db,
        "INSERT INTO sites (id, name, limit_value, limit_unit, min_rate, evse_max, updated_at) VALUES
         (1, 'Alpha', '20000', 'W', '1380', '22000', '2026-01-01T00:00:00Z'),
         (2, 'Beta', '100000', 'W', '1380', '22000', '2026-01-01T00:00:00Z')",
        &[],
    )
    .await;
    exec(
        &db,
        "INSERT INTO site_chargers (charger, site_id) VALUES ('AN-1', 1), ('AN-2', 1), ('BN-1', 2)",
        &[],
    )
    .await;
    let noon = |days: i64| {
        (now - Duration::days(days))
            .duration_trunc(Duration::days(1))
            .expect("day")
            + Duration::hours(12)
    };
    let hour = Duration::hours(1);
    session(&db, 1, "AN-1", noon(1), Some(noon(1) + hour), "12000").await;
    session(&db, 2, "AN-2", noon(1), Some(noon(1) + hour), "3500.5").await;
    session(&db, 3, "BN-1", noon(1), Some(noon(1) + hour), "40000").await;
    session(&db, 4, "AN-1", noon(2), Some(noon(2) + hour), "1000").await;
    // An unassigned charger's session counts for no site.
    session(&db, 5, "ZZ-1", noon(1), Some(noon(1) + hour), "99999").await;
    // Two sessions running on Alpha, their power in two quarter hours two hours ago.
    let b0 = (now - Duration::hours(2))
        .duration_trunc(Duration::minutes(15))
        .expect("bucket");
    let b1 = b0 + Duration::minutes(15);
    let s = Duration::seconds;
    session(&db, 6, "AN-1", now - Duration::hours(3), None, "5000").await;
    session(&db, 7, "AN-2", now - Duration::hours(3), None, "4000").await;
    let p = "Power.Active.Import";
    sample(&db, 6, b0 + s(60), p, "10000", "W", None).await;
    sample(&db, 6, b0 + s(120), p, "12000", "W", None).await;
    sample(&db, 6, b1 + s(30), p, "9", "kW", None).await;
    sample(&db, 7, b0 + s(300), p, "11000", "W", None).await;
    // A phase's value and another measurand are not the session's power.
    sample(&db, 7, b0 + s(300), p, "5000", "W", Some("L1")).await;
    sample(
        &db,
        7,
        b1 + s(300),
        "Energy.Active.Import.Register",
        "4000",
        "Wh",
        None,
    )
    .await;
    // Connectivity: CN-1 away twice (600 s, 3,600 s), CN-2 six connections in 5 minutes
    // (a storm) and one later, CN-3 away for the last 30 minutes.
    let m = Duration::minutes;
    let mut id = 1_000;
    let mut ev = |at, charger: &'static str, kind: &'static str| {
        id += 1;
        (id, at, charger, kind)
    };
    let events = vec![
        ev(now - m(300), "CN-1", "disconnected"),
        ev(now - m(290), "CN-1", "connected"),
        ev(now - m(180), "CN-1", "disconnected"),
        ev(now - m(120), "CN-1", "connected"),
        ev(now - m(360), "CN-2", "connected"),
        ev(now - m(359), "CN-2", "connected"),
        ev(now - m(358), "CN-2", "connected"),
        ev(now - m(357), "CN-2", "connected"),
        ev(now - m(356), "CN-2", "connected"),
        ev(now - m(355), "CN-2", "connected"),
        ev(now - m(60), "CN-2", "connected"),
        ev(now - m(30), "CN-3", "disconnected"),
        // Older than the window: not counted.
        ev(now - m(25 * 60), "CN-1", "disconnected"),
    ];
    for (id, at, charger, kind) in events {
        event(&db, id, at, charger, kind).await;
    }
    db.close().await;

    let c: RunningCentral = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts");
    let api = Api::admin(&c).await;

    // Per day per site.
    let (st, v) = api.get("/api/analytics/sites?days=3").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let day = |d: i64| noon(d).format("%Y-%m-%d").to_string();
    let days = |sessions: [i64; 3], kwh: [&str; 3]| {
        (0..3)
            .map(|i| {
                (
                    day(2 - i as i64),
                    sessions[i],
                    kwh[i].parse::<Decimal>().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let got = |site: &Value| {
        site["days"]
            .as_array()
            .expect("days")
            .iter()
            .map(|d| {
                (
                    d["day"].as_str().unwrap().to_owned(),
                    d["sessions"].as_i64().unwrap(),
                    dec(&d["energyKwh"]),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(v[0]["name"], "Alpha");
    // Today: the two running sessions if they started today (3 hours ago).
    let today = if (now - Duration::hours(3)).date_naive() == now.date_naive() {
        (2, "9")
    } else {
        (0, "0")
    };
    let mut alpha = days([1, 2, 0], ["1", "15.5005", "0"]);
    alpha[2].1 = today.0;
    alpha[2].2 = today.1.parse().unwrap();
    if today.0 == 0 {
        // They started yesterday.
        alpha[1].1 += 2;
        alpha[1].2 += Decimal::from(9);
    }
    assert_eq!(got(&v[0]), alpha);
    assert_eq!(got(&v[1]), days([0, 1, 0], ["0", "40", "0"]));

    // Power against the limit.
    let (st, v) = api
        .get("/api/analytics/sites/1/power?hours=24&bucketMinutes=15")
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(dec(&v["limitW"]), Decimal::from(20_000));
    assert_eq!(v["bucketMinutes"], 15);
    assert_eq!(dec(&v["peakW"]), Decimal::from(22_000));
    assert_eq!(v["overLimit"], 1);
    let buckets = v["buckets"].as_array().expect("buckets");
    assert!((96..=97).contains(&buckets.len()), "{}", buckets.len());
    let at = |t: DateTime<Utc>| {
        buckets
            .iter()
            .find(|b| {
                b["at"]
                    .as_str()
                    .and_then(|a| a.parse::<DateTime<Utc>>().ok())
                    == Some(t)
            })
            .unwrap_or_else(|| panic!("no bucket at {t}"))
    };
    // b0: session 6's mean 11,000 W plus session 7's 11,000 W; b1: 9 kW.
    assert_eq!(dec(&at(b0)["powerW"]), Decimal::from(22_000));
    assert_eq!(at(b0)["sessions"], 2);
    assert_eq!(at(b0)["overLimit"], true);
    assert_eq!(dec(&at(b1)["powerW"]), Decimal::from(9_000));
    assert_eq!(at(b1)["sessions"], 1);
    assert_eq!(at(b1)["overLimit"], false);
    let others: Decimal = buckets
        .iter()
        .filter(|b| b["sessions"] == 0)
        .map(|b| dec(&b["powerW"]))
        .sum();
    assert_eq!(others, Decimal::ZERO);
    let (st, v) = api.get("/api/analytics/sites/99/power").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "unknown_site");
    let (st, v) = api
        .get("/api/analytics/sites/1/power?bucketMinutes=x")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_query");

    // Gaps and storms.
    let (st, v) = api.get("/api/analytics/connectivity?hours=24").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let list = v.as_array().expect("list");
    let names: Vec<&str> = list
        .iter()
        .map(|c| c["charger"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CN-2", "CN-1", "CN-3"], "{v}");
    let storm_from: DateTime<Utc> = list[0]["storms"][0]["from"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let storm_to: DateTime<Utc> = list[0]["storms"][0]["to"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((storm_to - storm_from).num_seconds(), 300);
    assert_eq!(
        (
            list[0]["reconnects"].clone(),
            list[0]["gaps"].clone(),
            list[0]["stormCount"].clone(),
            list[0]["storms"][0]["reconnects"].clone()
        ),
        (json!(7), json!(0), json!(1), json!(6))
    );
    assert_eq!(
        (
            list[1]["gaps"].clone(),
            list[1]["longestGapSecs"].clone(),
            list[1]["offlineSecs"].clone(),
            list[1]["awayNow"].clone(),
            list[1]["stormCount"].clone()
        ),
        (json!(2), json!(3600), json!(4200), json!(false), json!(0))
    );
    assert_eq!(list[2]["awayNow"], true);
    let away = list[2]["offlineSecs"].as_i64().unwrap();
    assert!((1800..1900).contains(&away), "{away}");
    c.shutdown().await.expect("central");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_site_analytics_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    analytics(&format!("sqlite://{}", dir.path().join("a.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_site_analytics_postgres() {
    if let Some(url) = postgres_database("site_analytics").await {
        analytics(&url).await;
    }
}

/// What the receiver got: (signature header, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver on 127.0.0.1: refuses (500) the first delivery of every charger and
/// every delivery about `AL-FAIL`, takes the rest.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let sig = headers
                    .get("alert-signature")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let mut all = seen.lock().unwrap();
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                let first = !all.iter().any(|(_, b)| {
                    serde_json::from_str::<Value>(b).unwrap_or_default()["charger"] == v["charger"]
                });
                all.push((sig, body));
                if first || v["charger"] == "AL-FAIL" {
                    AxumStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxumStatus::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

const SECRET: &str = "alert-secret-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_alerts_notify_once_per_transition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args =
        CentralArgs::with_database(format!("sqlite://{}", dir.path().join("al.db").display()))
            .ephemeral();
    args.alert_interval_ms = 50;
    args.alert_backoff_ms = 50;
    args.alert_attempts = 3;
    let c = start(&args).await.expect("starts");
    let api = Api::admin(&c).await;
    let (url, got) = receiver().await;

    // Bad settings: the exact error, nothing set.
    for body in [
        json!({ "url": "ftp://example.org/x", "secret": SECRET }),
        json!({ "url": "http://", "secret": SECRET }),
        json!({ "url": url, "secret": "short" }),
        json!({ "url": url }),
    ] {
        let (s, v) = api.put("/api/health-alerts/webhook", body.clone()).await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {s} {v}"
        );
        assert_eq!(v["error"]["code"], "invalid_body", "{body}: {v}");
    }
    let (_, v) = api.get("/api/health-alerts/webhook").await;
    assert_eq!(v, json!({ "url": null }));
    let (s, v) = api
        .put(
            "/api/health-alerts/webhook",
            json!({ "url": url, "secret": SECRET }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({ "url": url }));

    // A charger comes (ok: nothing sent), goes (down), comes back (recovered).
    let mut cp = charger(&c, "AL-1", Version::V201);
    booted(&mut cp).await;
    let mut failing = charger(&c, "AL-FAIL", Version::V16);
    booted(&mut failing).await;
    cp.shutdown().await.expect("station");
    failing.shutdown().await.expect("station");
    let log = until(
        "the down alert delivered after a retry, the other failed",
        || async {
            let (_, v) = api.get("/api/health-alerts/deliveries").await;
            let rows = v.as_array()?;
            (rows.len() == 2
                && rows
                    .iter()
                    .any(|r| r["charger"] == "AL-1" && r["status"] == "delivered")
                && rows
                    .iter()
                    .any(|r| r["charger"] == "AL-FAIL" && r["status"] == "failed"))
            .then_some(v)
        },
    )
    .await;
    for r in log.as_array().unwrap() {
        assert_eq!(r["event"], "down", "{r}");
        assert_eq!(r["payload"]["flag"], "down", "{r}");
        assert_eq!(r["payload"]["previous"], "ok", "{r}");
        if r["charger"] == "AL-1" {
            assert_eq!(
                (r["attempts"].clone(), r["lastError"].clone()),
                (json!(2), Value::Null)
            );
        } else {
            // Bounded: three attempts, then failed with the last answer.
            assert_eq!(
                (r["attempts"].clone(), r["lastError"].clone()),
                (json!(3), json!("HTTP 500"))
            );
        }
    }
    let mut back = charger(&c, "AL-1", Version::V201);
    booted(&mut back).await;
    let log = until("the recovered alert", || async {
        let (_, v) = api.get("/api/health-alerts/deliveries").await;
        (v.as_array()?.len() == 3 && v[0]["status"] == "delivered").then_some(v)
    })
    .await;
    assert_eq!(
        (
            log[0]["charger"].clone(),
            log[0]["event"].clone(),
            log[0]["payload"]["previous"].clone(),
            log[0]["attempts"].clone()
        ),
        (json!("AL-1"), json!("recovered"), json!("down"), json!(1))
    );
    // Dedupe: many more checks, no new delivery while nothing changes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, v) = api.get("/api/health-alerts/deliveries").await;
    assert_eq!(v.as_array().map(Vec::len), Some(3), "{v}");
    // What the receiver got: AL-1 down twice (refused, then taken), AL-FAIL down three
    // times, AL-1 recovered once; every one signed with the secret.
    let got = got.lock().unwrap().clone();
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|(_, b)| {
            let v: Value = serde_json::from_str(b).unwrap();
            (
                v["charger"].as_str().unwrap().to_owned(),
                v["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let count = |c: &str, e: &str| seen.iter().filter(|(x, y)| x == c && y == e).count();
    assert_eq!(
        (
            count("AL-1", "down"),
            count("AL-FAIL", "down"),
            count("AL-1", "recovered"),
            seen.len()
        ),
        (2, 3, 1, 6),
        "{seen:?}"
    );
    for (sig, body) in &got {
        assert!(
            ocpp_examples::backend::payments::verify_webhook(SECRET, sig, body, Utc::now()),
            "{sig} {body}"
        );
        assert!(!ocpp_examples::backend::payments::verify_webhook(
            "another-secret-000",
            sig,
            body,
            Utc::now()
        ));
    }
    // Without a webhook nothing is queued.
    let (s, _) = api.delete("/api/health-alerts/webhook").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    back.shutdown().await.expect("station");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, v) = api.get("/api/health-alerts/deliveries").await;
    assert_eq!(v.as_array().map(Vec::len), Some(3), "{v}");
    c.shutdown().await.expect("central");
}
