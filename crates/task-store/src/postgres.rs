//! [`TaskRows`] on PostgreSQL through tokio-postgres, with requests pipelined.
//!
//! A small, fixed set of connections is shared by all requests. A read goes to the connection
//! with the fewest writes in flight, then the fewest reads (a statement behind a write waits
//! for that commit's WAL flush), and is written behind the statements already in flight there
//! without waiting for them. A write takes a connection that has no other write in flight,
//! waiting in line for one if need be: each commit then waits for one WAL flush, never for a
//! queue of them on an unlucky connection, and the connections' commits still share flushes.
//! Pipelining is what the extended protocol allows: each statement keeps its own Sync, so
//! each commits or fails on its own. A backend then
//! finds its next statement already in its socket buffer instead of sleeping between
//! statements, which is what makes the database do several times more work per CPU second
//! than one-statement-per-connection pools (docs/performance.md).
//!
//! Every connection has a keeper task that opens it, replaces it when it breaks (with
//! exponential backoff and jitter, in the background: a request never waits for a connect)
//! and renews it when it reaches its lifetime (the new one opens before the old one is let
//! go). Requests go only to open connections; with none open they fail at once with
//! [`StoreError::Unavailable`]. Every statement has a deadline: a statement that does not
//! answer in time (a silent network, a stuck server) fails, and its connection is dropped
//! and replaced. Reads queue at most [`MAX_READS_PER_CONNECTION`] deep per connection,
//! writes wait at most the acquire timeout for a connection without a write. TCP keepalives
//! and a TCP user timeout bound what the kernel waits for.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use rand::Rng;
use sea_orm::{DbErr, ProxyDatabaseTrait, ProxyExecResult, ProxyRow, Value};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::postgres_url::Target;
use crate::{DatabaseUrl, PoolStats, StoreError, StoreSettings, error_chain, is_unavailable_error};

/// Statements queued on one connection beyond which a read is refused (503) rather than
/// queued: the pipeline then holds a bounded amount of work, whatever the request rate.
pub const MAX_READS_PER_CONNECTION: usize = 256;
/// The kernel gives up on a connection whose sent data stays unacknowledged this long.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections are probed after this long, then every [`KEEPALIVE_INTERVAL`], and
/// dropped after [`KEEPALIVE_RETRIES`] unanswered probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;
/// Reconnect backoff: the first retry after about this long, doubling up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

struct Connection {
    id: u64,
    client: Client,
    /// Statements prepared on this connection with their SQL text: the store's own when it
    /// opens, any other the first time it runs here. A list, searched by comparing texts
    /// (length first): for the store's couple of dozen statements that is cheaper than
    /// hashing a statement's whole text on every request.
    prepared: Mutex<Vec<(String, Statement)>>,
    /// The task that drives the socket: aborting it closes the connection at once and fails
    /// every statement still in flight on it.
    driver: AbortHandle,
    /// When the keeper replaces it with a fresh one.
    renew_at: Instant,
}

/// One connection of the pool and the statements now in flight on it.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Connection>>>,
    /// A connection is installed and not known to be broken: only such slots get requests.
    open: AtomicBool,
    /// Wakes the keeper: the connection closed or was found broken.
    changed: Notify,
    reads: AtomicUsize,
    writes: AtomicUsize,
}

/// Whether a statement commits a change: a commit holds the statements behind it on its
/// connection until the WAL is flushed, a read only for its own execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl Slot {
    fn live(&self) -> Option<Arc<Connection>> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|connection| !connection.client.is_closed())
            .cloned()
    }

    fn counter(&self, access: Access) -> &AtomicUsize {
        match access {
            Access::Read => &self.reads,
            Access::Write => &self.writes,
        }
    }

    /// Statements in flight, writes first (the order in which a connection is avoided), or
    /// `None` when the slot has no open connection.
    fn load(&self) -> Option<(usize, usize)> {
        self.open.load(Ordering::Acquire).then(|| {
            (
                self.writes.load(Ordering::Relaxed),
                self.reads.load(Ordering::Relaxed),
            )
        })
    }

    fn install(&self, connection: Connection) {
        let previous = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Arc::new(connection));
        self.open.store(true, Ordering::Release);
        // The previous connection (a renewal) finishes what is in flight on it and closes
        // when the last statement lets go of it.
        drop(previous);
    }

    /// Takes connection `id` out of service (if it is still this slot's) and closes it.
    fn retire(&self, id: u64) {
        let retired = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            match current.as_ref() {
                Some(connection) if connection.id == id => {
                    self.open.store(false, Ordering::Release);
                    current.take()
                }
                _ => None,
            }
        };
        if let Some(connection) = retired {
            connection.driver.abort();
            self.changed.notify_one();
        }
    }

    fn retire_current(&self) {
        let id = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|connection| connection.id);
        if let Some(id) = id {
            self.retire(id);
        }
    }
}

