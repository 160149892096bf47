//! Certificate management (feature `certificates`): the 1.6 security whitepaper's
//! certificate messages and OCPP 2.0.1 / 2.1 blocks A (security) and M (certificate
//! management), on the charging station's side.
//!
//! - [`CertificateStore`]: where the installed CA certificates, the station's own client
//!   certificate (chain and key) and the key of a pending signing request live.
//!   [`MemoryCertificateStore`] keeps them in memory; [`FileCertificateStore`] in a
//!   directory, each write atomic (a temporary file, `fsync`, rename), keys with mode 0600.
//!   Both hold at most [`MAX_CERTIFICATES`] CA certificates of at most
//!   [`MAX_CERTIFICATE_PEM`] characters each; a chain is at most [`MAX_CHAIN_PEM`].
//! - The station's built-in answers ([`crate::app::Security`]): `InstallCertificate`
//!   (a PEM CA certificate, valid now: `Accepted`; unreadable, not a CA or outside its
//!   validity: `Rejected`; the store full or failing: `Failed`), `GetInstalledCertificateIds`
//!   (the certificate hash data of the matching types; none: `NotFound`), `DeleteCertificate`
//!   (`Accepted`, `NotFound`, or `Failed` for the last CSMS root certificate, without which
//!   the station could not verify any central system, and when the store fails).
//! - The station's own certificate (2.x use cases A02 / A03, the 1.6 whitepaper's "Update
//!   Charge Point certificate"): [`Station::request_certificate`], or the central system's
//!   `TriggerMessage` / 1.6 `ExtendedTriggerMessage` `SignChargingStationCertificate` /
//!   `SignChargePointCertificate`, makes a new key pair (ECDSA P-256, from the operating
//!   system's random generator: the one place the station does not use its seeded
//!   generator, since a predictable key is no key) and a CSR whose subject CN is the
//!   identity and O the organization ([`StationConfig::organization`]), and sends
//!   `SignCertificate`. The `CertificateSigned` that follows is `Accepted` only when its
//!   first certificate holds the pending key, names the identity as CN, is valid now and
//!   is signed by the next certificate of the chain or an installed CSMS root; otherwise
//!   `Rejected` with the security event `InvalidChargePointCertificate` (1.6) /
//!   `InvalidChargingStationCertificate` (2.x). The accepted chain and key become
//!   [`Station::client_certificate`], which the WebSocket driver presents from its next
//!   connection on (no restart).
//!
//! Certificate hash data ([`CertificateHashData`]) follows the specifications (and OCSP's
//! `CertID`): the hash of the issuer's DER-encoded distinguished name, the hash of the
//! issuer's public key (the key bits, without tag and length), and the serial number in
//! hexadecimal without leading zeroes; SHA-256 for what the station reports, SHA-256, -384
//! or -512 for what it is asked to delete. The issuer's key is the certificate's own for a
//! self-signed root, another installed certificate's whose subject is the issuer otherwise;
//! when no installed certificate is the issuer, the certificate's own key stands in (so a
//! certificate reports and matches the same hash data in both messages).
//!
//! The store is called synchronously from the station's handlers (like
//! [`Hardware`](crate::Hardware)): certificate writes are rare, small and made by the
//! operator or the central system, never on the path of transaction messages.
//!
//! [`Station::request_certificate`]: crate::Station::request_certificate
//! [`Station::client_certificate`]: crate::Station::client_certificate
//! [`StationConfig::organization`]: crate::StationConfig::organization

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::Digest;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

pub(crate) mod station;

/// The most CA certificates a store holds. An `InstallCertificate` beyond it is answered
/// `Failed`.
pub const MAX_CERTIFICATES: usize = 32;

/// The longest PEM text of one installed certificate, in characters (the schemas' limit of
/// `InstallCertificate.certificate`: 5500).
pub const MAX_CERTIFICATE_PEM: usize = 5500;

/// The longest certificate chain accepted in `CertificateSigned`, in characters (the
/// schemas' limit: 10000).
pub const MAX_CHAIN_PEM: usize = 10_000;

/// The most certificates read from one chain.
pub const MAX_CHAIN_LEN: usize = 4;

