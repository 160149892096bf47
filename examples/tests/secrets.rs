//! Charger passwords end to end: stored hashed, issued at registration, rotated over OCPP with
//! real ocpp-charger stations on 127.0.0.1 (the charger reconnects with the new password, the
//! old one is then refused with 401, across a restart too), and the security events the
//! stations send, listed by the API.

use std::time::{Duration, Instant};

use ocpp_central::testing::MockCharger;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, ClientHandle};
use ocpp_charger::{MemoryStore, Saved, SimulatedHardware, Station, StationConfig};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_examples::backend::{wait_for, LiveEvent};
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Error as WsError;

#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

const WAIT: Duration = Duration::from_secs(30);

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("central.db").display())
}

struct Net {
    central: RunningCentral,
    api: Api,
    feed: broadcast::Receiver<LiveEvent>,
}

impl Net {
    async fn start(args: &CentralArgs) -> Net {
        let central = start(args).await.expect("central system starts");
        let feed = central.backend().subscribe();
        let api = Api::admin(&central).await;
        Net { central, api, feed }
    }

    fn base(&self) -> String {
        format!("ws://{}/ocpp", self.central.ocpp_addr())
    }

    async fn wait(&mut self, charger: &str, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for(&mut self.feed, charger, kind, WAIT, pred)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The handshake status of `identity` with `password` (101 when admitted).
    async fn handshake(&self, identity: &str, version: Version, password: Option<&str>) -> u16 {
        let url = format!("{}/{identity}", self.base());
        let auth = password.map(|p| (identity, p));
        match MockCharger::connect_with(&url, &[version.subprotocol()], auth).await {
            Ok(cp) => {
                cp.close().await;
                101
            }
            Err(WsError::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("{identity}: {e}"),
        }
    }
}

fn charger(base: String, identity: &str, version: Version, password: &str) -> ClientHandle {
    let config = StationConfig::new(identity, version)
        .seed(3)
        .security_events(true);
    let hardware = SimulatedHardware::new(1, Decimal::from(11_000));
    let station = Station::new(config, Box::new(hardware), Saved::default(), Instant::now());
    ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(base)
            .password(password)
            .backoff(Duration::from_millis(50), Duration::from_millis(300)),
    )
}

/// The next `Connected` of the charger's driver.
async fn reconnected(cp: &mut ClientHandle) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, cp.events.recv()).await {
            Ok(Some(ClientEvent::Connected)) => return,
            Ok(Some(_)) => {}
            other => panic!("no reconnection: {other:?}"),
        }
    }
}

