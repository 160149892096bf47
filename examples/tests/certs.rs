//! Certificates end to end over real sockets: the example central system's CA signs a
//! charger's CSR (1.6, 2.0.1 and 2.1), the charger installs the chain in its file store and, on
//! its next connection with security profile 3, is admitted with it alone; a CSR for another
//! identity is refused with a security event; Install / GetInstalled / Delete through the
//! API, with bad input answered.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ocpp_central::testing::pki::Pki;
use ocpp_central::testing::MockCharger;
use ocpp_charger::certificates::FileCertificateStore;
use ocpp_charger::tls::ClientTls;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, ClientHandle};
use ocpp_charger::{MemoryStore, Saved, SimulatedHardware, Station, StationConfig, StationEvent};
use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;

#[path = "support/api.rs"]
mod api;
use api::Api;

const WAIT: Duration = Duration::from_secs(30);

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// POSTs `{}` to `path` and expects the charger's answer `Accepted`; returns the body.
async fn accepted(api: &Api, path: &str) -> serde_json::Value {
    let (status, body) = api.post(path, json!({})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("Accepted")),
        "{path}: {body}"
    );
    body
}

async fn next(
    handle: &mut ClientHandle,
    what: &str,
    f: impl Fn(&ClientEvent) -> bool,
) -> ClientEvent {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, handle.events.recv()).await {
            Ok(Some(e)) if f(&e) => return e,
            Ok(Some(_)) => {}
            _ => panic!("no {what}"),
        }
    }
}

fn charger(
    identity: &str,
    version: Version,
    store: &std::path::Path,
    url: &str,
    tls: ClientTls,
) -> ClientHandle {
    let station = Station::new(
        StationConfig::new(identity, version)
            .validate_outgoing(true)
            .security_events(true)
            .organization("ocpp-rs tests")
            .certificate_store(FileCertificateStore::open(store).unwrap()),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        Saved::default(),
        Instant::now(),
    );
    let config = ClientConfig::new(url)
        .tls(tls)
        .backoff(Duration::from_millis(50), Duration::from_millis(300));
    ws::spawn(station, Box::new(MemoryStore::new()), config)
}

