//! The example central system's certificate authority and the chargers' certificates.
//!
//! - **The CA** ([`Ca`], rcgen): given with `--ca-cert` / `--ca-key`, or generated at first run
//!   into `--pki-dir` (`ca.pem`, and `ca.key` with mode 0600) and read from there afterwards.
//!   With security profile 3 its certificate is added to the client CAs, so chargers it
//!   signed are admitted (CN bound to the identity).
//! - **SignCertificate** from a charger: the CSR (at most 5500 characters, the schema's
//!   limit) is parsed and its signature verified (rcgen / x509-parser), its subject CN must
//!   be the charger's identity, its key ECDSA P-256 / P-384 or RSA of at least 2048 bits.
//!   Then `Accepted`, and once the answer is out the chain (the new certificate, then the CA)
//!   goes to the charger in `CertificateSigned`; the certificate is recorded as issued. A
//!   refused CSR is answered `Rejected` and stored as a security event of the charger
//!   (`CsrRejected`, with the reason). Without a CA every CSR is `Rejected`.
//! - **The table** `charger_certificates` (migration 9): per charger, the certificates issued
//!   to it (`source` `issued`) and the CA certificates installed on it (`installed`: sent
//!   through the API and accepted, or reported by GetInstalledCertificateIds, which replaces
//!   the charger's `installed` rows), with serial, subject, expiry and hash data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Duration, Utc};
use ocpp_central::certificates::{CertificateHashData, SignRequest};
use ocpp_central::ChargerHandle;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use serde::Serialize;
use sha2::Digest;
use sqlx::Row;
use utoipa::ToSchema;
use x509_parser::prelude::FromDer;

use super::db::{parse_ts, ts, Db, DbError};

/// The longest CSR accepted (the schemas' `csr` limit).
pub const MAX_CSR: usize = 5500;

/// How long an issued certificate is valid.
pub const VALIDITY_DAYS: i64 = 365;

/// Why the CA could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate or key is not usable.
    #[error("CA: {0}")]
    Invalid(String),
}

/// The central system's certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    use std::io::Write;
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

impl Ca {
    /// The CA of `cert` and `key` (PEM files).
    pub fn from_files(cert: &Path, key: &Path) -> Result<Ca, PkiError> {
        Ca::from_pem(read(cert)?, &read(key)?)
    }

    fn from_pem(cert_pem: String, key_pem: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::Invalid(e.to_string()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| PkiError::Invalid(e.to_string()))?;
        Ok(Ca { issuer, cert_pem })
    }

    /// The CA in `dir` (`ca.pem`, `ca.key`), generated there at first run.
    pub fn open_or_create(dir: &Path) -> Result<Ca, PkiError> {
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        if cert.exists() && key.exists() {
            return Ca::from_files(&cert, &key);
        }
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let invalid = |e: rcgen::Error| PkiError::Invalid(e.to_string());
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(invalid)?;
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, "ocpp-rs example CSMS CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let today = Utc::now();
        params.not_before = rcgen::date_time_ymd(today.year(), today.month() as u8, 1);
        params.not_after = rcgen::date_time_ymd(today.year() + 10, today.month() as u8, 1);
        let key_pair = KeyPair::generate().map_err(invalid)?;
        let ca = params.self_signed(&key_pair).map_err(invalid)?;
        // The key first, private from its creation.
        write(&key, &key_pair.serialize_pem(), true)?;
        write(&cert, &ca.pem(), false)?;
        tracing::info!(dir = %dir.display(), "generated the CSMS certificate authority");
        Ca::from_pem(ca.pem(), &key_pair.serialize_pem())
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Checks `csr` for `identity` and signs it: the chain (new certificate, CA) and the
    /// record of the new certificate. `Err`: why it is refused.
    pub fn sign(&self, csr: &str, identity: &str) -> Result<(String, CertRecord), String> {
        if csr.len() > MAX_CSR {
            return Err(format!("the CSR is longer than {MAX_CSR} characters"));
        }
        // rcgen parses the CSR and verifies its signature (x509-parser underneath).
        let parsed =
            CertificateSigningRequestParams::from_pem(csr).map_err(|e| format!("bad CSR: {e}"))?;
        let der = x509_parser::pem::parse_x509_pem(csr.as_bytes())
            .map_err(|e| format!("bad CSR: {e}"))?
            .1
            .contents;
        let (_, request) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der)
                .map_err(|e| format!("bad CSR: {e}"))?;
        let info = &request.certification_request_info;
        let cn = info
            .subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("");
        if cn != identity {
            return Err(format!(
                "the CSR's CN {cn:?} is not the charger's identity {identity:?}"
            ));
        }
        use x509_parser::public_key::PublicKey;
        match info.subject_pki.parsed() {
            Ok(PublicKey::EC(ec)) if ec.key_size() >= 256 => {}
            Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= 2048 => {}
            Ok(other) => {
                return Err(format!(
                    "key not acceptable (ECDSA P-256 or better, RSA 2048 or more): {} bits",
                    other.key_size()
                ))
            }
            Err(e) => return Err(format!("unreadable key: {e}")),
        }
        let organization = info
            .subject
            .iter_organization()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned);
        // A fresh certificate: the identity, client authentication, nothing else the CSR
        // asked for.
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, identity);
        if let Some(o) = &organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, o.as_str());
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let now = Utc::now();
        let from = now - Duration::days(1);
        let until = now + Duration::days(VALIDITY_DAYS);
        params.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
        params.not_after =
            rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
        let mut serial = [0u8; 16];
        getrandom::fill(&mut serial).map_err(|e| e.to_string())?;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        params.serial_number = Some(SerialNumber::from(serial.to_vec()));
        let csr = CertificateSigningRequestParams {
            params,
            public_key: parsed.public_key,
        };
        let cert = csr.signed_by(&self.issuer).map_err(|e| e.to_string())?;
        let pem = cert.pem();
        let record = CertRecord::of(&pem, Some(&self.cert_pem), "ChargingStationCertificate")
            .ok_or("the new certificate does not parse")?;
        Ok((format!("{pem}{}", self.cert_pem), record))
    }
}

