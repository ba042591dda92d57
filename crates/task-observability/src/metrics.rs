//! The Prometheus metric families of the Task API and their text exposition.
//!
//! One [`Metrics`] value per process, cheap to clone; it owns its own registry (not the
//! `prometheus` crate's global default) so that tests can build several independent
//! applications in one process.

use std::sync::Arc;

use axum::http::StatusCode;
use task_store::PoolStats;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Seconds; spans the range from a cached read (~1 ms) to the 10 s+ tail of a request that
/// waited for a database connection.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metric registration failed: {0}")]
    Registration(#[from] prometheus::Error),
    #[error("metrics text is not UTF-8: {0}")]
    Encoding(#[from] std::string::FromUtf8Error),
}

/// What `task_api_build_info` reports.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// Crate version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The git commit the binary was built from, or `unknown` for local builds.
    pub git_sha: String,
}

/// The service's metric families. Clones share the same underlying series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

struct Families {
    registry: Registry,
    http_requests_total: IntCounterVec,
    http_request_duration_seconds: HistogramVec,
    http_requests_in_flight: IntGauge,
    http_requests_rejected_total: IntCounterVec,
    db_pool_connections: IntGaugeVec,
    db_pool_max_connections: IntGauge,
    db_up: IntGauge,
    auth_failures_total: IntCounterVec,
}

impl Metrics {
    pub fn new(build: &BuildInfo) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let http_labels = &["route", "method", "status"];

