//! A throwaway certificate authority for tests (feature `test-pki`): server certificates
//! for `localhost`/`127.0.0.1`, charger certificates whose subject CN is the identity (the
//! security profile 3 convention), an expired one, and as many unrelated CAs as needed.
//!
//! ```
//! use ocpp_central::testing::pki::Pki;
//! let ca = Pki::new("Test CSMS CA");
//! let server = ca.server(&["localhost", "127.0.0.1"]);
//! let cp1 = ca.client("CP1");
//! assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! assert_ne!(cp1.der, server.der);
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA (ECDSA P-256) that issues certificates.
#[derive(Debug)]
pub struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate, PEM (the trust anchor to give the other side).
    pub ca_pem: String,
}

/// A certificate the CA issued, with its key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl Pki {
    /// A new CA with subject CN `name`.
    ///
    /// # Panics
    ///
    /// When rcgen cannot make a key or a certificate (test code only).
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let ca_pem = issuer.pem();
        Pki { issuer, ca_pem }
    }

    fn issue(&self, mut params: CertificateParams, cn: &str) -> Issued {
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), CN the first name.
    pub fn server(&self, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cn = names.first().cloned().unwrap_or_default();
        let mut params = CertificateParams::new(names).expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, &cn)
    }

    /// A charger certificate: subject CN `identity`, for client authentication.
    pub fn client(&self, identity: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, identity)
    }

    /// A charger certificate for `identity` that expired on 2020-01-01.
    pub fn expired_client(&self, identity: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        self.issue(params, identity)
    }
}
