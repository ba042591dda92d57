//! Storage of tasks: the narrow [`TaskStore`] interface the HTTP layer uses, and [`connect`],
//! which returns it for a database URL. Both backends run through one sea-orm connection
//! ([`sea`]): embedded SQLite on sea-orm's sqlx pool, PostgreSQL on sea-orm's proxy
//! connection onto pipelined tokio-postgres connections ([`postgres`]). The table is one
//! entity ([`entity`]), the statements are built from it by sea-query ([`statements`]), and
//! the ordering flow is written once ([`rows`]).
//!
//! The ordering rules of `task_domain` are enforced by single conditional statements (see
//! [`statements`]), never by read-modify-write in the application, so any number of
//! replicas may write concurrently.

pub mod entity;
pub mod postgres;
pub mod postgres_url;
pub mod rows;
pub mod sea;
pub mod statements;

pub use sea_orm::DbErr;

/// The `tracing` target of the database client spans (one per statement, decision 0106).
/// They only feed trace export: the telemetry turns this target off when no trace is
/// exported, because recording a span nobody reads costs a measurable share of a request.
pub const DATABASE_SPAN_TARGET: &str = "task_store::db";
pub use secrecy::{ExposeSecret, SecretString};

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::RuntimeErr;
use task_domain::{Task, TaskPatch, ValidCreate};

use crate::rows::OrderedStore;
use crate::sea::SeaOrmRows;

/// The error underneath a [`StoreError`], kept with its type for `source()` chains.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    #[error("database unavailable: {reason}")]
    Unavailable {
        reason: Cow<'static, str>,
        #[source]
        source: Option<Source>,
    },
    #[error("database error: {reason}")]
    Database {
        reason: Cow<'static, str>,
        #[source]
        source: Option<Source>,
    },
}

impl StoreError {
    pub fn unavailable(reason: impl Into<Cow<'static, str>>) -> Self {
        StoreError::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    pub fn unavailable_by(reason: impl Into<Cow<'static, str>>, source: impl Into<Source>) -> Self {
        StoreError::Unavailable {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    pub fn database(reason: impl Into<Cow<'static, str>>) -> Self {
        StoreError::Database {
            reason: reason.into(),
            source: None,
        }
    }

    pub fn database_by(reason: impl Into<Cow<'static, str>>, source: impl Into<Source>) -> Self {
        StoreError::Database {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// An error and its `source()` chain on one line (`outer: inner: root cause`), for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source in their own text; say each thing once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl StoreError {
    /// This error as the [`DbErr`] sea-orm's proxy connection must return; [`From<DbErr>`]
    /// takes it out again unchanged, source included.
    pub(crate) fn into_db_err(self) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::AnyDriverError(
            Box::new(self),
        )))
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        let error = match error {
            DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::AnyDriverError(inner))) => {
                match inner.downcast::<StoreError>() {
                    Ok(carried) => return *carried,
                    Err(other) => {
                        DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::AnyDriverError(other)))
                    }
                }
            }
            other => other,
        };
        if is_unavailable_error(&error) {
            StoreError::unavailable_by("statement failed", error)
        } else {
            StoreError::database_by("statement failed", error)
        }
    }
}

/// The store's one classifier, for both backends: whether an error means "the database is
/// not reachable now" rather than "this statement is wrong", by the types and codes along
/// its `source()` chain (sea-orm, sqlx on SQLite and in the migrator, tokio-postgres).
pub(crate) fn is_unavailable_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(DbErr::ConnectionAcquire(_)) = error.downcast_ref::<DbErr>() {
            return true;
        }
        if let Some(sqlx_error) = error.downcast_ref::<sqlx::Error>() {
            match sqlx_error {
                // A connection cut mid-message surfaces as a protocol error (unexpected EOF
                // or a truncated frame) rather than an I/O error, depending on where the read
                // stopped.
                sqlx::Error::Io(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => return true,
                sqlx::Error::Database(database) => {
                    return if let Some(sqlite) =
                        database.try_downcast_ref::<sqlx::sqlite::SqliteError>()
                    {
                        sqlx::error::DatabaseError::code(sqlite)
                            .is_some_and(|code| is_sqlite_unavailable_code(&code))
                    } else {
                        database
                            .code()
                            .is_some_and(|code| is_postgres_unavailable_code(&code))
                    };
                }
                _ => {}
            }
        }
        if let Some(postgres) = error.downcast_ref::<tokio_postgres::Error>() {
            if postgres.is_closed() {
                return true;
            }
            if let Some(code) = postgres.code() {
                return is_postgres_unavailable_code(code.code());
            }
        }
        if error.is::<std::io::Error>() || error.is::<rustls::Error>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// SQLSTATEs that mean the server cannot take work now. 08: connection exception; 57P01-03:
/// shutdown / cannot connect now; 53300: too many connections; 25006: read-only transaction
/// (a failed-over primary that is now a standby: the next connection reaches the new one).
pub(crate) fn is_postgres_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "25006")
}

