//! TLS of the WebSocket client: `wss://` for OCPP security profiles 2 (TLS + Basic auth) and
//! 3 (TLS with a client certificate), with rustls.
//!
//! [`ClientTls`] goes into [`ClientConfig::tls`](crate::ws::ClientConfig::tls); building one
//! needs the feature `tls`. The central system's certificate is verified against the given
//! CAs and the URL's host (SNI is the host name); only TLS 1.2 and 1.3, with the OCPP cipher
//! suites. A failed verification is reported as
//! [`ConnectError::InvalidServerCertificate`](crate::ws::ConnectError::InvalidServerCertificate),
//! which the station may report as the security event `InvalidCentralSystemCertificate`
//! (1.6) / `InvalidCsmsCertificate` (2.x); the driver reconnects with backoff as after any
//! failed attempt.
//!
//! ```no_run
//! # #[cfg(feature = "tls")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ocpp_charger::tls::ClientTls;
//! use ocpp_charger::ws::ClientConfig;
//! // Profile 3: the CSMS's CA and this station's certificate (CN = its identity).
//! let tls = ClientTls::from_ca_file("ca.pem")?
//!     .with_client_certificate_files("station.pem", "station.key")?;
//! let config = ClientConfig::new("wss://csms.example.com/ocpp").tls(tls);
//! # let _ = config;
//! # Ok(()) }
//! # #[cfg(not(feature = "tls"))]
//! # fn main() {}
//! ```

use std::fmt;
#[cfg(feature = "tls")]
use std::path::Path;
#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
pub use tokio_rustls::rustls;

/// The client's TLS configuration ([`ClientConfig::tls`](crate::ws::ClientConfig::tls));
/// cheap to clone. Built with the feature `tls`.
#[derive(Clone)]
pub struct ClientTls {
    #[cfg(feature = "tls")]
    pub(crate) config: Arc<rustls::ClientConfig>,
    #[cfg(feature = "tls")]
    roots: Arc<rustls::RootCertStore>,
    _private: (),
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

#[cfg(feature = "tls")]
use ocpp_codec::tls::{certificates_from_pem as certificates, read_file as read};
#[cfg(feature = "tls")]
pub use ocpp_codec::tls::{crypto_provider, TlsError};

#[cfg(feature = "tls")]
impl ClientTls {
    /// Trusts the CA certificates in `pem` (and nothing else).
    pub fn from_ca_pem(pem: &[u8]) -> Result<ClientTls, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(pem)? {
            roots.add(cert).map_err(|e| TlsError::Ca(e.to_string()))?;
        }
        ClientTls::from_roots(roots)
    }

    /// [`from_ca_pem`](Self::from_ca_pem) from a PEM file.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<ClientTls, TlsError> {
        ClientTls::from_ca_pem(&read(path.as_ref())?)
    }

    /// Trusts `roots`; no client certificate (security profile 2).
    pub fn from_roots(roots: rustls::RootCertStore) -> Result<ClientTls, TlsError> {
        let roots = Arc::new(roots);
        let config = builder()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(ClientTls {
            config: Arc::new(config),
            roots,
            _private: (),
        })
    }

    /// Presents `cert_pem` (chain, end-entity first) with `key_pem` to the central system
    /// (security profile 3), keeping the trusted CAs.
    pub fn with_client_certificate(
        self,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<ClientTls, TlsError> {
        use rustls_pki_types::pem::PemObject;
        let chain = certificates(cert_pem)?;
        let key =
            rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
                rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey,
                e => TlsError::Pem(e.to_string()),
            })?;
        let config = builder()?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(chain, key)?;
        Ok(ClientTls {
            config: Arc::new(config),
            roots: self.roots,
            _private: (),
        })
    }

    /// [`with_client_certificate`](Self::with_client_certificate) from PEM files.
    pub fn with_client_certificate_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ClientTls, TlsError> {
        let (cert, key) = (read(cert.as_ref())?, read(key.as_ref())?);
        self.with_client_certificate(&cert, &key)
    }

    /// Whether it was built from trusted CAs (not [`from_config`](Self::from_config)), so
    /// that a client certificate can be put in (the driver does, with the station's own
    /// certificate, feature `certificates`).
    pub(crate) fn has_roots(&self) -> bool {
        !self.roots.is_empty()
    }

    /// A rustls configuration of your own (other roots, a certificate resolver, other
    /// versions); the other constructors give TLS 1.2 and 1.3 with [`crypto_provider`].
    pub fn from_config(config: Arc<rustls::ClientConfig>) -> ClientTls {
        ClientTls {
            config,
            roots: Arc::new(rustls::RootCertStore::empty()),
            _private: (),
        }
    }
}

#[cfg(feature = "tls")]
fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, TlsError>
{
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(crypto_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?,
    )
}
