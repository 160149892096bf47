//! Signed meter values end to end over real sockets: the charger simulator with a signing
//! meter (`--sign-readings`, OCMF P-256) against the example central system (its API, its
//! database), for 1.6, 2.0.1 and 2.1: every signed value is stored with its session and
//! verified (2.x with the key the message brings, then the learned one; 1.6 `NoKey` until the
//! operator registers the meter key, then re-checked), shown next to the unsigned energy,
//! exported as S.A.F.E. XML and plain OCMF; a meter that tampers with its data gets
//! `Invalid`; bad API input is answered exactly; PostgreSQL too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ocpp_charger::ws::{self, ClientConfig, ClientHandle};
use ocpp_charger::{
    HardwareEvent, MemoryStore, Saved, SignRequest, SimulatedHardware, Station, StationConfig,
    StationEvent,
};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_examples::sim::ocmf::MeterKey;
use ocpp_examples::sim::{Fleet, Scenario, SimConfig, VersionMix};
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[path = "support/e2e.rs"]
mod e2e;
use e2e::{next_matching, until};
#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

/// The session of `charger`, once it has at least `n` signed values (and, with `ended`,
/// once it is completed).
async fn session_with(api: &Api, charger: &str, n: usize, ended: bool) -> Value {
    until(&format!("{charger}: {n} signed values"), || async {
        let (_, list) = api.get(&format!("/api/sessions?charger={charger}")).await;
        let s = list.as_array()?.first()?.clone();
        if ended && s["status"] != "completed" {
            return None;
        }
        let total: i64 = s["signedValues"]
            .as_object()?
            .values()
            .filter_map(Value::as_i64)
            .sum();
        (total as usize >= n).then_some(s)
    })
    .await
}

async fn signed_values(api: &Api, session: &Value) -> Vec<Value> {
    let (s, v) = api
        .get(&format!("/api/sessions/{}/signed-values", session["id"]))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn signed_simulator_values_are_stored_verified_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    signed_flow(url).await;
}

#[tokio::test]
async fn signed_simulator_values_are_stored_verified_and_exported_on_postgres() {
    let Some(url) = postgres_database("signed_values").await else {
        return;
    };
    signed_flow(url).await;
}

