//! Storage of tasks: the narrow [`TaskStore`] interface the HTTP layer uses, and [`connect`],
//! which returns it for a database URL: PostgreSQL through pipelined tokio-postgres
//! connections ([`postgres`]), embedded SQLite through sea-orm ([`sea`]). Both run the same
//! statements ([`sql`]) under the same ordering flow ([`rows`]).
//!
//! The ordering rules of `task_domain` are enforced by single conditional statements (see
//! [`sql`]), never by read-modify-write in the application, so any number of replicas may
//! write concurrently.

pub mod postgres;
pub mod rows;
pub mod sea;
pub mod sql;

pub use sea_orm::DbErr;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::RuntimeErr;
use task_domain::{Task, TaskPatch, ValidCreate};

use crate::postgres::PipelinedPostgres;
use crate::rows::OrderedStore;
use crate::sea::SeaOrmRows;

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
        sqlx::Error::Database(database) => database
            .code()
            .is_some_and(|code| is_unavailable_code(&code)),
        _ => false,
    }
}

/// Error codes that mean the server cannot take work now, on either backend. PostgreSQL 08:
/// connection exception; 57P01-03: shutdown / cannot connect now; 53300: too many
/// connections. SQLite 5/6: busy / locked beyond busy_timeout.
pub(crate) fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "5" | "6")
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
    /// The connections now open, for the pool gauges.
    fn pool_stats(&self) -> PoolStats;
    /// Closes every connection (at shutdown, after the last request).
    async fn close(&self);
}

/// A snapshot of a store's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub open: u32,
    /// Open connections with at least one statement in flight.
    pub busy: u32,
    pub max: u32,
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

/// The store for `settings.url`: `postgres://…` (or `postgresql://…`) connects pipelined
/// tokio-postgres connections, anything else (`sqlite://…`) a sea-orm pool. The database must
/// exist and be migrated ([`migrate`]).
pub async fn connect(settings: &StoreSettings) -> Result<Arc<dyn TaskStore>, StoreError> {
    if is_postgres_url(&settings.url) {
        Ok(Arc::new(OrderedStore(
            PipelinedPostgres::connect(settings).await?,
        )))
    } else {
        Ok(Arc::new(OrderedStore(SeaOrmRows::connect(settings).await?)))
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub use task_migration::{MIGRATION_LOCK_KEY, migrate};
