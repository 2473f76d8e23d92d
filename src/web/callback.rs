//! `GET /callback`: finishes a flow. Everything about the browser and the
//! answer is checked (state, this browser's flow, expiry, single use, `iss`,
//! `error`) before any request goes to the provider.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use maud::html;

use super::auth::flows_cookie;
use super::error::PageError;
use super::page::Pages;
use super::popup;
use crate::connect_sessions::{Outcome, SessionHash};
use crate::connections::Connection;
use crate::crypto::secrets_equal;
use crate::domain::ReturnTo;
use crate::oauth::{
    error_code, AuthorizationResponse, FlowError, PendingFlow, PendingFlows, FLOW_LIFETIME_SECS,
};
use crate::state::AppState;

pub async fn finish(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Response {
    let (jar, session, result) = complete(&state, query.as_deref().unwrap_or(""), jar).await;
    state.metrics.flow_finished(match &result {
        Ok(_) => "connected",
        Err(PageError::Declined) => "declined",
        Err(PageError::Credential(_)) => "provider_failed",
        Err(_) => "refused",
    });
    if let (Some(session), Some(outcome)) = (&session, outcome(&result)) {
        popup::record(&state, session, outcome).await;
    }
    let page = popup::answer(&state, session.as_ref(), result, connected_page).await;
    (jar, page).into_response()
}

/// A flow that ended with a stored connection.
struct Connected {
    connection: Connection,
    return_to: Option<ReturnTo>,
}

/// How the connect session that started this flow ended; a replayed callback
/// changes nothing, the first answer stands.
fn outcome(result: &Result<Connected, PageError>) -> Option<Outcome> {
    match result {
        Ok(connected) => Some(Outcome::Connected(connected.connection.kind)),
        Err(PageError::Replayed) => None,
        Err(PageError::Declined) => Some(Outcome::Declined),
        Err(_) => Some(Outcome::Failed),
    }
}

fn connected_page(pages: &Pages, connected: Connected) -> Response {
    if let Some(return_to) = connected.return_to {
        return Redirect::to(return_to.as_str()).into_response();
    }
    pages.render(
        StatusCode::OK,
        "Connected",
        html! {
            p.status { "Your EmailOctopus account is connected." }
            p { "Connection " code { (connected.connection.id) } " is ready; you can close this page." }
        },
    )
}

/// Returns the jar without this flow once the flow is found (any answer,
/// good or bad, ends it; the browser's other pending flows stay), and the
/// connect session that started it.
async fn complete(
    state: &AppState,
    query: &str,
    jar: CookieJar,
) -> (CookieJar, Option<SessionHash>, Result<Connected, PageError>) {
    let response = match AuthorizationResponse::parse(query) {
        Ok(response) => response,
        Err(_) => {
            return (
                jar,
                None,
                Err(PageError::Malformed("repeated or oversized parameters")),
            )
        }
    };
    let Some(state_param) = response.state.clone() else {
        return (jar, None, Err(PageError::Flow(FlowError::Unknown)));
    };
    let name = PendingFlows::cookie_name(state.cookie_secure);
    let Some(cookie) = jar.get(name).map(|c| c.value().to_owned()) else {
        return (jar, None, Err(PageError::Flow(FlowError::Unknown)));
    };
    let mut pending = match PendingFlows::open(&cookie, name, &state.keys) {
        Ok(pending) => pending,
        Err(error) => return (jar, None, Err(error.into())),
    };
    let flow = match pending.take(&state_param, state.clock.now()) {
        Ok(flow) => flow,
        Err(FlowError::Unknown) => return (jar, None, Err(FlowError::Unknown.into())),
        Err(error) => return (keep_pending(state, jar, pending), None, Err(error.into())),
    };
    let jar = keep_pending(state, jar, pending);
    let session = flow.session.clone();
    (jar, session, exchange(state, response, flow).await)
}

/// The jar with the browser's other pending flows, or without the cookie
/// when none is left.
fn keep_pending(state: &AppState, jar: CookieJar, mut pending: PendingFlows) -> CookieJar {
    let name = PendingFlows::cookie_name(state.cookie_secure);
    match pending.seal(name, &state.keys) {
        Some(value) => jar.add(flows_cookie(state, value)),
        None => jar.remove(Cookie::build(name).path("/")),
    }
}

async fn exchange(
    state: &AppState,
    response: AuthorizationResponse,
    flow: PendingFlow,
) -> Result<Connected, PageError> {
    // RFC 9207 §2.4: with an expected issuer, `iss` must be present and equal,
    // on error responses too.
    if let Some(expected) = state.provider.issuer() {
        let matches = response
            .iss
            .as_deref()
            .is_some_and(|iss| secrets_equal(iss.as_bytes(), expected.as_bytes()));
        if !matches {
            return Err(PageError::WrongIssuer);
        }
    }
    let state_hash = PendingFlow::state_hash(flow.state.secret());
    let first_use = state
        .store
        .consume_flow_state(
            &state_hash,
            flow.expires_at.max(state.clock.now() + FLOW_LIFETIME_SECS),
        )
        .await?;
    if !first_use {
        return Err(PageError::Replayed);
    }
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
    let tokens = state
        .provider
        .exchange_code(code, flow.verifier)
        .await
        .map_err(|e| PageError::Credential(e.into()))?;
    let connection = state
        .connections
        .save_oauth(&flow.connection_id, tokens, state.provider.scopes())
        .await?;
    tracing::info!(connection = %connection.id, "connected by the OAuth flow");
    Ok(Connected {
        connection,
        return_to: flow.return_to,
    })
}
