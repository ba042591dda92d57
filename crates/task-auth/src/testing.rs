//! A real OIDC issuer running in-process, for test suites and benchmarks.
//!
//! [`LocalIssuer`] listens on `127.0.0.1:<random port>`, serves
//! `/.well-known/openid-configuration` and a JWKS holding two RSA keys, and mints tokens:
//! valid ones ([`LocalIssuer::token`]) and every malformed or malicious variant the service
//! must refuse ([`LocalIssuer::craft`], [`LocalIssuer::rejected_tokens`]). Keys can be
//! rotated while it runs, and it counts how often its JWKS is fetched.
//!
//! ```no_run
//! # async fn demo() {
//! use task_auth::{Authenticator, testing::LocalIssuer};
//! let issuer = LocalIssuer::start().await;
//! let authenticator = Authenticator::oidc(issuer.settings()).await.unwrap();
//! let header = format!("Bearer {}", issuer.token("alice"));
//! let subject = authenticator.authenticate(Some(header.as_bytes())).await.unwrap();
//! assert_eq!(subject.0, "alice");
//! # }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};

use crate::OidcSettings;
use crate::cache::unix_now;
use crate::keys::RsaSigningKey;

/// The audience a [`LocalIssuer`] puts in its tokens unless told otherwise.
pub const DEFAULT_AUDIENCE: &str = "task-api";

/// RSA key generation takes a noticeable fraction of a second, so keys are made once per
/// process and handed out in order; one issuer never gets the same key twice.
fn pooled_rsa_key(index: usize) -> RsaSigningKey {
    static POOL: OnceLock<Mutex<Vec<RsaSigningKey>>> = OnceLock::new();
    let mut pool = POOL
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    while pool.len() <= index {
        pool.push(RsaSigningKey::generate());
    }
    pool[index].clone()
}

/// A private key of the issuer, published in its JWKS or not.
#[derive(Clone)]
pub struct IssuerKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public_key_pem: String,
}

impl IssuerKey {
    fn rsa(kid: String, key: RsaSigningKey) -> Self {
        let public_key_pem = key
            .private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an RSA public key always encodes as PEM");
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": key.modulus_b64(),
            "e": key.exponent_b64(),
        });
        Self {
            kid,
            algorithm: Algorithm::RS256,
            encoding: key.encoding,
            jwk,
            public_key_pem,
        }
    }

    fn p256(kid: String) -> Self {
        let secret = p256::SecretKey::random(&mut rand::thread_rng());
        let der = secret
            .to_pkcs8_der()
            .expect("a P-256 key always encodes as PKCS#8");
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            unreachable!("an uncompressed point has both coordinates");
        };
        let public_key_pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(
            &secret.public_key(),
            p256::pkcs8::LineEnding::LF,
        )
        .expect("a P-256 public key always encodes as PEM");
        let jwk = json!({
            "kty": "EC",
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        });
        Self {
            kid,
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            jwk,
            public_key_pem,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as the JWK the issuer publishes for it.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// RS256 for RSA keys, ES256 for P-256 keys.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as SPKI PEM, as an attacker would download it.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }
}

struct IssuerState {
    url: String,
    published: RwLock<Vec<IssuerKey>>,
    /// JWKS entries served as given, ahead of the published keys.
    raw_jwks: RwLock<Vec<Value>>,
    /// `issuer` and `jwks_uri` of the discovery document when not the issuer's own.
    announced_issuer: RwLock<Option<String>>,
    announced_jwks_uri: RwLock<Option<String>>,
    available: AtomicBool,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
}

