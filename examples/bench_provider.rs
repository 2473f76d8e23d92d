//! A fast local OAuth provider and EmailOctopus API for the benchmarks
//! (bench/run.sh, bench/proxy.sh, bench/instances.sh).
//!
//! `GET /authorize` sends the browser straight back to its `redirect_uri` with
//! a code and the same `state`; `POST /token` answers every well-formed
//! authorization_code request with fresh tokens, and every refresh_token
//! request with fresh tokens after a set delay. `GET /lists` answers 200 with a
//! small list page to any bearer: the upstream of the proxy, and the API-key
//! check. It checks no PKCE and keeps no codes: it stands for a provider that
//! costs as little as possible, so what the benchmark measures is the server
//! under test, not this one.
//!
//! `POST /hook` takes a webhook delivery and answers 204, counting it.
//!
//! `GET /stats` tells how many refresh requests and webhooks it answered and when it
//! answered the last one (µs since the Unix epoch); `GET /control` with
//! `code_expires_in=S` and/or `refresh_delay_ms=MS` changes how long the
//! tokens of the next authorization_code answers live (default 3600 s) and
//! how long a refresh answer is held back (default 0).
//!
//! Usage: `bench_provider [LISTEN_ADDR]` (default `127.0.0.1:0`); prints
//! `listening on http://ADDR` once it accepts connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::json;
use url::Url;

/// Makes every code and token unique without a random source on the hot path.
static ISSUED: AtomicU64 = AtomicU64::new(0);
/// The lifetime of tokens from an authorization_code answer, in seconds.
static CODE_EXPIRES_IN: AtomicU64 = AtomicU64::new(3600);
static REFRESH_DELAY_MS: AtomicU64 = AtomicU64::new(0);
static REFRESHES: AtomicU64 = AtomicU64::new(0);
static HOOKS: AtomicU64 = AtomicU64::new(0);
/// When the last refresh answer was handed over, µs since the Unix epoch.
static LAST_REFRESH_ANSWER_US: AtomicU64 = AtomicU64::new(0);

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
        .route("/token", post(token))
        .route("/lists", get(lists))
        .route("/hook", post(hook))
        .route("/stats", get(stats))
        .route("/control", get(control));
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
    let grant = form.get("grant_type").map(String::as_str);
    if grant == Some("refresh_token") && form.contains_key("refresh_token") {
        return refresh().await;
    }
    let well_formed = grant == Some("authorization_code")
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
        "expires_in": CODE_EXPIRES_IN.load(Ordering::Relaxed),
        "refresh_token": format!("bench-refresh-token-{n:016}"),
    }))
    .into_response()
}

/// RFC 6749 §6, with rotation; held back by the set delay, counted, and the
/// moment of the answer noted for `/stats`.
async fn refresh() -> Response {
    let delay = REFRESH_DELAY_MS.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let n = ISSUED.fetch_add(1, Ordering::Relaxed);
    let answer = Json(json!({
        "access_token": format!("bench-refreshed-access-token-{n:016}"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": format!("bench-refreshed-refresh-token-{n:016}"),
    }))
    .into_response();
    REFRESHES.fetch_add(1, Ordering::Relaxed);
    LAST_REFRESH_ANSWER_US.store(unix_us(), Ordering::Relaxed);
    answer
}

fn unix_us() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// A page of EmailOctopus's `GET /lists`, shortened, for any bearer.
async fn lists() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"data":[{"id":"00000000-0000-0000-0000-000000000001","name":"Bench","double_opt_in":false,"fields":[],"tags":[],"counts":{"pending":0,"subscribed":1,"unsubscribed":0},"created_at":"2026-01-01T00:00:00+00:00"}],"paging":{"next":null,"previous":null}}"#,
    )
        .into_response()
}

async fn stats() -> Response {
    Json(json!({
        "refreshes": REFRESHES.load(Ordering::Relaxed),
        "hooks": HOOKS.load(Ordering::Relaxed),
        "last_refresh_answer_unix_us": LAST_REFRESH_ANSWER_US.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn hook() -> StatusCode {
    HOOKS.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

async fn control(Query(params): Query<HashMap<String, u64>>) -> Response {
    if let Some(seconds) = params.get("code_expires_in") {
        CODE_EXPIRES_IN.store(*seconds, Ordering::Relaxed);
    }
    if let Some(ms) = params.get("refresh_delay_ms") {
        REFRESH_DELAY_MS.store(*ms, Ordering::Relaxed);
    }
    stats().await
}
