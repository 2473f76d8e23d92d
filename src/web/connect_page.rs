//! `GET /`: the connection's status, Connect, the API-key form and Disconnect.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use maud::html;
use serde::Deserialize;

use super::access::{grant, SessionUse};
use super::csrf;
use super::error::PageError;
use crate::clock::rfc3339;
use crate::domain::ConnectionId;
use crate::domain::{ConnectionKind, ConnectionStatus};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PageQuery {
    session: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
    jar: CookieJar,
) -> Response {
    let result = render(&state, query.map(|q| q.0.session), jar).await;
    state.pages.answer(result)
}

async fn render(
    state: &AppState,
    session: Result<Option<String>, impl Sized>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let session = session.map_err(|_| PageError::Malformed("query"))?;
    // Without a session the page is about `default`; its buttons follow the
    // same rules as /auth, so they only work when OPEN_CONNECT is on.
    let (connection_id, needs_link) = match session.as_deref().filter(|s| !s.is_empty()) {
        Some(token) => (
            grant(state, Some(token), SessionUse::Peek)
                .await?
                .connection_id,
            false,
        ),
        None => (ConnectionId::default_connection(), !state.open_connect),
    };
    let connection = state.connections.get(&connection_id).await?;
    let (jar, csrf_token) = csrf::issue(state, jar);
    let session = session.unwrap_or_default();
    let auth_href = if session.is_empty() {
        "/auth".to_owned()
    } else {
        format!("/auth?session={}", urlencode(&session))
    };
    let (status_text, connected) = match &connection {
        None => ("Not connected yet.".to_owned(), false),
        Some(c) if c.status == ConnectionStatus::NeedsReauth => (
            "The connection has expired at EmailOctopus: connect again.".to_owned(),
            true,
        ),
        Some(c) => {
            let how = match c.kind {
                ConnectionKind::Oauth => "by signing in",
                ConnectionKind::ApiKey => "with an API key",
            };
            (
                format!("Connected {how} (since {}).", rfc3339(c.updated_at)),
                true,
            )
        }
    };
    let body = html! {
        p { "Connection " code { (connection_id) } }
        p.status { (status_text) }
        @if needs_link {
            p { "To connect, open the one-time connect link the server printed at start, or the one your app gives you." }
        }
        p { a.button href=(auth_href) { "Connect EmailOctopus" } }
        details {
            summary { "Use an API key instead" }
            p { "EmailOctopus API keys are made in your EmailOctopus account under Integrations & API. The key is checked with EmailOctopus before it is saved, and stored encrypted." }
            form method="post" action="/connect/api-key" {
                input type="hidden" name="session" value=(session);
                input type="hidden" name="csrf_token" value=(csrf_token);
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="off" required;
                button type="submit" { "Save API key" }
            }
        }
        @if connected {
            form method="post" action="/disconnect" {
                input type="hidden" name="session" value=(session);
                input type="hidden" name="csrf_token" value=(csrf_token);
                button.secondary type="submit" { "Disconnect" }
            }
        }
    };
    Ok((
        jar,
        state
            .pages
            .render(StatusCode::OK, "Connect EmailOctopus", body),
    )
        .into_response())
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
