//! The admin listener (`/livez`, `/readyz`, `/metrics`) and correlation ids, against a real
//! PostgreSQL database.

use crate::operability_support;

use operability_support::{parse_metrics, sample};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use task_testkit::{TestApp, TestDatabase, TestOptions};

fn new_task(title: &str) -> Value {
    json!({"title": title, "content": "c", "due_date": "2025-05-01", "request_timestamp": "2025-01-01T00:00:00Z"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_describe_the_replica() {
    let database = TestDatabase::postgres().await.unwrap();
    let options = TestOptions {
        db_max_connections: 7,
        ..TestOptions::default()
    };
    let app = TestApp::spawn(&database, options).await.unwrap();

    let livez = app.client.get(app.admin("/livez")).send().await.unwrap();
    assert_eq!(livez.status(), StatusCode::OK);
    let readyz = app.client.get(app.admin("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::OK);
    // The probes live on the admin listener only.
    let public_livez = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(public_livez.status(), StatusCode::NOT_FOUND);

    let created = app
        .request(Method::POST, "/tasks", "alice")
        .json(&new_task("one"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"].to_string();
    for _ in 0..2 {
        let found = app
            .request(Method::GET, &format!("/tasks/{id}"), "alice")
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), StatusCode::OK);
    }
    let foreign = app
        .request(Method::GET, &format!("/tasks/{id}"), "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let anonymous = app.client.get(app.url("/tasks")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let unknown = app
        .client
        .get(app.url("/no/such/path/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let response = app.client.get(app.admin("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let metrics = parse_metrics(&text);
    let count = |route: &str, method: &str, status: &str| {
        sample(
            &metrics,
            "task_api_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(count("/tasks", "POST", "201"), Some(1.0), "{text}");
    assert_eq!(count("/tasks/{id}", "GET", "200"), Some(2.0), "{text}");
    assert_eq!(count("/tasks/{id}", "GET", "404"), Some(1.0), "{text}");
    assert_eq!(count("/tasks", "GET", "401"), Some(1.0), "{text}");
    // `/livez` and `/no/such/path/42` on the public listener.
    assert_eq!(count("unmatched", "GET", "404"), Some(2.0), "{text}");
    assert!(
        !text.contains(&format!("/tasks/{id}\"")) && !text.contains("/no/such/path"),
        "raw paths must not become labels:\n{text}"
    );
    assert!(
        !text.contains("route=\"/metrics\""),
        "admin requests are not API traffic"
    );
    assert_eq!(
        sample(
            &metrics,
            "task_api_http_request_duration_seconds_count",
            &[
                ("route", "/tasks/{id}"),
                ("method", "GET"),
                ("status", "200")
            ],
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&metrics, "task_api_http_requests_in_flight", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "task_api_http_requests_rejected_total",
            &[("reason", "overload")]
        ),
        Some(0.0)
    );
    let auth_failures: f64 = metrics
        .iter()
        .filter(|(series, _)| series.starts_with("task_api_auth_failures_total{reason="))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(auth_failures, 1.0, "{text}");
    assert_eq!(sample(&metrics, "task_api_db_up", &[]), Some(1.0));
    assert_eq!(
        sample(&metrics, "task_api_db_pool_max_connections", &[]),
        Some(7.0)
    );
    let idle = sample(
        &metrics,
        "task_api_db_pool_connections",
        &[("state", "idle")],
    )
    .unwrap();
    let in_use = sample(
        &metrics,
        "task_api_db_pool_connections",
        &[("state", "in_use")],
    )
    .unwrap();
    assert!(
        idle + in_use >= 1.0 && idle + in_use <= 7.0,
        "pool of at most 7 with at least one open connection: {idle} idle, {in_use} in use"
    );
    assert_eq!(
        sample(
            &metrics,
            "task_api_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("task_api_build_info{git_sha=\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlation_ids_are_echoed_generated_and_put_into_problems() {
    let database = TestDatabase::postgres().await.unwrap();
    let app = TestApp::spawn(&database, TestOptions::default())
        .await
        .unwrap();

    let given = app
        .request(Method::GET, "/tasks", "alice")
        .header("correlation_id", "req-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), StatusCode::OK);
    assert_eq!(given.headers()["correlation_id"], "req-7f3a");

    let alternative = app
        .request(Method::GET, "/tasks", "alice")
        .header("X-Correlation-ID", "req-x-1")
        .send()
        .await
        .unwrap();
    assert_eq!(alternative.headers()["correlation_id"], "req-x-1");

    let mut generated = Vec::new();
    for _ in 0..2 {
        let response = app
            .request(Method::GET, "/tasks", "alice")
            .send()
            .await
            .unwrap();
        let id = response.headers()["correlation_id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!id.is_empty());
        generated.push(id);
    }
    assert_ne!(generated[0], generated[1], "generated ids are unique");

    for (request, expected_status) in [
        (
            app.request(Method::GET, "/tasks/999999", "alice")
                .header("correlation_id", "missing-task"),
            StatusCode::NOT_FOUND,
        ),
        (app.client.get(app.url("/tasks")), StatusCode::UNAUTHORIZED),
    ] {
        let response = request.send().await.unwrap();
        task_testkit::expect_problem(response, expected_status, "problem response").await;
    }

    // The admin listener answers with correlation ids too (probes are requests like others).
    let probe = app
        .client
        .get(app.admin("/readyz"))
        .header("correlation_id", "probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(probe.headers()["correlation_id"], "probe-1");
}
