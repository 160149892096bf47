//! The charger simulator against ocpp-central's WebSocket server on 127.0.0.1: a mixed fleet
//! boots, charges on remote start / stop in both orders, the load mode reports for every
//! version, and the `charger-sim` binary explains its flags and prints its JSON report.
//!
//! Synchronisation is by events (central `Handler::on_event`, fleet counters), each with a
//! generous timeout; nothing sleeps to wait.

use std::sync::Arc;
use std::time::Duration;

use ocpp_central::ocpp_types::{v16, v201, v21, BoundedString};
use ocpp_central::{
    async_trait, Auth, ChargerHandle, Event, HandleV16, HandleV201, HandleV21, Handler,
    RunningServer, Server, ServerConfig,
};
use ocpp_charger::{StationEvent, Version};
use ocpp_examples::sim::load::{self, LoadConfig, LoadMode};
use ocpp_examples::sim::{Fleet, Scenario, SimConfig, SimError, VersionMix};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

struct App {
    events: mpsc::UnboundedSender<(String, Event)>,
}

#[async_trait]
impl Handler for App {
    async fn on_event(&self, charger: &ChargerHandle, event: &Event) {
        let _ = self
            .events
            .send((charger.identity().to_owned(), event.clone()));
    }
}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

struct Central {
    server: RunningServer,
    events: mpsc::UnboundedReceiver<(String, Event)>,
    pending: Vec<(String, Event)>,
    url: String,
}

async fn central(auth: Auth) -> Central {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let server = Server::new(ServerConfig::new(auth), Arc::new(App { events: tx }))
        .start(listener)
        .unwrap();
    let url = format!("ws://{}/ocpp", server.local_addr());
    Central {
        server,
        events: rx,
        pending: Vec::new(),
        url,
    }
}

