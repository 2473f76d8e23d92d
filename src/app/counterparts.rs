//! What a run talks to: the configured provider, API and database, or the
//! sandbox's stand-ins (and its temporary database).

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use crate::clock::Clock;
use crate::config::{Config, ProviderSettings, RunMode};
use crate::crypto::random_token;
use crate::page::Pages;
use crate::sandbox::Sandbox;
use crate::store::DatabaseUrl;

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

/// A sandbox set up for this run, and the database it runs on.
pub(super) struct SandboxRun {
    pub(super) sandbox: Sandbox,
    pub(super) database: TemporaryDatabase,
}

/// What this run talks to: the configured provider, API and database, or
/// the sandbox's stand-ins for them.
pub(super) struct Counterparts {
    pub(super) mode: RunMode<Box<ProviderSettings>, SandboxRun>,
    pub(super) api_base_url: Url,
    pub(super) admin_token: Option<SecretString>,
    pub(super) pages: Pages,
    pub(super) database_url: DatabaseUrl,
}

impl Counterparts {
    pub(super) fn of(config: &Config, bound: SocketAddr, clock: &Clock) -> Self {
        let mode = config.mode.clone().map(
            |provider| provider,
            |settings| {
                let path = std::env::temp_dir().join(format!(
                    "emailoctopus-connect-sandbox-{}.db",
                    &random_token()[..12]
                ));
                SandboxRun {
                    sandbox: Sandbox::new(bound, &settings, clock.clone()),
                    database: TemporaryDatabase(path),
                }
            },
        );
        let RunMode::Sandbox(SandboxRun { sandbox, database }) = &mode else {
            return Self {
                mode,
                api_base_url: config.api_base_url.clone(),
                admin_token: config.admin_token.clone(),
                pages: Pages::default(),
                database_url: config.storage.database_url.clone(),
            };
        };
        Self {
            api_base_url: sandbox.api_base_url.clone(),
            admin_token: Some(sandbox.admin_token.clone()),
            pages: sandbox.pages.clone(),
            database_url: DatabaseUrl::sqlite_file(&database.0),
            mode,
        }
    }

    /// The provider this run connects through, the configured one or the
    /// sandbox's; `None` with API keys only.
    pub(super) fn provider(&self) -> Option<&ProviderSettings> {
        match &self.mode {
            RunMode::OAuth(provider) => Some(provider),
            RunMode::ApiKeysOnly => None,
            RunMode::Sandbox(run) => Some(&run.sandbox.provider),
        }
    }
}
