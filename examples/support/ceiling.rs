//! Shared by the two ceilings (`bench_ceiling`, `bench_same_work`), included
//! with `#[path]`: the 303 that starts a flow and the code exchange, made as
//! the server makes them.

use std::net::SocketAddr;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use url::Url;

/// Binds `LISTEN_ADDR` (default: a free loopback port).
pub async fn listen(listen_addr: Option<String>) -> (tokio::net::TcpListener, SocketAddr) {
    let addr: SocketAddr = listen_addr
        .as_deref()
        .unwrap_or("127.0.0.1:0")
        .parse()
        .expect("LISTEN_ADDR is a socket address");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the address is free");
    let bound = listener.local_addr().expect("bound");
    (listener, bound)
}

/// The token response's members the server reads.
#[derive(Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
}

/// A 303 to `location` that sets `cookie`.
pub fn see_other(location: &Url, cookie: String) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::try_from(location.as_str()).expect("a URL is a header value"),
    );
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::try_from(cookie).expect("the cookie is a header value"),
    );
    response
}

/// The authorization_code request with the fields the server sends with
/// client_secret_post (RFC 6749 §4.1.3, RFC 7636 §4.5), and its tokens; a
/// 502 answer when the provider fails.
pub async fn exchange_code(
    http: &reqwest::Client,
    token_url: &Url,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens, Response> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("client_id", "bench"),
        ("client_secret", "bench-secret"),
    ];
    let answer = http
        .post(token_url.clone())
        .header(header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|error| (StatusCode::BAD_GATEWAY, error.to_string()).into_response())?;
    if !answer.status().is_success() {
        return Err((StatusCode::BAD_GATEWAY, answer.status().to_string()).into_response());
    }
    answer
        .json::<Tokens>()
        .await
        .map_err(|error| (StatusCode::BAD_GATEWAY, error.to_string()).into_response())
}
