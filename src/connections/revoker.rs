//! Revoking grants at the provider (RFC 7009): the one a delete or a
//! reconnect ends, and tokens a refresh got that nobody will hold.

use std::sync::Arc;

use super::sealing::Field;
use super::CredentialStore;
use super::RevocationOutcome;
use crate::checked::{ConnectionId, ConnectionKind};
use crate::oauth::{ProviderClient, RevocableToken, TokenSet};
use crate::store::ConnectionRow;

#[derive(Clone)]
pub(super) struct Revoker {
    /// Only one that has a revocation endpoint.
    provider: Option<Arc<ProviderClient>>,
    credentials: CredentialStore,
}

impl Revoker {
    pub(super) fn new(provider: Option<Arc<ProviderClient>>, credentials: CredentialStore) -> Self {
        Self {
            provider: provider.filter(|p| p.can_revoke()),
            credentials,
        }
    }

    /// Revokes the grant `row` held: its refresh token if it has one (which
    /// ends the whole grant), else its access token.
    pub(super) async fn revoke(&self, row: &ConnectionRow) -> RevocationOutcome {
        if row.kind == ConnectionKind::ApiKey {
            return RevocationOutcome::NotApplicable;
        }
        let Some(provider) = &self.provider else {
            return RevocationOutcome::NotConfigured;
        };
        let token = match &row.sealed_refresh_token {
            Some(sealed) => self
                .credentials
                .open(&row.id, Field::Refresh, sealed)
                .map(RevocableToken::Refresh),
            None => self
                .credentials
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

    /// Revokes, in the background, the OAuth grant a reconnect replaced.
    pub(super) fn revoke_replaced(&self, old: ConnectionRow) {
        if old.kind != ConnectionKind::Oauth || self.provider.is_none() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = this.revoke(&old).await;
            tracing::info!(connection = %old.id, ?outcome, "revoked the grant a reconnect replaced");
        });
    }

    /// Revokes, in the background, tokens the provider gave that nobody will
    /// hold (a refresh that lost to a reconnect or delete): the refresh
    /// token if there is a new one, and the access token.
    pub(super) fn revoke_unsaved(&self, id: &ConnectionId, tokens: TokenSet) {
        let Some(provider) = self.provider.clone() else {
            return;
        };
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
}
