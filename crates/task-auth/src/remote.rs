//! Talking to the issuer: OIDC discovery and JWKS downloads over HTTP(S).

use std::time::Duration;

use serde::Deserialize;
use url::{Host, Url};

use crate::keys::{KeySet, parse_jwks};

/// Discovery documents and key sets are small; anything bigger is not an issuer answering.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why talking to the issuer failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// Not worth retrying: the configuration itself is wrong.
    #[error("{0}")]
    Permanent(String),
    /// The issuer may answer later (network, 5xx, incomplete document).
    #[error("{0}")]
    Transient(String),
}

/// The part of `/.well-known/openid-configuration` a resource server needs.
#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

pub(crate) struct Issuer {
    http: reqwest::Client,
    pub(crate) jwks_uri: Url,
}

/// Accepts https anywhere and plain http only towards the local machine, where nothing
/// travels over a network an attacker could sit on.
pub(crate) fn parse_endpoint(raw: &str, what: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|error| format!("{what} {raw:?} is not a URL: {error}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{what} {raw:?} uses plain http; only https is allowed, except towards loopback \
             addresses"
        )),
        other => Err(format!("{what} {raw:?} has unsupported scheme {other:?}")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

pub(crate) fn discovery_url(issuer_url: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer_url.trim_end_matches('/')
    )
}

fn http_client(issuer: &Url) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("task-auth/", env!("CARGO_PKG_VERSION")));
    if is_loopback(issuer) {
        // A proxy configured for outbound traffic must not capture a local issuer.
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|error| FetchError::Permanent(format!("cannot build the HTTP client: {error}")))
}

impl Issuer {
    /// Runs discovery once: fetches the document, checks that it names the configured issuer
    /// and that its `jwks_uri` is acceptable.
    pub(crate) async fn discover(issuer_url: &str) -> Result<Self, FetchError> {
        let issuer =
            parse_endpoint(issuer_url, "OIDC_ISSUER_URL").map_err(FetchError::Permanent)?;
        let http = http_client(&issuer)?;
        let url = discovery_url(issuer_url);
        let body = get(&http, &url).await?;
        let document: DiscoveryDocument = serde_json::from_slice(&body).map_err(|error| {
            FetchError::Transient(format!("discovery document is not valid: {error}"))
        })?;
        if document.issuer != issuer_url {
            return Err(FetchError::Permanent(format!(
                "discovery document names issuer {:?}, but OIDC_ISSUER_URL is {issuer_url:?}; \
                 they must be identical",
                document.issuer
            )));
        }
        let jwks_uri =
            parse_endpoint(&document.jwks_uri, "jwks_uri").map_err(FetchError::Permanent)?;
        Ok(Self { http, jwks_uri })
    }

    pub(crate) async fn fetch_keys(&self) -> Result<KeySet, FetchError> {
        let body = get(&self.http, self.jwks_uri.as_str()).await?;
        parse_jwks(&body).map_err(FetchError::Transient)
    }
}

async fn get(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, FetchError> {
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| FetchError::Transient(format!("GET {url}: {error}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Transient(format!("GET {url}: HTTP {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| FetchError::Transient(format!("GET {url}: {error}")))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::Transient(format!(
                "GET {url}: response larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_allowed_only_for_loopback() {
        assert!(parse_endpoint("http://127.0.0.1:8080", "x").is_ok());
        assert!(parse_endpoint("http://[::1]:8080/realm", "x").is_ok());
        assert!(parse_endpoint("http://localhost:8080", "x").is_ok());
        assert!(parse_endpoint("https://issuer.example.com", "x").is_ok());
        assert!(parse_endpoint("http://issuer.example.com", "x").is_err());
        assert!(parse_endpoint("http://10.0.0.1", "x").is_err());
        assert!(parse_endpoint("ftp://127.0.0.1", "x").is_err());
        assert!(parse_endpoint("not a url", "x").is_err());
    }

    #[test]
    fn discovery_url_tolerates_a_trailing_slash() {
        assert_eq!(
            discovery_url("https://id.example.com/realms/a/"),
            "https://id.example.com/realms/a/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("http://127.0.0.1:1"),
            "http://127.0.0.1:1/.well-known/openid-configuration"
        );
    }
}
