//! The station's certificates (feature `certificates`): a CertificateSigned for another key
//! is Rejected with the security event, and a TLS connection refused for the central
//! system's certificate raises its security event, queued for the next connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ocpp_central::testing::pki::Pki;
use ocpp_central::tls::ServerTls;
use ocpp_central::{Auth, Server, ServerConfig};
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::tls::ClientTls;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent};
use ocpp_charger::{MemoryStore, Saved, SimulatedHardware, Station, StationEvent, Version};
use rust_decimal::Decimal;
use serde_json::json;

mod support;
use support::App;

#[test]
fn a_certificate_signed_for_another_key_is_rejected_with_the_security_event() {
    for version in [Version::V16, Version::V201] {
        let clock = TestClock::new();
        let config = test_config(version, &clock).security_events(true);
        let identity = config.identity().to_owned();
        let central = MockCentral::new(version);
        let mut pair = VirtualPair::with(config, Box::new(MemoryStore::new()), central, clock);
        pair.connect();
        // A pending key: the central system's trigger makes the station send its CSR.
        let (action, payload) = if version == Version::V16 {
            (
                "ExtendedTriggerMessage",
                json!({ "requestedMessage": "SignChargePointCertificate" }),
            )
        } else {
            (
                "TriggerMessage",
                json!({ "requestedMessage": "SignChargingStationCertificate" }),
            )
        };
        let id = pair.central_call(action, payload);
        assert!(
            pair.answer_frame(&id).unwrap().contains("Accepted"),
            "{version}"
        );
        assert!(pair
            .station_sent
            .iter()
            .any(|m| m.contains("SignCertificate") && m.contains("BEGIN CERTIFICATE REQUEST")));
        assert!(pair.station.certificate_store().pending_key().is_some());
        // A certificate for the identity, but for a key the station never made.
        let pki = Pki::new("CSMS CA");
        let other = pki.client(&identity);
        let chain = format!("{}{}", other.cert_pem, pki.ca_pem);
        let id = pair.central_call("CertificateSigned", json!({ "certificateChain": chain }));
        assert!(
            pair.answer_frame(&id)
                .unwrap()
                .contains(r#""status":"Rejected""#),
            "{version}"
        );
        let kind = if version == Version::V16 {
            "InvalidChargePointCertificate"
        } else {
            "InvalidChargingStationCertificate"
        };
        assert_eq!(
            pair.events_where(
                |e| matches!(e, StationEvent::SecurityEvent { kind: k, .. } if k == kind)
            )
            .len(),
            1,
            "{version}"
        );
        assert!(pair.station.client_certificate().is_none());
        // Garbage and a non-CA certificate are not installed.
        for pem in ["garbage", other.cert_pem.as_str()] {
            let kind = if version == Version::V16 {
                "CentralSystemRootCertificate"
            } else {
                "CSMSRootCertificate"
            };
            let id = pair.central_call(
                "InstallCertificate",
                json!({ "certificateType": kind, "certificate": pem }),
            );
            assert!(pair
                .answer_frame(&id)
                .unwrap()
                .contains(r#""status":"Rejected""#));
        }
        assert!(pair.station.certificate_store().certificates().is_empty());
    }
}

#[tokio::test]
async fn a_refused_server_certificate_raises_its_security_event_for_the_next_connection() {
    let pki = Pki::new("CSMS CA");
    let cert = pki.server(&["localhost", "127.0.0.1"]);
    let tls = ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(ServerConfig::new(Auth::AllowAnyone).tls(tls), Arc::new(App))
        .start(listener)
        .unwrap();
    let station = Station::new(
        ocpp_charger::StationConfig::new("CP-TLS", Version::V201).security_events(true),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        Saved::default(),
        Instant::now(),
    );
    let before = station.outbox_len();
    // Trusts another CA: the server's certificate does not verify.
    let wrong = Pki::new("Someone else");
    let config = ClientConfig::new(format!(
        "wss://localhost:{}/ocpp",
        server.local_addr().port()
    ))
    .tls(ClientTls::from_ca_pem(wrong.ca_pem.as_bytes()).unwrap())
    .backoff(Duration::from_secs(30), Duration::from_secs(30));
    let mut handle = ws::spawn(station, Box::new(MemoryStore::new()), config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_failure = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, handle.events.recv()).await {
            Ok(Some(ClientEvent::ConnectFailed(e))) => {
                saw_failure = e.as_security_event().is_some()
            }
            Ok(Some(ClientEvent::Station(StationEvent::SecurityEvent { kind, .. })))
                if kind == "InvalidCsmsCertificate" =>
            {
                break
            }
            Ok(Some(_)) => {}
            _ => panic!("no security event"),
        }
    }
    let station = handle.shutdown().await.unwrap();
    assert!(saw_failure || station.outbox_len() > before);
    assert_eq!(
        station.outbox_len(),
        before + 1,
        "queued for the next connection"
    );
}
