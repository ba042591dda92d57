//! A PostgreSQL URL with libpq's TLS parameters, for the service's connections and its
//! migrations alike.
//!
//! tokio-postgres knows `sslmode=disable|prefer|require` and never verifies a certificate
//! itself (its URL parser rejects `verify-ca`, `verify-full` and `sslrootcert`), so those two
//! parameters are taken out of the URL here and turned into the rustls verifier of the
//! connection, with libpq's meaning:
//!
//! | `sslmode` | TLS | certificate chain | host name |
//! |---|---|---|---|
//! | `disable` | never | – | – |
//! | `prefer` (default) | if the server offers it | checked only with a `sslrootcert` file | no |
//! | `require` | always | checked only with a `sslrootcert` file (libpq: "as verify-ca") | no |
//! | `verify-ca` | always | against `sslrootcert` | no |
//! | `verify-full` | always | against `sslrootcert` | must match the URL's host |
//!
//! `sslrootcert=<file>` is a PEM bundle (e.g. the RDS CA bundle); `sslrootcert=system` is the
//! operating system's trust store and, as in libpq, implies `verify-full` and refuses weaker
//! modes. `verify-ca` and `verify-full` need a `sslrootcert` (libpq would look for
//! `~/.postgresql/root.crt`; the service has no home directory, so it says so instead).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use secrecy::SecretString;

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, StoreError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::database(format!(
                    "invalid database URL: sslmode={other:?} is not one of disable, prefer, \
                     require, verify-ca, verify-full"
                )));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    File(PathBuf),
    System,
}

/// A parsed PostgreSQL URL: the connection settings for tokio-postgres and how to check the
/// server's certificate. Holds the password (inside `config`); never printed.
pub struct Target {
    /// Everything but TLS, with `sslmode` reduced to what tokio-postgres negotiates.
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    pub root_cert: Option<RootCert>,
    /// The URL without `sslmode`/`sslrootcert`, for [`Target::sqlx_url`].
    rest: SecretString,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ssl_mode = None;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for piece in query.split('&').filter(|piece| !piece.is_empty()) {
            let (key, value) = url::form_urlencoded::parse(piece.as_bytes())
                .next()
                .unwrap_or_default();
            match key.as_ref() {
                "sslmode" => ssl_mode = Some(SslMode::parse(&value)?),
                "sslrootcert" if value.as_ref() == "system" => root_cert = Some(RootCert::System),
                "sslrootcert" => root_cert = Some(RootCert::File(PathBuf::from(value.as_ref()))),
                _ => kept.push(piece),
            }
        }
        let ssl_mode = effective_mode(ssl_mode, root_cert.as_ref())?;
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let wire = match ssl_mode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            _ => "require",
        };
        let separator = if kept.is_empty() { '?' } else { '&' };
        let config = format!("{rest}{separator}sslmode={wire}")
            .parse()
            .map_err(|error| StoreError::database_by("invalid database URL", error))?;
        Ok(Self {
            config,
            ssl_mode,
            root_cert,
            rest: SecretString::from(rest),
        })
    }

    /// Whether the certificate chain is checked against the trusted CAs.
    pub fn verifies_chain(&self) -> bool {
        match self.ssl_mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Prefer | SslMode::Require => {
                matches!(self.root_cert, Some(RootCert::File(_)))
            }
            SslMode::Disable => false,
        }
    }

    /// The rustls configuration that checks the server as `sslmode`/`sslrootcert` ask. Reads
    /// the CA file each time (it may be a mounted, updated bundle).
    pub fn tls_config(&self) -> Result<rustls::ClientConfig, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| StoreError::database_by("TLS set-up failed", error))?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.verifies_chain() {
            let roots = match &self.root_cert {
                Some(root) => load_roots(root)?,
                None => unreachable!("verify modes without sslrootcert are refused by parse"),
            };
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| StoreError::database_by("TLS set-up failed", error))?;
            if self.ssl_mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        } else {
            Arc::new(EncryptOnly(provider))
        };
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }

    /// The same settings for sqlx (the migrator), whose TLS differs from libpq's: it trusts
    /// its built-in roots besides the `sslrootcert` file, knows no `sslrootcert=system` (it
    /// then uses the Mozilla roots of webpki-roots), checks no chain under `require`, and its
    /// `verify-ca` (0.8.6) refuses a host name mismatch that rustls now reports as
    /// `NotValidForNameContext`, i.e. behaves as `verify-full`. So sqlx gets `verify-full`
    /// where the service has it, and `require` (encryption) for the modes that check the
    /// chain only; in every mode the service's own check ([`crate::postgres::probe`]) runs
    /// against the same server first.
    pub fn sqlx_url(&self) -> SecretString {
        let mode = match self.ssl_mode {
            SslMode::VerifyCa => SslMode::Require,
            mode => mode,
        };
        let rest: &str = secrecy::ExposeSecret::expose_secret(&self.rest);
        let separator = if rest.contains('?') { '&' } else { '?' };
        let mut url = format!("{rest}{separator}sslmode={}", mode.as_str());
        if let (SslMode::VerifyFull, Some(RootCert::File(path))) = (mode, &self.root_cert) {
            url.push_str("&sslrootcert=");
            url.extend(url::form_urlencoded::byte_serialize(
                path.to_string_lossy().as_bytes(),
            ));
        }
        SecretString::from(url)
    }
}

