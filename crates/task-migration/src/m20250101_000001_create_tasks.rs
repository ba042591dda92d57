use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    Owner,
    Title,
    TitleTs,
    Content,
    ContentTs,
    DueDate,
    DueDateTs,
    Done,
    DoneTs,
    CreatedTs,
    DeletedTs,
    IdempotencyKey,
    RequestFingerprint,
}

/// Timestamps are microseconds since the Unix epoch in BIGINT columns: exact integer
/// comparison at the resolution the contract requires, identical on both backends.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(
                        ColumnDef::new(Tasks::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Tasks::Owner).text().not_null())
                    .col(ColumnDef::new(Tasks::Title).text().not_null())
                    .col(ColumnDef::new(Tasks::TitleTs).big_integer().not_null())
                    .col(ColumnDef::new(Tasks::Content).text().not_null())
                    .col(ColumnDef::new(Tasks::ContentTs).big_integer().not_null())
                    .col(ColumnDef::new(Tasks::DueDate).date().not_null())
                    .col(ColumnDef::new(Tasks::DueDateTs).big_integer().not_null())
                    .col(ColumnDef::new(Tasks::Done).boolean().not_null())
                    .col(ColumnDef::new(Tasks::DoneTs).big_integer().not_null())
                    .col(ColumnDef::new(Tasks::CreatedTs).big_integer().not_null())
                    .col(ColumnDef::new(Tasks::DeletedTs).big_integer().null())
                    .col(ColumnDef::new(Tasks::IdempotencyKey).text().null())
                    .col(ColumnDef::new(Tasks::RequestFingerprint).text().null())
                    .to_owned(),
            )
            .await?;
        // Listing walks the caller's tasks in id order; the partial index keeps tombstones
        // out of it. Both backends support partial indexes.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX tasks_owner_live_id ON tasks (owner, id) WHERE deleted_ts IS NULL",
            )
            .await?;
        // NULL keys never conflict, so requests without Idempotency-Key are unconstrained.
        manager
            .create_index(
                Index::create()
                    .name("tasks_owner_idempotency_key")
                    .table(Tasks::Table)
                    .col(Tasks::Owner)
                    .col(Tasks::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tasks::Table).to_owned())
            .await
    }
}
