//! The provider and API the tests run against: the sandbox's `Provider` on a
//! port of its own, with the tests' client and key, wrapped in a thin layer
//! for what a working provider cannot be made to show: failed and malformed
//! answers, hangs and delays, and a record of every request it received.
//! How the provider itself behaves (token lifetime, `iss`, PKCE, refresh
//! tokens) is the sandbox's `Settings`, changed with `FakeProvider::settings`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get};
use axum::Router;
use emailoctopus_connect::clock::Clock;
use emailoctopus_connect::page::Pages;
use emailoctopus_connect::sandbox::{Consent, Provider, Settings};
use secrecy::SecretString;

mod faults;
mod rate_limit;
mod upstream;

pub use rate_limit::RateLimit;

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-client-secret-do-not-leak-7f3a";
pub const API_KEY: &str = "eo-test-api-key-4b9e1c";

/// How the token endpoint answers.
#[derive(Debug, Clone)]
pub enum TokenAnswer {
    /// The provider answers as its settings say.
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

/// The faults the layer adds, and what it recorded.
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
    /// When not 200, the status of every API answer, its body and headers kept.
    pub upstream_status: u16,
    /// How long every API answer (the key check's included) takes.
    pub upstream_delay: Duration,
    /// The API refuses every credential, even fresh ones.
    pub api_refuses_all: bool,
    /// The API limits each credential as EmailOctopus does.
    pub rate_limit: Option<RateLimit>,
    /// The next API answers, one per call (a status and headers, empty
    /// body); the API answers as usual once it is used up.
    pub api_script: VecDeque<(u16, Vec<(&'static str, &'static str)>)>,
    pub recorded: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub url: String,
    pub control: Arc<Mutex<Control>>,
    provider: Provider,
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
            upstream_status: 200,
            upstream_delay: Duration::ZERO,
            api_refuses_all: false,
            rate_limit: None,
            api_script: VecDeque::new(),
            recorded: Vec::new(),
        }));
        let provider = Provider::new(
            Settings {
                client_id: CLIENT_ID.into(),
                client_secret: SecretString::from(CLIENT_SECRET),
                // Each test's server has its own port: the provider takes
                // the redirect URI each flow names.
                redirect_uri: None,
                api_key: SecretString::from(API_KEY),
                expires_in: 3600,
                issuer: None,
                refresh_tokens: true,
                pkce: true,
                consent: Consent::AutoApprove,
                coop: false,
            },
            Clock::default(),
            Pages::default(),
        );
        let upstream = Router::new()
            .route("/hostile-headers", get(upstream::hostile_headers))
            .route("/trickle", get(upstream::trickle))
            .route("/{*rest}", any(upstream::echo));
        let router = Router::new()
            .merge(provider.oauth_router())
            .nest("/api", provider.api_router(upstream))
            .layer(from_fn_with_state(control.clone(), faults::faults));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            url,
            control,
            provider,
        }
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

    /// Sets the faults.
    pub fn set(&self, change: impl FnOnce(&mut Control)) {
        change(&mut self.control.lock().unwrap());
    }

    /// Changes how the provider behaves from the next request on.
    pub fn settings(&self, change: impl FnOnce(&mut Settings)) {
        self.provider.change(change);
    }

    /// Revokes `token` at the revocation endpoint, as a user does at the
    /// provider behind the server's back.
    pub async fn revoke(&self, token: &str) {
        let answer = reqwest::Client::new()
            .post(format!("{}/revoke", self.url))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
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

    /// Every token this provider issued and still honours, oldest first:
    /// the access tokens and the refresh tokens.
    pub fn live_tokens(&self) -> (Vec<String>, Vec<String>) {
        self.provider.live_tokens()
    }
}
