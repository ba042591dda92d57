//! Tower layers for the public router.
//!
//! Apply them with `Router::layer` (not around the finished router) so that they run after
//! routing and can read the route template from axum's [`MatchedPath`]. Order, outermost
//! first: correlation id and the request span ([`request_span`], [`AccessLog`], used with
//! tower-http's `TraceLayer`) → [`HttpMetricsLayer`] → the service's own layers
//! (e.g. its in-flight limit) → handlers.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tower_http::trace::OnResponse;
use tracing::Span;

use crate::metrics::Metrics;
use crate::telemetry;

/// Route label of requests that matched no route: raw paths would make the label's
/// cardinality unbounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route template of a request (`/tasks/{id}`), or [`UNMATCHED_ROUTE`].
pub fn route_label<B>(request: &axum::http::Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
}

/// Counts answered requests and observes their latency by route template, method and status.
/// Reads the reason label of a 401 from the response (the HTTP layer marks it).
pub type AuthFailureReason = fn(&Response) -> Option<&'static str>;

#[derive(Clone)]
pub struct HttpMetricsLayer {
    metrics: Metrics,
    auth_failure_reason: Option<AuthFailureReason>,
}

impl HttpMetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            auth_failure_reason: None,
        }
    }

    /// Counts 401s in `task_api_auth_failures_total{reason}` with the reason `read` finds.
    pub fn with_auth_failure_reason(mut self, read: AuthFailureReason) -> Self {
        self.auth_failure_reason = Some(read);
        self
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetricsService {
            inner,
            metrics: self.metrics.clone(),
            auth_failure_reason: self.auth_failure_reason,
        }
    }
}

#[derive(Clone)]
pub struct HttpMetricsService<S> {
    inner: S,
    metrics: Metrics,
    auth_failure_reason: Option<AuthFailureReason>,
}

impl<S> Service<Request> for HttpMetricsService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let metrics = self.metrics.clone();
        let auth_failure_reason = self.auth_failure_reason;
        // The clone that was driven to readiness serves this request; the fresh clone waits
        // for the next one (tower's documented pattern for services that are cloned).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            let status = response.status();
            metrics.observe_request(
                route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
                method.as_str(),
                status,
                started.elapsed().as_secs_f64(),
            );
            if status == StatusCode::UNAUTHORIZED {
                let reason = auth_failure_reason
                    .and_then(|read| read(&response))
                    .unwrap_or("unknown");
                metrics.record_auth_failure(reason);
            }
            Ok(response)
        })
    }
}

/// The access log, as tower-http's `TraceLayer` calls it once the response head is ready
/// (inside the request span): one line per answered request with its `status`, and the
/// span's `status` when traces are exported.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLog;

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        // Only a trace reads the span's status: the access line carries its own, and it is
        // the last line of the request. Recording a field on a span makes the JSON log layer
        // parse, merge and re-serialise the span's fields, about 8 % of a GET's
        // instructions (docs/performance.md), so it is done only for an exporter.
        if telemetry::trace_export_enabled() {
            span.record("status", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        tracing::info!(
            status = status.as_u16(),
            latency_ms = latency.as_secs_f64() * 1000.0,
            "request completed"
        );
    }
}

/// The span that every log line and trace of one request belongs to (tower-http's
/// `TraceLayer` makes it with this, outside the service's other layers).
///
/// Fields: `correlation_id`, `method`, `route` (template), `path` and, once answered and only
/// when traces are exported, `status`. When trace export is enabled the span continues the caller's W3C trace
/// (`traceparent`/`tracestate`) and becomes an OpenTelemetry server span named
/// `METHOD /route/{template}`; when it is not, no header is parsed.
pub fn request_span<B>(request: &axum::http::Request<B>, correlation_id: &str) -> Span {
    let route = route_label(request);
    let span = tracing::info_span!(
        "request",
        correlation_id,
        method = %request.method(),
        route,
        path = request.uri().path(),
        status = tracing::field::Empty,
        otel.kind = "server",
        otel.name = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if telemetry::trace_export_enabled() {
        span.record("otel.name", format!("{} {}", request.method(), route));
        telemetry::continue_remote_trace(&span, request.headers());
    }
    span
}

/// Header map adapter for the W3C trace-context propagator.
pub(crate) struct HeaderExtractor<'a>(pub(crate) &'a HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::BuildInfo;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn metrics() -> Metrics {
        Metrics::new(&BuildInfo {
            version: "0.0.0".into(),
            git_sha: "unknown".into(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn routes_are_labelled_by_template_and_unknown_paths_collapse() {
        let metrics = metrics();
        let app = Router::new()
            .route("/tasks/{id}", get(|| async { "task" }))
            .layer(HttpMetricsLayer::new(metrics.clone()));
        for path in ["/tasks/1", "/tasks/2", "/nope/1", "/nope/2"] {
            app.clone()
                .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
        }
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                "task_api_http_requests_total{method=\"GET\",route=\"/tasks/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "task_api_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 2"
            ),
            "{text}"
        );
        assert!(!text.contains("/tasks/1"), "{text}");
    }
}
