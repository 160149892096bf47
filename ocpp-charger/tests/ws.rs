//! The WebSocket client against the loopback mock central system: subprotocol, Basic auth,
//! a transaction, a dropped connection, reconnection and the outbox resumed in order.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ocpp_charger::testing::{plug_in_and_present, spawn_mock_central};
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, CommandError, COMMAND_QUEUE};
use ocpp_charger::{
    FileStore, HardwareEvent, MemoryStore, Saved, Setting, SimulatedHardware, Station,
    StationConfig, StationEvent, Store, StoreError, StoredMessage, Version,
};
use rust_decimal::Decimal;

mod support;
use support::until;

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
            Saved::default(),
            Instant::now(),
        );
        let mut client = ws::spawn(
            station,
            Box::new(MemoryStore::new()),
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
        plug_in_and_present(&client, 1, "TAG").unwrap();
        let start = if v == Version::V16 {
            "StartTransaction"
        } else {
            "TransactionEvent"
        };
        until("start", || central.count(start) == 1).await;

        // The connection drops; the driver reconnects; the stop made meanwhile is delivered.
        central.drop_connections();
        client
            .hardware(HardwareEvent::CableUnplugged { evse: 1 })
            .unwrap();
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
        Saved::default(),
        Instant::now(),
    );
    let mut client = ws::spawn(
        station,
        Box::new(MemoryStore::new()),
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

/// A [`FileStore`] that records the thread of every write.
struct Watched {
    inner: FileStore,
    writers: Arc<Mutex<Vec<ThreadId>>>,
}

impl Watched {
    fn note(&self) {
        self.writers
            .lock()
            .unwrap()
            .push(std::thread::current().id());
    }
}

impl Store for Watched {
    fn load_messages(&mut self) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner.load_messages()
    }
    fn append(&mut self, message: &StoredMessage) -> Result<(), StoreError> {
        self.note();
        self.inner.append(message)
    }
    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        self.note();
        self.inner.remove(seq)
    }
    fn load_state(&mut self) -> Result<Option<String>, StoreError> {
        self.inner.load_state()
    }
    fn save_state(&mut self, state: &str) -> Result<(), StoreError> {
        self.note();
        self.inner.save_state(state)
    }
}

/// A URL nothing listens on: the station stays offline.
async fn nowhere() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("ws://{addr}/ocpp")
}

fn offline_config() -> StationConfig {
    StationConfig::new("CP-DISK", Version::V16)
        .seed(5)
        .setting(Setting::OfflineTxForUnknownId, "true")
}

/// The driver performs the station's writes off the runtime's thread (the test runs on a
/// current-thread runtime: its one worker is this thread), and what it wrote survives a
/// restart: the offline transaction and its StartTransaction are there in the next process.
#[tokio::test]
async fn writes_run_off_the_runtime_thread_and_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("ocpp-charger-ws-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime_thread = std::thread::current().id();
    let writers = Arc::new(Mutex::new(Vec::new()));
    let mut store = Watched {
        inner: FileStore::open(&dir).unwrap(),
        writers: writers.clone(),
    };
    let station = Station::new(
        offline_config(),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        Saved::load(&mut store).unwrap(),
        Instant::now(),
    );
    let mut client = ws::spawn(
        station,
        Box::new(store),
        ClientConfig::new(nowhere().await)
            .backoff(Duration::from_secs(60), Duration::from_secs(60)),
    );
    plug_in_and_present(&client, 1, "OFFLINE").unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), client.events.recv())
            .await
            .expect("the transaction starts")
            .expect("the driver runs");
        if let ClientEvent::Station(StationEvent::TransactionStarted { .. }) = event {
            break;
        }
    }
    let station = client.shutdown().await.expect("the station back");
    assert_eq!(station.outbox_len(), 1);
    drop(station);

    let writers = writers.lock().unwrap().clone();
    assert!(!writers.is_empty(), "the driver wrote");
    assert!(
        writers.iter().all(|t| *t != runtime_thread),
        "no write ran on the runtime's thread"
    );

    // The next process.
    let saved = Saved::load(&mut FileStore::open(&dir).unwrap()).unwrap();
    let actions: Vec<&str> = saved.messages().iter().map(|m| m.action.as_str()).collect();
    assert_eq!(actions, ["StartTransaction"]);
    let station = Station::new(
        offline_config(),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        saved,
        Instant::now(),
    );
    let tx = station
        .transaction(1)
        .expect("the transaction was restored");
    assert_eq!(tx.id_token, "OFFLINE");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The command queue is bounded: beyond [`COMMAND_QUEUE`] waiting commands, a command is
/// refused with [`CommandError::Full`] (the driver task has not run yet on this
/// current-thread runtime, so nothing is taken off the queue meanwhile).
#[tokio::test]
async fn commands_beyond_the_queue_are_refused() {
    let station = Station::new(
        offline_config(),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        Saved::default(),
        Instant::now(),
    );
    let client = ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(nowhere().await),
    );
    for _ in 0..COMMAND_QUEUE {
        client
            .hardware(HardwareEvent::EvSuspended {
                evse: 1,
                suspended: false,
            })
            .unwrap();
    }
    assert_eq!(
        client.with(|_, _| {}),
        Err(CommandError::Full),
        "one more is refused"
    );
    assert!(client.shutdown().await.is_some(), "shutdown waits for room");
}
