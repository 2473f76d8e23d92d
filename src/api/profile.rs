//! End users and tags in requests: as `POST /connect-sessions` gives them,
//! and `PATCH /connections/{id}` (RFC 7396 JSON Merge Patch) edits them.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Deserializer};

use super::auth::AdminAuth;
use super::connections::{ConnectionBody, ConnectionPath};
use super::error::{ApiError, Problem};
use super::json_body;
use super::openapi::{NoSuchConnection, Unauthorized};
use crate::checked::{EndUser, EndUserError, Tags, TagsError};
use crate::state::AppState;
use crate::store::{Profile, ProfileUpdate};

/// The app's user behind a connection.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct EndUserInput {
    /// The app's id for the user: 1 to 200 characters, no control characters.
    id: String,
    /// At most 254 characters, one `@`, no spaces; matched without regard to case.
    email: Option<String>,
    /// 1 to 200 characters, no control characters.
    display_name: Option<String>,
}

impl EndUserInput {
    fn parse(&self) -> Result<EndUser, ApiError> {
        EndUser::parse(
            &self.id,
            self.email.as_deref(),
            self.display_name.as_deref(),
        )
        .map_err(invalid_end_user)
    }
}

fn invalid_end_user(error: EndUserError) -> ApiError {
    ApiError::Invalid {
        field: error.field(),
        reason: error.reason(),
    }
}

fn invalid_tags(error: TagsError) -> ApiError {
    ApiError::Invalid {
        field: "tags",
        reason: error.reason(),
    }
}

/// What a connect session's request gives its connection: each part
/// given replaces the connection's when the connect finishes; each left
/// out (or null) keeps what the connection has.
pub(super) fn session_profile(
    end_user: Option<&EndUserInput>,
    tags: Option<BTreeMap<String, String>>,
) -> Result<ProfileUpdate, ApiError> {
    Ok(ProfileUpdate {
        end_user: end_user.map(EndUserInput::parse).transpose()?,
        tags: tags.map(Tags::parse).transpose().map_err(invalid_tags)?,
    })
}

/// A JSON Merge Patch (RFC 7396) of a connection's end user and tags. Any
/// other member is refused: a patch of `status` or `kind` must not look as
/// if it had been applied.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// An object replaces the end user; null removes it; absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable)]
    end_user: Option<Option<EndUserInput>>,
    /// Each key given is set to its value, or removed by null; keys not
    /// given stay. Null removes every tag. At most 32 tags after the merge.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>, nullable)]
    tags: Option<Option<BTreeMap<String, Option<String>>>>,
}

/// A member that is there, null or not, as against one left out (RFC 7396
/// tells them apart: null removes, absent keeps).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

impl ProfilePatch {
    /// The profile after this patch, every bound checked on the result.
    fn apply(&self, end_user: Option<EndUser>, old: &Profile) -> Result<Profile, ApiError> {
        let tags = match &self.tags {
            None => old.tags.clone(),
            Some(None) => Tags::default(),
            Some(Some(patch)) => old.tags.merged(patch).map_err(invalid_tags)?,
        };
        let end_user = match &self.end_user {
            None => old.end_user.clone(),
            Some(_) => end_user,
        };
        Ok(Profile { end_user, tags })
    }
}

/// Changes who a connection belongs to and its tags (RFC 7396 merge). It
/// changes no credential and records no event.
#[utoipa::path(
    patch,
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    request_body(content = ProfilePatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The connection as it is now", body = ConnectionBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoSuchConnection),
        (status = 422, description = "A member out of its bounds (named in `detail`); nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn patch(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ConnectionBody>, ApiError> {
    let patch: ProfilePatch = json_body::parse(&headers, body, &["end_user", "tags"])?;
    // Checked before the row is held: what is refused needs no database.
    let end_user = patch
        .end_user
        .as_ref()
        .and_then(Option::as_ref)
        .map(EndUserInput::parse)
        .transpose()?;
    let connection = state
        .connections
        .edit_profile(&id, |old| patch.apply(end_user, old))
        .await?
        .ok_or(ApiError::NotFound)??;
    Ok(Json(ConnectionBody::from(&connection)))
}
