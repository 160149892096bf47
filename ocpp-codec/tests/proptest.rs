//! No input panics the decoder or the endpoint, and the endpoint's state stays consistent.

use std::time::Duration;

use ocpp_codec::frame::Decoder;
use ocpp_codec::rpc::{Endpoint, EndpointConfig, Event};
use ocpp_codec::testing::TestClock;
use ocpp_codec::Version;
use proptest::prelude::*;
use serde_json::value::RawValue;

const VALID: &[&str] = &[
    r#"[2,"19223201","BootNotification",{"chargePointVendor":"A","chargePointModel":"B"}]"#,
    r#"[3,"19223201",{"status":"Accepted","currentTime":"2024-01-01T00:00:00Z","interval":300}]"#,
    r#"[4,"19223201","GenericError","x",{}]"#,
    r#"[5,"1","FormatViolation","x",{}]"#,
    r#"[6,"1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z","data":[]}]"#,
    r#"[3,"1",{}]"#,
    r#"[2,"1","Heartbeat",{}]"#,
];

fn mutated() -> impl Strategy<Value = String> {
    (
        prop::sample::select(VALID),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 0..6),
    )
        .prop_map(|(base, edits)| {
            let mut s: Vec<char> = base.chars().collect();
            for (at, op, c) in edits {
                if s.is_empty() {
                    s.push(c);
                    continue;
                }
                let i = at.index(s.len());
                match op {
                    0 => s[i] = c,
                    1 => s.insert(i, c),
                    2 => {
                        s.remove(i);
                    }
                    _ => s.truncate(i),
                }
            }
            s.into_iter().collect()
        })
}

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(Version::ALL.to_vec())
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\[[0-9]{1,2},\"[a-z0-9]{0,40}\"(,(\"[A-Za-z]{0,12}\"|\\{\\}|[0-9]|null)){0,4}\\]",
        mutated(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_never_panics(text in any_input(), v in version(), max in 0usize..512) {
        let decoder = Decoder::new(v).with_max_message_size(max);
        match decoder.decode(&text) {
            Ok(frame) => {
                // Ids are always within bounds, and re-encoding decodes to the same frame.
                prop_assert!(frame.id().chars().count() <= 36);
                let again = frame.encode(v);
                let round = Decoder::new(v).decode(&again);
                prop_assert!(round.is_ok(), "{again}");
                prop_assert_eq!(round.unwrap().encode(v), again);
            }
            Err(e) => {
                if let Some(reply) = e.reply(v) {
                    prop_assert!(reply.id.chars().count() <= 36);
                    prop_assert!(reply.description.chars().count() <= 255);
                    // Our replies are themselves valid frames.
                    prop_assert!(Decoder::new(v).decode(&reply.encode()).is_ok());
                }
            }
        }
    }

    #[test]
    fn endpoint_stays_consistent(
        steps in prop::collection::vec(
            prop_oneof![
                any_input().prop_map(Step::Text),
                (0u64..40).prop_map(Step::Wait),
                Just(Step::Call),
                Just(Step::AnswerAll),
                Just(Step::AnswerOurs),
            ],
            0..40,
        ),
        v in version(),
    ) {
        let mut clock = TestClock::new();
        let mut ep = Endpoint::new(EndpointConfig::new(v).call_timeout(Duration::from_secs(30)));
        let mut calls = 0usize;
        let mut finished = 0usize;
        for step in steps {
            match step {
                Step::Text(t) => ep.handle_text(clock.now(), &t),
                Step::Wait(s) => { let now = clock.advance(Duration::from_secs(s)); ep.handle_timeout(now) }
                Step::Call => { ep.call(clock.now(), "Heartbeat", RawValue::from_string("{}".into()).unwrap()).unwrap(); calls += 1; }
                Step::AnswerAll => {
                    let ids: Vec<String> = ep.unanswered_calls().map(str::to_owned).collect();
                    for id in ids { ep.respond(&id, &RawValue::from_string("{}".into()).unwrap()).unwrap(); }
                }
                Step::AnswerOurs => {
                    if let Some(id) = ep.in_flight().map(str::to_owned) {
                        ep.handle_text(clock.now(), &format!(r#"[3,"{id}",{{}}]"#));
                    }
                }
            }
            while let Some(t) = ep.poll_transmit() {
                prop_assert!(Decoder::new(v).decode(&t).is_ok(), "we sent an invalid frame: {t}");
            }
            while let Some(e) = ep.poll_event() {
                if matches!(e, Event::Result { .. } | Event::Error { .. } | Event::Timeout { .. }) {
                    finished += 1;
                }
            }
            // Invariants: a deadline exactly when a call is in flight; queued calls only behind
            // one in flight; every call is in flight, queued or finished.
            prop_assert_eq!(ep.poll_timeout().is_some(), ep.in_flight().is_some());
            prop_assert!(ep.queued_calls() == 0 || ep.in_flight().is_some());
            prop_assert_eq!(calls, finished + ep.queued_calls() + usize::from(ep.in_flight().is_some()));
            prop_assert!(ep.unanswered_calls().count() <= 16);
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Text(String),
    Wait(u64),
    Call,
    AnswerAll,
    AnswerOurs,
}
