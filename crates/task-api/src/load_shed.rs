//! The in-flight limit of the public listener: at most `max_in_flight` requests at once, the
//! rest answered 429 at once.
//!
//! It never queues: a queued request would hold its connection until a client or proxy
//! timeout and turn an overload into timeouts and 5xx upstream. A rejected request never
//! reaches the handlers, so it has no side effect. It sits inside the correlation layer (the
//! 429 is a problem document with the request's correlation id and `Retry-After`, see
//! [`ApiError::Overloaded`]) and inside the metrics layer (429s are counted like any answer).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use task_observability::{Metrics, route_label};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use crate::error::ApiError;

#[derive(Clone)]
pub struct InFlightLimitLayer {
    state: Arc<LimiterState>,
}

struct LimiterState {
    permits: Arc<Semaphore>,
    metrics: Metrics,
}

impl InFlightLimitLayer {
    /// `max_in_flight` must be at least 1 (configuration validates it).
    pub fn new(max_in_flight: usize, metrics: Metrics) -> Self {
        Self {
            state: Arc::new(LimiterState {
                permits: Arc::new(Semaphore::new(max_in_flight)),
                metrics,
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
            // Debug only: under a flood a line per rejection would amplify the overload into
            // the log pipeline; the access line (status 429) and the rejection counter tell.
            tracing::debug!(
                route = route_label(&request),
                method = %request.method(),
                "request rejected: in-flight limit reached"
            );
            let response = ApiError::Overloaded.into_response();
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use task_observability::{BuildInfo, HttpMetricsLayer};
    use tokio::sync::Notify;
    use tower::ServiceExt;

    fn metrics() -> Metrics {
        Metrics::new(&BuildInfo {
            version: "0.0.0".into(),
            git_sha: "unknown".into(),
        })
        .unwrap()
    }

    #[derive(Clone, Default)]
    struct Gate {
        entered: Arc<AtomicUsize>,
        created: Arc<AtomicUsize>,
        release: Arc<Notify>,
    }

    /// A handler that waits for the gate, behind the limiter, the metrics and the
    /// correlation layer as the public router stacks them.
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
            .layer(InFlightLimitLayer::new(limit, metrics.clone()))
            .layer(HttpMetricsLayer::new(metrics))
            .layer(axum::middleware::from_fn(crate::correlation::correlate))
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

    fn in_flight(metrics: &Metrics) -> i64 {
        metrics.in_flight_gauge().get()
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
        assert_eq!(in_flight(&metrics), 2);

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
        assert_eq!(problem["status"], 429);
        assert_eq!(gate.entered.load(Ordering::SeqCst), 2, "handler ran");

        gate.release.notify_waiters();
        for handle in held {
            assert_eq!(handle.await.unwrap().unwrap().status(), StatusCode::CREATED);
        }
        assert_eq!(gate.created.load(Ordering::SeqCst), 2);
        assert_eq!(in_flight(&metrics), 0);

        let text = metrics.render().unwrap();
        for expected in [
            "task_api_http_requests_rejected_total{reason=\"overload\"} 1",
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
        assert_eq!(in_flight(&metrics), 0);
        let next = tokio::spawn(app.clone().oneshot(post_tasks("next")));
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 2).await;
        gate.release.notify_waiters();
        assert_eq!(next.await.unwrap().unwrap().status(), StatusCode::CREATED);
    }
}
