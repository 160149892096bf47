//! OCPP 1.6 flows on the sans-IO session, on virtual time.

use std::time::Duration;

use ocpp_central::testing::Harness;
use ocpp_central::{
    AnyRequest, AnyResponse, BootState, CallError, ConnectorRef, ConnectorStatus, Event,
};
use ocpp_types::v16;
use ocpp_types::{Decimal, Version};
use serde_json::Value;

const BOOT: &str = r#"[2,"b1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"Volt","firmwareVersion":"1.2"}]"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn booted() -> Harness {
    let mut h = Harness::new(Version::V16);
    let out = h.charger_sends(BOOT);
    assert_eq!(json(&out[0])[2]["status"], "Accepted");
    h.take_events();
    h
}

#[test]
fn boot_pending_then_accepted_with_calls_while_pending() {
    let mut h = Harness::new(Version::V16);
    let mut status = "Pending";
    let defaults = h.session.defaults().clone();
    h.respond_with(move |req| {
        let mut d = defaults.clone();
        if req.action() == "BootNotification" {
            d.boot_status = status;
            status = "Accepted";
        }
        d.response(req)
    });
    let out = h.charger_sends(BOOT);
    let ans = json(&out[0]);
    assert_eq!(ans[2]["status"], "Pending");
    assert_eq!(ans[2]["interval"], 300);
    assert_eq!(ans[2]["currentTime"], "2025-01-01T00:00:00Z");
    assert_eq!(h.session.state().boot, BootState::Pending);

    // While Pending the charger may only boot: anything else is refused with SecurityError.
    let out = h.charger_sends(r#"[2,"s1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]"#);
    assert_eq!(json(&out[0])[2], "SecurityError");

    // The central system may call while Pending, e.g. trigger a status notification...
    let trigger = AnyRequest::from(v16::AnyRequest::TriggerMessage(
        v16::TriggerMessageRequest::new(v16::MessageTrigger::StatusNotification),
    ));
    let id = h.central_calls(&trigger).unwrap();
    assert!(h
        .sent
        .last()
        .unwrap()
        .starts_with(&format!(r#"[2,"{id}","TriggerMessage""#)));
    h.charger_sends(&format!(r#"[3,"{id}",{{"status":"Accepted"}}]"#));
    assert!(matches!(&h.answers[0], (i, Ok(_)) if *i == id));
    // ... and the triggered message is then let through.
    let out = h.charger_sends(r#"[2,"s2","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]"#);
    assert_eq!(out[0], r#"[3,"s2",{}]"#);

    // The retried boot is accepted.
    h.advance(Duration::from_secs(300));
    let out = h.charger_sends(&BOOT.replace("b1", "b2"));
    assert_eq!(json(&out[0])[2]["status"], "Accepted");
    assert_eq!(json(&out[0])[2]["currentTime"], "2025-01-01T00:05:00Z");
    let st = h.session.state();
    assert_eq!(st.boot, BootState::Accepted);
    assert_eq!(st.heartbeat_interval, Some(300));
    let info = st.info.clone().unwrap();
    assert_eq!(
        (info.vendor.as_str(), info.model.as_str()),
        ("ACME", "Volt")
    );
    assert_eq!(info.firmware_version.as_deref(), Some("1.2"));
    let booted: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Booted { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(booted, [BootState::Pending, BootState::Accepted]);
}

#[test]
fn rejected_boot_blocks_calls_both_ways() {
    let mut h = Harness::new(Version::V16);
    let defaults = h.session.defaults().clone();
    h.respond_with(move |req| {
        let mut d = defaults.clone();
        d.boot_status = "Rejected";
        d.response(req)
    });
    h.charger_sends(BOOT);
    assert_eq!(h.session.state().boot, BootState::Rejected);
    let out = h.charger_sends(r#"[2,"h1","Heartbeat",{}]"#);
    assert_eq!(json(&out[0])[2], "SecurityError");
    let reset = AnyRequest::from(v16::AnyRequest::Reset(v16::ResetRequest::new(
        v16::ResetType::Soft,
    )));
    assert_eq!(h.central_calls(&reset), Err(CallError::BootRejected));
}

#[test]
fn heartbeat_updates_last_seen_and_answers_the_wall_clock() {
    let mut h = booted();
    h.advance(Duration::from_secs(60));
    let out = h.charger_sends(r#"[2,"h1","Heartbeat",{}]"#);
    assert_eq!(out[0], r#"[3,"h1",{"currentTime":"2025-01-01T00:01:00Z"}]"#);
    let st = h.session.state();
    assert_eq!(
        st.last_heartbeat.unwrap().to_rfc3339(),
        "2025-01-01T00:01:00+00:00"
    );
    assert_eq!(h.session.last_seen(), st.last_heartbeat);
    assert!(matches!(h.events.last(), Some(Event::Heartbeat { .. })));
}

#[test]
fn whole_transaction_with_exact_energy_and_idempotent_resends() {
    let mut h = booted();
    h.charger_sends(r#"[2,"s1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Preparing"}]"#);
    assert_eq!(
        h.session.state().connectors[&ConnectorRef::v16(1)].status,
        ConnectorStatus::Preparing
    );
    let out = h.charger_sends(r#"[2,"a1","Authorize",{"idTag":"TAG1"}]"#);
    assert_eq!(out[0], r#"[3,"a1",{"idTagInfo":{"status":"Accepted"}}]"#);

    let start = r#"[2,"t1","StartTransaction",{"connectorId":1,"idTag":"TAG1","meterStart":1000,"timestamp":"2025-01-01T00:00:10Z"}]"#;
    let out = h.charger_sends(start);
    assert_eq!(
        out[0],
        r#"[3,"t1",{"idTagInfo":{"status":"Accepted"},"transactionId":1}]"#
    );
    // The charger did not get the answer and sends it again: same id, not a second transaction.
    let out = h.charger_sends(&start.replace("\"t1\"", "\"t1b\""));
    assert_eq!(
        out[0],
        r#"[3,"t1b",{"idTagInfo":{"status":"Accepted"},"transactionId":1}]"#
    );
    assert_eq!(h.session.state().transactions.len(), 1);
    assert!(matches!(
        h.events.last(),
        Some(Event::DuplicateMessage { .. })
    ));

    // kWh and Wh readings, exact decimals.
    h.charger_sends(r#"[2,"m1","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2025-01-01T00:05:00Z","sampledValue":[{"value":"1.2345","unit":"kWh","measurand":"Energy.Active.Import.Register"},{"value":"7.4","unit":"kW","measurand":"Power.Active.Import"}]}]}]"#);
    let tx = &h.session.state().transactions["1"];
    assert_eq!(tx.energy_wh, Decimal::new(2345, 1)); // 1234.5 - 1000
    assert_eq!(tx.samples_received, 2);
    assert_eq!(tx.power_w, Some(Decimal::from(7400)));
    h.charger_sends(r#"[2,"m2","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2025-01-01T00:10:00Z","sampledValue":[{"value":"2100"}]}]}]"#);
    assert_eq!(
        h.session.state().transactions["1"].energy_wh,
        Decimal::from(1100)
    );

    let stop = r#"[2,"x1","StopTransaction",{"transactionId":1,"idTag":"TAG1","meterStop":3001,"timestamp":"2025-01-01T00:20:00Z","reason":"EVDisconnected"}]"#;
    let out = h.charger_sends(stop);
    assert_eq!(out[0], r#"[3,"x1",{"idTagInfo":{"status":"Accepted"}}]"#);
    assert!(h.session.state().transactions.is_empty());
    let ended = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::TransactionEnded { transaction, .. } => Some(transaction.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ended.energy_wh, Decimal::from(2001));
    assert_eq!(ended.stop_reason.as_deref(), Some("EVDisconnected"));
    assert_eq!(ended.id_token.as_deref(), Some("TAG1"));
    // A re-sent stop gets the same answer and ends nothing twice.
    let n = h.events.len();
    let out = h.charger_sends(&stop.replace("\"x1\"", "\"x2\""));
    assert_eq!(out[0], r#"[3,"x2",{"idTagInfo":{"status":"Accepted"}}]"#);
    assert!(matches!(&h.events[n..], [Event::DuplicateMessage { .. }]));

    // The next transaction gets the next id from the injected source.
    let out = h.charger_sends(
        &start
            .replace("00:00:10", "00:30:00")
            .replace("\"t1\"", "\"t2\""),
    );
    assert_eq!(json(&out[0])[2]["transactionId"], 2);
}

#[test]
fn offline_transaction_replayed_after_reconnect() {
    let mut h = booted();
    // Started offline an hour ago; the queued messages arrive in order after the boot.
    h.advance(Duration::from_secs(3600));
    let out = h.charger_sends(r#"[2,"o1","StartTransaction",{"connectorId":2,"idTag":"OFF","meterStart":0,"timestamp":"2025-01-01T00:00:30Z"}]"#);
    let id = json(&out[0])[2]["transactionId"].as_i64().unwrap();
    let tx_id = id.to_string();
    assert_eq!(
        h.session.state().transactions[&tx_id]
            .started_at
            .to_rfc3339(),
        "2025-01-01T00:00:30+00:00"
    );
    h.charger_sends(&format!(r#"[2,"o2","MeterValues",{{"connectorId":2,"transactionId":{id},"meterValue":[{{"timestamp":"2025-01-01T00:10:00Z","sampledValue":[{{"value":"500.5"}}]}}]}}]"#));
    h.charger_sends(&format!(r#"[2,"o3","StopTransaction",{{"transactionId":{id},"meterStop":800,"timestamp":"2025-01-01T00:20:00Z","transactionData":[{{"timestamp":"2025-01-01T00:20:00Z","sampledValue":[{{"value":"800","context":"Transaction.End"}}]}}]}}]"#));
    let ended = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::TransactionEnded { transaction, .. } => Some(transaction.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ended.id, tx_id);
    assert_eq!(ended.energy_wh, Decimal::from(800));
    assert_eq!(ended.samples_received, 2);
    assert_eq!(ended.stop_reason.as_deref(), Some("Local"));
}

#[test]
fn remote_start_and_stop_calls_get_typed_answers() {
    let mut h = booted();
    let req = AnyRequest::from(v16::AnyRequest::from(
        v16::RemoteStartTransactionRequest::new("TAG9".parse().unwrap()),
    ));
    let id = h.central_calls(&req).unwrap();
    assert_eq!(
        h.sent.last().unwrap(),
        &format!(r#"[2,"{id}","RemoteStartTransaction",{{"idTag":"TAG9"}}]"#)
    );
    h.charger_sends(&format!(r#"[3,"{id}",{{"status":"Accepted"}}]"#));
    match &h.answers[0] {
        (i, Ok(AnyResponse::V16(b))) => match b {
            v16::AnyResponse::RemoteStartTransaction(r) => {
                assert_eq!(i, &id);
                assert_eq!(r.status, v16::RemoteStartStopStatus::Accepted);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let stop = AnyRequest::from(v16::AnyRequest::RemoteStopTransaction(
        v16::RemoteStopTransactionRequest::new(1),
    ));
    let id = h.central_calls(&stop).unwrap();
    h.charger_sends(&format!(r#"[4,"{id}","NotSupported","no",{{}}]"#));
    assert!(matches!(
        &h.answers[1],
        (_, Err(CallError::CallError { code, .. })) if *code == ocpp_codec::ErrorCode::NotSupported
    ));
    // An invalid answer is reported as such.
    let id = h.central_calls(&stop).unwrap();
    h.charger_sends(&format!(r#"[3,"{id}",{{"status":"Maybe"}}]"#));
    assert!(matches!(
        &h.answers[2],
        (_, Err(CallError::InvalidResponse(_)))
    ));
}

#[test]
fn call_timeout_then_the_queued_call_goes_out() {
    let mut h = booted();
    let req = AnyRequest::from(v16::AnyRequest::ClearCache(v16::ClearCacheRequest::new()));
    let first = h.central_calls(&req).unwrap();
    let second = h.central_calls(&req).unwrap();
    // One call in flight: the second waits.
    assert!(!h.sent.iter().any(|m| m.contains(&format!("\"{second}\""))));
    assert!(h.advance_to_next_timeout());
    assert_eq!(h.answers[0], (first.clone(), Err(CallError::Timeout)));
    assert!(h.sent.last().unwrap().contains(&format!("\"{second}\"")));
    // A late answer to the first changes nothing.
    h.charger_sends(&format!(r#"[3,"{first}",{{"status":"Accepted"}}]"#));
    assert_eq!(h.answers.len(), 1);
}

#[test]
fn bad_input_is_answered_in_1_6_words_and_the_session_lives_on() {
    let mut h = booted();
    let cases = [
        (r#"[2,"u1","Frobnicate",{}]"#, "NotImplemented"),
        (r#"[2,"u2","Reset",{"type":"Hard"}]"#, "NotSupported"),
        (r#"[2,"u3","Authorize",{}]"#, "OccurenceConstraintViolation"),
        (
            r#"[2,"u4","Authorize",{"idTag":5}]"#,
            "TypeConstraintViolation",
        ),
        (
            r#"[2,"u5","Authorize",{"idTag":"123456789012345678901"}]"#,
            "TypeConstraintViolation",
        ),
        (
            r#"[2,"u8","Authorize",{"idTag":"A","x":1}]"#,
            "FormationViolation",
        ),
        (
            r#"[2,"u6","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}]"#,
            "PropertyConstraintViolation",
        ),
        ("not json", "FormationViolation"),
        (r#"[2,"u7","Heartbeat"]"#, "FormationViolation"),
    ];
    for (input, code) in cases {
        let out = h.charger_sends(input);
        assert_eq!(out.len(), 1, "{input}");
        assert_eq!(json(&out[0])[2], code, "{input} -> {}", out[0]);
    }
    let out = h.charger_sends(r#"[2,"ok","Heartbeat",{}]"#);
    assert!(out[0].starts_with(r#"[3,"ok",{"currentTime""#));
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Refused { action, .. } if action == "Frobnicate")));
}

#[test]
fn close_fails_pending_calls_and_reports_disconnect() {
    let mut h = booted();
    let req = AnyRequest::from(v16::AnyRequest::ClearCache(v16::ClearCacheRequest::new()));
    let id = h.central_calls(&req).unwrap();
    h.session.handle_close(Some("bye".into()));
    h.pump();
    assert_eq!(h.answers[0], (id, Err(CallError::Disconnected)));
    assert!(matches!(h.events.last(), Some(Event::Disconnected { reason: Some(r) }) if r == "bye"));
    assert!(!h.session.state().connected);
}

#[test]
fn wrong_response_is_refused() {
    let mut h = Harness::new(Version::V16);
    h.respond_with(|_| {
        Ok(AnyResponse::from(v16::AnyResponse::ClearCache(
            serde_json::from_str(r#"{"status":"Accepted"}"#).unwrap(),
        )))
    });
    let out = h.charger_sends(r#"[2,"h1","Heartbeat",{}]"#);
    assert_eq!(json(&out[0])[2], "InternalError");
}
