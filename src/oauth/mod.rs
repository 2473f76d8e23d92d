//! OAuth 2.0 as a confidential client: the provider client (authorize URL,
//! code exchange, refresh, revocation) and the pending flow kept in the browser.

mod client;
mod pending;
mod response;
mod token_answer;
mod transport;

pub use client::{Authorization, ProviderClient, RevocableToken, TokenSet};
pub use pending::{
    ClaimError, FlowError, PendingFlow, PendingFlows, UsedFlows, FLOW_LIFETIME_SECS,
    MAX_PENDING_FLOWS,
};
pub use response::{AuthorizationResponse, ResponseError};
pub use token_answer::read_token_answer;

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

/// An OAuth error code as RFC 6749 §5.2 allows its characters (printable
/// ASCII but `"` and `\`), at most 64 of them: what a provider sends can
/// then put no line break or markup into a log line or an answer.
pub fn error_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        .take(64)
        .collect()
}
