//! Operability of the Task API: what an on-call engineer sees and what protects a replica.
//!
//! - [`telemetry`]: the process-wide `tracing` subscriber (JSON or pretty logs on stdout,
//!   optional push to Loki, optional OTLP trace export with W3C trace-context propagation)
//!   and the guard that flushes it on shutdown.
//! - [`metrics`]: the Prometheus registry with the service's metric families and their text
//!   rendering for the admin `/metrics` endpoint.
//! - [`http`]: request metrics by route template (a tower layer for the public router), the
//!   request span and the access log line.
//!
//! Metric names and log fields are an interface: alert rules and dashboards in the Helm
//! chart select on them, and `docs/operability.md` lists them.

pub mod http;
pub mod metrics;
pub mod telemetry;

pub use http::{AccessLog, AuthFailureReason, HttpMetricsLayer, request_span, route_label};
pub use metrics::{BuildInfo, Metrics, MetricsError, TEXT_CONTENT_TYPE};
pub use telemetry::{LogFormat, TelemetryConfig, TelemetryError, TelemetryGuard, init_telemetry};
