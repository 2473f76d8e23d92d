//! What the operator's page changes: sign in and out, make a connect link,
//! refresh, redeliver an event, delete. Each needs the session's form token
//! (signing in needs the page's CSRF token), and each answers a redirect to
//! the page that shows the result, so a reload never repeats it.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::connection_in;
use super::pages::{connect_link_page, sign_in_page};
use super::session::{self, SignedIn};
use crate::checked::{ConnectionId, EventId};
use crate::connections::CredentialError;
use crate::events::RedeliveryError;
use crate::page::urlencode;
use crate::state::AppState;
use crate::store::ProfileUpdate;
use crate::web::csrf;
use crate::web::error::PageError;

#[derive(Deserialize)]
pub struct SignInForm {
    admin_token: String,
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct ChangeForm {
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct ConnectLinkForm {
    csrf_token: String,
    connection_id: String,
}

/// `POST /admin/sign-in`.
pub async fn sign_in(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    csrf::verify(&state, &jar, &form.csrf_token, None)?;
    let jar = session::sign_in(&state, jar, form.admin_token.trim())?;
    Ok((jar, Redirect::to("/admin")).into_response())
}

/// `POST /admin/sign-out`.
pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    jar: CookieJar,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    signed_in.check_form(&state, &form.csrf_token)?;
    let jar = session::sign_out(&state, jar);
    Ok(sign_in_page(&state, jar, Some("Signed out.")))
}

/// `POST /admin/connect-link`: a connect session, shown once.
pub async fn connect_link(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: Result<Form<ConnectLinkForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    signed_in.check_form(&state, &form.csrf_token)?;
    let id = ConnectionId::parse(form.connection_id.trim())
        .map_err(|_| PageError::Malformed("connection id"))?;
    let issued = state
        .sessions
        .create(id.clone(), None, ProfileUpdate::default())
        .await?;
    tracing::info!(connection = %id, "a connect link was made on the operator's page");
    Ok(connect_link_page(
        &state,
        &id,
        issued.connect_url.as_str(),
        issued.expires_at,
    ))
}

/// `POST /admin/connections/{id}/refresh`.
pub async fn refresh(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(raw): Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Result<Response, PageError> {
    allowed(&state, &signed_in, form)?;
    let id = connection_in(&raw)?;
    let done = match state.connections.refresh_now(&id).await {
        Ok(_) => "refreshed",
        Err(CredentialError::NotFound) => return Err(PageError::NotFound),
        Err(CredentialError::NeedsReauth) => "refresh-refused",
        Err(CredentialError::Store(error)) => return Err(PageError::Store(error)),
        Err(_) => "refresh-failed",
    };
    Ok(back_to(&id, done))
}

/// `POST /admin/connections/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(raw): Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Result<Response, PageError> {
    allowed(&state, &signed_in, form)?;
    let id = connection_in(&raw)?;
    state
        .connections
        .delete(&id)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(Redirect::to("/admin?done=deleted").into_response())
}

/// `POST /admin/events/{id}/redeliver`.
pub async fn redeliver(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(raw): Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Result<Response, PageError> {
    allowed(&state, &signed_in, form)?;
    let id = EventId::parse(&raw).ok_or(PageError::NotFound)?;
    let event = match state.events.redeliver(&id).await {
        Ok(event) => event,
        Err(RedeliveryError::NotFound | RedeliveryError::NoWebhook) => {
            return Err(PageError::NotFound)
        }
        Err(RedeliveryError::Store(error)) => return Err(PageError::Store(error)),
    };
    Ok(back_to(&event.connection_id, "redelivered"))
}

/// Whether a change's form carries this session's token.
fn allowed(
    state: &AppState,
    signed_in: &SignedIn,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Result<(), PageError> {
    let Form(form) = form?;
    signed_in.check_form(state, &form.csrf_token)
}

fn back_to(id: &ConnectionId, done: &str) -> Response {
    Redirect::to(&format!(
        "/admin/connections/{}?done={done}",
        urlencode(id.as_str())
    ))
    .into_response()
}
