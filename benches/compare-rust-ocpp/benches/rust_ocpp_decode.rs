//! The same payloads as `ocpp-benches`' `types_decode`, decoded with the `rust-ocpp` crate's
//! types (it has no OCPP 2.1 feature, so NotifyReport 2.1 is not compared).
//!
//! `cd benches/compare-rust-ocpp && cargo bench`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn payload(file: &str) -> String {
    let path = format!("{}/../payloads/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("benchmark payload")
}

fn decode(c: &mut Criterion) {
    let mv = payload("v16_meter_values.json");
    c.bench_function("rust-ocpp v16 MeterValues (8 sampled values)", |b| {
        b.iter(|| {
            serde_json::from_str::<rust_ocpp::v1_6::messages::meter_values::MeterValuesRequest>(
                black_box(&mv),
            )
            .expect("valid")
        })
    });
    let te = payload("v201_transaction_event.json");
    c.bench_function("rust-ocpp v201 TransactionEvent", |b| {
        b.iter(|| {
            serde_json::from_str::<
                rust_ocpp::v2_0_1::messages::transaction_event::TransactionEventRequest,
            >(black_box(&te))
            .expect("valid")
        })
    });
}

criterion_group!(benches, decode);
criterion_main!(benches);
