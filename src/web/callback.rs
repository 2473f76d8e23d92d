//! `GET /callback`: finishes a flow. Everything about the browser and the
//! answer is checked (state, this browser's flow, expiry, single use, `iss`,
//! `error`) before any request goes to the provider.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum_extra::extract::cookie::{Cookie, CookieJar};

use super::access::Target;
use super::auth::flows_cookie;
use super::error::PageError;
use super::popup;
use crate::connect_sessions::Outcome;
use crate::connections::Connection;
use crate::crypto::secrets_equal;
use crate::oauth::{
    error_code, AuthorizationResponse, FlowError, PendingFlow, PendingFlows, ProviderClient,
};
use crate::state::AppState;

pub async fn finish(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Response {
    // The exchange, its save and the session's record run to completion in
    // a task of their own: a browser that goes away mid-exchange (a closed
    // tab, a client timeout) must not leave a grant alive at the provider
    // that nobody stored.
    let (jar, flow) =
        crate::task::run_to_completion(settle(state.clone(), query.unwrap_or_default(), jar)).await;
    let (target, result) = match flow {
        Ok(flow) => flow,
        Err(error) => return (jar, error).into_response(),
    };
    let session = target.session.as_ref();
    let pages = popup::pages_for(&state, session).await;
    match result {
        Ok(connection) => {
            (jar, super::outcome::connected(&pages, &target, &connection)).into_response()
        }
        // The flow's link is spent: an error page leads back to where it came from.
        Err(error) => (
            jar,
            Extension(target.back_after_use(&state)),
            Extension(pages),
            error,
        )
            .into_response(),
    }
}

/// Finishes the flow, counts it and records how its session ended.
async fn settle(state: AppState, query: String, jar: CookieJar) -> (CookieJar, Finished) {
    let (jar, flow) = complete(&state, &query, jar).await;
    let error = match &flow {
        Ok((_, Ok(_))) => None,
        Ok((_, Err(error))) | Err(error) => Some(error),
    };
    state.metrics.flow_finished(match error {
        None => "connected",
        Some(PageError::Declined) => "declined",
        Some(PageError::Credential(_)) => "provider_failed",
        Some(_) => "refused",
    });
    if let Ok((target, result)) = &flow {
        if let (Some(session), Some(outcome)) = (target.session.as_ref(), outcome(result)) {
            popup::record(&state, session, outcome).await;
        }
    }
    (jar, flow)
}

/// How the connect session that started this flow ended; a replayed callback
/// changes nothing, the first answer stands.
fn outcome(result: &Result<Connection, PageError>) -> Option<Outcome> {
    match result {
        Ok(connection) => Some(Outcome::Connected(connection.kind)),
        Err(PageError::Replayed) => None,
        Err(PageError::Declined) => Some(Outcome::Declined),
        Err(_) => Some(Outcome::Failed),
    }
}

/// What a callback found: the flow it belongs to and how its exchange went.
type Finished = Result<(Target, Result<Connection, PageError>), PageError>;

/// Returns the jar without this flow once the flow is found (any answer,
/// good or bad, ends it; the browser's other pending flows stay), and what
/// the flow was for.
async fn complete(state: &AppState, query: &str, jar: CookieJar) -> (CookieJar, Finished) {
    let Some(provider) = state.mode.provider() else {
        return (jar, Err(PageError::OAuthNotConfigured));
    };
    let Ok(response) = AuthorizationResponse::parse(query) else {
        return (
            jar,
            Err(PageError::Malformed("repeated or oversized parameters")),
        );
    };
    let Some(state_param) = response.state.clone() else {
        return (jar, Err(PageError::Flow(FlowError::Unknown)));
    };
    let name = PendingFlows::cookie_name(state.cookie_secure);
    let Some(cookie) = jar.get(name).map(|c| c.value().to_owned()) else {
        return (jar, Err(PageError::Flow(FlowError::Unknown)));
    };
    let mut pending = match PendingFlows::open(&cookie, name, &state.flow_keys) {
        Ok(pending) => pending,
        Err(error) => return (jar, Err(error.into())),
    };
    let flow = match pending.take(&state_param, state.clock.now()) {
        Ok(flow) => flow,
        Err(FlowError::Unknown) => return (jar, Err(FlowError::Unknown.into())),
        Err(error) => return (keep_pending(state, jar, pending), Err(error.into())),
    };
    let jar = keep_pending(state, jar, pending);
    let target = Target {
        connection_id: flow.connection_id.clone(),
        return_to: flow.return_to.clone(),
        key_attempt: None,
        session: flow.session.clone(),
    };
    let result = exchange(state, provider, response, flow).await;
    (jar, Ok((target, result)))
}

/// The jar with the browser's other pending flows, or without the cookie
/// when none is left.
fn keep_pending(state: &AppState, jar: CookieJar, mut pending: PendingFlows) -> CookieJar {
    let name = PendingFlows::cookie_name(state.cookie_secure);
    match pending.seal(name, &state.flow_keys) {
        Some(value) => jar.add(flows_cookie(state, value)),
        None => jar.remove(Cookie::build(name).path("/")),
    }
}

async fn exchange(
    state: &AppState,
    provider: &ProviderClient,
    response: AuthorizationResponse,
    flow: PendingFlow,
) -> Result<Connection, PageError> {
    // RFC 9207 §2.4: with an expected issuer, `iss` must be present and equal,
    // on error responses too.
    if let Some(expected) = provider.issuer() {
        let matches = response
            .iss
            .as_deref()
            .is_some_and(|iss| secrets_equal(iss.as_bytes(), expected.as_bytes()));
        if !matches {
            return Err(PageError::WrongIssuer);
        }
    }
    state.used_flows.claim(&flow).await?;
    if let Some(code) = response.error.as_deref() {
        return Err(match code {
            "access_denied" => PageError::Declined,
            _ => PageError::ProviderError {
                code: error_code(code),
                description: response.shown_description(),
            },
        });
    }
    let code = response.code.ok_or(PageError::MissingCode)?;
    let tokens = provider
        .exchange_code(code, flow.verifier)
        .await
        .map_err(|e| PageError::Credential(e.into()))?;
    let profile = state.sessions.profile(flow.session.as_ref()).await?;
    Ok(state
        .connections
        .save_oauth(&flow.connection_id, tokens, provider.scopes(), &profile)
        .await?)
}
