//! What the operator's page shows: the sign-in form, the table of
//! connections with counts by status, one connection with its events, and
//! the confirmation before a delete.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use maud::{html, Markup};
use serde::Deserialize;

use super::connection_in;
use super::session::{current, SignedIn};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::clock::{rfc3339, rfc3339_millis};
use crate::connections::Connection;
use crate::page::urlencode;
use crate::state::AppState;
use crate::store::{ConnectionFilter, DeliveryState, EventRow};
use crate::web::csrf;
use crate::web::error::PageError;

/// Rows of the table per page.
const PAGE_ROWS: i64 = 50;
/// Events shown on a connection's page (the rest through `GET /events`).
const SHOWN_EVENTS: i64 = 100;

#[derive(Deserialize)]
pub struct DashboardQuery {
    /// A connection id, or an end user's id or email.
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    /// The last connection id of the page before.
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    done: String,
}

/// What the last action did, named in the address it redirected to (so a
/// reload shows the page, not the action again): fixed words only.
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "signed-out" => "Signed out.",
        "deleted" => "The connection was deleted (and its grant revoked, where the provider allows).",
        "refreshed" => "Refreshed: the connection has a new access token.",
        "refresh-refused" => "The provider refused the refresh: the user must connect again.",
        "refresh-failed" => "The refresh failed (the provider did not answer, or this connection cannot be refreshed); nothing changed.",
        "redelivered" => "The event will be sent again in a moment.",
        _ => return None,
    })
}

/// `GET /admin`: the sign-in form, or the connections.
pub async fn dashboard(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    if state.admin_token.is_none() {
        return Err(PageError::AdminOff);
    }
    let Query(query) = query.map_err(|_| PageError::Malformed("query"))?;
    let Some(signed_in) = current(&state, &jar) else {
        return Ok(sign_in_page(&state, jar, notice(&query.done)));
    };
    let counts = state.connections.overview().counts().await?;
    let status = ConnectionStatus::from_stored(&query.status);
    let (found, more) = find(&state, &query, status).await?;
    let token = signed_in.form_token(&state);
    let body = html! {
        (notice_markup(notice(&query.done)))
        (counts_markup(&counts.by_status))
        form.search method="get" action="/admin" {
            label for="q" { "Find a connection" }
            input #q type="search" name="q" value=(query.q) placeholder="end-user email or id, connection id, or tag key:value";
            select name="status" aria-label="Status" {
                option value="" { "any status" }
                @for s in [ConnectionStatus::Connected, ConnectionStatus::NeedsReauth] {
                    option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                }
            }
            button type="submit" { "Search" }
        }
        (table(&found))
        @if let Some(last) = more {
            p { a href=(format!("/admin?q={}&status={}&after={}", urlencode(&query.q), urlencode(&query.status), urlencode(last.as_str()))) { "Next page" } }
        }
        h2 { "Connect someone" }
        form method="post" action="/admin/connect-link" {
            input type="hidden" name="csrf_token" value=(token);
            label for="connection_id" { "Connection id" }
            input #connection_id type="text" name="connection_id" required placeholder="user-42";
            button type="submit" { "Create a connect link" }
        }
        (sign_out_form(&token))
    };
    Ok(state
        .pages
        .render(StatusCode::OK, "Connections", body)
        .into_response())
}

/// The connections the search box and status name, a page of them, and
/// where the next page starts. The box takes an end user's email (it has an
/// `@`), a tag as `key:value` (no connection id has a `:`), or else an end
/// user's id or a connection's id.
async fn find(
    state: &AppState,
    query: &DashboardQuery,
    status: Option<ConnectionStatus>,
) -> Result<(Vec<Connection>, Option<ConnectionId>), PageError> {
    let wanted = query.q.trim();
    let mut filter = ConnectionFilter {
        status,
        ..ConnectionFilter::default()
    };
    let mut exact_id = None;
    if wanted.contains('@') {
        filter.end_user_email = Some(wanted.to_owned());
    } else if let Some((key, value)) = wanted.split_once(':') {
        filter.tags.push((key.to_owned(), value.to_owned()));
    } else if !wanted.is_empty() {
        filter.end_user_id = Some(wanted.to_owned());
        exact_id = ConnectionId::parse(wanted).ok();
    }
    let after = ConnectionId::parse(&query.after).ok();
    let mut listing = state
        .connections
        .find(&filter, after.as_ref(), Some(PAGE_ROWS))
        .await?;
    // A connection named exactly so heads the first page.
    if let (Some(id), None) = (exact_id, &after) {
        if let Some(named) = state.connections.get(&id).await? {
            let fits = status.is_none_or(|s| named.status == s);
            if fits && !listing.connections.iter().any(|c| c.id == named.id) {
                listing.connections.insert(0, named);
            }
        }
    }
    Ok((listing.connections, listing.next))
}

