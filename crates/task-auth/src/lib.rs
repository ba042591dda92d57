//! Bearer-token authentication for the Task API: OIDC discovery and the JWKS through
//! `openidconnect`, a kid-indexed key set, RS256/ES256 verification with `jsonwebtoken`, a
//! bounded cache of verified tokens, and a dev mode that signs its own tokens.
//!
//! The hot path never touches the network: keys are loaded at startup and refetched only
//! when a token names a key id that is not known yet, at most once per
//! [`OidcSettings::jwks_refresh_min_interval`] and by one request at a time.

mod cache;
mod keys;
mod remote;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::cache::{TokenCache, VerifiedToken, unix_now};
use crate::keys::{KeySet, RsaSigningKey, VerificationKey};
use crate::remote::{FetchError, Issuer, discovery_url, parse_endpoint};

/// Issuer (`iss`) of the tokens dev mode signs.
pub const DEV_ISSUER: &str = "urn:task-api:dev-mode";
/// Audience (`aud`) of the tokens dev mode signs.
pub const DEV_AUDIENCE: &str = "task-api";
/// Lifetime of a dev-mode token; the signing key only lives as long as the process anyway.
pub const DEV_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const DEV_KEY_ID: &str = "task-api-dev-mode";

/// Accepted clock skew for `exp`/`nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Minimum interval between two unknown-kid JWKS refetches unless configured otherwise.
pub const DEFAULT_JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Verified tokens kept in memory at most (each entry is about a hundred bytes).
const TOKEN_CACHE_ENTRIES: u64 = 65_536;
/// Tokens longer than this are refused before any parsing or hashing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// OpenID Connect Core 1.0 §2: `sub` "MUST NOT exceed 255 ASCII characters in length".
const MAX_SUBJECT_BYTES: usize = 255;

/// The authenticated caller: the token's `sub` claim. Tasks belong to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(pub String);

/// Why a request was not authenticated. Every variant maps to 401; the message is safe to
/// show to the client (it never contains the token).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header")]
    MissingCredentials,
    #[error("Authorization header is not a Bearer token")]
    WrongScheme,
    #[error("invalid bearer token: {0}")]
    InvalidToken(TokenRejection),
}

impl AuthError {
    /// A short, fixed label for the `reason` of `task_api_auth_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::WrongScheme => "wrong_scheme",
            AuthError::InvalidToken(rejection) => rejection.reason(),
        }
    }
}

/// Which check refused a bearer token. The messages are fixed strings that are safe to show
/// to clients; [`TokenRejection::reason`] groups them into the metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("not a well-formed JWT")]
    Malformed,
    #[error("signature algorithm not accepted")]
    UnsupportedAlgorithm,
    #[error("signature algorithm does not match the key")]
    AlgorithmMismatch,
    #[error("token header has no kid")]
    MissingKeyId,
    #[error("signing key is not published by the issuer")]
    UnknownKeyId,
    #[error("signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued by another issuer")]
    WrongIssuer,
    #[error("token is meant for another audience")]
    WrongAudience,
    #[error("token has no sub claim")]
    MissingSubject,
    #[error("token lacks a required claim (exp, iss, aud)")]
    MissingClaim,
    #[error("token sub claim is empty or too long")]
    InvalidSubject,
}

impl TokenRejection {
    /// The `reason` label: several checks share one (e.g. every claim-shape problem is
    /// `claims`), so that the metric stays small and stable.
    pub fn reason(self) -> &'static str {
        match self {
            TokenRejection::Malformed => "malformed",
            TokenRejection::UnsupportedAlgorithm | TokenRejection::AlgorithmMismatch => "algorithm",
            TokenRejection::MissingKeyId | TokenRejection::UnknownKeyId => "unknown_key",
            TokenRejection::BadSignature => "signature",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not_yet_valid",
            TokenRejection::WrongIssuer => "issuer",
            TokenRejection::WrongAudience => "audience",
            TokenRejection::MissingSubject
            | TokenRejection::MissingClaim
            | TokenRejection::InvalidSubject => "claims",
        }
    }
}

