//! While PostgreSQL is unreachable the service answers quickly with 503 problems (and
//! `/readyz` 503), and recovers by itself once the database is back.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use task_testkit::{TcpProxy, TestApp, TestDatabase, TestOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_gives_503_and_the_service_recovers() {
    let database = TestDatabase::postgres().await.unwrap();
    let proxy = TcpProxy::start(database.server_address().unwrap())
        .await
        .unwrap();
    let app = TestApp::spawn_with_config(
        TestOptions::default().config(&database.url_via(proxy.address())),
        None,
    )
    .await
    .unwrap();
    let create = json!({"title": "t", "content": "", "due_date": "2024-06-01", "request_timestamp": "2024-01-01T00:00:00Z"});
    let created = app
        .request(Method::POST, "/tasks", "alice")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    proxy.cut();
    for (method, path, body) in [
        (Method::GET, "/tasks", None),
        (Method::POST, "/tasks", Some(create.clone())),
        (
            Method::PUT,
            "/tasks/1",
            Some(json!({"done": true, "request_timestamp": "2024-01-02T00:00:00Z"})),
        ),
    ] {
        let started = Instant::now();
        let mut request = app
            .request(method.clone(), path, "alice")
            .header("correlation_id", "outage-1");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{method} {path} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["correlation_id"], "outage-1");
    }
    let started = Instant::now();
    let ready = app.client.get(app.admin("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "/readyz took {:?}",
        started.elapsed()
    );
    assert_eq!(
        app.client
            .get(app.admin("/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = app
            .client
            .get(app.admin("/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "service did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed: Value = app
        .request(Method::GET, "/tasks", "alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}
