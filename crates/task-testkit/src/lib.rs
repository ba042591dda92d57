//! Test support shared by every Task API suite: throwaway databases on the real PostgreSQL
//! service or in a temporary SQLite file, the service started in-process on free ports, and
//! bearer tokens for any subject.
//!
//! PostgreSQL is reached through `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each [`TestDatabase::postgres`] creates a
//! database `task_api_test_<random>` there and drops it when dropped.

mod cluster;
pub mod pki;
mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;
use sea_orm::{ConnectionTrait, Database};
use std::sync::Arc;
use task_api::config::{Config, LogFormat};
use task_api::{Application, StartupError};

use task_auth::Authenticator;

/// Issues tokens the service under test accepts, shared by several replicas (e.g. the
/// in-process OIDC issuer of `task_auth::testing`).
pub trait TokenIssuer: Send + Sync {
    fn url(&self) -> &str;
    fn audience(&self) -> &str;
    fn token(&self, subject: &str) -> String;
}

pub use task_auth::testing::LocalIssuer;

/// The real in-process OIDC issuer (discovery + JWKS over HTTP, RSA keys).
impl TokenIssuer for LocalIssuer {
    fn url(&self) -> &str {
        LocalIssuer::url(self)
    }

    fn audience(&self) -> &str {
        LocalIssuer::audience(self)
    }

    fn token(&self, subject: &str) -> String {
        LocalIssuer::token(self, subject)
    }
}
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cluster::{ClusterOptions, PostgresCluster};
pub use proxy::TcpProxy;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];
}

/// Declares each `async fn name(backend: Backend)` of the calling module as two tests,
/// `postgres::name` and `sqlite::name` (so that `-E 'test(sqlite::)'` selects one backend),
/// each on a two-worker Tokio runtime. The calling crate needs `tokio` (with `macros` and
/// `rt-multi-thread`) among its dev-dependencies.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Postgres).await }
            )*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await }
            )*
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("TEST_POSTGRES_URL is not a URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("database setup failed: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("temporary directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("service did not start: {0}")]
    Startup(#[from] StartupError),
}

enum Cleanup {
    Postgres { admin_url: String, name: String },
    Sqlite { _directory: tempfile::TempDir },
}

/// A database that exists only for one test.
pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Result<Self, TestkitError> {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Self::sqlite(),
        }
    }

    /// A fresh, empty PostgreSQL database on `TEST_POSTGRES_URL`.
    pub async fn postgres() -> Result<Self, TestkitError> {
        let admin_url = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned());
        let name = format!("task_api_test_{:016x}", rand::rng().random::<u64>());
        let admin = Database::connect(admin_url.as_str()).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        let mut url = url::Url::parse(&admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            url: url.to_string(),
            backend: Backend::Postgres,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// A fresh SQLite database file in a temporary directory.
    pub fn sqlite() -> Result<Self, TestkitError> {
        let directory = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("task-api.sqlite").display()
        );
        Ok(Self {
            url,
            backend: Backend::Sqlite,
            cleanup: Cleanup::Sqlite {
                _directory: directory,
            },
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The server address of a PostgreSQL database (None for SQLite).
    pub fn server_address(&self) -> Option<SocketAddr> {
        let url = url::Url::parse(&self.url).ok()?;
        if self.backend != Backend::Postgres {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port().unwrap_or(5432);
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .ok()?
            .next()
    }

    /// This database's URL with the server replaced by `address` (e.g. a [`TcpProxy`]).
    pub fn url_via(&self, address: SocketAddr) -> String {
        let mut url = url::Url::parse(&self.url).expect("test database URL parses");
        url.set_ip_host(address.ip()).expect("URL takes an IP host");
        url.set_port(Some(address.port()))
            .expect("URL takes a port");
        url.to_string()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with
        // a runtime of its own. FORCE ends the sessions of pools still open.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .map_err(std::io::Error::other)?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(std::io::Error::other)?;
                admin.close().await.map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.url);
        }
    }
}

/// How to start the service under test.
#[derive(Clone)]
pub struct TestOptions {
    pub max_inflight: usize,
    pub db_max_connections: u32,
    pub shutdown_grace: Duration,
    /// Authenticate against this in-process OIDC issuer (shared by several replicas);
    /// `None`: dev mode, the service signs its own tokens.
    pub issuer: Option<Arc<dyn TokenIssuer>>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            max_inflight: 512,
            db_max_connections: 8,
            shutdown_grace: Duration::from_secs(5),
            issuer: None,
        }
    }
}

