//! [`TaskRows`] on PostgreSQL through tokio-postgres, with requests pipelined and concurrent
//! writes committed together.
//!
//! A small, fixed set of connections is shared by all requests, split by what they carry:
//! a quarter of them (at least one) take reads, the others writes; a pool of one connection
//! uses it for both.
//!
//! - **Reads** go to the read connection with the fewest statements in flight and are written
//!   behind the statements already in flight there without waiting for them. Few connections
//!   with deep pipelines are what make the database cheapest per statement: a backend finds
//!   its next statement already in its socket buffer instead of sleeping between statements
//!   (64 concurrent GETs: API/DB 48 % over 16 mixed connections, 74 % over 4;
//!   docs/performance.md). With every read connection down, reads use the write connections.
//! - **Writes** wait in one queue. Each write connection has a writer that takes the first
//!   write in the queue and, behind it, whatever else is waiting (at most
//!   [`MAX_WRITES_PER_TRANSACTION`]), and sends them as one pipelined transaction
//!   (`BEGIN`, the statements, `COMMIT`): one round trip, one commit, one WAL flush for all of
//!   them. Every write is answered only once that commit is durable. A statement that fails
//!   rolls the transaction back, and then each of its writes runs again on its own (still
//!   pipelined, each its own commit), so a failing write fails only its own request. A write
//!   that finds the queue empty runs alone at once: batching costs no latency when there is
//!   nothing to batch. The statements are single-row and conditional (ordering by
//!   per-field timestamps, idempotency by `ON CONFLICT`), so running several in one
//!   transaction gives each the outcome it would have on its own.
//!
//! Every connection has a keeper task that opens it, replaces it when it breaks (with
//! exponential backoff and jitter, in the background: a request never waits for a connect)
//! and renews it when it reaches its lifetime (the new one opens before the old one is let
//! go). Requests go only to open connections; with none open they fail at once with
//! [`StoreError::Unavailable`]. Every statement (and every transaction of writes) has a
//! deadline: one that does not answer in time (a silent network, a stuck server) fails, and
//! its connection is dropped and replaced. Reads queue at most [`MAX_READS_PER_CONNECTION`]
//! deep per connection, writes at most [`MAX_QUEUED_WRITES_PER_CONNECTION`] per write
//! connection and for at most the acquire timeout. TCP keepalives and a TCP user timeout
//! bound what the kernel waits for.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Range;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use futures::future::{join_all, join3};
use rand::Rng;
use sea_orm::{DbErr, ProxyDatabaseTrait, ProxyExecResult, ProxyRow, Value};
use secrecy::ExposeSecret;
use tokio::sync::{Notify, oneshot};
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
/// Writes committed in one transaction at most: enough to take what 64 concurrent clients
/// leave queued behind a dozen writers, small enough that a transaction holds few row locks.
pub const MAX_WRITES_PER_TRANSACTION: usize = 16;
/// Writes waiting for a writer, per write connection, beyond which a write is refused (503).
pub const MAX_QUEUED_WRITES_PER_CONNECTION: usize = 256;
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
    /// Wakes the slot's writer: a connection was installed.
    opened: Notify,
    reads: AtomicUsize,
    /// Transactions of writes in flight (0 or 1: one writer per slot).
    writes: AtomicUsize,
}

