//! Interop against implementations nobody here wrote: the Python `ocpp` 2.1.0
//! library (mobilityhouse, from PyPI) and `ocpp-rpc` 2.2.1 (npm, strict mode: it validates
//! every message both ways against its own copy of the schemas).
//!
//! - Their charge point against our central system (started in-process: OCPP server, backend,
//!   HTTP API, SQLite): boot, status, authorize, a whole transaction with meter values,
//!   heartbeat; our central's remote start/stop, configuration or variables, reset, trigger
//!   message, a charging profile, clear cache, unlock, change availability and data transfer,
//!   sent through the HTTP API like an operator would; then every other action of the version
//!   once in each direction, with minimal payloads built from the schemas.
//! - Their central system against our charger (`ocpp_charger` over a real WebSocket, with
//!   simulated hardware): the same flows the other way round, every call our charger gets
//!   answered with its behaviour or the specified refusal (a charging profile is stored, read
//!   back as the composite schedule and cleared).
//!
//! The peers are subprocesses (`interop/python/*.py`, `interop/node/*.js`) that speak a small
//! JSON-lines protocol on stdin/stdout (see `interop/python/bridge.py`), so the flows and the
//! assertions live here, while every OCPP message on their side is built, validated, sent and
//! answered by their library. Waiting is on their events and our live feed, never on sleeps.
//! A failure names the peer, the version, the role and the action, e.g.
//! `python-ocpp 2.0.1 charge point: SetChargingProfile: charger answered "Rejected", expected "Accepted"`.
//!
//! The peers come from `scripts/interop-setup.sh`, which prints the variables to export
//! (`OCPP_INTEROP_PYTHON`, `OCPP_INTEROP_NODE`, `OCPP_INTEROP_NODE_DIR`). Without them each test
//! prints a loud SKIPPED line and passes (with `OCPP_INTEROP_REQUIRED=1` it fails instead).
//! Each peer appends the actions it exchanged to `target/interop/coverage/*.jsonl`;
//! `scripts/interop-coverage.py` sums them up per version and direction.
//! `OCPP_INTEROP_TRACE=1` prints every event of the peers (each message they got, each
//! answer) as it arrives.

#[path = "support/api.rs"]
mod api;
#[path = "interop/payloads.rs"]
mod payloads;
#[path = "interop/peer.rs"]
mod peer;
#[path = "support/postgres.rs"]
mod postgres;
use api::Api;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ocpp_charger::settings::Setting;
use ocpp_charger::ws::{self, ClientConfig, ClientEvent, ClientHandle};
use ocpp_charger::{
    DataTransferReply, HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station,
    StationConfig, StationEvent,
};
use ocpp_examples::backend::run::{start, CentralArgs, RunningCentral};
use ocpp_examples::backend::{wait_for, LiveEvent};
use ocpp_types::{MessageKind, Version};
use payloads::{central_actions, charger_actions, check, minimal, now};
use peer::{Lib, Peer, Role, WAIT};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::broadcast;

const VENDOR: &str = "org.ocpp-rs.interop";

/// Why a CALL a peer sent got no CALLRESULT.
#[derive(Debug)]
struct Failed {
    /// The other side answered a CALLERROR with this code (else the peer's library refused
    /// to send the request or refused the answer, or timed out).
    callerror: Option<String>,
    message: String,
}

impl Failed {
    fn from_peer(error: &Value, other_side: &str) -> Failed {
        let code = error["code"].as_str().unwrap_or("?").to_owned();
        let description = error["description"].as_str().unwrap_or_default();
        if error["remote"] == true {
            Failed {
                message: format!("{other_side} answered CALLERROR {code} ({description})"),
                callerror: Some(code),
            }
        } else {
            Failed {
                message: format!(
                    "the peer could not send it or refused {other_side}'s answer: {code} {description}"
                ),
                callerror: None,
            }
        }
    }

    /// The refusal OCPP-J gives an action that is recognized but not supported.
    fn is_not_supported(&self) -> bool {
        self.callerror.as_deref() == Some("NotSupported")
    }
}

fn v16(v: Version) -> bool {
    v == Version::V16
}

// =================================================================== their charge point

/// Our central system, in-process, with its HTTP API and live feed.
struct OurCentral {
    running: RunningCentral,
    _dir: tempfile::TempDir,
    api: Api,
    feed: broadcast::Receiver<LiveEvent>,
}

/// `central.get(..)`, `central.post(..)`: our central system's HTTP API.
impl std::ops::Deref for OurCentral {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl OurCentral {
    async fn start() -> OurCentral {
        OurCentral::start_with(|_| {}).await
    }

    /// [`OurCentral::start`] with more options (`configure` changes the command line).
    async fn start_with(configure: impl FnOnce(&mut CentralArgs)) -> OurCentral {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("central.db").display());
        let mut args = CentralArgs::with_database(url).ephemeral();
        args.call_timeout = 10; // a peer that never answers fails the test before WAIT
        configure(&mut args);
        let running = start(&args).await.expect("our central system starts");
        let feed = running.backend().subscribe();
        OurCentral {
            api: Api::admin(&running).await,
            running,
            _dir: dir,
            feed,
        }
    }
}

/// Their charge point connected to our central system.
struct TheirChargePoint {
    lib: Lib,
    v: Version,
    id: String,
    peer: Peer,
    central: OurCentral,
    /// The `Sec-WebSocket-Extensions` their WebSocket library negotiated.
    extensions: String,
    /// Actions their charge point sent.
    sent: BTreeSet<String>,
    /// Actions our central sent.
    called: BTreeSet<String>,
    /// Actions our central refused with CALLERROR NotSupported.
    refused: Vec<String>,
}

impl TheirChargePoint {
    async fn start(test: &str, lib: Lib, v: Version) -> Option<TheirChargePoint> {
        if !peer::available(test, lib, Role::ChargePoint) {
            return None;
        }
        let central = OurCentral::start().await;
        let id = format!("{}-{}", lib.tag(), v.as_str().replace('.', ""));
        let url = format!("ws://{}/ocpp/{id}", central.running.ocpp_addr());
        let mut peer = Peer::spawn(test, lib, Role::ChargePoint, v, &["--url".into(), url]).await?;
        let connected = peer.event("connected").await;
        if connected["protocol"] != v.subprotocol() {
            peer.fail("(connect)", format!("negotiated {}", connected["protocol"]));
        }
        // Their answers to our central's calls: realistic ones for the flows, a minimal
        // valid one (from the schema) for everything else.
        for action in central_actions(v) {
            let answer =
                cp_answer(v, action).unwrap_or_else(|| minimal(v, action, MessageKind::Response));
            check(v, action, MessageKind::Response, &answer);
            peer.answer(action, answer).await;
        }
        let extensions = connected["extensions"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Some(TheirChargePoint {
            lib,
            v,
            id,
            extensions,
            peer,
            central,
            sent: BTreeSet::new(),
            called: BTreeSet::new(),
            refused: Vec::new(),
        })
    }

    /// Their charge point sends `action`; our central's answer.
    async fn send(&mut self, action: &str, payload: Value) -> Value {
        match self.try_send(action, payload).await {
            Ok(r) => r,
            Err(e) => self.peer.fail(action, e.message),
        }
    }

    async fn try_send(&mut self, action: &str, payload: Value) -> Result<Value, Failed> {
        check(self.v, action, MessageKind::Request, &payload);
        self.sent.insert(action.to_owned());
        self.peer
            .call(action, payload)
            .await
            .map_err(|e| Failed::from_peer(&e, "our central"))
    }

    /// Like [`TheirChargePoint::send`], and the answer's `path` must be `expected`.
    async fn send_expect(
        &mut self,
        action: &str,
        payload: Value,
        path: &str,
        expected: &str,
    ) -> Value {
        let r = self.send(action, payload).await;
        if r.pointer(path).and_then(Value::as_str) != Some(expected) {
            self.peer.fail(
                action,
                format!("our central answered {r}, expected {path} = {expected:?}"),
            );
        }
        r
    }

    /// Our central sends `action` through `POST /api/chargers/{id}{path}` (`GET` when `body`
    /// is null): the charger's answer (`{"action", "status", "response"}`) and the payload
    /// their charge point got.
    async fn call(&mut self, action: &str, path: &str, body: Value) -> (Value, Value) {
        self.called.insert(action.to_owned());
        let path = format!("/api/chargers/{}{path}", self.id);
        let (status, answer) = if body.is_null() {
            self.central.get(&path).await
        } else {
            self.central.post(&path, body).await
        };
        if status != StatusCode::OK {
            self.peer.fail(
                action,
                format!("our central's call failed: HTTP {status}: {answer}"),
            );
        }
        let received = self.peer.incoming(action, |_| true).await;
        if let Err(e) = self.peer.answered(action).await {
            self.peer
                .fail(action, format!("the charge point answered {e}"));
        }
        (answer, received)
    }

    /// [`TheirChargePoint::call`] through the generic route, expecting `status`.
    async fn call_expect(&mut self, action: &str, payload: Value, expected: &str) -> Value {
        check(self.v, action, MessageKind::Request, &payload);
        let (answer, received) = self.call(action, &format!("/call/{action}"), payload).await;
        self.expect_status(action, &answer, expected);
        received
    }

    fn expect_status(&self, action: &str, answer: &Value, expected: &str) {
        if answer["status"] != expected {
            self.peer.fail(
                action,
                format!(
                    "charger answered {}, expected {expected:?}",
                    answer["status"]
                ),
            );
        }
    }

    /// The next live event of our central of `kind` for this charger satisfying `pred`.
    async fn feed(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        match wait_for(&mut self.central.feed, &self.id, kind, WAIT, pred).await {
            Ok(detail) => detail,
            Err(e) => self
                .peer
                .fail("(live feed)", format!("our central reported: {e}")),
        }
    }

    /// Every action of the version not exchanged yet, once each way, minimal payloads. All
    /// failures are reported together.
    async fn every_other_action(&mut self) {
        let mut failures = Vec::new();
        for action in central_actions(self.v) {
            if self.called.contains(action) {
                continue;
            }
            self.called.insert(action.to_owned());
            let payload = minimal(self.v, action, MessageKind::Request);
            let path = format!("/api/chargers/{}/call/{action}", self.id);
            let (status, answer) = self.central.post(&path, payload).await;
            if status != StatusCode::OK {
                failures.push(format!(
                    "{action}: our central's call failed: HTTP {status}: {answer}"
                ));
                continue;
            }
            self.peer.incoming(action, |_| true).await;
            if let Err(e) = self.peer.answered(action).await {
                failures.push(format!("{action}: the charge point answered {e}"));
            }
        }
        for action in charger_actions(self.v) {
            if self.sent.contains(action) {
                continue;
            }
            if let Some(why) = peer_cannot_send(self.lib, self.v, action) {
                println!("{}: {action} not sent: {why}", self.peer.label);
                continue;
            }
            let payload = peer_payload(self.lib, self.v, action)
                .unwrap_or_else(|| minimal(self.v, action, MessageKind::Request));
            match self.try_send(action, payload).await {
                Ok(_) => {}
                // Our central's documented refusal for requests whose answer needs a decision
                // the example backend does not make (ocpp_central::Defaults).
                Err(e) if e.is_not_supported() => self.refused.push(action.to_owned()),
                Err(e) => failures.push(format!("{action}: {}", e.message)),
            }
        }
        if !failures.is_empty() {
            self.peer
                .fail("(every other action)", failures.join("\n  "));
        }
    }
}

/// What a peer sends instead of the minimal payload, where its library needs more than the
/// schema does (each one is a quirk of that library, listed in the report).
fn peer_payload(lib: Lib, v: Version, action: &str) -> Option<Value> {
    let (key, value) = match (lib, v, action) {
        // python-ocpp 2.1.0's 1.6 dataclasses make these optional fields required.
        (Lib::PythonOcpp, Version::V16, "LogStatusNotification")
        | (Lib::PythonOcpp, Version::V16, "SignedFirmwareStatusNotification") => {
            ("requestId", json!(1))
        }
        (Lib::PythonOcpp, Version::V16, "SecurityEventNotification") => {
            ("techInfo", json!("interop"))
        }
        _ => return None,
    };
    let mut p = minimal(v, action, MessageKind::Request);
    p[key] = value;
    check(v, action, MessageKind::Request, &p);
    Some(p)
}

/// Actions a peer's library cannot send validly (a bug of that library; listed in the report
/// and left to the other peer).
fn peer_cannot_send(lib: Lib, v: Version, action: &str) -> Option<&'static str> {
    match (lib, v, action) {
        (Lib::PythonOcpp, Version::V21, "BatterySwap") => Some(
            "python-ocpp 2.1.0 turns batteryData's soC/soH into SoC/soh (snake_to_camel_case) \
             and then refuses its own payload",
        ),
        _ => None,
    }
}

