use std::process::ExitCode;

use task_api::config::{Config, ConfigError};
use task_api::{Application, DEV_SUBJECT};

/// mimalloc's thread-local free lists make the many small, short-lived allocations of each
/// request cheaper than glibc's malloc (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        // `--help` and `--version` (exit 0) as well as invalid values (exit 2, naming the
        // variable): clap prints them.
        Err(ConfigError::Parse(error)) => error.exit(),
        Err(error) => {
            eprintln!("task-api: {error} (see task-api --help)");
            return ExitCode::from(2);
        }
    };
    let telemetry =
        match task_observability::init_telemetry(&task_api::operability::telemetry_config(&config))
        {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("task-api: telemetry setup failed: {error}");
                return ExitCode::from(2);
            }
        };
    let exit = serve(config).await;
    // Last: delivers the log lines and spans of the shutdown itself.
    telemetry.shutdown().await;
    exit
}

async fn serve(config: Config) -> ExitCode {
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(error) => {
            // One line with the whole cause (e.g. the certificate the server presented was
            // not issued by sslrootcert's CA): the replica never becomes ready and says why.
            tracing::error!(error = %task_store::error_chain(&error), "startup failed");
            return ExitCode::FAILURE;
        }
    };
    if let Some(token) = application.dev_token() {
        tracing::warn!(
            subject = DEV_SUBJECT,
            token,
            "DEV MODE: tokens are signed by this process; never run like this in production"
        );
    }
    tracing::info!(
        public = %application.public_addr(),
        admin = %application.admin_addr(),
        "task-api listening"
    );
    match application.run_until_stopped(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
