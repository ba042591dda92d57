//! Handlers of the public REST API.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use task_domain::{CreateTaskRequest, DeleteTaskRequest, Task, UpdateTaskRequest, format_micros};
use task_store::{Idempotency, Page};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{Authenticated, ValidJson, task_id};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Page size of `GET /tasks` without `limit`, and the largest accepted `limit`.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A task as returned by the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskBody {
    /// Opaque to clients (an integer).
    pub id: i64,
    pub title: String,
    pub content: String,
    #[schema(format = Date, example = "2024-03-01")]
    pub due_date: String,
    pub done: bool,
    /// The creating request's timestamp (UTC, microseconds).
    #[schema(format = DateTime, example = "2024-01-01T08:00:00.000000Z")]
    pub created_at: String,
    /// The timestamp of the newest accepted field write (UTC, microseconds).
    #[schema(format = DateTime, example = "2024-01-01T08:00:00.000000Z")]
    pub updated_at: String,
}

impl From<Task> for TaskBody {
    fn from(task: Task) -> Self {
        Self {
            id: task.id,
            title: task.title,
            content: task.content,
            due_date: task.due_date.format("%Y-%m-%d").to_string(),
            done: task.done,
            created_at: format_micros(task.created_at),
            updated_at: format_micros(task.updated_at),
        }
    }
}

/// Result of `DELETE /tasks/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deleted {
    pub id: i64,
    pub deleted: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Page size, 1..=1000 (default 100).
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Return only tasks whose id is greater than this (the last id of the previous page).
    #[param(nullable = false)]
    after: Option<i64>,
}

/// The `{id}` path segment: a positive integer (anything else is answered 404, like an
/// unknown id).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only describes the parameter: handlers parse the raw segment.
pub struct TaskId {
    /// Task id, as returned in `id`.
    #[param(minimum = 1)]
    id: i64,
}

/// The optional `Idempotency-Key` request header of `POST /tasks`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Only describes the header: the handler reads it from the header map.
pub struct IdempotencyKeyHeader {
    /// Repeating a request with the same key and body returns the same task. 1 to 255
    /// visible ASCII characters (inner spaces allowed).
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]([ -~]*[!-~])?$"
    )]
    idempotency_key: Option<String>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    // Visible ASCII and inner spaces only (the header's documented pattern): a tab or
    // another control character is refused rather than stored in a key.
    let key = value
        .to_str()
        .ok()
        .filter(|key| {
            !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && key.bytes().all(|byte| (b' '..=b'~').contains(&byte))
        })
        .ok_or_else(|| {
            ApiError::InvalidParameter(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_owned()))
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(raw) = path.map_err(|_| ApiError::NotFound)?;
    task_id(&raw)
}

/// Create a task.
#[utoipa::path(
    post, path = "/tasks", tag = "tasks",
    params(IdempotencyKeyHeader),
    request_body = CreateTaskRequest,
    responses(
        (status = 201, description = "Created (or replayed for a repeated Idempotency-Key)", body = TaskBody,
            headers(("Location" = String, description = "`/tasks/{id}` of the task"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_task(
    State(state): State<AppState>,
    Authenticated(subject): Authenticated,
    headers: HeaderMap,
    ValidJson(request): ValidJson<CreateTaskRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let create = request.validate()?;
    let idempotency = key.map(|key| Idempotency {
        key,
        fingerprint: create.fingerprint(),
    });
    let created = state
        .store
        .create(&subject.0, &create, idempotency.as_ref())
        .await?;
    let location = HeaderValue::from_str(&format!("/tasks/{}", created.task.id))
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(TaskBody::from(created.task)),
    )
        .into_response())
}

/// List the caller's tasks in id order.
#[utoipa::path(
    get, path = "/tasks", tag = "tasks", params(ListParams),
    responses(
        (status = 200, description = "The caller's live tasks in id order", body = [TaskBody],
            headers(("Link" = String, description = "`</tasks?limit=…&after=…>; rel=\"next\"` when there may be more"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    Authenticated(subject): Authenticated,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        query.map_err(|rejection| ApiError::InvalidParameter(rejection.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::InvalidParameter(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let after = params.after.unwrap_or(0);
    let tasks = state.store.list(&subject.0, Page { after, limit }).await?;
    let next = (tasks.len() == limit as usize)
        .then(|| tasks.last().map(|task| task.id))
        .flatten();
    let body: Vec<TaskBody> = tasks.into_iter().map(TaskBody::from).collect();
    let mut response = Json(body).into_response();
    let link = next.and_then(|last| {
        HeaderValue::from_str(&format!(
            "</tasks?limit={limit}&after={last}>; rel=\"next\""
        ))
        .ok()
    });
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// Get one task.
#[utoipa::path(
    get, path = "/tasks/{id}", tag = "tasks",
    params(TaskId),
    responses(
        (status = 200, body = TaskBody),
        (status = 404, description = "Unknown, another subject's, or deleted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_task(
    State(state): State<AppState>,
    Authenticated(subject): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TaskBody>, ApiError> {
    let id = path_id(path)?;
    let task = state.store.get(&subject.0, id).await?;
    Ok(Json(task.into()))
}

/// Update some fields of a task; each field is written only if this request is newer than
/// that field's last write.
#[utoipa::path(
    put, path = "/tasks/{id}", tag = "tasks",
    params(TaskId),
    request_body = UpdateTaskRequest,
    responses(
        (status = 200, description = "At least one field written; the whole merged task", body = TaskBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not newer than the creation, the deletion or any requested field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_task(
    State(state): State<AppState>,
    Authenticated(subject): Authenticated,
    path: Result<Path<String>, PathRejection>,
    ValidJson(request): ValidJson<UpdateTaskRequest>,
) -> Result<Json<TaskBody>, ApiError> {
    let update = request.validate()?;
    let id = path_id(path)?;
    let task = state
        .store
        .update(&subject.0, id, &update.patch, update.timestamp)
        .await?;
    Ok(Json(task.into()))
}

/// Delete a task for good.
#[utoipa::path(
    delete, path = "/tasks/{id}", tag = "tasks",
    params(TaskId),
    request_body = DeleteTaskRequest,
    responses(
        (status = 200, body = Deleted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not newer than the creation or an earlier deletion", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_task(
    State(state): State<AppState>,
    Authenticated(subject): Authenticated,
    path: Result<Path<String>, PathRejection>,
    ValidJson(request): ValidJson<DeleteTaskRequest>,
) -> Result<Json<Deleted>, ApiError> {
    let delete = request.validate()?;
    let id = path_id(path)?;
    state.store.delete(&subject.0, id, delete.timestamp).await?;
    Ok(Json(Deleted { id, deleted: true }))
}
