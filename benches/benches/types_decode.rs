//! Typed decoding of three representative payloads, against the alternatives a user has:
//! parsing into `serde_json::Value`, and validating with the `jsonschema` crate.
//!
//! `cargo bench -p ocpp-benches --bench types_decode`. The `rust-ocpp` comparison lives in a
//! separate workspace (`benches/compare-rust-ocpp`), because that crate turns on serde_json's
//! `arbitrary_precision` feature, which would change serde_json for this whole workspace.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ocpp_schemas::{schema, MessageKind, Version};
use std::hint::black_box;

fn payload(file: &str) -> String {
    let path = format!("{}/payloads/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("benchmark payload")
}

macro_rules! bench_payload {
    ($c:expr, $name:literal, $file:literal, $version:expr, $action:literal, $ty:ty) => {{
        let text = payload($file);
        let validator = schema($version, $action, MessageKind::Request)
            .expect("schema")
            .validator()
            .expect("compiles");
        let mut group = $c.benchmark_group($name);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(
            BenchmarkId::new("ocpp-types typed (schema-exact)", $name),
            |b| b.iter(|| serde_json::from_str::<$ty>(black_box(&text)).expect("valid")),
        );
        group.bench_function(BenchmarkId::new("serde_json::Value", $name), |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&text)).expect("valid"))
        });
        group.bench_function(
            BenchmarkId::new("Value + jsonschema validate", $name),
            |b| {
                b.iter(|| {
                    let v: serde_json::Value =
                        serde_json::from_str(black_box(&text)).expect("json");
                    assert!(validator.is_valid(&v));
                })
            },
        );
        let typed: $ty = serde_json::from_str(&text).expect("valid");
        group.bench_function(BenchmarkId::new("ocpp-types encode", $name), |b| {
            b.iter(|| serde_json::to_string(black_box(&typed)).expect("encodes"))
        });
        group.finish();
    }};
}

fn decode(c: &mut Criterion) {
    bench_payload!(
        c,
        "v16 MeterValues (8 sampled values)",
        "v16_meter_values.json",
        Version::V16,
        "MeterValues",
        ocpp_types::v16::MeterValuesRequest
    );
    bench_payload!(
        c,
        "v201 TransactionEvent",
        "v201_transaction_event.json",
        Version::V201,
        "TransactionEvent",
        ocpp_types::v201::TransactionEventRequest
    );
    bench_payload!(
        c,
        "v21 NotifyReport (200 entries)",
        "v21_notify_report.json",
        Version::V21,
        "NotifyReport",
        ocpp_types::v21::NotifyReportRequest
    );
}

criterion_group!(benches, decode);
criterion_main!(benches);
