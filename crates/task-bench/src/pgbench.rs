//! pgbench against the service's own SQL: `$N` placeholders become pgbench `:variables`,
//! scripts are written per workload, latencies come from pgbench's per-transaction log.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::BenchError;
use crate::process::run_captured;

/// Rewrites a PostgreSQL statement with `$1..$N` placeholders into one pgbench script line,
/// `$i` becoming `:names[i-1]`. Quoted literals and identifiers are left alone; whitespace
/// outside them collapses to single spaces (pgbench reads a statement up to its `;`).
pub fn sql_to_pgbench(sql: &str, names: &[&str]) -> Result<String, BenchError> {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.trim().trim_end_matches(';').chars().peekable();
    let mut quote: Option<char> = None;
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let index: usize = digits.parse().map_err(|_| BenchError::Parse {
                    tool: "sql",
                    reason: format!("placeholder ${digits}"),
                })?;
                let name = index
                    .checked_sub(1)
                    .and_then(|i| names.get(i))
                    .ok_or_else(|| BenchError::UnboundPlaceholder {
                        index,
                        statement: sql.to_string(),
                    })?;
                out.push(':');
                out.push_str(name);
            }
            _ => out.push(c),
        }
    }
    out.push(';');
    Ok(out)
}

/// Highest `$N` in a statement (quoted text ignored): how many variables it needs.
pub fn placeholder_count(sql: &str) -> usize {
    let mut max = 0;
    let mut quote: Option<char> = None;
    let bytes: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' => {
                let digits: String = bytes[i + 1..]
                    .iter()
                    .take_while(|d| d.is_ascii_digit())
                    .collect();
                if let Ok(n) = digits.parse::<usize>() {
                    max = max.max(n);
                    i += digits.len();
                }
            }
            None => {}
        }
        i += 1;
    }
    max
}

/// tps and latency percentiles of one measured pgbench run.
#[derive(Debug, Clone, PartialEq)]
pub struct PgbenchResult {
    pub tps: f64,
    pub transactions: u64,
    pub failed: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Reads `tps = … (without initial connection time)` and the failed-transaction count.
pub fn parse_pgbench_summary(stdout: &str) -> Result<(f64, u64), BenchError> {
    let tps = stdout
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .ok_or_else(|| BenchError::Parse {
            tool: "pgbench",
            reason: "no `tps = …` line".into(),
        })?;
    let failed = stdout
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("number of failed transactions:")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    Ok((tps, failed))
}

/// Per-transaction latencies (µs) from pgbench `--log` lines
/// (`client_id transaction_no time script_no time_epoch time_us …`); failed or skipped
/// transactions (`time` not a number) are counted apart.
pub fn parse_transaction_log(text: &str) -> Result<(Vec<u64>, u64), BenchError> {
    let mut latencies = Vec::new();
    let mut not_done = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let time = line
            .split_whitespace()
            .nth(2)
            .ok_or_else(|| BenchError::Parse {
                tool: "pgbench log",
                reason: format!("short line {line:?}"),
            })?;
        match time.parse::<u64>() {
            Ok(us) => latencies.push(us),
            Err(_) if time == "failed" || time == "skipped" => not_done += 1,
            Err(e) => {
                return Err(BenchError::Parse {
                    tool: "pgbench log",
                    reason: format!("latency {time:?}: {e}"),
                });
            }
        }
    }
    Ok((latencies, not_done))
}

/// Nearest-rank percentile of an ascending-sorted slice.
pub fn percentile(sorted: &[u64], pct: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub struct PgbenchRun<'a> {
    pub database_url: &'a str,
    /// Scripts and their weights (`-f file@weight`).
    pub scripts: &'a [(PathBuf, u32)],
    pub clients: u32,
    pub threads: u32,
    pub duration: Duration,
    /// `-D name=value` constants (the subject, the id range, the time base).
    pub defines: &'a [(String, String)],
    /// Directory for the per-transaction logs; `None` for a warm-up run.
    pub log_dir: Option<&'a Path>,
}

