//! Migrations started at the same instant by several processes on one database.

use std::sync::{Arc, Barrier};

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use task_testkit::TestDatabase;

/// Two replicas starting together on a fresh SQLite file: each migrates through its own
/// connection pool on its own thread and runtime (as two processes would), released at the
/// same instant. Both must succeed and leave one schema, migrated once.
#[test]
fn two_migrators_on_one_fresh_sqlite_file_both_succeed() {
    for round in 0..5 {
        let database = TestDatabase::sqlite().unwrap();
        let start = Arc::new(Barrier::new(2));
        let migrators: Vec<_> = (0..2)
            .map(|_| {
                let url = database.url().to_owned();
                let start = start.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    start.wait();
                    runtime.block_on(task_store::migrate(url.as_str()))
                })
            })
            .collect();
        for migrator in migrators {
            migrator
                .join()
                .unwrap()
                .unwrap_or_else(|error| panic!("round {round}: a migrator failed: {error}"));
        }
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let connection = sea_orm::Database::connect(database.url()).await.unwrap();
            assert!(task_migration::is_up_to_date(&connection).await.unwrap());
            let applied = connection
                .query_one(Statement::from_string(
                    DatabaseBackend::Sqlite,
                    "SELECT count(*) AS applied FROM seaql_migrations",
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(applied.try_get::<i64>("", "applied").unwrap(), 1);
            let tables = connection
                .query_one(Statement::from_string(
                    DatabaseBackend::Sqlite,
                    "SELECT count(*) AS tables FROM sqlite_master WHERE type = 'table' AND name = 'tasks'",
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(tables.try_get::<i64>("", "tables").unwrap(), 1);
            connection.close().await.unwrap();
        });
    }
}
