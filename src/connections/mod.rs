//! The credential rules, once. Every caller (the callback, the API-key form,
//! the backend API, the proxy, the background upkeep) goes through here to
//! store, open, refresh, check or delete a connection's credential.
//!
//! `Connections` is a thin front over owned parts: the stored credentials
//! (`credentials.rs`), the refresher (`refresher.rs`), the key checker
//! (`key_checker.rs`, with the budgets of refused keys in `guesses.rs`), the revoker (`revoker.rs`) and the schedule
//! (`schedule.rs`); the upkeep of one claimed connection (`upkeep.rs`) and
//! what an API's refusal does (`refusals.rs`) use them together; what
//! callers get back is in `answers.rs`. Finding connections and editing
//! their end user and tags (`listing.rs`) touch no credential.
//!
//! How writes are kept apart, in one paragraph: every write of a row names
//! the generation it read and changes nothing if the row has moved on
//! (compare-and-swap in the store), so no process ever overwrites a change
//! it has not seen. Within this process, a connection has two turns
//! (`turns.rs`): refreshing, taken by a refresh and the upkeep, so callers
//! that want the same refresh wait for one provider call; and saving, taken
//! by a connect, so concurrent connects of one connection queue rather than
//! retry. A save never waits for a refresh, so it wins over one in flight. Across processes, a
//! refresh also holds a lease on the row, so one process calls the provider
//! and the others read its result. Refreshes at the provider at once are
//! bounded by a few slots, so a slow provider cannot take every pooled
//! database connection. Nothing is cached: each use reads the row, so a
//! credential deleted or replaced on another instance is never served.

mod answers;
mod credentials;
mod guesses;
mod key_checker;
mod listing;
mod overview;
mod refresh_outcome;
mod refresher;
mod refusals;
mod rekey;
mod revoker;
mod schedule;
mod sealing;
mod turns;
mod upkeep;

pub use answers::{Connection, Credential, CredentialError, Listing, RevocationOutcome};
pub use guesses::{GuessLimit, Guesser, TooManyGuesses};
pub use overview::{Counts, Overview};
pub use rekey::{rekey, RekeyReport};
pub use sealing::{aad, Field};
pub use upkeep::{KeyHealth, UpkeepOutcome};

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use credentials::CredentialStore;
use key_checker::KeyChecker;
use refresher::{Refresher, RefresherParts};
use schedule::Schedule;

use crate::checked::{ConnectionId, ConnectionStatus, EventType};
use crate::clock::Clock;
use crate::config::MaintenanceSettings;
use crate::crypto::Sealer;
use crate::emailoctopus_api::EmailOctopusApi;
use crate::events::Outbox;
use crate::metrics::Metrics;
use crate::oauth::{ProviderClient, TokenSet};
use crate::store::{ProfileUpdate, SealedCredential, Store, Upkeep};
use crate::task::run_to_completion;

/// An access token is refreshed when it expires within this many seconds
/// (or within half its lifetime, for tokens that live less than two minutes).
pub const REFRESH_MARGIN_SECS: i64 = 60;

/// Everything a connection's credential goes through. Cheap parts, shared
/// behind the one `Arc` the application state holds.
pub struct Connections {
    credentials: CredentialStore,
    refresher: Refresher,
    keys: KeyChecker,
    /// Whether the database answers, and how many rows it holds.
    overview: Overview,
}

/// What `Connections` is made of.
pub struct ConnectionsParts {
    pub store: Store,
    /// Seals credentials (the key ring's credentials subkeys).
    pub keys: Sealer,
    pub clock: Clock,
    /// `None` in API-key mode.
    pub provider: Option<Arc<ProviderClient>>,
    pub api: EmailOctopusApi,
    /// Makes the events each change records.
    pub outbox: Outbox,
    pub metrics: Metrics,
    /// How long a caller waits for another caller's refresh of the same
    /// connection (also a refresh lease's length, and a key check's limit).
    pub lock_wait: Duration,
    /// Refresh-ahead margin, idle refresh, key checks, failure webhook.
    pub upkeep: MaintenanceSettings,
    /// Refreshes at the provider at once from this process.
    pub refresh_slots: usize,
}

impl Connections {
    pub fn new(parts: ConnectionsParts) -> Self {
        let credentials = CredentialStore::new(
            parts.store.clone(),
            parts.keys,
            parts.clock.clone(),
            parts.outbox,
        );
        let refresher = Refresher::new(
            credentials.clone(),
            RefresherParts {
                provider: parts.provider,
                schedule: Schedule(parts.upkeep),
                metrics: parts.metrics.clone(),
                lock_wait: parts.lock_wait,
                slots: parts.refresh_slots,
            },
        );
        Self {
            overview: Overview::new(parts.store),
            keys: KeyChecker::new(parts.api, parts.metrics, parts.lock_wait),
            credentials,
            refresher,
        }
    }

