//! The credential rules, once. Every caller (the callback, the API-key form,
//! the backend API, the proxy) goes through here to store, open, refresh or
//! delete a connection's credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::api_client::{ApiClient, KeyCheckError};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{CryptoError, KeyRing};
use crate::domain::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::metrics::Metrics;
use crate::oauth::{OAuthError, ProviderClient, RevocableToken, TokenSet};
use crate::store::{ConnectionRow, SealedCredential, Store, StoreError};
use crate::webhooks::{Event, Webhooks};

/// An access token is refreshed when it expires within this many seconds.
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
}

/// A credential ready to use at the API.
pub struct Credential {
    pub kind: ConnectionKind,
    pub secret: SecretString,
    pub token_type: String,
    pub expires_at: Option<UnixTime>,
    /// The sealed bytes this was opened from: tells whether a later read is newer.
    pub version: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no such connection")]
    NotFound,
    #[error("the connection needs to be authorized again")]
    NeedsReauth,
    #[error("{0}")]
    NotRefreshable(&'static str),
    #[error("the provider: {0}")]
    Provider(#[from] OAuthError),
    #[error("the API key was refused")]
    KeyRefused,
    #[error("the API could not check the key: {0}")]
    KeyCheckFailed(String),
    #[error("another refresh of this connection is taking too long")]
    Busy,
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("a stored credential does not open: {0}")]
    Sealed(#[from] CryptoError),
}

impl From<StoreError> for CredentialError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LockTimeout => CredentialError::Busy,
            other => CredentialError::Store(other),
        }
    }
}

/// What happened to the credential at the provider when a connection was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    NotConfigured,
    /// API keys are never sent to the OAuth provider.
    NotApplicable,
    Failed(String),
}

/// Which refresh a caller asks for.
enum Want {
    /// Only if the token expires within the margin.
    IfDue,
    /// Unless the credential changed since `version` was read (someone else refreshed).
    Newer { version: Vec<u8> },
}

