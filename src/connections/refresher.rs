//! Fresh tokens: refresh when due, once per connection however many callers
//! ask (the connection's turn in this process, a lease on the row across
//! processes), and never lose a rotated refresh token. No pooled database
//! connection is held while the provider answers: the lease is taken and
//! the answer written in single statements.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::revoker::Revoker;
use super::schedule::Schedule;
use super::sealing::Field;
use super::{Credential, CredentialError, CredentialStore};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::clock::UnixTime;
use crate::metrics::Metrics;
use crate::oauth::ProviderClient;
use crate::store::{ConnectionRow, Generation};
use crate::task::run_to_completion;

/// An upstream 401 forces no refresh of a credential refreshed (or tried
/// and failed) this recently: an endpoint that refuses every token must not
/// start a refresh storm. The row says when, so this holds across instances.
const FORCED_REFRESH_INTERVAL_SECS: UnixTime = 30;

/// The longest pause between two looks at a row another process is refreshing.
const MAX_LEASE_POLL: Duration = Duration::from_millis(250);

enum Lease {
    /// Ours: the row as it was when taken.
    Held(ConnectionRow),
    /// The credential changed meanwhile: this is the newer row.
    Replaced(ConnectionRow),
}

#[derive(Clone)]
pub(super) struct Refresher {
    pub(super) credentials: CredentialStore,
    /// `None` in API-key mode: OAuth connections left from an earlier run
    /// are served until they expire, and cannot be refreshed.
    provider: Option<Arc<ProviderClient>>,
    pub(super) revoker: Revoker,
    pub(super) schedule: Schedule,
    pub(super) metrics: Metrics,
    /// How long a caller waits for another's refresh of the same connection;
    /// also how long a refresh lease lasts past its start.
    lock_wait: Duration,
    /// Names this process's leases.
    pub(super) owner: Arc<str>,
    /// Refreshes at the provider at once from this process: fewer than the
    /// pool has connections, so slow providers never crowd out other work.
    slots: Arc<Semaphore>,
}

/// What a refresher is made of, beside the stored credentials.
pub(super) struct RefresherParts {
    pub(super) provider: Option<Arc<ProviderClient>>,
    pub(super) schedule: Schedule,
    pub(super) metrics: Metrics,
    pub(super) lock_wait: Duration,
    pub(super) slots: usize,
}

impl Refresher {
    pub(super) fn new(credentials: CredentialStore, parts: RefresherParts) -> Self {
        Self {
            revoker: Revoker::new(parts.provider.clone(), credentials.clone()),
            credentials,
            provider: parts.provider,
            schedule: parts.schedule,
            metrics: parts.metrics,
            lock_wait: parts.lock_wait,
            owner: crate::crypto::random_token().into(),
            slots: Arc::new(Semaphore::new(parts.slots.max(1))),
        }
    }

    /// A credential good for at least the refresh margin, refreshing first if needed.
    pub(super) async fn fresh(&self, id: &ConnectionId) -> Result<Credential, CredentialError> {
        let row = self.credentials.row(id).await?;
        if !self.is_due(&row) {
            return self.credentials.usable(&row);
        }
        self.refresh(id, row.generation).await
    }

    /// Refreshes now on the backend's request.
    pub(super) async fn refresh_now(
        &self,
        id: &ConnectionId,
    ) -> Result<Credential, CredentialError> {
        let row = self.credentials.row(id).await?;
        if row.kind == ConnectionKind::ApiKey {
            return Err(CredentialError::NotRefreshable(
                "An API-key connection has nothing to refresh.",
            ));
        }
        self.refresh(id, row.generation).await
    }

    /// After the API refused the OAuth token of generation `rejected` (a
    /// 401): a refreshed credential, or the one that replaced it meanwhile.
    /// `None` when the credential was refreshed, or a refresh failed, within
    /// the forced-refresh interval: then the 401 stands.
    pub(super) async fn after_rejection(
        &self,
        id: &ConnectionId,
        rejected: Generation,
    ) -> Result<Option<Credential>, CredentialError> {
        let row = self.credentials.row(id).await?;
        if row.generation != rejected {
            return self.credentials.usable(&row).map(Some);
        }
        let now = self.credentials.clock.now();
        let refreshed_lately = row
            .last_refreshed_at
            .is_some_and(|at| now - at < FORCED_REFRESH_INTERVAL_SECS);
        let retry_pending = row.failures > 0 && row.next_work_at.is_some_and(|at| at > now);
        if refreshed_lately || retry_pending {
            return Ok(None);
        }
        self.refresh(id, rejected).await.map(Some)
    }

