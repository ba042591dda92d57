//! Runs wrk with `scripts/workload.lua` and reads the line its `done()` handler prints.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::error::BenchError;
use crate::process::run_captured;

pub const WORKLOAD_LUA: &str = include_str!("../scripts/workload.lua");

/// What one measured wrk run saw. Latencies are wrk's own (HdrHistogram-like, µs).
#[derive(Debug, Clone, PartialEq)]
pub struct WrkResult {
    pub requests: u64,
    pub duration: Duration,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Responses with status >= 400 (wrk counts them as `status` errors).
    pub non_2xx: u64,
    /// connect + read + write + timeout.
    pub socket_errors: u64,
}

impl WrkResult {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64()
    }

    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// Parses the `TASK_BENCH_RESULT key=value ...` line out of wrk's stdout.
pub fn parse_wrk_output(stdout: &str) -> Result<WrkResult, BenchError> {
    let line = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("TASK_BENCH_RESULT "))
        .ok_or_else(|| BenchError::Parse {
            tool: "wrk",
            reason: "no TASK_BENCH_RESULT line (did the lua script load?)".into(),
        })?;
    let field = |name: &str| -> Result<u64, BenchError> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| BenchError::Parse {
                tool: "wrk",
                reason: format!("missing field {name} in {line:?}"),
            })?
            .parse::<u64>()
            .map_err(|e| BenchError::Parse {
                tool: "wrk",
                reason: format!("field {name}: {e}"),
            })
    };
    let duration_us = field("duration_us")?;
    if duration_us == 0 {
        return Err(BenchError::Parse {
            tool: "wrk",
            reason: "zero duration".into(),
        });
    }
    Ok(WrkResult {
        requests: field("requests")?,
        duration: Duration::from_micros(duration_us),
        p50_us: field("p50_us")?,
        p99_us: field("p99_us")?,
        non_2xx: field("status")?,
        socket_errors: field("connect")? + field("read")? + field("write")? + field("timeout")?,
    })
}

pub struct WrkRun<'a> {
    pub base_url: &'a str,
    pub script: &'a Path,
    pub mode: &'a str,
    pub ids_file: &'a Path,
    pub token: &'a str,
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

impl WrkRun<'_> {
    pub fn run(&self) -> Result<WrkResult, BenchError> {
        // A fresh base per run: timestamps of this run are all newer than any earlier run's.
        let base_us = chrono::Utc::now().timestamp_micros();
        let mut cmd = Command::new("wrk");
        cmd.arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.duration.as_secs().max(1)))
            .arg("--timeout")
            .arg("5s")
            .arg("-s")
            .arg(self.script)
            .arg(self.base_url)
            .arg("--")
            .arg(self.mode)
            .arg(self.ids_file)
            .arg(self.token)
            .arg(base_us.to_string())
            .arg(self.threads.to_string());
        let stdout = run_captured(&mut cmd, "wrk")?;
        parse_wrk_output(&stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:8080\n  2 threads and 64 connections\n\
        Requests/sec:  12000.00\nTASK_BENCH_RESULT requests=120345 duration_us=10001234 p50_us=4210 \
        p99_us=15007 connect=0 read=2 write=1 status=7 timeout=3\n";

    #[test]
    fn parses_the_done_handler_line() {
        let r = parse_wrk_output(SAMPLE).unwrap();
        assert_eq!(r.requests, 120_345);
        assert_eq!(r.duration, Duration::from_micros(10_001_234));
        assert_eq!((r.p50_us, r.p99_us), (4210, 15007));
        assert_eq!(r.non_2xx, 7);
        assert_eq!(r.socket_errors, 6);
        assert_eq!(r.errors(), 13);
        let rps = r.requests_per_second();
        assert!((rps - 12_033.015).abs() < 0.001, "{rps}");
    }

    #[test]
    fn missing_line_or_field_is_an_error() {
        assert!(parse_wrk_output("Requests/sec: 5\n").is_err());
        let without_p99 = SAMPLE.replace("p99_us=15007 ", "");
        assert!(parse_wrk_output(&without_p99).is_err());
        let zero = SAMPLE.replace("duration_us=10001234", "duration_us=0");
        assert!(parse_wrk_output(&zero).is_err());
    }

    #[test]
    fn lua_script_prints_every_field_the_parser_reads() {
        for name in [
            "requests=",
            "duration_us=",
            "p50_us=",
            "p99_us=",
            "connect=",
            "read=",
            "write=",
            "status=",
            "timeout=",
        ] {
            assert!(
                WORKLOAD_LUA.contains(name),
                "{name} missing from workload.lua"
            );
        }
    }
}
