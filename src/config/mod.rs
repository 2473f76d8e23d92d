//! Settings: one clap struct read from flags, the environment and `.env`,
//! parsed once into typed values. Handlers never see a raw string setting.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use url::Url;

use crate::checked::{AllowedHost, Origin};
use crate::crypto::KeyRing;
use crate::store::PoolSettings;

mod parse;

pub use parse::Purpose;

/// The command line: a subcommand (none means `serve`) and every setting.
#[derive(Parser)]
#[command(name = "emailoctopus-connect", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the connect page, the callback and the backend API (the default).
    Serve,
    /// Print a fresh TOKEN_ENCRYPTION_KEY (base64 of 32 random bytes).
    GenKey,
    /// Print a fresh random ADMIN_TOKEN.
    GenToken,
    /// Re-seal every stored credential under the first key of TOKEN_ENCRYPTION_KEY.
    Rekey,
}

/// Every setting of the contract. A flag wins over the environment, which wins over `.env`.
// No `Debug`: the raw values include secrets.
#[derive(Args)]
pub struct Settings {
    /// OAuth client id; set together with CLIENT_SECRET, or neither for API-key mode.
    #[arg(global = true, long, env = "CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth client secret; set together with CLIENT_ID, or neither for API-key mode.
    #[arg(global = true, long, env = "CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Redirect URI registered with the provider [default: http://<bound address>/callback].
    #[arg(global = true, long, env = "REDIRECT_URI")]
    pub redirect_uri: Option<String>,
    /// Authorization endpoint (the original tutorial's default; EmailOctopus does not document one).
    #[arg(
        global = true,
        long,
        env = "AUTHORIZE_URL",
        default_value = "https://emailoctopus.com/oauth/authorize"
    )]
    pub authorize_url: String,
    /// Token endpoint (the original tutorial's default; EmailOctopus does not document one).
    #[arg(
        global = true,
        long,
        env = "TOKEN_URL",
        default_value = "https://emailoctopus.com/oauth/token"
    )]
    pub token_url: String,
    /// RFC 7009 revocation endpoint [default: none, no revocation call].
    #[arg(global = true, long, env = "REVOKE_URL")]
    pub revoke_url: Option<String>,
    /// Expected `iss` of authorization responses (RFC 9207) [default: no check].
    #[arg(global = true, long, env = "ISSUER")]
    pub issuer: Option<String>,
    /// Space-separated scopes to request [default: no scope parameter].
    #[arg(global = true, long, env = "SCOPES")]
    pub scopes: Option<String>,
    /// How the client authenticates at the token endpoint: client_secret_post or client_secret_basic.
    #[arg(
        global = true,
        long,
        env = "TOKEN_AUTH_METHOD",
        default_value = "client_secret_post"
    )]
    pub token_auth_method: String,
    /// Where the API proxy and API-key checks go.
    #[arg(
        global = true,
        long,
        env = "API_BASE_URL",
        default_value = "https://api.emailoctopus.com"
    )]
    pub api_base_url: String,
    /// Socket address to serve on; port 0 picks a free port.
    #[arg(
        global = true,
        long,
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    pub listen_addr: String,
    /// sqlite://PATH (created if missing) or postgres://...
    #[arg(
        global = true,
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://emailoctopus-connect.db"
    )]
    pub database_url: String,
    /// Most database connections this process opens [default: 1 for SQLite, which has one writer; 10 for Postgres].
    #[arg(global = true, long, env = "DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<String>,
    /// Seconds a request waits for a free database connection before failing.
    #[arg(
        global = true,
        long,
        env = "DATABASE_ACQUIRE_TIMEOUT_SECS",
        default_value = "5"
    )]
    pub database_acquire_timeout_secs: String,
    /// Seconds to keep retrying a database that is down at start before giving up.
    #[arg(
        global = true,
        long,
        env = "DATABASE_START_TIMEOUT_SECS",
        default_value = "30"
    )]
    pub database_start_timeout_secs: String,
    /// Base64 of 32 random bytes; a comma-separated list rotates keys (the first seals, all open).
    #[arg(
        global = true,
        long,
        env = "TOKEN_ENCRYPTION_KEY",
        hide_env_values = true
    )]
    pub token_encryption_key: Option<String>,
    /// Bearer token for the backend API [default: none, the backend API answers 401].
    #[arg(global = true, long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Let /auth without a connect session connect the connection `default` [default: false, true in sandbox].
    #[arg(global = true, long, env = "OPEN_CONNECT", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub open_connect: Option<String>,
    /// Comma-separated origins a connect session's return_to may point at.
    #[arg(global = true, long, env = "RETURN_TO_ORIGINS", default_value = "")]
    pub return_to_origins: String,
    /// Comma-separated extra Host values (host or host:port) the browser routes answer for, besides REDIRECT_URI's host and the listen address; any other Host gets 421.
    #[arg(global = true, long, env = "ALLOWED_HOSTS", default_value = "")]
    pub allowed_hosts: String,
    /// Where connection events are POSTed [default: no webhooks].
    #[arg(global = true, long, env = "WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Key for the webhook HMAC-SHA256 signature (required with WEBHOOK_URL).
    #[arg(global = true, long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Milliseconds before the first webhook retry; each next wait doubles, up to 60 times this.
    #[arg(
        global = true,
        long,
        env = "WEBHOOK_RETRY_BASE_MS",
        default_value = "1000"
    )]
    pub webhook_retry_base_ms: String,
    /// Separate socket address for /metrics, no bearer there [default: /metrics on the main listener].
    #[arg(global = true, long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Log format: text or json.
    #[arg(global = true, long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Seconds to wait for the provider or the API before giving up.
    #[arg(
        global = true,
        long,
        env = "PROVIDER_TIMEOUT_SECS",
        default_value = "10"
    )]
    pub provider_timeout_secs: String,
    /// Background upkeep: refresh ahead of need, API-key checks, sweeps.
    #[arg(global = true, long, env = "MAINTENANCE", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub maintenance: Option<String>,
    /// Seconds between two passes of the background upkeep (each pass is jittered).
    #[arg(
        global = true,
        long,
        env = "MAINTENANCE_INTERVAL_SECS",
        default_value = "5"
    )]
    pub maintenance_interval_secs: String,
    /// Seconds before expiry that the upkeep refreshes an access token (at most half its lifetime).
    #[arg(global = true, long, env = "REFRESH_AHEAD_SECS", default_value = "300")]
    pub refresh_ahead_secs: String,
    /// Days after which the provider forgets an unused refresh token; the upkeep refreshes every half of it.
    #[arg(
        global = true,
        long,
        env = "REFRESH_TOKEN_IDLE_DAYS",
        default_value = "30"
    )]
    pub refresh_token_idle_days: String,
    /// Seconds between two checks of one API key at the API (plus up to a tenth, at random).
    #[arg(
        global = true,
        long,
        env = "API_KEY_CHECK_INTERVAL_SECS",
        default_value = "86400"
    )]
    pub api_key_check_interval_secs: String,
    /// Transient refresh failures in a row after which connection.refresh_failing is sent.
    #[arg(
        global = true,
        long,
        env = "REFRESH_FAILING_AFTER",
        default_value = "3"
    )]
    pub refresh_failing_after: String,
    /// Run against a built-in authorization server and fake API; no account needed.
    #[arg(global = true, long, env = "SANDBOX", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sandbox: Option<String>,
    /// Lifetime in seconds of the sandbox provider's access tokens (short values let refresh be watched).
    #[arg(
        global = true,
        long,
        env = "SANDBOX_TOKEN_LIFETIME_SECS",
        default_value = "3600"
    )]
    pub sandbox_token_lifetime_secs: String,
    /// Make the sandbox's consent page send Cross-Origin-Opener-Policy: same-origin, as some providers do, to try a popup connect against it.
    #[arg(global = true, long, env = "SANDBOX_PROVIDER_COOP", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sandbox_provider_coop: Option<String>,
}

