//! Backend routes on connections and connect sessions.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::AdminAuth;
use super::error::ApiError;
use super::json_body;
use crate::clock::rfc3339;
use crate::connections::{Connection, Credential, Revocation};
use crate::domain::{ConnectionId, IdError, ReturnTo};
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

fn connection_json(c: &Connection) -> Value {
    json!({
        "id": c.id,
        "kind": c.kind,
        "status": c.status,
        "scopes": c.scopes,
        "expires_at": c.expires_at.map(rfc3339),
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
        "last_refreshed_at": c.last_refreshed_at.map(rfc3339),
        "last_checked_at": c.last_checked_at.map(rfc3339),
        "last_error": c.last_error,
    })
}

fn credential_json(credential: &Credential) -> Json<Value> {
    Json(json!({
        "access_token": credential.secret.expose_secret(),
        "token_type": credential.token_type,
        "expires_at": credential.expires_at.map(rfc3339),
    }))
}

#[derive(Deserialize)]
pub struct NewSession {
    connection_id: String,
    return_to: Option<String>,
}

pub async fn create_session(
    _: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: NewSession = json_body::parse(&headers, body, &["connection_id", "return_to"])?;
    let connection_id =
        ConnectionId::parse(&request.connection_id).map_err(|e| ApiError::Invalid {
            field: "connection_id",
            reason: e.reason(),
        })?;
    let return_to = request
        .return_to
        .as_deref()
        .map(|raw| ReturnTo::parse(raw, &state.return_to_origins))
        .transpose()
        .map_err(|e| ApiError::Invalid {
            field: "return_to",
            reason: e.reason(),
        })?;
    let session = state.sessions.create(connection_id, return_to).await?;
    let answer = json!({
        "token": session.token,
        "connect_url": session.connect_url.as_str(),
        "expires_at": rfc3339(session.expires_at),
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub async fn list(_: AdminAuth, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let connections = state.connections.list().await?;
    Ok(Json(
        json!({ "connections": connections.iter().map(connection_json).collect::<Vec<_>>() }),
    ))
}

pub async fn show(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
) -> Result<Json<Value>, ApiError> {
    let connection = state
        .connections
        .get(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(connection_json(&connection)))
}

pub async fn access_token(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
) -> Result<Json<Value>, ApiError> {
    let credential = state.connections.fresh_credential(&id).await?;
    Ok(credential_json(&credential))
}

pub async fn refresh(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
) -> Result<Json<Value>, ApiError> {
    let credential = state.connections.refresh_now(&id).await?;
    Ok(credential_json(&credential))
}

#[derive(Deserialize)]
pub struct ApiKey {
    api_key: String,
}

pub async fn put_api_key(
    _: AdminAuth,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // This route creates the connection, so a bad id is the caller's to fix (422).
    let id = id
        .ok()
        .and_then(|Path(raw)| ConnectionId::parse(&raw).ok())
        .ok_or(ApiError::Invalid {
            field: "id",
            reason: IdError::Invalid.reason(),
        })?;
    let request: ApiKey = json_body::parse(&headers, body, &["api_key"])?;
    let key = request.api_key.trim().to_owned();
    if key.is_empty() || key.len() > 512 {
        return Err(ApiError::Invalid {
            field: "api_key",
            reason: "must be 1 to 512 characters",
        });
    }
    let connection = state
        .connections
        .save_api_key(&id, SecretString::from(key))
        .await?;
    Ok(Json(connection_json(&connection)))
}

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
        Revocation::Revoked => "revoked",
        Revocation::NotConfigured => "not-configured",
        Revocation::NotApplicable => "not-applicable",
        Revocation::Failed(_) => "failed",
    };
    Ok((StatusCode::NO_CONTENT, [("x-revocation", outcome)]).into_response())
}