        let http_requests_total = IntCounterVec::new(
            Opts::new(
                "task_api_http_requests_total",
                "HTTP requests answered on the public listener, by route template, method and status.",
            ),
            http_labels,
        )?;
        let http_request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "task_api_http_request_duration_seconds",
                "Time from receiving a request to producing its response head, by route template, method and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            http_labels,
        )?;
        let http_requests_in_flight = IntGauge::new(
            "task_api_http_requests_in_flight",
            "Public requests admitted by the in-flight limiter and not yet answered.",
        )?;
        let http_requests_rejected_total = IntCounterVec::new(
            Opts::new(
                "task_api_http_requests_rejected_total",
                "Requests refused before reaching a handler, by reason (overload = 429 from the in-flight limiter).",
            ),
            &["reason"],
        )?;
        let db_pool_connections = IntGaugeVec::new(
            Opts::new(
                "task_api_db_pool_connections",
                "Open database connections by state (idle or in_use).",
            ),
            &["state"],
        )?;
        let db_pool_max_connections = IntGauge::new(
            "task_api_db_pool_max_connections",
            "Upper bound of the database connection pool.",
        )?;
        let db_up = IntGauge::new(
            "task_api_db_up",
            "1 when the last database health check succeeded, 0 otherwise.",
        )?;
        let auth_failures_total = IntCounterVec::new(
            Opts::new(
                "task_api_auth_failures_total",
                "Requests rejected with 401, by reason.",
            ),
            &["reason"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "task_api_build_info",
                "Always 1; the labels identify the running build.",
            ),
            &["version", "git_sha"],
        )?;

        registry.register(Box::new(http_requests_total.clone()))?;
        registry.register(Box::new(http_request_duration_seconds.clone()))?;
        registry.register(Box::new(http_requests_in_flight.clone()))?;
        registry.register(Box::new(http_requests_rejected_total.clone()))?;
        registry.register(Box::new(db_pool_connections.clone()))?;
        registry.register(Box::new(db_pool_max_connections.clone()))?;
        registry.register(Box::new(db_up.clone()))?;
        registry.register(Box::new(auth_failures_total.clone()))?;
        registry.register(Box::new(build_info.clone()))?;

        build_info
            .with_label_values(&[build.version.as_str(), build.git_sha.as_str()])
            .set(1);
        // Present from the first scrape, so that `rate()` and absence alerts have a baseline.
        http_requests_rejected_total.with_label_values(&["overload"]);
        for state in ["idle", "in_use"] {
            db_pool_connections.with_label_values(&[state]);
        }

        Ok(Self {
            inner: Arc::new(Families {
                registry,
                http_requests_total,
                http_request_duration_seconds,
                http_requests_in_flight,
                http_requests_rejected_total,
                db_pool_connections,
                db_pool_max_connections,
                db_up,
                auth_failures_total,
            }),
        })
    }

    /// One answered request. `route` must be a route template (bounded cardinality), never
    /// the raw path.
    pub fn observe_request(&self, route: &str, method: &str, status: StatusCode, seconds: f64) {
        let labels = [route, method, status.as_str()];
        let families = &self.inner;
        families
            .http_requests_total
            .with_label_values(&labels)
            .inc();
        families
            .http_request_duration_seconds
            .with_label_values(&labels)
            .observe(seconds);
    }

    pub fn record_rejection(&self, reason: &str) {
        self.inner
            .http_requests_rejected_total
            .with_label_values(&[reason])
            .inc();
    }

    /// `reason` must come from a small fixed set (e.g. `missing`, `malformed`, `expired`),
    /// never from token contents.
    pub fn record_auth_failure(&self, reason: &str) {
        self.inner
            .auth_failures_total
            .with_label_values(&[reason])
            .inc();
    }

    pub fn set_db_up(&self, up: bool) {
        self.inner.db_up.set(i64::from(up));
    }

    /// The store's own snapshot type: `idle` is the open connections without a statement in
    /// flight, `in_use` the busy ones.
    pub fn set_db_pool(&self, stats: PoolStats) {
        let families = &self.inner;
        families
            .db_pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(stats.open.saturating_sub(stats.busy)));
        families
            .db_pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(stats.busy));
        families.db_pool_max_connections.set(i64::from(stats.max));
    }

    /// The in-flight gauge; the limiter that admits requests owns the count.
    pub fn in_flight_gauge(&self) -> &IntGauge {
        &self.inner.http_requests_in_flight
    }

    /// The Prometheus text exposition (format 0.0.4) of every family.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.inner.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8(buffer)?)
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(&BuildInfo {
            version: "1.2.3".into(),
            git_sha: "0123456789abcdef0123456789abcdef01234567".into(),
        })
        .expect("metrics")
    }

    #[test]
    fn build_info_is_one_with_version_and_sha() {
        let text = metrics().render().unwrap();
        assert!(
            text.contains(
                "task_api_build_info{git_sha=\"0123456789abcdef0123456789abcdef01234567\",version=\"1.2.3\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn request_observations_are_labelled_by_route_method_status() {
        let metrics = metrics();
        metrics.observe_request("/tasks/{id}", "GET", StatusCode::NOT_FOUND, 0.003);
        metrics.observe_request("/tasks/{id}", "GET", StatusCode::NOT_FOUND, 0.004);
        metrics.observe_request("/tasks", "POST", StatusCode::CREATED, 0.02);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                "task_api_http_requests_total{method=\"GET\",route=\"/tasks/{id}\",status=\"404\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "task_api_http_request_duration_seconds_count{method=\"POST\",route=\"/tasks\",status=\"201\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "task_api_http_request_duration_seconds_bucket{method=\"POST\",route=\"/tasks\",status=\"201\",le=\"0.025\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn pool_db_and_rejection_series_render() {
        let metrics = metrics();
        let before = metrics.render().unwrap();
        assert!(
            before.contains("task_api_http_requests_rejected_total{reason=\"overload\"} 0"),
            "{before}"
        );
        metrics.set_db_pool(PoolStats {
            open: 5,
            busy: 2,
            max: 16,
        });
        metrics.set_db_up(true);
        metrics.record_rejection("overload");
        metrics.record_auth_failure("expired");
        let text = metrics.render().unwrap();
        for expected in [
            "task_api_db_pool_connections{state=\"idle\"} 3",
            "task_api_db_pool_connections{state=\"in_use\"} 2",
            "task_api_db_pool_max_connections 16",
            "task_api_db_up 1",
            "task_api_http_requests_rejected_total{reason=\"overload\"} 1",
            "task_api_auth_failures_total{reason=\"expired\"} 1",
            "# TYPE task_api_http_requests_in_flight gauge",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        metrics.set_db_up(false);
        assert!(metrics.render().unwrap().contains("task_api_db_up 0"));
    }

    #[test]
    fn independent_instances_do_not_share_series() {
        let first = metrics();
        let second = metrics();
        first.record_rejection("overload");
        assert!(
            second
                .render()
                .unwrap()
                .contains("task_api_http_requests_rejected_total{reason=\"overload\"} 0")
        );
    }
}
