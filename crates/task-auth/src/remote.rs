//! Talking to the issuer: OIDC discovery and JWKS downloads over HTTP(S).
//!
//! `openidconnect` parses the discovery document, checks that it names exactly the configured
//! issuer, and fetches and parses the JWKS; every request it makes goes through
//! [`IssuerHttp`], which applies this crate's transport rules (https unless loopback,
//! timeouts, no redirects, a size limit).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::core::{CoreJsonWebKey, CoreProviderMetadata};
use openidconnect::{
    AsyncHttpClient, DiscoveryError, HttpRequest, HttpResponse, IssuerUrl, JsonWebKeySet,
    JsonWebKeySetUrl,
};
use url::{Host, Url};

use crate::keys::{KeySet, usable_keys};

/// Discovery documents and key sets are small; anything bigger is not an issuer answering.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const DISCOVERY_PATH: &str = ".well-known/openid-configuration";

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

/// Why one request to the issuer failed, as [`IssuerHttp`] reports it to `openidconnect`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// The URL breaks the https rule (e.g. a `jwks_uri` in plain http towards another host).
    #[error("{0}")]
    RefusedEndpoint(String),
    #[error("GET {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: response larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("GET {url}: response headers are not valid HTTP")]
    InvalidResponse {
        url: String,
        #[source]
        source: openidconnect::http::Error,
    },
}

/// The HTTP client `openidconnect` uses: the workspace's reqwest client with timeouts, no
/// redirects (a redirect could leave https), the endpoint rule checked on every URL before
/// connecting, and bodies read in chunks up to [`MAX_DOCUMENT_BYTES`].
pub(crate) struct IssuerHttp {
    client: reqwest::Client,
}

impl IssuerHttp {
    fn new(issuer: &Url) -> Result<Self, FetchError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("task-auth/", env!("CARGO_PKG_VERSION")));
        if is_loopback(issuer) {
            // A proxy configured for outbound traffic must not capture a local issuer.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|error| {
            FetchError::Permanent(format!("cannot build the HTTP client: {error}"))
        })?;
        Ok(Self { client })
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = request.uri().to_string();
        parse_endpoint(&url, "issuer endpoint").map_err(HttpError::RefusedEndpoint)?;
        let failed = |source| HttpError::Request {
            url: url.clone(),
            source,
        };
        let request = reqwest::Request::try_from(request).map_err(failed)?;
        let mut response = self.client.execute(request).await.map_err(failed)?;
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(HttpError::TooLarge { url });
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|source| HttpError::InvalidResponse { url, source })
    }
}

impl<'c> AsyncHttpClient<'c> for IssuerHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

pub(crate) struct Issuer {
    http: IssuerHttp,
    pub(crate) jwks_uri: JsonWebKeySetUrl,
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

/// The URL discovery fetches, built the way `openidconnect` builds it (one `/` between the
/// issuer and the well-known path), for error messages.
pub(crate) fn discovery_url(issuer_url: &str) -> String {
    if issuer_url.ends_with('/') {
        format!("{issuer_url}{DISCOVERY_PATH}")
    } else {
        format!("{issuer_url}/{DISCOVERY_PATH}")
    }
}

/// Sorts an `openidconnect` failure into "retry" and "give up". Only a wrong configuration
/// is permanent: a URL that is not acceptable, or a document naming another issuer.
fn classify(what: &str, error: DiscoveryError<HttpError>) -> FetchError {
    let reason = format!("{what}: {}", error_chain(&error));
    match error {
        DiscoveryError::Request(HttpError::RefusedEndpoint(_))
        | DiscoveryError::Validation(_)
        | DiscoveryError::UrlParse(_) => FetchError::Permanent(reason),
        _ => FetchError::Transient(reason),
    }
}

/// `error` and its sources, joined with ": " (openidconnect's messages are terse on their own,
/// e.g. "Request failed").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl Issuer {
    /// Runs discovery once and loads the key set: `openidconnect` fetches the document,
    /// checks that it names exactly the configured issuer, then fetches its `jwks_uri`.
    pub(crate) async fn connect(issuer_url: &str) -> Result<(Self, KeySet), FetchError> {
        let issuer =
            parse_endpoint(issuer_url, "OIDC_ISSUER_URL").map_err(FetchError::Permanent)?;
        let http = IssuerHttp::new(&issuer)?;
        let issuer_url = IssuerUrl::new(issuer_url.to_owned()).map_err(|error| {
            FetchError::Permanent(format!("OIDC_ISSUER_URL is not a URL: {error}"))
        })?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .map_err(|error| classify("OIDC discovery", error))?;
        let jwks_uri = metadata.jwks_uri().clone();
        let keys = usable_keys(metadata.jwks());
        Ok((Self { http, jwks_uri }, keys))
    }

    pub(crate) async fn fetch_keys(&self) -> Result<KeySet, FetchError> {
        let set = JsonWebKeySet::<CoreJsonWebKey>::fetch_async(&self.jwks_uri, &self.http)
            .await
            .map_err(|error| classify("JWKS download", error))?;
        Ok(usable_keys(&set))
    }
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