pub struct Connections {
    store: Store,
    keys: KeyRing,
    clock: Clock,
    provider: Arc<ProviderClient>,
    api: ApiClient,
    webhooks: Webhooks,
    metrics: Metrics,
    /// How long a caller waits for another caller's refresh of the same connection.
    lock_wait: Duration,
    refreshing: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Connections {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        keys: KeyRing,
        clock: Clock,
        provider: Arc<ProviderClient>,
        api: ApiClient,
        webhooks: Webhooks,
        metrics: Metrics,
        lock_wait: Duration,
    ) -> Self {
        Self {
            store,
            keys,
            clock,
            provider,
            api,
            webhooks,
            metrics,
            lock_wait,
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, id: &ConnectionId) -> Result<Option<Connection>, CredentialError> {
        Ok(self
            .store
            .get_connection(id)
            .await?
            .as_ref()
            .map(Connection::from))
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

    /// Stores the tokens of a finished authorization (a reconnect replaces the old ones).
    pub async fn save_oauth(
        &self,
        id: &ConnectionId,
        tokens: TokenSet,
        requested_scopes: &[String],
    ) -> Result<Connection, CredentialError> {
        let credential = self.seal_tokens(id, &tokens, requested_scopes.to_vec());
        let row = self
            .store
            .upsert_connection(id, &credential, self.clock.now())
            .await?;
        self.webhooks
            .emit(Event::Created, id, ConnectionKind::Oauth);
        Ok(Connection::from(&row))
    }

    /// Checks the key at the API, then stores it. Nothing is stored unless the API accepted it.
    pub async fn save_api_key(
        &self,
        id: &ConnectionId,
        key: SecretString,
    ) -> Result<Connection, CredentialError> {
        self.api.check_key(&key).await.map_err(|e| match e {
            KeyCheckError::Refused(_) => CredentialError::KeyRefused,
            other => CredentialError::KeyCheckFailed(other.to_string()),
        })?;
        let credential = SealedCredential {
            kind: ConnectionKind::ApiKey,
            scopes: Vec::new(),
            token_type: "Bearer".into(),
            sealed_access_token: self
                .keys
                .seal(key.expose_secret().as_bytes(), &aad(id, Field::Access)),
            sealed_refresh_token: None,
            expires_at: None,
        };
        let row = self
            .store
            .upsert_connection(id, &credential, self.clock.now())
            .await?;
        self.webhooks
            .emit(Event::Created, id, ConnectionKind::ApiKey);
        Ok(Connection::from(&row))
    }

    /// A credential that is good for at least the refresh margin, refreshing first if needed.
    pub async fn fresh_credential(&self, id: &ConnectionId) -> Result<Credential, CredentialError> {
        let row = self
            .store
            .get_connection(id)
            .await?
            .ok_or(CredentialError::NotFound)?;
        if !self.is_due(&row) {
            return self.usable(&row);
        }
        self.refresh(id, Want::IfDue).await
    }

    /// Refreshes now (RFC 6749 §6), unless the credential changed since
    /// `seen` was handed out: then that newer one is the answer.
    pub async fn refresh_newer_than(
        &self,
        id: &ConnectionId,
        seen: Vec<u8>,
    ) -> Result<Credential, CredentialError> {
        self.refresh(id, Want::Newer { version: seen }).await
    }

    /// Refreshes now on the backend's request.
    pub async fn refresh_now(&self, id: &ConnectionId) -> Result<Credential, CredentialError> {
        let row = self
            .store
            .get_connection(id)
            .await?
            .ok_or(CredentialError::NotFound)?;
        if row.kind == ConnectionKind::ApiKey {
            return Err(CredentialError::NotRefreshable(
                "an API key connection has nothing to refresh",
            ));
        }
        self.refresh(
            id,
            Want::Newer {
                version: row.sealed_access_token,
            },
        )
        .await
    }

    /// Deletes the connection, revoking its OAuth credential first when a
    /// revocation endpoint is configured (RFC 7009). The row is deleted even
    /// when revocation fails; the outcome says so. `None` if there was none.
    pub async fn delete(&self, id: &ConnectionId) -> Result<Option<Revocation>, CredentialError> {
        let row = {
            let _local = self.lock_locally(id).await?;
            let lock = self.store.lock_for_refresh(id, self.lock_wait).await?;
            let row = self.store.delete_connection(id).await;
            lock.release().await;
            row?
        };
        let Some(row) = row else { return Ok(None) };
        self.webhooks.emit(Event::Deleted, id, row.kind);
        let revocation = self.revoke(&row).await;
        if let Revocation::Failed(reason) = &revocation {
            tracing::warn!(connection = %id, %reason, "deleted locally, but the provider did not confirm revocation");
        }
        Ok(Some(revocation))
    }

    async fn revoke(&self, row: &ConnectionRow) -> Revocation {
        if row.kind == ConnectionKind::ApiKey {
            return Revocation::NotApplicable;
        }
        if !self.provider.can_revoke() {
            return Revocation::NotConfigured;
        }
        let token = match &row.sealed_refresh_token {
            Some(sealed) => self
                .open(&row.id, Field::Refresh, sealed)
                .map(RevocableToken::Refresh),
            None => self
                .open(&row.id, Field::Access, &row.sealed_access_token)
                .map(RevocableToken::Access),
        };
        let result = match token {
            Ok(token) => self.provider.revoke(token).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => Revocation::Revoked,
            Err(reason) => Revocation::Failed(reason),
        }
    }

    /// One refresh per connection at a time, in this process (a mutex) and
    /// across processes (the store's lock); whoever waited reads again and
    /// refreshes only if it is still wanted.
    async fn refresh(&self, id: &ConnectionId, want: Want) -> Result<Credential, CredentialError> {
        let _local = self.lock_locally(id).await?;
        let lock = match self.store.lock_for_refresh(id, self.lock_wait).await {
            Ok(lock) => lock,
            Err(StoreError::LockTimeout) => {
                // The holder may have finished just now: a fresh read may do.
                let row = self
                    .store
                    .get_connection(id)
                    .await?
                    .ok_or(CredentialError::NotFound)?;
                return if self.is_wanted(&row, &want) {
                    Err(CredentialError::Busy)
                } else {
                    self.usable(&row)
                };
            }
            Err(other) => return Err(other.into()),
        };
        let result = self.refresh_locked(id, &want).await;
        lock.release().await;
        result
    }

    async fn refresh_locked(
        &self,
        id: &ConnectionId,
        want: &Want,
    ) -> Result<Credential, CredentialError> {
        let row = self
            .store
            .get_connection(id)
            .await?
            .ok_or(CredentialError::NotFound)?;
        if !self.is_wanted(&row, want) {
            return self.usable(&row);
        }
        if row.kind == ConnectionKind::ApiKey {
            return Err(CredentialError::NotRefreshable(
                "an API key connection has nothing to refresh",
            ));
        }
        if row.status == ConnectionStatus::NeedsReauth {
            return Err(CredentialError::NeedsReauth);
        }
        let Some(sealed_refresh) = &row.sealed_refresh_token else {
            return Err(CredentialError::NotRefreshable(
                "the provider gave no refresh token; connect again when the access token expires",
            ));
        };
        let refresh_token =
            SecretString::from(self.open_string(id, Field::Refresh, sealed_refresh)?);
        match self.provider.refresh(&refresh_token).await {
            Ok(tokens) => {
                self.metrics.refresh("ok");
                let sealed = self.seal_tokens(id, &tokens, row.scopes.clone());
                // Stored before anyone is handed the new access token, so a
                // rotated refresh token is never lost.
                let saved = self
                    .store
                    .save_refreshed(id, &sealed, self.clock.now())
                    .await?;
                let saved = saved.ok_or(CredentialError::NotFound)?;
                self.usable(&saved)
            }
            Err(error) if error.is_invalid_grant() => {
                self.metrics.refresh("invalid_grant");
                self.store
                    .set_status(id, ConnectionStatus::NeedsReauth, self.clock.now())
                    .await?;
                self.webhooks.emit(Event::NeedsReauth, id, row.kind);
                Err(CredentialError::NeedsReauth)
            }
            Err(error) => {
                self.metrics.refresh(match error {
                    OAuthError::Timeout => "timeout",
                    OAuthError::Refused { .. } => "refused",
                    OAuthError::Failed(_) => "failed",
                });
                Err(error.into())
            }
        }
    }

    /// Waits for this process's other refresh of `id`, at most `lock_wait`.
    async fn lock_locally(&self, id: &ConnectionId) -> Result<LocalGuard<'_>, CredentialError> {
        let mutex = {
            let mut map = self
                .refreshing
                .lock()
                .expect("the lock map is never poisoned");
            map.entry(id.clone()).or_default().clone()
        };
        let guard = tokio::time::timeout(self.lock_wait, mutex.lock_owned())
            .await
            .map_err(|_| CredentialError::Busy)?;
        Ok(LocalGuard {
            owner: self,
            id: id.clone(),
            _guard: guard,
        })
    }

    fn is_due(&self, row: &ConnectionRow) -> bool {
        row.kind == ConnectionKind::Oauth
            && row
                .expires_at
                .is_some_and(|at| at - self.clock.now() <= REFRESH_MARGIN_SECS)
    }

    fn is_wanted(&self, row: &ConnectionRow, want: &Want) -> bool {
        match want {
            Want::IfDue => self.is_due(row),
            Want::Newer { version } => *version == row.sealed_access_token,
        }
    }

    /// Opens the row's credential, refusing one the provider has withdrawn.
    fn usable(&self, row: &ConnectionRow) -> Result<Credential, CredentialError> {
        if row.status == ConnectionStatus::NeedsReauth {
            return Err(CredentialError::NeedsReauth);
        }
        Ok(Credential {
            kind: row.kind,
            secret: SecretString::from(self.open_string(
                &row.id,
                Field::Access,
                &row.sealed_access_token,
            )?),
            token_type: row.token_type.clone(),
            expires_at: row.expires_at,
            version: row.sealed_access_token.clone(),
        })
    }

    fn seal_tokens(
        &self,
        id: &ConnectionId,
        tokens: &TokenSet,
        requested_scopes: Vec<String>,
    ) -> SealedCredential {
        let now = self.clock.now();
        SealedCredential {
            kind: ConnectionKind::Oauth,
            scopes: tokens.scopes.clone().unwrap_or(requested_scopes),
            token_type: tokens.token_type.clone(),
            sealed_access_token: self.keys.seal(
                tokens.access_token.expose_secret().as_bytes(),
                &aad(id, Field::Access),
            ),
            sealed_refresh_token: tokens.refresh_token.as_ref().map(|t| {
                self.keys
                    .seal(t.expose_secret().as_bytes(), &aad(id, Field::Refresh))
            }),
            expires_at: tokens
                .expires_in
                .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        }
    }

    fn open(
        &self,
        id: &ConnectionId,
        field: Field,
        sealed: &[u8],
    ) -> Result<SecretString, CredentialError> {
        self.open_string(id, field, sealed).map(SecretString::from)
    }

    fn open_string(
        &self,
        id: &ConnectionId,
        field: Field,
        sealed: &[u8],
    ) -> Result<String, CredentialError> {
        let bytes = self.keys.open(sealed, &aad(id, field))?;
        String::from_utf8(bytes).map_err(|_| CredentialError::Sealed(CryptoError::Forged))
    }
}

/// Holds this process's refresh mutex for one connection and forgets the
/// mutex when nobody else is waiting for it.
struct LocalGuard<'a> {
    owner: &'a Connections,
    id: ConnectionId,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for LocalGuard<'_> {
    fn drop(&mut self) {
        let mut map = self
            .owner
            .refreshing
            .lock()
            .expect("the lock map is never poisoned");
        // Two strong references: the map's and the one inside our guard.
        if map.get(&self.id).is_some_and(|m| Arc::strong_count(m) <= 2) {
            map.remove(&self.id);
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Field {
    Access,
    Refresh,
}

/// The associated data that binds a sealed credential to its connection and
/// field: copied onto another connection, or swapped between fields, it fails to open.
pub(crate) fn aad(id: &ConnectionId, field: Field) -> Vec<u8> {
    let field = match field {
        Field::Access => "access_token",
        Field::Refresh => "refresh_token",
    };
    format!("emailoctopus-connect/v1/{field}/{id}").into_bytes()
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
        }
    }
}
