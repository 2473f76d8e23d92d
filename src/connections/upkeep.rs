//! Upkeep of one connection that the background loop has claimed: refresh
//! an OAuth token ahead of need, or check an API key at the API.

use super::{Connections, CredentialError, Field, Guesser};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus, EventType};
use crate::store::{CheckRecord, ConnectionRow};

/// `last_error` and the webhook's reason when the API refuses a key.
pub(super) const API_KEY_REJECTED: &str = "api_key_rejected";

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
        let refresher = &self.refresher;
        let now = self.credentials.clock.now();
        let until = now + rounds * refresher.lease_secs();
        Ok(self
            .credentials
            .store
            .claim_due(now, &refresher.owner, until, limit)
            .await?)
    }

    /// Does the upkeep of `id`, whose lease this process holds. The loop
    /// runs each in a task of its own, so a refresh the provider has
    /// answered is stored even if the loop stops meanwhile.
    pub async fn upkeep(&self, id: &ConnectionId) -> Result<UpkeepOutcome, CredentialError> {
        // A caller refreshing or saving it in this process right now does the work.
        let Some(_turn) = self.credentials.refreshing.try_take(id) else {
            return Ok(UpkeepOutcome::Skipped);
        };
        let Some(row) = self.credentials.store.get_connection(id).await? else {
            return Ok(UpkeepOutcome::Skipped);
        };
        let now = self.credentials.clock.now();
        let schedule = self.refresher.schedule;
        let due_at = match row.kind {
            ConnectionKind::Oauth if row.status == ConnectionStatus::Connected => {
                schedule.row_ahead_due_at(&row)
            }
            ConnectionKind::Oauth => None,
            ConnectionKind::ApiKey => row.next_work_at,
        };
        if due_at.is_none_or(|due_at| due_at > now) {
            self.credentials
                .store
                .release_lease(id, &self.refresher.owner, due_at)
                .await?;
            return Ok(UpkeepOutcome::NotDue);
        }
        match row.kind {
            ConnectionKind::Oauth => self.refresh_ahead(&row).await,
            ConnectionKind::ApiKey => self.check_key(&row).await.map(UpkeepOutcome::Key),
        }
    }

    async fn refresh_ahead(&self, row: &ConnectionRow) -> Result<UpkeepOutcome, CredentialError> {
        let refresher = &self.refresher;
        let _slot = refresher.slot().await?;
        // Renews the loop's claim for the length of one refresh.
        let Some(row) = refresher.claim(&row.id, row.generation).await? else {
            return Ok(UpkeepOutcome::Skipped);
        };
        Ok(match refresher.refresh_leased(&row).await {
            Ok(_) => UpkeepOutcome::Refreshed,
            Err(CredentialError::NeedsReauth) => UpkeepOutcome::RefreshRejected,
            Err(CredentialError::Provider(_)) => UpkeepOutcome::RefreshFailed,
            Err(other) => return Err(other),
        })
    }

    /// Asks the API whether it still takes the key (the same bounded check
    /// as at save). A refusal needs a person; an API that is down changes nothing.
    async fn check_key(&self, row: &ConnectionRow) -> Result<KeyHealth, CredentialError> {
        let key = self
            .credentials
            .open(&row.id, Field::Access, &row.sealed_access_token)?;
        let (health, status, last_error) = match self.keys.check(&key, Guesser::Stored).await {
            Ok(()) => (KeyHealth::Ok, ConnectionStatus::Connected, None),
            Err(CredentialError::KeyRefused) => (
                KeyHealth::Rejected,
                ConnectionStatus::NeedsReauth,
                Some(API_KEY_REJECTED),
            ),
            Err(_) => (KeyHealth::Failed, row.status, Some("api_unavailable")),
        };
        self.record_key_check(row, status, last_error).await?;
        Ok(health)
    }

    /// Records what a check of the key of `row` found, if the key is still
    /// that generation and status; a change of status is announced.
    pub(super) async fn record_key_check(
        &self,
        row: &ConnectionRow,
        status: ConnectionStatus,
        last_error: Option<&str>,
    ) -> Result<(), CredentialError> {
        let now = self.credentials.clock.now();
        let record = CheckRecord {
            status,
            last_error,
            next_work_at: Some(self.refresher.schedule.next_key_check(now)),
        };
        let outbox = &self.credentials.outbox;
        let changed = status != row.status;
        let announce = |_: &_| match status {
            _ if !changed => vec![],
            ConnectionStatus::NeedsReauth => vec![outbox.needs_reauth(API_KEY_REJECTED)],
            ConnectionStatus::Connected => vec![outbox.event(EventType::Recovered)],
        };
        let recorded = self
            .credentials
            .store
            .record_check(&row.id, row.generation, row.status, record, now, announce)
            .await?;
        if recorded.is_some() && changed {
            log_key_status(&row.id, status);
        }
        Ok(())
    }
}

/// One log line for an API key's change of status.
fn log_key_status(id: &ConnectionId, now: ConnectionStatus) {
    match now {
        ConnectionStatus::NeedsReauth => {
            tracing::info!(connection = %id, reason = API_KEY_REJECTED, "connection needs re-authorization")
        }
        ConnectionStatus::Connected => {
            tracing::info!(connection = %id, "connection recovered: the API takes its key again")
        }
    }
}
