//! The central system's sans-IO session on the messages of a charging network, per message:
//! the text message in (`Session::handle_text`), the request out as an event, the default
//! answer (`Session::respond_default`), the model updated from the pair, the answer's text
//! out (`Session::poll_transmit`) and the model's events drained. No socket, no database, no
//! application: what the library itself costs a central system per message.
//!
//! - `v16/heartbeat`, `v16/meter_values`: a booted 1.6 charger without a transaction;
//! - `v16/meter_values_in_tx`: the same meter values with the `transactionId` of the
//!   transaction it runs (what a charging station sends while it charges);
//! - `v201/heartbeat`, `v201/meter_values`: a booted 2.0.1 charger without a transaction;
//! - `v201/transaction_event_updated`: a 2.0.1 `TransactionEvent` Updated (trigger
//!   `MeterValuePeriodic`, the next `seqNo`) of its running transaction.
//!
//! The meter values are those of the load benchmark's chargers (`charger-sim --load`): seven
//! sampled values (energy register, active power, three currents, voltage, state of charge),
//! the energy growing by one Wh, the timestamp by one second, per message. Each message is
//! made before it is timed.
//!
//! `cargo bench -p ocpp-benches --bench session -- --warm-up-time 1 --measurement-time 3`

use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BatchSize, Criterion};
use ocpp_central::{Session, SessionConfig, SessionEvent};
use ocpp_types::Version;

/// Feeds `text` to the session and answers every request it brings with the defaults;
/// returns the bytes sent back.
fn handle(session: &mut Session, now: Instant, text: &str) -> usize {
    session.handle_text(now, text);
    let mut sent = 0;
    while let Some(ev) = session.poll_event() {
        if let SessionEvent::Request { id, .. } = ev {
            session.respond_default(now, &id).expect("answered");
        } else {
            black_box(&ev);
        }
    }
    while let Some(out) = session.poll_transmit() {
        sent += out.len();
    }
    sent
}

/// The seven sampled values of the load benchmark's chargers (1.6 spelling).
fn v16_samples(energy: u64) -> String {
    format!(
        r#"[{{"value":"{energy}","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unit":"Wh"}},{{"value":"10887","context":"Sample.Periodic","measurand":"Power.Active.Import","unit":"W"}},{{"value":"15.8","context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","unit":"A"}},{{"value":"15.9","context":"Sample.Periodic","measurand":"Current.Import","phase":"L2","unit":"A"}},{{"value":"15.7","context":"Sample.Periodic","measurand":"Current.Import","phase":"L3","unit":"A"}},{{"value":"229.7","context":"Sample.Periodic","measurand":"Voltage","phase":"L1","unit":"V"}},{{"value":"48","context":"Sample.Periodic","measurand":"SoC","location":"EV","unit":"Percent"}}]"#
    )
}

/// The same seven sampled values in 2.x spelling.
fn v201_samples(energy: u64) -> String {
    format!(
        r#"[{{"value":{energy},"context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","unitOfMeasure":{{"unit":"Wh"}}}},{{"value":10887,"context":"Sample.Periodic","measurand":"Power.Active.Import","unitOfMeasure":{{"unit":"W"}}}},{{"value":15.8,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","unitOfMeasure":{{"unit":"A"}}}},{{"value":15.9,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L2","unitOfMeasure":{{"unit":"A"}}}},{{"value":15.7,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L3","unitOfMeasure":{{"unit":"A"}}}},{{"value":229.7,"context":"Sample.Periodic","measurand":"Voltage","phase":"L1","unitOfMeasure":{{"unit":"V"}}}},{{"value":48,"context":"Sample.Periodic","measurand":"SoC","location":"EV","unitOfMeasure":{{"unit":"Percent"}}}}]"#
    )
}

/// The 2.0.1 transaction's id (a charger-made UUID, as the load benchmark's chargers send).
const TX: &str = "b3466f8a-7b81-4989-9ceb-e8a6d050dd01";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time")
}