/// Counts a statement as in flight on its slot until dropped (also when the request is
/// abandoned half-way); a write's end lets the next waiting write in.
struct InFlight<'a> {
    slot: &'a Slot,
    access: Access,
    write_freed: &'a Notify,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.slot
            .counter(self.access)
            .fetch_sub(1, Ordering::Relaxed);
        if self.access == Access::Write {
            self.write_freed.notify_one();
        }
    }
}

/// A statement's place on a connection.
struct Lease<'a> {
    in_flight: InFlight<'a>,
    connection: Arc<Connection>,
}

/// What the keepers and the requests share.
struct Shared {
    url: DatabaseUrl,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    max_lifetime: Duration,
    slots: Box<[Arc<Slot>]>,
    next: AtomicUsize,
    /// Notified when a write ends or a connection opens.
    write_freed: Notify,
    closed: AtomicBool,
    ids: AtomicU64,
    /// The SQL every connection prepares when it opens.
    preload: Box<[String]>,
}

pub struct PipelinedPostgres {
    shared: Arc<Shared>,
    keepers: Mutex<Vec<AbortHandle>>,
}

impl PipelinedPostgres {
    /// Opens the first connection (so that a wrong URL, a refused certificate or an
    /// unreachable database fails at start-up), then the keepers open the others.
    /// `preload`: the statements each connection prepares as it opens (sent together: one
    /// round trip's wait for all of them).
    pub async fn connect(
        settings: &StoreSettings,
        preload: Vec<String>,
    ) -> Result<Self, StoreError> {
        let connections = settings.max_connections.max(1) as usize;
        let shared = Arc::new(Shared {
            url: settings.url.clone(),
            connect_timeout: settings.acquire_timeout,
            acquire_timeout: settings.acquire_timeout,
            statement_timeout: settings.statement_timeout,
            max_lifetime: settings.max_lifetime,
            slots: (0..connections).map(|_| Arc::default()).collect(),
            next: AtomicUsize::new(0),
            write_freed: Notify::new(),
            closed: AtomicBool::new(false),
            ids: AtomicU64::new(0),
            preload: preload.into(),
        });
        let first = shared.open(&shared.slots[0]).await?;
        shared.slots[0].install(first);
        let keepers = (0..connections)
            .map(|index| tokio::spawn(keep(shared.clone(), index)).abort_handle())
            .collect();
        Ok(Self {
            shared,
            keepers: Mutex::new(keepers),
        })
    }

