//! Authentication and per-subject isolation over real HTTP, with the service pointed at a
//! real in-process OIDC issuer (discovery + JWKS, RSA keys): every refused credential on
//! every endpoint is a 401 problem that changes nothing, and subjects never see or touch
//! each other's tasks.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use task_testkit::{Backend, LocalIssuer, TestApp, TestDatabase, TestOptions};

const ALICE: &str = "alice";
const BOB: &str = "bob";

struct Env {
    app: TestApp,
    issuer: Arc<LocalIssuer>,
    _database: TestDatabase,
}

async fn start(backend: Backend) -> Env {
    let issuer = Arc::new(LocalIssuer::start().await);
    let database = TestDatabase::new(backend).await.expect("test database");
    let app = TestApp::spawn(&database, TestOptions::with_issuer(issuer.clone()))
        .await
        .expect("service starts against the local issuer");
    Env {
        app,
        issuer,
        _database: database,
    }
}

fn task_body(title: &str, at: &str) -> Value {
    json!({"title": title, "content": "content", "due_date": "2024-03-01", "request_timestamp": at})
}

async fn create(
    app: &TestApp,
    subject: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app.request(Method::POST, "/tasks", subject).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("request sent")
}

async fn created_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    match &task["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}

async fn get_json(app: &TestApp, path: &str, subject: &str) -> (StatusCode, Value) {
    let response = app
        .request(Method::GET, path, subject)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// 401, application/problem+json, `status` 401, `correlation_id` equal to the header.
async fn expect_unauthorized(response: reqwest::Response, what: &str) {
    task_testkit::expect_problem(response, StatusCode::UNAUTHORIZED, what).await;
}

/// Sends `method path` with `authorization` as the only credential (None: no header).
async fn send_with(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    request.send().await.expect("request sent")
}

#[tokio::test]
async fn every_refused_credential_on_every_task_endpoint_is_401_and_changes_nothing() {
    let env = start(Backend::Sqlite).await;
    let app = &env.app;
    let id = created_id(
        create(
            app,
            ALICE,
            &task_body("original", "2024-01-01T00:00:00Z"),
            None,
        )
        .await,
    )
    .await;
    let (_, before) = get_json(app, &format!("/tasks/{id}"), ALICE).await;
    let task_path = format!("/tasks/{id}");
    let create_body = task_body("forged", "2024-06-01T00:00:00Z").to_string();
    let update_body =
        json!({"title": "forged", "done": true, "request_timestamp": "2024-06-01T00:00:00Z"})
            .to_string();
    let delete_body = json!({"request_timestamp": "2024-06-01T00:00:00Z"}).to_string();
    let endpoints: [(Method, &str, Option<&str>); 5] = [
        (Method::POST, "/tasks", Some(create_body.as_str())),
        (Method::GET, "/tasks", None),
        (Method::GET, task_path.as_str(), None),
        (Method::PUT, task_path.as_str(), Some(update_body.as_str())),
        (
            Method::DELETE,
            task_path.as_str(),
            Some(delete_body.as_str()),
        ),
    ];
    let credentials = env.issuer.rejected_authorization_headers(ALICE);
    assert!(credentials.len() >= 30, "the issuer crafts every variant");
    for (name, authorization) in &credentials {
        for (method, path, body) in &endpoints {
            let response =
                send_with(app, method.clone(), path, authorization.as_deref(), *body).await;
            expect_unauthorized(response, &format!("{name} on {method} {path}")).await;
        }
    }
    let (status, after) = get_json(app, &task_path, ALICE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before, "the task is untouched");
    let (_, list) = get_json(app, "/tasks", ALICE).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "nothing was created: {list}"
    );
}

#[tokio::test]
async fn refused_credentials_on_the_openapi_document_are_401() {
    let env = start(Backend::Sqlite).await;
    for (name, authorization) in env.issuer.rejected_authorization_headers(ALICE) {
        let response = send_with(
            &env.app,
            Method::GET,
            "/openapi.json",
            authorization.as_deref(),
            None,
        )
        .await;
        expect_unauthorized(response, &format!("{name} on GET /openapi.json")).await;
    }
    let (status, document) = get_json(&env.app, "/openapi.json", ALICE).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].is_string());
}

