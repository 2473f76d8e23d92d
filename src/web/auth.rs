//! `GET /auth`: starts a flow. The state, PKCE verifier, connection and
//! return_to are sealed into a cookie for this browser only; the browser is
//! sent to the provider.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::access::{grant, SessionUse};
use super::error::PageError;
use crate::oauth::{PendingFlow, FLOW_LIFETIME_SECS};
use crate::state::AppState;

/// A browser keeps at most this many flows pending; older ones are dropped so
/// its cookies stay well under any header limit.
const MAX_PENDING_FLOWS: usize = 5;

#[derive(Deserialize)]
pub struct AuthQuery {
    session: Option<String>,
}

pub async fn start(
    State(state): State<AppState>,
    query: Result<Query<AuthQuery>, axum::extract::rejection::QueryRejection>,
    jar: CookieJar,
) -> Response {
    let result = begin(&state, query.map(|q| q.0.session), jar).await;
    state.pages.answer(result)
}

async fn begin(
    state: &AppState,
    session: Result<Option<String>, impl Sized>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let session = session.map_err(|_| PageError::Malformed("query"))?;
    let grant = grant(state, session.as_deref(), SessionUse::Consume).await?;
    let authorization = state.provider.authorize();
    let flow = PendingFlow {
        state: authorization.state,
        verifier: authorization.verifier,
        connection_id: grant.connection_id,
        return_to: grant.return_to,
        session: grant.session,
        expires_at: state.clock.now() + FLOW_LIFETIME_SECS,
    };
    let cookie = Cookie::build((
        PendingFlow::cookie_name(flow.state.secret()),
        flow.seal(&state.keys),
    ))
    .http_only(true)
    .same_site(SameSite::Lax)
    .secure(state.cookie_secure)
    .path(state.cookie_path.clone())
    .max_age(time::Duration::seconds(FLOW_LIFETIME_SECS));
    let jar = drop_excess_flows(state, jar).add(cookie);
    state.metrics.flow_started();
    Ok((jar, Redirect::to(authorization.url.as_str())).into_response())
}

fn drop_excess_flows(state: &AppState, jar: CookieJar) -> CookieJar {
    let pending: Vec<String> = jar
        .iter()
        .filter(|c| c.name().starts_with("eoc_flow_"))
        .map(|c| c.name().to_owned())
        .collect();
    // Bounded, so a browser stuffed with planted cookies gets a short answer.
    let excess = pending
        .len()
        .saturating_sub(MAX_PENDING_FLOWS - 1)
        .min(MAX_PENDING_FLOWS);
    pending.into_iter().take(excess).fold(jar, |jar, name| {
        jar.remove(Cookie::build(name).path(state.cookie_path.clone()))
    })
}
