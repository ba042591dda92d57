//! The ordering rules of `request_timestamp`, as pure functions over a task's full state.
//!
//! Every field remembers the timestamp of its last write; a write lands only if it is strictly
//! newer. A delete leaves a tombstone with its timestamp. Because each decision depends only on
//! the stored timestamps and the request's own, and every accepted write only moves timestamps
//! forward, applying any set of requests in any order ends in the state of applying them in
//! timestamp order.

use chrono::NaiveDate;

use crate::requests::{FieldSet, TaskPatch, ValidCreate};
use crate::time::Micros;

/// When each field was last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldStamps {
    pub title: Micros,
    pub content: Micros,
    pub due_date: Micros,
    pub done: Micros,
}

impl FieldStamps {
    fn all(at: Micros) -> Self {
        Self {
            title: at,
            content: at,
            due_date: at,
            done: at,
        }
    }

    /// The newest field write: a task's `updated_at`.
    pub fn newest(&self) -> Micros {
        self.title
            .max(self.content)
            .max(self.due_date)
            .max(self.done)
    }

    /// The requested fields that a write at `at` would change.
    fn newer_than(&self, requested: FieldSet, at: Micros) -> FieldSet {
        FieldSet {
            title: requested.title && at > self.title,
            content: requested.content && at > self.content,
            due_date: requested.due_date && at > self.due_date,
            done: requested.done && at > self.done,
        }
    }
}

/// Everything stored about a task, including its ordering metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub id: i64,
    pub title: String,
    pub content: String,
    pub due_date: NaiveDate,
    pub done: bool,
    pub created_ts: Micros,
    pub stamps: FieldStamps,
    /// Set once, by the delete that removed the task.
    pub deleted_ts: Option<Micros>,
}

/// What a PUT does to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateDecision {
    /// Writes these fields (never empty) -> 200.
    Apply(FieldSet),
    /// Older than the creation, than the delete, or than every requested field -> 409.
    Stale,
    /// Unknown, foreign, or deleted before this request -> 404.
    NotFound,
}

/// What a DELETE does to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteDecision {
    /// Removes the task for good -> 200.
    Delete,
    /// Not newer than the creation, or not newer than an earlier delete -> 409.
    Stale,
    /// Unknown, foreign, or deleted before this request -> 404.
    NotFound,
}

/// Decides a PUT of `requested` fields at `at` against the task's current state
/// (`None`: no such task for this owner).
pub fn decide_update(state: Option<&TaskState>, requested: FieldSet, at: Micros) -> UpdateDecision {
    let Some(state) = state else {
        return UpdateDecision::NotFound;
    };
    match state.deleted_ts {
        Some(deleted) if at <= deleted => return UpdateDecision::Stale,
        Some(_) => return UpdateDecision::NotFound,
        None => {}
    }
    if at <= state.created_ts {
        return UpdateDecision::Stale;
    }
    let written = state.stamps.newer_than(requested, at);
    if written.is_empty() {
        UpdateDecision::Stale
    } else {
        UpdateDecision::Apply(written)
    }
}

/// Decides a DELETE at `at` against the task's current state.
pub fn decide_delete(state: Option<&TaskState>, at: Micros) -> DeleteDecision {
    let Some(state) = state else {
        return DeleteDecision::NotFound;
    };
    match state.deleted_ts {
        Some(deleted) if at <= deleted => DeleteDecision::Stale,
        Some(_) => DeleteDecision::NotFound,
        None if at <= state.created_ts => DeleteDecision::Stale,
        None => DeleteDecision::Delete,
    }
}

impl TaskState {
    /// The state right after a creation.
    pub fn created(id: i64, create: &ValidCreate) -> Self {
        Self {
            id,
            title: create.title.clone(),
            content: create.content.clone(),
            due_date: create.due_date,
            done: create.done,
            created_ts: create.timestamp,
            stamps: FieldStamps::all(create.timestamp),
            deleted_ts: None,
        }
    }

