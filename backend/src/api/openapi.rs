//! `GET /api/openapi.json`: the OpenAPI description of the API, generated from the handlers'
//! annotations and the shared types' schemas (utoipa), so that it cannot drift from the code.

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CultureSPA Studio",
        description = "Culture alignment of language models (CultureSPA): runs, answers, instances, reviews, \
                       scores and the relations between cultures. Reads are public unless noted; writes need an \
                       account (a session cookie, or a personal API token as `Authorization: Bearer csp_…`)."
    ),
    paths(
        super::survey::health,
        super::survey::cultures,
        super::survey::culture,
        super::survey::topics,
        super::survey::topic,
        super::questions::list,
        super::questions::detail,
        super::models::list,
        super::engines::list,
        super::runs::list,
        super::run_control::create,
        super::runs::detail,
        super::runs::events,
        super::run_control::stream,
        super::run_control::cancel,
        super::run_control::resume,
        super::auth::me,
        super::auth::login,
        super::auth::logout,
        super::tokens::list,
        super::tokens::create,
        super::tokens::revoke,
        super::users::list,
        super::users::add,
        super::users::change,
        super::users::remove,
        super::users::revoke,
        super::questions::answers,
        super::instances::list,
        super::instances::download,
        super::instances::detail,
        super::reviews::create,
        super::reviews::list,
        super::reviews::undo,
        super::reviews::settings,
        super::reviews::set_settings,
        super::reviews::agreement_of,
        super::export::export,
        super::adapters::list,
        super::adapters::download,
        super::export::reviews,
        super::scores::run_scores,
        super::scores::released,
        super::persona_meter::persona_meter_of,
        super::relations::relations,
        super::culture_map::culture_map_of,
        openapi_json
    ),
    // Referenced by every endpoint's error response (shared::api::RequestErrors).
    components(schemas(shared::api::ErrorBody))
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 description of this API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "openapi", responses((status = 200, description = "OpenAPI 3.1 JSON")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
