//! What a refresh's answer does to the stored connection: new tokens are
//! kept (or revoked when a reconnect or delete won meanwhile), a refused
//! grant needs a person, and any other failure is only counted.

use std::time::Duration;

use super::refresher::Refresher;
use super::schedule::Schedule;
use super::{Credential, CredentialError};
use crate::checked::{ConnectionId, EventType};
use crate::clock::UnixTime;
use crate::oauth::{OAuthError, TokenSet};
use crate::store::{ConnectionRow, Generation, SealedCredential};

/// Attempts to store a refresh answer before giving up on it.
const SAVE_ATTEMPTS: u32 = 3;

/// `last_error` and the webhook's reason when the provider refuses a refresh.
const REFRESH_REJECTED: &str = "refresh_rejected";

impl Refresher {
    /// Stores the provider's answer before anyone is handed the new access
    /// token, so a rotated refresh token is never lost. When a reconnect or
    /// delete won meanwhile, the tokens just given are revoked (nobody
    /// holds them) and the newer state is the answer.
    pub(super) async fn keep_refreshed(
        &self,
        row: &ConnectionRow,
        tokens: TokenSet,
    ) -> Result<Credential, CredentialError> {
        self.metrics.refresh("ok");
        let id = &row.id;
        let sealed = self
            .credentials
            .seal_tokens(id, &tokens, row.scopes.clone());
        let next =
            self.schedule
                .ahead_due_at(sealed.expires_at, self.credentials.clock.now(), true);
        match self
            .save_refreshed(id, &sealed, row.generation, next)
            .await?
        {
            Some(saved) => {
                if row.failures > 0 || row.last_error.is_some() {
                    tracing::info!(connection = %id, "refresh works again");
                }
                self.credentials.usable(&saved)
            }
            None => {
                tracing::info!(connection = %id, "a reconnect or delete won over this refresh; revoking what it was given");
                self.revoker.revoke_unsaved(id, tokens);
                self.credentials.usable(&self.credentials.row(id).await?)
            }
        }
    }

    /// The provider answered `invalid_grant`: a person must connect again,
    /// unless a reconnect replaced the refused grant meanwhile.
    pub(super) async fn refresh_rejected(
        &self,
        row: &ConnectionRow,
    ) -> Result<Credential, CredentialError> {
        self.metrics.refresh("invalid_grant");
        let id = &row.id;
        let outbox = &self.credentials.outbox;
        let marked = self
            .credentials
            .store
            .mark_needs_reauth(
                id,
                row.generation,
                REFRESH_REJECTED,
                self.credentials.clock.now(),
                |_| vec![outbox.needs_reauth(REFRESH_REJECTED)],
            )
            .await?;
        if marked.is_none() {
            return self.credentials.usable(&self.credentials.row(id).await?);
        }
        tracing::info!(connection = %id, reason = REFRESH_REJECTED, "connection needs re-authorization");
        Err(CredentialError::NeedsReauth)
    }

    /// Any other failure leaves the connection as it was; it is counted, and
    /// a run of them is announced once.
    pub(super) async fn refresh_failed(
        &self,
        row: &ConnectionRow,
        error: OAuthError,
    ) -> CredentialError {
        let (outcome, category) = match &error {
            OAuthError::Timeout => ("timeout", "provider_timeout"),
            OAuthError::Refused { .. } => ("refused", "provider_refused"),
            OAuthError::Failed(_) => ("failed", "provider_unavailable"),
        };
        self.metrics.refresh(outcome);
        let now = self.credentials.clock.now();
        // A run of failures is announced once, as it reaches this length.
        let failing_after = i64::from(self.schedule.0.failing_after);
        let outbox = &self.credentials.outbox;
        let recorded = self
            .credentials
            .store
            .record_refresh_failure(
                &row.id,
                row.generation,
                category,
                Schedule::retry_at(now, row.failures + 1),
                |failed| {
                    (failed.failures == failing_after)
                        .then(|| outbox.event(EventType::RefreshFailing))
                        .into_iter()
                        .collect()
                },
            )
            .await;
        match recorded {
            Ok(Some(failed)) if failed.failures == failing_after => {
                tracing::warn!(connection = %row.id, failures = failed.failures, last_error = category, "refresh keeps failing");
            }
            Ok(_) => {}
            Err(store_error) => {
                tracing::warn!(connection = %row.id, error = %store_error, "could not record a failed refresh");
            }
        }
        error.into()
    }

    /// The provider has already rotated the refresh token: a database hiccup
    /// must not lose the new one, so the write is tried a few times.
    async fn save_refreshed(
        &self,
        id: &ConnectionId,
        sealed: &SealedCredential,
        seen: Generation,
        next_work_at: Option<UnixTime>,
    ) -> Result<Option<ConnectionRow>, CredentialError> {
        let mut attempt = 1;
        loop {
            match self
                .credentials
                .store
                .save_refreshed(id, sealed, seen, next_work_at, self.credentials.clock.now())
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
}
