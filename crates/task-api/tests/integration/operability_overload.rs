//! Overload: a replica limited to 2 requests in flight, hit by hundreds of simultaneous
//! connections, answers only 2xx or 429 (never 5xx, never a timeout), and a rejected POST
//! creates nothing.

use crate::operability_support;

use std::sync::Arc;
use std::time::Duration;

use operability_support::{parse_metrics, sample};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use task_testkit::{TestApp, TestDatabase, TestOptions};
use tokio::sync::Barrier;

const CONNECTIONS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beyond_the_in_flight_limit_requests_get_429_and_have_no_effect() {
    let database = TestDatabase::postgres().await.unwrap();
    let options = TestOptions {
        max_inflight: 2,
        ..TestOptions::default()
    };
    let app = Arc::new(TestApp::spawn(&database, options).await.unwrap());
    let token = app.token("alice");
    let url = app.url("/tasks");

    let start = Arc::new(Barrier::new(CONNECTIONS));
    let mut requests = Vec::new();
    for index in 0..CONNECTIONS {
        let (start, token, url) = (start.clone(), token.clone(), url.clone());
        requests.push(tokio::spawn(async move {
            // One client each: a connection of its own, no pooling across requests.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            let body = json!({"title": format!("burst {index}"), "content": "", "due_date": "2025-01-01", "request_timestamp": "2025-01-01T00:00:00Z"});
            start.wait().await;
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .header("correlation_id", format!("burst-{index}"))
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|error| panic!("request {index} failed: {error}"));
            let status = response.status();
            let retry_after = response.headers().get("retry-after").cloned();
            let content_type = response.headers().get("content-type").cloned();
            let header_id = response.headers()["correlation_id"].to_str().unwrap().to_owned();
            let body: Value = response.json().await.unwrap();
            (status, retry_after, content_type, header_id, body)
        }));
    }

    let (mut created, mut rejected) = (0_usize, 0_usize);
    for request in requests {
        let (status, retry_after, content_type, header_id, body) = request.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                rejected += 1;
                let retry_after: u64 = retry_after
                    .expect("429 has Retry-After")
                    .to_str()
                    .unwrap()
                    .parse()
                    .expect("Retry-After in seconds");
                assert!(retry_after >= 1);
                assert_eq!(content_type.unwrap(), "application/problem+json");
                assert_eq!(body["status"], 429);
                assert_eq!(body["correlation_id"], header_id.as_str());
            }
            other => panic!("only 201 or 429 are acceptable under overload, got {other}: {body}"),
        }
    }
    assert_eq!(created + rejected, CONNECTIONS);
    assert!(
        rejected > 0,
        "{CONNECTIONS} simultaneous requests never exceeded 2 in flight"
    );
    assert!(created > 0, "no request was admitted");

    let connection = Database::connect(database.url()).await.unwrap();
    let rows = connection
        .query_one(Statement::from_string(
            connection.get_database_backend(),
            "SELECT COUNT(*) AS n FROM tasks",
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: i64 = rows.try_get("", "n").unwrap();
    assert_eq!(stored as usize, created, "a rejected POST created a task");

    let text = app
        .client
        .get(app.admin("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metrics = parse_metrics(&text);
    assert_eq!(
        sample(
            &metrics,
            "task_api_http_requests_rejected_total",
            &[("reason", "overload")]
        ),
        Some(rejected as f64)
    );
    assert_eq!(
        sample(
            &metrics,
            "task_api_http_requests_total",
            &[("route", "/tasks"), ("method", "POST"), ("status", "429")]
        ),
        Some(rejected as f64)
    );
    assert_eq!(
        sample(&metrics, "task_api_http_requests_in_flight", &[]),
        Some(0.0)
    );

    // The limit sheds load; it does not stick: a lone request afterwards is served.
    let after = app
        .request(reqwest::Method::GET, "/tasks", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::OK);
}
