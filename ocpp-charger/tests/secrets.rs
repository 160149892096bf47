//! The Basic-auth password set by the central system (1.6 `AuthorizationKey`, 2.x
//! `SecurityCtrlr.BasicAuthPassword`) and security events, on virtual time.

use std::time::Duration;

use ocpp_charger::station::MAX_QUEUED_SECURITY_EVENTS;
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, SecurityEvent, StationEvent, Version};
use serde_json::{json, Value};

fn ok(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("call {id}: {other:?}"),
    }
}

fn pair(version: Version, security_events: bool) -> VirtualPair {
    let clock = TestClock::new();
    let cfg = test_config(version, &clock).security_events(security_events);
    VirtualPair::with(
        cfg,
        Box::new(MemoryStore::new()),
        MockCentral::new(version),
        clock,
    )
}

fn security_types(pair: &VirtualPair) -> Vec<String> {
    pair.central
        .payloads("SecurityEventNotification")
        .iter()
        .map(|p| p["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn v16_authorization_key_is_validated_write_only_and_reconnects() {
    let mut p = pair(Version::V16, false);
    p.connect();
    // Not hex, too short (15 bytes), too long (21 bytes): Rejected, nothing changes.
    for bad in [
        "not hex at all!!",
        &"AB".repeat(15),
        &"AB".repeat(21),
        "ABC",
    ] {
        let id = p.central_call(
            "ChangeConfiguration",
            json!({ "key": "AuthorizationKey", "value": bad }),
        );
        assert_eq!(ok(&p, &id)["status"], "Rejected", "{bad}");
    }
    assert!(!p.station.poll_reconnect());
    assert_eq!(p.station.basic_auth_password(), None);
    let key = ocpp_codec::transport::encode_authorization_key(b"0123456789abcdefghij");
    let id = p.central_call(
        "ChangeConfiguration",
        json!({ "key": "AuthorizationKey", "value": key }),
    );
    assert_eq!(ok(&p, &id)["status"], "Accepted");
    assert_eq!(
        p.station.basic_auth_password().as_deref(),
        Some(&b"0123456789abcdefghij"[..])
    );
    assert!(p.station.poll_reconnect(), "the station reconnects");
    assert!(!p.station.poll_reconnect(), "asking clears it");
    assert_eq!(
        p.events_where(|e| matches!(e, StationEvent::CredentialsChanged))
            .len(),
        1
    );
    // Write-only: listed without a value, by name and in the full list.
    let id = p.central_call("GetConfiguration", json!({ "key": ["AuthorizationKey"] }));
    let answer = ok(&p, &id);
    assert_eq!(answer["configurationKey"][0]["key"], "AuthorizationKey");
    assert!(
        answer["configurationKey"][0].get("value").is_none(),
        "{answer}"
    );
    let id = p.central_call("GetConfiguration", json!({}));
    let all = ok(&p, &id).to_string();
    assert!(
        !all.contains(&key) && !all.contains("0123456789abcdefghij"),
        "{all}"
    );
    // Never in a Debug output.
    let debug = format!("{:?}", p.station.settings());
    assert!(!debug.contains(&key), "{debug}");
    // The security event was raised (for the log) but not sent: off by default.
    assert!(p
        .events_where(|e| matches!(e, StationEvent::SecurityEvent { kind, .. } if kind == "ReconfigurationOfSecurityParameters"))
        .len()
        == 1);
    assert!(security_types(&p).is_empty());
    p.assert_no_invalid_outgoing();
}

#[test]
fn v2_basic_auth_password_is_validated_write_only_and_persisted() {
    for version in [Version::V201, Version::V21] {
        let clock = TestClock::new();
        let store = MemoryStore::new();
        let cfg = test_config(version, &clock).security_events(true);
        let mut p = VirtualPair::with(
            cfg,
            Box::new(store.clone()),
            MockCentral::new(version),
            clock,
        );
        p.connect();
        let set = |p: &mut VirtualPair, value: &str| {
            let id = p.central_call(
                "SetVariables",
                json!({ "setVariableData": [{
                    "component": { "name": "SecurityCtrlr" },
                    "variable": { "name": "BasicAuthPassword" },
                    "attributeValue": value,
                }]}),
            );
            ok(p, &id)["setVariableResult"][0]["attributeStatus"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        for bad in ["short", &"x".repeat(41), "has a space in it!"] {
            assert_eq!(set(&mut p, bad), "Rejected", "{bad}");
        }
        assert!(!p.station.poll_reconnect());
        let password = "N3w-Pass_word.0123456789";
        assert_eq!(set(&mut p, password), "Accepted");
        assert!(p.station.poll_reconnect());
        // Write-only: GetVariables is Rejected without a value; a report has no value.
        let id = p.central_call(
            "GetVariables",
            json!({ "getVariableData": [{
                "component": { "name": "SecurityCtrlr" },
                "variable": { "name": "BasicAuthPassword" },
            }]}),
        );
        let answer = ok(&p, &id);
        assert_eq!(
            answer["getVariableResult"][0]["attributeStatus"],
            "Rejected"
        );
        assert!(answer["getVariableResult"][0]
            .get("attributeValue")
            .is_none());
        let id = p.central_call(
            "GetBaseReport",
            json!({ "requestId": 1, "reportBase": "FullInventory" }),
        );
        assert_eq!(ok(&p, &id)["status"], "Accepted");
        p.advance(Duration::from_secs(1));
        let reports = serde_json::to_string(&p.central.payloads("NotifyReport")).unwrap();
        assert!(reports.contains("\"WriteOnly\""), "{reports}");
        assert!(!reports.contains(password), "{reports}");
        // The station sent its security events: start-up, then the new password.
        assert_eq!(
            security_types(&p),
            ["StartupOfTheDevice", "ReconfigurationOfSecurityParameters"]
        );
        p.assert_no_invalid_outgoing();
        // Persisted: a station rebuilt from the store has the password.
        drop(p);
        let mut store = store;
        let saved = ocpp_charger::Saved::load(&mut store).unwrap();
        let station = ocpp_charger::Station::new(
            test_config(version, &clock),
            Box::new(ocpp_charger::SimulatedHardware::new(1, 7400.into())),
            saved,
            clock.now(),
        );
        assert_eq!(
            station.basic_auth_password().as_deref(),
            Some(password.as_bytes())
        );
    }
}

#[test]
fn security_events_wait_offline_in_a_bounded_outbox() {
    let mut p = pair(Version::V201, true);
    // Offline from the start: the start-up event and 40 more wait; at most 32 are kept, the
    // oldest dropped.
    for i in 0..40 {
        p.station_input(|s, now| {
            s.security_event(
                now,
                SecurityEvent::InvalidCentralCertificate,
                Some(&format!("try {i}")),
            )
        });
    }
    assert_eq!(p.station.outbox_len(), MAX_QUEUED_SECURITY_EVENTS);
    let dropped = p
        .events_where(|e| matches!(e, StationEvent::Dropped { action, .. } if action == "SecurityEventNotification"))
        .len();
    assert_eq!(dropped, 41 - MAX_QUEUED_SECURITY_EVENTS);
    p.connect();
    p.advance(Duration::from_secs(5));
    let sent = p.central.payloads("SecurityEventNotification");
    assert_eq!(sent.len(), MAX_QUEUED_SECURITY_EVENTS);
    // The newest kept, in order; the 2.x name of the central system's certificate event.
    assert_eq!(sent[0]["type"], "InvalidCsmsCertificate");
    assert_eq!(sent[0]["techInfo"], "try 8");
    assert_eq!(sent[31]["techInfo"], "try 39");
    assert_eq!(p.station.outbox_len(), 0);
    p.assert_no_invalid_outgoing();
}

#[test]
fn a_reset_is_a_security_event_spelled_per_version() {
    let mut p = pair(Version::V16, true);
    p.connect();
    p.advance(Duration::from_secs(1));
    let id = p.central_call("Reset", json!({ "type": "Soft" }));
    assert_eq!(ok(&p, &id)["status"], "Accepted");
    p.advance(Duration::from_secs(5));
    assert_eq!(security_types(&p), ["StartupOfTheDevice", "ResetOrReboot"]);
    p.station_input(|s, now| s.security_event(now, SecurityEvent::InvalidCentralCertificate, None));
    p.advance(Duration::from_secs(1));
    assert_eq!(security_types(&p)[2], "InvalidCentralSystemCertificate");
    assert!(SecurityEvent::ResetOrReboot.is_critical());
    assert!(!SecurityEvent::ReconfigurationOfSecurityParameters.is_critical());
    p.assert_no_invalid_outgoing();
}