/// Why a certificate store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateStoreError {
    /// [`MAX_CERTIFICATES`] are installed already.
    #[error("the certificate store is full ({MAX_CERTIFICATES} certificates)")]
    Full,
    /// The text is longer than the store takes.
    #[error("the certificate is too long ({0} characters)")]
    TooLong(usize),
    /// Reading or writing the storage failed.
    #[error("certificate storage failed: {0}")]
    Io(String),
}

impl From<std::io::Error> for CertificateStoreError {
    fn from(e: std::io::Error) -> Self {
        CertificateStoreError::Io(e.to_string())
    }
}

/// An installed CA certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// Its use, in the 2.x words (`CSMSRootCertificate`, `ManufacturerRootCertificate`,
    /// `V2GRootCertificate`, `MORootCertificate`, ...; the 1.6 `CentralSystemRootCertificate`
    /// is kept as `CSMSRootCertificate`).
    pub kind: String,
    /// The SHA-256 of its DER encoding, lowercase hexadecimal: its name in the store.
    pub fingerprint: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// The station's own certificate chain (end-entity first) and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The chain, end-entity first.
    pub chain_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
    /// The end of the end-entity certificate's validity, Unix seconds.
    pub not_after: i64,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Where a station keeps its certificates (see the [module docs](self)). Reads come from
/// memory; every change is made durable before the method returns.
pub trait CertificateStore: Send {
    /// The installed CA certificates, in installation order.
    fn certificates(&self) -> Vec<StoredCertificate>;
    /// Installs `certificate` (one with the same fingerprint is replaced).
    fn install(&mut self, certificate: StoredCertificate) -> Result<(), CertificateStoreError>;
    /// Removes the certificate with `fingerprint`; `false` when there is none.
    fn remove(&mut self, fingerprint: &str) -> Result<bool, CertificateStoreError>;
    /// The station's own client certificate and key, if it has one.
    fn client_certificate(&self) -> Option<ClientCertificate>;
    /// Replaces the station's own client certificate and key.
    fn set_client_certificate(
        &mut self,
        certificate: ClientCertificate,
    ) -> Result<(), CertificateStoreError>;
    /// The private key (PEM) of the signing request waiting for its certificate.
    fn pending_key(&self) -> Option<String>;
    /// Sets (or, with `None`, clears) the pending key.
    fn set_pending_key(&mut self, key: Option<String>) -> Result<(), CertificateStoreError>;
}

/// A [`CertificateStore`] in memory (tests, simulators, stations whose certificates come
/// from elsewhere at every start).
#[derive(Debug, Default, Clone)]
pub struct MemoryCertificateStore {
    certificates: Vec<StoredCertificate>,
    client: Option<ClientCertificate>,
    pending: Option<String>,
}

impl MemoryCertificateStore {
    /// An empty store.
    pub fn new() -> MemoryCertificateStore {
        MemoryCertificateStore::default()
    }
}

fn check_room(
    certificates: &[StoredCertificate],
    certificate: &StoredCertificate,
) -> Result<(), CertificateStoreError> {
    if certificate.pem.len() > MAX_CERTIFICATE_PEM {
        return Err(CertificateStoreError::TooLong(certificate.pem.len()));
    }
    let replaces = certificates
        .iter()
        .any(|c| c.fingerprint == certificate.fingerprint);
    if !replaces && certificates.len() >= MAX_CERTIFICATES {
        return Err(CertificateStoreError::Full);
    }
    Ok(())
}

impl CertificateStore for MemoryCertificateStore {
    fn certificates(&self) -> Vec<StoredCertificate> {
        self.certificates.clone()
    }

    fn install(&mut self, certificate: StoredCertificate) -> Result<(), CertificateStoreError> {
        check_room(&self.certificates, &certificate)?;
        self.certificates
            .retain(|c| c.fingerprint != certificate.fingerprint);
        self.certificates.push(certificate);
        Ok(())
    }

    fn remove(&mut self, fingerprint: &str) -> Result<bool, CertificateStoreError> {
        let before = self.certificates.len();
        self.certificates.retain(|c| c.fingerprint != fingerprint);
        Ok(self.certificates.len() != before)
    }

    fn client_certificate(&self) -> Option<ClientCertificate> {
        self.client.clone()
    }

