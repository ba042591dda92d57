//! Task API benchmark: one release replica with real OIDC auth under wrk, then pgbench running
//! the service's own SQL on a copy of the same table, printed side by side.
//!
//! `cargo run --release -p task-bench` (full run, < 5 min) or `-- --quick` (harness smoke test).
//! `--help` lists the options.

mod error;
mod jwt;
mod machine;
mod pgbench;
mod postgres;
mod process;
mod replica;
mod report;
mod seed;
mod workloads;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use task_auth::testing::LocalIssuer;

use crate::error::BenchError;
use crate::pgbench::PgbenchRun;
use crate::postgres::Server;
use crate::replica::Replica;
use crate::report::Row;
use crate::workloads::Workload;
use crate::wrk::WrkRun;

const SUBJECT: &str = "bench-user";
const API_DATABASE: &str = "task_bench_api";
const DB_COPY_DATABASE: &str = "task_bench_pgbench";
const THREADS: u32 = 2;
const CONNECTIONS: u32 = 64;

const USAGE: &str = "usage: task-bench [--quick] [--no-build] [--db-max-connections N] \
[--postgres-url postgres://user@host:port] [--out FILE] [--keep-databases] [--only LIST] [--env KEY=VALUE]...
[--rounds N]
  --quick                 1 s warm-up, 3 s measured, 1,000 seeded tasks, 1 round: a smoke test of the harness
  --rounds N              wrk-then-pgbench pairs per workload; the table shows the median pair (default 3)
  --no-build              use the existing target/release/task-api
  --db-max-connections N  TASK_API_DB_MAX_CONNECTIONS of the replica (default 16, the service default)
  --postgres-url URL      server to create the throwaway databases on (default postgres://postgres@127.0.0.1:5432)
  --out FILE              also write the report (Markdown) to FILE
  --keep-databases        leave task_bench_api and task_bench_pgbench behind for inspection
  --only LIST             run only these workloads, comma-separated: get,post,put,mix (default: all)
  --env KEY=VALUE         extra environment of the replica, e.g. TASK_API_LOG_LEVEL=warn to see what
                          logging costs (repeatable; printed in the report)";

#[derive(Debug, Clone)]
struct Options {
    warmup: Duration,
    measured: Duration,
    seeds: usize,
    build: bool,
    db_max_connections: u32,
    postgres_url: String,
    out: Option<PathBuf>,
    keep_databases: bool,
    quick: bool,
    workloads: Vec<Workload>,
    replica_env: Vec<(String, String)>,
    rounds: usize,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, BenchError> {
        let mut options = Options {
            warmup: Duration::from_secs(2),
            measured: Duration::from_secs(10),
            seeds: 10_000,
            build: true,
            db_max_connections: 16,
            postgres_url: "postgres://postgres@127.0.0.1:5432".into(),
            out: None,
            keep_databases: false,
            quick: false,
            workloads: Workload::ALL.to_vec(),
            replica_env: Vec::new(),
            rounds: 3,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| BenchError::Usage(format!("{name} needs a value\n{USAGE}")))
            };
            match arg.as_str() {
                "--quick" => {
                    options.quick = true;
                    options.warmup = Duration::from_secs(1);
                    options.measured = Duration::from_secs(3);
                    options.seeds = 1_000;
                    options.rounds = 1;
                }
                "--rounds" => {
                    options.rounds = value(&arg)?
                        .parse()
                        .ok()
                        .filter(|rounds| *rounds > 0)
                        .ok_or_else(|| BenchError::Usage("--rounds takes a number > 0".into()))?;
                }
                "--no-build" => options.build = false,
                "--keep-databases" => options.keep_databases = true,
                "--db-max-connections" => {
                    options.db_max_connections = value(&arg)?
                        .parse()
                        .map_err(|e| BenchError::Usage(format!("--db-max-connections: {e}")))?;
                }
                "--postgres-url" => options.postgres_url = value(&arg)?,
                "--only" => options.workloads = Workload::parse_list(&value(&arg)?)?,
                "--env" => {
                    let pair = value(&arg)?;
                    let (key, val) = pair.split_once('=').ok_or_else(|| {
                        BenchError::Usage(format!("--env takes KEY=VALUE, got {pair}"))
                    })?;
                    options.replica_env.push((key.to_owned(), val.to_owned()));
                }
                "--out" => options.out = Some(PathBuf::from(value(&arg)?)),
                "-h" | "--help" => return Err(BenchError::Usage(USAGE.into())),
                other => {
                    return Err(BenchError::Usage(format!(
                        "unknown argument {other}\n{USAGE}"
                    )));
                }
            }
        }
        Ok(options)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

fn log(message: impl AsRef<str>) {
    eprintln!("[task-bench] {}", message.as_ref());
}

#[tokio::main]
async fn main() {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match run(options).await {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("task-bench: {e}");
            std::process::exit(1);
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BenchError> + Send + 'static,
) -> Result<T, BenchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BenchError::Replica(format!("blocking task: {e}")))?
}