    /// A place for one statement on an open connection (see the module documentation).
    async fn acquire(&self, access: Access) -> Result<Lease<'_>, StoreError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::unavailable("the store is closed"));
        }
        let in_flight = match access {
            Access::Read => {
                let index = self.least_busy().ok_or_else(no_connection)?;
                let slot = &*shared.slots[index];
                if slot.reads.fetch_add(1, Ordering::Relaxed) >= MAX_READS_PER_CONNECTION {
                    slot.reads.fetch_sub(1, Ordering::Relaxed);
                    return Err(StoreError::unavailable(format!(
                        "every open connection has {MAX_READS_PER_CONNECTION} statements queued"
                    )));
                }
                InFlight {
                    slot,
                    access,
                    write_freed: &shared.write_freed,
                }
            }
            Access::Write => {
                let deadline = Instant::now() + shared.acquire_timeout;
                loop {
                    let mut freed = pin!(shared.write_freed.notified());
                    freed.as_mut().enable();
                    match self.claim_write() {
                        Claim::Claimed(slot) => {
                            break InFlight {
                                slot,
                                access,
                                write_freed: &shared.write_freed,
                            };
                        }
                        Claim::NoConnection => return Err(no_connection()),
                        Claim::AllBusy => {}
                    }
                    tokio::time::timeout_at(deadline, freed)
                        .await
                        .map_err(|_| {
                            StoreError::unavailable(format!(
                                "no database connection free for a write within {:?}",
                                shared.acquire_timeout
                            ))
                        })?;
                }
            }
        };
        let connection = in_flight.slot.live().ok_or_else(no_connection)?;
        Ok(Lease {
            in_flight,
            connection,
        })
    }

    /// An open connection without a write in flight, claimed for a write. Two writers may
    /// see the same one free, so the claim is a compare-and-swap.
    fn claim_write(&self) -> Claim<'_> {
        for _ in 0..self.shared.slots.len() {
            let Some(index) = self.least_busy() else {
                return Claim::NoConnection;
            };
            let slot = &*self.shared.slots[index];
            if slot
                .writes
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Claim::Claimed(slot);
            }
            // The least busy open connection has a write, so all of them have one (or a
            // concurrent writer took it: look again).
        }
        Claim::AllBusy
    }

    /// The open slot with the fewest writes, then reads, in flight; ties rotate.
    fn least_busy(&self) -> Option<usize> {
        let start = self.shared.next.fetch_add(1, Ordering::Relaxed);
        least_busy(self.shared.slots.len(), start, |index| {
            self.shared.slots[index].load()
        })
    }

    /// Runs one statement on `lease` within the statement deadline. A statement that fails
    /// because the connection is unusable, or does not answer in time, takes the connection
    /// out of service (its keeper opens a new one).
    async fn run<T>(
        &self,
        lease: &Lease<'_>,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        let connection = &lease.connection;
        let error = match tokio::time::timeout(self.shared.statement_timeout, statement).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => classify(error, connection.client.is_closed()),
            Err(_) => StoreError::unavailable(format!(
                "no answer from the database within {:?}; the connection is replaced",
                self.shared.statement_timeout
            )),
        };
        if error.is_unavailable() {
            lease.in_flight.slot.retire(connection.id);
        }
        Err(error)
    }

    /// The statement prepared on `lease`'s connection for `sql`, preparing it there first if
    /// this connection has not seen it yet.
    async fn prepared(&self, lease: &Lease<'_>, sql: &str) -> Result<Statement, StoreError> {
        let connection = &lease.connection;
        let known = connection
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(text, _)| text == sql)
            .map(|(_, statement)| statement.clone());
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.run(lease, connection.client.prepare(sql)).await?;
        connection
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((sql.to_owned(), statement.clone()));
        Ok(statement)
    }

    /// Runs one statement sea-orm built: a read (`SELECT`) is pipelined behind the
    /// statements in flight, anything else is a write (see the module documentation).
    async fn query(&self, statement: &sea_orm::Statement) -> Result<Vec<Row>, StoreError> {
        let access = if statement.sql.starts_with("SELECT") {
            Access::Read
        } else {
            Access::Write
        };
        let lease = self.acquire(access).await?;
        let prepared = self.prepared(&lease, &statement.sql).await?;
        let values = statement
            .values
            .as_ref()
            .map_or(&[][..], |values| &values.0);
        let binds: Vec<Bind<'_>> = values.iter().map(Bind).collect();
        let params: Vec<&(dyn ToSql + Sync)> = binds
            .iter()
            .map(|bind| bind as &(dyn ToSql + Sync))
            .collect();
        self.run(&lease, lease.connection.client.query(&prepared, &params))
            .await
    }

    async fn select_one(&self) -> Result<(), StoreError> {
        let lease = self.acquire(Access::Read).await?;
        self.run(&lease, lease.connection.client.simple_query("SELECT 1"))
            .await?;
        Ok(())
    }

    /// The database name of the URL at start-up (the spans' `db.namespace`).
    pub fn database_name(&self) -> Option<String> {
        let url = self.shared.url.read().ok()?;
        let target = Target::parse(url.expose_secret()).ok()?;
        target.config.get_dbname().map(str::to_owned)
    }

    /// The connection sea-orm drives (`Database::connect_proxy`).
    pub fn proxy(self: &Arc<Self>) -> PostgresProxy {
        PostgresProxy(self.clone())
    }

    pub fn pool_stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            open: 0,
            busy: 0,
            max: u32::try_from(self.shared.slots.len()).unwrap_or(u32::MAX),
        };
        for slot in &self.shared.slots {
            if let Some(load) = slot.load() {
                stats.open += 1;
                if load != (0, 0) {
                    stats.busy += 1;
                }
            }
        }
        stats
    }

    /// Stops the keepers (no reconnect after this) and closes every connection.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.stop_keepers();
        for slot in &self.shared.slots {
            slot.retire_current();
        }
        self.shared.write_freed.notify_waiters();
    }

    fn stop_keepers(&self) {
        for keeper in self
            .keepers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            keeper.abort();
        }
    }
}

