//! Backend routes on the event outbox: read it in order (to catch up by
//! polling, or to see what a webhook got), and redeliver one event.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::AdminAuth;
use super::connections::ConnectionPath;
use super::error::{ApiError, Problem};
use super::openapi::{NoSuchConnection, Unauthorized};
use crate::checked::{ConnectionId, ConnectionKind, EndUser, EventId, EventType, Tags};
use crate::clock::rfc3339_millis;
use crate::events::RedeliveryError;
use crate::state::AppState;
use crate::store::{DeliveryState, EventRow};

/// Events per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the page before; omit it to start from the oldest event kept.
    after: Option<String>,
    /// Events per page, 1 to 500 (default 100).
    limit: Option<String>,
}

/// One event: what a webhook carries, and how its delivery stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventBody {
    /// Stable: the same as the delivery's `webhook-id` and its body's `id`.
    id: String,
    event: EventType,
    connection_id: String,
    kind: ConnectionKind,
    /// RFC 3339, when it happened.
    at: String,
    /// Why a connection needs re-authorization (`refresh_rejected`, `api_key_rejected`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The connection's end user as it was when it happened; null when none.
    end_user: Option<EndUser>,
    /// The connection's tags as they were when it happened.
    tags: Tags,
    /// Its place in the outbox: pass it as `after` to read what came later.
    cursor: String,
    delivery: DeliveryBody,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryBody {
    state: DeliveryState,
    /// RFC 3339; set while the event is pending.
    next_attempt_at: Option<String>,
    /// Every attempt, oldest first.
    attempts: Vec<AttemptBody>,
}

/// One delivery attempt: never a body, which could hold anything.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptBody {
    /// RFC 3339.
    at: String,
    /// The receiver's status code, when it answered.
    status_code: Option<u16>,
    /// `timeout`, `unreachable` or `broken_answer`, when it did not.
    error: Option<&'static str>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventPage {
    events: Vec<EventBody>,
    /// Pass as `after` for the next page; the same cursor again when nothing is new yet.
    next_cursor: String,
}

impl From<&EventRow> for EventBody {
    fn from(event: &EventRow) -> Self {
        Self {
            id: event.id.to_string(),
            event: event.event,
            connection_id: event.connection_id.to_string(),
            kind: event.kind,
            at: rfc3339_millis(event.at),
            reason: event.reason.clone(),
            end_user: event.profile.end_user.clone(),
            tags: event.profile.tags.clone(),
            cursor: event.seq.to_string(),
            delivery: DeliveryBody {
                state: event.state,
                next_attempt_at: (event.state == DeliveryState::Pending)
                    .then_some(event.next_attempt_at)
                    .flatten()
                    .map(rfc3339_millis),
                attempts: event
                    .attempts
                    .iter()
                    .map(|attempt| AttemptBody {
                        at: rfc3339_millis(attempt.at),
                        status_code: attempt.status_code,
                        error: attempt.error.map(|e| e.as_str()),
                    })
                    .collect(),
            },
        }
    }
}

/// The events in the order they happened, a page at a time.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of events, oldest first", body = EventPage),
        (status = 401, response = Unauthorized),
        (status = 422, description = "A malformed cursor or limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn list(
    _: AdminAuth,
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    page(&state, None, query).await
}

/// One connection's events in the order they happened (a deleted connection's too).
#[utoipa::path(
    get,
    path = "/connections/{id}/events",
    tag = "events",
    params(("id" = String, Path, description = "The connection's id"), PageQuery),
    responses(
        (status = 200, description = "A page of the connection's events, oldest first", body = EventPage),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoSuchConnection),
        (status = 422, description = "A malformed cursor or limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn of_connection(
    _: AdminAuth,
    State(state): State<AppState>,
    ConnectionPath(id): ConnectionPath,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let page = page(&state, Some(&id), query).await?;
    if page.events.is_empty() && !state.events.knows_connection(&id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(page)
}

/// Sends one event again now, with a fresh round of attempts.
#[utoipa::path(
    post,
    path = "/events/{id}/redeliver",
    tag = "events",
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 202, description = "Scheduled: the event as it stands now", body = EventBody),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No WEBHOOK_URL is configured", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn redeliver(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<EventBody>), ApiError> {
    let id = EventId::parse(&raw).ok_or(RedeliveryError::NotFound)?;
    let event = state.events.redeliver(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(EventBody::from(&event))))
}

async fn page(
    state: &AppState,
    connection: Option<&ConnectionId>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::BadRequest("the query string is malformed"))?;
    let after = match query.after.as_deref() {
        None | Some("") => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or(ApiError::Invalid {
                field: "after",
                reason: "a cursor is the next_cursor or an event's cursor from an earlier answer",
            })?,
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or(ApiError::Invalid {
                field: "limit",
                reason: "a limit is a whole number from 1 to 500",
            })?,
    };
    let events = state.events.after(connection, after, limit).await?;
    let next_cursor = events.last().map_or(after, |e| e.seq).to_string();
    Ok(Json(EventPage {
        events: events.iter().map(EventBody::from).collect(),
        next_cursor,
    }))
}