impl From<TokenRejection> for AuthError {
    fn from(rejection: TokenRejection) -> Self {
        AuthError::InvalidToken(rejection)
    }
}

/// Why the authenticator could not be built (startup, not per request).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("OIDC discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    #[error("invalid OIDC configuration: {0}")]
    Config(String),
}

#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer_url: String,
    pub audience: String,
    /// Accepted clock skew for exp/nbf.
    pub leeway: Duration,
    /// Minimum interval between two JWKS refetches triggered by unknown kids.
    pub jwks_refresh_min_interval: Duration,
}

impl OidcSettings {
    /// Settings with the default leeway and refetch interval.
    pub fn new(issuer_url: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer_url: issuer_url.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
            jwks_refresh_min_interval: DEFAULT_JWKS_REFRESH_MIN_INTERVAL,
        }
    }
}

/// How long startup keeps trying to reach an issuer that does not answer (yet), e.g. while
/// the identity provider and the service roll out together.
#[derive(Debug, Clone)]
pub struct StartupRetry {
    /// Total time after which startup gives up with [`SetupError::Discovery`].
    pub deadline: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for StartupRetry {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Verifies bearer tokens. Cheap to clone (shared state inside); no network call per request.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    keys: RwLock<Arc<KeySet>>,
    rs256: Validation,
    es256: Validation,
    verified: TokenCache,
    source: KeySource,
}

enum KeySource {
    Dev { signer: Box<RsaSigningKey> },
    Remote(Refresher),
}

/// Refetches the JWKS when a token names an unknown kid: one fetch at a time (the mutex), and
/// no more than once per `min_interval` whatever the number of such tokens.
struct Refresher {
    issuer: Issuer,
    min_interval: Duration,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: u64,
    iss: String,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Authenticator")
            .field("issuer", &self.inner.issuer)
            .field("dev_mode", &self.is_dev_mode())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Production mode: discovers the issuer and loads its JWKS, retrying with
    /// [`StartupRetry::default`] (30 s) while the issuer does not answer, then fails with a
    /// message naming the discovery URL.
    pub async fn oidc(settings: OidcSettings) -> Result<Self, SetupError> {
        Self::oidc_with_retry(settings, StartupRetry::default()).await
    }

    /// [`Authenticator::oidc`] with an explicit startup retry budget.
    pub async fn oidc_with_retry(
        settings: OidcSettings,
        retry: StartupRetry,
    ) -> Result<Self, SetupError> {
        if settings.audience.trim().is_empty() {
            return Err(SetupError::Config(
                "OIDC_AUDIENCE must not be empty".to_owned(),
            ));
        }
        parse_endpoint(&settings.issuer_url, "OIDC_ISSUER_URL").map_err(SetupError::Config)?;
        let url = discovery_url(&settings.issuer_url);
        let started = Instant::now();
        let mut backoff = retry.initial_backoff;
        let mut attempts = 0_u32;
        loop {
            attempts += 1;
            let reason = match connect(&settings.issuer_url).await {
                Ok((issuer, keys)) => {
                    tracing::info!(
                        issuer = %settings.issuer_url,
                        jwks_uri = %issuer.jwks_uri,
                        keys = keys.len(),
                        "OIDC issuer discovered"
                    );
                    return Ok(Self::build(
                        &settings.issuer_url,
                        &settings.audience,
                        settings.leeway,
                        keys,
                        KeySource::Remote(Refresher {
                            issuer,
                            min_interval: settings.jwks_refresh_min_interval,
                            last_fetch: tokio::sync::Mutex::new(None),
                        }),
                    ));
                }
                Err(FetchError::Permanent(reason)) => {
                    return Err(SetupError::Discovery { url, reason });
                }
                Err(FetchError::Transient(reason)) => reason,
            };
            let elapsed = started.elapsed();
            if elapsed + backoff > retry.deadline {
                return Err(SetupError::Discovery {
                    url,
                    reason: format!(
                        "{reason} (gave up after {attempts} attempts in {:.1} s)",
                        elapsed.as_secs_f64()
                    ),
                });
            }
            tracing::warn!(%url, %reason, attempt = attempts, retry_in = ?backoff, "OIDC issuer not reachable yet");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(retry.max_backoff);
        }
    }

