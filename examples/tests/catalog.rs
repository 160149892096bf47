//! What drivers search, end to end over real sockets: connector specs from a 2.x charger's
//! device model report and from the operator (a 1.6 charger says nothing), the driver's
//! charger list in one database query with its filters (power, connector type, available,
//! site, text, paging) over thousands of chargers written straight into the database, and
//! the site overview of the driver app's map (location, available/total per connector type).

use std::collections::BTreeMap;

use ocpp_charger::MemoryStore;
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_types::Version;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{booted, station, until};
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;
#[path = "support/driver.rs"]
mod driver;
use driver::DriverClient;

/// Chargers written straight into the database.
const BULK: usize = 3_000;

/// A connector as the test wrote it: EVSE, status, W, type.
type Conn = (i64, &'static str, i64, &'static str);

/// One bulk charger as the test wrote it: connected, its site (0: A, 1: B) and its
/// connectors (EVSE, status, W, type).
struct Bulk {
    identity: String,
    connected: bool,
    site: Option<usize>,
    connectors: Vec<Conn>,
}

fn bulk(i: usize) -> Bulk {
    let mut connectors = vec![(
        1,
        if i.is_multiple_of(4) {
            "Available"
        } else {
            "Charging"
        },
        [7_400, 22_000, 50_000, 150_000][i % 4],
        ["cType2", "cType2", "cCCS2", "cCCS2"][i % 4],
    )];
    if i.is_multiple_of(2) {
        connectors.push((
            2,
            if i.is_multiple_of(3) {
                "Available"
            } else {
                "Faulted"
            },
            if i.is_multiple_of(6) { 350_000 } else { 11_000 },
            if i.is_multiple_of(6) {
                "cCHAdeMO"
            } else {
                "sType2"
            },
        ));
    }
    Bulk {
        identity: format!("BULK-{i:04}"),
        connected: !i.is_multiple_of(5),
        site: match i % 10 {
            0 => Some(0),
            1 => Some(1),
            _ => None,
        },
        connectors,
    }
}

/// The chargers the model says match: a connector meeting every connector filter at once.
fn expected(
    filter: impl Fn(&Bulk) -> bool,
    connector: impl Fn(&Bulk, &(i64, &str, i64, &str)) -> bool,
) -> Vec<String> {
    (0..BULK)
        .map(bulk)
        .filter(|b| filter(b) && b.connectors.iter().any(|c| connector(b, c)))
        .map(|b| b.identity)
        .collect()
}

