//! The store against both real backends: a fresh PostgreSQL database per test on the local
//! service, and a temporary SQLite file.

use chrono::NaiveDate;
use std::sync::Arc;
use task_domain::{TaskPatch, ValidCreate};

use task_store::{Idempotency, Page, StoreError, StoreSettings, TaskStore};
use task_testkit::{Backend, TestDatabase};

async fn store(backend: Backend) -> (TestDatabase, Arc<dyn TaskStore>) {
    let database = TestDatabase::new(backend).await.expect("test database");
    task_store::migrate(database.url())
        .await
        .expect("migrations");
    let store = task_store::connect(&StoreSettings::new(database.url()))
        .await
        .expect("store connects");
    (database, store)
}

fn creation(title: &str, at: i64) -> ValidCreate {
    ValidCreate {
        title: title.to_owned(),
        content: "content".to_owned(),
        due_date: NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        done: false,
        timestamp: at,
    }
}

fn patch_title(title: &str) -> TaskPatch {
    TaskPatch {
        title: Some(title.to_owned()),
        ..TaskPatch::default()
    }
}

async fn ordering_rules_hold(backend: Backend) {
    let (_database, store) = store(backend).await;
    let created = store
        .create("alice", &creation("t0", 1_000), None)
        .await
        .unwrap();
    assert!(!created.replayed);
    let id = created.task.id;
    assert_eq!(created.task.created_at, 1_000);

    let updated = store
        .update("alice", id, &patch_title("t2"), 2_000)
        .await
        .unwrap();
    assert_eq!((updated.title.as_str(), updated.updated_at), ("t2", 2_000));
    assert!(matches!(
        store.update("alice", id, &patch_title("old"), 1_500).await,
        Err(StoreError::Stale)
    ));
    // Older title is stale, but the done flag was never written after creation.
    let mixed = TaskPatch {
        title: Some("old".into()),
        done: Some(true),
        ..TaskPatch::default()
    };
    let merged = store.update("alice", id, &mixed, 1_500).await.unwrap();
    assert_eq!((merged.title.as_str(), merged.done), ("t2", true));
    assert_eq!(merged.updated_at, 2_000);
    assert!(matches!(
        store.update("alice", id, &patch_title("x"), 1_000).await,
        Err(StoreError::Stale)
    ));
    assert!(matches!(
        store.update("bob", id, &patch_title("x"), 9_000).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get("bob", id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete("bob", id, 9_000).await,
        Err(StoreError::NotFound)
    ));

    // A delete older than the newest write still removes the task for good.
    store.delete("alice", id, 1_800).await.unwrap();
    assert!(matches!(
        store.get("alice", id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update("alice", id, &patch_title("x"), 1_700).await,
        Err(StoreError::Stale)
    ));
    assert!(matches!(
        store.update("alice", id, &patch_title("x"), 1_900).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete("alice", id, 1_100).await,
        Err(StoreError::Stale)
    ));
    assert!(matches!(
        store.delete("alice", id, 5_000).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .list(
                "alice",
                Page {
                    after: 0,
                    limit: 100
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

async fn listing_pages_live_tasks_of_one_owner(backend: Backend) {
    let (_database, store) = store(backend).await;
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(
            store
                .create("alice", &creation(&format!("a{index}"), 10), None)
                .await
                .unwrap()
                .task
                .id,
        );
    }
    store.create("bob", &creation("b", 10), None).await.unwrap();
    store.delete("alice", ids[2], 20).await.unwrap();
    let first = store
        .list("alice", Page { after: 0, limit: 2 })
        .await
        .unwrap();
    assert_eq!(first.iter().map(|t| t.id).collect::<Vec<_>>(), ids[..2]);
    let rest = store
        .list(
            "alice",
            Page {
                after: ids[1],
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[3], ids[4]]
    );
}

async fn idempotency_keys_replay_and_conflict(backend: Backend) {
    let (_database, store) = store(backend).await;
    let create = creation("once", 1_000);
    let key = Idempotency {
        key: "k-1".into(),
        fingerprint: create.fingerprint(),
    };
    let first = store.create("alice", &create, Some(&key)).await.unwrap();
    let again = store.create("alice", &create, Some(&key)).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.task, first.task);
    let other = creation("other", 1_000);
    let reused = Idempotency {
        key: "k-1".into(),
        fingerprint: other.fingerprint(),
    };
    assert!(matches!(
        store.create("alice", &other, Some(&reused)).await,
        Err(StoreError::IdempotencyConflict)
    ));
    // Keys are scoped to the owner.
    let bobs = store.create("bob", &create, Some(&key)).await.unwrap();
    assert!(!bobs.replayed);
    assert_ne!(bobs.task.id, first.task.id);
    assert_eq!(
        store
            .list(
                "alice",
                Page {
                    after: 0,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn concurrent_duplicates_create_one_row(backend: Backend) {
    let (_database, store) = store(backend).await;
    let create = creation("race", 1_000);
    let key = Idempotency {
        key: "race".into(),
        fingerprint: create.fingerprint(),
    };
    let attempts =
        futures::future::join_all((0..16).map(|_| store.create("alice", &create, Some(&key))))
            .await;
    let ids: std::collections::HashSet<i64> = attempts
        .into_iter()
        .map(|result| result.unwrap().task.id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        store
            .list(
                "alice",
                Page {
                    after: 0,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .len(),
        1
    );
}

task_testkit::on_both_backends!(
    ordering_rules_hold,
    listing_pages_live_tasks_of_one_owner,
    idempotency_keys_replay_and_conflict,
    concurrent_duplicates_create_one_row,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_on_a_fresh_postgres_database_all_succeed() {
    let database = TestDatabase::postgres().await.unwrap();
    let results =
        futures::future::join_all((0..6).map(|_| task_store::migrate(database.url()))).await;
    for result in results {
        result.expect("every migrator succeeds");
    }
    let connection = sea_orm::Database::connect(database.url()).await.unwrap();
    assert!(task_migration::is_up_to_date(&connection).await.unwrap());
}

/// sea-orm-migration runs SQLite migrations outside a transaction: a failure (or a crash)
/// after CREATE TABLE left a half-made schema that failed every later start.
#[tokio::test]
async fn a_failed_sqlite_migration_leaves_nothing_behind() {
    use sea_orm::ConnectionTrait;
    let database = TestDatabase::sqlite().unwrap();
    let connection = sea_orm::Database::connect(database.url()).await.unwrap();
    // Takes the name of the migration's last index: the run fails after CREATE TABLE and
    // the first index.
    connection
        .execute_unprepared("CREATE TABLE tasks_owner_idempotency_key (x INTEGER)")
        .await
        .unwrap();
    assert!(task_store::migrate(database.url()).await.is_err());
    connection
        .execute_unprepared("DROP TABLE tasks_owner_idempotency_key")
        .await
        .unwrap();
    connection.close().await.unwrap();
    task_store::migrate(database.url())
        .await
        .expect("the next start migrates from scratch");
    let store = task_store::connect(&StoreSettings::new(database.url()))
        .await
        .unwrap();
    store
        .create("alice", &creation("after", 1), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn store_errors_keep_their_typed_source() {
    // Nothing listens on port 1.
    let error = task_store::connect(&StoreSettings::new("postgres://postgres@127.0.0.1:1/x"))
        .await
        .err()
        .expect("no server");
    assert!(error.is_unavailable(), "{error:?}");
    let source = std::error::Error::source(&error).expect("a source");
    let postgres = source
        .downcast_ref::<tokio_postgres::Error>()
        .expect("the tokio-postgres error itself");
    assert!(
        std::error::Error::source(postgres)
            .is_some_and(|io| io.downcast_ref::<std::io::Error>().is_some()),
        "{postgres:?}"
    );
}

/// `close()` used to leave reconnects possible: a closed store must not open connections
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_postgres_store_opens_no_connection_again() {
    use sea_orm::ConnectionTrait;
    let (database, store) = store(Backend::Postgres).await;
    store.get("alice", 1).await.unwrap_err();
    store.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(matches!(
        store.get("alice", 1).await,
        Err(StoreError::Unavailable { .. })
    ));
    let admin = sea_orm::Database::connect(database.url()).await.unwrap();
    let row = admin
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) AS open FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'task-api'",
        ))
        .await
        .unwrap()
        .unwrap();
    let open: i64 = row.try_get("", "open").unwrap();
    assert_eq!(open, 0, "connections of a closed store");
    admin.close().await.unwrap();
}
