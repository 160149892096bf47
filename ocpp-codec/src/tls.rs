//! TLS pieces both sides share (feature `tls`): the OCPP security profiles' cipher suites and
//! protocol versions, PEM loading, and the error type of a TLS configuration. The server
//! (`ocpp-central`) and the charger client (`ocpp-charger`) build their rustls configurations
//! from these, so both speak exactly the same TLS.

use std::path::{Path, PathBuf};

pub use rustls;
use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built or a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM data is malformed.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// The PEM data holds no certificate.
    #[error("no certificate in the PEM data")]
    NoCertificate,
    /// The PEM data holds no private key.
    #[error("no private key in the PEM data")]
    NoKey,
    /// rustls refused the certificate or key (an unsupported key type, a key that does not
    /// belong to the certificate).
    #[error("certificate or key refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// A CA certificate could not be used as a trust anchor (or to verify client
    /// certificates).
    #[error("CA certificate refused: {0}")]
    Ca(String),
    /// A server name for SNI is not a DNS name.
    #[error("not a DNS name for SNI: {0:?}")]
    ServerName(String),
}

/// The crypto provider of the server and the charger client: rustls' `ring` provider (it
/// builds with a C compiler alone) limited to the OCPP security profiles' cipher suites:
/// TLS 1.3 `TLS_AES_256_GCM_SHA384` and `TLS_AES_128_GCM_SHA256`; TLS 1.2
/// `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`,
/// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384` and `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
/// (The specifications also name `TLS_RSA_WITH_AES_*_GCM_*`, static RSA key exchange without
/// forward secrecy, which rustls does not implement; RSA certificates are served with the
/// ECDHE_RSA suites instead.) Nothing older than TLS 1.2 exists in rustls.
pub fn crypto_provider() -> CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as cs, default_provider};
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        ..default_provider()
    }
}

/// TLS 1.3 and TLS 1.2, nothing older.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The contents of the file at `path` (PEM data).
pub fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in `pem`, in order (a chain: the end-entity certificate first).
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key in `pem` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey,
        e => TlsError::Pem(e.to_string()),
    })
}

/// A root store holding every certificate in `pem`.
pub fn root_store_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_pem(pem)? {
        roots.add(cert).map_err(|e| TlsError::Ca(e.to_string()))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_named() {
        assert!(matches!(
            certificates_from_pem(b""),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            private_key_from_pem(b"junk"),
            Err(TlsError::NoKey)
        ));
        assert!(matches!(
            certificates_from_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(TlsError::Pem(_))
        ));
        assert!(matches!(
            read_file(Path::new("/nonexistent/ocpp.pem")),
            Err(TlsError::Read { .. })
        ));
    }

    #[test]
    fn only_tls_1_2_and_1_3_with_the_profiles_suites() {
        assert_eq!(PROTOCOL_VERSIONS.len(), 2);
        assert_eq!(crypto_provider().cipher_suites.len(), 6);
    }
}
