//! Fresh tokens: refresh when due, once per connection however many callers
//! ask (a mutex in this process, the store's lock across processes), and
//! never lose a rotated refresh token.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::{Connections, Credential, CredentialError, Field, REFRESH_MARGIN_SECS};
use crate::clock::UnixTime;
use crate::domain::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::oauth::OAuthError;
use crate::store::{ConnectionRow, RefreshLock, SealedCredential, StoreError};
use crate::webhooks::Event;

/// An upstream 401 forces at most one refresh per connection in this long:
/// an endpoint that refuses every token must not start a refresh storm.
const FORCED_REFRESH_INTERVAL_SECS: UnixTime = 30;

/// Attempts to store a refresh answer before giving up on it.
const SAVE_ATTEMPTS: u32 = 3;

impl Connections {
    /// A credential good for at least the refresh margin, refreshing first if needed.
    pub async fn fresh_credential(
        self: &Arc<Self>,
        id: &ConnectionId,
    ) -> Result<Credential, CredentialError> {
        if let Some(credential) = self.recall(id) {
            return Ok(credential);
        }
        let row = self.stored(id).await?;
        if !self.is_due(&row) {
            let credential = self.usable(&row)?;
            self.remember(id, &credential, &row);
            return Ok(credential);
        }
        self.refresh(id, row.sealed_access_token).await
    }

    /// Refreshes now on the backend's request.
    pub async fn refresh_now(
        self: &Arc<Self>,
        id: &ConnectionId,
    ) -> Result<Credential, CredentialError> {
        let row = self.stored(id).await?;
        if row.kind == ConnectionKind::ApiKey {
            return Err(CredentialError::NotRefreshable(
                "an API key connection has nothing to refresh",
            ));
        }
        self.refresh(id, row.sealed_access_token).await
    }

    /// After the API refused `rejected` (a 401): a refreshed credential, or
    /// the one that replaced `rejected` meanwhile. `None` when a 401 already
    /// forced a refresh of this connection moments ago: then the 401 stands.
    pub async fn refresh_after_rejection(
        self: &Arc<Self>,
        id: &ConnectionId,
        rejected: Vec<u8>,
    ) -> Result<Option<Credential>, CredentialError> {
        let now = self.clock.now();
        {
            let mut forced = self
                .forced_at
                .lock()
                .expect("the forced-refresh map is never poisoned");
            if forced
                .get(id)
                .is_some_and(|at| now - at < FORCED_REFRESH_INTERVAL_SECS)
            {
                return Ok(None);
            }
            forced.retain(|_, at| now - *at < FORCED_REFRESH_INTERVAL_SECS);
            forced.insert(id.clone(), now);
        }
        self.refresh(id, rejected).await.map(Some)
    }

    /// Refreshes unless the credential is no longer `seen` (someone else
    /// refreshed or reconnected meanwhile: that newer one is the answer).
    ///
    /// The work runs in a task of its own: once the provider has rotated the
    /// refresh token, the new one is stored even if the caller goes away.
    async fn refresh(
        self: &Arc<Self>,
        id: &ConnectionId,
        seen: Vec<u8>,
    ) -> Result<Credential, CredentialError> {
        let this = Arc::clone(self);
        let id = id.clone();
        tokio::spawn(async move { this.refresh_in_turn(&id, &seen).await })
            .await
            .unwrap_or(Err(CredentialError::Busy))
    }

    async fn refresh_in_turn(
        &self,
        id: &ConnectionId,
        seen: &[u8],
    ) -> Result<Credential, CredentialError> {
        let _local = self.lock_locally(id).await?;
        // Whoever waited here behind a refresh finds its result with one
        // read, without queueing for the cross-process lock as well.
        let row = self.stored(id).await?;
        if row.sealed_access_token != seen {
            return self.usable(&row);
        }
        let mut lock = match self.store.lock_for_refresh(id, self.lock_wait).await {
            Ok(lock) => lock,
            Err(StoreError::LockTimeout) => {
                // The holder may have finished just now: a fresh read may do.
                let row = self.stored(id).await?;
                return if row.sealed_access_token == seen {
                    Err(CredentialError::Busy)
                } else {
                    self.usable(&row)
                };
            }
            Err(other) => return Err(other.into()),
        };
        let result = self.refresh_locked(&mut lock, id, seen).await;
        self.forget(id);
        lock.release().await;
        result
    }

