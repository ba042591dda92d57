//! Tower layers for the public router.
//!
//! Apply them with `Router::layer` (not around the finished router) so that they run after
//! routing and can read the route template from axum's [`MatchedPath`]. Order, outermost
//! first: correlation id → [`HttpMetricsLayer`] → [`InFlightLimitLayer`] → handlers. The
//! limiter must sit inside the correlation layer (its 429 carries the id) and outside every
//! handler (a rejected POST never reaches the code that creates a task).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};
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
            // The request span (made by the outer correlation layer) is current here.
            let span = Span::current();
            span.record("status", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
            // The access log: one line per answered request, inside its span.
            tracing::info!(
                status = status.as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request completed"
            );
            Ok(response)
        })
    }
}

/// Builds the body of a 429 from the rejected request (so that it can carry the request's
/// correlation id in the service's problem format). The limiter forces the status to 429 and
/// adds `Retry-After` when the builder did not.
pub type OverloadRejection = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Seconds a rejected client should wait; in-flight work on this replica finishes in well
/// under that, so a retry is likely to be admitted.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// Admits at most `max_in_flight` requests at once and rejects the rest immediately with 429.
///
/// It never queues: a queued request would hold its connection until a client or proxy
/// timeout and turn an overload into timeouts and 5xx upstream. A rejected request never
/// reaches the inner service, so it has no side effect.
#[derive(Clone)]
pub struct InFlightLimitLayer {
    state: Arc<LimiterState>,
}

struct LimiterState {
    permits: Arc<Semaphore>,
    metrics: Metrics,
    reject: OverloadRejection,
}

impl InFlightLimitLayer {
    /// `max_in_flight` must be at least 1 (configuration validates it).
    pub fn new(max_in_flight: usize, metrics: Metrics, reject: OverloadRejection) -> Self {
        Self {
            state: Arc::new(LimiterState {
                permits: Arc::new(Semaphore::new(max_in_flight)),
                metrics,
                reject,
            }),
        }
    }
}

impl<S> Layer<S> for InFlightLimitLayer {
    type Service = InFlightLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlightLimitService {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct InFlightLimitService<S> {
    inner: S,
    state: Arc<LimiterState>,
}

/// Holds a slot for the lifetime of one admitted request, also when the client disconnects
/// and the request future is dropped half-way.
struct Admission {
    _permit: OwnedSemaphorePermit,
    metrics: Metrics,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.metrics.in_flight_gauge().dec();
    }
}

impl<S> Service<Request> for InFlightLimitService<S>
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
        let Ok(permit) = self.state.permits.clone().try_acquire_owned() else {
            self.state.metrics.record_rejection("overload");
            let response = overload_response(&self.state.reject, &request);
            return Box::pin(async move { Ok(response) });
        };
        self.state.metrics.in_flight_gauge().inc();
        let admission = Admission {
            _permit: permit,
            metrics: self.state.metrics.clone(),
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await;
            drop(admission);
            response
        })
    }
}

fn overload_response(reject: &OverloadRejection, request: &Request) -> Response {
    let mut response = reject(request);
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .entry(header::RETRY_AFTER)
        .or_insert_with(|| HeaderValue::from(RETRY_AFTER_SECONDS));
    // Debug only: under a flood a line per rejection would amplify the overload into the
    // log pipeline; the access line (status 429) and the rejection counter already tell.
    tracing::debug!(
        route = route_label(request),
        method = %request.method(),
        "request rejected: in-flight limit reached"
    );
    response
}

