//! The rules that span settings, in one place: each single value is already
//! typed by clap, so what is left is whether they fit together. Every
//! problem is collected, so one run names all the settings to fix.

use super::{
    Config, EventSettings, MaintenanceSettings, ProviderSettings, ProxyPacing, RunMode,
    SandboxSettings, Settings, StorageSettings, WebhookSettings,
};
use crate::crypto::KeyRing;
use crate::events::WebhookKeys;
use crate::store::{Backend, PoolSettings};

/// The exit status for a setting that is missing or malformed, or a
/// database that cannot be used as configured (clap exits with it too).
pub const CONFIG_ERROR: u8 = 2;

/// A setting that is missing or does not fit the others: names the variable
/// and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Every problem of one run's settings.
#[derive(Debug, Default, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\nerror: "))
    }
}

impl ConfigErrors {
    fn push(&mut self, variable: &'static str, problem: impl Into<String>) {
        self.0.push(ConfigError {
            variable,
            problem: problem.into(),
        });
    }
}

/// Which command the settings are read for: only `serve` runs the sandbox
/// (it has no stored credentials to re-key) or suggests it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Serve,
    Rekey,
}

impl Settings {
    /// Applies every rule that spans settings and yields the `Config`, or
    /// every problem found.
    pub fn check(self, purpose: Purpose) -> Result<Config, ConfigErrors> {
        let mut problems = ConfigErrors::default();
        let sandbox = self.sandbox && purpose == Purpose::Serve;
        let mode = if sandbox {
            self.sandbox_mode(&mut problems)
        } else {
            self.oauth_or_api_keys(&mut problems)
        };
        let keys = self.keys(&mut problems, purpose, sandbox);
        let webhook = self.webhook(&mut problems);
        let (Some(mode), Some(keys), Some(webhook)) = (mode, keys, webhook) else {
            return Err(problems);
        };
        if !problems.0.is_empty() {
            return Err(problems);
        }
        let max_connections = self
            .database_max_connections
            // SQLite has one writer, and each extra connection is another
            // thread to hand every statement to: one is the fastest.
            .unwrap_or(match self.database_url.backend() {
                Backend::Sqlite => 1,
                Backend::Postgres => 10,
            });
        Ok(Config {
            listen_addr: self.listen_addr,
            mode,
            redirect_uri: self.redirect_uri,
            api_base_url: self.api_base_url,
            storage: StorageSettings {
                database_url: self.database_url,
                pool: PoolSettings {
                    max_connections,
                    acquire_timeout: self.database_acquire_timeout_secs,
                    start_timeout: self.database_start_timeout_secs,
                },
                keys,
            },
            admin_token: self.admin_token,
            open_connect: self.open_connect.unwrap_or(sandbox),
            return_to_origins: self.return_to_origins,
            allowed_hosts: self.allowed_hosts,
            webhook,
            events: EventSettings {
                poll: self.events_poll_ms,
                retention: self.event_retention_days,
            },
            metrics_addr: self.metrics_addr,
            log_format: self.log_format,
            provider_timeout: self.provider_timeout_secs,
            pacing: ProxyPacing {
                burst: self.proxy_burst,
                rate_per_sec: self.proxy_rate_per_sec,
            },
            maintenance: MaintenanceSettings {
                enabled: self.maintenance,
                interval: self.maintenance_interval_secs,
                refresh_ahead: self.refresh_ahead_secs,
                idle_refresh_every: self.refresh_token_idle_days / 2,
                api_key_check_every: self.api_key_check_interval_secs,
                failing_after: self.refresh_failing_after,
            },
        })
    }

    /// The sandbox listens on loopback only, and makes its own secrets.
    fn sandbox_mode(&self, problems: &mut ConfigErrors) -> Option<RunMode> {
        if !self.listen_addr.ip().is_loopback() {
            problems.push(
                "LISTEN_ADDR",
                "the sandbox listens on loopback only (use 127.0.0.1 or [::1])",
            );
        }
        if self.metrics_addr.is_some_and(|a| !a.ip().is_loopback()) {
            problems.push("METRICS_ADDR", "the sandbox listens on loopback only");
        }
        let ignored = [
            ("CLIENT_ID", self.client_id.is_some()),
            ("CLIENT_SECRET", self.client_secret.is_some()),
            ("TOKEN_ENCRYPTION_KEY", self.token_encryption_key.is_some()),
            ("ADMIN_TOKEN", self.admin_token.is_some()),
        ];
        Some(RunMode::Sandbox(SandboxSettings {
            token_lifetime: self.sandbox_token_lifetime_secs,
            provider_coop: self.sandbox_provider_coop,
            ignored: ignored
                .into_iter()
                .filter_map(|(name, set)| set.then_some(name))
                .collect(),
        }))
    }

    /// OAuth when both client settings are there, API keys only when neither is.
    fn oauth_or_api_keys(&self, problems: &mut ConfigErrors) -> Option<RunMode> {
        let (client_id, client_secret) = match (&self.client_id, &self.client_secret) {
            (None, None) => return Some(RunMode::ApiKeysOnly),
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            (None, Some(_)) => return half_client(problems, "CLIENT_ID", "CLIENT_SECRET"),
            (Some(_), None) => return half_client(problems, "CLIENT_SECRET", "CLIENT_ID"),
        };
        Some(RunMode::OAuth(Box::new(ProviderSettings {
            client_id,
            client_secret,
            redirect_uri: None,
            authorize_url: self.authorize_url.clone(),
            token_url: self.token_url.clone(),
            revoke_url: self.revoke_url.clone(),
            issuer: self.issuer.clone(),
            scopes: self.scopes.clone(),
            auth_method: self.token_auth_method,
        })))
    }

    /// The sandbox makes its own key for the run, whatever is set.
    fn keys(
        &self,
        problems: &mut ConfigErrors,
        purpose: Purpose,
        sandbox: bool,
    ) -> Option<KeyRing> {
        if sandbox {
            return Some(KeyRing::generate());
        }
        if self.token_encryption_key.is_none() {
            let hint = match purpose {
                Purpose::Serve => " (or try it without an account: --sandbox)",
                Purpose::Rekey => "",
            };
            problems.push(
                "TOKEN_ENCRYPTION_KEY",
                format!(
                    "required: make one with `emailoctopus-connect gen-key` and set \
                     TOKEN_ENCRYPTION_KEY or --token-encryption-key{hint}"
                ),
            );
        }
        self.token_encryption_key.clone()
    }

    /// `Some(None)` without webhooks; `None` when a problem was found.
    fn webhook(&self, problems: &mut ConfigErrors) -> Option<Option<WebhookSettings>> {
        let Some(url) = &self.webhook_url else {
            return Some(None);
        };
        let Some(secret) = &self.webhook_secret else {
            problems.push("WEBHOOK_SECRET", "required when WEBHOOK_URL is set");
            return None;
        };
        let keys = match WebhookKeys::parse(secret) {
            Ok(keys) => keys,
            Err(reason) => {
                problems.push("WEBHOOK_SECRET", reason);
                return None;
            }
        };
        Some(Some(WebhookSettings {
            url: url.clone(),
            keys,
            retry_base: self.webhook_retry_base_ms,
        }))
    }
}

/// Only one of the pair is set: OAuth needs both, API-key mode neither.
fn half_client(
    problems: &mut ConfigErrors,
    missing: &'static str,
    present: &str,
) -> Option<RunMode> {
    problems.push(
        missing,
        format!(
            "required because {present} is set (set both for OAuth, or neither to connect with API keys only)"
        ),
    );
    None
}