fn ts(n: u64) -> String {
    let at = start() + Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX));
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A booted session of `version`.
fn booted(version: Version, now: Instant) -> Session {
    let mut s = Session::new(SessionConfig::new("CP1", version));
    let boot = match version {
        Version::V16 => {
            r#"[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
        }
        _ => {
            r#"[2,"b","BootNotification",{"chargingStation":{"model":"M","vendorName":"V"},"reason":"PowerUp"}]"#
        }
    };
    handle(&mut s, now, boot);
    assert_eq!(s.state().boot, ocpp_central::BootState::Accepted);
    s
}

/// A booted session of `version` that handled `start` (its transaction's first message).
fn started(version: Version, now: Instant, start: &str) -> Session {
    let mut s = booted(version, now);
    handle(&mut s, now, start);
    assert_eq!(s.state().transactions.len(), 1, "{start}");
    s
}

/// Times `make(n)` (n = 1, 2, ...) handled by `session`, the message made untimed.
fn run(
    c: &mut Criterion,
    name: &str,
    mut session: Session,
    now: Instant,
    make: impl Fn(u64) -> String,
) {
    let n = Cell::new(0u64);
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                n.set(n.get() + 1);
                make(n.get())
            },
            |text| handle(&mut session, now, &text),
            BatchSize::SmallInput,
        )
    });
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();

    run(c, "v16/heartbeat", booted(Version::V16, now), now, |n| {
        format!(r#"[2,"h{n}","Heartbeat",{{}}]"#)
    });
    run(c, "v16/meter_values", booted(Version::V16, now), now, |n| {
        format!(
            r#"[2,"m{n}","MeterValues",{{"connectorId":1,"meterValue":[{{"timestamp":"{}","sampledValue":{}}}]}}]"#,
            ts(n),
            v16_samples(1000 + n)
        )
    });
    let s = started(
        Version::V16,
        now,
        &format!(
            r#"[2,"s","StartTransaction",{{"connectorId":1,"idTag":"TAG","meterStart":1000,"timestamp":"{}"}}]"#,
            ts(0)
        ),
    );
    let tx = s
        .state()
        .transactions
        .keys()
        .next()
        .cloned()
        .expect("a transaction");
    run(c, "v16/meter_values_in_tx", s, now, move |n| {
        format!(
            r#"[2,"m{n}","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"{}","sampledValue":{}}}]}}]"#,
            ts(n),
            v16_samples(1000 + n)
        )
    });

    run(c, "v201/heartbeat", booted(Version::V201, now), now, |n| {
        format!(r#"[2,"h{n}","Heartbeat",{{}}]"#)
    });
    run(
        c,
        "v201/meter_values",
        booted(Version::V201, now),
        now,
        |n| {
            format!(
                r#"[2,"m{n}","MeterValues",{{"evseId":1,"meterValue":[{{"timestamp":"{}","sampledValue":{}}}]}}]"#,
                ts(n),
                v201_samples(1000 + n)
            )
        },
    );
    let s = started(
        Version::V201,
        now,
        &format!(
            r#"[2,"s","TransactionEvent",{{"eventType":"Started","timestamp":"{}","triggerReason":"Authorized","seqNo":0,"transactionInfo":{{"transactionId":"{TX}","chargingState":"Charging"}},"evse":{{"id":1,"connectorId":1}},"idToken":{{"idToken":"TAG","type":"ISO14443"}},"meterValue":[{{"timestamp":"{}","sampledValue":{}}}]}}]"#,
            ts(0),
            ts(0),
            v201_samples(1000)
        ),
    );
    run(c, "v201/transaction_event_updated", s, now, |n| {
        format!(
            r#"[2,"t{n}","TransactionEvent",{{"eventType":"Updated","meterValue":[{{"sampledValue":{},"timestamp":"{}"}}],"timestamp":"{}","triggerReason":"MeterValuePeriodic","seqNo":{n},"transactionInfo":{{"transactionId":"{TX}","chargingState":"Charging"}}}}]"#,
            v201_samples(1000 + n),
            ts(n),
            ts(n)
        )
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
