//! Signed meter values: the session hands them verbatim to the application (1.6 `SignedData`,
//! 2.0.1 / 2.1 `signedMeterValue`), and `ocpp_central::signed` parses and verifies OCMF.

use base64::Engine as _;
use ocpp_central::signed::{
    check_public_key, parse_ocmf, verify, OcmfError, VerificationStatus, MAX_READINGS,
    MAX_SIGNED_DATA_LEN,
};
use ocpp_central::testing::Harness;
use ocpp_central::{Event, MeterSample};
use ocpp_types::{Decimal, Version};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
};
use serde_json::Value;

const SPKI_P256: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
const SPKI_P384: &str = "3076301006072a8648ce3d020106052b81040022036200";

struct Meter {
    key: EcdsaKeyPair,
    spki_hex: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn meter(p384: bool) -> Meter {
    let rng = SystemRandom::new();
    let alg = if p384 {
        &ECDSA_P384_SHA384_ASN1_SIGNING
    } else {
        &ECDSA_P256_SHA256_ASN1_SIGNING
    };
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let header = if p384 { SPKI_P384 } else { SPKI_P256 };
    let spki_hex = format!("{header}{}", hex(key.public_key().as_ref()));
    Meter { key, spki_hex }
}

fn payload(wh_kwh: &str) -> String {
    format!(
        r#"{{"FV":"1.0","GI":"SIM","GS":"SIM-1","PG":"T1","MS":"MTR-1","IS":true,"ID":"TAG1","RD":[{{"TM":"2025-01-01T00:00:00,000+0000 S","TX":"B","RV":{wh_kwh},"RI":"1-b:1.8.0","RU":"kWh","ST":"G"}}]}}"#
    )
}

fn sign(m: &Meter, payload: &str, sa: &str) -> String {
    let sig = m
        .key
        .sign(&SystemRandom::new(), payload.as_bytes())
        .unwrap();
    format!(
        r#"OCMF|{payload}|{{"SA":"{sa}","SD":"{}"}}"#,
        hex(sig.as_ref())
    )
}

#[test]
fn a_valid_p256_value_verifies_in_every_key_and_data_form() {
    let m = meter(false);
    let ocmf = sign(&m, &payload("1.2345"), "ECDSA-secp256r1-SHA256");
    let v = verify(&ocmf, None, None, Some(&m.spki_hex));
    assert_eq!(v.status, VerificationStatus::Verified, "{:?}", v.detail);
    let parsed = v.ocmf.unwrap();
    assert_eq!(parsed.readings.len(), 1);
    assert_eq!(parsed.readings[0].value, Decimal::new(12345, 4));
    assert_eq!(parsed.readings[0].id.as_deref(), Some("1-b:1.8.0"));
    assert_eq!(parsed.readings[0].kind.as_deref(), Some("B"));
    assert_eq!(parsed.energy_wh(), Some(Decimal::new(12345, 1)));
    assert_eq!(parsed.meter_serial.as_deref(), Some("MTR-1"));
    assert_eq!(parsed.identification.as_deref(), Some("TAG1"));

    // 2.x: base64 data with encodingMethod OCMF, base64 DER key, PEM key, lowercase hex.
    let b64 = base64::engine::general_purpose::STANDARD;
    let spki: Vec<u8> = (0..m.spki_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&m.spki_hex[i..i + 2], 16).unwrap())
        .collect();
    let key_b64 = b64.encode(&spki);
    let data_b64 = b64.encode(ocmf.as_bytes());
    for key in [
        key_b64.clone(),
        format!("-----BEGIN PUBLIC KEY-----\n{key_b64}\n-----END PUBLIC KEY-----\n"),
        m.spki_hex.to_lowercase(),
        b64.encode(m.spki_hex.as_bytes()),
        hex(m.key.public_key().as_ref()),
    ] {
        let v = verify(
            &data_b64,
            Some("OCMF"),
            Some("ECDSA-secp256r1-SHA256"),
            Some(&key),
        );
        assert_eq!(
            v.status,
            VerificationStatus::Verified,
            "{key}: {:?}",
            v.detail
        );
    }
    // No SA: the OCMF default (P-256) applies.
    let payload = payload("2");
    let sig = m
        .key
        .sign(&SystemRandom::new(), payload.as_bytes())
        .unwrap();
    let no_sa = format!(r#"OCMF|{payload}|{{"SD":"{}"}}"#, hex(sig.as_ref()));
    assert_eq!(
        verify(&no_sa, None, None, Some(&m.spki_hex)).status,
        VerificationStatus::Verified
    );
    // Base64 signature data (SE).
    let se = format!(
        r#"OCMF|{payload}|{{"SA":"ECDSA-secp256r1-SHA256","SE":"base64","SD":"{}"}}"#,
        b64.encode(sig.as_ref())
    );
    assert_eq!(
        verify(&se, None, None, Some(&m.spki_hex)).status,
        VerificationStatus::Verified
    );
    assert!(check_public_key(&m.spki_hex).is_ok());
}

#[test]
fn a_valid_p384_value_verifies() {
    let m = meter(true);
    let ocmf = sign(&m, &payload("7"), "ECDSA-secp384r1-SHA384");
    let v = verify(&ocmf, Some("OCMF"), None, Some(&m.spki_hex));
    assert_eq!(v.status, VerificationStatus::Verified, "{:?}", v.detail);
    // A P-256 key for a P-384 algorithm is Invalid, with the reason.
    let other = meter(false);
    let v = verify(&ocmf, Some("OCMF"), None, Some(&other.spki_hex));
    assert_eq!(v.status, VerificationStatus::Invalid);
    assert!(v.detail.unwrap().contains("curve"));
}

#[test]
fn tampered_data_and_a_wrong_key_are_invalid() {
    let m = meter(false);
    let ocmf = sign(&m, &payload("1.2345"), "ECDSA-secp256r1-SHA256");
    // One digit of the reading changed: parsed (the readings are shown) but Invalid.
    let tampered = ocmf.replace("\"RV\":1.2345", "\"RV\":9.2345");
    let v = verify(&tampered, None, None, Some(&m.spki_hex));
    assert_eq!(v.status, VerificationStatus::Invalid);
    assert_eq!(v.detail.as_deref(), Some("signature does not match"));
    assert_eq!(v.ocmf.unwrap().readings[0].value, Decimal::new(92345, 4));
    // The right data, another meter's key.
    let other = meter(false);
    let v = verify(&ocmf, None, None, Some(&other.spki_hex));
    assert_eq!(v.status, VerificationStatus::Invalid);
    // A garbage key.
    let v = verify(&ocmf, None, None, Some("not a key at all!"));
    assert_eq!(v.status, VerificationStatus::Invalid);
    assert!(v.detail.unwrap().starts_with("public key:"));
    assert!(check_public_key("00ff").is_err());
    // A changed signature byte.
    let sd_start = ocmf.find("\"SD\":\"").unwrap() + 6;
    let mut bytes = ocmf.into_bytes();
    bytes[sd_start + 10] = if bytes[sd_start + 10] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let flipped = String::from_utf8(bytes).unwrap();
    assert_eq!(
        verify(&flipped, None, None, Some(&m.spki_hex)).status,
        VerificationStatus::Invalid
    );
}

#[test]
fn no_key_and_unsupported_are_told_apart() {
    let m = meter(false);
    let ocmf = sign(&m, &payload("3"), "ECDSA-secp256r1-SHA256");
    let v = verify(&ocmf, None, None, None);
    assert_eq!(v.status, VerificationStatus::NoKey);
    assert_eq!(v.ocmf.unwrap().energy_wh(), Some(Decimal::from(3000)));
    assert_eq!(
        verify(&ocmf, None, None, Some("  ")).status,
        VerificationStatus::NoKey
    );
    // Another encoding (EDL), or 1.6 data that is not OCMF: Unsupported, nothing parsed.
    let v = verify("AAECAwQ=", Some("EDL"), None, Some(&m.spki_hex));
    assert_eq!(v.status, VerificationStatus::Unsupported);
    assert_eq!(v.detail.as_deref(), Some("encoding EDL"));
    let v = verify("<SML binary as hex>", None, None, None);
    assert_eq!(v.status, VerificationStatus::Unsupported);
    // A secp192k1 signature (no Rust implementation to check it with): parsed, Unsupported.
    let koblitz = ocmf.replace("ECDSA-secp256r1-SHA256", "ECDSA-secp192k1-SHA256");
    let v = verify(&koblitz, None, None, Some(&m.spki_hex));
    assert_eq!(v.status, VerificationStatus::Unsupported);
    assert_eq!(
        v.detail.as_deref(),
        Some("signature algorithm ECDSA-secp192k1-SHA256")
    );
    assert!(v.ocmf.is_some());
    // The status names round-trip.
    for s in [
        VerificationStatus::Verified,
        VerificationStatus::Invalid,
        VerificationStatus::NoKey,
        VerificationStatus::Unsupported,
    ] {
        assert_eq!(s.as_str().parse::<VerificationStatus>().unwrap(), s);
    }
    assert_eq!(
        "verified".parse::<VerificationStatus>(),
        Err(OcmfError::UnknownStatus)
    );
}

#[test]
fn malformed_huge_and_garbage_ocmf_gets_exact_errors_and_no_panic() {
    let cases: &[(&str, OcmfError)] = &[
        ("OCMF|", OcmfError::NotOcmf),
        ("OCMF|{}", OcmfError::NotOcmf),
        (
            "OCMF|not json|{\"SD\":\"00\"}",
            OcmfError::Payload(String::new()),
        ),
        ("OCMF|{\"RD\":[]}|nope", OcmfError::Signature(String::new())),
        ("OCMF|{\"RD\":[]}|{}", OcmfError::Signature(String::new())),
        (
            "OCMF|{\"RD\":[{\"RV\":\"x\"}]}|{\"SD\":\"00\"}",
            OcmfError::Payload(String::new()),
        ),
        (
            "OCMF|{\"RD\":[]}|{\"SD\":\"0g\"}",
            OcmfError::SignatureEncoding("hex"),
        ),
        (
            "OCMF|{\"RD\":[]}|{\"SE\":\"base64\",\"SD\":\"@@\"}",
            OcmfError::SignatureEncoding("base64"),
        ),
        (
            "OCMF|{\"RD\":[]}|{\"SE\":\"rot13\",\"SD\":\"00\"}",
            OcmfError::SignatureEncoding("hex or base64 (SE)"),
        ),
        ("hello", OcmfError::NotOcmf),
    ];
    for (data, want) in cases {
        let got = parse_ocmf(data).unwrap_err();
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(want),
            "{data}: {got}"
        );
        if !matches!(want, OcmfError::NotOcmf) {
            let v = verify(data, Some("OCMF"), None, Some("00"));
            assert_eq!(v.status, VerificationStatus::Invalid, "{data}");
            assert_eq!(v.detail.as_deref(), Some(got.to_string().as_str()));
        }
    }
    // Too many readings.
    let rd = vec![r#"{"RV":1}"#; MAX_READINGS + 1].join(",");
    assert_eq!(
        parse_ocmf(&format!("OCMF|{{\"RD\":[{rd}]}}|{{\"SD\":\"00\"}}")).unwrap_err(),
        OcmfError::TooManyReadings
    );
    // Huge data: refused before parsing.
    let huge = format!("OCMF|{}|{{}}", "x".repeat(MAX_SIGNED_DATA_LEN));
    assert_eq!(parse_ocmf(&huge).unwrap_err(), OcmfError::TooLong);
    let v = verify(&huge, None, None, None);
    assert_eq!(v.status, VerificationStatus::Invalid);
    // A huge key.
    let m = meter(false);
    let ocmf = sign(&m, &payload("1"), "ECDSA-secp256r1-SHA256");
    let v = verify(&ocmf, None, None, Some(&"ab".repeat(5000)));
    assert_eq!(v.status, VerificationStatus::Invalid);
    // Garbage of every shape: a status, never a panic.
    let mut seed = 7u64;
    for n in 0..2000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (seed >> 40) as usize % 200;
        let s: String = (0..len)
            .map(|i| {
                let c = ((seed >> (i % 50)) as u8 ^ (i as u8).wrapping_mul(31)) % 96 + 32;
                c as char
            })
            .collect();
        let data = if n % 2 == 0 { format!("OCMF|{s}") } else { s };
        let _ = verify(&data, None, None, Some(&data));
        let _ = verify(&data, Some("OCMF"), None, None);
    }
}

