//! The real binary against a TLS-only PostgreSQL whose certificate it must not trust: the
//! replica never starts serving, and says why in one log line.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use task_testkit::pki::Authority;
use task_testkit::{ClusterOptions, PostgresCluster};

/// Runs the binary with `database_url` until it exits (at most 30 s); its stdout lines.
fn run_until_exit(database_url: &str) -> (std::process::ExitStatus, Vec<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_task-api"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("TASK_API_LISTEN", "127.0.0.1:0")
        .env("TASK_API_ADMIN_LISTEN", "127.0.0.1:0")
        .env("TASK_API_DEV_MODE", "true")
        .env("TASK_API_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("task-api binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("task-api still running after 30 s with a certificate it must refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    (status, lines)
}

#[test]
fn a_certificate_from_another_ca_or_for_another_name_stops_the_replica_with_one_line() {
    let ours = Authority::new("task-api test CA");
    let theirs = Authority::new("someone else's CA");
    let (certificate, key) = ours.server_certificate(&["127.0.0.1"]);
    let cluster = PostgresCluster::start_with(ClusterOptions::default().tls_only(certificate, key));
    let files = tempfile::tempdir().unwrap();
    let (our_ca, their_ca) = (
        files.path().join("ours.pem"),
        files.path().join("theirs.pem"),
    );
    std::fs::write(&our_ca, &ours.pem).unwrap();
    std::fs::write(&their_ca, &theirs.pem).unwrap();

    for (host, ca, cause) in [
        ("127.0.0.1", &their_ca, "UnknownIssuer"),
        ("localhost", &our_ca, "not valid for name"),
    ] {
        let url = format!(
            "postgres://postgres@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}",
            cluster.port,
            ca.display()
        );
        let (status, lines) = run_until_exit(&url);
        assert!(!status.success(), "{host}: exited {status}");
        let errors: Vec<&Value> = lines
            .iter()
            .filter(|line| line["level"] == "ERROR")
            .collect();
        assert_eq!(errors.len(), 1, "{host}: {lines:?}");
        assert_eq!(errors[0]["message"], "startup failed", "{host}");
        let error = errors[0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(cause), "{host}: {error}");
        assert!(
            !lines
                .iter()
                .any(|line| line["message"] == "task-api listening"),
            "{host}: the replica must never serve"
        );
    }
}
