//! The sans-IO RPC endpoint: queueing, timeouts, matching, 2.1 SEND and CALLRESULTERROR.

use std::time::Duration;

use ocpp_codec::error::ErrorCode;
use ocpp_codec::rpc::{
    Answer, CounterIds, Endpoint, EndpointConfig, EndpointError, Event, IdGenerator, RandomIds,
};
use ocpp_codec::testing::{Pair, TestClock};
use ocpp_codec::Version;
use serde_json::value::RawValue;

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

fn ep(version: Version) -> Endpoint {
    Endpoint::new(EndpointConfig::new(version).call_timeout(Duration::from_secs(10)))
}

#[test]
fn second_call_waits_until_the_first_is_answered() {
    let clock = TestClock::new();
    let mut a = ep(Version::V16);
    let id1 = a.call(clock.now(), "Heartbeat", raw("{}")).unwrap();
    let id2 = a
        .call(clock.now(), "StatusNotification", raw(r#"{"x":1}"#))
        .unwrap();
    assert_eq!((id1.as_str(), id2.as_str()), ("1", "2"));
    assert_eq!(a.poll_transmit().unwrap(), r#"[2,"1","Heartbeat",{}]"#);
    assert_eq!(a.poll_transmit(), None, "second call must wait");
    assert_eq!(a.in_flight(), Some("1"));
    assert_eq!(a.queued_calls(), 1);

    a.handle_text(
        clock.now(),
        r#"[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]"#,
    );
    assert_eq!(
        a.poll_transmit().unwrap(),
        r#"[2,"2","StatusNotification",{"x":1}]"#
    );
    match a.poll_event() {
        Some(Event::Result {
            id,
            action,
            payload,
        }) => {
            assert_eq!((id.as_str(), action.as_str()), ("1", "Heartbeat"));
            assert_eq!(payload.get(), r#"{"currentTime":"2024-01-01T00:00:00Z"}"#);
        }
        other => panic!("{other:?}"),
    }
    // A CALLERROR also releases the queue.
    a.call(clock.now(), "Heartbeat", raw("{}")).unwrap();
    assert_eq!(a.poll_transmit(), None);
    a.handle_text(clock.now(), r#"[4,"2","NotImplemented","no",{}]"#);
    match a.poll_event() {
        Some(Event::Error {
            id,
            action,
            code,
            description,
            ..
        }) => {
            assert_eq!((id.as_str(), action.as_str()), ("2", "StatusNotification"));
            assert_eq!(
                (code, description.as_str()),
                (ErrorCode::NotImplemented, "no")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.poll_transmit().unwrap(), r#"[2,"3","Heartbeat",{}]"#);
}

#[test]
fn peer_calls_are_answered_while_ours_is_in_flight() {
    let mut pair = Pair::new(
        EndpointConfig::new(Version::V201),
        EndpointConfig::new(Version::V201).id_generator(CounterIds::new("csms-")),
    );
    let now = pair.clock.now();
    pair.a.call(now, "BootNotification", raw("{}")).unwrap();
    pair.b.call(now, "GetVariables", raw("{}")).unwrap();
    pair.drive();
    // Each side sees the other's call while its own is in flight.
    let Some(Event::Call {
        id: b_call, action, ..
    }) = pair.a.poll_event()
    else {
        panic!()
    };
    assert_eq!(
        (b_call.as_str(), action.as_str()),
        ("csms-1", "GetVariables")
    );
    let Some(Event::Call { id: a_call, .. }) = pair.b.poll_event() else {
        panic!()
    };
    pair.a
        .respond(&b_call, &raw(r#"{"getVariableResult":[]}"#))
        .unwrap();
    pair.b
        .respond(&a_call, &raw(r#"{"status":"Accepted"}"#))
        .unwrap();
    pair.drive();
    assert!(
        matches!(pair.a.poll_event(), Some(Event::Result { action, .. }) if action == "BootNotification")
    );
    assert!(
        matches!(pair.b.poll_event(), Some(Event::Result { action, .. }) if action == "GetVariables")
    );
    assert_eq!(pair.a.in_flight(), None);
    assert_eq!(pair.b.in_flight(), None);
    // Answering twice, or an unknown id, is refused.
    assert_eq!(
        pair.a.respond(&b_call, &raw("{}")),
        Err(EndpointError::UnknownCall(b_call.clone()))
    );
    assert!(pair
        .a
        .respond_error("nope", &ErrorCode::GenericError, "", None)
        .is_err());
}

#[test]
fn timeouts_via_poll_timeout_and_handle_timeout() {
    let mut clock = TestClock::new();
    let start = clock.now();
    let mut a = ep(Version::V16);
    assert_eq!(a.poll_timeout(), None);
    a.call(start, "Heartbeat", raw("{}")).unwrap();
    a.call(start, "Heartbeat", raw("{}")).unwrap();
    a.poll_transmit();
    assert_eq!(a.poll_timeout(), Some(start + Duration::from_secs(10)));
    // Early: nothing happens.
    a.handle_timeout(clock.advance(Duration::from_secs(9)));
    assert!(a.poll_event().is_none());
    assert_eq!(a.poll_transmit(), None);
    // At the deadline: timeout, next call transmitted with a fresh deadline.
    let t = clock.advance(Duration::from_secs(1));
    a.handle_timeout(t);
    assert!(
        matches!(a.poll_event(), Some(Event::Timeout { id, action }) if id == "1" && action == "Heartbeat")
    );
    assert_eq!(a.poll_transmit().unwrap(), r#"[2,"2","Heartbeat",{}]"#);
    assert_eq!(a.poll_timeout(), Some(t + Duration::from_secs(10)));
    // The late answer to call 1 is reported, and does not disturb call 2.
    a.handle_text(t, r#"[3,"1",{}]"#);
    assert!(
        matches!(a.poll_event(), Some(Event::Late { id, action, answer: Answer::Result(_) }) if id == "1" && action == "Heartbeat")
    );
    assert_eq!(a.in_flight(), Some("2"));
    a.handle_timeout(clock.advance(Duration::from_secs(10)));
    assert!(matches!(a.poll_event(), Some(Event::Timeout { id, .. }) if id == "2"));
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn unknown_and_duplicate_answers_are_reported() {
    let clock = TestClock::new();
    let mut a = ep(Version::V201);
    a.handle_text(clock.now(), r#"[3,"zzz",{}]"#);
    assert!(
        matches!(a.poll_event(), Some(Event::Unmatched { id, answer: Answer::Result(_) }) if id == "zzz")
    );
    a.call(clock.now(), "Heartbeat", raw("{}")).unwrap();
    a.handle_text(clock.now(), r#"[4,"other","GenericError","",{}]"#);
    assert!(matches!(
        a.poll_event(),
        Some(Event::Unmatched {
            answer: Answer::Error { .. },
            ..
        })
    ));
    assert_eq!(
        a.in_flight(),
        Some("1"),
        "a stray answer leaves the call in flight"
    );
    a.handle_text(clock.now(), r#"[3,"1",{}]"#);
    assert!(matches!(a.poll_event(), Some(Event::Result { .. })));
    a.handle_text(clock.now(), r#"[3,"1",{}]"#);
    assert!(
        matches!(a.poll_event(), Some(Event::Duplicate { id, action, .. }) if id == "1" && action == "Heartbeat")
    );
    // None of this transmits anything.
    assert_eq!(
        a.poll_transmit().as_deref(),
        Some(r#"[2,"1","Heartbeat",{}]"#)
    );
    assert_eq!(a.poll_transmit(), None);
}

#[test]
fn duplicate_incoming_call_gets_a_callerror_after_the_answer() {
    let clock = TestClock::new();
    for (version, code) in [
        (Version::V16, "FormationViolation"),
        (Version::V201, "RpcFrameworkError"),
        (Version::V21, "RpcFrameworkError"),
    ] {
        let mut b = ep(version);
        b.handle_text(clock.now(), r#"[2,"7","Heartbeat",{}]"#);
        b.handle_text(clock.now(), r#"[2,"7","Heartbeat",{}]"#);
        assert!(matches!(b.poll_event(), Some(Event::Call { .. })));
        assert!(matches!(b.poll_event(), Some(Event::DuplicateCall { id, .. }) if id == "7"));
        // Nothing before the real answer, so the peer cannot take the error for it.
        assert_eq!(b.poll_transmit(), None);
        b.respond("7", &raw("{}")).unwrap();
        assert_eq!(b.poll_transmit().unwrap(), r#"[3,"7",{}]"#);
        let copy = b.poll_transmit().unwrap();
        assert!(copy.starts_with(&format!(r#"[4,"7","{code}","#)), "{copy}");
        assert_eq!(b.poll_transmit(), None);
        // Once answered, the same id is a new call, answered once.
        b.handle_text(clock.now(), r#"[2,"7","Heartbeat",{}]"#);
        assert!(matches!(b.poll_event(), Some(Event::Call { .. })));
        b.respond_error("7", &ErrorCode::InternalError, "x", None)
            .unwrap();
        assert!(b
            .poll_transmit()
            .unwrap()
            .starts_with(r#"[4,"7","InternalError""#));
        assert_eq!(b.poll_transmit(), None);
    }
}

#[test]
fn too_many_unanswered_peer_calls_are_refused() {
    let clock = TestClock::new();
    let mut b = Endpoint::new(EndpointConfig::new(Version::V16).max_unanswered_calls(1));
    b.handle_text(clock.now(), r#"[2,"1","Heartbeat",{}]"#);
    b.handle_text(clock.now(), r#"[2,"2","Heartbeat",{}]"#);
    assert!(matches!(b.poll_event(), Some(Event::Call { .. })));
    assert!(matches!(b.poll_event(), Some(Event::CallRefused { id, .. }) if id == "2"));
    assert_eq!(
        b.poll_transmit().unwrap(),
        r#"[4,"2","GenericError","too many unanswered calls",{}]"#
    );
    assert_eq!(b.unanswered_calls().collect::<Vec<_>>(), ["1"]);
}

#[test]
fn respond_error_spells_the_code_for_the_version() {
    let clock = TestClock::new();
    for (version, expected) in [
        (
            Version::V16,
            r#"[4,"1","OccurenceConstraintViolation","missing",{"pointer":"/x"}]"#,
        ),
        (
            Version::V201,
            r#"[4,"1","OccurrenceConstraintViolation","missing",{"pointer":"/x"}]"#,
        ),
    ] {
        let mut b = ep(version);
        b.handle_text(clock.now(), r#"[2,"1","Heartbeat",{}]"#);
        b.poll_event();
        let details = raw(r#"{"pointer":"/x"}"#);
        b.respond_error(
            "1",
            &ErrorCode::OccurrenceConstraintViolation,
            "missing",
            Some(&details),
        )
        .unwrap();
        assert_eq!(b.poll_transmit().unwrap(), expected);
    }
}

#[test]
fn send_in_21_is_immediate_and_never_pending() {
    let clock = TestClock::new();
    let mut a = ep(Version::V21);
    a.call(clock.now(), "Heartbeat", raw("{}")).unwrap();
    let sid = a
        .send(
            clock.now(),
            "NotifyPeriodicEventStream",
            &raw(r#"{"id":1}"#),
        )
        .unwrap();
    assert_eq!(a.poll_transmit().unwrap(), r#"[2,"1","Heartbeat",{}]"#);
    assert_eq!(
        a.poll_transmit().unwrap(),
        format!(r#"[6,"{sid}","NotifyPeriodicEventStream",{{"id":1}}]"#)
    );
    assert_eq!(
        a.in_flight(),
        Some("1"),
        "SEND does not replace the call in flight"
    );
    assert_eq!(a.queued_calls(), 0);
    // Incoming SEND is an event and is not answered.
    a.handle_text(
        clock.now(),
        r#"[6,"s1","NotifyPeriodicEventStream",{"id":2}]"#,
    );
    assert!(
        matches!(a.poll_event(), Some(Event::Send { id, action, payload }) if id == "s1" && action == "NotifyPeriodicEventStream" && payload.get() == r#"{"id":2}"#)
    );
    assert_eq!(a.poll_transmit(), None);
    // Not available before 2.1.
    for version in [Version::V16, Version::V201] {
        let mut e = ep(version);
        assert!(matches!(
            e.send(clock.now(), "NotifyPeriodicEventStream", &raw("{}")),
            Err(EndpointError::NotInVersion { what: "SEND", .. })
        ));
        assert!(e
            .result_error("1", &ErrorCode::FormatViolation, "", None)
            .is_err());
    }
}

#[test]
fn callresulterror_in_21() {
    let clock = TestClock::new();
    let mut a = ep(Version::V21);
    // We answered the peer's call; the peer could not process our CALLRESULT.
    a.handle_text(clock.now(), r#"[2,"p1","Authorize",{}]"#);
    a.poll_event();
    a.respond("p1", &raw(r#"{"idTokenInfo":{"status":"Accepted"}}"#))
        .unwrap();
    a.poll_transmit();
    a.handle_text(clock.now(), r#"[5,"p1","FormatViolation","bad tariff",{}]"#);
    assert!(
        matches!(a.poll_event(), Some(Event::ResultError { id, code: ErrorCode::FormatViolation, description, .. }) if id == "p1" && description == "bad tariff")
    );
    assert_eq!(a.poll_transmit(), None);
    // We could not process the peer's CALLRESULT to our call.
    let id = a.call(clock.now(), "Authorize", raw("{}")).unwrap();
    a.poll_transmit();
    a.handle_text(clock.now(), &format!(r#"[3,"{id}",{{"unexpected":true}}]"#));
    a.poll_event();
    a.result_error(
        &id,
        &ErrorCode::FormatViolation,
        "unexpected property",
        None,
    )
    .unwrap();
    assert_eq!(
        a.poll_transmit().unwrap(),
        format!(r#"[5,"{id}","FormatViolation","unexpected property",{{}}]"#)
    );
    // A malformed CALLRESULT is answered with CALLRESULTERROR automatically on 2.1 only.
    a.handle_text(clock.now(), r#"[3,"q"]"#);
    assert_eq!(
        a.poll_transmit().unwrap(),
        r#"[5,"q","FormatViolation","CALLRESULT must have 3 elements, found 2",{}]"#
    );
}

#[test]
fn generated_ids_are_checked() {
    let clock = TestClock::new();
    let mut a = Endpoint::new(EndpointConfig::new(Version::V16).id_generator(|| "x".repeat(37)));
    assert!(matches!(
        a.call(clock.now(), "Heartbeat", raw("{}")),
        Err(EndpointError::IdTooLong(_))
    ));
    assert_eq!(a.poll_transmit(), None);
    let mut a = Endpoint::new(EndpointConfig::new(Version::V16).id_generator(|| "same".to_owned()));
    a.call(clock.now(), "Heartbeat", raw("{}")).unwrap();
    assert_eq!(
        a.call(clock.now(), "Heartbeat", raw("{}")),
        Err(EndpointError::DuplicateId("same".into()))
    );
    // Random ids: UUID v4 shaped, 36 characters, reproducible from the seed, distinct.
    let mut r1 = RandomIds::new(42);
    let mut r2 = RandomIds::new(42);
    let ids: Vec<String> = (0..1000).map(|_| r1.next_id()).collect();
    assert_eq!(ids[0], r2.next_id());
    for id in &ids {
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}

#[test]
fn pair_runs_a_timeout_without_sleeping() {
    let mut pair = Pair::new(
        EndpointConfig::new(Version::V16),
        EndpointConfig::new(Version::V16),
    );
    let start = pair.clock.now();
    pair.a.call(start, "Heartbeat", raw("{}")).unwrap();
    pair.drive();
    assert!(matches!(pair.b.poll_event(), Some(Event::Call { .. })));
    assert!(pair.advance_to_next_timeout());
    assert_eq!(pair.clock.now(), start + Duration::from_secs(30));
    assert!(matches!(pair.a.poll_event(), Some(Event::Timeout { .. })));
    // b answers late: a reports it as late.
    pair.b.respond("1", &raw("{}")).unwrap();
    pair.drive();
    assert!(matches!(pair.a.poll_event(), Some(Event::Late { .. })));
    assert!(!pair.advance_to_next_timeout());
    assert_eq!(pair.a_sent, [r#"[2,"1","Heartbeat",{}]"#]);
    assert_eq!(pair.b_sent, [r#"[3,"1",{}]"#]);
}
