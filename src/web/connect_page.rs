//! `GET /`: the connection's status and what this browser can do about it:
//! connect (OAuth when configured, an API key always), reconnect, or go to
//! the Disconnect confirmation. Without a usable link it shows the status
//! only, never a button that would be refused.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use maud::{html, Markup};

use super::access::{target, SessionParam, SessionQuery, SessionUse};
use super::csrf;
use super::error::PageError;
use super::popup;
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::clock::rfc3339;
use crate::connections::Connection;
use crate::page::{urlencode, BackLink};
use crate::state::AppState;

pub async fn show(
    State(state): State<AppState>,
    query: SessionParam,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let session = SessionQuery::of(query)?;
    // Without a session the page is about `default`; its forms follow the
    // same rules as /auth, so they are offered only when OPEN_CONNECT is on.
    let (connection_id, can_act) = match &session {
        Some(token) => match target(&state, Some(token), SessionUse::Peek).await {
            Ok(target) => (target.connection_id, true),
            Err(error) => return Ok(popup::refused(&state, Some(token), error).await),
        },
        None => (ConnectionId::default_connection(), state.open_connect),
    };
    let connection = state.connections.get(&connection_id).await?;
    let (jar, actions) = if can_act {
        let (jar, csrf_token) = csrf::issue(&state, jar, session.as_deref());
        let forms = Forms {
            state: &state,
            session: session.as_deref(),
            csrf_token: &csrf_token,
        };
        (jar, forms.actions(connection.as_ref()))
    } else {
        let how = html! {
            p { "To connect, open the connect link your app gives you (or the one-time link this server printed when it started)." }
        };
        (jar, how)
    };
    let body = html! {
        (status(&connection_id, connection.as_ref()))
        (actions)
    };
    Ok((
        jar,
        state
            .pages
            .render(StatusCode::OK, "Connect EmailOctopus", body),
    )
        .into_response())
}

fn status(id: &ConnectionId, connection: Option<&Connection>) -> Markup {
    let text = match connection {
        None => "Not connected yet.".to_owned(),
        Some(c) if c.status == ConnectionStatus::NeedsReauth => {
            "EmailOctopus no longer accepts this connection: connect again.".to_owned()
        }
        Some(c) => {
            let how = match c.kind {
                ConnectionKind::Oauth => "by signing in",
                ConnectionKind::ApiKey => "with an API key",
            };
            format!("Connected {how} (since {}).", rfc3339(c.updated_at))
        }
    };
    html! {
        p { "Connection " code { (id) } }
        p.status { (text) }
    }
}

/// The forms of a page whose link can be used.
struct Forms<'a> {
    state: &'a AppState,
    session: Option<&'a str>,
    csrf_token: &'a str,
}

impl Forms<'_> {
    fn actions(&self, connection: Option<&Connection>) -> Markup {
        let connect = if connection.is_some() {
            "Reconnect"
        } else {
            "Connect EmailOctopus"
        };
        html! {
            @if self.state.mode.provider().is_some() {
                div.actions { a.button href=(self.address("/auth")) { (connect) } }
                details {
                    summary { "Use an API key instead" }
                    (self.api_key_form("Save API key"))
                }
            } @else {
                (self.api_key_form(connect))
            }
            @if connection.is_some() {
                p { a.button.secondary href=(self.address("/disconnect")) { "Disconnect" } }
            }
        }
    }

    fn api_key_form(&self, submit: &str) -> Markup {
        html! {
            p.hint {
                "Create an API key in EmailOctopus: open the menu under your account name, choose "
                strong { "Integrations & API" } ", then under " strong { "API" } " choose "
                strong { "Manage" } " and add a key. EmailOctopus shows a key only once, so copy it straight away. "
                "It is checked with EmailOctopus before it is saved, and stored encrypted."
            }
            form method="post" action=(self.address("/connect/api-key")) {
                input type="hidden" name="csrf_token" value=(self.csrf_token);
                label for="api_key" { "API key" }
                input #api_key type="password" name="api_key" autocomplete="off" required;
                button type="submit" { (submit) }
            }
        }
    }

    fn address(&self, path: &str) -> String {
        address(path, self.session)
    }
}

/// A route's address carrying the connect session, if there is one.
pub fn address(path: &str, session: Option<&str>) -> String {
    match session.filter(|s| !s.is_empty()) {
        Some(token) => format!("{path}?session={}", urlencode(token)),
        None => path.to_owned(),
    }
}

/// `GET /disconnect`: asks once more, without JavaScript, before anything is removed.
pub async fn confirm_disconnect(
    State(state): State<AppState>,
    query: SessionParam,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let session = SessionQuery::of(query)?;
    let target = target(&state, session.as_deref(), SessionUse::Peek).await?;
    let (jar, csrf_token) = csrf::issue(&state, jar, session.as_deref());
    let body = html! {
        p { "Disconnect " code { (target.connection_id) } "?" }
        p { "The app will no longer be able to reach your EmailOctopus account through this connection. You can connect again later with a new link." }
        form method="post" action=(address("/disconnect", session.as_deref())) {
            input type="hidden" name="csrf_token" value=(csrf_token);
            div.actions {
                button type="submit" { "Yes, disconnect" }
                a.button.secondary href=(BackLink::connect_page(session.as_deref())) { "Cancel" }
            }
        }
    };
    Ok((jar, state.pages.render(StatusCode::OK, "Disconnect?", body)).into_response())
}