fn signed_samples(events: &[Event]) -> Vec<MeterSample> {
    events
        .iter()
        .flat_map(|e| match e {
            Event::TransactionStarted { samples, .. }
            | Event::TransactionUpdated { samples, .. }
            | Event::TransactionEnded { samples, .. }
            | Event::MeterValues { samples, .. } => samples.clone(),
            _ => Vec::new(),
        })
        .filter(|s| s.signed.is_some())
        .collect()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn v16_signed_data_reaches_the_events_verbatim_and_moves_no_register() {
    let mut h = Harness::new(Version::V16);
    h.charger_sends(
        r#"[2,"b1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"Volt"}]"#,
    );
    let out = h.charger_sends(r#"[2,"s1","StartTransaction",{"connectorId":1,"idTag":"TAG1","meterStart":1000,"timestamp":"2025-01-01T00:00:00Z"}]"#);
    let tx = json(&out[0])[2]["transactionId"].as_i64().unwrap();
    h.take_events();
    let m = meter(false);
    let ocmf = sign(&m, &payload("1.5"), "ECDSA-secp256r1-SHA256");
    let quoted = serde_json::to_string(&ocmf).unwrap();
    let mv = format!(
        r#"[2,"m1","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"2025-01-01T00:05:00Z","sampledValue":[{{"value":"1500","measurand":"Energy.Active.Import.Register","context":"Sample.Periodic"}},{{"value":{quoted},"format":"SignedData","measurand":"Energy.Active.Import.Register","context":"Sample.Periodic"}}]}}]}}]"#
    );
    let out = h.charger_sends(&mv);
    assert_eq!(out[0], r#"[3,"m1",{}]"#);
    let events = h.take_events();
    let signed = signed_samples(&events);
    assert_eq!(signed.len(), 1);
    let s = &signed[0];
    let sv = s.signed.as_ref().unwrap();
    assert_eq!(sv.data, ocmf);
    assert!(sv.replaces_value);
    assert_eq!(sv.encoding, None);
    assert!(!s.has_value());
    assert_eq!(s.energy_wh(), None);
    assert!(!s.is_import_register());
    assert_eq!(s.context.as_deref(), Some("Sample.Periodic"));
    // The plain sample moved the register; the signed one did not zero it.
    let tx = &h.session.state().transactions[&tx.to_string()];
    assert_eq!(tx.meter_last_wh, Some(Decimal::from(1500)));
    assert_eq!(tx.energy_wh, Decimal::from(500));
    assert_eq!(
        verify(&sv.data, sv.encoding.as_deref(), None, Some(&m.spki_hex)).status,
        VerificationStatus::Verified
    );
    // In StopTransaction's transactionData too.
    let stop = format!(
        r#"[2,"x1","StopTransaction",{{"transactionId":{},"meterStop":2000,"timestamp":"2025-01-01T00:10:00Z","transactionData":[{{"timestamp":"2025-01-01T00:10:00Z","sampledValue":[{{"value":{quoted},"format":"SignedData","context":"Transaction.End"}}]}}]}}]"#,
        tx.id
    );
    h.charger_sends(&stop);
    let signed = signed_samples(&h.take_events());
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].context.as_deref(), Some("Transaction.End"));
}

fn v2_signed_flow(version: Version, signed_json: &str) -> Vec<MeterSample> {
    let mut h = Harness::new(version);
    h.charger_sends(r#"[2,"b1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"Volt","vendorName":"ACME"}}]"#);
    h.take_events();
    let ev = format!(
        r#"[2,"t1","TransactionEvent",{{"eventType":"Started","timestamp":"2025-01-01T00:00:00Z","triggerReason":"Authorized","seqNo":0,"transactionInfo":{{"transactionId":"TX-1"}},"evse":{{"id":1,"connectorId":1}},"meterValue":[{{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{{"value":1.5,"context":"Transaction.Begin","unitOfMeasure":{{"unit":"kWh"}},"signedMeterValue":{signed_json}}}]}}]}}]"#
    );
    let out = h.charger_sends(&ev);
    assert_eq!(json(&out[0])[0], 3, "{}", out[0]);
    let events = h.take_events();
    // The numeric value counts as always.
    assert_eq!(
        h.session.state().transactions["TX-1"].meter_start_wh,
        Some(Decimal::from(1500))
    );
    signed_samples(&events)
}

#[test]
fn v2_signed_meter_values_reach_the_events_with_their_encoding_and_key() {
    let m = meter(false);
    let ocmf = sign(&m, &payload("1.5"), "ECDSA-secp256r1-SHA256");
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = b64.encode(&ocmf);
    let key = b64.encode(&m.spki_hex);
    let v201 = format!(
        r#"{{"signedMeterData":"{data}","signingMethod":"ECDSA-secp256r1-SHA256","encodingMethod":"OCMF","publicKey":"{key}"}}"#
    );
    let s = v2_signed_flow(Version::V201, &v201);
    assert_eq!(s.len(), 1);
    let sv = s[0].signed.as_ref().unwrap();
    assert_eq!(sv.data, data);
    assert_eq!(sv.encoding.as_deref(), Some("OCMF"));
    assert_eq!(sv.signing_method.as_deref(), Some("ECDSA-secp256r1-SHA256"));
    assert_eq!(sv.public_key.as_deref(), Some(key.as_str()));
    assert!(!sv.replaces_value);
    assert!(s[0].has_value());
    let v = verify(
        &sv.data,
        sv.encoding.as_deref(),
        sv.signing_method.as_deref(),
        sv.public_key.as_deref(),
    );
    assert_eq!(v.status, VerificationStatus::Verified, "{:?}", v.detail);

    // 2.1: signingMethod and publicKey may be left out; data may be long.
    let v21 = format!(r#"{{"signedMeterData":"{data}","encodingMethod":"OCMF"}}"#);
    let s = v2_signed_flow(Version::V21, &v21);
    let sv = s[0].signed.as_ref().unwrap();
    assert_eq!(sv.public_key, None);
    assert_eq!(sv.signing_method, None);
    let v = verify(&sv.data, sv.encoding.as_deref(), None, None);
    assert_eq!(v.status, VerificationStatus::NoKey);
    // 2.0.1's required-but-empty publicKey counts as none.
    let empty = format!(
        r#"{{"signedMeterData":"{data}","signingMethod":"","encodingMethod":"OCMF","publicKey":""}}"#
    );
    let s = v2_signed_flow(Version::V201, &empty);
    assert_eq!(s[0].signed.as_ref().unwrap().public_key, None);
}

/// Vectors made outside this code base (Python's `cryptography`, one key per curve, the payload
/// of [`payload`] with "1.2345"): the curves ring does not offer.
#[cfg(feature = "ocmf-curves")]
mod other_curves {
    use super::*;

    struct Vector {
        sa: &'static str,
        spki: &'static str,
        header: &'static str,
        sig: &'static str,
    }

    const K256: Vector = Vector {
        sa: "ECDSA-secp256k1-SHA256",
        spki: "3056301006072a8648ce3d020106052b8104000a034200044a700b15822ad864f443d979484d2511db1a4e16200a3ffeb53732e887bfca38a40aa8c9da528ebeef6f3cc9f35e676591b2c103f840856e35fd86587385f713",
        header: "3056301006072a8648ce3d020106052b8104000a034200",
        sig: "304402200ebac31cf9eeb1ebec41342f28aff85849195dfac8120955f6787d1d5f1a6c0202205e6c35f2583e551a163d83cfc5985095c31a2c4294d976597504234c5c46dfe1",
    };
    /// The same signature with `s` replaced by `n - s` (as valid in ECDSA; Bitcoin's rule
    /// refuses it, a meter may well send it).
    const K256_HIGH_S: &str = "304502200ebac31cf9eeb1ebec41342f28aff85849195dfac8120955f6787d1d5f1a6c02022100a193ca0da7c1aae5e9c27c303a67af68f794b0a41a6f29e24ace3b4073ef6160";
    const P192: Vector = Vector {
        sa: "ECDSA-secp192r1-SHA256",
        spki: "3049301306072a8648ce3d020106082a8648ce3d030101033200046a0f534ae3870ddddecdff84db34be59e732018856726fe26cbd5881c16c477ab320884b345090fa8fe3718052c2f19e",
        header: "3049301306072a8648ce3d020106082a8648ce3d030101033200",
        sig: "3035021900b9084db048ec69182470c1f6474069a042323a7d7ace014302181332859a0686837eb29e95ba2648e0acf5a897e2d6e6fc5b",
    };
    const BP256: Vector = Vector {
        sa: "ECDSA-brainpool256r1-SHA256",
        spki: "305a301406072a8648ce3d020106092b2403030208010107034200048d954dd70800812eb18fa91defb8180a3cd40361df8eb4fbc393a351fc62f2517af2725ec5e0afd43a91a3020728b3fad2247516c8b737dc30b5d73ca5046698",
        header: "305a301406072a8648ce3d020106092b2403030208010107034200",
        sig: "30450221009c30d18b72cc0d50596dd27f94599bff4e9df1b946cca20e095e0ca5e13efc480220286ab4db856cda5ee570cacab55f76e6568aefd6cf93e0311bc088a83caed6c5",
    };

    fn data(v: &Vector, payload: &str, sig: &str) -> String {
        format!(r#"OCMF|{payload}|{{"SA":"{}","SD":"{sig}"}}"#, v.sa)
    }

    #[test]
    fn secp256k1_secp192r1_and_brainpool_values_verify_and_tampering_does_not() {
        for v in [&K256, &P192, &BP256] {
            let good = data(v, &payload("1.2345"), v.sig);
            let r = verify(&good, None, None, Some(v.spki));
            assert_eq!(
                r.status,
                VerificationStatus::Verified,
                "{}: {:?}",
                v.sa,
                r.detail
            );
            assert_eq!(r.ocmf.unwrap().energy_wh(), Some(Decimal::new(12345, 1)));
            // The bare point (its curve is the signature's) and the key as PEM.
            let point = v.spki.strip_prefix(v.header).unwrap();
            assert_eq!(
                verify(&good, None, None, Some(point)).status,
                VerificationStatus::Verified,
                "{} bare point",
                v.sa
            );
            assert!(check_public_key(v.spki).is_ok(), "{}", v.sa);
            // One reading changed: the signature no longer matches.
            let tampered = data(v, &payload("9.2345"), v.sig);
            let r = verify(&tampered, None, None, Some(v.spki));
            assert_eq!(r.status, VerificationStatus::Invalid, "{}", v.sa);
            assert_eq!(r.detail.as_deref(), Some("signature does not match"));
            // A garbage signature: Invalid, never a panic.
            let r = verify(
                &data(v, &payload("1.2345"), "3006020101020101"),
                None,
                None,
                Some(v.spki),
            );
            assert_eq!(r.status, VerificationStatus::Invalid, "{}", v.sa);
        }
        // secp256k1 with a high `s`: still the meter's signature.
        let high = data(&K256, &payload("1.2345"), K256_HIGH_S);
        assert_eq!(
            verify(&high, None, None, Some(K256.spki)).status,
            VerificationStatus::Verified
        );
        // A key of another curve than the signature's: Invalid, with why.
        let good = data(&BP256, &payload("1.2345"), BP256.sig);
        let r = verify(&good, None, None, Some(K256.spki));
        assert_eq!(r.status, VerificationStatus::Invalid);
        assert_eq!(
            r.detail.as_deref(),
            Some("public key is not on the curve of ECDSA-brainpool256r1-SHA256")
        );
        // A bare P-192 point for a 256-bit curve's signature: Invalid, not a panic.
        let p192_point = P192.spki.strip_prefix(P192.header).unwrap();
        let r = verify(&good, None, None, Some(p192_point));
        assert_eq!(r.status, VerificationStatus::Invalid);
    }
}
