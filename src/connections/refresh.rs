//! Fresh tokens: refresh when due, once per connection however many callers
//! ask (a mutex in this process, a lease on the row across processes), and
//! never lose a rotated refresh token. No pooled database connection is held
//! while the provider answers: the lease is taken and the answer written in
//! single statements.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::{Connections, Credential, CredentialError, Field};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::clock::UnixTime;
use crate::store::ConnectionRow;

/// An upstream 401 forces at most one refresh per connection in this long:
/// an endpoint that refuses every token must not start a refresh storm.
const FORCED_REFRESH_INTERVAL_SECS: UnixTime = 30;

/// The longest pause between two looks at a row another process is refreshing.
const MAX_LEASE_POLL: Duration = Duration::from_millis(250);

enum Lease {
    /// Ours: the row as it was when taken.
    Held(ConnectionRow),
    /// The credential changed meanwhile: this is the newer row.
    Replaced(ConnectionRow),
}

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
        self.refresh(id, row.generation).await
    }

    /// Refreshes now on the backend's request.
    pub async fn refresh_now(
        self: &Arc<Self>,
        id: &ConnectionId,
    ) -> Result<Credential, CredentialError> {
        let row = self.stored(id).await?;
        if row.kind == ConnectionKind::ApiKey {
            return Err(CredentialError::NotRefreshable(
                "An API-key connection has nothing to refresh.",
            ));
        }
        self.refresh(id, row.generation).await
    }

    /// After the API refused `rejected` (a 401): a refreshed credential, or
    /// the one that replaced `rejected` meanwhile. `None` when a 401 already
    /// forced a refresh of this connection moments ago: then the 401 stands.
    pub async fn refresh_after_rejection(
        self: &Arc<Self>,
        id: &ConnectionId,
        rejected: i64,
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

    /// Refreshes unless the credential is no longer the generation `seen`
    /// (someone else refreshed or reconnected meanwhile: that newer one is
    /// the answer; a re-seal under another key is the same credential).
    ///
    /// The work runs in a task of its own: once the provider has rotated the
    /// refresh token, the new one is stored even if the caller goes away.
    async fn refresh(
        self: &Arc<Self>,
        id: &ConnectionId,
        seen: i64,
    ) -> Result<Credential, CredentialError> {
        let this = Arc::clone(self);
        let id = id.clone();
        tokio::spawn(async move { this.refresh_in_turn(&id, seen).await })
            .await
            .unwrap_or(Err(CredentialError::Busy))
    }

    async fn refresh_in_turn(
        &self,
        id: &ConnectionId,
        seen: i64,
    ) -> Result<Credential, CredentialError> {
        let _local = self.lock_locally(id).await?;
        // Whoever waited here behind a refresh finds its result with one
        // read, without queueing for the lease as well.
        let row = self.stored(id).await?;
        if row.generation != seen {
            return self.usable(&row);
        }
        let _slot = self.refresh_slot().await?;
        let result = match self.take_lease(id, seen).await? {
            Lease::Held(row) => self.refresh_leased(&row).await,
            Lease::Replaced(row) => self.usable(&row),
        };
        self.forget(id);
        result
    }

    /// One of this process's refresh slots, waiting at most `lock_wait`.
    pub(super) async fn refresh_slot(
        &self,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, CredentialError> {
        tokio::time::timeout(self.lock_wait, self.refresh_slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(CredentialError::Busy)
    }

    /// Takes the refresh lease on `id`'s credential `seen`. Another process
    /// holding it is waited for, at most `lock_wait`, by reading the row
    /// now and then (no pooled connection is held while waiting); its
    /// refresh's result is the answer.
    async fn take_lease(&self, id: &ConnectionId, seen: i64) -> Result<Lease, CredentialError> {
        let deadline = tokio::time::Instant::now() + self.lock_wait;
        let mut pause = Duration::from_millis(20);
        loop {
            let now = self.clock.now();
            if let Some(row) = self
                .store
                .claim_refresh(id, seen, now, &self.owner, now + self.lease_secs())
                .await?
            {
                return Ok(Lease::Held(row));
            }
            let row = self.stored(id).await?;
            if row.generation != seen {
                return Ok(Lease::Replaced(row));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CredentialError::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_LEASE_POLL);
        }
    }

    /// How long a lease lasts: the longest a refresh can take, and a margin.
    pub(super) fn lease_secs(&self) -> i64 {
        self.lock_wait.as_secs().max(1) as i64
    }

    /// Refreshes the leased `row` at the provider and records the outcome;
    /// the lease is given back on every path.
    pub(super) async fn refresh_leased(
        &self,
        row: &ConnectionRow,
    ) -> Result<Credential, CredentialError> {
        let refresh_token = match self.refresh_token_of(row) {
            Ok(token) => token,
            Err(error) => {
                let next = (row.kind == ConnectionKind::ApiKey)
                    .then_some(row.next_work_at)
                    .flatten();
                self.store.release_lease(&row.id, &self.owner, next).await?;
                return Err(error);
            }
        };
        let refreshed = match &self.provider {
            Some(provider) => provider.refresh(&refresh_token).await,
            None => {
                self.store.release_lease(&row.id, &self.owner, None).await?;
                return Err(CredentialError::OAuthNotConfigured);
            }
        };
        match refreshed {
            Ok(tokens) => self.keep_refreshed(row, tokens).await,
            Err(error) if error.is_invalid_grant() => self.refresh_rejected(row).await,
            Err(error) => Err(self.refresh_failed(row, error).await),
        }
    }

    fn refresh_token_of(&self, row: &ConnectionRow) -> Result<SecretString, CredentialError> {
        if row.kind == ConnectionKind::ApiKey {
            return Err(CredentialError::NotRefreshable(
                "An API-key connection has nothing to refresh.",
            ));
        }
        if row.status == ConnectionStatus::NeedsReauth {
            return Err(CredentialError::NeedsReauth);
        }
        let Some(sealed_refresh) = &row.sealed_refresh_token else {
            return Err(CredentialError::NotRefreshable(
                "The provider gave no refresh token; connect again when the access token expires.",
            ));
        };
        self.open(&row.id, Field::Refresh, sealed_refresh)
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

    /// This process's refresh mutex for `id` if nobody holds it now.
    pub(super) fn try_lock_locally(&self, id: &ConnectionId) -> Option<LocalGuard<'_>> {
        let mutex = self
            .refreshing
            .lock()
            .expect("the lock map is never poisoned")
            .entry(id.clone())
            .or_default()
            .clone();
        let guard = mutex.try_lock_owned().ok()?;
        Some(LocalGuard {
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
