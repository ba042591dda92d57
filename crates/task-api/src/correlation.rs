//! Correlation ids: read from `correlation_id` (or `X-Correlation-ID`), generated when absent
//! or unusable, echoed on every response, put into the request's tracing span and into every
//! problem body.
//!
//! Built from tower-http's request-id layers: [`SetRequestIdLayer`] keeps a `correlation_id`
//! the request brings (after [`drop_unusable_correlation_id`] removed one that is not safe to
//! echo) or asks [`AlternateHeaderOrNew`] for one; [`PropagateRequestIdLayer`] echoes it and
//! marks the response with it, where [`finish_problems`] reads it for the problem body.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::Span;

use crate::error::finish_problem;

pub const CORRELATION_ID: HeaderName = HeaderName::from_static("correlation_id");
pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const MAX_CORRELATION_ID_LEN: usize = 128;

/// Printable ASCII without spaces, 1 to 128 bytes: safe to echo in a header, a log line and
/// JSON.
fn usable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_CORRELATION_ID_LEN
        && bytes.iter().all(u8::is_ascii_graphic)
}

/// A random (version 4) UUID from the thread's generator: unique like `Uuid::new_v4`, without
/// a `getrandom` system call per request.
fn new_correlation_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
        .expect("a hyphenated UUID is a valid header value")
}

/// The id of a request without a usable `correlation_id`: its `X-Correlation-ID` when
/// usable, a new one otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlternateHeaderOrNew;

impl MakeRequestId for AlternateHeaderOrNew {
    fn make_request_id<B>(&mut self, request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = request
            .headers()
            .get(&X_CORRELATION_ID)
            .filter(|value| usable(value))
            .cloned()
            .unwrap_or_else(new_correlation_id);
        Some(RequestId::new(id))
    }
}

/// `SetRequestIdLayer` takes any `correlation_id` as it is; one that is not usable is removed
/// first so that the request gets the alternate header's or a new one instead.
fn drop_unusable_correlation_id(mut request: Request) -> Request {
    if request
        .headers()
        .get(&CORRELATION_ID)
        .is_some_and(|value| !usable(value))
    {
        request.headers_mut().remove(&CORRELATION_ID);
    }
    request
}

/// The text of a correlation id the request-id layers recorded (in the request's
/// extensions, and in the response's once `PropagateRequestId` copied it there).
fn id_text(id: Option<&RequestId>) -> &str {
    id.and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
}

/// The request's correlation id, as the request-id layer recorded it.
pub fn correlation_id<B>(request: &axum::http::Request<B>) -> &str {
    id_text(request.extensions().get())
}

fn request_span(request: &Request) -> Span {
    task_observability::request_span(request, correlation_id(request))
}

/// Renders the problem body of an error response with the id `PropagateRequestId` put on it.
fn finish_problems(response: Response) -> Response {
    // The response is consumed below, so the id it carries is cloned out first.
    let id = response.extensions().get::<RequestId>().cloned();
    finish_problem(response, id_text(id.as_ref()))
}

/// The outermost layers of the public listener, outermost first: the correlation id, the
/// request span with the access log line, the problem bodies that carry the id, and its echo.
pub fn correlated(router: Router) -> Router {
    with_correlation(router, task_observability::AccessLog)
}

/// The same for the admin listener, without the access log: probes and scrapes every few
/// seconds would drown the API's lines (and never had one).
pub fn correlated_without_access_log(router: Router) -> Router {
    with_correlation(router, ())
}

fn with_correlation<L>(router: Router, access_log: L) -> Router
where
    L: OnResponse<Body> + Clone + Send + Sync + 'static,
{
    router.layer(
        ServiceBuilder::new()
            .map_request(drop_unusable_correlation_id)
            .layer(SetRequestIdLayer::new(CORRELATION_ID, AlternateHeaderOrNew))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span as fn(&Request) -> Span)
                    .on_request(())
                    .on_response(access_log)
                    .on_body_chunk(())
                    .on_eos(())
                    // 5xx are logged where they arise (`ApiError`) and marked in the span by
                    // the access log.
                    .on_failure(()),
            )
            .map_response(finish_problems)
            .layer(PropagateRequestIdLayer::new(CORRELATION_ID)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_version_4_uuids() {
        let first = uuid::Uuid::parse_str(new_correlation_id().to_str().unwrap()).unwrap();
        let second = uuid::Uuid::parse_str(new_correlation_id().to_str().unwrap()).unwrap();
        assert_eq!(first.get_version_num(), 4);
        assert_eq!(first.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(first, second);
    }

    #[test]
    fn usable_ids_are_printable_ascii_up_to_128_bytes() {
        for good in ["a", "abc-123_X.Y", &"x".repeat(128)] {
            assert!(usable(&HeaderValue::from_str(good).unwrap()), "{good}");
        }
        for bad in ["", "with space", &"x".repeat(129)] {
            assert!(!usable(&HeaderValue::from_str(bad).unwrap()), "{bad:?}");
        }
        assert!(!usable(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }

    /// The id a request gets through the layers, as echoed and as put into a problem body.
    async fn echoed(headers: &[(&str, &[u8])]) -> (String, String) {
        use tower::ServiceExt;
        let router =
            correlated(Router::new().fallback(|| async { crate::error::ApiError::NoRoute }));
        let mut request = axum::http::Request::get("/nowhere");
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let response = router
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let header = response.headers()[&CORRELATION_ID]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (
            header,
            problem["correlation_id"].as_str().unwrap().to_owned(),
        )
    }

    #[tokio::test]
    async fn the_first_usable_header_wins_and_unusable_ids_are_replaced() {
        let long = "x".repeat(129);
        for (headers, expected) in [
            (vec![("correlation_id", &b"main-1"[..])], Some("main-1")),
            (vec![("x-correlation-id", &b"alt-2"[..])], Some("alt-2")),
            (
                vec![
                    ("correlation_id", &b"main-1"[..]),
                    ("x-correlation-id", &b"alt-2"[..]),
                ],
                Some("main-1"),
            ),
            (
                vec![
                    ("correlation_id", &b"has space"[..]),
                    ("x-correlation-id", &b"alt-2"[..]),
                ],
                Some("alt-2"),
            ),
            (
                vec![
                    ("correlation_id", long.as_bytes()),
                    ("x-correlation-id", &b"caf\xc3\xa9"[..]),
                ],
                None,
            ),
            (vec![], None),
        ] {
            let (header, in_body) = echoed(&headers).await;
            assert_eq!(header, in_body, "{headers:?}");
            match expected {
                Some(id) => assert_eq!(header, id, "{headers:?}"),
                None => {
                    let generated = uuid::Uuid::parse_str(&header).unwrap();
                    assert_eq!(generated.get_version_num(), 4, "{headers:?}");
                }
            }
        }
    }
}
