//! Throwaway certificate authorities for TLS tests: a CA and server certificates made in
//! memory by the test, never committed keys.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::cluster::ClusterOptions;

pub struct Authority {
    /// The CA certificate, PEM: what a client's `sslrootcert` file holds.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate valid for `names` only (DNS names or IP addresses), and its
    /// key, both PEM.
    pub fn server_certificate(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )
        .expect("server certificate parameters");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        (certificate.pem(), key.serialize_pem())
    }
}

impl ClusterOptions {
    /// TLS on with `certificate`/`key`, and only TLS connections admitted over TCP
    /// (`hostssl`, trust); the Unix socket stays open for `psql`.
    pub fn tls_only(self, certificate: String, key: String) -> Self {
        self.setting("ssl = on")
            .setting("ssl_cert_file = 'server.crt'")
            .setting("ssl_key_file = 'server.key'")
            .hba(
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 hostssl all all ::1/128 trust\n",
            )
            .file("server.crt", certificate)
            .file("server.key", key)
    }
}
