//! Signed meter values (metering law, e.g. Germany's Eichrecht): parse the Open Charge Metering
//! Format (OCMF) and verify its signature against the meter's public key.
//!
//! The session hands signed values verbatim to the application in the meter-sample events
//! ([`MeterSample::signed`](crate::MeterSample::signed)); this module is a pure helper any
//! embedding central system can call on them, at receipt or later (a transparency check):
//!
//! ```
//! use ocpp_central::signed::{verify, VerificationStatus};
//!
//! // No key known: the data is parsed, its readings are shown, the status says why it is
//! // not checked.
//! let data = r#"OCMF|{"FV":"1.0","RD":[{"TM":"2024-01-01T10:00:00,000+0000 S","TX":"B","RV":1.5,"RI":"1-b:1.8.0","RU":"kWh"}]}|{"SD":"3045"}"#;
//! let v = verify(data, None, None, None);
//! assert_eq!(v.status, VerificationStatus::NoKey);
//! assert_eq!(v.ocmf.unwrap().readings[0].value.to_string(), "1.5");
//! ```
//!
//! What is understood:
//! - OCMF, `OCMF|{payload}|{signature}`, plain or base64 (2.x `signedMeterData` is base64 by the
//!   specification; chargers also send it plain). The signature covers the payload's exact
//!   bytes between the two separators.
//! - Signature algorithms (`SA`): `ECDSA-secp256r1-SHA256` (the OCMF default),
//!   `ECDSA-secp384r1-SHA256` and `ECDSA-secp384r1-SHA384` (checked with ring); with the
//!   `ocmf-curves` feature (on by default) also `ECDSA-secp256k1-SHA256`,
//!   `ECDSA-secp192r1-SHA256` and `ECDSA-brainpool256r1-SHA256` (RustCrypto's `k256`, `p192`
//!   and `bp256`; a high `s`, which OCMF meters do not avoid, is accepted). `ECDSA-secp192k1-SHA256`
//!   (no maintained Rust implementation) and anything else is
//!   [`VerificationStatus::Unsupported`]. Signature encoding (`SE`) `hex` (default) or
//!   `base64`; mime type (`SM`) `application/x-der` (default).
//! - Public keys: DER `SubjectPublicKeyInfo` (named curve) or a bare uncompressed point (its
//!   curve is the signature's), as hex, base64 or PEM.
//! - Anything else (EDL, SML, vendor formats) is [`VerificationStatus::Unsupported`]: the caller
//!   keeps it verbatim.
//!
//! Bounds: data longer than [`MAX_SIGNED_DATA_LEN`] or keys longer than [`MAX_PUBLIC_KEY_LEN`]
//! are refused without being parsed; a payload keeps at most [`MAX_READINGS`] readings.

use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::str::FromStr;

/// The longest signed data looked at, in bytes (2.1's `signedMeterData` allows 32768
/// characters; base64 of that is longer). Longer data is [`VerificationStatus::Invalid`].
pub const MAX_SIGNED_DATA_LEN: usize = 65_536;
/// The longest public key looked at, in bytes (2.x `publicKey` allows 2500 characters).
pub const MAX_PUBLIC_KEY_LEN: usize = 4_096;
/// The most readings (`RD` entries) an OCMF payload may carry; more is malformed.
pub const MAX_READINGS: usize = 64;

/// The outcome of checking one signed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationStatus {
    /// The signature is valid for the payload and the key.
    Verified,
    /// The data is malformed, the key unusable, or the signature does not match.
    Invalid,
    /// The data is understood but no public key is known for it.
    NoKey,
    /// An encoding or algorithm this module does not check (kept verbatim by the caller).
    Unsupported,
}

impl VerificationStatus {
    /// The name stored and shown by the API (`Verified`, `Invalid`, `NoKey`, `Unsupported`).
    pub const fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Verified => "Verified",
            VerificationStatus::Invalid => "Invalid",
            VerificationStatus::NoKey => "NoKey",
            VerificationStatus::Unsupported => "Unsupported",
        }
    }
}

impl FromStr for VerificationStatus {
    type Err = OcmfError;

    fn from_str(s: &str) -> Result<Self, OcmfError> {
        Ok(match s {
            "Verified" => VerificationStatus::Verified,
            "Invalid" => VerificationStatus::Invalid,
            "NoKey" => VerificationStatus::NoKey,
            "Unsupported" => VerificationStatus::Unsupported,
            _ => return Err(OcmfError::UnknownStatus),
        })
    }
}

