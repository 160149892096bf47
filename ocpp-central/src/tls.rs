//! TLS for the WebSocket server (feature `tls`): OCPP security profiles 2 and 3, with rustls.
//!
//! - **Profile 2** (TLS + Basic auth): a [`ServerTls`] from a PEM certificate chain and key,
//!   together with [`Auth::Basic`](crate::Auth::Basic).
//! - **Profile 3** (TLS with client certificates): the same, plus a client CA
//!   ([`ServerTlsBuilder::client_ca_pem`]). A charger without a certificate, or with one
//!   that is expired or not issued by the client CA, is refused during the TLS handshake (no
//!   HTTP answer: the handshake fails with a TLS alert). A verified certificate is then bound
//!   to the identity in the URL ([`CertificateBinding`], by default: its subject CN must
//!   equal the identity, as the specifications describe the charging station certificate);
//!   a certificate for another identity is answered `403 Forbidden` before the WebSocket
//!   upgrade. [`Admission::peer`](crate::Admission::peer) sees the verified certificate
//!   ([`PeerCertificate`]).
//!
//! Only TLS 1.2 and 1.3, with the cipher suites of the OCPP security profiles
//! ([`crypto_provider`]). The TLS handshake runs inside the server's handshake timeout and
//! counts against its connection and handshake bounds, like the WebSocket handshake.
//!
//! Certificates are served by name (SNI, [`ServerTlsBuilder::sni`]) with a default for
//! other names, and can be replaced while the server runs ([`TlsAcceptorHandle::reload`]):
//! new handshakes use the new certificate, established connections keep theirs.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ocpp_central::tls::ServerTls;
//! use ocpp_central::{Auth, ServerConfig};
//! // Profile 3: client certificates issued by ca.pem, CN = identity.
//! let tls = ServerTls::from_pem_files("server.pem", "server.key")?
//!     .client_ca_file("ca.pem")?
//!     .build()?;
//! let handle = tls.handle(); // handle.reload_from_files(..) on SIGHUP
//! let config = ServerConfig::new(Auth::AllowAnyone).tls(tls);
//! # let _ = (handle, config);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
pub use tokio_rustls::rustls;

pub use crate::server::PeerCertificate;

use ocpp_codec::tls::read_file as read;
pub use ocpp_codec::tls::{
    certificates_from_pem, crypto_provider, private_key_from_pem, root_store_from_pem, TlsError,
    PROTOCOL_VERSIONS,
};

fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates_from_pem(cert_pem)?;
    let key = private_key_from_pem(key_pem)?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, provider)?))
}

/// The certificates the server presents: one per SNI name, and a default.
#[derive(Debug)]
struct Certificates {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

/// Picks the certificate of a handshake by its SNI name; replaceable while serving.
#[derive(Debug)]
struct Resolver {
    certificates: RwLock<Arc<Certificates>>,
}

impl Resolver {
    fn current(&self) -> Arc<Certificates> {
        self.certificates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Certificates)) {
        let mut guard = self.certificates.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Certificates {
            default: guard.default.clone(),
            by_name: guard.by_name.clone(),
        };
        f(&mut next);
        *guard = Arc::new(next);
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certificates = self.current();
        let named = hello
            .server_name()
            .and_then(|name| certificates.by_name.get(&name.to_ascii_lowercase()));
        Some(named.unwrap_or(&certificates.default).clone())
    }
}

fn sni_name(name: &str) -> Result<String, TlsError> {
    rustls_pki_types::DnsName::try_from(name).map_err(|_| TlsError::ServerName(name.to_owned()))?;
    Ok(name.to_ascii_lowercase())
}

/// Replaces the certificates of a running server ([`ServerTls::handle`]; cheap to clone).
/// A handshake after a call sees the new certificate; established connections keep theirs.
#[derive(Clone)]
pub struct TlsAcceptorHandle {
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for TlsAcceptorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptorHandle").finish_non_exhaustive()
    }
}

impl TlsAcceptorHandle {
    /// Replaces the default certificate (chain, end-entity first) and its key. On an error
    /// the certificate in use stays.
    pub fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsError> {
        let key = certified_key(cert_pem, key_pem, &self.provider)?;
        self.resolver.update(|c| c.default = key);
        Ok(())
    }

    /// [`reload`](Self::reload) from PEM files.
    pub fn reload_from_files(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), TlsError> {
        self.reload(&read(cert.as_ref())?, &read(key.as_ref())?)
    }

