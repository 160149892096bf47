//! The station's side of certificate management: the built-in answers of the
//! [`Security`](crate::app::Security) block and the signing of the station's own certificate
//! (see the [module docs](super)).

use std::time::Instant;

use ocpp_codec::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    hash_data, normalize_kind, CertificateError, CertificateHashData, CertificateStore,
    ClientCertificate, HashAlgorithm, Parsed, StoredCertificate, MAX_CHAIN_PEM,
};
use crate::app::{CallError, Context};
use crate::station::{Pending, SecurityEvent, Station, StationEvent};

/// Why [`Station::request_certificate`] sent nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Not connected, or the boot not accepted yet.
    #[error("the station is not connected and accepted")]
    NotAccepted,
    /// The call queue is full ([`MAX_QUEUED_CALLS`](crate::station::MAX_QUEUED_CALLS)).
    #[error("the call queue is full")]
    QueueFull,
    /// The key pair or the CSR could not be made.
    #[error("the key or the CSR could not be made: {0}")]
    Key(String),
    /// The certificate store failed.
    #[error("{0}")]
    Store(#[from] super::CertificateStoreError),
}

impl Station {
    /// The certificate store.
    pub fn certificate_store(&self) -> &dyn CertificateStore {
        &*self.certs
    }

    /// The station's own client certificate and key (security profile 3), if it has one:
    /// the last one the central system signed ([`super`]), or the one the store held.
    pub fn client_certificate(&self) -> Option<ClientCertificate> {
        self.certs.client_certificate()
    }

    /// A number that changes whenever [`Station::client_certificate`] changes (drivers
    /// rebuild their TLS configuration when it does).
    pub fn client_certificate_generation(&self) -> u64 {
        self.client_generation
    }

    /// Asks the central system to sign a new certificate for the station (2.x use case A02,
    /// the 1.6 whitepaper's "Update Charge Point certificate"): a new key pair (kept in the
    /// store as the pending key) and a CSR (CN = identity, O = the organization), sent in
    /// `SignCertificate`. The answer is reported as [`StationEvent::SignCertificateAnswered`];
    /// the certificate comes later in `CertificateSigned`.
    pub fn request_certificate(&mut self, now: Instant) -> Result<(), SignError> {
        let r = self.start_sign(now);
        self.step(now);
        r
    }

