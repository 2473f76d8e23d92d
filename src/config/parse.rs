//! From raw settings to typed values; every error names its variable.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::*;

/// Upper bounds that keep durations and sizes far from overflow.
const MAX_SECS: u64 = 24 * 60 * 60;
const MAX_MILLIS: u64 = 60 * 60 * 1000;
const MAX_TOKEN_LIFETIME_SECS: u64 = 366 * 24 * 60 * 60;
const MAX_POOL: u64 = 1000;

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
        let provider_timeout = Duration::from_secs(parse_bounded(
            "PROVIDER_TIMEOUT_SECS",
            &self.provider_timeout_secs,
            MAX_SECS,
        )?);
        let sandbox = if self.sandbox {
            if !listen_addr.ip().is_loopback() {
                return Err(ConfigError::new(
                    "LISTEN_ADDR",
                    "the sandbox listens on loopback only (use 127.0.0.1 or [::1])",
                ));
            }
            Some(SandboxSettings {
                token_lifetime: Duration::from_secs(parse_bounded(
                    "SANDBOX_TOKEN_LIFETIME_SECS",
                    &self.sandbox_token_lifetime_secs,
                    MAX_TOKEN_LIFETIME_SECS,
                )?),
                provider_coop: self.sandbox_provider_coop,
            })
        } else {
            None
        };
        let storage = self.storage(sandbox.is_some())?;
        let metrics_addr = self
            .metrics_addr
            .as_deref()
            .map(|raw| parse_addr("METRICS_ADDR", raw))
            .transpose()?;
        if sandbox.is_some() && metrics_addr.is_some_and(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::new(
                "METRICS_ADDR",
                "the sandbox listens on loopback only",
            ));
        }
        let provider = if sandbox.is_some() {
            None
        } else {
            Some(self.provider_settings()?)
        };
        let maintenance = self.maintenance_settings()?;
        let webhook = match (self.webhook_url, self.webhook_secret) {
            (None, _) => None,
            (Some(url), Some(secret)) if !secret.is_empty() => Some(WebhookSettings {
                url: parse_http_url("WEBHOOK_URL", &url)?,
                secret: SecretString::from(secret),
                retry_base: Duration::from_millis(parse_bounded(
                    "WEBHOOK_RETRY_BASE_MS",
                    &self.webhook_retry_base_ms,
                    MAX_MILLIS,
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
            storage,
            admin_token: non_empty(self.admin_token).map(SecretString::from),
            open_connect: self.open_connect.unwrap_or(sandbox.is_some()),
            return_to_origins: parse_origins(&self.return_to_origins)?,
            allowed_hosts: parse_hosts(&self.allowed_hosts)?,
            webhook,
            metrics_addr,
            log_format,
            provider_timeout,
            maintenance,
            sandbox,
        })
    }

    fn maintenance_settings(&self) -> Result<MaintenanceSettings, ConfigError> {
        let secs =
            |variable, raw: &str, max| parse_bounded(variable, raw, max).map(Duration::from_secs);
        let idle_days = secs(
            "REFRESH_TOKEN_IDLE_DAYS",
            &self.refresh_token_idle_days,
            3660,
        )?;
        Ok(MaintenanceSettings {
            enabled: self.maintenance,
            interval: secs(
                "MAINTENANCE_INTERVAL_SECS",
                &self.maintenance_interval_secs,
                MAX_SECS,
            )?,
            refresh_ahead: secs("REFRESH_AHEAD_SECS", &self.refresh_ahead_secs, MAX_SECS)?,
            idle_refresh_every: idle_days * 24 * 60 * 60 / 2,
            api_key_check_every: secs(
                "API_KEY_CHECK_INTERVAL_SECS",
                &self.api_key_check_interval_secs,
                MAX_TOKEN_LIFETIME_SECS,
            )?,
            failing_after: parse_bounded(
                "REFRESH_FAILING_AFTER",
                &self.refresh_failing_after,
                1000,
            )? as u32,
        })
    }

    /// The database and the key ring. The sandbox makes a key for the run
    /// when none is given.
    pub fn storage(&self, sandbox: bool) -> Result<StorageSettings, ConfigError> {
        let keys = match &self.token_encryption_key {
            Some(raw) => KeyRing::parse(raw)
                .map_err(|e| ConfigError::new("TOKEN_ENCRYPTION_KEY", e.to_string()))?,
            None if sandbox => KeyRing::generate(),
            None => return Err(missing("TOKEN_ENCRYPTION_KEY", "--token-encryption-key")),
        };
        let database_url = parse_database_url(&self.database_url)?;
        let max_connections = match &self.database_max_connections {
            Some(raw) => parse_bounded("DATABASE_MAX_CONNECTIONS", raw, MAX_POOL)? as u32,
            // SQLite has one writer, and each extra connection is another
            // thread to hand every statement to: one is the fastest.
            None if database_url.starts_with("sqlite:") => 1,
            None => 10,
        };
        Ok(StorageSettings {
            database_url,
            pool: PoolSettings {
                max_connections,
                acquire_timeout: Duration::from_secs(parse_bounded(
                    "DATABASE_ACQUIRE_TIMEOUT_SECS",
                    &self.database_acquire_timeout_secs,
                    MAX_SECS,
                )?),
                start_timeout: Duration::from_secs(parse_bounded(
                    "DATABASE_START_TIMEOUT_SECS",
                    &self.database_start_timeout_secs,
                    MAX_SECS,
                )?),
            },
            keys,
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
                .map(|raw| parse_endpoint_url("REDIRECT_URI", raw).map(|_| raw.to_owned()))
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
pub(super) fn parse_bool(raw: &str) -> Result<bool, String> {
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

fn parse_bounded(variable: &'static str, raw: &str, max: u64) -> Result<u64, ConfigError> {
    match raw.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            variable,
            format!("{raw:?} is not a whole number from 1 to {max}"),
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
/// host (RFC 6749 §3.1, §3.2, RFC 7009 §2 and RFC 9700 §2.1 require TLS;
/// loopback never leaves the machine).
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

fn parse_hosts(raw: &str) -> Result<Vec<AllowedHost>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            AllowedHost::parse(s)
                .map_err(|e| ConfigError::new("ALLOWED_HOSTS", format!("{s:?}: {e}")))
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
