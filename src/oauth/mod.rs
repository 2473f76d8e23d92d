//! OAuth 2.0 as a confidential client: the provider client (authorize URL,
//! code exchange, refresh, revocation) and the pending flow kept in the browser.

mod client;
mod pending;
mod response;
mod transport;

pub use client::{Authorization, ProviderClient, RevocableToken, TokenSet};
pub use pending::{FlowError, PendingFlow, FLOW_LIFETIME_SECS};
pub use response::{AuthorizationResponse, ResponseError};

/// A provider call that did not give tokens. "Refused" (the provider answered
/// with an OAuth error) is kept apart from "failed" (it could not give a
/// usable answer): only a refusal can mean the user must connect again.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the provider refused: {code}")]
    Refused { code: String },
    #[error("the provider failed: {0}")]
    Failed(String),
    #[error("the provider did not answer in time")]
    Timeout,
}

impl OAuthError {
    /// RFC 6749 §5.2: the grant is invalid, expired or revoked.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::Refused { code } if code == "invalid_grant")
    }
}
