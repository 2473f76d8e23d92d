//! Connect sessions: the app's backend creates them (admin bearer); the app's
//! page reads how one went with the session's own token (no bearer, and
//! readable cross-origin only by the session's app origin).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::AdminAuth;
use super::error::{ApiError, Problem};
use super::json_body;
use super::openapi::Unauthorized;
use super::profile::{session_profile, EndUserInput};
use crate::checked::SessionHash;
use crate::checked::{ConnectionId, ConnectionKind, Origin, ReturnTo};
use crate::clock::rfc3339;
use crate::connect_sessions::{IssuedSession, SessionReport, SessionStatus};
use crate::state::AppState;

/// How the session's connect answers at its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// A page on this server, or a redirect to `return_to`.
    #[default]
    Redirect,
    /// A page that tells `window.opener` on `origin`, then closes itself.
    Popup,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewSessionRequest {
    /// The connection the browser may connect (created by the connect).
    connection_id: String,
    /// Where the browser goes after connecting (redirect sessions); its
    /// origin must be in `RETURN_TO_ORIGINS`.
    return_to: Option<String>,
    /// `redirect` when absent.
    mode: Option<SessionMode>,
    /// The app's origin (scheme, host, port) that opens the popup; required
    /// for, and only for, popup sessions; must be in `RETURN_TO_ORIGINS`.
    origin: Option<String>,
    /// Who the connection belongs to in the app: given to it when the
    /// connect finishes, replacing its end user; absent or null keeps it.
    end_user: Option<EndUserInput>,
    /// Given to the connection when the connect finishes, replacing all
    /// its tags; absent or null keeps them. At most 32.
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedSession {
    /// Single use; give it to the browser, never log it.
    token: String,
    /// The connect page for this session.
    connect_url: String,
    /// RFC 3339; 30 minutes after creation.
    expires_at: String,
}

/// A connect session's status; never a token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionStatusBody {
    status: SessionStatus,
    connection_id: String,
    /// Null until connected.
    kind: Option<ConnectionKind>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// The session's token.
    session: String,
}

/// Creates a single-use connect session for one connection.
#[utoipa::path(
    post,
    path = "/connect-sessions",
    tag = "connect sessions",
    request_body = NewSessionRequest,
    responses(
        (status = 201, description = "Created", body = CreatedSession),
        (status = 401, response = Unauthorized),
        (status = 422, description = "Invalid connection id, return_to, mode, origin, end_user or tags", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn create(
    _: AdminAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: NewSessionRequest = json_body::parse(
        &headers,
        body,
        &[
            "connection_id",
            "return_to",
            "mode",
            "origin",
            "end_user",
            "tags",
        ],
    )?;
    let profile = session_profile(request.end_user.as_ref(), request.tags)?;
    let connection_id =
        ConnectionId::parse(&request.connection_id).map_err(|e| ApiError::Invalid {
            field: "connection_id",
            reason: e.reason(),
        })?;
    let allowed = &state.return_to_origins;
    let session = match (
        request.mode.unwrap_or_default(),
        request.origin,
        request.return_to,
    ) {
        (SessionMode::Popup, Some(origin), None) => {
            let origin = Origin::parse(&origin)
                .ok()
                .filter(|o| allowed.contains(o))
                .ok_or(ApiError::Invalid {
                    field: "origin",
                    reason: "must be an origin (scheme, host and port) in RETURN_TO_ORIGINS",
                })?;
            state
                .sessions
                .create_popup(connection_id, origin, profile)
                .await?
        }
        (SessionMode::Popup, None, _) => {
            return Err(ApiError::Invalid {
                field: "origin",
                reason: "is required in popup mode",
            })
        }
        (SessionMode::Popup, Some(_), Some(_)) => {
            return Err(ApiError::Invalid {
                field: "return_to",
                reason: "is not taken in popup mode: a popup session answers its opener",
            })
        }
        (SessionMode::Redirect, Some(_), _) => {
            return Err(ApiError::Invalid {
                field: "origin",
                reason: "is taken in popup mode only",
            })
        }
        (SessionMode::Redirect, None, return_to) => {
            let return_to = return_to
                .as_deref()
                .map(|raw| ReturnTo::parse(raw, allowed))
                .transpose()
                .map_err(|e| ApiError::Invalid {
                    field: "return_to",
                    reason: e.reason(),
                })?;
            state
                .sessions
                .create(connection_id, return_to, profile)
                .await?
        }
    };
    Ok((StatusCode::CREATED, Json(created(session))).into_response())
}

fn created(session: IssuedSession) -> CreatedSession {
    CreatedSession {
        token: session.token,
        connect_url: session.connect_url.into(),
        expires_at: rfc3339(session.expires_at),
    }
}

/// How a connect session went: authenticated by the session's own token,
/// read-only, for the session's whole life.
#[utoipa::path(
    get,
    path = "/connect-sessions/status",
    tag = "connect sessions",
    params(StatusQuery),
    responses(
        (status = 200, description = "The session's status; `Access-Control-Allow-Origin` only for the session's app origin", body = SessionStatusBody),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Response {
    let report = match query {
        Ok(Query(query)) => match SessionHash::of_token(&query.session) {
            Some(hash) => state.sessions.report(&hash).await.map_err(ApiError::from),
            None => Ok(None),
        },
        Err(_) => Ok(None),
    };
    let mut response = match report {
        Ok(Some(report)) => readable_by_its_app(&headers, &report, Json(status_body(&report))),
        Ok(None) => ApiError::UnknownSession.into_response(),
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn status_body(report: &SessionReport) -> SessionStatusBody {
    SessionStatusBody {
        status: report.status,
        connection_id: report.connection_id.to_string(),
        kind: report.kind,
    }
}

/// CORS for exactly the session's app origin: any other page's script gets
/// no `Access-Control-Allow-Origin`, so its browser does not let it read.
fn readable_by_its_app(
    headers: &HeaderMap,
    report: &SessionReport,
    answer: impl IntoResponse,
) -> Response {
    let mut response = answer.into_response();
    let requester = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Origin::parse(v).ok());
    if let (Some(requester), Some(app)) = (requester, &report.app_origin) {
        if requester == *app {
            let value = HeaderValue::from_str(&app.serialize())
                .expect("a serialised origin is valid header text");
            response
                .headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
    }
    response
}
