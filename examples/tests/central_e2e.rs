//! End-to-end: the example central system (OCPP server, backend, HTTP API, database) with
//! real ocpp-charger stations over 127.0.0.1, driven only through the HTTP API, for each OCPP
//! version, on SQLite and on PostgreSQL.
//!
//! Waiting is on the backend's live feed (the events the dashboard gets), never on sleeps.
//! PostgreSQL: `OCPP_TEST_POSTGRES_URL` names a server where databases may be created (the
//! test command installs and starts one); without it the PostgreSQL tests say loudly that they
//! were skipped.

use std::time::{Duration, Instant};

use ocpp_charger::settings::Setting;
use ocpp_charger::ws::{self, ClientConfig, ClientHandle};
use ocpp_charger::{HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station, StationConfig};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_examples::backend::{wait_for, LiveEvent};
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::broadcast;

#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

const WAIT: Duration = Duration::from_secs(30);

struct Net {
    central: RunningCentral,
    args: CentralArgs,
    api: Api,
    feed: broadcast::Receiver<LiveEvent>,
}

/// `net.get(..)`, `net.post(..)`, ...: the central system's HTTP API.
impl std::ops::Deref for Net {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Net {
    async fn start(args: CentralArgs) -> Net {
        let central = start(&args).await.expect("central system starts");
        let feed = central.backend().subscribe();
        let api = Api::admin(&central).await;
        let mut args = args;
        // A restart must come back on the same ports (chargers keep their URL).
        args.ocpp_listen = central.ocpp_addr().to_string();
        args.http_listen = central.http_addr().to_string();
        Net {
            central,
            args,
            api,
            feed,
        }
    }

    async fn restart(self) -> Net {
        let args = self.args.clone();
        self.central.shutdown().await.expect("clean shutdown");
        Net::start(args).await
    }

    fn url(&self, identity: &str) -> String {
        format!("ws://{}/ocpp/{identity}", self.central.ocpp_addr())
    }