async fn run(options: Options) -> Result<String, BenchError> {
    let started = Instant::now();
    let root = workspace_root();
    let work_dir = root.join("target/task-bench");
    std::fs::create_dir_all(&work_dir).map_err(|e| BenchError::io(&work_dir, e))?;
    let server = Server {
        base_url: options.postgres_url.clone(),
    };

    let fsync = server.setting("fsync")?;
    let synchronous_commit = server.setting("synchronous_commit")?;
    let pg_version = server.query("postgres", "SELECT version()")?;
    log(format!(
        "PostgreSQL: {pg_version}; fsync = {fsync}; synchronous_commit = {synchronous_commit}"
    ));
    if fsync != "on" {
        return Err(BenchError::Usage(format!(
            "fsync is {fsync}: the benchmark only means something with fsync on"
        )));
    }

    if options.build {
        log("building target/release/task-api");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&root)
            .args(["build", "--release", "-p", "task-api", "--bin", "task-api"]);
        let status = cmd.status().map_err(|source| BenchError::Spawn {
            program: "cargo".into(),
            source,
        })?;
        if !status.success() {
            return Err(BenchError::CommandFailed {
                program: "cargo build".into(),
                status: status.to_string(),
                stderr: "see above".into(),
            });
        }
    }
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let binary = target_dir.join("release/task-api");

    let issuer = LocalIssuer::start().await;
    let token = issuer.token(SUBJECT);

    server.recreate_database(API_DATABASE, None)?;
    let replica_env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), server.url(API_DATABASE)),
        ("OIDC_ISSUER_URL".into(), issuer.url().to_owned()),
        ("OIDC_AUDIENCE".into(), issuer.audience().to_owned()),
        ("TASK_API_DEV_MODE".into(), "false".into()),
        ("TASK_API_MAX_INFLIGHT".into(), "100000".into()),
        (
            "TASK_API_DB_MAX_CONNECTIONS".into(),
            options.db_max_connections.to_string(),
        ),
        ("TASK_API_LOG_FORMAT".into(), "json".into()),
        ("TASK_API_LOG_LEVEL".into(), "info".into()),
    ];
    // Later entries win: --env overrides the defaults above.
    let replica_env = merge_env(replica_env, &options.replica_env);
    let replica_log = work_dir.join("replica.log");
    let replica = Replica::start(&binary, &replica_env, &replica_log).await?;
    log(format!(
        "replica pid {} ready in {:.0} ms (log: {})",
        replica.pid(),
        replica.time_to_ready.as_secs_f64() * 1000.0,
        replica_log.display()
    ));

    let seed_started = Instant::now();
    let ids = seed::seed_tasks(&replica.public_url, &token, options.seeds, 64).await?;
    log(format!(
        "seeded {} tasks in {:.1} s",
        ids.len(),
        seed_started.elapsed().as_secs_f64()
    ));
    let ids_file = work_dir.join("ids.txt");
    std::fs::write(&ids_file, ids.join("\n") + "\n").map_err(|e| BenchError::io(&ids_file, e))?;
    let (id_min, id_max) = integer_id_range(&ids)?;

    let script = work_dir.join("workload.lua");
    std::fs::write(&script, wrk::WORKLOAD_LUA).map_err(|e| BenchError::io(&script, e))?;

    // pgbench works on a copy of the seeded table, made now so that each workload's API run
    // and pgbench run follow each other within seconds: on a shared machine the speed of
    // both drifts over minutes, and only runs close in time compare fairly. A template copy
    // needs its source idle, so the replica restarts around it.
    let time_to_ready = replica.time_to_ready;
    replica.stop()?;
    server.recreate_database(DB_COPY_DATABASE, Some(API_DATABASE))?;
    let replica = Replica::start(&binary, &replica_env, &replica_log).await?;
    let db_url = server.url(DB_COPY_DATABASE);
    let slice = (ids.len() as u64 / u64::from(CONNECTIONS)).max(1);

    let mut rows = Vec::new();
    for &workload in &options.workloads {
        let mut script_paths = Vec::new();
        for (name, text, weight) in workloads::scripts_for(workload)? {
            let path = work_dir.join(format!("{name}.sql"));
            std::fs::write(&path, text).map_err(|e| BenchError::io(&path, e))?;
            script_paths.push((path, weight));
        }
        let mut pairs = Vec::new();
        for round in 1..=options.rounds {
            let api = measure_api(
                &options,
                workload,
                round,
                WrkRun {
                    base_url: &replica.public_url,
                    script: &script,
                    mode: workload.wrk_mode(),
                    ids_file: &ids_file,
                    token: &token,
                    threads: THREADS,
                    connections: CONNECTIONS,
                    duration: options.measured,
                },
            )
            .await?;
            let db = measure_db(
                &options,
                workload,
                round,
                PgbenchRunOwned {
                    database_url: db_url.clone(),
                    scripts: script_paths.clone(),
                    duration: options.measured,
                    defines: pgbench_defines(id_min, id_max, slice),
                    log_dir: Some(work_dir.join(format!("pgbench-{}", workload.wrk_mode()))),
                },
            )
            .await?;
            pairs.push((api, db));
        }
        rows.push(Row::median_of(workload.label(), pairs));
    }
    let peak_rss_kib = replica.peak_rss_kib()?;
    if let Err(e) = replica.stop() {
        log(format!("replica stop: {e}"));
    }

    let jwt_samples = if options.quick { 50 } else { 200 };
    let jwt_cost = jwt::measure(&issuer, jwt_samples).await?;
    log(jwt_cost.line());

    if !options.keep_databases {
        server.drop_database(DB_COPY_DATABASE)?;
        server.drop_database(API_DATABASE)?;
    }

    let machine = machine::describe();
    let mut out = String::new();
    out.push_str(&format!(
        "## Task API benchmark{}\n\n",
        if options.quick {
            " (--quick: smoke test, not a result)"
        } else {
            ""
        }
    ));
    out.push_str(&format!("- machine: {machine}\n"));
    out.push_str(&format!(
        "- PostgreSQL: {pg_version}; fsync = {fsync}; synchronous_commit = {synchronous_commit}\n"
    ));
    out.push_str(&format!(
        "- load: wrk {THREADS} threads, {CONNECTIONS} keep-alive connections; pgbench -M prepared -c {CONNECTIONS} -j {THREADS}; {} s warm-up then {} s measured; {} tasks seeded through the API for one subject; {} round(s) of wrk then pgbench per workload, the median round shown\n",
        options.warmup.as_secs(),
        options.measured.as_secs(),
        ids.len(),
        options.rounds
    ));
    let env_line: Vec<String> = replica_env
        .iter()
        .filter(|(k, _)| k.starts_with("TASK_API_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.push_str(&format!(
        "- replica: target/release/task-api, real OIDC (local issuer, RS256), {}\n\n",
        env_line.join(" ")
    ));
    out.push_str(&report::render_table(&rows));
    out.push('\n');
    out.push_str(&format!(
        "- {}\n",
        report::process_line(peak_rss_kib, time_to_ready)
    ));
    out.push_str(&format!("- {}\n", jwt_cost.line()));
    out.push_str(&format!(
        "- whole run: {:.0} s\n",
        started.elapsed().as_secs_f64()
    ));
    if let Some(path) = &options.out {
        std::fs::write(path, &out).map_err(|e| BenchError::io(path, e))?;
    }
    Ok(out)
}