/// Why signed data or a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcmfError {
    /// The data is longer than [`MAX_SIGNED_DATA_LEN`].
    #[error("signed data longer than {MAX_SIGNED_DATA_LEN} bytes")]
    TooLong,
    /// Not `OCMF|...|...` (plain or base64).
    #[error("not OCMF data")]
    NotOcmf,
    /// The payload is not the OCMF JSON object.
    #[error("OCMF payload: {0}")]
    Payload(String),
    /// The signature section is not the OCMF JSON object.
    #[error("OCMF signature: {0}")]
    Signature(String),
    /// More than [`MAX_READINGS`] readings.
    #[error("more than {MAX_READINGS} readings")]
    TooManyReadings,
    /// The signature data (`SD`) is not valid hex / base64.
    #[error("signature data is not valid {0}")]
    SignatureEncoding(&'static str),
    /// The public key cannot be decoded or is not an EC key of the signature's curve.
    #[error("public key: {0}")]
    PublicKey(String),
    /// A stored status name that is none of the four.
    #[error("unknown verification status")]
    UnknownStatus,
}

/// One reading of an OCMF payload (`RD` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcmfReading {
    /// `TM`: the meter's time with its synchronisation flag, verbatim (e.g.
    /// `2024-01-01T10:00:00,000+0100 S`).
    pub time: Option<String>,
    /// `TX`: the transaction marker (`B` begin, `C` charging, `E` end, ...).
    pub kind: Option<String>,
    /// `RV`: the value, exact.
    pub value: Decimal,
    /// `RI`: the OBIS identifier (e.g. `1-b:1.8.0`).
    pub id: Option<String>,
    /// `RU`: the unit (`kWh`, `Wh`, ...).
    pub unit: Option<String>,
    /// `ST`: the meter status (`G` = good).
    pub status: Option<String>,
}

impl OcmfReading {
    /// The value in Wh, when the unit is `Wh` or `kWh`.
    pub fn energy_wh(&self) -> Option<Decimal> {
        match self.unit.as_deref() {
            Some("Wh") => Some(self.value),
            Some("kWh") => self.value.checked_mul(Decimal::from(1000)),
            _ => None,
        }
    }
}

/// Parsed OCMF data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ocmf {
    /// The payload JSON exactly as signed.
    pub payload: String,
    /// `GI`/`GS`: the gateway (charger) identification and serial, if given.
    pub gateway_serial: Option<String>,
    /// `MS`: the meter serial, if given.
    pub meter_serial: Option<String>,
    /// `PG`: the pagination (e.g. `T12`), if given.
    pub pagination: Option<String>,
    /// `ID`: the identification data (e.g. the RFID UID), if given.
    pub identification: Option<String>,
    /// The readings (`RD`), at most [`MAX_READINGS`].
    pub readings: Vec<OcmfReading>,
    /// `SA`, if given (the OCMF default is `ECDSA-secp256r1-SHA256`).
    pub algorithm: Option<String>,
    /// The signature bytes (`SD`, decoded per `SE`).
    pub signature: Vec<u8>,
    /// `SM`, if given (default `application/x-der`).
    pub mime: Option<String>,
}

impl Ocmf {
    /// The register reading of the payload: the last reading in Wh/kWh (the end value of a
    /// transaction's record).
    pub fn energy_wh(&self) -> Option<Decimal> {
        self.readings.iter().rev().find_map(OcmfReading::energy_wh)
    }
}

#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(rename = "GS", default)]
    gs: Option<String>,
    #[serde(rename = "MS", default)]
    ms: Option<String>,
    #[serde(rename = "PG", default)]
    pg: Option<String>,
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "RD", default, borrow)]
    rd: Vec<RawReading<'a>>,
}

#[derive(Deserialize)]
struct RawReading<'a> {
    #[serde(rename = "TM", default)]
    tm: Option<String>,
    #[serde(rename = "TX", default)]
    tx: Option<String>,
    #[serde(rename = "RV", borrow)]
    rv: &'a RawValue,
    #[serde(rename = "RI", default)]
    ri: Option<String>,
    #[serde(rename = "RU", default)]
    ru: Option<String>,
    #[serde(rename = "ST", default)]
    st: Option<String>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(rename = "SA", default)]
    sa: Option<String>,
    #[serde(rename = "SE", default)]
    se: Option<String>,
    #[serde(rename = "SM", default)]
    sm: Option<String>,
    #[serde(rename = "SD")]
    sd: String,
}