/// The span that every log line and trace of one request belongs to.
///
/// Fields: `correlation_id`, `method`, `route` (template), `path` and, once answered,
/// `status`. When trace export is enabled the span continues the caller's W3C trace
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
    use axum::routing::{get, post};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    fn metrics() -> Metrics {
        Metrics::new(&BuildInfo {
            version: "0.0.0".into(),
            git_sha: "unknown".into(),
        })
        .unwrap()
    }

    fn rejection() -> OverloadRejection {
        Arc::new(|request: &Request| {
            let id = request
                .headers()
                .get("correlation_id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            Response::builder()
                .header(header::CONTENT_TYPE, "application/problem+json")
                .body(Body::from(format!(
                    r#"{{"title":"overloaded","status":429,"correlation_id":"{id}"}}"#
                )))
                .unwrap()
        })
    }

    #[derive(Clone, Default)]
    struct Gate {
        entered: Arc<AtomicUsize>,
        created: Arc<AtomicUsize>,
        release: Arc<Notify>,
    }

    fn router(gate: Gate, metrics: Metrics, limit: usize) -> Router {
        Router::new()
            .route(
                "/tasks",
                post(move || {
                    let gate = gate.clone();
                    async move {
                        gate.entered.fetch_add(1, Ordering::SeqCst);
                        gate.release.notified().await;
                        gate.created.fetch_add(1, Ordering::SeqCst);
                        StatusCode::CREATED
                    }
                }),
            )
            .route("/tasks/{id}", get(|| async { "task" }))
            .layer(InFlightLimitLayer::new(limit, metrics.clone(), rejection()))
            .layer(HttpMetricsLayer::new(metrics))
    }

    fn post_tasks(correlation_id: &str) -> Request {
        axum::http::Request::post("/tasks")
            .header("correlation_id", correlation_id)
            .body(Body::empty())
            .unwrap()
    }

    async fn wait_until(mut condition: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("condition not reached within 5 s");
    }

    #[tokio::test]
    async fn requests_beyond_the_limit_are_rejected_without_reaching_the_handler() {
        let gate = Gate::default();
        let metrics = metrics();
        let app = router(gate.clone(), metrics.clone(), 2);

        let held: Vec<_> = (0..2)
            .map(|i| tokio::spawn(app.clone().oneshot(post_tasks(&format!("held-{i}")))))
            .collect();
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 2).await;
        assert!(
            metrics
                .render()
                .unwrap()
                .contains("task_api_http_requests_in_flight 2")
        );

        let rejected = app.clone().oneshot(post_tasks("third")).await.unwrap();
        assert_eq!(rejected.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(rejected.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            rejected.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(rejected.into_body(), 1 << 16)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["correlation_id"], "third");
        assert_eq!(gate.entered.load(Ordering::SeqCst), 2, "handler ran");

        gate.release.notify_waiters();
        for handle in held {
            assert_eq!(handle.await.unwrap().unwrap().status(), StatusCode::CREATED);
        }
        assert_eq!(gate.created.load(Ordering::SeqCst), 2);

        let text = metrics.render().unwrap();
        for expected in [
            "task_api_http_requests_rejected_total{reason=\"overload\"} 1",
            "task_api_http_requests_in_flight 0",
            "task_api_http_requests_total{method=\"POST\",route=\"/tasks\",status=\"201\"} 2",
            "task_api_http_requests_total{method=\"POST\",route=\"/tasks\",status=\"429\"} 1",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }

        // Slots are given back: a new request is admitted again.
        let admitted = tokio::spawn(app.clone().oneshot(post_tasks("after")));
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 3).await;
        gate.release.notify_waiters();
        assert_eq!(
            admitted.await.unwrap().unwrap().status(),
            StatusCode::CREATED
        );
    }

    #[tokio::test]
    async fn an_abandoned_request_frees_its_slot() {
        let gate = Gate::default();
        let metrics = metrics();
        let app = router(gate.clone(), metrics.clone(), 1);
        let abandoned = tokio::spawn(app.clone().oneshot(post_tasks("gone")));
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 1).await;
        abandoned.abort();
        let _ = abandoned.await;
        assert!(
            metrics
                .render()
                .unwrap()
                .contains("task_api_http_requests_in_flight 0")
        );
        let next = tokio::spawn(app.clone().oneshot(post_tasks("next")));
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 2).await;
        gate.release.notify_waiters();
        assert_eq!(next.await.unwrap().unwrap().status(), StatusCode::CREATED);
    }

    #[tokio::test]
    async fn routes_are_labelled_by_template_and_unknown_paths_collapse() {
        let metrics = metrics();
        let app = router(Gate::default(), metrics.clone(), 4);
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
