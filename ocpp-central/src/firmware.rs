//! Firmware updates and log uploads from the central system: version-neutral commands on
//! [`ChargerHandle`], and what the charger's status notifications say.
//!
//! | command | 1.6 | 2.0.1 / 2.1 |
//! |---|---|---|
//! | [`update_firmware`](ChargerHandle::update_firmware) | UpdateFirmware; with a signature: the security whitepaper's SignedUpdateFirmware | UpdateFirmware |
//! | [`get_log`](ChargerHandle::get_log) | the whitepaper's GetLog | GetLog |
//! | [`get_diagnostics`](ChargerHandle::get_diagnostics) | GetDiagnostics | refused: use `get_log` |
//!
//! The charger's side: [`Event::TransferStatus`](crate::Event::TransferStatus) for every
//! FirmwareStatusNotification, SignedFirmwareStatusNotification, DiagnosticsStatusNotification
//! and LogStatusNotification (all answered by the default handlers), read with
//! [`transfer_status`]. Values a version cannot carry (a location longer than its schema
//! allows, an install time or a security log on 1.6 without a signature / on GetDiagnostics)
//! are refused before anything is sent ([`CallError::Refused`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::commands::{by_version, Answer};
use crate::handler::ChargerHandle;
use crate::message::AnyRequest;
use crate::session::CallError;

/// The signature of a signed update (1.6 SignedUpdateFirmware, 2.x `firmware.signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareSignature {
    /// The certificate (PEM) whose key made the signature; on 2.x it may be left out when
    /// the charger has the signing certificate already.
    pub signing_certificate: Option<String>,
    /// The signature of the file, base64.
    pub signature: String,
}

/// A firmware update to start ([`ChargerHandle::update_firmware`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareUpdate {
    /// The request id (signed 1.6 and 2.x; the status notifications carry it).
    pub request_id: i32,
    /// Where the charger downloads the file (a URL).
    pub location: String,
    /// Download not before.
    pub retrieve: DateTime<Utc>,
    /// (Signed 1.6, 2.x) Install not before.
    pub install: Option<DateTime<Utc>>,
    /// How many times to retry a failed download.
    pub retries: Option<i32>,
    /// Seconds between retries.
    pub retry_interval: Option<i32>,
    /// The signature: on 1.6 it makes the update a SignedUpdateFirmware.
    pub signature: Option<FirmwareSignature>,
}

/// Which log to upload ([`ChargerHandle::get_log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogType {
    /// `DiagnosticsLog` (and 1.6 GetDiagnostics).
    Diagnostics,
    /// `SecurityLog`.
    Security,
}

/// A log upload to ask for ([`ChargerHandle::get_log`], [`ChargerHandle::get_diagnostics`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    /// The request id (GetLog; the status notifications carry it).
    pub request_id: i32,
    /// Which log.
    pub log_type: LogType,
    /// Where the charger uploads the file (a URL).
    pub location: String,
    /// The oldest entries wanted.
    pub oldest: Option<DateTime<Utc>>,
    /// The latest entries wanted.
    pub latest: Option<DateTime<Utc>>,
    /// How many times to retry a failed upload.
    pub retries: Option<i32>,
    /// Seconds between retries.
    pub retry_interval: Option<i32>,
}

/// The charger's answer to a log request.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAnswer {
    /// `Accepted`, `Rejected` or `AcceptedCanceled` (GetDiagnostics: `Accepted`).
    pub answer: Answer,
    /// The name of the file it will upload, if it said.
    pub filename: Option<String>,
}

/// Which kind of transfer a status notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// FirmwareStatusNotification / SignedFirmwareStatusNotification.
    Firmware,
    /// 1.6 DiagnosticsStatusNotification.
    Diagnostics,
    /// LogStatusNotification.
    Log,
}

/// What a firmware, diagnostics or log status notification said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferStatus {
    /// What it is about.
    pub kind: TransferKind,
    /// The status word as sent (`Downloading`, `Installed`, `Uploaded`, `UploadFailure`, ...).
    pub status: String,
    /// The request id, when the message carries one.
    pub request_id: Option<i32>,
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The typed request from its JSON form; what the schema's types refuse is refused here.
fn typed<Q: serde::de::DeserializeOwned>(action: &str, v: Value) -> Result<Q, CallError> {
    serde_json::from_value(v).map_err(|e| CallError::Refused(format!("{action}: {e}")))
}

fn retry_fields(q: &mut Value, retries: Option<i32>, interval: Option<i32>) {
    if let Some(r) = retries {
        q["retries"] = json!(r);
    }
    if let Some(i) = interval {
        q["retryInterval"] = json!(i);
    }
}