/// The OCMF text of signed data: plain `OCMF|...`, or base64 of it. `None` when it is
/// neither (another format).
pub fn ocmf_text(data: &str) -> Option<String> {
    let trimmed = data.trim();
    if trimmed.starts_with("OCMF|") {
        return Some(trimmed.to_owned());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.trim()
        .starts_with("OCMF|")
        .then(|| text.trim().to_owned())
}

/// Parses OCMF data (plain or base64).
pub fn parse_ocmf(data: &str) -> Result<Ocmf, OcmfError> {
    if data.len() > MAX_SIGNED_DATA_LEN {
        return Err(OcmfError::TooLong);
    }
    let text = ocmf_text(data).ok_or(OcmfError::NotOcmf)?;
    let rest = text.strip_prefix("OCMF|").ok_or(OcmfError::NotOcmf)?;
    // The payload is a JSON object that may itself contain '|' in strings: the signature is
    // after the last separator.
    let (payload, sig) = rest.rsplit_once('|').ok_or(OcmfError::NotOcmf)?;
    let raw: RawPayload<'_> =
        serde_json::from_str(payload).map_err(|e| OcmfError::Payload(e.to_string()))?;
    if raw.rd.len() > MAX_READINGS {
        return Err(OcmfError::TooManyReadings);
    }
    let mut readings = Vec::with_capacity(raw.rd.len());
    for r in raw.rd {
        let digits = r.rv.get().trim();
        let value = Decimal::from_str_exact(digits)
            .or_else(|_| Decimal::from_scientific(digits))
            .map_err(|_| OcmfError::Payload(format!("RV {digits:.40} is not a number")))?;
        readings.push(OcmfReading {
            time: r.tm,
            kind: r.tx,
            value,
            id: r.ri,
            unit: r.ru,
            status: r.st,
        });
    }
    let s: RawSignature =
        serde_json::from_str(sig).map_err(|e| OcmfError::Signature(e.to_string()))?;
    let signature = match s.se.as_deref().unwrap_or("hex") {
        "hex" => decode_hex(&s.sd).ok_or(OcmfError::SignatureEncoding("hex"))?,
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(s.sd.trim())
            .map_err(|_| OcmfError::SignatureEncoding("base64"))?,
        _ => return Err(OcmfError::SignatureEncoding("hex or base64 (SE)")),
    };
    Ok(Ocmf {
        payload: payload.to_owned(),
        gateway_serial: raw.gs,
        meter_serial: raw.ms,
        pagination: raw.pg,
        identification: raw.id,
        readings,
        algorithm: s.sa,
        signature,
        mime: s.sm,
    })
}

/// The curve of a public key or a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    Secp256k1,
    P192,
    Brainpool256,
}

impl Curve {
    /// The length of an uncompressed point.
    fn point_len(self) -> usize {
        match self {
            Curve::P192 => 49,
            Curve::P384 => 97,
            Curve::P256 | Curve::Secp256k1 | Curve::Brainpool256 => 65,
        }
    }

    /// The curve and whether the digest is SHA-384, of an OCMF signature algorithm this
    /// build checks.
    fn of_algorithm(algorithm: &str) -> Option<(Curve, bool)> {
        Some(match algorithm {
            "ECDSA-secp256r1-SHA256" => (Curve::P256, false),
            "ECDSA-secp384r1-SHA256" => (Curve::P384, false),
            "ECDSA-secp384r1-SHA384" => (Curve::P384, true),
            #[cfg(feature = "ocmf-curves")]
            "ECDSA-secp256k1-SHA256" => (Curve::Secp256k1, false),
            #[cfg(feature = "ocmf-curves")]
            "ECDSA-secp192r1-SHA256" => (Curve::P192, false),
            #[cfg(feature = "ocmf-curves")]
            "ECDSA-brainpool256r1-SHA256" => (Curve::Brainpool256, false),
            _ => return None,
        })
    }
}

