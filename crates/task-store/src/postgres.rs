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
//! A connection that breaks is replaced by the next request that lands on it; while the
//! database is unreachable every statement fails at once with [`StoreError::Unavailable`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use task_domain::{FieldStamps, TaskPatch, TaskState, ValidCreate};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::rows::TaskRows;
use crate::{Idempotency, Page, PoolStats, StoreError, StoreSettings, is_unavailable_code, sql};

/// The hot-path statements, prepared once per connection.
struct Prepared {
    insert: Statement,
    by_idempotency_key: Statement,
    live_task: Statement,
    task_state: Statement,
    list: Statement,
    update: Statement,
    delete: Statement,
}

struct Connection {
    client: Client,
    prepared: Prepared,
}

/// One connection of the pool and the statements now in flight on it.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while (re)connecting, so that one request connects and the others wait for it.
    connecting: tokio::sync::Mutex<()>,
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

    /// Statements in flight, writes first: the order in which a connection is avoided.
    fn load(&self) -> (usize, usize) {
        (
            self.writes.load(Ordering::Relaxed),
            self.reads.load(Ordering::Relaxed),
        )
    }

    fn set(&self, connection: Option<Arc<Connection>>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = connection;
    }
}

/// Counts a statement as in flight on its slot until dropped (also when the request is
/// abandoned half-way), and holds a write's turn.
struct InFlight<'a> {
    slot: &'a Slot,
    access: Access,
    _write_turn: Option<SemaphorePermit<'a>>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.slot
            .counter(self.access)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// A statement's place on a connection.
struct Lease<'a> {
    _in_flight: InFlight<'a>,
    connection: Arc<Connection>,
}

pub struct PipelinedPostgres {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    acquire_timeout: Duration,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    /// One permit per connection: a write holds one while in flight (FIFO when all are taken).
    write_turns: Semaphore,
}

impl PipelinedPostgres {
    /// Parses the URL and opens the first connection (so that a wrong URL or an unreachable
    /// database fails at start-up); the others open on first use.
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = settings
            .url
            .parse()
            .map_err(|error| StoreError::Database(format!("invalid database URL: {error}")))?;
        config
            .connect_timeout(settings.acquire_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("task-api");
        }
        let connections = settings.max_connections.max(1) as usize;
        let slots = (0..connections).map(|_| Slot::default()).collect();
        let store = Self {
            config,
            tls: MakeRustlsConnect::new(tls_config()),
            acquire_timeout: settings.acquire_timeout,
            slots,
            next: AtomicUsize::new(0),
            write_turns: Semaphore::new(connections),
        };
        store.acquire(Access::Read).await?;
        Ok(store)
    }

    /// A place for one statement (see the module documentation), on a connection opened
    /// first if it is not open. A write waits at most the acquire timeout for its turn.
    async fn acquire(&self, access: Access) -> Result<Lease<'_>, StoreError> {
        let in_flight = match access {
            Access::Read => {
                let slot = &self.slots[self.least_busy()];
                slot.reads.fetch_add(1, Ordering::Relaxed);
                InFlight {
                    slot,
                    access,
                    _write_turn: None,
                }
            }
            Access::Write => {
                let turn = tokio::time::timeout(self.acquire_timeout, self.write_turns.acquire())
                    .await
                    .map_err(|_| {
                        StoreError::Unavailable(format!(
                            "no database connection free for a write within {:?}",
                            self.acquire_timeout
                        ))
                    })?
                    .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
                // A turn guarantees a connection without a write; two writers may see the
                // same one free, so the claim is a compare-and-swap.
                let slot = loop {
                    let slot = &self.slots[self.least_busy()];
                    if slot
                        .writes
                        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        break slot;
                    }
                    tokio::task::yield_now().await;
                };
                InFlight {
                    slot,
                    access,
                    _write_turn: Some(turn),
                }
            }
        };
        let connection = match in_flight.slot.live() {
            Some(connection) => connection,
            None => self.reconnect(in_flight.slot).await?,
        };
        Ok(Lease {
            _in_flight: in_flight,
            connection,
        })
    }

    /// The slot with the fewest writes, then reads, in flight; ties rotate.
    fn least_busy(&self) -> usize {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        least_busy(self.slots.len(), start, |index| self.slots[index].load())
    }

    async fn reconnect(&self, slot: &Slot) -> Result<Arc<Connection>, StoreError> {
        let _connecting = slot.connecting.lock().await;
        if let Some(connection) = slot.live() {
            return Ok(connection);
        }
        slot.set(None);
        let opened = tokio::time::timeout(self.acquire_timeout, self.open()).await;
        let connection = match opened {
            Ok(result) => Arc::new(result?),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "no database connection within {:?}",
                    self.acquire_timeout
                )));
            }
        };
        slot.set(Some(connection.clone()));
        Ok(connection)
    }

    async fn open(&self) -> Result<Connection, StoreError> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "database connection closed");
            }
        });
        // Sent back to back: one round trip's wait for all seven.
        let (insert, by_idempotency_key, live_task, task_state, list, update, delete) = tokio::try_join!(
            client.prepare(sql::INSERT_TASK),
            client.prepare(sql::SELECT_BY_IDEMPOTENCY_KEY),
            client.prepare(sql::SELECT_LIVE_TASK),
            client.prepare(sql::SELECT_TASK_STATE),
            client.prepare(sql::LIST_LIVE_TASKS),
            client.prepare(sql::UPDATE_TASK),
            client.prepare(sql::DELETE_TASK),
        )?;
        Ok(Connection {
            client,
            prepared: Prepared {
                insert,
                by_idempotency_key,
                live_task,
                task_state,
                list,
                update,
                delete,
            },
        })
    }

    async fn query_opt(
        &self,
        access: Access,
        statement: impl Fn(&Prepared) -> &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let lease = self.acquire(access).await?;
        let connection = &lease.connection;
        Ok(connection
            .client
            .query_opt(statement(&connection.prepared), params)
            .await?)
    }
}