    /// Dev mode: a fresh local RSA key; returns the authenticator and a long-lived token for
    /// `subject` signed with it, to print for the developer.
    pub fn dev(subject: &str) -> (Self, String) {
        let signer = RsaSigningKey::generate();
        let mut keys = KeySet::new();
        keys.insert(DEV_KEY_ID.to_owned(), Arc::new(signer.verification_key()));
        let authenticator = Self::build(
            DEV_ISSUER,
            DEV_AUDIENCE,
            DEFAULT_LEEWAY,
            keys,
            KeySource::Dev {
                signer: Box::new(signer),
            },
        );
        let token = authenticator
            .dev_token(subject)
            .expect("a dev-mode authenticator always signs tokens");
        (authenticator, token)
    }

    /// In dev mode, a further token for `subject` (e.g. a second user to try isolation);
    /// `None` in production mode, which never signs anything.
    pub fn dev_token(&self, subject: &str) -> Option<String> {
        let KeySource::Dev { signer } = &self.inner.source else {
            return None;
        };
        let now = unix_now();
        let claims = serde_json::json!({
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + DEV_TOKEN_LIFETIME.as_secs(),
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(DEV_KEY_ID.to_owned());
        Some(
            jsonwebtoken::encode(&header, &claims, &signer.encoding)
                .expect("signing with a valid RSA key cannot fail"),
        )
    }

    /// Authenticates the raw `Authorization` header value (None when absent).
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Subject, AuthError> {
        let token = bearer_token(authorization)?;
        let digest = TokenCache::digest(token);
        if let Some(subject) = self.inner.verified.get(&digest) {
            return Ok(subject);
        }
        let verified = self.verify(token).await?;
        let subject = verified.subject.clone();
        self.inner.verified.insert(digest, verified);
        Ok(subject)
    }

    /// True in dev mode, so that the service can flag it loudly.
    pub fn is_dev_mode(&self) -> bool {
        matches!(self.inner.source, KeySource::Dev { .. })
    }

    fn build(
        issuer: &str,
        audience: &str,
        leeway: Duration,
        keys: KeySet,
        source: KeySource,
    ) -> Self {
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.leeway = leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.validate_aud = true;
            validation.set_issuer(&[issuer]);
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation
        };
        Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                keys: RwLock::new(Arc::new(keys)),
                rs256: validation(Algorithm::RS256),
                es256: validation(Algorithm::ES256),
                verified: TokenCache::new(TOKEN_CACHE_ENTRIES),
                source,
            }),
        }
    }

    async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        let (algorithm, kid) = peek_header(token)?;
        let key = self.key(&kid).await.ok_or(TokenRejection::UnknownKeyId)?;
        // The key alone decides the algorithm; the header may only agree with it.
        if algorithm != key.algorithm {
            return Err(TokenRejection::AlgorithmMismatch);
        }
        let validation = match key.algorithm {
            Algorithm::ES256 => &self.inner.es256,
            _ => &self.inner.rs256,
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|error| rejection_for(error.kind()))?;
        // jsonwebtoken accepts an `iss` array containing ours; an issuer is one string.
        if data.claims.iss != self.inner.issuer {
            return Err(TokenRejection::WrongIssuer);
        }
        let subject = data.claims.sub.ok_or(TokenRejection::MissingSubject)?;
        if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
            return Err(TokenRejection::InvalidSubject);
        }
        Ok(VerifiedToken {
            subject: Subject(subject),
            expires_at: data.claims.exp,
        })
    }

    fn current_keys(&self) -> Arc<KeySet> {
        Arc::clone(
            &self
                .inner
                .keys
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    async fn key(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        if let Some(key) = self.current_keys().get(kid) {
            return Some(Arc::clone(key));
        }
        let KeySource::Remote(refresher) = &self.inner.source else {
            return None;
        };
        self.refresh(refresher).await;
        self.current_keys().get(kid).cloned()
    }

    async fn refresh(&self, refresher: &Refresher) {
        let mut last_fetch = refresher.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < refresher.min_interval) {
            return;
        }
        // Counted before the outcome is known: a failing issuer is not retried faster.
        *last_fetch = Some(Instant::now());
        match refresher.issuer.fetch_keys().await {
            Ok(fresh) if fresh.is_empty() => {
                tracing::warn!(jwks_uri = %refresher.issuer.jwks_uri, "JWKS refetch returned no usable key; keeping the previous keys");
            }
            Ok(fresh) => {
                let previous = self.current_keys();
                let withdrawn = previous.keys().any(|kid| !fresh.contains_key(kid));
                let added: HashSet<&String> = fresh
                    .keys()
                    .filter(|kid| !previous.contains_key(*kid))
                    .collect();
                tracing::info!(jwks_uri = %refresher.issuer.jwks_uri, added = added.len(), withdrawn, "JWKS refetched");
                *self
                    .inner
                    .keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
                if withdrawn {
                    // Tokens verified with a withdrawn key must be checked again.
                    self.inner.verified.clear();
                }
            }
            Err(error) => {
                tracing::warn!(jwks_uri = %refresher.issuer.jwks_uri, %error, "JWKS refetch failed; keeping the previous keys");
            }
        }
    }
}

