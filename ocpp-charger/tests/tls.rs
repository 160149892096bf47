//! The station over `wss://` against the real ocpp-central server (security profiles 2 and
//! 3) on 127.0.0.1, with certificates minted by ocpp-central's test CA: a 1.6 and a 2.0.1
//! session end to end, and the failures a station must tell apart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ocpp_central::testing::pki::Pki;
use ocpp_central::tls::ServerTls;
use ocpp_central::{Auth, BootState as CentralBoot, RunningServer, Server, ServerConfig};
use ocpp_charger::tls::ClientTls;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, ConnectError};
use ocpp_charger::{
    HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station, StationConfig, Version,
};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

mod support;
use support::{until, App};

fn station(identity: &str, version: Version) -> Station {
    Station::new(
        StationConfig::new(identity, version)
            .seed(5)
            .validate_outgoing(true),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        Saved::default(),
        Instant::now(),
    )
}

/// A profile-3 server (client certificates from `pki`, CN = identity) for `version`.
async fn profile_3_server(pki: &Pki, version: Version) -> RunningServer {
    let cert = pki.server(&["localhost", "127.0.0.1"]);
    let tls = ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
        .unwrap()
        .client_ca_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::new(
        ServerConfig::new(Auth::AllowAnyone)
            .versions([version])
            .tls(tls),
        Arc::new(App),
    )
    .start(listener)
    .unwrap()
}

#[tokio::test]
async fn a_1_6_and_a_2_0_1_session_over_wss_with_client_certificates() {
    let pki = Pki::new("CSMS CA");
    for (version, identity) in [(Version::V16, "CP-16"), (Version::V201, "CP-201")] {
        let server = profile_3_server(&pki, version).await;
        let mine = pki.client(identity);
        let tls = ClientTls::from_ca_pem(pki.ca_pem.as_bytes())
            .unwrap()
            .with_client_certificate(mine.cert_pem.as_bytes(), mine.key_pem.as_bytes())
            .unwrap();
        // SNI and verification by host name: the server certificate is for localhost.
        let url = format!("wss://localhost:{}/ocpp", server.local_addr().port());
        let mut client = ws::spawn(
            station(identity, version),
            Box::new(MemoryStore::new()),
            ClientConfig::new(url).tls(tls),
        );
        let chargers = server.chargers().clone();
        until("boot accepted", || {
            chargers
                .get(identity)
                .is_some_and(|c| c.state().boot == CentralBoot::Accepted)
        })
        .await;
        client
            .hardware(HardwareEvent::CablePlugged { evse: 1 })
            .unwrap();
        client
            .hardware(HardwareEvent::IdTokenPresented {
                evse: Some(1),
                id_token: "TAG".into(),
            })
            .unwrap();
        until("a transaction at the central system", || {
            chargers
                .get(identity)
                .is_some_and(|c| !c.state().transactions.is_empty())
        })
        .await;
        let mut connected = false;
        while let Ok(e) = client.events.try_recv() {
            assert!(
                !matches!(e, ClientEvent::ConnectFailed(_)),
                "{version}: {e:?}"
            );
            connected |= e == ClientEvent::Connected;
        }
        assert!(connected, "{version}");
        client.shutdown().await;
        server.shutdown().await.unwrap();
    }
}

/// The next connect failure the client reports.
async fn next_failure(client: &mut ws::ClientHandle) -> ConnectError {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), client.events.recv())
            .await
            .expect("a failure in time")
            .expect("the client runs");
        match event {
            ClientEvent::ConnectFailed(e) => return e,
            ClientEvent::Connected => panic!("connected"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_untrusted_central_system_is_an_invalid_certificate_and_the_station_retries() {
    let pki = Pki::new("CSMS CA");
    let impostor = Pki::new("Impostor CA");
    let server = profile_3_server(&impostor, Version::V201).await;
    let mine = pki.client("CP1");
    let tls = ClientTls::from_ca_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .with_client_certificate(mine.cert_pem.as_bytes(), mine.key_pem.as_bytes())
        .unwrap();
    let url = format!("wss://localhost:{}/ocpp", server.local_addr().port());
    let mut client = ws::spawn(
        station("CP1", Version::V201),
        Box::new(MemoryStore::new()),
        ClientConfig::new(url)
            .tls(tls)
            .backoff(Duration::from_millis(10), Duration::from_millis(20)),
    );
    // Reported twice: the reconnect loop goes on after a TLS failure.
    for _ in 0..2 {
        let error = next_failure(&mut client).await;
        assert!(
            matches!(error, ConnectError::InvalidServerCertificate(_)),
            "{error:?}"
        );
        assert!(error.is_tls());
        assert_eq!(
            error.security_event(Version::V201),
            Some("InvalidCsmsCertificate")
        );
        assert_eq!(
            error.security_event(Version::V16),
            Some("InvalidCentralSystemCertificate")
        );
    }
    client.shutdown().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_client_certificate_and_wss_without_tls_are_told_apart() {
    let pki = Pki::new("CSMS CA");
    let server = profile_3_server(&pki, Version::V16).await;
    let url = format!("wss://localhost:{}/ocpp", server.local_addr().port());
    // Another charger's certificate: the TLS handshake succeeds, the upgrade is refused (403).
    let other = pki.client("CP2");
    let tls = ClientTls::from_ca_pem(pki.ca_pem.as_bytes())
        .unwrap()
        .with_client_certificate(other.cert_pem.as_bytes(), other.key_pem.as_bytes())
        .unwrap();
    let mut client = ws::spawn(
        station("CP1", Version::V16),
        Box::new(MemoryStore::new()),
        ClientConfig::new(url.clone())
            .tls(tls)
            .backoff(Duration::from_millis(10), Duration::from_millis(20)),
    );
    let error = next_failure(&mut client).await;
    assert!(
        matches!(&error, ConnectError::Handshake(why) if why.contains("403")),
        "{error:?}"
    );
    assert_eq!(error.security_event(Version::V16), None);
    client.shutdown().await;
    // No certificate at all: the server ends the TLS handshake (an alert, not a certificate
    // problem of the central system).
    let tls = ClientTls::from_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    let mut client = ws::spawn(
        station("CP1", Version::V16),
        Box::new(MemoryStore::new()),
        ClientConfig::new(url.clone()).tls(tls),
    );
    let error = next_failure(&mut client).await;
    assert!(matches!(error, ConnectError::Tls(_)), "{error:?}");
    client.shutdown().await;
    // wss:// without a TLS configuration.
    let mut client = ws::spawn(
        station("CP1", Version::V16),
        Box::new(MemoryStore::new()),
        ClientConfig::new(url),
    );
    let error = next_failure(&mut client).await;
    assert!(matches!(error, ConnectError::Url(_)), "{error:?}");
    assert!(!error.is_tls());
    client.shutdown().await;
    server.shutdown().await.unwrap();
}
