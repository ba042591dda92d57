//! Concurrent writes on PostgreSQL committed together (`task_store::postgres`): the pool's
//! own connection type driven with raw statements on a fresh database, so that each write
//! can report the transaction it committed in (`pg_current_xact_id()`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseBackend, ProxyDatabaseTrait, ProxyRow, Statement, Value};
use task_store::postgres::{MAX_WRITES_PER_TRANSACTION, PipelinedPostgres, PostgresProxy};
use task_store::{StoreError, StoreSettings};
use task_testkit::TestDatabase;

/// A fresh database with the `numbers` table, and a pool of two connections on it: one for
/// reads, one writer, so that concurrent writes queue behind a single writer.
async fn numbers() -> (TestDatabase, PostgresProxy) {
    let database = TestDatabase::postgres().await.unwrap();
    let mut settings = StoreSettings::new(database.url().to_owned());
    settings.max_connections = 2;
    settings.statement_timeout = Duration::from_secs(10);
    let pool = Arc::new(
        PipelinedPostgres::connect(&settings, Vec::new())
            .await
            .unwrap(),
    );
    let proxy = pool.proxy();
    proxy
        .execute(statement(
            "CREATE TABLE numbers (id serial PRIMARY KEY, n integer NOT NULL CHECK (n >= 0))",
            Vec::new(),
        ))
        .await
        .unwrap();
    (database, proxy)
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

fn text(row: &ProxyRow, column: &str) -> String {
    match row.values.get(column) {
        Some(Value::String(Some(value))) => value.to_string(),
        other => panic!("{column}: {other:?}"),
    }
}

fn int(row: &ProxyRow, column: &str) -> i32 {
    match row.values.get(column) {
        Some(Value::Int(Some(value))) => *value,
        other => panic!("{column}: {other:?}"),
    }
}

const INSERT: &str =
    "INSERT INTO numbers (n) VALUES ($1) RETURNING n, pg_current_xact_id()::text AS xid";

/// Inserts `n` and returns (n as answered, transaction id) or the store's error.
async fn insert(proxy: PostgresProxy, n: i32) -> Result<(i32, String), StoreError> {
    let rows = proxy
        .query(statement(INSERT, vec![Value::Int(Some(n))]))
        .await
        .map_err(StoreError::from)?;
    assert_eq!(rows.len(), 1, "one row per insert");
    Ok((int(&rows[0], "n"), text(&rows[0], "xid")))
}

/// The value [`occupy_the_writer`] inserts.
const OCCUPIER: i32 = 1000;

/// Checks that the table holds exactly `0..count` and the row of [`occupy_the_writer`].
async fn assert_stored(proxy: &PostgresProxy, count: i32, message: &str) {
    let rows = proxy
        .query(statement("SELECT n FROM numbers ORDER BY n", Vec::new()))
        .await
        .unwrap();
    let stored: Vec<i32> = rows.iter().map(|row| int(row, "n")).collect();
    let mut expected_rows: Vec<i32> = (0..count).collect();
    expected_rows.push(OCCUPIER);
    assert_eq!(stored, expected_rows, "{message}");
}

/// Holds the writer for a moment, so that the writes sent meanwhile queue up behind it.
async fn occupy_the_writer(proxy: &PostgresProxy) -> tokio::task::JoinHandle<()> {
    let busy = proxy.clone();
    let handle = tokio::spawn(async move {
        busy.query(statement(
            &format!("INSERT INTO numbers (n) SELECT {OCCUPIER} FROM pg_sleep(0.3) RETURNING n"),
            Vec::new(),
        ))
        .await
        .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_commit_together_and_each_gets_its_own_answer() {
    let (_database, proxy) = numbers().await;
    let busy = occupy_the_writer(&proxy).await;
    let writes: Vec<_> = (0..40)
        .map(|n| tokio::spawn(insert(proxy.clone(), n)))
        .collect();
    let mut transactions = BTreeSet::new();
    for (n, write) in writes.into_iter().enumerate() {
        let (answered, xid) = write.await.unwrap().unwrap();
        assert_eq!(
            answered, n as i32,
            "each write is answered with its own row"
        );
        transactions.insert(xid);
    }
    busy.await.unwrap();
    // Forty writes queued behind one writer: at most MAX_WRITES_PER_TRANSACTION a
    // transaction, so at least three transactions and far fewer than forty.
    let expected = 40usize.div_ceil(MAX_WRITES_PER_TRANSACTION);
    assert!(
        (expected..=expected + 2).contains(&transactions.len()),
        "40 queued writes committed in {} transactions",
        transactions.len()
    );
    assert_stored(&proxy, 40, "every answered write is stored").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_fails_alone_and_the_writes_beside_it_commit() {
    let (_database, proxy) = numbers().await;
    let busy = occupy_the_writer(&proxy).await;
    // -1 breaks the CHECK constraint; it is queued among the others, so it lands in a
    // transaction with some of them.
    let values: Vec<i32> = (0..10).chain([-1]).chain(10..20).collect();
    let writes: Vec<_> = values
        .iter()
        .map(|&n| tokio::spawn(insert(proxy.clone(), n)))
        .collect();
    for (&n, write) in values.iter().zip(writes) {
        let outcome = write.await.unwrap();
        if n < 0 {
            let error = outcome.expect_err("the write that breaks the constraint fails");
            assert!(
                !error.is_unavailable(),
                "a statement error, not an outage: {error}"
            );
            let chain = task_store::error_chain(&error);
            assert!(chain.contains("numbers_n_check"), "{chain}");
        } else {
            let (answered, _) = outcome.unwrap_or_else(|error| panic!("write {n}: {error}"));
            assert_eq!(answered, n);
        }
    }
    busy.await.unwrap();
    assert_stored(&proxy, 20, "the rolled-back writes ran again on their own").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_write_commits_on_its_own_without_waiting() {
    let (_database, proxy) = numbers().await;
    let (first, first_xid) = insert(proxy.clone(), 1).await.unwrap();
    let (second, second_xid) = insert(proxy.clone(), 2).await.unwrap();
    assert_eq!((first, second), (1, 2));
    assert_ne!(
        first_xid, second_xid,
        "sequential writes are separate transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_does_not_wait_behind_a_write_transaction() {
    let (_database, proxy) = numbers().await;
    let busy = occupy_the_writer(&proxy).await;
    let rows = proxy
        .query(statement("SELECT 7 AS n", Vec::new()))
        .await
        .unwrap();
    assert_eq!(int(&rows[0], "n"), 7);
    assert!(
        !busy.is_finished(),
        "the read was answered while the write still ran: it went to a read connection"
    );
    busy.await.unwrap();
}