/// Whether `signature` (DER) signs `message` for the uncompressed `point` on `curve`.
fn check_signature(
    curve: Curve,
    sha384: bool,
    point: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let ring_alg: &'static dyn VerificationAlgorithm = match (curve, sha384) {
        (Curve::P256, _) => &signature::ECDSA_P256_SHA256_ASN1,
        (Curve::P384, false) => &signature::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, true) => &signature::ECDSA_P384_SHA384_ASN1,
        #[cfg(feature = "ocmf-curves")]
        (other, _) => return other_curves::check(other, point, message, signature),
        #[cfg(not(feature = "ocmf-curves"))]
        _ => return false,
    };
    UnparsedPublicKey::new(ring_alg, point)
        .verify(message, signature)
        .is_ok()
}

/// The curves ring does not offer (RustCrypto): ECDSA over the message's SHA-256 digest.
#[cfg(feature = "ocmf-curves")]
mod other_curves {
    use super::Curve;

    /// Curves of the `ecdsa` 0.17 generation (`k256`, `bp256`). A high `s` is normalized
    /// first: secp256k1's verifier refuses it (a Bitcoin rule), meters do not avoid it.
    macro_rules! modern {
        ($curve:ty, $point:expr, $digest:expr, $signature:expr) => {{
            use ecdsa::signature::hazmat::PrehashVerifier;
            match (
                ecdsa::VerifyingKey::<$curve>::from_sec1_bytes($point),
                ecdsa::Signature::<$curve>::from_der($signature),
            ) {
                (Ok(key), Ok(sig)) => key.verify_prehash($digest, &sig.normalize_s()).is_ok(),
                _ => false,
            }
        }};
    }

    pub(super) fn check(curve: Curve, point: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let digest = digest.as_ref();
        match curve {
            Curve::Secp256k1 => modern!(k256::Secp256k1, point, digest, signature),
            Curve::Brainpool256 => modern!(bp256::BrainpoolP256r1, point, digest, signature),
            Curve::P192 => {
                use p192::ecdsa::signature::hazmat::PrehashVerifier;
                let (Ok(key), Ok(sig)) = (
                    p192::ecdsa::VerifyingKey::from_sec1_bytes(point),
                    p192::ecdsa::Signature::from_der(signature),
                ) else {
                    return false;
                };
                key.verify_prehash(digest, &sig).is_ok()
            }
            Curve::P256 | Curve::P384 => false,
        }
    }
}

// DER SubjectPublicKeyInfo headers of the named-curve EC keys, up to the BIT STRING's content
// (the uncompressed point follows).
const SPKI_P256: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_P384: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
// secp256k1 (1.3.132.0.10), secp192r1 (1.2.840.10045.3.1.1), brainpoolP256r1
// (1.3.36.3.3.2.8.1.1.7).
const SPKI_K256: &[u8] = &[
    0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00,
];
const SPKI_P192: &[u8] = &[
    0x30, 0x49, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01, 0x03, 0x32, 0x00,
];
const SPKI_BP256: &[u8] = &[
    0x30, 0x5a, 0x30, 0x14, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x09, 0x2b,
    0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKIS: &[(Curve, &[u8])] = &[
    (Curve::P256, SPKI_P256),
    (Curve::P384, SPKI_P384),
    (Curve::Secp256k1, SPKI_K256),
    (Curve::P192, SPKI_P192),
    (Curve::Brainpool256, SPKI_BP256),
];

/// Decodes a public key (hex, base64 or PEM of a DER `SubjectPublicKeyInfo` or of a bare
/// uncompressed point) to its curve (`None` for a bare point: its length fits several) and
/// uncompressed point.
fn decode_key(key: &str) -> Result<(Option<Curve>, Vec<u8>), OcmfError> {
    if key.len() > MAX_PUBLIC_KEY_LEN {
        return Err(OcmfError::PublicKey(format!(
            "longer than {MAX_PUBLIC_KEY_LEN} bytes"
        )));
    }
    let key = key.trim();
    let der = if key.starts_with("-----BEGIN") {
        let body: String = key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(|l| l.trim().chars())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| OcmfError::PublicKey("PEM body is not base64".to_owned()))?
    } else if let Some(bytes) = decode_hex(key) {
        bytes
    } else {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|_| OcmfError::PublicKey("neither hex, base64 nor PEM".to_owned()))?;
        // base64 of the hex text (seen in the field): decode once more.
        match std::str::from_utf8(&bytes).ok().and_then(decode_hex) {
            Some(inner) => inner,
            None => bytes,
        }
    };
    let point = |b: &[u8]| b.first() == Some(&0x04);
    for (curve, prefix) in SPKIS {
        if let Some(p) = der.strip_prefix(*prefix) {
            if p.len() == curve.point_len() && point(p) {
                return Ok((Some(*curve), p.to_vec()));
            }
        }
    }
    match der.len() {
        49 | 65 | 97 if point(&der) => Ok((None, der)),
        _ => Err(OcmfError::PublicKey(
            "not an EC SubjectPublicKeyInfo (P-256, P-384, secp256k1, P-192, brainpoolP256r1) \
             or uncompressed point"
                .to_owned(),
        )),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The status.
    pub status: VerificationStatus,
    /// The parsed OCMF data, when it parsed (also for `NoKey`, `Invalid` signatures and
    /// unsupported algorithms): its readings show the signed energy.
    pub ocmf: Option<Ocmf>,
    /// Why it is not `Verified`, for logs and the API.
    pub detail: Option<String>,
}