/// libpq's rules for the mode: `prefer` by default, `verify-full` by default with
/// `sslrootcert=system` (which refuses weaker modes), and verification needs a root.
fn effective_mode(
    given: Option<SslMode>,
    root_cert: Option<&RootCert>,
) -> Result<SslMode, StoreError> {
    match (given, root_cert) {
        (None, Some(RootCert::System)) => Ok(SslMode::VerifyFull),
        (Some(mode), Some(RootCert::System)) if mode != SslMode::VerifyFull => {
            Err(StoreError::database(format!(
                "invalid database URL: weak sslmode={} may not be used with \
                 sslrootcert=system (use verify-full)",
                mode.as_str()
            )))
        }
        (Some(mode @ (SslMode::VerifyCa | SslMode::VerifyFull)), None) => {
            Err(StoreError::database(format!(
                "invalid database URL: sslmode={} needs sslrootcert=<CA bundle file> or \
                 sslrootcert=system",
                mode.as_str()
            )))
        }
        (given, _) => Ok(given.unwrap_or(SslMode::Prefer)),
    }
}

fn load_roots(root: &RootCert) -> Result<RootCertStore, StoreError> {
    let mut roots = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            let what = || format!("cannot read the CA bundle sslrootcert={}", path.display());
            let pem =
                std::fs::read(path).map_err(|error| StoreError::database_by(what(), error))?;
            for certificate in CertificateDer::pem_slice_iter(&pem) {
                let certificate =
                    certificate.map_err(|error| StoreError::database_by(what(), error))?;
                roots
                    .add(certificate)
                    .map_err(|error| StoreError::database_by(what(), error))?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(StoreError::database(format!(
            "no CA certificate found in sslrootcert={}",
            match root {
                RootCert::File(path) => path.display().to_string(),
                RootCert::System => "system".to_owned(),
            }
        )));
    }
    Ok(roots)
}

/// `verify-ca` (and `require` with a CA file): the chain must lead to a trusted CA, the host
/// name is not compared. The chain is checked before the name, so a name mismatch means the
/// chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA file: the connection is encrypted and the server
/// certificate is not checked against a CA (libpq does not either). Signatures in the
/// handshake are still verified, so the session keys belong to whoever holds the
/// certificate's key.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(url: &str) -> Result<Target, StoreError> {
        Target::parse(url)
    }

    #[test]
    fn libpq_modes_parse_and_verify_modes_are_not_rejected() {
        let target =
            parse("postgres://u:p@db.example:5432/tasks?sslmode=verify-full&sslrootcert=/ca.pem")
                .unwrap();
        assert_eq!(target.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            target.root_cert,
            Some(RootCert::File(PathBuf::from("/ca.pem")))
        );
        assert_eq!(
            target.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(target.config.get_password(), Some(&b"p"[..]));
        assert!(target.verifies_chain());
        let default = parse("postgres://u@db/tasks?application_name=x").unwrap();
        assert_eq!(default.ssl_mode, SslMode::Prefer);
        assert_eq!(default.config.get_application_name(), Some("x"));
        assert!(!default.verifies_chain());
        assert!(
            parse("postgres://u@db/tasks?sslmode=require&sslrootcert=/ca.pem")
                .unwrap()
                .verifies_chain(),
            "libpq: require with a CA file behaves as verify-ca"
        );
        assert_eq!(
            parse("postgres://u@db/tasks?sslrootcert=system")
                .unwrap()
                .ssl_mode,
            SslMode::VerifyFull
        );
    }

    #[test]
    fn unsafe_or_unknown_combinations_are_refused_without_printing_the_password() {
        for url in [
            "postgres://u:hunter2@db/tasks?sslmode=verify-full",
            "postgres://u:hunter2@db/tasks?sslmode=verify-ca",
            "postgres://u:hunter2@db/tasks?sslmode=require&sslrootcert=system",
            "postgres://u:hunter2@db/tasks?sslmode=allow",
            "postgres://u:hunter2@db/tasks?sslmode=verify_full",
        ] {
            let error = parse(url).err().unwrap_or_else(|| panic!("{url} accepted"));
            let text = crate::error_chain(&error);
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.contains("sslmode") || text.contains("sslrootcert"),
                "{text}"
            );
        }
    }

    #[test]
    fn sqlx_gets_a_mode_that_checks_at_least_as_much() {
        let sqlx = |url: &str| parse(url).unwrap().sqlx_url().expose_secret().to_owned();
        assert_eq!(
            sqlx(
                "postgres://u:p@db/t?sslmode=verify-full&sslrootcert=/etc/rds%20ca.pem&application_name=x"
            ),
            "postgres://u:p@db/t?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Frds+ca.pem"
        );
        assert_eq!(
            sqlx("postgres://u:p@db/t?sslmode=require&sslrootcert=/ca.pem"),
            "postgres://u:p@db/t?sslmode=require"
        );
        assert_eq!(
            sqlx("postgres://u:p@db/t?sslmode=verify-ca&sslrootcert=/ca.pem"),
            "postgres://u:p@db/t?sslmode=require"
        );
        assert_eq!(
            sqlx("postgres://u:p@db/t?sslrootcert=system"),
            "postgres://u:p@db/t?sslmode=verify-full"
        );
        assert_eq!(
            sqlx("postgres://u:p@db/t"),
            "postgres://u:p@db/t?sslmode=prefer"
        );
    }
}
