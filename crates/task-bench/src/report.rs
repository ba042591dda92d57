//! The table, in Markdown so that it can be pasted into docs/performance.md unchanged.

use std::fmt::Write;
use std::time::Duration;

use crate::pgbench::PgbenchResult;
use crate::wrk::WrkResult;

pub struct Row {
    pub label: &'static str,
    pub api: WrkResult,
    pub db: PgbenchResult,
    /// API/DB of every round, in the order they ran.
    pub round_ratios: Vec<f64>,
}

impl Row {
    /// The round with the median API/DB ratio (the lower middle one for an even count); the
    /// other rounds' ratios stay visible in the table.
    pub fn median_of(label: &'static str, rounds: Vec<(WrkResult, PgbenchResult)>) -> Row {
        let ratio = |(api, db): &(WrkResult, PgbenchResult)| api.requests_per_second() / db.tps;
        let round_ratios: Vec<f64> = rounds.iter().map(ratio).collect();
        let mut sorted = rounds;
        sorted.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        let (api, db) = sorted.swap_remove((sorted.len() - 1) / 2);
        Row {
            label,
            api,
            db,
            round_ratios,
        }
    }

    pub fn ratio(&self) -> f64 {
        self.api.requests_per_second() / self.db.tps
    }

    pub fn p99_ratio(&self) -> f64 {
        self.api.p99_us as f64 / self.db.p99_us.max(1) as f64
    }

    /// The per-workload targets: API/DB ≥ 60 %, p99 ≤ 1.5× pgbench p99, no errors.
    pub fn misses(&self) -> Vec<&'static str> {
        let mut misses = Vec::new();
        if self.ratio() < MIN_RATIO {
            misses.push("API/DB < 60%");
        }
        if self.p99_ratio() > MAX_P99_RATIO {
            misses.push("p99 > 1.5x pgbench");
        }
        if self.api.errors() > 0 || self.db.failed > 0 {
            misses.push("errors");
        }
        misses
    }
}

/// A workload meets its targets at API/DB of at least this...
pub const MIN_RATIO: f64 = 0.6;
/// ...with a p99 at most this many times pgbench's...
pub const MAX_P99_RATIO: f64 = 1.5;
/// ...and the replica's peak RSS stays below this.
pub const MAX_RSS_MIB: f64 = 32.0;

pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

pub fn render_table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | API req/s | API p50 ms | API p99 ms | API errors | pgbench tps | pgbench p50 ms | pgbench p99 ms | API/DB | p99 API/DB | targets | API/DB per round |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for row in rows {
        let misses = row.misses();
        let verdict = if misses.is_empty() {
            "met".to_string()
        } else {
            misses.join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} ({} non-2xx, {} socket) | {:.0} | {} | {} | {:.0}% | {:.2}x | {} | {} |",
            row.label,
            row.api.requests_per_second(),
            ms(row.api.p50_us),
            ms(row.api.p99_us),
            row.api.errors(),
            row.api.non_2xx,
            row.api.socket_errors,
            row.db.tps,
            ms(row.db.p50_us),
            ms(row.db.p99_us),
            row.ratio() * 100.0,
            row.p99_ratio(),
            verdict,
            row.round_ratios
                .iter()
                .map(|ratio| format!("{:.0}%", ratio * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    out
}

pub fn process_line(peak_rss_kib: u64, time_to_ready: Duration) -> String {
    let rss_mib = peak_rss_kib as f64 / 1024.0;
    let ready_ms = time_to_ready.as_secs_f64() * 1000.0;
    format!(
        "replica peak RSS (VmHWM): {rss_mib:.1} MiB (target < 32 MiB: {}); process start to /readyz 200: {ready_ms:.0} ms (target < 1000 ms: {})",
        if rss_mib < MAX_RSS_MIB {
            "met"
        } else {
            "missed"
        },
        if ready_ms < 1000.0 { "met" } else { "missed" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(
        api_rps: u64,
        api_p99: u64,
        db_tps: f64,
        db_p99: u64,
        non_2xx: u64,
    ) -> (WrkResult, PgbenchResult) {
        (
            WrkResult {
                requests: api_rps * 10,
                duration: Duration::from_secs(10),
                p50_us: 1000,
                p99_us: api_p99,
                non_2xx,
                socket_errors: 0,
            },
            PgbenchResult {
                tps: db_tps,
                transactions: 1,
                failed: 0,
                p50_us: 500,
                p99_us: db_p99,
            },
        )
    }

    fn row(api_rps: u64, api_p99: u64, db_tps: f64, db_p99: u64, non_2xx: u64) -> Row {
        Row::median_of(
            "GET /tasks/{id}",
            vec![pair(api_rps, api_p99, db_tps, db_p99, non_2xx)],
        )
    }

    #[test]
    fn the_median_round_is_reported_and_every_round_listed() {
        let rounds = vec![
            pair(7000, 4000, 10_000.0, 2500, 0),
            pair(4000, 4000, 10_000.0, 2500, 0),
            pair(6000, 4000, 10_000.0, 2500, 0),
        ];
        let median = Row::median_of("GET /tasks/{id}", rounds);
        assert_eq!(median.api.requests_per_second().round(), 6000.0);
        let table = render_table(&[median]);
        assert!(table.contains("| 60% |"), "{table}");
        assert!(table.contains("| 70%, 40%, 60% |"), "{table}");
        let two = Row::median_of(
            "x",
            vec![pair(7000, 1, 10_000.0, 1, 0), pair(4000, 1, 10_000.0, 1, 0)],
        );
        assert_eq!(two.api.requests_per_second().round(), 4000.0);
    }

    #[test]
    fn verdicts_follow_the_targets() {
        assert!(row(6000, 3750, 10_000.0, 2500, 0).misses().is_empty());
        assert_eq!(
            row(5990, 3750, 10_000.0, 2500, 0).misses(),
            vec!["API/DB < 60%"]
        );
        assert_eq!(
            row(6000, 3760, 10_000.0, 2500, 0).misses(),
            vec!["p99 > 1.5x pgbench"]
        );
        assert_eq!(row(6000, 3750, 10_000.0, 2500, 1).misses(), vec!["errors"]);
    }

    #[test]
    fn table_has_one_line_per_row_plus_header() {
        let table = render_table(&[row(6000, 3750, 10_000.0, 2500, 0)]);
        assert_eq!(table.lines().count(), 3);
        assert!(table.contains("| 6000 |"), "{table}");
        assert!(table.contains("| 60% |"), "{table}");
        assert!(table.contains("| 1.50x | met | 60% |"), "{table}");
    }
}
