//! OCPP 2.0.1 and 2.1 flows on the sans-IO session, on virtual time.

use std::time::Duration;

use ocpp_central::testing::Harness;
use ocpp_central::{
    AnyRequest, AnyResponse, BootState, CallError, ConnectorRef, ConnectorStatus, Event,
};
use ocpp_types::{Decimal, Version};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

const BOOT: &str = r#"[2,"b1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"Volt","vendorName":"ACME","firmwareVersion":"2.0"}}]"#;

fn booted(version: Version) -> Harness {
    let mut h = Harness::new(version);
    let out = h.charger_sends(BOOT);
    assert_eq!(json(&out[0])[2]["status"], "Accepted", "{}", out[0]);
    h.take_events();
    h
}

fn tx_event(id: &str, event: &str, seq: i32, extra: &str) -> String {
    format!(
        r#"[2,"{id}","TransactionEvent",{{"eventType":"{event}","timestamp":"2025-01-01T00:{seq:02}:00Z","triggerReason":"MeterValuePeriodic","seqNo":{seq},"transactionInfo":{{"transactionId":"TX-1"}},"evse":{{"id":1,"connectorId":1}}{extra}}}]"#
    )
}

fn energy(wh: &str) -> String {
    format!(
        r#","meterValue":[{{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{{"value":{wh},"measurand":"Energy.Active.Import.Register","unitOfMeasure":{{"unit":"kWh","multiplier":0}}}}]}}]"#
    )
}