    /// Refreshes unless the credential is no longer the generation `seen`
    /// (someone else refreshed or reconnected meanwhile: that newer one is
    /// the answer; a re-seal under another key is the same credential).
    ///
    /// It runs to completion: once the provider has rotated the refresh
    /// token, the new one is stored even if the caller goes away.
    async fn refresh(
        &self,
        id: &ConnectionId,
        seen: Generation,
    ) -> Result<Credential, CredentialError> {
        let (this, id) = (self.clone(), id.clone());
        run_to_completion(async move { this.refresh_in_turn(&id, seen).await }).await
    }

    async fn refresh_in_turn(
        &self,
        id: &ConnectionId,
        seen: Generation,
    ) -> Result<Credential, CredentialError> {
        let _turn = self.credentials.refreshing.take(id, self.lock_wait).await?;
        // Whoever waited here behind a refresh finds its result with one
        // read, without queueing for the lease as well.
        let row = self.credentials.row(id).await?;
        if row.generation != seen {
            return self.credentials.usable(&row);
        }
        let _slot = self.slot().await?;
        match self.take_lease(id, seen).await? {
            Lease::Held(row) => self.refresh_leased(&row).await,
            Lease::Replaced(row) => self.credentials.usable(&row),
        }
    }

    /// One of this process's refresh slots, waiting at most `lock_wait`.
    pub(super) async fn slot(&self) -> Result<SemaphorePermit<'_>, CredentialError> {
        tokio::time::timeout(self.lock_wait, self.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(CredentialError::Busy)
    }

    /// Takes the refresh lease on `id`'s credential `seen` until one
    /// refresh's length from now; the row, or `None` when it changed or
    /// someone else holds it.
    pub(super) async fn claim(
        &self,
        id: &ConnectionId,
        seen: Generation,
    ) -> Result<Option<ConnectionRow>, CredentialError> {
        let now = self.credentials.clock.now();
        Ok(self
            .credentials
            .store
            .claim_refresh(id, seen, now, &self.owner, now + self.lease_secs())
            .await?)
    }

    /// Takes the refresh lease. Another process holding it is waited for,
    /// at most `lock_wait`, by reading the row now and then (no pooled
    /// connection is held while waiting); its refresh's result is the answer.
    async fn take_lease(
        &self,
        id: &ConnectionId,
        seen: Generation,
    ) -> Result<Lease, CredentialError> {
        let deadline = tokio::time::Instant::now() + self.lock_wait;
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(row) = self.claim(id, seen).await? {
                return Ok(Lease::Held(row));
            }
            let row = self.credentials.row(id).await?;
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
        let store = &self.credentials.store;
        let refresh_token = match self.refresh_token_of(row) {
            Ok(token) => token,
            Err(error) => {
                // An API key keeps its next check.
                let next = (row.kind == ConnectionKind::ApiKey)
                    .then_some(row.next_work_at)
                    .flatten();
                store.release_lease(&row.id, &self.owner, next).await?;
                return Err(error);
            }
        };
        let Some(provider) = &self.provider else {
            store.release_lease(&row.id, &self.owner, None).await?;
            return Err(CredentialError::OAuthNotConfigured);
        };
        match provider.refresh(&refresh_token).await {
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
        self.credentials
            .open(&row.id, Field::Refresh, sealed_refresh)
    }

    /// Due when it expires within the margin: 60 s, or half the token's
    /// lifetime when that is shorter, so short-lived tokens are not refreshed
    /// on every call.
    fn is_due(&self, row: &ConnectionRow) -> bool {
        self.schedule
            .due_at(row)
            .is_some_and(|due_at| self.credentials.clock.now() >= due_at)
    }
}
