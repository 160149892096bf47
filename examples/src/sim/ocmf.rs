//! The simulator's signing meter (`charger-sim --sign-readings`): each reading is signed as
//! OCMF with an ECDSA P-256 key (`ECDSA-secp256r1-SHA256`, signature hex DER), the way an
//! Eichrecht meter signs. One key serves the whole fleet (a simulator has no meter per
//! charger); its public key is published as hex of the DER SubjectPublicKeyInfo
//! ([`MeterKey::public_key_hex`]) for the central system to register, and goes with the 2.x
//! values as `PublicKeyWithSignedMeterValue` asks.

use std::fmt;

use ocpp_charger::{MeterReading, SignRequest, SignedReading};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

/// The DER SubjectPublicKeyInfo header of a P-256 key, before its uncompressed point.
const SPKI_P256: &str = "3059301306072A8648CE3D020106082A8648CE3D03010703420004";

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum MeterKeyError {
    /// ring refused the key material.
    #[error("P-256 key: {0}")]
    Key(String),
}

/// A P-256 meter key.
pub struct MeterKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    public_hex: String,
}

impl fmt::Debug for MeterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeterKey")
            .field("public_key", &self.public_hex)
            .finish_non_exhaustive()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

impl MeterKey {
    /// A fresh random key.
    pub fn generate() -> Result<MeterKey, MeterKeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|e| MeterKeyError::Key(e.to_string()))?;
        MeterKey::from_pkcs8(pkcs8.as_ref())
    }

    /// A key from its PKCS#8 DER document.
    pub fn from_pkcs8(der: &[u8]) -> Result<MeterKey, MeterKeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
            .map_err(|e| MeterKeyError::Key(e.to_string()))?;
        // The point is 0x04 || X || Y; the header above ends with its 0x04.
        let point = pair.public_key().as_ref();
        let public_hex = format!("{SPKI_P256}{}", hex(point.get(1..).unwrap_or_default()));
        Ok(MeterKey {
            pair,
            rng,
            public_hex,
        })
    }

    /// The public key: hex of the DER SubjectPublicKeyInfo (the OCMF convention).
    pub fn public_key_hex(&self) -> &str {
        &self.public_hex
    }

    /// The signed OCMF form of `reading` of charger `identity`'s meter (serial
    /// `<identity>-M<evse>`), or `None` if signing failed.
    pub fn sign(
        &self,
        identity: &str,
        request: &SignRequest<'_>,
        reading: &MeterReading,
    ) -> Option<SignedReading> {
        let tx = match request.context {
            "Transaction.Begin" => "B",
            "Transaction.End" => "E",
            _ if request.transaction_id.is_some() => "T",
            _ => "C",
        };
        let kwh = (reading.energy_wh / rust_decimal::Decimal::from(1000)).round_dp(3);
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let token = request.id_token.unwrap_or("");
        let tx_id = request.transaction_id.unwrap_or("");
        // Written by hand so the reading (RV) is the exact decimal, not a float.
        let text = format!(
            "{{\"FV\":\"1.0\",\"GI\":\"ocpp-rs charger-sim\",\"GS\":{},\"GV\":{},\"PG\":{},\"MV\":\"ocpp-rs\",\"MM\":\"SimMeter\",\"MS\":{},\"IS\":{},\"IT\":{},\"ID\":{},\"CT\":{},\"CI\":{},\"RD\":[{{\"TM\":{},\"TX\":\"{tx}\",\"RV\":{kwh},\"RI\":\"1-b:1.8.0\",\"RU\":\"kWh\",\"RT\":\"AC\",\"ST\":\"G\"}}]}}",
            q(identity),
            q(env!("CARGO_PKG_VERSION")),
            q(&format!("T{}", request.timestamp.timestamp())),
            q(&format!("{identity}-M{}", request.evse)),
            request.id_token.is_some(),
            q(if token.is_empty() { "NONE" } else { "ISO14443" }),
            q(token),
            q(if tx_id.is_empty() { "" } else { "EVSEID" }),
            q(tx_id),
            q(&request.timestamp.format("%Y-%m-%dT%H:%M:%S,%3f%z S").to_string()),
        );
        let sig = self.pair.sign(&self.rng, text.as_bytes()).ok()?;
        Some(SignedReading {
            data: format!(
                "OCMF|{text}|{{\"SA\":\"ECDSA-secp256r1-SHA256\",\"SD\":\"{}\"}}",
                hex(sig.as_ref())
            ),
            encoding: "OCMF".to_owned(),
            signing_method: Some("ECDSA-secp256r1-SHA256".to_owned()),
            public_key: Some(self.public_hex.clone()),
        })
    }
}
