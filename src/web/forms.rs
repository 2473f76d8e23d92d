//! `POST /connect/api-key` and `POST /disconnect`: the page's two forms.
//! Both need the page's CSRF token and follow the same session rules as
//! `/auth`; the session travels in the form's address.

use axum::extract::rejection::FormRejection;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum_extra::extract::CookieJar;
use maud::html;
use serde::Deserialize;

use super::access::{target, SessionParam, SessionQuery, SessionUse, Target};
use super::csrf;
use super::error::PageError;
use super::popup;
use crate::checked::ApiKey;
use crate::checked::SessionHash;
use crate::connect_sessions::{KeyAttempt, Outcome};
use crate::connections::{CredentialError, Guesser};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ApiKeyForm {
    api_key: String,
    csrf_token: String,
    /// Older pages sent the session as a field; the address is preferred.
    #[serde(default)]
    session: Option<String>,
}

#[derive(Deserialize)]
pub struct DisconnectForm {
    csrf_token: String,
    #[serde(default)]
    session: Option<String>,
}

/// The session named in the address, or else in the form.
fn session_of(query: SessionParam, field: Option<String>) -> Option<String> {
    SessionQuery::of(query)
        .ok()
        .flatten()
        .or(field)
        .filter(|s| !s.is_empty())
}

pub async fn save_api_key(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: SessionParam,
    jar: CookieJar,
    form: Result<Form<ApiKeyForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    let session = session_of(query, form.session);
    // The check, its count against the link and the save run to completion:
    // a browser that goes away mid-check (a closed tab, a client timeout)
    // must not leave a try reserved that is never settled, nor a key the
    // API accepted unsaved.
    let saved = crate::task::run_to_completion({
        let (state, session) = (state.clone(), session.clone());
        async move {
            save(
                &state,
                &jar,
                peer.ip(),
                session.as_deref(),
                &form.api_key,
                &form.csrf_token,
            )
            .await
        }
    })
    .await;
    // A popup session's pages, errors too, tell the app's page how it went.
    let hash = session.as_deref().and_then(SessionHash::of_token);
    let pages = popup::pages_for(&state, hash.as_ref()).await;
    match saved {
        Ok((target, connection)) => Ok(super::outcome::connected(&pages, &target, &connection)),
        Err(error) => Ok((Extension(pages), error).into_response()),
    }
}

/// Checks and saves the key that `client` sent.
async fn save(
    state: &AppState,
    jar: &CookieJar,
    client: IpAddr,
    session: Option<&str>,
    api_key: &str,
    csrf_token: &str,
) -> Result<(Target, crate::connections::Connection), PageError> {
    csrf::verify(state, jar, csrf_token, session)?;
    let key = ApiKey::parse(api_key).map_err(|_| PageError::KeyRefused)?;
    let key = key.secret();
    // The link is used up by a key the API accepted, or by its last allowed
    // refusal: a typo can be retried, a guessing loop cannot go on. Without
    // a link (OPEN_CONNECT), the client's and the connection's budgets of
    // refused keys are what stops one.
    let checking = target(state, session, SessionUse::KeyCheck).await?;
    let guesser = Guesser::Client(client, &checking.connection_id);
    let checked = state.connections.check_api_key(key, guesser).await;
    if let Err(error) = checked {
        let checked_session = checking.session.clone();
        let error = settle_failed_check(state, session, checking, error).await;
        if let (PageError::KeyAttemptsUsedUp, Some(hash)) = (&error, &checked_session) {
            popup::record(state, hash, Outcome::Failed).await;
        }
        return Err(error);
    }
    let target = target(state, session, SessionUse::Consume).await?;
    let profile = state.sessions.profile(target.session.as_ref()).await?;
    let connection = state
        .connections
        .store_api_key(&target.connection_id, key, &profile)
        .await?;
    if let Some(hash) = &target.session {
        popup::record(state, hash, Outcome::Connected(connection.kind)).await;
    }
    Ok((target, connection))
}

/// Counts a refused key against the link (or gives an unanswered check
/// back) and says whether the link is now used up.
async fn settle_failed_check(
    state: &AppState,
    session: Option<&str>,
    checking: Target,
    error: CredentialError,
) -> PageError {
    let (Some(token), Some(attempt)) = (session, checking.key_attempt) else {
        return error.into();
    };
    let outcome = match error {
        CredentialError::KeyRefused => KeyAttempt::Refused,
        _ => KeyAttempt::Unanswered,
    };
    match state
        .sessions
        .settle_key_attempt(token, attempt, outcome)
        .await
    {
        Ok(true) => PageError::KeyAttemptsUsedUp,
        Ok(false) => error.into(),
        Err(store) => store.into(),
    }
}

pub async fn disconnect(
    State(state): State<AppState>,
    query: SessionParam,
    jar: CookieJar,
    form: Result<Form<DisconnectForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    let session = session_of(query, form.session);
    csrf::verify(&state, &jar, &form.csrf_token, session.as_deref())?;
    let target = target(&state, session.as_deref(), SessionUse::Consume).await?;
    let back = target.back_after_use(&state);
    if let Err(error) = state.connections.delete(&target.connection_id).await {
        return Ok((Extension(back), PageError::from(error)).into_response());
    }
    Ok(state.pages.render(
        StatusCode::OK,
        "Disconnected",
        html! {
            p.status { "The connection " code { (target.connection_id) } " was removed." }
            p { "The app can no longer reach your EmailOctopus account through it." }
            (back.markup())
        },
    ))
}