    async fn refresh_locked(
        &self,
        lock: &mut RefreshLock<'_>,
        id: &ConnectionId,
        seen: &[u8],
    ) -> Result<Credential, CredentialError> {
        let row = lock
            .get_connection(id)
            .await?
            .ok_or(CredentialError::NotFound)?;
        if row.sealed_access_token != seen {
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
        let refresh_token: SecretString = self.open(id, Field::Refresh, sealed_refresh)?;
        match self.provider.refresh(&refresh_token).await {
            Ok(tokens) => {
                self.metrics.refresh("ok");
                let sealed = self.seal_tokens(id, &tokens, row.scopes.clone());
                // Stored before anyone is handed the new access token, so a
                // rotated refresh token is never lost.
                match self.save_refreshed(lock, id, &sealed, seen).await? {
                    Some(saved) => self.usable(&saved),
                    // Reconnected meanwhile: the new grant wins.
                    None => self.usable(
                        &lock
                            .get_connection(id)
                            .await?
                            .ok_or(CredentialError::NotFound)?,
                    ),
                }
            }
            Err(error) if error.is_invalid_grant() => {
                self.metrics.refresh("invalid_grant");
                if lock.mark_needs_reauth(id, seen, self.clock.now()).await? {
                    self.webhooks.emit(Event::NeedsReauth, id, row.kind);
                    Err(CredentialError::NeedsReauth)
                } else {
                    self.usable(
                        &lock
                            .get_connection(id)
                            .await?
                            .ok_or(CredentialError::NotFound)?,
                    )
                }
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

    /// The provider has already rotated the refresh token: a database hiccup
    /// must not lose the new one, so the write is tried a few times.
    async fn save_refreshed(
        &self,
        lock: &mut RefreshLock<'_>,
        id: &ConnectionId,
        sealed: &SealedCredential,
        seen: &[u8],
    ) -> Result<Option<ConnectionRow>, CredentialError> {
        let mut attempt = 1;
        loop {
            match lock
                .save_refreshed(id, sealed, seen, self.clock.now())
                .await
            {
                Ok(saved) => return Ok(saved),
                Err(error) if attempt < SAVE_ATTEMPTS => {
                    tracing::warn!(connection = %id, %error, attempt, "could not store refreshed tokens; retrying");
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(error) => {
                    tracing::error!(connection = %id, %error, "refreshed tokens could not be stored; the connection may need to be authorized again");
                    return Err(error.into());
                }
            }
        }
    }

    /// Waits for this process's other refresh of `id`, at most `lock_wait`.
    pub(super) async fn lock_locally(
        &self,
        id: &ConnectionId,
    ) -> Result<LocalGuard<'_>, CredentialError> {
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

    /// Due when it expires within the margin: 60 s, or half the token's
    /// lifetime when that is shorter, so short-lived tokens are not refreshed
    /// on every call.
    fn is_due(&self, row: &ConnectionRow) -> bool {
        self.due_at(row)
            .is_some_and(|due_at| self.clock.now() >= due_at)
    }

    /// When the row's access token becomes due for a refresh; never for an
    /// API key or a token without an expiry.
    pub(super) fn due_at(&self, row: &ConnectionRow) -> Option<UnixTime> {
        if row.kind != ConnectionKind::Oauth {
            return None;
        }
        let expires_at = row.expires_at?;
        let lifetime = expires_at - row.updated_at;
        Some(expires_at - REFRESH_MARGIN_SECS.min(lifetime / 2).max(0))
    }
}

/// Holds this process's refresh mutex for one connection and forgets the
/// mutex when nobody else is waiting for it.
pub(super) struct LocalGuard<'a> {
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
