//! A fast local OAuth provider for the benchmark (bench/run.sh).
//!
//! `GET /authorize` sends the browser straight back to its `redirect_uri` with
//! a code and the same `state`; `POST /token` answers every well-formed
//! authorization_code request with fresh tokens. It checks no PKCE and keeps
//! no codes: it stands for a provider that costs as little as possible, so
//! what the benchmark measures is the server under test, not this one.
//!
//! Usage: `bench_provider [LISTEN_ADDR]` (default `127.0.0.1:0`); prints
//! `listening on http://ADDR` once it accepts connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::json;
use url::Url;

/// Makes every code and token unique without a random source on the hot path.
static ISSUED: AtomicU64 = AtomicU64::new(0);

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:0")
        .parse()
        .expect("the first argument is a socket address");
    let app = Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the address is free");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("bound")
    );
    axum::serve(listener, app).await.expect("serves");
}

/// RFC 6749 §4.1.2: back to the client's redirect URI with `code` and `state`.
async fn authorize(Query(params): Query<HashMap<String, String>>) -> Response {
    let (Some(redirect_uri), Some(state)) = (params.get("redirect_uri"), params.get("state"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri and state are required",
        )
            .into_response();
    };
    let Ok(mut back) = Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let code = format!("code-{}", ISSUED.fetch_add(1, Ordering::Relaxed));
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    (StatusCode::FOUND, [(header::LOCATION, back.as_str())]).into_response()
}

/// RFC 6749 §4.1.3-4.1.4, minus the checks a real provider makes: the form
/// must still be an authorization_code request, so a server that sends
/// something else fails the benchmark instead of passing it.
async fn token(Form(form): Form<HashMap<String, String>>) -> Response {
    let well_formed = form.get("grant_type").map(String::as_str) == Some("authorization_code")
        && form.contains_key("code")
        && form.contains_key("redirect_uri");
    if !well_formed {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_request" })),
        )
            .into_response();
    }
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "access_token": format!("bench-access-token-{n:016}"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": format!("bench-refresh-token-{n:016}"),
    }))
    .into_response()
}
