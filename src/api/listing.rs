//! `GET /connections`: every connection, or those of an end user, an
//! email, a status, a kind or tags, a page at a time when asked.

use axum::extract::{RawQuery, State};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use super::auth::AdminAuth;
use super::connections::ConnectionBody;
use super::error::{ApiError, Problem};
use super::openapi::Unauthorized;
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus, EndUser, Tags};
use crate::state::AppState;
use crate::store::ConnectionFilter;

/// The most connections one page may hold.
const MAX_LIMIT: i64 = 1000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionList {
    /// How this server connects: `oauth` (OAuth and API keys), `api_keys`
    /// (no OAuth client configured) or `sandbox`.
    mode: &'static str,
    connections: Vec<ConnectionBody>,
    /// Pass as `after` for the next page; null when there is no more
    /// (always null without `limit`).
    next_cursor: Option<String>,
}

/// The query `GET /connections` takes; every filter given must match.
#[derive(Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The app's id for the end user, exactly.
    end_user_id: Option<String>,
    /// The end user's email, without regard to case.
    end_user_email: Option<String>,
    /// `connected` or `needs_reauth`.
    status: Option<String>,
    /// `oauth` or `api_key`.
    kind: Option<String>,
    /// `key:value`; repeat it to ask for every one of several tags.
    tag: Vec<String>,
    /// Connections per page, 1 to 1000. Without it every match comes in one
    /// answer: apps with many connections should page.
    limit: Option<String>,
    /// The `next_cursor` of the page before.
    after: Option<String>,
}

impl ListQuery {
    /// Reads the query by hand, since `tag` may repeat. A parameter this
    /// route does not take, or a repeated one other than `tag`, is refused
    /// rather than ignored: a misspelt filter would otherwise list everyone.
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = Self::default();
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            let slot = match name.as_ref() {
                "tag" => {
                    query.tag.push(value);
                    continue;
                }
                "end_user_id" => &mut query.end_user_id,
                "end_user_email" => &mut query.end_user_email,
                "status" => &mut query.status,
                "kind" => &mut query.kind,
                "limit" => &mut query.limit,
                "after" => &mut query.after,
                _ => return Err(ApiError::Invalid {
                    field: "query",
                    reason:
                        "takes end_user_id, end_user_email, status, kind, tag, limit and after only",
                }),
            };
            if slot.replace(value).is_some() {
                return Err(ApiError::Invalid {
                    field: "query",
                    reason: "only tag may be given more than once",
                });
            }
        }
        Ok(query)
    }

    fn filter(&self) -> Result<ConnectionFilter, ApiError> {
        let invalid = |field, reason| ApiError::Invalid { field, reason };
        Ok(ConnectionFilter {
            end_user_id: self
                .end_user_id
                .as_deref()
                .map(EndUser::parse_id)
                .transpose()
                .map_err(|e| invalid("end_user_id", e.reason()))?,
            end_user_email: self
                .end_user_email
                .as_deref()
                .map(EndUser::parse_email)
                .transpose()
                .map_err(|e| invalid("end_user_email", e.reason()))?,
            status: self
                .status
                .as_deref()
                .map(|raw| {
                    ConnectionStatus::from_stored(raw)
                        .ok_or(invalid("status", "is connected or needs_reauth"))
                })
                .transpose()?,
            kind: self
                .kind
                .as_deref()
                .map(|raw| {
                    ConnectionKind::from_stored(raw).ok_or(invalid("kind", "is oauth or api_key"))
                })
                .transpose()?,
            tags: self
                .tag
                .iter()
                .map(|raw| Tags::parse_filter(raw).map_err(|e| invalid("tag", e.reason())))
                .collect::<Result<_, _>>()?,
        })
    }

    fn limit(&self) -> Result<Option<i64>, ApiError> {
        self.limit
            .as_deref()
            .map(|raw| {
                raw.parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or(ApiError::Invalid {
                        field: "limit",
                        reason: "a limit is a whole number from 1 to 1000",
                    })
            })
            .transpose()
    }

    fn after(&self) -> Result<Option<ConnectionId>, ApiError> {
        self.after
            .as_deref()
            .map(|raw| {
                URL_SAFE_NO_PAD
                    .decode(raw)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|id| ConnectionId::parse(&id).ok())
                    .ok_or(ApiError::Invalid {
                        field: "after",
                        reason: "a cursor is the next_cursor of an earlier answer",
                    })
            })
            .transpose()
    }
}

/// A page's cursor: opaque to apps, so that its form may change.
fn cursor(after: &ConnectionId) -> String {
    URL_SAFE_NO_PAD.encode(after.as_str())
}

/// The connections that match the filters, in id order.
#[utoipa::path(
    get,
    path = "/connections",
    tag = "connections",
    params(ListQuery),
    responses(
        (status = 200, description = "The connections that match, in id order", body = ConnectionList),
        (status = 401, response = Unauthorized),
        (status = 422, description = "A filter, limit or cursor that is malformed, or a parameter this route does not take", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn list(
    _: AdminAuth,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ConnectionList>, ApiError> {
    let query = ListQuery::parse(raw.as_deref())?;
    let listing = state
        .connections
        .find(&query.filter()?, query.after()?.as_ref(), query.limit()?)
        .await?;
    Ok(Json(ConnectionList {
        mode: state.mode.name(),
        connections: listing
            .connections
            .iter()
            .map(ConnectionBody::from)
            .collect(),
        next_cursor: listing.next.as_ref().map(cursor),
    }))
}
