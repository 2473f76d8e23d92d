//! CSRF tokens for the page's forms: a random value in an HttpOnly,
//! SameSite=Strict cookie, and in the form a MAC of it under our key ring
//! (an AEAD seal of nothing, bound to the value). A cookie planted by a
//! sibling domain does not help an attacker: they cannot make the MAC.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::PageError;
use crate::crypto::random_token;
use crate::state::AppState;

const COOKIE: &str = "eoc_csrf";

fn aad(cookie_value: &str) -> Vec<u8> {
    format!("emailoctopus-connect/v1/csrf/{cookie_value}").into_bytes()
}

/// The form token for this browser, setting its cookie if it has none.
pub fn issue(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let (jar, value) = match jar.get(COOKIE).map(|c| c.value().to_owned()) {
        Some(value) if value.len() == 43 => (jar, value),
        _ => {
            let value = random_token();
            let cookie = Cookie::build((COOKIE, value.clone()))
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(state.cookie_secure)
                .path("/");
            (jar.add(cookie), value)
        }
    };
    let token = URL_SAFE_NO_PAD.encode(state.keys.seal(b"", &aad(&value)));
    (jar, token)
}

pub fn verify(state: &AppState, jar: &CookieJar, token: &str) -> Result<(), PageError> {
    let cookie = jar.get(COOKIE).ok_or(PageError::Csrf)?;
    let sealed = URL_SAFE_NO_PAD.decode(token).map_err(|_| PageError::Csrf)?;
    state
        .keys
        .open(&sealed, &aad(cookie.value()))
        .map(|_| ())
        .map_err(|_| PageError::Csrf)
}
