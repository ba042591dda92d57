//! SIGTERM: the real binary stops accepting work, finishes the requests in flight, exits 0.

use crate::operability_support;

use std::time::Duration;

use operability_support::ServiceProcess;
use task_testkit::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends the head and the first half of a POST, so that the request is in flight (its body
/// still arriving) when the test signals the process.
async fn begin_post(service: &ServiceProcess, index: usize) -> (TcpStream, Vec<u8>) {
    let body = format!(
        r#"{{"title":"in flight {index}","content":"","due_date":"2025-01-01","request_timestamp":"2025-01-01T00:00:00Z"}}"#
    )
    .into_bytes();
    let head = format!(
        "POST /tasks HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        service.public,
        service.dev_token,
        body.len()
    );
    let mut stream = TcpStream::connect(service.public).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let half = body.len() / 2;
    stream.write_all(&body[..half]).await.unwrap();
    stream.flush().await.unwrap();
    (stream, body[half..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let database = TestDatabase::postgres().await.unwrap();
    let mut service =
        ServiceProcess::start(database.url(), &[("TASK_API_SHUTDOWN_GRACE_SECONDS", "20")]).await;

    let mut in_flight = Vec::new();
    for index in 0..8 {
        in_flight.push(begin_post(&service, index).await);
    }
    // Let the server read the heads and start the handlers.
    tokio::time::sleep(Duration::from_millis(300)).await;

    service.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        service.is_running(),
        "the process must wait for its in-flight requests"
    );

    for (mut stream, rest) in in_flight {
        stream.write_all(&rest).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("in-flight request answered")
        .unwrap();
        assert!(
            response.starts_with("HTTP/1.1 201"),
            "in-flight request was not completed: {response}"
        );
    }

    let status = service.wait_for_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");

    // Every drained request was really written.
    let lines = service.json_lines();
    let created = lines
        .iter()
        .filter(|line| line["message"] == "request completed" && line["status"] == 201)
        .count();
    assert_eq!(created, 8);
    assert!(
        lines.iter().any(|line| line["message"] == "stopped"),
        "the last log line of a clean stop is missing"
    );
    // New connections are refused once the process is gone.
    let refused = reqwest::Client::new()
        .get(service.url("/tasks"))
        .send()
        .await;
    assert!(refused.is_err());
}
