//! The OCPP-J codec on whole text messages (frame + typed payload), per message:
//!
//! - `strict`: `frame::Decoder::decode` then `TypedCodec::decode_call` / `decode_result`;
//! - `lenient_conforming`: the same with lenient mode on (it runs only after a strict failure,
//!   so it must cost what `strict` costs);
//! - `lenient_repairing`: lenient mode on a non-conforming variant (see `ocpp_benches::cases`);
//! - `plain_serde`: the limit: the envelope as `(u8, &str, &str, &RawValue)`, then a plain
//!   `#[derive(Deserialize)]` mirror (`ocpp_benches::plain`), no checks at all;
//! - `encode` / `plain_serde_encode`: typed value to text message, ours and the mirror's;
//! - `frame` / `plain_frame`: the envelope alone, ours and plain serde's.
//!
//! `cargo bench -p ocpp-benches --bench codec -- --warm-up-time 1 --measurement-time 3`;
//! `benches/codec-report.sh` runs it with the Python package and prints the table.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use ocpp_benches::cases::{cases, Case, Kind, ID};
use ocpp_benches::plain;
use ocpp_codec::frame::{Decoder, Frame};
use ocpp_codec::typed::{Side, TypedCodec, TypedRequest, TypedResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

/// The codec's whole decode of one text message: frame, then typed payload (a CALLRESULT
/// typed by the action of its CALL, as the RPC endpoint does). The value goes to `black_box`
/// by reference, so the harness adds no copy; returns the number of repairs.
fn codec_decode(case: &Case, decoder: &Decoder, codec: &TypedCodec, text: &str) -> usize {
    match (case.kind, decoder.decode(text).expect("frame")) {
        (
            Kind::Call,
            Frame::Call {
                id,
                action,
                payload,
            },
        ) => {
            let d = codec.decode_call(&id, &action, payload).expect("request");
            black_box(&d.value);
            d.repairs.len()
        }
        (Kind::CallResult, Frame::CallResult { id, payload }) => {
            let d = codec
                .decode_result(&id, case.action, payload)
                .expect("response");
            black_box(&d.value);
            d.repairs.len()
        }
        (_, other) => panic!("unexpected frame {other:?}"),
    }
}

/// A typed message to encode.
#[allow(clippy::large_enum_variant)]
enum Typed {
    Request(TypedRequest),
    Response(TypedResponse),
}

fn typed(case: &Case, decoder: &Decoder, codec: &TypedCodec, text: &str) -> Typed {
    match decoder.decode(text).expect("frame") {
        Frame::Call {
            id,
            action,
            payload,
        } => Typed::Request(
            codec
                .decode_call(&id, &action, payload)
                .expect("request")
                .value,
        ),
        Frame::CallResult { id, payload } => Typed::Response(
            codec
                .decode_result(&id, case.action, payload)
                .expect("response")
                .value,
        ),
        other => panic!("unexpected frame {other:?}"),
    }
}

fn codec_encode(codec: &TypedCodec, typed: &Typed) -> String {
    match typed {
        Typed::Request(r) => codec.encode_call(ID, r),
        Typed::Response(r) => codec.encode_result(ID, r),
    }
    .expect("encodes")
}

/// The plain envelope: `(u8, &str, &str, &RawValue)` (CALL) or `(u8, &str, &RawValue)`.
fn plain_envelope<'a>(case: &Case, text: &'a str) -> &'a RawValue {
    match case.kind {
        Kind::Call => {
            let (_, _, action, payload): (u8, &str, &str, &RawValue) =
                serde_json::from_str(text).expect("frame");
            assert_eq!(action, case.action);
            payload
        }
        Kind::CallResult => {
            let (_, _, payload): (u8, &str, &RawValue) = serde_json::from_str(text).expect("frame");
            payload
        }
    }
}

/// The plain way: the envelope with a borrowed payload, then the mirror.
fn plain_decode<M: DeserializeOwned>(case: &Case, text: &str) -> M {
    serde_json::from_str(plain_envelope(case, text).get()).expect("mirror")
}

fn plain_encode<M: Serialize>(case: &Case, mirror: &M) -> String {
    match case.kind {
        Kind::Call => serde_json::to_string(&(2, ID, case.action, mirror)),
        Kind::CallResult => serde_json::to_string(&(3, ID, mirror)),
    }
    .expect("encodes")
}

/// A message ready to measure, with what every operation needs.
struct Prepared<M> {
    case: Case,
    text: String,
    broken: String,
    decoder: Decoder,
    strict: TypedCodec,
    lenient: TypedCodec,
    typed: Typed,
    mirror: M,
}

