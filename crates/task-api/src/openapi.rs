//! The OpenAPI document, generated from the handlers' annotations, plus what every operation
//! shares (the bearer scheme, the responses any request can get, the correlation header and
//! the links from a created task to its operations), added here once instead of on every
//! handler.

use std::sync::OnceLock;

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{PROBLEM_JSON, Problem, RETRY_AFTER_SECONDS};
use crate::routes::{Deleted, TaskBody};
use task_domain::{CreateTaskRequest, DeleteTaskRequest, UpdateTaskRequest};

#[derive(OpenApi)]
#[openapi(
    info(title = "Task API", description = "Tasks per subject, ordered by request_timestamp"),
    paths(
        crate::routes::create_task,
        crate::routes::list_tasks,
        crate::routes::get_task,
        crate::routes::update_task,
        crate::routes::delete_task,
    ),
    components(schemas(TaskBody, Deleted, Problem, CreateTaskRequest, UpdateTaskRequest, DeleteTaskRequest)),
    modifiers(&BearerAuth, &SharedResponses, &UpdateNeedsAField),
    tags((name = "tasks"))
)]
pub struct ApiDoc;

/// The operations a created task's `id` leads to (OpenAPI links: clients and stateful API
/// testers follow them from `POST /tasks` to the task).
const TASK_OPERATIONS: [(&str, &str); 3] = [
    ("GetTask", "get_task"),
    ("UpdateTask", "update_task"),
    ("DeleteTask", "delete_task"),
];

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Responses any request can get, whatever the operation: refused credentials, the in-flight
/// limit, the database being away, an unexpected failure. Every response also carries the
/// `correlation_id` header.
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_shared_responses(operation);
            }
        }
    }
}

fn add_shared_responses(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    let shared = [
        (
            "401",
            problem("Missing, malformed or refused bearer token", false),
        ),
        (
            "429",
            problem("Too many requests in flight on this replica", true),
        ),
        (
            "500",
            problem(
                "Unexpected failure (details are logged, never returned)",
                false,
            ),
        ),
        ("503", problem("The database cannot be reached", true)),
    ];
    for (status, response) in shared {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(response));
    }
    for response in responses.values_mut() {
        if let RefOr::T(response) = response {
            response
                .headers
                .entry("correlation_id".to_owned())
                .or_insert_with(correlation_header);
        }
    }
}

fn problem(description: &str, retry_after: bool) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some(format!(
                    "Seconds to wait before retrying (this service sends {RETRY_AFTER_SECONDS})"
                )))
                .build(),
        );
    }
    response.build()
}

fn correlation_header() -> Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "The request's correlation_id (or X-Correlation-ID) header, or one generated for \
             it; also in the problem body, logs and traces",
        ))
        .build()
}

/// The served document: [`ApiDoc`] plus the links from `POST /tasks`' 201 to the created
/// task's GET, PUT and DELETE, rendered once. The links are added to the JSON because
/// utoipa 5.5 serialises `Link` with snake_case keys (`operation_id`), which OpenAPI tools
/// do not read.
pub fn document() -> &'static [u8] {
    static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
        if let Some(created) = document.pointer_mut("/paths/~1tasks/post/responses/201") {
            created["links"] = created_task_links();
        }
        serde_json::to_vec(&document).expect("the OpenAPI document serialises")
    })
}

fn created_task_links() -> serde_json::Value {
    TASK_OPERATIONS
        .into_iter()
        .map(|(name, operation_id)| {
            let link = serde_json::json!({
                "operationId": operation_id,
                "parameters": { "id": "$response.body#/id" },
                "description": format!("`{operation_id}` of the created task"),
            });
            (name.to_owned(), link)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A PUT body is `request_timestamp` plus at least one field, and no other key is allowed:
/// at least two properties. Set here because utoipa-gen 5.5's `min_properties` attribute
/// emits `maxProperties`.
struct UpdateNeedsAField;

impl Modify for UpdateNeedsAField {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schema = openapi
            .components
            .as_mut()
            .and_then(|components| components.schemas.get_mut("UpdateTaskRequest"));
        if let Some(RefOr::T(Schema::Object(object))) = schema {
            object.min_properties = Some(2);
        }
    }
}