    /// Applies a PUT according to [`decide_update`]; returns the decision.
    pub fn apply_update(&mut self, patch: &TaskPatch, at: Micros) -> UpdateDecision {
        let decision = decide_update(Some(self), patch.fields(), at);
        if let UpdateDecision::Apply(written) = decision {
            if written.title {
                self.title
                    .clone_from(patch.title.as_ref().expect("requested"));
                self.stamps.title = at;
            }
            if written.content {
                self.content
                    .clone_from(patch.content.as_ref().expect("requested"));
                self.stamps.content = at;
            }
            if written.due_date {
                self.due_date = patch.due_date.expect("requested");
                self.stamps.due_date = at;
            }
            if written.done {
                self.done = patch.done.expect("requested");
                self.stamps.done = at;
            }
        }
        decision
    }

    /// Applies a DELETE according to [`decide_delete`]; returns the decision.
    pub fn apply_delete(&mut self, at: Micros) -> DeleteDecision {
        let decision = decide_delete(Some(self), at);
        if decision == DeleteDecision::Delete {
            self.deleted_ts = Some(at);
        }
        decision
    }

    pub fn is_live(&self) -> bool {
        self.deleted_ts.is_none()
    }

    /// The client-visible task, if it is live.
    pub fn to_task(&self) -> Option<crate::Task> {
        self.clone().into_task()
    }

