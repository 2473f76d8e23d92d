//! Settings: one clap struct read from flags, the environment and `.env`,
//! parsed once into typed values. Handlers never see a raw string setting.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use url::Url;

use crate::crypto::KeyRing;
use crate::domain::Origin;
use crate::store::PoolSettings;

/// The command line: a subcommand (none means `serve`) and every setting.
#[derive(Debug, Parser)]
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
    /// Re-seal every stored credential under the first key of TOKEN_ENCRYPTION_KEY.
    Rekey,
}

/// Every setting of the contract. A flag wins over the environment, which wins over `.env`.
#[derive(Debug, Args)]
pub struct Settings {
    /// OAuth client id (required unless --sandbox).
    #[arg(long, env = "CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth client secret (required unless --sandbox).
    #[arg(long, env = "CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Redirect URI registered with the provider [default: http://<bound address>/callback].
    #[arg(long, env = "REDIRECT_URI")]
    pub redirect_uri: Option<String>,
    /// Authorization endpoint (the original tutorial's default; EmailOctopus does not document one).
    #[arg(
        long,
        env = "AUTHORIZE_URL",
        default_value = "https://emailoctopus.com/oauth/authorize"
    )]
    pub authorize_url: String,
    /// Token endpoint (the original tutorial's default; EmailOctopus does not document one).
    #[arg(
        long,
        env = "TOKEN_URL",
        default_value = "https://emailoctopus.com/oauth/token"
    )]
    pub token_url: String,
    /// RFC 7009 revocation endpoint [default: none, no revocation call].
    #[arg(long, env = "REVOKE_URL")]
    pub revoke_url: Option<String>,
    /// Expected `iss` of authorization responses (RFC 9207) [default: no check].
    #[arg(long, env = "ISSUER")]
    pub issuer: Option<String>,
    /// Space-separated scopes to request [default: no scope parameter].
    #[arg(long, env = "SCOPES")]
    pub scopes: Option<String>,
    /// How the client authenticates at the token endpoint: client_secret_post or client_secret_basic.
    #[arg(long, env = "TOKEN_AUTH_METHOD", default_value = "client_secret_post")]
    pub token_auth_method: String,
    /// Where the API proxy and API-key checks go.
    #[arg(
        long,
        env = "API_BASE_URL",
        default_value = "https://api.emailoctopus.com"
    )]
    pub api_base_url: String,
    /// Socket address to serve on; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen_addr: String,
    /// sqlite://PATH (created if missing) or postgres://...
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://emailoctopus-connect.db"
    )]
    pub database_url: String,
    /// Most database connections this process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value = "10")]
    pub database_max_connections: String,
    /// Seconds a request waits for a free database connection before failing.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value = "5")]
    pub database_acquire_timeout_secs: String,
    /// Seconds to keep retrying a database that is down at start before giving up.
    #[arg(long, env = "DATABASE_START_TIMEOUT_SECS", default_value = "30")]
    pub database_start_timeout_secs: String,
    /// Base64 of 32 random bytes; a comma-separated list rotates keys (the first seals, all open).
    #[arg(long, env = "TOKEN_ENCRYPTION_KEY", hide_env_values = true)]
    pub token_encryption_key: Option<String>,
    /// Bearer token for the backend API [default: none, the backend API answers 401].
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Let /auth without a connect session connect the connection `default` [default: false, true in sandbox].
    #[arg(long, env = "OPEN_CONNECT", value_parser = parse_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub open_connect: Option<bool>,
    /// Comma-separated origins a connect session's return_to may point at.
    #[arg(long, env = "RETURN_TO_ORIGINS", default_value = "")]
    pub return_to_origins: String,
    /// Where connection events are POSTed [default: no webhooks].
    #[arg(long, env = "WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Key for the webhook HMAC-SHA256 signature (required with WEBHOOK_URL).
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Milliseconds before the first webhook retry; each next wait doubles, up to 60 times this.
    #[arg(long, env = "WEBHOOK_RETRY_BASE_MS", default_value = "1000")]
    pub webhook_retry_base_ms: String,
    /// Separate socket address for /metrics, no bearer there [default: /metrics on the main listener].
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Seconds to wait for the provider or the API before giving up.
    #[arg(long, env = "PROVIDER_TIMEOUT_SECS", default_value = "10")]
    pub provider_timeout_secs: String,
    /// Run against a built-in authorization server and fake API; no account needed.
    #[arg(long, env = "SANDBOX", value_parser = parse_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub sandbox: bool,
    /// Lifetime in seconds of the sandbox provider's access tokens (short values let refresh be watched).
    #[arg(long, env = "SANDBOX_TOKEN_LIFETIME_SECS", default_value = "3600")]
    pub sandbox_token_lifetime_secs: String,
}

/// A setting that is missing or malformed: names the variable and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
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
    /// Kept as written: the provider compares it character for character.
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