    fn set_client_certificate(
        &mut self,
        certificate: ClientCertificate,
    ) -> Result<(), CertificateStoreError> {
        if certificate.chain_pem.len() > MAX_CHAIN_PEM {
            return Err(CertificateStoreError::TooLong(certificate.chain_pem.len()));
        }
        self.client = Some(certificate);
        Ok(())
    }

    fn pending_key(&self) -> Option<String> {
        self.pending.clone()
    }

    fn set_pending_key(&mut self, key: Option<String>) -> Result<(), CertificateStoreError> {
        self.pending = key;
        Ok(())
    }
}

/// A [`CertificateStore`] in a directory: `ca-<fingerprint>.pem` per CA certificate (its
/// use in `ca-<fingerprint>.kind`), `client.pem` and `client.key` for the station's own
/// certificate, `pending.key` for the key of a signing request. Every write goes to a
/// temporary file that is synced and renamed over the old one, so a crash leaves the old or
/// the new file, never half of one; key files are created with mode 0600 (Unix). The
/// directory is read once, at [`FileCertificateStore::open`]; files beyond the bounds
/// ([`MAX_CERTIFICATES`], [`MAX_CERTIFICATE_PEM`], [`MAX_CHAIN_PEM`]) or not readable as
/// text are skipped.
#[derive(Debug)]
pub struct FileCertificateStore {
    dir: PathBuf,
    memory: MemoryCertificateStore,
    /// Installation order: the files' order at open, then appended.
    order: BTreeMap<String, usize>,
}

