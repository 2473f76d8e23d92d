//! The credential rules, once. Every caller (the callback, the API-key form,
//! the backend API, the proxy) goes through here to store, open, refresh or
//! delete a connection's credential.

mod cache;
mod overview;
mod refresh;
mod refresh_outcome;
mod rekey;
mod replace;
mod schedule;
mod sealing;
mod upkeep;

pub use overview::{Counts, Overview, COUNTS_TTL_SECS};
pub use rekey::{rekey, RekeyReport};
pub use sealing::{aad, Field};
pub use upkeep::{KeyHealth, UpkeepOutcome};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::clock::{Clock, UnixTime};
use crate::config::MaintenanceSettings;
use crate::crypto::{CryptoError, Sealer};
use crate::emailoctopus_api::{EmailOctopusApi, KeyCheckError};
use crate::metrics::Metrics;
use crate::oauth::{OAuthError, ProviderClient, RevocableToken, TokenSet};
use crate::store::{ConnectionRow, SealedCredential, Store, StoreError, Upkeep};
use crate::webhooks::{Event, Webhooks};

/// An access token is refreshed when it expires within this many seconds
/// (or within half its lifetime, for tokens that live less than two minutes).
pub const REFRESH_MARGIN_SECS: i64 = 60;

/// A connection as the outside may see it: never a token or key.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub kind: ConnectionKind,
    pub status: ConnectionStatus,
    pub scopes: Vec<String>,
    pub expires_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_refreshed_at: Option<UnixTime>,
    pub last_checked_at: Option<UnixTime>,
    /// A short category (`refresh_rejected`, `provider_timeout`, ...), never a provider's words.
    pub last_error: Option<String>,
}

/// A credential ready to use at the API.
#[derive(Clone)]
pub struct Credential {
    pub kind: ConnectionKind,
    pub secret: SecretString,
    pub token_type: String,
    pub expires_at: Option<UnixTime>,
    /// The generation this was opened from: tells whether a later read is newer.
    pub version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no such connection")]
    NotFound,
    #[error("the connection needs to be authorized again")]
    NeedsReauth,
    #[error("{0}")]
    NotRefreshable(&'static str),
    #[error("OAuth is not configured on this server")]
    OAuthNotConfigured,
    #[error("the provider: {0}")]
    Provider(#[from] OAuthError),
    #[error("the API key was refused")]
    KeyRefused,
    #[error("the API could not check the key: {0}")]
    KeyCheckFailed(String),
    #[error("another refresh of this connection is taking too long")]
    Busy,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("a stored credential does not open: {0}")]
    Sealed(#[from] CryptoError),
}

/// What happened to the credential at the provider when a connection was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationOutcome {
    Revoked,
    NotConfigured,
    /// API keys are never sent to the OAuth provider.
    NotApplicable,
    Failed(String),
}

pub struct Connections {
    store: Store,
    /// Seals credentials (the key ring's credentials subkeys).
    keys: Sealer,
    clock: Clock,
    /// `None` in API-key mode: OAuth connections left from an earlier run
    /// are served until they expire, and cannot be refreshed.
    provider: Option<Arc<ProviderClient>>,
    api: EmailOctopusApi,
    webhooks: Webhooks,
    metrics: Metrics,
    /// How long a caller waits for another caller's refresh of the same
    /// connection; also how long a refresh lease lasts past its start.
    lock_wait: Duration,
    /// Refresh-ahead margin, idle refresh, key checks, failure webhook.
    upkeep: MaintenanceSettings,
    /// Names this process's refresh leases.
    owner: String,
    /// Refreshes at the provider at once from this process: fewer than the
    /// pool has connections, so slow providers never crowd out other work.
    refresh_slots: tokio::sync::Semaphore,
    /// One async mutex per connection being refreshed in this process.
    refreshing: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
    /// When a refresh was last forced by an upstream 401, per connection.
    forced_at: Mutex<HashMap<ConnectionId, UnixTime>>,
    /// Opened credentials, kept for a moment (see `cache.rs`).
    opened: Mutex<HashMap<ConnectionId, cache::Opened>>,
    /// Whether the database answers, and how many rows it holds.
    overview: Overview,
    /// Credential writes to one connection take turns (see `replace.rs`).
    write_turns: replace::WriteTurns,
}

impl Connections {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        keys: Sealer,
        clock: Clock,
        provider: Option<Arc<ProviderClient>>,
        api: EmailOctopusApi,
        webhooks: Webhooks,
        metrics: Metrics,
        lock_wait: Duration,
        upkeep: MaintenanceSettings,
        refresh_slots: usize,
    ) -> Self {
        Self {
            overview: Overview::new(store.clone(), clock.clone()),
            store,
            keys,
            clock,
            provider,
            api,
            webhooks,
            metrics,
            lock_wait,
            upkeep,
            owner: crate::crypto::random_token(),
            refresh_slots: tokio::sync::Semaphore::new(refresh_slots.max(1)),
            refreshing: Mutex::new(HashMap::new()),
            forced_at: Mutex::new(HashMap::new()),
            opened: Mutex::new(HashMap::new()),
            write_turns: replace::WriteTurns::default(),
        }
    }

