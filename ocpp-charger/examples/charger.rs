//! A charging station that connects to a central system, boots, reports the status of its
//! connector and sends heartbeats at the interval the central system gives. With
//! `--transaction` it also plugs a cable in, presents an id token, charges for 20 seconds
//! (meter values every 5 s) and stops. Ctrl-C ends it.
//!
//! Run: `cargo run -p ocpp-charger --example charger -- <central system URL> [--identity CP001]
//! [--version 1.6|2.0.1|2.1] [--transaction]`; it connects to `<URL>/<identity>`, with the
//! Basic-auth password of the environment variable `OCPP_CHARGER_PASSWORD` if set (a password
//! on the command line would be visible to every user of the machine). With the central
//! system example of ocpp-central:
//!
//! ```text
//! cargo run -p ocpp-central --example csms
//! OCPP_CHARGER_PASSWORD=s3cret cargo run -p ocpp-charger --example charger -- ws://127.0.0.1:9000/ocpp --transaction
//! ```

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use ocpp_charger::ocpp_types::Decimal;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, ClientHandle, CommandError};
use ocpp_charger::{FileStore, HardwareEvent, Saved, Setting, SimulatedHardware, Station};
use ocpp_charger::{StationConfig, StationEvent, Version};
use tokio::time::Instant;

const USAGE: &str = "usage: [OCPP_CHARGER_PASSWORD=...] charger <url> [--identity CP001] \
                     [--version 1.6|2.0.1|2.1] [--transaction]";
const ID_TOKEN: &str = "04A2B3C4";
const CHARGE_FOR: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut url, mut identity) = (None, "CP001".to_owned());
    let password = std::env::var("OCPP_CHARGER_PASSWORD").ok();
    let (mut version, mut plug_in) = (Version::V201, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--identity" => identity = args.next().ok_or(USAGE)?,
            "--version" => version = args.next().ok_or(USAGE)?.parse()?,
            "--transaction" => plug_in = true,
            _ if url.is_none() && !arg.starts_with("--") => url = Some(arg),
            _ => return Err(USAGE.into()),
        }
    }
    let url = url.ok_or(USAGE)?;

    // Message ids, 2.x transaction ids and reconnect jitter come from seeds: make them differ
    // per run and per charger.
    let seed = RandomState::new().hash_one(std::time::SystemTime::now());
    let config = StationConfig::new(identity.as_str(), version)
        .vendor_model("ACME", "Volt 22")
        .setting(Setting::SampleInterval, "5")
        .seed(seed);
    // Your `Hardware` here: this one meters 11 kW while its contactor is closed.
    let hardware = SimulatedHardware::new(1, Decimal::from(11_000));
    // Transaction messages are written here before they are sent, and survive restarts.
    let dir = format!("ocpp-charger-{identity}-{}", version.subprotocol());
    let mut store = FileStore::open(std::env::temp_dir().join(dir))?;
    let saved = Saved::load(&mut store)?;
    let station = Station::new(config, Box::new(hardware), saved, std::time::Instant::now());

    let mut client_config = ClientConfig::new(url);
    client_config.seed = seed;
    if let Some(password) = password {
        client_config = client_config.password(password);
    }
    // One task owns the socket and the station, and reconnects with backoff by itself.
    let mut client = ws::spawn(station, Box::new(store), client_config);
    let mut stop_at = None;
    loop {
        tokio::select! {
            event = client.events.recv() => match event {
                Some(event) => on_event(&client, event, &mut plug_in, &mut stop_at)?,
                None => break,
            },
            () = sleep_until(stop_at) => {
                stop_at = None;
                // The same token again stops the transaction it started (reason Local).
                present_token(&client)?;
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Finishes the pending writes to the store and closes the connection.
    client.shutdown().await;
    Ok(())
}

/// Prints an event. With `--transaction`: once booted, plugs in and presents the token; stops
/// the transaction `CHARGE_FOR` after it started.
fn on_event(
    client: &ClientHandle,
    event: ClientEvent,
    plug_in: &mut bool,
    stop_at: &mut Option<Instant>,
) -> Result<(), CommandError> {
    match &event {
        ClientEvent::Station(StationEvent::CentralTime(t)) => {
            println!("answer from the central system, its time {t}")
        }
        event => println!("{event:?}"),
    }
    match event {
        ClientEvent::Station(StationEvent::BootAccepted { .. }) if *plug_in => {
            *plug_in = false;
            client.hardware(HardwareEvent::CablePlugged { evse: 1 })?;
            present_token(client)?;
        }
        ClientEvent::Station(StationEvent::TransactionStarted { .. }) => {
            *stop_at = Some(Instant::now() + CHARGE_FOR);
        }
        ClientEvent::Station(StationEvent::TransactionEnded { evse, .. }) => {
            *stop_at = None; // also when it ended otherwise (remote stop, reset)
            client.hardware(HardwareEvent::CableUnplugged { evse })?;
        }
        _ => {}
    }
    Ok(())
}

fn present_token(client: &ClientHandle) -> Result<(), CommandError> {
    let id_token = ID_TOKEN.to_owned();
    client.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token,
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
