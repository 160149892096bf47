//! What several of these tests share: a central-system application with every default
//! answer, and a bounded wait for a condition.

#![allow(dead_code)] // each test file uses its own part

use std::time::{Duration, Instant};

use ocpp_central::{HandleV16, HandleV201, HandleV21, Handler};

/// A central-system application that answers everything with the library's defaults.
pub struct App;
impl Handler for App {}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

/// Waits (polling every 5 ms) until `f` holds; fails the test after 10 s naming `what`.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An ocpp-central server speaking `version` only, admitting `identity` with password `pw`
/// and answering through `app`, and a station with two EVSEs whose hardware delivers at most
/// `max_power_w`, connected to it through the WebSocket client: returned once its boot is
/// accepted, with the central system's handle of it.
pub async fn station_on_central<H: ocpp_central::CentralSystem>(
    identity: &str,
    version: ocpp_charger::Version,
    app: std::sync::Arc<H>,
    max_power_w: rust_decimal::Decimal,
) -> (
    ocpp_central::RunningServer,
    ocpp_charger::ws::ClientHandle,
    ocpp_central::ChargerHandle,
) {
    station_on_central_with(identity, version, app, max_power_w, |c| c).await
}

/// [`station_on_central`] with the station's configuration changed by `configure`.
pub async fn station_on_central_with<H: ocpp_central::CentralSystem>(
    identity: &str,
    version: ocpp_charger::Version,
    app: std::sync::Arc<H>,
    max_power_w: rust_decimal::Decimal,
    configure: impl FnOnce(ocpp_charger::StationConfig) -> ocpp_charger::StationConfig,
) -> (
    ocpp_central::RunningServer,
    ocpp_charger::ws::ClientHandle,
    ocpp_central::ChargerHandle,
) {
    use ocpp_central::{Auth, BootState, Server, ServerConfig};
    use ocpp_charger::ws::{self, ClientConfig};
    use ocpp_charger::{MemoryStore, Saved, SimulatedHardware, Station, StationConfig};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(
        ServerConfig::new(Auth::passwords([(identity, "pw")])).versions([version]),
        app,
    )
    .start(listener)
    .unwrap();
    let url = format!("ws://{}/ocpp", server.local_addr());
    let station = Station::new(
        configure(
            StationConfig::new(identity, version)
                .evses(2)
                .seed(3)
                .validate_outgoing(true),
        ),
        Box::new(SimulatedHardware::new(2, max_power_w)),
        Saved::default(),
        Instant::now(),
    );
    let client = ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(url).password("pw"),
    );
    let chargers = server.chargers().clone();
    until("boot accepted", || {
        chargers
            .get(identity)
            .is_some_and(|c| c.state().boot == BootState::Accepted)
    })
    .await;
    let handle = chargers.get(identity).unwrap();
    (server, client, handle)
}