impl Slot {
    fn live(&self) -> Option<Arc<Connection>> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|connection| !connection.client.is_closed())
            .cloned()
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Statements in flight, writes first (the order in which a connection is avoided), or
    /// `None` when the slot has no open connection.
    fn load(&self) -> Option<(usize, usize)> {
        self.is_open().then(|| {
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
        self.opened.notify_waiters();
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

/// Counts a statement or transaction as in flight on its slot until dropped (also when the
/// request or the writer is abandoned half-way).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn count(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A read's place on a connection.
struct ReadLease<'a> {
    _in_flight: InFlight<'a>,
    slot: &'a Slot,
    connection: Arc<Connection>,
}

/// A write waiting in the queue for a writer.
struct QueuedWrite {
    statement: sea_orm::Statement,
    /// Past this the write is answered 503 instead of run: it waited the acquire timeout.
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<Row>, StoreError>>,
}

/// What became of a transaction of several writes.
enum Together {
    /// Committed: the rows of each write, in order.
    Committed(Vec<Vec<Row>>),
    /// `BEGIN` failed, so each statement ran as its own transaction: its own result.
    Separately(Vec<Result<Vec<Row>, StoreError>>),
    /// A statement (or the commit) failed and the transaction was rolled back: nothing of it
    /// is written, and each write may run again on its own.
    RolledBack,
    /// The connection failed or did not answer in time: the outcome is unknown.
    Unavailable(String),
}

/// What the keepers, the writers and the requests share.
struct Shared {
    url: DatabaseUrl,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    max_lifetime: Duration,
    slots: Box<[Arc<Slot>]>,
    /// The slots whose connections take reads, and those that take writes (the same one
    /// slot in a pool of one).
    read_slots: Range<usize>,
    write_slots: Range<usize>,
    next: AtomicUsize,
    write_queue: flume::Sender<QueuedWrite>,
    /// The writers' end of the queue, kept here to answer what is still queued at close.
    queued_writes: flume::Receiver<QueuedWrite>,
    closed: AtomicBool,
    ids: AtomicU64,
    /// The SQL every connection prepares when it opens.
    preload: Box<[String]>,
}

pub struct PipelinedPostgres {
    shared: Arc<Shared>,
    /// The keeper of every slot and the writer of every write slot.
    tasks: Mutex<Vec<AbortHandle>>,
}

/// The slots of `connections` that take reads and those that take writes: a quarter (at
/// least one) and the rest, or the one slot for both.
fn roles(connections: usize) -> (Range<usize>, Range<usize>) {
    if connections < 2 {
        (0..connections, 0..connections)
    } else {
        let readers = (connections / 4).max(1);
        (0..readers, readers..connections)
    }
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
        let (read_slots, write_slots) = roles(connections);
        let (write_queue, queued_writes) =
            flume::bounded(MAX_QUEUED_WRITES_PER_CONNECTION * write_slots.len());
        let shared = Arc::new(Shared {
            url: settings.url.clone(),
            connect_timeout: settings.acquire_timeout,
            acquire_timeout: settings.acquire_timeout,
            statement_timeout: settings.statement_timeout,
            max_lifetime: settings.max_lifetime,
            slots: (0..connections).map(|_| Arc::default()).collect(),
            read_slots,
            write_slots: write_slots.clone(),
            next: AtomicUsize::new(0),
            write_queue,
            queued_writes: queued_writes.clone(),
            closed: AtomicBool::new(false),
            ids: AtomicU64::new(0),
            preload: preload.into(),
        });
        // The first connection takes writes (reads fall back to it until theirs open).
        let first_slot = &shared.slots[write_slots.start];
        let first = shared.open(first_slot).await?;
        first_slot.install(first);
        let keepers = (0..connections).map(|index| tokio::spawn(keep(shared.clone(), index)));
        let writers = write_slots.map(|index| {
            tokio::spawn(write_transactions(
                shared.clone(),
                index,
                queued_writes.clone(),
            ))
        });
        let tasks = keepers
            .chain(writers)
            .map(|task| task.abort_handle())
            .collect();
        Ok(Self {
            shared,
            tasks: Mutex::new(tasks),
        })
    }

    /// A place for one read on an open connection (see the module documentation).
    fn acquire_read(&self) -> Result<ReadLease<'_>, StoreError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::unavailable("the store is closed"));
        }
        let index = shared
            .least_busy(shared.read_slots.clone())
            .or_else(|| shared.least_busy(shared.all_slots()))
            .ok_or_else(no_connection)?;
        let slot = &*shared.slots[index];
        let in_flight = InFlight::count(&slot.reads);
        if slot.reads.load(Ordering::Relaxed) > MAX_READS_PER_CONNECTION {
            return Err(StoreError::unavailable(format!(
                "every open connection has {MAX_READS_PER_CONNECTION} statements queued"
            )));
        }
        let connection = slot.live().ok_or_else(no_connection)?;
        Ok(ReadLease {
            _in_flight: in_flight,
            slot,
            connection,
        })
    }

    /// Runs one statement sea-orm built: a read (`SELECT`) is pipelined behind the
    /// statements in flight on a read connection, anything else is a write, queued for a
    /// writer (see the module documentation).
    async fn query(&self, statement: sea_orm::Statement) -> Result<Vec<Row>, StoreError> {
        if statement.sql.starts_with("SELECT") {
            let lease = self.acquire_read()?;
            self.shared
                .execute(lease.slot, &lease.connection, &statement)
                .await
        } else {
            self.write(statement).await
        }
    }

    /// Queues a write and waits for its writer's answer.
    async fn write(&self, statement: sea_orm::Statement) -> Result<Vec<Row>, StoreError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::unavailable("the store is closed"));
        }
        if !shared.slots[shared.write_slots.clone()]
            .iter()
            .any(|slot| slot.is_open())
        {
            // Every write connection is down (their keepers are reconnecting): the write
            // runs on its own on an open read connection, as reads use the write
            // connections when theirs are down. A replica that answers reads answers writes.
            let (slot, connection) = shared.any_open().ok_or_else(no_connection)?;
            let _in_flight = InFlight::count(&slot.writes);
            return shared.execute(slot, &connection, &statement).await;
        }
        let (reply, answer) = oneshot::channel();
        let queued = QueuedWrite {
            statement,
            deadline: Instant::now() + shared.acquire_timeout,
            reply,
        };
        shared.write_queue.try_send(queued).map_err(|_| {
            StoreError::unavailable(format!(
                "{} writes are already waiting for a database connection",
                shared.write_queue.capacity().unwrap_or_default()
            ))
        })?;
        // A writer answers within the acquire timeout (queued) plus the statement timeout
        // (its transaction); this bound only matters if no writer ever takes the write.
        let limit = shared.acquire_timeout + shared.statement_timeout;
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::unavailable(
                "the store closed before the write ran",
            )),
            Err(_) => Err(StoreError::unavailable(format!(
                "no answer to a write within {limit:?}"
            ))),
        }
    }

    async fn select_one(&self) -> Result<(), StoreError> {
        let lease = self.acquire_read()?;
        self.shared
            .run(
                lease.slot,
                &lease.connection,
                lease.connection.client.simple_query("SELECT 1"),
            )
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

    /// Stops the keepers and writers (no reconnect after this), closes every connection and
    /// answers the writes still queued.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        for slot in &self.shared.slots {
            slot.retire_current();
        }
        for queued in self.shared.queued_writes.drain() {
            let _ = queued
                .reply
                .send(Err(StoreError::unavailable("the store is closed")));
        }
    }
}

