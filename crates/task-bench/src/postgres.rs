//! The benchmark's own database chores, through `psql` (the client pgbench ships with).

use std::process::Command;

use crate::error::BenchError;
use crate::process::run_captured;

/// A server reachable as `postgres://user@host:port`; databases are addressed by name.
#[derive(Debug, Clone)]
pub struct Server {
    /// URL without a database path, e.g. `postgres://postgres@127.0.0.1:5432`.
    pub base_url: String,
}

impl Server {
    pub fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.base_url.trim_end_matches('/'))
    }

    /// Runs SQL in `database` and returns psql's unaligned, tuples-only output.
    pub fn query(&self, database: &str, sql: &str) -> Result<String, BenchError> {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(self.url(database));
        Ok(run_captured(&mut cmd, "psql")?.trim().to_string())
    }

    pub fn setting(&self, name: &str) -> Result<String, BenchError> {
        self.query("postgres", &format!("SHOW {name}"))
    }

    pub fn recreate_database(&self, name: &str, template: Option<&str>) -> Result<(), BenchError> {
        self.drop_database(name)?;
        let template = template
            .map(|t| format!(" TEMPLATE \"{t}\""))
            .unwrap_or_default();
        self.query("postgres", &format!("CREATE DATABASE \"{name}\"{template}"))
            .map(drop)
    }

    pub fn drop_database(&self, name: &str) -> Result<(), BenchError> {
        self.query(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .map(drop)
    }
}
