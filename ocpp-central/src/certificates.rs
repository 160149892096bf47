//! Certificate management from the central system (the 1.6 security whitepaper, 2.x blocks
//! A and M), version-neutral: [`ChargerHandle`] methods that build each version's message
//! and answer in one shape ([`Answer`], [`InstalledCertificates`]).
//!
//! | command | 1.6 | 2.0.1 / 2.1 |
//! |---|---|---|
//! | [`install_certificate`](ChargerHandle::install_certificate) | InstallCertificate | InstallCertificate |
//! | [`get_installed_certificate_ids`](ChargerHandle::get_installed_certificate_ids) | GetInstalledCertificateIds (one type per call) | GetInstalledCertificateIds |
//! | [`delete_certificate`](ChargerHandle::delete_certificate) | DeleteCertificate | DeleteCertificate |
//! | [`certificate_signed`](ChargerHandle::certificate_signed) | CertificateSigned | CertificateSigned (`ChargingStationCertificate`) |
//! | [`trigger_certificate_signing`](ChargerHandle::trigger_certificate_signing) | ExtendedTriggerMessage `SignChargePointCertificate` | TriggerMessage `SignChargingStationCertificate` |
//!
//! The charger's `SignCertificate` arrives at the application's handler
//! (`HandleV16::sign_certificate`, `HandleV201::sign_certificate`,
//! `HandleV21::sign_certificate`; default CALLERROR `NotSupported`): [`SignRequest::of`]
//! reads any version's request, [`sign_response`] builds the answer, and the application
//! signs the CSR and sends the chain with [`ChargerHandle::certificate_signed`] from its
//! `after` hook or another task (never from inside the handler: the charger waits for the
//! answer first).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::commands::Answer;
use crate::handler::ChargerHandle;
use crate::message::{AnyRequest, AnyResponse};
use crate::session::CallError;
use ocpp_types::Version;

/// A kind of certificate on the charger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    /// The central system's root: 1.6 `CentralSystemRootCertificate`, 2.x
    /// `CSMSRootCertificate`.
    CsmsRoot,
    /// `ManufacturerRootCertificate`.
    ManufacturerRoot,
    /// (2.x) `V2GRootCertificate`.
    V2gRoot,
    /// (2.x) `MORootCertificate`.
    MoRoot,
    /// (2.x, listing only) `V2GCertificateChain`.
    V2gCertificateChain,
}

impl CertificateKind {
    /// The wire name for `version`; `None` when the version has no such kind.
    pub fn wire_name(self, version: Version) -> Option<&'static str> {
        let v16 = version == Version::V16;
        Some(match self {
            CertificateKind::CsmsRoot if v16 => "CentralSystemRootCertificate",
            CertificateKind::CsmsRoot => "CSMSRootCertificate",
            CertificateKind::ManufacturerRoot => "ManufacturerRootCertificate",
            _ if v16 => return None,
            CertificateKind::V2gRoot => "V2GRootCertificate",
            CertificateKind::MoRoot => "MORootCertificate",
            CertificateKind::V2gCertificateChain => "V2GCertificateChain",
        })
    }

    /// From a wire name of any version.
    pub fn parse(name: &str) -> Option<CertificateKind> {
        Some(match name {
            "CentralSystemRootCertificate" | "CSMSRootCertificate" => CertificateKind::CsmsRoot,
            "ManufacturerRootCertificate" => CertificateKind::ManufacturerRoot,
            "V2GRootCertificate" => CertificateKind::V2gRoot,
            "MORootCertificate" => CertificateKind::MoRoot,
            "V2GCertificateChain" => CertificateKind::V2gCertificateChain,
            _ => return None,
        })
    }

    /// The 2.x name (the one model's name for every version).
    pub fn as_str(self) -> &'static str {
        self.wire_name(Version::V201)
            .unwrap_or("CSMSRootCertificate")
    }
}

/// The specifications' `CertificateHashDataType` (the same fields in every version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateHashData {
    /// `SHA256`, `SHA384` or `SHA512`.
    #[serde(rename = "hashAlgorithm")]
    pub hash_algorithm: String,
    /// Hash of the issuer's distinguished name, hexadecimal.
    #[serde(rename = "issuerNameHash")]
    pub issuer_name_hash: String,
    /// Hash of the issuer's public key, hexadecimal.
    #[serde(rename = "issuerKeyHash")]
    pub issuer_key_hash: String,
    /// The serial number, hexadecimal.
    #[serde(rename = "serialNumber")]
    pub serial_number: String,
}

/// One certificate a charger reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledCertificate {
    /// Its kind (1.6: the kind asked for).
    pub kind: CertificateKind,
    /// Its hash data.
    pub hash: CertificateHashData,
}

