//! The tasks table as a sea-orm entity: the one definition of its columns and of a task row.
//! Every statement of [`crate::statements`] names its columns through [`Column`], every row
//! either backend returns decodes into the partial model [`StateRow`], and a test checks that the migration
//! (`task_migration`) creates exactly the table [`Entity`] describes, on both backends.
//!
//! Timestamps are BIGINT microseconds since the Unix epoch: exact integer comparison at the
//! resolution the contract requires, identical on both backends.

use chrono::NaiveDate;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ColumnRef, SimpleExpr};
use sea_orm::{ColumnAsExpr, FromQueryResult, IntoIdentity, PartialModelTrait, SelectColumns};
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

/// A task's state: the columns the ordering flow reads, and all that a statement returns.
/// The owner and the idempotency columns only ever appear in `WHERE` and `ON CONFLICT`
/// clauses (the one read of a fingerprint adds its column, [`REQUEST_FINGERPRINT`]); not
/// returning them saves the server sending, and the service decoding, three of the
/// table's fourteen columns per row.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel, FromQueryResult)]
#[sea_orm(entity = "Entity")]
pub struct StateRow {
    pub id: i64,
    pub title: String,
    pub title_ts: i64,
    pub content: String,
    pub content_ts: i64,
    pub due_date: NaiveDate,
    pub due_date_ts: i64,
    pub done: bool,
    pub done_ts: i64,
    pub created_ts: i64,
    pub deleted_ts: Option<i64>,
}

/// The column a replayed creation's fingerprint is read from, beside a [`StateRow`].
pub const REQUEST_FINGERPRINT: Column = Column::RequestFingerprint;

/// The columns of [`StateRow`], in its order, as its derive selects them: the one list of
/// the returned columns, for `RETURNING` clauses as well as `SELECT`s.
pub fn state_columns() -> Vec<ColumnRef> {
    StateRow::select_cols(ColumnList::default()).0
}

/// Collects the columns a partial model selects, through sea-orm's own [`SelectColumns`].
#[derive(Default)]
struct ColumnList(Vec<ColumnRef>);

impl SelectColumns for ColumnList {
    fn select_column<C: ColumnTrait>(self, column: C) -> Self {
        self.select_column_as(column, column.as_str())
    }

    /// The derive selects each field as `column AS field`; the fields are named after their
    /// columns, so the bare column returns the same name.
    fn select_column_as<C: ColumnAsExpr, I: IntoIdentity>(mut self, column: C, _: I) -> Self {
        match column.into_column_as_expr() {
            SimpleExpr::Column(ColumnRef::Column(name) | ColumnRef::TableColumn(_, name)) => {
                self.0.push(ColumnRef::Column(name));
            }
            other => unreachable!("StateRow selects plain columns, not {other:?}"),
        }
        self
    }
}

impl From<StateRow> for TaskState {
    fn from(row: StateRow) -> Self {
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