impl Drop for PipelinedPostgres {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.stop_keepers();
        for slot in &self.shared.slots {
            slot.retire_current();
        }
    }
}

enum Claim<'a> {
    Claimed(&'a Slot),
    AllBusy,
    NoConnection,
}

fn no_connection() -> StoreError {
    StoreError::unavailable("no open database connection (reconnecting in the background)")
}

impl Shared {
    /// Opens a connection with the URL as it is now (a file is read again: rotated
    /// credentials), within the connect timeout.
    async fn open(&self, slot: &Arc<Slot>) -> Result<Connection, StoreError> {
        let url = self.url.read()?;
        let target = Target::parse(url.expose_secret())?;
        let tls = MakeRustlsConnect::new(target.tls_config()?);
        let mut config = target.config;
        tune(&mut config, self.connect_timeout);
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let opening = async {
            let (client, connection) = config.connect(tls).await.map_err(|error| {
                StoreError::unavailable_by("cannot connect to the database", error)
            })?;
            let slot = slot.clone();
            let driver = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(error = %error_chain(&error), "database connection closed");
                }
                slot.retire(id);
            })
            .abort_handle();
            let aborts = AbortOnDrop(Some(driver));
            let prepared = prepare(&client, &self.preload).await.map_err(|error| {
                StoreError::unavailable_by("cannot prepare the statements", error)
            })?;
            let jitter = rand::rng().random_range(0.9..=1.0);
            Ok(Connection {
                id,
                client,
                prepared: Mutex::new(prepared),
                driver: aborts.disarm(),
                renew_at: Instant::now() + self.max_lifetime.mul_f64(jitter),
            })
        };
        match tokio::time::timeout(self.connect_timeout, opening).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::unavailable(format!(
                "no database connection within {:?}",
                self.connect_timeout
            ))),
        }
    }
}

/// Aborts the connection's driver unless the connection was completed.
struct AbortOnDrop(Option<AbortHandle>);

impl AbortOnDrop {
    fn disarm(mut self) -> AbortHandle {
        self.0.take().expect("disarmed once")
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(driver) = self.0.take() {
            driver.abort();
        }
    }
}

/// Timeouts and keepalives on every connection, whatever the URL says.
fn tune(config: &mut tokio_postgres::Config, connect_timeout: Duration) {
    config
        .connect_timeout(connect_timeout)
        .tcp_user_timeout(TCP_USER_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES);
    if config.get_application_name().is_none() {
        config.application_name("task-api");
    }
}

async fn prepare(
    client: &Client,
    preload: &[String],
) -> Result<Vec<(String, Statement)>, tokio_postgres::Error> {
    // Sent back to back: one round trip's wait for all of them.
    let prepared =
        futures::future::try_join_all(preload.iter().map(|sql| client.prepare(sql))).await?;
    Ok(preload.iter().cloned().zip(prepared).collect())
}

/// Checks that the server at `target` accepts a connection under the service's TLS rules
/// (before the migrator, which uses sqlx's, connects).
pub async fn probe(target: &Target) -> Result<(), StoreError> {
    let tls = MakeRustlsConnect::new(target.tls_config()?);
    let mut config = target.config.clone();
    tune(&mut config, Duration::from_secs(10));
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|error| StoreError::unavailable_by("cannot connect to the database", error))?;
    let driver = tokio::spawn(connection);
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(1), driver).await;
    Ok(())
}