/// The answer to [`ChargerHandle::get_installed_certificate_ids`].
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledCertificates {
    /// `Accepted` or `NotFound` (1.6: the last type's answer when several were asked).
    pub status: String,
    /// The certificates, of every kind asked for.
    pub certificates: Vec<InstalledCertificate>,
    /// The typed responses, in the charger's version (1.6: one per kind asked for).
    pub responses: Vec<AnyResponse>,
}

/// A charger's SignCertificate, version-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The PEM-encoded PKCS#10 certificate signing request.
    pub csr: String,
    /// (2.x) `certificateType` as sent: `ChargingStationCertificate`, `V2GCertificate`, ...;
    /// `None` in 1.6 (always the charge point certificate) and when 2.x leaves it out.
    pub kind: Option<String>,
}

impl SignRequest {
    /// The SignCertificate in `request`, of any version; `None` for another action.
    pub fn of(request: &AnyRequest) -> Option<SignRequest> {
        match request {
            #[cfg(feature = "v16")]
            AnyRequest::V16(ocpp_types::v16::AnyRequest::SignCertificate(q)) => Some(SignRequest {
                csr: q.csr.as_str().to_owned(),
                kind: None,
            }),
            #[cfg(feature = "v201")]
            AnyRequest::V201(ocpp_types::v201::AnyRequest::SignCertificate(q)) => {
                Some(SignRequest {
                    csr: q.csr.as_str().to_owned(),
                    kind: q.certificate_type.map(|t| t.as_str().to_owned()),
                })
            }
            #[cfg(feature = "v21")]
            AnyRequest::V21(ocpp_types::v21::AnyRequest::SignCertificate(q)) => Some(SignRequest {
                csr: q.csr.as_str().to_owned(),
                kind: q.certificate_type.map(|t| t.as_str().to_owned()),
            }),
            _ => None,
        }
    }
}

/// The SignCertificate answer `Accepted` or `Rejected` as the version's typed response
/// `R` (`v16::SignCertificateResponse`, ...).
pub fn sign_response<R: DeserializeOwned>(accepted: bool) -> Result<R, CallError> {
    let status = if accepted { "Accepted" } else { "Rejected" };
    serde_json::from_value(json!({ "status": status }))
        .map_err(|e| CallError::Refused(format!("no SignCertificate answer {status}: {e}")))
}

/// Sends the request of type `Q` built from `payload`; the answer as JSON and as the typed
/// response.
async fn call_json<Q>(h: &ChargerHandle, payload: Value) -> Result<(Value, AnyResponse), CallError>
where
    Q: ocpp_types::Request + DeserializeOwned,
    Q::Response: Serialize,
{
    let q: Q = serde_json::from_value(payload)
        .map_err(|e| CallError::Refused(format!("the charger's version cannot carry it: {e}")))?;
    let r = h.call(q).await?;
    let json = serde_json::to_value(&r).unwrap_or(Value::Null);
    let any = AnyResponse::try_from(ocpp_types::Response::into_typed(r))
        .map_err(|e| CallError::Refused(e.to_string()))?;
    Ok((json, any))
}

fn status(v: &Value) -> String {
    v["status"].as_str().unwrap_or_default().to_owned()
}

fn unsupported(version: Version) -> CallError {
    CallError::Refused(format!("OCPP {version} is not enabled in this build"))
}

macro_rules! per_version {
    ($h:expr, $payload:expr, $Req:ident) => {
        match $h.version() {
            #[cfg(feature = "v16")]
            Version::V16 => call_json::<ocpp_types::v16::$Req>($h, $payload).await,
            #[cfg(feature = "v201")]
            Version::V201 => call_json::<ocpp_types::v201::$Req>($h, $payload).await,
            #[cfg(feature = "v21")]
            Version::V21 => call_json::<ocpp_types::v21::$Req>($h, $payload).await,
            #[allow(unreachable_patterns)]
            other => Err(unsupported(other)),
        }
    };
}

fn kind_name(version: Version, kind: CertificateKind) -> Result<&'static str, CallError> {
    kind.wire_name(version)
        .ok_or_else(|| CallError::Refused(format!("OCPP {version} has no {}", kind.as_str())))
}

impl ChargerHandle {
    /// Installs a CA certificate (PEM, at most 5500 characters) of `kind` on the charger.
    /// The answer's status: `Accepted`, `Rejected` (invalid, expired) or `Failed`.
    pub async fn install_certificate(
        &self,
        kind: CertificateKind,
        pem: &str,
    ) -> Result<Answer, CallError> {
        let payload = json!({
            "certificateType": kind_name(self.version(), kind)?,
            "certificate": pem,
        });
        let (v, response) = per_version!(self, payload, InstallCertificateRequest)?;
        Ok(Answer {
            status: status(&v),
            response,
        })
    }

