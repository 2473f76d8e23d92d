//! What the settings become once checked: everything the server needs, typed.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::{LogFormat, RunMode, TokenAuthMethod};
use crate::checked::{AllowedHost, Origin};
use crate::crypto::KeyRing;
use crate::events::WebhookKeys;
use crate::store::{DatabaseUrl, PoolSettings};

/// Everything the server needs, parsed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub mode: RunMode,
    /// Kept as written: the provider compares it character for character.
    /// It is also this server's public address (connect links, cookies),
    /// so it counts in API-key mode too.
    pub redirect_uri: Option<String>,
    pub api_base_url: Url,
    pub storage: StorageSettings,
    pub admin_token: Option<SecretString>,
    pub open_connect: bool,
    pub return_to_origins: Vec<Origin>,
    pub allowed_hosts: Vec<AllowedHost>,
    pub webhook: Option<WebhookSettings>,
    pub events: EventSettings,
    pub metrics_addr: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub provider_timeout: Duration,
    pub pacing: ProxyPacing,
    pub maintenance: MaintenanceSettings,
}

/// The OAuth provider as configured; in sandbox mode the endpoints are filled in
/// once the listener knows its address.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    /// The sandbox's own; otherwise `Config::redirect_uri` applies.
    pub redirect_uri: Option<String>,
    pub authorize_url: Url,
    pub token_url: Url,
    pub revoke_url: Option<Url>,
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    pub auth_method: TokenAuthMethod,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: Url,
    pub keys: WebhookKeys,
    /// The first retry's wait; the later ones grow from it.
    pub retry_base: Duration,
}

/// The event outbox's own rhythm, with or without a webhook.
#[derive(Debug, Clone, Copy)]
pub struct EventSettings {
    /// How often the outbox is looked at besides when this process writes to it.
    pub poll: Duration,
    /// How long a finished event stays.
    pub retention: Duration,
}

/// The proxy's per-connection bucket.
#[derive(Debug, Clone, Copy)]
pub struct ProxyPacing {
    pub burst: u32,
    pub rate_per_sec: f64,
}

/// The background upkeep and the schedule it keeps.
#[derive(Debug, Clone, Copy)]
pub struct MaintenanceSettings {
    /// Whether the loop runs (`MAINTENANCE`).
    pub enabled: bool,
    pub interval: Duration,
    pub refresh_ahead: Duration,
    /// Half the provider's idle refresh-token expiry.
    pub idle_refresh_every: Duration,
    pub api_key_check_every: Duration,
    pub failing_after: u32,
}

/// What reaches the stored credentials: all that `rekey` needs. `Debug`
/// hides a database password (`DatabaseUrl`) and shows key ids only (`KeyRing`).
#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub database_url: DatabaseUrl,
    pub pool: PoolSettings,
    pub keys: KeyRing,
}

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub token_lifetime: Duration,
    /// The consent page sends `Cross-Origin-Opener-Policy: same-origin`.
    pub provider_coop: bool,
    /// Secret settings that were set but are not used: the sandbox makes its own.
    pub ignored: Vec<&'static str>,
}
