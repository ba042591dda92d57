//! [`TaskRows`] on one sea-orm [`DatabaseConnection`], the same code for both backends:
//! embedded SQLite through sea-orm's sqlx pool, PostgreSQL through sea-orm's proxy
//! connection onto the pipelined pool ([`crate::postgres`]). The statements are the
//! templates of [`crate::statements`], the rows decode into the entity's partial model
//! [`StateRow`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    FromQueryResult, IdenStatic, ProxyDatabaseTrait, QueryResult, Value,
};
use task_domain::{TaskPatch, TaskState, ValidCreate};
use tracing::Instrument;

use crate::entity::{REQUEST_FINGERPRINT, StateRow};
use crate::postgres::PipelinedPostgres;
use crate::rows::TaskRows;
use crate::statements::{Param, Statements, Template};
use crate::{
    DATABASE_SPAN_TARGET, ExposeSecret, Idempotency, Page, PoolStats, StoreError, StoreSettings,
};

/// What the connection runs on, for what sea-orm does not abstract: pool gauges and close.
enum Pool {
    Sqlite,
    Postgres(Arc<PipelinedPostgres>),
}

pub struct SeaOrmRows {
    connection: DatabaseConnection,
    statements: Statements,
    pool: Pool,
    /// `db.system` of the spans.
    system: &'static str,
    /// `db.namespace` of the spans: the database name (PostgreSQL).
    namespace: Option<Arc<str>>,
}

impl SeaOrmRows {
    /// An embedded SQLite database through sea-orm's sqlx pool (it must exist and be
    /// migrated).
    pub async fn connect_sqlite(settings: &StoreSettings) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(settings.url.read()?.expose_secret().to_owned());
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
        // WAL lets readers proceed while one writer commits; the setting persists in the
        // file. sqlx already waits up to 5 s on a locked database (busy_timeout).
        connection
            .execute_unprepared("PRAGMA journal_mode=WAL")
            .await?;
        Ok(Self {
            statements: Statements::new(connection.get_database_backend()),
            connection,
            pool: Pool::Sqlite,
            system: "sqlite",
            namespace: None,
        })
    }

    /// PostgreSQL through the pipelined pool, which sea-orm's proxy connection drives.
    pub async fn connect_postgres(settings: &StoreSettings) -> Result<Self, StoreError> {
        let statements = Statements::new(DatabaseBackend::Postgres);
        let preload = statements
            .all()
            .map(|template| template.sql().to_owned())
            .collect();
        let pool = Arc::new(PipelinedPostgres::connect(settings, preload).await?);
        let namespace = pool.database_name().map(Arc::from);
        let proxy: Arc<Box<dyn ProxyDatabaseTrait>> = Arc::new(Box::new(pool.proxy()));
        let connection = Database::connect_proxy(DatabaseBackend::Postgres, proxy).await?;
        Ok(Self {
            connection,
            statements,
            pool: Pool::Postgres(pool),
            system: "postgresql",
            namespace,
        })
    }

    /// The rows `template` returns with the values of `value`, inside a database client
    /// span named after the operation.
    async fn rows(
        &self,
        operation: Operation,
        template: &Template,
        value: impl Fn(Param) -> Value,
    ) -> Result<Vec<QueryResult>, StoreError> {
        // query_all hands the rows over; query_one would copy a proxy row.
        let span = operation.span(self.system, self.namespace.as_deref());
        Ok(self
            .connection
            .query_all(template.statement(value))
            .instrument(span)
            .await?)
    }

    async fn one(
        &self,
        operation: Operation,
        template: &Template,
        value: impl Fn(Param) -> Value,
    ) -> Result<Option<TaskState>, StoreError> {
        let rows = self.rows(operation, template, value).await?;
        rows.first().map(decode).transpose()
    }
}

/// The one decoder of a task row, for both backends.
fn decode(row: &QueryResult) -> Result<TaskState, StoreError> {
    Ok(StateRow::from_query_result(row, "")?.into())
}

/// The operation of a statement, for the name and attributes of its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Select,
    Insert,
    Update,
}

impl Operation {
    /// A client span after OpenTelemetry's database conventions (`{operation} {table}`),
    /// without the statement's parameters. A `tracing` span name is static, hence one
    /// macro call per operation.
    fn span(self, system: &'static str, namespace: Option<&str>) -> tracing::Span {
        macro_rules! db_span {
            ($name:literal, $operation:literal) => {
                tracing::info_span!(
                    target: DATABASE_SPAN_TARGET,
                    $name,
                    otel.kind = "client",
                    db.system = system,
                    db.system.name = system,
                    db.operation = $operation,
                    db.operation.name = $operation,
                    db.collection.name = "tasks",
                    db.namespace = namespace,
                )
            };
        }
        match self {
            Operation::Select => db_span!("SELECT tasks", "SELECT"),
            Operation::Insert => db_span!("INSERT tasks", "INSERT"),
            Operation::Update => db_span!("UPDATE tasks", "UPDATE"),
        }
    }
}

