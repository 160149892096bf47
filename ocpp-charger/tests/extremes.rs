//! A central system that sends extreme values: intervals of 0, negative or beyond 64 bits,
//! ids at `i32::MAX`, lists of 3,000 elements. Each gets its exact, schema-correct answer, and
//! afterwards the station still heartbeats at a sane interval, reconnects and does not spin.
//! All on virtual time.

use std::time::Duration;

use ocpp_charger::station::{MAX_BOOT_RETRY, MAX_QUEUED_CALLS, MIN_BOOT_RETRY, MIN_RETRY};
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{BootState, MemoryStore, ResetKind, Setting, StationEvent, Version};
use serde_json::{json, Value};

const ALL: [Version; 3] = [Version::V16, Version::V201, Version::V21];
const V2X: [Version; 2] = [Version::V201, Version::V21];
const MAX: i64 = i32::MAX as i64;
/// Beyond 64 bits: `serde_json::Value` cannot even hold it, so it goes out verbatim.
const HUGE: &str = "99999999999999999999";

fn connected(v: Version) -> VirtualPair {
    connected_with(MockCentral::new(v))
}

fn connected_with(central: MockCentral) -> VirtualPair {
    let clock = TestClock::new();
    let v = central_version(&central);
    let mut pair = VirtualPair::with(
        test_config(v, &clock),
        Box::new(MemoryStore::new()),
        central,
        clock,
    );
    pair.connect();
    pair
}

fn central_version(central: &MockCentral) -> Version {
    central.ep.version()
}

/// The `status` of the station's CALLRESULT to call `id`.
fn status(pair: &VirtualPair, id: &str) -> String {
    match pair.central.answer(id) {
        Some(Ok(v)) => v["status"].as_str().unwrap_or_default().to_owned(),
        other => panic!("call {id}: {other:?}"),
    }
}

fn result(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("call {id}: {other:?}"),
    }
}

/// The `status` of the station's CALLRESULT, or `CALLERROR <code>`.
fn answer(pair: &VirtualPair, id: &str) -> String {
    match pair.central.answer(id) {
        Some(Ok(v)) => v["status"].as_str().unwrap_or_default().to_owned(),
        Some(Err(code)) => format!("CALLERROR {code}"),
        None => panic!("call {id}: no answer"),
    }
}

/// The CALLERROR code the station answered call `id` with.
fn error(pair: &VirtualPair, id: &str) -> String {
    match pair.central.answer(id) {
        Some(Err(code)) => code.clone(),
        other => panic!("call {id}: expected a CALLERROR, got {other:?}"),
    }
}