/// One certificate of a charger, as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertRecord {
    /// `ChargingStationCertificate` (issued), or the CA kind (`CSMSRootCertificate`, ...).
    pub kind: String,
    /// Serial number, lowercase hexadecimal without leading zeroes.
    pub serial: String,
    /// Subject (RFC 4514 text); empty when only the hash data is known.
    pub subject: String,
    /// End of validity; `None` when only the hash data is known.
    pub not_after: Option<DateTime<Utc>>,
    /// Whole days until `not_after` (negative: expired).
    pub days_left: Option<i64>,
    /// The certificate hash data (SHA-256), as the charger reports it.
    pub hash: Option<HashJson>,
}

/// [`CertificateHashData`] in the API.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashJson {
    /// `SHA256`, `SHA384` or `SHA512`.
    pub hash_algorithm: String,
    /// Hash of the issuer's name.
    pub issuer_name_hash: String,
    /// Hash of the issuer's key.
    pub issuer_key_hash: String,
    /// Serial number.
    pub serial_number: String,
}

impl From<&CertificateHashData> for HashJson {
    fn from(h: &CertificateHashData) -> HashJson {
        HashJson {
            hash_algorithm: h.hash_algorithm.clone(),
            issuer_name_hash: h.issuer_name_hash.clone(),
            issuer_key_hash: h.issuer_key_hash.clone(),
            serial_number: h.serial_number.clone(),
        }
    }
}

