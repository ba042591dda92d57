//! Correlation ids: read from `correlation_id` (or `X-Correlation-ID`), generated when absent
//! or unusable, echoed on every response, put into the request's tracing span and into every
//! problem body.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::error::finish_problem;

pub const CORRELATION_ID: HeaderName = HeaderName::from_static("correlation_id");
pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const MAX_CORRELATION_ID_LEN: usize = 128;

/// The request's correlation id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

fn usable(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    // Printable ASCII without spaces: safe to echo in a header, a log line and JSON.
    let ok = !text.is_empty()
        && text.len() <= MAX_CORRELATION_ID_LEN
        && text.bytes().all(|byte| byte.is_ascii_graphic());
    ok.then(|| text.to_owned())
}

/// A random (version 4) UUID from the thread's generator: unique like `Uuid::new_v4`, without
/// a `getrandom` system call per request.
fn new_correlation_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Outermost middleware of both listeners.
pub async fn correlate(mut request: Request, next: Next) -> Response {
    let correlation_id = [&CORRELATION_ID, &X_CORRELATION_ID]
        .into_iter()
        .find_map(|name| request.headers().get(name).and_then(usable))
        .unwrap_or_else(new_correlation_id);
    request
        .extensions_mut()
        .insert(CorrelationId(correlation_id.clone()));
    let span = task_observability::request_span(&request, &correlation_id);
    let response = next.run(request).instrument(span).await;
    let mut response = finish_problem(response, &correlation_id);
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_version_4_uuids() {
        let first = uuid::Uuid::parse_str(&new_correlation_id()).unwrap();
        let second = uuid::Uuid::parse_str(&new_correlation_id()).unwrap();
        assert_eq!(first.get_version_num(), 4);
        assert_eq!(first.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(first, second);
    }
}