async fn signed_flow(url: String) {
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts");
    let api = Api::admin(&central).await;
    let key = Arc::new(MeterKey::generate().unwrap());
    let mut config = SimConfig::new(format!("ws://{}/ocpp", central.ocpp_addr()));
    config.count = 3;
    config.evses = 1;
    config.prefix = "SIGN".into();
    config.versions = VersionMix::mixed();
    config.scenario = Scenario::Idle;
    config.meter_interval = Duration::from_secs(1);
    config.sign_readings = Some(key.clone());
    let fleet = Fleet::start(config).await.expect("fleet");
    let ids = fleet.identities();
    for id in &ids {
        until(&format!("{id} booted"), || async {
            let (_, c) = api.get(&format!("/api/chargers/{id}")).await;
            (c["bootState"] == "Accepted").then_some(Value::Null)
        })
        .await;
    }
    // Each charges: begin, periodic samples every second, end.
    for id in &ids {
        fleet.plug_in(id, 1).unwrap();
        fleet.present_id_token(id, Some(1), "SIGNTAG").unwrap();
    }
    for id in &ids {
        session_with(&api, id, 3, false).await;
        fleet.unplug(id, 1).unwrap();
    }
    for id in &ids {
        let v = fleet.version_of(id).unwrap();
        let session = session_with(&api, id, 3, true).await;
        let values = signed_values(&api, &session).await;
        assert!(values.len() >= 3, "{v}: {values:?}");
        let contexts: Vec<&str> = values
            .iter()
            .filter_map(|x| x["context"].as_str())
            .collect();
        assert!(contexts.contains(&"Transaction.Begin"), "{v}: {contexts:?}");
        assert!(contexts.contains(&"Transaction.End"), "{v}: {contexts:?}");
        assert!(contexts.contains(&"Sample.Periodic"), "{v}: {contexts:?}");
        for x in &values {
            assert_eq!(x["transactionId"], session["transactionId"], "{v}: {x}");
            assert_eq!(x["sessionId"], session["id"]);
            assert_eq!(x["measurand"], "Energy.Active.Import.Register");
            assert_eq!(x["meterSerial"], format!("{id}-M1"));
            // The signed energy (kWh, 3 decimals) next to the plain register (Wh).
            let signed: Decimal = x["signedWh"].as_str().unwrap().parse().unwrap();
            let plain: Decimal = x["plainValue"].as_str().unwrap().parse().unwrap();
            assert_eq!(x["plainUnit"], "Wh");
            assert!((signed - plain).abs() <= Decimal::ONE, "{v}: {x}");
            if v == Version::V16 {
                // 1.6 carries no key: kept, NoKey, the data verbatim.
                assert_eq!(x["status"], "NoKey", "{v}: {x}");
                assert!(x["signedData"].as_str().unwrap().starts_with("OCMF|"));
                assert_eq!(x["encoding"], Value::Null);
            } else {
                assert_eq!(x["status"], "Verified", "{v}: {x}");
                assert_eq!(x["encoding"], "OCMF");
                assert!(matches!(
                    x["keySource"].as_str(),
                    Some("message" | "learned")
                ));
            }
        }
        // The session's plain samples: one energy register per periodic reading (a 1.6
        // SignedData sample, which has no number, is not among them).
        let (_, full) = api.get(&format!("/api/sessions/{}", session["id"])).await;
        let plain_periodic = full["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["context"] == "Sample.Periodic"
                    && s["measurand"] == "Energy.Active.Import.Register"
            })
            .count();
        let signed_periodic = contexts.iter().filter(|c| **c == "Sample.Periodic").count();
        assert_eq!(plain_periodic, signed_periodic, "{v}: {full}");
        if v != Version::V16 {
            // The key came once, with the begin value; later ones use the learned key.
            assert_eq!(values[0]["keySource"], "message", "{v}");
            assert_eq!(values.last().unwrap()["keySource"], "learned", "{v}");
        }
        assert_eq!(
            session["signedValues"].as_object().unwrap().len(),
            1,
            "{v}: {session}"
        );
    }

    // 1.6: the operator registers the meter key: the NoKey values are checked again.
    let v16 = ids
        .iter()
        .find(|id| fleet.version_of(id) == Some(Version::V16))
        .unwrap()
        .clone();
    let (s, r) = api
        .put(
            &format!("/api/chargers/{v16}/meter-keys"),
            json!({ "meterSerial": format!("{v16}-M1"), "publicKey": key.public_key_hex() }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["rechecked"].as_u64().unwrap() >= 3, "{r}");
    assert_eq!(r["keys"][0]["source"], "operator");
    let session = session_with(&api, &v16, 3, true).await;
    for x in signed_values(&api, &session).await {
        assert_eq!(x["status"], "Verified", "{x}");
        assert_eq!(x["keySource"], "operator");
    }
    let (_, keys) = api.get(&format!("/api/chargers/{v16}/meter-keys")).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");

    // The exports: S.A.F.E. XML and plain OCMF, one entry per value.
    let n = signed_values(&api, &session).await.len();
    let xml = api
        .text(&format!(
            "/api/sessions/{}/signed-values/export",
            session["id"]
        ))
        .await;
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<value ").count(), n, "{xml}");
    assert_eq!(
        xml.matches("<signedData format=\"OCMF\" encoding=\"plain\">OCMF|")
            .count(),
        n
    );
    assert!(xml.contains(&format!(
        "<publicKey encoding=\"plain\">{}</publicKey>",
        key.public_key_hex()
    )));
    assert!(xml.contains(&format!(
        "transactionId=\"{}\"",
        session["transactionId"].as_str().unwrap()
    )));
    // The payload's quotes are escaped in XML.
    assert!(xml.contains("OCMF|{&quot;FV&quot;"), "{xml}");
    let plain = api
        .text(&format!(
            "/api/sessions/{}/signed-values/export?format=ocmf",
            session["id"]
        ))
        .await;
    assert_eq!(plain.lines().count(), n);
    assert!(plain.lines().all(|l| l.starts_with("OCMF|{")));

    // Bad input, exactly.
    let (s, e) = api
        .get(&format!(
            "/api/sessions/{}/signed-values/export?format=pdf",
            session["id"]
        ))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query")),
        "{e}"
    );
    let (s, e) = api.get("/api/sessions/999999/signed-values").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_session")),
        "{e}"
    );
    let (s, e) = api
        .put(
            &format!("/api/chargers/{v16}/meter-keys"),
            json!({ "publicKey": "not a key" }),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_key")),
        "{e}"
    );
    let (s, e) = api
        .put(
            &format!("/api/chargers/{v16}/meter-keys"),
            json!({ "publicKey": key.public_key_hex(), "meterSerial": "x".repeat(65) }),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body")),
        "{e}"
    );
    // Nothing else changed.
    let (_, keys) = api.get(&format!("/api/chargers/{v16}/meter-keys")).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    fleet.shutdown().await;
}

