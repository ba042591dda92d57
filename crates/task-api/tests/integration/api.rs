//! The contract over real HTTP, against both backends (a fresh PostgreSQL database on the local
//! service, and a temporary SQLite file).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use task_testkit::{Backend, TestApp, TestDatabase, TestOptions};

struct Env {
    app: TestApp,
    _database: TestDatabase,
}

async fn start(backend: Backend) -> Env {
    let database = TestDatabase::new(backend).await.expect("test database");
    let app = TestApp::spawn(&database, TestOptions::default())
        .await
        .expect("service starts");
    Env {
        app,
        _database: database,
    }
}

const ALICE: &str = "alice";
const BOB: &str = "bob";

fn task_body(title: &str, at: &str) -> Value {
    json!({"title": title, "content": "some content", "due_date": "2024-03-01", "request_timestamp": at})
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    subject: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.request(method, path, subject);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

async fn create(app: &TestApp, subject: &str, body: Value) -> Value {
    let response = send(app, Method::POST, "/tasks", subject, Some(body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn id_of(task: &Value) -> i64 {
    task["id"].as_i64().expect("integer id")
}

/// Asserts an RFC 9457 problem with the given status whose correlation_id equals the header.
async fn expect_problem(response: reqwest::Response, status: StatusCode) -> Value {
    task_testkit::expect_problem(response, status, "problem response").await
}

async fn creation_returns_the_task_and_its_location(backend: Backend) {
    let env = start(backend).await;
    let response = send(
        &env.app,
        Method::POST,
        "/tasks",
        ALICE,
        Some(task_body("Write report", "2024-01-01T08:00:00Z")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let task: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/tasks/{}", id_of(&task)));
    assert_eq!(task["title"], "Write report");
    assert_eq!(task["content"], "some content");
    assert_eq!(task["due_date"], "2024-03-01");
    assert_eq!(task["done"], false);
    assert_eq!(task["created_at"], "2024-01-01T08:00:00.000000Z");
    assert_eq!(task["updated_at"], "2024-01-01T08:00:00.000000Z");
    let fetched = send(&env.app, Method::GET, &location, ALICE, None).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.json::<Value>().await.unwrap(), task);
}

async fn tasks_belong_to_their_subject(backend: Backend) {
    let env = start(backend).await;
    let alices = create(&env.app, ALICE, task_body("mine", "2024-01-01T08:00:00Z")).await;
    create(&env.app, BOB, task_body("bob's", "2024-01-01T08:00:00Z")).await;
    let path = format!("/tasks/{}", id_of(&alices));
    expect_problem(
        send(&env.app, Method::GET, &path, BOB, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let put = json!({"title": "stolen", "request_timestamp": "2024-01-02T00:00:00Z"});
    expect_problem(
        send(&env.app, Method::PUT, &path, BOB, Some(put)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let delete = json!({"request_timestamp": "2024-01-02T00:00:00Z"});
    expect_problem(
        send(&env.app, Method::DELETE, &path, BOB, Some(delete)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let listed: Value = send(&env.app, Method::GET, "/tasks", BOB, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["title"], "bob's");
    let unchanged: Value = send(&env.app, Method::GET, &path, ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged, alices);
}

async fn invalid_bodies_are_400_problems(backend: Backend) {
    let env = start(backend).await;
    let ts = "2024-01-01T08:00:00Z";
    let invalid_creations: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"not json".to_vec(),
        b"".to_vec(),
        b"[]".to_vec(),
        b"42".to_vec(),
        b"{\"title\":\"\xff\xfe\",\"content\":\"c\",\"due_date\":\"2024-03-01\",\"request_timestamp\":\"2024-01-01T08:00:00Z\"}".to_vec(),
        json!({"title": "t", "content": "c", "due_date": "2024-03-01"}).to_string().into_bytes(),
        json!({"title": "t", "content": "c", "due_date": "2023-02-29", "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": "t", "content": "c", "due_date": "01/03/2024", "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": "t", "content": "c", "due_date": "2024-03-01", "request_timestamp": "2024-01-01T08:00:00"}).to_string().into_bytes(),
        json!({"title": "t", "content": "c", "due_date": "2024-03-01", "request_timestamp": 1704096000}).to_string().into_bytes(),
        json!({"title": "", "content": "c", "due_date": "2024-03-01", "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": null, "content": "c", "due_date": "2024-03-01", "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": "t", "content": "c", "due_date": "2024-03-01", "done": "true", "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": "t", "content": "c", "due_date": "2024-03-01", "done": 1, "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": "t", "content": "c", "due_date": "2024-03-01", "owner": "bob", "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": "nul\u{0}", "content": "c", "due_date": "2024-03-01", "request_timestamp": ts}).to_string().into_bytes(),
        json!({"title": 5, "content": "c", "due_date": "2024-03-01", "request_timestamp": ts}).to_string().into_bytes(),
    ];
    for body in invalid_creations {
        let response = env
            .app
            .request(Method::POST, "/tasks", ALICE)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
    let task = create(&env.app, ALICE, task_body("t", ts)).await;
    let path = format!("/tasks/{}", id_of(&task));
    for body in [
        json!({"request_timestamp": "2024-01-02T00:00:00Z"}),
        json!({"title": null, "request_timestamp": "2024-01-02T00:00:00Z"}),
        json!({"title": "", "request_timestamp": "2024-01-02T00:00:00Z"}),
        json!({"done": "false", "request_timestamp": "2024-01-02T00:00:00Z"}),
        json!({"done": true}),
        json!({"id": 5, "done": true, "request_timestamp": "2024-01-02T00:00:00Z"}),
        json!({"due_date": "2024-02-30", "request_timestamp": "2024-01-02T00:00:00Z"}),
    ] {
        let response = send(&env.app, Method::PUT, &path, ALICE, Some(body.clone())).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
    for body in [
        json!({}),
        json!({"request_timestamp": "soon"}),
        json!({"request_timestamp": "2024-01-02T00:00:00Z", "title": "x"}),
    ] {
        let response = send(&env.app, Method::DELETE, &path, ALICE, Some(body.clone())).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let unchanged: Value = send(&env.app, Method::GET, &path, ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged, task);
}

async fn text_is_stored_verbatim(backend: Backend) {
    let env = start(backend).await;
    let title = "Ünïcødé ✓ 日本語 🚀 \"quoted\" \u{7f}\u{200b} \\ backslash";
    let content = "'); DROP TABLE tasks; -- SELECT * FROM tasks WHERE 1=1; $1 ?1 %s";
    let task = create(
        &env.app,
        ALICE,
        json!({"title": title, "content": content, "due_date": "2024-02-29", "request_timestamp": "2024-01-01T08:00:00Z"}),
    )
    .await;
    let fetched: Value = send(
        &env.app,
        Method::GET,
        &format!("/tasks/{}", id_of(&task)),
        ALICE,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(fetched["title"], title);
    assert_eq!(fetched["content"], content);
    assert_eq!(fetched["due_date"], "2024-02-29");
}

async fn timestamps_compare_as_instants_at_microsecond_resolution(backend: Backend) {
    let env = start(backend).await;
    let task = create(
        &env.app,
        ALICE,
        task_body("t0", "2024-01-01T10:00:00+02:00"),
    )
    .await;
    assert_eq!(task["created_at"], "2024-01-01T08:00:00.000000Z");
    let path = format!("/tasks/{}", id_of(&task));
    // The same instant spelled in UTC is not newer than the creation.
    let same_instant = json!({"title": "t1", "request_timestamp": "2024-01-01T08:00:00Z"});
    expect_problem(
        send(&env.app, Method::PUT, &path, ALICE, Some(same_instant)).await,
        StatusCode::CONFLICT,
    )
    .await;
    // One microsecond later is.
    let later = json!({"title": "t1", "request_timestamp": "2024-01-01T08:00:00.000001Z"});
    let response = send(&env.app, Method::PUT, &path, ALICE, Some(later)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["title"], "t1");
    assert_eq!(updated["updated_at"], "2024-01-01T08:00:00.000001Z");
    // An earlier instant with a later wall-clock reading (negative offset) is stale.
    let behind = json!({"title": "t2", "request_timestamp": "2024-01-01T07:59:59.999999-00:00"});
    expect_problem(
        send(&env.app, Method::PUT, &path, ALICE, Some(behind)).await,
        StatusCode::CONFLICT,
    )
    .await;
    let ahead = json!({"title": "t3", "request_timestamp": "2024-01-01T03:00:00.000002-05:00"});
    assert_eq!(
        send(&env.app, Method::PUT, &path, ALICE, Some(ahead))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn puts_write_only_newer_fields(backend: Backend) {
    let env = start(backend).await;
    let task = create(&env.app, ALICE, task_body("t0", "2024-01-01T00:00:00Z")).await;
    let path = format!("/tasks/{}", id_of(&task));
    let put = |body: Value| send(&env.app, Method::PUT, &path, ALICE, Some(body));
    let response =
        put(json!({"title": "t3", "done": true, "request_timestamp": "2024-01-03T00:00:00Z"}))
            .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Older than title and done, newer than content: content is written, the rest kept.
    let response = put(json!({"title": "t2", "content": "c2", "done": false, "request_timestamp": "2024-01-02T00:00:00Z"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let merged: Value = response.json().await.unwrap();
    assert_eq!(merged["title"], "t3");
    assert_eq!(merged["content"], "c2");
    assert_eq!(merged["done"], true);
    assert_eq!(merged["due_date"], "2024-03-01");
    assert_eq!(merged["updated_at"], "2024-01-03T00:00:00.000000Z");
    assert_eq!(merged["created_at"], "2024-01-01T00:00:00.000000Z");
    // Every requested field is newer elsewhere: 409 and nothing changes.
    let stale =
        put(json!({"title": "old", "content": "old", "request_timestamp": "2024-01-01T12:00:00Z"}))
            .await;
    expect_problem(stale, StatusCode::CONFLICT).await;
    let before_creation =
        put(json!({"due_date": "2025-01-01", "request_timestamp": "2023-12-31T00:00:00Z"})).await;
    expect_problem(before_creation, StatusCode::CONFLICT).await;
    let current: Value = send(&env.app, Method::GET, &path, ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current, merged);
}

/// Two writes of one field at the same instant: the first to arrive wins, the second does
/// not write it (it is not strictly newer), whatever its spelling of the instant.
async fn writes_at_the_same_instant_first_arrival_wins(backend: Backend) {
    let env = start(backend).await;
    let task = create(&env.app, ALICE, task_body("t0", "2024-01-01T00:00:00Z")).await;
    let path = format!("/tasks/{}", id_of(&task));
    let put = |body: Value| send(&env.app, Method::PUT, &path, ALICE, Some(body));
    let first = put(json!({"title": "first", "request_timestamp": "2024-01-02T00:00:00Z"})).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second =
        put(json!({"title": "second", "request_timestamp": "2024-01-02T01:00:00+01:00"})).await;
    expect_problem(second, StatusCode::CONFLICT).await;
    // Same instant again, with one field not yet written at it: only that one lands.
    let third = put(json!({"title": "third", "content": "c3", "request_timestamp": "2024-01-02T00:00:00.000000Z"})).await;
    assert_eq!(third.status(), StatusCode::OK);
    let merged: Value = third.json().await.unwrap();
    assert_eq!(merged["title"], "first");
    assert_eq!(merged["content"], "c3");
    assert_eq!(merged["updated_at"], "2024-01-02T00:00:00.000000Z");
    let current: Value = send(&env.app, Method::GET, &path, ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current, merged);
}

async fn deletes_leave_a_tombstone(backend: Backend) {
    let env = start(backend).await;
    let task = create(&env.app, ALICE, task_body("t0", "2024-01-01T00:00:00Z")).await;
    let path = format!("/tasks/{}", id_of(&task));
    let at = |ts: &str| json!({"request_timestamp": ts});
    expect_problem(
        send(
            &env.app,
            Method::DELETE,
            &path,
            ALICE,
            Some(at("2024-01-01T00:00:00Z")),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let put = json!({"title": "t5", "request_timestamp": "2024-01-05T00:00:00Z"});
    assert_eq!(
        send(&env.app, Method::PUT, &path, ALICE, Some(put))
            .await
            .status(),
        StatusCode::OK
    );
    // A delete older than that PUT still deletes.
    let deleted = send(
        &env.app,
        Method::DELETE,
        &path,
        ALICE,
        Some(at("2024-01-03T00:00:00Z")),
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    expect_problem(
        send(&env.app, Method::GET, &path, ALICE, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let listed: Value = send(&env.app, Method::GET, "/tasks", ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    // On the tombstone: writes older than the delete are stale (409), newer ones find
    // nothing (404), exactly like an id that never existed.
    let put = |ts: &str| json!({"title": "x", "request_timestamp": ts});
    let on_tombstone = [
        (
            Method::PUT,
            path.as_str(),
            put("2024-01-02T00:00:00Z"),
            StatusCode::CONFLICT,
        ),
        (
            Method::PUT,
            path.as_str(),
            put("2024-01-09T00:00:00Z"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            path.as_str(),
            at("2024-01-02T00:00:00Z"),
            StatusCode::CONFLICT,
        ),
        (
            Method::DELETE,
            path.as_str(),
            at("2024-01-09T00:00:00Z"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/tasks/999999",
            at("2024-01-09T00:00:00Z"),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, target, body, status) in on_tombstone {
        expect_problem(
            send(&env.app, method, target, ALICE, Some(body)).await,
            status,
        )
        .await;
    }
}

async fn idempotency_key_replays_and_conflicts(backend: Backend) {
    let env = start(backend).await;
    let post = |subject: &'static str, key: &'static str, body: Value| {
        env.app
            .request(Method::POST, "/tasks", subject)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let body = task_body("once", "2024-01-01T00:00:00Z");
    let first = post(ALICE, "key-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    // Same meaning, other spelling (key order, same instant in another offset).
    let respelled = json!({"request_timestamp": "2024-01-01T01:00:00+01:00", "due_date": "2024-03-01", "content": "some content", "title": "once", "done": false});
    let again = post(ALICE, "key-1", respelled).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let different = post(ALICE, "key-1", task_body("twice", "2024-01-01T00:00:00Z"))
        .await
        .unwrap();
    expect_problem(different, StatusCode::CONFLICT).await;
    // Another subject may use the same key.
    let bobs = post(BOB, "key-1", body.clone()).await.unwrap();
    assert_eq!(bobs.status(), StatusCode::CREATED);
    assert_ne!(id_of(&bobs.json::<Value>().await.unwrap()), id_of(&first));
    // Concurrent duplicates: one task.
    let racing = futures::future::join_all(
        (0..20).map(|_| post(ALICE, "key-2", task_body("race", "2024-01-01T00:00:00Z"))),
    )
    .await;
    let mut ids = std::collections::HashSet::new();
    for response in racing {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.insert(id_of(&response.json::<Value>().await.unwrap()));
    }
    assert_eq!(ids.len(), 1);
    let listed: Value = send(&env.app, Method::GET, "/tasks", ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

async fn oversized_bodies_are_413(backend: Backend) {
    let env = start(backend).await;
    let title = "x".repeat(1024 * 1024);
    let response = send(
        &env.app,
        Method::POST,
        "/tasks",
        ALICE,
        Some(task_body(&title, "2024-01-01T00:00:00Z")),
    )
    .await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Also when the size is not announced up front.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let response = env
        .app
        .request(Method::POST, "/tasks", ALICE)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    let listed: Value = send(&env.app, Method::GET, "/tasks", ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    // Just below the limit is fine.
    let large = "y".repeat(1024 * 1024 - 200);
    let task = create(&env.app, ALICE, task_body(&large, "2024-01-01T00:00:00Z")).await;
    assert_eq!(task["title"].as_str().map(str::len), Some(large.len()));
}

async fn malformed_ids_are_404_never_5xx(backend: Backend) {
    let env = start(backend).await;
    let put = json!({"title": "x", "request_timestamp": "2024-01-02T00:00:00Z"});
    for id in [
        "abc",
        "0",
        "-1",
        "1.5",
        "99999999999999999999999",
        "%00",
        "%FF",
        "1%20",
        "'%20OR%201=1",
    ] {
        let path = format!("/tasks/{id}");
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(put.clone())),
            (
                Method::DELETE,
                Some(json!({"request_timestamp": "2024-01-02T00:00:00Z"})),
            ),
        ] {
            let response = send(&env.app, method.clone(), &path, ALICE, body).await;
            let status = response.status();
            assert!(
                status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
                "{method} {path}: {status}"
            );
            expect_problem(response, status).await;
        }
    }
}

async fn correlation_ids_are_echoed_or_generated(backend: Backend) {
    let env = start(backend).await;
    let response = env
        .app
        .request(Method::GET, "/tasks", ALICE)
        .header("correlation_id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["correlation_id"], "abc-123");
    let response = env
        .app
        .request(Method::GET, "/tasks/abc", ALICE)
        .header("X-Correlation-ID", "xyz-9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["correlation_id"], "xyz-9");
    let problem = expect_problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["correlation_id"], "xyz-9");
    let first = env
        .app
        .request(Method::GET, "/tasks", ALICE)
        .send()
        .await
        .unwrap();
    let second = env
        .app
        .request(Method::GET, "/tasks", ALICE)
        .send()
        .await
        .unwrap();
    let generated = first.headers()["correlation_id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!generated.is_empty());
    assert_ne!(
        generated,
        second.headers()["correlation_id"].to_str().unwrap()
    );
    let admin = env
        .app
        .client
        .get(env.app.admin("/livez"))
        .header("correlation_id", "probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.headers()["correlation_id"], "probe-1");
}

async fn listing_pages_in_id_order(backend: Backend) {
    let env = start(backend).await;
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(id_of(
            &create(
                &env.app,
                ALICE,
                task_body(&format!("t{index}"), "2024-01-01T00:00:00Z"),
            )
            .await,
        ));
    }
    let all: Value = send(&env.app, Method::GET, "/tasks", ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<i64> = all.as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(listed, ids);
    let page = send(&env.app, Method::GET, "/tasks?limit=2", ALICE, None).await;
    let link = page.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(
        link,
        format!("</tasks?limit=2&after={}>; rel=\"next\"", ids[1])
    );
    let next: Value = send(
        &env.app,
        Method::GET,
        &format!("/tasks?limit=2&after={}", ids[1]),
        ALICE,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        next.as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect::<Vec<_>>(),
        ids[2..4]
    );
    for query in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "after=x",
        "sort=title",
    ] {
        let response = send(
            &env.app,
            Method::GET,
            &format!("/tasks?{query}"),
            ALICE,
            None,
        )
        .await;
        expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
}

/// Refused credentials on the document are `auth::refused_credentials_on_the_openapi_document_are_401`.
async fn openapi_and_probes_are_served(backend: Backend) {
    let env = start(backend).await;
    let document: Value = env
        .app
        .request(reqwest::Method::GET, "/openapi.json", ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/tasks", "/tasks/{id}"] {
        assert!(document["paths"][path].is_object(), "{path} documented");
    }
    assert!(document["paths"]["/tasks/{id}"]["put"].is_object());
    assert!(document["components"]["schemas"]["TaskBody"].is_object());
    // The interactive docs are a static page (no token needed to load it) that loads a pinned
    // Swagger UI with integrity hashes and fetches this document with the reader's token.
    let docs = env
        .app
        .client
        .get(env.app.url("/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = docs.text().await.unwrap();
    assert!(page.contains("swagger-ui-bundle.js") && page.contains("integrity=\"sha384-"));
    assert!(page.contains("openapi.json") && page.contains("Authorization"));
    assert_eq!(
        env.app
            .client
            .get(env.app.admin("/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        env.app
            .client
            .get(env.app.admin("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let unknown = env
        .app
        .client
        .get(env.app.url("/nope"))
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND).await;
    let wrong_method = env
        .app
        .request(Method::PATCH, "/tasks", ALICE)
        .send()
        .await
        .unwrap();
    expect_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
}

async fn a_replay_answers_with_current_values_until_the_task_is_deleted(backend: Backend) {
    let env = start(backend).await;
    let body = task_body("first", "2024-01-01T00:00:00Z");
    let replay = || {
        env.app
            .request(Method::POST, "/tasks", ALICE)
            .header("idempotency-key", "replayed")
            .json(&body)
            .send()
    };
    let created: Value = replay().await.unwrap().json().await.unwrap();
    let path = format!("/tasks/{}", id_of(&created));
    let update = json!({"title": "renamed", "request_timestamp": "2024-01-02T00:00:00Z"});
    let updated = send(&env.app, Method::PUT, &path, ALICE, Some(update)).await;
    assert_eq!(updated.status(), StatusCode::OK);
    let updated: Value = updated.json().await.unwrap();

    let after_update = replay().await.unwrap();
    assert_eq!(after_update.status(), StatusCode::CREATED);
    assert_eq!(after_update.headers()["location"].to_str().unwrap(), path);
    let after_update: Value = after_update.json().await.unwrap();
    assert_eq!(after_update, updated, "a replay returns the current values");
    assert_eq!(after_update["title"], "renamed");

    let delete = json!({"request_timestamp": "2024-01-03T00:00:00Z"});
    let deleted = send(&env.app, Method::DELETE, &path, ALICE, Some(delete)).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let after_delete = replay().await.unwrap();
    expect_problem(after_delete, StatusCode::CONFLICT).await;
    let gone = send(&env.app, Method::GET, &path, ALICE, None).await;
    expect_problem(gone, StatusCode::NOT_FOUND).await;
    // The replay created nothing.
    let listed: Value = send(&env.app, Method::GET, "/tasks", ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
}

async fn invalid_idempotency_keys_are_400_and_create_nothing(backend: Backend) {
    let env = start(backend).await;
    let too_long = "k".repeat(256);
    let longest = "k".repeat(255);
    // HTTP itself carries no control character in a header value but the tab.
    for (key, what) in [
        (&b""[..], "empty"),
        (too_long.as_bytes(), "256 characters"),
        (b"tab\there", "a tab"),
        ("caf\u{e9}".as_bytes(), "not ASCII"),
    ] {
        let value = reqwest::header::HeaderValue::from_bytes(key).unwrap();
        let response = env
            .app
            .request(Method::POST, "/tasks", ALICE)
            .header("idempotency-key", value)
            .json(&task_body("keyed", "2024-01-01T00:00:00Z"))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{what}: {problem}"
        );
    }
    let listed: Value = send(&env.app, Method::GET, "/tasks", ALICE, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "a refused key creates nothing");
    for key in [longest.as_str(), "inner space", "~!#$%&'*+-.^_`|"] {
        let response = env
            .app
            .request(Method::POST, "/tasks", ALICE)
            .header("idempotency-key", key)
            .json(&task_body("keyed", "2024-01-01T00:00:00Z"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{key:?}");
    }
}

task_testkit::on_both_backends!(
    creation_returns_the_task_and_its_location,
    tasks_belong_to_their_subject,
    invalid_bodies_are_400_problems,
    text_is_stored_verbatim,
    timestamps_compare_as_instants_at_microsecond_resolution,
    puts_write_only_newer_fields,
    writes_at_the_same_instant_first_arrival_wins,
    deletes_leave_a_tombstone,
    idempotency_key_replays_and_conflicts,
    a_replay_answers_with_current_values_until_the_task_is_deleted,
    invalid_idempotency_keys_are_400_and_create_nothing,
    oversized_bodies_are_413,
    malformed_ids_are_404_never_5xx,
    correlation_ids_are_echoed_or_generated,
    listing_pages_in_id_order,
    openapi_and_probes_are_served,
);
