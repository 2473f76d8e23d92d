//! The token endpoint (authorization_code with PKCE S256 checked and
//! single-use codes; refresh_token with rotation) and RFC 7009 revocation,
//! both for the one client authenticated as RFC 6749 §2.3.1 says.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::provider::{Issued, Shared};
use super::settings::Settings;
use crate::clock::UnixTime;
use crate::crypto::{random_token, secrets_equal};

/// Refresh tokens the sandbox issued work for a day.
const REFRESH_LIFETIME_SECS: i64 = 24 * 60 * 60;

type Params = HashMap<String, String>;

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

/// RFC 6749 §2.3.1: HTTP Basic or the body, not both, and the secret must match.
fn client_authenticated(settings: &Settings, headers: &HeaderMap, params: &Params) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => return false,
        (Some(pair), None) => match pair.split_once(':') {
            Some((id, secret)) => (decode_form(id), decode_form(secret)),
            None => return false,
        },
        (None, Some(secret)) => (
            params.get("client_id").cloned().unwrap_or_default(),
            secret.clone(),
        ),
        (None, None) => return false,
    };
    id == settings.client_id
        && secrets_equal(
            secret.as_bytes(),
            settings.client_secret.expose_secret().as_bytes(),
        )
}

/// Basic credentials are form-urlencoded first (RFC 6749 §2.3.1).
fn decode_form(raw: &str) -> String {
    url::form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let settings = shared.settings();
    if !client_authenticated(&settings, &headers, &params) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(&shared, &settings, &params),
        Some("refresh_token") => refresh(&shared, &settings, &params),
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

fn exchange_code(shared: &Shared, settings: &Settings, params: &Params) -> Response {
    let mut issued = shared.issued();
    let now = shared.clock.now();
    let code = params.get("code").map(String::as_str).unwrap_or("");
    let Some(grant) = issued.codes.get_mut(code, now) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if grant.used {
        // A replayed code: refuse it and withdraw what the first use got.
        let withdrawn = std::mem::take(&mut grant.issued);
        for token in withdrawn {
            issued.access_tokens.remove(&token, now);
            issued.refresh_tokens.remove(&token, now);
        }
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    // Used up by this attempt, whether or not it succeeds.
    grant.used = true;
    if params.get("redirect_uri") != Some(&grant.redirect_uri)
        || (settings.pkce && !verifier_matches(params, grant.code_challenge.as_deref()))
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let scope = grant.scope.clone();
    let (answer, tokens) = issue_tokens(settings, &mut issued, scope.as_deref(), now);
    if let Some(grant) = issued.codes.get_mut(code, now) {
        grant.issued = tokens;
    }
    answer
}

/// RFC 7636 §4.6: the verifier's S256 is the challenge the code was issued for.
fn verifier_matches(params: &Params, challenge: Option<&str>) -> bool {
    let verifier = params
        .get("code_verifier")
        .map(String::as_str)
        .unwrap_or("");
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    verifier.len() >= 43
        && challenge
            .is_some_and(|challenge| secrets_equal(computed.as_bytes(), challenge.as_bytes()))
}

fn refresh(shared: &Shared, settings: &Settings, params: &Params) -> Response {
    let mut issued = shared.issued();
    let now = shared.clock.now();
    let presented = params
        .get("refresh_token")
        .map(String::as_str)
        .unwrap_or("");
    // With rotation the presented refresh token is used up by this request;
    // without, it stays the one to use.
    let known = if settings.refresh_tokens {
        issued.refresh_tokens.remove(presented, now).is_some()
    } else {
        issued.refresh_tokens.contains(presented, now)
    };
    if !known {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let scope = params.get("scope").map(String::as_str);
    issue_tokens(settings, &mut issued, scope, now).0
}

/// An answer with a new access token (and a refresh token, when the
/// provider issues them), and the tokens it holds.
fn issue_tokens(
    settings: &Settings,
    issued: &mut Issued,
    scope: Option<&str>,
    now: UnixTime,
) -> (Response, Vec<String>) {
    let access_token = format!("sandbox-at-{}", random_token());
    issued.access_tokens.insert(
        access_token.clone(),
        (),
        now.saturating_add(settings.expires_in),
        now,
    );
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": settings.expires_in,
    });
    let mut tokens = vec![access_token];
    if settings.refresh_tokens {
        let refresh_token = format!("sandbox-rt-{}", random_token());
        issued
            .refresh_tokens
            .insert(refresh_token.clone(), (), now + REFRESH_LIFETIME_SECS, now);
        body["refresh_token"] = json!(refresh_token);
        tokens.push(refresh_token);
    }
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let headers = [(header::CACHE_CONTROL, "no-store")];
    ((headers, Json(body)).into_response(), tokens)
}

pub(super) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    if !client_authenticated(&shared.settings(), &headers, &params) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if let Some(token) = params.get("token") {
        let mut issued = shared.issued();
        let now = shared.clock.now();
        issued.access_tokens.remove(token, now);
        issued.refresh_tokens.remove(token, now);
    }
    // RFC 7009 §2.2: 200 whether or not the token was known.
    StatusCode::OK.into_response()
}
