//! `POST /connect/api-key` and `POST /disconnect`: the page's two forms.
//! Both need the page's CSRF token and follow the same session rules as `/auth`.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use maud::html;
use secrecy::SecretString;
use serde::Deserialize;

use super::access::{grant, Grant, SessionUse};
use super::csrf;
use super::error::PageError;
use super::page::Pages;
use super::popup;
use crate::connect_sessions::KeyAttempt;
use crate::connect_sessions::{ConnectSessions, Outcome};
use crate::connections::CredentialError;
use crate::domain::{ConnectionId, ReturnTo};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ApiKeyForm {
    api_key: String,
    csrf_token: String,
    #[serde(default)]
    session: Option<String>,
}

#[derive(Deserialize)]
pub struct DisconnectForm {
    csrf_token: String,
    #[serde(default)]
    session: Option<String>,
}

pub async fn save_api_key(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ApiKeyForm>, FormRejection>,
) -> Response {
    let session = form
        .as_ref()
        .ok()
        .and_then(|Form(form)| form.session.as_deref())
        .and_then(ConnectSessions::hash);
    let result = api_key(&state, &jar, form).await;
    popup::answer(&state, session.as_ref(), result, saved_page).await
}

/// A key that was accepted and stored.
struct Saved {
    connection_id: ConnectionId,
    return_to: Option<ReturnTo>,
}

fn saved_page(pages: &Pages, saved: Saved) -> Response {
    if let Some(return_to) = saved.return_to {
        return Redirect::to(return_to.as_str()).into_response();
    }
    pages.render(
        StatusCode::OK,
        "Connected",
        html! {
            p.status { "Your EmailOctopus API key was accepted and saved." }
            p { "Connection " code { (saved.connection_id) } " is ready; you can close this page." }
        },
    )
}

async fn api_key(
    state: &AppState,
    jar: &CookieJar,
    form: Result<Form<ApiKeyForm>, FormRejection>,
) -> Result<Saved, PageError> {
    let Form(form) = form.map_err(PageError::from)?;
    csrf::verify(state, jar, &form.csrf_token)?;
    let key = form.api_key.trim();
    if key.is_empty() || key.len() > 512 {
        return Err(PageError::KeyRefused);
    }
    let key = SecretString::from(key.to_owned());
    // The link is used up by a key the API accepted, or by its last allowed
    // refusal: a typo can be retried, a guessing loop cannot go on.
    let checking = grant(state, form.session.as_deref(), SessionUse::KeyCheck).await?;
    let checking_session = checking.session.clone();
    if let Err(error) = state.connections.check_api_key(&key).await {
        let error = settle_failed_check(state, form.session.as_deref(), checking, error).await;
        if let (PageError::KeyAttemptsUsedUp, Some(session)) = (&error, &checking_session) {
            popup::record(state, session, Outcome::Failed).await;
        }
        return Err(error);
    }
    let grant = grant(state, form.session.as_deref(), SessionUse::Consume).await?;
    let connection = state
        .connections
        .store_api_key(&grant.connection_id, &key)
        .await?;
    tracing::info!(connection = %connection.id, "connected with an API key");
    if let Some(session) = &grant.session {
        popup::record(state, session, Outcome::Connected(connection.kind)).await;
    }
    Ok(Saved {
        connection_id: connection.id,
        return_to: grant.return_to,
    })
}

/// Counts a refused key against the link (or gives an unanswered check
/// back) and says whether the link is now used up.
async fn settle_failed_check(
    state: &AppState,
    session: Option<&str>,
    checking: Grant,
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
    jar: CookieJar,
    form: Result<Form<DisconnectForm>, FormRejection>,
) -> Response {
    let result = remove(&state, &jar, form).await;
    state.pages.answer(result)
}

async fn remove(
    state: &AppState,
    jar: &CookieJar,
    form: Result<Form<DisconnectForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(PageError::from)?;
    csrf::verify(state, jar, &form.csrf_token)?;
    let grant = grant(state, form.session.as_deref(), SessionUse::Consume).await?;
    state.connections.delete(&grant.connection_id).await?;
    Ok(state.pages.render(
        StatusCode::OK,
        "Disconnected",
        html! {
            p.status { "The connection " code { (grant.connection_id) } " was removed." }
            p { a href="/" { "Back to the connect page" } }
        },
    ))
}
