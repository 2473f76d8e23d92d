//! CSRF defences for the page's forms.
//!
//! - The cookie holds a random value and our MAC of it (HMAC-SHA256 under
//!   the CSRF subkey): a value we did not sign, such as one planted by
//!   another host of the site, is replaced on the page and refused on a form.
//! - The cookie is HttpOnly, SameSite=Strict, and `__Host-` prefixed when
//!   the redirect URI is https, so no sibling domain or plain-http page can
//!   set it.
//! - The form's token is a MAC of the cookie's value and of the connect
//!   session the page was shown for, so a token is good only with that
//!   cookie and that session.
//! - A form post whose browser says where it came from (`Origin`,
//!   `Sec-Fetch-Site`) must come from this server's own page.

use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use url::Url;

use super::error::PageError;
use crate::checked::AllowedHost;
use crate::crypto::{random_token, sha256_hex};
use crate::state::AppState;

fn cookie_name(state: &AppState) -> &'static str {
    if state.cookie_secure {
        "__Host-eoc_csrf"
    } else {
        "eoc_csrf"
    }
}

fn cookie_tag(state: &AppState, nonce: &str) -> Vec<u8> {
    state
        .csrf_keys
        .sign(format!("emailoctopus-connect/csrf-cookie\0{nonce}").as_bytes())
        .to_vec()
}

/// What a form token signs: the cookie's nonce and the connect session
/// (by hash; none when the page is about `default` under `OPEN_CONNECT`).
fn token_message(nonce: &str, session: Option<&str>) -> Vec<u8> {
    let session = session
        .filter(|s| !s.is_empty())
        .map(|s| sha256_hex(s.as_bytes()))
        .unwrap_or_default();
    format!("emailoctopus-connect/csrf-form\0{nonce}\0{session}").into_bytes()
}

/// The cookie's nonce, if the cookie is one we signed.
fn signed_nonce(state: &AppState, jar: &CookieJar) -> Option<String> {
    let value = jar.get(cookie_name(state))?.value();
    let (nonce, tag) = value.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let message = format!("emailoctopus-connect/csrf-cookie\0{nonce}");
    (nonce.len() == 43 && state.csrf_keys.verify(message.as_bytes(), &tag))
        .then(|| nonce.to_owned())
}

/// The form token for this browser and `session`, setting a fresh signed
/// cookie when the browser has none of ours.
pub fn issue(state: &AppState, jar: CookieJar, session: Option<&str>) -> (CookieJar, String) {
    let (jar, nonce) = match signed_nonce(state, &jar) {
        Some(nonce) => (jar, nonce),
        None => {
            let nonce = random_token();
            let value = format!(
                "{nonce}.{}",
                URL_SAFE_NO_PAD.encode(cookie_tag(state, &nonce))
            );
            let cookie = Cookie::build((cookie_name(state), value))
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(state.cookie_secure)
                .path("/");
            (jar.add(cookie), nonce)
        }
    };
    let token = state.csrf_keys.sign(&token_message(&nonce, session));
    (jar, URL_SAFE_NO_PAD.encode(token))
}

/// Checks a form's token against this browser's signed cookie and the
/// session the form names.
pub fn verify(
    state: &AppState,
    jar: &CookieJar,
    token: &str,
    session: Option<&str>,
) -> Result<(), PageError> {
    let nonce = signed_nonce(state, jar).ok_or(PageError::Csrf)?;
    let tag = URL_SAFE_NO_PAD.decode(token).map_err(|_| PageError::Csrf)?;
    if state
        .csrf_keys
        .verify(&token_message(&nonce, session), &tag)
    {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

/// Refuses a form post that its browser says came from elsewhere:
/// `Sec-Fetch-Site` other than `same-origin`, or, from a browser that does
/// not send that, an `Origin` that is not this server's. `Origin: null`
/// says nothing (our pages' `Referrer-Policy: no-referrer` makes browsers
/// send it for our own forms), and browsers that send neither header are
/// left to the token.
pub async fn only_from_our_pages(request: Request, next: Next) -> Response {
    if from_elsewhere(request.headers()) {
        return PageError::Csrf.into_response();
    }
    next.run(request).await
}

fn from_elsewhere(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return site != "same-origin";
    }
    match text(header::ORIGIN) {
        None | Some("null") => false,
        Some(origin) => {
            let origin = Url::parse(origin)
                .ok()
                .and_then(|url| AllowedHost::of_url(&url));
            let host = text(header::HOST).unwrap_or("");
            !origin.is_some_and(|origin| origin.matches(host))
        }
    }
}