impl TestOptions {
    pub fn with_issuer(issuer: Arc<dyn TokenIssuer>) -> Self {
        Self {
            issuer: Some(issuer),
            ..Self::default()
        }
    }

    /// The service configuration for `database_url`, on free loopback ports.
    pub fn config(&self, database_url: &str) -> Config {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Config {
            listen: loopback,
            admin_listen: loopback,
            database_url: database_url.into(),
            oidc_issuer_url: self.issuer.as_ref().map(|issuer| issuer.url().to_owned()),
            oidc_audience: self
                .issuer
                .as_ref()
                .map(|issuer| issuer.audience().to_owned()),
            max_inflight: self.max_inflight,
            dev_mode: self.issuer.is_none(),
            log_format: LogFormat::Pretty,
            log_level: "warn".to_owned(),
            loki_url: None,
            otlp_endpoint: None,
            db_max_connections: self.db_max_connections,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

/// The service running in-process on free loopback ports.
pub struct TestApp {
    /// e.g. `http://127.0.0.1:41234`
    pub public_url: String,
    /// e.g. `http://127.0.0.1:41235`
    pub admin_url: String,
    pub client: reqwest::Client,
    authenticator: Authenticator,
    issuer: Option<Arc<dyn TokenIssuer>>,
    /// Signing is RSA work: one token per subject is enough for a test.
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(
        database: &TestDatabase,
        options: TestOptions,
    ) -> Result<Self, TestkitError> {
        Self::spawn_with_config(options.config(database.url()), options.issuer).await
    }

    /// Starts the service with `config`; `issuer` mints the tokens when the config points
    /// at it (otherwise the config must be in dev mode).
    pub async fn spawn_with_config(
        config: Config,
        issuer: Option<Arc<dyn TokenIssuer>>,
    ) -> Result<Self, TestkitError> {
        let application = Application::build(config).await?;
        let public_url = format!("http://{}", application.public_addr());
        let admin_url = format!("http://{}", application.admin_addr());
        let authenticator = application.authenticator().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client builds");
        Ok(Self {
            public_url,
            admin_url,
            client,
            authenticator,
            issuer,
            tokens: Default::default(),
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// A bearer token for `subject` that this service accepts.
    pub fn token(&self, subject: &str) -> String {
        let mut tokens = self.tokens.lock().expect("token cache lock");
        tokens
            .entry(subject.to_owned())
            .or_insert_with(|| match &self.issuer {
                Some(issuer) => issuer.token(subject),
                None => self
                    .authenticator
                    .dev_token(subject)
                    .expect("without an issuer, test services run in dev mode"),
            })
            .clone()
    }

    /// URL of `path` on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// URL of `path` on the admin listener.
    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.admin_url)
    }

    /// A request on the public listener authenticated as `subject`.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        subject: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(self.token(subject))
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts that `response` is an RFC 9457 problem document with `status`: the status line,
/// `content-type: application/problem+json`, a `title`, and `status` and `correlation_id`
/// fields equal to the status line and the `correlation_id` response header. Returns the body.
pub async fn expect_problem(
    response: reqwest::Response,
    status: reqwest::StatusCode,
    what: &str,
) -> serde_json::Value {
    assert_eq!(response.status(), status, "{what}: unexpected status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let correlation_id = response.headers()["correlation_id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    assert_eq!(body["correlation_id"], correlation_id.as_str(), "{what}");
    assert!(body["title"].is_string(), "{what}: {body}");
    body
}
