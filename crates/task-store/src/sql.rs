//! The hot-path SQL, as plain statements. Each request runs exactly one of the statements
//! below in the common case (one round trip); the `*_STATE` read is only needed to tell a
//! 404 from a 409 after a conditional write did not apply.
//!
//! The statements are written for PostgreSQL with numbered, explicitly cast parameters so that
//! they can be run unchanged by `pgbench -M prepared` (replace `$n` with `:var` per the
//! parameter list of each constant). [`for_sqlite`] derives the SQLite text (`?n` parameters,
//! no casts) from the same constants, so both backends run the same logic.
//!
//! Timestamps are BIGINT microseconds since the Unix epoch.

/// Columns every task-returning statement yields, in this order.
pub const TASK_COLUMNS: &str = "id, title, content, due_date, done, created_ts, title_ts, content_ts, due_date_ts, done_ts, deleted_ts";

/// Creates a task, or does nothing when (owner, idempotency_key) already exists.
/// Parameters: $1 owner text, $2 title text, $3 content text, $4 due_date date,
/// $5 done boolean, $6 request timestamp bigint, $7 idempotency_key text (NULL: none),
/// $8 request fingerprint text (NULL when no key).
/// Returns the new row, or no row on an idempotency-key conflict.
pub const INSERT_TASK: &str = "INSERT INTO tasks \
    (owner, title, title_ts, content, content_ts, due_date, due_date_ts, done, done_ts, created_ts, idempotency_key, request_fingerprint) \
    VALUES ($1::text, $2::text, $6::bigint, $3::text, $6::bigint, $4::date, $6::bigint, $5::boolean, $6::bigint, $6::bigint, $7::text, $8::text) \
    ON CONFLICT (owner, idempotency_key) DO NOTHING \
    RETURNING id, title, content, due_date, done, created_ts, title_ts, content_ts, due_date_ts, done_ts, deleted_ts";

/// The task an idempotency key already created, with the fingerprint of its request.
/// Parameters: $1 owner text, $2 idempotency_key text.
pub const SELECT_BY_IDEMPOTENCY_KEY: &str = "SELECT id, title, content, due_date, done, created_ts, title_ts, content_ts, due_date_ts, done_ts, deleted_ts, request_fingerprint \
    FROM tasks WHERE owner = $1::text AND idempotency_key = $2::text";

/// One live task of the owner. Parameters: $1 id bigint, $2 owner text.
pub const SELECT_LIVE_TASK: &str = "SELECT id, title, content, due_date, done, created_ts, title_ts, content_ts, due_date_ts, done_ts, deleted_ts \
    FROM tasks WHERE id = $1::bigint AND owner = $2::text AND deleted_ts IS NULL";

/// One task of the owner including tombstones, to classify a write that did not apply.
/// Parameters: $1 id bigint, $2 owner text.
pub const SELECT_TASK_STATE: &str = "SELECT id, title, content, due_date, done, created_ts, title_ts, content_ts, due_date_ts, done_ts, deleted_ts \
    FROM tasks WHERE id = $1::bigint AND owner = $2::text";

/// A page of the owner's live tasks in id order.
/// Parameters: $1 owner text, $2 exclusive lower bound of id bigint (0: from the start),
/// $3 page size bigint.
pub const LIST_LIVE_TASKS: &str = "SELECT id, title, content, due_date, done, created_ts, title_ts, content_ts, due_date_ts, done_ts, deleted_ts \
    FROM tasks WHERE owner = $1::text AND deleted_ts IS NULL AND id > $2::bigint ORDER BY id LIMIT $3::bigint";

