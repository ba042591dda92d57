//! The statements of the store, built by sea-query from the entity's columns
//! ([`crate::entity`]) for the connected backend. Each request runs exactly one of them in the
//! common case (one round trip); [`Statements::task_state`] is only needed to tell a 404 from
//! a 409 after a conditional write did not apply.
//!
//! Building a statement costs more than running a prepared one on the server, so each shape
//! is built once, at connect time, into a [`Template`]: the SQL text and, for each of its
//! placeholders in order, which request value ([`Param`]) it takes. A request then only
//! supplies its values ([`Template::statement`]). The same templates, rendered for
//! PostgreSQL, are what the benchmark runs with pgbench (`task-bench`).

use sea_orm::sea_query::{
    Condition, Expr, InsertStatement, OnConflict, Query, SimpleExpr, UpdateStatement,
};
use sea_orm::{
    DbBackend, EntityTrait, PartialModelTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select, Statement, Value, Values,
};
use task_domain::FieldSet;

use crate::entity::{Column, Entity as Tasks, REQUEST_FINGERPRINT, StateRow, state_columns};

/// A value a statement takes from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    Id,
    Owner,
    /// The request timestamp (µs).
    At,
    Title,
    Content,
    DueDate,
    Done,
    IdempotencyKey,
    Fingerprint,
    /// The exclusive lower bound of a page's ids.
    After,
    Limit,
}

impl Param {
    const ALL: [Param; 11] = [
        Param::Id,
        Param::Owner,
        Param::At,
        Param::Title,
        Param::Content,
        Param::DueDate,
        Param::Done,
        Param::IdempotencyKey,
        Param::Fingerprint,
        Param::After,
        Param::Limit,
    ];

    /// While a template is built, each parameter is this unique stand-in value, so that the
    /// built statement's value list says which parameter each placeholder is.
    fn marker(self) -> u64 {
        MARKER_BASE + self as u64
    }

    fn from_marker(value: &Value) -> Option<Param> {
        match value {
            Value::BigUnsigned(Some(marker)) => marker
                .checked_sub(MARKER_BASE)
                .and_then(|index| Param::ALL.get(usize::try_from(index).ok()?))
                .copied(),
            _ => None,
        }
    }
}

const MARKER_BASE: u64 = u64::MAX - 64;

fn marker(param: Param) -> Value {
    Value::BigUnsigned(Some(param.marker()))
}

fn expr(param: Param) -> SimpleExpr {
    SimpleExpr::Value(marker(param))
}

/// One statement shape: its SQL and the request value each placeholder takes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    sql: String,
    params: Box<[Param]>,
    backend: DbBackend,
}

impl Template {
    fn build(backend: DbBackend, statement: Statement) -> Self {
        let values = statement.values.map(|values| values.0).unwrap_or_default();
        let params = values
            .iter()
            .map(|value| {
                Param::from_marker(value)
                    .unwrap_or_else(|| panic!("a statement bound a literal: {value:?}"))
            })
            .collect();
        Self {
            sql: statement.sql,
            params,
            backend,
        }
    }

    /// The SQL text (placeholders `$1…` on PostgreSQL, `?` on SQLite).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The request value of each placeholder, in order (a value may appear several times).
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The statement with this request's values.
    pub fn statement(&self, value: impl Fn(Param) -> Value) -> Statement {
        Statement {
            sql: self.sql.clone(),
            values: Some(Values(
                self.params.iter().map(|param| value(*param)).collect(),
            )),
            db_backend: self.backend,
        }
    }
}

/// Every statement the store runs, built for one backend.
#[derive(Debug, Clone)]
pub struct Statements {
    insert: Template,
    by_idempotency_key: Template,
    live_task: Template,
    task_state: Template,
    list: Template,
    /// Indexed by the [`FieldSet`] bits of the fields a PUT gives, minus one (a PUT gives at
    /// least one field).
    update: Box<[Template]>,
    delete: Template,
}

/// The bit of each field in the index of [`Statements::update`].
const TITLE: usize = 1;
const CONTENT: usize = 2;
const DUE_DATE: usize = 4;
const DONE: usize = 8;

fn update_index(fields: FieldSet) -> usize {
    let mut index = 0;
    for (given, bit) in [
        (fields.title, TITLE),
        (fields.content, CONTENT),
        (fields.due_date, DUE_DATE),
        (fields.done, DONE),
    ] {
        if given {
            index |= bit;
        }
    }
    index
}