    /// [`TaskState::to_task`] without copying the text fields.
    pub fn into_task(self) -> Option<crate::Task> {
        if !self.is_live() {
            return None;
        }
        let updated_at = self.stamps.newest();
        Some(crate::Task {
            id: self.id,
            title: self.title,
            content: self.content,
            due_date: self.due_date,
            done: self.done,
            created_at: self.created_ts,
            updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    const CREATED: Micros = 1_000;

    fn task() -> TaskState {
        TaskState::created(
            7,
            &ValidCreate {
                title: "t0".into(),
                content: "c0".into(),
                due_date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                done: false,
                timestamp: CREATED,
            },
        )
    }

    fn title(text: &str) -> TaskPatch {
        TaskPatch {
            title: Some(text.into()),
            ..TaskPatch::default()
        }
    }

    #[test]
    fn a_newer_put_writes_and_an_older_one_is_stale() {
        let mut state = task();
        assert!(matches!(
            state.apply_update(&title("t2"), 2_000),
            UpdateDecision::Apply(_)
        ));
        assert_eq!(
            state.apply_update(&title("t1"), 1_500),
            UpdateDecision::Stale
        );
        assert_eq!(
            state.apply_update(&title("same instant"), 2_000),
            UpdateDecision::Stale
        );
        assert_eq!(state.title, "t2");
        assert_eq!(state.stamps.title, 2_000);
        assert_eq!(state.to_task().unwrap().updated_at, 2_000);
    }

    #[test]
    fn a_put_writes_only_its_fields_that_are_newer() {
        let mut state = task();
        state.apply_update(
            &TaskPatch {
                content: Some("c3".into()),
                ..TaskPatch::default()
            },
            3_000,
        );
        let both = TaskPatch {
            title: Some("t2".into()),
            content: Some("c2".into()),
            ..TaskPatch::default()
        };
        assert_eq!(
            state.apply_update(&both, 2_000),
            UpdateDecision::Apply(FieldSet {
                title: true,
                ..FieldSet::default()
            })
        );
        assert_eq!((state.title.as_str(), state.content.as_str()), ("t2", "c3"));
        assert_eq!(state.to_task().unwrap().updated_at, 3_000);
    }

    #[test]
    fn nothing_at_or_before_creation_applies() {
        let mut state = task();
        assert_eq!(
            state.apply_update(&title("x"), CREATED),
            UpdateDecision::Stale
        );
        assert_eq!(state.apply_update(&title("x"), 10), UpdateDecision::Stale);
        assert_eq!(state.apply_delete(CREATED), DeleteDecision::Stale);
        assert!(state.is_live());
    }

    #[test]
    fn a_delete_wins_over_earlier_and_later_puts_and_sets_the_tombstone() {
        let mut state = task();
        state.apply_update(&title("later"), 5_000);
        assert_eq!(state.apply_delete(2_000), DeleteDecision::Delete);
        assert_eq!(state.deleted_ts, Some(2_000));
        assert_eq!(state.to_task(), None);
        assert_eq!(state.clone().into_task(), None);
        assert_eq!(
            state.apply_update(&title("x"), 1_999),
            UpdateDecision::Stale
        );
        assert_eq!(
            state.apply_update(&title("x"), 2_000),
            UpdateDecision::Stale
        );
        assert_eq!(
            state.apply_update(&title("x"), 9_000),
            UpdateDecision::NotFound
        );
        assert_eq!(state.apply_delete(1_500), DeleteDecision::Stale);
        assert_eq!(state.apply_delete(9_000), DeleteDecision::NotFound);
        assert_eq!(state.deleted_ts, Some(2_000));
    }

    #[test]
    fn unknown_tasks_are_not_found() {
        assert_eq!(
            decide_update(None, title("x").fields(), 5),
            UpdateDecision::NotFound
        );
        assert_eq!(decide_delete(None, 5), DeleteDecision::NotFound);
    }

    /// Whatever the arrival order, the final state equals timestamp order: the property the
    /// storage and the multi-replica test rely on. Timestamps come from a narrow range around
    /// the creation, so histories hold ties (between two writes, and with the creation or a
    /// delete) and requests older than the creation; a tie goes to the request that arrived
    /// first, so the sequential order is the arrival order sorted stably by timestamp.
    #[test]
    fn any_arrival_order_converges_to_timestamp_order() {
        #[derive(Clone, Debug)]
        enum Op {
            Put(TaskPatch, Micros),
            Delete(Micros),
        }
        impl Op {
            fn at(&self) -> Micros {
                match self {
                    Op::Put(_, at) | Op::Delete(at) => *at,
                }
            }
        }
        fn apply(state: &mut TaskState, op: &Op) {
            match op {
                Op::Put(patch, at) => {
                    state.apply_update(patch, *at);
                }
                Op::Delete(at) => {
                    state.apply_delete(*at);
                }
            }
        }
        fn random_patch(rng: &mut StdRng, label: usize) -> TaskPatch {
            loop {
                let patch = TaskPatch {
                    title: rng.random_bool(0.5).then(|| format!("t{label}")),
                    content: rng.random_bool(0.5).then(|| format!("c{label}")),
                    due_date: rng.random_bool(0.5).then(|| {
                        NaiveDate::from_ymd_opt(2024, 2, 1 + (label % 28) as u32).unwrap()
                    }),
                    done: rng.random_bool(0.5).then(|| rng.random_bool(0.5)),
                };
                if !patch.fields().is_empty() {
                    return patch;
                }
            }
        }
        let mut rng = StdRng::seed_from_u64(0x7a5c);
        let (mut live, mut deleted, mut tied_writes) = (0, 0, 0);
        for _ in 0..2_000 {
            let ops: Vec<Op> = (0..12)
                .map(|label| {
                    let at = rng.random_range(CREATED - 5..CREATED + 20);
                    if rng.random_ratio(1, 24) {
                        Op::Delete(at)
                    } else {
                        Op::Put(random_patch(&mut rng, label), at)
                    }
                })
                .collect();
            let mut arrival = ops.clone();
            arrival.shuffle(&mut rng);
            let mut actual = task();
            for op in &arrival {
                apply(&mut actual, op);
            }
            let mut sequential = arrival.clone();
            sequential.sort_by_key(Op::at); // stable: ties keep their arrival order
            let mut expected = task();
            for op in &sequential {
                apply(&mut expected, op);
            }
            let mut put_stamps: Vec<Micros> = ops
                .iter()
                .filter(|op| matches!(op, Op::Put(..)))
                .map(Op::at)
                .collect();
            put_stamps.sort_unstable();
            tied_writes += put_stamps
                .windows(2)
                .filter(|pair| pair[0] == pair[1])
                .count();
            if expected.is_live() {
                live += 1;
                // Everything, ordering metadata included: later requests are decided on it.
                assert_eq!(actual, expected, "arrival order {arrival:?}");
            } else {
                deleted += 1;
                // A deleted task shows nothing but that it is gone (fields written before
                // the delete may differ: a PUT older than the delete is 409 once it is gone).
                assert!(!actual.is_live(), "arrival order {arrival:?}");
                assert_eq!(actual.to_task(), None);
            }
        }
        // The histories must exercise what the property is about.
        assert!(
            live > 1_000 && deleted > 300,
            "live {live}, deleted {deleted}"
        );
        assert!(tied_writes > 2_000, "{tied_writes} tied writes");
    }
}
