//! Seeds tasks through the public API (so the rows are exactly what the service writes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Mutex;

use crate::error::BenchError;

/// Creates `count` tasks with `concurrency` parallel keep-alive connections and returns
/// their ids (as the API spells them), sorted when they are integers.
pub async fn seed_tasks(
    public_url: &str,
    token: &str,
    count: usize,
    concurrency: usize,
) -> Result<Vec<String>, BenchError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .map_err(|e| BenchError::Seed(format!("HTTP client: {e}")))?;
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let base_us = chrono::Utc::now().timestamp_micros();
    let url = format!("{}/tasks", public_url.trim_end_matches('/'));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, next, ids, url) = (client.clone(), next.clone(), ids.clone(), url.clone());
        let auth = format!("Bearer {token}");
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<(), BenchError>(());
                }
                let body = serde_json::json!({
                    "title": format!("seeded task {n}"),
                    "content": "seeded by the benchmark",
                    "due_date": "2031-06-15",
                    "done": false,
                    "request_timestamp": rfc3339_micros(base_us + n as i64),
                });
                let resp = client
                    .post(&url)
                    .header("authorization", &auth)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| BenchError::Seed(format!("POST /tasks: {e}")))?;
                let status = resp.status();
                let text = resp
                    .text()
                    .await
                    .map_err(|e| BenchError::Seed(format!("POST /tasks body: {e}")))?;
                if status.as_u16() != 201 {
                    return Err(BenchError::Seed(format!("POST /tasks -> {status}: {text}")));
                }
                let id = task_id(&text)?;
                ids.lock().await.push(id);
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|e| BenchError::Seed(format!("worker: {e}")))??;
    }
    let mut ids = Arc::try_unwrap(ids)
        .map_err(|_| BenchError::Seed("workers still hold the id list".into()))?
        .into_inner();
    ids.sort_by_key(|id| (id.parse::<i64>().ok(), id.clone()));
    Ok(ids)
}

/// The `id` of a task body; integers and strings are both opaque ids to the client.
pub fn task_id(body: &str) -> Result<String, BenchError> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| BenchError::Seed(format!("task body is not JSON ({e}): {body}")))?;
    match value.get("id") {
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(BenchError::Seed(format!("task body has no id: {body}"))),
    }
}

/// RFC 3339 in UTC with microseconds, the form the API compares at full resolution.
pub fn rfc3339_micros(unix_micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(unix_micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_as_opaque_strings() {
        assert_eq!(task_id(r#"{"id":42,"title":"x"}"#).unwrap(), "42");
        assert_eq!(task_id(r#"{"id":"a1b2"}"#).unwrap(), "a1b2");
        assert!(task_id(r#"{"title":"x"}"#).is_err());
        assert!(task_id(r#"{"id":""}"#).is_err());
        assert!(task_id("not json").is_err());
    }

    #[test]
    fn timestamps_keep_microseconds() {
        assert_eq!(
            rfc3339_micros(1_795_000_000_000_001),
            "2026-11-18T11:06:40.000001Z"
        );
    }
}