/// Everything the server needs, parsed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    /// `None` in sandbox mode: the sandbox fills in its own provider.
    pub provider: Option<ProviderSettings>,
    pub api_base_url: Url,
    pub database_url: String,
    pub pool: PoolSettings,
    pub keys: KeyRing,
    pub admin_token: Option<SecretString>,
    pub open_connect: bool,
    pub return_to_origins: Vec<Origin>,
    pub webhook: Option<WebhookSettings>,
    pub metrics_addr: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub provider_timeout: Duration,
    pub sandbox: Option<SandboxSettings>,
}

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub token_lifetime: Duration,
}

impl Settings {
    /// Only the log format, so that logging can start before the rest is checked.
    pub fn log_format(&self) -> Result<LogFormat, ConfigError> {
        match self.log_format.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(ConfigError::new(
                "LOG_FORMAT",
                format!("must be text or json, not {other:?}"),
            )),
        }
    }

    /// Checks every setting and turns it into typed values.
    pub fn parse(self) -> Result<Config, ConfigError> {
        let log_format = self.log_format()?;
        let listen_addr = parse_addr("LISTEN_ADDR", &self.listen_addr)?;
        let provider_timeout = Duration::from_secs(parse_positive(
            "PROVIDER_TIMEOUT_SECS",
            &self.provider_timeout_secs,
        )?);
        let sandbox = if self.sandbox {
            if !listen_addr.ip().is_loopback() {
                return Err(ConfigError::new(
                    "LISTEN_ADDR",
                    "the sandbox listens on loopback only (use 127.0.0.1 or [::1])",
                ));
            }
            Some(SandboxSettings {
                token_lifetime: Duration::from_secs(parse_positive(
                    "SANDBOX_TOKEN_LIFETIME_SECS",
                    &self.sandbox_token_lifetime_secs,
                )?),
            })
        } else {
            None
        };
        let keys = match (&self.token_encryption_key, &sandbox) {
            (Some(raw), _) => KeyRing::parse(raw)
                .map_err(|e| ConfigError::new("TOKEN_ENCRYPTION_KEY", e.to_string()))?,
            (None, Some(_)) => KeyRing::generate(),
            (None, None) => return Err(missing("TOKEN_ENCRYPTION_KEY", "--token-encryption-key")),
        };
        let provider = if sandbox.is_some() {
            None
        } else {
            Some(self.provider_settings()?)
        };
        let webhook = match (self.webhook_url, self.webhook_secret) {
            (None, _) => None,
            (Some(url), Some(secret)) if !secret.is_empty() => Some(WebhookSettings {
                url: parse_http_url("WEBHOOK_URL", &url)?,
                secret: SecretString::from(secret),
                retry_base: Duration::from_millis(parse_positive(
                    "WEBHOOK_RETRY_BASE_MS",
                    &self.webhook_retry_base_ms,
                )?),
            }),
            (Some(_), _) => {
                return Err(ConfigError::new(
                    "WEBHOOK_SECRET",
                    "required when WEBHOOK_URL is set",
                ))
            }
        };
        Ok(Config {
            listen_addr,
            provider,
            api_base_url: parse_endpoint_url("API_BASE_URL", &self.api_base_url)?,
            database_url: parse_database_url(&self.database_url)?,
            pool: PoolSettings {
                max_connections: u32::try_from(parse_positive(
                    "DATABASE_MAX_CONNECTIONS",
                    &self.database_max_connections,
                )?)
                .map_err(|_| ConfigError::new("DATABASE_MAX_CONNECTIONS", "too large"))?,
                acquire_timeout: Duration::from_secs(parse_positive(
                    "DATABASE_ACQUIRE_TIMEOUT_SECS",
                    &self.database_acquire_timeout_secs,
                )?),
                start_timeout: Duration::from_secs(parse_positive(
                    "DATABASE_START_TIMEOUT_SECS",
                    &self.database_start_timeout_secs,
                )?),
            },
            keys,
            admin_token: non_empty(self.admin_token).map(SecretString::from),
            open_connect: self.open_connect.unwrap_or(sandbox.is_some()),
            return_to_origins: parse_origins(&self.return_to_origins)?,
            webhook,
            metrics_addr: self
                .metrics_addr
                .as_deref()
                .map(|raw| parse_addr("METRICS_ADDR", raw))
                .transpose()?,
            log_format,
            provider_timeout,
            sandbox,
        })
    }

    fn provider_settings(&self) -> Result<ProviderSettings, ConfigError> {
        let client_id =
            non_empty(self.client_id.clone()).ok_or_else(|| missing("CLIENT_ID", "--client-id"))?;
        let client_secret = non_empty(self.client_secret.clone())
            .ok_or_else(|| missing("CLIENT_SECRET", "--client-secret"))?;
        let auth_method = match self.token_auth_method.as_str() {
            "client_secret_post" => TokenAuthMethod::ClientSecretPost,
            "client_secret_basic" => TokenAuthMethod::ClientSecretBasic,
            other => {
                return Err(ConfigError::new(
                    "TOKEN_AUTH_METHOD",
                    format!("must be client_secret_post or client_secret_basic, not {other:?}"),
                ))
            }
        };
        Ok(ProviderSettings {
            client_id,
            client_secret: SecretString::from(client_secret),
            redirect_uri: self
                .redirect_uri
                .as_deref()
                .map(|raw| parse_http_url("REDIRECT_URI", raw).map(|_| raw.to_owned()))
                .transpose()?,
            authorize_url: parse_endpoint_url("AUTHORIZE_URL", &self.authorize_url)?,
            token_url: parse_endpoint_url("TOKEN_URL", &self.token_url)?,
            revoke_url: self
                .revoke_url
                .as_deref()
                .map(|raw| parse_endpoint_url("REVOKE_URL", raw))
                .transpose()?,
            issuer: non_empty(self.issuer.clone()),
            scopes: self
                .scopes
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            auth_method,
        })
    }
}

