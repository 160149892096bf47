//! The WebSocket client against the loopback mock central system: subprotocol, Basic auth,
//! a transaction, a dropped connection, reconnection and the outbox resumed in order.

use std::time::{Duration, Instant};

use ocpp_charger::testing::spawn_mock_central;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent};
use ocpp_charger::{
    HardwareEvent, MemoryStore, SimulatedHardware, Station, StationConfig, StationEvent, Version,
};
use rust_decimal::Decimal;

async fn until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn station_over_websocket_reconnects_and_resumes() {
    for v in [Version::V16, Version::V201, Version::V21] {
        let central = spawn_mock_central(v).await;
        let config = StationConfig::new("CP-WS", v)
            .seed(3)
            .validate_outgoing(true);
        let station = Station::new(
            config,
            Box::new(SimulatedHardware::new(1, Decimal::from(11000))),
            Box::new(MemoryStore::new()),
            Instant::now(),
        )
        .unwrap();
        let mut client = ws::spawn(
            station,
            ClientConfig::new(central.url.clone())
                .password("s3cret")
                .backoff(Duration::from_millis(10), Duration::from_millis(50)),
        );
        until("boot", || central.count("StatusNotification") >= 1).await;
        assert_eq!(
            central.authorization_headers()[0].as_deref(),
            Some("Basic Q1AtV1M6czNjcmV0"),
            "security profile 1: Basic CP-WS:s3cret"
        );
        assert!(central.received().iter().all(|(id, _, _)| id == "CP-WS"));
        client.hardware(HardwareEvent::CablePlugged { evse: 1 });
        client.hardware(HardwareEvent::IdTokenPresented {
            evse: Some(1),
            id_token: "TAG".into(),
        });
        let start = if v == Version::V16 {
            "StartTransaction"
        } else {
            "TransactionEvent"
        };
        until("start", || central.count(start) == 1).await;

        // The connection drops; the driver reconnects; the stop made meanwhile is delivered.
        central.drop_connections();
        client.hardware(HardwareEvent::CableUnplugged { evse: 1 });
        until("reconnect", || central.connections() == 2).await;
        let stop = if v == Version::V16 {
            "StopTransaction"
        } else {
            "TransactionEvent"
        };
        // Both transaction messages confirmed (a message in flight when the connection
        // dropped may legitimately arrive twice; the central system deduplicates).
        let mut invalid = Vec::new();
        let mut connected = 0;
        let mut delivered = Vec::new();
        while delivered.len() < 2 {
            let e = tokio::time::timeout(Duration::from_secs(10), client.events.recv())
                .await
                .expect("events keep coming")
                .expect("the driver runs");
            match e {
                ClientEvent::Connected => connected += 1,
                ClientEvent::Station(StationEvent::InvalidOutgoing { error, .. }) => {
                    invalid.push(error)
                }
                ClientEvent::Station(StationEvent::Delivered { action, .. }) => {
                    delivered.push(action)
                }
                _ => {}
            }
        }
        assert_eq!(delivered, [start, stop], "{v}");
        assert!(central.count(stop) >= 1);
        while let Ok(e) = client.events.try_recv() {
            if let ClientEvent::Connected = e {
                connected += 1;
            }
        }
        assert_eq!(connected, 2, "{v}");
        assert!(invalid.is_empty(), "{v}: {invalid:?}");
        let station = client
            .shutdown()
            .await
            .expect("the task returns the station");
        assert_eq!(station.outbox_len(), 0, "{v}");
        central.shutdown();
    }
}

#[tokio::test]
async fn refused_subprotocol_is_retried_with_backoff() {
    // The server speaks 2.0.1 only; a 1.6 station is refused and keeps retrying.
    let central = spawn_mock_central(Version::V201).await;
    let station = Station::new(
        StationConfig::new("CP-X", Version::V16),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        Box::new(MemoryStore::new()),
        Instant::now(),
    )
    .unwrap();
    let mut client = ws::spawn(
        station,
        ClientConfig::new(central.url.clone())
            .backoff(Duration::from_millis(5), Duration::from_millis(20)),
    );
    let mut failures = 0;
    while failures < 3 {
        match tokio::time::timeout(Duration::from_secs(10), client.events.recv()).await {
            Ok(Some(ClientEvent::Disconnected { reason, .. })) => {
                assert!(reason.contains("subprotocol"), "{reason}");
                failures += 1;
            }
            Ok(Some(ClientEvent::Connected)) => panic!("connected without the subprotocol"),
            Ok(Some(_)) => {}
            _ => panic!("no retry"),
        }
    }
    assert_eq!(central.count("BootNotification"), 0);
    client.shutdown().await;
}
