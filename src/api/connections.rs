//! Backend routes on one connection: show, fresh tokens, refresh, API keys, delete.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::auth::AdminAuth;
use super::error::{ApiError, Problem};
use super::json_body;
use super::openapi::{NoSuchConnection, Unauthorized};
use crate::checked::{
    ApiKey, ConnectionId, ConnectionKind, ConnectionStatus, EndUser, IdError, Tags,
};
use crate::clock::rfc3339;
use crate::connections::{Connection, Credential, RevocationOutcome};
use crate::state::AppState;

/// The `{id}` of a connection route. An id that cannot exist (malformed,
/// or not even UTF-8) is simply not found.
pub struct ConnectionPath(pub ConnectionId);

impl<S: Send + Sync> FromRequestParts<S> for ConnectionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        connection_id(&raw).map(Self)
    }
}

/// A connection id from a request; one that cannot exist is simply not found.
pub(super) fn connection_id(raw: &str) -> Result<ConnectionId, ApiError> {
    ConnectionId::parse(raw).map_err(|_| ApiError::NotFound)
}

/// A connection as the backend API shows it: never a token or key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionBody {
    id: String,
    kind: ConnectionKind,
    status: ConnectionStatus,
    scopes: Vec<String>,
    /// RFC 3339; null for API keys.
    expires_at: Option<String>,
    created_at: String,
    updated_at: String,
    /// RFC 3339: the last refresh of an OAuth connection.
    last_refreshed_at: Option<String>,
    /// RFC 3339: the last background check of an API key.
    last_checked_at: Option<String>,
    /// A short category of the last failure; never a provider's words.
    last_error: Option<String>,
    /// Who the connection belongs to in the app; null when nobody was named.
    end_user: Option<EndUser>,
    /// The app's tags on the connection; `{}` when none.
    tags: Tags,
}

impl From<&Connection> for ConnectionBody {
    fn from(c: &Connection) -> Self {
        Self {
            id: c.id.to_string(),
            kind: c.kind,
            status: c.status,
            scopes: c.scopes.clone(),
            expires_at: c.expires_at.map(rfc3339),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            last_refreshed_at: c.last_refreshed_at.map(rfc3339),
            last_checked_at: c.last_checked_at.map(rfc3339),
            last_error: c.last_error.clone(),
            end_user: c.profile.end_user.clone(),
            tags: c.profile.tags.clone(),
        }
    }
}

/// A credential ready to send as `Authorization: Bearer`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CredentialBody {
    /// The OAuth access token, or the API key.
    access_token: String,
    token_type: String,
    /// RFC 3339; null for API keys.
    expires_at: Option<String>,
}

fn credential_body(credential: &Credential) -> Json<CredentialBody> {
    Json(CredentialBody {
        access_token: credential.secret.expose_secret().to_owned(),
        token_type: credential.token_type.clone(),
        expires_at: credential.expires_at.map(rfc3339),
    })
}

/// One connection.
#[utoipa::path(
    get,
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoSuchConnection),
    ),
    security(("admin_bearer" = []))
)]
pub async fn show(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
) -> Result<Json<ConnectionBody>, ApiError> {
    let connection = state
        .connections
        .get(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(ConnectionBody::from(&connection)))
}

/// A fresh access token (refreshed first when it expires within 60 s), or the API key.
#[utoipa::path(
    get,
    path = "/connections/{id}/access-token",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "A usable credential", body = CredentialBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoSuchConnection),
        (status = 409, description = "The connection needs re-authorization", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed; the connection is unchanged", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider or the database did not answer in time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn access_token(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
) -> Result<Json<CredentialBody>, ApiError> {
    let credential = state.connections.fresh_credential(&id).await?;
    Ok(credential_body(&credential))
}

/// Refreshes an OAuth connection now.
#[utoipa::path(
    post,
    path = "/connections/{id}/refresh",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The new credential", body = CredentialBody),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoSuchConnection),
        (status = 409, description = "An API key, or the provider answered invalid_grant (`connection_status: needs_reauth`)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed; the connection is unchanged", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider or the database did not answer in time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn refresh(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
) -> Result<Json<CredentialBody>, ApiError> {
    let credential = state.connections.refresh_now(&id).await?;
    Ok(credential_body(&credential))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ApiKeyBody {
    /// An EmailOctopus API key, 1 to 512 characters.
    api_key: String,
}

/// Stores an API key for the connection after checking it at the API.
#[utoipa::path(
    put,
    path = "/connections/{id}/api-key",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    request_body = ApiKeyBody,
    responses(
        (status = 200, description = "The connection, of kind api_key", body = ConnectionBody),
        (status = 401, response = Unauthorized),
        (status = 422, description = "A malformed id or key, or the API refused the key; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many keys for this connection were refused lately; this one was not checked, nothing stored", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the connection may have another key checked"))),
        (status = 502, description = "The API could not be reached; nothing stored", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn put_api_key(
    _: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ConnectionBody>, ApiError> {
    // This route creates the connection, so a bad id is the caller's to fix (422).
    let id = id
        .ok()
        .and_then(|Path(raw)| ConnectionId::parse(&raw).ok())
        .ok_or(ApiError::Invalid {
            field: "id",
            reason: IdError::Invalid.reason(),
        })?;
    let request: ApiKeyBody = json_body::parse(&headers, body, &["api_key"])?;
    let key = ApiKey::parse(&request.api_key).map_err(|e| ApiError::Invalid {
        field: "api_key",
        reason: e.reason(),
    })?;
    let connection = state
        .connections
        .save_api_key(&id, key.secret().clone())
        .await?;
    Ok(Json(ConnectionBody::from(&connection)))
}

/// Revokes an OAuth connection's grant at `REVOKE_URL` (when set) and deletes it.
#[utoipa::path(
    delete,
    path = "/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection's id")),
    responses(
        (status = 204, description = "Deleted", headers(
            ("X-Revocation" = String, description = "What the provider was told: `revoked`, `failed`, `not-configured` or `not-applicable`"),
        )),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoSuchConnection),
    ),
    security(("admin_bearer" = []))
)]
pub async fn delete(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
) -> Result<Response, ApiError> {
    let revocation = state
        .connections
        .delete(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let outcome = match revocation {
        RevocationOutcome::Revoked => "revoked",
        RevocationOutcome::NotConfigured => "not-configured",
        RevocationOutcome::NotApplicable => "not-applicable",
        RevocationOutcome::Failed(_) => "failed",
    };
    Ok((StatusCode::NO_CONTENT, [("x-revocation", outcome)]).into_response())
}