/// Writes the bulk chargers, connectors, specs and site assignments in a few statements.
async fn write_bulk(url: &str, sites: [i64; 2]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("database");
    let all: Vec<Bulk> = (0..BULK).map(bulk).collect();
    let placeholders = |rows: usize, cols: usize| {
        (0..rows)
            .map(|r| {
                let p: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
                format!("({})", p.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for chunk in all.chunks(100) {
        let sql = format!(
            "INSERT INTO chargers (identity, version, connected, registered) VALUES {}",
            placeholders(chunk.len(), 3).replace(')', ", 1)")
        );
        let mut q = sqlx::query(&sql);
        for b in chunk {
            q = q
                .bind(b.identity.clone())
                .bind("2.0.1")
                .bind(i64::from(b.connected));
        }
        q.execute(&pool).await.expect("chargers");
        let conns: Vec<(&Bulk, &Conn)> = chunk
            .iter()
            .flat_map(|b| b.connectors.iter().map(move |c| (b, c)))
            .collect();
        let sql = format!(
            "INSERT INTO connectors (charger, evse, connector, status, since) VALUES {}",
            placeholders(conns.len(), 4).replace(')', ", '2026-01-01T00:00:00Z')")
        );
        let mut q = sqlx::query(&sql);
        for (b, c) in &conns {
            q = q.bind(b.identity.clone()).bind(c.0).bind(-1i64).bind(c.1);
        }
        q.execute(&pool).await.expect("connectors");
        let rows: Vec<String> = (0..conns.len())
            .map(|r| {
                let b = r * 4;
                format!(
                    "(${}, ${}, -1, ${}, ${}, 'operator', '2026-01-01T00:00:00Z')",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO connector_specs (charger, evse, connector, max_power_w, connector_type, source, updated_at) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (b, c) in &conns {
            q = q.bind(b.identity.clone()).bind(c.0).bind(c.2).bind(c.3);
        }
        q.execute(&pool).await.expect("specs");
        let on_site: Vec<&Bulk> = chunk.iter().filter(|b| b.site.is_some()).collect();
        if !on_site.is_empty() {
            let sql = format!(
                "INSERT INTO site_chargers (charger, site_id) VALUES {}",
                placeholders(on_site.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for b in on_site {
                q = q.bind(b.identity.clone()).bind(sites[b.site.unwrap_or(0)]);
            }
            q.execute(&pool).await.expect("site chargers");
        }
    }
    pool.close().await;
}

fn identities(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|c| c["identity"].as_str().expect("identity").to_owned())
        .collect()
}

/// Every page of `query` (200 a page), in order.
async fn all_pages(d: &DriverClient, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let (s, v) = d
            .get(&format!(
                "/api/driver/chargers?{query}&limit=200&offset={}",
                out.len()
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let page = identities(&v);
        let n = page.len();
        out.extend(page);
        if n < 200 {
            return out;
        }
    }
}

async fn central(url: &str) -> RunningCentral {
    start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts")
}

async fn search(url: &str) {
    let c = central(url).await;
    let api = Api::admin(&c).await;
    let mut sites = [0i64; 2];
    for (i, name) in ["Alpha Depot", "Beta Mall"].iter().enumerate() {
        let (s, v) = api
            .post(
                "/api/sites",
                json!({ "name": name, "limit": "500", "unit": "kW" }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        sites[i] = v["id"].as_i64().expect("site id");
    }
    write_bulk(url, sites).await;

    // A 2.0.1 charger reports its specs; a 1.6 charger says nothing, the operator sets them.
    let mut v2 = station(
        &c,
        "CAT-201",
        Version::V201,
        (2, 22_080),
        MemoryStore::new(),
        |s| s.connector_type("cCCS2"),
    );
    let mut v16 = station(
        &c,
        "CAT-16",
        Version::V16,
        (1, 7_400),
        MemoryStore::new(),
        |s| s,
    );
    booted(&mut v2).await;
    booted(&mut v16).await;
    let (s, r) = api
        .post(
            "/api/chargers/CAT-201/reports",
            json!({ "base": "FullInventory" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let specs = until("the reported specs", || async {
        let (_, v) = api.get("/api/chargers/CAT-201/specs").await;
        (v.as_array()?.len() == 4).then_some(v)
    })
    .await;
    assert_eq!(
        specs,
        json!([
            { "evse": 1, "connector": -1, "maxPowerW": 22080, "connectorType": null, "phases": 3, "source": "reported" },
            { "evse": 1, "connector": 1, "maxPowerW": null, "connectorType": "cCCS2", "phases": null, "source": "reported" },
            { "evse": 2, "connector": -1, "maxPowerW": 22080, "connectorType": null, "phases": 3, "source": "reported" },
            { "evse": 2, "connector": 1, "maxPowerW": null, "connectorType": "cCCS2", "phases": null, "source": "reported" },
        ])
    );
    let (s, v) = api
        .put(
            "/api/chargers/CAT-16/connectors/1/spec",
            json!({ "maxPowerKw": "11", "connectorType": "sType2", "phases": 3 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!([{ "evse": 1, "connector": -1, "maxPowerW": 11000, "connectorType": "sType2", "phases": 3, "source": "operator" }])
    );

    let (d, _) = DriverClient::sign_up(&c, "search@example.com", None).await;
    // The live chargers, with their specs and statuses.
    let live = until("both live chargers available", || async {
        let (_, v) = d
            .get("/api/driver/chargers?search=cat-&available=true")
            .await;
        (v.as_array()?.len() == 2
            && v.as_array()?.iter().all(|c| {
                c["connectors"]
                    .as_array()
                    .is_some_and(|k| k.iter().all(|k| k["status"] == "Available"))
            }))
        .then_some(v)
    })
    .await;
    assert_eq!(
        live,
        json!([
            { "identity": "CAT-16", "online": true, "siteId": null, "siteName": null, "available": 1, "connectors": [
                { "evse": 1, "connector": null, "status": "Available", "maxPowerW": 11000, "connectorType": "sType2", "phases": 3 },
            ] },
            { "identity": "CAT-201", "online": true, "siteId": null, "siteName": null, "available": 2, "connectors": [
                { "evse": 1, "connector": 1, "status": "Available", "maxPowerW": 22080, "connectorType": "cCCS2", "phases": 3 },
                { "evse": 2, "connector": 1, "status": "Available", "maxPowerW": 22080, "connectorType": "cCCS2", "phases": 3 },
            ] },
        ])
    );
    let (_, v) = d.get("/api/driver/chargers?search=CAT&minPowerKw=11").await;
    assert_eq!(identities(&v), ["CAT-16", "CAT-201"]);
    let (_, v) = d
        .get("/api/driver/chargers?search=CAT&minPowerKw=11.001")
        .await;
    assert_eq!(identities(&v), ["CAT-201"]);
    let (_, v) = d
        .get("/api/driver/chargers?search=cat&connectorType=ccs2")
        .await;
    assert!(identities(&v).is_empty(), "{v}");
    let (_, v) = d
        .get("/api/driver/chargers?search=cat&connectorType=CCCS2")
        .await;
    assert_eq!(identities(&v), ["CAT-201"]);

    // What the operator set wins over the next report.
    let (s, v) = api
        .put(
            "/api/chargers/CAT-201/connectors/2/spec",
            json!({ "maxPowerKw": "7.4" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, r) = api
        .post(
            "/api/chargers/CAT-201/reports",
            json!({ "base": "FullInventory" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let request_id = r["requestId"].clone();
    until("the second report", || async {
        let (_, list) = api.get("/api/chargers/CAT-201/reports").await;
        list.as_array()?
            .iter()
            .find(|r| r["requestId"] == request_id && r["status"] == "Complete")
            .cloned()
    })
    .await;
    let (_, specs) = api.get("/api/chargers/CAT-201/specs").await;
    assert_eq!(
        specs[2],
        json!({ "evse": 2, "connector": -1, "maxPowerW": 7400, "connectorType": null, "phases": null, "source": "operator" })
    );

    // The filters over the bulk chargers: exactly the model's answers, every page.
    let mut bulk_all: Vec<String> = (0..BULK).map(|i| bulk(i).identity).collect();
    bulk_all.extend(["CAT-16".to_owned(), "CAT-201".to_owned()]);
    bulk_all.sort();
    assert_eq!(all_pages(&d, "").await, bulk_all);
    assert_eq!(
        all_pages(&d, "search=bulk&minPowerKw=50&available=true").await,
        expected(
            |_| true,
            |b, c| b.connected && c.1 == "Available" && c.2 >= 50_000
        )
    );
    assert_eq!(
        all_pages(&d, "search=BULK&connectorType=cchademo").await,
        expected(|_| true, |_, c| c.3 == "cCHAdeMO")
    );
    let alpha = sites[0];
    assert_eq!(
        all_pages(&d, &format!("site={alpha}&available=true")).await,
        expected(
            |b| b.site == Some(0),
            |b, c| b.connected && c.1 == "Available"
        )
    );
    let want = expected(|b| b.identity.starts_with("BULK-00"), |_, c| c.2 >= 22_000);
    // All but the multiples of 4 without a CHAdeMO (not multiples of 12): 100 - 16.
    assert_eq!(want.len(), 84, "the model: {want:?}");
    assert_eq!(all_pages(&d, "search=bulk-00&minPowerKw=22").await, want);
    // The site's name finds its chargers too.
    assert_eq!(
        all_pages(&d, "search=beta%20mall").await,
        expected(|b| b.site == Some(1), |_, _| true)
    );
    // A page: offset and limit over the matches.
    let (_, v) = d
        .get("/api/driver/chargers?connectorType=sType2&offset=10&limit=3")
        .await;
    let all_stype2 = {
        let mut e = expected(|_| true, |_, c| c.3 == "sType2");
        e.push("CAT-16".into());
        e.sort();
        e
    };
    assert_eq!(identities(&v), all_stype2[10..13]);
    // An offline charger's connectors are all Unavailable.
    let (_, v) = d.get("/api/driver/chargers?search=BULK-0000").await;
    assert_eq!(
        v[0],
        json!({ "identity": "BULK-0000", "online": false, "siteId": alpha, "siteName": "Alpha Depot", "available": 0, "connectors": [
            { "evse": 1, "connector": null, "status": "Unavailable", "maxPowerW": 7400, "connectorType": "cType2", "phases": null },
            { "evse": 2, "connector": null, "status": "Unavailable", "maxPowerW": 350000, "connectorType": "cCHAdeMO", "phases": null },
        ] })
    );

    // The site overview of the map: location, available/total per connector type.
    let (s, v) = api
        .put(
            &format!("/api/sites/{alpha}/location"),
            json!({ "lat": "52.3702", "lon": "4.8952", "address": "Dam 1" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api
        .put(&format!("/api/sites/{alpha}/chargers/CAT-201"), json!({}))
        .await;
    assert!(s.is_success(), "{v}");
    let (s, overview) = d.get("/api/driver/sites").await;
    assert_eq!(s, StatusCode::OK, "{overview}");
    let mut per_type: BTreeMap<(usize, &str), (i64, i64)> = BTreeMap::new();
    for b in (0..BULK).map(bulk) {
        let Some(site) = b.site else { continue };
        for c in &b.connectors {
            let e = per_type.entry((site, c.3)).or_default();
            e.1 += 1;
            if b.connected && c.1 == "Available" {
                e.0 += 1;
            }
        }
    }
    // CAT-201's two connectors on Alpha; its EVSE 2 row says no type, its connector's does.
    per_type.insert((0, "cCCS2"), {
        let (a, t) = per_type.get(&(0, "cCCS2")).copied().unwrap_or_default();
        (a + 2, t + 2)
    });
    for (i, site) in overview.as_array().expect("sites").iter().enumerate() {
        let types: Vec<Value> = per_type
            .iter()
            .filter(|((s, _), _)| *s == i)
            .map(|((_, t), (a, n))| json!({ "connectorType": t, "available": a, "total": n }))
            .collect();
        assert_eq!(site["types"], json!(types), "{site}");
        let (a, n) = per_type
            .iter()
            .filter(|((s, _), _)| *s == i)
            .fold((0, 0), |(a, n), (_, (x, y))| (a + x, n + y));
        assert_eq!(
            (site["available"].as_i64(), site["total"].as_i64()),
            (Some(a), Some(n))
        );
    }
    assert_eq!(
        overview[0]["location"],
        json!({ "lat": "52.3702", "lon": "4.8952", "address": "Dam 1" })
    );
    assert_eq!(overview[1]["location"], Value::Null);

    // Bad input: the exact error, and nothing else changed.
    for q in [
        "minPowerKw=-1",
        "minPowerKw=lots",
        "connectorType=a%20b",
        "limit=ten",
        "colour=red",
    ] {
        let (s, v) = d.get(&format!("/api/driver/chargers?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"]["code"], "invalid_query", "{q}: {v}");
    }
    for (path, body, status, code) in [
        (
            "/api/chargers/CAT-16/connectors/1/spec",
            json!({ "phases": 5 }),
            400,
            "invalid_body",
        ),
        (
            "/api/chargers/CAT-16/connectors/1/spec",
            json!({ "maxPowerKw": "0.0001" }),
            400,
            "invalid_body",
        ),
        (
            "/api/chargers/CAT-16/connectors/1/spec",
            json!({ "connectorType": "" }),
            400,
            "invalid_body",
        ),
        (
            "/api/chargers/CAT-16/connectors/0/spec",
            json!({ "phases": 1 }),
            400,
            "invalid_path",
        ),
        (
            "/api/chargers/NOPE/connectors/1/spec",
            json!({ "phases": 1 }),
            404,
            "unknown_charger",
        ),
        (
            &format!("/api/sites/{alpha}/location"),
            json!({ "lat": "91", "lon": "0" }),
            400,
            "invalid_body",
        ),
        (
            "/api/sites/999999/location",
            json!({ "lat": "1", "lon": "0" }),
            404,
            "unknown_site",
        ),
    ] {
        let (s, v) = api.put(path, body.clone()).await;
        assert_eq!(s.as_u16(), status, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], code, "{path} {body}: {v}");
    }
    let (_, v) = api.get("/api/chargers/CAT-16/specs").await;
    assert_eq!(v[0]["maxPowerW"], 11000);
    // Per field, the operator's EVSE row wins over the connector's reported row, and a
    // field the operator left empty is still the reported one.
    let (s, v) = api
        .put(
            "/api/chargers/CAT-201/connectors/1/spec",
            json!({ "connectorType": "cType2" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = d.get("/api/driver/chargers?search=CAT-201").await;
    let k = &v[0]["connectors"];
    assert_eq!(
        (k[0]["connectorType"].clone(), k[0]["maxPowerW"].clone()),
        (json!("cType2"), Value::Null)
    );
    assert_eq!(
        (
            k[1]["connectorType"].clone(),
            k[1]["maxPowerW"].clone(),
            k[1]["phases"].clone()
        ),
        (json!("cCCS2"), json!(7400), Value::Null)
    );
    // A driver cannot set specs; an operator's key cannot use the driver's list.
    let (s, _) = d
        .put(
            "/api/chargers/CAT-16/connectors/1/spec",
            json!({ "phases": 1 }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = api.get("/api/driver/chargers").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    v2.shutdown().await.expect("station");
    v16.shutdown().await.expect("station");
    c.shutdown().await.expect("central");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_search_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    search(&format!("sqlite://{}", dir.path().join("c.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_search_postgres() {
    if let Some(url) = postgres_database("catalog_search").await {
        search(&url).await;
    }
}
