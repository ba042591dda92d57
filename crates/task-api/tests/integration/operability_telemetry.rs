//! Telemetry export of the real binary: with OTEL_EXPORTER_OTLP_ENDPOINT and
//! TASK_API_LOKI_URL pointing at local receivers, a request's span continues the caller's W3C
//! trace and reaches the OTLP receiver, logs reach the Loki push endpoint, and both are
//! flushed when the process stops on SIGTERM.

mod operability_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use operability_support::{ServiceProcess, eventually};
use task_testkit::TestDatabase;

/// One POST a receiver got: path, content type, body.
type Post = (String, Option<String>, Bytes);

#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<Post>>>,
}

impl Received {
    fn to(&self, path: &str) -> Vec<(Option<String>, Bytes)> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, content_type, body)| (content_type.clone(), body.clone()))
            .collect()
    }
}

async fn record(
    State(received): State<Received>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    received
        .requests
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), content_type, body));
    StatusCode::OK
}

/// A stand-in for the OpenTelemetry collector and Loki: accepts and keeps every POST.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(record))
        .route("/loki/api/v1/push", post(record))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_and_logs_reach_loki() {
    let database = TestDatabase::postgres().await.unwrap();
    let (collector, received) = receiver().await;
    let mut service = ServiceProcess::start(
        database.url(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
            ("TASK_API_LOKI_URL", collector.as_str()),
        ],
    )
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .get(service.url("/tasks"))
        .bearer_auth(&service.dev_token)
        .header("correlation_id", "traced-request-1")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    service.terminate();
    let status = service.wait_for_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0));

    let trace_id_bytes: Vec<u8> = (0..trace_id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&trace_id[i..i + 2], 16).unwrap())
        .collect();
    let traces = eventually(Duration::from_secs(5), "an OTLP export", || async {
        let traces = received.to("/v1/traces");
        (!traces.is_empty()).then_some(traces)
    })
    .await;
    assert!(
        traces
            .iter()
            .all(|(content_type, _)| content_type.as_deref() == Some("application/x-protobuf"))
    );
    let request_span = traces
        .iter()
        .find(|(_, body)| contains(body, b"traced-request-1") && contains(body, &trace_id_bytes));
    assert!(
        request_span.is_some(),
        "no exported span in trace {trace_id} carries the correlation id"
    );
    assert!(
        traces
            .iter()
            .any(|(_, body)| contains(body, b"GET /tasks") && contains(body, b"task-api")),
        "span name or service.name missing"
    );

    let pushes = received.to("/loki/api/v1/push");
    assert!(!pushes.is_empty(), "no log batch reached Loki");
    assert!(
        pushes
            .iter()
            .all(
                |(content_type, body)| content_type.as_deref() == Some("application/x-protobuf")
                    && !body.is_empty()
            )
    );
}