/// The index of the smallest load, searching from `start` (modulo the length) so that ties
/// rotate over the slots instead of always picking the first.
fn least_busy<K: Ord + Default>(count: usize, start: usize, load: impl Fn(usize) -> K) -> usize {
    let mut best: Option<(K, usize)> = None;
    for offset in 0..count {
        let index = (start + offset) % count;
        let current = load(index);
        if best.as_ref().is_none_or(|(least, _)| current < *least) {
            let idle = current == K::default();
            best = Some((current, index));
            if idle {
                break;
            }
        }
    }
    best.map_or(0, |(_, index)| index)
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        let text = match error.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => match std::error::Error::source(&error) {
                Some(source) => format!("{error}: {source}"),
                None => error.to_string(),
            },
        };
        if is_unavailable(&error) {
            StoreError::Unavailable(text)
        } else {
            StoreError::Database(text)
        }
    }
}

/// Failures on the wire, by tokio-postgres' description of their kind (the kind itself is
/// private): I/O, TLS, a connection cut mid-message, closed, refused, timed out.
const WIRE_FAILURES: &[&str] = &[
    "error communicating with the server",
    "unexpected message from server",
    "error performing TLS handshake",
    "connection closed",
    "error parsing response from server",
    "error connecting to server",
    "timeout waiting for server",
];

/// Errors that mean "the database is not reachable now" rather than "this statement is
/// wrong": a closed or broken connection, or the server refusing work while it shuts down,
/// starts up or has no connection slot left.
fn is_unavailable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => is_unavailable_code(code.code()),
        None => WIRE_FAILURES.contains(&error.to_string().as_str()),
    }
}

fn decode(row: &Row) -> Result<TaskState, StoreError> {
    Ok(TaskState {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        content: row.try_get(2)?,
        due_date: row.try_get::<_, NaiveDate>(3)?,
        done: row.try_get(4)?,
        created_ts: row.try_get(5)?,
        stamps: FieldStamps {
            title: row.try_get(6)?,
            content: row.try_get(7)?,
            due_date: row.try_get(8)?,
            done: row.try_get(9)?,
        },
        deleted_ts: row.try_get(10)?,
    })
}