#[tokio::test]
async fn authentication_comes_before_the_body_is_looked_at() {
    let env = start(Backend::Sqlite).await;
    let app = &env.app;
    let garbage_bodies = ["{not json", "[]", "\"x\"", "{\"title\": 5}", ""];
    let expired = format!(
        "Bearer {}",
        env.issuer.craft(ALICE).expires_in(-3600).build()
    );
    for body in garbage_bodies {
        for authorization in [None, Some("Basic Zm9vOmJhcg=="), Some(expired.as_str())] {
            for (method, path) in [
                (Method::POST, "/tasks"),
                (Method::PUT, "/tasks/1"),
                (Method::DELETE, "/tasks/1"),
            ] {
                let response =
                    send_with(app, method.clone(), path, authorization, Some(body)).await;
                expect_unauthorized(
                    response,
                    &format!("{method} {path} body {body:?} auth {authorization:?}"),
                )
                .await;
            }
        }
    }
    // The same invalid body with a valid token is a 400, so the 401s above came from auth.
    let response = app
        .request(Method::POST, "/tasks", ALICE)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_key_rotated_in_after_startup_is_accepted_by_the_service() {
    let env = start(Backend::Sqlite).await;
    let new_key = env.issuer.rotate();
    let token = env.issuer.craft(ALICE).sign_with(new_key).build();
    let response = send_with(
        &env.app,
        Method::GET,
        "/tasks",
        Some(&format!("Bearer {token}")),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_audience_list_containing_ours_is_accepted_by_the_service() {
    let env = start(Backend::Sqlite).await;
    let token = env
        .issuer
        .craft(ALICE)
        .claim("aud", json!(["another-api", env.issuer.audience()]))
        .build();
    let response = send_with(
        &env.app,
        Method::GET,
        "/tasks",
        Some(&format!("Bearer {token}")),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn subjects_are_isolated(backend: Backend) {
    let env = start(backend).await;
    let app = &env.app;
    let id = created_id(
        create(
            app,
            ALICE,
            &task_body("alice's", "2024-01-01T00:00:00Z"),
            None,
        )
        .await,
    )
    .await;
    let path = format!("/tasks/{id}");
    let (_, before) = get_json(app, &path, ALICE).await;

    let (status, _) = get_json(app, &path, BOB).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = get_json(app, "/tasks", BOB).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]), "bob never lists alice's task");

    let put = app
        .request(Method::PUT, &path, BOB)
        .json(&json!({"title": "bob was here", "request_timestamp": "2024-06-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NOT_FOUND);
    let delete = app
        .request(Method::DELETE, &path, BOB)
        .json(&json!({"request_timestamp": "2024-06-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NOT_FOUND);

    // A foreign id answers exactly like an id that does not exist.
    let unknown = app
        .request(Method::GET, "/tasks/999999999", BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let (status, after) = get_json(app, &path, ALICE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before, "bob's PUT and DELETE changed nothing");

    // An Idempotency-Key is scoped to its subject: bob reusing alice's key gets his own task.
    let body = task_body("same body", "2024-02-01T00:00:00Z");
    let alice_task = created_id(create(app, ALICE, &body, Some("shared-key")).await).await;
    let bob_response = create(app, BOB, &body, Some("shared-key")).await;
    assert_eq!(bob_response.status(), StatusCode::CREATED);
    let bob_task: Value = bob_response.json().await.unwrap();
    let bob_id = match &bob_task["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    };
    assert_ne!(bob_id, alice_task, "bob must not receive alice's task");
    let (status, _) = get_json(app, &format!("/tasks/{alice_task}"), BOB).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, bob_list) = get_json(app, "/tasks", BOB).await;
    assert_eq!(bob_list.as_array().unwrap().len(), 1);
    let (_, alice_list) = get_json(app, "/tasks", ALICE).await;
    assert_eq!(alice_list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn subjects_are_isolated_on_postgres() {
    subjects_are_isolated(Backend::Postgres).await;
}

#[tokio::test]
async fn subjects_are_isolated_on_sqlite() {
    subjects_are_isolated(Backend::Sqlite).await;
}
