//! The ordering flow of every write, written once over [`TaskRows`]: one method per statement
//! of [`crate::statements`], implemented by [`crate::sea::SeaOrmRows`] for both backends. The flow decides what a statement that did
//! not apply means (404, 409 or "write again") with the pure rules of `task_domain`.

use std::time::Duration;

use async_trait::async_trait;
use task_domain::{
    DeleteDecision, Task, TaskPatch, TaskState, UpdateDecision, ValidCreate, decide_delete,
    decide_update,
};

use crate::{Created, Idempotency, Page, PoolStats, StoreError, TaskStore};

/// The statements of [`crate::statements`] on one connection. Each method is one round trip.
#[async_trait]
pub trait TaskRows: Send + Sync + 'static {
    /// `insert`: the new row, or `None` when the idempotency key already exists.
    async fn insert(
        &self,
        owner: &str,
        create: &ValidCreate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<TaskState>, StoreError>;
    /// `by_idempotency_key`: the row and the fingerprint of the request that created it.
    async fn by_idempotency_key(
        &self,
        owner: &str,
        key: &str,
    ) -> Result<Option<(TaskState, Option<String>)>, StoreError>;
    /// `live_task`.
    async fn live_task(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError>;
    /// `task_state` (tombstones included).
    async fn task_state(&self, owner: &str, id: i64) -> Result<Option<TaskState>, StoreError>;
    /// `list`.
    async fn list(&self, owner: &str, page: Page) -> Result<Vec<TaskState>, StoreError>;
    /// `update`: the merged row, or `None` when nothing applied.
    async fn update(
        &self,
        owner: &str,
        id: i64,
        patch: &TaskPatch,
        at: i64,
    ) -> Result<Option<TaskState>, StoreError>;
    /// `delete`: whether the task was tombstoned.
    async fn delete(&self, owner: &str, id: i64, at: i64) -> Result<bool, StoreError>;
    /// `SELECT 1` (the caller bounds how long it may take).
    async fn select_one(&self) -> Result<(), StoreError>;
    fn pool_stats(&self) -> PoolStats;
    async fn close(&self);
}

/// How often a write whose outcome raced with a concurrent creation is retried.
const CLASSIFY_ATTEMPTS: usize = 3;

/// A [`TaskStore`] on any [`TaskRows`].
pub struct OrderedStore<R>(pub R);

fn live(state: TaskState) -> Result<Task, StoreError> {
    state.into_task().ok_or(StoreError::NotFound)
}

#[async_trait]
impl<R: TaskRows> TaskStore for OrderedStore<R> {
    async fn create(
        &self,
        owner: &str,
        create: &ValidCreate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        if let Some(state) = self.0.insert(owner, create, idempotency).await? {
            return Ok(Created {
                task: live(state)?,
                replayed: false,
            });
        }
        // Only a conflicting Idempotency-Key suppresses the insert; the row that holds the
        // key is committed (ON CONFLICT waited for it), so this read finds it.
        let idempotency = idempotency.ok_or_else(|| {
            StoreError::database("insert without idempotency key returned no row")
        })?;
        let (existing, fingerprint) = self
            .0
            .by_idempotency_key(owner, &idempotency.key)
            .await?
            .ok_or_else(|| StoreError::database("idempotency key vanished"))?;
        if fingerprint.as_deref() != Some(idempotency.fingerprint.as_str()) {
            return Err(StoreError::IdempotencyConflict);
        }
        // A replay answers like the creation did, with the task's current values. Once the
        // task is deleted the replayed creation is older than the deletion, so it is stale
        // like any other request older than the deletion: announcing `201` and a `Location`
        // that answers 404 would tell the client something that is no longer true.
        Ok(Created {
            task: existing.into_task().ok_or(StoreError::Stale)?,
            replayed: true,
        })
    }

    async fn get(&self, owner: &str, id: i64) -> Result<Task, StoreError> {
        live(
            self.0
                .live_task(owner, id)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn list(&self, owner: &str, page: Page) -> Result<Vec<Task>, StoreError> {
        self.0
            .list(owner, page)
            .await?
            .into_iter()
            .map(live)
            .collect()
    }

    async fn update(
        &self,
        owner: &str,
        id: i64,
        patch: &TaskPatch,
        at: i64,
    ) -> Result<Task, StoreError> {
        for _ in 0..CLASSIFY_ATTEMPTS {
            if let Some(state) = self.0.update(owner, id, patch, at).await? {
                return live(state);
            }
            // Nothing applied. A write that did not apply changes nothing, so it can be
            // answered from any later state: classify it against the current row. Should
            // that row now accept it (the task was created meanwhile), write again.
            let state = self.0.task_state(owner, id).await?;
            match decide_update(state.as_ref(), patch.fields(), at) {
                UpdateDecision::Stale => return Err(StoreError::Stale),
                UpdateDecision::NotFound => return Err(StoreError::NotFound),
                UpdateDecision::Apply(_) => continue,
            }
        }
        Err(StoreError::database(
            "update kept racing with concurrent writes",
        ))
    }

    async fn delete(&self, owner: &str, id: i64, at: i64) -> Result<(), StoreError> {
        for _ in 0..CLASSIFY_ATTEMPTS {
            if self.0.delete(owner, id, at).await? {
                return Ok(());
            }
            let state = self.0.task_state(owner, id).await?;
            match decide_delete(state.as_ref(), at) {
                DeleteDecision::Stale => return Err(StoreError::Stale),
                DeleteDecision::NotFound => return Err(StoreError::NotFound),
                DeleteDecision::Delete => continue,
            }
        }
        Err(StoreError::database(
            "delete kept racing with concurrent writes",
        ))
    }

    async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(timeout, self.0.select_one()).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::unavailable(format!(
                "SELECT 1 did not answer within {timeout:?}"
            ))),
        }
    }

    fn pool_stats(&self) -> PoolStats {
        self.0.pool_stats()
    }

    async fn close(&self) {
        self.0.close().await;
    }
}
