//! `GET /auth`: starts a flow. The state, PKCE verifier, connection and
//! return_to are added to this browser's pending-flows cookie (which keeps
//! only the newest few); the browser is sent to the provider.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::access::{target, SessionParam, SessionQuery, SessionUse};
use super::error::PageError;
use super::popup;
use crate::oauth::{PendingFlow, PendingFlows, FLOW_LIFETIME_SECS};
use crate::state::AppState;

pub async fn start(
    State(state): State<AppState>,
    query: SessionParam,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let session = SessionQuery::of(query)?;
    // Before the session is looked at, so that the link is not spent on a
    // flow that cannot start.
    let provider = state.mode.provider().ok_or(PageError::OAuthNotConfigured)?;
    let target = match target(&state, session.as_deref(), SessionUse::Consume).await {
        Ok(target) => target,
        Err(error) => return Ok(popup::refused(&state, session.as_deref(), error).await),
    };
    let authorization = provider.authorize();
    let now = state.clock.now();
    let flow = PendingFlow {
        state: authorization.state,
        verifier: authorization.verifier,
        connection_id: target.connection_id,
        return_to: target.return_to,
        session: target.session,
        expires_at: now + FLOW_LIFETIME_SECS,
    };
    let name = PendingFlows::cookie_name(state.cookie_secure);
    // A cookie we cannot open (tampered, or from an older key) is replaced.
    let mut pending = jar
        .get(name)
        .and_then(|c| PendingFlows::open(c.value(), name, &state.flow_keys).ok())
        .unwrap_or_default();
    pending.push(flow, now);
    let value = pending
        .seal(name, &state.flow_keys)
        .expect("the newest flow always fits");
    let jar = jar.add(flows_cookie(&state, value));
    state.metrics.flow_started();
    Ok((jar, Redirect::to(authorization.url.as_str())).into_response())
}

/// The browser's pending-flows cookie: HttpOnly, SameSite=Lax (it must come
/// back on the provider's top-level redirect), `Path=/` so that `/auth` sees it.
pub(super) fn flows_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((PendingFlows::cookie_name(state.cookie_secure), value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.cookie_secure)
        .path("/")
        .max_age(time::Duration::seconds(FLOW_LIFETIME_SECS))
        .build()
}
