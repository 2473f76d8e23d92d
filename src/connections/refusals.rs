//! What the API refusing a credential means for the connection, decided
//! here beside the other credential rules rather than by the proxy.

use axum::http::StatusCode;

use super::upkeep::API_KEY_REJECTED;
use super::{Connections, Credential, CredentialError};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};

impl Connections {
    /// The API answered `status` to `credential`. A 401 or 403 to an API
    /// key needs a person at once (no refresh can fix it); a 401 to an OAuth
    /// token forces one refresh. The credential to try the call again with,
    /// if any: a refreshed one, or the one that replaced `credential` meanwhile.
    pub async fn after_api_answer(
        &self,
        id: &ConnectionId,
        credential: &Credential,
        status: StatusCode,
    ) -> Result<Option<Credential>, CredentialError> {
        let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        match credential.kind {
            ConnectionKind::ApiKey if refused => {
                let row = self.credentials.row(id).await?;
                // Only the key that was refused, and only if it was fine until now.
                if row.generation == credential.generation
                    && row.status == ConnectionStatus::Connected
                {
                    self.record_key_check(
                        &row,
                        ConnectionStatus::NeedsReauth,
                        Some(API_KEY_REJECTED),
                    )
                    .await?;
                }
                Ok(None)
            }
            ConnectionKind::Oauth if status == StatusCode::UNAUTHORIZED => {
                self.refresher
                    .after_rejection(id, credential.generation)
                    .await
            }
            _ => Ok(None),
        }
    }
}
