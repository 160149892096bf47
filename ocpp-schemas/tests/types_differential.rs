//! Differential tests: typed decoding accepts exactly what the official schema accepts.
//!
//! For every schema file of every version, JSON instances are generated from the schema itself
//! (see `support/instances.rs`): valid ones (minimal, maximal, boundary values) and invalid ones
//! (one mutation each). Each instance is first checked against the schema validator (which
//! validates the generator), then decoded into the generated type with
//! [`ocpp_types::decode_payload`]; the two verdicts must agree. The only exceptions are the
//! documented deviations (32-bit integers, exact decimals, duplicate keys), which are generated
//! in their own list and must be refused by the types while the schema accepts them.
//!
//! Run with `cargo test -p ocpp-schemas --test types_differential -- --nocapture` to see the coverage.

#[path = "support/instances.rs"]
mod instances;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use instances::{Case, Expect, Gen, Rng};
use ocpp_schemas::{MessageKind, Schema, Version};
use serde_json::Value;

/// Decodes `json` as the typed payload; `Err` carries the decoder's message.
fn typed(version: Version, action: &str, kind: MessageKind, json: &str) -> Result<(), String> {
    ocpp_types::decode_payload(version, action, kind, json).map_err(|e| e.to_string())
}

#[derive(Default)]
struct Coverage {
    pairs: usize,
    sends: usize,
    instances: usize,
    deviations: usize,
    open_objects: usize,
}

struct Report {
    /// The generator's expectation differs from the validator's verdict.
    generator: Vec<String>,
    /// Typed decoding differs from the validator.
    disagreements: Vec<String>,
    /// A documented deviation the types did not refuse.
    deviations: Vec<String>,
}

fn check_schema(schema: &Schema, report: &mut Report, coverage: &mut Coverage) {
    let (v, action, kind) = (schema.version(), schema.action(), schema.kind());
    let mut gen = Gen::new(schema.json(), schema.file_name());
    let cases: Vec<Case> = gen.root_cases();
    coverage.open_objects += gen.open_objects;
    let mut rng = Rng::from_str_seed(action);
    for case in cases {
        let text = case.value.to_text(rng.one_in(8));
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                report.generator.push(format!(
                    "{v} {action} {kind} {}: not JSON ({e}): {text}",
                    case.label
                ));
                continue;
            }
        };
        let schema_ok = schema.is_valid(&value);
        let expected_ok = !matches!(case.expect, Expect::Invalid);
        if schema_ok != expected_ok {
            let why = schema
                .validate(&value)
                .err()
                .map(|v| {
                    v.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            report.generator.push(format!(
                "{v} {action} {kind} {}: generator expected {:?}, validator says {} {why}\n    {}",
                case.label,
                case.expect,
                if schema_ok { "valid" } else { "invalid" },
                clip(&text)
            ));
            continue;
        }
        coverage.instances += 1;
        let typed_result = typed(v, action, kind, &text);
        match case.expect {
            Expect::Deviation(why) => {
                coverage.deviations += 1;
                if typed_result.is_ok() {
                    report.deviations.push(format!(
                        "{v} {action} {kind} {}: schema accepts, types accept too, but the \
                         documented deviation ({why}) says they refuse\n    {}",
                        case.label,
                        clip(&text)
                    ));
                }
            }
            _ => {
                if typed_result.is_ok() != schema_ok {
                    report.disagreements.push(format!(
                        "{v} {action} {kind} {}: validator says {}, typed decoding says {}\n    \
                         instance: {}",
                        case.label,
                        if schema_ok { "VALID" } else { "INVALID" },
                        match &typed_result {
                            Ok(()) => "Ok".to_owned(),
                            Err(e) => format!("Err({e})"),
                        },
                        clip(&text)
                    ));
                }
            }
        }
    }
}

fn clip(text: &str) -> String {
    if text.chars().count() <= 600 {
        text.to_owned()
    } else {
        let head: String = text.chars().take(600).collect();
        format!("{head}... ({} bytes)", text.len())
    }
}

fn summarize(title: &str, items: &[String]) -> String {
    let mut out = format!("{} {title}:\n", items.len());
    for item in items.iter().take(300) {
        let _ = writeln!(out, "  {item}");
    }
    if items.len() > 300 {
        let _ = writeln!(out, "  ... and {} more", items.len() - 300);
    }
    out
}