/// An OIDC issuer on `127.0.0.1:<random port>`; stops serving when dropped.
pub struct LocalIssuer {
    state: Arc<IssuerState>,
    audience: String,
    next_rsa_key: AtomicUsize,
    next_kid: AtomicU64,
    unpublished: OnceLock<IssuerKey>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LocalIssuer {
    /// Starts an issuer publishing two RSA keys, for audience [`DEFAULT_AUDIENCE`].
    pub async fn start() -> Self {
        Self::start_with_audience(DEFAULT_AUDIENCE).await
    }

    pub async fn start_with_audience(audience: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0 for the local issuer");
        let address = listener.local_addr().expect("local address of the issuer");
        let state = Arc::new(IssuerState {
            url: format!("http://{address}"),
            published: RwLock::new(Vec::new()),
            raw_jwks: RwLock::new(Vec::new()),
            announced_issuer: RwLock::new(None),
            announced_jwks_uri: RwLock::new(None),
            available: AtomicBool::new(true),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            // The task is aborted when the issuer is dropped; an error here only ends it.
            let _ = axum::serve(listener, router).await;
        });
        let issuer = Self {
            state,
            audience: audience.to_owned(),
            next_rsa_key: AtomicUsize::new(0),
            next_kid: AtomicU64::new(1),
            unpublished: OnceLock::new(),
            server,
        };
        issuer.add_rsa_key();
        issuer.add_rsa_key();
        issuer
    }

    /// `http://127.0.0.1:<port>`, the `iss` of its tokens.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Settings that point an [`crate::Authenticator`] at this issuer (leeway 30 s,
    /// unknown-kid refetches at most once a second).
    pub fn settings(&self) -> OidcSettings {
        OidcSettings {
            issuer_url: self.url().to_owned(),
            audience: self.audience.clone(),
            leeway: Duration::from_secs(30),
            jwks_refresh_min_interval: Duration::from_secs(1),
        }
    }

    /// The keys currently in the JWKS, oldest first.
    pub fn published_keys(&self) -> Vec<IssuerKey> {
        self.state
            .published
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The key valid tokens are signed with: the newest published one.
    pub fn current_key(&self) -> IssuerKey {
        self.published_keys()
            .pop()
            .expect("the issuer publishes at least one key")
    }

    fn fresh_kid(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_kid.fetch_add(1, Ordering::Relaxed))
    }

    fn publish(&self, key: IssuerKey) -> IssuerKey {
        self.state
            .published
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(key.clone());
        key
    }

    /// Generates and publishes another RSA key (it becomes the current key).
    pub fn add_rsa_key(&self) -> IssuerKey {
        let material = pooled_rsa_key(self.next_rsa_key.fetch_add(1, Ordering::Relaxed));
        self.publish(IssuerKey::rsa(self.fresh_kid("rsa"), material))
    }

    /// Generates and publishes a P-256 key (it becomes the current key: tokens are ES256).
    pub fn add_ec_key(&self) -> IssuerKey {
        self.publish(IssuerKey::p256(self.fresh_kid("ec")))
    }

    /// Removes a key from the JWKS.
    pub fn withdraw_key(&self, kid: &str) {
        self.state
            .published
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|key| key.kid != kid);
    }

    /// Rotation as issuers do it: publishes a new current key and withdraws the oldest.
    pub fn rotate(&self) -> IssuerKey {
        let new_key = self.add_rsa_key();
        let oldest = self.published_keys()[0].kid.clone();
        self.withdraw_key(&oldest);
        new_key
    }

    /// An RSA key that is never published (its kid is unknown too).
    pub fn unpublished_key(&self) -> IssuerKey {
        self.unpublished
            .get_or_init(|| {
                let material = pooled_rsa_key(self.next_rsa_key.fetch_add(1, Ordering::Relaxed));
                IssuerKey::rsa(self.fresh_kid("unpublished"), material)
            })
            .clone()
    }

    /// An RSA key of `bits` bits (e.g. 1024, too short to be trusted), neither published nor
    /// current; publish it with [`LocalIssuer::publish_raw_jwk`] and sign with
    /// [`TokenBuilder::sign_with`].
    pub fn rsa_key_with_bits(&self, bits: usize) -> IssuerKey {
        IssuerKey::rsa(
            self.fresh_kid(&format!("rsa{bits}")),
            RsaSigningKey::generate_with_bits(bits),
        )
    }

