//! Log output of the real binary: JSON lines on stdout, each line of a request carrying its
//! correlation id.

use crate::operability_support;

use std::time::Duration;

use operability_support::ServiceProcess;
use reqwest::StatusCode;
use serde_json::Value;
use task_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_request_carries_its_correlation_id() {
    let database = TestDatabase::postgres().await.unwrap();
    let mut service = ServiceProcess::start(database.url(), &[]).await;
    let client = reqwest::Client::new();

    let answered = client
        .get(service.url("/tasks"))
        .bearer_auth(&service.dev_token)
        .header("correlation_id", "log-probe-ok")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let refused = client
        .get(service.url("/tasks"))
        .header("correlation_id", "log-probe-401")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let of = |id: &'static str| move |line: &Value| line["span"]["correlation_id"] == id;
    let completed = service
        .wait_for_log(
            Duration::from_secs(5),
            "the access log line",
            of("log-probe-ok"),
        )
        .await;
    assert_eq!(completed["span"]["route"], "/tasks");
    assert_eq!(completed["span"]["method"], "GET");
    assert_eq!(completed["status"], 200, "{completed}");
    assert!(completed["level"].is_string() && completed["timestamp"].is_string());

    service
        .wait_for_log(Duration::from_secs(5), "the 401 access line", |line| {
            of("log-probe-401")(line) && line["status"] == 401
        })
        .await;
    // Every line logged inside the 401 request (the access line and the authentication
    // failure) names it; there is at least one besides the access line.
    let lines = service.json_lines();
    let of_refused: Vec<&Value> = lines
        .iter()
        .filter(|line| of("log-probe-401")(line))
        .collect();
    assert!(of_refused.len() >= 2, "{of_refused:?}");
    // No request line lacks its id.
    for line in &lines {
        if line["span"]["name"] == "request" {
            assert!(line["span"]["correlation_id"].is_string(), "{line}");
        }
    }
}
