//! Storage of tasks: the narrow [`TaskStore`] interface the HTTP layer uses, and
//! [`SqlTaskStore`], its sea-orm based implementation for PostgreSQL and SQLite.
//!
//! The ordering rules of `task_domain` are enforced by single conditional statements (see
//! [`sql`]), never by read-modify-write in the application, so any number of replicas may
//! write concurrently.

pub mod sql;

pub use sea_orm::DbErr;

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, QueryResult,
    RuntimeErr, Statement, Value,
};
use task_domain::{
    DeleteDecision, FieldStamps, Task, TaskPatch, TaskState, UpdateDecision, ValidCreate,
    decide_delete, decide_update,
};

/// Why a store operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("task not found")]
    NotFound,
    #[error("request_timestamp is not newer than the task's state")]
    Stale,
    #[error("Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    /// The database cannot be reached right now (retryable: 503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if is_unavailable(&error) {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Database(error.to_string())
        }
    }
}

/// Errors that mean "the database is not reachable now" rather than "this query is wrong".
fn is_unavailable(error: &DbErr) -> bool {
    let runtime = match error {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_error) = runtime else {
        return false;
    };
    match sqlx_error {
        // A connection cut mid-message surfaces as a protocol error (unexpected EOF or a
        // truncated frame) rather than an I/O error, depending on where the read stopped.
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: shutdown / cannot connect now;
            // 53300: too many connections. SQLite 5/6: busy / locked beyond busy_timeout.
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300" | "5" | "6")
        }),
        _ => false,
    }
}

/// Result of a creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The task as stored now.
    pub task: Task,
    /// True when an earlier request with the same Idempotency-Key created it.
    pub replayed: bool,
}

/// An `Idempotency-Key` with the fingerprint of the request that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// Where to start a listing and how many tasks to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Only tasks with an id greater than this.
    pub after: i64,
    pub limit: u32,
}

/// Everything the HTTP layer needs from storage. All operations are scoped to an owner
/// (the authenticated subject): another owner's tasks behave as if they did not exist.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    async fn create(
        &self,
        owner: &str,
        create: &ValidCreate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError>;
    async fn get(&self, owner: &str, id: i64) -> Result<Task, StoreError>;
    async fn list(&self, owner: &str, page: Page) -> Result<Vec<Task>, StoreError>;
    /// Applies a PUT: `Ok` with the merged task, `Stale` (409) or `NotFound` (404).
    async fn update(
        &self,
        owner: &str,
        id: i64,
        patch: &TaskPatch,
        at: i64,
    ) -> Result<Task, StoreError>;
    /// Applies a DELETE: `Ok`, `Stale` (409) or `NotFound` (404).
    async fn delete(&self, owner: &str, id: i64, at: i64) -> Result<(), StoreError>;
    /// Answers when the database answers `SELECT 1` within `timeout`.
    async fn ping(&self, timeout: Duration) -> Result<(), StoreError>;
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `postgres://…` or `sqlite://…`.
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before the store reports
    /// `Unavailable` (kept short so that clients get a quick 503 while the database is down).
    pub acquire_timeout: Duration,
}

impl StoreSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
        }
    }
}

/// Statements in the dialect of the connected backend, prepared once.
#[derive(Debug)]
struct Statements {
    insert: String,
    by_idempotency_key: String,
    live_task: String,
    task_state: String,
    list: String,
    update: String,
    delete: String,
}

impl Statements {
    fn for_backend(backend: DatabaseBackend) -> Self {
        let dialect = |text: &str| match backend {
            DatabaseBackend::Sqlite => sql::for_sqlite(text),
            _ => text.to_owned(),
        };
        Self {
            insert: dialect(sql::INSERT_TASK),
            by_idempotency_key: dialect(sql::SELECT_BY_IDEMPOTENCY_KEY),
            live_task: dialect(sql::SELECT_LIVE_TASK),
            task_state: dialect(sql::SELECT_TASK_STATE),
            list: dialect(sql::LIST_LIVE_TASKS),
            update: dialect(sql::UPDATE_TASK),
            delete: dialect(sql::DELETE_TASK),
        }
    }
}