impl From<&HashJson> for CertificateHashData {
    fn from(h: &HashJson) -> CertificateHashData {
        CertificateHashData {
            hash_algorithm: h.hash_algorithm.clone(),
            issuer_name_hash: h.issuer_name_hash.clone(),
            issuer_key_hash: h.issuer_key_hash.clone(),
            serial_number: h.serial_number.clone(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serial_hex(raw: &[u8]) -> String {
    let s = hex(raw);
    let s = s.trim_start_matches('0');
    if s.is_empty() { "0" } else { s }.to_owned()
}

impl CertRecord {
    /// The record of the certificate in `pem` (the first one), its hash data computed with
    /// `issuer_pem` as the issuer (its own key when self-signed or `None`).
    pub fn of(pem: &str, issuer_pem: Option<&str>, kind: &str) -> Option<CertRecord> {
        let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .ok()?
            .1
            .contents;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
        let issuer_der = issuer_pem
            .and_then(|p| x509_parser::pem::parse_x509_pem(p.as_bytes()).ok())
            .map(|(_, p)| p.contents);
        let issuer = issuer_der
            .as_deref()
            .and_then(|d| x509_parser::parse_x509_certificate(d).ok())
            .map(|(_, c)| c);
        let key_bits = match &issuer {
            Some(i) if cert.issuer() != cert.subject() => {
                i.public_key().subject_public_key.data.to_vec()
            }
            _ => cert.public_key().subject_public_key.data.to_vec(),
        };
        let not_after = DateTime::<Utc>::from_timestamp(cert.validity().not_after.timestamp(), 0);
        Some(CertRecord {
            kind: kind.to_owned(),
            serial: serial_hex(cert.raw_serial()),
            subject: cert.subject().to_string(),
            not_after,
            days_left: not_after.map(|t| (t - Utc::now()).num_days()),
            hash: Some(HashJson {
                hash_algorithm: "SHA256".into(),
                issuer_name_hash: hex(&sha2::Sha256::digest(cert.issuer().as_raw())),
                issuer_key_hash: hex(&sha2::Sha256::digest(&key_bits)),
                serial_number: serial_hex(cert.raw_serial()),
            }),
        })
    }
}

/// The backend's certificate state: the CA (if any) and the chains signed and waiting for
/// their SignCertificate answer to go out.
#[derive(Debug, Default)]
pub struct Certs {
    ca: Mutex<Option<Arc<Ca>>>,
    /// Per charger: the chain to send in CertificateSigned once the answer is out.
    ready: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Certs {
    /// Signs with `ca` from now on.
    pub fn set_ca(&self, ca: Arc<Ca>) {
        *lock(&self.ca) = Some(ca);
    }

    /// The CA.
    pub fn ca(&self) -> Option<Arc<Ca>> {
        lock(&self.ca).clone()
    }

    /// A charger's SignCertificate: `Ok(true)` signed (the chain waits for
    /// [`Certs::after_answer`]), `Ok(false)` refused (the reason stored as a security event).
    pub async fn on_sign_request(
        &self,
        db: &Db,
        identity: &str,
        request: &SignRequest,
    ) -> Result<bool, DbError> {
        let verdict = match (self.ca(), request.kind.as_deref()) {
            (None, _) => Err("the central system has no certificate authority".to_owned()),
            (_, Some(kind)) if kind != "ChargingStationCertificate" => {
                Err(format!("{kind} certificates are not signed here"))
            }
            (Some(ca), _) => ca.sign(&request.csr, identity),
        };
        match verdict {
            Ok((chain, record)) => {
                store(db, identity, "issued", &record).await?;
                lock(&self.ready).insert(identity.to_owned(), chain);
                Ok(true)
            }
            Err(why) => {
                tracing::warn!(charger = identity, "CSR refused: {why}");
                super::secrets::store_security_event(
                    db,
                    identity,
                    "CsrRejected",
                    Utc::now(),
                    Some(&why),
                )
                .await?;
                Ok(false)
            }
        }
    }

    /// After the SignCertificate answer went out: sends the signed chain, if any.
    pub fn after_answer(&self, charger: &ChargerHandle) {
        let Some(chain) = lock(&self.ready).remove(charger.identity()) else {
            return;
        };
        let charger = charger.clone();
        tokio::spawn(async move {
            match charger.certificate_signed(&chain).await {
                Ok(a) => {
                    tracing::info!(charger = charger.identity(), status = %a.status, "CertificateSigned answered")
                }
                Err(e) => tracing::warn!(
                    charger = charger.identity(),
                    "CertificateSigned failed: {e}"
                ),
            }
        });
    }
}

/// Records a certificate of `charger`.
pub async fn store(db: &Db, charger: &str, source: &str, r: &CertRecord) -> Result<(), DbError> {
    let h = r.hash.as_ref();
    sqlx::query(
        "INSERT INTO charger_certificates (charger, source, kind, serial, subject, not_after,
         hash_algorithm, issuer_name_hash, issuer_key_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(charger)
    .bind(source)
    .bind(&r.kind)
    .bind(&r.serial)
    .bind(&r.subject)
    .bind(r.not_after.map(ts))
    .bind(h.map(|h| h.hash_algorithm.clone()))
    .bind(h.map(|h| h.issuer_name_hash.clone()))
    .bind(h.map(|h| h.issuer_key_hash.clone()))
    .bind(ts(Utc::now()))
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Replaces the charger's `installed` rows by what it reported, keeping subject and expiry
/// of the rows already known by serial.
pub async fn replace_installed(
    db: &Db,
    charger: &str,
    reported: &[CertRecord],
) -> Result<(), DbError> {
    let known = list(db, charger).await?;
    sqlx::query("DELETE FROM charger_certificates WHERE charger = $1 AND source = 'installed'")
        .bind(charger)
        .execute(db.writer())
        .await?;
    for r in reported {
        let mut r = r.clone();
        if let Some(k) = known
            .iter()
            .find(|k| k.serial == r.serial && k.kind == r.kind)
        {
            r.subject = k.subject.clone();
            r.not_after = k.not_after;
            r.days_left = k.days_left;
        }
        store(db, charger, "installed", &r).await?;
    }
    Ok(())
}

/// Removes the `installed` row of `charger` with `serial`.
pub async fn remove_installed(db: &Db, charger: &str, serial: &str) -> Result<(), DbError> {
    sqlx::query(
        "DELETE FROM charger_certificates WHERE charger = $1 AND source = 'installed' AND serial = $2",
    )
    .bind(charger)
    .bind(serial.trim_start_matches('0').to_ascii_lowercase())
    .execute(db.writer())
    .await?;
    Ok(())
}

/// A charger's certificates, newest first.
pub async fn list(db: &Db, charger: &str) -> Result<Vec<CertRecord>, DbError> {
    let rows = sqlx::query(
        "SELECT kind, serial, subject, not_after, hash_algorithm, issuer_name_hash,
         issuer_key_hash FROM charger_certificates WHERE charger = $1 ORDER BY id DESC LIMIT 1000",
    )
    .bind(charger)
    .fetch_all(db.reader())
    .await?;
    let now = Utc::now();
    rows.into_iter()
        .map(|r| {
            let not_after: Option<String> = r.try_get("not_after")?;
            let not_after = match not_after {
                Some(t) => Some(parse_ts("charger_certificates.not_after", t)?),
                None => None,
            };
            let serial: String = r.try_get("serial")?;
            let algorithm: Option<String> = r.try_get("hash_algorithm")?;
            let hash = match algorithm {
                Some(a) => Some(HashJson {
                    hash_algorithm: a,
                    issuer_name_hash: r
                        .try_get::<Option<String>, _>("issuer_name_hash")?
                        .unwrap_or_default(),
                    issuer_key_hash: r
                        .try_get::<Option<String>, _>("issuer_key_hash")?
                        .unwrap_or_default(),
                    serial_number: serial.clone(),
                }),
                None => None,
            };
            Ok(CertRecord {
                kind: r.try_get("kind")?,
                serial,
                subject: r
                    .try_get::<Option<String>, _>("subject")?
                    .unwrap_or_default(),
                days_left: not_after.map(|t: DateTime<Utc>| (t - now).num_days()),
                not_after,
                hash,
            })
        })
        .collect()
}

/// One charger's certificate in the network-wide expiry list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiringRecord {
    /// The charger's identity.
    pub charger: String,
    /// The certificate.
    #[serde(flatten)]
    pub certificate: CertRecord,
}

/// The certificates of every charger with a known expiry, the soonest first (at most
/// `limit`, capped at 1,000): what an operator renews next.
pub async fn expiring(db: &Db, limit: i64) -> Result<Vec<ExpiringRecord>, DbError> {
    let rows = sqlx::query(
        "SELECT charger, kind, serial, subject, not_after FROM charger_certificates
         WHERE not_after IS NOT NULL ORDER BY not_after, id LIMIT $1",
    )
    .bind(limit.clamp(1, 1000))
    .fetch_all(db.reader())
    .await?;
    let now = Utc::now();
    rows.into_iter()
        .map(|r| {
            let not_after: String = r.try_get("not_after")?;
            let not_after = parse_ts("charger_certificates.not_after", not_after)?;
            Ok(ExpiringRecord {
                charger: r.try_get("charger")?,
                certificate: CertRecord {
                    kind: r.try_get("kind")?,
                    serial: r.try_get("serial")?,
                    subject: r
                        .try_get::<Option<String>, _>("subject")?
                        .unwrap_or_default(),
                    days_left: Some((not_after - now).num_days()),
                    not_after: Some(not_after),
                    hash: None,
                },
            })
        })
        .collect()
}

/// The CA from the command line: `--ca-cert`/`--ca-key`, else `--pki-dir`, else none.
pub fn ca_from_args(
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
    dir: Option<&PathBuf>,
) -> Result<Option<Ca>, PkiError> {
    match (cert, key, dir) {
        (Some(c), Some(k), _) => Ca::from_files(c, k).map(Some),
        (_, _, Some(d)) => Ca::open_or_create(d).map(Some),
        _ => Ok(None),
    }
}