    /// What operators are shown: whether the database answers, and row counts.
    pub fn overview(&self) -> &Overview {
        &self.overview
    }

    /// Closes the database's pool, which every part holding the store
    /// shares: at shutdown, once nothing uses it any more.
    pub async fn close(&self) {
        self.store.close().await;
    }

    pub async fn get(&self, id: &ConnectionId) -> Result<Option<Connection>, CredentialError> {
        Ok(self
            .store
            .get_connection(id)
            .await?
            .as_ref()
            .map(Connection::from))
    }

    /// The stored row, or `NotFound`.
    async fn stored(&self, id: &ConnectionId) -> Result<ConnectionRow, CredentialError> {
        self.store
            .get_connection(id)
            .await?
            .ok_or(CredentialError::NotFound)
    }

    pub async fn list(&self) -> Result<Vec<Connection>, CredentialError> {
        Ok(self
            .store
            .list_connections()
            .await?
            .iter()
            .map(Connection::from)
            .collect())
    }

    /// Stores the tokens of a finished authorization. A reconnect replaces
    /// the old grant, which is revoked at the provider (when it can be).
    pub async fn save_oauth(
        self: &Arc<Self>,
        id: &ConnectionId,
        tokens: TokenSet,
        requested_scopes: &[String],
    ) -> Result<Connection, CredentialError> {
        let credential = self.seal_tokens(id, &tokens, requested_scopes.to_vec());
        let now = self.clock.now();
        let upkeep = Upkeep {
            next_work_at: self.refresh_ahead_at(&credential, now),
            checked_at: None,
        };
        let row = self.replace(id, &credential, upkeep).await?;
        log_connected(&row);
        Ok(Connection::from(&row))
    }

    /// Checks the key at the API, then stores it. Nothing is stored unless the API accepted it.
    pub async fn save_api_key(
        self: &Arc<Self>,
        id: &ConnectionId,
        key: SecretString,
    ) -> Result<Connection, CredentialError> {
        self.check_api_key(&key).await?;
        self.store_api_key(id, &key).await
    }

    /// Asks the API whether it accepts `key` (`GET {API_BASE_URL}/lists`).
    /// The whole check is bounded (the API client only bounds each read), so
    /// an API that trickles its answer cannot hold a form, a backend call or
    /// an upkeep batch.
    pub async fn check_api_key(&self, key: &SecretString) -> Result<(), CredentialError> {
        let checked = tokio::time::timeout(self.lock_wait, self.api.check_key(key))
            .await
            .map_err(|_| {
                CredentialError::KeyCheckFailed("the API did not answer in time".into())
            })?;
        checked.map_err(|e| match e {
            KeyCheckError::Refused(_) => {
                self.metrics.api_key_refused();
                CredentialError::KeyRefused
            }
            other => CredentialError::KeyCheckFailed(other.to_string()),
        })
    }

    /// Stores a key the API has accepted (see `check_api_key`).
    pub async fn store_api_key(
        self: &Arc<Self>,
        id: &ConnectionId,
        key: &SecretString,
    ) -> Result<Connection, CredentialError> {
        let credential = SealedCredential {
            kind: ConnectionKind::ApiKey,
            scopes: Vec::new(),
            token_type: "Bearer".into(),
            sealed_access_token: sealing::seal_field(
                &self.keys,
                id,
                Field::Access,
                key.expose_secret().as_bytes(),
            ),
            sealed_refresh_token: None,
            expires_at: None,
        };
        let now = self.clock.now();
        let upkeep = Upkeep {
            next_work_at: Some(self.next_key_check(now)),
            checked_at: Some(now),
        };
        let row = self.replace(id, &credential, upkeep).await?;
        log_connected(&row);
        Ok(Connection::from(&row))
    }