#[tokio::test]
async fn a_renewed_certificate_is_signed_installed_and_admitted_alone_on_the_next_connection() {
    for (version, identity) in [
        (Version::V16, "CERT-16"),
        (Version::V201, "CERT-201"),
        (Version::V21, "CERT-21"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = Pki::new("Bootstrap CA");
        let server = bootstrap.server(&["localhost", "127.0.0.1"]);
        let first = bootstrap.client(identity);
        let mut args =
            CentralArgs::with_database(format!("sqlite://{}", dir.path().join("c.db").display()))
                .ephemeral();
        args.tls_cert = Some(write(dir.path(), "s.pem", &server.cert_pem));
        args.tls_key = Some(write(dir.path(), "s.key", &server.key_pem));
        args.client_ca = Some(write(dir.path(), "boot-ca.pem", &bootstrap.ca_pem));
        args.security_profile = Some(3);
        args.pki_dir = Some(dir.path().join("pki"));
        let central = start(&args).await.expect("starts");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("pki/ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the CA key is private");
        }
        let api = Api::admin(&central).await;
        let addr = central.ocpp_addr();
        let url = format!("wss://localhost:{}/ocpp", addr.port());
        let tls = ClientTls::from_ca_pem(bootstrap.ca_pem.as_bytes()).unwrap();
        let mut cp = charger(
            identity,
            version,
            &dir.path().join("station"),
            &url,
            tls.clone()
                .with_client_certificate(first.cert_pem.as_bytes(), first.key_pem.as_bytes())
                .unwrap(),
        );
        next(&mut cp, "boot", |e| {
            matches!(e, ClientEvent::Station(StationEvent::BootAccepted { .. }))
        })
        .await;

        // Renew: the trigger, the CSR, the signature, the chain, installed.
        accepted(
            &api,
            &format!("/api/chargers/{identity}/certificates/renew"),
        )
        .await;
        next(&mut cp, "SignCertificate answer", |e| {
            e == &ClientEvent::Station(StationEvent::SignCertificateAnswered {
                status: "Accepted".into(),
            })
        })
        .await;
        next(&mut cp, "installed certificate", |e| {
            matches!(
                e,
                ClientEvent::Station(StationEvent::ClientCertificateInstalled { .. })
            )
        })
        .await;
        let chain = std::fs::read_to_string(dir.path().join("station/client.pem")).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        let (status, list) = api
            .get(&format!("/api/chargers/{identity}/certificates"))
            .await;
        assert_eq!(status, StatusCode::OK);
        let issued = &list[0];
        assert_eq!(issued["kind"], "ChargingStationCertificate", "{list}");
        let days = issued["daysLeft"].as_i64().unwrap();
        assert!((363..=365).contains(&days), "{days}");
        assert!(issued["subject"].as_str().unwrap().contains(identity));
        // The network-wide list the dashboard shows: the charger, its expiry, days left.
        let (status, all) = api.get("/api/certificates").await;
        assert_eq!(status, StatusCode::OK);
        let row = all
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["charger"] == identity)
            .unwrap_or_else(|| panic!("{identity} in {all}"));
        assert_eq!(row["kind"], "ChargingStationCertificate", "{row}");
        assert_eq!(row["daysLeft"].as_i64(), Some(days), "{row}");
        assert!(row["notAfter"].is_string(), "{row}");

        // The next connection, to a central system that trusts only its own CA: admitted
        // with the new certificate (the bootstrap one would be refused during TLS).
        central.shutdown().await.unwrap();
        let other = Pki::new("Unrelated CA");
        args.client_ca = Some(write(dir.path(), "other-ca.pem", &other.ca_pem));
        args.ocpp_listen = addr.to_string();
        let central = start(&args).await.expect("restarts");
        next(&mut cp, "reconnection with the new certificate", |e| {
            e == &ClientEvent::Connected
        })
        .await;
        let api = Api::admin(&central).await;
        // The client reports its connection when its handshake ends; the central system lists
        // it once it has registered the connection (a moment later).
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, c) = api.get(&format!("/api/chargers/{identity}")).await;
            if c["connected"] == true {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{identity} not listed as connected: {c}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, body) = api
            .post(
                &format!("/api/chargers/{identity}/certificates/refresh"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "NotFound", "no CA installed yet: {body}");
        cp.shutdown().await;
        central.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_csr_for_another_identity_is_rejected_and_recorded_as_a_security_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut args =
        CentralArgs::with_database(format!("sqlite://{}", dir.path().join("c.db").display()))
            .ephemeral();
    args.pki_dir = Some(dir.path().join("pki"));
    let central = start(&args).await.expect("starts");
    let api = Api::admin(&central).await;
    let url = format!("ws://{}/ocpp/CSR-1", central.ocpp_addr());
    let mut cp = MockCharger::connect_with(&url, &["ocpp2.0.1"], None)
        .await
        .expect("connects");
    cp.call(
        "BootNotification",
        r#"{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}"#,
    )
    .await
    .expect("boot answer");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SOMEONE-ELSE");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let answer = cp
        .call(
            "SignCertificate",
            &json!({ "csr": csr, "certificateType": "ChargingStationCertificate" }).to_string(),
        )
        .await
        .expect("answer");
    assert_eq!(answer[2], json!({ "status": "Rejected" }));
    // Garbage is refused the same way.
    let answer = cp
        .call(
            "SignCertificate",
            r#"{"csr":"-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n"}"#,
        )
        .await
        .expect("answer");
    assert_eq!(answer[2], json!({ "status": "Rejected" }));
    let (_, events) = api.get("/api/security-events?charger=CSR-1").await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CsrRejected", "CsrRejected"], "{events}");
    assert!(events[1]["techInfo"]
        .as_str()
        .unwrap()
        .contains("SOMEONE-ELSE"));
    let (_, list) = api.get("/api/chargers/CSR-1/certificates").await;
    assert_eq!(list, json!([]), "nothing issued");
    cp.close().await;
    central.shutdown().await.unwrap();
}