fn text(text: &str) -> Value {
    Value::String(Some(Box::new(text.to_owned())))
}

fn optional_text(text: Option<&str>) -> Value {
    Value::String(text.map(|text| Box::new(text.to_owned())))
}

/// A request value that a statement did not ask for: a template and its caller disagree.
fn unexpected(param: Param) -> Value {
    if cfg!(debug_assertions) {
        panic!("a statement asked for {param:?}, which its caller does not give");
    }
    Value::BigInt(None)
}

#[async_trait]
impl TaskRows for SeaOrmRows {
    async fn insert(
        &self,
        owner: &str,
        create: &ValidCreate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<TaskState>, StoreError> {
        self.one(
            Operation::Insert,
            self.statements.insert(),
            |param| match param {
                Param::Owner => text(owner),
                Param::Title => text(&create.title),
                Param::Content => text(&create.content),
                Param::DueDate => create.due_date.into(),
                Param::Done => create.done.into(),
                Param::At => create.timestamp.into(),
                Param::IdempotencyKey => optional_text(idempotency.map(|i| i.key.as_str())),
                Param::Fingerprint => optional_text(idempotency.map(|i| i.fingerprint.as_str())),
                other => unexpected(other),
            },
        )
        .await
    }

    async fn by_idempotency_key(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<(TaskState, Option<String>)>, StoreError> {
        let rows = self
            .rows(
                Operation::Select,
                self.statements.by_idempotency_key(),
                |param| match param {
                    Param::Owner => text(owner),
                    Param::IdempotencyKey => text(key),
                    other => unexpected(other),
                },
            )
            .await?;
        rows.first()
            .map(|row| {
                let fingerprint = row.try_get("", REQUEST_FINGERPRINT.as_str())?;
                Ok((decode(row)?, fingerprint))
            })
            .transpose()
    }

    async fn live_task(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError> {
        self.one(Operation::Select, self.statements.live_task(), |param| {
            by_id(param, id, owner)
        })
        .await
    }

    async fn task_state(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError> {
        self.one(Operation::Select, self.statements.task_state(), |param| {
            by_id(param, id, owner)
        })
        .await
    }

    async fn list(&self, owner: &str, page: Page) -> Result<Vec<TaskState>, StoreError> {
        let rows = self
            .rows(
                Operation::Select,
                self.statements.list(),
                |param| match param {
                    Param::Owner => text(owner),
                    Param::After => page.after.into(),
                    Param::Limit => i64::from(page.limit).into(),
                    other => unexpected(other),
                },
            )
            .await?;
        rows.iter().map(decode).collect()
    }

    async fn update(
        &self,
        owner: &str,
        id: i64,
        patch: &TaskPatch,
        at: i64,
    ) -> Result<Option<TaskState>, StoreError> {
        let fields = patch.fields();
        if fields.is_empty() {
            return Ok(None);
        }
        self.one(
            Operation::Update,
            self.statements.update(fields),
            |param| match param {
                Param::Id => id.into(),
                Param::Owner => text(owner),
                Param::At => at.into(),
                Param::Title => optional_text(patch.title.as_deref()),
                Param::Content => optional_text(patch.content.as_deref()),
                Param::DueDate => patch.due_date.into(),
                Param::Done => patch.done.into(),
                other => unexpected(other),
            },
        )
        .await
    }

    async fn delete(&self, owner: &str, id: i64, at: i64) -> Result<bool, StoreError> {
        let rows = self
            .rows(
                Operation::Update,
                self.statements.delete(),
                |param| match param {
                    Param::At => at.into(),
                    other => by_id(other, id, owner),
                },
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn select_one(&self) -> Result<(), StoreError> {
        let span = Operation::Select.span(self.system, self.namespace.as_deref());
        match self.pool {
            // sea-orm's ping reaches the proxy's, a `SELECT 1` on the pipelined pool.
            Pool::Postgres(_) => self.connection.ping().instrument(span).await?,
            // sqlx's SQLite ping only answers from the connection's worker thread, without
            // touching the database file: run the statement instead.
            Pool::Sqlite => {
                self.connection
                    .execute_unprepared("SELECT 1")
                    .instrument(span)
                    .await?;
            }
        }
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        match &self.pool {
            Pool::Postgres(pool) => pool.pool_stats(),
            Pool::Sqlite => sqlx_pool_stats(self.connection.get_sqlite_connection_pool()),
        }
    }

    async fn close(&self) {
        match &self.pool {
            Pool::Postgres(pool) => pool.close(),
            Pool::Sqlite => {
                self.connection.clone().close().await.ok();
            }
        }
    }
}

fn by_id(param: Param, id: i64, owner: &str) -> Value {
    match param {
        Param::Id => id.into(),
        Param::Owner => text(owner),
        other => unexpected(other),
    }
}

fn sqlx_pool_stats<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> PoolStats {
    let open = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(open);
    PoolStats {
        open,
        busy: open - idle,
        max: pool.options().get_max_connections(),
    }
}