    /// Lists the charger's certificates of `kinds` (all kinds when empty; 1.6: one call per
    /// kind, both root kinds when empty).
    pub async fn get_installed_certificate_ids(
        &self,
        kinds: &[CertificateKind],
    ) -> Result<InstalledCertificates, CallError> {
        let version = self.version();
        let mut out = InstalledCertificates {
            status: "NotFound".into(),
            certificates: Vec::new(),
            responses: Vec::new(),
        };
        if version == Version::V16 {
            let kinds = if kinds.is_empty() {
                vec![CertificateKind::CsmsRoot, CertificateKind::ManufacturerRoot]
            } else {
                kinds.to_vec()
            };
            for kind in kinds {
                let payload = json!({ "certificateType": kind_name(version, kind)? });
                let (v, response) = per_version!(self, payload, GetInstalledCertificateIdsRequest)?;
                let s = status(&v);
                if s == "Accepted" || out.status != "Accepted" {
                    out.status = s;
                }
                for h in v["certificateHashData"].as_array().into_iter().flatten() {
                    if let Ok(hash) = serde_json::from_value(h.clone()) {
                        out.certificates.push(InstalledCertificate { kind, hash });
                    }
                }
                out.responses.push(response);
            }
            return Ok(out);
        }
        let mut payload = json!({});
        if !kinds.is_empty() {
            payload["certificateType"] = kinds
                .iter()
                .map(|k| kind_name(version, *k))
                .collect::<Result<Vec<_>, _>>()?
                .into();
        }
        let (v, response) = per_version!(self, payload, GetInstalledCertificateIdsRequest)?;
        out.status = status(&v);
        for c in v["certificateHashDataChain"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let kind = c["certificateType"]
                .as_str()
                .and_then(CertificateKind::parse);
            let hash = serde_json::from_value(c["certificateHashData"].clone());
            if let (Some(kind), Ok(hash)) = (kind, hash) {
                out.certificates.push(InstalledCertificate { kind, hash });
            }
        }
        out.responses.push(response);
        Ok(out)
    }

    /// Deletes the certificate with `hash` from the charger: `Accepted`, `Failed` or
    /// `NotFound`.
    pub async fn delete_certificate(
        &self,
        hash: &CertificateHashData,
    ) -> Result<Answer, CallError> {
        let payload = json!({ "certificateHashData": hash });
        let (v, response) = per_version!(self, payload, DeleteCertificateRequest)?;
        Ok(Answer {
            status: status(&v),
            response,
        })
    }

    /// Sends the charger its signed certificate chain (PEM, end-entity first, at most
    /// 10000 characters): `Accepted` or `Rejected`. 2.x: `certificateType`
    /// `ChargingStationCertificate`.
    pub async fn certificate_signed(&self, chain_pem: &str) -> Result<Answer, CallError> {
        let mut payload = json!({ "certificateChain": chain_pem });
        if self.version() != Version::V16 {
            payload["certificateType"] = json!("ChargingStationCertificate");
        }
        let (v, response) = per_version!(self, payload, CertificateSignedRequest)?;
        Ok(Answer {
            status: status(&v),
            response,
        })
    }

    /// Asks the charger to renew its certificate (send a new CSR in SignCertificate): 1.6
    /// ExtendedTriggerMessage `SignChargePointCertificate`, 2.x TriggerMessage
    /// `SignChargingStationCertificate`. The answer's status: `Accepted`, `Rejected` or
    /// `NotImplemented`.
    pub async fn trigger_certificate_signing(&self) -> Result<Answer, CallError> {
        let (v, response) = match self.version() {
            #[cfg(feature = "v16")]
            Version::V16 => {
                call_json::<ocpp_types::v16::ExtendedTriggerMessageRequest>(
                    self,
                    json!({ "requestedMessage": "SignChargePointCertificate" }),
                )
                .await
            }
            #[cfg(feature = "v201")]
            Version::V201 => {
                call_json::<ocpp_types::v201::TriggerMessageRequest>(
                    self,
                    json!({ "requestedMessage": "SignChargingStationCertificate" }),
                )
                .await
            }
            #[cfg(feature = "v21")]
            Version::V21 => {
                call_json::<ocpp_types::v21::TriggerMessageRequest>(
                    self,
                    json!({ "requestedMessage": "SignChargingStationCertificate" }),
                )
                .await
            }
            #[allow(unreachable_patterns)]
            other => Err(unsupported(other)),
        }?;
        Ok(Answer {
            status: status(&v),
            response,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_spelled_per_version() {
        assert_eq!(
            CertificateKind::CsmsRoot.wire_name(Version::V16),
            Some("CentralSystemRootCertificate")
        );
        assert_eq!(
            CertificateKind::CsmsRoot.wire_name(Version::V21),
            Some("CSMSRootCertificate")
        );
        assert_eq!(CertificateKind::V2gRoot.wire_name(Version::V16), None);
        assert_eq!(
            CertificateKind::parse("CentralSystemRootCertificate"),
            Some(CertificateKind::CsmsRoot)
        );
        let r: ocpp_types::v16::SignCertificateResponse = sign_response(false).unwrap();
        assert_eq!(r.status.as_str(), "Rejected");
    }
}