impl Statements {
    /// The PostgreSQL statements (what the benchmark runs with pgbench).
    pub fn postgres() -> Self {
        Self::new(DbBackend::Postgres)
    }

    pub fn new(backend: DbBackend) -> Self {
        let template = |statement: Statement| Template::build(backend, statement);
        Self {
            insert: template(backend.build(&insert())),
            by_idempotency_key: template(
                find_states()
                    .column(REQUEST_FINGERPRINT)
                    .filter(Expr::col(Column::Owner).eq(expr(Param::Owner)))
                    .filter(Expr::col(Column::IdempotencyKey).eq(expr(Param::IdempotencyKey)))
                    .build(backend),
            ),
            live_task: template(
                find_states()
                    .filter(Expr::col(Column::Id).eq(expr(Param::Id)))
                    .filter(Expr::col(Column::Owner).eq(expr(Param::Owner)))
                    .filter(Expr::col(Column::DeletedTs).is_null())
                    .build(backend),
            ),
            task_state: template(
                find_states()
                    .filter(Expr::col(Column::Id).eq(expr(Param::Id)))
                    .filter(Expr::col(Column::Owner).eq(expr(Param::Owner)))
                    .build(backend),
            ),
            list: template(list().build(backend)),
            update: (1..16)
                .map(|index| template(backend.build(&update(index))))
                .collect(),
            delete: template(backend.build(&delete())),
        }
    }

    /// Creates a task, or does nothing when (owner, idempotency_key) already exists
    /// (`Owner, Title, Content, DueDate, Done, At, IdempotencyKey, Fingerprint`; the last
    /// two NULL without a key). Returns the new row, or no row on a key conflict.
    pub fn insert(&self) -> &Template {
        &self.insert
    }

    /// The task an idempotency key already created (`Owner, IdempotencyKey`).
    pub fn by_idempotency_key(&self) -> &Template {
        &self.by_idempotency_key
    }

    /// One live task of the owner (`Id, Owner`).
    pub fn live_task(&self) -> &Template {
        &self.live_task
    }

    /// One task of the owner including tombstones, to classify a write that did not apply
    /// (`Id, Owner`).
    pub fn task_state(&self) -> &Template {
        &self.task_state
    }

    /// A page of the owner's live tasks in id order (`Owner, After, Limit`).
    pub fn list(&self) -> &Template {
        &self.list
    }

    /// The PUT writing `fields` (at least one), see [`update`].
    pub fn update(&self, fields: FieldSet) -> &Template {
        &self.update[update_index(fields).max(1) - 1]
    }

    /// The DELETE (`Id, Owner, At`), see [`delete`].
    pub fn delete(&self) -> &Template {
        &self.delete
    }

    /// Every distinct statement, for preparing them when a connection opens.
    pub fn all(&self) -> impl Iterator<Item = &Template> {
        [
            &self.insert,
            &self.by_idempotency_key,
            &self.live_task,
            &self.task_state,
            &self.list,
            &self.delete,
        ]
        .into_iter()
        .chain(self.update.iter())
    }
}

/// A `SELECT` of the [`StateRow`] columns of tasks.
fn find_states() -> Select<Tasks> {
    StateRow::select_cols(Tasks::find().select_only())
}

fn insert() -> InsertStatement {
    let at = || expr(Param::At);
    Query::insert()
        .into_table(Tasks)
        .columns([
            Column::Owner,
            Column::Title,
            Column::TitleTs,
            Column::Content,
            Column::ContentTs,
            Column::DueDate,
            Column::DueDateTs,
            Column::Done,
            Column::DoneTs,
            Column::CreatedTs,
            Column::IdempotencyKey,
            Column::RequestFingerprint,
        ])
        .values_panic([
            expr(Param::Owner),
            expr(Param::Title),
            at(),
            expr(Param::Content),
            at(),
            expr(Param::DueDate),
            at(),
            expr(Param::Done),
            at(),
            at(),
            expr(Param::IdempotencyKey),
            expr(Param::Fingerprint),
        ])
        .on_conflict(
            OnConflict::columns([Column::Owner, Column::IdempotencyKey])
                .do_nothing()
                .to_owned(),
        )
        .returning(Query::returning().columns(state_columns()))
        .to_owned()
}

