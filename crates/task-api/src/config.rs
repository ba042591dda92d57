//! Configuration: environment variables (each also a command-line flag), parsed by clap.
//!
//! [`Settings`] is what clap reads, with the defaults and the `--help` text; [`Config`] is
//! what the service runs with, once the rules that span several variables (dev mode, which
//! database URL wins) are applied.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use secrecy::SecretString;
use task_store::DatabaseUrl;

/// Default `DATABASE_URL`: an SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://task-api.sqlite?mode=rwc";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The service's variables as clap reads them. `value_name` is the variable's name, so that
/// every parse error names the variable whether the value came from it or from the flag.
#[derive(Debug, Parser)]
#[command(
    name = "task-api",
    version,
    about = "The Task API service.",
    long_about = "The Task API service. Configured by environment variables (in a deployment) \
                  or the equivalent flags; a flag wins over its variable."
)]
pub struct Settings {
    /// Public listener (REST API, /openapi.json)
    #[arg(
        long,
        env = "TASK_API_LISTEN",
        value_name = "TASK_API_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Admin listener (/livez, /readyz, /metrics)
    #[arg(
        long,
        env = "TASK_API_ADMIN_LISTEN",
        value_name = "TASK_API_ADMIN_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub admin_listen: SocketAddr,

    /// postgres://...[?sslmode=disable|prefer|require|verify-ca|verify-full&sslrootcert=FILE|system]
    /// or sqlite://... [default: sqlite://task-api.sqlite?mode=rwc]
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide_env_values = true, value_parser = secret)]
    pub database_url: Option<SecretString>,

    /// A file holding the database URL, read again for each new connection (a mounted Secret:
    /// rotated credentials apply without a restart); takes precedence over DATABASE_URL
    #[arg(long, env = "DATABASE_URL_FILE", value_name = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,

    /// Token issuer (discovery at {issuer}/.well-known/openid-configuration)
    #[arg(long, env = "OIDC_ISSUER_URL", value_name = "OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,

    /// Required `aud` of access tokens
    #[arg(long, env = "OIDC_AUDIENCE", value_name = "OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,

    /// Dev mode signs its own tokens [default: true iff OIDC_ISSUER_URL is unset]
    #[arg(long, env = "TASK_API_DEV_MODE", value_name = "TASK_API_DEV_MODE", action = clap::ArgAction::Set)]
    pub dev_mode: Option<bool>,

    /// Requests in flight before 429
    #[arg(
        long,
        env = "TASK_API_MAX_INFLIGHT",
        value_name = "TASK_API_MAX_INFLIGHT",
        default_value = "512"
    )]
    pub max_inflight: NonZeroUsize,

    /// Log line format [default: pretty in dev mode, json otherwise]
    #[arg(
        long,
        env = "TASK_API_LOG_FORMAT",
        value_name = "TASK_API_LOG_FORMAT",
        value_enum
    )]
    pub log_format: Option<LogFormat>,

    /// Tracing filter, e.g. info or task_api=debug
    #[arg(
        long,
        env = "TASK_API_LOG_LEVEL",
        value_name = "TASK_API_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,

    /// Optional Loki push endpoint
    #[arg(
        long,
        env = "TASK_API_LOKI_URL",
        value_name = "TASK_API_LOKI_URL",
        hide_env_values = true
    )]
    pub loki_url: Option<String>,

    /// Optional OTLP/HTTP traces endpoint
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "OTEL_EXPORTER_OTLP_ENDPOINT",
        hide_env_values = true
    )]
    pub otlp_endpoint: Option<String>,

    /// Database connections (PostgreSQL pipelines statements on them)
    #[arg(
        long,
        env = "TASK_API_DB_MAX_CONNECTIONS",
        value_name = "TASK_API_DB_MAX_CONNECTIONS",
        default_value = "16"
    )]
    pub db_max_connections: NonZeroU32,

    /// Time to finish in-flight requests after SIGTERM, in seconds
    #[arg(
        long,
        env = "TASK_API_SHUTDOWN_GRACE_SECONDS",
        value_name = "TASK_API_SHUTDOWN_GRACE_SECONDS",
        default_value = "25"
    )]
    pub shutdown_grace_seconds: u64,
}

/// A variable set to an empty or blank value counts as unset (its default applies), as it
/// always has: a chart writes `value: ""` for a setting it leaves alone.
fn ignore_blank_variable(arg: clap::Arg) -> clap::Arg {
    let blank = arg
        .get_env()
        .and_then(std::env::var_os)
        .is_some_and(|value| value.to_string_lossy().trim().is_empty());
    if blank { arg.env(None) } else { arg }
}

