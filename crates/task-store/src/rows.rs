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

#[cfg(test)]
mod tests {
    //! The retry branch: a PUT or DELETE on an id whose creation commits between the
    //! conditional write (which did not see the row yet) and the read that classifies it.
    //! Task ids come from the database, so a client can only guess one ahead of its creation,
    //! but nothing stops it, and both backends then see exactly this sequence. The fake
    //! plays that sequence, which no real database produces on demand.

    use std::sync::Mutex;

    use chrono::NaiveDate;
    use task_domain::FieldStamps;

    use super::*;

    /// A task created at `created_ts`, never written since.
    fn created(created_ts: i64) -> TaskState {
        TaskState {
            id: 7,
            title: "t".into(),
            content: String::new(),
            due_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            done: false,
            created_ts,
            stamps: FieldStamps {
                title: created_ts,
                content: created_ts,
                due_date: created_ts,
                done: created_ts,
            },
            deleted_ts: None,
        }
    }

    /// Writes miss the row until `writes_before_row` writes have run, as if it were created
    /// meanwhile; the classifying read always sees it.
    struct CreatedMeanwhile {
        writes_before_row: usize,
        writes: Mutex<usize>,
    }

    impl CreatedMeanwhile {
        fn new(writes_before_row: usize) -> Self {
            Self {
                writes_before_row,
                writes: Mutex::new(0),
            }
        }

        /// Counts a write; true once the row exists for it.
        fn write_sees_row(&self) -> bool {
            let mut writes = self.writes.lock().unwrap();
            *writes += 1;
            *writes > self.writes_before_row
        }

        fn writes(&self) -> usize {
            *self.writes.lock().unwrap()
        }
    }

    #[async_trait]
    impl TaskRows for CreatedMeanwhile {
        async fn insert(
            &self,
            _: &str,
            _: &ValidCreate,
            _: Option<&Idempotency>,
        ) -> Result<Option<TaskState>, StoreError> {
            unreachable!("not part of the flow under test")
        }
        async fn by_idempotency_key(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<(TaskState, Option<String>)>, StoreError> {
            unreachable!("not part of the flow under test")
        }
        async fn live_task(&self, _: &str, _: i64) -> Result<Option<TaskState>, StoreError> {
            unreachable!("not part of the flow under test")
        }
        async fn task_state(&self, _: &str, _: i64) -> Result<Option<TaskState>, StoreError> {
            Ok(Some(created(100)))
        }
        async fn list(&self, _: &str, _: Page) -> Result<Vec<TaskState>, StoreError> {
            unreachable!("not part of the flow under test")
        }
        async fn update(
            &self,
            _: &str,
            _: i64,
            patch: &TaskPatch,
            at: i64,
        ) -> Result<Option<TaskState>, StoreError> {
            Ok(self.write_sees_row().then(|| {
                let mut state = created(100);
                state.title = patch.title.clone().unwrap();
                state.stamps.title = at;
                state
            }))
        }
        async fn delete(&self, _: &str, _: i64, _: i64) -> Result<bool, StoreError> {
            Ok(self.write_sees_row())
        }
        async fn select_one(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn pool_stats(&self) -> PoolStats {
            PoolStats {
                open: 0,
                busy: 0,
                max: 0,
            }
        }
        async fn close(&self) {}
    }

    fn rename() -> TaskPatch {
        TaskPatch {
            title: Some("renamed".into()),
            ..TaskPatch::default()
        }
    }

    #[tokio::test]
    async fn a_put_that_raced_with_the_creation_is_written_again() {
        let store = OrderedStore(CreatedMeanwhile::new(1));
        let task = store.update("alice", 7, &rename(), 200).await.unwrap();
        assert_eq!((task.title.as_str(), task.updated_at), ("renamed", 200));
        assert_eq!(store.0.writes(), 2);
    }

    #[tokio::test]
    async fn a_delete_that_raced_with_the_creation_is_written_again() {
        let store = OrderedStore(CreatedMeanwhile::new(1));
        store.delete("alice", 7, 200).await.unwrap();
        assert_eq!(store.0.writes(), 2);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let store = OrderedStore(CreatedMeanwhile::new(usize::MAX));
        assert!(matches!(
            store.update("alice", 7, &rename(), 200).await,
            Err(StoreError::Database { .. })
        ));
        assert!(matches!(
            store.delete("alice", 7, 200).await,
            Err(StoreError::Database { .. })
        ));
        assert_eq!(store.0.writes(), 2 * CLASSIFY_ATTEMPTS);
    }
}