fn boot_reply(status: &str, interval: &str) -> String {
    format!(r#"{{"status":"{status}","currentTime":"2025-01-01T00:00:00Z","interval":{interval}}}"#)
}

fn var(component: &str, name: &str, instance: Option<&str>) -> Value {
    let mut variable = json!({ "name": name });
    if let Some(i) = instance {
        variable["instance"] = json!(i);
    }
    json!({ "component": { "name": component }, "variable": variable })
}

fn heartbeat_setting(pair: &VirtualPair) -> u64 {
    pair.station.settings().int(Setting::HeartbeatInterval)
}

/// The station is not spinning (its next deadline is in the future once the present one was
/// handled), heartbeats exactly every `heartbeat` over ten intervals with nothing else sent, and
/// comes back after a reconnection, accepted and heartbeating again.
fn assert_healthy(pair: &mut VirtualPair, heartbeat: Duration) {
    let v = pair.station.version();
    // Let whatever the extreme input set off run its course first.
    pair.advance(Duration::from_secs(120));
    let now = pair.clock.now();
    pair.station.handle_timeout(now);
    pair.drive();
    if let Some(t) = pair.station.poll_timeout() {
        assert!(t > now, "{v}: a deadline in the past after handle_timeout");
    }
    let heartbeats = pair.central.actions_named("Heartbeat");
    let sent = pair.station_sent.len();
    pair.advance(heartbeat * 10);
    assert_eq!(
        pair.central.actions_named("Heartbeat") - heartbeats,
        10,
        "{v}: heartbeats every {heartbeat:?}"
    );
    assert_eq!(
        pair.station_sent.len() - sent,
        10,
        "{v}: nothing but heartbeats while idle: {:?}",
        &pair.station_sent[sent..]
    );
    pair.disconnect();
    pair.advance(Duration::from_secs(60));
    pair.connect();
    assert!(pair.station.is_connected(), "{v}");
    assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
    let heartbeats = pair.central.actions_named("Heartbeat");
    pair.advance(heartbeat);
    assert_eq!(
        pair.central.actions_named("Heartbeat") - heartbeats,
        1,
        "{v}: heartbeats after reconnecting"
    );
    pair.assert_no_invalid_outgoing();
}

// ----- BootNotification.conf interval -----

#[test]
fn boot_accepted_with_interval_0_or_negative_keeps_the_heartbeat() {
    for v in ALL {
        for interval in ["0", "-5", "-2147483648"] {
            let reply = boot_reply("Accepted", interval);
            let mut pair = connected_with(MockCentral::new(v).boot_replies(&[&reply]));
            assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
            assert!(
                pair.events.contains(&StationEvent::BootAccepted {
                    interval: Duration::from_secs(300)
                }),
                "{v} {interval}: {:?}",
                pair.events
            );
            assert_eq!(heartbeat_setting(&pair), 300, "{v} {interval}");
            assert_healthy(&mut pair, Duration::from_secs(300));
        }
    }
}

#[test]
fn boot_accepted_with_an_interval_beyond_a_day_is_clamped_to_a_day() {
    for v in ALL {
        let reply = boot_reply("Accepted", &MAX.to_string());
        let mut pair = connected_with(MockCentral::new(v).boot_replies(&[&reply]));
        assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
        assert_eq!(heartbeat_setting(&pair), 86_400, "{v}");
        assert!(pair.events.contains(&StationEvent::BootAccepted {
            interval: Duration::from_secs(86_400)
        }));
        assert_healthy(&mut pair, Duration::from_secs(86_400));
    }
}

#[test]
fn boot_answer_beyond_32_bits_is_an_error_and_boot_is_retried() {
    for v in ALL {
        let reply = boot_reply("Accepted", HUGE);
        let mut pair = connected_with(MockCentral::new(v).boot_replies(&[&reply]));
        // Not a valid BootNotification answer (interval is a 32-bit integer): retried after
        // the configured boot retry (30 s), then the default answer is Accepted.
        assert_eq!(pair.station.boot_state(), BootState::Pending, "{v}");
        assert!(pair.events.contains(&StationEvent::BootNotAccepted {
            status: "Error".into(),
            retry_in: Duration::from_secs(30)
        }));
        pair.advance(Duration::from_secs(29));
        assert_eq!(pair.central.actions_named("BootNotification"), 1, "{v}");
        pair.advance(Duration::from_secs(1));
        assert_eq!(pair.central.actions_named("BootNotification"), 2, "{v}");
        assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

#[test]
fn boot_pending_with_interval_0_or_negative_backs_off_by_the_station_choice() {
    for v in ALL {
        for (status, interval) in [
            ("Pending", "0"),
            ("Pending", "-5"),
            ("Rejected", "0"),
            ("Rejected", "-5"),
        ] {
            let reply = boot_reply(status, interval);
            let mut pair = connected_with(MockCentral::new(v).boot_replies(&[&reply]));
            assert!(
                pair.events.contains(&StationEvent::BootNotAccepted {
                    status: status.into(),
                    retry_in: Duration::from_secs(30)
                }),
                "{v} {status} {interval}: {:?}",
                pair.events
            );
            pair.advance(Duration::from_secs(29));
            assert_eq!(pair.central.actions_named("BootNotification"), 1, "{v}");
            pair.advance(Duration::from_secs(1));
            assert_eq!(pair.central.actions_named("BootNotification"), 2, "{v}");
            assert_healthy(&mut pair, Duration::from_secs(300));
        }
    }
}

#[test]
fn boot_retry_of_zero_still_backs_off_by_the_minimum() {
    for v in ALL {
        // The central system answers Pending with interval 0 a thousand times, and the
        // station was configured with a boot retry of 0.
        let replies: Vec<String> = (0..1000).map(|_| boot_reply("Pending", "0")).collect();
        let replies: Vec<&str> = replies.iter().map(String::as_str).collect();
        let clock = TestClock::new();
        let cfg = test_config(v, &clock).boot_retry(Duration::ZERO);
        let mut pair = VirtualPair::with(
            cfg,
            Box::new(MemoryStore::new()),
            MockCentral::new(v).boot_replies(&replies),
            clock,
        );
        pair.connect();
        assert!(pair.events.contains(&StationEvent::BootNotAccepted {
            status: "Pending".into(),
            retry_in: MIN_BOOT_RETRY
        }));
        pair.advance(Duration::from_secs(3600));
        let boots = pair.central.actions_named("BootNotification");
        let most = (3600 / MIN_BOOT_RETRY.as_secs() + 1) as usize;
        assert!(boots <= most, "{v}: {boots} boots in an hour");
        assert!(boots >= most - 1, "{v}: still retrying: {boots}");
        let now = pair.clock.now();
        assert!(pair.station.poll_timeout().is_some_and(|t| t > now), "{v}");
    }
}

#[test]
fn boot_call_errors_with_a_zero_retry_back_off_by_the_minimum() {
    for v in ALL {
        let clock = TestClock::new();
        let cfg = test_config(v, &clock).boot_retry(Duration::ZERO);
        let mut central = MockCentral::new(v);
        central.failing.insert("BootNotification".into());
        let mut pair = VirtualPair::with(cfg, Box::new(MemoryStore::new()), central, clock);
        pair.connect();
        pair.advance(Duration::from_secs(3600));
        let boots = pair.central.actions_named("BootNotification");
        assert!(
            boots <= (3600 / MIN_BOOT_RETRY.as_secs() + 1) as usize,
            "{v}: {boots}"
        );
        assert!(boots > 10, "{v}: still retrying: {boots}");
        // The central system recovers: the station gets accepted.
        pair.central.failing.clear();
        pair.advance(MIN_BOOT_RETRY);
        assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

#[test]
fn boot_pending_with_a_huge_interval_still_retries_within_a_day() {
    for v in ALL {
        let reply = boot_reply("Pending", &MAX.to_string());
        let mut pair = connected_with(MockCentral::new(v).boot_replies(&[&reply]));
        assert!(pair.events.contains(&StationEvent::BootNotAccepted {
            status: "Pending".into(),
            retry_in: MAX_BOOT_RETRY
        }));
        pair.advance(MAX_BOOT_RETRY);
        assert_eq!(pair.central.actions_named("BootNotification"), 2, "{v}");
        assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

// ----- configuration: 1.6 ChangeConfiguration, 2.x SetVariables -----

#[test]
fn change_configuration_interval_extremes_v16() {
    let mut pair = connected(Version::V16);
    let cases: &[(&str, &str, &str)] = &[
        // 1.6 §9.1: HeartbeatInterval is a positive integer; 0 would silently stop heartbeats.
        ("HeartbeatInterval", "0", "Rejected"),
        ("HeartbeatInterval", "-5", "Rejected"),
        ("HeartbeatInterval", HUGE, "Rejected"),
        ("HeartbeatInterval", "2147483647", "Rejected"),
        ("HeartbeatInterval", "86401", "Rejected"),
        ("MeterValueSampleInterval", "0", "Accepted"),
        ("MeterValueSampleInterval", "-5", "Rejected"),
        ("MeterValueSampleInterval", HUGE, "Rejected"),
        ("MeterValueSampleInterval", "2147483647", "Rejected"),
        ("ClockAlignedDataInterval", "0", "Accepted"),
        ("ClockAlignedDataInterval", "-5", "Rejected"),
        ("ClockAlignedDataInterval", HUGE, "Rejected"),
        ("ClockAlignedDataInterval", "2147483647", "Rejected"),
        ("TransactionMessageRetryInterval", "0", "Accepted"),
        ("TransactionMessageRetryInterval", "-5", "Rejected"),
        ("TransactionMessageRetryInterval", HUGE, "Rejected"),
        ("TransactionMessageRetryInterval", "2147483647", "Rejected"),
        ("TransactionMessageAttempts", HUGE, "Rejected"),
        ("ConnectionTimeOut", "0", "Rejected"),
        ("ConnectionTimeOut", "-5", "Rejected"),
        ("ConnectionTimeOut", HUGE, "Rejected"),
        ("WebSocketPingInterval", "-5", "Rejected"),
        ("WebSocketPingInterval", HUGE, "Rejected"),
        ("WebSocketPingInterval", "0", "RebootRequired"),
        ("ResetRetries", HUGE, "Rejected"),
    ];
    for (key, value, expected) in cases {
        let id = pair.central_call("ChangeConfiguration", json!({ "key": key, "value": value }));
        assert_eq!(status(&pair, &id), *expected, "{key} = {value}");
        assert_eq!(
            pair.answer_frame(&id),
            Some(format!(r#"[3,"{id}",{{"status":"{expected}"}}]"#).as_str())
        );
    }
    let id = pair.central_call(
        "GetConfiguration",
        json!({ "key": ["HeartbeatInterval", "ConnectionTimeOut"] }),
    );
    let got = result(&pair, &id);
    assert_eq!(got["configurationKey"][0]["value"], "300");
    assert_eq!(got["configurationKey"][1]["value"], "120");
    assert_healthy(&mut pair, Duration::from_secs(300));
}

#[test]
fn set_variables_interval_extremes_v2x() {
    for v in V2X {
        let mut pair = connected(v);
        let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
            ("OCPPCommCtrlr", "HeartbeatInterval", None, "0", "Rejected"),
            ("OCPPCommCtrlr", "HeartbeatInterval", None, "-5", "Rejected"),
            ("OCPPCommCtrlr", "HeartbeatInterval", None, HUGE, "Rejected"),
            (
                "OCPPCommCtrlr",
                "HeartbeatInterval",
                None,
                "2147483647",
                "Rejected",
            ),
            (
                "SampledDataCtrlr",
                "TxUpdatedInterval",
                None,
                "0",
                "Accepted",
            ),
            (
                "SampledDataCtrlr",
                "TxUpdatedInterval",
                None,
                "-5",
                "Rejected",
            ),
            (
                "SampledDataCtrlr",
                "TxUpdatedInterval",
                None,
                HUGE,
                "Rejected",
            ),
            ("AlignedDataCtrlr", "Interval", None, "0", "Accepted"),
            ("AlignedDataCtrlr", "Interval", None, "-5", "Rejected"),
            (
                "AlignedDataCtrlr",
                "Interval",
                None,
                "2147483647",
                "Rejected",
            ),
            (
                "OCPPCommCtrlr",
                "MessageAttemptInterval",
                Some("TransactionEvent"),
                "0",
                "Accepted",
            ),
            (
                "OCPPCommCtrlr",
                "MessageAttemptInterval",
                Some("TransactionEvent"),
                "-5",
                "Rejected",
            ),
            (
                "OCPPCommCtrlr",
                "MessageAttemptInterval",
                Some("TransactionEvent"),
                HUGE,
                "Rejected",
            ),
            ("TxCtrlr", "EVConnectionTimeOut", None, "0", "Rejected"),
            ("TxCtrlr", "EVConnectionTimeOut", None, "-5", "Rejected"),
            ("TxCtrlr", "EVConnectionTimeOut", None, HUGE, "Rejected"),
        ];
        let data: Vec<Value> = cases
            .iter()
            .map(|(c, n, i, value, _)| {
                let mut item = var(c, n, *i);
                item["attributeValue"] = json!(value);
                item
            })
            .collect();
        let id = pair.central_call("SetVariables", json!({ "setVariableData": data }));
        let results = result(&pair, &id)["setVariableResult"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let statuses: Vec<&str> = results
            .iter()
            .map(|r| r["attributeStatus"].as_str().unwrap_or_default())
            .collect();
        let expected: Vec<&str> = cases.iter().map(|c| c.4).collect();
        assert_eq!(statuses, expected, "{v}");
        assert_eq!(heartbeat_setting(&pair), 300, "{v}");
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

// ----- ids at the edge of 32 bits -----

#[test]
fn ids_at_i32_max_are_refused_v16() {
    let mut pair = connected(Version::V16);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "RemoteStartTransaction",
            json!({ "connectorId": MAX, "idTag": "T" }),
            "Rejected",
        ),
        (
            "RemoteStartTransaction",
            json!({ "connectorId": -5, "idTag": "T" }),
            "Rejected",
        ),
        (
            "RemoteStopTransaction",
            json!({ "transactionId": MAX }),
            "Rejected",
        ),
        (
            "RemoteStopTransaction",
            json!({ "transactionId": -5 }),
            "Rejected",
        ),
        (
            "ChangeAvailability",
            json!({ "connectorId": MAX, "type": "Inoperative" }),
            "Rejected",
        ),
        (
            "ChangeAvailability",
            json!({ "connectorId": -5, "type": "Inoperative" }),
            "Rejected",
        ),
        (
            "UnlockConnector",
            json!({ "connectorId": MAX }),
            "NotSupported",
        ),
        (
            "UnlockConnector",
            json!({ "connectorId": -5 }),
            "NotSupported",
        ),
        (
            "TriggerMessage",
            json!({ "requestedMessage": "StatusNotification", "connectorId": MAX }),
            "Rejected",
        ),
        (
            "TriggerMessage",
            json!({ "requestedMessage": "MeterValues", "connectorId": -5 }),
            "Rejected",
        ),
        (
            "ReserveNow",
            json!({ "connectorId": MAX, "expiryDate": "2025-01-02T00:00:00Z", "idTag": "T", "reservationId": MAX }),
            "Rejected",
        ),
        (
            "CancelReservation",
            json!({ "reservationId": MAX }),
            "Rejected",
        ),
        (
            "GetCompositeSchedule",
            json!({ "connectorId": MAX, "duration": MAX }),
            "Rejected",
        ),
        (
            "ClearChargingProfile",
            json!({ "id": MAX, "connectorId": MAX }),
            "Unknown",
        ),
    ];
    for (action, payload, expected) in cases {
        let id = pair.central_call(action, payload.clone());
        assert_eq!(status(&pair, &id), expected, "{action} {payload}");
    }
    assert_eq!(pair.station.status(1), Some("Available"));
    assert!(pair.station.transaction(1).is_none());
    assert_healthy(&mut pair, Duration::from_secs(300));
}

#[test]
fn ids_at_i32_max_are_refused_v2x() {
    for v in V2X {
        let mut pair = connected(v);
        let token = json!({ "idToken": "T", "type": "Central" });
        // A negative EVSE id: 2.1's schemas set a minimum (answered by the schema's
        // PropertyConstraintViolation), 2.0.1's do not (the station refuses the unknown id).
        let negative = if v == Version::V21 {
            "CALLERROR PropertyConstraintViolation"
        } else {
            "Rejected"
        };
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "RequestStartTransaction",
                json!({ "evseId": MAX, "remoteStartId": MAX, "idToken": token }),
                "Rejected",
            ),
            (
                "RequestStartTransaction",
                json!({ "evseId": -5, "remoteStartId": -5, "idToken": token }),
                negative,
            ),
            (
                "RequestStopTransaction",
                json!({ "transactionId": MAX.to_string() }),
                "Rejected",
            ),
            (
                "ChangeAvailability",
                json!({ "evse": { "id": MAX }, "operationalStatus": "Inoperative" }),
                "Rejected",
            ),
            (
                "ChangeAvailability",
                json!({ "evse": { "id": -5 }, "operationalStatus": "Inoperative" }),
                negative,
            ),
            (
                "UnlockConnector",
                json!({ "evseId": MAX, "connectorId": MAX }),
                "UnknownConnector",
            ),
            (
                "UnlockConnector",
                json!({ "evseId": 1, "connectorId": MAX }),
                "UnknownConnector",
            ),
            (
                "TriggerMessage",
                json!({ "requestedMessage": "StatusNotification", "evse": { "id": MAX, "connectorId": MAX } }),
                "Rejected",
            ),
            (
                "TriggerMessage",
                json!({ "requestedMessage": "MeterValues", "evse": { "id": -5 } }),
                negative,
            ),
            (
                "Reset",
                json!({ "type": "Immediate", "evseId": MAX }),
                "Rejected",
            ),
            (
                "ReserveNow",
                json!({ "id": MAX, "expiryDateTime": "2025-01-02T00:00:00Z", "idToken": token, "evseId": MAX }),
                "Rejected",
            ),
            (
                "CancelReservation",
                json!({ "reservationId": MAX }),
                "Rejected",
            ),
        ];
        for (action, payload, expected) in cases {
            let id = pair.central_call(action, payload.clone());
            assert_eq!(answer(&pair, &id), expected, "{v} {action} {payload}");
        }
        // requestId at i32::MAX is echoed in every NotifyReport.
        let id = pair.central_call(
            "GetBaseReport",
            json!({ "requestId": MAX, "reportBase": "FullInventory" }),
        );
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        let reports = pair.central.payloads("NotifyReport");
        assert!(!reports.is_empty(), "{v}");
        assert!(reports.iter().all(|r| r["requestId"] == MAX), "{v}");
        assert_eq!(pair.station.status(1), Some("Available"), "{v}");
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

#[test]
fn integers_beyond_32_bits_are_type_constraint_violations() {
    for v in ALL {
        let mut pair = connected(v);
        let (action, payload) = if v == Version::V16 {
            (
                "ChangeAvailability",
                format!(r#"{{"connectorId":{HUGE},"type":"Inoperative"}}"#),
            )
        } else {
            (
                "ChangeAvailability",
                format!(r#"{{"evse":{{"id":{HUGE}}},"operationalStatus":"Inoperative"}}"#),
            )
        };
        let id = pair.central_call_raw(action, &payload);
        assert_eq!(error(&pair, &id), "TypeConstraintViolation", "{v}");
        let frame = pair.answer_frame(&id).unwrap_or_default();
        assert!(
            frame.starts_with(&format!(r#"[4,"{id}","TypeConstraintViolation","#)),
            "{v}: {frame}"
        );
        // One past i32::MAX is beyond 32 bits too.
        let id = pair.central_call_raw("CancelReservation", r#"{"reservationId":2147483648}"#);
        assert_eq!(error(&pair, &id), "TypeConstraintViolation", "{v}");
        assert_eq!(pair.station.status(1), Some("Available"), "{v}");
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

#[test]
fn transaction_id_at_i32_max_round_trips_v16() {
    let mut pair = connected_with(MockCentral::new(Version::V16).first_transaction_id(i32::MAX));
    pair.plug_in(1);
    pair.station_input(|s, now| s.present_id_token(now, Some(1), "TAG"));
    assert!(pair.events.contains(&StationEvent::TransactionIdAssigned {
        local_id: 1,
        transaction_id: i32::MAX
    }));
    pair.advance(Duration::from_secs(60));
    let mv = pair.central.payloads("MeterValues");
    assert!(mv.iter().all(|m| m["transactionId"] == MAX));
    let id = pair.central_call("RemoteStopTransaction", json!({ "transactionId": MAX }));
    assert_eq!(status(&pair, &id), "Accepted");
    assert_eq!(
        pair.central.payloads("StopTransaction")[0]["transactionId"],
        MAX
    );
    pair.assert_no_invalid_outgoing();
}

#[test]
fn remote_start_id_at_i32_max_round_trips_v2x() {
    for v in V2X {
        let mut pair = connected(v);
        let id = pair.central_call(
            "RequestStartTransaction",
            json!({ "evseId": 1, "remoteStartId": MAX, "idToken": { "idToken": "T", "type": "Central" } }),
        );
        assert_eq!(status(&pair, &id), "Accepted", "{v}");
        pair.plug_in(1);
        let started = pair.central.payloads("TransactionEvent")[0];
        assert_eq!(started["transactionInfo"]["remoteStartId"], MAX, "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

// ----- lists of 3,000 elements -----

#[test]
fn get_configuration_with_more_keys_than_the_maximum_v16() {
    let mut pair = connected(Version::V16);
    let id = pair.central_call(
        "GetConfiguration",
        json!({ "key": ["GetConfigurationMaxKeys"] }),
    );
    assert_eq!(result(&pair, &id)["configurationKey"][0]["value"], "50");
    let keys = |n: usize| -> Vec<String> { (0..n).map(|i| format!("Key{i}")).collect() };
    // 3,000 keys: CALLERROR OccurenceConstraintViolation (1.6 spelling).
    let id = pair.central_call("GetConfiguration", json!({ "key": keys(3000) }));
    assert_eq!(error(&pair, &id), "OccurenceConstraintViolation");
    assert_eq!(
        pair.answer_frame(&id),
        Some(
            format!(
                r#"[4,"{id}","OccurenceConstraintViolation","3000 keys requested; GetConfigurationMaxKeys is 50",{{}}]"#
            )
            .as_str()
        )
    );
    let id = pair.central_call("GetConfiguration", json!({ "key": keys(51) }));
    assert_eq!(error(&pair, &id), "OccurenceConstraintViolation");
    // Exactly the maximum: answered, every key accounted for.
    let mut at_max = keys(49);
    at_max.push("HeartbeatInterval".into());
    let id = pair.central_call("GetConfiguration", json!({ "key": at_max }));
    let got = result(&pair, &id);
    assert_eq!(got["configurationKey"].as_array().map(Vec::len), Some(1));
    assert_eq!(got["unknownKey"].as_array().map(Vec::len), Some(49));
    assert_healthy(&mut pair, Duration::from_secs(300));
}

#[test]
fn get_and_set_variables_with_more_items_than_the_maximum_v2x() {
    for v in V2X {
        let mut pair = connected(v);
        let many = |n: usize, value: Option<&str>| -> Vec<Value> {
            (0..n)
                .map(|_| {
                    let mut item = var("OCPPCommCtrlr", "HeartbeatInterval", None);
                    if let Some(value) = value {
                        item["attributeValue"] = json!(value);
                    }
                    item
                })
                .collect()
        };
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": many(3000, None) }),
        );
        assert_eq!(error(&pair, &id), "OccurrenceConstraintViolation", "{v}");
        assert_eq!(
            pair.answer_frame(&id),
            Some(
                format!(
                    r#"[4,"{id}","OccurrenceConstraintViolation","3000 items requested; ItemsPerMessageGetVariables is 50",{{}}]"#
                )
                .as_str()
            )
        );
        let id = pair.central_call("GetVariables", json!({ "getVariableData": many(51, None) }));
        assert_eq!(error(&pair, &id), "OccurrenceConstraintViolation", "{v}");
        let id = pair.central_call("GetVariables", json!({ "getVariableData": many(50, None) }));
        assert_eq!(
            result(&pair, &id)["getVariableResult"]
                .as_array()
                .map(Vec::len),
            Some(50),
            "{v}"
        );
        let id = pair.central_call(
            "SetVariables",
            json!({ "setVariableData": many(3000, Some("60")) }),
        );
        assert_eq!(error(&pair, &id), "OccurrenceConstraintViolation", "{v}");
        assert_eq!(
            pair.answer_frame(&id),
            Some(
                format!(
                    r#"[4,"{id}","OccurrenceConstraintViolation","3000 items sent; ItemsPerMessageSetVariables is 50",{{}}]"#
                )
                .as_str()
            )
        );
        // Nothing of a refused request was applied.
        assert_eq!(heartbeat_setting(&pair), 300, "{v}");
        let id = pair.central_call(
            "SetVariables",
            json!({ "setVariableData": many(50, Some("300")) }),
        );
        assert_eq!(
            result(&pair, &id)["setVariableResult"]
                .as_array()
                .map(Vec::len),
            Some(50),
            "{v}"
        );
        // GetReport: more componentVariable entries than ItemsPerMessage[GetReport] (20) are
        // refused whole.
        let components: Vec<Value> = (0..3000)
            .map(|i| var("OCPPCommCtrlr", &format!("V{i}"), None))
            .collect();
        let id = pair.central_call(
            "GetReport",
            json!({ "requestId": MAX, "componentVariable": components }),
        );
        assert_eq!(
            answer(&pair, &id),
            "CALLERROR OccurrenceConstraintViolation",
            "{v}"
        );
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

#[test]
fn send_local_list_of_3000_entries_fails_and_changes_nothing_v16() {
    let mut pair = connected(Version::V16);
    let list: Vec<Value> = (0..3000)
        .map(|i| json!({ "idTag": format!("T{i}"), "idTagInfo": { "status": "Accepted" } }))
        .collect();
    let id = pair.central_call(
        "SendLocalList",
        json!({ "listVersion": MAX, "updateType": "Full", "localAuthorizationList": list }),
    );
    // Beyond SendLocalListMaxLength: Failed, and the list stays as it was (empty).
    assert_eq!(status(&pair, &id), "Failed");
    let id = pair.central_call("GetLocalListVersion", json!({}));
    assert_eq!(result(&pair, &id)["listVersion"], 0);
    assert_healthy(&mut pair, Duration::from_secs(300));
}

/// 3,000 TriggerMessages while the central system does not answer what they trigger: every
/// one is answered, but the station never queues more than [`MAX_QUEUED_CALLS`] calls.
#[test]
fn three_thousand_trigger_messages_do_not_flood() {
    for v in ALL {
        for requested in ["Heartbeat", "StatusNotification", "BootNotification"] {
            let mut pair = connected(v);
            pair.central.silent.insert(requested.into());
            let before = pair.central.actions_named(requested);
            let mut statuses = std::collections::BTreeMap::new();
            for _ in 0..3000 {
                let id =
                    pair.central_call("TriggerMessage", json!({ "requestedMessage": requested }));
                *statuses.entry(status(&pair, &id)).or_insert(0) += 1;
            }
            // One call in flight, unanswered; the rest wait (at most MAX_QUEUED_CALLS).
            let in_flight = pair.central.actions_named(requested) - before;
            assert!(in_flight <= 1, "{v} {requested}: {in_flight} sent at once");
            let total: usize = statuses.values().sum();
            assert_eq!(total, 3000, "{v} {requested}");
            match (v, requested) {
                // 2.x F06: an accepted station does not trigger another BootNotification.
                (Version::V201 | Version::V21, "BootNotification") => {
                    assert_eq!(statuses.get("Rejected"), Some(&3000), "{v}");
                }
                _ => assert!(
                    statuses.get("Accepted").is_some_and(|n| *n >= 1),
                    "{v} {requested}: {statuses:?}"
                ),
            }
            // Over the next hour the station sends a bounded number of frames (each silent
            // call takes its 30 s timeout).
            let sent = pair.station_sent.len();
            pair.advance(Duration::from_secs(3600));
            let more = pair.station_sent.len() - sent;
            assert!(
                more <= MAX_QUEUED_CALLS + 3600 / 30 + 20,
                "{v} {requested}: {more} frames in an hour"
            );
            pair.central.silent.clear();
            assert_healthy(&mut pair, Duration::from_secs(300));
        }
    }
}

#[test]
fn three_thousand_remote_starts_do_not_flood() {
    for v in ALL {
        let mut pair = connected(v);
        // Remote starts are authorized first, and the central system does not answer.
        if v == Version::V16 {
            let id = pair.central_call(
                "ChangeConfiguration",
                json!({ "key": "AuthorizeRemoteTxRequests", "value": "true" }),
            );
            assert_eq!(status(&pair, &id), "Accepted");
        } else {
            let mut item = var("AuthCtrlr", "AuthorizeRemoteStart", None);
            item["attributeValue"] = json!("true");
            let id = pair.central_call("SetVariables", json!({ "setVariableData": [item] }));
            assert_eq!(
                result(&pair, &id)["setVariableResult"][0]["attributeStatus"],
                "Accepted"
            );
        }
        pair.central.silent.insert("Authorize".into());
        for i in 0..3000 {
            let id = if v == Version::V16 {
                pair.central_call(
                    "RemoteStartTransaction",
                    json!({ "idTag": format!("T{i}") }),
                )
            } else {
                pair.central_call(
                    "RequestStartTransaction",
                    json!({ "remoteStartId": i, "idToken": { "idToken": format!("T{i}"), "type": "Central" } }),
                )
            };
            let s = status(&pair, &id);
            assert!(s == "Accepted" || s == "Rejected", "{v}: {s}");
        }
        pair.advance(Duration::from_secs(3600));
        let authorizes = pair.central.actions_named("Authorize");
        assert!(
            authorizes <= MAX_QUEUED_CALLS + 2,
            "{v}: {authorizes} Authorize calls"
        );
        pair.central.silent.clear();
        assert_healthy(&mut pair, Duration::from_secs(300));
    }
}

// ----- retry intervals of 0 -----

#[test]
fn transaction_message_retry_interval_0_does_not_spin() {
    for v in ALL {
        let mut pair = connected(v);
        let (interval, attempts, action) = if v == Version::V16 {
            (
                var("", "TransactionMessageRetryInterval", None),
                var("", "TransactionMessageAttempts", None),
                "StartTransaction",
            )
        } else {
            (
                var(
                    "OCPPCommCtrlr",
                    "MessageAttemptInterval",
                    Some("TransactionEvent"),
                ),
                var("OCPPCommCtrlr", "MessageAttempts", Some("TransactionEvent")),
                "TransactionEvent",
            )
        };
        for (item, value) in [(interval, "0"), (attempts, "1000")] {
            if v == Version::V16 {
                let key = item["variable"]["name"].clone();
                let id =
                    pair.central_call("ChangeConfiguration", json!({ "key": key, "value": value }));
                assert_eq!(status(&pair, &id), "Accepted", "{v}");
            } else {
                let mut item = item;
                item["attributeValue"] = json!(value);
                let id = pair.central_call("SetVariables", json!({ "setVariableData": [item] }));
                assert_eq!(
                    result(&pair, &id)["setVariableResult"][0]["attributeStatus"],
                    "Accepted",
                    "{v}"
                );
            }
        }
        pair.central.failing.insert(action.into());
        pair.plug_in(1);
        pair.station_input(|s, now| s.present_id_token(now, Some(1), "TAG"));
        pair.advance(Duration::from_secs(10));
        let tries = pair.central.actions_named(action);
        let most = (10 / MIN_RETRY.as_secs() + 1) as usize;
        assert!(tries <= most, "{v}: {tries} tries in 10 s");
        assert!(tries >= 2, "{v}: retried: {tries}");
        pair.central.failing.clear();
        pair.advance(MIN_RETRY);
        assert_eq!(pair.station.outbox_len(), 0, "{v}: delivered at last");
        pair.assert_no_invalid_outgoing();
    }
}

// ----- resets clear remote-start authorizations -----

#[test]
fn reset_clears_a_remote_start_waiting_for_the_cable() {
    for v in ALL {
        for kind in ["Soft", "Hard"] {
            let mut pair = connected(v);
            let id = if v == Version::V16 {
                pair.central_call(
                    "RemoteStartTransaction",
                    json!({ "connectorId": 1, "idTag": "REMOTE" }),
                )
            } else {
                pair.central_call(
                    "RequestStartTransaction",
                    json!({ "evseId": 1, "remoteStartId": 1, "idToken": { "idToken": "REMOTE", "type": "Central" } }),
                )
            };
            assert_eq!(status(&pair, &id), "Accepted", "{v}");
            if v == Version::V16 {
                assert_eq!(pair.station.status(1), Some("Preparing"));
            }
            let reset_kind = match (v, kind) {
                (Version::V16, k) => k,
                (_, "Soft") => "OnIdle",
                _ => "Immediate",
            };
            let id = pair.central_call("Reset", json!({ "type": reset_kind }));
            assert_eq!(status(&pair, &id), "Accepted", "{v} {kind}");
            let expected = if kind == "Soft" {
                ResetKind::Soft
            } else {
                ResetKind::Hard
            };
            assert!(
                pair.events.contains(&StationEvent::Rebooting(expected)),
                "{v} {kind}"
            );
            assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
            assert_eq!(pair.station.status(1), Some("Available"), "{v} {kind}");
            let last_status = pair
                .central
                .payloads("StatusNotification")
                .into_iter()
                .rev()
                .find(|p| p["connectorId"] == 1 || p["evseId"] == 1)
                .cloned()
                .unwrap_or_default();
            let reported = if v == Version::V16 {
                &last_status["status"]
            } else {
                &last_status["connectorStatus"]
            };
            assert_eq!(reported, "Available", "{v} {kind}");
            // The cable comes later: nobody asked for a transaction any more.
            pair.advance(Duration::from_secs(10));
            pair.plug_in(1);
            pair.advance(Duration::from_secs(10));
            assert!(pair.station.transaction(1).is_none(), "{v} {kind}");
            assert_eq!(pair.central.actions_named("StartTransaction"), 0, "{v}");
            assert_eq!(pair.central.actions_named("TransactionEvent"), 0, "{v}");
            pair.assert_no_invalid_outgoing();
        }
    }
}

/// Found by the `charger_station` fuzz target: the calls a Rejected station leaves
/// unanswered (it sends nothing while Rejected) must not count against its unanswered calls
/// once it is Accepted. The calls go straight to the station, as a central system that does
/// not wait for answers sends them.
#[test]
fn calls_left_unanswered_while_rejected_do_not_block_later_ones() {
    for v in ALL {
        let mut pair = connected_with(MockCentral::new(v).boot_statuses(&["Rejected"]));
        assert_eq!(pair.station.boot_state(), BootState::Rejected, "{v}");
        pair.station_input(|s, now| {
            for i in 0..40 {
                s.handle_text(now, &format!(r#"[2,"k{i}","ClearCache",{{}}]"#));
            }
        });
        assert!(
            !pair.station_sent.iter().any(|t| t.contains(r#""k"#)),
            "{v}: nothing is sent while Rejected"
        );
        // The retry is accepted; a call is answered again, not refused as one too many.
        pair.advance(Duration::from_secs(300));
        assert_eq!(pair.station.boot_state(), BootState::Accepted, "{v}");
        pair.station_input(|s, now| s.handle_text(now, r#"[2,"k99","ClearCache",{}]"#));
        let answer = pair
            .station_sent
            .iter()
            .find(|t| t.contains(r#""k99""#))
            .expect("answered");
        assert!(answer.starts_with(r#"[3,"k99""#), "{v}: {answer}");
    }
}
