//! What the end-to-end tests of the example network share: polling the API until a condition
//! holds, an `ocpp-charger` station connected to a running central system, and waiting for a
//! station event. Every wait is bounded by [`WAIT`] and fails naming what it waited for.
// Each test file includes this module and uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ocpp_charger::ws::{self, ClientConfig, ClientEvent, ClientHandle};
use ocpp_charger::{MemoryStore, Saved, SimulatedHardware, Station, StationConfig, StationEvent};
use ocpp_examples::backend::run::RunningCentral;
use ocpp_types::Version;
use rust_decimal::Decimal;
use serde_json::Value;

/// How long any wait of a test lasts at most.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `f` (an API read) until it holds; fails after [`WAIT`] naming `what`.
pub async fn until<F, Fut>(what: &str, mut f: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A station of `evses` EVSEs (simulated hardware of `power_w` W, outgoing messages validated
/// against the schemas) connected to `central`, its state in `store`; `f` adjusts its
/// configuration.
pub fn station(
    central: &RunningCentral,
    identity: &str,
    v: Version,
    (evses, power_w): (u32, i64),
    store: MemoryStore,
    f: impl FnOnce(StationConfig) -> StationConfig,
) -> ClientHandle {
    let mut store = store;
    let saved = Saved::load(&mut store).expect("loads");
    let station = Station::new(
        f(StationConfig::new(identity, v)
            .evses(evses)
            .validate_outgoing(true)),
        Box::new(SimulatedHardware::new(evses, Decimal::from(power_w))),
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

/// A one-EVSE 7.4 kW station with a fresh store and the default configuration.
pub fn charger(central: &RunningCentral, identity: &str, v: Version) -> ClientHandle {
    station(central, identity, v, (1, 7400), MemoryStore::new(), |c| c)
}

/// The next station event `f` picks (and maps); an invalid outgoing message fails the test;
/// fails after [`WAIT`] naming `what`.
pub async fn next_event<T>(
    handle: &mut ClientHandle,
    what: &str,
    f: impl Fn(&StationEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, handle.events.recv()).await {
            Ok(Some(ClientEvent::Station(StationEvent::InvalidOutgoing { error, .. }))) => {
                panic!("invalid outgoing: {error}")
            }
            Ok(Some(ClientEvent::Station(e))) => {
                if let Some(t) = f(&e) {
                    return t;
                }
            }
            Ok(Some(_)) => {}
            _ => panic!("no {what}"),
        }
    }
}

/// Waits for the next station event `f` accepts (see [`next_event`]).
pub async fn next_matching(
    handle: &mut ClientHandle,
    what: &str,
    f: impl Fn(&StationEvent) -> bool,
) {
    next_event(handle, what, |e| f(e).then_some(())).await
}

/// Waits until the station's boot is accepted.
pub async fn booted(cp: &mut ClientHandle) {
    next_matching(cp, "boot", |e| {
        matches!(e, StationEvent::BootAccepted { .. })
    })
    .await
}
