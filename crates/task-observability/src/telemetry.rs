//! Process-wide telemetry: logs on stdout (always), Loki push and OTLP trace export (each
//! only when configured), and the guard that flushes them on shutdown.
//!
//! Log lines are formatted on the thread that logs them and written to stdout by a thread of
//! their own, in batches: a request never waits on the log pipe, and one `write` carries
//! every line logged since the previous one. Should stdout stall for long (over 128,000
//! lines behind), further lines are dropped rather than stall requests.
//!
//! Nothing optional costs anything when it is not configured: no Loki task, no exporter
//! thread, no OpenTelemetry layer in the subscriber, and no trace-context header parsing
//! per request.

use std::borrow::Cow;
use std::io::BufWriter;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use task_store::DATABASE_SPAN_TARGET;
use tracing::Subscriber;
use tracing_appender::non_blocking::NonBlocking;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};
use url::Url;

use crate::http::HeaderExtractor;

/// Whether spans are exported, so that per-request work for traces is skipped otherwise.
static TRACE_EXPORT_ENABLED: AtomicBool = AtomicBool::new(false);

/// Bound on flushing logs and spans at shutdown, inside the pod's termination grace period.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line: what the cluster's log collector parses.
    Json,
    /// Human-readable single lines with ANSI colours: local development.
    Pretty,
}

#[derive(Debug, thiserror::Error)]
#[error("log format must be `json` or `pretty`, got {0:?}")]
pub struct InvalidLogFormat(String);