    /// Serves `jwk` in the JWKS exactly as given, ahead of the published keys: keys of other
    /// types, algorithms or sizes, or entries that are not keys at all.
    pub fn publish_raw_jwk(&self, jwk: Value) {
        self.state
            .raw_jwks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(jwk);
    }

    /// Makes the discovery document name `issuer` instead of [`LocalIssuer::url`], as a
    /// misconfigured or impersonating issuer would.
    pub fn announce_issuer(&self, issuer: &str) {
        *self
            .state
            .announced_issuer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(issuer.to_owned());
    }

    /// Makes the discovery document point `jwks_uri` at `uri` instead of the issuer's own JWKS.
    pub fn announce_jwks_uri(&self, uri: &str) {
        *self
            .state
            .announced_jwks_uri
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(uri.to_owned());
    }

    /// While unavailable, every endpoint answers 503 (an issuer that is down or starting).
    pub fn set_available(&self, available: bool) {
        self.state.available.store(available, Ordering::SeqCst);
    }

    /// How many times the JWKS was served.
    pub fn jwks_fetch_count(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was served.
    pub fn discovery_fetch_count(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// A valid token for `subject`: current key, right iss and aud, valid for an hour.
    pub fn token(&self, subject: &str) -> String {
        self.craft(subject).build()
    }

    /// Starts from a valid token for `subject` and lets the caller break it.
    pub fn craft(&self, subject: &str) -> TokenBuilder<'_> {
        let now = unix_now() as i64;
        let claims = json!({
            "iss": self.url(),
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        });
        let Value::Object(claims) = claims else {
            unreachable!("built as an object")
        };
        TokenBuilder {
            issuer: self,
            claims,
            signer: Signer::Key(self.current_key()),
            kid: KidOverride::FromKey,
            header_algorithm: None,
            tamper: None,
        }
    }

    /// Every token the service must refuse, each named after what is wrong with it. None of
    /// them would pass for `subject`, and all are otherwise well-formed where that matters.
    pub fn rejected_tokens(&self, subject: &str) -> Vec<(&'static str, String)> {
        let published = self.current_key();
        let mut tokens = vec![
            ("alg_none", self.craft(subject).alg_none().build()),
            (
                "hs256_with_secret",
                self.craft(subject).hs256(b"a-shared-secret").build(),
            ),
            (
                "hs256_keyed_with_public_key_pem",
                self.craft(subject).hs256_with_public_key().build(),
            ),
            (
                "unknown_kid_signed_by_published_key",
                self.craft(subject).kid("not-a-published-kid").build(),
            ),
            ("no_kid", self.craft(subject).no_kid().build()),
            (
                "key_not_in_jwks",
                self.craft(subject)
                    .sign_with(self.unpublished_key())
                    .build(),
            ),
            (
                "unpublished_key_with_published_kid",
                self.craft(subject)
                    .sign_with(self.unpublished_key())
                    .kid(published.kid())
                    .build(),
            ),
            (
                "rs512_header",
                self.craft(subject)
                    .header_algorithm(Algorithm::RS512)
                    .build(),
            ),
            (
                "wrong_issuer",
                self.craft(subject)
                    .claim("iss", json!("https://evil.example"))
                    .build(),
            ),
            (
                "issuer_with_trailing_slash",
                self.craft(subject)
                    .claim("iss", json!(format!("{}/", self.url())))
                    .build(),
            ),
            (
                "issuer_as_list",
                self.craft(subject)
                    .claim("iss", json!([self.url()]))
                    .build(),
            ),
            (
                "missing_issuer",
                self.craft(subject).without_claim("iss").build(),
            ),
            (
                "wrong_audience",
                self.craft(subject)
                    .claim("aud", json!("another-api"))
                    .build(),
            ),
            (
                "wrong_audience_list",
                self.craft(subject)
                    .claim("aud", json!(["another-api", "third-api"]))
                    .build(),
            ),
            (
                "missing_audience",
                self.craft(subject).without_claim("aud").build(),
            ),
            ("expired", self.craft(subject).expires_in(-3600).build()),
            (
                "not_yet_valid",
                self.craft(subject).not_before_in(3600).build(),
            ),
            (
                "missing_exp",
                self.craft(subject).without_claim("exp").build(),
            ),
            (
                "tampered_signature",
                self.craft(subject).tamper_signature().build(),
            ),
            (
                "tampered_payload",
                self.craft(subject).tamper_payload().build(),
            ),
            (
                "missing_sub",
                self.craft(subject).without_claim("sub").build(),
            ),
            (
                "empty_sub",
                self.craft(subject).claim("sub", json!("")).build(),
            ),
            ("garbled", "this-is.not-a.jwt".to_owned()),
            (
                "two_segments",
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0".to_owned(),
            ),
        ];
        let has_ec_key = self
            .published_keys()
            .iter()
            .any(|key| key.algorithm == Algorithm::ES256);
        if has_ec_key {
            let ec_key = self
                .published_keys()
                .into_iter()
                .find(|key| key.algorithm == Algorithm::ES256)
                .expect("checked above");
            tokens.push((
                "rs256_header_on_ec_key",
                self.craft(subject)
                    .sign_with(self.unpublished_key())
                    .kid(ec_key.kid())
                    .build(),
            ));
        }
        tokens
    }

    /// Every `Authorization` header value the service must refuse with 401 (`None`: header
    /// absent): the malformed ones followed by `Bearer <token>` for each of
    /// [`LocalIssuer::rejected_tokens`].
    pub fn rejected_authorization_headers(&self, subject: &str) -> Vec<(String, Option<String>)> {
        let valid = self.token(subject);
        let mut headers = vec![
            ("missing_header".to_owned(), None),
            ("empty_header".to_owned(), Some(String::new())),
            (
                "basic_scheme".to_owned(),
                Some("Basic dXNlcjpwYXNzd29yZA==".to_owned()),
            ),
            ("token_without_scheme".to_owned(), Some(valid.clone())),
            (
                "other_scheme_with_valid_token".to_owned(),
                Some(format!("Token {valid}")),
            ),
            ("bearer_without_token".to_owned(), Some("Bearer".to_owned())),
            (
                "bearer_with_empty_token".to_owned(),
                Some("Bearer ".to_owned()),
            ),
            (
                "bearer_with_two_tokens".to_owned(),
                Some(format!("Bearer {valid} {valid}")),
            ),
        ];
        headers.extend(
            self.rejected_tokens(subject)
                .into_iter()
                .map(|(name, token)| (name.to_owned(), Some(format!("Bearer {token}")))),
        );
        headers
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> Response {
    if !state.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let announced = |field: &RwLock<Option<String>>| {
        field
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    };
    let issuer = announced(&state.announced_issuer).unwrap_or_else(|| state.url.clone());
    let jwks_uri =
        announced(&state.announced_jwks_uri).unwrap_or_else(|| format!("{}/jwks", state.url));
    // The fields OpenID Connect Discovery 1.0 §3 requires, even those a resource server
    // does not use.
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "authorization_endpoint": format!("{}/authorize", state.url),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    if !state.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let mut keys: Vec<Value> = state
        .raw_jwks
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    keys.extend(
        state
            .published
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|key| key.jwk.clone()),
    );
    axum::Json(json!({ "keys": keys })).into_response()
}

enum Signer {
    Key(IssuerKey),
    AlgNone,
    Hmac(Vec<u8>),
}

enum KidOverride {
    FromKey,
    Set(String),
    Absent,
}

enum Tamper {
    Signature,
    Payload,
}

/// Builds one token, valid unless told otherwise. Obtained from [`LocalIssuer::craft`].
pub struct TokenBuilder<'a> {
    issuer: &'a LocalIssuer,
    claims: serde_json::Map<String, Value>,
    signer: Signer,
    kid: KidOverride,
    header_algorithm: Option<Algorithm>,
    tamper: Option<Tamper>,
}

impl TokenBuilder<'_> {
    /// Sets (or replaces) a claim, e.g. `claim("aud", json!(["x", "task-api"]))`.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }

    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// `exp` relative to now; negative for an expired token.
    pub fn expires_in(self, seconds: i64) -> Self {
        let exp = unix_now() as i64 + seconds;
        self.claim("exp", json!(exp))
    }

