//! What the rest of the program gets from `Connections`: a connection as
//! it may be shown, a credential ready to use, and what went wrong.

use secrecy::SecretString;

use super::guesses::TooManyGuesses;
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::clock::UnixTime;
use crate::crypto::CryptoError;
use crate::oauth::OAuthError;
use crate::store::{ConnectionRow, Generation, Profile, StoreError};

/// A connection as the outside may see it: never a token or key.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub kind: ConnectionKind,
    pub status: ConnectionStatus,
    pub scopes: Vec<String>,
    pub expires_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_refreshed_at: Option<UnixTime>,
    pub last_checked_at: Option<UnixTime>,
    /// A short category (`refresh_rejected`, `provider_timeout`, ...), never a provider's words.
    pub last_error: Option<String>,
    /// Who it belongs to in the app, and the app's tags on it.
    pub profile: Profile,
}

/// A page of connections, and the id the next page starts after (`None`
/// when this was the last).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub connections: Vec<Connection>,
    pub next: Option<ConnectionId>,
}

/// A credential ready to use at the API.
#[derive(Clone)]
pub struct Credential {
    pub kind: ConnectionKind,
    pub secret: SecretString,
    pub token_type: String,
    pub expires_at: Option<UnixTime>,
    /// The generation this was opened from: tells whether a later read is newer.
    pub generation: Generation,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no such connection")]
    NotFound,
    #[error("the connection needs to be authorized again")]
    NeedsReauth,
    #[error("{0}")]
    NotRefreshable(&'static str),
    #[error("OAuth is not configured on this server")]
    OAuthNotConfigured,
    #[error("the provider: {0}")]
    Provider(#[from] OAuthError),
    #[error("the API key was refused")]
    KeyRefused,
    #[error("the API could not check the key: {0}")]
    KeyCheckFailed(String),
    #[error("not checked: too many refused API keys for this {}", .0.by.as_str())]
    TooManyGuesses(TooManyGuesses),
    #[error("another refresh of this connection is taking too long")]
    Busy,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("a stored credential does not open: {0}")]
    Sealed(#[from] CryptoError),
}

/// What happened to the credential at the provider when a connection was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationOutcome {
    Revoked,
    NotConfigured,
    /// API keys are never sent to the OAuth provider.
    NotApplicable,
    Failed(String),
}

impl From<&ConnectionRow> for Connection {
    fn from(row: &ConnectionRow) -> Self {
        Self {
            id: row.id.clone(),
            kind: row.kind,
            status: row.status,
            scopes: row.scopes.clone(),
            expires_at: row.expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_refreshed_at: row.last_refreshed_at,
            last_checked_at: row.last_checked_at,
            last_error: row.last_error.clone(),
            profile: row.profile.clone(),
        }
    }
}
