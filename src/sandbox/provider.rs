//! The sandbox's authorization server: a consent page with Approve and Deny,
//! a token endpoint (authorization_code with PKCE S256 checked, single-use
//! codes; refresh_token with rotation) and RFC 7009 revocation.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use maud::html;
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

use super::{Issued, Shared};
use crate::crypto::{random_token, secrets_equal};
use crate::web::page::BackLink;

const CODE_LIFETIME_SECS: i64 = 60;
/// An unanswered consent page is forgotten after this long.
const CONSENT_LIFETIME_SECS: i64 = 10 * 60;
/// Refresh tokens the sandbox issued work for a day.
const REFRESH_LIFETIME_SECS: i64 = 24 * 60 * 60;

pub(super) struct Consent {
    state: Option<String>,
    code_challenge: String,
    scope: Option<String>,
}

pub(super) struct CodeGrant {
    code_challenge: String,
    used: bool,
    /// Tokens issued for this code: revoked if the code is replayed (RFC 6749 §4.1.2).
    issued: Vec<String>,
    scope: Option<String>,
}

type Params = HashMap<String, String>;

fn issued(shared: &Shared) -> std::sync::MutexGuard<'_, Issued> {
    shared
        .issued
        .lock()
        .expect("sandbox state is never poisoned")
}

pub(super) async fn authorize_page(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Params>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("client_id") != Some(shared.client_id.as_str())
        || param("redirect_uri") != Some(shared.redirect_uri.as_str())
    {
        // RFC 6749 §4.1.2.1: never redirect to an unverified redirect URI.
        return shared.pages.message(
            StatusCode::BAD_REQUEST,
            "Sandbox: unknown client",
            "The client id or redirect URI is not the sandbox's.",
            None,
            &BackLink::ConnectPage { session: None },
        );
    }
    let state = param("state").map(str::to_owned);
    let challenge = match (
        param("response_type"),
        param("code_challenge"),
        param("code_challenge_method"),
    ) {
        (Some("code"), Some(challenge), Some("S256")) if (43..=128).contains(&challenge.len()) => {
            challenge.to_owned()
        }
        _ => {
            return redirect_back(
                &shared,
                &[
                    ("error", "invalid_request"),
                    (
                        "error_description",
                        "PKCE S256 and response_type=code are required",
                    ),
                ],
                state.as_deref(),
            )
        }
    };
    let id = random_token();
    let now = shared.clock.now();
    issued(&shared).consents.insert(
        id.clone(),
        Consent {
            state,
            code_challenge: challenge,
            scope: param("scope").map(str::to_owned),
        },
        now + CONSENT_LIFETIME_SECS,
        now,
    );
    let page = shared.pages.render(
        StatusCode::OK,
        "Sandbox: authorize this app?",
        html! {
            p { "The app " code { (shared.client_id) } " asks to use your (pretend) EmailOctopus account." }
            @if let Some(scope) = param("scope") { p { "Scopes: " code { (scope) } } }
            form method="post" action="/sandbox/oauth/authorize" {
                input type="hidden" name="consent" value=(id);
                button type="submit" name="decision" value="approve" { "Approve" }
                " "
                button.secondary type="submit" name="decision" value="deny" { "Deny" }
            }
        },
    );
    if shared.coop {
        // As some providers do: it cuts the tie between a popup and its opener.
        return (
            [(
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            )],
            page,
        )
            .into_response();
    }
    page
}

