//! Firmware rollouts and log uploads end to end over real sockets: the example central system
//! (its API, its database, its download and upload routes) and the charger simulator on
//! 127.0.0.1, for 1.6 (plain and signed), 2.0.1 and 2.1.
//!
//! Image uploaded → rollout → each charger downloads over HTTP, checks the hash / signature,
//! reports every status, "installs" by restarting with the new version, boots with it →
//! the rollout shows `Installed` and the version. A tampered image → `InstallationFailed`
//! (1.6 plain, from the hash) / `InvalidSignature`, the version unchanged. A log request →
//! the simulator uploads its log lines → the file is listed and equal to what it sent. An
//! oversized upload is 413 and stores nothing; bad requests are answered per spec and lose
//! nothing.

use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_examples::sim::{Fleet, Scenario, SimConfig, VersionMix};
use ocpp_types::Version;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{until, WAIT};
#[path = "support/api.rs"]
mod api;
use api::Api;
#[path = "support/postgres.rs"]
mod postgres;

/// Which database the central system runs on.
#[derive(Clone, Copy)]
enum Database {
    Sqlite,
    /// A fresh database on the server `OCPP_TEST_POSTGRES_URL` names (without it the test
    /// says loudly that it was skipped).
    Postgres,
}

/// The central system on a fresh database, and the database's URL; `None` when PostgreSQL
/// is asked for and not configured.
async fn central_on(
    which: Database,
    dir: &tempfile::TempDir,
    name: &str,
) -> Option<(RunningCentral, String)> {
    let url = match which {
        Database::Sqlite => format!("sqlite://{}", dir.path().join("c.db").display()),
        Database::Postgres => postgres::postgres_database(name).await?,
    };
    let central = start(&CentralArgs::with_database(url.clone()).ephemeral())
        .await
        .expect("starts");
    Some((central, url))
}

async fn central(dir: &tempfile::TempDir) -> (RunningCentral, String) {
    central_on(Database::Sqlite, dir, "fw")
        .await
        .expect("sqlite")
}

/// Runs `sql` with `binds` on the central system's database, behind its back.
async fn behind_the_back(url: &str, sql: &str, text: &str, id: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url)
        .await
        .expect("the database opens");
    sqlx::query(sql)
        .bind(text.to_owned())
        .bind(id)
        .execute(&pool)
        .await
        .expect(sql);
    pool.close().await;
}

/// Four simulated chargers: FW-0001 (1.6), FW-0002 (1.6), FW-0003 (2.0.1), FW-0004 (2.1).
async fn fleet(central: &RunningCentral) -> Fleet {
    let mut config = SimConfig::new(format!("ws://{}/ocpp", central.ocpp_addr()));
    config.count = 4;
    config.prefix = "FW".into();
    config.versions = VersionMix::cycle(vec![
        Version::V16,
        Version::V16,
        Version::V201,
        Version::V21,
    ])
    .unwrap();
    config.scenario = Scenario::Idle;
    let fleet = Fleet::start(config).await.expect("fleet starts");
    fleet
        .wait_stats(|s| s.booted == 4, WAIT)
        .await
        .expect("all booted");
    fleet
}

