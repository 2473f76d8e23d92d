//! A small OAuth provider and EmailOctopus-like API for tests, on its own
//! port: it checks PKCE and client authentication like a real one, records
//! every request it receives, and can be told to misbehave.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-client-secret-do-not-leak-7f3a";
pub const API_KEY: &str = "eo-test-api-key-4b9e1c";

/// How the token endpoint answers.
#[derive(Debug, Clone)]
pub enum TokenAnswer {
    /// Issue tokens like a real provider.
    Issue,
    /// This status with this JSON body.
    Status(u16, &'static str),
    /// Accept the request and never answer.
    Hang,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with a body of many megabytes.
    Huge,
    /// 200 with `expires_in` that is not a number.
    BadExpiresIn,
    /// Issue tokens, but without a refresh token.
    IssueWithoutRefreshToken,
}

/// One request the provider received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub form: HashMap<String, String>,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug)]
pub struct Control {
    pub token_answer: TokenAnswer,
    pub token_delay: Duration,
    /// Overrides `token_answer` and `token_delay` for refresh_token grants only.
    pub refresh_override: Option<(TokenAnswer, Duration)>,
    /// A refresh is done at once (the old refresh token retired, new tokens
    /// live), and its answer held back this long: a race on the way back.
    pub refresh_answer_delay: Duration,
    pub revoke_status: u16,
    /// How long the revocation endpoint takes to answer.
    pub revoke_delay: Duration,
    pub expires_in: i64,
    /// Send `iss` in authorization responses (RFC 9207), and which value.
    pub iss: Option<String>,
    /// Ignore the PKCE challenge (a provider that does not support PKCE).
    pub ignore_pkce: bool,
    pub upstream_status: u16,
    /// How long the API's `/lists` (the key check) takes to answer.
    pub upstream_delay: Duration,
    /// The API refuses every credential, even fresh ones.
    pub api_refuses_all: bool,
    counter: u64,
    codes: HashMap<String, (String, String)>,
    pub live_access_tokens: Vec<String>,
    pub live_refresh_tokens: Vec<String>,
    pub recorded: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub url: String,
    pub control: Arc<Mutex<Control>>,
}

impl FakeProvider {
    pub async fn start() -> Self {
        let control = Arc::new(Mutex::new(Control {
            token_answer: TokenAnswer::Issue,
            token_delay: Duration::ZERO,
            refresh_override: None,
            refresh_answer_delay: Duration::ZERO,
            revoke_status: 200,
            revoke_delay: Duration::ZERO,
            expires_in: 3600,
            iss: None,
            ignore_pkce: false,
            upstream_status: 200,
            upstream_delay: Duration::ZERO,
            api_refuses_all: false,
            counter: 0,
            codes: HashMap::new(),
            live_access_tokens: Vec::new(),
            live_refresh_tokens: Vec::new(),
            recorded: Vec::new(),
        }));
        let router = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/api/lists", get(lists))
            .route("/api/hostile-headers", get(hostile_headers))
            .route("/api/trickle", get(trickle))
            .route("/api/{*rest}", any(echo))
            .with_state(control.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, control }
    }

    /// The settings that point the server at this provider.
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--client-id={CLIENT_ID}"),
            format!("--client-secret={CLIENT_SECRET}"),
            format!("--authorize-url={}/authorize", self.url),
            format!("--token-url={}/token", self.url),
            format!("--revoke-url={}/revoke", self.url),
            format!("--api-base-url={}/api", self.url),
        ]
    }

    pub fn set(&self, change: impl FnOnce(&mut Control)) {
        change(&mut self.control.lock().unwrap());
    }

    pub fn recorded(&self, path: &str) -> Vec<Recorded> {
        let control = self.control.lock().unwrap();
        control
            .recorded
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Token requests with this grant type.
    pub fn token_requests(&self, grant_type: &str) -> Vec<Recorded> {
        self.recorded("/token")
            .into_iter()
            .filter(|r| r.form.get("grant_type").map(String::as_str) == Some(grant_type))
            .collect()
    }

    /// Every token this provider issued and still honours.
    pub fn live_tokens(&self) -> (Vec<String>, Vec<String>) {
        let control = self.control.lock().unwrap();
        (
            control.live_access_tokens.clone(),
            control.live_refresh_tokens.clone(),
        )
    }
}

