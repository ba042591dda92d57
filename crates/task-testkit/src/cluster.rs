//! A PostgreSQL cluster of the test's own (`initdb` in a temporary directory, on a free
//! loopback port), for faults the shared server must not suffer: stopped and started again,
//! few connection slots, password authentication, TLS only.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How to set a cluster up.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `postgresql.conf` lines, e.g. `max_connections = 8`.
    pub settings: Vec<String>,
    /// The whole `pg_hba.conf`; `None`: `initdb --auth=trust`.
    pub hba: Option<String>,
    /// Files written into the data directory (owned by `postgres`, mode 0600), e.g. the
    /// server certificate and key.
    pub files: Vec<(String, Vec<u8>)>,
}

impl ClusterOptions {
    pub fn setting(mut self, line: impl Into<String>) -> Self {
        self.settings.push(line.into());
        self
    }

    pub fn hba(mut self, hba: impl Into<String>) -> Self {
        self.hba = Some(hba.into());
        self
    }

    pub fn file(mut self, name: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }
}

/// Runs as the `postgres` OS user, since `initdb` refuses to run as root. The superuser
/// `postgres` may always connect over the cluster's Unix socket without a password
/// ([`PostgresCluster::psql`]).
pub struct PostgresCluster {
    directory: tempfile::TempDir,
    pub port: u16,
}

impl PostgresCluster {
    /// A trust-only cluster with default settings.
    pub fn start() -> Self {
        Self::start_with(ClusterOptions::default())
    }

    pub fn start_with(options: ClusterOptions) -> Self {
        let directory = tempfile::Builder::new()
            .prefix("task-api-pg-")
            .tempdir()
            .expect("temporary directory");
        run(Command::new("chown")
            .arg("postgres:postgres")
            .arg(directory.path()));
        let cluster = Self {
            port: free_port(),
            directory,
        };
        run(cluster
            .as_postgres(&format!("{PG_BIN}/initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(cluster.data()));
        let data = cluster.data();
        if !options.settings.is_empty() {
            let mut conf =
                std::fs::read_to_string(data.join("postgresql.conf")).expect("postgresql.conf");
            for line in &options.settings {
                conf.push_str(line);
                conf.push('\n');
            }
            std::fs::write(data.join("postgresql.conf"), conf).expect("postgresql.conf");
        }
        if let Some(hba) = &options.hba {
            std::fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        }
        for (name, contents) in &options.files {
            let path = data.join(name);
            std::fs::write(&path, contents).expect("cluster file");
            run(Command::new("chmod").arg("600").arg(&path));
            run(Command::new("chown").arg("postgres:postgres").arg(&path));
        }
        cluster.start_server();
        cluster
    }

    pub fn data(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--", program])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }

    /// The superuser over TCP (no password: for trust clusters).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `user:password` on `database` over TCP, with `query` (e.g. `sslmode=require`) if
    /// not empty.
    pub fn url_for(&self, user: &str, password: &str, database: &str, query: &str) -> String {
        let mut url = format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.directory.path().display()
        );
        run(self
            .as_postgres(&format!("{PG_BIN}/pg_ctl"))
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data())
            .args(["-l"])
            .arg(self.log_file())
            .args(["-o", &options]));
    }

    /// `pg_ctl stop -m fast`: sessions are terminated, the port closes.
    pub fn stop_server(&self) {
        run(self
            .as_postgres(&format!("{PG_BIN}/pg_ctl"))
            .args(["stop", "-w", "-m", "fast", "-D"])
            .arg(self.data()));
    }

    /// Runs `sql` as the superuser over the Unix socket and returns what it prints
    /// (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/psql")])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.directory.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn log_file(&self) -> PathBuf {
        self.directory.path().join("server.log")
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        let _ = self
            .as_postgres(&format!("{PG_BIN}/pg_ctl"))
            .args(["stop", "-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .stderr(Stdio::null())
            .status();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn run(command: &mut Command) {
    let output = command
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|error| panic!("{command:?} did not start: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
