//! `--sandbox`: a small authorization server and a fake EmailOctopus API on
//! the same listener, with a client, key and admin token made for this run,
//! so the whole flow can be clicked through with no account. Nothing outside
//! this module asks whether it is running.

mod api;
mod bounded;
mod provider;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clock::Clock;
use crate::config::{ProviderSettings, SandboxSettings, TokenAuthMethod};
use crate::crypto::random_token;
use crate::web::page::Pages;
use bounded::Bounded;

/// What the sandbox made for this run, to print in the banner.
pub struct SandboxInfo {
    pub admin_token: SecretString,
    pub api_key: String,
    /// Secret settings that were set and are not used.
    pub ignored: Vec<&'static str>,
}

/// What the sandbox gives the server: a provider, an API and words for the banner.
pub struct Sandbox {
    pub provider: ProviderSettings,
    pub api_base_url: Url,
    pub admin_token: SecretString,
    pub api_key: String,
    ignored: Vec<&'static str>,
    /// Pages with the sandbox banner, for the whole server.
    pub pages: Pages,
    router: Router,
    /// The `Host` values a request may carry: this listener by address or as localhost.
    hosts: Arc<Vec<String>>,
}

/// The sandbox's own state: its one client and what it has issued.
struct Shared {
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    issuer: String,
    api_key: String,
    token_lifetime: Duration,
    /// The consent page sends `Cross-Origin-Opener-Policy: same-origin`.
    coop: bool,
    clock: Clock,
    pages: Pages,
    issued: Mutex<Issued>,
}

#[derive(Default)]
struct Issued {
    /// Authorization requests waiting for Approve or Deny, by a single-use id.
    consents: Bounded<provider::Consent>,
    /// Codes, kept (used) until they expire so that a replay is recognised.
    codes: Bounded<provider::CodeGrant>,
    access_tokens: Bounded<()>,
    refresh_tokens: Bounded<()>,
}

fn banner(admin_token: &str, api_key: &str) -> String {
    format!(
        "Sandbox: a built-in test provider and a fake EmailOctopus API; nothing here touches a real account. \
         Admin token for this run: {admin_token}. Sandbox API key: {api_key}."
    )
}

impl Sandbox {
    /// Sets up the sandbox for a server listening on `bound`. Every secret
    /// is made for this run: a real one set in the environment or `.env` is
    /// never used, printed or shown.
    pub fn new(bound: SocketAddr, settings: &SandboxSettings, clock: Clock) -> Self {
        let base = Url::parse(&format!("http://{bound}")).expect("a socket address makes a URL");
        let at = |path: &str| base.join(path).expect("a fixed path joins");
        let issuer = at("/sandbox").to_string();
        let client_secret = random_token();
        let redirect_uri = at("/callback");
        let api_key = format!("sandbox-key-{}", &random_token()[..16]);
        let admin_token = SecretString::from(random_token());
        let pages = Pages::with_banner(Some(banner(admin_token.expose_secret(), &api_key)));
        let shared = Arc::new(Shared {
            client_id: "sandbox-client".into(),
            client_secret: client_secret.clone(),
            redirect_uri: redirect_uri.to_string(),
            issuer: issuer.clone(),
            api_key: api_key.clone(),
            token_lifetime: settings.token_lifetime,
            coop: settings.provider_coop,
            clock,
            pages: pages.clone(),
            issued: Mutex::new(Issued::default()),
        });
        let router = Router::new()
            .route(
                "/sandbox/oauth/authorize",
                get(provider::authorize_page).post(provider::decide),
            )
            .route("/sandbox/oauth/token", axum::routing::post(provider::token))
            .route(
                "/sandbox/oauth/revoke",
                axum::routing::post(provider::revoke),
            )
            .route("/sandbox/api/lists", get(api::lists))
            .with_state(shared);
        Self {
            provider: ProviderSettings {
                client_id: "sandbox-client".into(),
                client_secret: SecretString::from(client_secret),
                redirect_uri: Some(redirect_uri.to_string()),
                authorize_url: at("/sandbox/oauth/authorize"),
                token_url: at("/sandbox/oauth/token"),
                revoke_url: Some(at("/sandbox/oauth/revoke")),
                issuer: Some(issuer),
                scopes: vec!["lists:read".into()],
                auth_method: TokenAuthMethod::ClientSecretPost,
            },
            api_base_url: at("/sandbox/api"),
            admin_token,
            api_key,
            ignored: settings.ignored.clone(),
            pages,
            router,
            hosts: Arc::new(vec![
                bound.to_string(),
                format!("localhost:{}", bound.port()),
                format!("127.0.0.1:{}", bound.port()),
                format!("[::1]:{}", bound.port()),
            ]),
        }
    }

    /// Adds the sandbox's routes to `app`, and refuses requests for any other
    /// host name: a web page cannot rebind its own name to this loopback
    /// listener and read the banner's admin token.
    pub fn mount(self, app: Router) -> (Router, SandboxInfo) {
        let hosts = self.hosts;
        let app = app.merge(self.router).layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let hosts = hosts.clone();
                async move {
                    let host = request
                        .headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("");
                    if hosts
                        .iter()
                        .any(|allowed| allowed.eq_ignore_ascii_case(host))
                    {
                        next.run(request).await
                    } else {
                        (
                            StatusCode::MISDIRECTED_REQUEST,
                            "The sandbox answers only on localhost.\n",
                        )
                            .into_response()
                    }
                }
            },
        ));
        let info = SandboxInfo {
            admin_token: self.admin_token,
            api_key: self.api_key,
            ignored: self.ignored,
        };
        (app, info)
    }
}