fn counts_markup(by_status: &[(ConnectionStatus, i64)]) -> Markup {
    let total: i64 = by_status.iter().map(|(_, n)| n).sum();
    let count = |status| {
        by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    html! {
        dl.counts {
            @for status in [ConnectionStatus::Connected, ConnectionStatus::NeedsReauth] {
                div {
                    dt { (status.as_str()) }
                    dd {
                        strong { (count(status)) }
                        " "
                        meter min="0" max=(total.max(1)) value=(count(status)) aria-label=(status.as_str()) {}
                    }
                }
            }
            div { dt { "all" } dd { strong { (total) } } }
        }
    }
}

fn table(connections: &[Connection]) -> Markup {
    html! {
        @if connections.is_empty() {
            p { "No connection matches." }
        } @else {
            div.scroll {
                table.admin {
                    thead { tr {
                        th { "Connection" } th { "Status" } th { "Kind" } th { "End user" } th { "Tags" }
                        th { "Last refresh" } th { "Last check" } th { "Last error" }
                    } }
                    tbody {
                        @for c in connections {
                            tr {
                                td { a href=(connection_address(&c.id)) { (c.id) } }
                                td { span class=(format!("status-{}", c.status.as_str())) { (c.status.as_str()) } }
                                td { (kind_name(c.kind)) }
                                td { (end_user_markup(c)) }
                                td { (tags_markup(c)) }
                                td { (optional_time(c.last_refreshed_at)) }
                                td { (optional_time(c.last_checked_at)) }
                                td { (c.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn end_user_markup(c: &Connection) -> Markup {
    html! {
        @if let Some(user) = &c.profile.end_user {
            (user.display_name().unwrap_or(user.id()))
            @if let Some(email) = user.email() { br; small { (email) } }
        }
    }
}

fn tags_markup(c: &Connection) -> Markup {
    html! {
        @for (key, value) in c.profile.tags.iter() {
            span.tag { (key) "=" (value) } " "
        }
    }
}

fn connection_address(id: &ConnectionId) -> String {
    format!("/admin/connections/{}", urlencode(id.as_str()))
}

fn kind_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Oauth => "OAuth",
        ConnectionKind::ApiKey => "API key",
    }
}

fn optional_time(at: Option<i64>) -> String {
    at.map(rfc3339).unwrap_or_default()
}

/// `GET /admin/connections/{id}`: one connection, its events and what can be done.
pub async fn connection(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(raw): Path<String>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let id = connection_in(&raw)?;
    let done = query.map(|Query(q)| q.done).unwrap_or_default();
    let connection = state.connections.get(&id).await?;
    let events = state.events.after(Some(&id), 0, SHOWN_EVENTS).await?;
    if connection.is_none() && events.is_empty() {
        return Err(PageError::NotFound);
    }
    let token = signed_in.form_token(&state);
    let address = connection_address(&id);
    let body = html! {
        (notice_markup(notice(&done)))
        p { a href="/admin" { "All connections" } }
        @match &connection {
            None => p.status { "Deleted. Its events stay readable until they are pruned." },
            Some(c) => {
                dl.fields {
                    dt { "Status" } dd.status { (c.status.as_str()) }
                    dt { "Kind" } dd { (kind_name(c.kind)) }
                    dt { "End user" } dd { (end_user_markup(c)) @if let Some(user) = &c.profile.end_user { " (id " code { (user.id()) } ")" } }
                    dt { "Tags" } dd { (tags_markup(c)) }
                    dt { "Scopes" } dd { (c.scopes.join(" ")) }
                    dt { "Token expires" } dd { (optional_time(c.expires_at)) }
                    dt { "Created" } dd { (rfc3339(c.created_at)) }
                    dt { "Updated" } dd { (rfc3339(c.updated_at)) }
                    dt { "Last refresh" } dd { (optional_time(c.last_refreshed_at)) }
                    dt { "Last check" } dd { (optional_time(c.last_checked_at)) }
                    dt { "Last error" } dd { (c.last_error.as_deref().unwrap_or("none")) }
                }
                div.actions {
                    form method="post" action="/admin/connect-link" {
                        input type="hidden" name="csrf_token" value=(token);
                        input type="hidden" name="connection_id" value=(id);
                        button type="submit" { "Create a connect link" }
                    }
                    @if c.kind == ConnectionKind::Oauth {
                        form method="post" action=(format!("{address}/refresh")) {
                            input type="hidden" name="csrf_token" value=(token);
                            button type="submit" { "Refresh now" }
                        }
                    }
                    a.button.danger href=(format!("{address}/delete")) { "Delete…" }
                }
            }
        }
        h2 { "Events" }
        (events_markup(&events, &token))
    };
    Ok(state
        .pages
        .render(StatusCode::OK, &format!("Connection {id}"), body)
        .into_response())
}

fn events_markup(events: &[EventRow], token: &str) -> Markup {
    html! {
        @if events.is_empty() {
            p { "No events yet." }
        } @else {
            div.scroll {
                table.admin {
                    thead { tr { th { "Event" } th { "At" } th { "Delivery" } th { "Attempts" } th {} } }
                    tbody {
                        @for e in events {
                            tr {
                                td { (e.event.as_str()) @if let Some(reason) = &e.reason { " (" (reason) ")" } }
                                td { (rfc3339_millis(e.at)) }
                                td { (delivery_name(e.state)) }
                                td {
                                    @if e.attempts.is_empty() { "none" }
                                    ol.attempts {
                                        @for a in &e.attempts {
                                            li {
                                                (rfc3339_millis(a.at)) ": "
                                                @if let Some(code) = a.status_code { (code) }
                                                @if let Some(error) = a.error { (error.as_str()) }
                                            }
                                        }
                                    }
                                }
                                td {
                                    @if e.state != DeliveryState::NotSent {
                                        form method="post" action=(format!("/admin/events/{}/redeliver", e.id)) {
                                            input type="hidden" name="csrf_token" value=(token);
                                            button.secondary type="submit" { "Redeliver" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn delivery_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
        DeliveryState::NotSent => "not sent (no webhook)",
    }
}

/// `GET /admin/connections/{id}/delete`: asks once more.
pub async fn confirm_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let id = connection_in(&raw)?;
    state
        .connections
        .get(&id)
        .await?
        .ok_or(PageError::NotFound)?;
    let address = connection_address(&id);
    let body = html! {
        p { "Delete " code { (id) } "? Its grant is revoked at the provider where it can be, and the app can no longer reach the account through it. This cannot be undone; the user can connect again with a new link." }
        form method="post" action=(format!("{address}/delete")) {
            input type="hidden" name="csrf_token" value=(signed_in.form_token(&state));
            div.actions {
                button.danger type="submit" { "Yes, delete" }
                a.button.secondary href=(address) { "Cancel" }
            }
        }
    };
    Ok(state
        .pages
        .render(StatusCode::OK, "Delete this connection?", body)
        .into_response())
}

/// The sign-in form: the admin token, with the page's CSRF cookie and token.
pub fn sign_in_page(state: &AppState, jar: CookieJar, done: Option<&str>) -> Response {
    let (jar, csrf_token) = csrf::issue(state, jar, None);
    let body = html! {
        (notice_markup(done))
        p { "This page is for the operator of this server. Sign in with its admin token (ADMIN_TOKEN)." }
        form method="post" action="/admin/sign-in" {
            input type="hidden" name="csrf_token" value=(csrf_token);
            label for="admin_token" { "Admin token" }
            input #admin_token type="password" name="admin_token" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
    };
    (jar, state.pages.render(StatusCode::OK, "Sign in", body)).into_response()
}

fn sign_out_form(token: &str) -> Markup {
    html! {
        form method="post" action="/admin/sign-out" {
            input type="hidden" name="csrf_token" value=(token);
            button.secondary type="submit" { "Sign out" }
        }
    }
}

fn notice_markup(notice: Option<&str>) -> Markup {
    html! { @if let Some(text) = notice { p.notice role="status" { (text) } } }
}

/// The page that shows a fresh connect link once.
pub fn connect_link_page(
    state: &AppState,
    id: &ConnectionId,
    url: &str,
    expires_at: i64,
) -> Response {
    let body = html! {
        p { "A connect link for " a href=(connection_address(id)) { code { (id) } } ". Send it to the person who connects; it works once, until " (rfc3339(expires_at)) "." }
        p { input.link type="text" readonly value=(url) aria-label="Connect link"; }
        p { a href="/admin" { "All connections" } }
    };
    state
        .pages
        .render(StatusCode::CREATED, "Connect link", body)
        .into_response()
}
