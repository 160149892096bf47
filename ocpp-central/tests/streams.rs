//! OCPP 2.1 periodic event streams on the sans-IO session: OpenPeriodicEventStream answered
//! and projected, NotifyPeriodicEventStream SENDs decoded into typed samples with absolute
//! times, every bad SEND left unanswered and reported, ClosePeriodicEventStream.

use chrono::{TimeZone, Utc};
use ocpp_central::streams::{StreamNotice, StreamParams};
use ocpp_central::testing::Harness;
use ocpp_central::Event;
use ocpp_types::Version;

const BOOT: &str = r#"[2,"b1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"Volt","vendorName":"ACME"}}]"#;

fn booted() -> Harness {
    let mut h = Harness::new(Version::V21);
    h.charger_sends(BOOT);
    h.take_events();
    h
}

fn stream_data(h: &mut Harness) -> Vec<ocpp_central::streams::StreamData> {
    h.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StreamData { data } => Some(data),
            _ => None,
        })
        .collect()
}

#[test]
fn open_samples_and_close() {
    let mut h = booted();
    let out = h.charger_sends(
        r#"[2,"o1","OpenPeriodicEventStream",{"constantStreamData":{"id":7,"variableMonitoringId":7,"params":{"interval":10,"values":5}}}]"#,
    );
    assert_eq!(out, [r#"[3,"o1",{"status":"Accepted"}]"#]);
    let opened: Vec<StreamNotice> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::EventStream { notice, .. } => Some(notice),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1);
    match &opened[0] {
        StreamNotice::Opened(info) => {
            assert_eq!((info.id, info.monitor_id), (7, 7));
            assert_eq!(
                info.params,
                StreamParams {
                    interval: Some(10),
                    values: Some(5)
                }
            );
        }
        other => panic!("{other:?}"),
    }

    // A SEND: no answer, one typed event with absolute times (exact milliseconds).
    let out = h.charger_sends(
        r#"[6,"s1","NotifyPeriodicEventStream",{"id":7,"pending":3,"basetime":"2025-01-01T00:00:10Z","data":[{"t":0,"v":"7400"},{"t":1.25,"v":"7390.5"},{"t":3600,"v":"0"}]}]"#,
    );
    assert!(out.is_empty(), "{out:?}");
    let data = stream_data(&mut h);
    assert_eq!(data.len(), 1);
    let d = &data[0];
    assert_eq!((d.id, d.pending), (7, 3));
    let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 10).unwrap();
    assert_eq!(d.samples[0].at, base);
    assert_eq!(d.samples[1].at, base + chrono::Duration::milliseconds(1250));
    assert_eq!(d.samples[1].value, "7390.5");
    assert_eq!(d.samples[2].at, base + chrono::Duration::hours(1));
    assert_eq!(h.sends.len(), 1);

    let out = h.charger_sends(r#"[2,"c1","ClosePeriodicEventStream",{"id":7}]"#);
    assert_eq!(out, [r#"[3,"c1",{}]"#]);
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        Event::EventStream {
            notice: StreamNotice::Closed { id: 7 },
            ..
        }
    )));
}

#[test]
fn bad_sends_are_never_answered_and_the_session_lives_on() {
    let mut h = booted();
    let bad = [
        // schema: no data
        (
            r#"[6,"s1","NotifyPeriodicEventStream",{"id":7,"pending":0,"basetime":"2025-01-01T00:00:00Z"}]"#,
            "OccurrenceConstraintViolation",
        ),
        // schema: empty data (minItems 1)
        (
            r#"[6,"s2","NotifyPeriodicEventStream",{"id":7,"pending":0,"basetime":"2025-01-01T00:00:00Z","data":[]}]"#,
            "OccurrenceConstraintViolation",
        ),
        // type: v is a number
        (
            r#"[6,"s3","NotifyPeriodicEventStream",{"id":7,"pending":0,"basetime":"2025-01-01T00:00:00Z","data":[{"t":0,"v":1}]}]"#,
            "TypeConstraintViolation",
        ),
        // a negative offset
        (
            r#"[6,"s4","NotifyPeriodicEventStream",{"id":7,"pending":0,"basetime":"2025-01-01T00:00:00Z","data":[{"t":-1,"v":"1"}]}]"#,
            "negative or out of range",
        ),
        // an offset beyond the calendar
        (
            r#"[6,"s5","NotifyPeriodicEventStream",{"id":7,"pending":0,"basetime":"2025-01-01T00:00:00Z","data":[{"t":1e300,"v":"1"}]}]"#,
            "SEND NotifyPeriodicEventStream s5 refused",
        ),
        // a CALL action as a SEND
        (r#"[6,"s6","Heartbeat",{}]"#, "NotSupported"),
        // an unknown action
        (r#"[6,"s7","NoSuchThing",{}]"#, "NotImplemented"),
    ];
    for (frame, word) in bad {
        let out = h.charger_sends(frame);
        assert!(out.is_empty(), "{frame}: {out:?}");
        assert!(stream_data(&mut h).is_empty(), "{frame}");
        let last = h.protocol.last().cloned().unwrap_or_default();
        assert!(last.contains(word), "{frame}: {last}");
        assert!(last.contains("not answered"), "{last}");
    }
    assert!(h.sends.is_empty());
    // Still alive: a heartbeat is answered, a good SEND decoded.
    let out = h.charger_sends(r#"[2,"h1","Heartbeat",{}]"#);
    assert!(out[0].starts_with(r#"[3,"h1""#));
    h.charger_sends(
        r#"[6,"s9","NotifyPeriodicEventStream",{"id":7,"pending":0,"basetime":"2025-01-01T00:00:00Z","data":[{"t":0,"v":"1"}]}]"#,
    );
    assert_eq!(stream_data(&mut h).len(), 1);
}

#[test]
fn a_send_on_2_0_1_is_not_a_message_type_it_knows() {
    let mut h = Harness::new(Version::V201);
    h.charger_sends(BOOT);
    let out = h.charger_sends(
        r#"[6,"s1","NotifyPeriodicEventStream",{"id":7,"pending":0,"basetime":"2025-01-01T00:00:00Z","data":[{"t":0,"v":"1"}]}]"#,
    );
    assert!(h
        .take_events()
        .iter()
        .all(|e| !matches!(e, Event::StreamData { .. })));
    // 2.0.1 answers an unknown message type with MessageTypeNotSupported.
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].contains("MessageTypeNotSupported"), "{}", out[0]);
}