/// Our central's reservation and local-list routes (`reservations_api.rs`) against their
/// charge point: what it receives passes its library's validation and carries what we asked.
async fn reservations_and_local_list(cp: &mut TheirChargePoint) {
    let v = cp.v;
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let (row, got) = cp
        .call(
            "ReserveNow",
            "/reservations",
            json!({ "evse": 1, "idTag": "INTEROP", "expiresAt": expires }),
        )
        .await;
    cp.expect_status("ReserveNow", &row, "Accepted");
    let (token, evse, id) = if v16(v) {
        (&got["idTag"], &got["connectorId"], &got["reservationId"])
    } else {
        (&got["idToken"]["idToken"], &got["evseId"], &got["id"])
    };
    if token != "INTEROP" || evse != 1 || id != &row["id"] {
        cp.peer
            .fail("ReserveNow", format!("the charge point received {got}"));
    }
    cp.called.insert("CancelReservation".into());
    let (status, answer) = cp
        .central
        .delete(&format!("/api/reservations/{}", row["id"]))
        .await;
    let got = cp.peer.incoming("CancelReservation", |_| true).await;
    if let Err(e) = cp.peer.answered("CancelReservation").await {
        cp.peer.fail(
            "CancelReservation",
            format!("the charge point answered {e}"),
        );
    }
    if status != StatusCode::OK
        || answer["reservation"]["status"] != "Cancelled"
        || got["reservationId"] != row["id"]
    {
        cp.peer.fail(
            "CancelReservation",
            format!("HTTP {status}: {answer}; the charge point received {got}"),
        );
    }
    // The token table as the local list: one token, a full update as version 1.
    let (s, _) = cp
        .central
        .post(
            "/api/tokens",
            json!({ "idTag": "INTEROP", "status": "Accepted" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (pushed, got) = cp.call("SendLocalList", "/local-list", json!({})).await;
    cp.expect_status("SendLocalList", &pushed, "Accepted");
    let (version, list) = if v16(v) {
        (
            &got["listVersion"],
            &got["localAuthorizationList"][0]["idTag"],
        )
    } else {
        (
            &got["versionNumber"],
            &got["localAuthorizationList"][0]["idToken"]["idToken"],
        )
    };
    if got["updateType"] != "Full" || version != 1 || list != "INTEROP" {
        cp.peer
            .fail("SendLocalList", format!("the charge point received {got}"));
    }
    let (state, _) = cp
        .call("GetLocalListVersion", "/local-list", Value::Null)
        .await;
    if state["version"] != 1 || state["chargerVersion"] != 7 {
        cp.peer.fail(
            "GetLocalListVersion",
            format!("our central reported {state}"),
        );
    }
}

/// Our central's device-model routes (`device_model_api.rs`) against their charge point: a
/// report asked for through the API (2.x GetBaseReport, then their NotifyReport parts,
/// assembled by `requestId`; 1.6 GetConfiguration) is stored, (2.x) with the connector specs
/// it tells (EVSE `Power` `maxLimit`, `SupplyPhases`, `Connector` `ConnectorType`); a monitor set through
/// the API (SetVariableMonitoring) and their NotifyEvent raise an alert.
async fn device_model_flow(cp: &mut TheirChargePoint) {
    let v = cp.v;
    let id = cp.id.clone();
    let action = if v16(v) {
        "GetConfiguration"
    } else {
        "GetBaseReport"
    };
    let (row, got) = cp
        .call(action, "/reports", json!({ "base": "FullInventory" }))
        .await;
    if !v16(v) {
        if got["reportBase"] != "FullInventory" || got["requestId"] != row["requestId"] {
            cp.peer
                .fail(action, format!("the charge point received {got}"));
        }
        let item = |name: &str, value: &str| {
            json!({ "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": name },
                    "variableAttribute": [{ "type": "Actual", "value": value, "mutability": "ReadWrite" }],
                    "variableCharacteristics": { "dataType": "integer", "supportsMonitoring": true } })
        };
        // The last part also says what a driver searches: EVSE 1's most power and phases and
        // its connector's type (catalog.rs).
        let specs = [
            json!({ "component": { "name": "EVSE", "evse": { "id": 1 } }, "variable": { "name": "Power" },
                    "variableAttribute": [{ "type": "Actual", "value": "0", "mutability": "ReadOnly" }],
                    "variableCharacteristics": { "unit": "W", "dataType": "decimal", "maxLimit": 11000, "supportsMonitoring": true } }),
            json!({ "component": { "name": "EVSE", "evse": { "id": 1 } }, "variable": { "name": "SupplyPhases" },
                    "variableAttribute": [{ "type": "Actual", "value": "3", "mutability": "ReadOnly" }],
                    "variableCharacteristics": { "dataType": "integer", "supportsMonitoring": false } }),
            json!({ "component": { "name": "Connector", "evse": { "id": 1, "connectorId": 1 } }, "variable": { "name": "ConnectorType" },
                    "variableAttribute": [{ "type": "Actual", "value": "cCCS2", "mutability": "ReadOnly" }],
                    "variableCharacteristics": { "dataType": "string", "supportsMonitoring": false } }),
        ];
        for (seq, tbc, name, value) in [
            (0, true, "HeartbeatInterval", "300"),
            (1, false, "OfflineThreshold", "60"),
        ] {
            let mut data = vec![item(name, value)];
            if !tbc {
                data.extend(specs.iter().cloned());
            }
            cp.send(
                "NotifyReport",
                json!({ "requestId": got["requestId"], "generatedAt": "2030-01-01T00:00:00Z",
                        "seqNo": seq, "tbc": tbc, "reportData": data }),
            )
            .await;
        }
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, reports) = cp.central.get(&format!("/api/chargers/{id}/reports")).await;
        if reports[0]["status"] == "Complete" {
            break;
        }
        if std::time::Instant::now() > deadline {
            cp.peer
                .fail(action, format!("our central's reports: {reports}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, vars) = cp
        .central
        .get(&format!("/api/chargers/{id}/variables?search=heartbeat"))
        .await;
    if vars[0]["value"] != "300" {
        cp.peer.fail(action, format!("our central stored {vars}"));
    }
    if v16(v) {
        return;
    }
    let want = json!([
        { "evse": 1, "connector": -1, "maxPowerW": 11000, "connectorType": null, "phases": 3, "source": "reported" },
        { "evse": 1, "connector": 1, "maxPowerW": null, "connectorType": "cCCS2", "phases": null, "source": "reported" },
    ]);
    // Written right after the report's part is stored: polled like the report.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, specs) = cp.central.get(&format!("/api/chargers/{id}/specs")).await;
        if specs == want {
            break;
        }
        if std::time::Instant::now() > deadline {
            cp.peer
                .fail(action, format!("our central stored the specs {specs}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (answer, got) = cp
        .call(
            "SetVariableMonitoring",
            "/monitors",
            json!([{ "component": "OCPPCommCtrlr", "variable": "OfflineThreshold",
                     "kind": "UpperThreshold", "value": "100", "severity": 2 }]),
        )
        .await;
    if answer[0]["status"] != "Accepted"
        || got["setMonitoringData"][0]["type"] != "UpperThreshold"
        || got["setMonitoringData"][0]["severity"] != 2
    {
        cp.peer.fail(
            "SetVariableMonitoring",
            format!("our central answered {answer}; the charge point received {got}"),
        );
    }
    let event = json!({ "eventId": 1, "timestamp": "2030-01-01T00:00:00Z", "trigger": "Alerting",
        "actualValue": "200", "eventNotificationType": "CustomMonitor", "variableMonitoringId": 5,
        "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": "OfflineThreshold" } });
    cp.send(
        "NotifyEvent",
        json!({ "generatedAt": "2030-01-01T00:00:00Z", "seqNo": 0, "eventData": [event] }),
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, alerts) = cp.central.get("/api/alerts").await;
        let open = alerts
            .as_array()
            .and_then(|a| a.iter().find(|a| a["charger"] == id.as_str()))
            .cloned();
        if let Some(a) = open {
            if a["severity"] != 2 || !a["clearedAt"].is_null() {
                cp.peer
                    .fail("NotifyEvent", format!("our central's alert: {a}"));
            }
            break;
        }
        if std::time::Instant::now() > deadline {
            cp.peer.fail("NotifyEvent", format!("no alert: {alerts}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (2.1) Periodic event streams against their charge point: a stream opened through our
/// API reaches it as SetVariableMonitoring with `periodicEventStream`; its
/// OpenPeriodicEventStream is accepted and opens the backend's row; AdjustPeriodicEventStream
/// goes out through the API; its ClosePeriodicEventStream closes the row. The samples
/// themselves are SEND frames, which neither peer can send (interop/README.md).
async fn event_stream_flow(cp: &mut TheirChargePoint) {
    let id = cp.id.clone();
    cp.peer
        .answer(
            "SetVariableMonitoring",
            json!({ "setMonitoringResult": [{
                "id": 9, "status": "Accepted", "type": "Periodic", "severity": 9,
                "component": { "name": "EVSE", "evse": { "id": 1 } }, "variable": { "name": "Power" },
            }]}),
        )
        .await;
    let (answer, got) = cp
        .call(
            "SetVariableMonitoring",
            "/streams",
            json!({ "component": "EVSE", "evse": 1, "variable": "Power", "value": "1", "interval": 10 }),
        )
        .await;
    let item = &got["setMonitoringData"][0];
    if answer["status"] != "Accepted"
        || answer["stream"]["streamId"] != 9
        || item["periodicEventStream"]["interval"] != 10
        || item["type"] != "Periodic"
    {
        cp.peer.fail(
            "SetVariableMonitoring",
            format!("our central answered {answer}; the charge point received {got}"),
        );
    }
    cp.send_expect(
        "OpenPeriodicEventStream",
        json!({ "constantStreamData": { "id": 9, "variableMonitoringId": 9, "params": { "interval": 10 } } }),
        "/status",
        "Accepted",
    )
    .await;
    if stream_status(cp, &id, "Open").await.is_none() {
        cp.peer.fail(
            "OpenPeriodicEventStream",
            "our central's stream is not Open",
        );
    }
    cp.peer
        .answer("AdjustPeriodicEventStream", json!({ "status": "Accepted" }))
        .await;
    cp.called.insert("AdjustPeriodicEventStream".to_owned());
    let (status, answer) = cp
        .central
        .put(
            &format!("/api/chargers/{id}/streams/9"),
            json!({ "values": 5 }),
        )
        .await;
    let got = cp
        .peer
        .incoming("AdjustPeriodicEventStream", |_| true)
        .await;
    if status != StatusCode::OK
        || answer["status"] != "Accepted"
        || answer["stream"]["values"] != 5
        || got["id"] != 9
        || got["params"]["values"] != 5
    {
        cp.peer.fail(
            "AdjustPeriodicEventStream",
            format!("our central answered HTTP {status} {answer}; the charge point received {got}"),
        );
    }
    cp.send("ClosePeriodicEventStream", json!({ "id": 9 }))
        .await;
    if stream_status(cp, &id, "Closed").await.is_none() {
        cp.peer.fail(
            "ClosePeriodicEventStream",
            "our central's stream is not Closed",
        );
    }
}

/// The backend's row of stream 9 of `id` once its status is `status`.
async fn stream_status(cp: &TheirChargePoint, id: &str, status: &str) -> Option<Value> {
    let path = format!("/api/chargers/{id}/streams");
    poll(|| async {
        let (_, rows) = cp.central.get(&path).await;
        rows.as_array()?
            .iter()
            .find(|r| r["streamId"] == 9 && r["status"] == status)
            .cloned()
    })
    .await
}

/// The example backend's firmware rollout and log requests (`firmware_api.rs`) against their
/// charge point: what it receives (UpdateFirmware, 1.6 SignedUpdateFirmware, GetLog, 1.6
/// GetDiagnostics) carries the backend's download / upload URL, and the status notifications
/// it sends move the rollout and the log request. The peers transfer no files: the test
/// uploads in the peer's place.
async fn firmware_and_logs(cp: &mut TheirChargePoint) {
    let v = cp.v;
    let (s, image) = cp
        .central
        .post_bytes(
            "/api/firmware/images?name=interop.bin&version=9.0",
            b"SIMFW 9.0\n".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{image}");
    // 1.6: plain, then signed; 2.x: one signed update.
    let kinds: &[(&str, bool)] = if v16(v) {
        &[("UpdateFirmware", false), ("SignedUpdateFirmware", true)]
    } else {
        &[("UpdateFirmware", true)]
    };
    for (action, signed) in kinds.iter().copied() {
        cp.called.insert(action.to_owned());
        let body = json!({ "imageId": image["id"], "chargers": [cp.id], "signed": signed });
        let (s, rollout) = cp.central.post("/api/firmware/rollouts", body).await;
        let got = cp.peer.incoming(action, |_| true).await;
        if let Err(e) = cp.peer.answered(action).await {
            cp.peer
                .fail(action, format!("the charge point answered {e}"));
        }
        let location = if v16(v) && !signed {
            got["location"].as_str()
        } else {
            got["firmware"]["location"].as_str()
        };
        let path = image["path"].as_str().unwrap_or_default();
        if s != StatusCode::OK || !location.is_some_and(|l| l.ends_with(path)) {
            cp.peer.fail(
                action,
                format!("HTTP {s}: {rollout}; the charge point received {got}"),
            );
        }
        if signed
            && got["firmware"]["signature"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            cp.peer.fail(action, format!("no signature in {got}"));
        }
        let rid = rollout["id"].clone();
        let (notification, with_id) = if v16(v) && !signed {
            ("FirmwareStatusNotification", false)
        } else if v16(v) {
            ("SignedFirmwareStatusNotification", true)
        } else {
            ("FirmwareStatusNotification", true)
        };
        for status in ["Downloading", "Downloaded", "Installing", "Installed"] {
            let mut p = json!({ "status": status });
            if with_id {
                p["requestId"] = rid.clone();
            }
            cp.send(notification, p).await;
        }
        // The backend follows the notifications after answering them: poll.
        let path = format!("/api/firmware/rollouts/{rid}");
        let r =
            poll(|| async { Some(cp.central.get(&path).await.1).filter(|r| r["installed"] == 1) })
                .await
                .unwrap_or_default();
        if r["installed"] != 1 {
            cp.peer
                .fail(notification, format!("our central's rollout is {r}"));
        }
    }
    // Logs: GetLog on every version, and 1.6 GetDiagnostics.
    let asks: &[(&str, Value)] = if v16(v) {
        &[
            ("GetLog", json!({ "logType": "SecurityLog" })),
            ("GetDiagnostics", json!({ "diagnostics": true })),
        ]
    } else {
        &[("GetLog", json!({}))]
    };
    for (action, body) in asks {
        let (row, got) = cp.call(action, "/logs", body.clone()).await;
        let location = if *action == "GetLog" {
            got["log"]["remoteLocation"].as_str()
        } else {
            got["location"].as_str()
        };
        let Some(upload) = location
            .and_then(|l| l.split_once("/uploads/"))
            .map(|x| x.1)
        else {
            cp.peer
                .fail(action, format!("the charge point received {got}"));
        };
        let expected = if *action == "GetLog" {
            "interop.log"
        } else {
            "interop-diagnostics.log"
        };
        if row["filename"] != expected || (*action == "GetLog" && got["requestId"] != row["id"]) {
            cp.peer
                .fail(action, format!("our central stored {row} for {got}"));
        }
        let (s, file) = cp
            .central
            .put_bytes(
                &format!("/uploads/{upload}/{expected}"),
                b"peer log\n".to_vec(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{file}");
        let (notification, p) = if *action == "GetLog" {
            (
                "LogStatusNotification",
                json!({ "status": "Uploaded", "requestId": row["id"] }),
            )
        } else {
            (
                "DiagnosticsStatusNotification",
                json!({ "status": "Uploaded" }),
            )
        };
        cp.send(notification, p).await;
        let path = format!("/api/logs?charger={}", cp.id);
        let now = poll(|| async {
            let (_, list) = cp.central.get(&path).await;
            list.as_array()
                .and_then(|l| l.iter().find(|r| r["id"] == row["id"]))
                .filter(|r| r["status"] == "Uploaded")
                .cloned()
        })
        .await
        .unwrap_or_default();
        if now["status"] != "Uploaded" || now["files"][0]["size"] != 9 {
            cp.peer
                .fail(notification, format!("our central's log request is {now}"));
        }
    }
}

/// Polls `f` every 20 ms until it gives something, for at most [`WAIT`].
async fn poll<T, F, Fut>(mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(t) = f().await {
            return Some(t);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Our central's display-message and customer-information routes (`display_api.rs`) and
/// the typed CostUpdated against their charge point (2.x): what it receives passes its
/// library's validation and carries what we asked; the reports it sends back
/// (NotifyDisplayMessages, NotifyCustomerInformation in two parts) reach the API's answers.
async fn display_and_customer(cp: &mut TheirChargePoint) {
    if v16(cp.v) {
        return;
    }
    let (row, got) = cp
        .call(
            "SetDisplayMessage",
            "/display-messages",
            json!({ "id": 7, "content": "Interop \u{2713}", "priority": "InFront", "language": "en" }),
        )
        .await;
    cp.expect_status("SetDisplayMessage", &row, "Accepted");
    if got.pointer("/message/id") != Some(&json!(7))
        || got.pointer("/message/message/content") != Some(&json!("Interop \u{2713}"))
        || got.pointer("/message/priority") != Some(&json!("InFront"))
    {
        cp.peer.fail(
            "SetDisplayMessage",
            format!("the charge point received {got}"),
        );
    }
    // GetDisplayMessages: the API answers once their report arrived.
    cp.called.insert("GetDisplayMessages".into());
    cp.sent.insert("NotifyDisplayMessages".into());
    let path = format!("/api/chargers/{}/display-messages", cp.id);
    let (central, peer) = (&cp.central, &mut cp.peer);
    let ((status, list), report) = tokio::join!(central.get(&path), async {
        let got = peer.incoming("GetDisplayMessages", |_| true).await;
        if let Err(e) = peer.answered("GetDisplayMessages").await {
            return Err(format!("the charge point answered {e}"));
        }
        let info = json!([{ "id": 7, "priority": "InFront",
            "message": { "format": "UTF8", "content": "Interop \u{2713}", "language": "en" } }]);
        peer.call(
            "NotifyDisplayMessages",
            json!({ "requestId": got["requestId"], "tbc": false, "messageInfo": info }),
        )
        .await
        .map_err(|e| format!("NotifyDisplayMessages: {e}"))
    });
    if let Err(e) = report {
        cp.peer.fail("GetDisplayMessages", e);
    }
    if status != StatusCode::OK
        || list.as_array().map(Vec::len) != Some(1)
        || list[0]["id"] != 7
        || list[0]["content"] != "Interop \u{2713}"
        || list[0]["status"] != "Accepted"
    {
        cp.peer.fail(
            "GetDisplayMessages",
            format!("our central answered HTTP {status}: {list}"),
        );
    }
    cp.called.insert("ClearDisplayMessage".into());
    let (status, answer) = cp.central.delete(&format!("{path}/7")).await;
    let got = cp.peer.incoming("ClearDisplayMessage", |_| true).await;
    if let Err(e) = cp.peer.answered("ClearDisplayMessage").await {
        cp.peer.fail(
            "ClearDisplayMessage",
            format!("the charge point answered {e}"),
        );
    }
    if status != StatusCode::OK || answer["status"] != "Accepted" || got["id"] != 7 {
        cp.peer.fail(
            "ClearDisplayMessage",
            format!("HTTP {status}: {answer}; the charge point received {got}"),
        );
    }
    // CustomerInformation: report (in two parts) and clear.
    cp.called.insert("CustomerInformation".into());
    cp.sent.insert("NotifyCustomerInformation".into());
    let path = format!("/api/chargers/{}/customer-information", cp.id);
    let body = json!({ "idToken": "INTEROP", "report": true, "clear": true });
    let (central, peer) = (&cp.central, &mut cp.peer);
    let ((status, row), got) = tokio::join!(central.post(&path, body), async {
        let got = peer.incoming("CustomerInformation", |_| true).await;
        if let Err(e) = peer.answered("CustomerInformation").await {
            return Err(format!("the charge point answered {e}"));
        }
        for (seq, data, tbc) in [
            (0, "local list: Accepted; ", true),
            (1, "no sessions", false),
        ] {
            peer.call(
                "NotifyCustomerInformation",
                json!({ "data": data, "tbc": tbc, "seqNo": seq, "generatedAt": now(),
                        "requestId": got["requestId"] }),
            )
            .await
            .map_err(|e| format!("NotifyCustomerInformation: {e}"))?;
        }
        Ok(got)
    });
    let got = got.unwrap_or_else(|e| cp.peer.fail("CustomerInformation", e));
    if status != StatusCode::OK
        || row["status"] != "Accepted"
        || row["parts"] != 2
        || row["data"] != "local list: Accepted; no sessions"
        || got.pointer("/idToken/idToken") != Some(&json!("INTEROP"))
        || got["report"] != true
        || got["clear"] != true
    {
        cp.peer.fail(
            "CustomerInformation",
            format!("HTTP {status}: {row}; the charge point received {got}"),
        );
    }
    // CostUpdated through the typed command: the exact decimal on the wire.
    let handle = cp
        .central
        .running
        .backend()
        .chargers()
        .get(&cp.id)
        .unwrap_or_else(|| cp.peer.fail("CostUpdated", "not connected"));
    cp.called.insert("CostUpdated".into());
    if let Err(e) = handle
        .cost_updated("INTEROP-TX", Decimal::new(1234, 3))
        .await
    {
        cp.peer
            .fail("CostUpdated", format!("our central's call failed: {e}"));
    }
    let got = cp
        .peer
        .incoming("CostUpdated", |p| p["transactionId"] == "INTEROP-TX")
        .await;
    if let Err(e) = cp.peer.answered("CostUpdated").await {
        cp.peer
            .fail("CostUpdated", format!("the charge point answered {e}"));
    }
    if got["totalCost"].as_f64() != Some(1.234) {
        cp.peer
            .fail("CostUpdated", format!("the charge point received {got}"));
    }
}

/// Our central's 2.1 tariff routes (`tariffs_api.rs`) against their charge point: a tariff
/// from the catalog reaches it by SetDefaultTariff and ChangeTransactionTariff exactly (the
/// decimal digits, the tax rate, the condition), GetTariffs and ClearTariffs come back
/// through the API with their answers.
async fn tariffs_flow(cp: &mut TheirChargePoint) {
    if cp.v != Version::V21 {
        return;
    }
    let tariff = serde_json::from_str::<Value>(
        r#"{"tariffId":"INTEROP-T","currency":"EUR",
        "energy":{"prices":[{"priceKwh":0.255,"conditions":{"startTimeOfDay":"22:00","endTimeOfDay":"06:00"}},
            {"priceKwh":0.39}],"taxRates":[{"type":"VAT","tax":21}]},
        "fixedFee":{"prices":[{"priceFixed":1.5}]}}"#,
    )
    .unwrap_or(Value::Null);
    let (status, row) = cp.central.post("/api/tariffs", tariff.clone()).await;
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        cp.peer.fail(
            "SetDefaultTariff",
            format!("storing the tariff: HTTP {status}: {row}"),
        );
    }
    let (a, got) = cp
        .call(
            "SetDefaultTariff",
            "/default-tariff",
            json!({ "tariffId": "INTEROP-T", "evseId": 1 }),
        )
        .await;
    cp.expect_status("SetDefaultTariff", &a, "Accepted");
    if got["evseId"] != 1
        || got
            .pointer("/tariff/energy/prices/0/priceKwh")
            .and_then(Value::as_f64)
            != Some(0.255)
        || got.pointer("/tariff/energy/prices/0/conditions/startTimeOfDay") != Some(&json!("22:00"))
        || got
            .pointer("/tariff/energy/taxRates/0/tax")
            .and_then(Value::as_f64)
            != Some(21.0)
    {
        cp.peer.fail(
            "SetDefaultTariff",
            format!("the charge point received {got}"),
        );
    }
    let (a, got) = cp
        .call("GetTariffs", "/tariffs?evseId=1", Value::Null)
        .await;
    if a.pointer("/answer/status") != Some(&json!("Accepted"))
        || a.pointer("/answer/tariffAssignments/0/tariffId") != Some(&json!("INTEROP-T"))
        || got["evseId"] != 1
    {
        cp.peer.fail(
            "GetTariffs",
            format!("answer {a}; the charge point received {got}"),
        );
    }
    let (a, got) = cp
        .call(
            "ChangeTransactionTariff",
            "/transactions/INTEROP-TX/tariff",
            json!({ "tariffId": "INTEROP-T" }),
        )
        .await;
    cp.expect_status("ChangeTransactionTariff", &a, "Accepted");
    if got["transactionId"] != "INTEROP-TX"
        || got.pointer("/tariff/tariffId") != Some(&json!("INTEROP-T"))
    {
        cp.peer.fail(
            "ChangeTransactionTariff",
            format!("the charge point received {got}"),
        );
    }
    cp.called.insert("ClearTariffs".into());
    let (status, a) = cp
        .central
        .delete(&format!(
            "/api/chargers/{}/tariffs?tariffId=INTEROP-T&evseId=1",
            cp.id
        ))
        .await;
    let got = cp.peer.incoming("ClearTariffs", |_| true).await;
    if let Err(e) = cp.peer.answered("ClearTariffs").await {
        cp.peer
            .fail("ClearTariffs", format!("the charge point answered {e}"));
    }
    if status != StatusCode::OK
        || a["status"] != "Accepted"
        || got["tariffIds"] != json!(["INTEROP-T"])
        || got["evseId"] != 1
    {
        cp.peer.fail(
            "ClearTariffs",
            format!("HTTP {status}: {a}; the charge point received {got}"),
        );
    }
}

/// How their charge point answers our central in the flows (`None`: a minimal valid answer).
fn cp_answer(v: Version, action: &str) -> Option<Value> {
    let accepted = json!({ "status": "Accepted" });
    Some(match action {
        "RemoteStartTransaction"
        | "RemoteStopTransaction"
        | "RequestStartTransaction"
        | "RequestStopTransaction"
        | "ChangeConfiguration"
        | "Reset"
        | "TriggerMessage"
        | "SetChargingProfile"
        | "ClearChargingProfile"
        | "ClearCache"
        | "ReserveNow"
        | "CancelReservation"
        | "SendLocalList"
        | "SetDisplayMessage"
        | "GetDisplayMessages"
        | "ClearDisplayMessage"
        | "CustomerInformation"
        | "ChangeAvailability"
        | "SetDefaultTariff"
        | "ChangeTransactionTariff" => accepted,
        "GetTariffs" => json!({ "status": "Accepted", "tariffAssignments": [
            { "tariffId": "INTEROP-T", "tariffKind": "DefaultTariff", "evseIds": [1] }] }),
        "ClearTariffs" => {
            json!({ "clearTariffsResult": [{ "tariffId": "INTEROP-T", "status": "Accepted" }] })
        }
        "SignedUpdateFirmware" => accepted,
        "UpdateFirmware" if !v16(v) => accepted,
        "GetLog" => json!({ "status": "Accepted", "filename": "interop.log" }),
        "GetDiagnostics" => json!({ "fileName": "interop-diagnostics.log" }),
        "GetLocalListVersion" if v16(v) => json!({ "listVersion": 7 }),
        "GetLocalListVersion" => json!({ "versionNumber": 7 }),
        "UnlockConnector" => json!({ "status": "Unlocked" }),
        // A composite of 7.4 kW, then 3.7 kW after two minutes.
        "GetCompositeSchedule" if v16(v) => json!({
            "status": "Accepted", "connectorId": 1, "scheduleStart": "2030-01-01T00:00:00Z",
            "chargingSchedule": { "duration": 300, "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 7400.0 }, { "startPeriod": 120, "limit": 3700.0, "numberPhases": 1 }] },
        }),
        "GetCompositeSchedule" => json!({
            "status": "Accepted",
            "schedule": { "evseId": 1, "duration": 300, "scheduleStart": "2030-01-01T00:00:00Z", "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 7400.0 }, { "startPeriod": 120, "limit": 3700.0, "numberPhases": 1 }] },
        }),
        "DataTransfer" if v16(v) => json!({ "status": "Accepted", "data": "pong" }),
        "DataTransfer" => json!({ "status": "Accepted", "data": { "pong": true } }),
        "GetConfiguration" => json!({
            "configurationKey": [{ "key": "HeartbeatInterval", "readonly": false, "value": "300" }],
        }),
        "GetVariables" => json!({ "getVariableResult": [{
            "attributeStatus": "Accepted", "attributeValue": "300",
            "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": "HeartbeatInterval" },
        }]}),
        "GetBaseReport" => accepted,
        "SetVariableMonitoring" => json!({ "setMonitoringResult": [{
            "id": 5, "status": "Accepted", "type": "UpperThreshold", "severity": 2,
            "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": "OfflineThreshold" },
        }]}),
        "SetVariables" => json!({ "setVariableResult": [{
            "attributeStatus": "Accepted",
            "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": "HeartbeatInterval" },
        }]}),
        _ => return None,
    })
}

/// ocpp-central's typed smart-charging commands (`ocpp_central::smart_charging`) against
/// their charge point: what it receives is what the version's schema and the model say, and
/// its answers come back as the version-neutral model, exactly.
async fn typed_smart_charging(cp: &mut TheirChargePoint) {
    use ocpp_central::smart_charging::{
        ChargingProfile, ClearProfiles, CompositePeriod, Purpose, RateUnit,
    };
    let v = cp.v;
    let handle = cp
        .central
        .running
        .backend()
        .chargers()
        .get(&cp.id)
        .unwrap_or_else(|| cp.peer.fail("(typed commands)", "not connected"));
    // SetChargingProfile: a TxDefaultProfile of 11 kW on EVSE 1.
    let profile = ChargingProfile::constant(
        31,
        2,
        Purpose::TxDefault,
        RateUnit::W,
        Decimal::from(11_000),
        chrono::Utc::now(),
    );
    cp.called.insert("SetChargingProfile".into());
    let a = handle
        .set_charging_profile(1, &profile)
        .await
        .unwrap_or_else(|e| cp.peer.fail("SetChargingProfile", e));
    cp.expect_status(
        "SetChargingProfile",
        &json!({ "status": a.status }),
        "Accepted",
    );
    let got = cp
        .peer
        .incoming("SetChargingProfile", |p| {
            p.pointer("/csChargingProfiles/chargingProfileId") == Some(&json!(31))
                || p.pointer("/chargingProfile/id") == Some(&json!(31))
        })
        .await;
    let (purpose, unit, limit) = if v16(v) {
        (
            got.pointer("/csChargingProfiles/chargingProfilePurpose"),
            got.pointer("/csChargingProfiles/chargingSchedule/chargingRateUnit"),
            got.pointer("/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/limit"),
        )
    } else {
        (
            got.pointer("/chargingProfile/chargingProfilePurpose"),
            got.pointer("/chargingProfile/chargingSchedule/0/chargingRateUnit"),
            got.pointer("/chargingProfile/chargingSchedule/0/chargingSchedulePeriod/0/limit"),
        )
    };
    if purpose != Some(&json!("TxDefaultProfile"))
        || unit != Some(&json!("W"))
        || limit.and_then(Value::as_f64) != Some(11_000.0)
    {
        cp.peer.fail(
            "SetChargingProfile",
            format!("the charge point received {got}"),
        );
    }
    if let Err(e) = cp.peer.answered("SetChargingProfile").await {
        cp.peer.fail(
            "SetChargingProfile",
            format!("the charge point answered {e}"),
        );
    }

    // GetCompositeSchedule: their answer, in the model.
    cp.called.insert("GetCompositeSchedule".into());
    let a = handle
        .get_composite_schedule(1, 300, Some(RateUnit::W))
        .await
        .unwrap_or_else(|e| cp.peer.fail("GetCompositeSchedule", e));
    let got = cp.peer.incoming("GetCompositeSchedule", |_| true).await;
    if got.get("duration") != Some(&json!(300)) || got.get("chargingRateUnit") != Some(&json!("W"))
    {
        cp.peer.fail(
            "GetCompositeSchedule",
            format!("the charge point received {got}"),
        );
    }
    let _ = cp.peer.answered("GetCompositeSchedule").await;
    let schedule = a.schedule.unwrap_or_else(|| {
        cp.peer
            .fail("GetCompositeSchedule", "no schedule in the answer")
    });
    let expected = vec![
        CompositePeriod {
            start_period: 0,
            limit: Decimal::from(7_400),
            number_phases: 3,
            v2x: None,
        },
        CompositePeriod {
            start_period: 120,
            limit: Decimal::from(3_700),
            number_phases: 1,
            v2x: None,
        },
    ];
    if a.status != "Accepted"
        || schedule.evse != 1
        || schedule.duration != 300
        || schedule.unit != RateUnit::W
        || schedule.start.to_rfc3339() != "2030-01-01T00:00:00+00:00"
        || schedule.periods != expected
    {
        cp.peer
            .fail("GetCompositeSchedule", format!("read as {schedule:?}"));
    }

    // ClearChargingProfile by id (2.x: `chargingProfileId` alone), then by purpose and EVSE.
    cp.called.insert("ClearChargingProfile".into());
    for (filter, check) in [
        (
            ClearProfiles {
                id: Some(31),
                ..ClearProfiles::default()
            },
            if v16(v) { "/id" } else { "/chargingProfileId" },
        ),
        (
            ClearProfiles {
                evse: Some(1),
                purpose: Some(Purpose::TxDefault),
                ..ClearProfiles::default()
            },
            if v16(v) {
                "/chargingProfilePurpose"
            } else {
                "/chargingProfileCriteria/chargingProfilePurpose"
            },
        ),
    ] {
        let a = handle
            .clear_charging_profiles(&filter)
            .await
            .unwrap_or_else(|e| cp.peer.fail("ClearChargingProfile", e));
        cp.expect_status(
            "ClearChargingProfile",
            &json!({ "status": a.status }),
            "Accepted",
        );
        let got = cp.peer.incoming("ClearChargingProfile", |_| true).await;
        if got.pointer(check).is_none() {
            cp.peer.fail(
                "ClearChargingProfile",
                format!("the charge point received {got}"),
            );
        }
        let _ = cp.peer.answered("ClearChargingProfile").await;
    }
}

/// An OCMF signing meter (P-256) for their charge point's signed values: the test signs, their
/// library carries the value verbatim (1.6 SignedData, 2.x signedMeterValue, both validated
/// against their schemas), our central stores and verifies it.
struct SignedMeter {
    key: ocpp_examples::sim::ocmf::MeterKey,
    sent: Vec<String>,
}

impl SignedMeter {
    fn new() -> SignedMeter {
        SignedMeter {
            key: ocpp_examples::sim::ocmf::MeterKey::generate().expect("a P-256 key"),
            sent: Vec::new(),
        }
    }

    fn sign(&mut self, tx: &str, context: &str, wh: u32) -> String {
        let request = ocpp_charger::SignRequest {
            evse: 1,
            context,
            transaction_id: Some(tx),
            id_token: Some("LOCAL-1"),
            timestamp: chrono::Utc::now(),
        };
        let reading = ocpp_charger::MeterReading {
            energy_wh: wh.into(),
            ..Default::default()
        };
        let data = self
            .key
            .sign("INTEROP", &request, &reading)
            .expect("signs")
            .data;
        self.sent.push(data.clone());
        data
    }

    /// A 2.x periodic meter value whose energy register carries the signed value (data and
    /// key base64, as 2.x asks; 2.1 may leave the key out, so it does).
    fn meter_2x(&mut self, v: Version, tx: &str, wh: u32) -> Value {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let data = b64.encode(self.sign(tx, "Sample.Periodic", wh));
        let key_hex = self.key.public_key_hex();
        let key_bytes: Vec<u8> = (0..key_hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).ok())
            .collect();
        let mut m = meter_2x(wh, "Sample.Periodic");
        m[0]["sampledValue"][0]["signedMeterValue"] = if v == Version::V201 {
            json!({ "signedMeterData": data, "signingMethod": "ECDSA-secp256r1-SHA256",
                    "encodingMethod": "OCMF", "publicKey": b64.encode(key_bytes) })
        } else {
            json!({ "signedMeterData": data, "encodingMethod": "OCMF" })
        };
        m
    }

    /// Our central stored every signed value verbatim with the session; where the key was
    /// in the message (2.0.1) it is Verified, elsewhere NoKey until the operator registers
    /// the meter key, then Verified.
    async fn check_stored(&self, cp: &mut TheirChargePoint, session: i64) {
        let what = if v16(cp.v) {
            "MeterValues"
        } else {
            "TransactionEvent"
        };
        let path = format!("/api/sessions/{session}/signed-values");
        let (_, rows) = cp.central.get(&path).await;
        let rows = rows.as_array().cloned().unwrap_or_default();
        let stored: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                let d = r["signedData"].as_str()?;
                ocpp_central::signed::ocmf_text(d)
            })
            .collect();
        if stored != self.sent {
            cp.peer.fail(
                what,
                format!("our central stored {rows:?}, sent {:?}", self.sent),
            );
        }
        let want = if cp.v == Version::V201 {
            "Verified"
        } else {
            "NoKey"
        };
        if rows.iter().any(|r| r["status"] != want) {
            cp.peer.fail(what, format!("expected {want}: {rows:?}"));
        }
        if want == "NoKey" {
            let (status, r) = cp
                .central
                .put(
                    &format!("/api/chargers/{}/meter-keys", cp.id),
                    json!({ "publicKey": self.key.public_key_hex() }),
                )
                .await;
            let (_, rows) = cp.central.get(&path).await;
            let verified = rows
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(|r| r["status"] == "Verified"));
            if status != StatusCode::OK || !verified {
                cp.peer.fail(
                    what,
                    format!("after registering the key ({status} {r}): {rows}"),
                );
            }
        }
    }
}

fn meter_v16(wh: u32, context: &str) -> Value {
    json!([{ "timestamp": now(), "sampledValue": [
        { "value": wh.to_string(), "context": context, "measurand": "Energy.Active.Import.Register", "unit": "Wh" },
        { "value": "7400", "context": context, "measurand": "Power.Active.Import", "unit": "W" },
    ]}])
}

fn meter_2x(wh: u32, context: &str) -> Value {
    json!([{ "timestamp": now(), "sampledValue": [
        { "value": wh, "context": context, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": { "unit": "Wh" } },
        { "value": 7400, "context": context, "measurand": "Power.Active.Import", "unitOfMeasure": { "unit": "W" } },
    ]}])
}

fn boot_request(v: Version, reason: &str) -> Value {
    if v16(v) {
        json!({ "chargePointVendor": "Interop", "chargePointModel": "Peer", "firmwareVersion": "1.0" })
    } else {
        json!({ "chargingStation": { "vendorName": "Interop", "model": "Peer", "firmwareVersion": "1.0" }, "reason": reason })
    }
}

fn status_request(v: Version, evse: u32, status: &str) -> Value {
    if v16(v) {
        json!({ "connectorId": evse, "errorCode": "NoError", "status": status, "timestamp": now() })
    } else {
        json!({ "timestamp": now(), "connectorStatus": status, "evseId": evse, "connectorId": 1 })
    }
}

fn id_token(v: Version, token: &str, kind: &str) -> Value {
    if v16(v) {
        json!(token)
    } else {
        json!({ "idToken": token, "type": kind })
    }
}

/// A 2.x TransactionEvent.
fn tx_event(
    event: &str,
    trigger: &str,
    seq: u32,
    info: Value,
    token: Option<Value>,
    meter: Option<Value>,
) -> Value {
    let mut p = json!({
        "eventType": event, "timestamp": now(), "triggerReason": trigger, "seqNo": seq,
        "transactionInfo": info, "evse": { "id": 1, "connectorId": 1 },
    });
    if let Some(t) = token {
        p["idToken"] = t;
    }
    if let Some(m) = meter {
        p["meterValue"] = m;
    }
    p
}

fn charging_profile(v: Version) -> Value {
    if v16(v) {
        json!({ "connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {
                "startSchedule": now(), "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 16.0 }, { "startPeriod": 3600, "limit": 10.5 }],
            },
        }})
    } else {
        json!({ "evseId": 1, "chargingProfile": {
            "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": [{
                "id": 1, "startSchedule": now(), "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 16.0 }, { "startPeriod": 3600, "limit": 10.5 }],
            }],
        }})
    }
}

fn energy(v: &Value) -> f64 {
    v["energyWh"].as_f64().unwrap_or(-1.0)
}

/// Their charge point against our central system: the whole flow, then every other action.
async fn their_charge_point(test: &str, lib: Lib, v: Version) {
    let t0 = Instant::now();
    let Some(mut cp) = TheirChargePoint::start(test, lib, v).await else {
        return;
    };

    // --- boot, status, heartbeat
    let boot = cp
        .send_expect(
            "BootNotification",
            boot_request(v, "PowerUp"),
            "/status",
            "Accepted",
        )
        .await;
    if boot["interval"].as_i64().is_none_or(|i| i <= 0) {
        cp.peer.fail(
            "BootNotification",
            format!("no heartbeat interval in {boot}"),
        );
    }
    cp.feed("booted", |d| {
        d["vendor"] == "Interop" && d["model"] == "Peer"
    })
    .await;
    // Both peers' WebSocket libraries (Python websockets, Node ws) offer permessage-deflate
    // by default: our server took it (RFC 7692), so everything here runs compressed.
    let compressed = cp
        .central
        .running
        .backend()
        .chargers()
        .get(&cp.id)
        .is_some_and(|h| h.compressed());
    if !compressed || !cp.extensions.starts_with("permessage-deflate") {
        cp.peer.fail(
            "(connect)",
            format!(
                "compression not negotiated: server side {compressed}, peer saw {:?}",
                cp.extensions
            ),
        );
    }
    if v16(v) {
        cp.send("StatusNotification", status_request(v, 0, "Available"))
            .await;
    }
    cp.send("StatusNotification", status_request(v, 1, "Available"))
        .await;
    cp.feed("status", |d| d["evse"] == 1 && d["status"] == "Available")
        .await;
    let hb = cp.send("Heartbeat", json!({})).await;
    if !hb["currentTime"].is_string() {
        cp.peer.fail("Heartbeat", format!("no currentTime in {hb}"));
    }

    // --- a local transaction: authorize, start, meter values (one of them signed), stop
    let mut signed = SignedMeter::new();
    let token = id_token(v, "LOCAL-1", "ISO14443");
    let key = if v16(v) { "idTag" } else { "idToken" };
    let info = if v16(v) {
        "/idTagInfo/status"
    } else {
        "/idTokenInfo/status"
    };
    cp.send_expect("Authorize", json!({ key: token.clone() }), info, "Accepted")
        .await;
    cp.feed("authorized", |d| d["status"] == "Accepted").await;
    // --- a token of a blocked driver account (accounts.rs): answered Blocked, and the
    // peer's library takes the answer.
    {
        let accounts = cp.central.running.backend().accounts().clone();
        let account = accounts
            .sign_up(
                &format!("interop-{}@example.org", cp.id.to_ascii_lowercase()),
                "Interop",
                &ocpp_examples::backend::auth::Secret::new("correct horse battery"),
            )
            .await
            .expect("driver account");
        accounts
            .add_token(account.id, "BLOCKED-1", None)
            .await
            .expect("token");
        accounts
            .set_status(account.id, "blocked")
            .await
            .expect("blocked");
        let blocked = id_token(v, "BLOCKED-1", "ISO14443");
        cp.send_expect("Authorize", json!({ key: blocked }), info, "Blocked")
            .await;
    }
    let plugged = if v16(v) { "Preparing" } else { "Occupied" };
    cp.send("StatusNotification", status_request(v, 1, plugged))
        .await;
    let session;
    if v16(v) {
        let start =
            json!({ "connectorId": 1, "idTag": "LOCAL-1", "meterStart": 1000, "timestamp": now() });
        let r = cp
            .send_expect("StartTransaction", start, "/idTagInfo/status", "Accepted")
            .await;
        let Some(tx) = r["transactionId"].as_i64() else {
            cp.peer
                .fail("StartTransaction", format!("no transactionId in {r}"))
        };
        let started = cp.feed("transaction_started", |_| true).await;
        session = started["sessionId"].as_i64().unwrap_or(-1);
        cp.send("StatusNotification", status_request(v, 1, "Charging"))
            .await;
        // A signed (OCMF) reading next to the plain one: 1.6 SignedData.
        let mut meter = meter_v16(1500, "Sample.Periodic");
        if let Some(values) = meter[0]["sampledValue"].as_array_mut() {
            values.push(json!({
                "value": signed.sign(&tx.to_string(), "Sample.Periodic", 1500),
                "format": "SignedData", "context": "Sample.Periodic",
                "measurand": "Energy.Active.Import.Register", "unit": "Wh",
            }));
        }
        let mv = json!({ "connectorId": 1, "transactionId": tx, "meterValue": meter });
        cp.send("MeterValues", mv).await;
        cp.feed("transaction_updated", |d| energy(d) == 500.0).await;
        let stop = json!({
            "transactionId": tx, "idTag": "LOCAL-1", "meterStop": 2500, "timestamp": now(),
            "reason": "Local", "transactionData": meter_v16(2500, "Transaction.End"),
        });
        cp.send("StopTransaction", stop).await;
        cp.send("StatusNotification", status_request(v, 1, "Finishing"))
            .await;
    } else {
        let started = tx_event(
            "Started",
            "Authorized",
            0,
            json!({ "transactionId": "TX-LOCAL-1", "chargingState": "Charging" }),
            Some(token.clone()),
            Some(meter_2x(1000, "Transaction.Begin")),
        );
        cp.send_expect(
            "TransactionEvent",
            started,
            "/idTokenInfo/status",
            "Accepted",
        )
        .await;
        let started = cp.feed("transaction_started", |_| true).await;
        session = started["sessionId"].as_i64().unwrap_or(-1);
        let updated = tx_event(
            "Updated",
            "MeterValuePeriodic",
            1,
            json!({ "transactionId": "TX-LOCAL-1", "chargingState": "Charging" }),
            None,
            Some(signed.meter_2x(v, "TX-LOCAL-1", 1500)),
        );
        cp.send("TransactionEvent", updated).await;
        cp.feed("transaction_updated", |d| energy(d) == 500.0).await;
        let ended = tx_event(
            "Ended",
            "StopAuthorized",
            2,
            json!({ "transactionId": "TX-LOCAL-1", "stoppedReason": "Local" }),
            Some(token.clone()),
            Some(meter_2x(2500, "Transaction.End")),
        );
        cp.send("TransactionEvent", ended).await;
    }
    cp.feed("transaction_ended", |_| true).await;
    let (status, s) = cp.central.get(&format!("/api/sessions/{session}")).await;
    if status != StatusCode::OK || s["status"] != "completed" || energy(&s) != 1500.0 {
        let what = if v16(v) {
            "StopTransaction"
        } else {
            "TransactionEvent"
        };
        cp.peer.fail(
            what,
            format!("our central stored session {session} as {status} {s}, expected completed with 1500 Wh"),
        );
    }
    cp.send("StatusNotification", status_request(v, 1, "Available"))
        .await;
    signed.check_stored(&mut cp, session).await;

    // --- data transfer to our central (its default: UnknownVendorId)
    let data = if v16(v) {
        json!("ping")
    } else {
        json!({ "ping": 1 })
    };
    let r = cp
        .send(
            "DataTransfer",
            json!({ "vendorId": VENDOR, "messageId": "ping", "data": data }),
        )
        .await;
    if !r["status"].is_string() {
        cp.peer.fail("DataTransfer", format!("no status in {r}"));
    }

    // --- our central calls: remote start, then the charge point starts the transaction
    let start_action = if v16(v) {
        "RemoteStartTransaction"
    } else {
        "RequestStartTransaction"
    };
    let (a, got) = cp
        .call(
            start_action,
            "/start",
            json!({ "evse": 1, "idTag": "REMOTE-1" }),
        )
        .await;
    cp.expect_status(start_action, &a, "Accepted");
    let got_token = if v16(v) {
        &got["idTag"]
    } else {
        &got["idToken"]["idToken"]
    };
    if got_token != "REMOTE-1" {
        cp.peer
            .fail(start_action, format!("the charge point received {got}"));
    }
    cp.send("StatusNotification", status_request(v, 1, plugged))
        .await;
    let remote_tx: String;
    if v16(v) {
        let start = json!({ "connectorId": 1, "idTag": "REMOTE-1", "meterStart": 5000, "timestamp": now() });
        let r = cp
            .send_expect("StartTransaction", start, "/idTagInfo/status", "Accepted")
            .await;
        remote_tx = r["transactionId"].to_string();
        let mv = json!({ "connectorId": 1, "transactionId": r["transactionId"], "meterValue": meter_v16(5200, "Sample.Periodic") });
        cp.send("MeterValues", mv).await;
    } else {
        let remote_id = got["remoteStartId"].clone();
        let started = tx_event(
            "Started",
            "RemoteStart",
            0,
            json!({ "transactionId": "TX-REMOTE-1", "chargingState": "Charging", "remoteStartId": remote_id }),
            Some(id_token(v, "REMOTE-1", "Central")),
            Some(meter_2x(5000, "Transaction.Begin")),
        );
        cp.send("TransactionEvent", started).await;
        remote_tx = "TX-REMOTE-1".into();
        // 2.x MeterValues outside TransactionEvent (e.g. a main meter), once.
        let mv = json!({ "evseId": 1, "meterValue": meter_2x(5200, "Sample.Periodic") });
        cp.send("MeterValues", mv).await;
    }
    cp.feed("transaction_started", |d| {
        d["transactionId"] == remote_tx.as_str()
    })
    .await;

    // ... and remote stop
    let stop_action = if v16(v) {
        "RemoteStopTransaction"
    } else {
        "RequestStopTransaction"
    };
    let (a, got) = cp
        .call(stop_action, "/stop", json!({ "transactionId": remote_tx }))
        .await;
    cp.expect_status(stop_action, &a, "Accepted");
    if got["transactionId"].to_string().trim_matches('"') != remote_tx.trim_matches('"') {
        cp.peer
            .fail(stop_action, format!("the charge point received {got}"));
    }
    if v16(v) {
        let stop = json!({
            "transactionId": remote_tx.parse::<i64>().unwrap_or(0), "meterStop": 5400,
            "timestamp": now(), "reason": "Remote",
        });
        cp.send("StopTransaction", stop).await;
    } else {
        let ended = tx_event(
            "Ended",
            "RemoteStop",
            1,
            json!({ "transactionId": "TX-REMOTE-1", "stoppedReason": "Remote" }),
            None,
            Some(meter_2x(5400, "Transaction.End")),
        );
        cp.send("TransactionEvent", ended).await;
    }
    cp.feed("transaction_ended", |d| {
        d["transactionId"] == remote_tx.as_str()
    })
    .await;

    // --- configuration (1.6) or variables (2.x)
    if v16(v) {
        let (a, got) = cp
            .call(
                "GetConfiguration",
                "/configuration?keys=HeartbeatInterval",
                json!(null),
            )
            .await;
        if a["response"]["configurationKey"][0]["key"] != "HeartbeatInterval"
            || got != json!({ "key": ["HeartbeatInterval"] })
        {
            cp.peer.fail("GetConfiguration", format!("answer {a}"));
        }
        let (a, got) = cp
            .call(
                "ChangeConfiguration",
                "/configuration",
                json!({ "key": "HeartbeatInterval", "value": "120" }),
            )
            .await;
        cp.expect_status("ChangeConfiguration", &a, "Accepted");
        if got != json!({ "key": "HeartbeatInterval", "value": "120" }) {
            cp.peer.fail(
                "ChangeConfiguration",
                format!("the charge point received {got}"),
            );
        }
    } else {
        let var = json!({ "component": "OCPPCommCtrlr", "variable": "HeartbeatInterval" });
        let (a, got) = cp
            .call(
                "GetVariables",
                "/variables/get",
                json!({ "variables": [var] }),
            )
            .await;
        if a["response"]["getVariableResult"][0]["attributeValue"] != "300" {
            cp.peer.fail("GetVariables", format!("answer {a}"));
        }
        if got["getVariableData"][0]["component"]["name"] != "OCPPCommCtrlr" {
            cp.peer
                .fail("GetVariables", format!("the charge point received {got}"));
        }
        let set = json!({ "component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "120" });
        let (a, got) = cp
            .call(
                "SetVariables",
                "/variables/set",
                json!({ "variables": [set] }),
            )
            .await;
        if a["response"]["setVariableResult"][0]["attributeStatus"] != "Accepted" {
            cp.peer.fail("SetVariables", format!("answer {a}"));
        }
        if got["setVariableData"][0]["attributeValue"] != "120" {
            cp.peer
                .fail("SetVariables", format!("the charge point received {got}"));
        }
    }

    // --- trigger message: the charge point answers, then sends what was asked for
    let trigger = if v16(v) {
        json!({ "requestedMessage": "StatusNotification", "connectorId": 1 })
    } else {
        json!({ "requestedMessage": "StatusNotification", "evse": { "id": 1, "connectorId": 1 } })
    };
    cp.call_expect("TriggerMessage", trigger, "Accepted").await;
    cp.send("StatusNotification", status_request(v, 1, "Available"))
        .await;

    // --- a charging profile, clear cache, unlock, change availability, data transfer
    let got = cp
        .call_expect("SetChargingProfile", charging_profile(v), "Accepted")
        .await;
    let limit = if v16(v) {
        got.pointer("/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/1/limit")
    } else {
        got.pointer("/chargingProfile/chargingSchedule/0/chargingSchedulePeriod/1/limit")
    };
    if limit.and_then(Value::as_f64) != Some(10.5) {
        cp.peer.fail(
            "SetChargingProfile",
            format!("the charge point received {got}"),
        );
    }
    typed_smart_charging(&mut cp).await;
    cp.call_expect("ClearCache", json!({}), "Accepted").await;
    reservations_and_local_list(&mut cp).await;
    firmware_and_logs(&mut cp).await;
    device_model_flow(&mut cp).await;
    display_and_customer(&mut cp).await;
    if v == Version::V21 {
        event_stream_flow(&mut cp).await;
    }
    tariffs_flow(&mut cp).await;
    let unlock = if v16(v) {
        json!({ "connectorId": 1 })
    } else {
        json!({ "evseId": 1, "connectorId": 1 })
    };
    cp.call_expect("UnlockConnector", unlock, "Unlocked").await;
    let availability = if v16(v) {
        json!({ "connectorId": 1, "type": "Inoperative" })
    } else {
        json!({ "operationalStatus": "Inoperative", "evse": { "id": 1 } })
    };
    cp.call_expect("ChangeAvailability", availability, "Accepted")
        .await;
    cp.send("StatusNotification", status_request(v, 1, "Unavailable"))
        .await;
    cp.feed("status", |d| d["evse"] == 1 && d["status"] == "Unavailable")
        .await;
    let transfer = if v16(v) {
        json!({ "vendorId": VENDOR, "messageId": "ping", "data": "hello" })
    } else {
        json!({ "vendorId": VENDOR, "messageId": "ping", "data": { "hello": [1, 2] } })
    };
    let got = cp
        .call_expect("DataTransfer", transfer.clone(), "Accepted")
        .await;
    if got != transfer {
        cp.peer
            .fail("DataTransfer", format!("the charge point received {got}"));
    }

    // --- reset: the charge point reboots and boots again
    let (a, _) = cp.call("Reset", "/reset", json!({})).await;
    cp.expect_status("Reset", &a, "Accepted");
    cp.send_expect(
        "BootNotification",
        boot_request(v, "RemoteReset"),
        "/status",
        "Accepted",
    )
    .await;
    cp.feed("booted", |_| true).await;
    cp.send("Heartbeat", json!({})).await;

    // --- every other action of the version, once each way
    cp.every_other_action().await;
    let refused = cp.refused.join(", ");
    let (sent, called) = (cp.sent.len(), cp.called.len());
    cp.peer.quit().await;
    cp.central
        .running
        .shutdown()
        .await
        .expect("our central stops");
    println!(
        "{test}: {sent} actions from their charge point, {called} from our central in {:?}; \
         our central refused with NotSupported: [{refused}]",
        t0.elapsed()
    );
}

// =================================================================== their central system

/// Their central system with our charger connected.
struct TheirCentral {
    lib: Lib,
    v: Version,
    peer: Peer,
    charger: ClientHandle,
    /// Actions their central sent.
    called: BTreeSet<String>,
    /// Their calls our charger refused with CALLERROR NotSupported.
    refused: Vec<String>,
}

impl TheirCentral {
    async fn start(test: &str, lib: Lib, v: Version) -> Option<TheirCentral> {
        let mut peer = Peer::spawn(test, lib, Role::CentralSystem, v, &[]).await?;
        let port = peer.event("listening").await["port"].as_u64().unwrap_or(0);
        for action in charger_actions(v) {
            let answer =
                csms_answer(v, action).unwrap_or_else(|| minimal(v, action, MessageKind::Response));
            check(v, action, MessageKind::Response, &answer);
            peer.answer(action, answer).await;
        }
        let id = format!("OURS-{}-{}", lib.tag(), v.as_str().replace('.', ""));
        let config = StationConfig::new(&id, v)
            .vendor_model("ocpp-rs", "interop")
            .firmware_version("1.0.0")
            .evses(2)
            .seed(11)
            .validate_outgoing(true)
            .call_timeout(Duration::from_secs(15))
            .setting(Setting::SampleInterval, "1");
        let hardware = SimulatedHardware::new(2, Decimal::from(11_000));
        let mut station =
            Station::new(config, Box::new(hardware), Saved::default(), Instant::now());
        station.set_data_transfer_handler(Box::new(|vendor, message, data| {
            if vendor == VENDOR && message == Some("ping") {
                DataTransferReply {
                    status: "Accepted".into(),
                    data: Some(json!({ "pong": data.cloned().unwrap_or(Value::Null) })),
                }
            } else {
                DataTransferReply {
                    status: "UnknownVendorId".into(),
                    data: None,
                }
            }
        }));
        let url = format!("ws://127.0.0.1:{port}/ocpp");
        let charger = ws::spawn(
            station,
            Box::new(MemoryStore::new()),
            ClientConfig::new(url).backoff(Duration::from_millis(50), Duration::from_millis(300)),
        );
        let connected = peer.event("connected").await;
        if connected["identity"] != id.as_str() || connected["protocol"] != v.subprotocol() {
            peer.fail("(connect)", format!("our charger connected as {connected}"));
        }
        Some(TheirCentral {
            lib,
            v,
            peer,
            charger,
            called: BTreeSet::new(),
            refused: Vec::new(),
        })
    }

    /// Their central sends `action` to our charger: our charger's answer.
    async fn call(&mut self, action: &str, payload: Value) -> Value {
        match self.try_call(action, payload).await {
            Ok(r) => r,
            Err(e) => self.peer.fail(action, e.message),
        }
    }

    async fn try_call(&mut self, action: &str, payload: Value) -> Result<Value, Failed> {
        check(self.v, action, MessageKind::Request, &payload);
        self.called.insert(action.to_owned());
        self.peer
            .call(action, payload)
            .await
            .map_err(|e| Failed::from_peer(&e, "our charger"))
    }

    /// [`TheirCentral::call`], expecting our charger's `status`.
    async fn call_expect(&mut self, action: &str, payload: Value, expected: &str) -> Value {
        let r = self.call(action, payload).await;
        if r["status"] != expected {
            self.peer.fail(
                action,
                format!(
                    "our charger answered {}, expected {expected:?}",
                    r["status"]
                ),
            );
        }
        r
    }

    /// The next message of `action` our charger sent that satisfies `pred`, and check that
    /// their central answered it.
    async fn sent(&mut self, action: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.peer.incoming(action, pred).await
    }

    fn hardware(&self, event: HardwareEvent) {
        self.charger
            .hardware(event)
            .expect("our charger takes the input");
    }

    /// The next station event satisfying `pred`.
    async fn station_event(
        &mut self,
        what: &str,
        pred: impl Fn(&StationEvent) -> bool,
    ) -> StationEvent {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.charger.events.recv()).await {
                Ok(Some(ClientEvent::Station(e))) if pred(&e) => return e,
                Ok(Some(_)) => {}
                Ok(None) => self.peer.fail(what, "our charger's task ended"),
                Err(_) => self.peer.fail(
                    what,
                    format!("our charger reported no {what} within {WAIT:?}"),
                ),
            }
        }
    }

    /// Every central-system action of the version not sent yet, minimal payloads: answered
    /// with a behaviour or the specified refusal (CALLERROR NotSupported when the response
    /// has no status to refuse with). All failures are reported together.
    async fn every_other_action(&mut self) {
        let mut failures = Vec::new();
        for action in central_actions(self.v) {
            if self.called.contains(action) || action == "Reset" {
                continue;
            }
            let payload = peer_payload(self.lib, self.v, action)
                .unwrap_or_else(|| minimal(self.v, action, MessageKind::Request));
            match self.try_call(action, payload).await {
                Ok(_) => {}
                Err(e) if e.is_not_supported() => self.refused.push(action.to_owned()),
                Err(e) => failures.push(format!("{action}: {}", e.message)),
            }
        }
        if !failures.is_empty() {
            self.peer
                .fail("(every other action)", failures.join("\n  "));
        }
    }
}

/// How their central answers our charger (`None`: a minimal valid answer).
/// (2.1) Their central against our charger's periodic event streams: a monitor with
/// `periodicEventStream` makes our charger send OpenPeriodicEventStream; their
/// GetPeriodicEventStream lists it and AdjustPeriodicEventStream changes it; clearing the
/// monitor makes our charger send ClosePeriodicEventStream. Our charger's
/// NotifyPeriodicEventStream SENDs reach their library, which does not take SEND frames
/// (interop/README.md): the connection must live on regardless.
async fn event_streams_of_our_charger(cs: &mut TheirCentral) {
    cs.peer
        .answer("OpenPeriodicEventStream", json!({ "status": "Accepted" }))
        .await;
    cs.peer.answer("ClosePeriodicEventStream", json!({})).await;
    let r = cs
        .call(
            "SetVariableMonitoring",
            json!({ "setMonitoringData": [{ "component": { "name": "EVSE", "evse": { "id": 1 } },
                "variable": { "name": "Power" }, "type": "Periodic", "value": 1, "severity": 9,
                "periodicEventStream": { "values": 1 } }] }),
        )
        .await;
    let id = r["setMonitoringResult"][0]["id"].clone();
    if r["setMonitoringResult"][0]["status"] != "Accepted" || !id.is_i64() {
        cs.peer
            .fail("SetVariableMonitoring", format!("our charger answered {r}"));
    }
    let open = cs
        .sent("OpenPeriodicEventStream", |p| {
            p["constantStreamData"]["variableMonitoringId"] == id
        })
        .await;
    if open["constantStreamData"]["params"]["values"] != 1 {
        cs.peer.fail(
            "OpenPeriodicEventStream",
            format!("our charger sent {open}"),
        );
    }
    // Our charger takes the answer, then lists the stream as open.
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = cs.call("GetPeriodicEventStream", json!({})).await;
        if listed["constantStreamData"][0]["id"] == id {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if listed["constantStreamData"][0]["id"] != id {
        cs.peer.fail(
            "GetPeriodicEventStream",
            format!("our charger answered {listed}"),
        );
    }
    // Samples flow as SENDs for a while (a sample a second).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    cs.call_expect(
        "AdjustPeriodicEventStream",
        json!({ "id": id, "params": { "values": 2 } }),
        "Accepted",
    )
    .await;
    let r = cs
        .call(
            "AdjustPeriodicEventStream",
            json!({ "id": 999_999, "params": { "values": 2 } }),
        )
        .await;
    if r["status"] != "Rejected" || r["statusInfo"]["reasonCode"] != "UnknownStream" {
        cs.peer.fail(
            "AdjustPeriodicEventStream",
            format!("our charger answered {r}"),
        );
    }
    let r = cs
        .call("ClearVariableMonitoring", json!({ "id": [id] }))
        .await;
    if r["clearMonitoringResult"][0]["status"] != "Accepted" {
        cs.peer.fail(
            "ClearVariableMonitoring",
            format!("our charger answered {r}"),
        );
    }
    cs.sent("ClosePeriodicEventStream", |p| p["id"] == id).await;
}

fn csms_answer(v: Version, action: &str) -> Option<Value> {
    Some(match action {
        "BootNotification" => json!({ "status": "Accepted", "currentTime": now(), "interval": 1 }),
        "Heartbeat" => json!({ "currentTime": now() }),
        "Authorize" if v16(v) => json!({ "idTagInfo": { "status": "Accepted" } }),
        "Authorize" => json!({ "idTokenInfo": { "status": "Accepted" } }),
        "StartTransaction" => {
            json!({ "idTagInfo": { "status": "Accepted" }, "transactionId": 4711 })
        }
        "StopTransaction" => json!({ "idTagInfo": { "status": "Accepted" } }),
        "TransactionEvent" => json!({ "idTokenInfo": { "status": "Accepted" } }),
        "DataTransfer" if v16(v) => json!({ "status": "Accepted", "data": "pong" }),
        "DataTransfer" => json!({ "status": "Accepted", "data": { "pong": true } }),
        _ => return None,
    })
}

/// The wall time `minutes` from now, RFC 3339.
fn now_plus_minutes(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn is(v: &Value, key: &str, expected: impl Into<Value>) -> bool {
    v[key] == expected.into()
}

/// Their central system against our charger: the whole flow, then every other action.
async fn their_central(test: &str, lib: Lib, v: Version) {
    let t0 = Instant::now();
    let Some(mut cs) = TheirCentral::start(test, lib, v).await else {
        return;
    };
    let evse_key = if v16(v) { "connectorId" } else { "evseId" };
    let status_key = if v16(v) { "status" } else { "connectorStatus" };

    // --- boot, status, heartbeat (interval 1 s from their boot answer)
    let boot = cs.sent("BootNotification", |_| true).await;
    let vendor = if v16(v) {
        &boot["chargePointVendor"]
    } else {
        &boot["chargingStation"]["vendorName"]
    };
    if vendor != "ocpp-rs" {
        cs.peer
            .fail("BootNotification", format!("they received {boot}"));
    }
    cs.station_event("BootAccepted", |e| {
        matches!(e, StationEvent::BootAccepted { .. })
    })
    .await;
    cs.sent("StatusNotification", |p| {
        is(p, evse_key, 1) && is(p, status_key, "Available")
    })
    .await;
    cs.sent("Heartbeat", |_| true).await;

    // --- configuration / variables: a slower heartbeat from now on
    if v16(v) {
        cs.call_expect(
            "ChangeConfiguration",
            json!({ "key": "HeartbeatInterval", "value": "120" }),
            "Accepted",
        )
        .await;
        let r = cs
            .call(
                "GetConfiguration",
                json!({ "key": ["HeartbeatInterval", "NoSuchKey"] }),
            )
            .await;
        if r["configurationKey"][0]["value"] != "120" || r["unknownKey"] != json!(["NoSuchKey"]) {
            cs.peer
                .fail("GetConfiguration", format!("our charger answered {r}"));
        }
    } else {
        let var = json!({ "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": "HeartbeatInterval" } });
        let mut set = var.clone();
        set["attributeValue"] = json!("120");
        let r = cs
            .call("SetVariables", json!({ "setVariableData": [set] }))
            .await;
        if r["setVariableResult"][0]["attributeStatus"] != "Accepted" {
            cs.peer
                .fail("SetVariables", format!("our charger answered {r}"));
        }
        let r = cs
            .call("GetVariables", json!({ "getVariableData": [var] }))
            .await;
        if r["getVariableResult"][0]["attributeValue"] != "120" {
            cs.peer
                .fail("GetVariables", format!("our charger answered {r}"));
        }
        // A base report: Accepted, then our charger's NotifyReport (one part here).
        cs.call_expect(
            "GetBaseReport",
            json!({ "requestId": 42, "reportBase": "SummaryInventory" }),
            "Accepted",
        )
        .await;
        cs.sent("NotifyReport", |p| {
            is(p, "requestId", 42) && p["tbc"] == false && p["seqNo"] == 0
        })
        .await;
        // A monitor; a value set past its threshold raises a NotifyEvent.
        let r = cs
            .call(
                "SetVariableMonitoring",
                json!({ "setMonitoringData": [{ "component": { "name": "OCPPCommCtrlr" },
                    "variable": { "name": "OfflineThreshold" }, "type": "UpperThreshold",
                    "value": 100, "severity": 2 }] }),
            )
            .await;
        if r["setMonitoringResult"][0]["status"] != "Accepted" {
            cs.peer
                .fail("SetVariableMonitoring", format!("our charger answered {r}"));
        }
        let mut over = json!({ "component": { "name": "OCPPCommCtrlr" }, "variable": { "name": "OfflineThreshold" } });
        over["attributeValue"] = json!("200");
        cs.call("SetVariables", json!({ "setVariableData": [over] }))
            .await;
        cs.sent("NotifyEvent", |p| {
            p["eventData"][0]["trigger"] == "Alerting" && p["eventData"][0]["actualValue"] == "200"
        })
        .await;
        if v == Version::V21 {
            event_streams_of_our_charger(&mut cs).await;
        }
    }

    // --- a local transaction: plug, present a token, meter values; their central stops it
    cs.hardware(HardwareEvent::CablePlugged { evse: 1 });
    let plugged = if v16(v) { "Preparing" } else { "Occupied" };
    cs.sent("StatusNotification", |p| {
        is(p, evse_key, 1) && is(p, status_key, plugged)
    })
    .await;
    cs.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: "LOCAL-1".into(),
    });
    let tx1: Value;
    if v16(v) {
        cs.sent("Authorize", |p| is(p, "idTag", "LOCAL-1")).await;
        cs.sent("StartTransaction", |p| {
            is(p, "connectorId", 1) && is(p, "idTag", "LOCAL-1")
        })
        .await;
        tx1 = json!(4711);
        cs.sent("StatusNotification", |p| {
            is(p, "connectorId", 1) && is(p, "status", "Charging")
        })
        .await;
        cs.sent("MeterValues", |p| is(p, "transactionId", 4711))
            .await;
        cs.call_expect(
            "RemoteStopTransaction",
            json!({ "transactionId": 4711 }),
            "Accepted",
        )
        .await;
        cs.sent("StopTransaction", |p| {
            is(p, "transactionId", 4711) && is(p, "reason", "Remote")
        })
        .await;
    } else {
        cs.sent("Authorize", |p| p["idToken"]["idToken"] == "LOCAL-1")
            .await;
        let started = cs
            .sent("TransactionEvent", |p| is(p, "eventType", "Started"))
            .await;
        tx1 = started["transactionInfo"]["transactionId"].clone();
        let tx = tx1.clone();
        cs.sent("TransactionEvent", |p| {
            is(p, "eventType", "Updated")
                && p["transactionInfo"]["transactionId"] == tx
                && p["meterValue"].is_array()
        })
        .await;
        cs.call_expect(
            "RequestStopTransaction",
            json!({ "transactionId": tx1 }),
            "Accepted",
        )
        .await;
        let tx = tx1.clone();
        cs.sent("TransactionEvent", |p| {
            is(p, "eventType", "Ended")
                && p["transactionInfo"]["transactionId"] == tx
                && p["transactionInfo"]["stoppedReason"] == "Remote"
        })
        .await;
    }
    cs.hardware(HardwareEvent::CableUnplugged { evse: 1 });
    cs.sent("StatusNotification", |p| {
        is(p, evse_key, 1) && is(p, status_key, "Available")
    })
    .await;

    // --- remote start; the driver plugs in; unlock
    if v16(v) {
        cs.peer
            .answer(
                "StartTransaction",
                json!({ "idTagInfo": { "status": "Accepted" }, "transactionId": 4712 }),
            )
            .await;
        cs.call_expect(
            "RemoteStartTransaction",
            json!({ "connectorId": 1, "idTag": "REMOTE-1" }),
            "Accepted",
        )
        .await;
        cs.hardware(HardwareEvent::CablePlugged { evse: 1 });
        cs.sent("StartTransaction", |p| is(p, "idTag", "REMOTE-1"))
            .await;
        // 1.6: unlocking stops the transaction (reason UnlockCommand).
        cs.call_expect("UnlockConnector", json!({ "connectorId": 1 }), "Unlocked")
            .await;
        cs.sent("StopTransaction", |p| {
            is(p, "transactionId", 4712) && is(p, "reason", "UnlockCommand")
        })
        .await;
        cs.hardware(HardwareEvent::CableUnplugged { evse: 1 });
    } else {
        let start = json!({
            "evseId": 1, "remoteStartId": 7,
            "idToken": { "idToken": "REMOTE-1", "type": "Central" },
        });
        cs.call_expect("RequestStartTransaction", start, "Accepted")
            .await;
        cs.hardware(HardwareEvent::CablePlugged { evse: 1 });
        let started = cs
            .sent("TransactionEvent", |p| {
                is(p, "eventType", "Started") && p["transactionInfo"]["remoteStartId"] == 7
            })
            .await;
        let tx2 = started["transactionInfo"]["transactionId"].clone();
        if tx2 == tx1 {
            cs.peer
                .fail("TransactionEvent", "two transactions with one id");
        }
        // 2.x: no unlocking during an authorized transaction (F05).
        cs.call_expect(
            "UnlockConnector",
            json!({ "evseId": 1, "connectorId": 1 }),
            "OngoingAuthorizedTransaction",
        )
        .await;
        cs.hardware(HardwareEvent::CableUnplugged { evse: 1 });
        cs.sent("TransactionEvent", |p| {
            is(p, "eventType", "Ended") && p["transactionInfo"]["transactionId"] == tx2
        })
        .await;
    }
    cs.sent("StatusNotification", |p| {
        is(p, evse_key, 1) && is(p, status_key, "Available")
    })
    .await;
    // An idle connector unlocks.
    let unlock = if v16(v) {
        json!({ "connectorId": 2 })
    } else {
        json!({ "evseId": 2, "connectorId": 1 })
    };
    cs.call_expect("UnlockConnector", unlock, "Unlocked").await;

    // --- trigger message: each triggered message arrives
    cs.peer.forget();
    let (evse2, evse1) = if v16(v) {
        (json!({ "connectorId": 2 }), json!({ "connectorId": 1 }))
    } else {
        (
            json!({ "evse": { "id": 2, "connectorId": 1 } }),
            json!({ "evse": { "id": 1 } }),
        )
    };
    let mut trig = evse2.clone();
    trig["requestedMessage"] = json!("StatusNotification");
    cs.call_expect("TriggerMessage", trig, "Accepted").await;
    cs.sent("StatusNotification", |p| is(p, evse_key, 2)).await;
    let mut trig = evse1.clone();
    trig["requestedMessage"] = json!("MeterValues");
    cs.call_expect("TriggerMessage", trig, "Accepted").await;
    cs.sent("MeterValues", |p| is(p, evse_key, 1)).await;
    for message in ["Heartbeat", "FirmwareStatusNotification"] {
        cs.call_expect(
            "TriggerMessage",
            json!({ "requestedMessage": message }),
            "Accepted",
        )
        .await;
        cs.sent(message, |_| true).await;
    }
    let status_message = if v16(v) {
        "DiagnosticsStatusNotification"
    } else {
        "LogStatusNotification"
    };
    cs.call_expect(
        "TriggerMessage",
        json!({ "requestedMessage": status_message }),
        "Accepted",
    )
    .await;
    cs.sent(status_message, |p| is(p, "status", "Idle")).await;
    if v16(v) {
        cs.call_expect(
            "TriggerMessage",
            json!({ "requestedMessage": "BootNotification" }),
            "Accepted",
        )
        .await;
        cs.sent("BootNotification", |_| true).await;
    } else {
        // 2.x F06: a BootNotification that was accepted is not triggered again.
        cs.call_expect(
            "TriggerMessage",
            json!({ "requestedMessage": "BootNotification" }),
            "Rejected",
        )
        .await;
    }

    // --- a charging profile: stored, applied (16 A now), read back as the composite
    // schedule, cleared
    cs.call_expect("SetChargingProfile", charging_profile(v), "Accepted")
        .await;
    let (composite, clear) = if v16(v) {
        (
            json!({ "connectorId": 1, "duration": 600, "chargingRateUnit": "A" }),
            json!({ "id": 1 }),
        )
    } else {
        (
            json!({ "evseId": 1, "duration": 600, "chargingRateUnit": "A" }),
            json!({ "chargingProfileId": 1 }),
        )
    };
    let r = cs
        .call_expect("GetCompositeSchedule", composite, "Accepted")
        .await;
    let schedule = if v16(v) {
        &r["chargingSchedule"]
    } else {
        &r["schedule"]
    };
    if schedule["chargingSchedulePeriod"][0]["limit"].as_f64() != Some(16.0) {
        cs.peer
            .fail("GetCompositeSchedule", format!("our charger answered {r}"));
    }
    cs.call_expect("ClearChargingProfile", clear.clone(), "Accepted")
        .await;
    cs.call_expect("ClearChargingProfile", clear, "Unknown")
        .await;
    cs.call_expect("ClearCache", json!({}), "Accepted").await;

    // --- a reservation of EVSE 2 (Reserved), cancelled; the local list
    let expires = now_plus_minutes(30);
    let reserve = if v16(v) {
        json!({ "connectorId": 2, "expiryDate": expires, "idTag": "INTEROP", "reservationId": 41 })
    } else {
        json!({ "id": 41, "evseId": 2, "expiryDateTime": expires,
                "idToken": { "idToken": "INTEROP", "type": "Central" } })
    };
    cs.call_expect("ReserveNow", reserve, "Accepted").await;
    let status_key = if v16(v) { "status" } else { "connectorStatus" };
    cs.sent("StatusNotification", |p| p[status_key] == "Reserved")
        .await;
    cs.call_expect(
        "CancelReservation",
        json!({ "reservationId": 41 }),
        "Accepted",
    )
    .await;
    cs.call_expect(
        "CancelReservation",
        json!({ "reservationId": 41 }),
        "Rejected",
    )
    .await;
    let list = if v16(v) {
        json!({ "listVersion": 3, "updateType": "Full", "localAuthorizationList": [
            { "idTag": "INTEROP", "idTagInfo": { "status": "Accepted" } }] })
    } else {
        json!({ "versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
            { "idToken": { "idToken": "INTEROP", "type": "Central" }, "idTokenInfo": { "status": "Accepted" } }] })
    };
    cs.call_expect("SendLocalList", list, "Accepted").await;
    let r = cs.call("GetLocalListVersion", json!({})).await;
    let version = if v16(v) {
        &r["listVersion"]
    } else {
        &r["versionNumber"]
    };
    if version != 3 {
        cs.peer
            .fail("GetLocalListVersion", format!("our charger answered {r}"));
    }

    // --- change availability of EVSE 2, and back
    for (op, status) in [("Inoperative", "Unavailable"), ("Operative", "Available")] {
        let p = if v16(v) {
            json!({ "connectorId": 2, "type": op })
        } else {
            json!({ "operationalStatus": op, "evse": { "id": 2 } })
        };
        cs.call_expect("ChangeAvailability", p, "Accepted").await;
        cs.sent("StatusNotification", |p| {
            is(p, evse_key, 2) && is(p, status_key, status)
        })
        .await;
    }

    // --- data transfer, both ways
    let data = if v16(v) {
        json!("hello")
    } else {
        json!({ "hello": [1, 2] })
    };
    let r = cs
        .call_expect(
            "DataTransfer",
            json!({ "vendorId": VENDOR, "messageId": "ping", "data": data }),
            "Accepted",
        )
        .await;
    if r.get("data").is_none() {
        cs.peer
            .fail("DataTransfer", format!("our charger answered {r}"));
    }
    cs.call_expect(
        "DataTransfer",
        json!({ "vendorId": "com.example.unknown" }),
        "UnknownVendorId",
    )
    .await;
    cs.charger
        .with(|s, now| {
            s.data_transfer(now, VENDOR, Some("ping"), Some(json!({ "n": 1 })));
        })
        .expect("our charger takes the command");
    cs.sent("DataTransfer", |p| is(p, "vendorId", VENDOR)).await;
    let e = cs
        .station_event("DataTransferResult", |e| {
            matches!(e, StationEvent::DataTransferResult { .. })
        })
        .await;
    if !matches!(&e, StationEvent::DataTransferResult { status, .. } if status == "Accepted") {
        cs.peer
            .fail("DataTransfer", format!("our charger got {e:?}"));
    }

    // --- every other central-system action, once
    cs.every_other_action().await;

    // --- reset last: our charger reboots and boots again
    let reset = if v16(v) {
        json!({ "type": "Soft" })
    } else {
        json!({ "type": "Immediate" })
    };
    cs.peer.forget();
    cs.call_expect("Reset", reset, "Accepted").await;
    cs.station_event("Rebooting", |e| matches!(e, StationEvent::Rebooting(_)))
        .await;
    let boot = cs.sent("BootNotification", |_| true).await;
    if !v16(v) && boot["reason"] != "RemoteReset" {
        cs.peer
            .fail("Reset", format!("our charger booted with {boot}"));
    }
    let refused = cs.refused.join(", ");
    let called = cs.called.len();
    let _ = cs.charger.shutdown().await;
    cs.peer.quit().await;
    println!(
        "{test}: {called} actions from their central in {:?}; our charger refused with \
         NotSupported: [{refused}]",
        t0.elapsed()
    );
}

// =================================================================== over TLS

/// Their charge point against our central system over `wss://` with security profile 3: the
/// central system's certificate checked by Python's `ssl` against a CA file, the charge
/// point's client certificate (CN = its identity) checked by ours; BootNotification and
/// Heartbeat over the encrypted connection.
async fn their_charge_point_over_wss(test: &str, lib: Lib, v: Version) {
    if !peer::available(test, lib, Role::ChargePoint) {
        return;
    }
    let pki = ocpp_central::testing::pki::Pki::new("interop CSMS CA");
    let id = format!("{}-TLS-{}", lib.tag(), v.as_str().replace('.', ""));
    let files = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).expect("certificate file");
        path
    };
    let server = pki.server(&["localhost", "127.0.0.1"]);
    let client = pki.client(&id);
    let ca = write("ca.pem", &pki.ca_pem);
    let (server_cert, server_key) = (
        write("server.pem", &server.cert_pem),
        write("server.key", &server.key_pem),
    );
    let (client_cert, client_key) = (
        write("cp.pem", &client.cert_pem),
        write("cp.key", &client.key_pem),
    );
    let central = OurCentral::start_with(|args| {
        args.tls_cert = Some(server_cert);
        args.tls_key = Some(server_key);
        args.client_ca = Some(ca.clone());
        args.security_profile = Some(3);
    })
    .await;
    assert_eq!(central.running.ocpp_scheme(), "wss");
    let url = format!(
        "wss://localhost:{}/ocpp/{id}",
        central.running.ocpp_addr().port()
    );
    let path = |p: &std::path::Path| p.display().to_string();
    let args = [
        "--url".into(),
        url,
        "--ca".into(),
        path(&ca),
        "--client-cert".into(),
        path(&client_cert),
        "--client-key".into(),
        path(&client_key),
    ];
    let Some(mut peer) = Peer::spawn_as(test, lib, Role::ChargePoint, v, "-wss", &args).await
    else {
        return;
    };
    let connected = peer.event("connected").await;
    if connected["protocol"] != v.subprotocol() {
        peer.fail("(connect)", format!("negotiated {}", connected["protocol"]));
    }
    let boot = if v16(v) {
        json!({ "chargePointVendor": "ocpp-rs", "chargePointModel": "tls" })
    } else {
        json!({ "reason": "PowerUp", "chargingStation": { "vendorName": "ocpp-rs", "model": "tls" } })
    };
    match peer.call("BootNotification", boot).await {
        Ok(answer) if answer["status"] == "Accepted" => {}
        Ok(answer) => peer.fail("BootNotification", format!("our central answered {answer}")),
        Err(e) => peer.fail("BootNotification", format!("failed over wss: {e}")),
    }
    match peer.call("Heartbeat", json!({})).await {
        Ok(answer) if answer["currentTime"].is_string() => {}
        Ok(answer) => peer.fail("Heartbeat", format!("our central answered {answer}")),
        Err(e) => peer.fail("Heartbeat", format!("failed over wss: {e}")),
    }
    peer.quit().await;
    central.running.shutdown().await.expect("shutdown");
}

/// Their charge point on a cluster of two of our nodes (one PostgreSQL database, one Redis):
/// it connects to node a; the operator works on node b, whose live feed shows its boot and
/// whose API reaches it through node a (Reset with the version's words, the configuration or
/// variables read), the peer answering as on one node.
async fn their_charge_point_on_a_cluster(test: &str, lib: Lib, v: Version) {
    if !peer::available(test, lib, Role::ChargePoint) {
        return;
    }
    let Ok(redis) = std::env::var("OCPP_TEST_REDIS_URL") else {
        println!(
            "\n*** SKIPPED {test}: OCPP_TEST_REDIS_URL is not set (scripts/test.sh starts Redis) ***\n"
        );
        return;
    };
    let Some(database) = postgres::postgres_database(test).await else {
        return;
    };
    let node = |id: &str| {
        let mut args = CentralArgs::with_database(database.clone()).ephemeral();
        args.call_timeout = 10;
        args.redis_url = Some(redis.clone());
        args.node_id = Some(id.into());
        args.cluster_name = format!("interop{}-{}", std::process::id(), lib.tag())
            + v.as_str().replace('.', "").as_str();
        args.cluster_lease_ms = 2000;
        args
    };
    let a = start(&node("a")).await.expect("node a starts");
    let b = start(&node("b")).await.expect("node b starts");
    let api_b = Api::admin(&b).await;
    let mut feed_b = b.backend().subscribe();
    let id = format!("{}-CL-{}", lib.tag(), v.as_str().replace('.', ""));
    let url = format!("ws://{}/ocpp/{id}", a.ocpp_addr());
    let Some(mut peer) = Peer::spawn_as(
        test,
        lib,
        Role::ChargePoint,
        v,
        "-cluster",
        &["--url".into(), url],
    )
    .await
    else {
        return;
    };
    peer.event("connected").await;
    let read = if v16(v) {
        "GetConfiguration"
    } else {
        "GetVariables"
    };
    for action in ["Reset", read] {
        let answer =
            cp_answer(v, action).unwrap_or_else(|| minimal(v, action, MessageKind::Response));
        peer.answer(action, answer).await;
    }
    match peer
        .call("BootNotification", boot_request(v, "PowerUp"))
        .await
    {
        Ok(answer) if answer["status"] == "Accepted" => {}
        Ok(answer) => peer.fail("BootNotification", format!("node a answered {answer}")),
        Err(e) => peer.fail("BootNotification", format!("failed: {e}")),
    }
    if let Err(e) = wait_for(&mut feed_b, &id, "booted", WAIT, |_| true).await {
        peer.fail("(live feed)", format!("node b's feed: {e}"));
    }
    let (status, answer) = api_b
        .post(
            &format!("/api/chargers/{id}/reset"),
            json!({ "type": "Soft" }),
        )
        .await;
    if status != StatusCode::OK || answer["status"] != "Accepted" {
        peer.fail("Reset", format!("through node b: HTTP {status}: {answer}"));
    }
    let reset = peer.incoming("Reset", |_| true).await;
    let words = if v16(v) { "Soft" } else { "OnIdle" };
    if reset["type"] != words {
        peer.fail("Reset", format!("received {reset}, expected type {words}"));
    }
    let (status, answer) = if v16(v) {
        api_b
            .get(&format!("/api/chargers/{id}/configuration"))
            .await
    } else {
        api_b
            .post(
                &format!("/api/chargers/{id}/variables/get"),
                json!({ "variables": [{ "component": "OCPPCommCtrlr", "variable": "HeartbeatInterval" }] }),
            )
            .await
    };
    if status != StatusCode::OK {
        peer.fail(read, format!("through node b: HTTP {status}: {answer}"));
    }
    peer.incoming(read, |_| true).await;
    peer.quit().await;
    b.shutdown().await.expect("shutdown b");
    a.shutdown().await.expect("shutdown a");
}

/// Their charge point against our central system keeping the compression context between
/// messages (`--compression-context-takeover`): the same message again is sent as a short
/// reference to the previous one, which only an inflater that kept its window reads.
async fn their_charge_point_with_context_takeover(test: &str, lib: Lib, v: Version) {
    if !peer::available(test, lib, Role::ChargePoint) {
        return;
    }
    let central = OurCentral::start_with(|a| a.compression_context_takeover = true).await;
    let id = format!("{}-CTX-{}", lib.tag(), v.as_str().replace('.', ""));
    let url = format!("ws://{}/ocpp/{id}", central.running.ocpp_addr());
    let args = ["--url".to_owned(), url];
    let Some(mut peer) = Peer::spawn_as(test, lib, Role::ChargePoint, v, "-ctx", &args).await
    else {
        return;
    };
    let connected = peer.event("connected").await;
    // Python websockets offers `permessage-deflate; client_max_window_bits`: with context
    // takeover there is nothing to answer but the name.
    if connected["extensions"] != "permessage-deflate" {
        peer.fail(
            "(connect)",
            format!("negotiated {}", connected["extensions"]),
        );
    }
    match peer
        .call("BootNotification", boot_request(v, "PowerUp"))
        .await
    {
        Ok(answer) if answer["status"] == "Accepted" => {}
        Ok(answer) => peer.fail("BootNotification", format!("our central answered {answer}")),
        Err(e) => peer.fail("BootNotification", e.to_string()),
    }
    let compressed = central
        .running
        .backend()
        .chargers()
        .get(&id)
        .is_some_and(|h| h.compressed());
    if !compressed {
        peer.fail(
            "(connect)",
            "our server did not record the compression".to_owned(),
        );
    }
    let data = "meter value 0001 ".repeat(40);
    let transfer = if v16(v) {
        json!({ "vendorId": "ocpp-rs", "data": data })
    } else {
        json!({ "vendorId": "ocpp-rs", "data": { "text": data } })
    };
    for round in 0..3 {
        for (action, payload) in [("Heartbeat", json!({})), ("DataTransfer", transfer.clone())] {
            if let Err(e) = peer.call(action, payload).await {
                peer.fail(action, format!("round {round}: {}", e));
            }
        }
    }
    peer.quit().await;
    central.running.shutdown().await.expect("shutdown");
}

// =================================================================== the tests

macro_rules! interop_tests {
    ($($name:ident: $flow:ident($lib:expr, $version:expr);)*) => {$(
        #[tokio::test]
        async fn $name() {
            $flow(stringify!($name), $lib, $version).await;
        }
    )*};
}

interop_tests! {
    python_ocpp_charge_point_v16: their_charge_point(Lib::PythonOcpp, Version::V16);
    python_ocpp_charge_point_v201: their_charge_point(Lib::PythonOcpp, Version::V201);
    python_ocpp_charge_point_v21: their_charge_point(Lib::PythonOcpp, Version::V21);
    ocpp_rpc_charge_point_v16: their_charge_point(Lib::OcppRpc, Version::V16);
    ocpp_rpc_charge_point_v201: their_charge_point(Lib::OcppRpc, Version::V201);
    ocpp_rpc_charge_point_v21: their_charge_point(Lib::OcppRpc, Version::V21);
    python_ocpp_central_system_v16: their_central(Lib::PythonOcpp, Version::V16);
    python_ocpp_central_system_v201: their_central(Lib::PythonOcpp, Version::V201);
    python_ocpp_central_system_v21: their_central(Lib::PythonOcpp, Version::V21);
    ocpp_rpc_central_system_v16: their_central(Lib::OcppRpc, Version::V16);
    ocpp_rpc_central_system_v201: their_central(Lib::OcppRpc, Version::V201);
    ocpp_rpc_central_system_v21: their_central(Lib::OcppRpc, Version::V21);
    python_ocpp_charge_point_v16_over_wss: their_charge_point_over_wss(Lib::PythonOcpp, Version::V16);
    python_ocpp_charge_point_v201_over_wss: their_charge_point_over_wss(Lib::PythonOcpp, Version::V201);
    python_ocpp_charge_point_v16_on_a_cluster: their_charge_point_on_a_cluster(Lib::PythonOcpp, Version::V16);
    python_ocpp_charge_point_v201_on_a_cluster: their_charge_point_on_a_cluster(Lib::PythonOcpp, Version::V201);
    ocpp_rpc_charge_point_v16_on_a_cluster: their_charge_point_on_a_cluster(Lib::OcppRpc, Version::V16);
    ocpp_rpc_charge_point_v201_on_a_cluster: their_charge_point_on_a_cluster(Lib::OcppRpc, Version::V201);
    python_ocpp_charge_point_v16_context_takeover: their_charge_point_with_context_takeover(Lib::PythonOcpp, Version::V16);
    python_ocpp_charge_point_v201_context_takeover: their_charge_point_with_context_takeover(Lib::PythonOcpp, Version::V201);
}
