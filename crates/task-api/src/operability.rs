//! Operability wiring of the service: telemetry settings from the configuration, the
//! Prometheus `/metrics` endpoint of the admin listener, and the public router's metrics and
//! in-flight limit layers. The building blocks live in `task-observability`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{ConnectionTrait as _, DatabaseBackend, DatabaseConnection};
use task_observability::{
    BuildInfo, DbPoolStats, HttpMetricsLayer, InFlightLimitLayer, LogFormat as TelemetryFormat,
    Metrics, TEXT_CONTENT_TYPE, TelemetryConfig,
};

use crate::app::AppState;
use crate::config::{Config, LogFormat};
use crate::error::{ApiError, AuthFailure};

/// `task_api_db_up` is measured at scrape time; a scrape must not wait on a database that
/// does not answer.
pub const DB_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The metrics and limits shared by both listeners of one process.
#[derive(Clone)]
pub struct Operability {
    pub metrics: Metrics,
    pub max_inflight: usize,
    /// The store's pool, sampled for the pool gauges at scrape time.
    pub database: Option<DatabaseConnection>,
}

impl Operability {
    pub fn new(max_inflight: usize, database: Option<DatabaseConnection>) -> Self {
        let metrics = Metrics::new(&build_info())
            .expect("the metric families are statically valid and registered once");
        Self {
            metrics,
            max_inflight,
            database,
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
    let reject = Arc::new(|_: &axum::extract::Request| ApiError::Overloaded.into_response());
    router
        .layer(InFlightLimitLayer::new(
            operability.max_inflight,
            operability.metrics.clone(),
            reject,
        ))
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
    if let Some(stats) = pool_stats(&state) {
        metrics.set_db_pool(stats);
    }
    match metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn pool_stats(state: &AppState) -> Option<DbPoolStats> {
    let connection = state.operability.database.as_ref()?;
    let (size, idle, max) = match connection.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = connection.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        DatabaseBackend::Sqlite => {
            let pool = connection.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return None,
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    Some(DbPoolStats {
        idle,
        in_use: size - idle,
        max,
    })
}