/// [`TaskStore`] on a sea-orm connection pool (PostgreSQL or SQLite). Statements run through
/// the sqlx pool underneath, which caches them as prepared statements per connection.
#[derive(Debug, Clone)]
pub struct SqlTaskStore {
    connection: DatabaseConnection,
    statements: std::sync::Arc<Statements>,
}

/// How often a write whose outcome raced with a concurrent creation is retried.
const CLASSIFY_ATTEMPTS: usize = 3;

impl SqlTaskStore {
    /// Connects (the database must exist; run the migrations with `task_migration::migrate`).
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            .connect_timeout(settings.acquire_timeout)
            .idle_timeout(Duration::from_secs(300))
            // A ping before every acquire would double the round trips of each request; a
            // connection that died meanwhile fails its statement (503) and is discarded.
            .test_before_acquire(false)
            .sqlx_logging(false);
        let connection = Database::connect(options).await?;
        if connection.get_database_backend() == DatabaseBackend::Sqlite {
            // WAL lets readers proceed while one writer commits; the setting persists in the
            // file. sqlx already waits up to 5 s on a locked database (busy_timeout).
            connection
                .execute_unprepared("PRAGMA journal_mode=WAL")
                .await?;
        }
        Ok(Self::from_connection(connection))
    }

    pub fn from_connection(connection: DatabaseConnection) -> Self {
        let statements = Statements::for_backend(connection.get_database_backend());
        Self {
            connection,
            statements: std::sync::Arc::new(statements),
        }
    }

    /// The underlying pool, e.g. for readiness checks and pool metrics.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.connection.get_database_backend(), sql, values)
    }

    async fn task_state(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError> {
        let row = self
            .connection
            .query_one(self.statement(&self.statements.task_state, vec![id.into(), owner.into()]))
            .await?;
        row.as_ref().map(decode_state).transpose()
    }
}

fn decode_state(row: &QueryResult) -> Result<TaskState, StoreError> {
    let get_i64 = |column: &str| row.try_get::<i64>("", column);
    Ok(TaskState {
        id: get_i64("id")?,
        title: row.try_get("", "title")?,
        content: row.try_get("", "content")?,
        due_date: row.try_get::<NaiveDate>("", "due_date")?,
        done: row.try_get("", "done")?,
        created_ts: get_i64("created_ts")?,
        stamps: FieldStamps {
            title: get_i64("title_ts")?,
            content: get_i64("content_ts")?,
            due_date: get_i64("due_date_ts")?,
            done: get_i64("done_ts")?,
        },
        deleted_ts: row.try_get::<Option<i64>>("", "deleted_ts")?,
    })
}

fn decode_live(row: &QueryResult) -> Result<Task, StoreError> {
    let state = decode_state(row)?;
    state.to_task().ok_or(StoreError::NotFound)
}

/// A task an idempotent replay returns: its current values, even if deleted since, so that
/// the replay answers like the original creation did.
fn replay_view(state: &TaskState) -> Task {
    Task {
        id: state.id,
        title: state.title.clone(),
        content: state.content.clone(),
        due_date: state.due_date,
        done: state.done,
        created_at: state.created_ts,
        updated_at: state.stamps.newest(),
    }
}