impl PgbenchRun<'_> {
    pub fn run(&self) -> Result<PgbenchResult, BenchError> {
        let mut cmd = Command::new("pgbench");
        cmd.arg("-n")
            .arg("-M")
            .arg("prepared")
            .arg("-c")
            .arg(self.clients.to_string())
            .arg("-j")
            .arg(self.threads.to_string())
            .arg("-T")
            .arg(self.duration.as_secs().max(1).to_string());
        for (script, weight) in self.scripts {
            cmd.arg("-f").arg(format!("{}@{weight}", script.display()));
        }
        for (name, value) in self.defines {
            cmd.arg("-D").arg(format!("{name}={value}"));
        }
        let prefix = self.log_dir.map(|dir| dir.join("txn"));
        if let Some(prefix) = &prefix {
            if let Some(dir) = prefix.parent() {
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
            }
            cmd.arg("-l")
                .arg(format!("--log-prefix={}", prefix.display()));
        }
        cmd.arg(self.database_url);
        let stdout = run_captured(&mut cmd, "pgbench")?;
        let (tps, failed) = parse_pgbench_summary(&stdout)?;
        let mut latencies = Vec::new();
        let mut not_done = 0;
        if let Some(dir) = prefix.as_ref().and_then(|p| p.parent()) {
            for entry in read_dir_sorted(dir)? {
                let text =
                    std::fs::read_to_string(&entry).map_err(|e| BenchError::io(&entry, e))?;
                let (mut l, n) = parse_transaction_log(&text)?;
                latencies.append(&mut l);
                not_done += n;
            }
        }
        latencies.sort_unstable();
        Ok(PgbenchResult {
            tps,
            transactions: latencies.len() as u64,
            failed: failed.max(not_done),
            p50_us: percentile(&latencies, 50.0),
            p99_us: percentile(&latencies, 99.0),
        })
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| BenchError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_placeholders_to_variables() {
        let sql = "SELECT id, title\n  FROM tasks\n WHERE id = $1 AND owner = $2";
        assert_eq!(
            sql_to_pgbench(sql, &["id", "subject"]).unwrap(),
            "SELECT id, title FROM tasks WHERE id = :id AND owner = :subject;"
        );
    }

    #[test]
    fn multi_digit_placeholders_and_casts() {
        let names: Vec<String> = (1..=11).map(|i| format!("v{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let sql = "UPDATE t SET a = $1::text, b = $10, c = $11 WHERE d = $2;";
        assert_eq!(
            sql_to_pgbench(sql, &refs).unwrap(),
            "UPDATE t SET a = :v1::text, b = :v10, c = :v11 WHERE d = :v2;"
        );
        assert_eq!(placeholder_count(sql), 11);
    }

    #[test]
    fn quoted_text_is_untouched() {
        let sql = "SELECT '$1  stays', \"odd $2 name\" FROM t WHERE x = $1";
        assert_eq!(
            sql_to_pgbench(sql, &["x"]).unwrap(),
            "SELECT '$1  stays', \"odd $2 name\" FROM t WHERE x = :x;"
        );
        assert_eq!(placeholder_count(sql), 1);
    }

    #[test]
    fn unbound_placeholder_is_an_error() {
        let err = sql_to_pgbench("SELECT $3", &["a", "b"]).unwrap_err();
        assert!(matches!(
            err,
            BenchError::UnboundPlaceholder { index: 3, .. }
        ));
        assert!(sql_to_pgbench("SELECT $0", &["a"]).is_err());
    }

    #[test]
    fn parses_summary() {
        let out = "transaction type: get.sql\nnumber of clients: 64\n\
            number of transactions actually processed: 251234\n\
            number of failed transactions: 3 (0.001%)\nlatency average = 2.547 ms\n\
            initial connection time = 55.102 ms\ntps = 25123.456789 (without initial connection time)\n";
        let (tps, failed) = parse_pgbench_summary(out).unwrap();
        assert!((tps - 25_123.456_789).abs() < 1e-6);
        assert_eq!(failed, 3);
        assert!(parse_pgbench_summary("latency average = 1 ms\n").is_err());
    }

    #[test]
    fn parses_transaction_log_and_percentiles() {
        let log = "0 1 2500 0 1795000000 123456\n1 1 1200 0 1795000000 123999\n\
                   0 2 failed 0 1795000001 1\n1 2 9000 0 1795000001 5\n";
        let (mut l, not_done) = parse_transaction_log(log).unwrap();
        l.sort_unstable();
        assert_eq!(l, vec![1200, 2500, 9000]);
        assert_eq!(not_done, 1);
        assert_eq!(percentile(&l, 50.0), 2500);
        assert_eq!(percentile(&l, 99.0), 9000);
        assert_eq!(percentile(&[], 99.0), 0);
        assert!(parse_transaction_log("0 1\n").is_err());
        assert!(parse_transaction_log("0 1 12ms 0 1 1\n").is_err());
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
    }
}
