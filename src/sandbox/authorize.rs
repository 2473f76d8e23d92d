//! The authorization endpoint: checks the client, its redirect URI and PKCE,
//! then asks on a consent page (Approve or Deny) or approves at once, and
//! sends the browser back with a single-use code, the state and `iss`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use url::Url;

use super::provider::{CodeGrant, Shared};
use super::settings::{Consent, Settings};
use crate::crypto::random_token;
use crate::page::BackLink;

const CODE_LIFETIME_SECS: i64 = 60;
/// An unanswered consent page is forgotten after this long.
const CONSENT_LIFETIME_SECS: i64 = 10 * 60;

/// An authorization request the provider accepted.
pub(super) struct AuthorizationRequest {
    /// As sent: the code's exchange is held to it character for character.
    redirect_uri: String,
    /// Where the browser is sent back.
    redirect_to: Url,
    state: Option<String>,
    code_challenge: Option<String>,
    scope: Option<String>,
}

type Params = HashMap<String, String>;

pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Params>,
) -> Response {
    let settings = shared.settings();
    let param = |name: &str| params.get(name).map(String::as_str);
    let redirect = param("redirect_uri").filter(|asked| {
        settings
            .redirect_uri
            .as_deref()
            .is_none_or(|registered| registered == *asked)
    });
    let redirect_to = redirect.and_then(|raw| Url::parse(raw).ok());
    let (Some(redirect_uri), Some(redirect_to)) = (redirect, redirect_to) else {
        // RFC 6749 §4.1.2.1: never redirect to an unverified redirect URI.
        return unknown_client(&shared);
    };
    if param("client_id") != Some(settings.client_id.as_str()) {
        return unknown_client(&shared);
    }
    let mut request = AuthorizationRequest {
        redirect_uri: redirect_uri.to_owned(),
        redirect_to,
        state: param("state").map(str::to_owned),
        code_challenge: None,
        scope: param("scope").map(str::to_owned),
    };
    let challenge = match (param("code_challenge"), param("code_challenge_method")) {
        (Some(challenge), Some("S256")) if (43..=128).contains(&challenge.len()) => Some(challenge),
        _ => None,
    };
    if param("response_type") != Some("code") || (settings.pkce && challenge.is_none()) {
        return redirect_back(
            &settings,
            &request,
            &[
                ("error", "invalid_request"),
                (
                    "error_description",
                    "PKCE S256 and response_type=code are required",
                ),
            ],
        );
    }
    if settings.pkce {
        request.code_challenge = challenge.map(str::to_owned);
    }
    match settings.consent {
        Consent::AutoApprove => approve(&shared, &settings, request),
        Consent::Page => consent_page(&shared, &settings, request),
    }
}

fn unknown_client(shared: &Shared) -> Response {
    shared.pages.message(
        StatusCode::BAD_REQUEST,
        "Sandbox: unknown client",
        "The client id or redirect URI is not the sandbox's.",
        None,
        &BackLink::ConnectPage { session: None },
    )
}

fn consent_page(shared: &Shared, settings: &Settings, request: AuthorizationRequest) -> Response {
    let id = random_token();
    let scope = request.scope.clone();
    let now = shared.clock.now();
    shared
        .issued()
        .consents
        .insert(id.clone(), request, now + CONSENT_LIFETIME_SECS, now);
    // The form's action is relative: the provider answers wherever it is mounted.
    let page = shared.pages.render(
        StatusCode::OK,
        "Sandbox: authorize this app?",
        html! {
            p { "The app " code { (settings.client_id) } " asks to use your (pretend) EmailOctopus account." }
            @if let Some(scope) = scope { p { "Scopes: " code { (scope) } } }
            form method="post" action="authorize" {
                input type="hidden" name="consent" value=(id);
                button type="submit" name="decision" value="approve" { "Approve" }
                " "
                button.secondary type="submit" name="decision" value="deny" { "Deny" }
            }
        },
    );
    if settings.coop {
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

/// The consent page's answer.
pub(super) async fn decide(
    State(shared): State<Arc<Shared>>,
    Form(params): Form<Params>,
) -> Response {
    let request = params
        .get("consent")
        .and_then(|id| shared.issued().consents.remove(id, shared.clock.now()));
    let Some(request) = request else {
        return shared.pages.message(
            StatusCode::BAD_REQUEST,
            "Sandbox: expired",
            "This consent was already answered or never asked. Start again from the app.",
            None,
            &BackLink::ConnectPage { session: None },
        );
    };
    let settings = shared.settings();
    if params.get("decision").map(String::as_str) != Some("approve") {
        return redirect_back(&settings, &request, &[("error", "access_denied")]);
    }
    approve(&shared, &settings, request)
}

fn approve(shared: &Shared, settings: &Settings, request: AuthorizationRequest) -> Response {
    let code = random_token();
    let now = shared.clock.now();
    shared.issued().codes.insert(
        code.clone(),
        CodeGrant {
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            scope: request.scope.clone(),
            used: false,
            issued: Vec::new(),
        },
        now + CODE_LIFETIME_SECS,
        now,
    );
    redirect_back(settings, &request, &[("code", &code)])
}

/// Back to the client with the state and `iss` (RFC 9207), as a real provider would.
fn redirect_back(
    settings: &Settings,
    request: &AuthorizationRequest,
    pairs: &[(&str, &str)],
) -> Response {
    let mut url = request.redirect_to.clone();
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = &request.state {
            query.append_pair("state", state);
        }
        if let Some(issuer) = &settings.issuer {
            query.append_pair("iss", issuer);
        }
    }
    Redirect::to(url.as_str()).into_response()
}
