//! One release-build replica of the Task API as a child process.

use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::BenchError;

pub struct Replica {
    child: Child,
    pub public_url: String,
    pub time_to_ready: Duration,
}

/// A loopback port nobody listens on right now (the replica binds it a moment later).
pub fn free_port() -> Result<u16, BenchError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| BenchError::io("127.0.0.1:0", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| BenchError::io("127.0.0.1:0", e))?
        .port();
    Ok(port)
}

impl Replica {
    /// Starts the binary and waits until `/readyz` answers 200; the clock runs from just
    /// before the spawn to the first 200.
    pub async fn start(
        binary: &Path,
        env: &[(String, String)],
        log_file: &Path,
    ) -> Result<Replica, BenchError> {
        let public = format!("127.0.0.1:{}", free_port()?);
        let admin = format!("127.0.0.1:{}", free_port()?);
        let log = File::create(log_file).map_err(|e| BenchError::io(log_file, e))?;
        let log_err = log.try_clone().map_err(|e| BenchError::io(log_file, e))?;
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("TASK_API_LISTEN", &public)
            .env("TASK_API_ADMIN_LISTEN", &admin)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .map_err(|e| BenchError::Replica(format!("HTTP client: {e}")))?;
        let readyz = format!("http://{admin}/readyz");
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|source| BenchError::Spawn {
            program: binary.display().to_string(),
            source,
        })?;
        loop {
            if let Ok(resp) = client.get(&readyz).send().await
                && resp.status().as_u16() == 200
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(BenchError::Replica(format!(
                    "exited with {status} before it was ready; see {}",
                    log_file.display()
                )));
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err(BenchError::Replica(format!(
                    "not ready after 30 s; see {}",
                    log_file.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let time_to_ready = started.elapsed();
        Ok(Replica {
            child,
            public_url: format!("http://{public}"),
            time_to_ready,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64, BenchError> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
        parse_vm_hwm(&status).ok_or_else(|| BenchError::Parse {
            tool: "proc status",
            reason: format!("no VmHWM in {path}"),
        })
    }

    /// SIGTERM, then a kill if the grace period is not honoured.
    pub fn stop(mut self) -> Result<(), BenchError> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(BenchError::Replica("ignored SIGTERM for 10 s".into()))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmHWM:   12345 kB` → 12345.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm() {
        let status =
            "Name:\ttask-api\nVmPeak:\t  300000 kB\nVmHWM:\t   21432 kB\nVmRSS:\t   20000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(21_432));
        assert_eq!(parse_vm_hwm("VmRSS:\t 1 kB\n"), None);
    }

    #[test]
    fn own_process_has_a_peak() {
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_vm_hwm(&own).unwrap() > 0);
    }
}
