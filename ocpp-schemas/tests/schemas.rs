//! The embedded files are the official ones, every one compiles, and violations map to codes.

use ocpp_schemas::{schema, schemas, validate, Keyword, MessageKind, Version, ViolationCode};
use serde_json::json;
use sha2::{Digest, Sha256};

const SUMS: &str = include_str!("../schemas/SHA256SUMS");

#[test]
fn every_file_matches_its_published_sha256() {
    let mut checked = 0;
    for line in SUMS.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, path) = line.split_once("  ").expect("sha256sum line format");
        let (dir, file) = path.split_once('/').expect("version/file path");
        let version = match dir {
            "v16" => Version::V16,
            "v201" => Version::V201,
            "v21" => Version::V21,
            other => panic!("unexpected folder {other}"),
        };
        let embedded = schemas(version)
            .iter()
            .find(|s| s.file_name() == file)
            .unwrap_or_else(|| panic!("{path} is listed in SHA256SUMS but not embedded"));
        let digest = Sha256::digest(embedded.text().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, sum, "{path} differs from the published file");
        checked += 1;
    }
    let embedded: usize = Version::ALL.iter().map(|v| schemas(*v).len()).sum();
    assert_eq!(
        checked, embedded,
        "an embedded file is missing from SHA256SUMS"
    );
    assert_eq!(checked, 78 + 128 + 181);
}

#[test]
fn pairs_per_version_match_the_published_counts() {
    for (version, pairs) in [(Version::V16, 39), (Version::V201, 64), (Version::V21, 90)] {
        let requests = schemas(version)
            .iter()
            .filter(|s| s.kind() == MessageKind::Request)
            .count();
        let responses = schemas(version)
            .iter()
            .filter(|s| s.kind() == MessageKind::Response)
            .count();
        assert_eq!((requests, responses), (pairs, pairs), "OCPP {version}");
        for s in schemas(version)
            .iter()
            .filter(|s| s.kind() == MessageKind::Request)
        {
            assert!(
                schema(version, s.action(), MessageKind::Response).is_some(),
                "{} has no response",
                s.action()
            );
        }
    }
    let sends: Vec<_> = schemas(Version::V21)
        .iter()
        .filter(|s| s.kind() == MessageKind::Send)
        .map(|s| s.action())
        .collect();
    assert_eq!(sends, ["NotifyPeriodicEventStream"]);
    assert_eq!(ocpp_schemas::actions(Version::V16).count(), 39);
}

#[test]
fn every_schema_compiles() {
    for version in Version::ALL {
        for s in schemas(version) {
            assert!(
                s.validator().is_ok(),
                "{} {}: {:?}",
                version,
                s.file_name(),
                s.validator().err()
            );
        }
    }
}

#[test]
fn lookup_by_version_action_kind() {
    let s = schema(Version::V201, "BootNotification", MessageKind::Request).unwrap();
    assert_eq!(s.file_name(), "BootNotificationRequest.json");
    let s = schema(Version::V16, "BootNotification", MessageKind::Request).unwrap();
    assert_eq!(s.file_name(), "BootNotification.json");
    assert!(schema(Version::V16, "TransactionEvent", MessageKind::Request).is_none());
    assert!(schema(Version::V21, "NotifyPeriodicEventStream", MessageKind::Send).is_some());
    assert!(validate(Version::V16, "Nope", MessageKind::Request, &json!({})).is_err());
}

fn codes(
    version: Version,
    action: &str,
    kind: MessageKind,
    v: serde_json::Value,
) -> Vec<(String, Keyword, &'static str)> {
    validate(version, action, kind, &v)
        .unwrap()
        .unwrap_err()
        .into_iter()
        .map(|x| {
            let code = x.code().as_str(version);
            (x.pointer, x.keyword, code)
        })
        .collect()
}

