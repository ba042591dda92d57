//! Bearer-token authentication for the Task API: OIDC discovery, a kid-indexed JWKS cache,
//! RS256/ES256 verification, and a dev mode that signs its own tokens.
//!
//! INTERFACE STUB: the signatures below are the contract between this crate and `task-api`;
//! the implementation lands with the auth work.

use std::time::Duration;

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
    InvalidToken(String),
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

/// Verifies bearer tokens. Cheap to clone (shared state inside); no network call per request.
#[derive(Clone)]
pub struct Authenticator {
    _private: (),
}

impl Authenticator {
    /// Production mode: discovers the issuer and loads its JWKS; fails if unreachable.
    pub async fn oidc(_settings: OidcSettings) -> Result<Self, SetupError> {
        unimplemented!("auth work")
    }

    /// Dev mode: a fresh local RSA key; returns the authenticator and a long-lived token for
    /// `subject` signed with it, to print for the developer.
    pub fn dev(_subject: &str) -> (Self, String) {
        unimplemented!("auth work")
    }

    /// Authenticates the raw `Authorization` header value (None when absent).
    pub async fn authenticate(&self, _authorization: Option<&[u8]>) -> Result<Subject, AuthError> {
        unimplemented!("auth work")
    }

    /// True in dev mode, so that the service can flag it loudly.
    pub fn is_dev_mode(&self) -> bool {
        unimplemented!("auth work")
    }
}