fn missing(variable: &'static str, flag: &str) -> ConfigError {
    ConfigError::new(
        variable,
        format!("required: set {variable} or {flag} (or run with --sandbox to try it without an account)"),
    )
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Booleans take exactly `true`/`false`/`1`/`0`, as the contract says.
fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("expected true, false, 1 or 0, not {other:?}")),
    }
}

fn parse_addr(variable: &'static str, raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.parse().map_err(|_| {
        ConfigError::new(
            variable,
            format!("{raw:?} is not a socket address like 127.0.0.1:3000"),
        )
    })
}

fn parse_positive(variable: &'static str, raw: &str) -> Result<u64, ConfigError> {
    match raw.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::new(
            variable,
            format!("{raw:?} is not a positive whole number"),
        )),
    }
}

fn parse_http_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw)
        .map_err(|e| ConfigError::new(variable, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            variable,
            format!("{raw:?} must be an http or https URL with a host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            variable,
            "must not contain credentials or a fragment",
        ));
    }
    Ok(url)
}

/// An endpoint that receives secrets: https, or plain http only on a loopback
/// host (RFC 6749 §3.1, §3.2 and RFC 7009 §2 require TLS; loopback never
/// leaves the machine).
fn parse_endpoint_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = parse_http_url(variable, raw)?;
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err(ConfigError::new(
            variable,
            "must be https (plain http is allowed only for localhost)",
        ));
    }
    Ok(url)
}

fn parse_database_url(raw: &str) -> Result<String, ConfigError> {
    if raw.starts_with("sqlite:")
        || raw.starts_with("postgres://")
        || raw.starts_with("postgresql://")
    {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::new(
            "DATABASE_URL",
            "must start with sqlite:// or postgres://",
        ))
    }
}

fn parse_origins(raw: &str) -> Result<Vec<Origin>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Origin::parse(s)
                .map_err(|e| ConfigError::new("RETURN_TO_ORIGINS", format!("{s:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["emailoctopus-connect"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.settings.parse().map_err(|e| e.to_string())
    }

    const KEY: &str = "--token-encryption-key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn a_missing_client_id_names_the_variable() {
        let err = settings(&["--client-secret=s", KEY]).unwrap_err();
        assert!(err.starts_with("CLIENT_ID: required"), "{err}");
    }

    #[test]
    fn booleans_take_only_true_false_one_zero() {
        assert!(settings(&["--sandbox"]).is_ok());
        assert!(settings(&["--sandbox=1"]).is_ok());
        assert!(settings(&["--sandbox=yes"]).is_err());
    }

    #[test]
    fn the_sandbox_refuses_a_public_listener() {
        let err = settings(&["--sandbox", "--listen-addr=0.0.0.0:3000"]).unwrap_err();
        assert!(err.starts_with("LISTEN_ADDR"), "{err}");
    }

    #[test]
    fn a_webhook_needs_a_secret() {
        let err = settings(&[
            "--client-id=c",
            "--client-secret=s",
            KEY,
            "--webhook-url=http://127.0.0.1:9/hook",
        ])
        .unwrap_err();
        assert!(err.starts_with("WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn endpoints_need_https_off_loopback() {
        let base = ["--client-id=c", "--client-secret=s", KEY];
        let with = |extra: &str| settings(&[base[0], base[1], base[2], extra]);
        assert!(with("--token-url=http://127.0.0.1:9/token").is_ok());
        assert!(with("--token-url=http://localhost:9/token").is_ok());
        let err = with("--token-url=http://provider.example/token").unwrap_err();
        assert!(err.starts_with("TOKEN_URL"), "{err}");
        let err = with("--revoke-url=http://provider.example/revoke").unwrap_err();
        assert!(err.starts_with("REVOKE_URL"), "{err}");
    }

    #[test]
    fn open_connect_defaults_on_only_in_sandbox() {
        assert!(settings(&["--sandbox"]).unwrap().open_connect);
        let real = settings(&["--client-id=c", "--client-secret=s", KEY]).unwrap();
        assert!(!real.open_connect);
    }
}