#[tokio::test]
async fn install_list_and_delete_through_the_api_with_bad_input_answered() {
    for (version, identity) in [
        (Version::V16, "INST-16"),
        (Version::V201, "INST-201"),
        (Version::V21, "INST-21"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let args =
            CentralArgs::with_database(format!("sqlite://{}", dir.path().join("c.db").display()))
                .ephemeral();
        let central = start(&args).await.expect("starts");
        let api = Api::admin(&central).await;
        let station = Station::new(
            StationConfig::new(identity, version)
                .validate_outgoing(true)
                .certificate_store(FileCertificateStore::open(dir.path().join("st")).unwrap()),
            Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
            Saved::default(),
            Instant::now(),
        );
        let mut cp = ws::spawn(
            station,
            Box::new(MemoryStore::new()),
            ClientConfig::new(format!("ws://{}/ocpp", central.ocpp_addr())),
        );
        next(&mut cp, "boot", |e| {
            matches!(e, ClientEvent::Station(StationEvent::BootAccepted { .. }))
        })
        .await;
        let install = |kind: &str, pem: &str| {
            let body = json!({ "kind": kind, "certificate": pem });
            let path = format!("/api/chargers/{identity}/certificates/install");
            let api = &api;
            async move { api.post(&path, body).await }
        };
        let root_a = Pki::new("Root A");
        let root_b = Pki::new("Root B");
        for (pem, want) in [(&root_a.ca_pem, "Accepted"), (&root_b.ca_pem, "Accepted")] {
            let (status, body) = install("CSMSRootCertificate", pem).await;
            assert_eq!(
                (status, body["status"].as_str()),
                (StatusCode::OK, Some(want)),
                "{body}"
            );
        }
        // Garbage and an expired certificate: Rejected; 60,000 characters: refused before
        // anything is sent (the schema's 5500).
        let (status, body) = install(
            "CSMSRootCertificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("Rejected")),
            "{body}"
        );
        let expired = root_a.expired_client(identity);
        let (status, body) = install("CSMSRootCertificate", &expired.cert_pem).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("Rejected")),
            "{body}"
        );
        let (status, _) = install("CSMSRootCertificate", &"A".repeat(60_000)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = install("NoSuchKind", &root_a.ca_pem).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // GetInstalledCertificateIds: both roots, with the hash data the station computes.
        let body = accepted(
            &api,
            &format!("/api/chargers/{identity}/certificates/refresh"),
        )
        .await;
        let want_a =
            ocpp_charger::certificates::certificate_hash_data(&root_a.ca_pem, &[]).unwrap();
        let listed = body["certificates"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{body}");
        let a = listed
            .iter()
            .find(|c| c["hash"]["issuerNameHash"] == want_a.issuer_name_hash.as_str())
            .expect("root A listed");
        assert_eq!(a["hash"]["issuerKeyHash"], want_a.issuer_key_hash.as_str());
        assert_eq!(a["hash"]["serialNumber"], want_a.serial_number.as_str());
        assert_eq!(a["kind"], "CSMSRootCertificate");
        assert!(a["subject"].as_str().unwrap().contains("Root A"), "{a}");

        // Delete A: Accepted; again: NotFound; the last CSMS root (B): Failed.
        let delete = |hash: serde_json::Value| {
            let path = format!("/api/chargers/{identity}/certificates/delete");
            let api = &api;
            async move { api.post(&path, hash).await }
        };
        let (_, body) = delete(a["hash"].clone()).await;
        assert_eq!(body["status"], "Accepted", "{body}");
        let (_, body) = delete(a["hash"].clone()).await;
        assert_eq!(body["status"], "NotFound", "{body}");
        let want_b =
            ocpp_charger::certificates::certificate_hash_data(&root_b.ca_pem, &[]).unwrap();
        let b = json!({
            "hashAlgorithm": "SHA256",
            "issuerNameHash": want_b.issuer_name_hash,
            "issuerKeyHash": want_b.issuer_key_hash,
            "serialNumber": want_b.serial_number,
        });
        let (_, body) = delete(b).await;
        assert_eq!(body["status"], "Failed", "{body}");
        // Nothing lost: B is still installed, on the charger and in the table.
        let (_, body) = api
            .post(
                &format!("/api/chargers/{identity}/certificates/refresh"),
                json!({}),
            )
            .await;
        assert_eq!(body["certificates"].as_array().unwrap().len(), 1, "{body}");
        let again = FileCertificateStore::open(dir.path().join("st")).unwrap();
        use ocpp_charger::certificates::CertificateStore;
        assert_eq!(again.certificates().len(), 1);
        cp.shutdown().await;
        central.shutdown().await.unwrap();
    }
}
