//! [`TaskRows`] on a sea-orm (sqlx) connection pool: the embedded SQLite backend. Statements
//! run through the sqlx pool underneath, which caches them as prepared statements per
//! connection.

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, QueryResult,
    Statement, Value,
};
use task_domain::{FieldStamps, TaskPatch, TaskState, ValidCreate};

use crate::rows::TaskRows;
use crate::{ExposeSecret, Idempotency, Page, PoolStats, StoreError, StoreSettings, sql};

/// Statements in the dialect of the connected backend.
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

pub struct SeaOrmRows {
    connection: DatabaseConnection,
    statements: Statements,
}

impl SeaOrmRows {
    /// Connects (the database must exist and be migrated).
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
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
        if connection.get_database_backend() == DatabaseBackend::Sqlite {
            // WAL lets readers proceed while one writer commits; the setting persists in the
            // file. sqlx already waits up to 5 s on a locked database (busy_timeout).
            connection
                .execute_unprepared("PRAGMA journal_mode=WAL")
                .await?;
        }
        let statements = Statements::for_backend(connection.get_database_backend());
        Ok(Self {
            connection,
            statements,
        })
    }

    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.connection.get_database_backend(), sql, values)
    }

    async fn row(&self, sql: &str, values: Vec<Value>) -> Result<Option<QueryResult>, StoreError> {
        Ok(self
            .connection
            .query_one(self.statement(sql, values))
            .await?)
    }

    async fn one(&self, sql: &str, values: Vec<Value>) -> Result<Option<TaskState>, StoreError> {
        let row = self.row(sql, values).await?;
        row.as_ref().map(decode_state).transpose()
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

#[async_trait]
impl TaskRows for SeaOrmRows {
    async fn insert(
        &self,
        owner: &str,
        create: &ValidCreate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<TaskState>, StoreError> {
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
        self.one(&self.statements.insert, values).await
    }

    async fn by_idempotency_key(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<(TaskState, Option<String>)>, StoreError> {
        let row = self
            .row(
                &self.statements.by_idempotency_key,
                vec![owner.into(), key.into()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let fingerprint: Option<String> = row.try_get("", "request_fingerprint")?;
        Ok(Some((decode_state(&row)?, fingerprint)))
    }

    async fn live_task(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError> {
        self.one(&self.statements.live_task, vec![id.into(), owner.into()])
            .await
    }

    async fn task_state(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError> {
        self.one(&self.statements.task_state, vec![id.into(), owner.into()])
            .await
    }

    async fn list(&self, owner: &str, page: Page) -> Result<Vec<TaskState>, StoreError> {
        let values = vec![
            owner.into(),
            page.after.into(),
            i64::from(page.limit).into(),
        ];
        let rows = self
            .connection
            .query_all(self.statement(&self.statements.list, values))
            .await?;
        rows.iter().map(decode_state).collect()
    }

    async fn update(
        &self,
        owner: &str,
        id: i64,
        patch: &TaskPatch,
        at: i64,
    ) -> Result<Option<TaskState>, StoreError> {
        let values = vec![
            id.into(),
            owner.into(),
            at.into(),
            patch.title.clone().into(),
            patch.content.clone().into(),
            patch.due_date.into(),
            patch.done.into(),
        ];
        self.one(&self.statements.update, values).await
    }

    async fn delete(&self, owner: &str, id: i64, at: i64) -> Result<bool, StoreError> {
        let row = self
            .row(
                &self.statements.delete,
                vec![id.into(), owner.into(), at.into()],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn select_one(&self) -> Result<(), StoreError> {
        self.connection.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        match self.connection.get_database_backend() {
            DatabaseBackend::Postgres => {
                sqlx_pool_stats(self.connection.get_postgres_connection_pool())
            }
            _ => sqlx_pool_stats(self.connection.get_sqlite_connection_pool()),
        }
    }

    async fn close(&self) {
        self.connection.clone().close().await.ok();
    }
}
