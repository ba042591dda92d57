//! libpq's TLS modes against a real server that accepts TLS connections only (`hostssl`),
//! with a certificate from a throwaway CA made here: the service (tokio-postgres) and its
//! migrator (sqlx) both verify whom they talk to.

use chrono::NaiveDate;
use task_domain::ValidCreate;
use task_store::{StoreError, StoreSettings, error_chain};
use task_testkit::pki::Authority;
use task_testkit::{ClusterOptions, PostgresCluster};

fn task() -> ValidCreate {
    ValidCreate {
        title: "over TLS".to_owned(),
        content: String::new(),
        due_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        done: false,
        timestamp: 1,
    }
}

async fn refused(url: &str) -> String {
    let migrated = task_store::migrate(url).await;
    let connected = task_store::connect(&StoreSettings::new(url)).await;
    let errors: Vec<StoreError> = [migrated.err(), connected.err()]
        .into_iter()
        .map(|error| error.unwrap_or_else(|| panic!("{url} was accepted")))
        .collect();
    errors
        .iter()
        .map(|error| error_chain(error))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_verify_the_server_as_libpq_does() {
    let ours = Authority::new("task-api test CA");
    let theirs = Authority::new("someone else's CA");
    // Valid for the IP address only: `localhost` is a name mismatch.
    let (certificate, key) = ours.server_certificate(&["127.0.0.1"]);
    let cluster = PostgresCluster::start_with(ClusterOptions::default().tls_only(certificate, key));
    let files = tempfile::tempdir().unwrap();
    let our_ca = files.path().join("our-ca.pem");
    let their_ca = files.path().join("their-ca.pem");
    std::fs::write(&our_ca, &ours.pem).unwrap();
    std::fs::write(&their_ca, &theirs.pem).unwrap();
    let url = |host: &str, query: String| {
        format!(
            "postgres://postgres@{host}:{}/postgres?{query}",
            cluster.port
        )
    };

    // verify-full with the right CA: migrations and the service connect, statements run,
    // and the server sees encrypted sessions.
    let good = url(
        "127.0.0.1",
        format!("sslmode=verify-full&sslrootcert={}", our_ca.display()),
    );
    task_store::migrate(good.as_str()).await.unwrap();
    let store = task_store::connect(&StoreSettings::new(good.as_str()))
        .await
        .unwrap();
    store.create("alice", &task(), None).await.unwrap();
    let encrypted = cluster.psql(
        "SELECT count(*) FILTER (WHERE ssl) || '/' || count(*) FROM pg_stat_ssl \
         JOIN pg_stat_activity USING (pid) WHERE application_name = 'task-api'",
    );
    let (tls, all) = encrypted.split_once('/').unwrap();
    assert!(all != "0" && tls == all, "TLS sessions/all: {encrypted}");
    store.close().await;

    // Another CA: refused in verify-full and verify-ca, by the migrator and the service.
    for mode in ["verify-full", "verify-ca"] {
        let errors = refused(&url(
            "127.0.0.1",
            format!("sslmode={mode}&sslrootcert={}", their_ca.display()),
        ))
        .await;
        assert!(
            errors.contains("UnknownIssuer") || errors.contains("unknown issuer"),
            "{mode}: {errors}"
        );
    }

    // A name the certificate does not carry: verify-full refuses, verify-ca (chain only)
    // accepts.
    let errors = refused(&url(
        "localhost",
        format!("sslmode=verify-full&sslrootcert={}", our_ca.display()),
    ))
    .await;
    assert!(errors.contains("not valid for name"), "{errors}");
    let chain_only = url(
        "localhost",
        format!("sslmode=verify-ca&sslrootcert={}", our_ca.display()),
    );
    task_store::migrate(chain_only.as_str()).await.unwrap();
    let store = task_store::connect(&StoreSettings::new(chain_only.as_str()))
        .await
        .unwrap();
    store.create("alice", &task(), None).await.unwrap();
    store.close().await;

    // require: encrypted without a CA check (libpq's meaning); disable is refused by the
    // hostssl-only server.
    let require = url("127.0.0.1", "sslmode=require".to_owned());
    task_store::migrate(require.as_str()).await.unwrap();
    let store = task_store::connect(&StoreSettings::new(require.as_str()))
        .await
        .unwrap();
    store.get("alice", 1).await.unwrap();
    store.close().await;
    let errors = refused(&url("127.0.0.1", "sslmode=disable".to_owned())).await;
    assert!(errors.contains("no encryption"), "{errors}");
}
