//! Upkeep of one connection that the background loop has claimed: refresh
//! an OAuth token ahead of need, or check an API key at the API. Also what a
//! refused API key seen through the proxy does.

use std::sync::Arc;

use super::{Connections, CredentialError, Field};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::connections::ConnectionRow;
use crate::emailoctopus_api::KeyCheckError;
use crate::store::CheckRecord;
use crate::webhooks::Event;

/// `last_error` and the webhook's reason when the API refuses a key.
const API_KEY_REJECTED: &str = "api_key_rejected";

/// What the upkeep of one connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpkeepOutcome {
    Refreshed,
    RefreshRejected,
    RefreshFailed,
    Key(KeyHealth),
    /// Not due after all (a caller refreshed it meanwhile): rescheduled.
    NotDue,
    /// Deleted, or being refreshed by someone else right now.
    Skipped,
}

/// What a check of an API key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHealth {
    Ok,
    Rejected,
    Failed,
}

impl UpkeepOutcome {
    /// The metric label: which job, and how it went.
    pub fn label(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Refreshed => Some(("refresh", "ok")),
            Self::RefreshRejected => Some(("refresh", "rejected")),
            Self::RefreshFailed => Some(("refresh", "failed")),
            Self::Key(KeyHealth::Ok) => Some(("key_check", "ok")),
            Self::Key(KeyHealth::Rejected) => Some(("key_check", "rejected")),
            Self::Key(KeyHealth::Failed) => Some(("key_check", "failed")),
            Self::NotDue | Self::Skipped => None,
        }
    }
}

impl Connections {
    /// Leases up to `limit` connections due for upkeep to this process, for
    /// as long as `rounds` refreshes one after another can take.
    pub async fn claim_due(
        &self,
        limit: i64,
        rounds: i64,
    ) -> Result<Vec<ConnectionId>, CredentialError> {
        let now = self.clock.now();
        let until = now + rounds * self.lease_secs();
        Ok(self.store.claim_due(now, &self.owner, until, limit).await?)
    }

    /// Does the upkeep of `id`, whose lease this process holds. It runs in
    /// a task of its own: a refresh the provider has answered is stored
    /// even if the loop stops meanwhile.
    pub async fn upkeep(
        self: &Arc<Self>,
        id: ConnectionId,
    ) -> Result<UpkeepOutcome, CredentialError> {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.upkeep_claimed(&id).await })
            .await
            .unwrap_or(Err(CredentialError::Busy))
    }

    async fn upkeep_claimed(&self, id: &ConnectionId) -> Result<UpkeepOutcome, CredentialError> {
        // A caller refreshing it in this process right now does the work.
        let Some(_local) = self.try_lock_locally(id) else {
            return Ok(UpkeepOutcome::Skipped);
        };
        let Some(row) = self.store.get_connection(id).await? else {
            return Ok(UpkeepOutcome::Skipped);
        };
        let now = self.clock.now();
        let due_at = match row.kind {
            ConnectionKind::Oauth if row.status == ConnectionStatus::Connected => {
                self.row_ahead_due_at(&row)
            }
            ConnectionKind::Oauth => None,
            ConnectionKind::ApiKey => row.next_work_at,
        };
        if due_at.is_none_or(|due_at| due_at > now) {
            self.store.release_lease(id, &self.owner, due_at).await?;
            return Ok(UpkeepOutcome::NotDue);
        }
        match row.kind {
            ConnectionKind::Oauth => self.refresh_ahead(&row).await,
            ConnectionKind::ApiKey => self.check_key(&row).await.map(UpkeepOutcome::Key),
        }
    }

    async fn refresh_ahead(&self, row: &ConnectionRow) -> Result<UpkeepOutcome, CredentialError> {
        let _slot = self.refresh_slot().await?;
        // Renews the loop's claim for the length of one refresh.
        let now = self.clock.now();
        let Some(row) = self
            .store
            .claim_refresh(
                &row.id,
                row.generation,
                now,
                &self.owner,
                now + self.lease_secs(),
            )
            .await?
        else {
            return Ok(UpkeepOutcome::Skipped);
        };
        let outcome = match self.refresh_leased(&row).await {
            Ok(_) => UpkeepOutcome::Refreshed,
            Err(CredentialError::NeedsReauth) => UpkeepOutcome::RefreshRejected,
            Err(CredentialError::Provider(_)) => UpkeepOutcome::RefreshFailed,
            Err(other) => return Err(other),
        };
        self.forget(&row.id);
        Ok(outcome)
    }

    /// Asks the API whether it still takes the key (`GET /lists`, as at
    /// save). A refusal needs a person; an API that is down changes nothing.
    async fn check_key(&self, row: &ConnectionRow) -> Result<KeyHealth, CredentialError> {
        let key = self.open(&row.id, Field::Access, &row.sealed_access_token)?;
        let (health, status, last_error) = match self.api.check_key(&key).await {
            Ok(()) => (KeyHealth::Ok, ConnectionStatus::Connected, None),
            Err(KeyCheckError::Refused(_)) => (
                KeyHealth::Rejected,
                ConnectionStatus::NeedsReauth,
                Some(API_KEY_REJECTED),
            ),
            Err(_) => (KeyHealth::Failed, row.status, Some("api_unavailable")),
        };
        let now = self.clock.now();
        let record = CheckRecord {
            status,
            last_error,
            next_work_at: Some(self.next_key_check(now)),
        };
        let recorded = self
            .store
            .record_check(&row.id, row.generation, row.status, record, now)
            .await?;
        if recorded && status != row.status {
            self.forget(&row.id);
            self.announce(&row.id, status);
        }
        Ok(health)
    }

    /// The API answered 401/403 to the API key of generation `version` through the proxy:
    /// the connection needs a person now, not at the next check.
    pub async fn api_key_refused(
        &self,
        id: &ConnectionId,
        version: i64,
    ) -> Result<(), CredentialError> {
        let now = self.clock.now();
        let record = CheckRecord {
            status: ConnectionStatus::NeedsReauth,
            last_error: Some(API_KEY_REJECTED),
            next_work_at: Some(self.next_key_check(now)),
        };
        let recorded = self
            .store
            .record_check(id, version, ConnectionStatus::Connected, record, now)
            .await?;
        if recorded {
            self.forget(id);
            self.announce(id, ConnectionStatus::NeedsReauth);
        }
        Ok(())
    }

    /// One log line and one webhook for an API key's change of status.
    fn announce(&self, id: &ConnectionId, now: ConnectionStatus) {
        match now {
            ConnectionStatus::NeedsReauth => {
                tracing::info!(connection = %id, reason = API_KEY_REJECTED, "connection needs re-authorization");
                self.webhooks
                    .emit_needs_reauth(id, ConnectionKind::ApiKey, API_KEY_REJECTED);
            }
            ConnectionStatus::Connected => {
                tracing::info!(connection = %id, "connection recovered: the API takes its key again");
                self.webhooks
                    .emit(Event::Recovered, id, ConnectionKind::ApiKey);
            }
        }
    }
}
