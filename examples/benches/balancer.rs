//! The load balancer's plan at 1,000 sessions on one site, and how many profiles a change
//! sends.
//!
//! `cargo bench -p ocpp-examples --bench balancer`
//!
//! - `plan/1000`: one re-plan (admission, water-filling, exact decimals) of 1,000 sessions
//!   on a 5 MW site (EVSEs of 11 kW, minimum 1.38 kW, every tenth EV drawing only 2 kW).
//! - Messages per change: printed before the timings, counted with the same hysteresis rule
//!   as the driver (`balancer::should_send`, 100 W).

use std::hint::black_box;

use criterion::Criterion;
use ocpp_examples::backend::balancer::{cap_from_measurement, plan, should_send, Demand};
use rust_decimal::Decimal;

const SESSIONS: u32 = 1_000;

fn sessions(sent: &[Option<Decimal>], measured: &[Option<Decimal>]) -> Vec<Demand<u32>> {
    (0..SESSIONS)
        .map(|i| Demand {
            key: i,
            arrival: u64::from(i),
            cap: cap_from_measurement(
                Decimal::from(11_000),
                sent[i as usize],
                measured[i as usize],
                Decimal::ONE,
            ),
            min: Decimal::new(1_380, 0),
        })
        .collect()
}

/// Plans at `limit`, then counts the profiles to send against `sent` (and updates it).
fn step(sent: &mut [Option<Decimal>], measured: &[Option<Decimal>], limit: i64) -> usize {
    let p = plan(
        &sessions(sent, measured),
        Decimal::from(limit),
        Decimal::ONE,
    );
    let mut n = 0;
    for a in p {
        let i = a.key as usize;
        if should_send(sent[i], a.limit, Decimal::from(100)) {
            sent[i] = Some(a.limit);
            n += 1;
        }
    }
    n
}

/// What the EVs draw at the limits sent: every tenth at most 2 kW, the others all they get.
fn draw(sent: &[Option<Decimal>]) -> Vec<Option<Decimal>> {
    sent.iter()
        .enumerate()
        .map(|(i, s)| {
            s.map(|s| {
                if i % 10 == 0 {
                    s.min(Decimal::from(2_000))
                } else {
                    s
                }
            })
        })
        .collect()
}

fn messages_per_change() {
    let n = SESSIONS as usize;
    let mut sent = vec![None; n];
    let mut measured = vec![None; n];
    let first = step(&mut sent, &measured, 5_000_000);
    measured = draw(&sent);
    let capped = step(&mut sent, &measured, 5_000_000);
    measured = draw(&sent);
    let down = step(&mut sent, &measured, 3_000_000);
    measured = draw(&sent);
    let small_up = step(&mut sent, &measured, 3_050_000);
    measured = draw(&sent);
    let big_up = step(&mut sent, &measured, 4_000_000);
    measured = draw(&sent);
    let same = step(&mut sent, &measured, 4_000_000);
    println!("profiles sent, {SESSIONS} sessions on one site:");
    println!("  first plan at 5 MW:                          {first}");
    println!("  meter values show 100 EVs drawing 2 kW:      {capped}");
    println!("  limit 5 MW -> 3 MW:                          {down}");
    println!("  limit 3 MW -> 3.05 MW (+55 W each):          {small_up}");
    println!("  limit 3.05 MW -> 4 MW:                       {big_up}");
    println!("  limit unchanged, plan again:                 {same}");
}

fn main() {
    messages_per_change();
    let n = SESSIONS as usize;
    let sent = vec![Some(Decimal::from(5_000)); n];
    let measured: Vec<Option<Decimal>> = (0..n)
        .map(|i| {
            Some(if i % 10 == 0 {
                Decimal::from(2_000)
            } else {
                Decimal::from(5_000)
            })
        })
        .collect();
    let demands = sessions(&sent, &measured);
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("plan/1000", |b| {
        b.iter(|| plan(black_box(&demands), Decimal::from(3_000_000), Decimal::ONE))
    });
    c.final_summary();
}
