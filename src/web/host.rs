//! The browser routes answer only for this server's own host names: the
//! host of `REDIRECT_URI`, the listen address (and localhost names when it
//! is on loopback), and `ALLOWED_HOSTS`. Any other `Host` gets 421, which
//! closes DNS rebinding: a page whose own name was rebound to this listener
//! cannot drive the connect page, `/auth`, `/callback` or the forms.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

use super::error::PageError;
use crate::checked::AllowedHost;
use crate::state::AppState;

/// Every `Host` the browser routes answer for.
pub fn own_hosts(redirect_uri: &Url, bound: SocketAddr, extra: &[AllowedHost]) -> Vec<AllowedHost> {
    let mut hosts: Vec<AllowedHost> = AllowedHost::of_url(redirect_uri).into_iter().collect();
    let port = bound.port();
    let ip = bound.ip();
    let literal = Url::parse(&format!("http://{bound}"))
        .ok()
        .and_then(|url| AllowedHost::of_url(&url));
    hosts.extend(literal);
    if ip.is_loopback() || ip.is_unspecified() {
        for name in ["localhost", "127.0.0.1", "[::1]"] {
            hosts.push(AllowedHost::of_addr(name, port));
        }
    }
    hosts.extend(extra.iter().cloned());
    hosts
}

pub async fn only_own_hosts(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let own = &state.browser_hosts;
    let admitted = host.is_some_and(|host| {
        own.iter().any(|name| name.spelled_by(host))
            || AllowedHost::parse(host)
                .is_ok_and(|asked| own.iter().any(|name| name.admits(&asked)))
    });
    if admitted {
        return next.run(request).await;
    }
    PageError::WrongHost.into_response()
}