/// The 2.x / signed 1.6 request.
fn signed_json(u: &FirmwareUpdate, signature: Option<&FirmwareSignature>) -> Value {
    let mut f = json!({ "location": u.location, "retrieveDateTime": time(&u.retrieve) });
    if let Some(t) = &u.install {
        f["installDateTime"] = json!(time(t));
    }
    if let Some(s) = signature {
        f["signature"] = json!(s.signature);
        if let Some(c) = &s.signing_certificate {
            f["signingCertificate"] = json!(c);
        }
    }
    let mut q = json!({ "requestId": u.request_id, "firmware": f });
    retry_fields(&mut q, u.retries, u.retry_interval);
    q
}

fn log_json(r: &LogRequest) -> Value {
    let mut log = json!({ "remoteLocation": r.location });
    if let Some(t) = &r.oldest {
        log["oldestTimestamp"] = json!(time(t));
    }
    if let Some(t) = &r.latest {
        log["latestTimestamp"] = json!(time(t));
    }
    let kind = match r.log_type {
        LogType::Diagnostics => "DiagnosticsLog",
        LogType::Security => "SecurityLog",
    };
    let mut q = json!({ "logType": kind, "requestId": r.request_id, "log": log });
    retry_fields(&mut q, r.retries, r.retry_interval);
    q
}

macro_rules! v2_commands {
    ($m:ident, $feature:literal) => {
        #[cfg(feature = $feature)]
        mod $m {
            use super::*;
            use crate::commands::status_call;
            use ocpp_types::$m as t;

            pub(super) async fn update_firmware(
                h: &ChargerHandle,
                u: &FirmwareUpdate,
            ) -> Result<Answer, CallError> {
                let q: t::UpdateFirmwareRequest =
                    typed("UpdateFirmware", signed_json(u, u.signature.as_ref()))?;
                status_call!(h, q)
            }

            pub(super) async fn get_log(
                h: &ChargerHandle,
                r: &LogRequest,
            ) -> Result<LogAnswer, CallError> {
                let q: t::GetLogRequest = typed("GetLog", log_json(r))?;
                let r = h.call(q).await?;
                let filename = r.filename.as_ref().map(|f| f.as_str().to_owned());
                Ok(LogAnswer {
                    answer: Answer {
                        status: r.status.as_str().to_owned(),
                        response: crate::message::AnyResponse::from(t::AnyResponse::from(r)),
                    },
                    filename,
                })
            }
        }
    };
}

v2_commands!(v201, "v201");
v2_commands!(v21, "v21");

#[cfg(feature = "v16")]
mod v16 {
    use super::*;
    use crate::commands::status_call;
    use ocpp_types::v16 as t;

    pub(super) async fn update_firmware(
        h: &ChargerHandle,
        u: &FirmwareUpdate,
    ) -> Result<Answer, CallError> {
        if let Some(s) = &u.signature {
            if s.signing_certificate.is_none() {
                return Err(CallError::Refused(
                    "OCPP 1.6 SignedUpdateFirmware needs the signing certificate".into(),
                ));
            }
            let q: t::SignedUpdateFirmwareRequest =
                typed("SignedUpdateFirmware", signed_json(u, Some(s)))?;
            return status_call!(h, q);
        }
        if u.install.is_some() {
            return Err(CallError::Refused(
                "OCPP 1.6 UpdateFirmware has no install time (sign the update)".into(),
            ));
        }
        let mut q = json!({ "location": u.location, "retrieveDate": time(&u.retrieve) });
        retry_fields(&mut q, u.retries, u.retry_interval);
        let q: t::UpdateFirmwareRequest = typed("UpdateFirmware", q)?;
        let r = h.call(q).await?;
        // Its answer has no status: a CALLRESULT is the acceptance.
        Ok(Answer {
            status: "Accepted".to_owned(),
            response: crate::message::AnyResponse::from(t::AnyResponse::from(r)),
        })
    }

    pub(super) async fn get_log(h: &ChargerHandle, r: &LogRequest) -> Result<LogAnswer, CallError> {
        let q: t::GetLogRequest = typed("GetLog", log_json(r))?;
        let r = h.call(q).await?;
        let filename = r.filename.as_ref().map(|f| f.as_str().to_owned());
        Ok(LogAnswer {
            answer: Answer {
                status: r.status.as_str().to_owned(),
                response: crate::message::AnyResponse::from(t::AnyResponse::from(r)),
            },
            filename,
        })
    }