    /// `nbf` relative to now; positive for a token that is not valid yet.
    pub fn not_before_in(self, seconds: i64) -> Self {
        let nbf = unix_now() as i64 + seconds;
        self.claim("nbf", json!(nbf))
    }

    /// Signs with this key (published or not) and names its kid unless told otherwise.
    pub fn sign_with(mut self, key: IssuerKey) -> Self {
        self.signer = Signer::Key(key);
        self
    }

    /// Puts this kid in the header, whatever key signs.
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = KidOverride::Set(kid.to_owned());
        self
    }

    pub fn no_kid(mut self) -> Self {
        self.kid = KidOverride::Absent;
        self
    }

    /// Claims another algorithm in the header than the key's own (the signature is made with
    /// that algorithm too when the key supports it, so only the algorithm check can refuse it).
    pub fn header_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.header_algorithm = Some(algorithm);
        self
    }

    /// `alg: none`, no signature, kid of the current key.
    pub fn alg_none(mut self) -> Self {
        self.signer = Signer::AlgNone;
        self
    }

    /// HS256 with this secret, kid of the current key.
    pub fn hs256(mut self, secret: &[u8]) -> Self {
        self.signer = Signer::Hmac(secret.to_vec());
        self
    }

    /// HS256 keyed with the current key's public PEM: the classic algorithm-confusion attack.
    pub fn hs256_with_public_key(self) -> Self {
        let pem = self.issuer.current_key().public_key_pem.into_bytes();
        self.hs256(&pem)
    }

    /// Flips bits in the signature.
    pub fn tamper_signature(mut self) -> Self {
        self.tamper = Some(Tamper::Signature);
        self
    }

    /// Changes `sub` in the signed payload and keeps the original signature.
    pub fn tamper_payload(mut self) -> Self {
        self.tamper = Some(Tamper::Payload);
        self
    }

    pub fn build(self) -> String {
        let current_kid = self.issuer.current_key().kid;
        let (algorithm_name, encoding, default_kid) = match &self.signer {
            Signer::Key(key) => {
                let algorithm = self.header_algorithm.unwrap_or(key.algorithm);
                (
                    algorithm_name(algorithm),
                    Some((algorithm, key.encoding.clone())),
                    key.kid.clone(),
                )
            }
            Signer::AlgNone => ("none".to_owned(), None, current_kid),
            Signer::Hmac(secret) => (
                "HS256".to_owned(),
                Some((Algorithm::HS256, EncodingKey::from_secret(secret))),
                current_kid,
            ),
        };
        let kid = match self.kid {
            KidOverride::FromKey => Some(default_kid),
            KidOverride::Set(kid) => Some(kid),
            KidOverride::Absent => None,
        };
        let mut header = json!({ "typ": "JWT", "alg": algorithm_name });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
        let encoded_claims = URL_SAFE_NO_PAD.encode(Value::Object(self.claims.clone()).to_string());
        let message = format!("{encoded_header}.{encoded_claims}");
        let signature = match encoding {
            None => String::new(),
            Some((algorithm, key)) => {
                jsonwebtoken::crypto::sign(message.as_bytes(), &key, algorithm)
                    .expect("signing with a valid key cannot fail")
            }
        };
        match self.tamper {
            None => format!("{message}.{signature}"),
            Some(Tamper::Signature) => {
                let mut bytes = URL_SAFE_NO_PAD.decode(&signature).expect("own signature");
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x5a;
                format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes))
            }
            Some(Tamper::Payload) => {
                let mut claims = self.claims;
                claims.insert("sub".to_owned(), json!("someone-else"));
                let forged = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
                format!("{encoded_header}.{forged}.{signature}")
            }
        }
    }
}

fn algorithm_name(algorithm: Algorithm) -> String {
    // The Debug form of jsonwebtoken's Algorithm is its JOSE name ("RS256", "ES256", ...).
    format!("{algorithm:?}")
}