    /// The next live event of `charger` of `kind` that satisfies `pred`.
    async fn wait(&mut self, charger: &str, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for(&mut self.feed, charger, kind, WAIT, pred)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn charger(url: String, identity: &str, version: Version) -> ClientHandle {
    let config = StationConfig::new(identity, version)
        .vendor_model("ACME", "Volt 22")
        .firmware_version("1.2.3")
        .evses(2)
        .seed(7)
        .setting(Setting::SampleInterval, "1");
    let hardware = SimulatedHardware::new(2, Decimal::from(11_000));
    let station = Station::new(config, Box::new(hardware), Saved::default(), Instant::now());
    ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(url).backoff(Duration::from_millis(50), Duration::from_millis(300)),
    )
}

/// [`charger`] with a Basic-auth password.
fn charger_with_password(
    url: String,
    identity: &str,
    version: Version,
    password: &str,
) -> ClientHandle {
    let config = StationConfig::new(identity, version).evses(2).seed(7);
    let hardware = SimulatedHardware::new(2, Decimal::from(11_000));
    let station = Station::new(config, Box::new(hardware), Saved::default(), Instant::now());
    ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(url)
            .password(password)
            .backoff(Duration::from_millis(50), Duration::from_millis(300)),
    )
}

fn energy(v: &Value) -> f64 {
    v["energyWh"].as_f64().unwrap_or(0.0)
}

/// Boot, status, a driver starts charging through the API, meter values flow, the driver
/// stops, the session is stored with energy, samples and cost; configuration or variables
/// read and changed; reset.
async fn whole_flow(database_url: String, version: Version) {
    let mut net = Net::start(CentralArgs::with_database(database_url).ephemeral()).await;
    let id = format!("CP-{}", version.as_str().replace('.', ""));
    let cp = charger(net.url(&id), &id, version);

    net.wait(&id, "booted", |_| true).await;
    let (status, view) = net.get(&format!("/api/chargers/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["connected"], true, "{view}");
    assert_eq!(view["bootState"], "Accepted", "{view}");
    assert_eq!(view["version"], version.as_str(), "{view}");
    assert_eq!(view["vendor"], "ACME", "{view}");
    assert_eq!(view["model"], "Volt 22", "{view}");
    assert_eq!(view["firmwareVersion"], "1.2.3", "{view}");

    // The driver plugs in: the connector leaves Available.
    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .unwrap();
    net.wait(&id, "status", |d| {
        d["evse"] == 1 && d["status"] != "Available" && d["status"] != "Unavailable"
    })
    .await;

    // ... and starts charging in the app: the API sends the remote start.
    let (status, answer) = net
        .post(
            &format!("/api/chargers/{id}/start"),
            json!({ "evse": 1, "idTag": "DRIVER-1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "Accepted", "{answer}");
    let started = net.wait(&id, "transaction_started", |_| true).await;
    let session = started["sessionId"].as_i64().expect("session id");

    // Meter values flow into the session.
    net.wait(&id, "transaction_updated", |d| energy(d) > 0.0)
        .await;
    let (_, live) = net.get("/api/sessions?status=active").await;
    let live = live.as_array().expect("array");
    assert!(
        live.iter()
            .any(|s| s["id"] == session && s["charger"] == id.as_str()),
        "{live:?}"
    );
    let (_, view) = net.get(&format!("/api/chargers/{id}")).await;
    assert_eq!(view["activeSessions"], json!([session]), "{view}");

    // The driver stops.
    let (status, answer) = net
        .post(
            &format!("/api/chargers/{id}/stop"),
            json!({ "sessionId": session }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "Accepted", "{answer}");
    net.wait(&id, "transaction_ended", |_| true).await;

    let (status, s) = net.get(&format!("/api/sessions/{session}")).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["charger"], id.as_str(), "{s}");
    assert_eq!(s["evse"], 1, "{s}");
    assert_eq!(s["idTag"], "DRIVER-1", "{s}");
    assert!(s["stoppedAt"].is_string(), "{s}");
    assert!(energy(&s) > 0.0, "{s}");
    assert!(!s["samples"].as_array().expect("samples").is_empty(), "{s}");
    // The cost is the tariff's (0.30 per kWh by default), exact to the cent.
    let wh: Decimal = s["energyWhExact"]
        .as_str()
        .expect("exact")
        .parse()
        .expect("decimal");
    let expected = (wh / Decimal::from(1000) * Decimal::new(30, 2))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(s["costExact"], expected.to_string(), "{s}");
    assert_eq!(s["currency"], "EUR", "{s}");

    // Configuration (1.6) or variables (2.x): read, change, read back.
    if version == Version::V16 {
        let path = format!("/api/chargers/{id}/configuration");
        let (status, a) = net
            .post(&path, json!({ "key": "HeartbeatInterval", "value": "120" }))
            .await;
        assert_eq!(
            (status, &a["status"]),
            (StatusCode::OK, &json!("Accepted")),
            "{a}"
        );
        let (status, a) = net.get(&format!("{path}?keys=HeartbeatInterval")).await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(
            a["response"]["configurationKey"][0],
            json!({ "key": "HeartbeatInterval", "readonly": false, "value": "120" }),
            "{a}"
        );
    } else {
        let var = json!({ "component": "OCPPCommCtrlr", "variable": "HeartbeatInterval" });
        let mut set = var.clone();
        set["value"] = json!("120");
        let (status, a) = net
            .post(
                &format!("/api/chargers/{id}/variables/set"),
                json!({ "variables": [set] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(
            a["response"]["setVariableResult"][0]["attributeStatus"], "Accepted",
            "{a}"
        );
        let (status, a) = net
            .post(
                &format!("/api/chargers/{id}/variables/get"),
                json!({ "variables": [var] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(
            a["response"]["getVariableResult"][0]["attributeValue"], "120",
            "{a}"
        );
    }

    // Any central action through the generic call route, checked against the schema.
    let (status, a) = net
        .post(&format!("/api/chargers/{id}/call/ClearCache"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "Accepted", "{a}");

    let (status, a) = net
        .post(&format!("/api/chargers/{id}/reset"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "Accepted", "{a}");

    // The metrics saw it all.
    let metrics = net.text("/metrics").await;
    let v = version.as_str();
    let start_in = if version == Version::V16 {
        "StartTransaction"
    } else {
        "TransactionEvent"
    };
    for needle in [
        format!("ocpp_messages_in_total{{version=\"{v}\",action=\"BootNotification\"}}"),
        format!("ocpp_messages_in_total{{version=\"{v}\",action=\"{start_in}\"}}"),
        format!("ocpp_connected_chargers{{version=\"{v}\"}} 1"),
        "ocpp_call_latency_seconds_count".to_owned(),
    ] {
        assert!(metrics.contains(&needle), "{needle} missing in\n{metrics}");
    }
    let (_, log) = net.get(&format!("/api/log?charger={id}&limit=1000")).await;
    let kinds: Vec<&str> = log
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in [
        "connected",
        "booted",
        "status",
        "transaction_started",
        "transaction_ended",
        "call",
    ] {
        assert!(kinds.contains(&k), "{k} not in the event log {kinds:?}");
    }

    cp.shutdown().await;
    net.central.shutdown().await.expect("shutdown");
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("central.db").display())
}

#[tokio::test]
async fn whole_flow_v16_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    whole_flow(sqlite_url(&dir), Version::V16).await;
}

#[tokio::test]
async fn whole_flow_v201_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    whole_flow(sqlite_url(&dir), Version::V201).await;
}

#[tokio::test]
async fn whole_flow_v21_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    whole_flow(sqlite_url(&dir), Version::V21).await;
}

#[tokio::test]
async fn whole_flow_v16_postgres() {
    if let Some(url) = postgres_database("v16").await {
        whole_flow(url, Version::V16).await;
    }
}

#[tokio::test]
async fn whole_flow_v201_postgres() {
    if let Some(url) = postgres_database("v201").await {
        whole_flow(url, Version::V201).await;
    }
}

#[tokio::test]
async fn whole_flow_v21_postgres() {
    if let Some(url) = postgres_database("v21").await {
        whole_flow(url, Version::V21).await;
    }
}

/// A central restart in the middle of a session loses nothing: the charger reconnects, the
/// session continues with its id and energy, and ends completed once.
async fn restart_mid_session(database_url: String, version: Version) {
    let mut net = Net::start(CentralArgs::with_database(database_url).ephemeral()).await;
    let id = format!("RS-{}", version.as_str().replace('.', ""));
    let cp = charger(net.url(&id), &id, version);
    net.wait(&id, "booted", |_| true).await;
    cp.hardware(HardwareEvent::CablePlugged { evse: 2 })
        .unwrap();
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(2),
        id_token: "CARD-9".into(),
    })
    .unwrap();
    let started = net.wait(&id, "transaction_started", |_| true).await;
    let session = started["sessionId"].as_i64().expect("session id");
    let before = energy(
        &net.wait(&id, "transaction_updated", |d| energy(d) > 0.0)
            .await,
    );

    let mut net = net.restart().await;
    net.wait(&id, "connected", |_| true).await;
    let after = net
        .wait(&id, "transaction_updated", |d| energy(d) > before)
        .await;
    assert_eq!(
        after["sessionId"], session,
        "the same session continues: {after}"
    );

    let (status, a) = net
        .post(
            &format!("/api/chargers/{id}/stop"),
            json!({ "sessionId": session }),
        )
        .await;
    assert_eq!(
        (status, &a["status"]),
        (StatusCode::OK, &json!("Accepted")),
        "{a}"
    );
    net.wait(&id, "transaction_ended", |_| true).await;
    let (_, all) = net.get(&format!("/api/sessions?charger={id}")).await;
    let all = all.as_array().expect("sessions");
    assert_eq!(
        all.len(),
        1,
        "one session, not a second one after the restart: {all:?}"
    );
    assert_eq!(all[0]["status"], "completed");
    assert_eq!(all[0]["idTag"], "CARD-9");
    assert!(energy(&all[0]) > before, "{:?}", all[0]);
    cp.shutdown().await;
    net.central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn restart_mid_session_v16_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    restart_mid_session(sqlite_url(&dir), Version::V16).await;
}

#[tokio::test]
async fn restart_mid_session_v201_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    restart_mid_session(sqlite_url(&dir), Version::V201).await;
}

#[tokio::test]
async fn restart_mid_session_v21_postgres() {
    if let Some(url) = postgres_database("restart_v21").await {
        restart_mid_session(url, Version::V21).await;
    }
}

/// Every bad request gets a 4xx (or 5xx from the charger side) with a JSON error naming
/// the problem, and nothing else breaks.
#[tokio::test]
async fn bad_requests_get_json_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut net = Net::start(CentralArgs::with_database(sqlite_url(&dir)).ephemeral()).await;
    let cp16 = charger(net.url("B16"), "B16", Version::V16);
    net.wait("B16", "booted", |_| true).await;
    let cp2 = charger(net.url("B201"), "B201", Version::V201);
    net.wait("B201", "booted", |_| true).await;

    async fn expect(
        net: &Net,
        r: (StatusCode, Value),
        status: StatusCode,
        code: &str,
        mentions: &str,
    ) {
        let _ = net;
        assert_eq!(r.0, status, "{}", r.1);
        assert_eq!(r.1["error"]["code"], code, "{}", r.1);
        let msg = r.1["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(mentions),
            "{msg:?} should mention {mentions:?}"
        );
    }

    let cases: Vec<((StatusCode, Value), StatusCode, &str, &str)> = vec![
        (
            net.post_raw("/api/chargers/B16/start", "{\"idTag\": ")
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "EOF",
        ),
        (
            net.post("/api/chargers/B16/start", json!({ "evse": 1 }))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "idTag",
        ),
        (
            net.post(
                "/api/chargers/B16/start",
                json!({ "idTag": "x", "colour": 1 }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "colour",
        ),
        (
            net.post(
                "/api/chargers/B16/start",
                json!({ "idTag": "A-TAG-LONGER-THAN-20-CHARACTERS" }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "RemoteStartTransaction",
        ),
        (
            net.post("/api/chargers/NOPE/start", json!({ "idTag": "x" }))
                .await,
            StatusCode::NOT_FOUND,
            "unknown_charger",
            "NOPE",
        ),
        (
            net.post("/api/chargers/B16/stop", json!({ "transactionId": "abc" }))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "integers",
        ),
        (
            net.post("/api/chargers/B16/stop", json!({})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "transactionId",
        ),
        (
            net.post("/api/chargers/B16/stop", json!({ "sessionId": 999 }))
                .await,
            StatusCode::NOT_FOUND,
            "unknown_session",
            "999",
        ),
        (
            net.post("/api/chargers/B16/reset", json!({ "type": "Gentle" }))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Gentle",
        ),
        (
            net.get("/api/chargers/B201/configuration").await,
            StatusCode::BAD_REQUEST,
            "unsupported_for_version",
            "variables",
        ),
        (
            net.post(
                "/api/chargers/B16/variables/get",
                json!({ "variables": [] }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "unsupported_for_version",
            "configuration",
        ),
        (
            net.post("/api/chargers/B16/call/Teleport", json!({})).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Teleport",
        ),
        (
            net.post("/api/chargers/B16/call/Heartbeat", json!({}))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "not sent by a central system",
        ),
        (
            net.post(
                "/api/chargers/B201/call/ChangeAvailability",
                json!({ "operationalStatus": "Sideways" }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "ChangeAvailability",
        ),
        (
            net.get("/api/sessions/abc").await,
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "abc",
        ),
        (
            net.get("/api/sessions/12345").await,
            StatusCode::NOT_FOUND,
            "unknown_session",
            "12345",
        ),
        (
            net.get("/api/sessions?status=paused").await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "paused",
        ),
        (
            net.get("/api/sessions?limit=lots").await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit",
        ),
        (
            net.post("/api/tokens", json!({ "idTag": "T1", "status": "Maybe" }))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Maybe",
        ),
        (
            net.get("/api/no/such/route").await,
            StatusCode::NOT_FOUND,
            "not_found",
            "route",
        ),
        (
            net.post("/api/sessions", json!({})).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method",
        ),
    ];
    for (r, status, code, mentions) in cases {
        expect(&net, r, status, code, mentions).await;
    }

    // A charger that answers with a CALLERROR: 502 with its error code.
    let (status, a) = net
        .post(
            "/api/chargers/B16/call/DataTransfer",
            json!({ "vendorId": "nobody" }),
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::BAD_GATEWAY,
        "{status} {a}"
    );

    // An offline charger: 409.
    cp16.shutdown().await;
    net.wait("B16", "disconnected", |_| true).await;
    let r = net
        .post("/api/chargers/B16/start", json!({ "idTag": "x" }))
        .await;
    expect(&net, r, StatusCode::CONFLICT, "charger_offline", "B16").await;

    // Nothing else broke: the other charger still answers, health is fine.
    let (status, a) = net
        .post("/api/chargers/B201/call/ClearCache", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let (status, h) = net.get("/health").await;
    assert_eq!(
        (status, &h["status"]),
        (StatusCode::OK, &json!("ok")),
        "{h}"
    );
    cp2.shutdown().await;
    net.central.shutdown().await.expect("shutdown");
}

/// Tokens decide authorization; known-only admission admits registered chargers only.
#[tokio::test]
async fn tokens_and_known_only_admission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    args.known_only = true;
    args.unknown_tokens = ocpp_examples::backend::UnknownTokens::Reject;
    let mut net = Net::start(args).await;

    // Not registered: the handshake is refused, the charger keeps retrying.
    let stranger = charger(net.url("STRANGER"), "STRANGER", Version::V201);
    let (status, registered) = net
        .post("/api/chargers", json!({ "identity": "KNOWN-1" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Registration issued its password: the charger is given it.
    let password = registered["password"].as_str().expect("a password");
    let known = charger_with_password(net.url("KNOWN-1"), "KNOWN-1", Version::V201, password);
    net.wait("KNOWN-1", "booted", |_| true).await;
    let (_, list) = net.get("/api/chargers").await;
    let ids: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["identity"].as_str())
        .collect();
    assert_eq!(ids, ["KNOWN-1"], "the stranger never got in");

    // Tokens: a blocked card is refused, an accepted one authorized.
    for (tag, st) in [("GOOD", "Accepted"), ("BAD", "Blocked")] {
        let (status, _) = net
            .post("/api/tokens", json!({ "idTag": tag, "status": st }))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    known
        .hardware(HardwareEvent::IdTokenPresented {
            evse: Some(1),
            id_token: "BAD".into(),
        })
        .unwrap();
    let d = net.wait("KNOWN-1", "authorized", |_| true).await;
    assert_eq!(d, json!({ "idToken": "BAD", "status": "Blocked" }));
    known
        .hardware(HardwareEvent::IdTokenPresented {
            evse: Some(2),
            id_token: "UNKNOWN".into(),
        })
        .unwrap();
    let d = net.wait("KNOWN-1", "authorized", |_| true).await;
    assert_eq!(d, json!({ "idToken": "UNKNOWN", "status": "Invalid" }));
    known
        .hardware(HardwareEvent::IdTokenPresented {
            evse: Some(1),
            id_token: "GOOD".into(),
        })
        .unwrap();
    let d = net.wait("KNOWN-1", "authorized", |_| true).await;
    assert_eq!(d, json!({ "idToken": "GOOD", "status": "Accepted" }));
    stranger.shutdown().await;
    known.shutdown().await;
    net.central.shutdown().await.expect("shutdown");
}

/// The charger list is searched and paged by the server (the dashboard reads one page of a
/// large network), with the number that matched in `X-Total-Count`; the summary counts every
/// charger; bad paging is refused with the exact error.
#[tokio::test]
async fn charger_list_search_paging_and_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    let net = Net::start(args).await;
    // Twelve registered (offline), two connected.
    for i in 0..12 {
        let (status, _) = net
            .post(
                "/api/chargers",
                json!({ "identity": format!("REG-{i:02}") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // One feed per charger: waiting on one feed for the first would skip the second's boot
    // if it came first.
    let mut feeds = ["LIVE-A", "LIVE-B"].map(|id| (id, net.central.backend().subscribe()));
    let live: Vec<ClientHandle> = ["LIVE-A", "LIVE-B"]
        .iter()
        .map(|id| charger(net.url(id), id, Version::V16))
        .collect();
    for (id, feed) in &mut feeds {
        wait_for(feed, id, "booted", WAIT, |_| true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("a list")
            .iter()
            .filter_map(|c| c["identity"].as_str().map(str::to_owned))
            .collect()
    };

    let (status, all, total) = net.get_paged("/api/chargers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((ids(&all).len(), total), (14, Some(14)), "no limit: all");
    let (_, page, total) = net.get_paged("/api/chargers?limit=5&offset=5").await;
    assert_eq!(total, Some(14));
    assert_eq!(
        ids(&page),
        ["REG-03", "REG-04", "REG-05", "REG-06", "REG-07"],
        "identity order, the second page"
    );
    let (_, last, _) = net.get_paged("/api/chargers?limit=5&offset=10").await;
    assert_eq!(ids(&last), ["REG-08", "REG-09", "REG-10", "REG-11"]);
    let (_, past, total) = net.get_paged("/api/chargers?limit=5&offset=99").await;
    assert_eq!((ids(&past).len(), total), (0, Some(14)));
    let (_, online, total) = net.get_paged("/api/chargers?status=online").await;
    assert_eq!(
        (ids(&online), total),
        (vec!["LIVE-A".to_owned(), "LIVE-B".to_owned()], Some(2))
    );
    let (_, offline, total) = net.get_paged("/api/chargers?status=offline&limit=2").await;
    assert_eq!(
        (ids(&offline), total),
        (vec!["REG-00".to_owned(), "REG-01".to_owned()], Some(12))
    );
    // Identity, vendor or model, any case.
    let (_, found, total) = net.get_paged("/api/chargers?search=reg-1").await;
    assert_eq!(
        (ids(&found), total),
        (vec!["REG-10".to_owned(), "REG-11".to_owned()], Some(2))
    );
    let (_, by_model, _) = net.get_paged("/api/chargers?search=volt%2022").await;
    assert_eq!(ids(&by_model), ["LIVE-A", "LIVE-B"]);

    let (status, summary) = net.get("/api/chargers/summary").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        summary,
        json!({ "total": 14, "online": 2, "charging": 0, "faultedConnectors": 0 })
    );

    for (query, why) in [
        ("limit=0", "limit must be 1..=500"),
        ("limit=501", "limit must be 1..=500"),
        (
            "status=busy",
            "status must be online or offline, not \"busy\"",
        ),
    ] {
        let (status, body) = net.get(&format!("/api/chargers?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], "invalid_query", "{query}");
        assert_eq!(body["error"]["message"], why, "{query}");
    }
    let (status, body) = net.get("/api/chargers?offset=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Nothing else broke: the list still answers.
    let (status, _, total) = net.get_paged("/api/chargers?limit=1").await;
    assert_eq!((status, total), (StatusCode::OK, Some(14)));
    for c in live {
        c.shutdown().await;
    }
    net.central.shutdown().await.expect("shutdown");
}

/// The OpenAPI document lists every API route.
#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = Net::start(CentralArgs::with_database(sqlite_url(&dir)).ephemeral()).await;
    let (status, doc) = net.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/api/chargers", "get"),
        ("/api/chargers", "post"),
        ("/api/chargers/{id}", "get"),
        ("/api/chargers/{id}/start", "post"),
        ("/api/chargers/{id}/stop", "post"),
        ("/api/chargers/{id}/reset", "post"),
        ("/api/chargers/{id}/configuration", "get"),
        ("/api/chargers/{id}/configuration", "post"),
        ("/api/chargers/{id}/variables/get", "post"),
        ("/api/chargers/{id}/variables/set", "post"),
        ("/api/chargers/{id}/call/{action}", "post"),
        ("/api/sessions", "get"),
        ("/api/sessions/{id}", "get"),
        ("/api/tokens", "get"),
        ("/api/tokens", "post"),
        ("/api/tokens/{id_tag}", "delete"),
        ("/api/events", "get"),
        ("/api/log", "get"),
        ("/health", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let dashboard = net.text("/").await;
    assert!(dashboard.contains("ocpp-rs"), "the dashboard is served");
    net.central.shutdown().await.expect("shutdown");
}

/// A crash after a transaction message was answered but before it reached the sessions loses
/// nothing: the journal written before the answer is projected at the next start (through the
/// same session model), once, and a second restart adds nothing twice.
async fn crash_between_answer_and_projection(version: Version) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir);
    let mut net = Net::start(CentralArgs::with_database(url.clone()).ephemeral()).await;
    let id = format!("CR-{}", version.as_str().replace('.', ""));
    let cp = charger(net.url(&id), &id, version);
    net.wait(&id, "booted", |_| true).await;
    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .unwrap();
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: "CARD-1".into(),
    })
    .unwrap();
    let started = net.wait(&id, "transaction_started", |_| true).await;
    let session = started["sessionId"].as_i64().expect("session id");
    let tx = started["transactionId"].as_str().expect("tx id").to_owned();
    net.wait(&id, "transaction_updated", |d| energy(d) > 0.0)
        .await;
    cp.shutdown().await;
    net.wait(&id, "disconnected", |_| true).await;
    // Everything live was projected: no journal row is left over (once the write-behind
    // queue is written).
    net.central.backend().flush().await;
    let db = net.central.backend().db().clone();
    assert!(db.journal_unprocessed().await.expect("journal").is_empty());
    // ... and recovery would not even read it: the low-water mark is past every row.
    let last_row = db
        .session_journal(session)
        .await
        .expect("journal")
        .iter()
        .map(|r| r.id)
        .max()
        .expect("journaled rows");
    assert!(
        db.journal_mark().await.expect("mark") >= last_row,
        "the low-water mark is stored at a flush"
    );
    let before = db.session(session).await.expect("db").expect("session");
    let start_wh = before.meter_start_wh.expect("meter start");
    net.central.shutdown().await.expect("shutdown");

    // The process that answered the final message died before projecting it: the journal
    // row is all that is left of it.
    let stop_wh = start_wh + Decimal::from(5_000);
    let (action, request, response) = if version == Version::V16 {
        (
            "StopTransaction",
            json!({ "transactionId": tx.parse::<i64>().expect("int"), "meterStop": stop_wh.to_string().parse::<i64>().expect("int"),
                    "timestamp": "2030-01-01T10:00:00Z", "reason": "Local" }),
            json!({}),
        )
    } else {
        (
            "TransactionEvent",
            json!({ "eventType": "Ended", "timestamp": "2030-01-01T10:00:00Z", "triggerReason": "StopAuthorized",
                    "seqNo": 9999, "transactionInfo": { "transactionId": tx, "stoppedReason": "Local" },
                    "meterValue": [{ "timestamp": "2030-01-01T10:00:00Z", "sampledValue": [
                        { "value": stop_wh.to_string().parse::<f64>().expect("num"), "context": "Transaction.End" }] }] }),
            json!({}),
        )
    };
    db.journal_insert(
        &id,
        version.as_str(),
        action,
        &request.to_string(),
        &response.to_string(),
    )
    .await
    .expect("journal");
    drop(db);
    // ... and a power failure tore the next group's write: its partial record ends the
    // segment, and the start ignores it (the journal of a SQLite file is in segment files).
    let segments = dir.path().join("central.db.journal");
    let newest = std::fs::read_dir(&segments)
        .expect("segments")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .expect("a segment");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .expect("segment");
    std::io::Write::write_all(&mut file, &[200, 0, 0, 0, 7, 7, 7, 7, 1, 2, 3]).expect("torn");
    drop(file);

    let net = Net::start(CentralArgs::with_database(url.clone()).ephemeral()).await;
    let (_, s) = net.get(&format!("/api/sessions/{session}")).await;
    assert_eq!(s["status"], "completed", "recovered from the journal: {s}");
    let exact = |v: &Value| -> Decimal {
        v["energyWhExact"]
            .as_str()
            .expect("exact")
            .parse()
            .expect("decimal")
    };
    assert_eq!(exact(&s), Decimal::from(5_000), "{s}");
    assert_eq!(s["stoppedAt"], "2030-01-01T10:00:00Z", "{s}");
    let samples = s["samples"].as_array().expect("samples").len();
    assert!(
        samples > 0,
        "the live samples, read back from the journal: {s}"
    );
    if version != Version::V16 {
        // The recovered row's own sample: the row was linked to its session at recovery.
        assert!(
            s["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .any(|x| x["context"] == "Transaction.End"),
            "{s}"
        );
    }
    net.central.shutdown().await.expect("shutdown");

    // A second start replays nothing and duplicates nothing.
    let net = Net::start(CentralArgs::with_database(url).ephemeral()).await;
    let (_, again) = net.get(&format!("/api/sessions/{session}")).await;
    assert_eq!(again["samples"].as_array().expect("samples").len(), samples);
    assert_eq!(exact(&again), Decimal::from(5_000));
    let (_, all) = net.get(&format!("/api/sessions?charger={id}")).await;
    assert_eq!(all.as_array().expect("list").len(), 1);
    net.central.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn crash_between_answer_and_projection_v16() {
    crash_between_answer_and_projection(Version::V16).await;
}

#[tokio::test]
async fn crash_between_answer_and_projection_v201() {
    crash_between_answer_and_projection(Version::V201).await;
}