impl FromStr for LogFormat {
    type Err = InvalidLogFormat;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err(InvalidLogFormat(value.to_owned())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service` label in Loki and `service.name` of spans (unless `OTEL_SERVICE_NAME` is set).
    pub service_name: String,
    pub service_version: String,
    pub log_format: LogFormat,
    /// `tracing` filter directives (`info`, `info,task_api=debug`), from TASK_API_LOG_LEVEL.
    pub log_level: String,
    /// Loki base URL (`http://loki-gateway.monitoring:80`); `/loki/api/v1/push` is appended.
    pub loki_url: Option<String>,
    /// OTLP/HTTP base endpoint (`http://otel-collector:4318`), from OTEL_EXPORTER_OTLP_ENDPOINT;
    /// spans go to `{endpoint}/v1/traces` unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT says
    /// otherwise.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log level directives {directives:?}: {source}")]
    LogLevel {
        directives: String,
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("TASK_API_LOKI_URL {url:?} is not a URL: {source}")]
    LokiUrl {
        url: String,
        source: url::ParseError,
    },
    #[error("Loki log shipping: {0}")]
    Loki(#[from] tracing_loki::Error),
    #[error("Loki log shipping needs a Tokio runtime; initialise telemetry from async main")]
    NoRuntime,
    #[error("OTLP trace exporter: {0}")]
    Otlp(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInitialised(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the optional exporters alive; call [`TelemetryGuard::shutdown`] last thing before
/// the process exits so that buffered logs and spans are delivered.
#[must_use = "dropping the guard stops log shipping and trace export"]
pub struct TelemetryGuard {
    loki: Option<(
        tracing_loki::BackgroundTaskController,
        tokio::task::JoinHandle<()>,
    )>,
    tracer_provider: Option<SdkTracerProvider>,
    /// Dropping it writes the lines still queued for stdout.
    stdout: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl TelemetryGuard {
    /// Flushes Loki and OTLP, each bounded by a few seconds (a collector that is down must not
    /// hold the process past its termination grace period).
    pub async fn shutdown(mut self) {
        if let Some((controller, task)) = self.loki.take() {
            controller.shutdown().await;
            if tokio::time::timeout(FLUSH_TIMEOUT, task).await.is_err() {
                eprintln!("telemetry: Loki did not accept the last log batch in time");
            }
        }
        if let Some(provider) = self.tracer_provider.take() {
            TRACE_EXPORT_ENABLED.store(false, Ordering::Relaxed);
            // The batch processor's shutdown blocks on its exporter thread.
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
            match tokio::time::timeout(FLUSH_TIMEOUT, flushed).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => eprintln!("telemetry: span export shutdown: {error}"),
                Ok(Err(error)) => eprintln!("telemetry: span export shutdown panicked: {error}"),
                Err(_) => eprintln!("telemetry: span export did not finish in time"),
            }
        }
        drop(self.stdout.take());
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Only reached when `shutdown` was not awaited (an early error path): best effort.
        if let Some(provider) = self.tracer_provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// True when spans are exported over OTLP.
pub fn trace_export_enabled() -> bool {
    TRACE_EXPORT_ENABLED.load(Ordering::Relaxed)
}

/// Makes `span` a child of the W3C trace context (`traceparent`, `tracestate`) in `headers`,
/// if there is a valid one.
pub fn continue_remote_trace(span: &tracing::Span, headers: &HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only when the span is disabled by the filter; then there is nothing to export.
    let _ = span.set_parent(parent);
}

/// Installs the global `tracing` subscriber. Call once, from inside the Tokio runtime.
pub fn init_telemetry(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let directives = filter_directives(&config.log_level, config.otlp_endpoint.is_some());
    let filter = EnvFilter::try_new(&directives).map_err(|source| TelemetryError::LogLevel {
        directives: config.log_level.clone(),
        source,
    })?;

    let (stdout, stdout_guard) =
        tracing_appender::non_blocking(BufWriter::with_capacity(STDOUT_BATCH, std::io::stdout()));
    let mut layers: Vec<Box<dyn Layer<Base> + Send + Sync>> =
        vec![stdout_layer(config.log_format, stdout)];

    let loki = match &config.loki_url {
        Some(url) => {
            let url = Url::parse(url).map_err(|source| TelemetryError::LokiUrl {
                url: url.clone(),
                source,
            })?;
            let runtime =
                tokio::runtime::Handle::try_current().map_err(|_| TelemetryError::NoRuntime)?;
            let (layer, controller, task) = tracing_loki::builder()
                .label("service", &config.service_name)?
                .extra_field("version", config.service_version.clone())?
                .extra_field("pid", std::process::id().to_string())?
                .build_controller_url(url)?;
            layers.push(Box::new(layer));
            Some((controller, runtime.spawn(task)))
        }
        None => None,
    };

    let tracer_provider = match &config.otlp_endpoint {
        Some(endpoint) => {
            let provider = tracer_provider(config, endpoint)?;
            let tracer = provider.tracer("task-api");
            layers.push(Box::new(tracing_opentelemetry::layer().with_tracer(tracer)));
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            opentelemetry::global::set_tracer_provider(provider.clone());
            Some(provider)
        }
        None => None,
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init()?;
    TRACE_EXPORT_ENABLED.store(tracer_provider.is_some(), Ordering::Relaxed);

    Ok(TelemetryGuard {
        loki,
        tracer_provider,
        stdout: Some(stdout_guard),
    })
}

/// The filter directives: the configured ones, and the database client spans off unless
/// traces are exported. No log line is written inside a database span, so only an exporter
/// ever reads one, and recording them costs GET about a sixth of its throughput
/// (docs/performance.md). Directives that name the spans' target themselves decide alone.
fn filter_directives(log_level: &str, traces_exported: bool) -> Cow<'_, str> {
    if traces_exported || log_level.contains(DATABASE_SPAN_TARGET) {
        Cow::Borrowed(log_level)
    } else {
        Cow::Owned(format!("{log_level},{DATABASE_SPAN_TARGET}=off"))
    }
}

type Base = tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>;

/// Bytes of log lines gathered into one write to stdout.
const STDOUT_BATCH: usize = 64 * 1024;

fn stdout_layer<S>(format: LogFormat, stdout: NonBlocking) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    match format {
        // Event fields at the top level, the request span's fields (correlation_id, route,
        // method) under "span", so every line of a request can be found by its id.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(stdout)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(stdout).boxed(),
    }
}

fn tracer_provider(
    config: &TelemetryConfig,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    // The specific variable wins, as the OTLP exporter specification says; the exporter
    // reads it itself.
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
        exporter = exporter.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
    }
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        config.service_version.clone(),
    ));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(config.service_name.clone());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter.build()?)
        .with_resource(resource.build())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_case_insensitively_and_rejects_others() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!(" Pretty ".parse::<LogFormat>().unwrap(), LogFormat::Pretty);
        assert!("text".parse::<LogFormat>().is_err());
    }

    /// Whether an INFO database span and an INFO span of the service are recorded under the
    /// filter `init_telemetry` builds from `log_level`.
    fn recorded(log_level: &str, traces_exported: bool) -> (bool, bool) {
        let filter = EnvFilter::try_new(filter_directives(log_level, traces_exported)).unwrap();
        let subscriber = tracing_subscriber::registry().with(filter);
        tracing::subscriber::with_default(subscriber, || {
            let database = tracing::info_span!(target: DATABASE_SPAN_TARGET, "SELECT tasks");
            let request = tracing::info_span!("request");
            (!database.is_disabled(), !request.is_disabled())
        })
    }

    #[test]
    fn database_spans_are_recorded_only_when_traces_are_exported() {
        assert_eq!(recorded("info", false), (false, true));
        assert_eq!(recorded("info", true), (true, true));
        assert_eq!(recorded("warn", true), (false, false));
        // An operator who names the target decides, exported or not.
        assert_eq!(recorded("warn,task_store::db=info", false), (true, false));
        assert_eq!(recorded("info,task_store::db=off", true), (false, true));
    }

    #[test]
    fn remote_trace_context_becomes_the_span_parent() {
        use opentelemetry::trace::TraceContextExt as _;

        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            continue_remote_trace(&span, &headers);
            let context = span.context();
            let trace_id = context.span().span_context().trace_id().to_string();
            assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        });
    }
}
