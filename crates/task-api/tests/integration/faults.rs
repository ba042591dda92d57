//! Network and server faults under the pipelined PostgreSQL pool, on real PostgreSQL:
//! a silent partition (a proxy that stops forwarding without closing anything), every
//! connection cut with hundreds of requests in flight, and a server whose connection slots
//! are taken by other clients. In each: what the client sees (201/200, or 503 problem+json
//! with Retry-After: never a 500, never a hang), how fast, and that nothing acknowledged is
//! lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use task_testkit::{ClusterOptions, PostgresCluster, TcpProxy, TestApp, TestDatabase, TestOptions};

/// The documented bound for a 503 when the database stops answering: the statement
/// deadline (2 s) after at most the wait for a write's turn (2 s), plus scheduling slack.
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(5);
/// A replica serves again within the reconnect backoff's cap (2 s) and a connect.
const RECOVERS_WITHIN: Duration = Duration::from_secs(10);

fn create_body(title: &str, second: u32) -> Value {
    json!({
        "title": title,
        "content": "",
        "due_date": "2025-03-01",
        "request_timestamp": format!("2025-01-01T00:{:02}:{:02}Z", second / 60, second % 60),
    })
}

/// What one request got: a status, and whether the 503s were well-formed.
async fn outcome(response: Result<reqwest::Response, reqwest::Error>, what: &str) -> StatusCode {
    let response = response.unwrap_or_else(|error| panic!("{what}: no answer: {error}"));
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            response.headers().contains_key("retry-after"),
            "{what}: 503 without Retry-After"
        );
        task_testkit::expect_problem(response, status, what).await;
    }
    status
}

async fn create(app: &TestApp, title: &str, second: u32) -> (StatusCode, Option<i64>) {
    let response = app
        .request(Method::POST, "/tasks", "alice")
        .json(&create_body(title, second))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {title}: no answer: {error}"));
    let status = response.status();
    if status == StatusCode::CREATED {
        let task: Value = response.json().await.unwrap();
        return (status, task["id"].as_i64());
    }
    (outcome(Ok(response), title).await, None)
}

async fn assert_all_present(app: &TestApp, ids: &[i64]) {
    for id in ids {
        let response = app
            .request(Method::GET, &format!("/tasks/{id}"), "alice")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "acknowledged task {id}");
    }
}

async fn eventually_serving(app: &TestApp, since: Instant) -> Duration {
    loop {
        let response = app
            .request(Method::GET, "/tasks", "alice")
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if response.is_ok_and(|response| response.status() == StatusCode::OK) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < RECOVERS_WITHIN,
            "not serving within {RECOVERS_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_network_gives_503_within_the_bound_and_recovers_when_it_heals() {
    let database = TestDatabase::postgres().await.unwrap();
    task_store::migrate(database.url()).await.unwrap();
    let proxy = TcpProxy::start(database.server_address().unwrap())
        .await
        .unwrap();
    let options = TestOptions {
        db_max_connections: 4,
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with_config(options.config(&database.url_via(proxy.address())), None)
        .await
        .unwrap();
    let mut acknowledged = Vec::new();
    for second in 0..5 {
        let (status, id) = create(&app, "before", second).await;
        assert_eq!(status, StatusCode::CREATED);
        acknowledged.extend(id);
    }
    let path = format!("/tasks/{}", acknowledged[0]);

    proxy.freeze();
    let started = Instant::now();
    let requests = (0..20).map(|index| {
        let request = match index % 3 {
            0 => app.request(Method::GET, &path, "alice"),
            1 => app
                .request(Method::POST, "/tasks", "alice")
                .json(&create_body("during", 10 + index)),
            _ => app
                .request(Method::PUT, &path, "alice")
                .json(&json!({"done": true, "request_timestamp": "2025-02-01T00:00:00Z"})),
        };
        let started = Instant::now();
        async move {
            let status = outcome(request.send().await, "during the partition").await;
            (status, started.elapsed())
        }
    });
    let answers = join_all(requests).await;
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap();
    for (status, took) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "after {took:?}");
    }
    assert!(
        slowest < UNAVAILABLE_WITHIN,
        "slowest 503 after {slowest:?}"
    );
    // Once the broken connections are dropped, requests fail at once instead of waiting.
    let again = Instant::now();
    let status = outcome(
        app.request(Method::GET, &path, "alice").send().await,
        "later in the partition",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        again.elapsed() < Duration::from_secs(1),
        "{:?}",
        again.elapsed()
    );
    eprintln!(
        "partition: slowest 503 after {slowest:?}, later ones after {:?} (frozen for {:?})",
        again.elapsed(),
        started.elapsed()
    );

    proxy.thaw();
    let recovered = eventually_serving(&app, Instant::now()).await;
    eprintln!("partition healed: serving again after {recovered:?}");
    assert_all_present(&app, &acknowledged).await;
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_every_connection_under_hundreds_of_requests_loses_nothing_acknowledged() {
    let database = TestDatabase::postgres().await.unwrap();
    task_store::migrate(database.url()).await.unwrap();
    let proxy = TcpProxy::start(database.server_address().unwrap())
        .await
        .unwrap();
    let options = TestOptions {
        db_max_connections: 4,
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with_config(options.config(&database.url_via(proxy.address())), None)
        .await
        .unwrap();

    let answered = AtomicUsize::new(0);
    let requests = (0..300).map(|index| {
        let app = &app;
        let answered = &answered;
        async move {
            let started = Instant::now();
            let (status, id) = create(app, &format!("cut {index}"), index).await;
            answered.fetch_add(1, Ordering::Relaxed);
            (status, id, started, Instant::now())
        }
    });
    // The cut comes once writes are being committed, with most requests still in flight
    // (a fixed delay could fall before the first write or after the last).
    let cut = async {
        while answered.load(Ordering::Relaxed) < 20 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cut_at = Instant::now();
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.restore();
        (cut_at, Instant::now())
    };
    let (answers, (cut_at, restored_at)) = tokio::join!(join_all(requests), cut);
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    // Sent before the cut and answered only after the restore: waited out the outage (a
    // queued write runs once its writer has a connection again, within the acquire timeout).
    let mut held = 0;
    for (status, id, started, finished) in &answers {
        let took = finished.duration_since(*started);
        if *started < cut_at && *finished > restored_at {
            held += 1;
        }
        match *status {
            StatusCode::CREATED => acknowledged.extend(*id),
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("{other} after {took:?}"),
        }
        assert!(took < Duration::from_secs(10), "answered after {took:?}");
    }
    eprintln!(
        "cut: {} created, {unavailable} answered 503, {held} held through the outage",
        acknowledged.len()
    );
    assert!(unavailable + held > 0, "the cut hit no request in flight");
    eventually_serving(&app, Instant::now()).await;
    assert_all_present(&app, &acknowledged).await;
    app.stop().await.unwrap();
}

fn pool_gauge(metrics: &str, state: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| {
            line.starts_with("task_api_db_pool_connections{")
                && line.contains(&format!("state=\"{state}\""))
        })
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse().ok())
}

