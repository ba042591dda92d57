//! Telemetry export of the real binary: with OTEL_EXPORTER_OTLP_ENDPOINT and
//! TASK_API_LOKI_URL pointing at local receivers, a request's span continues the caller's W3C
//! trace and reaches the OTLP receiver with the database client span of its statement inside
//! it, logs reach the Loki push endpoint, and both are flushed when the process stops on
//! SIGTERM.

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

/// One field of a protobuf message: its number and its payload (varints and fixed-width
/// values as numbers, length-delimited ones as bytes).
enum Field<'a> {
    Number(u64),
    Bytes(&'a [u8]),
}

/// The fields of one protobuf message, in order. The OTLP export is protobuf; the few
/// fields this test reads are walked here rather than pulling a generated OTLP client into
/// the test build.
fn fields(mut message: &[u8]) -> Vec<(u64, Field<'_>)> {
    fn varint(buffer: &mut &[u8]) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = buffer.split_first().expect("truncated varint");
            *buffer = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut fields = Vec::new();
    while !message.is_empty() {
        let key = varint(&mut message);
        let field = match key & 7 {
            0 => Field::Number(varint(&mut message)),
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                let (bytes, rest) = message.split_at(width);
                message = rest;
                Field::Number(bytes.iter().rev().fold(0, |n, b| n << 8 | u64::from(*b)))
            }
            2 => {
                let length = usize::try_from(varint(&mut message)).unwrap();
                let (bytes, rest) = message.split_at(length);
                message = rest;
                Field::Bytes(bytes)
            }
            other => panic!("unexpected protobuf wire type {other}"),
        };
        fields.push((key >> 3, field));
    }
    fields
}

fn bytes_of<'a>(fields: &[(u64, Field<'a>)], number: u64) -> impl Iterator<Item = &'a [u8]> {
    fields.iter().filter_map(move |(n, field)| match field {
        Field::Bytes(bytes) if *n == number => Some(*bytes),
        _ => None,
    })
}

/// A span of an OTLP export (opentelemetry/proto/trace/v1/trace.proto).
#[derive(Debug)]
struct ExportedSpan {
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
    /// 2 server, 3 client.
    kind: u64,
    /// String-valued attributes (other values as their debug form).
    attributes: Vec<(String, String)>,
}

/// Every span of an `ExportTraceServiceRequest`: resource_spans(1) -> scope_spans(2) ->
/// spans(2).
fn spans(export: &[u8]) -> Vec<ExportedSpan> {
    let mut spans = Vec::new();
    for resource_spans in bytes_of(&fields(export), 1) {
        for scope_spans in bytes_of(&fields(resource_spans), 2) {
            for span in bytes_of(&fields(scope_spans), 2) {
                let span = fields(span);
                let text = |number| {
                    bytes_of(&span, number)
                        .next()
                        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                        .unwrap_or_default()
                };
                let attributes = bytes_of(&span, 9)
                    .map(|key_value| {
                        let key_value = fields(key_value);
                        let key = bytes_of(&key_value, 1).next().unwrap_or_default();
                        let value = bytes_of(&key_value, 2)
                            .next()
                            .map(|any| match fields(any).first() {
                                Some((1, Field::Bytes(text))) => {
                                    String::from_utf8_lossy(text).into_owned()
                                }
                                Some((_, Field::Number(number))) => number.to_string(),
                                _ => String::new(),
                            })
                            .unwrap_or_default();
                        (String::from_utf8_lossy(key).into_owned(), value)
                    })
                    .collect();
                spans.push(ExportedSpan {
                    span_id: bytes_of(&span, 2).next().unwrap_or_default().to_vec(),
                    parent_span_id: bytes_of(&span, 4).next().unwrap_or_default().to_vec(),
                    name: text(5),
                    kind: span
                        .iter()
                        .find_map(|(n, field)| match field {
                            Field::Number(kind) if *n == 6 => Some(*kind),
                            _ => None,
                        })
                        .unwrap_or(0),
                    attributes,
                });
            }
        }
    }
    spans
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

    // The statement ran in a database client span inside the request's span, with the
    // OpenTelemetry database attributes and none of the statement's parameters.
    let exported: Vec<ExportedSpan> = traces.iter().flat_map(|(_, body)| spans(body)).collect();
    let request = exported
        .iter()
        .find(|span| span.name == "GET /tasks")
        .unwrap_or_else(|| panic!("no request span in {exported:#?}"));
    // The answer's status is recorded on the exported request span (the log lines carry it
    // in the access line only).
    assert!(
        request
            .attributes
            .iter()
            .any(|(key, value)| key == "status" && value == "200"),
        "no status on the request span: {request:#?}"
    );
    let statement_span = exported
        .iter()
        .find(|span| span.name == "SELECT tasks")
        .unwrap_or_else(|| panic!("no database span in {exported:#?}"));
    let mut ancestor = statement_span;
    while ancestor.span_id != request.span_id {
        ancestor = exported
            .iter()
            .find(|span| span.span_id == ancestor.parent_span_id)
            .unwrap_or_else(|| panic!("{statement_span:#?} is not inside {request:#?}"));
    }
    assert_eq!(
        statement_span.kind, 3,
        "not a client span: {statement_span:#?}"
    );
    let database_name = database
        .url()
        .rsplit('/')
        .next()
        .and_then(|path| path.split('?').next())
        .unwrap();
    let attribute = |key: &str| {
        statement_span
            .attributes
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    };
    for (key, value) in [
        ("db.system", "postgresql"),
        ("db.system.name", "postgresql"),
        ("db.operation", "SELECT"),
        ("db.operation.name", "SELECT"),
        ("db.collection.name", "tasks"),
        ("db.namespace", database_name),
    ] {
        assert_eq!(attribute(key), Some(value), "{key} in {statement_span:#?}");
    }
    assert!(
        statement_span
            .attributes
            .iter()
            .all(|(key, value)| !key.starts_with("db.query")
                && !key.starts_with("db.statement")
                && value != task_api::DEV_SUBJECT),
        "statement or parameters exported: {statement_span:#?}"
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