/// The database URL goes straight into a secret: never in `Debug`, never in `--help`
/// (`hide_env_values`; so are the Loki and OTLP URLs, which may carry credentials too).
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
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
    /// A value clap could not parse, or `--help`/`--version` (clap renders both).
    #[error(transparent)]
    Parse(#[from] clap::Error),
    #[error("{0} is required when TASK_API_DEV_MODE is false")]
    Missing(&'static str),
}

impl Config {
    /// From the process's environment and command line.
    pub fn from_env() -> Result<Self, ConfigError> {
        let matches = Settings::command()
            .mut_args(ignore_blank_variable)
            .try_get_matches()?;
        Self::from_settings(Settings::from_arg_matches(&matches)?)
    }

    /// Applies the rules that span several variables.
    pub fn from_settings(settings: Settings) -> Result<Self, ConfigError> {
        let dev_mode = settings
            .dev_mode
            .unwrap_or(settings.oidc_issuer_url.is_none());
        if !dev_mode {
            if settings.oidc_issuer_url.is_none() {
                return Err(ConfigError::Missing("OIDC_ISSUER_URL"));
            }
            if settings.oidc_audience.is_none() {
                return Err(ConfigError::Missing("OIDC_AUDIENCE"));
            }
        }
        // The file wins: it follows rotations, a variable is fixed for the process's life.
        let database_url = match (settings.database_url_file, settings.database_url) {
            (Some(path), _) => DatabaseUrl::File(path),
            (None, Some(url)) => DatabaseUrl::Value(url),
            (None, None) => DatabaseUrl::from(DEFAULT_DATABASE_URL),
        };
        Ok(Self {
            listen: settings.listen,
            admin_listen: settings.admin_listen,
            database_url,
            oidc_issuer_url: settings.oidc_issuer_url,
            oidc_audience: settings.oidc_audience,
            max_inflight: settings.max_inflight.get(),
            dev_mode,
            log_format: settings.log_format.unwrap_or(if dev_mode {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            }),
            log_level: settings.log_level,
            loki_url: settings.loki_url,
            otlp_endpoint: settings.otlp_endpoint,
            db_max_connections: settings.db_max_connections.get(),
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    /// Parses `vars` as if they were the process's only environment variables. clap reads
    /// variables from the process itself, which a test must not change (tests of one process
    /// run in parallel): each variable becomes its flag, found by the variable's name, and the
    /// command is built without its variable bindings so that the test process's own
    /// environment (a `DATABASE_URL` of the developer, say) is not read.
    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_settings(settings(vars)?)
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, clap::Error> {
        let command = Settings::command();
        let mut args = vec!["task-api".to_owned()];
        for (name, value) in vars {
            let flag = command
                .get_arguments()
                .find(|arg| arg.get_env() == Some(OsStr::new(name)))
                .and_then(|arg| arg.get_long())
                .unwrap_or_else(|| panic!("{name} is not a variable of the service"));
            args.push(format!("--{flag}={value}"));
        }
        let matches = command
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(args)?;
        Settings::from_arg_matches(&matches)
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Settings::command().debug_assert();
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
        assert_eq!(config.log_level, "info");
        assert_eq!(config.max_inflight, 512);
        assert_eq!(config.db_max_connections, 16);
        assert_eq!(config.shutdown_grace, Duration::from_secs(25));
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
            ("TASK_API_ADMIN_LISTEN", "9090"),
            ("TASK_API_DEV_MODE", "yes"),
            ("TASK_API_MAX_INFLIGHT", "0"),
            ("TASK_API_DB_MAX_CONNECTIONS", "0"),
            ("TASK_API_LOG_FORMAT", "xml"),
            ("TASK_API_SHUTDOWN_GRACE_SECONDS", "-1"),
        ] {
            let error = config(&[(name, value)]).unwrap_err();
            assert!(matches!(error, ConfigError::Parse(_)), "{name}: {error:?}");
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
        let password = "hunter2";
        let url = format!("postgres://task:{password}@db/tasks");
        let from_variable = config(&[("DATABASE_URL", &url)]).unwrap();
        assert!(matches!(
            &from_variable.database_url,
            DatabaseUrl::Value(value) if task_store::ExposeSecret::expose_secret(value) == url
        ));
        let printed = format!("{from_variable:?}");
        assert!(!printed.contains(password), "{printed}");
        let printed = format!("{:?}", settings(&[("DATABASE_URL", &url)]).unwrap());
        assert!(!printed.contains(password), "{printed}");
    }
}