impl Verification {
    fn status(status: VerificationStatus, ocmf: Option<Ocmf>, detail: impl Into<String>) -> Self {
        Verification {
            status,
            ocmf,
            detail: Some(detail.into()),
        }
    }
}

/// Checks one signed value: `data` as sent (1.6 `SignedData` value or 2.x `signedMeterData`),
/// `encoding` the 2.x `encodingMethod` (`None` on 1.6: the content decides), `signing_method`
/// the 2.x `signingMethod` (used when the OCMF signature names no `SA`), `public_key` the key
/// to check against (the message's own, the charger's configured one, or one registered by
/// the operator), in any form [`MAX_PUBLIC_KEY_LEN`] allows.
///
/// Never panics; every input, however large or malformed, gives one of the four statuses.
pub fn verify(
    data: &str,
    encoding: Option<&str>,
    signing_method: Option<&str>,
    public_key: Option<&str>,
) -> Verification {
    use VerificationStatus::*;
    if data.len() > MAX_SIGNED_DATA_LEN {
        return Verification::status(Invalid, None, OcmfError::TooLong.to_string());
    }
    if let Some(enc) = encoding {
        if !enc.trim().eq_ignore_ascii_case("OCMF") {
            return Verification::status(Unsupported, None, format!("encoding {enc:.50}"));
        }
    } else if ocmf_text(data).is_none() {
        return Verification::status(Unsupported, None, "not OCMF data");
    }
    let ocmf = match parse_ocmf(data) {
        Ok(o) => o,
        Err(e) => return Verification::status(Invalid, None, e.to_string()),
    };
    let algorithm = ocmf
        .algorithm
        .clone()
        .or_else(|| {
            signing_method
                .filter(|m| m.starts_with("ECDSA"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "ECDSA-secp256r1-SHA256".to_owned());
    let Some((curve, sha384)) = Curve::of_algorithm(&algorithm) else {
        let detail = format!("signature algorithm {algorithm:.50}");
        return Verification::status(Unsupported, Some(ocmf), detail);
    };
    if let Some(mime) = ocmf.mime.as_deref() {
        if mime != "application/x-der" {
            let detail = format!("signature mime type {mime:.50}");
            return Verification::status(Unsupported, Some(ocmf), detail);
        }
    }
    let Some(key) = public_key.filter(|k| !k.trim().is_empty()) else {
        return Verification::status(NoKey, Some(ocmf), "no public key known");
    };
    let (key_curve, point) = match decode_key(key) {
        Ok(k) => k,
        Err(e) => return Verification::status(Invalid, Some(ocmf), e.to_string()),
    };
    if key_curve.is_some_and(|k| k != curve) || point.len() != curve.point_len() {
        return Verification::status(
            Invalid,
            Some(ocmf),
            format!("public key is not on the curve of {algorithm}"),
        );
    }
    if check_signature(
        curve,
        sha384,
        &point,
        ocmf.payload.as_bytes(),
        &ocmf.signature,
    ) {
        Verification {
            status: Verified,
            ocmf: Some(ocmf),
            detail: None,
        }
    } else {
        Verification::status(Invalid, Some(ocmf), "signature does not match")
    }
}

/// Whether `key` is a usable public key (an EC key of the curves above, hex/base64/PEM, SPKI or
/// point): for APIs that register a meter's key.
pub fn check_public_key(key: &str) -> Result<(), OcmfError> {
    decode_key(key).map(|_| ())
}
