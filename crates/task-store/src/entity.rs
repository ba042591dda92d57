//! The tasks table as a sea-orm entity: the one definition of its columns and of a task row.
//! Every statement of [`crate::statements`] names its columns through [`Column`], every row
//! either backend returns decodes into [`Model`], and a test checks that the migration
//! (`task_migration`) creates exactly the table [`Entity`] describes, on both backends.
//!
//! Timestamps are BIGINT microseconds since the Unix epoch: exact integer comparison at the
//! resolution the contract requires, identical on both backends.

use chrono::NaiveDate;
use sea_orm::entity::prelude::*;
use task_domain::{FieldStamps, TaskState};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub owner: String,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    pub title_ts: i64,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub content_ts: i64,
    pub due_date: NaiveDate,
    pub due_date_ts: i64,
    pub done: bool,
    pub done_ts: i64,
    pub created_ts: i64,
    /// Set once, by the delete that removed the task (a tombstone).
    pub deleted_ts: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub idempotency_key: Option<String>,
    /// Fingerprint of the request that created the task with `idempotency_key`.
    #[sea_orm(column_type = "Text", nullable)]
    pub request_fingerprint: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl From<Model> for TaskState {
    fn from(row: Model) -> Self {
        TaskState {
            id: row.id,
            title: row.title,
            content: row.content,
            due_date: row.due_date,
            done: row.done,
            created_ts: row.created_ts,
            stamps: FieldStamps {
                title: row.title_ts,
                content: row.content_ts,
                due_date: row.due_date_ts,
                done: row.done_ts,
            },
            deleted_ts: row.deleted_ts,
        }
    }
}