/// SQLite result codes that mean the database is busy beyond `busy_timeout`: SQLITE_BUSY (5)
/// and SQLITE_LOCKED (6), including their extended codes (the primary code is the low byte:
/// 261 SQLITE_BUSY_RECOVERY, 517 SQLITE_BUSY_SNAPSHOT, 262 SQLITE_LOCKED_SHAREDCACHE, ...).
pub(crate) fn is_sqlite_unavailable_code(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
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

/// Where the database URL comes from: a value (e.g. the `DATABASE_URL` variable) or a file
/// read again each time a connection opens, so that credentials rotated on disk (a mounted
/// Secret) are used by the next connection without a restart. Never printed.
#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    Value(SecretString),
    File(PathBuf),
}

impl DatabaseUrl {
    /// The URL now (for a file: its contents, surrounding whitespace removed).
    pub fn read(&self) -> Result<SecretString, StoreError> {
        match self {
            DatabaseUrl::Value(url) => Ok(url.clone()),
            DatabaseUrl::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(SecretString::from(text.trim())),
                Err(error) => Err(StoreError::unavailable_by(
                    format!("cannot read the database URL from {}", path.display()),
                    error,
                )),
            },
        }
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        DatabaseUrl::Value(SecretString::from(url))
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl::Value(SecretString::from(url))
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `postgres://…` or `sqlite://…`.
    pub url: DatabaseUrl,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, and a connection attempt for the
    /// server, before the store reports `Unavailable` (kept short so that clients get a
    /// quick 503 while the database is down).
    pub acquire_timeout: Duration,
    /// PostgreSQL: how long one statement may take before its connection is considered
    /// broken and replaced, and the request answered `Unavailable`.
    pub statement_timeout: Duration,
    /// PostgreSQL: a connection older than this (minus up to 10 % jitter) is replaced by a
    /// new one, opened first, so that rotated credentials and a failed-over server are
    /// picked up without a failed request.
    pub max_lifetime: Duration,
}

impl StoreSettings {
    pub fn new(url: impl Into<DatabaseUrl>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(2),
            max_lifetime: Duration::from_secs(30 * 60),
        }
    }
}

/// The store for `settings.url`: `postgres://…` (or `postgresql://…`) connects pipelined
/// tokio-postgres connections behind sea-orm's proxy connection, anything else
/// (`sqlite://…`) a sea-orm sqlx pool. The database must
/// exist and be migrated ([`migrate`]).
pub async fn connect(settings: &StoreSettings) -> Result<Arc<dyn TaskStore>, StoreError> {
    install_crypto_provider();
    let rows = if is_postgres_url(settings.url.read()?.expose_secret()) {
        SeaOrmRows::connect_postgres(settings).await?
    } else {
        SeaOrmRows::connect_sqlite(settings).await?
    };
    Ok(Arc::new(OrderedStore(rows)))
}

/// sqlx builds its TLS configuration on rustls' process-wide default provider, which rustls
/// cannot choose when a binary enables both of its providers (reqwest brings aws-lc-rs): it
/// then panics on the first verified connection. The store's own connections name `ring`
/// explicitly; this makes it the default too (a no-op if one is already installed).
fn install_crypto_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub use task_migration::MIGRATION_LOCK_KEY;

/// Applies all pending migrations to the database at `url`. On PostgreSQL the server is
/// first checked with the service's own TLS rules ([`postgres_url`]: libpq's `sslmode` and
/// `sslrootcert`), then the migrator (sqlx) connects with the equivalent sqlx settings.
pub async fn migrate(url: impl Into<DatabaseUrl>) -> Result<(), StoreError> {
    install_crypto_provider();
    let url = url.into().read()?;
    let url = url.expose_secret();
    let migrator_url = if is_postgres_url(url) {
        let target = postgres_url::Target::parse(url)?;
        postgres::probe(&target).await?;
        target.sqlx_url()
    } else {
        SecretString::from(url)
    };
    task_migration::migrate(migrator_url.expose_secret())
        .await
        .map_err(StoreError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_extended_busy_and_locked_codes_are_unavailable() {
        // SQLITE_BUSY, SQLITE_LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT,
        // LOCKED_SHAREDCACHE.
        for code in ["5", "6", "261", "517", "773", "262"] {
            assert!(is_sqlite_unavailable_code(code), "{code}");
        }
        // SQLITE_ERROR, SQLITE_CONSTRAINT, CONSTRAINT_UNIQUE, SQLITE_CORRUPT.
        for code in ["1", "19", "2067", "11", "not a number"] {
            assert!(!is_sqlite_unavailable_code(code), "{code}");
        }
    }

    #[test]
    fn settings_never_print_the_password() {
        let settings = StoreSettings::new("postgres://task:hunter2@db.internal/tasks");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let file = StoreSettings::new(DatabaseUrl::File("/run/secrets/url".into()));
        assert!(format!("{file:?}").contains("/run/secrets/url"));
    }
}
