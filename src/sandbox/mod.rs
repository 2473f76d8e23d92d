//! `--sandbox`: a small authorization server and a fake EmailOctopus API on
//! the same listener, with a client, key and admin token made for this run,
//! so the whole flow can be clicked through with no account. Nothing outside
//! this module asks whether it is running. The same `Provider`, with other
//! `Settings`, is the provider the integration tests run against.

mod api;
mod authorize;
mod bounded;
mod provider;
mod settings;
mod token;

use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::checked::OwnHosts;
use crate::clock::Clock;
use crate::config::{ProviderSettings, SandboxSettings, TokenAuthMethod};
use crate::crypto::random_token;
use crate::page::Pages;

pub use provider::Provider;
pub use settings::{Consent, Settings};

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
}

const CLIENT_ID: &str = "sandbox-client";

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
        let client_secret = SecretString::from(random_token());
        let redirect_uri = at("/callback").to_string();
        let api_key = format!("sandbox-key-{}", &random_token()[..16]);
        let admin_token = SecretString::from(random_token());
        let pages = Pages::with_banner(Some(banner(admin_token.expose_secret(), &api_key)));
        let provider = Provider::new(
            Settings {
                client_id: CLIENT_ID.into(),
                client_secret: client_secret.clone(),
                redirect_uri: Some(redirect_uri.clone()),
                api_key: SecretString::from(api_key.clone()),
                expires_in: i64::try_from(settings.token_lifetime.as_secs()).unwrap_or(i64::MAX),
                issuer: Some(issuer.clone()),
                refresh_tokens: true,
                pkce: true,
                consent: Consent::Page,
                coop: settings.provider_coop,
            },
            clock,
            pages.clone(),
        );
        let router = Router::new()
            .nest("/sandbox/oauth", provider.oauth_router())
            .nest("/sandbox/api", provider.api_router(Router::new()));
        Self {
            provider: ProviderSettings {
                client_id: CLIENT_ID.into(),
                client_secret,
                redirect_uri: Some(redirect_uri),
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
        }
    }

    /// Adds the sandbox's routes to `app`, and refuses every request whose
    /// `Host` is not one of `own_hosts`: a web page cannot rebind its own
    /// name to this loopback listener and read the banner's admin token.
    pub fn mount(self, app: Router, own_hosts: OwnHosts) -> (Router, SandboxInfo) {
        let app = app.merge(self.router).layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let admitted = own_hosts.admit(&request);
                async move {
                    if admitted {
                        next.run(request).await
                    } else {
                        (
                            StatusCode::MISDIRECTED_REQUEST,
                            "The sandbox answers only at its own address.\n",
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