/// Reads `path` as text if it exists and is at most `max` bytes.
fn read_bounded(path: &Path, max: usize) -> Result<Option<String>, CertificateStoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > max as u64 => return Ok(None),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8(bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes `text` to `path` atomically (temporary file, fsync, rename, directory fsync).
fn write_atomic(path: &Path, text: &str, secret: bool) -> Result<(), CertificateStoreError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn remove_file(path: &Path) -> Result<(), CertificateStoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl FileCertificateStore {
    /// Opens (creating it if needed) the store in `dir` and reads what it holds.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileCertificateStore, CertificateStoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with("ca-") && n.ends_with(".pem"))
            .collect();
        names.sort();
        let mut memory = MemoryCertificateStore::new();
        let mut order = BTreeMap::new();
        for name in names {
            if memory.certificates.len() >= MAX_CERTIFICATES {
                break;
            }
            let fingerprint = name["ca-".len()..name.len() - ".pem".len()].to_owned();
            let Some(pem) = read_bounded(&dir.join(&name), MAX_CERTIFICATE_PEM)? else {
                continue;
            };
            let kind = read_bounded(&dir.join(format!("ca-{fingerprint}.kind")), 64)?
                .map(|k| k.trim().to_owned())
                .unwrap_or_else(|| "CSMSRootCertificate".to_owned());
            order.insert(fingerprint.clone(), order.len());
            memory.certificates.push(StoredCertificate {
                kind,
                fingerprint,
                pem,
            });
        }
        let chain = read_bounded(&dir.join("client.pem"), MAX_CHAIN_PEM)?;
        let key = read_bounded(&dir.join("client.key"), MAX_CERTIFICATE_PEM)?;
        if let (Some(chain_pem), Some(key_pem)) = (chain, key) {
            if let Ok(leaf) = Parsed::chain(&chain_pem).and_then(|c| {
                c.into_iter()
                    .next()
                    .ok_or(CertificateError::Unreadable("no certificate".into()))
            }) {
                memory.client = Some(ClientCertificate {
                    not_after: leaf.not_after,
                    chain_pem,
                    key_pem,
                });
            }
        }
        memory.pending = read_bounded(&dir.join("pending.key"), MAX_CERTIFICATE_PEM)?;
        Ok(FileCertificateStore { dir, memory, order })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl CertificateStore for FileCertificateStore {
    fn certificates(&self) -> Vec<StoredCertificate> {
        let mut all = self.memory.certificates.clone();
        all.sort_by_key(|c| {
            self.order
                .get(&c.fingerprint)
                .copied()
                .unwrap_or(usize::MAX)
        });
        all
    }

    fn install(&mut self, certificate: StoredCertificate) -> Result<(), CertificateStoreError> {
        check_room(&self.memory.certificates, &certificate)?;
        let f = &certificate.fingerprint;
        if !f.chars().all(|c| c.is_ascii_hexdigit()) || f.is_empty() {
            return Err(CertificateStoreError::Io(format!("not a fingerprint: {f}")));
        }
        write_atomic(
            &self.dir.join(format!("ca-{f}.kind")),
            &certificate.kind,
            false,
        )?;
        write_atomic(
            &self.dir.join(format!("ca-{f}.pem")),
            &certificate.pem,
            false,
        )?;
        let next = self.order.len();
        self.order.entry(f.clone()).or_insert(next);
        self.memory.install(certificate)
    }

    fn remove(&mut self, fingerprint: &str) -> Result<bool, CertificateStoreError> {
        if !self
            .memory
            .certificates
            .iter()
            .any(|c| c.fingerprint == fingerprint)
        {
            return Ok(false);
        }
        remove_file(&self.dir.join(format!("ca-{fingerprint}.pem")))?;
        remove_file(&self.dir.join(format!("ca-{fingerprint}.kind")))?;
        self.order.remove(fingerprint);
        self.memory.remove(fingerprint)
    }

    fn client_certificate(&self) -> Option<ClientCertificate> {
        self.memory.client_certificate()
    }

    fn set_client_certificate(
        &mut self,
        certificate: ClientCertificate,
    ) -> Result<(), CertificateStoreError> {
        if certificate.chain_pem.len() > MAX_CHAIN_PEM {
            return Err(CertificateStoreError::TooLong(certificate.chain_pem.len()));
        }
        // The key first: a crash between the two leaves the old chain with a key it does not
        // match, which the TLS layer refuses, rather than a new chain with the old key.
        write_atomic(&self.dir.join("client.key"), &certificate.key_pem, true)?;
        write_atomic(&self.dir.join("client.pem"), &certificate.chain_pem, false)?;
        self.memory.set_client_certificate(certificate)
    }

    fn pending_key(&self) -> Option<String> {
        self.memory.pending_key()
    }

    fn set_pending_key(&mut self, key: Option<String>) -> Result<(), CertificateStoreError> {
        let path = self.dir.join("pending.key");
        match &key {
            Some(k) => write_atomic(&path, k, true)?,
            None => remove_file(&path)?,
        }
        self.memory.set_pending_key(key)
    }
}

/// Why a certificate was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// Not PEM, not X.509, or longer than the bound.
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    /// Outside its validity period now.
    #[error("the certificate is not valid now (valid from {not_before} to {not_after})")]
    NotValidNow {
        /// Start of validity, Unix seconds.
        not_before: i64,
        /// End of validity, Unix seconds.
        not_after: i64,
    },
    /// Installed as a root but not a CA certificate.
    #[error("not a CA certificate")]
    NotCa,
    /// A signed certificate that does not fit the pending request.
    #[error("{0}")]
    Mismatch(String),
}

/// What the station needs of one parsed certificate (owned, so nothing borrows the PEM).
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) der: Vec<u8>,
    pub(crate) subject_raw: Vec<u8>,
    pub(crate) issuer_raw: Vec<u8>,
    pub(crate) key_bits: Vec<u8>,
    pub(crate) serial: Vec<u8>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) is_ca: bool,
    pub(crate) common_name: Option<String>,
}

