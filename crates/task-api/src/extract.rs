//! Extractors. [`Authenticated`] reads only the request head, so axum runs it before the body
//! extractor [`ValidJson`]: an unauthenticated request is 401 whatever its body.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use task_auth::{Authenticator, Subject};

use crate::app::MAX_BODY_BYTES;
use crate::error::ApiError;

/// An oversized body is still read (and discarded) up to this many bytes, so that a client
/// that sends it in one go receives the 413 instead of a connection reset mid-upload. Beyond
/// this the connection is closed.
const MAX_DRAINED_BYTES: usize = 16 * 1024 * 1024;

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

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|length| length > MAX_DRAINED_BYTES) {
            return Err(ApiError::PayloadTooLarge);
        }
        let mut body = request.into_body().into_data_stream();
        let mut bytes = Vec::new();
        let mut received = 0_usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| {
                ApiError::InvalidParameter(format!("could not read the request body: {error}"))
            })?;
            received += chunk.len();
            if received >= MAX_BODY_BYTES {
                if received > MAX_DRAINED_BYTES {
                    break;
                }
                bytes = Vec::new();
                continue;
            }
            bytes.extend_from_slice(&chunk);
        }
        if received >= MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
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
