//! The benchmark's ceiling (bench/run.sh): the least an axum server can do to
//! give the same answers as emailoctopus-connect, so the server's figures can
//! be read as a share of what the framework and the token round trip allow.
//!
//! `GET /auth` answers a 303 to the provider with a Location and a Set-Cookie
//! of the same shape and size as the server's, but with no crypto, no PKCE and
//! no state kept. `GET /callback` makes the same form-encoded
//! authorization_code request to the provider over one pooled client, reads
//! the JSON tokens and answers 200, but stores nothing.
//!
//! Usage: `bench_ceiling AUTHORIZE_URL TOKEN_URL [LISTEN_ADDR]`; prints
//! `listening on http://ADDR` once it accepts connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use url::Url;

/// The server's flow cookie for `default` is this long (a sealed JSON payload in
/// base64url); the ceiling sends a value of the same length so both answers
/// cost the same on the wire.
const COOKIE_VALUE_LEN: usize = 255;

struct Ceiling {
    authorize_url: Url,
    token_url: Url,
    redirect_uri: String,
    http: reqwest::Client,
    cookie_value: String,
    next_state: AtomicU64,
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: String,
}

/// Only read so that the body is parsed as the server parses it.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Tokens {
    access_token: String,
    token_type: String,
    expires_in: u64,
    refresh_token: Option<String>,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_ceiling AUTHORIZE_URL TOKEN_URL [LISTEN_ADDR]";
    let authorize_url = Url::parse(&args.next().expect(usage)).expect("AUTHORIZE_URL is a URL");
    let token_url = Url::parse(&args.next().expect(usage)).expect("TOKEN_URL is a URL");
    let addr: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:0")
        .parse()
        .expect("LISTEN_ADDR is a socket address");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the address is free");
    let bound = listener.local_addr().expect("bound");
    let ceiling = Arc::new(Ceiling {
        authorize_url,
        token_url,
        redirect_uri: format!("http://{bound}/callback"),
        // Configured like the server's one client: redirects off, pooled.
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the client builds"),
        cookie_value: "c".repeat(COOKIE_VALUE_LEN),
        next_state: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/auth", get(auth))
        .route("/callback", get(callback))
        .with_state(ceiling);
    println!("listening on http://{bound}");
    axum::serve(listener, app).await.expect("serves");
}

async fn auth(State(ceiling): State<Arc<Ceiling>>) -> Response {
    // A counter instead of random state and a fixed challenge: the ceiling
    // leaves out exactly the work the server is there to do.
    let n = ceiling.next_state.fetch_add(1, Ordering::Relaxed);
    let state = format!("{n:022}");
    let mut location = ceiling.authorize_url.clone();
    location
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "bench")
        .append_pair("state", &state)
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .append_pair("redirect_uri", &ceiling.redirect_uri);
    let cookie = format!(
        "eoc_flow_{n:016x}={}; HttpOnly; SameSite=Lax; Path=/callback; Max-Age=600",
        ceiling.cookie_value
    );
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

async fn callback(
    State(ceiling): State<Arc<Ceiling>>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    // The fields the server sends with client_secret_post (RFC 6749 §4.1.3,
    // RFC 7636 §4.5).
    let form = [
        ("grant_type", "authorization_code"),
        ("code", query.code.as_str()),
        ("redirect_uri", ceiling.redirect_uri.as_str()),
        (
            "code_verifier",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ),
        ("client_id", "bench"),
        ("client_secret", "bench-secret"),
    ];
    let answer = ceiling
        .http
        .post(ceiling.token_url.clone())
        .header(header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await;
    let tokens = match answer {
        Ok(answer) if answer.status().is_success() => answer.json::<Tokens>().await,
        Ok(answer) => {
            return (StatusCode::BAD_GATEWAY, answer.status().to_string()).into_response()
        }
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    match tokens {
        Ok(_) => {
            Html("<!doctype html><p>Your EmailOctopus account is connected.</p>").into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
