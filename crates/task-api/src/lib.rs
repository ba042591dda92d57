//! The Task API service: configuration, HTTP layer, admin listener and the [`Application`]
//! that `main` and the test suites start the same way.

pub mod app;
pub mod config;
pub mod correlation;
pub mod error;
pub mod extract;
pub mod load_shed;
pub mod openapi;
pub mod operability;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use task_auth::{Authenticator, OidcSettings};
use task_store::{StoreSettings, TaskStore};
use tokio::net::TcpListener;

pub use app::{AppState, admin_router, public_router};
pub use config::Config;

/// Subject of the token printed in dev mode.
pub const DEV_SUBJECT: &str = "developer";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database migration failed")]
    Migration(#[source] task_store::StoreError),
    #[error("database connection failed")]
    Store(#[from] task_store::StoreError),
    #[error("authentication setup failed: {0}")]
    Auth(#[from] task_auth::SetupError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// A built service: migrated database, bound listeners, ready to serve.
pub struct Application {
    public: TcpListener,
    admin: TcpListener,
    state: AppState,
    dev_token: Option<String>,
    shutdown_grace: Duration,
}

impl Application {
    /// Migrates the database, connects, sets up authentication and binds both listeners
    /// (port 0 binds a free port; see [`Application::public_addr`]).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        task_store::migrate(config.database_url.clone())
            .await
            .map_err(StartupError::Migration)?;
        let mut settings = StoreSettings::new(config.database_url.clone());
        settings.max_connections = config.db_max_connections;
        let store = task_store::connect(&settings).await?;
        let (authenticator, dev_token) = if config.dev_mode {
            let (authenticator, token) = Authenticator::dev(DEV_SUBJECT);
            (authenticator, Some(token))
        } else {
            let settings = OidcSettings::new(
                config.oidc_issuer_url.clone().unwrap_or_default(),
                config.oidc_audience.clone().unwrap_or_default(),
            );
            (Authenticator::oidc(settings).await?, None)
        };
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address)
                .await
                .map_err(|source| StartupError::Bind { address, source })
        };
        Ok(Self {
            public: bind(config.listen).await?,
            admin: bind(config.admin_listen).await?,
            state: AppState {
                store,
                authenticator,
                operability: operability::Operability::new(config.max_inflight),
            },
            dev_token,
            shutdown_grace: config.shutdown_grace,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.state.authenticator
    }

    /// In dev mode, a token for [`DEV_SUBJECT`] to print for the developer.
    pub fn dev_token(&self) -> Option<&str> {
        self.dev_token.as_deref()
    }

    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.state.store
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves both listeners until `shutdown` completes, then stops accepting connections
    /// and lets in-flight requests finish for up to the configured grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        };
        let public = axum::serve(self.public, public_router(self.state.clone()))
            .with_graceful_shutdown(stopped(stop.clone()));
        let admin = axum::serve(self.admin, admin_router(self.state.clone()))
            .with_graceful_shutdown(stopped(stop.clone()));
        let public = tokio::spawn(async move { public.await });
        let admin = tokio::spawn(async move { admin.await });
        shutdown.await;
        tracing::info!(grace = ?self.shutdown_grace, "shutting down: finishing in-flight requests");
        let _ = stop_sender.send(true);
        let drained = async {
            let public = public.await;
            let admin = admin.await;
            (public, admin)
        };
        match tokio::time::timeout(self.shutdown_grace, drained).await {
            Ok((public, admin)) => {
                for result in [public, admin] {
                    result.map_err(std::io::Error::other)??;
                }
            }
            Err(_) => tracing::warn!("grace period over; dropping the remaining connections"),
        }
        self.state.store.close().await;
        Ok(())
    }
}