async fn connect(issuer_url: &str) -> Result<(Issuer, KeySet), FetchError> {
    let (issuer, keys) = Issuer::connect(issuer_url).await?;
    if keys.is_empty() {
        return Err(FetchError::Transient(format!(
            "JWKS at {} holds no usable RS256/ES256 signing key with a kid",
            issuer.jwks_uri
        )));
    }
    Ok((issuer, keys))
}

/// Extracts the token from `Bearer <token>` (scheme case-insensitive, RFC 9110 §11.1).
fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::MissingCredentials)?;
    let value = value.trim_ascii();
    let (scheme, rest) = match value.iter().position(|byte| *byte == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::WrongScheme);
    }
    let token = rest.trim_ascii();
    let well_formed = !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'='));
    if !well_formed {
        return Err(TokenRejection::Malformed.into());
    }
    std::str::from_utf8(token).map_err(|_| TokenRejection::Malformed.into())
}

/// Reads `alg` and `kid` from the header without trusting anything else in it. Only RS256
/// and ES256 get past this point; `none`, HMAC and everything else stop here.
fn peek_header(token: &str) -> Result<(Algorithm, String), TokenRejection> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: String,
        kid: Option<String>,
    }
    let mut parts = token.split('.');
    let (Some(encoded_header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRejection::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(encoded_header)
        .map_err(|_| TokenRejection::Malformed)?;
    let header: RawHeader =
        serde_json::from_slice(&header_json).map_err(|_| TokenRejection::Malformed)?;
    let algorithm = match header.alg.as_str() {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        _ => return Err(TokenRejection::UnsupportedAlgorithm),
    };
    let kid = header.kid.ok_or(TokenRejection::MissingKeyId)?;
    Ok((algorithm, kid))
}

fn rejection_for(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "sub" => TokenRejection::MissingSubject,
        ErrorKind::MissingRequiredClaim(_) => TokenRejection::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenRejection::AlgorithmMismatch
        }
        _ => TokenRejection::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels of `task_api_auth_failures_total` and the `detail` of the 401 problem are
    /// part of what operators and clients see: pinned here for every rejection.
    #[test]
    fn every_rejection_keeps_its_reason_and_client_message() {
        let expected = [
            (
                TokenRejection::Malformed,
                "malformed",
                "not a well-formed JWT",
            ),
            (
                TokenRejection::UnsupportedAlgorithm,
                "algorithm",
                "signature algorithm not accepted",
            ),
            (
                TokenRejection::AlgorithmMismatch,
                "algorithm",
                "signature algorithm does not match the key",
            ),
            (
                TokenRejection::MissingKeyId,
                "unknown_key",
                "token header has no kid",
            ),
            (
                TokenRejection::UnknownKeyId,
                "unknown_key",
                "signing key is not published by the issuer",
            ),
            (
                TokenRejection::BadSignature,
                "signature",
                "signature does not verify",
            ),
            (TokenRejection::Expired, "expired", "token has expired"),
            (
                TokenRejection::NotYetValid,
                "not_yet_valid",
                "token is not valid yet",
            ),
            (
                TokenRejection::WrongIssuer,
                "issuer",
                "token was issued by another issuer",
            ),
            (
                TokenRejection::WrongAudience,
                "audience",
                "token is meant for another audience",
            ),
            (
                TokenRejection::MissingSubject,
                "claims",
                "token has no sub claim",
            ),
            (
                TokenRejection::MissingClaim,
                "claims",
                "token lacks a required claim (exp, iss, aud)",
            ),
            (
                TokenRejection::InvalidSubject,
                "claims",
                "token sub claim is empty or too long",
            ),
        ];
        for (rejection, reason, message) in expected {
            let error = AuthError::from(rejection);
            assert_eq!(error.reason(), reason, "{rejection:?}");
            assert_eq!(
                error.to_string(),
                format!("invalid bearer token: {message}"),
                "{rejection:?}"
            );
        }
        assert_eq!(
            AuthError::MissingCredentials.reason(),
            "missing_credentials"
        );
        assert_eq!(AuthError::WrongScheme.reason(), "wrong_scheme");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer_token(Some(b"Bearer a.b.c")).unwrap(), "a.b.c");
        assert_eq!(bearer_token(Some(b"bearer   a.b.c ")).unwrap(), "a.b.c");
        assert!(matches!(
            bearer_token(None),
            Err(AuthError::MissingCredentials)
        ));
        assert!(matches!(
            bearer_token(Some(b"Basic dXNlcjpwdw==")),
            Err(AuthError::WrongScheme)
        ));
        assert!(matches!(
            bearer_token(Some(b"a.b.c")),
            Err(AuthError::WrongScheme)
        ));
        assert!(matches!(
            bearer_token(Some(b"Bearer")),
            Err(AuthError::InvalidToken(_))
        ));
        assert!(matches!(
            bearer_token(Some(b"Bearer ")),
            Err(AuthError::InvalidToken(_))
        ));
        assert!(matches!(
            bearer_token(Some(b"Bearer a b")),
            Err(AuthError::InvalidToken(_))
        ));
        assert!(matches!(
            bearer_token(Some(b"Bearer \xff\xfe.a.b")),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[tokio::test]
    async fn dev_mode_accepts_its_own_tokens_for_any_subject() {
        let (authenticator, token) = Authenticator::dev("developer");
        assert!(authenticator.is_dev_mode());
        let header = format!("Bearer {token}");
        let subject = authenticator
            .authenticate(Some(header.as_bytes()))
            .await
            .unwrap();
        assert_eq!(subject, Subject("developer".into()));
        let other = authenticator.dev_token("second").unwrap();
        let header = format!("Bearer {other}");
        let subject = authenticator
            .authenticate(Some(header.as_bytes()))
            .await
            .unwrap();
        assert_eq!(subject, Subject("second".into()));
    }

    #[tokio::test]
    async fn dev_tokens_of_another_process_are_rejected() {
        let (authenticator, _) = Authenticator::dev("developer");
        let (_, foreign) = Authenticator::dev("developer");
        let header = format!("Bearer {foreign}");
        let error = authenticator
            .authenticate(Some(header.as_bytes()))
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "signature");
    }
}
