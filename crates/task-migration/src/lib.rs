//! The Task API schema as sea-orm migrations, and [`migrate`], which applies them safely when
//! several replicas start at the same instant on one database.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DbErr, Statement};
pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

mod m20250101_000001_create_tasks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20250101_000001_create_tasks::Migration)]
    }
}

/// Key of the PostgreSQL advisory lock that serialises migrators (ASCII "taskapi1").
pub const MIGRATION_LOCK_KEY: i64 = 0x7461_736b_6170_6931;

/// Applies all pending migrations to the database at `url`.
///
/// On PostgreSQL the migrator runs on one dedicated session that holds
/// `pg_advisory_lock(MIGRATION_LOCK_KEY)`: replicas starting together wait for the first one
/// instead of racing on `CREATE TABLE`, then find nothing left to do. The lock is a session
/// lock, so it is released even if this process dies mid-way (the session ends).
///
/// sea-orm-migration wraps migrations in a transaction on PostgreSQL only. On SQLite the
/// whole run is one `BEGIN IMMEDIATE` transaction here (the pool has one connection, so
/// every statement runs inside it): a crash or an error between `CREATE TABLE` and the last
/// `CREATE INDEX` leaves nothing behind, and the next start migrates from scratch. The
/// immediate lock also serialises migrators starting together (they wait `busy_timeout`).
pub async fn migrate(url: &str) -> Result<(), DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(0)
        .sqlx_logging(false);
    let connection = Database::connect(options).await?;
    let result = match connection.get_database_backend() {
        DatabaseBackend::Postgres => {
            let lock = |sql: &str| {
                Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    sql,
                    [MIGRATION_LOCK_KEY.into()],
                )
            };
            connection
                .execute(lock("SELECT pg_advisory_lock($1)"))
                .await?;
            tracing::debug!("migration lock taken");
            let outcome = Migrator::up(&connection, None).await;
            let unlocked = connection
                .execute(lock("SELECT pg_advisory_unlock($1)"))
                .await;
            outcome.and(unlocked.map(|_| ()))
        }
        _ => {
            connection.execute_unprepared("BEGIN IMMEDIATE").await?;
            match Migrator::up(&connection, None).await {
                Ok(()) => connection.execute_unprepared("COMMIT").await.map(|_| ()),
                Err(error) => {
                    let _ = connection.execute_unprepared("ROLLBACK").await;
                    Err(error)
                }
            }
        }
    };
    connection.close().await?;
    result
}

/// True when every known migration has been applied to `connection`'s database.
pub async fn is_up_to_date<C: ConnectionTrait>(connection: &C) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations(connection)
        .await?
        .is_empty())
}
