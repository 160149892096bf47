//! No input from a charger, however malformed, panics the session or stops it answering.

use ocpp_central::testing::Harness;
use ocpp_types::Version;
use proptest::prelude::*;

const VALID: [&str; 4] = [
    r#"[2,"a","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#,
    r#"[2,"b","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2025-01-01T00:00:00Z"}]"#,
    r#"[2,"c","TransactionEvent",{"eventType":"Started","timestamp":"2025-01-01T00:00:00Z","triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"X"}}]"#,
    r#"[2,"d","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{"value":1.5}]}]}]"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn arbitrary_and_mutated_input_never_panics(
        v in 0usize..3,
        junk in ".{0,64}",
        base in 0usize..4,
        cut in 0usize..200,
        insert in ".{0,4}",
    ) {
        let version = [Version::V16, Version::V201, Version::V21][v];
        let mut h = Harness::new(version);
        h.charger_sends(&junk);
        let b = VALID[base];
        let mut at = cut.min(b.len());
        while !b.is_char_boundary(at) { at -= 1; }
        let mutated = format!("{}{}{}", &b[..at], insert, &b[at..]);
        h.charger_sends(&mutated);
        h.charger_sends(b);
        let out = h.charger_sends(r#"[2,"alive","Heartbeat",{}]"#);
        prop_assert_eq!(out.len(), 1);
        prop_assert!(out[0].starts_with(r#"[3,"alive""#) || out[0].contains("SecurityError"), "{}", out[0]);
    }
}
