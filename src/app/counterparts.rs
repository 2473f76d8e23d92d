//! What a run talks to: the configured provider, API and database, or the
//! sandbox's stand-ins (and its temporary database).

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use crate::clock::Clock;
use crate::config::{Config, ProviderSettings, RunMode};
use crate::crypto::random_token;
use crate::sandbox::Sandbox;
use crate::web::page::Pages;

/// The sandbox's database file and its companions, removed when dropped: at
/// the end of `run`, or when the runtime drops an app that was never stopped.
pub(super) struct TemporaryDatabase(PathBuf);

impl Drop for TemporaryDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// What this run talks to: the configured provider, API and database, or
/// the sandbox's stand-ins for them.
pub(super) struct Counterparts {
    /// `None` in API-key mode: no OAuth client is configured.
    pub(super) provider: Option<ProviderSettings>,
    /// What `/readyz` and `GET /connections` call this run's mode.
    pub(super) mode: &'static str,
    pub(super) api_base_url: Url,
    pub(super) admin_token: Option<SecretString>,
    pub(super) pages: Pages,
    pub(super) database_url: String,
    pub(super) temporary_database: Option<TemporaryDatabase>,
    pub(super) sandbox: Option<Sandbox>,
}

impl Counterparts {
    pub(super) fn of(config: &Config, bound: SocketAddr, clock: &Clock) -> Self {
        let (provider, mode, settings) = match &config.mode {
            RunMode::OAuth(provider) => (Some((**provider).clone()), "oauth", None),
            RunMode::ApiKeysOnly => (None, "api_keys", None),
            RunMode::Sandbox(settings) => (None, "sandbox", Some(settings)),
        };
        let Some(settings) = settings else {
            return Self {
                provider,
                mode,
                api_base_url: config.api_base_url.clone(),
                admin_token: config.admin_token.clone(),
                pages: Pages::default(),
                database_url: config.storage.database_url.clone(),
                temporary_database: None,
                sandbox: None,
            };
        };
        let sandbox = Sandbox::new(bound, settings, clock.clone());
        let path = std::env::temp_dir().join(format!(
            "emailoctopus-connect-sandbox-{}.db",
            &random_token()[..12]
        ));
        Self {
            provider: Some(sandbox.provider.clone()),
            mode,
            api_base_url: sandbox.api_base_url.clone(),
            admin_token: Some(sandbox.admin_token.clone()),
            pages: sandbox.pages.clone(),
            database_url: format!("sqlite://{}", path.display()),
            temporary_database: Some(TemporaryDatabase(path)),
            sandbox: Some(sandbox),
        }
    }
}