/// The keeper of slot `index`: opens its connection, replaces it when it breaks (backoff
/// with jitter between failed attempts), renews it at the end of its lifetime (new first;
/// a failed renewal keeps the old one). Stops when the store is closed (aborted).
async fn keep(shared: Arc<Shared>, index: usize) {
    let slot = shared.slots[index].clone();
    let mut failures: u32 = 0;
    let mut retry_at: Option<Instant> = None;
    loop {
        let mut changed = pin!(slot.changed.notified());
        changed.as_mut().enable();
        let current = slot.live();
        if let Some(connection) = &current {
            let due = retry_at.map_or(connection.renew_at, |at| at.max(connection.renew_at));
            tokio::select! {
                () = &mut changed => continue,
                () = tokio::time::sleep_until(due) => {}
            }
        } else {
            slot.retire_current();
            if let Some(at) = retry_at {
                tokio::time::sleep_until(at).await;
            }
        }
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        match shared.open(&slot).await {
            Ok(connection) => {
                if failures > 0 {
                    tracing::info!(slot = index, failures, "database connection open again");
                }
                failures = 0;
                retry_at = None;
                slot.install(connection);
                shared.write_freed.notify_waiters();
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let backoff = backoff(failures);
                // One line per outage and connection; the retries are debug.
                if failures == 1 {
                    tracing::warn!(
                        slot = index,
                        error = %error_chain(&error),
                        retry_in = ?backoff,
                        "cannot open a database connection; retrying in the background"
                    );
                } else {
                    tracing::debug!(slot = index, failures, error = %error_chain(&error), "reconnect failed");
                }
                retry_at = Some(Instant::now() + backoff);
            }
        }
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so that the
/// keepers of many replicas do not reconnect in step.
fn backoff(failures: u32) -> Duration {
    let exponential = BACKOFF_BASE.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let delay = exponential.min(BACKOFF_MAX);
    delay / 2 + delay.mul_f64(rand::rng().random_range(0.0..0.5))
}

/// The index of the smallest load among the slots that have one (open ones), searching from
/// `start` (modulo the length) so that ties rotate over the slots instead of always picking
/// the first.
fn least_busy<K: Ord + Default>(
    count: usize,
    start: usize,
    load: impl Fn(usize) -> Option<K>,
) -> Option<usize> {
    let mut best: Option<(K, usize)> = None;
    for offset in 0..count {
        let index = (start + offset) % count;
        let Some(current) = load(index) else { continue };
        if best.as_ref().is_none_or(|(least, _)| current < *least) {
            let idle = current == K::default();
            best = Some((current, index));
            if idle {
                break;
            }
        }
    }
    best.map(|(_, index)| index)
}

/// Whether a statement's failure means "the database is not usable now" (503) or "this
/// statement is wrong" (500): the store's one classifier ([`is_unavailable_error`]), and any
/// failure without a SQLSTATE that left the connection closed.
fn classify(error: tokio_postgres::Error, connection_closed: bool) -> StoreError {
    if is_unavailable_error(&error) || (connection_closed && error.code().is_none()) {
        StoreError::unavailable_by("statement failed", error)
    } else {
        StoreError::database_by("statement failed", error)
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        classify(error, false)
    }
}

/// A sea-query value as a tokio-postgres parameter. The server's type for the placeholder
/// (inferred when the statement was prepared) is checked by the value's own `ToSql`.
#[derive(Debug)]
struct Bind<'a>(&'a Value);

impl ToSql for Bind<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql_checked(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Bool(value) => value.to_sql_checked(ty, out),
            Value::BigInt(value) => value.to_sql_checked(ty, out),
            Value::Int(value) => value.to_sql_checked(ty, out),
            Value::String(value) => value.as_deref().map(String::as_str).to_sql_checked(ty, out),
            Value::ChronoDate(value) => value.as_deref().to_sql_checked(ty, out),
            other => Err(format!("no PostgreSQL binding for the value {other:?}").into()),
        }
    }
}