/// Warm-up (discarded), then the measured wrk run.
async fn measure_api(
    options: &Options,
    workload: Workload,
    round: usize,
    measured: WrkRun<'_>,
) -> Result<wrk::WrkResult, BenchError> {
    let warm_up = WrkRun {
        duration: options.warmup,
        ..measured
    };
    run_wrk(warm_up).await?;
    let result = run_wrk(measured).await?;
    log(format!(
        "round {round} wrk {}: {:.0} req/s, p99 {} ms, {} errors",
        workload.label(),
        result.requests_per_second(),
        report::ms(result.p99_us),
        result.errors()
    ));
    Ok(result)
}

/// Warm-up (discarded), then the measured pgbench run.
async fn measure_db(
    options: &Options,
    workload: Workload,
    round: usize,
    measured: PgbenchRunOwned,
) -> Result<pgbench::PgbenchResult, BenchError> {
    let warm_up = PgbenchRunOwned {
        duration: options.warmup,
        log_dir: None,
        ..measured.clone()
    };
    blocking(move || warm_up.run()).await?;
    let result = blocking(move || measured.run()).await?;
    log(format!(
        "round {round} pgbench {}: {:.0} tps, p99 {} ms, {} failed",
        workload.label(),
        result.tps,
        report::ms(result.p99_us),
        result.failed
    ));
    Ok(result)
}

