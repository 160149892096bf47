//! A central system over `wss://` (security profiles 2 and 3), reloading its certificate on
//! SIGHUP.
//!
//! Run with your own files (profile 3 with a client CA, profile 2 without: charger `SIM-0001`,
//! password `0123456789abcdef`):
//!
//! `cargo run -p ocpp-central --example csms_tls --features tls -- CERT KEY [CLIENT_CA]`
//!
//! or let it mint a throwaway CA, its certificate and one charger certificate into a folder
//! first (feature `test-pki`), and serve profile 3:
//!
//! `cargo run -p ocpp-central --example csms_tls --features test-pki -- --mint DIR`
//!
//! It listens on 127.0.0.1:9443 and prints a `charger-sim` command line that connects.

use std::path::PathBuf;
use std::sync::Arc;

use ocpp_central::tls::ServerTls;
use ocpp_central::{async_trait, Auth, ChargerHandle, Event, Server, ServerConfig};
use ocpp_central::{HandleV16, HandleV201, HandleV21, Handler};

struct Csms;

#[async_trait]
impl Handler for Csms {
    async fn on_event(&self, cp: &ChargerHandle, event: &Event) {
        if let Event::Connected { version, .. } = event {
            println!("{}: connected over TLS, OCPP {version}", cp.identity());
        }
    }
}
impl HandleV16 for Csms {}
impl HandleV201 for Csms {}
impl HandleV21 for Csms {}

const LISTEN: &str = "127.0.0.1:9443";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cert, key, client_ca) = match args.as_slice() {
        [flag, dir] if flag == "--mint" => mint(dir.into())?,
        [cert, key] => (cert.into(), key.into(), None),
        [cert, key, ca] => (cert.into(), key.into(), Some(PathBuf::from(ca))),
        _ => return Err("usage: csms_tls CERT KEY [CLIENT_CA] | csms_tls --mint DIR".into()),
    };
    let mut builder = ServerTls::from_pem_files(&cert, &key)?;
    let auth = match &client_ca {
        Some(ca) => {
            builder = builder.client_ca_file(ca)?;
            Auth::AllowAnyone // profile 3: the certificate authenticates the charger
        }
        None => Auth::passwords([("SIM-0001", "0123456789abcdef")]), // profile 2
    };
    let tls = builder.build()?;
    let handle = tls.handle();
    let profile = if client_ca.is_some() { 3 } else { 2 };
    println!("security profile {profile} on wss://{LISTEN}/ocpp/<identity>");
    #[cfg(unix)]
    {
        let (cert, key) = (cert.clone(), key.clone());
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match handle.reload_from_files(&cert, &key) {
                    Ok(()) => println!("SIGHUP: certificate reloaded"),
                    Err(e) => println!("SIGHUP: kept the old certificate: {e}"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = handle;
    let config = ServerConfig::new(auth).tls(tls);
    Server::new(config, Arc::new(Csms))
        .bind_and_serve(LISTEN)
        .await?;
    Ok(())
}

/// Mints a CA, a server certificate for localhost and a client certificate for `SIM-0001`
/// into `dir`, and prints how the simulator connects with them.
#[cfg(feature = "test-pki")]
fn mint(dir: PathBuf) -> Result<(PathBuf, PathBuf, Option<PathBuf>), Box<dyn std::error::Error>> {
    use ocpp_central::testing::pki::Pki;
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, text: &str| -> std::io::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let pki = Pki::new("csms_tls example CA");
    let server = pki.server(&["localhost", "127.0.0.1"]);
    let charger = pki.client("SIM-0001");
    let ca = write("ca.pem", &pki.ca_pem)?;
    let cert = write("server.pem", &server.cert_pem)?;
    let key = write("server.key", &server.key_pem)?;
    let cp_cert = write("SIM-0001.pem", &charger.cert_pem)?;
    let cp_key = write("SIM-0001.key", &charger.key_pem)?;
    println!(
        "connect a charger: cargo run -p ocpp-examples --bin charger-sim -- \\\n  --url wss://localhost:9443/ocpp --count 1 --ca {} \\\n  --client-cert {} --client-key {}",
        ca.display(),
        cp_cert.display(),
        cp_key.display()
    );
    Ok((cert, key, Some(ca)))
}

#[cfg(not(feature = "test-pki"))]
fn mint(_: PathBuf) -> Result<(PathBuf, PathBuf, Option<PathBuf>), Box<dyn std::error::Error>> {
    Err("--mint needs the feature test-pki".into())
}