    /// Serves `cert_pem` to handshakes naming `name` (SNI), adding or replacing it.
    pub fn set_for_name(
        &self,
        name: &str,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<(), TlsError> {
        let name = sni_name(name)?;
        let key = certified_key(cert_pem, key_pem, &self.provider)?;
        self.resolver.update(|c| {
            c.by_name.insert(name, key);
        });
        Ok(())
    }

    /// Stops serving a certificate of its own to `name` (it gets the default); whether there
    /// was one.
    pub fn remove_name(&self, name: &str) -> bool {
        let mut removed = false;
        self.resolver.update(|c| {
            removed = c.by_name.remove(&name.to_ascii_lowercase()).is_some();
        });
        removed
    }

    /// The end-entity certificate served by default, DER.
    pub fn default_certificate(&self) -> Vec<u8> {
        self.resolver
            .current()
            .default
            .cert
            .first()
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }
}

/// How a verified client certificate is bound to the identity in the URL (profile 3). A
/// certificate that does not fit is answered `403 Forbidden` before the WebSocket upgrade.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum CertificateBinding {
    /// The subject's commonName equals the identity (the default: the specifications have the
    /// charging station certificate's CN be the station's serial number, its identity).
    #[default]
    CommonName,
    /// Any certificate of the client CA may connect as any identity (a CA per charger, or an
    /// [`Admission::peer`](crate::Admission::peer) check instead).
    AnyIdentity,
    /// Decided by a function of the identity and the certificate (e.g. CN and the subject's
    /// organizationName, as the 1.6 security whitepaper also asks).
    Custom(Arc<BindFn>),
}

/// A [`CertificateBinding::Custom`] check: whether the certificate may connect as the
/// identity.
pub type BindFn = dyn Fn(&str, &PeerCertificate) -> bool + Send + Sync;

impl CertificateBinding {
    /// Whether `certificate` may connect as `identity`.
    pub fn binds(&self, identity: &str, certificate: &PeerCertificate) -> bool {
        match self {
            CertificateBinding::CommonName => certificate.common_name() == Some(identity),
            CertificateBinding::AnyIdentity => true,
            CertificateBinding::Custom(f) => f(identity, certificate),
        }
    }
}

impl fmt::Debug for CertificateBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateBinding::CommonName => f.write_str("CommonName"),
            CertificateBinding::AnyIdentity => f.write_str("AnyIdentity"),
            CertificateBinding::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The server's TLS: give it to [`ServerConfig::tls`](crate::ServerConfig::tls); the
/// listener then speaks `wss://` only.
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    handle: TlsAcceptorHandle,
    pub(crate) client_certificates: bool,
    pub(crate) binding: CertificateBinding,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_certificates", &self.client_certificates)
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A builder serving `cert_pem` (the chain, end-entity first) with `key_pem`.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerTlsBuilder, TlsError> {
        let provider = Arc::new(crypto_provider());
        let default = certified_key(cert_pem, key_pem, &provider)?;
        Ok(ServerTlsBuilder {
            provider,
            default,
            by_name: HashMap::new(),
            client_roots: None,
            binding: CertificateBinding::default(),
        })
    }

    /// [`from_pem`](Self::from_pem) with PEM files.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ServerTlsBuilder, TlsError> {
        ServerTls::from_pem(&read(cert.as_ref())?, &read(key.as_ref())?)
    }

    /// The handle that replaces certificates while the server runs.
    pub fn handle(&self) -> TlsAcceptorHandle {
        self.handle.clone()
    }

    /// Whether chargers must present a client certificate (profile 3).
    pub fn requires_client_certificates(&self) -> bool {
        self.client_certificates
    }
}

/// Builds a [`ServerTls`].
pub struct ServerTlsBuilder {
    provider: Arc<CryptoProvider>,
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
    client_roots: Option<RootCertStore>,
    binding: CertificateBinding,
}

impl fmt::Debug for ServerTlsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsBuilder")
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .field("client_certificates", &self.client_roots.is_some())
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

impl ServerTlsBuilder {
    /// Serves another certificate to handshakes naming `name` (SNI); others get the default.
    pub fn sni(mut self, name: &str, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let key = certified_key(cert_pem, key_pem, &self.provider)?;
        self.by_name.insert(sni_name(name)?, key);
        Ok(self)
    }

    /// Security profile 3: chargers must present a certificate issued by one of these CAs.
    pub fn client_roots(mut self, roots: RootCertStore) -> Self {
        self.client_roots = Some(roots);
        self
    }

    /// [`client_roots`](Self::client_roots) from the CA certificates in `pem`.
    pub fn client_ca_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        Ok(self.client_roots(root_store_from_pem(pem)?))
    }

    /// [`client_roots`](Self::client_roots) from a PEM file.
    pub fn client_ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        self.client_ca_pem(&read(path.as_ref())?)
    }

    /// How a client certificate is bound to the identity (default
    /// [`CertificateBinding::CommonName`]).
    pub fn binding(mut self, binding: CertificateBinding) -> Self {
        self.binding = binding;
        self
    }

    /// The configuration: TLS 1.2 and 1.3 with the OCPP cipher suites ([`crypto_provider`]).
    pub fn build(self) -> Result<ServerTls, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(PROTOCOL_VERSIONS)?;
        let client_certificates = self.client_roots.is_some();
        let builder = match self.client_roots {
            Some(roots) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    self.provider.clone(),
                )
                .build()
                .map_err(|e| TlsError::Ca(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let resolver = Arc::new(Resolver {
            certificates: RwLock::new(Arc::new(Certificates {
                default: self.default,
                by_name: self.by_name,
            })),
        });
        let config = builder.with_cert_resolver(resolver.clone());
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            handle: TlsAcceptorHandle {
                resolver,
                provider: self.provider,
            },
            client_certificates,
            binding: self.binding,
        })
    }
}
