use std::path::PathBuf;

/// Why the benchmark could not produce its table. Every variant stops the run: a table
/// built from a half-failed run would be a table nobody should trust.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("could not run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    CommandFailed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("could not parse {tool} output: {reason}")]
    Parse { tool: &'static str, reason: String },
    #[error("SQL placeholder ${index} has no pgbench variable (statement: {statement})")]
    UnboundPlaceholder { index: usize, statement: String },
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Task API replica {0}")]
    Replica(String),
    #[error("seeding failed: {0}")]
    Seed(String),
    #[error("local OIDC issuer: {0}")]
    Issuer(String),
    #[error("invalid arguments: {0}")]
    Usage(String),
}

impl BenchError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}
