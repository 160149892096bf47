//! The station against the real ocpp-central WebSocket server over 127.0.0.1, for each
//! version: Basic auth, boot, status, a transaction started locally with meter values, and a
//! remote stop sent by the central system.

use std::sync::Arc;
use std::time::Instant;

use ocpp_central::{AnyRequest, Auth, BootState as CentralBoot, Server, ServerConfig};
use ocpp_charger::testing::plug_in_and_present;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent};
use ocpp_charger::{
    MemoryStore, Saved, SimulatedHardware, Station, StationConfig, StationEvent, Version,
};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

mod support;
use support::{until, App};

#[tokio::test]
async fn station_against_ocpp_central() {
    for v in [Version::V16, Version::V201, Version::V21] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::new(
            ServerConfig::new(Auth::passwords([("CP-E2E", "pw")])).versions([v]),
            Arc::new(App),
        )
        .start(listener)
        .unwrap();
        let url = format!("ws://{}/ocpp", server.local_addr());
        let station = Station::new(
            StationConfig::new("CP-E2E", v)
                .seed(11)
                .validate_outgoing(true),
            Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
            Saved::default(),
            Instant::now(),
        );
        let mut client = ws::spawn(
            station,
            Box::new(MemoryStore::new()),
            ClientConfig::new(url).password("pw"),
        );
        let mut delivered: Vec<String> = Vec::new();
        let chargers = server.chargers().clone();
        until("boot accepted", || {
            chargers
                .get("CP-E2E")
                .is_some_and(|c| c.state().boot == CentralBoot::Accepted)
        })
        .await;
        plug_in_and_present(&client, 1, "TAG").unwrap();
        until("transaction at the central system", || {
            chargers
                .get("CP-E2E")
                .is_some_and(|c| !c.state().transactions.is_empty())
        })
        .await;
        let handle = chargers.get("CP-E2E").unwrap();
        let tx_id = handle.state().transactions.keys().next().unwrap().clone();
        let (action, json) = if v == Version::V16 {
            (
                "RemoteStopTransaction",
                format!(r#"{{"transactionId":{tx_id}}}"#),
            )
        } else {
            (
                "RequestStopTransaction",
                format!(r#"{{"transactionId":"{tx_id}"}}"#),
            )
        };
        let request = AnyRequest::from_json(v, action, &json).unwrap();
        let answer = handle.call_any(request).await.expect("answered");
        assert!(
            answer.to_json().contains(r#""status":"Accepted""#),
            "{v}: {}",
            answer.to_json()
        );
        until("transaction ended at the central system", || {
            handle.state().transactions.is_empty()
        })
        .await;
        until("stop confirmed", || {
            while let Ok(e) = client.events.try_recv() {
                if let ClientEvent::Station(StationEvent::InvalidOutgoing { error, .. }) = &e {
                    panic!("{v}: invalid outgoing {error}");
                }
                if let ClientEvent::Station(StationEvent::Delivered { action, .. }) = &e {
                    delivered.push(action.clone());
                }
            }
            delivered.iter().any(|a| a == "StopTransaction")
                || delivered
                    .iter()
                    .filter(|a| *a == "TransactionEvent")
                    .count()
                    >= 2
        })
        .await;
        let station = client.shutdown().await.unwrap();
        assert_eq!(station.outbox_len(), 0, "{v}: everything confirmed");
        server.shutdown().await.unwrap();
    }
}