/// The ordering rules of a PUT as one atomic conditional statement: each given field (non-NULL
/// parameter) is written only if the request is strictly newer than that field's last write,
/// and the row is touched only if the task is live, the request is newer than the creation and
/// at least one field is written. The row lock the UPDATE takes (and PostgreSQL's re-check of
/// the WHERE clause against the newest row version) makes concurrent PUTs on any number of
/// replicas serialise per task. Returns the merged row, or no row when nothing applied.
/// Parameters: $1 id bigint, $2 owner text, $3 request timestamp bigint, $4 title text,
/// $5 content text, $6 due_date date, $7 done boolean ($4..$7 NULL when not given).
pub const UPDATE_TASK: &str = "UPDATE tasks SET \
    title = CASE WHEN $4::text IS NOT NULL AND title_ts < $3::bigint THEN $4::text ELSE title END, \
    title_ts = CASE WHEN $4::text IS NOT NULL AND title_ts < $3::bigint THEN $3::bigint ELSE title_ts END, \
    content = CASE WHEN $5::text IS NOT NULL AND content_ts < $3::bigint THEN $5::text ELSE content END, \
    content_ts = CASE WHEN $5::text IS NOT NULL AND content_ts < $3::bigint THEN $3::bigint ELSE content_ts END, \
    due_date = CASE WHEN $6::date IS NOT NULL AND due_date_ts < $3::bigint THEN $6::date ELSE due_date END, \
    due_date_ts = CASE WHEN $6::date IS NOT NULL AND due_date_ts < $3::bigint THEN $3::bigint ELSE due_date_ts END, \
    done = CASE WHEN $7::boolean IS NOT NULL AND done_ts < $3::bigint THEN $7::boolean ELSE done END, \
    done_ts = CASE WHEN $7::boolean IS NOT NULL AND done_ts < $3::bigint THEN $3::bigint ELSE done_ts END \
    WHERE id = $1::bigint AND owner = $2::text AND deleted_ts IS NULL AND created_ts < $3::bigint \
    AND (($4::text IS NOT NULL AND title_ts < $3::bigint) OR ($5::text IS NOT NULL AND content_ts < $3::bigint) \
    OR ($6::date IS NOT NULL AND due_date_ts < $3::bigint) OR ($7::boolean IS NOT NULL AND done_ts < $3::bigint)) \
    RETURNING id, title, content, due_date, done, created_ts, title_ts, content_ts, due_date_ts, done_ts, deleted_ts";

/// The ordering rules of a DELETE as one atomic statement: a live task is tombstoned by a
/// request newer than its creation. Returns the id, or no row when nothing applied.
/// Parameters: $1 id bigint, $2 owner text, $3 request timestamp bigint.
pub const DELETE_TASK: &str = "UPDATE tasks SET deleted_ts = $3::bigint \
    WHERE id = $1::bigint AND owner = $2::text AND deleted_ts IS NULL AND created_ts < $3::bigint \
    RETURNING id";

/// Rewrites a statement above for SQLite: `$n::type` and `$n` become `?n` (SQLite's numbered
/// parameters; its own `$name` form would be numbered by first appearance instead).
pub fn for_sqlite(postgres: &str) -> String {
    let mut out = String::with_capacity(postgres.len());
    let mut rest = postgres;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        out.push('?');
        out.push_str(&after[..digits]);
        rest = &after[digits..];
        if let Some(cast) = rest.strip_prefix("::") {
            let name = cast
                .bytes()
                .take_while(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
                .count();
            rest = &cast[name..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_form_has_numbered_parameters_and_no_casts() {
        assert_eq!(
            for_sqlite("a = $1::bigint AND b = $12::text OR c = $3 AND d = '$x'"),
            "a = ?1 AND b = ?12 OR c = ?3 AND d = '$x'"
        );
        for statement in [INSERT_TASK, UPDATE_TASK, DELETE_TASK, LIST_LIVE_TASKS] {
            let sqlite = for_sqlite(statement);
            assert!(!sqlite.contains("::") && !sqlite.contains('$'), "{sqlite}");
        }
    }

    #[test]
    fn task_statements_return_the_shared_column_list() {
        for statement in [
            INSERT_TASK,
            UPDATE_TASK,
            SELECT_LIVE_TASK,
            SELECT_TASK_STATE,
            LIST_LIVE_TASKS,
        ] {
            assert!(statement.contains(TASK_COLUMNS), "{statement}");
        }
    }
}
