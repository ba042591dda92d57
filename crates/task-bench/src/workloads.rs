//! The four workloads, as wrk modes and as pgbench scripts rendered from the service's own
//! statement builders (`task_store::statements`, the PostgreSQL templates the service
//! prepares), so that the database side can never drift from what the service runs.

use task_domain::FieldSet;
use task_store::statements::{Param, Statements, Template};

use crate::error::BenchError;
use crate::pgbench::{placeholder_count, sql_to_pgbench};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Get,
    Post,
    Put,
    Mix,
}

impl Workload {
    pub const ALL: [Workload; 4] = [Workload::Get, Workload::Post, Workload::Put, Workload::Mix];

    /// The mode argument of `scripts/workload.lua`.
    pub fn wrk_mode(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Post => "post",
            Workload::Put => "put",
            Workload::Mix => "mix",
        }
    }

    /// `get,put` → `[Get, Put]`, in the given order.
    pub fn parse_list(list: &str) -> Result<Vec<Workload>, BenchError> {
        list.split(',')
            .map(|name| {
                Workload::ALL
                    .into_iter()
                    .find(|workload| workload.wrk_mode() == name.trim())
                    .ok_or_else(|| {
                        BenchError::Usage(format!(
                            "unknown workload {name:?}: use get, post, put or mix"
                        ))
                    })
            })
            .collect()
    }

    pub fn label(self) -> &'static str {
        match self {
            Workload::Get => "GET /tasks/{id}",
            Workload::Post => "POST /tasks",
            Workload::Put => "PUT /tasks/{id}",
            Workload::Mix => "mix 70/20/10",
        }
    }
}

/// Variables shared by every script. Constants come in with `-D`; `n` is a per-client
/// transaction counter (pgbench keeps variables per client across transactions).
///
/// * `id` (GET): uniform over the seeded range, as wrk's GET draws uniformly from the ids.
/// * `put_id` (PUT): each client walks its own disjoint slice of the seeded ids, so no two
///   clients update one row at once — the same guarantee wrk's script gives the API.
/// * `ts`: `base + n * clients + client_id`, unique and increasing per client; `base` is
///   the wall clock at start, newer than every write the API runs made.
const PRELUDE: &str = "\\set n :n + 1\n\\set ts :base + :n * :clients + :client_id\n";

/// Parameters a PUT or POST leaves out are NULL in the service. pgbench cannot bind a NULL
/// variable, so these placeholders become the literal `NULL` (the only rewrite of the SQL
/// besides `$n` → `:name`); it lets PostgreSQL fold those branches, which if anything flatters
/// the database side.
const NULL: &str = "NULL";

/// The pgbench script of `template`: its placeholders become the variables `variable` names
/// for each request value (or the literal `NULL`).
fn script(
    template: &Template,
    variable: impl Fn(Param) -> Option<&'static str>,
    extra_sets: &str,
) -> Result<String, BenchError> {
    let names = template
        .params()
        .iter()
        .map(|param| {
            variable(*param).ok_or_else(|| BenchError::Parse {
                tool: "sql",
                reason: format!(
                    "the benchmark binds no variable for {param:?}: {}",
                    template.sql()
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let statement = template.sql();
    let needed = placeholder_count(statement);
    if needed != names.len() {
        return Err(BenchError::Parse {
            tool: "sql",
            reason: format!(
                "statement takes {needed} parameters, the benchmark binds {}: {statement}",
                names.len()
            ),
        });
    }
    let mut text = String::from(PRELUDE);
    text.push_str(extra_sets);
    // pgbench accepts a literal where a variable name would go only through this indirection.
    let mut converted = sql_to_pgbench(statement, &names)?;
    converted = converted.replace(&format!(":{NULL}"), NULL);
    text.push_str(&converted);
    text.push('\n');
    Ok(text)
}

/// GET: the live task by `id` and `owner`.
pub fn get_script() -> Result<String, BenchError> {
    script(
        Statements::postgres().live_task(),
        |param| match param {
            Param::Id => Some("id"),
            Param::Owner => Some("owner"),
            _ => None,
        },
        "\\set id random(:id_min, :id_max)\n",
    )
}

/// POST without an Idempotency-Key (key and fingerprint NULL).
pub fn post_script() -> Result<String, BenchError> {
    script(
        Statements::postgres().insert(),
        |param| match param {
            Param::Owner => Some("owner"),
            Param::Title => Some("title"),
            Param::Content => Some("content"),
            Param::DueDate => Some("due_date"),
            Param::Done => Some("done_false"),
            Param::At => Some("ts"),
            Param::IdempotencyKey | Param::Fingerprint => Some(NULL),
            _ => None,
        },
        "",
    )
}

/// PUT changing title and done (alternating), the statement the service runs for that
/// field set.
pub fn put_script() -> Result<String, BenchError> {
    let fields = FieldSet {
        title: true,
        done: true,
        ..FieldSet::default()
    };
    script(
        Statements::postgres().update(fields),
        |param| match param {
            Param::Id => Some("put_id"),
            Param::Owner => Some("owner"),
            Param::At => Some("ts"),
            Param::Title => Some("title"),
            Param::Done => Some("done"),
            _ => None,
        },
        "\\set put_id :id_min + :client_id * :slice + (:n % :slice)\n\\set done :n % 2\n",
    )
}

/// pgbench `-f file@weight` pairs per workload (the mix weights match the wrk script).
pub fn scripts_for(workload: Workload) -> Result<Vec<(&'static str, String, u32)>, BenchError> {
    Ok(match workload {
        Workload::Get => vec![("get", get_script()?, 1)],
        Workload::Post => vec![("post", post_script()?, 1)],
        Workload::Put => vec![("put", put_script()?, 1)],
        Workload::Mix => vec![
            ("get", get_script()?, 70),
            ("put", put_script()?, 20),
            ("post", post_script()?, 10),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_binds_every_placeholder() {
        for workload in Workload::ALL {
            for (_, text, _) in scripts_for(workload).unwrap() {
                assert!(!text.contains('$'), "unconverted placeholder in {text}");
                assert!(!text.contains(":NULL"), "{text}");
                assert!(text.trim_end().ends_with(';'), "{text}");
            }
        }
    }

    #[test]
    fn put_script_is_the_service_update_with_variables() {
        let text = put_script().unwrap();
        assert!(
            text.contains(r#""id" = :put_id AND "owner" = :owner"#),
            "{text}"
        );
        assert!(!text.contains(r#""content" ="#), "content left out: {text}");
        assert!(text.contains(":done"), "{text}");
        assert!(text.contains("RETURNING"), "{text}");
    }

    #[test]
    fn mix_weights_are_70_20_10() {
        let weights: Vec<u32> = scripts_for(Workload::Mix)
            .unwrap()
            .iter()
            .map(|s| s.2)
            .collect();
        assert_eq!(weights, vec![70, 20, 10]);
    }
}
