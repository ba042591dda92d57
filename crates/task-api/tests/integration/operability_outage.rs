//! Database outage for real: a PostgreSQL cluster of the test's own is stopped
//! (`pg_ctl stop -m fast`) under a running replica and started again on the same port.

use crate::operability_support;

use std::time::{Duration, Instant};

use operability_support::{ThrowawayPostgres, eventually, parse_metrics, sample};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use task_testkit::{TestApp, TestOptions};

/// "Within a few seconds" of the contract, generously.
const PROMPT: Duration = Duration::from_secs(8);

fn body(title: &str, at: &str) -> Value {
    json!({"title": title, "content": "kept", "due_date": "2025-03-01", "request_timestamp": at})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gives_503_and_the_replica_recovers_by_itself() {
    let postgres = ThrowawayPostgres::start();
    let app = TestApp::spawn_with_config(TestOptions::default().config(&postgres.url()), None)
        .await
        .unwrap();
    let created = app
        .request(Method::POST, "/tasks", "alice")
        .json(&body("before the outage", "2025-01-01T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let task: Value = created.json().await.unwrap();
    let task_path = format!("/tasks/{}", task["id"]);

    postgres.stop_server();

    // API requests first, on pool connections that were open when the server went away.
    for (method, path, payload) in [
        (Method::GET, "/tasks".to_owned(), None),
        (Method::GET, task_path.clone(), None),
        (
            Method::POST,
            "/tasks".to_owned(),
            Some(body("during", "2025-01-02T00:00:00Z")),
        ),
        (
            Method::PUT,
            task_path.clone(),
            Some(json!({"done": true, "request_timestamp": "2025-01-03T00:00:00Z"})),
        ),
        (
            Method::DELETE,
            task_path.clone(),
            Some(json!({"request_timestamp": "2025-01-04T00:00:00Z"})),
        ),
    ] {
        let started = Instant::now();
        let mut request = app
            .request(method.clone(), &path, "alice")
            .header("correlation_id", "during-outage")
            .timeout(PROMPT);
        if let Some(payload) = payload {
            request = request.json(&payload);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path} during the outage: {error}"));
        assert!(
            started.elapsed() < PROMPT,
            "{method} {path} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        assert!(
            response.headers().contains_key("retry-after"),
            "{method} {path}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["correlation_id"], "during-outage");
    }

    let not_ready = eventually(PROMPT, "/readyz turning non-200", || async {
        let response = app
            .client
            .get(app.admin("/readyz"))
            .timeout(PROMPT)
            .send()
            .await
            .ok()?;
        (response.status() != StatusCode::OK).then_some(response.status())
    })
    .await;
    assert_eq!(not_ready, StatusCode::SERVICE_UNAVAILABLE);

    let livez = app.client.get(app.admin("/livez")).send().await.unwrap();
    assert_eq!(
        livez.status(),
        StatusCode::OK,
        "the process stays up and alive"
    );
    let text = app
        .client
        .get(app.admin("/metrics"))
        .timeout(PROMPT)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&parse_metrics(&text), "task_api_db_up", &[]),
        Some(0.0)
    );

    postgres.start_server();
    eventually(
        Duration::from_secs(30),
        "/readyz 200 after PostgreSQL returned",
        || async {
            let response = app.client.get(app.admin("/readyz")).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await;

    let kept = app
        .request(Method::GET, &task_path, "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), StatusCode::OK);
    let kept: Value = kept.json().await.unwrap();
    assert_eq!(kept["title"], "before the outage");
    assert_eq!(
        kept["done"], false,
        "the PUT answered 503 must not have applied"
    );

    let written = app
        .request(Method::POST, "/tasks", "alice")
        .json(&body("after the outage", "2025-01-05T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), StatusCode::CREATED);
    let updated = app
        .request(Method::PUT, &task_path, "alice")
        .json(&json!({"done": true, "request_timestamp": "2025-01-06T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let listed: Vec<Value> = app
        .request(Method::GET, "/tasks", "alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    app.stop().await.unwrap();
    drop(postgres);
}
