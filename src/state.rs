//! The one state every route shares, behind an `Arc`. It holds no store
//! handle: routes reach the database only through `connections`,
//! `sessions` and `used_flows`, which own its rules.

use std::ops::Deref;
use std::sync::Arc;

use url::Url;

use crate::checked::Origin;
use crate::checked::OwnHosts;
use crate::clock::Clock;
use crate::config::RunMode;
use crate::connect_sessions::ConnectSessions;
use crate::connections::Connections;
use crate::crypto::{MacKeys, Sealer, SecretDigest};
use crate::emailoctopus_api::EmailOctopusApi;
use crate::metrics::Metrics;
use crate::oauth::{ProviderClient, UsedFlows};
use crate::page::Pages;

/// The run mode once start-up has built the provider's client: the
/// configured provider's, or the sandbox's.
pub type RunningMode = RunMode<Arc<ProviderClient>, Arc<ProviderClient>>;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// Records each flow's callback, so that a flow finishes once.
    pub used_flows: UsedFlows,
    /// Seals the browser's pending-flows cookie.
    pub flow_keys: Sealer,
    /// Seals the operator's session cookie.
    pub admin_keys: Sealer,
    /// Signs CSRF cookies and form tokens.
    pub csrf_keys: MacKeys,
    /// Now, movable in tests.
    pub clock: Clock,
    /// This run's mode with its OAuth provider (authorize URL, exchange,
    /// refresh, revoke): `mode.provider()`, `None` in API-key mode.
    pub mode: RunningMode,
    /// The credential rules: store, open, refresh, delete.
    pub connections: Arc<Connections>,
    /// The event outbox as the backend reads it.
    pub events: crate::events::EventLog,
    /// Single-use connect sessions that let a browser connect one connection.
    pub sessions: ConnectSessions,
    /// The EmailOctopus API (or the sandbox's): key checks and the proxy.
    pub api: EmailOctopusApi,
    /// The backend API's bearer token (its digest); `None` answers 401 to everyone.
    pub admin_token: Option<SecretDigest>,
    /// `/auth` without a session connects `default`.
    pub open_connect: bool,
    /// Origins a connect session's `return_to` may point at.
    pub return_to_origins: Vec<Origin>,
    /// This server's names: the browser routes (in the sandbox, every route)
    /// answer 421 for any other `Host`.
    pub browser_hosts: OwnHosts,
    /// Flow cookies are `Secure` when the redirect URI is https.
    pub cookie_secure: bool,
    /// Each connection's turns at the API through the proxy.
    pub pacing: crate::api::pacing::Pacing,
    /// The longest a proxied answer may take, head and body together.
    pub proxy_deadline: std::time::Duration,
    /// The public base URL of this server, for connect links.
    pub public_url: Url,
    /// Renders pages (with the sandbox's banner, when there is one).
    pub pages: Pages,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