#[test]
fn typed_decoding_agrees_with_the_schemas() {
    let mut report = Report {
        generator: Vec::new(),
        disagreements: Vec::new(),
        deviations: Vec::new(),
    };
    let mut per_version: BTreeMap<Version, Coverage> = BTreeMap::new();
    for v in Version::ALL {
        let coverage = per_version.entry(v).or_default();
        for action in ocpp_schemas::actions(v) {
            let req = ocpp_schemas::schema(v, action, MessageKind::Request);
            let res = ocpp_schemas::schema(v, action, MessageKind::Response);
            let send = ocpp_schemas::schema(v, action, MessageKind::Send);
            match (req, res, send) {
                (Some(_), Some(_), None) => coverage.pairs += 1,
                (None, None, Some(_)) => coverage.sends += 1,
                other => panic!("{v} {action}: unexpected set of schemas {other:?}"),
            }
            for schema in [req, res, send].into_iter().flatten() {
                check_schema(schema, &mut report, coverage);
            }
        }
    }
    let mut line = String::from("differential:");
    for (v, c) in &per_version {
        let _ = write!(
            line,
            " OCPP {v}: {} pairs, {} SEND, {} instances ({} documented deviations, {} open \
             CustomData objects);",
            c.pairs, c.sends, c.instances, c.deviations, c.open_objects
        );
    }
    report_line("differential", &line);
    assert!(
        report.generator.is_empty(),
        "the instance generator is wrong about the schema:\n{}",
        summarize("generator errors", &report.generator)
    );
    let mut failures = String::new();
    if !report.disagreements.is_empty() {
        failures += &summarize(
            "disagreements between typed decoding and the schema validator",
            &report.disagreements,
        );
    }
    if !report.deviations.is_empty() {
        failures += &summarize("documented deviations not enforced", &report.deviations);
    }
    assert!(failures.is_empty(), "{failures}");
    let counts: Vec<(usize, usize)> = per_version.values().map(|c| (c.pairs, c.sends)).collect();
    assert_eq!(counts, [(39, 0), (64, 0), (90, 1)], "message coverage");
}

/// A format's name, valid and invalid strings, and the validator's and the types' checks.
type FormatList<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
    &'a dyn Fn(&str) -> bool,
    &'a dyn Fn(&str) -> bool,
);

/// The hand-written `date-time` and `uri` checks against the validator's, on fixed lists and
/// on many random one-character edits of valid strings.
#[test]
fn format_checks_agree_with_the_validator() {
    let datetime_schema =
        ocpp_schemas::schema(Version::V16, "Heartbeat", MessageKind::Response).unwrap();
    let uri_schema =
        ocpp_schemas::schema(Version::V16, "UpdateFirmware", MessageKind::Request).unwrap();
    let schema_datetime =
        |s: &str| datetime_schema.is_valid(&serde_json::json!({ "currentTime": s }));
    let schema_uri = |s: &str| {
        uri_schema.is_valid(&serde_json::json!({
            "location": s,
            "retrieveDate": "2026-11-25T08:30:00Z"
        }))
    };
    let types_datetime = |s: &str| s.parse::<ocpp_types::DateTime>().is_ok();
    let types_uri = |s: &str| {
        let json = serde_json::to_string(s).unwrap();
        let mut de = serde_json::Deserializer::from_str(&json);
        <ocpp_types::rt::Uri as ocpp_types::rt::Spec<String>>::de(&mut de).is_ok()
    };
    let mut rng = Rng::new(2026);
    let mut failures = Vec::new();
    let mut checked = 0;
    let lists: [FormatList<'_>; 2] = [
        (
            "date-time",
            instances::VALID_DATETIMES,
            instances::INVALID_DATETIMES,
            &schema_datetime,
            &types_datetime,
        ),
        (
            "uri",
            instances::VALID_URIS,
            instances::INVALID_URIS,
            &schema_uri,
            &types_uri,
        ),
    ];
    const EDITS: &[char] = &[
        '0', '1', '2', '3', '5', '9', '6', 'T', 't', 'Z', 'z', ':', '-', '+', '.', ' ', '/', '@',
        '[', ']', '%', '?', '#', 'v', 'V', 'a', 'f', 'g', 'é', 'x', '_', '~',
    ];
    for (format, valid, invalid, schema_ok, types_ok) in lists {
        for (s, expected) in valid
            .iter()
            .map(|s| (*s, true))
            .chain(invalid.iter().map(|s| (*s, false)))
        {
            assert_eq!(schema_ok(s), expected, "{format} list entry {s:?}");
        }
        let mut inputs: Vec<String> = valid
            .iter()
            .chain(invalid)
            .map(|s| (*s).to_owned())
            .collect();
        for _ in 0..4000 {
            let mut chars: Vec<char> = rng.pick(valid).chars().collect();
            for _ in 0..1 + rng.below(2) {
                let at = rng.below(chars.len() + 1);
                match rng.below(3) {
                    0 if at < chars.len() => chars[at] = *rng.pick(EDITS),
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => chars.insert(at, *rng.pick(EDITS)),
                }
            }
            inputs.push(chars.into_iter().collect());
        }
        for s in &inputs {
            checked += 1;
            let (a, b) = (schema_ok(s), types_ok(s));
            if a != b {
                failures.push(format!("{format} {s:?}: validator {a}, types {b}"));
            }
        }
    }
    failures.sort();
    failures.dedup();
    report_line(
        "format-checks",
        &format!("format checks: {checked} strings"),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Prints a coverage line and keeps it in `target/tmp/coverage-<name>.txt`, where the test
/// command reads it back after the workspace tests (no second build to see it).
fn report_line(name: &str, line: &str) {
    eprintln!("{line}");
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("coverage-{name}.txt"));
    let _ = std::fs::write(path, format!("{line}\n"));
}
