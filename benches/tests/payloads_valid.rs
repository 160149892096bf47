//! The benchmark payloads are valid messages (a benchmark of invalid input would measure errors).

use ocpp_schemas::{schema, MessageKind, Version};

#[test]
fn bench_payloads_are_schema_valid() {
    for (file, version, action) in [
        ("v16_meter_values.json", Version::V16, "MeterValues"),
        (
            "v201_transaction_event.json",
            Version::V201,
            "TransactionEvent",
        ),
        ("v21_notify_report.json", Version::V21, "NotifyReport"),
    ] {
        let path = format!("{}/payloads/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("payload file");
        let value: serde_json::Value = serde_json::from_str(&text).expect("payload is JSON");
        let s = schema(version, action, MessageKind::Request).expect("schema");
        assert_eq!(s.validate(&value), Ok(()), "{file}");
        ocpp_types::decode_payload(version, action, MessageKind::Request, &text)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
