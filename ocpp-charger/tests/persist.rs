//! Persistence leaves the sans-IO station as work for its driver: a transaction message is
//! transmitted only after its append was reported, and the state document is rewritten once
//! per batch however often it changed.

use std::time::Duration;

use ocpp_charger::testing::{test_config, MockCentral, TestClock};
use ocpp_charger::{
    HardwareEvent, MemoryStore, Persist, Saved, SimulatedHardware, Station, StationEvent, Store,
    StoreError, Version,
};
use rust_decimal::Decimal;

/// Moves the frames both ways until quiet, without performing any write.
fn shuttle(station: &mut Station, central: &mut MockCentral, clock: &TestClock) {
    let now = clock.now();
    loop {
        let mut moved = false;
        while let Some(t) = station.poll_transmit() {
            moved = true;
            central.handle_text(now, &t);
        }
        while let Some(t) = central.ep.poll_transmit() {
            moved = true;
            station.handle_text(now, &t);
        }
        if !moved {
            return;
        }
    }
}

fn all_persist(station: &mut Station) -> Vec<Persist> {
    std::iter::from_fn(|| station.poll_persist()).collect()
}

#[test]
fn a_transaction_message_waits_for_its_append() {
    for v in [Version::V16, Version::V201, Version::V21] {
        let mut clock = TestClock::new();
        let mut central = MockCentral::new(v);
        let mut station = Station::new(
            test_config(v, &clock),
            Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
            Saved::default(),
            clock.now(),
        );
        // The first work is the state document (the restart counter moved on).
        assert!(matches!(all_persist(&mut station)[..], [Persist::State(_)]));
        station.on_connected(clock.now());
        shuttle(&mut station, &mut central, &clock);
        let now = clock.now();
        station.handle_hardware(now, HardwareEvent::CablePlugged { evse: 1 });
        station.present_id_token(now, Some(1), "TAG");
        shuttle(&mut station, &mut central, &clock);
        assert!(station.transaction(1).is_some(), "{v}");
        let start = if v == Version::V16 {
            "StartTransaction"
        } else {
            "TransactionEvent"
        };
        assert_eq!(
            central.actions_named(start),
            0,
            "{v}: not before the append"
        );

        // Time passes, nothing is reported: still nothing sent.
        clock.advance(Duration::from_secs(5));
        station.handle_timeout(clock.now());
        shuttle(&mut station, &mut central, &clock);
        assert_eq!(central.actions_named(start), 0, "{v}");

        let work = all_persist(&mut station);
        let appended: Vec<&str> = work
            .iter()
            .filter_map(|w| match w {
                Persist::Append(m) => Some(m.action.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(appended, [start], "{v}");
        assert_eq!(
            work.iter()
                .filter(|w| matches!(w, Persist::State(_)))
                .count(),
            1,
            "{v}: one state document for the whole batch, after the messages"
        );
        assert!(matches!(work.last(), Some(Persist::State(_))), "{v}");
        let mut store = MemoryStore::new();
        for w in &work {
            let result = w.apply(&mut store);
            station.handle_persisted(clock.now(), w, result);
        }
        shuttle(&mut station, &mut central, &clock);
        assert_eq!(central.actions_named(start), 1, "{v}: sent once durable");
        assert_eq!(
            store.len(),
            1,
            "{v}: on disk until the removal is performed"
        );
        let work = all_persist(&mut station);
        assert!(
            work.iter().any(|w| matches!(w, Persist::Remove(_))),
            "{v}: confirmed"
        );
        for w in &work {
            let result = w.apply(&mut store);
            station.handle_persisted(clock.now(), w, result);
        }
        assert!(store.is_empty(), "{v}");
    }
}

/// A store that refuses every write.
struct Broken;

impl Store for Broken {
    fn load_messages(&mut self) -> Result<Vec<ocpp_charger::StoredMessage>, StoreError> {
        Ok(Vec::new())
    }
    fn append(&mut self, _: &ocpp_charger::StoredMessage) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("disk full".into()))
    }
    fn remove(&mut self, _: u64) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("disk full".into()))
    }
    fn load_state(&mut self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    fn save_state(&mut self, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("disk full".into()))
    }
}

/// A failed append is reported and the message still goes out (it lives in memory only).
#[test]
fn a_failed_append_is_reported_and_the_message_still_sent() {
    let v = Version::V201;
    let clock = TestClock::new();
    let mut central = MockCentral::new(v);
    let mut station = Station::new(
        test_config(v, &clock),
        Box::new(SimulatedHardware::new(1, Decimal::from(7400))),
        Saved::default(),
        clock.now(),
    );
    let mut store = Broken;
    station.on_connected(clock.now());
    shuttle(&mut station, &mut central, &clock);
    let now = clock.now();
    station.handle_hardware(now, HardwareEvent::CablePlugged { evse: 1 });
    station.present_id_token(now, Some(1), "TAG");
    shuttle(&mut station, &mut central, &clock);
    station.persist_to(clock.now(), &mut store);
    shuttle(&mut station, &mut central, &clock);
    assert_eq!(central.actions_named("TransactionEvent"), 1);
    let failures = std::iter::from_fn(|| station.poll_event())
        .filter(|e| matches!(e, StationEvent::StoreFailed(_)))
        .count();
    assert!(failures >= 2, "the append and the state document failed");
}