    pub(crate) fn start_sign(&mut self, now: Instant) -> Result<(), SignError> {
        if !self.accepted() {
            return Err(SignError::NotAccepted);
        }
        if !self.room_for(1) {
            return Err(SignError::QueueFull);
        }
        let key = rcgen::KeyPair::generate().map_err(|e| SignError::Key(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| SignError::Key(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, self.cfg.identity.as_str());
        if let Some(o) = &self.cfg.organization {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, o.as_str());
        }
        let csr = params
            .serialize_request(&key)
            .and_then(|r| r.pem())
            .map_err(|e| SignError::Key(e.to_string()))?;
        self.certs.set_pending_key(Some(key.serialize_pem()))?;
        let mut p = json!({ "csr": csr });
        if !self.v16() {
            p["certificateType"] = json!("ChargingStationCertificate");
        }
        if self.call(now, "SignCertificate", &p, Pending::Sign) {
            Ok(())
        } else {
            Err(SignError::QueueFull)
        }
    }

    /// A `CertificateChain` from the central system: checked against the pending key, the
    /// identity, the time and the issuer, then installed.
    fn take_signed(&mut self, now: Instant, chain_pem: &str) -> Result<(), CertificateError> {
        if chain_pem.len() > MAX_CHAIN_PEM {
            return Err(CertificateError::Unreadable(format!(
                "the chain is longer than {MAX_CHAIN_PEM} characters"
            )));
        }
        let Some(key_pem) = self.certs.pending_key() else {
            return Err(CertificateError::Mismatch(
                "no signing request is pending".into(),
            ));
        };
        let key = rcgen::KeyPair::from_pem(&key_pem)
            .map_err(|e| CertificateError::Mismatch(format!("the pending key is unusable: {e}")))?;
        let chain = Parsed::chain(chain_pem)?;
        let leaf = &chain[0];
        if leaf.key_bits != key.public_key_raw() {
            return Err(CertificateError::Mismatch(
                "the certificate is not for the pending key".into(),
            ));
        }
        if leaf.common_name.as_deref() != Some(self.cfg.identity.as_str()) {
            return Err(CertificateError::Mismatch(format!(
                "the certificate's CN {:?} is not the identity",
                leaf.common_name.as_deref().unwrap_or("")
            )));
        }
        let unix = self.cfg.time.wall(now).timestamp();
        leaf.check_valid_at(unix)?;
        let roots: Vec<Parsed> = self
            .certs
            .certificates()
            .iter()
            .filter(|c| c.kind == "CSMSRootCertificate")
            .filter_map(|c| Parsed::one(&c.pem).ok())
            .collect();
        let signed = chain[1..].first().is_some_and(|i| leaf.signed_by(i))
            || roots.iter().any(|r| leaf.signed_by(r));
        if !signed {
            return Err(CertificateError::Mismatch(
                "the certificate is not signed by its chain's next certificate or an installed CSMS root".into(),
            ));
        }
        self.certs
            .set_client_certificate(ClientCertificate {
                chain_pem: chain_pem.to_owned(),
                key_pem,
                not_after: leaf.not_after,
            })
            .map_err(|e| CertificateError::Mismatch(e.to_string()))?;
        let _ = self.certs.set_pending_key(None);
        self.client_generation = self.client_generation.wrapping_add(1);
        self.events
            .push_back(StationEvent::ClientCertificateInstalled {
                not_after: leaf.not_after,
            });
        Ok(())
    }
}

/// The answer to our `SignCertificate`.
pub(crate) fn on_sign_answer(station: &mut Station, status: &str) {
    station
        .events
        .push_back(StationEvent::SignCertificateAnswered {
            status: status.to_owned(),
        });
}

fn internal(e: impl std::fmt::Display) -> CallError {
    CallError::new(ErrorCode::InternalError, e.to_string())
}

/// Runs a version-neutral built-in on the request's JSON and reads its answer back into the
/// version's typed response (the field names are shared by the versions where it matters).
fn neutral<Q: Serialize, R: DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: &Q,
    f: fn(&mut Context<'_>, &Value) -> Value,
) -> Result<R, CallError> {
    let q = serde_json::to_value(request).map_err(internal)?;
    serde_json::from_value(f(ctx, &q)).map_err(internal)
}

fn install(ctx: &mut Context<'_>, q: &Value) -> Value {
    let kind = normalize_kind(q["certificateType"].as_str().unwrap_or("")).to_owned();
    let pem = q["certificate"].as_str().unwrap_or("");
    let unix = ctx.wall_clock().timestamp();
    let status = match Parsed::one(pem).and_then(|p| {
        p.check_valid_at(unix)?;
        if !p.is_ca {
            return Err(CertificateError::NotCa);
        }
        Ok(p)
    }) {
        Err(_) => "Rejected",
        Ok(p) => {
            let cert = StoredCertificate {
                kind,
                fingerprint: p.fingerprint(),
                pem: pem.to_owned(),
            };
            match ctx.station.certs.install(cert) {
                Ok(()) => "Accepted",
                Err(_) => "Failed",
            }
        }
    };
    json!({ "status": status })
}

/// The installed certificates, parsed, with their use.
fn installed(station: &Station) -> Vec<(String, Parsed)> {
    station
        .certs
        .certificates()
        .into_iter()
        .filter_map(|c| Parsed::one(&c.pem).ok().map(|p| (c.kind, p)))
        .collect()
}

fn get_ids(ctx: &mut Context<'_>, q: &Value) -> Value {
    let v16 = ctx.station.v16();
    let wanted: Vec<String> = match &q["certificateType"] {
        Value::String(s) => vec![normalize_kind(s).to_owned()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| normalize_kind(s).to_owned())
            .collect(),
        _ => Vec::new(),
    };
    let all = installed(ctx.station);
    let parsed: Vec<Parsed> = all.iter().map(|(_, p)| p.clone()).collect();
    let found: Vec<(String, CertificateHashData)> = all
        .iter()
        .filter(|(k, _)| wanted.is_empty() || wanted.contains(k))
        .map(|(k, p)| (k.clone(), hash_data(p, &parsed, HashAlgorithm::Sha256)))
        .collect();
    if found.is_empty() {
        return json!({ "status": "NotFound" });
    }
    if v16 {
        json!({
            "status": "Accepted",
            "certificateHashData": found.iter().map(|(_, h)| h.to_json()).collect::<Vec<_>>(),
        })
    } else {
        json!({
            "status": "Accepted",
            "certificateHashDataChain": found
                .iter()
                .map(|(k, h)| json!({ "certificateType": k, "certificateHashData": h.to_json() }))
                .collect::<Vec<_>>(),
        })
    }
}

fn delete(ctx: &mut Context<'_>, q: &Value) -> Value {
    let Some(wanted) = CertificateHashData::from_json(&q["certificateHashData"]) else {
        return json!({ "status": "NotFound" });
    };
    let all = installed(ctx.station);
    let parsed: Vec<Parsed> = all.iter().map(|(_, p)| p.clone()).collect();
    let Some((kind, cert)) = all
        .iter()
        .find(|(_, p)| hash_data(p, &parsed, wanted.hash_algorithm).matches(&wanted))
    else {
        return json!({ "status": "NotFound" });
    };
    let roots = all
        .iter()
        .filter(|(k, _)| k == "CSMSRootCertificate")
        .count();
    if kind == "CSMSRootCertificate" && roots == 1 {
        return json!({ "status": "Failed" });
    }
    let status = match ctx.station.certs.remove(&cert.fingerprint()) {
        Ok(true) => "Accepted",
        Ok(false) => "NotFound",
        Err(_) => "Failed",
    };
    json!({ "status": status })
}

fn signed(ctx: &mut Context<'_>, q: &Value) -> Value {
    // 2.x: a V2G certificate was never asked for by this station.
    if q["certificateType"]
        .as_str()
        .is_some_and(|t| t != "ChargingStationCertificate")
    {
        ctx.station.raise_security_event(
            ctx.now,
            SecurityEvent::InvalidStationCertificate,
            Some("CertificateSigned for a certificate type the station did not request"),
        );
        return json!({ "status": "Rejected" });
    }
    let chain = q["certificateChain"].as_str().unwrap_or("");
    let now = ctx.now;
    match ctx.station.take_signed(now, chain) {
        Ok(()) => json!({ "status": "Accepted" }),
        Err(e) => {
            ctx.station.raise_security_event(
                now,
                SecurityEvent::InvalidStationCertificate,
                Some(&e.to_string()),
            );
            json!({ "status": "Rejected" })
        }
    }
}

macro_rules! builtins {
    ($($name:ident: $v:ident $Req:ident $Resp:ident => $f:ident;)*) => {
        $(
            pub(crate) fn $name(
                ctx: &mut Context<'_>,
                request: ocpp_types::$v::$Req,
            ) -> Result<ocpp_types::$v::$Resp, CallError> {
                neutral(ctx, &request, $f)
            }
        )*
    };
}

builtins! {
    install_certificate_v16: v16 InstallCertificateRequest InstallCertificateResponse => install;
    install_certificate_v201: v201 InstallCertificateRequest InstallCertificateResponse => install;
    install_certificate_v21: v21 InstallCertificateRequest InstallCertificateResponse => install;
    get_installed_certificate_ids_v16: v16 GetInstalledCertificateIdsRequest GetInstalledCertificateIdsResponse => get_ids;
    get_installed_certificate_ids_v201: v201 GetInstalledCertificateIdsRequest GetInstalledCertificateIdsResponse => get_ids;
    get_installed_certificate_ids_v21: v21 GetInstalledCertificateIdsRequest GetInstalledCertificateIdsResponse => get_ids;
    delete_certificate_v16: v16 DeleteCertificateRequest DeleteCertificateResponse => delete;
    delete_certificate_v201: v201 DeleteCertificateRequest DeleteCertificateResponse => delete;
    delete_certificate_v21: v21 DeleteCertificateRequest DeleteCertificateResponse => delete;
    certificate_signed_v16: v16 CertificateSignedRequest CertificateSignedResponse => signed;
    certificate_signed_v201: v201 CertificateSignedRequest CertificateSignedResponse => signed;
    certificate_signed_v21: v21 CertificateSignedRequest CertificateSignedResponse => signed;
}

/// A TriggerMessage for a new certificate: the key pair, the CSR and the SignCertificate.
pub(crate) fn triggered_sign(station: &mut Station, now: Instant) {
    if let Err(e) = station.start_sign(now) {
        on_sign_answer(station, &format!("NotSent: {e}"));
    }
}