#[test]
fn v201_boot_pending_then_accepted_and_security_error_meanwhile() {
    let mut h = Harness::new(Version::V201);
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
    assert_eq!(json(&out[0])[2]["status"], "Pending");
    let out = h.charger_sends(r#"[2,"h1","Heartbeat",{}]"#);
    assert_eq!(json(&out[0])[2], "SecurityError");
    h.advance(Duration::from_secs(300));
    let out = h.charger_sends(&BOOT.replace("b1", "b2"));
    assert_eq!(json(&out[0])[2]["status"], "Accepted");
    assert_eq!(h.session.state().boot, BootState::Accepted);
    assert_eq!(h.session.state().info.as_ref().unwrap().vendor, "ACME");
    let out = h.charger_sends(r#"[2,"h2","Heartbeat",{}]"#);
    assert_eq!(out[0], r#"[3,"h2",{"currentTime":"2025-01-01T00:05:00Z"}]"#);
}

#[test]
fn v201_transaction_with_duplicates_gaps_and_offline_replays() {
    let mut h = booted(Version::V201);
    h.charger_sends(r#"[2,"s1","StatusNotification",{"timestamp":"2025-01-01T00:00:00Z","connectorStatus":"Occupied","evseId":1,"connectorId":1}]"#);
    assert_eq!(
        h.session.state().connectors[&ConnectorRef::evse(1, Some(1))].status,
        ConnectorStatus::Occupied
    );
    let out = h.charger_sends(&tx_event(
        "e0",
        "Started",
        0,
        &format!(
            r#","idToken":{{"idToken":"TOK","type":"ISO14443"}}{}"#,
            energy("10.000")
        ),
    ));
    assert_eq!(out[0], r#"[3,"e0",{"idTokenInfo":{"status":"Accepted"}}]"#);
    let tx = &h.session.state().transactions["TX-1"];
    assert_eq!(tx.meter_start_wh, Some(Decimal::new(10000000, 3)));
    assert_eq!(tx.id_token.as_deref(), Some("TOK"));

    h.charger_sends(&tx_event("e1", "Updated", 1, &energy("10.5")));
    assert_eq!(
        h.session.state().transactions["TX-1"].energy_wh,
        Decimal::from(500)
    );
    // The same message again (the charger missed our answer): same answer, no double count.
    let n = h.events.len();
    let out = h.charger_sends(&tx_event("e1-again", "Updated", 1, &energy("10.5")));
    assert_eq!(out[0], r#"[3,"e1-again",{}]"#);
    assert!(matches!(&h.events[n..], [Event::DuplicateMessage { .. }]));
    assert_eq!(h.session.state().transactions["TX-1"].samples_received, 2);

    // seqNo 2 is lost for now: 3 reveals the gap.
    h.charger_sends(&tx_event("e3", "Updated", 3, &energy("11.25")));
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::SequenceGap { transaction_id, expected: 2, received: 3 } if transaction_id == "TX-1"
    )));
    assert_eq!(
        h.session.state().transactions["TX-1"].seq_gaps.ranges(),
        [(2, 2)]
    );
    // 2 arrives late, flagged offline: the gap closes.
    h.charger_sends(&tx_event(
        "e2",
        "Updated",
        2,
        &format!(r#","offline":true{}"#, energy("11")),
    ));
    let tx = &h.session.state().transactions["TX-1"];
    assert!(tx.seq_gaps.is_empty());
    assert!(tx.offline);
    assert_eq!(tx.next_seq_no, Some(4));

    h.charger_sends(&tx_event("e4", "Ended", 4, &energy("12.3456")).replace(
        r#""transactionId":"TX-1""#,
        r#""transactionId":"TX-1","stoppedReason":"EVDisconnected""#,
    ));
    assert!(h.session.state().transactions.is_empty());
    let ended = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::TransactionEnded { transaction, .. } => Some(transaction.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ended.energy_wh, Decimal::new(23456, 1)); // 12345.6 - 10000 Wh, exact
    assert_eq!(ended.stop_reason.as_deref(), Some("EVDisconnected"));
    assert!(ended.offline);
    // A re-sent Ended after the end is answered, not processed.
    let out = h.charger_sends(&tx_event("e4b", "Ended", 4, &energy("12.3456")));
    assert_eq!(out[0], r#"[3,"e4b",{}]"#);
}

#[test]
fn v201_transaction_seen_first_mid_way_is_started_implicitly() {
    let mut h = booted(Version::V201);
    h.charger_sends(&tx_event("e5", "Updated", 5, &energy("1")));
    assert!(matches!(h.events[0], Event::TransactionStarted { .. }));
    assert!(h
        .events
        .iter()
        .all(|e| !matches!(e, Event::SequenceGap { .. })));
}

#[test]
fn v201_multiplier_and_wh_units_are_exact() {
    let mut h = booted(Version::V201);
    h.charger_sends(&tx_event("e0", "Started", 0, r#","meterValue":[{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{"value":1234,"unitOfMeasure":{"unit":"Wh","multiplier":1}}]}]"#));
    h.charger_sends(&tx_event("e1", "Updated", 1, r#","meterValue":[{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{"value":12.5,"unitOfMeasure":{"unit":"kWh","multiplier":0}}]}]"#));
    assert_eq!(
        h.session.state().transactions["TX-1"].energy_wh,
        Decimal::from(160)
    );
}

#[test]
fn v201_bad_input_in_2x_words() {
    let mut h = booted(Version::V201);
    for (input, code) in [
        (r#"[2,"u1","Frobnicate",{}]"#, "NotImplemented"),
        (
            r#"[2,"u2","RequestStartTransaction",{"idToken":{"idToken":"a","type":"Local"},"remoteStartId":1}]"#,
            "NotSupported",
        ),
        (
            r#"[2,"u3","Authorize",{}]"#,
            "OccurrenceConstraintViolation",
        ),
        (r#"[2,"u4","Heartbeat",{"extra":1}]"#, "FormatViolation"),
        ("not json", "RpcFrameworkError"),
        (r#"[7,"u5"]"#, "MessageTypeNotSupported"),
    ] {
        let out = h.charger_sends(input);
        assert_eq!(json(&out[0])[2], code, "{input} -> {}", out[0]);
    }
    assert!(h.charger_sends(r#"[2,"ok","Heartbeat",{}]"#)[0].starts_with(r#"[3,"ok""#));
}

#[test]
fn v201_remote_start_and_timeout() {
    use ocpp_types::v201;
    let mut h = booted(Version::V201);
    let tok: v201::IdTokenType =
        serde_json::from_str(r#"{"idToken":"T","type":"Central"}"#).unwrap();
    let req = AnyRequest::from(v201::AnyRequest::from(
        v201::RequestStartTransactionRequest::new(tok, 7),
    ));
    let id = h.central_calls(&req).unwrap();
    h.charger_sends(&format!(
        r#"[3,"{id}",{{"status":"Accepted","transactionId":"TX-9"}}]"#
    ));
    assert!(matches!(
        &h.answers[0].1,
        Ok(AnyResponse::V201(b)) if matches!(b, v201::AnyResponse::RequestStartTransaction(r) if r.transaction_id.as_deref() == Some("TX-9"))
    ));
    let id = h.central_calls(&req).unwrap();
    assert!(h.advance_to_next_timeout());
    assert_eq!(h.answers[1], (id, Err(CallError::Timeout)));
}

#[test]
fn v21_boot_and_transaction() {
    let mut h = booted(Version::V21);
    assert_eq!(h.session.state().boot, BootState::Accepted);
    h.charger_sends(&tx_event("e0", "Started", 0, &energy("0.1")));
    h.charger_sends(&tx_event("e1", "Ended", 1, &energy("0.35")));
    let ended = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::TransactionEnded {
                transaction,
                request,
                ..
            } => {
                assert_eq!(request.version(), Version::V21);
                Some(transaction.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(ended.energy_wh, Decimal::from(250));
    // A 2.1 invalid answer to our call gets a CALLRESULTERROR naming the violation, with its
    // pointer (the codec's answer, as the charger station's and ocpp-inspect's).
    let req = AnyRequest::from(ocpp_types::v21::AnyRequest::ClearCache(
        serde_json::from_str("{}").unwrap(),
    ));
    let id = h.central_calls(&req).unwrap();
    let out = h.charger_sends(&format!(r#"[3,"{id}",{{"status":"Nope"}}]"#));
    assert_eq!(
        out[0],
        format!(
            r#"[5,"{id}","PropertyConstraintViolation","/status: \"Nope\" is not one of \"Accepted\" or \"Rejected\"",{{"pointer":"/status"}}]"#
        )
    );
}

#[test]
fn data_transfer_default_is_unknown_vendor_and_decisions_are_not_supported() {
    let mut h = booted(Version::V201);
    let out = h.charger_sends(r#"[2,"d1","DataTransfer",{"vendorId":"X"}]"#);
    assert_eq!(out[0], r#"[3,"d1",{"status":"UnknownVendorId"}]"#);
    let out = h.charger_sends(r#"[2,"n1","NotifyEvent",{"generatedAt":"2025-01-01T00:00:00Z","seqNo":0,"eventData":[{"eventId":1,"timestamp":"2025-01-01T00:00:00Z","trigger":"Alerting","actualValue":"1","eventNotificationType":"HardWiredNotification","component":{"name":"C"},"variable":{"name":"V"}}]}]"#);
    assert_eq!(out[0], r#"[3,"n1",{}]"#);
    let out = h.charger_sends(r#"[2,"g1","SignCertificate",{"csr":"abc"}]"#);
    assert_eq!(json(&out[0])[2], "NotSupported");
}

#[test]
fn every_bad_input_class_of_the_codec_table_per_version_and_the_session_lives_on() {
    let long_id = "x".repeat(37);
    let too_long_id = format!(r#"[2,"{long_id}","Heartbeat",{{}}]"#);
    // (input, 1.6 reply, 2.0.1 reply, 2.1 reply): Some((frame type, id, code)) or None.
    type R = Option<(u64, &'static str, &'static str)>;
    let rows: Vec<(&str, R, R, R)> = vec![
        (
            "not json",
            Some((4, "-1", "FormationViolation")),
            Some((4, "-1", "RpcFrameworkError")),
            Some((4, "-1", "RpcFrameworkError")),
        ),
        (
            r#"[2,"abc","#,
            Some((4, "abc", "FormationViolation")),
            Some((4, "abc", "RpcFrameworkError")),
            Some((4, "abc", "RpcFrameworkError")),
        ),
        (
            r#"{"a":1}"#,
            Some((4, "-1", "FormationViolation")),
            Some((4, "-1", "RpcFrameworkError")),
            Some((4, "-1", "RpcFrameworkError")),
        ),
        (
            "[]",
            Some((4, "-1", "FormationViolation")),
            Some((4, "-1", "RpcFrameworkError")),
            Some((4, "-1", "RpcFrameworkError")),
        ),
        (
            r#"["2","abc","Heartbeat",{}]"#,
            Some((4, "abc", "FormationViolation")),
            Some((4, "abc", "RpcFrameworkError")),
            Some((4, "abc", "RpcFrameworkError")),
        ),
        (
            r#"[7,"abc"]"#,
            None,
            Some((4, "abc", "MessageTypeNotSupported")),
            None,
        ),
        (
            r#"[5,"abc","GenericError","d",{}]"#,
            None,
            Some((4, "abc", "MessageTypeNotSupported")),
            None,
        ),
        (
            r#"[2,1,"Heartbeat",{}]"#,
            Some((4, "-1", "FormationViolation")),
            Some((4, "-1", "RpcFrameworkError")),
            Some((4, "-1", "RpcFrameworkError")),
        ),
        (
            &too_long_id,
            Some((4, "-1", "FormationViolation")),
            Some((4, "-1", "RpcFrameworkError")),
            Some((4, "-1", "RpcFrameworkError")),
        ),
        (
            r#"[2,"abc","Heartbeat"]"#,
            Some((4, "abc", "FormationViolation")),
            Some((4, "abc", "RpcFrameworkError")),
            Some((4, "abc", "RpcFrameworkError")),
        ),
        (
            r#"[2,"abc",5,{}]"#,
            Some((4, "abc", "FormationViolation")),
            Some((4, "abc", "RpcFrameworkError")),
            Some((4, "abc", "RpcFrameworkError")),
        ),
        (
            r#"[3,"abc"]"#,
            None,
            None,
            Some((5, "abc", "FormatViolation")),
        ),
        (r#"[4,"abc","GenericError"]"#, None, None, None),
    ];
    for (i, version) in [Version::V16, Version::V201, Version::V21]
        .into_iter()
        .enumerate()
    {
        let mut h = if version == Version::V16 {
            let mut h = Harness::new(version);
            h.charger_sends(
                r#"[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#,
            );
            h
        } else {
            booted(version)
        };
        for (input, r16, r201, r21) in &rows {
            let expected = [r16, r201, r21][i];
            let out = h.charger_sends(input);
            match expected {
                None => assert!(out.is_empty(), "{version} {input}: {out:?}"),
                Some((ty, id, code)) => {
                    assert_eq!(out.len(), 1, "{version} {input}");
                    let f = json(&out[0]);
                    assert_eq!(
                        (
                            f[0].as_u64().unwrap(),
                            f[1].as_str().unwrap(),
                            f[2].as_str().unwrap()
                        ),
                        (*ty, *id, *code),
                        "{version} {input}"
                    );
                }
            }
        }
        let out = h.charger_sends(r#"[2,"ok","Heartbeat",{}]"#);
        assert!(out[0].starts_with(r#"[3,"ok""#), "{version}");
    }
}

#[test]
fn v201_pending_charger_may_send_what_was_triggered() {
    use ocpp_types::v201;
    let mut h = Harness::new(Version::V201);
    let defaults = h.session.defaults().clone();
    h.respond_with(move |req| {
        let mut d = defaults.clone();
        d.boot_status = "Pending";
        d.response(req)
    });
    h.charger_sends(BOOT);
    assert_eq!(h.session.state().boot, BootState::Pending);
    let out = h.charger_sends(r#"[2,"c0","SignCertificate",{"csr":"x"}]"#);
    assert_eq!(json(&out[0])[2], "SecurityError");
    let trigger = AnyRequest::from(v201::AnyRequest::from(v201::TriggerMessageRequest::new(
        v201::MessageTriggerEnumType::SignChargingStationCertificate,
    )));
    let id = h.central_calls(&trigger).unwrap();
    h.charger_sends(&format!(r#"[3,"{id}",{{"status":"Accepted"}}]"#));
    // Let through to the application (whose default for SignCertificate is NotSupported).
    let out = h.charger_sends(r#"[2,"c1","SignCertificate",{"csr":"x"}]"#);
    assert_eq!(json(&out[0])[2], "NotSupported");
    assert!(h.events.iter().all(|e| !matches!(e, Event::Refused { code, .. } if *code == ocpp_codec::ErrorCode::NotSupported)));
}

#[test]
fn lenient_mode_repairs_what_field_devices_send_and_reports_it() {
    use ocpp_codec::typed::RepairKind;
    // A sloppy StatusNotification: timestamp without offset, evseId as a string, a vendor
    // property. Strict: refused. Lenient: accepted, every repair reported.
    let sloppy = r#"[2,"s1","StatusNotification",{"timestamp":"2025-01-01T00:00:00","connectorStatus":"Available","evseId":"1","connectorId":1,"vendorX":true}]"#;
    let mut strict = booted(Version::V201);
    let out = strict.charger_sends(sloppy);
    assert_eq!(json(&out[0])[0], 4, "strict refuses: {}", out[0]);

    let mut h = Harness::with_config(|c| c.lenient(true), Version::V201);
    let out = h.charger_sends(BOOT);
    assert_eq!(json(&out[0])[2]["status"], "Accepted");
    h.take_events();
    let out = h.charger_sends(sloppy);
    assert_eq!(out, [r#"[3,"s1",{}]"#]);
    let events = h.take_events();
    let Some(Event::Repaired { action, repairs }) = events.first() else {
        panic!("{events:?}")
    };
    assert_eq!(action, "StatusNotification");
    let kinds: Vec<(&str, RepairKind)> = repairs
        .iter()
        .map(|r| (r.pointer.as_str(), r.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("/timestamp", RepairKind::TimestampOffsetAdded),
            ("/evseId", RepairKind::NumberFromString),
            ("/vendorX", RepairKind::UnknownPropertyRemoved),
        ]
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::StatusChanged {
                status: ConnectorStatus::Available,
                ..
            }
        )),
        "{events:?}"
    );
    // What cannot be repaired still gets the strict answer.
    let out = h.charger_sends(
        r#"[2,"s2","StatusNotification",{"timestamp":"2025-01-01T00:00:00Z","connectorStatus":"Sideways","evseId":1,"connectorId":1}]"#,
    );
    assert_eq!(
        json(&out[0])[2],
        "PropertyConstraintViolation",
        "{}",
        out[0]
    );
}

/// The handler sees the payload as the charger sent it, and whether lenient mode repaired it
/// (then its typed request is not what that text decodes to on its own).
#[test]
fn a_handler_sees_the_payload_as_sent_and_whether_it_was_repaired() {
    use std::sync::{Arc, Mutex};

    use ocpp_central::{CallFailure, ChargerHandle, HandleV201, Handler};
    use ocpp_types::v201;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, bool)>>);
    impl Handler for Seen {
        fn v201(&self) -> Option<&dyn HandleV201> {
            Some(self)
        }
    }
    #[async_trait::async_trait]
    impl HandleV201 for Seen {
        async fn status_notification(
            &self,
            _charger: &ChargerHandle,
            _request: v201::StatusNotificationRequest,
        ) -> Result<v201::StatusNotificationResponse, CallFailure> {
            let call = ocpp_central::with_incoming_call(|c| {
                c.map(|c| (c.payload().to_owned(), c.repaired()))
            });
            self.0.lock().unwrap().extend(call);
            Ok(v201::StatusNotificationResponse::new())
        }
    }

    let mut h = Harness::with_config(|c| c.lenient(true), Version::V201);
    h.charger_sends(BOOT);
    let seen = Arc::new(Seen::default());
    h.respond_with_handler(seen.clone());
    let clean = r#"{"timestamp":"2025-01-01T00:00:00Z", "connectorStatus":"Available","evseId":1,"connectorId":1}"#;
    let sloppy = r#"{"timestamp":"2025-01-01T00:00:00","connectorStatus":"Available","evseId":"1","connectorId":1}"#;
    for (id, payload) in [("s1", clean), ("s2", sloppy)] {
        let out = h.charger_sends(&format!(r#"[2,"{id}","StatusNotification",{payload}]"#));
        assert_eq!(out, [format!(r#"[3,"{id}",{{}}]"#)]);
    }
    assert_eq!(
        *seen.0.lock().unwrap(),
        [(clean.to_owned(), false), (sloppy.to_owned(), true)]
    );
}

#[test]
fn v201_the_last_sixteen_answers_of_a_connection_are_remembered_and_no_more() {
    let mut h = booted(Version::V201);
    let start = format!(
        r#","idToken":{{"idToken":"TOK","type":"ISO14443"}}{}"#,
        energy("10.000")
    );
    h.charger_sends(&tx_event("e0", "Started", 0, &start));
    for seq in 1..=20 {
        h.charger_sends(&tx_event(
            &format!("e{seq}"),
            "Updated",
            seq,
            &energy("10.5"),
        ));
    }
    // seqNo 5 to 20 are the last sixteen: a copy of 5 is answered as remembered...
    let n = h.events.len();
    let out = h.charger_sends(&tx_event("e5-again", "Updated", 5, &energy("10.5")));
    assert_eq!(out[0], r#"[3,"e5-again",{}]"#);
    assert!(matches!(&h.events[n..], [Event::DuplicateMessage { .. }]));
    // ... and one of 4 was forgotten: it reaches the application again (which answers it).
    let n = h.events.len();
    let out = h.charger_sends(&tx_event("e4-again", "Updated", 4, &energy("10.5")));
    assert_eq!(out[0], r#"[3,"e4-again",{}]"#);
    assert!(!h.events[n..]
        .iter()
        .any(|e| matches!(e, Event::DuplicateMessage { .. })));
}