async fn open_connections(app: &TestApp) -> f64 {
    let metrics = app
        .client
        .get(app.admin("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    pool_gauge(&metrics, "idle").unwrap() + pool_gauge(&metrics, "in_use").unwrap()
}

/// A server with `slots` connection slots (none reserved), `others` of them held by other
/// clients, under a pool that wants 8: requests are served on the connections the pool could
/// open, none is answered 503, and the pool grows to 8 when the other clients leave.
async fn a_full_server(slots: u32, others: usize) {
    let cluster = PostgresCluster::start_with(
        ClusterOptions::default()
            .setting(format!("max_connections = {slots}"))
            .setting("superuser_reserved_connections = 0"),
    );
    let mut other_clients = Vec::new();
    for _ in 0..others {
        let (client, connection) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        other_clients.push((client, tokio::spawn(connection)));
    }
    let options = TestOptions {
        db_max_connections: 8,
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with_config(options.config(&cluster.url()), None)
        .await
        .unwrap();
    // The keepers of the slots that cannot connect keep trying (53300) in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        cluster.server_log().contains("too many clients already"),
        "the server refused no connection"
    );
    let available = f64::from(slots) - others as f64;
    let open = open_connections(&app).await;
    assert!(
        (1.0..=available).contains(&open),
        "open connections: {open}"
    );

    let answers = join_all((0..200).map(|index| {
        let app = &app;
        async move { create(app, &format!("full {index}"), index).await }
    }))
    .await;
    let acknowledged: Vec<i64> = answers
        .iter()
        .map(|(status, id)| {
            assert_eq!(
                *status,
                StatusCode::CREATED,
                "served on the open connections"
            );
            id.unwrap()
        })
        .collect();
    let ready = app.client.get(app.admin("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    if others > 0 && slots >= 8 {
        // The other clients leave: the pool grows to its size by itself.
        drop(other_clients);
        let started = Instant::now();
        while open_connections(&app).await < 8.0 {
            assert!(
                started.elapsed() < RECOVERS_WITHIN,
                "the pool did not grow back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_all_present(&app, &acknowledged).await;
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_slots_other_clients_hold_leaves_the_open_connections_serving() {
    a_full_server(8, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_admitting_fewer_connections_than_the_pool_wants_serves_on_those() {
    a_full_server(4, 0).await;
}