#[test]
fn each_table_row_maps_to_its_code_in_each_spelling() {
    use MessageKind::*;
    let v = Version::V16;
    assert_eq!(
        codes(v, "Heartbeat", Response, json!({"currentTime": 1})),
        [(
            "/currentTime".into(),
            Keyword::Type,
            "TypeConstraintViolation"
        )]
    );
    assert_eq!(
        codes(v, "Heartbeat", Response, json!({})),
        [("".into(), Keyword::Required, "OccurenceConstraintViolation")]
    );
    assert_eq!(
        codes(Version::V201, "Heartbeat", Response, json!({})),
        [(
            "".into(),
            Keyword::Required,
            "OccurrenceConstraintViolation"
        )]
    );
    assert_eq!(
        codes(v, "Heartbeat", Request, json!({"x": 1})),
        [(
            "".into(),
            Keyword::AdditionalProperties,
            "FormationViolation"
        )]
    );
    assert_eq!(
        codes(Version::V21, "Heartbeat", Request, json!({"x": 1})),
        [("".into(), Keyword::AdditionalProperties, "FormatViolation")]
    );
    assert_eq!(
        codes(v, "ClearCache", Response, json!({"status": "Maybe"})),
        [(
            "/status".into(),
            Keyword::Enum,
            "PropertyConstraintViolation"
        )]
    );
    assert_eq!(
        codes(v, "Authorize", Request, json!({"idTag": "é".repeat(21)})),
        [(
            "/idTag".into(),
            Keyword::MaxLength,
            "TypeConstraintViolation"
        )]
    );
    // 20 characters of two bytes each is within maxLength 20: characters, not bytes.
    assert!(
        validate(v, "Authorize", Request, &json!({"idTag": "é".repeat(20)}))
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        codes(
            Version::V201,
            "GetVariables",
            Request,
            json!({"getVariableData": []})
        ),
        [(
            "/getVariableData".into(),
            Keyword::MinItems,
            "OccurrenceConstraintViolation"
        )]
    );
    assert_eq!(
        codes(
            v,
            "Heartbeat",
            Response,
            json!({"currentTime": "yesterday"})
        ),
        [(
            "/currentTime".into(),
            Keyword::Format,
            "PropertyConstraintViolation"
        )]
    );
    assert_eq!(
        codes(
            Version::V201,
            "NotifyEVChargingNeeds",
            Request,
            json!({"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC",
            "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "stateOfCharge": 101}}})
        ),
        [(
            "/chargingNeeds/dcChargingParameters/stateOfCharge".into(),
            Keyword::Maximum,
            "PropertyConstraintViolation"
        )]
    );
}

#[test]
fn multiple_of_tenth_is_checked_exactly() {
    let profile = |limit: serde_json::Value| {
        json!({"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}})
    };
    let ok = |l| {
        validate(
            Version::V16,
            "SetChargingProfile",
            MessageKind::Request,
            &profile(l),
        )
        .unwrap()
    };
    assert!(ok(json!(21.3)).is_ok(), "21.3 is a multiple of 0.1");
    assert!(ok(json!(16)).is_ok());
    let errs = ok(json!(21.35)).unwrap_err();
    assert_eq!(errs[0].keyword, Keyword::MultipleOf);
}

#[test]
fn one_code_for_many_violations_prefers_structure() {
    let errs = validate(
        Version::V201,
        "Authorize",
        MessageKind::Request,
        &json!({"extra": 1, "idToken": {"idToken": 5, "type": "Central"}}),
    )
    .unwrap()
    .unwrap_err();
    assert!(errs.len() >= 2);
    assert_eq!(
        ViolationCode::for_violations(&errs),
        Some(ViolationCode::Format)
    );
    assert_eq!(ViolationCode::for_violations(&[]), None);
}

#[test]
fn versions_parse_and_print() {
    for v in Version::ALL {
        assert_eq!(v.as_str().parse::<Version>().unwrap(), v);
        assert_eq!(v.subprotocol().parse::<Version>().unwrap(), v);
        assert_eq!(Version::from_subprotocol(v.subprotocol()), Some(v));
    }
    assert!("2.0".parse::<Version>().is_err());
    assert_eq!(Version::from_subprotocol("OCPP1.6"), None);
}
