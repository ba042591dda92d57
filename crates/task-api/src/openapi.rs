//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::Problem;
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
    modifiers(&BearerAuth),
    tags((name = "tasks"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