    pub(super) async fn get_diagnostics(
        h: &ChargerHandle,
        r: &LogRequest,
    ) -> Result<LogAnswer, CallError> {
        if r.log_type == LogType::Security {
            return Err(CallError::Refused(
                "OCPP 1.6 GetDiagnostics uploads diagnostics, not the security log (use GetLog)"
                    .into(),
            ));
        }
        let mut q = json!({ "location": r.location });
        if let Some(t) = &r.oldest {
            q["startTime"] = json!(time(t));
        }
        if let Some(t) = &r.latest {
            q["stopTime"] = json!(time(t));
        }
        retry_fields(&mut q, r.retries, r.retry_interval);
        let q: t::GetDiagnosticsRequest = typed("GetDiagnostics", q)?;
        let r = h.call(q).await?;
        let filename = r.file_name.as_ref().map(|f| f.as_str().to_owned());
        Ok(LogAnswer {
            answer: Answer {
                status: "Accepted".to_owned(),
                response: crate::message::AnyResponse::from(t::AnyResponse::from(r)),
            },
            filename,
        })
    }

    #[allow(unused_imports)]
    use status_call as _;
}

/// What a firmware, diagnostics or log status notification says (`None` for any other
/// message).
pub fn transfer_status(request: &AnyRequest) -> Option<TransferStatus> {
    fn s(kind: TransferKind, status: &str, request_id: Option<i32>) -> Option<TransferStatus> {
        Some(TransferStatus {
            kind,
            status: status.to_owned(),
            request_id,
        })
    }
    use TransferKind::{Diagnostics, Firmware, Log};
    match request {
        #[cfg(feature = "v16")]
        AnyRequest::V16(q) => {
            use ocpp_types::v16::AnyRequest as Q;
            match q {
                Q::FirmwareStatusNotification(q) => s(Firmware, q.status.as_str(), None),
                Q::SignedFirmwareStatusNotification(q) => {
                    s(Firmware, q.status.as_str(), q.request_id)
                }
                Q::DiagnosticsStatusNotification(q) => s(Diagnostics, q.status.as_str(), None),
                Q::LogStatusNotification(q) => s(Log, q.status.as_str(), q.request_id),
                _ => None,
            }
        }
        #[cfg(feature = "v201")]
        AnyRequest::V201(q) => {
            use ocpp_types::v201::AnyRequest as Q;
            match q {
                Q::FirmwareStatusNotification(q) => s(Firmware, q.status.as_str(), q.request_id),
                Q::LogStatusNotification(q) => s(Log, q.status.as_str(), q.request_id),
                _ => None,
            }
        }
        #[cfg(feature = "v21")]
        AnyRequest::V21(q) => {
            use ocpp_types::v21::AnyRequest as Q;
            match q {
                Q::FirmwareStatusNotification(q) => s(Firmware, q.status.as_str(), q.request_id),
                Q::LogStatusNotification(q) => s(Log, q.status.as_str(), q.request_id),
                _ => None,
            }
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

impl ChargerHandle {
    /// Starts a firmware update: 1.6 UpdateFirmware (no status in its answer: a result is
    /// `Accepted`), or with a signature the whitepaper's SignedUpdateFirmware; 2.x
    /// UpdateFirmware. The status is `Accepted`, `Rejected`, `AcceptedCanceled`,
    /// `InvalidCertificate` or `RevokedCertificate`.
    pub async fn update_firmware(&self, update: &FirmwareUpdate) -> Result<Answer, CallError> {
        by_version!(
            self,
            v16::update_firmware(self, update).await,
            v201::update_firmware(self, update).await,
            v21::update_firmware(self, update).await
        )
    }

    /// Asks for a log upload with GetLog (1.6: the whitepaper's; 2.x). The status is
    /// `Accepted`, `Rejected` or `AcceptedCanceled`, with the file name the charger gave.
    pub async fn get_log(&self, request: &LogRequest) -> Result<LogAnswer, CallError> {
        by_version!(
            self,
            v16::get_log(self, request).await,
            v201::get_log(self, request).await,
            v21::get_log(self, request).await
        )
    }

    /// (1.6) Asks for a diagnostics upload with GetDiagnostics (`request_id` unused; a
    /// result is `Accepted`, with the file name the charger gave). Refused on 2.x, which
    /// uses [`ChargerHandle::get_log`].
    pub async fn get_diagnostics(&self, request: &LogRequest) -> Result<LogAnswer, CallError> {
        let _ = request;
        by_version!(
            self,
            v16::get_diagnostics(self, request).await,
            Err(CallError::Refused(
                "OCPP 2.0.1 has no GetDiagnostics: use GetLog".into()
            )),
            Err(CallError::Refused(
                "OCPP 2.1 has no GetDiagnostics: use GetLog".into()
            ))
        )
    }
}