#[async_trait]
impl TaskStore for SqlTaskStore {
    async fn create(
        &self,
        owner: &str,
        create: &ValidCreate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let values = vec![
            owner.into(),
            create.title.as_str().into(),
            create.content.as_str().into(),
            create.due_date.into(),
            create.done.into(),
            create.timestamp.into(),
            idempotency.map(|i| i.key.clone()).into(),
            idempotency.map(|i| i.fingerprint.clone()).into(),
        ];
        let inserted = self
            .connection
            .query_one(self.statement(&self.statements.insert, values))
            .await?;
        if let Some(row) = inserted {
            return Ok(Created {
                task: decode_live(&row)?,
                replayed: false,
            });
        }
        // Only a conflicting Idempotency-Key suppresses the insert; the row that holds the
        // key is committed (ON CONFLICT waited for it), so this read finds it.
        let idempotency = idempotency.ok_or_else(|| {
            StoreError::Database("insert without idempotency key returned no row".into())
        })?;
        let existing = self
            .connection
            .query_one(self.statement(
                &self.statements.by_idempotency_key,
                vec![owner.into(), idempotency.key.as_str().into()],
            ))
            .await?
            .ok_or_else(|| StoreError::Database("idempotency key vanished".into()))?;
        let fingerprint: Option<String> = existing.try_get("", "request_fingerprint")?;
        if fingerprint.as_deref() != Some(idempotency.fingerprint.as_str()) {
            return Err(StoreError::IdempotencyConflict);
        }
        Ok(Created {
            task: replay_view(&decode_state(&existing)?),
            replayed: true,
        })
    }

    async fn get(&self, owner: &str, id: i64) -> Result<Task, StoreError> {
        let row = self
            .connection
            .query_one(self.statement(&self.statements.live_task, vec![id.into(), owner.into()]))
            .await?
            .ok_or(StoreError::NotFound)?;
        decode_live(&row)
    }

    async fn list(&self, owner: &str, page: Page) -> Result<Vec<Task>, StoreError> {
        let rows = self
            .connection
            .query_all(self.statement(
                &self.statements.list,
                vec![
                    owner.into(),
                    page.after.into(),
                    i64::from(page.limit).into(),
                ],
            ))
            .await?;
        rows.iter().map(decode_live).collect()
    }

    async fn update(
        &self,
        owner: &str,
        id: i64,
        patch: &TaskPatch,
        at: i64,
    ) -> Result<Task, StoreError> {
        for _ in 0..CLASSIFY_ATTEMPTS {
            let values = vec![
                id.into(),
                owner.into(),
                at.into(),
                patch.title.clone().into(),
                patch.content.clone().into(),
                patch.due_date.into(),
                patch.done.into(),
            ];
            if let Some(row) = self
                .connection
                .query_one(self.statement(&self.statements.update, values))
                .await?
            {
                return decode_live(&row);
            }
            // Nothing applied. A write that did not apply changes nothing, so it can be
            // answered from any later state: classify it against the current row. Should
            // that row now accept it (the task was created meanwhile), write again.
            let state = self.task_state(owner, id).await?;
            match decide_update(state.as_ref(), patch.fields(), at) {
                UpdateDecision::Stale => return Err(StoreError::Stale),
                UpdateDecision::NotFound => return Err(StoreError::NotFound),
                UpdateDecision::Apply(_) => continue,
            }
        }
        Err(StoreError::Database(
            "update kept racing with concurrent writes".into(),
        ))
    }

    async fn delete(&self, owner: &str, id: i64, at: i64) -> Result<(), StoreError> {
        for _ in 0..CLASSIFY_ATTEMPTS {
            if self
                .connection
                .query_one(self.statement(
                    &self.statements.delete,
                    vec![id.into(), owner.into(), at.into()],
                ))
                .await?
                .is_some()
            {
                return Ok(());
            }
            let state = self.task_state(owner, id).await?;
            match decide_delete(state.as_ref(), at) {
                DeleteDecision::Stale => return Err(StoreError::Stale),
                DeleteDecision::NotFound => return Err(StoreError::NotFound),
                DeleteDecision::Delete => continue,
            }
        }
        Err(StoreError::Database(
            "delete kept racing with concurrent writes".into(),
        ))
    }

    async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        let probe = self.connection.execute_unprepared("SELECT 1");
        match tokio::time::timeout(timeout, probe).await {
            Ok(result) => result.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(format!(
                "SELECT 1 did not answer within {timeout:?}"
            ))),
        }
    }
}

pub use task_migration::{MIGRATION_LOCK_KEY, migrate};
