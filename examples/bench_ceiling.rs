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

#[path = "support/ceiling.rs"]
mod ceiling_parts;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
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

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_ceiling AUTHORIZE_URL TOKEN_URL [LISTEN_ADDR]";
    let authorize_url = Url::parse(&args.next().expect(usage)).expect("AUTHORIZE_URL is a URL");
    let token_url = Url::parse(&args.next().expect(usage)).expect("TOKEN_URL is a URL");
    let (listener, bound) = ceiling_parts::listen(args.next()).await;
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
    ceiling_parts::see_other(&location, cookie)
}

async fn callback(
    State(ceiling): State<Arc<Ceiling>>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let exchanged = ceiling_parts::exchange_code(
        &ceiling.http,
        &ceiling.token_url,
        &query.code,
        &ceiling.redirect_uri,
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    )
    .await;
    match exchanged {
        Ok(_) => {
            Html("<!doctype html><p>Your EmailOctopus account is connected.</p>").into_response()
        }
        Err(failed) => failed,
    }
}
