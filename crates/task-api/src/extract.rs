//! Extractors. [`Authenticated`] reads only the request head, so axum runs it before the body
//! extractor [`ValidJson`]: an unauthenticated request is 401 whatever its body.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use task_auth::{Authenticator, Subject};

use crate::error::ApiError;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Subject);

impl<S> FromRequestParts<S> for Authenticated
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|value| value.as_bytes());
        let subject = authenticator.authenticate(header).await?;
        Ok(Authenticated(subject))
    }
}

/// A JSON body decoded strictly into `T` (see `task_domain::parse_body`).
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::InvalidParameter(rejection.body_text())
                }
            })?;
        Ok(ValidJson(task_domain::parse_body(&bytes)?))
    }
}

/// A task id from the path. Ids are positive integers; anything else names no task (404).
pub fn task_id(raw: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 && !raw.starts_with('+') => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}
