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

/// Collects every problem, so one run names all the settings to fix.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn check<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }
}

/// Which command the settings are read for: only `serve` may suggest the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Serve,
    Rekey,
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

    /// Whether `--sandbox` (or `SANDBOX`) is on; a malformed value is an error.
    fn sandbox(&self) -> Result<bool, ConfigError> {
        optional_bool("SANDBOX", &self.sandbox).map(|on| on.unwrap_or(false))
    }

    /// Checks every setting and turns it into typed values; every problem
    /// is reported, not only the first.
    pub fn parse(self) -> Result<Config, ConfigErrors> {
        let mut problems = Problems::default();
        let log_format = problems.check(self.log_format());
        let listen_addr = problems.check(parse_addr("LISTEN_ADDR", &self.listen_addr));
        let provider_timeout = problems.check(
            parse_bounded(
                "PROVIDER_TIMEOUT_SECS",
                &self.provider_timeout_secs,
                MAX_SECS,
            )
            .map(Duration::from_secs),
        );
        let sandbox = problems.check(self.sandbox()).unwrap_or(false);
        let open_connect = problems.check(optional_bool("OPEN_CONNECT", &self.open_connect));
        let mode = if sandbox {
            problems.check(self.sandbox_settings(listen_addr))
        } else {
            problems.check(self.oauth_or_api_keys())
        };
        let storage = self.storage_into(&mut problems, Purpose::Serve, sandbox);
        let metrics_addr = problems.check(
            non_empty(self.metrics_addr.clone())
                .map(|raw| parse_addr("METRICS_ADDR", &raw))
                .transpose(),
        );
        if sandbox
            && metrics_addr
                .flatten()
                .is_some_and(|a| !a.ip().is_loopback())
        {
            problems.0.push(ConfigError::new(
                "METRICS_ADDR",
                "the sandbox listens on loopback only",
            ));
        }
        let maintenance = problems.check(self.maintenance_settings());
        let webhook = problems.check(self.webhook());
        let api_base_url = problems.check(parse_endpoint_url("API_BASE_URL", &self.api_base_url));
        let return_to_origins = problems.check(parse_origins(&self.return_to_origins));
        let allowed_hosts = problems.check(parse_hosts(&self.allowed_hosts));
        let redirect_uri = problems.check(
            non_empty(self.redirect_uri.clone())
                .map(|raw| parse_endpoint_url("REDIRECT_URI", &raw).map(|_| raw))
                .transpose(),
        );
        let admin_token = non_empty(self.admin_token).map(SecretString::from);
        match (
            log_format,
            listen_addr,
            provider_timeout,
            open_connect,
            mode,
            storage,
            metrics_addr,
            webhook,
            api_base_url,
            return_to_origins,
            redirect_uri,
            maintenance,
            allowed_hosts,
        ) {
            (
                Some(log_format),
                Some(listen_addr),
                Some(provider_timeout),
                Some(open_connect),
                Some(mode),
                Some(storage),
                Some(metrics_addr),
                Some(webhook),
                Some(api_base_url),
                Some(return_to_origins),
                Some(redirect_uri),
                Some(maintenance),
                Some(allowed_hosts),
            ) if problems.0.is_empty() => Ok(Config {
                listen_addr,
                redirect_uri,
                open_connect: open_connect.unwrap_or(sandbox),
                mode,
                api_base_url,
                storage,
                admin_token,
                return_to_origins,
                allowed_hosts,
                webhook,
                metrics_addr,
                log_format,
                provider_timeout,
                maintenance,
            }),
            _ => Err(ConfigErrors(problems.0)),
        }
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
            enabled: optional_bool("MAINTENANCE", &self.maintenance)?.unwrap_or(true),
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

    /// The database and the key ring: all that `rekey` needs.
    pub fn storage(&self, purpose: Purpose) -> Result<StorageSettings, ConfigErrors> {
        let mut problems = Problems::default();
        match self.storage_into(&mut problems, purpose, false) {
            Some(storage) if problems.0.is_empty() => Ok(storage),
            _ => Err(ConfigErrors(problems.0)),
        }
    }

    /// The sandbox makes its own key for the run, whatever is set.
    fn storage_into(
        &self,
        problems: &mut Problems,
        purpose: Purpose,
        sandbox: bool,
    ) -> Option<StorageSettings> {
        let keys = match non_empty(self.token_encryption_key.clone()) {
            _ if sandbox => Some(KeyRing::generate()),
            Some(raw) => problems.check(
                KeyRing::parse(&raw)
                    .map_err(|e| ConfigError::new("TOKEN_ENCRYPTION_KEY", e.to_string())),
            ),
            None => {
                let hint = match purpose {
                    Purpose::Serve => " (or try it without an account: --sandbox)",
                    Purpose::Rekey => "",
                };
                problems.0.push(ConfigError::new(
                    "TOKEN_ENCRYPTION_KEY",
                    format!(
                        "required: make one with `emailoctopus-connect gen-key` and set \
                         TOKEN_ENCRYPTION_KEY or --token-encryption-key{hint}"
                    ),
                ));
                None
            }
        };
        let database_url = problems.check(parse_database_url(&self.database_url));
        let max_connections = match non_empty(self.database_max_connections.clone()) {
            Some(raw) => problems
                .check(parse_bounded("DATABASE_MAX_CONNECTIONS", &raw, MAX_POOL))
                .map(|n| n as u32),
            // SQLite has one writer, and each extra connection is another
            // thread to hand every statement to: one is the fastest.
            None if database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("sqlite:")) =>
            {
                Some(1)
            }
            None => Some(10),
        };
        let acquire_timeout = problems.check(parse_bounded(
            "DATABASE_ACQUIRE_TIMEOUT_SECS",
            &self.database_acquire_timeout_secs,
            MAX_SECS,
        ));
        let start_timeout = problems.check(parse_bounded(
            "DATABASE_START_TIMEOUT_SECS",
            &self.database_start_timeout_secs,
            MAX_SECS,
        ));
        Some(StorageSettings {
            database_url: database_url?,
            pool: PoolSettings {
                max_connections: max_connections?,
                acquire_timeout: Duration::from_secs(acquire_timeout?),
                start_timeout: Duration::from_secs(start_timeout?),
            },
            keys: keys?,
        })
    }

    fn sandbox_settings(&self, listen_addr: Option<SocketAddr>) -> Result<RunMode, ConfigError> {
        if listen_addr.is_some_and(|addr| !addr.ip().is_loopback()) {
            return Err(ConfigError::new(
                "LISTEN_ADDR",
                "the sandbox listens on loopback only (use 127.0.0.1 or [::1])",
            ));
        }
        let token_lifetime = parse_bounded(
            "SANDBOX_TOKEN_LIFETIME_SECS",
            &self.sandbox_token_lifetime_secs,
            MAX_TOKEN_LIFETIME_SECS,
        )?;
        let set = |name: &'static str, value: &Option<String>| {
            non_empty(value.clone()).is_some().then_some(name)
        };
        let ignored = [
            set("CLIENT_ID", &self.client_id),
            set("CLIENT_SECRET", &self.client_secret),
            set("TOKEN_ENCRYPTION_KEY", &self.token_encryption_key),
            set("ADMIN_TOKEN", &self.admin_token),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(RunMode::Sandbox(SandboxSettings {
            token_lifetime: Duration::from_secs(token_lifetime),
            provider_coop: optional_bool("SANDBOX_PROVIDER_COOP", &self.sandbox_provider_coop)?
                .unwrap_or(false),
            ignored,
        }))
    }

    /// OAuth when both client settings are there, API keys only when neither is.
    fn oauth_or_api_keys(&self) -> Result<RunMode, ConfigError> {
        let client_id = non_empty(self.client_id.clone());
        let client_secret = non_empty(self.client_secret.clone());
        let (client_id, client_secret) = match (client_id, client_secret) {
            (None, None) => return Ok(RunMode::ApiKeysOnly),
            (Some(id), Some(secret)) => (id, secret),
            (None, Some(_)) => return Err(half_client("CLIENT_ID", "CLIENT_SECRET")),
            (Some(_), None) => return Err(half_client("CLIENT_SECRET", "CLIENT_ID")),
        };
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
        Ok(RunMode::OAuth(Box::new(ProviderSettings {
            client_id,
            client_secret: SecretString::from(client_secret),
            redirect_uri: None,
            authorize_url: parse_endpoint_url("AUTHORIZE_URL", &self.authorize_url)?,
            token_url: parse_endpoint_url("TOKEN_URL", &self.token_url)?,
            revoke_url: non_empty(self.revoke_url.clone())
                .map(|raw| parse_endpoint_url("REVOKE_URL", &raw))
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
        })))
    }

    fn webhook(&self) -> Result<Option<WebhookSettings>, ConfigError> {
        let Some(url) = non_empty(self.webhook_url.clone()) else {
            return Ok(None);
        };
        let Some(secret) = non_empty(self.webhook_secret.clone()) else {
            return Err(ConfigError::new(
                "WEBHOOK_SECRET",
                "required when WEBHOOK_URL is set",
            ));
        };
        Ok(Some(WebhookSettings {
            url: parse_http_url("WEBHOOK_URL", &url)?,
            secret: SecretString::from(secret),
            retry_base: Duration::from_millis(parse_bounded(
                "WEBHOOK_RETRY_BASE_MS",
                &self.webhook_retry_base_ms,
                MAX_MILLIS,
            )?),
        }))
    }
}

