//! Settings: one clap struct read from flags, the environment and `.env`.
//! Each value is typed by its parser (`values.rs`), so clap itself refuses a
//! malformed one, naming its flag and variable; `Settings::check`
//! (`check.rs`) then applies the rules that span settings, reporting every
//! problem at once, and yields the `Config`. Handlers never see a raw string.
//!
//! An empty value counts as unset: settings with a default take it
//! (`blank_is_default`); settings without one are spelled
//! `std::option::Option<T>` so that their parser sees the blank and reads it
//! as `None` (`blank_is_unset`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::EnumValueParser;
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use url::Url;

use crate::checked::{AllowedHost, Origin};
use crate::crypto::KeyRing;
use crate::store::DatabaseUrl;

mod check;
mod parsed;
mod run_mode;
#[cfg(test)]
mod tests;
mod values;

pub use check::{ConfigError, ConfigErrors, Purpose, CONFIG_ERROR};
pub use parsed::{
    Config, EventSettings, MaintenanceSettings, ProviderSettings, ProxyPacing, SandboxSettings,
    StorageSettings, WebhookSettings,
};
pub use run_mode::RunMode;
pub use values::{LogFormat, TokenAuthMethod};

use values::{
    blank_is_default, blank_is_unset, boolean, count, database_url, days, endpoint_url, hosts,
    http_url, key_ring, millis, origins, per_second, redirect_uri, scopes, seconds, secret,
    socket_addr, text, unechoed, MAX_BURST, MAX_FAILING_AFTER, MAX_IDLE_DAYS, MAX_MILLIS, MAX_POOL,
    MAX_RATE_PER_SEC, MAX_SECS, MAX_TOKEN_LIFETIME_SECS,
};

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