fn list() -> Select<Tasks> {
    find_states()
        .filter(Expr::col(Column::Owner).eq(expr(Param::Owner)))
        .filter(Expr::col(Column::DeletedTs).is_null())
        .filter(Expr::col(Column::Id).gt(expr(Param::After)))
        .order_by_asc(Column::Id)
        .limit(Param::Limit.marker())
}

/// The ordering rules of a PUT as one atomic conditional statement, for the fields selected
/// by `index` (bits [`TITLE`], [`CONTENT`], [`DUE_DATE`], [`DONE`]): each given field is
/// written only if the request is strictly newer than that field's last write, and the row
/// is touched only if the task is live, the request is newer than the creation and at least
/// one field is written. Fields not given are not named at all. The row lock the UPDATE
/// takes (and PostgreSQL's re-check of the WHERE clause against the newest row version)
/// makes concurrent PUTs on any number of replicas serialise per task. Returns the merged
/// row, or no row when nothing applied.
fn update(index: usize) -> UpdateStatement {
    let mut statement = Query::update();
    statement.table(Tasks);
    let mut any_newer = Condition::any();
    let fields = [
        (TITLE, Column::Title, Column::TitleTs, Param::Title),
        (CONTENT, Column::Content, Column::ContentTs, Param::Content),
        (DUE_DATE, Column::DueDate, Column::DueDateTs, Param::DueDate),
        (DONE, Column::Done, Column::DoneTs, Param::Done),
    ];
    for (bit, column, stamp, param) in fields {
        if index & bit == 0 {
            continue;
        }
        let newer = || Expr::col(stamp).lt(expr(Param::At));
        statement.value(
            column,
            Expr::case(newer(), expr(param)).finally(Expr::col(column)),
        );
        statement.value(
            stamp,
            Expr::case(newer(), expr(Param::At)).finally(Expr::col(stamp)),
        );
        any_newer = any_newer.add(newer());
    }
    statement
        .cond_where(
            Condition::all()
                .add(Expr::col(Column::Id).eq(expr(Param::Id)))
                .add(Expr::col(Column::Owner).eq(expr(Param::Owner)))
                .add(Expr::col(Column::DeletedTs).is_null())
                .add(Expr::col(Column::CreatedTs).lt(expr(Param::At)))
                .add(any_newer),
        )
        .returning(Query::returning().columns(state_columns()))
        .to_owned()
}

/// The ordering rules of a DELETE as one atomic statement: a live task is tombstoned by a
/// request newer than its creation. Returns the id, or no row when nothing applied.
fn delete() -> UpdateStatement {
    Query::update()
        .table(Tasks)
        .value(Column::DeletedTs, expr(Param::At))
        .cond_where(
            Condition::all()
                .add(Expr::col(Column::Id).eq(expr(Param::Id)))
                .add(Expr::col(Column::Owner).eq(expr(Param::Owner)))
                .add(Expr::col(Column::DeletedTs).is_null())
                .add(Expr::col(Column::CreatedTs).lt(expr(Param::At))),
        )
        .returning_col(Column::Id)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_names_only_the_fields_it_gives() {
        let statements = Statements::new(DbBackend::Postgres);
        let title_only = statements.update(FieldSet {
            title: true,
            ..FieldSet::default()
        });
        assert!(
            title_only.sql().contains(r#""title" = (CASE"#),
            "{}",
            title_only.sql()
        );
        for absent in ["content", "due_date", "done"] {
            assert!(
                !title_only.sql().contains(&format!(r#"SET "{absent}""#))
                    && !title_only.sql().contains(&format!(r#", "{absent}" ="#)),
                "{absent} in {}",
                title_only.sql()
            );
        }
        assert!(!title_only.params().contains(&Param::Content));
        assert!(title_only.sql().contains("RETURNING"));
    }

    #[test]
    fn templates_map_every_placeholder_to_a_request_value() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let statements = Statements::new(backend);
            for template in statements.all() {
                let placeholders = match backend {
                    DbBackend::Sqlite => template.sql().matches('?').count(),
                    _ => (1..=template.params().len())
                        .filter(|n| template.sql().contains(&format!("${n}")))
                        .count(),
                };
                assert_eq!(placeholders, template.params().len(), "{}", template.sql());
            }
        }
        let insert = Statements::new(DbBackend::Postgres).insert().clone();
        assert_eq!(
            insert.params().iter().filter(|p| **p == Param::At).count(),
            5
        );
        assert!(insert.sql().contains("ON CONFLICT"), "{}", insert.sql());
    }
}