async fn firmware_version(api: &Api, id: &str) -> Option<String> {
    let (s, c) = api.get(&format!("/api/chargers/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    c["firmwareVersion"]
        .as_str()
        .or_else(|| c["info"]["firmwareVersion"].as_str())
        .map(str::to_owned)
}

async fn upload_image(api: &Api, name: &str, version: &str, data: &[u8]) -> Value {
    let (s, image) = api
        .post_bytes(
            &format!("/api/firmware/images?name={name}&version={version}"),
            data.to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{image}");
    image
}

/// Starts a rollout and waits until every target is final; returns the rollout.
async fn roll_out(api: &Api, body: Value) -> Value {
    let (s, r) = api.post("/api/firmware/rollouts", body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let id = r["id"].as_i64().unwrap();
    until("the rollout to finish", || async {
        let (_, r) = api.get(&format!("/api/firmware/rollouts/{id}")).await;
        let n = r["targets"].as_array().map_or(0, Vec::len) as i64;
        (r["finished"].as_i64() == Some(n) && n > 0).then_some(r)
    })
    .await
}

fn target<'a>(rollout: &'a Value, charger: &str) -> &'a Value {
    rollout["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["charger"] == charger)
        .unwrap_or_else(|| panic!("no target {charger} in {rollout}"))
}

#[tokio::test]
async fn a_rollout_installs_the_new_version_on_every_charger() {
    rollout_flow(Database::Sqlite).await;
}

#[tokio::test]
async fn a_rollout_installs_the_new_version_on_every_charger_on_postgres() {
    rollout_flow(Database::Postgres).await;
}

async fn rollout_flow(which: Database) {
    let dir = tempfile::tempdir().unwrap();
    let Some((central, url)) = central_on(which, &dir, "fw_rollout").await else {
        return;
    };
    let api = Api::admin(&central).await;
    let fleet = fleet(&central).await;
    let ids = fleet.identities();
    let before = firmware_version(&api, &ids[0]).await;
    assert!(before.is_some());

    let image = upload_image(
        &api,
        "sim-2.0.0.bin",
        "2.0.0",
        b"SIMFW 2.0.0\nthe new firmware\n",
    )
    .await;
    assert_eq!(image["signed"], true);
    assert_eq!(image["size"], 29);
    // The download route serves it to anyone with the path; a wrong token is 404.
    let path = image["path"].as_str().unwrap();
    let (s, body) = Api::new(central.http_addr()).bytes(path).await;
    assert_eq!(
        (s, body.as_slice()),
        (StatusCode::OK, &b"SIMFW 2.0.0\nthe new firmware\n"[..])
    );
    let (s, _) = Api::new(central.http_addr())
        .bytes("/firmware/00000000000000000000000000000000/sim-2.0.0.bin")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // FW-0001 gets a plain 1.6 UpdateFirmware; the others a signed one (1.6
    // SignedUpdateFirmware, 2.x UpdateFirmware with the signature).
    let plain = roll_out(
        &api,
        json!({ "imageId": image["id"], "chargers": [ids[0]], "signed": false }),
    )
    .await;
    assert_eq!(plain["signed"], false);
    let signed = roll_out(
        &api,
        json!({ "imageId": image["id"], "chargers": [ids[1], ids[2], ids[3]] }),
    )
    .await;
    assert_eq!(signed["signed"], true);
    assert_eq!(signed["installed"], 3, "{signed}");
    for (rollout, id) in [
        (&plain, &ids[0]),
        (&signed, &ids[1]),
        (&signed, &ids[2]),
        (&signed, &ids[3]),
    ] {
        let t = target(rollout, id);
        assert_eq!(t["status"], "Installed", "{id}: {rollout}");
        assert_eq!(t["installedVersion"], "2.0.0", "{id}: {rollout}");
        // The charger booted again and told its new version.
        let v = until("the new version", || async {
            (firmware_version(&api, id).await.as_deref() == Some("2.0.0")).then_some(Value::Null)
        })
        .await;
        assert_eq!(v, Value::Null);
    }
    fleet
        .wait_stats(|s| s.booted == 4, WAIT)
        .await
        .expect("all booted again");

    // A tampered image (changed on the server after it was hashed and signed): 1.6 plain
    // checks the hash (InstallationFailed), the signed ones the signature (InvalidSignature).
    let bad = upload_image(&api, "sim-3.0.0.bin", "3.0.0", b"SIMFW 3.0.0\ngood\n").await;
    tamper(&url, bad["id"].as_i64().unwrap(), b"SIMFW 3.0.0\nevil\n").await;
    let plain = roll_out(
        &api,
        json!({ "imageId": bad["id"], "chargers": [ids[0]], "signed": false }),
    )
    .await;
    assert_eq!(
        target(&plain, &ids[0])["status"],
        "InstallationFailed",
        "{plain}"
    );
    let signed = roll_out(
        &api,
        json!({ "imageId": bad["id"], "chargers": [ids[1], ids[2], ids[3]] }),
    )
    .await;
    for id in &ids[1..] {
        assert_eq!(
            target(&signed, id)["status"],
            "InvalidSignature",
            "{signed}"
        );
    }
    assert_eq!(signed["installed"], 0);
    for id in &ids {
        assert_eq!(
            firmware_version(&api, id).await.as_deref(),
            Some("2.0.0"),
            "{id}"
        );
    }
    fleet.shutdown().await;
    central.shutdown().await.unwrap();
}

/// Replaces an image's stored content behind the backend's back.
async fn tamper(url: &str, image: i64, data: &[u8]) {
    use base64::Engine;
    behind_the_back(
        url,
        "UPDATE firmware_images SET content = $1 WHERE id = $2",
        &base64::engine::general_purpose::STANDARD.encode(data),
        image,
    )
    .await;
}

#[tokio::test]
async fn log_requests_upload_the_chargers_log_and_refuse_oversized_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let (central, _) = central(&dir).await;
    let api = Api::admin(&central).await;
    let fleet = fleet(&central).await;
    let ids = fleet.identities();
    let anonymous = Api::new(central.http_addr());

    for (id, body) in [
        (&ids[0], json!({ "diagnostics": true })),
        (&ids[1], json!({ "logType": "SecurityLog" })),
        (&ids[2], json!({})),
        (&ids[3], json!({ "logType": "DiagnosticsLog" })),
    ] {
        let (s, r) = api.post(&format!("/api/chargers/{id}/logs"), body).await;
        assert_eq!(s, StatusCode::OK, "{id}: {r}");
        assert_eq!(
            r["filename"].as_str().map(|f| f.ends_with(".log")),
            Some(true),
            "{r}"
        );
        let rid = r["id"].as_i64().unwrap();
        let done = until("the upload", || async {
            let (_, list) = api.get(&format!("/api/logs?charger={id}")).await;
            list.as_array()?
                .iter()
                .find(|l| {
                    l["id"] == rid
                        && l["status"] == "Uploaded"
                        && l["files"].as_array().is_some_and(|f| !f.is_empty())
                })
                .cloned()
        })
        .await;
        let file = &done["files"][0];
        let (s, content) = api.bytes(&format!("/api/logs/files/{}", file["id"])).await;
        assert_eq!(s, StatusCode::OK);
        let sent = fleet.last_upload(id).expect("the simulator uploaded");
        assert_eq!(
            content, sent,
            "{id}: the stored file is what the charger sent"
        );
        assert_eq!(file["size"].as_u64(), Some(sent.len() as u64));
        assert!(
            String::from_utf8_lossy(&content).contains("BootAccepted"),
            "{id}"
        );
        // A viewer cannot download it without an account.
        let (s, _) = anonymous
            .bytes(&format!("/api/logs/files/{}", file["id"]))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    // Oversized: 413, nothing stored. Unknown token: 404.
    let (_, list) = api.get("/api/logs").await;
    let before: usize = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["files"].as_array().map_or(0, Vec::len))
        .sum();
    let (s, r) = api
        .post(&format!("/api/chargers/{}/logs", ids[2]), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let token_path = {
        // The upload URL is only known to the charger: read it from the database.
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let t: (String,) = sqlx::query_as("SELECT token FROM log_requests WHERE id = $1")
            .bind(r["id"].as_i64().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        format!("/uploads/{}", t.0)
    };
    let max = ocpp_examples::backend::uploads::MAX_LOG_BYTES;
    let (s, _) = anonymous
        .put_bytes(&format!("{token_path}/big.log"), vec![b'x'; max + 1])
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = anonymous
        .put_bytes(
            "/uploads/ffffffffffffffffffffffffffffffff/x.log",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // An oversized image is refused too.
    let (s, _) = api
        .post_bytes(
            "/api/firmware/images?name=big.bin&version=1",
            vec![0; ocpp_examples::backend::firmware::MAX_IMAGE_BYTES + 1],
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, images) = api.get("/api/firmware/images").await;
    assert_eq!(images.as_array().map(Vec::len), Some(0));
    // Wait for the charger's own upload of that request, then count: only it was added.
    until("the last upload", || async {
        let (_, list) = api.get(&format!("/api/logs?charger={}", ids[2])).await;
        (list[0]["status"] == "Uploaded").then_some(Value::Null)
    })
    .await;
    let (_, list) = api.get("/api/logs").await;
    let after: usize = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["files"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(after, before + 1);
    fleet.shutdown().await;
    central.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_are_answered_per_spec_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (central, _) = central(&dir).await;
    let api = Api::admin(&central).await;
    let fleet = fleet(&central).await;
    let ids = fleet.identities();
    let long = format!("http://x/{}", "a".repeat(60_000));
    // 1.6 UpdateFirmware: a location that is not a URI is refused by the central system's
    // typed request before anything is sent (400); 60,000 characters is a URI, and the
    // charger (whose answer has no status) answers CALLERROR PropertyConstraintViolation.
    let call =
        |location: &str| json!({ "location": location, "retrieveDate": "2030-01-01T00:00:00Z" });
    let path = format!("/api/chargers/{}/call/UpdateFirmware", ids[0]);
    let (s, r) = api.post(&path, call("not a url")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");
    let (s, r) = api.post(&path, call(&long)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{r}");
    assert!(r.to_string().contains("PropertyConstraintViolation"), "{r}");
    // 2.0.1: Rejected for not a URL; the schema's maxLength refuses 60,000 characters.
    let q = |location: &str| json!({ "requestId": 1, "firmware": { "location": location, "retrieveDateTime": "2030-01-01T00:00:00Z" } });
    let (s, r) = api
        .post(
            &format!("/api/chargers/{}/call/UpdateFirmware", ids[2]),
            q("not a url"),
        )
        .await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("Rejected")),
        "{r}"
    );
    let (s, _) = api
        .post(
            &format!("/api/chargers/{}/call/UpdateFirmware", ids[2]),
            q(&long),
        )
        .await;
    assert_ne!(s, StatusCode::OK);
    // retries i32::MAX and a retrieve date in year 9999: accepted, scheduled, bounded.
    let (s, r) = api
        .post(
            &format!("/api/chargers/{}/call/UpdateFirmware", ids[3]),
            json!({ "requestId": 2, "retries": i32::MAX, "retryInterval": i32::MAX,
                    "firmware": { "location": "http://127.0.0.1:1/x", "retrieveDateTime": "9999-12-31T23:59:59Z" } }),
        )
        .await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("Accepted")),
        "{r}"
    );
    // The API refuses bad rollouts before anything is sent.
    let image = upload_image(&api, "ok.bin", "9.9.9", b"SIMFW 9.9.9\n").await;
    for body in [
        json!({ "imageId": image["id"], "chargers": [] }),
        json!({ "imageId": image["id"], "chargers": [ids[0]], "retries": 11 }),
        json!({ "imageId": 9999, "chargers": [ids[0]] }),
        json!({ "imageId": image["id"], "chargers": ["NOBODY"] }),
    ] {
        let (s, r) = api.post("/api/firmware/rollouts", body).await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND,
            "{s}: {r}"
        );
    }
    for q in [
        "name=../x&version=1",
        "name=a.bin&version=",
        "name=.x&version=1",
    ] {
        let (s, _) = api
            .post_bytes(&format!("/api/firmware/images?{q}"), b"x".to_vec())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
    }
    // Nothing lost: every charger still takes an update (the 2.1 one replaces its
    // year-9999 update: AcceptedCanceled is not a failure).
    let r = roll_out(&api, json!({ "imageId": image["id"], "chargers": ids })).await;
    assert_eq!(r["installed"], 4, "{r}");
    fleet.shutdown().await;
    central.shutdown().await.unwrap();
}