pub(super) async fn decide(
    State(shared): State<Arc<Shared>>,
    Form(params): Form<Params>,
) -> Response {
    let consent = params
        .get("consent")
        .and_then(|id| issued(&shared).consents.remove(id, shared.clock.now()));
    let Some(consent) = consent else {
        return shared.pages.message(
            StatusCode::BAD_REQUEST,
            "Sandbox: expired",
            "This consent was already answered or never asked. Start again from the app.",
            None,
            &BackLink::ConnectPage { session: None },
        );
    };
    if params.get("decision").map(String::as_str) != Some("approve") {
        return redirect_back(
            &shared,
            &[("error", "access_denied")],
            consent.state.as_deref(),
        );
    }
    let code = random_token();
    let now = shared.clock.now();
    issued(&shared).codes.insert(
        code.clone(),
        CodeGrant {
            code_challenge: consent.code_challenge,
            used: false,
            issued: Vec::new(),
            scope: consent.scope,
        },
        now + CODE_LIFETIME_SECS,
        now,
    );
    redirect_back(&shared, &[("code", &code)], consent.state.as_deref())
}

/// Back to the client with `iss` (RFC 9207) and the state, as a real provider would.
fn redirect_back(shared: &Shared, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    let mut url = Url::parse(&shared.redirect_uri).expect("the sandbox's redirect URI parses");
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &shared.issuer);
    }
    Redirect::to(url.as_str()).into_response()
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

/// RFC 6749 §2.3.1: HTTP Basic or the body, not both, and the secret must match.
fn client_authenticated(shared: &Shared, headers: &HeaderMap, params: &Params) -> bool {
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
    id == shared.client_id && secrets_equal(secret.as_bytes(), shared.client_secret.as_bytes())
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
    if !client_authenticated(&shared, &headers, &params) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(&shared, &params),
        Some("refresh_token") => refresh(&shared, &params),
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

fn exchange_code(shared: &Shared, params: &Params) -> Response {
    if params.get("redirect_uri") != Some(&shared.redirect_uri) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let mut issued = issued(shared);
    let now = shared.clock.now();
    let Some(grant) = params
        .get("code")
        .and_then(|c| issued.codes.get_mut(c, now))
    else {
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
    grant.used = true;
    let verifier = params
        .get("code_verifier")
        .map(String::as_str)
        .unwrap_or("");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if verifier.len() < 43 || !secrets_equal(challenge.as_bytes(), grant.code_challenge.as_bytes())
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let scope = grant.scope.clone();
    let (answer, tokens) = issue_tokens(shared, &mut issued, scope.as_deref(), now);
    if let Some(grant) = params
        .get("code")
        .and_then(|c| issued.codes.get_mut(c, now))
    {
        grant.issued = tokens;
    }
    answer
}

fn refresh(shared: &Shared, params: &Params) -> Response {
    let mut issued = issued(shared);
    let now = shared.clock.now();
    // Rotation: the presented refresh token is used up by this request.
    let known = params
        .get("refresh_token")
        .is_some_and(|t| issued.refresh_tokens.remove(t, now).is_some());
    if !known {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    issue_tokens(
        shared,
        &mut issued,
        params.get("scope").map(String::as_str),
        now,
    )
    .0
}

fn issue_tokens(
    shared: &Shared,
    issued: &mut Issued,
    scope: Option<&str>,
    now: i64,
) -> (Response, Vec<String>) {
    let access_token = format!("sandbox-at-{}", random_token());
    let refresh_token = format!("sandbox-rt-{}", random_token());
    let lifetime = shared.token_lifetime.as_secs() as i64;
    issued
        .access_tokens
        .insert(access_token.clone(), (), now + lifetime, now);
    issued
        .refresh_tokens
        .insert(refresh_token.clone(), (), now + REFRESH_LIFETIME_SECS, now);
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "refresh_token": refresh_token,
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let headers = [(header::CACHE_CONTROL, "no-store")];
    (
        (headers, Json(body)).into_response(),
        vec![access_token, refresh_token],
    )
}

pub(super) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    if !client_authenticated(&shared, &headers, &params) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if let Some(token) = params.get("token") {
        let mut issued = issued(&shared);
        let now = shared.clock.now();
        issued.access_tokens.remove(token, now);
        issued.refresh_tokens.remove(token, now);
    }
    // RFC 7009 §2.2: 200 whether or not the token was known.
    StatusCode::OK.into_response()
}
