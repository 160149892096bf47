//! The example central system and simulator over TLS: the command line's security profiles,
//! the simulator's chargers over `wss://` (profile 2), and the certificate reload that SIGHUP
//! triggers, with certificates minted by ocpp-central's test CA into a temporary directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocpp_central::testing::pki::Pki;
use ocpp_central::tls::rustls;
use ocpp_charger::tls::ClientTls;
use ocpp_examples::backend::run::{start, CentralArgs, StartError};
use ocpp_examples::sim::{Fleet, SimConfig, VersionMix};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn args(&self) -> CentralArgs {
        let db = format!("sqlite://{}", self.dir.path().join("c.db").display());
        CentralArgs::with_database(db).ephemeral()
    }
}

#[tokio::test]
async fn security_profiles_need_their_options() {
    let files = Files::new();
    let pki = Pki::new("CA");
    let server = pki.server(&["localhost"]);
    let cert = files.write("s.pem", &server.cert_pem);
    let key = files.write("s.key", &server.key_pem);
    let ca = files.write("ca.pem", &pki.ca_pem);
    let with = |profile: Option<u8>, tls: bool, client_ca: bool, password: bool| {
        let mut args = files.args();
        args.security_profile = profile;
        if tls {
            args.tls_cert = Some(cert.clone());
            args.tls_key = Some(key.clone());
        }
        if client_ca {
            args.client_ca = Some(ca.clone());
        }
        if password {
            args.passwords = Some("CP1=0123456789abcdef".into());
        }
        args
    };
    for (args, why) in [
        (
            with(Some(3), true, false, false),
            "profile 3 without --client-ca",
        ),
        (
            with(Some(2), true, false, false),
            "profile 2 without --passwords-file",
        ),
        (
            with(Some(2), true, true, true),
            "profile 2 with --client-ca",
        ),
        (
            with(Some(2), false, false, true),
            "profile 2 without --tls-cert",
        ),
    ] {
        match start(&args).await {
            Err(StartError::Invalid(_)) => {}
            Err(e) => panic!("{why}: {e}"),
            Ok(_) => panic!("{why}: started"),
        }
    }
    let mut broken = with(None, true, false, false);
    broken.tls_key = Some(ca.clone()); // a certificate where the key belongs
    assert!(matches!(start(&broken).await, Err(StartError::Invalid(_))));
    // Without flags: plain ws://, as always.
    let plain = start(&files.args()).await.expect("starts");
    assert_eq!(plain.ocpp_scheme(), "ws");
    assert!(!plain.reload_tls().expect("nothing to reload"));
    plain.shutdown().await.unwrap();
}

/// The certificate a fresh client is shown by `addr`.
async fn served_certificate(addr: std::net::SocketAddr, ca_pem: &str) -> Vec<u8> {
    let roots = ocpp_central::tls::root_store_from_pem(ca_pem.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn simulated_chargers_boot_over_wss_and_a_reload_serves_the_new_certificate() {
    let files = Files::new();
    let pki = Pki::new("CA");
    let first = pki.server(&["localhost", "127.0.0.1"]);
    let cert = files.write("s.pem", &first.cert_pem);
    let key = files.write("s.key", &first.key_pem);
    let mut args = files.args();
    args.tls_cert = Some(cert.clone());
    args.tls_key = Some(key.clone());
    args.passwords = Some("SIM-0001=0123456789abcdef\nSIM-0002=0123456789abcdef".into());
    args.security_profile = Some(2);
    let central = start(&args).await.expect("starts");
    assert_eq!(central.ocpp_scheme(), "wss");

    let mut sim = SimConfig::new(format!(
        "wss://localhost:{}/ocpp",
        central.ocpp_addr().port()
    ));
    sim.count = 2;
    sim.versions = VersionMix::mixed();
    sim.password = Some("0123456789abcdef".into());
    sim.tls = Some(ClientTls::from_ca_pem(pki.ca_pem.as_bytes()).unwrap());
    let fleet = Fleet::start(sim).await.expect("fleet");
    let started = Instant::now();
    while fleet.stats().booted < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            fleet.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        served_certificate(central.ocpp_addr(), &pki.ca_pem).await,
        first.der
    );

    // New files, then what SIGHUP does: new handshakes get the new certificate...
    let second = pki.server(&["localhost", "127.0.0.1"]);
    std::fs::write(&cert, &second.cert_pem).unwrap();
    std::fs::write(&key, &second.key_pem).unwrap();
    assert!(central.reload_tls().expect("reloaded"));
    assert_eq!(
        served_certificate(central.ocpp_addr(), &pki.ca_pem).await,
        second.der
    );
    // ...and a broken file leaves the certificate in use.
    std::fs::write(&key, "garbage").unwrap();
    assert!(central.reload_tls().is_err());
    assert_eq!(
        served_certificate(central.ocpp_addr(), &pki.ca_pem).await,
        second.der
    );
    // The chargers connected before the reload are still there.
    let stats = fleet.stats();
    assert_eq!((stats.connected, stats.booted), (2, 2), "{stats:?}");
    fleet.shutdown().await;
    central.shutdown().await.unwrap();
}