#[async_trait]
impl TaskRows for PipelinedPostgres {
    async fn insert(
        &self,
        owner: &str,
        create: &ValidCreate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<TaskState>, StoreError> {
        let key = idempotency.map(|i| i.key.as_str());
        let fingerprint = idempotency.map(|i| i.fingerprint.as_str());
        let row = self
            .query_opt(
                Access::Write,
                |p| &p.insert,
                &[
                    &owner,
                    &create.title,
                    &create.content,
                    &create.due_date,
                    &create.done,
                    &create.timestamp,
                    &key,
                    &fingerprint,
                ],
            )
            .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn by_idempotency_key(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<(TaskState, Option<String>)>, StoreError> {
        let row = self
            .query_opt(Access::Read, |p| &p.by_idempotency_key, &[&owner, &key])
            .await?;
        let Some(row) = row else { return Ok(None) };
        let fingerprint: Option<String> = row.try_get(11)?;
        Ok(Some((decode(&row)?, fingerprint)))
    }

    async fn live_task(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError> {
        let row = self
            .query_opt(Access::Read, |p| &p.live_task, &[&id, &owner])
            .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn task_state(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError> {
        let row = self
            .query_opt(Access::Read, |p| &p.task_state, &[&id, &owner])
            .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn list(&self, owner: &str, page: Page) -> Result<Vec<TaskState>, StoreError> {
        let lease = self.acquire(Access::Read).await?;
        let connection = &lease.connection;
        let limit = i64::from(page.limit);
        let rows = connection
            .client
            .query(&connection.prepared.list, &[&owner, &page.after, &limit])
            .await?;
        rows.iter().map(decode).collect()
    }

    async fn update(
        &self,
        owner: &str,
        id: i64,
        patch: &TaskPatch,
        at: i64,
    ) -> Result<Option<TaskState>, StoreError> {
        let row = self
            .query_opt(
                Access::Write,
                |p| &p.update,
                &[
                    &id,
                    &owner,
                    &at,
                    &patch.title,
                    &patch.content,
                    &patch.due_date,
                    &patch.done,
                ],
            )
            .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn delete(&self, owner: &str, id: i64, at: i64) -> Result<bool, StoreError> {
        let row = self
            .query_opt(Access::Write, |p| &p.delete, &[&id, &owner, &at])
            .await?;
        Ok(row.is_some())
    }

    async fn select_one(&self) -> Result<(), StoreError> {
        let lease = self.acquire(Access::Read).await?;
        lease.connection.client.simple_query("SELECT 1").await?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            open: 0,
            busy: 0,
            max: u32::try_from(self.slots.len()).unwrap_or(u32::MAX),
        };
        for slot in &self.slots {
            if slot.live().is_some() {
                stats.open += 1;
                if slot.load() != (0, 0) {
                    stats.busy += 1;
                }
            }
        }
        stats
    }

    async fn close(&self) {
        self.write_turns.close();
        for slot in &self.slots {
            slot.set(None);
        }
    }
}

/// TLS as libpq's `sslmode=prefer` and `require` define it: the connection is encrypted, and
/// the server certificate is not checked against a CA (those modes never do; the network
/// path to the database is what the NetworkPolicy and security groups protect). Signatures in
/// the handshake are still verified, so the session keys belong to whoever holds the
/// certificate's key.
fn tls_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_busy_slot_wins_and_ties_rotate() {
        let pick = |loads: [usize; 3], start| least_busy(3, start, |index| loads[index]);
        assert_eq!(pick([3, 1, 2], 0), 1);
        assert_eq!(pick([3, 1, 2], 2), 1);
        assert_eq!(pick([0, 0, 0], 0), 0);
        assert_eq!(pick([0, 0, 0], 4), 1);
        assert_eq!(pick([1, 0, 0], 0), 1);
        assert_eq!(pick([1, 0, 0], 2), 2);
        assert_eq!(pick([2, 2, 2], 1), 1);
        // Writes in flight weigh before reads: a read does not queue behind a commit.
        let pick = |loads: [(usize, usize); 3]| least_busy(3, 0, |index| loads[index]);
        assert_eq!(pick([(1, 0), (0, 3), (1, 1)]), 1);
        assert_eq!(pick([(2, 0), (1, 5), (1, 2)]), 2);
    }
}