fn record(control: &Mutex<Control>, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
    let form = url::form_urlencoded::parse(body).into_owned().collect();
    control.lock().unwrap().recorded.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        form,
        body: body.clone(),
    });
}

async fn authorize(
    State(control): State<Arc<Mutex<Control>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut control = control.lock().unwrap();
    control.counter += 1;
    let code = format!("code-{}", control.counter);
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    control
        .codes
        .insert(code.clone(), (challenge, redirect_uri.clone()));
    let mut target = url::Url::parse(&redirect_uri).unwrap();
    {
        let mut pairs = target.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = q.get("state") {
            pairs.append_pair("state", state);
        }
        if let Some(iss) = &control.iss {
            pairs.append_pair("iss", iss);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match (basic, form.get("client_secret")) {
        (Some(pair), None) => pair == format!("{CLIENT_ID}:{CLIENT_SECRET}"),
        (None, Some(secret)) => {
            secret == CLIENT_SECRET && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        }
        _ => false,
    }
}

fn oauth_error(status: u16, code: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({ "error": code })),
    )
        .into_response()
}

async fn token(
    State(control): State<Arc<Mutex<Control>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&control, &method, &uri, &headers, &body);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (answer, delay) = {
        let c = control.lock().unwrap();
        match (
            &c.refresh_override,
            form.get("grant_type").map(String::as_str),
        ) {
            (Some(special), Some("refresh_token")) => special.clone(),
            _ => (c.token_answer.clone(), c.token_delay),
        }
    };
    tokio::time::sleep(delay).await;
    if !client_ok(&headers, &form) {
        return oauth_error(401, "invalid_client");
    }
    match answer {
        TokenAnswer::Status(status, body) => {
            return (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        }
        TokenAnswer::Hang => return std::future::pending::<Response>().await,
        TokenAnswer::Malformed => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{not json",
            )
                .into_response()
        }
        TokenAnswer::Huge => {
            let body = format!("{{\"access_token\":\"{}\"}}", "x".repeat(20 * 1024 * 1024));
            return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
        }
        TokenAnswer::BadExpiresIn => {
            return Json(
                json!({"access_token": "at-bad", "token_type": "Bearer", "expires_in": "soon"}),
            )
            .into_response()
        }
        TokenAnswer::Issue | TokenAnswer::IssueWithoutRefreshToken => {}
    }
    let issued = (|| -> Result<(serde_json::Value, Duration), (u16, &str)> {
        let mut c = control.lock().unwrap();
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let Some((challenge, redirect_uri)) =
                    form.get("code").and_then(|code| c.codes.remove(code))
                else {
                    return Err((400, "invalid_grant"));
                };
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                let pkce_ok = c.ignore_pkce || computed == challenge;
                if !pkce_ok || form.get("redirect_uri") != Some(&redirect_uri) {
                    return Err((400, "invalid_grant"));
                }
            }
            Some("refresh_token") => {
                let presented = form.get("refresh_token").cloned().unwrap_or_default();
                let Some(index) = c.live_refresh_tokens.iter().position(|t| *t == presented) else {
                    return Err((400, "invalid_grant"));
                };
                if !matches!(answer, TokenAnswer::IssueWithoutRefreshToken) {
                    c.live_refresh_tokens.remove(index);
                }
            }
            _ => return Err((400, "unsupported_grant_type")),
        }
        c.counter += 1;
        let n = c.counter;
        let access = format!("at-{n}-secret-access-token");
        let refresh = format!("rt-{n}-secret-refresh-token");
        c.live_access_tokens.push(access.clone());
        let mut body =
            json!({ "access_token": access, "token_type": "Bearer", "expires_in": c.expires_in });
        if !matches!(answer, TokenAnswer::IssueWithoutRefreshToken) {
            c.live_refresh_tokens.push(refresh.clone());
            body["refresh_token"] = json!(refresh);
        }
        let held_back = match form.get("grant_type").map(String::as_str) {
            Some("refresh_token") => c.refresh_answer_delay,
            _ => Duration::ZERO,
        };
        Ok((body, held_back))
    })();
    let (body, held_back) = match issued {
        Ok(issued) => issued,
        Err((status, code)) => return oauth_error(status, code),
    };
    tokio::time::sleep(held_back).await;
    Json(body).into_response()
}

