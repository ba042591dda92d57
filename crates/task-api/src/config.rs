//! Configuration, from environment variables only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use task_store::DatabaseUrl;

/// Default `DATABASE_URL`: an SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://task-api.sqlite?mode=rwc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// `DATABASE_URL`, or `DATABASE_URL_FILE` (read again at each new connection).
    /// Redacted in `Debug`.
    pub database_url: DatabaseUrl,
    pub oidc_issuer_url: Option<String>,
    pub oidc_audience: Option<String>,
    pub max_inflight: usize,
    pub dev_mode: bool,
    pub log_format: LogFormat,
    pub log_level: String,
    pub loki_url: Option<String>,
    pub otlp_endpoint: Option<String>,
    pub db_max_connections: u32,
    pub shutdown_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0} is required when TASK_API_DEV_MODE is false")]
    Missing(&'static str),
}

/// `--help` text: every variable the service reads.
pub const HELP: &str = "\
task-api: the Task API service. Configured only by environment variables:

  TASK_API_LISTEN                  public listener (REST API, /openapi.json)  [127.0.0.1:8080]
  TASK_API_ADMIN_LISTEN            admin listener (/livez, /readyz, /metrics) [127.0.0.1:9090]
  DATABASE_URL                     postgres://...[?sslmode=disable|prefer|require|verify-ca|verify-full&sslrootcert=FILE|system]
                                   or sqlite://...  [sqlite://task-api.sqlite?mode=rwc]
  DATABASE_URL_FILE                a file holding the database URL, read again for each new connection
                                   (a mounted Secret: rotated credentials apply without a restart);
                                   takes precedence over DATABASE_URL
  OIDC_ISSUER_URL                  token issuer (discovery at {issuer}/.well-known/openid-configuration)
  OIDC_AUDIENCE                    required `aud` of access tokens
  TASK_API_DEV_MODE                true|false; dev mode signs its own tokens  [true iff OIDC_ISSUER_URL unset]
  TASK_API_MAX_INFLIGHT            requests in flight before 429  [512]
  TASK_API_LOG_FORMAT              json|pretty  [pretty in dev mode, json otherwise]
  TASK_API_LOG_LEVEL               tracing filter, e.g. info or task_api=debug  [info]
  TASK_API_LOKI_URL                optional Loki push endpoint
  OTEL_EXPORTER_OTLP_ENDPOINT      optional OTLP/HTTP traces endpoint
  TASK_API_DB_MAX_CONNECTIONS      database connections (PostgreSQL pipelines statements on them)  [16]
  TASK_API_SHUTDOWN_GRACE_SECONDS  time to finish in-flight requests after SIGTERM  [25]