    /// Deletes the connection, revoking its OAuth credential first when a
    /// revocation endpoint is configured (RFC 7009). The row is deleted even
    /// when revocation fails; the outcome says so. `None` if there was none.
    /// A refresh in flight meanwhile loses its write and revokes what it got.
    /// Deletes the connection and revokes its grant, in a task of its own:
    /// a caller that gives up mid-revocation must not leave a grant alive at
    /// the provider for a connection that is gone.
    pub async fn delete(
        self: &Arc<Self>,
        id: &ConnectionId,
    ) -> Result<Option<RevocationOutcome>, CredentialError> {
        let (this, id) = (Arc::clone(self), id.clone());
        match tokio::spawn(async move { this.delete_now(&id).await }).await {
            Ok(done) => done,
            Err(failed) => std::panic::resume_unwind(failed.into_panic()),
        }
    }

    async fn delete_now(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<RevocationOutcome>, CredentialError> {
        let row = self.store.delete_connection(id).await;
        self.forget(id);
        let Some(row) = row? else { return Ok(None) };
        self.webhooks.emit(Event::Deleted, id, row.kind);
        let revocation = self.revoke(&row).await;
        match &revocation {
            RevocationOutcome::Failed(reason) => {
                tracing::warn!(connection = %id, %reason, "deleted locally, but the provider did not confirm revocation")
            }
            RevocationOutcome::Revoked => {
                tracing::info!(connection = %id, "deleted and revoked at the provider")
            }
            RevocationOutcome::NotConfigured | RevocationOutcome::NotApplicable => {
                tracing::info!(connection = %id, kind = row.kind.as_str(), "deleted")
            }
        }
        Ok(Some(revocation))
    }

    /// Revokes, in the background, tokens the provider gave that nobody will
    /// hold (a refresh that lost to a reconnect or delete): the refresh
    /// token if there is a new one, and the access token.
    fn revoke_unsaved(&self, id: &ConnectionId, tokens: TokenSet) {
        let Some(provider) = self.provider.as_ref().filter(|p| p.can_revoke()) else {
            return;
        };
        let provider = Arc::clone(provider);
        let id = id.clone();
        tokio::spawn(async move {
            let unsaved = tokens
                .refresh_token
                .map(RevocableToken::Refresh)
                .into_iter()
                .chain([RevocableToken::Access(tokens.access_token)]);
            for token in unsaved {
                if let Err(error) = provider.revoke(token).await {
                    tracing::warn!(connection = %id, %error, "could not revoke tokens from a refresh that lost a race");
                }
            }
        });
    }

    /// Whether an OAuth grant can be revoked at the provider.
    fn can_revoke(&self) -> bool {
        self.provider.as_ref().is_some_and(|p| p.can_revoke())
    }

    async fn revoke(&self, row: &ConnectionRow) -> RevocationOutcome {
        if row.kind == ConnectionKind::ApiKey {
            return RevocationOutcome::NotApplicable;
        }
        let Some(provider) = self.provider.as_ref().filter(|p| p.can_revoke()) else {
            return RevocationOutcome::NotConfigured;
        };
        let token = match &row.sealed_refresh_token {
            Some(sealed) => self
                .open(&row.id, Field::Refresh, sealed)
                .map(RevocableToken::Refresh),
            None => self
                .open(&row.id, Field::Access, &row.sealed_access_token)
                .map(RevocableToken::Access),
        };
        let result = match token {
            Ok(token) => provider.revoke(token).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => RevocationOutcome::Revoked,
            Err(reason) => RevocationOutcome::Failed(reason),
        }
    }
}

/// One line per connect: a first one, or a reconnect that replaced a credential.
fn log_connected(row: &ConnectionRow) {
    let what = if row.created_at == row.updated_at {
        "connected"
    } else {
        "reconnected"
    };
    tracing::info!(connection = %row.id, kind = row.kind.as_str(), "{what}");
}

impl From<&ConnectionRow> for Connection {
    fn from(row: &ConnectionRow) -> Self {
        Self {
            id: row.id.clone(),
            kind: row.kind,
            status: row.status,
            scopes: row.scopes.clone(),
            expires_at: row.expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_refreshed_at: row.last_refreshed_at,
            last_checked_at: row.last_checked_at,
            last_error: row.last_error.clone(),
        }
    }
}