/// A row as sea-orm's proxy takes it: values by column name.
fn proxy_row(row: &Row) -> Result<ProxyRow, StoreError> {
    let decoding = |error| StoreError::database_by("cannot decode a row", error);
    let mut values = BTreeMap::new();
    for (index, column) in row.columns().iter().enumerate() {
        let value = match *column.type_() {
            Type::INT8 => Value::BigInt(row.try_get(index).map_err(decoding)?),
            Type::INT4 => Value::Int(row.try_get(index).map_err(decoding)?),
            Type::BOOL => Value::Bool(row.try_get(index).map_err(decoding)?),
            Type::TEXT | Type::VARCHAR => Value::String(
                row.try_get::<_, Option<String>>(index)
                    .map_err(decoding)?
                    .map(Box::new),
            ),
            Type::DATE => Value::ChronoDate(
                row.try_get::<_, Option<NaiveDate>>(index)
                    .map_err(decoding)?
                    .map(Box::new),
            ),
            ref other => {
                return Err(StoreError::database(format!(
                    "column {} has the unsupported type {other}",
                    column.name()
                )));
            }
        };
        values.insert(column.name().to_owned(), value);
    }
    Ok(ProxyRow::new(values))
}

/// sea-orm's connection onto the pipelined pool. Failures reach sea-orm as a [`DbErr`] that
/// carries the [`StoreError`] (with its source) unchanged: see [`StoreError::into_db_err`].
#[derive(Clone)]
pub struct PostgresProxy(Arc<PipelinedPostgres>);

impl std::fmt::Debug for PostgresProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProxy")
            .field("connections", &self.0.shared.slots.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ProxyDatabaseTrait for PostgresProxy {
    async fn query(&self, statement: sea_orm::Statement) -> Result<Vec<ProxyRow>, DbErr> {
        let rows = self
            .0
            .query(&statement)
            .await
            .map_err(StoreError::into_db_err)?;
        rows.iter()
            .map(proxy_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::into_db_err)
    }

    async fn execute(&self, statement: sea_orm::Statement) -> Result<ProxyExecResult, DbErr> {
        let rows = self
            .0
            .query(&statement)
            .await
            .map_err(StoreError::into_db_err)?;
        Ok(ProxyExecResult::new(0, rows.len() as u64))
    }

    async fn ping(&self) -> Result<(), DbErr> {
        self.0.select_one().await.map_err(StoreError::into_db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_busy_slot_wins_and_ties_rotate() {
        let pick =
            |loads: [usize; 3], start| least_busy(3, start, |index| Some(loads[index])).unwrap();
        assert_eq!(pick([3, 1, 2], 0), 1);
        assert_eq!(pick([3, 1, 2], 2), 1);
        assert_eq!(pick([0, 0, 0], 0), 0);
        assert_eq!(pick([0, 0, 0], 4), 1);
        assert_eq!(pick([1, 0, 0], 0), 1);
        assert_eq!(pick([1, 0, 0], 2), 2);
        assert_eq!(pick([2, 2, 2], 1), 1);
        // Writes in flight weigh before reads: a read does not queue behind a commit.
        let pick =
            |loads: [(usize, usize); 3]| least_busy(3, 0, |index| Some(loads[index])).unwrap();
        assert_eq!(pick([(1, 0), (0, 3), (1, 1)]), 1);
        assert_eq!(pick([(2, 0), (1, 5), (1, 2)]), 2);
    }

    #[test]
    fn a_slot_without_an_open_connection_is_never_picked() {
        // Slot 0 cannot connect: its zero load must not make it "the least busy".
        let loads = [None, Some(5), Some(3)];
        for start in 0..3 {
            assert_eq!(least_busy(3, start, |index| loads[index]), Some(2));
        }
        assert_eq!(least_busy::<usize>(2, 0, |_| None), None);
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        for failures in 1..40 {
            let delay = backoff(failures);
            let cap = BACKOFF_BASE
                .saturating_mul(1 << (failures - 1).min(16))
                .min(BACKOFF_MAX);
            assert!(delay >= cap / 2 && delay <= cap, "{failures}: {delay:?}");
        }
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }
}