impl Parsed {
    fn of(der: Vec<u8>) -> Result<Parsed, CertificateError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| CertificateError::Unreadable(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateError::Unreadable(
                "trailing bytes after the certificate".into(),
            ));
        }
        let p = Parsed {
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            key_bits: cert.public_key().subject_public_key.data.to_vec(),
            serial: cert.raw_serial().to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .map(str::to_owned),
            der: Vec::new(),
        };
        Ok(Parsed { der, ..p })
    }

    /// Every certificate of a PEM text (at most [`MAX_CHAIN_LEN`]); at least one.
    pub(crate) fn chain(pem: &str) -> Result<Vec<Parsed>, CertificateError> {
        let mut out = Vec::new();
        for item in Pem::iter_from_buffer(pem.as_bytes()) {
            let item = item.map_err(|e| CertificateError::Unreadable(e.to_string()))?;
            if item.label != "CERTIFICATE" {
                continue;
            }
            if out.len() == MAX_CHAIN_LEN {
                return Err(CertificateError::Unreadable(format!(
                    "more than {MAX_CHAIN_LEN} certificates"
                )));
            }
            out.push(Parsed::of(item.contents)?);
        }
        if out.is_empty() {
            return Err(CertificateError::Unreadable("no PEM certificate".into()));
        }
        Ok(out)
    }

    /// Exactly one certificate.
    pub(crate) fn one(pem: &str) -> Result<Parsed, CertificateError> {
        let mut chain = Parsed::chain(pem)?;
        if chain.len() != 1 {
            return Err(CertificateError::Unreadable(
                "more than one certificate".into(),
            ));
        }
        Ok(chain.remove(0))
    }

    pub(crate) fn check_valid_at(&self, unix: i64) -> Result<(), CertificateError> {
        if unix < self.not_before || unix > self.not_after {
            return Err(CertificateError::NotValidNow {
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        Ok(())
    }

    pub(crate) fn fingerprint(&self) -> String {
        hex(&sha2::Sha256::digest(&self.der))
    }

    /// Whether `issuer` signed this certificate (its subject is our issuer and its key
    /// verifies our signature).
    pub(crate) fn signed_by(&self, issuer: &Parsed) -> bool {
        if issuer.subject_raw != self.issuer_raw {
            return false;
        }
        let (Ok((_, me)), Ok((_, them))) = (
            x509_parser::parse_x509_certificate(&self.der),
            x509_parser::parse_x509_certificate(&issuer.der),
        ) else {
            return false;
        };
        verify(&me, &them)
    }
}

fn verify(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The hash algorithm of [`CertificateHashData`] (`hashAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// `SHA256`.
    Sha256,
    /// `SHA384`.
    Sha384,
    /// `SHA512`.
    Sha512,
}

impl HashAlgorithm {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha384 => "SHA384",
            HashAlgorithm::Sha512 => "SHA512",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<HashAlgorithm> {
        match s {
            "SHA256" => Some(HashAlgorithm::Sha256),
            "SHA384" => Some(HashAlgorithm::Sha384),
            "SHA512" => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    fn hash(self, data: &[u8]) -> String {
        match self {
            HashAlgorithm::Sha256 => hex(&sha2::Sha256::digest(data)),
            HashAlgorithm::Sha384 => hex(&sha2::Sha384::digest(data)),
            HashAlgorithm::Sha512 => hex(&sha2::Sha512::digest(data)),
        }
    }
}

/// The specifications' `CertificateHashDataType` (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateHashData {
    /// The hash algorithm.
    pub hash_algorithm: HashAlgorithm,
    /// Hash of the issuer's DER-encoded distinguished name, lowercase hexadecimal.
    pub issuer_name_hash: String,
    /// Hash of the issuer's public key bits, lowercase hexadecimal.
    pub issuer_key_hash: String,
    /// The serial number, lowercase hexadecimal without leading zeroes.
    pub serial_number: String,
}

impl CertificateHashData {
    /// Whether `other` names the same certificate (hexadecimal compared without regard to
    /// case; serial numbers without leading zeroes).
    pub fn matches(&self, other: &CertificateHashData) -> bool {
        let serial = |s: &str| s.trim_start_matches('0').to_ascii_lowercase();
        self.hash_algorithm == other.hash_algorithm
            && self
                .issuer_name_hash
                .eq_ignore_ascii_case(&other.issuer_name_hash)
            && self
                .issuer_key_hash
                .eq_ignore_ascii_case(&other.issuer_key_hash)
            && serial(&self.serial_number) == serial(&other.serial_number)
    }

    /// As the JSON object the messages carry.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "hashAlgorithm": self.hash_algorithm.as_str(),
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        })
    }

    /// From the JSON object the messages carry.
    pub fn from_json(v: &serde_json::Value) -> Option<CertificateHashData> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        Some(CertificateHashData {
            hash_algorithm: HashAlgorithm::parse(&s("hashAlgorithm")?)?,
            issuer_name_hash: s("issuerNameHash")?,
            issuer_key_hash: s("issuerKeyHash")?,
            serial_number: s("serialNumber")?,
        })
    }
}

/// The hash data of `cert` with `algorithm`, its issuer looked up among `installed`.
pub(crate) fn hash_data(
    cert: &Parsed,
    installed: &[Parsed],
    algorithm: HashAlgorithm,
) -> CertificateHashData {
    let issuer_key = if cert.issuer_raw == cert.subject_raw {
        &cert.key_bits
    } else {
        installed
            .iter()
            .find(|c| c.subject_raw == cert.issuer_raw && cert.signed_by(c))
            .map_or(&cert.key_bits, |c| &c.key_bits)
    };
    let serial = hex(&cert.serial);
    let serial = serial.trim_start_matches('0');
    CertificateHashData {
        hash_algorithm: algorithm,
        issuer_name_hash: algorithm.hash(&cert.issuer_raw),
        issuer_key_hash: algorithm.hash(issuer_key),
        serial_number: if serial.is_empty() { "0" } else { serial }.to_owned(),
    }
}

/// The hash data (SHA-256) of the certificate in `pem`, as the station computes it for a
/// self-signed root or with its issuer among `issuers` (PEM): what a central system expects
/// in `GetInstalledCertificateIds` and sends in `DeleteCertificate`.
pub fn certificate_hash_data(
    pem: &str,
    issuers: &[&str],
) -> Result<CertificateHashData, CertificateError> {
    let cert = Parsed::one(pem)?;
    let issuers = issuers
        .iter()
        .map(|p| Parsed::one(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(hash_data(&cert, &issuers, HashAlgorithm::Sha256))
}

/// The 2.x name of a certificate use (the 1.6 `CentralSystemRootCertificate` is the 2.x
/// `CSMSRootCertificate`).
pub(crate) fn normalize_kind(kind: &str) -> &str {
    match kind {
        "CentralSystemRootCertificate" => "CSMSRootCertificate",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str) -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key)
    }

    #[test]
    fn the_file_store_keeps_what_it_was_given_across_opens_and_bounds_it() {
        let dir = std::env::temp_dir().join(format!("ocpp-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (pem, _) = ca("Root A");
        let parsed = Parsed::one(&pem).unwrap();
        let mut store = FileCertificateStore::open(&dir).unwrap();
        let cert = StoredCertificate {
            kind: "CSMSRootCertificate".into(),
            fingerprint: parsed.fingerprint(),
            pem: pem.clone(),
        };
        store.install(cert.clone()).unwrap();
        store.set_pending_key(Some("KEY".into())).unwrap();
        let again = FileCertificateStore::open(&dir).unwrap();
        assert_eq!(again.certificates(), vec![cert.clone()]);
        assert_eq!(again.pending_key().as_deref(), Some("KEY"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("pending.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let too_long = StoredCertificate {
            pem: "x".repeat(MAX_CERTIFICATE_PEM + 1),
            fingerprint: "ab".into(),
            ..cert.clone()
        };
        assert_eq!(
            store.install(too_long),
            Err(CertificateStoreError::TooLong(MAX_CERTIFICATE_PEM + 1))
        );
        for i in 0..MAX_CERTIFICATES - 1 {
            let mut c = cert.clone();
            c.fingerprint = format!("{i:04x}");
            store.install(c).unwrap();
        }
        let mut c = cert.clone();
        c.fingerprint = "ffff".into();
        assert_eq!(store.install(c), Err(CertificateStoreError::Full));
        assert!(store.remove(&cert.fingerprint).unwrap());
        assert!(!store.remove(&cert.fingerprint).unwrap());
        let again = FileCertificateStore::open(&dir).unwrap();
        assert_eq!(again.certificates().len(), MAX_CERTIFICATES - 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hash_data_of_a_root_uses_its_own_name_and_key() {
        let (pem, key) = ca("Root B");
        let h = certificate_hash_data(&pem, &[]).unwrap();
        let p = Parsed::one(&pem).unwrap();
        assert_eq!(h.hash_algorithm, HashAlgorithm::Sha256);
        assert_eq!(
            h.issuer_name_hash,
            hex(&sha2::Sha256::digest(&p.subject_raw))
        );
        assert_eq!(
            h.issuer_key_hash,
            hex(&sha2::Sha256::digest(key.public_key_raw()))
        );
        assert!(!h.serial_number.starts_with('0') || h.serial_number == "0");
        let mut upper = h.clone();
        upper.issuer_key_hash = upper.issuer_key_hash.to_ascii_uppercase();
        upper.serial_number = format!("00{}", upper.serial_number);
        assert!(h.matches(&upper));
        assert!(matches!(
            certificate_hash_data("garbage", &[]),
            Err(CertificateError::Unreadable(_))
        ));
    }
}
