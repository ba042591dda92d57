//! Credential rotation under load: the password of a real role (SCRAM authentication) is
//! changed while requests run, and the mounted URL file is updated a second later, as
//! External Secrets and the kubelet do after RDS rotates its managed password. No request
//! may fail: connections open before the rotation keep working, renewals during the gap
//! fail in the background and keep the old connection, and the next ones use the new file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use task_domain::ValidCreate;
use task_store::{DatabaseUrl, StoreSettings, error_chain};
use task_testkit::{ClusterOptions, PostgresCluster};

fn task(at: i64) -> ValidCreate {
    ValidCreate {
        title: format!("task {at}"),
        content: String::new(),
        due_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        done: false,
        timestamp: at,
    }
}

/// Replaces the file in one step, as the kubelet swaps a Secret volume's files.
fn write_atomically(path: &std::path::Path, contents: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_password_fails_no_request() {
    let cluster = PostgresCluster::start_with(
        ClusterOptions::default()
            .hba("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"),
    );
    cluster.psql("CREATE ROLE app LOGIN PASSWORD 'first-password'");
    cluster.psql("CREATE DATABASE tasks OWNER app");
    let files = tempfile::tempdir().unwrap();
    let url_file = files.path().join("url");
    write_atomically(
        &url_file,
        &cluster.url_for("app", "first-password", "tasks", "sslmode=disable"),
    );
    let url = DatabaseUrl::File(url_file.clone());
    task_store::migrate(url.clone()).await.unwrap();
    let mut settings = StoreSettings::new(url);
    settings.max_connections = 4;
    // Renewed every ~second, so that the test sees renewals fail during the gap and
    // succeed after it.
    settings.max_lifetime = Duration::from_secs(1);
    let store = task_store::connect(&settings).await.unwrap();

    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(6);
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let store = store.clone();
            let failures = failures.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut at = 1;
                while Instant::now() < until {
                    let owner = format!("owner-{worker}");
                    let outcome = match store.create(&owner, &task(at), None).await {
                        Ok(created) => store.get(&owner, created.task.id).await.map(|_| ()),
                        Err(error) => Err(error),
                    };
                    match outcome {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => failures.lock().unwrap().push(error_chain(&error)),
                    }
                    at += 1;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.psql("ALTER ROLE app PASSWORD 'second-password'");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    write_atomically(
        &url_file,
        &cluster.url_for("app", "second-password", "tasks", "sslmode=disable"),
    );
    let updated = Instant::now();
    for worker in workers {
        worker.await.unwrap();
    }

    let failures = std::mem::take(&mut *failures.lock().unwrap());
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        done.load(Ordering::Relaxed) > 100,
        "too little load to mean anything"
    );
    // The gap was real: renewals with the old password were refused by the server...
    assert!(
        cluster
            .server_log()
            .contains("password authentication failed for user \"app\""),
        "no renewal fell into the gap"
    );
    // ...and every connection the store has now was opened with the new one.
    let age = cluster.psql(
        "SELECT count(*) || '/' || coalesce(max(extract(epoch FROM now() - backend_start)), 0) \
         FROM pg_stat_activity WHERE usename = 'app'",
    );
    let (count, oldest) = age.split_once('/').unwrap();
    let oldest: f64 = oldest.parse().unwrap();
    assert!(count != "0", "{age}");
    assert!(
        oldest < updated.elapsed().as_secs_f64(),
        "a connection from before the file changed is still open: {age}"
    );
    store.close().await;
}