/// Every setting of the contract, each a flag and a variable of the same
/// name. A flag wins over the environment, which wins over `.env`. Secrets
/// are `SecretString` or `KeyRing`, which do not print, and their values are
/// hidden from `--help`.
#[derive(Args, Debug)]
pub struct Settings {
    /// OAuth client id; set together with CLIENT_SECRET, or neither for API-key mode.
    #[arg(
        global = true, long, env = "CLIENT_ID", value_parser = blank_is_unset(text),
        default_value = "", hide_default_value = true,
    )]
    pub client_id: std::option::Option<String>,
    /// OAuth client secret; set together with CLIENT_ID, or neither for API-key mode.
    #[arg(
        global = true, long, env = "CLIENT_SECRET", hide_env_values = true,
        value_parser = blank_is_unset(secret), default_value = "", hide_default_value = true,
    )]
    pub client_secret: std::option::Option<SecretString>,
    /// Redirect URI registered with the provider [default: http://<bound address>/callback].
    #[arg(
        global = true, long, env = "REDIRECT_URI", value_parser = blank_is_unset(redirect_uri),
        default_value = "", hide_default_value = true,
    )]
    pub redirect_uri: std::option::Option<String>,
    /// Authorization endpoint (the original tutorial's default; EmailOctopus does not document one).
    #[arg(
        global = true, long, env = "AUTHORIZE_URL", value_parser = blank_is_default(endpoint_url),
        default_value = "https://emailoctopus.com/oauth/authorize",
    )]
    pub authorize_url: Url,
    /// Token endpoint (the original tutorial's default; EmailOctopus does not document one).
    #[arg(
        global = true, long, env = "TOKEN_URL", value_parser = blank_is_default(endpoint_url),
        default_value = "https://emailoctopus.com/oauth/token",
    )]
    pub token_url: Url,
    /// RFC 7009 revocation endpoint [default: none, no revocation call].
    #[arg(
        global = true, long, env = "REVOKE_URL", value_parser = blank_is_unset(endpoint_url),
        default_value = "", hide_default_value = true,
    )]
    pub revoke_url: std::option::Option<Url>,
    /// Expected `iss` of authorization responses (RFC 9207) [default: no check].
    #[arg(
        global = true, long, env = "ISSUER", value_parser = blank_is_unset(text),
        default_value = "", hide_default_value = true,
    )]
    pub issuer: std::option::Option<String>,
    /// Space-separated scopes to request [default: no scope parameter].
    #[arg(
        global = true, long, env = "SCOPES", value_parser = scopes, default_value = "",
        hide_default_value = true,
    )]
    pub scopes: std::vec::Vec<String>,
    /// How the client authenticates at the token endpoint.
    #[arg(
        global = true, long, env = "TOKEN_AUTH_METHOD",
        value_parser = blank_is_default(EnumValueParser::<TokenAuthMethod>::new()),
        default_value = "client_secret_post",
    )]
    pub token_auth_method: TokenAuthMethod,
    /// Where the API proxy and API-key checks go.
    #[arg(
        global = true, long, env = "API_BASE_URL", value_parser = blank_is_default(endpoint_url),
        default_value = "https://api.emailoctopus.com",
    )]
    pub api_base_url: Url,
    /// Socket address to serve on; port 0 picks a free port.
    #[arg(
        global = true, long, env = "LISTEN_ADDR", value_parser = blank_is_default(socket_addr),
        default_value = "127.0.0.1:3000",
    )]
    pub listen_addr: SocketAddr,
    /// sqlite://PATH (created if missing) or postgres://...
    #[arg(
        global = true, long, env = "DATABASE_URL",
        value_parser = blank_is_default(unechoed(database_url)),
        default_value = "sqlite://emailoctopus-connect.db",
    )]
    pub database_url: DatabaseUrl,
    /// Most database connections this process opens [default: 1 for SQLite, which has one writer; 10 for Postgres].
    #[arg(
        global = true, long, env = "DATABASE_MAX_CONNECTIONS",
        value_parser = blank_is_unset(count(MAX_POOL)),
        default_value = "", hide_default_value = true,
    )]
    pub database_max_connections: std::option::Option<u32>,
    /// Seconds a request waits for a free database connection before failing.
    #[arg(
        global = true, long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS",
        value_parser = blank_is_default(seconds(MAX_SECS)), default_value = "5",
    )]
    pub database_acquire_timeout_secs: Duration,
    /// Seconds to keep retrying a database that is down at start before giving up.
    #[arg(
        global = true, long, env = "DATABASE_START_TIMEOUT_SECS",
        value_parser = blank_is_default(seconds(MAX_SECS)), default_value = "30",
    )]
    pub database_start_timeout_secs: Duration,
    /// Base64 of 32 random bytes; a comma-separated list rotates keys (the first seals, all open).
    #[arg(
        global = true, long, env = "TOKEN_ENCRYPTION_KEY", hide_env_values = true,
        value_parser = blank_is_unset(unechoed(key_ring)), default_value = "",
        hide_default_value = true,
    )]
    pub token_encryption_key: std::option::Option<KeyRing>,
    /// Bearer token for the backend API [default: none, the backend API answers 401].
    #[arg(
        global = true, long, env = "ADMIN_TOKEN", hide_env_values = true,
        value_parser = blank_is_unset(secret), default_value = "", hide_default_value = true,
    )]
    pub admin_token: std::option::Option<SecretString>,
    /// Let /auth without a connect session connect the connection `default` [default: false, true in sandbox].
    #[arg(
        global = true, long, env = "OPEN_CONNECT", num_args = 0..=1, require_equals = true,
        default_missing_value = "true", value_parser = blank_is_unset(boolean),
        default_value = "", hide_default_value = true,
    )]
    pub open_connect: std::option::Option<bool>,
    /// Comma-separated origins a connect session's return_to may point at.
    #[arg(
        global = true, long, env = "RETURN_TO_ORIGINS", value_parser = origins,
        default_value = "", hide_default_value = true,
    )]
    pub return_to_origins: std::vec::Vec<Origin>,
    /// Comma-separated extra Host values (host or host:port) the browser routes answer for, besides REDIRECT_URI's host and the listen address; any other Host gets 421.
    #[arg(
        global = true, long, env = "ALLOWED_HOSTS", value_parser = hosts, default_value = "",
        hide_default_value = true,
    )]
    pub allowed_hosts: std::vec::Vec<AllowedHost>,
    /// Where connection events are POSTed [default: no webhooks].
    #[arg(
        global = true, long, env = "WEBHOOK_URL", value_parser = blank_is_unset(http_url),
        default_value = "", hide_default_value = true,
    )]
    pub webhook_url: std::option::Option<Url>,
    /// Key for the webhook HMAC-SHA256 signature (required with WEBHOOK_URL).
    #[arg(
        global = true, long, env = "WEBHOOK_SECRET", hide_env_values = true,
        value_parser = blank_is_unset(secret), default_value = "", hide_default_value = true,
    )]
    pub webhook_secret: std::option::Option<SecretString>,
    /// Milliseconds before the first webhook retry; later waits grow from it (at the default, ten attempts span about a day).
    #[arg(
        global = true, long, env = "WEBHOOK_RETRY_BASE_MS",
        value_parser = blank_is_default(millis(MAX_MILLIS)), default_value = "5000",
    )]
    pub webhook_retry_base_ms: Duration,
    /// Milliseconds between two looks at the event outbox for retries and other instances' events.
    #[arg(
        global = true, long, env = "EVENTS_POLL_MS",
        value_parser = blank_is_default(millis(MAX_MILLIS)), default_value = "1000",
    )]
    pub events_poll_ms: Duration,
    /// Days a delivered, failed or unsent event stays readable before it is pruned.
    #[arg(
        global = true, long, env = "EVENT_RETENTION_DAYS",
        value_parser = blank_is_default(days(MAX_IDLE_DAYS)), default_value = "30",
    )]
    pub event_retention_days: Duration,
    /// Separate socket address for /metrics, no bearer there [default: /metrics on the main listener].
    #[arg(
        global = true, long, env = "METRICS_ADDR", value_parser = blank_is_unset(socket_addr),
        default_value = "", hide_default_value = true,
    )]
    pub metrics_addr: std::option::Option<SocketAddr>,
    /// Log format.
    #[arg(
        global = true, long, env = "LOG_FORMAT",
        value_parser = blank_is_default(EnumValueParser::<LogFormat>::new()),
        default_value = "text",
    )]
    pub log_format: LogFormat,
    /// Seconds to wait for the provider or the API before giving up.
    #[arg(
        global = true, long, env = "PROVIDER_TIMEOUT_SECS",
        value_parser = blank_is_default(seconds(MAX_SECS)), default_value = "10",
    )]
    pub provider_timeout_secs: Duration,
    /// Proxied calls one connection may send at once after a quiet spell (EmailOctopus's burst).
    #[arg(
        global = true, long, env = "PROXY_BURST",
        value_parser = blank_is_default(count(MAX_BURST)), default_value = "100",
    )]
    pub proxy_burst: u32,
    /// Proxied calls per second one connection may send after its burst (EmailOctopus's refill); with several instances, divide it between them.
    #[arg(
        global = true, long, env = "PROXY_RATE_PER_SEC",
        value_parser = blank_is_default(per_second(MAX_RATE_PER_SEC)), default_value = "10",
    )]
    pub proxy_rate_per_sec: f64,
    /// Background upkeep: refresh ahead of need, API-key checks, sweeps.
    #[arg(
        global = true, long, env = "MAINTENANCE", action = clap::ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_missing_value = "true",
        value_parser = blank_is_default(boolean), default_value = "true",
    )]
    pub maintenance: bool,
    /// Seconds between two passes of the background upkeep (each pass is jittered).
    #[arg(
        global = true, long, env = "MAINTENANCE_INTERVAL_SECS",
        value_parser = blank_is_default(seconds(MAX_SECS)), default_value = "5",
    )]
    pub maintenance_interval_secs: Duration,
    /// Seconds before expiry that the upkeep refreshes an access token (at most half its lifetime).
    #[arg(
        global = true, long, env = "REFRESH_AHEAD_SECS",
        value_parser = blank_is_default(seconds(MAX_SECS)), default_value = "300",
    )]
    pub refresh_ahead_secs: Duration,
    /// Days after which the provider forgets an unused refresh token; the upkeep refreshes every half of it.
    #[arg(
        global = true, long, env = "REFRESH_TOKEN_IDLE_DAYS",
        value_parser = blank_is_default(days(MAX_IDLE_DAYS)), default_value = "30",
    )]
    pub refresh_token_idle_days: Duration,
    /// Seconds between two checks of one API key at the API (plus up to a tenth, at random).
    #[arg(
        global = true, long, env = "API_KEY_CHECK_INTERVAL_SECS",
        value_parser = blank_is_default(seconds(MAX_TOKEN_LIFETIME_SECS)),
        default_value = "86400",
    )]
    pub api_key_check_interval_secs: Duration,
    /// Transient refresh failures in a row after which connection.refresh_failing is sent.
    #[arg(
        global = true, long, env = "REFRESH_FAILING_AFTER",
        value_parser = blank_is_default(count(MAX_FAILING_AFTER)),
        default_value = "3",
    )]
    pub refresh_failing_after: u32,
    /// Run against a built-in authorization server and fake API; no account needed.
    #[arg(
        global = true, long, env = "SANDBOX", action = clap::ArgAction::Set, num_args = 0..=1,
        require_equals = true, default_missing_value = "true",
        value_parser = blank_is_default(boolean), default_value = "false",
    )]
    pub sandbox: bool,
    /// Lifetime in seconds of the sandbox provider's access tokens (short values let refresh be watched).
    #[arg(
        global = true, long, env = "SANDBOX_TOKEN_LIFETIME_SECS",
        value_parser = blank_is_default(seconds(MAX_TOKEN_LIFETIME_SECS)), default_value = "3600",
    )]
    pub sandbox_token_lifetime_secs: Duration,
    /// Make the sandbox's consent page send Cross-Origin-Opener-Policy: same-origin, as some providers do, to try a popup connect against it.
    #[arg(
        global = true, long, env = "SANDBOX_PROVIDER_COOP", action = clap::ArgAction::Set,
        num_args = 0..=1, require_equals = true, default_missing_value = "true",
        value_parser = blank_is_default(boolean), default_value = "false",
    )]
    pub sandbox_provider_coop: bool,
}