/// `database_url`: SQLite in `sqlite_dir` (whose file is also searched for the clear
/// password), or PostgreSQL.
async fn rotation(version: Version, database_url: String, sqlite_dir: Option<&std::path::Path>) {
    let id = format!("ROT-{}", version.as_str().replace('.', ""));
    let initial = "initial-password-01";
    let mut args = CentralArgs::with_database(database_url).ephemeral();
    args.passwords = Some(format!("{id}={initial}\nOTHER=other-password-1"));
    let mut net = Net::start(&args).await;

    // Hashed at rest: the clear password is nowhere in the database file.
    if let Some(dir) = sqlite_dir {
        net.central.backend().flush().await;
        let _ = net.central.backend().db().checkpoint().await;
        let raw = std::fs::read(dir.join("central.db")).expect("the database file");
        assert!(
            !raw.windows(initial.len()).any(|w| w == initial.as_bytes()),
            "the clear password is in the database"
        );
    }
    // Passwords are required: none, a wrong one, another charger's: 401.
    assert_eq!(net.handshake(&id, version, None).await, 401);
    assert_eq!(
        net.handshake(&id, version, Some("wrong-password-000"))
            .await,
        401
    );
    assert_eq!(
        net.handshake(&id, version, Some("other-password-1")).await,
        401
    );
    assert_eq!(net.handshake("NOBODY", version, Some(initial)).await, 401);

    let mut cp = charger(net.base(), &id, version, initial);
    net.wait(&id, "booted", |_| true).await;
    reconnected(&mut cp).await;

    // Rotation: the API hands out the new password once; the charger accepted it, and
    // reconnects with it at once.
    let (status, answer) = net
        .api
        .post(&format!("/api/chargers/{id}/password"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let new = answer["password"].as_str().expect("a password").to_owned();
    assert_eq!(new.len(), 20);
    assert_ne!(new, initial);
    reconnected(&mut cp).await;
    net.wait(&id, "connected", |_| true).await;

    // Now the old password is refused, the new one admitted.
    assert_eq!(net.handshake(&id, version, Some(initial)).await, 401);
    assert_eq!(net.handshake(&id, version, Some(&new)).await, 101);

    // The station reported the change as a security event (after its start-up), and the
    // central system stored it: read back through the API (the stored row, not the live
    // feed, which a busy test machine may make this receiver lag behind).
    let deadline = tokio::time::Instant::now() + WAIT;
    let events = loop {
        let (status, events) = net
            .api
            .get(&format!("/api/security-events?charger={id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{events}");
        let stored = events.as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["kind"] == "ReconfigurationOfSecurityParameters")
        });
        if stored {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ReconfigurationOfSecurityParameters of {id} stored within {WAIT:?}: {events}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: Vec<&str> = events
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"StartupOfTheDevice"), "{events}");
    assert!(
        kinds.contains(&"ReconfigurationOfSecurityParameters"),
        "{events}"
    );
    assert!(events[0]["receivedAt"].is_string(), "{events}");
    let (_, none) = net
        .api
        .get(&format!(
            "/api/security-events?charger={id}&since=2999-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(none, json!([]));
    let (_, one) = net.api.get("/api/security-events?limit=1").await;
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    for bad in ["limit=0", "limit=1001", "since=yesterday"] {
        let (status, body) = net.api.get(&format!("/api/security-events?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // Across a restart: the file's entry does not undo the rotation.
    cp.shutdown().await;
    net.central.shutdown().await.expect("shutdown");
    let net = Net::start(&args).await;
    assert_eq!(net.handshake(&id, version, Some(initial)).await, 401);
    assert_eq!(net.handshake(&id, version, Some(&new)).await, 101);
    assert_eq!(
        net.handshake("OTHER", version, Some("other-password-1"))
            .await,
        101
    );
    // An offline charger cannot be rotated; an unknown one is not found.
    let (status, body) = net
        .api
        .post(&format!("/api/chargers/{id}/password"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = net
        .api
        .post("/api/chargers/NOBODY/password", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    net.central.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_over_ocpp_2_0_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    rotation(Version::V201, sqlite_url(&dir), Some(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_over_ocpp_1_6_with_a_hex_authorization_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    rotation(Version::V16, sqlite_url(&dir), Some(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_over_ocpp_2_0_1_on_postgres() {
    let Some(url) = postgres_database("secrets_rotation").await else {
        return;
    };
    rotation(Version::V201, url, None).await;
}

/// Registration issues a password once; without a passwords file, chargers that have none
/// still connect (profile 0) while a registered one needs its own.
#[tokio::test]
async fn registration_issues_a_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    let net = Net::start(&args).await;
    let (status, body) = net
        .api
        .post("/api/chargers", json!({ "identity": "REG-1" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["identity"], "REG-1");
    let password = body["password"].as_str().expect("a password").to_owned();
    // Registering again keeps it (and shows nothing).
    let (status, again) = net
        .api
        .post("/api/chargers", json!({ "identity": "REG-1" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["password"], Value::Null);
    assert_eq!(net.handshake("REG-1", Version::V201, None).await, 401);
    assert_eq!(
        net.handshake("REG-1", Version::V201, Some("nope-nope-nope-1"))
            .await,
        401
    );
    assert_eq!(
        net.handshake("REG-1", Version::V201, Some(&password)).await,
        101
    );
    assert_eq!(
        net.handshake("UNREGISTERED", Version::V201, None).await,
        101
    );
    // Identities follow the specifications' rules here too.
    for bad in ["has space", "colon:no", &"A".repeat(49)] {
        let (status, body) = net
            .api
            .post("/api/chargers", json!({ "identity": bad }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert_eq!(net.handshake("has%20space", Version::V201, None).await, 400);
    // The generic routes do not set passwords (the charger would be locked out).
    for (path, body) in [
        (
            "/api/chargers/REG-1/configuration",
            json!({ "key": "authorizationkey", "value": "00" }),
        ),
        (
            "/api/chargers/REG-1/variables/set",
            json!({ "variables": [{ "component": "SecurityCtrlr", "variable": "BasicAuthPassword", "value": "x" }] }),
        ),
        (
            "/api/chargers/REG-1/call/SetVariables",
            json!({ "setVariableData": [{ "component": { "name": "SecurityCtrlr" }, "variable": { "name": "BasicAuthPassword" }, "attributeValue": "x" }] }),
        ),
    ] {
        let (status, body) = net.api.post(path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(
            body["error"]["code"], "use_password_route",
            "{path}: {body}"
        );
    }
    // The OpenAPI document has the routes.
    let (_, doc) = net.api.get("/api/openapi.json").await;
    assert!(doc["paths"]["/api/chargers/{id}/password"]["post"].is_object());
    assert!(doc["paths"]["/api/security-events"]["get"].is_object());
    assert!(doc["components"]["schemas"]["RegisteredCharger"].is_object());
    // The dashboard's panel.
    assert!(net.api.text("/").await.contains("/security-events.js"));
    assert!(net
        .api
        .text("/security-events.js")
        .await
        .contains("/api/security-events?limit=20"));
    net.central.shutdown().await.expect("shutdown");
}

/// The rotation rule: a refused password is dropped at once; an unanswered one stays valid
/// (the charger may have applied it and lost only the answer) and becomes the password when
/// the charger connects with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_does_not_lock_the_charger_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let initial = "initial-password-01";
    let mut args = CentralArgs::with_database(sqlite_url(&dir)).ephemeral();
    args.passwords = Some(format!("LOST={initial}"));
    args.call_timeout = 1;
    let net = Net::start(&args).await;
    let url = format!("{}/LOST", net.base());
    let connect = || async {
        let mut cp = MockCharger::connect_with(&url, &["ocpp2.0.1"], Some(("LOST", initial)))
            .await
            .expect("connects");
        let boot = cp
            .call(
                "BootNotification",
                r#"{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}"#,
            )
            .await
            .expect("an answer");
        assert_eq!(boot[2]["status"], "Accepted", "{boot}");
        cp
    };

    // A charger that answers Rejected: 409, the new password is never valid.
    let mut cp = connect().await;
    let api = Api::admin(&net.central).await;
    let rotate =
        tokio::spawn(async move { api.post("/api/chargers/LOST/password", json!({})).await });
    let call = cp.next_call().await.expect("the SetVariables call");
    assert_eq!(call[2], "SetVariables");
    let refused = call[3]["setVariableData"][0]["attributeValue"]
        .as_str()
        .expect("the password")
        .to_owned();
    let id = call[1].as_str().expect("an id").to_owned();
    cp.reply(
        &id,
        r#"{"setVariableResult":[{"attributeStatus":"Rejected","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}}]}"#,
    )
    .await
    .unwrap();
    let (status, body) = rotate.await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "password_rejected");
    assert_eq!(
        net.handshake("LOST", Version::V201, Some(&refused)).await,
        401
    );

    // A charger that never answers: 504, and the new password is valid along the old one.
    let mut cp = connect().await;
    let api = Api::admin(&net.central).await;
    let rotate =
        tokio::spawn(async move { api.post("/api/chargers/LOST/password", json!({})).await });
    let call = cp.next_call().await.expect("the SetVariables call");
    let applied = call[3]["setVariableData"][0]["attributeValue"]
        .as_str()
        .expect("the password")
        .to_owned();
    let (status, body) = rotate.await.unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body.get("password").is_none(), "{body}");
    assert_eq!(
        net.handshake("LOST", Version::V201, Some(initial)).await,
        101
    );
    // The charger comes back with the new one: from then on the old one is refused.
    assert_eq!(
        net.handshake("LOST", Version::V201, Some(&applied)).await,
        101
    );
    assert_eq!(
        net.handshake("LOST", Version::V201, Some(initial)).await,
        401
    );
    assert_eq!(
        net.handshake("LOST", Version::V201, Some(&applied)).await,
        101
    );
    drop(cp);
    net.central.shutdown().await.expect("shutdown");
}