async fn revoke(
    State(control): State<Arc<Mutex<Control>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Slow before anything is recorded, so that a recorded revocation has
    // always taken effect.
    let delay = control.lock().unwrap().revoke_delay;
    tokio::time::sleep(delay).await;
    record(&control, &method, &uri, &headers, &body);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if !client_ok(&headers, &form) {
        return oauth_error(401, "invalid_client");
    }
    let mut c = control.lock().unwrap();
    if c.revoke_status != 200 {
        return StatusCode::from_u16(c.revoke_status)
            .unwrap()
            .into_response();
    }
    let token = form.get("token").cloned().unwrap_or_default();
    c.live_access_tokens.retain(|t| *t != token);
    c.live_refresh_tokens.retain(|t| *t != token);
    StatusCode::OK.into_response()
}

fn bearer_is_live(control: &Control, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    !control.api_refuses_all
        && (bearer == API_KEY || control.live_access_tokens.iter().any(|t| t == bearer))
}

async fn lists(
    State(control): State<Arc<Mutex<Control>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&control, &method, &uri, &headers, &body);
    let delay = control.lock().unwrap().upstream_delay;
    tokio::time::sleep(delay).await;
    let c = control.lock().unwrap();
    if c.upstream_status != 200 {
        return StatusCode::from_u16(c.upstream_status)
            .unwrap()
            .into_response();
    }
    if !bearer_is_live(&c, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"title": "Unauthorized"})),
        )
            .into_response();
    }
    Json(json!({"data": [{"id": "list-1", "name": "Test list"}]})).into_response()
}

/// Echoes what it received, as the proxy's upstream.
async fn echo(
    State(control): State<Arc<Mutex<Control>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&control, &method, &uri, &headers, &body);
    let c = control.lock().unwrap();
    if !bearer_is_live(&c, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"title": "Unauthorized"})),
        )
            .into_response();
    }
    let status = StatusCode::from_u16(c.upstream_status).unwrap();
    let echoed = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "body": String::from_utf8_lossy(&body),
    });
    (
        status,
        [
            ("set-cookie", "upstream=1"),
            ("x-ratelimiting-remaining", "7"),
            ("retry-after", "3"),
        ],
        Json(echoed),
    )
        .into_response()
}

/// Every response header that would act on the proxy's own origin, and a
/// temporary redirect that, relative, would resolve onto the proxy.
pub const HOSTILE_HEADERS: [(&str, &str); 13] = [
    ("set-cookie", "upstream=1; Path=/"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("clear-site-data", "\"*\""),
    ("alt-svc", "h3=\":443\""),
    ("refresh", "0; url=https://evil.example/"),
    ("access-control-allow-origin", "*"),
    ("access-control-allow-credentials", "true"),
    ("cache-control", "public, max-age=86400"),
    ("content-security-policy", "default-src *"),
    (
        "link",
        "<https://evil.example/x.js>; rel=preload; as=script",
    ),
    ("x-ratelimiting-remaining", "7"),
    ("etag", "\"v1\""),
    ("location", "/connections/other"),
];

async fn hostile_headers() -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    for (name, value) in HOSTILE_HEADERS {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A body that never ends: one byte every 200 ms.
async fn trickle() -> Response {
    let bytes = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), ()))
    });
    axum::body::Body::from_stream(bytes).into_response()
}