";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        fn parse<T: std::str::FromStr>(
            name: &'static str,
            value: Option<String>,
            default: T,
        ) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match value {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse()
                    .map_err(|error: T::Err| ConfigError::Invalid {
                        name,
                        reason: error.to_string(),
                        value,
                    }),
            }
        }
        let oidc_issuer_url = var("OIDC_ISSUER_URL");
        let dev_mode = parse(
            "TASK_API_DEV_MODE",
            var("TASK_API_DEV_MODE"),
            oidc_issuer_url.is_none(),
        )?;
        let oidc_audience = var("OIDC_AUDIENCE");
        if !dev_mode {
            if oidc_issuer_url.is_none() {
                return Err(ConfigError::Missing("OIDC_ISSUER_URL"));
            }
            if oidc_audience.is_none() {
                return Err(ConfigError::Missing("OIDC_AUDIENCE"));
            }
        }
        let log_format = match var("TASK_API_LOG_FORMAT").as_deref() {
            None if dev_mode => LogFormat::Pretty,
            None => LogFormat::Json,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "TASK_API_LOG_FORMAT",
                    value: other.to_owned(),
                    reason: "expected json or pretty".to_owned(),
                });
            }
        };
        let max_inflight = parse(
            "TASK_API_MAX_INFLIGHT",
            var("TASK_API_MAX_INFLIGHT"),
            512_usize,
        )?;
        let db_max_connections = parse(
            "TASK_API_DB_MAX_CONNECTIONS",
            var("TASK_API_DB_MAX_CONNECTIONS"),
            16_u32,
        )?;
        for (name, value) in [
            ("TASK_API_MAX_INFLIGHT", max_inflight),
            ("TASK_API_DB_MAX_CONNECTIONS", db_max_connections as usize),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    value: "0".to_owned(),
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        // The file wins: it follows rotations, a variable is fixed for the process's life.
        let database_url = match (var("DATABASE_URL_FILE"), var("DATABASE_URL")) {
            (Some(path), _) => DatabaseUrl::File(PathBuf::from(path)),
            (None, Some(url)) => DatabaseUrl::from(url),
            (None, None) => DatabaseUrl::from(DEFAULT_DATABASE_URL),
        };
        Ok(Self {
            listen: parse(
                "TASK_API_LISTEN",
                var("TASK_API_LISTEN"),
                SocketAddr::from(([127, 0, 0, 1], 8080)),
            )?,
            admin_listen: parse(
                "TASK_API_ADMIN_LISTEN",
                var("TASK_API_ADMIN_LISTEN"),
                SocketAddr::from(([127, 0, 0, 1], 9090)),
            )?,
            database_url,
            oidc_issuer_url,
            oidc_audience,
            max_inflight,
            dev_mode,
            log_format,
            log_level: var("TASK_API_LOG_LEVEL").unwrap_or_else(|| "info".to_owned()),
            loki_url: var("TASK_API_LOKI_URL"),
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT"),
            db_max_connections,
            shutdown_grace: Duration::from_secs(parse(
                "TASK_API_SHUTDOWN_GRACE_SECONDS",
                var("TASK_API_SHUTDOWN_GRACE_SECONDS"),
                25_u64,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn no_variables_means_dev_mode_on_sqlite() {
        let config = config(&[]).unwrap();
        assert!(config.dev_mode);
        assert!(matches!(
            &config.database_url,
            DatabaseUrl::Value(url) if task_store::ExposeSecret::expose_secret(url) == DEFAULT_DATABASE_URL
        ));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9090");
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.max_inflight, 512);
    }

    #[test]
    fn an_issuer_turns_dev_mode_off_and_requires_an_audience() {
        assert!(matches!(
            config(&[("OIDC_ISSUER_URL", "http://127.0.0.1:1")]),
            Err(ConfigError::Missing("OIDC_AUDIENCE"))
        ));
        let config = config(&[
            ("OIDC_ISSUER_URL", "http://127.0.0.1:1"),
            ("OIDC_AUDIENCE", "task-api"),
        ])
        .unwrap();
        assert!(!config.dev_mode);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn invalid_values_are_reported_by_name() {
        for (name, value) in [
            ("TASK_API_LISTEN", "localhost"),
            ("TASK_API_DEV_MODE", "yes"),
            ("TASK_API_MAX_INFLIGHT", "0"),
            ("TASK_API_LOG_FORMAT", "xml"),
            ("TASK_API_SHUTDOWN_GRACE_SECONDS", "-1"),
        ] {
            let error = config(&[(name, value)]).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
        assert!(matches!(
            config(&[("TASK_API_DEV_MODE", "false")]),
            Err(ConfigError::Missing("OIDC_ISSUER_URL"))
        ));
    }

    #[test]
    fn the_database_url_comes_from_a_file_when_given_and_is_never_printed() {
        let from_file = config(&[("DATABASE_URL_FILE", "/var/run/secrets/db/url")]).unwrap();
        assert!(
            matches!(&from_file.database_url, DatabaseUrl::File(path) if path.to_str() == Some("/var/run/secrets/db/url"))
        );
        let both = config(&[
            ("DATABASE_URL_FILE", "/var/run/secrets/db/url"),
            ("DATABASE_URL", "postgres://fixed"),
        ])
        .unwrap();
        assert!(matches!(&both.database_url, DatabaseUrl::File(_)));
        let from_variable =
            config(&[("DATABASE_URL", "postgres://task:hunter2@db/tasks")]).unwrap();
        let printed = format!("{from_variable:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