/// Only one of the pair is set: OAuth needs both, API-key mode neither.
fn half_client(missing: &'static str, present: &str) -> ConfigError {
    ConfigError::new(
        missing,
        format!(
            "required because {present} is set (set both for OAuth, or neither to connect with API keys only)"
        ),
    )
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Booleans take `true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off`, as the contract says.
fn parse_bool(variable: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            variable,
            format!("{raw:?} is not a boolean: use true, false, 1, 0, yes, no, on or off"),
        )),
    }
}

/// An unset or empty boolean is `None`: its default depends on the mode.
fn optional_bool(
    variable: &'static str,
    raw: &Option<String>,
) -> Result<Option<bool>, ConfigError> {
    non_empty(raw.clone())
        .map(|raw| parse_bool(variable, &raw))
        .transpose()
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
    fn neither_client_setting_means_api_key_mode() {
        let config = settings(&[KEY]).unwrap();
        assert!(matches!(config.mode, RunMode::ApiKeysOnly));
        let config = settings(&[KEY, "--client-id=", "--client-secret= "]).unwrap();
        assert!(matches!(config.mode, RunMode::ApiKeysOnly));
    }

    #[test]
    fn half_a_client_names_the_missing_half() {
        let err = settings(&["--client-secret=s", KEY]).unwrap_err();
        assert!(
            err.starts_with("CLIENT_ID: required because CLIENT_SECRET"),
            "{err}"
        );
        let err = settings(&["--client-id=c", KEY]).unwrap_err();
        assert!(
            err.starts_with("CLIENT_SECRET: required because CLIENT_ID"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_is_reported_in_one_run() {
        let err = settings(&[
            "--client-id=c",
            "--listen-addr=nowhere",
            "--provider-timeout-secs=soon",
            "--open-connect=maybe",
        ])
        .unwrap_err();
        for variable in [
            "LISTEN_ADDR:",
            "PROVIDER_TIMEOUT_SECS:",
            "OPEN_CONNECT:",
            "CLIENT_SECRET:",
            "TOKEN_ENCRYPTION_KEY:",
        ] {
            assert!(err.contains(variable), "{variable} missing from {err}");
        }
    }

    #[test]
    fn booleans_take_the_contract_words() {
        for yes in ["true", "1", "yes", "on", "ON", "Yes"] {
            let config = settings(&[KEY, &format!("--open-connect={yes}")]).unwrap();
            assert!(config.open_connect, "{yes}");
        }
        for no in ["false", "0", "no", "off"] {
            let config = settings(&[KEY, &format!("--open-connect={no}")]).unwrap();
            assert!(!config.open_connect, "{no}");
        }
        assert!(settings(&["--sandbox"]).is_ok());
        let err = settings(&["--sandbox=maybe"]).unwrap_err();
        assert!(
            err.starts_with("SANDBOX: \"maybe\" is not a boolean"),
            "{err}"
        );
    }

    #[test]
    fn the_sandbox_refuses_a_public_listener() {
        let err = settings(&["--sandbox", "--listen-addr=0.0.0.0:3000"]).unwrap_err();
        assert!(err.starts_with("LISTEN_ADDR"), "{err}");
    }

    #[test]
    fn the_sandbox_names_the_secrets_it_ignores() {
        let config = settings(&["--sandbox", "--admin-token=real", KEY]).unwrap();
        let RunMode::Sandbox(sandbox) = config.mode else {
            panic!("not the sandbox")
        };
        assert_eq!(sandbox.ignored, ["TOKEN_ENCRYPTION_KEY", "ADMIN_TOKEN"]);
    }

    #[test]
    fn a_webhook_needs_a_secret() {
        let err = settings(&[KEY, "--webhook-url=http://127.0.0.1:9/hook"]).unwrap_err();
        assert!(err.starts_with("WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn empty_optional_settings_count_as_unset() {
        let config = settings(&[KEY, "--webhook-url=", "--metrics-addr=", "--revoke-url="]);
        assert!(config.is_ok(), "{config:?}");
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
