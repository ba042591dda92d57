//! The entity is the one definition of the tasks table: the table the migration creates must
//! be the one sea-orm derives from the entity, column for column, on both backends.

use sea_orm::{ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Schema, Statement};
use task_store::entity::Entity as Tasks;
use task_testkit::{Backend, TestDatabase};

/// Each column of `tasks` as the database describes it: name, type, nullability, default
/// (PostgreSQL) or primary key (SQLite), in table order.
async fn columns(connection: &DatabaseConnection) -> Vec<String> {
    let backend = connection.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Sqlite => {
            "SELECT name || ' ' || type || ' notnull=' || \"notnull\" || ' pk=' || pk || ' default=' \
             || coalesce(dflt_value, '') AS description FROM pragma_table_info('tasks') ORDER BY cid"
        }
        _ => {
            "SELECT (column_name || ' ' || data_type || ' nullable=' || is_nullable || ' default=' \
             || coalesce(column_default, ''))::text AS description FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'tasks' ORDER BY ordinal_position"
        }
    };
    connection
        .query_all(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "description").unwrap())
        .collect()
}

async fn the_migration_creates_the_entitys_table(backend: Backend) {
    let migrated = TestDatabase::new(backend).await.unwrap();
    task_store::migrate(migrated.url()).await.unwrap();
    let migrated = Database::connect(migrated.url()).await.unwrap();

    let derived = TestDatabase::new(backend).await.unwrap();
    let derived = Database::connect(derived.url()).await.unwrap();
    let dialect = derived.get_database_backend();
    derived
        .execute(dialect.build(&Schema::new(dialect).create_table_from_entity(Tasks)))
        .await
        .unwrap();

    let from_migration = columns(&migrated).await;
    assert_eq!(from_migration.len(), 14, "{from_migration:#?}");
    assert_eq!(from_migration, columns(&derived).await);
    migrated.close().await.unwrap();
    derived.close().await.unwrap();
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_migration_creates_the_entitys_table() {
        super::the_migration_creates_the_entitys_table(task_testkit::Backend::Postgres).await
    }
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_migration_creates_the_entitys_table() {
        super::the_migration_creates_the_entitys_table(task_testkit::Backend::Sqlite).await
    }
}
