//! The Task API's domain, free of I/O: the request bodies and their strict validation, and
//! the `request_timestamp` ordering rules as pure functions.
//!
//! Storage executes these rules atomically in SQL (see `task-store`); the functions here are
//! the specification it is tested against, and the sequential oracle of the multi-replica
//! test.

mod ordering;
mod requests;
mod time;

pub use ordering::{
    DeleteDecision, FieldStamps, TaskState, UpdateDecision, decide_delete, decide_update,
};
pub use requests::{
    BodyError, CreateTaskRequest, DeleteTaskRequest, FieldSet, TaskPatch, UpdateTaskRequest,
    ValidCreate, ValidDelete, ValidUpdate, parse_body,
};
pub use time::{Micros, TimestampError, format_micros, parse_request_timestamp};

use chrono::NaiveDate;

/// A live task as clients see it (timestamps in microseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub content: String,
    pub due_date: NaiveDate,
    pub done: bool,
    pub created_at: Micros,
    pub updated_at: Micros,
}
