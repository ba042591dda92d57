//! Operability wiring of the service: telemetry settings from the configuration, the
//! Prometheus `/metrics` endpoint of the admin listener, and the public router's metrics and
//! in-flight limit layers. Telemetry and metric building blocks live in `task-observability`, the
//! limiter in `load_shed`.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use task_observability::{
    BuildInfo, HttpMetricsLayer, LogFormat as TelemetryFormat, Metrics, TEXT_CONTENT_TYPE,
    TelemetryConfig,
};

use crate::app::AppState;
use crate::config::{Config, LogFormat};
use crate::error::AuthFailure;
use crate::load_shed::InFlightLimit;

/// `task_api_db_up` is measured at scrape time; a scrape must not wait on a database that
/// does not answer.
pub const DB_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The metrics and limits shared by both listeners of one process.
#[derive(Clone)]
pub struct Operability {
    pub metrics: Metrics,
    pub in_flight: InFlightLimit,
}

impl Operability {
    pub fn new(max_inflight: usize) -> Self {
        let metrics = Metrics::new(&build_info())
            .expect("the metric families are statically valid and registered once");
        Self {
            metrics,
            in_flight: InFlightLimit::new(max_inflight),
        }
    }
}

/// The version of this crate and the commit it was built from (`TASK_API_GIT_SHA` at build
/// time, set by the image build; `unknown` otherwise).
pub fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_sha: option_env!("TASK_API_GIT_SHA")
            .filter(|sha| !sha.is_empty())
            .unwrap_or("unknown")
            .to_owned(),
    }
}

pub fn telemetry_config(config: &Config) -> TelemetryConfig {
    TelemetryConfig {
        service_name: "task-api".to_owned(),
        service_version: env!("CARGO_PKG_VERSION").to_owned(),
        log_format: match config.log_format {
            LogFormat::Json => TelemetryFormat::Json,
            LogFormat::Pretty => TelemetryFormat::Pretty,
        },
        log_level: config.log_level.clone(),
        loki_url: config.loki_url.clone(),
        otlp_endpoint: config.otlp_endpoint.clone(),
    }
}

/// Adds request metrics and the in-flight limit to the public router. Call it before the
/// correlation layer is added, so that 429s are problem documents with the correlation id.
pub fn instrument_public(router: Router, operability: &Operability) -> Router {
    operability
        .in_flight
        .apply(router, operability.metrics.clone())
        .layer(
            HttpMetricsLayer::new(operability.metrics.clone()).with_auth_failure_reason(
                |response| response.extensions().get::<AuthFailure>().map(|f| f.0),
            ),
        )
}

/// `GET /metrics` on the admin listener.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = &state.operability.metrics;
    metrics.set_db_up(state.store.ping(DB_PROBE_TIMEOUT).await.is_ok());
    metrics.set_db_pool(state.store.pool_stats());
    let in_flight = state.operability.in_flight.in_flight();
    metrics
        .in_flight_gauge()
        .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    match metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
