//! The in-flight limit of the public listener: at most `max` requests at once, the rest
//! answered 429 at once.
//!
//! It never queues: a queued request would hold its connection until a client or proxy
//! timeout and turn an overload into timeouts and 5xx upstream. A rejected request never
//! reaches the handlers, so it has no side effect. It sits inside the correlation layer (the
//! 429 is a problem document with the request's correlation id and `Retry-After`, see
//! [`ApiError::Overloaded`]) and inside the metrics layer (429s are counted like any answer).
//!
//! Built from tower's layers: a [`GlobalConcurrencyLimitLayer`] (one semaphore for every
//! route; the per-service `ConcurrencyLimitLayer` would give each route its own) is not
//! ready while all permits are taken, [`LoadShedLayer`] turns "not ready" into an immediate
//! `Overloaded` error instead of waiting, and axum's [`HandleErrorLayer`] answers that error.
//! A permit is held by the request's future: an abandoned request (client gone) frees it.

use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::response::{IntoResponse, Response};
use task_observability::Metrics;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::load_shed::error::Overloaded;
use tower::{BoxError, ServiceBuilder};

use crate::error::ApiError;

/// The limit shared by every route of the public listener of one process.
#[derive(Clone)]
pub struct InFlightLimit {
    permits: Arc<Semaphore>,
    max: usize,
}

impl InFlightLimit {
    /// `max` must be at least 1 (configuration validates it).
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Requests admitted and not yet answered (for `task_api_http_requests_in_flight`,
    /// sampled at scrape time: nothing is counted per request beyond the semaphore itself).
    pub fn in_flight(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// Adds the limit to every route of `router`; rejections count in `metrics`.
    pub fn apply(&self, router: Router, metrics: Metrics) -> Router {
        router.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |error: BoxError| {
                    let metrics = metrics.clone();
                    async move { rejection(&error, &metrics) }
                }))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(
                    self.permits.clone(),
                )),
        )
    }
}

fn rejection(error: &BoxError, metrics: &Metrics) -> Response {
    if error.is::<Overloaded>() {
        metrics.record_rejection("overload");
        // Debug only: under a flood a line per rejection would amplify the overload into
        // the log pipeline; the access line (status 429, in the request span with its route
        // and method) and the rejection counter tell.
        tracing::debug!("request rejected: in-flight limit reached");
        ApiError::Overloaded.into_response()
    } else {
        // The layers below are axum routes (infallible): nothing else reaches here.
        ApiError::Internal(format!("in-flight limit: {error}")).into_response()
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
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
    fn router(gate: Gate, metrics: Metrics, limit: &InFlightLimit) -> Router {
        let routes = Router::new()
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
            .route("/tasks/{id}", axum::routing::get(|| async { "task" }));
        crate::correlation::correlated(
            limit
                .apply(routes, metrics.clone())
                .layer(HttpMetricsLayer::new(metrics)),
        )
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
        let limit = InFlightLimit::new(2);
        let app = router(gate.clone(), metrics.clone(), &limit);

        let held: Vec<_> = (0..2)
            .map(|i| tokio::spawn(app.clone().oneshot(post_tasks(&format!("held-{i}")))))
            .collect();
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 2).await;

        // An admitted request would wait at the gate: a rejection answers at once.
        let answered_at_once = |request| {
            let app = app.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(5), app.oneshot(request))
                    .await
                    .expect("answered at once, not admitted")
                    .unwrap()
            }
        };
        let rejected = answered_at_once(post_tasks("third")).await;
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
        // One limit for the whole listener, not one per route.
        let other_route = answered_at_once(
            axum::http::Request::get("/tasks/1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(other_route.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limit.in_flight(), 2);

        gate.release.notify_waiters();
        for handle in held {
            assert_eq!(handle.await.unwrap().unwrap().status(), StatusCode::CREATED);
        }
        assert_eq!(gate.created.load(Ordering::SeqCst), 2);
        assert_eq!(limit.in_flight(), 0);

        let text = metrics.render().unwrap();
        for expected in [
            "task_api_http_requests_rejected_total{reason=\"overload\"} 2",
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
        let limit = InFlightLimit::new(1);
        let app = router(gate.clone(), metrics.clone(), &limit);
        let abandoned = tokio::spawn(app.clone().oneshot(post_tasks("gone")));
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 1).await;
        abandoned.abort();
        let _ = abandoned.await;
        assert_eq!(limit.in_flight(), 0);
        let next = tokio::spawn(app.clone().oneshot(post_tasks("next")));
        wait_until(|| gate.entered.load(Ordering::SeqCst) == 2).await;
        gate.release.notify_waiters();
        assert_eq!(next.await.unwrap().unwrap().status(), StatusCode::CREATED);
    }
}