/// The exit status for a setting that is missing or malformed, or a
/// database that cannot be used as configured.
pub const CONFIG_ERROR: u8 = 2;

/// A setting that is missing or malformed: names the variable and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Every setting that is missing or malformed, so that one run reports them all.
#[derive(Debug, Default, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\nerror: "))
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretPost,
    ClientSecretBasic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
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
    pub secret: SecretString,
    pub retry_base: Duration,
}

/// What a run connects through. Only start-up and `sandbox/` ask which one runs.
#[derive(Debug, Clone)]
pub enum RunMode {
    /// OAuth against the configured provider, and API keys.
    OAuth(Box<ProviderSettings>),
    /// No OAuth client is configured: connections use API keys only, which
    /// is what EmailOctopus's public API takes.
    ApiKeysOnly,
    /// The built-in provider and fake API, with secrets made for the run.
    Sandbox(SandboxSettings),
}

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
    pub metrics_addr: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub provider_timeout: Duration,
    pub maintenance: MaintenanceSettings,
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

/// What reaches the stored credentials: all that `rekey` needs.
#[derive(Clone)]
pub struct StorageSettings {
    pub database_url: String,
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

/// By hand: a database URL can carry a password.
impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match Url::parse(&self.database_url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("redacted"));
                url.to_string()
            }
            _ => self.database_url.clone(),
        };
        f.debug_struct("StorageSettings")
            .field("database_url", &shown)
            .field("pool", &self.pool)
            .field("keys", &self.keys)
            .finish()
    }
}