impl Drop for PipelinedPostgres {
    fn drop(&mut self) {
        self.close();
    }
}

fn no_connection() -> StoreError {
    StoreError::unavailable("no open database connection (reconnecting in the background)")
}

/// The values of a statement sea-orm built, as tokio-postgres parameters.
fn binds(statement: &sea_orm::Statement) -> Vec<Bind<'_>> {
    statement
        .values
        .as_ref()
        .map_or(&[][..], |values| &values.0)
        .iter()
        .map(Bind)
        .collect()
}

fn params<'a>(binds: &'a [Bind<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    binds
        .iter()
        .map(|bind| bind as &(dyn ToSql + Sync))
        .collect()
}

/// The writer of write slot `index`: takes the first queued write and whatever else is
/// waiting behind it, and commits them together (see the module documentation). Waits while
/// its slot has no open connection. Stops when the store is closed (aborted).
async fn write_transactions(
    shared: Arc<Shared>,
    index: usize,
    queue: flume::Receiver<QueuedWrite>,
) {
    let slot = shared.slots[index].clone();
    loop {
        let mut opened = pin!(slot.opened.notified());
        opened.as_mut().enable();
        if slot.live().is_none() {
            opened.await;
            continue;
        }
        let Ok(first) = queue.recv_async().await else {
            return;
        };
        let now = Instant::now();
        let mut batch = Vec::with_capacity(MAX_WRITES_PER_TRANSACTION);
        for queued in std::iter::once(first).chain(queue.try_iter()) {
            if queued.reply.is_closed() {
                // The request is gone (it timed out or its client left): nothing to answer.
                continue;
            }
            if queued.deadline <= now {
                let _ = queued.reply.send(Err(StoreError::unavailable(format!(
                    "no database connection free for a write within {:?}",
                    shared.acquire_timeout
                ))));
                continue;
            }
            batch.push(queued);
            if batch.len() == MAX_WRITES_PER_TRANSACTION {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        // A writer that was waiting for the queue when its connection broke may still take
        // writes: they go to another open connection rather than fail.
        let target = match slot.live() {
            Some(connection) => Some((&*slot, connection)),
            None => shared.any_open(),
        };
        let Some((target, connection)) = target else {
            for queued in batch {
                let _ = queued.reply.send(Err(no_connection()));
            }
            continue;
        };
        let _in_flight = InFlight::count(&target.writes);
        shared.commit(target, &connection, batch).await;
    }
}

impl Shared {
    /// The open slot of `range` with the fewest writes, then reads, in flight; ties rotate.
    fn least_busy(&self, range: Range<usize>) -> Option<usize> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        least_busy(range.len(), start, |offset| {
            self.slots[range.start + offset].load()
        })
        .map(|offset| range.start + offset)
    }

    fn all_slots(&self) -> Range<usize> {
        0..self.slots.len()
    }

    /// The least busy open connection of any role: where a read goes when every read
    /// connection is down, and a write when every write connection is.
    fn any_open(&self) -> Option<(&Slot, Arc<Connection>)> {
        let slot = &*self.slots[self.least_busy(self.all_slots())?];
        slot.live().map(|connection| (slot, connection))
    }

    /// Runs `batch` on `connection` and answers each of its writes.
    async fn commit(&self, slot: &Slot, connection: &Connection, batch: Vec<QueuedWrite>) {
        let together = if batch.len() > 1 {
            match self.commit_together(slot, connection, &batch).await {
                Together::Committed(rows) => Some(rows.into_iter().map(Ok).collect()),
                Together::Separately(results) => Some(results),
                Together::Unavailable(cause) => Some(
                    batch
                        .iter()
                        .map(|_| Err(StoreError::unavailable(cause.clone())))
                        .collect(),
                ),
                Together::RolledBack => None,
            }
        } else {
            None
        };
        let answers = match together {
            Some(answers) => answers,
            // One write, or a transaction that one of them made fail: each commits or fails
            // on its own (pipelined: sent together, answered in order).
            None => {
                join_all(
                    batch
                        .iter()
                        .map(|queued| self.execute(slot, connection, &queued.statement)),
                )
                .await
            }
        };
        for (queued, answer) in batch.into_iter().zip(answers) {
            let _ = queued.reply.send(answer);
        }
    }

    /// `BEGIN`, the statements of `batch` and `COMMIT`, sent back to back on `connection`.
    async fn commit_together(
        &self,
        slot: &Slot,
        connection: &Connection,
        batch: &[QueuedWrite],
    ) -> Together {
        let mut statements = Vec::with_capacity(batch.len());
        for queued in batch {
            match self.prepared(slot, connection, &queued.statement.sql).await {
                Ok(statement) => statements.push(statement),
                // Each write on its own then reports its own failure.
                Err(_) => return Together::RolledBack,
            }
        }
        let binds: Vec<_> = batch
            .iter()
            .map(|queued| binds(&queued.statement))
            .collect();
        let params: Vec<_> = binds.iter().map(|binds| params(binds)).collect();
        let client = &connection.client;
        // tokio-postgres sends a request when its future is first polled, and join3 and
        // join_all poll in order: the transaction goes out as one pipeline.
        let transaction = join3(
            client.batch_execute("BEGIN"),
            join_all(
                statements
                    .iter()
                    .zip(&params)
                    .map(|(statement, params)| client.query(statement, params)),
            ),
            client.batch_execute("COMMIT"),
        );
        // Within the statement deadline, like any statement (a transaction that does not
        // answer in time retires its connection).
        let (begin, results, commit) = match self
            .run(slot, connection, async { Ok(transaction.await) })
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => return Together::Unavailable(error_chain(&error)),
        };
        let closed = client.is_closed();
        // A failure that leaves the connection unusable retires it: the outcome is unknown.
        let outage = |error| {
            let error = classify(error, closed);
            error.is_unavailable().then(|| {
                slot.retire(connection.id);
                error_chain(&error)
            })
        };
        if let Err(error) = begin {
            if let Some(cause) = outage(error) {
                return Together::Unavailable(cause);
            }
            // Outside a transaction each statement ran, and committed, on its own.
            return Together::Separately(
                results
                    .into_iter()
                    .map(|result| result.map_err(|error| classify(error, closed)))
                    .collect(),
            );
        }
        let mut rows = Vec::with_capacity(results.len());
        let mut failed = None;
        for result in results {
            match result {
                Ok(result_rows) => rows.push(result_rows),
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        match failed.or(commit.err()) {
            None => Together::Committed(rows),
            Some(error) => outage(error).map_or(Together::RolledBack, Together::Unavailable),
        }
    }

    /// Runs one statement on `connection` within the statement deadline. A statement that
    /// fails because the connection is unusable, or does not answer in time, takes the
    /// connection out of service (its keeper opens a new one).
    async fn run<T>(
        &self,
        slot: &Slot,
        connection: &Connection,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        let error = match tokio::time::timeout(self.statement_timeout, statement).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => classify(error, connection.client.is_closed()),
            Err(_) => StoreError::unavailable(format!(
                "no answer from the database within {:?}; the connection is replaced",
                self.statement_timeout
            )),
        };
        if error.is_unavailable() {
            slot.retire(connection.id);
        }
        Err(error)
    }

    /// The statement prepared on `connection` for `sql`, preparing it there first if this
    /// connection has not seen it yet.
    async fn prepared(
        &self,
        slot: &Slot,
        connection: &Connection,
        sql: &str,
    ) -> Result<Statement, StoreError> {
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
        let statement = self
            .run(slot, connection, connection.client.prepare(sql))
            .await?;
        connection
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((sql.to_owned(), statement.clone()));
        Ok(statement)
    }

    /// One statement sea-orm built, as its own transaction.
    async fn execute(
        &self,
        slot: &Slot,
        connection: &Connection,
        statement: &sea_orm::Statement,
    ) -> Result<Vec<Row>, StoreError> {
        let prepared = self.prepared(slot, connection, &statement.sql).await?;
        let binds = binds(statement);
        self.run(
            slot,
            connection,
            connection.client.query(&prepared, &params(&binds)),
        )
        .await
    }

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
            .query(statement)
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
            .query(statement)
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
    fn a_quarter_of_the_connections_take_reads_and_one_connection_takes_both() {
        let readers = |connections| roles(connections).0.len();
        assert_eq!(readers(1), 1);
        assert_eq!(readers(2), 1);
        assert_eq!(readers(7), 1);
        assert_eq!(readers(8), 2);
        assert_eq!(readers(16), 4);
        assert_eq!(roles(1), (0..1, 0..1));
        assert_eq!(roles(16), (0..4, 4..16));
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