/// pgbench variables shared by every run; `base` is added by each run as it starts.
fn pgbench_defines(id_min: i64, id_max: i64, slice: u64) -> Vec<(String, String)> {
    [
        ("owner", SUBJECT.to_string()),
        ("id_min", id_min.to_string()),
        ("id_max", id_max.to_string()),
        ("slice", slice.to_string()),
        ("clients", CONNECTIONS.to_string()),
        ("n", "0".to_string()),
        ("title", "renamed by pgbench".to_string()),
        ("content", "created by the benchmark".to_string()),
        ("due_date", "2031-06-15".to_string()),
        ("done_false", "false".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn run_wrk(run: WrkRun<'_>) -> Result<wrk::WrkResult, BenchError> {
    // wrk is a child process; block a worker of its own so the runtime stays responsive.
    tokio::task::block_in_place(|| run.run())
}

/// pgbench runs on the blocking pool, so it owns its inputs.
#[derive(Clone)]
struct PgbenchRunOwned {
    database_url: String,
    scripts: Vec<(PathBuf, u32)>,
    duration: Duration,
    defines: Vec<(String, String)>,
    log_dir: Option<PathBuf>,
}

impl PgbenchRunOwned {
    /// `base`, the first PUT timestamp, is the wall clock as the run starts: newer than every
    /// write of earlier runs (a warm-up included), so that every PUT applies, as wrk's do.
    fn run(self) -> Result<pgbench::PgbenchResult, BenchError> {
        let mut defines = self.defines;
        defines.push((
            "base".to_owned(),
            chrono::Utc::now().timestamp_micros().to_string(),
        ));
        PgbenchRun {
            database_url: &self.database_url,
            scripts: &self.scripts,
            clients: CONNECTIONS,
            threads: THREADS,
            duration: self.duration,
            defines: &defines,
            log_dir: self.log_dir.as_deref(),
        }
        .run()
    }
}

fn merge_env(
    mut base: Vec<(String, String)>,
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    for (key, value) in overrides {
        base.retain(|(existing, _)| existing != key);
        base.push((key.clone(), value.clone()));
    }
    base
}

/// The seeded ids as an integer range, which pgbench draws from; refuses gaps, because
/// pgbench would then read missing rows (cheaper) where the API reads real ones.
fn integer_id_range(ids: &[String]) -> Result<(i64, i64), BenchError> {
    let numbers: Result<Vec<i64>, _> = ids.iter().map(|id| id.parse::<i64>()).collect();
    let numbers = numbers.map_err(|_| BenchError::Seed("ids are not integers".into()))?;
    let (min, max) = match (numbers.iter().min(), numbers.iter().max()) {
        (Some(min), Some(max)) => (*min, *max),
        _ => return Err(BenchError::Seed("no ids".into())),
    };
    if (max - min + 1) as usize != numbers.len() {
        return Err(BenchError::Seed(format!(
            "seeded ids {min}..={max} have gaps ({} ids)",
            numbers.len()
        )));
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_range_requires_contiguous_integers() {
        let ids: Vec<String> = (5..=9).map(|i| i.to_string()).collect();
        assert_eq!(integer_id_range(&ids).unwrap(), (5, 9));
        let gap = vec!["1".to_string(), "3".to_string()];
        assert!(integer_id_range(&gap).is_err());
        assert!(integer_id_range(&["x".to_string()]).is_err());
        assert!(integer_id_range(&[]).is_err());
    }

    #[test]
    fn quick_shortens_everything() {
        let default = Options::parse(Vec::<String>::new()).unwrap();
        assert_eq!(
            (default.warmup.as_secs(), default.measured.as_secs()),
            (2, 10)
        );
        assert_eq!(default.seeds, 10_000);
        let quick = Options::parse(vec!["--quick".to_string()]).unwrap();
        assert!(quick.measured < default.measured && quick.seeds < default.seeds);
        assert!(Options::parse(vec!["--bogus".to_string()]).is_err());
        assert!(Options::parse(vec!["--db-max-connections".to_string()]).is_err());
    }

    #[test]
    fn only_and_env_options() {
        let args = ["--only", "put,get", "--env", "TASK_API_LOG_LEVEL=warn"];
        let options = Options::parse(args.map(String::from)).unwrap();
        assert_eq!(options.workloads, vec![Workload::Put, Workload::Get]);
        let env = merge_env(
            vec![("TASK_API_LOG_LEVEL".into(), "info".into())],
            &options.replica_env,
        );
        assert_eq!(env, vec![("TASK_API_LOG_LEVEL".into(), "warn".into())]);
        assert!(Options::parse(["--only", "delete"].map(String::from)).is_err());
        assert!(Options::parse(["--env", "NOEQUALS"].map(String::from)).is_err());
    }
}