/// A station whose meter signs with `key` but alters the reading after signing.
fn tampering_charger(
    central: &RunningCentral,
    identity: &str,
    v: Version,
    key: Arc<MeterKey>,
) -> ClientHandle {
    signing_charger(central, identity, v, key, true, "EveryMeterValue")
}

/// A station whose meter signs with `key` (and alters the reading after signing when
/// `tamper`), sending the key as `policy` says.
fn signing_charger(
    central: &RunningCentral,
    identity: &str,
    v: Version,
    key: Arc<MeterKey>,
    tamper: bool,
    policy: &str,
) -> ClientHandle {
    let mut store = MemoryStore::new();
    let saved = Saved::load(&mut store).expect("loads");
    let id: Arc<str> = identity.into();
    let signer = Arc::new(move |r: &SignRequest<'_>, m: &ocpp_charger::MeterReading| {
        let mut s = key.sign(&id, r, m)?;
        if tamper {
            s.data = s.data.replace("\"RU\":\"kWh\"", "\"RU\":\"Wh\"");
        }
        Some(s)
    });
    let station = Station::new(
        StationConfig::new(identity, v)
            .evses(1)
            .validate_outgoing(true)
            .setting(ocpp_charger::Setting::SampledSignReadings, "true")
            .setting(ocpp_charger::Setting::PublicKeyWithSignedMeterValue, policy),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400)).with_signer(signer)),
        saved,
        Instant::now(),
    );
    ws::spawn(
        station,
        Box::new(store),
        ClientConfig::new(format!("ws://{}/ocpp", central.ocpp_addr()))
            .backoff(Duration::from_millis(50), Duration::from_millis(300)),
    )
}

#[tokio::test]
async fn a_tampered_value_is_stored_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts");
    let api = Api::admin(&central).await;
    let key = Arc::new(MeterKey::generate().unwrap());
    for (v, id) in [
        (Version::V16, "TAMPER-16"),
        (Version::V201, "TAMPER-201"),
        (Version::V21, "TAMPER-21"),
    ] {
        let mut cp = tampering_charger(&central, id, v, key.clone());
        next_matching(&mut cp, "boot", |e| {
            matches!(e, StationEvent::BootAccepted { .. })
        })
        .await;
        if v == Version::V16 {
            // 1.6 has no key in the message: the operator's.
            let (s, r) = api
                .put(
                    &format!("/api/chargers/{id}/meter-keys"),
                    json!({ "publicKey": key.public_key_hex() }),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{r}");
        }
        cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
            .unwrap();
        cp.hardware(HardwareEvent::IdTokenPresented {
            evse: Some(1),
            id_token: "TAMPER".into(),
        })
        .unwrap();
        next_matching(&mut cp, "start", |e| {
            matches!(e, StationEvent::TransactionStarted { .. })
        })
        .await;
        cp.hardware(HardwareEvent::CableUnplugged { evse: 1 })
            .unwrap();
        let session = session_with(&api, id, 1, true).await;
        let values = signed_values(&api, &session).await;
        assert!(!values.is_empty());
        for x in values {
            assert_eq!(x["status"], "Invalid", "{v}: {x}");
            assert_eq!(x["detail"], "signature does not match", "{v}: {x}");
        }
        assert!(session["signedValues"]["Invalid"].as_i64().unwrap() >= 1);
        cp.shutdown().await;
    }
}

