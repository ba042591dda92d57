//! Helpers shared by the `operability_*` suites: the real `task-api` binary with its stdout
//! captured, and a throwaway PostgreSQL cluster that a test may stop and start again.
// `operability_telemetry` compiles its own copy of this module and uses a subset of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// The `task-api` binary, configured by `env`, with every stdout line kept for inspection.
pub struct ServiceProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    /// The dev-mode token for the subject `developer`, taken from the startup warning.
    pub dev_token: String,
}

impl ServiceProcess {
    /// Starts the binary in dev mode with JSON logs on free loopback ports, plus `env`.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_task-api"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("TASK_API_LISTEN", "127.0.0.1:0")
            .env("TASK_API_ADMIN_LISTEN", "127.0.0.1:0")
            .env("TASK_API_DEV_MODE", "true")
            .env("TASK_API_LOG_FORMAT", "json")
            .env("TASK_API_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("task-api binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log lines lock").push(line);
            }
        });
        let mut process = Self {
            child,
            lines,
            public: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            dev_token: String::new(),
        };
        let listening = process
            .wait_for_log(
                Duration::from_secs(60),
                "the `task-api listening` line",
                |line| line["message"] == "task-api listening",
            )
            .await;
        process.public = listening["public"].as_str().unwrap().parse().unwrap();
        process.admin = listening["admin"].as_str().unwrap().parse().unwrap();
        let warning = process
            .wait_for_log(Duration::from_secs(5), "the dev-mode token", |line| {
                line["token"].is_string()
            })
            .await;
        process.dev_token = warning["token"].as_str().unwrap().to_owned();
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Every stdout line so far.
    pub fn raw_lines(&self) -> Vec<String> {
        self.lines.lock().expect("log lines lock").clone()
    }

    /// Every stdout line so far, each parsed as JSON (panics on a line that is not).
    pub fn json_lines(&self) -> Vec<Value> {
        self.raw_lines()
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("log line is not JSON ({error}): {line}"))
            })
            .collect()
    }

    pub async fn wait_for_log(
        &mut self,
        limit: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            if let Some(line) = self.json_lines().into_iter().find(|line| matches(line)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "task-api exited ({status}) before {what}; stdout:\n{}",
                    self.raw_lines().join("\n")
                );
            }
            assert!(
                started.elapsed() < limit,
                "no {what} within {limit:?}; stdout:\n{}",
                self.raw_lines().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, as Kubernetes does when a pod is deleted.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    pub async fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "task-api still running after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster of the test's own that a test can stop and start again on the same
/// address (see `task_testkit::PostgresCluster`).
#[allow(unused_imports)]
pub use task_testkit::PostgresCluster as ThrowawayPostgres;

/// Parses the Prometheus text format into `(series, value)` pairs, e.g.
/// `("task_api_db_up", 1.0)` or `("task_api_http_requests_total{method=\"GET\",...}", 3.0)`.
pub fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value` line");
            (series.to_owned(), value.parse().expect("numeric sample"))
        })
        .collect()
}

/// The value of the one series named `name` whose labels include every `label="value"` in
/// `labels`.
pub fn sample(metrics: &[(String, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .iter()
        .find(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(label, value)| series_labels.contains(&format!("{label}=\"{value}\"")))
        })
        .map(|(_, value)| *value)
}