fn prepare<M: DeserializeOwned>(case: Case) -> Prepared<M> {
    let text = case.text();
    let broken = case.repairable_text();
    let decoder = Decoder::new(case.version);
    let strict = TypedCodec::new(case.version)
        .side(match case.kind {
            Kind::Call => Side::CentralSystem,
            Kind::CallResult => Side::ChargingStation,
        })
        .validate_outgoing(false);
    let lenient = strict.lenient(true);
    // What each benchmark measures is what it claims to.
    assert_eq!(codec_decode(&case, &decoder, &strict, &text), 0);
    assert!(
        codec_decode(&case, &decoder, &lenient, &broken) > 0,
        "{}: nothing repaired",
        case.key
    );
    let typed = typed(&case, &decoder, &strict, &text);
    let mirror = plain_decode(&case, &text);
    Prepared {
        case,
        text,
        broken,
        decoder,
        strict,
        lenient,
        typed,
        mirror,
    }
}

/// One measured operation: criterion's function id, and the operation done once.
type Op<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn ops<M: DeserializeOwned + Serialize>(p: &Prepared<M>) -> Vec<Op<'_>> {
    let (case, decoder) = (&p.case, &p.decoder);
    vec![
        (
            "strict",
            Box::new(move || {
                black_box(codec_decode(case, decoder, &p.strict, black_box(&p.text)));
            }),
        ),
        (
            "lenient_conforming",
            Box::new(move || {
                black_box(codec_decode(case, decoder, &p.lenient, black_box(&p.text)));
            }),
        ),
        (
            "lenient_repairing",
            Box::new(move || {
                black_box(codec_decode(
                    case,
                    decoder,
                    &p.lenient,
                    black_box(&p.broken),
                ));
            }),
        ),
        (
            "plain_serde",
            Box::new(move || {
                black_box(&plain_decode::<M>(case, black_box(&p.text)));
            }),
        ),
        (
            "encode",
            Box::new(move || {
                black_box(&codec_encode(&p.strict, black_box(&p.typed)));
            }),
        ),
        (
            "plain_serde_encode",
            Box::new(move || {
                black_box(&plain_encode(case, black_box(&p.mirror)));
            }),
        ),
        (
            "frame",
            Box::new(move || {
                black_box(&decoder.decode(black_box(&p.text)).expect("frame"));
            }),
        ),
        (
            "plain_frame",
            Box::new(move || {
                black_box(plain_envelope(case, black_box(&p.text)));
            }),
        ),
    ]
}

/// Where the operations go: criterion, or (`CODEC_COUNT=key/op:N`) one operation run N
/// times and nothing else, for counting instructions under callgrind.
enum Mode<'c> {
    Criterion(&'c mut Criterion),
    Count { key: String, op: String, n: u64 },
}

fn run<M: DeserializeOwned + Serialize>(mode: &mut Mode<'_>, case: Case) {
    if let Mode::Count { key, .. } = mode {
        if *key != case.key {
            return;
        }
    }
    let p = prepare::<M>(case);
    match mode {
        Mode::Criterion(c) => {
            let mut group = c.benchmark_group(format!("codec_{}", p.case.key));
            group.throughput(Throughput::Bytes(p.text.len() as u64));
            for (name, op) in ops(&p) {
                group.bench_function(name, |b| b.iter(&op));
            }
            group.finish();
        }
        Mode::Count { op, n, .. } => {
            let ops = ops(&p);
            let (_, f) = ops.iter().find(|(name, _)| name == op).expect("no such op");
            for _ in 0..*n {
                f();
            }
        }
    }
}

fn codec(mode: &mut Mode<'_>) {
    for case in cases() {
        match case.key {
            "heartbeat_req" => run::<plain::v16::HeartbeatRequest>(mode, case),
            "heartbeat_res" => run::<plain::v16::HeartbeatResponse>(mode, case),
            "v16_meter_values" => run::<plain::v16::MeterValuesRequest>(mode, case),
            "v201_transaction_event" => run::<plain::v201::TransactionEventRequest>(mode, case),
            "v21_notify_report" => run::<plain::v21::NotifyReportRequest>(mode, case),
            other => panic!("no mirror for {other}"),
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var("CODEC_COUNT") {
        let (what, n) = spec.split_once(':').expect("CODEC_COUNT=key/op:N");
        let (key, op) = what.split_once('/').expect("CODEC_COUNT=key/op:N");
        codec(&mut Mode::Count {
            key: key.into(),
            op: op.into(),
            n: n.parse().expect("N"),
        });
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    codec(&mut Mode::Criterion(&mut c));
    c.final_summary();
}