#[tokio::test]
async fn the_bound_per_session_is_an_event_and_a_metric_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let mut args = CentralArgs::with_database(url).ephemeral();
    args.max_signed_per_session = 2;
    let central = start(&args).await.expect("starts");
    let api = Api::admin(&central).await;
    let key = Arc::new(MeterKey::generate().unwrap());
    let mut config = SimConfig::new(format!("ws://{}/ocpp", central.ocpp_addr()));
    config.evses = 1;
    config.prefix = "BOUND".into();
    config.versions = VersionMix::one(Version::V201);
    config.meter_interval = Duration::from_secs(1);
    config.sign_readings = Some(key);
    let fleet = Fleet::start(config).await.expect("fleet");
    let id = fleet.identities()[0].clone();
    until("boot", || async {
        let (_, c) = api.get(&format!("/api/chargers/{id}")).await;
        (c["bootState"] == "Accepted").then_some(Value::Null)
    })
    .await;
    fleet.plug_in(&id, 1).unwrap();
    fleet.present_id_token(&id, Some(1), "BOUNDTAG").unwrap();
    // Begin + two periodic values: the third is over the bound.
    let event = until("limit_reached", || async {
        let (_, log) = api.get(&format!("/api/log?charger={id}")).await;
        log.as_array()?
            .iter()
            .find(|e| e["kind"] == "limit_reached")
            .cloned()
    })
    .await;
    assert_eq!(event["detail"]["limit"], "signed_values", "{event}");
    assert_eq!(event["detail"]["bound"], 2, "{event}");
    let metrics = api.text("/metrics").await;
    assert!(
        metrics.contains("kind=\"limit_reached\",code=\"signed_values\""),
        "{metrics}"
    );
    // The session goes on: it ends normally, its energy counted, two rows kept.
    fleet.unplug(&id, 1).unwrap();
    let session = session_with(&api, &id, 2, true).await;
    assert_eq!(signed_values(&api, &session).await.len(), 2);
    assert!(
        session["energyWhExact"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap()
            > Decimal::ZERO,
        "{session}"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_key_the_charger_reports_in_its_device_model_verifies_its_values() {
    use ocpp_central::device_model::{
        Component, ReportItem, ReportPart, ReportedAttribute, Variable,
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let central = start(&CentralArgs::with_database(url).ephemeral())
        .await
        .expect("starts");
    let api = Api::admin(&central).await;
    let key = Arc::new(MeterKey::generate().unwrap());
    let id = "DM-KEY-21";
    // The charger's report (NotifyReport) named its meter's key.
    let part = ReportPart {
        request_id: 1,
        seq_no: 0,
        tbc: false,
        generated_at: "2025-01-01T00:00:00Z".into(),
        items: vec![ReportItem {
            component: Component::named("FiscalMetering"),
            variable: Variable::named("PublicKey"),
            attributes: vec![ReportedAttribute {
                kind: "Actual".into(),
                value: Some(key.public_key_hex().to_owned()),
                mutability: "ReadOnly".into(),
                persistent: true,
                constant: true,
            }],
            characteristics: None,
        }],
    };
    central
        .backend()
        .device_model()
        .on_report(id, &part)
        .await
        .unwrap();
    // 2.1 with PublicKeyWithSignedMeterValue Never: no key in any message.
    let mut cp = signing_charger(&central, id, Version::V21, key, false, "Never");
    next_matching(&mut cp, "boot", |e| {
        matches!(e, StationEvent::BootAccepted { .. })
    })
    .await;
    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .unwrap();
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: "DMKEY".into(),
    })
    .unwrap();
    next_matching(&mut cp, "start", |e| {
        matches!(e, StationEvent::TransactionStarted { .. })
    })
    .await;
    cp.hardware(HardwareEvent::CableUnplugged { evse: 1 })
        .unwrap();
    let session = session_with(&api, id, 2, true).await;
    for x in signed_values(&api, &session).await {
        assert_eq!(x["status"], "Verified", "{x}");
        assert_eq!(x["keySource"], "device_model", "{x}");
    }
    cp.shutdown().await;
}
