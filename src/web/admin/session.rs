//! The operator's signed-in session: a cookie holding an expiry and a random
//! nonce, sealed (AES-256-GCM under its own subkey) with the admin token's
//! digest as associated data, so a new `ADMIN_TOKEN` signs every session
//! out. HttpOnly, SameSite=Strict, `__Host-` prefixed and Secure when the
//! redirect URI is https. Every change the page makes needs a form token,
//! our MAC of the session's nonce, so it is good only with that session.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::clock::UnixTime;
use crate::crypto::random_token;
use crate::state::AppState;
use crate::web::error::PageError;

/// How long a sign-in lasts.
const LIFETIME_SECS: i64 = 8 * 3600;

/// A signed-in operator, proven by the request's cookie.
pub struct SignedIn {
    nonce: String,
}

fn cookie_name(state: &AppState) -> &'static str {
    if state.cookie_secure {
        "__Host-eoc_admin"
    } else {
        "eoc_admin"
    }
}

/// What the sealed cookie is bound to; `None` when there is no admin token.
fn bound_to(state: &AppState) -> Option<Vec<u8>> {
    let digest = state.admin_token.as_ref()?;
    Some(
        [
            b"emailoctopus-connect/admin-session\0".as_slice(),
            digest.digest(),
        ]
        .concat(),
    )
}

/// Signs in with `presented`, if it is the admin token: the jar with the session's cookie.
pub fn sign_in(state: &AppState, jar: CookieJar, presented: &str) -> Result<CookieJar, PageError> {
    let (digest, aad) = match (&state.admin_token, bound_to(state)) {
        (Some(digest), Some(aad)) => (digest, aad),
        _ => return Err(PageError::AdminOff),
    };
    if !digest.matches(presented.as_bytes()) {
        return Err(PageError::AdminTokenWrong);
    }
    let expires_at = state.clock.now() + LIFETIME_SECS;
    let sealed = state
        .admin_keys
        .seal(format!("{expires_at}.{}", random_token()).as_bytes(), &aad);
    let cookie = Cookie::build((cookie_name(state), URL_SAFE_NO_PAD.encode(sealed)))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.cookie_secure)
        .path("/")
        .max_age(time::Duration::seconds(LIFETIME_SECS));
    Ok(jar.add(cookie))
}

/// The jar without the session's cookie.
pub fn sign_out(state: &AppState, jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(cookie_name(state)).path("/"))
}

/// The session the request's cookie proves, if it is ours and unexpired.
pub fn current(state: &AppState, jar: &CookieJar) -> Option<SignedIn> {
    let aad = bound_to(state)?;
    let sealed = URL_SAFE_NO_PAD
        .decode(jar.get(cookie_name(state))?.value())
        .ok()?;
    let opened = state.admin_keys.open(&sealed, &aad).ok()?;
    let (expires_at, nonce) = std::str::from_utf8(&opened).ok()?.split_once('.')?;
    let expires_at: UnixTime = expires_at.parse().ok()?;
    (state.clock.now() < expires_at).then(|| SignedIn {
        nonce: nonce.to_owned(),
    })
}

impl SignedIn {
    /// The token every form of this session carries.
    pub fn form_token(&self, state: &AppState) -> String {
        URL_SAFE_NO_PAD.encode(state.csrf_keys.sign(&self.form_message()))
    }

    pub fn check_form(&self, state: &AppState, token: &str) -> Result<(), PageError> {
        let tag = URL_SAFE_NO_PAD.decode(token).map_err(|_| PageError::Csrf)?;
        if state.csrf_keys.verify(&self.form_message(), &tag) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    fn form_message(&self) -> Vec<u8> {
        format!("emailoctopus-connect/admin-form\0{}", self.nonce).into_bytes()
    }
}

/// Routes that need a signed-in operator take this; without one they
/// answer a page that says to sign in.
impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(&parts.headers);
        current(state, &jar).ok_or(PageError::AdminSignInNeeded)
    }
}
