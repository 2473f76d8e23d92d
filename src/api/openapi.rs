//! `GET /openapi.json`: the backend API described as OpenAPI 3.1, generated
//! from the handlers' own request and answer types, so it cannot drift.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::Problem;
use super::{connections, events, listing, profile, proxy, sessions};

/// The 401 every admin route may answer, described once.
#[derive(utoipa::ToResponse)]
#[response(
    description = "No or wrong admin bearer",
    content_type = "application/problem+json"
)]
#[allow(dead_code)] // describes an answer; ApiError builds the real one
pub struct Unauthorized(Problem);

/// The 404 of a route on one connection, described once.
#[derive(utoipa::ToResponse)]
#[response(
    description = "No such connection",
    content_type = "application/problem+json"
)]
#[allow(dead_code)] // describes an answer; ApiError builds the real one
pub struct NoSuchConnection(Problem);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "emailoctopus-connect backend API",
        description = "Connect sessions, connections, fresh tokens, the API proxy and the event outbox. \
            Every route except the session status needs `Authorization: Bearer <ADMIN_TOKEN>`; \
            errors are `application/problem+json` (RFC 9457)."
    ),
    paths(
        sessions::create,
        sessions::status,
        listing::list,
        connections::show,
        profile::patch,
        connections::access_token,
        connections::refresh,
        connections::put_api_key,
        connections::delete,
        proxy::forward,
        events::list,
        events::of_connection,
        events::redeliver,
    ),
    components(responses(Unauthorized, NoSuchConnection)),
    modifiers(&AdminBearer)
)]
struct BackendApi;

/// The `admin_bearer` scheme the operations name.
struct AdminBearer;

impl Modify for AdminBearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    BackendApi::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
});

pub async fn document() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        DOCUMENT.as_str(),
    )
}
