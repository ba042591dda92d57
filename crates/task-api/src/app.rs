//! Composition of the two listeners: THE place where routes and layers are assembled.
//! Cross-cutting layers (metrics, in-flight limit, …) and extra admin routes (/metrics) are
//! added here, inside the correlation layer so that their error responses are problem
//! documents carrying the correlation id too.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use task_auth::Authenticator;
use task_store::TaskStore;
use tower_http::catch_panic::CatchPanicLayer;

use crate::correlation::{correlated, correlated_without_access_log};
use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::openapi;
use crate::operability::{self, Operability, instrument_public};
use crate::routes;

/// Bodies of this size and above are refused with 413 (enforced by `extract::ValidJson`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// `/readyz` reports the database down when `SELECT 1` takes longer than this.
pub const READINESS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn TaskStore>,
    pub authenticator: Authenticator,
    /// Metrics and the in-flight limit (see `operability`).
    pub operability: Operability,
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.authenticator.clone()
    }
}

/// The public listener: the REST API, `/openapi.json` and the interactive docs at `/docs`.
pub fn public_router(state: AppState) -> Router {
    let operability = state.operability.clone();
    let router = Router::new()
        .route("/tasks", get(routes::list_tasks).post(routes::create_task))
        .route(
            "/tasks/{id}",
            get(routes::get_task)
                .put(routes::update_task)
                .delete(routes::delete_task),
        )
        .route("/openapi.json", get(openapi_document))
        .route("/docs", get(api_docs))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(CatchPanicLayer::custom(panic_response));
    // Inside the correlation layer (429s carry the correlation id), outside every handler
    // (a rejected request has no effect).
    correlated(instrument_public(router, &operability))
}

/// The admin listener: probes (and, added by the operability layer, /metrics).
pub fn admin_router(state: AppState) -> Router {
    correlated_without_access_log(
        Router::new()
            .route("/livez", get(livez))
            .route("/readyz", get(readyz))
            .route("/metrics", get(operability::metrics))
            .fallback(|| async { ApiError::NoRoute })
            .with_state(state)
            .layer(CatchPanicLayer::custom(panic_response)),
    )
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic message is logged by the panic hook; it never reaches the client.
    ApiError::Internal("handler panicked".to_owned()).into_response()
}

/// The document describes every endpoint, so it needs a bearer token like they do.
async fn openapi_document(_caller: Authenticated) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
}

/// Interactive API docs: a static page (no data, so no token needed to load it) whose
/// browser-side Swagger UI fetches `/openapi.json` with the token the reader enters.
async fn api_docs() -> impl IntoResponse {
    axum::response::Html(include_str!("assets/docs.html"))
}

async fn livez() -> &'static str {
    "ok\n"
}

/// Ready once migrations are applied (the service does not listen before that) and the
/// database answers `SELECT 1` within [`READINESS_PROBE_TIMEOUT`].
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping(READINESS_PROBE_TIMEOUT).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => ApiError::Unavailable(error.to_string()).into_response(),
    }
}
