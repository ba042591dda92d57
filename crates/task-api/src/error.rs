//! The ONE place where failures become HTTP responses: every error the service returns is an
//! RFC 9457 problem (`application/problem+json`) rendered by [`finish_problem`], which also
//! stamps the request's correlation id into it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use task_auth::AuthError;
use task_domain::BodyError;
use task_store::StoreError;
use utoipa::ToSchema;

/// Seconds a client should wait before retrying a 503 or 429.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidBody(#[from] BodyError),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Unauthenticated(#[from] AuthError),
    #[error("task not found")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request_timestamp is not newer than the task's current state")]
    Stale,
    #[error("Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many requests in flight")]
    Overloaded,
    #[error("database unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Stale => ApiError::Stale,
            StoreError::IdempotencyConflict => ApiError::IdempotencyConflict,
            StoreError::Unavailable { .. } => {
                ApiError::Unavailable(task_store::error_chain(&error))
            }
            StoreError::Database { .. } => ApiError::Internal(task_store::error_chain(&error)),
        }
    }
}

/// An RFC 9457 problem document as this API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    /// Equals the HTTP status code.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Equals the `correlation_id` response header.
    pub correlation_id: String,
}

/// What an error response carries until [`finish_problem`] renders it.
#[derive(Debug, Clone)]
pub struct PendingProblem {
    problem_type: &'static str,
    detail: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidBody(_) | ApiError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Stale | ApiError::IdempotencyConflict => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem_type(&self) -> &'static str {
        match self {
            ApiError::InvalidBody(_) => "/problems/invalid-body",
            ApiError::InvalidParameter(_) => "/problems/invalid-parameter",
            ApiError::Unauthenticated(_) => "/problems/unauthenticated",
            ApiError::NotFound | ApiError::NoRoute => "/problems/not-found",
            ApiError::MethodNotAllowed => "/problems/method-not-allowed",
            ApiError::Stale => "/problems/stale-request",
            ApiError::IdempotencyConflict => "/problems/idempotency-key-reused",
            ApiError::PayloadTooLarge => "/problems/payload-too-large",
            ApiError::Overloaded => "/problems/overloaded",
            ApiError::Unavailable(_) => "/problems/database-unavailable",
            ApiError::Internal(_) => "/problems/internal",
        }
    }

    /// Client-safe detail: internal reasons are logged, never returned.
    fn detail(&self) -> Option<String> {
        match self {
            ApiError::Unavailable(_) => {
                Some("the database cannot be reached; retry later".to_owned())
            }
            ApiError::Internal(_) => None,
            other => Some(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(reason) => tracing::error!(%reason, "request failed"),
            ApiError::Unavailable(reason) => tracing::warn!(%reason, "database unavailable"),
            ApiError::Unauthenticated(error) => {
                tracing::info!(reason = error.reason(), "authentication failed")
            }
            _ => {}
        }
        let mut response = status.into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unavailable(_) | ApiError::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        if let ApiError::Unauthenticated(error) = &self {
            response
                .extensions_mut()
                .insert(AuthFailure(error.reason()));
        }
        response.extensions_mut().insert(PendingProblem {
            problem_type: self.problem_type(),
            detail: self.detail(),
        });
        response
    }
}

/// Marks a 401 with the reason label, for `task_api_auth_failures_total`.
#[derive(Debug, Clone, Copy)]
pub struct AuthFailure(pub &'static str);

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Renders the problem body of an error response. Responses that carry a [`PendingProblem`]
/// get its detail; any other 4xx/5xx without a problem body (e.g. produced by a layer) gets a
/// generic one for its status, so that clients always see the same shape.
pub fn finish_problem(mut response: Response, correlation_id: &str) -> Response {
    let status = response.status();
    let pending = response.extensions_mut().remove::<PendingProblem>();
    let already_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == PROBLEM_JSON.as_bytes());
    if already_problem
        || (pending.is_none() && !(status.is_client_error() || status.is_server_error()))
    {
        return response;
    }
    let pending = pending.unwrap_or(PendingProblem {
        problem_type: "about:blank",
        detail: None,
    });
    let problem = Problem {
        problem_type: pending.problem_type.to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: pending.detail,
        correlation_id: correlation_id.to_owned(),
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let (mut parts, _) = response.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
