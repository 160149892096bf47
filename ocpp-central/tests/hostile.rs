//! A hostile or merely busy charger: extreme numbers, sequence gaps of two billion, thousands
//! of connectors and transactions, a panic inside one connection. Each is answered, the model
//! stays within its documented bounds, and nothing else breaks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use ocpp_central::testing::Harness;
use ocpp_central::{
    ChargerHandle, Chargers, Connection, Defaults, DriveError, Event, HandleV16, HandleV201,
    HandleV21, Handler, Limit, Limits, Session, SessionConfig, WallClock,
};
use ocpp_types::{Decimal, Version};

fn booted(version: Version) -> Harness {
    let mut h = Harness::new(version);
    let boot = match version {
        Version::V16 => {
            r#"[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
        }
        _ => {
            r#"[2,"b","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#
        }
    };
    let out = h.charger_sends(boot);
    assert!(out[0].contains("Accepted"), "{out:?}");
    h
}

fn heartbeat_answered(h: &mut Harness, id: &str) {
    let out = h.charger_sends(&format!(r#"[2,"{id}","Heartbeat",{{}}]"#));
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with(&format!(r#"[3,"{id}",{{"currentTime":"#)),
        "{out:?}"
    );
}

#[test]
fn v16_energy_beyond_the_largest_decimal_is_answered_and_flagged() {
    let mut h = booted(Version::V16);
    let out = h.charger_sends(r#"[2,"s","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":-2147483648,"timestamp":"2025-01-01T00:00:00Z"}]"#);
    assert_eq!(
        out,
        [r#"[3,"s",{"idTagInfo":{"status":"Accepted"},"transactionId":1}]"#]
    );
    let out = h.charger_sends(r#"[2,"m","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2025-01-01T00:01:00Z","sampledValue":[{"value":"79228162514264337593543950335"}]}]}]"#);
    assert_eq!(out, [r#"[3,"m",{}]"#]);
    let flagged = h.events.iter().find_map(|e| match e {
        Event::OutOfRange {
            transaction_id,
            detail,
        } => Some((transaction_id.clone(), detail.clone())),
        _ => None,
    });
    let (tx, detail) = flagged.expect("an OutOfRange event");
    assert_eq!(tx.as_deref(), Some("1"));
    assert!(detail.contains("does not fit"), "{detail}");
    // The update still reaches the application with its sample, the energy keeps its value.
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::TransactionUpdated { samples, .. } if samples[0].value == Decimal::MAX
    )));
    assert_eq!(h.session.state().transactions["1"].energy_wh, Decimal::ZERO);
    // kWh of the largest decimal cannot become Wh: flagged the same way.
    let out = h.charger_sends(r#"[2,"k","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2025-01-01T00:02:00Z","sampledValue":[{"value":"79228162514264337593543950335","unit":"kWh"}]}]}]"#);
    assert_eq!(out, [r#"[3,"k",{}]"#]);
    // The stop with the smallest meterStop ends it; the connection carries on.
    let out = h.charger_sends(r#"[2,"x","StopTransaction",{"transactionId":1,"meterStop":2147483647,"timestamp":"9999-12-31T23:59:59Z"}]"#);
    assert_eq!(out, [r#"[3,"x",{}]"#]);
    let ended = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::TransactionEnded { transaction, .. } => Some(transaction.clone()),
            _ => None,
        })
        .expect("ended");
    assert_eq!(ended.energy_wh, Decimal::from(i64::from(i32::MAX) * 2 + 1));
    heartbeat_answered(&mut h, "h");
}

fn tx_event(id: &str, kind: &str, seq: i64, tx: &str) -> String {
    format!(
        r#"[2,"{id}","TransactionEvent",{{"eventType":"{kind}","timestamp":"2025-01-01T00:00:00Z","triggerReason":"Authorized","seqNo":{seq},"transactionInfo":{{"transactionId":"{tx}"}},"evse":{{"id":1,"connectorId":1}}}}]"#
    )
}

#[test]
fn v2_sequence_gap_of_two_billion_is_one_range() {
    for version in [Version::V201, Version::V21] {
        let mut h = booted(version);
        assert_eq!(
            h.charger_sends(&tx_event("a", "Started", 0, "TX")),
            [r#"[3,"a",{}]"#]
        );
        assert_eq!(
            h.charger_sends(&tx_event("b", "Updated", 2147483647, "TX")),
            [r#"[3,"b",{}]"#]
        );
        let tx = &h.session.state().transactions["TX"];
        assert_eq!(tx.seq_gaps.ranges(), [(1, 2147483646)]);
        assert_eq!(tx.seq_gaps.missing(), 2147483646);
        assert_eq!(tx.next_seq_no, Some(i32::MAX));
        assert!(h.events.iter().any(|e| matches!(
            e,
            Event::SequenceGap {
                expected: 1,
                received: 2147483647,
                ..
            }
        )));
        assert!(h.events.iter().any(|e| matches!(
            e,
            Event::OutOfRange { detail, .. } if detail.contains("2147483647")
        )));
        // A late number splits the range; the model stays small.
        h.charger_sends(&tx_event("c", "Updated", 1000, "TX"));
        assert_eq!(
            h.session.state().transactions["TX"].seq_gaps.ranges(),
            [(1, 999), (1001, 2147483646)]
        );
        heartbeat_answered(&mut h, "h");
    }
}

#[test]
fn v2_a_charger_skipping_every_other_seq_no_stays_within_the_gap_bound() {
    let mut h = booted(Version::V201);
    h.charger_sends(&tx_event("a", "Started", 0, "TX"));
    for i in 1..=1000 {
        let out = h.charger_sends(&tx_event(&format!("u{i}"), "Updated", 2 * i, "TX"));
        assert_eq!(out.len(), 1);
    }
    let bound = Limits::default().max_sequence_gaps;
    let tx = &h.session.state().transactions["TX"];
    assert_eq!(tx.seq_gaps.ranges().len(), bound);
    // The newest gaps are kept.
    assert_eq!(tx.seq_gaps.ranges().last(), Some(&(1999, 1999)));
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::LimitReached {
            limit: Limit::SequenceGaps,
            ..
        }
    )));
}

#[test]
fn connectors_and_transactions_are_bounded() {
    let limits = {
        let mut l = Limits::default();
        l.max_connectors = 8;
        l.max_transactions = 4;
        l
    };
    let mut h = Harness::with_config(|c| c.limits(limits), Version::V16);
    h.charger_sends(
        r#"[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#,
    );
    for c in 0..3000 {
        let out = h.charger_sends(&format!(
            r#"[2,"s{c}","StatusNotification",{{"connectorId":{},"errorCode":"NoError","status":"Available"}}]"#,
            i32::MAX - c
        ));
        assert_eq!(out, [format!(r#"[3,"s{c}",{{}}]"#)]);
    }
    assert_eq!(h.session.state().connectors.len(), 8);
    for t in 0..50 {
        let out = h.charger_sends(&format!(
            r#"[2,"t{t}","StartTransaction",{{"connectorId":1,"idTag":"T","meterStart":{t},"timestamp":"2025-01-01T00:00:{:02}Z"}}]"#,
            t % 60
        ));
        assert!(out[0].contains("transactionId"), "{out:?}");
    }
    assert_eq!(h.session.state().transactions.len(), 4);
    let reached: Vec<Limit> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::LimitReached { limit, .. } => Some(*limit),
            _ => None,
        })
        .collect();
    assert!(reached.contains(&Limit::Connectors));
    assert!(reached.contains(&Limit::Transactions));
    heartbeat_answered(&mut h, "h");
}

#[test]
fn sixty_thousand_sampled_values_cost_the_model_nothing_to_keep() {
    let mut h = booted(Version::V16);
    h.charger_sends(r#"[2,"s","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2025-01-01T00:00:00Z"}]"#);
    // 60,000 values in one message of 840 kB (under the 1 MiB limit).
    let values: Vec<String> = (0..60_000)
        .map(|i| format!(r#"{{"value":"{}"}}"#, i % 10))
        .collect();
    let msg = format!(
        r#"[2,"m","MeterValues",{{"connectorId":1,"transactionId":1,"meterValue":[{{"timestamp":"2025-01-01T00:01:00Z","sampledValue":[{}]}}]}}]"#,
        values.join(",")
    );
    assert_eq!(h.charger_sends(&msg), [r#"[3,"m",{}]"#]);
    let tx = &h.session.state().transactions["1"];
    assert_eq!(tx.samples_received, 60_000);
    assert_eq!(tx.energy_wh, Decimal::from(9));
    // The samples went to the application, once.
    let n: usize = h
        .events
        .iter()
        .map(|e| match e {
            Event::TransactionUpdated { samples, .. } => samples.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(n, 60_000);
}

/// A wall clock that panics once armed: application code running inside the session's
/// processing.
struct Tripwire(AtomicBool);

impl WallClock for Tripwire {
    fn now(&self) -> DateTime<Utc> {
        if self.0.load(Ordering::SeqCst) {
            panic!("tripwire");
        }
        "2025-01-01T00:00:00Z".parse().unwrap()
    }
}

#[derive(Default)]
struct App {
    events: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl Handler for App {
    async fn on_event(&self, charger: &ChargerHandle, event: &Event) {
        let name = format!("{event:?}");
        let name = name.split([' ', '{', '(']).next().unwrap_or("").to_owned();
        self.events
            .lock()
            .unwrap()
            .push((charger.identity().to_owned(), name));
    }
}
impl HandleV16 for App {}
impl HandleV201 for App {}
impl HandleV21 for App {}

#[tokio::test]
async fn a_panic_ends_one_connection_and_every_other_carries_on() {
    let app = Arc::new(App::default());
    let chargers = Chargers::new();
    let trip = Arc::new(Tripwire(AtomicBool::new(false)));
    let start = |identity: &str, clock: Option<Arc<Tripwire>>| {
        let mut defaults = Defaults::default();
        if let Some(c) = clock {
            defaults.clock = c;
        }
        let session = Session::new(SessionConfig::new(identity, Version::V16).defaults(defaults));
        let conn = Connection::new(session, app.clone()).register(&chargers);
        let (to_central, incoming) = mpsc::channel::<String>(16);
        let (outgoing, from_central) = mpsc::channel::<String>(16);
        let task = tokio::spawn(conn.run(incoming, outgoing));
        (to_central, from_central, task)
    };
    let (mut a_in, mut a_out, a_task) = start("A", Some(trip.clone()));
    let (mut b_in, mut b_out, b_task) = start("B", None);
    let hb = r#"[2,"1","Heartbeat",{}]"#.to_owned();
    a_in.send(hb.clone()).await.unwrap();
    assert!(a_out.next().await.unwrap().starts_with(r#"[3,"1""#));
    // A's next message panics inside its processing.
    trip.0.store(true, Ordering::SeqCst);
    a_in.send(hb.clone()).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), a_task)
        .await
        .expect("A's connection ends")
        .expect("the task itself did not panic");
    assert!(matches!(ended, Err(DriveError::Panicked(ref m)) if m.contains("tripwire")));
    assert!(chargers.get("A").is_none(), "A left the registry");
    assert!(
        app.events
            .lock()
            .unwrap()
            .contains(&("A".to_owned(), "Disconnected".to_owned())),
        "the application saw A disconnect"
    );
    // B is served throughout.
    for i in 0..3 {
        b_in.send(format!(r#"[2,"b{i}","Heartbeat",{{}}]"#))
            .await
            .unwrap();
        assert!(b_out
            .next()
            .await
            .unwrap()
            .starts_with(&format!(r#"[3,"b{i}""#)));
    }
    assert!(chargers.get("B").is_some());
    drop(b_in);
    b_task.await.unwrap().unwrap();
}
