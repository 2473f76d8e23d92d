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
use crate::connect_sessions::KeyAttempt;
use crate::connections::CredentialError;
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
    let result = api_key(&state, &jar, form).await;
    state.pages.answer(result)
}

async fn api_key(
    state: &AppState,
    jar: &CookieJar,
    form: Result<Form<ApiKeyForm>, FormRejection>,
) -> Result<Response, PageError> {
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
    if let Err(error) = state.connections.check_api_key(&key).await {
        return Err(settle_failed_check(state, form.session.as_deref(), checking, error).await);
    }
    let grant = grant(state, form.session.as_deref(), SessionUse::Consume).await?;
    let connection = state
        .connections
        .store_api_key(&grant.connection_id, &key)
        .await?;
    tracing::info!(connection = %connection.id, "connected with an API key");
    if let Some(return_to) = grant.return_to {
        return Ok(Redirect::to(return_to.as_str()).into_response());
    }
    Ok(state.pages.render(
        StatusCode::OK,
        "Connected",
        html! {
            p.status { "Your EmailOctopus API key was accepted and saved." }
            p { "Connection " code { (connection.id) } " is ready; you can close this page." }
        },
    ))
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