impl Central {
    /// The first central event of `identity` that `f` accepts (events of `identity` before
    /// it are dropped; those of other chargers are kept for later waits).
    async fn wait<T>(&mut self, identity: &str, mut f: impl FnMut(&Event) -> Option<T>) -> T {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].0 == identity {
                let (_, e) = self.pending.remove(i);
                if let Some(t) = f(&e) {
                    return t;
                }
            } else {
                i += 1;
            }
        }
        let wait = async {
            loop {
                let (id, e) = self.events.recv().await.expect("server gone");
                if id == identity {
                    if let Some(t) = f(&e) {
                        return t;
                    }
                } else {
                    self.pending.push((id, e));
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("{identity}: central event not seen in {WAIT:?}"))
    }

    fn charger(&self, identity: &str) -> ChargerHandle {
        self.server
            .chargers()
            .get(identity)
            .unwrap_or_else(|| panic!("{identity} not connected"))
    }

    async fn remote_start(&self, identity: &str, version: Version, evse: u32) {
        let cp = self.charger(identity);
        match version {
            Version::V16 => {
                let mut req = v16::RemoteStartTransactionRequest::new("REMOTE-1".parse().unwrap());
                req.connector_id = Some(evse as i32);
                let answer = cp.call(req).await.unwrap();
                assert_eq!(answer.status, v16::RemoteStartStopStatus::Accepted);
            }
            Version::V201 => {
                let tok: v201::IdTokenType =
                    serde_json::from_str(r#"{"idToken":"REMOTE-1","type":"Central"}"#).unwrap();
                let mut req = v201::RequestStartTransactionRequest::new(tok, 7);
                req.evse_id = Some(evse as i32);
                let answer = cp.call(req).await.unwrap();
                assert_eq!(
                    answer.status,
                    v201::RequestStartStopStatusEnumType::Accepted
                );
            }
            _ => {
                let tok: v21::IdTokenType =
                    serde_json::from_str(r#"{"idToken":"REMOTE-1","type":"Central"}"#).unwrap();
                let mut req = v21::RequestStartTransactionRequest::new(tok, 8);
                req.evse_id = Some(evse as i32);
                let answer = cp.call(req).await.unwrap();
                assert_eq!(answer.status, v21::RequestStartStopStatusEnumType::Accepted);
            }
        }
    }

    async fn remote_stop(&self, identity: &str, version: Version, tx: &str) {
        let cp = self.charger(identity);
        match version {
            Version::V16 => {
                let req = v16::RemoteStopTransactionRequest::new(tx.parse().unwrap());
                let answer = cp.call(req).await.unwrap();
                assert_eq!(answer.status, v16::RemoteStartStopStatus::Accepted);
            }
            Version::V201 => {
                let req = v201::RequestStopTransactionRequest::new(BoundedString::new(tx).unwrap());
                let answer = cp.call(req).await.unwrap();
                assert_eq!(
                    answer.status,
                    v201::RequestStartStopStatusEnumType::Accepted
                );
            }
            _ => {
                let req = v21::RequestStopTransactionRequest::new(BoundedString::new(tx).unwrap());
                let answer = cp.call(req).await.unwrap();
                assert_eq!(answer.status, v21::RequestStartStopStatusEnumType::Accepted);
            }
        }
    }

    /// Waits for a transaction start, meter values for it, and returns its id.
    async fn transaction_with_meter_values(&mut self, identity: &str) -> String {
        let tx = self
            .wait(identity, |e| match e {
                Event::TransactionStarted { transaction, .. } => Some(transaction.id.clone()),
                _ => None,
            })
            .await;
        let samples = self
            .wait(identity, |e| match e {
                Event::TransactionUpdated {
                    transaction,
                    samples,
                    ..
                } if transaction.id == tx && !samples.is_empty() => Some(samples.clone()),
                _ => None,
            })
            .await;
        let measurands: Vec<&str> = samples.iter().map(|s| s.measurand.as_ref()).collect();
        for m in [
            "Energy.Active.Import.Register",
            "Power.Active.Import",
            "Current.Import",
            "Voltage",
            "SoC",
        ] {
            assert!(
                measurands.contains(&m),
                "{identity}: {m} missing in {measurands:?}"
            );
        }
        tx
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_fleet_boots_and_charges_on_remote_start_and_stop() {
    let mut central = central(Auth::AllowAnyone).await;
    let mut config = SimConfig::new(central.url.clone());
    config.count = 6;
    config.versions = VersionMix::mixed();
    config.scenario = Scenario::Idle;
    config.meter_interval = Duration::from_secs(1);
    let fleet = Fleet::start(config).await.unwrap();
    assert_eq!(
        fleet.identities(),
        ["SIM-0001", "SIM-0002", "SIM-0003", "SIM-0004", "SIM-0005", "SIM-0006"]
    );
    let stats = fleet
        .wait_stats(|s| s.booted == 6 && s.connected == 6, WAIT)
        .await
        .unwrap();
    assert_eq!(stats.errors(), 0, "{stats:?}");
    for (i, id) in fleet.identities().iter().enumerate() {
        assert_eq!(fleet.version_of(id), Some(Version::ALL[i % 3]));
        assert_eq!(central.charger(id).version(), Version::ALL[i % 3]);
    }
    let mut fleet_events = fleet.subscribe();

    // Cable first, then the remote start (SIM-0001..3: one per version); remote start
    // first, then the cable (SIM-0004..6).
    for (i, id) in fleet.identities().iter().enumerate() {
        let version = Version::ALL[i % 3];
        let evse = if i < 3 { 1 } else { 2 };
        if i < 3 {
            fleet.plug_in(id, evse).unwrap();
            central.remote_start(id, version, evse).await;
        } else {
            central.remote_start(id, version, evse).await;
            fleet.plug_in(id, evse).unwrap();
        }
        let tx = central.transaction_with_meter_values(id).await;
        let local = fleet.transaction(id, evse).await.unwrap().expect("running");
        assert_eq!(local.id_token, "REMOTE-1");
        assert_eq!(local.transaction_id.as_deref(), Some(tx.as_str()), "{id}");
        central.remote_stop(id, version, &tx).await;
        let ended = central
            .wait(id, |e| match e {
                Event::TransactionEnded { transaction, .. } if transaction.id == tx => {
                    Some(transaction.clone())
                }
                _ => None,
            })
            .await;
        assert_eq!(ended.stop_reason.as_deref(), Some("Remote"), "{id}");
        assert!(ended.energy_wh > 0.into(), "{id}: {ended:?}");
        fleet.unplug(id, evse).unwrap();
    }
    // The fleet saw the same: six starts and six ends, no errors.
    let stats = fleet
        .wait_stats(|s| s.transactions_ended == 6 && s.charging == 0, WAIT)
        .await
        .unwrap();
    assert_eq!(stats.transactions_started, 6);
    assert_eq!(stats.errors(), 0, "{stats:?}");
    assert!(
        stats.calls_sent >= stats.answers && stats.answers > 6 * 3,
        "{stats:?}"
    );
    assert!(stats.central_calls >= 12, "{stats:?}");
    let first = fleet_events
        .wait_for(WAIT, |e| match e.station() {
            Some(StationEvent::TransactionStarted { evse, .. }) => {
                Some((e.identity.to_string(), *evse))
            }
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(first, ("SIM-0001".to_owned(), 1));
    let stats = fleet.shutdown().await;
    assert_eq!((stats.connected, stats.booted), (0, 0));
    central.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_sessions_and_basic_auth() {
    let mut central = central(Auth::passwords([
        ("CP-0001", "s3cret"),
        ("CP-0002", "s3cret"),
    ]))
    .await;
    let mut config = SimConfig::new(central.url.clone());
    config.count = 2;
    config.prefix = "CP".into();
    config.versions = "1.6,2.1".parse().unwrap();
    config.password = Some("s3cret".into());
    config.scenario = Scenario::Charge;
    config.meter_interval = Duration::from_secs(1);
    config.charge_duration = Duration::from_secs(2);
    config.pause = Duration::from_millis(100);
    let fleet = Fleet::start(config).await.unwrap();
    for id in ["CP-0001", "CP-0002"] {
        let tx = central.transaction_with_meter_values(id).await;
        let ended = central
            .wait(id, |e| match e {
                Event::TransactionEnded { transaction, .. } if transaction.id == tx => {
                    Some(transaction.clone())
                }
                _ => None,
            })
            .await;
        assert_eq!(ended.stop_reason.as_deref(), Some("Local"), "{id}");
        assert_eq!(ended.id_token.as_deref(), Some("04E1A2B3C4D5E6"), "{id}");
    }
    assert_eq!(fleet.stats().errors(), 0);
    fleet.shutdown().await;

    // A wrong password is refused: the charger keeps failing to connect.
    let mut config = SimConfig::new(central.url.clone());
    config.prefix = "CP".into();
    config.password = Some("wrong".into());
    let fleet = Fleet::start(config).await.unwrap();
    let stats = fleet
        .wait_stats(|s| s.connect_failures >= 1, WAIT)
        .await
        .unwrap();
    assert_eq!(stats.connected, 0);
    fleet.shutdown().await;
    central.server.shutdown().await.unwrap();
}

/// The simulated drivers honour reservations: after a ReserveNow, the driver who arrives at
/// the reserved EVSE presents the reserved token, the transaction uses the reservation, and
/// the same driver stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_drivers_use_the_reserved_token() {
    use ocpp_central::reservations::{reservation_of, Reservation};
    for v in [Version::V16, Version::V201] {
        let mut central = central(Auth::AllowAnyone).await;
        let mut config = SimConfig::new(central.url.clone());
        config.versions = v.as_str().parse().unwrap();
        let fleet = Fleet::start(config).await.unwrap();
        central
            .wait("SIM-0001", |e| {
                matches!(e, Event::Booted { .. }).then_some(())
            })
            .await;
        let reservation = Reservation {
            id: 77,
            evse: Some(1),
            id_token: "RESERVED-TAG".into(),
            token_type: None,
            group: None,
            expiry: chrono::Utc::now() + chrono::Duration::minutes(10),
            connector_type: None,
        };
        let answer = central.charger("SIM-0001").reserve_now(&reservation).await;
        assert_eq!(answer.unwrap().status, "Accepted", "{v}");
        fleet.driver_arrives("SIM-0001", 1).unwrap();
        let (token, used) = central
            .wait("SIM-0001", |e| match e {
                Event::TransactionStarted {
                    transaction,
                    request,
                    ..
                } => Some((transaction.id_token.clone(), reservation_of(request))),
                _ => None,
            })
            .await;
        assert_eq!(token.as_deref(), Some("RESERVED-TAG"), "{v}");
        assert_eq!(used, Some(77), "{v}");
        fleet.shutdown().await;
        central.server.shutdown().await.unwrap();
    }
}

/// A charger's command queue is bounded: with its controller not running in between (a
/// current-thread runtime, no await), the command after `COMMAND_QUEUE` is refused with
/// `SimError::Busy`, and the fleet still shuts down.
#[tokio::test]
async fn commands_beyond_the_queue_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ocpp", listener.local_addr().unwrap());
    drop(listener); // nothing listens: the charger keeps retrying
    let mut config = SimConfig::new(url);
    config.count = 1;
    config.scenario = Scenario::Idle;
    let fleet = Fleet::start(config).await.unwrap();
    let id = fleet.identities()[0].clone();
    for _ in 0..ocpp_examples::sim::COMMAND_QUEUE {
        fleet.ev_suspend(&id, 1, false).unwrap();
    }
    match fleet.ev_suspend(&id, 1, false) {
        Err(SimError::Busy(who)) => assert_eq!(who, id),
        other => panic!("expected Busy, got {other:?}"),
    }
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_running_transactions() {
    let mut central = central(Auth::AllowAnyone).await;
    let mut config = SimConfig::new(central.url.clone());
    config.count = 3;
    config.prefix = "END".into();
    let fleet = Fleet::start(config).await.unwrap();
    fleet.wait_stats(|s| s.booted == 3, WAIT).await.unwrap();
    let mut txs = Vec::new();
    for id in fleet.identities() {
        fleet.plug_in(&id, 2).unwrap();
        fleet.present_id_token(&id, Some(2), "LOCAL-7").unwrap();
        let tx = central
            .wait(&id, |e| match e {
                Event::TransactionStarted { transaction, .. } => Some(transaction.id.clone()),
                _ => None,
            })
            .await;
        txs.push((id, tx));
    }
    fleet.wait_stats(|s| s.charging == 3, WAIT).await.unwrap();
    let stats = fleet.shutdown().await;
    assert_eq!(stats.transactions_ended, 3);
    for (id, tx) in txs {
        let ended = central
            .wait(&id, |e| match e {
                Event::TransactionEnded { transaction, .. } if transaction.id == tx => {
                    Some(transaction.clone())
                }
                _ => None,
            })
            .await;
        assert_eq!(ended.stop_reason.as_deref(), Some("EVDisconnected"), "{id}");
    }
    central.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_mode_reports_for_every_version() {
    let central = central(Auth::AllowAnyone).await;
    for version in Version::ALL {
        let mut config = LoadConfig::new(central.url.clone());
        config.count = 10;
        config.prefix = format!("LOAD{}", version.as_str().replace('.', ""));
        config.versions = VersionMix::one(version);
        config.duration = Duration::from_secs(2);
        config.warmup_timeout = WAIT;
        let report = load::run(config).await.unwrap();
        assert_eq!((report.connected, report.booted), (10, 10), "{report}");
        assert!(report.calls > 20, "{report}");
        assert_eq!(report.errors, 0, "{report}");
        assert!(report.latency.p50_us > 0.0 && report.latency.max_us >= report.latency.p99_us);
        assert_eq!(report.latency.count, report.calls);
        assert_eq!(report.versions, version.as_str());
    }
    // Idle connections with frequent heartbeats.
    let mut config = LoadConfig::new(central.url.clone());
    config.count = 6;
    config.prefix = "IDLE".into();
    config.duration = Duration::from_secs(2);
    config.mode = LoadMode::Idle {
        heartbeat_interval: Duration::from_millis(200),
    };
    let report = load::run(config).await.unwrap();
    assert_eq!(report.mode, "idle");
    assert!(report.calls >= 6, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    // The two open loops at the same intervals: the same calls, in a transaction or not.
    for (mode, transactions) in [
        (
            LoadMode::CallsOpen {
                meter_interval: Duration::from_millis(100),
                heartbeat_interval: Duration::from_millis(300),
            },
            0,
        ),
        (
            LoadMode::TransactionsOpen {
                meter_interval: Duration::from_millis(100),
                heartbeat_interval: Duration::from_millis(300),
            },
            4,
        ),
    ] {
        let mut config = LoadConfig::new(central.url.clone());
        config.count = 4;
        config.prefix = format!("OPEN-{}", mode.name());
        config.duration = Duration::from_secs(2);
        config.warmup_timeout = WAIT;
        config.mode = mode;
        let report = load::run(config).await.unwrap();
        assert_eq!(report.mode, mode.name());
        assert_eq!(report.transactions, transactions, "{report}");
        assert_eq!(report.errors, 0, "{report}");
        let meter = report.by_action.get("MeterValues").map_or(0, |l| l.count);
        let heartbeats = report.by_action.get("Heartbeat").map_or(0, |l| l.count);
        // About 4 chargers x 2 s / 0.1 s, and a third as many heartbeats.
        assert!((40..=100).contains(&meter), "{report}");
        assert!((8..=40).contains(&heartbeats), "{report}");
    }
    central.server.shutdown().await.unwrap();
}

const BIN: &str = env!("CARGO_BIN_EXE_charger-sim");

#[test]
fn help_explains_every_flag() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let flags = [
        "--url",
        "--count",
        "--version",
        "--evses",
        "--prefix",
        "--first-index",
        "--password-file",
        "--scenario",
        "--seed",
        "--ramp",
        "--duration",
        "--bind-ip",
        "--id-tag",
        "--meter-interval",
        "--charge-secs",
        "--pause-secs",
        "--power",
        "--load",
        "--heartbeat-interval",
        "--warmup-timeout",
        "--call-timeout",
        "--json",
        "--quiet",
        "--threads",
        "--help",
    ];
    for flag in flags {
        // The flag's entry: from its name to the next entry.
        let start = help
            .find(&format!("  {flag}"))
            .or_else(|| help.find(&format!(", {flag}")))
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{help}"));
        let rest = &help[start + 2..];
        let end = rest.find("\n  -").unwrap_or(rest.len());
        let entry = &rest[..end];
        let words = entry.split_whitespace().count();
        assert!(words >= 4, "{flag} is not explained: {entry:?}");
    }
    for word in ["idle", "charge", "random", "mixed", "p50", "JSON", "Ctrl-C"] {
        assert!(help.contains(word), "--help does not mention {word}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_load_json() {
    let central = central(Auth::AllowAnyone).await;
    let out = tokio::process::Command::new(BIN)
        .args([
            "--url",
            &central.url,
            "--count",
            "6",
            "--version",
            "mixed",
            "--load",
            "--duration",
            "2",
            "--json",
            "--quiet",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "--json prints only the JSON: {stdout}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(report["mode"], "calls");
    assert_eq!(report["versions"], "mixed");
    assert_eq!(report["chargers"], 6);
    assert_eq!(report["booted"], 6);
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["calls"].as_u64().unwrap() > 10, "{report}");
    assert!(report["calls_per_s"].as_f64().unwrap() > 0.0);
    for key in ["p50_us", "p99_us", "max_us"] {
        assert!(
            report["latency"][key].as_f64().unwrap() > 0.0,
            "{key}: {report}"
        );
    }
    central.server.shutdown().await.unwrap();
}

/// Figures, not a test: the load mode against ocpp-central's server in the same process (one
/// 2-thread runtime for both). `SIM_LOAD_CHARGERS` (default 100), `SIM_LOAD_SECS` (10):
/// `cargo test --release -p ocpp-examples --test sim -- --ignored --nocapture load_figures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn load_figures() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let central = central(Auth::AllowAnyone).await;
    let mut config = LoadConfig::new(central.url.clone());
    config.count = env("SIM_LOAD_CHARGERS", 100) as usize;
    config.duration = Duration::from_secs(env("SIM_LOAD_SECS", 10));
    config.ramp = 0.0;
    let report = load::run(config).await.unwrap();
    println!("{report}\n{}", report.to_json());
    assert_eq!(report.errors, 0);
    central.server.shutdown().await.unwrap();
}