    /// What operators are shown: whether the database answers, and row counts.
    pub fn overview(&self) -> &Overview {
        &self.overview
    }

    /// Closes the database's pool, which every part holding the store
    /// shares: at shutdown, once nothing uses it any more.
    pub async fn close(&self) {
        self.credentials.store.close().await;
    }

    pub async fn get(&self, id: &ConnectionId) -> Result<Option<Connection>, CredentialError> {
        Ok(self
            .credentials
            .store
            .get_connection(id)
            .await?
            .as_ref()
            .map(Connection::from))
    }

    /// A credential good for at least the refresh margin, refreshing first if needed.
    pub async fn fresh_credential(&self, id: &ConnectionId) -> Result<Credential, CredentialError> {
        self.refresher.fresh(id).await
    }

    /// Refreshes now on the backend's request.
    pub async fn refresh_now(&self, id: &ConnectionId) -> Result<Credential, CredentialError> {
        self.refresher.refresh_now(id).await
    }

    /// Stores the tokens of a finished authorization, with what its connect
    /// session gives the connection. A reconnect replaces the old grant,
    /// which is revoked at the provider (when it can be).
    pub async fn save_oauth(
        &self,
        id: &ConnectionId,
        tokens: TokenSet,
        requested_scopes: &[String],
        profile: &ProfileUpdate,
    ) -> Result<Connection, CredentialError> {
        let credential = self
            .credentials
            .seal_tokens(id, &tokens, requested_scopes.to_vec());
        let now = self.credentials.clock.now();
        let upkeep = Upkeep {
            next_work_at: self.refresher.schedule.refresh_ahead_at(&credential, now),
            checked_at: None,
        };
        self.save(id, &credential, profile, upkeep).await
    }

    /// Checks the key the app's backend sent at the API, then stores it,
    /// keeping the connection's end user and tags. Nothing is stored unless
    /// the API accepted it.
    pub async fn save_api_key(
        &self,
        id: &ConnectionId,
        key: SecretString,
    ) -> Result<Connection, CredentialError> {
        self.check_api_key(&key, Guesser::Backend(id)).await?;
        self.store_api_key(id, &key, &ProfileUpdate::default())
            .await
    }

    /// Asks the API whether it accepts `key`, within a bounded time, unless
    /// `guesser` has had too many keys refused lately.
    pub async fn check_api_key(
        &self,
        key: &SecretString,
        guesser: Guesser<'_>,
    ) -> Result<(), CredentialError> {
        self.keys.check(key, guesser).await
    }

    /// Stores a key the API has accepted (see `check_api_key`), with what
    /// `profile` gives the connection.
    pub async fn store_api_key(
        &self,
        id: &ConnectionId,
        key: &SecretString,
        profile: &ProfileUpdate,
    ) -> Result<Connection, CredentialError> {
        let credential = self.credentials.seal_api_key(id, key);
        let now = self.credentials.clock.now();
        let upkeep = Upkeep {
            next_work_at: Some(self.refresher.schedule.next_key_check(now)),
            checked_at: Some(now),
        };
        self.save(id, &credential, profile, upkeep).await
    }

    /// Stores `credential` as the connection's, connected (with its events,
    /// see `CredentialStore::replace`). A replaced OAuth grant is revoked in
    /// the background.
    async fn save(
        &self,
        id: &ConnectionId,
        credential: &SealedCredential,
        profile: &ProfileUpdate,
        upkeep: Upkeep,
    ) -> Result<Connection, CredentialError> {
        let (row, replaced) = self
            .credentials
            .replace(id, credential, profile, upkeep)
            .await?;
        match replaced {
            None => tracing::info!(connection = %id, kind = row.kind.as_str(), "connected"),
            Some(old) => {
                tracing::info!(connection = %id, kind = row.kind.as_str(), "reconnected");
                if old.status == ConnectionStatus::NeedsReauth {
                    tracing::info!(connection = %id, kind = row.kind.as_str(), "connection recovered: connected again");
                }
                self.refresher.revoker.revoke_replaced(old);
            }
        }
        Ok(Connection::from(&row))
    }

    /// Deletes the connection, revoking its OAuth credential first when a
    /// revocation endpoint is configured (RFC 7009). The row is deleted even
    /// when revocation fails; the outcome says so. `None` if there was none.
    /// A refresh in flight meanwhile loses its write and revokes what it got.
    /// It runs to completion: a caller that gives up mid-revocation must not
    /// leave a grant alive at the provider for a connection that is gone.
    pub async fn delete(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<RevocationOutcome>, CredentialError> {
        let (credentials, refresher, id) =
            (self.credentials.clone(), self.refresher.clone(), id.clone());
        run_to_completion(async move {
            let deleted = |_: &_| vec![credentials.outbox.event(EventType::Deleted)];
            let Some(row) = credentials.store.delete_connection(&id, deleted).await? else {
                return Ok(None);
            };
            let revocation = refresher.revoker.revoke(&row).await;
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
        })
        .await
    }
}
