//! `ConnectionKind`: OAuth tokens or an API key.

use serde::{Deserialize, Serialize};

/// How a connection authenticates at the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// Tokens from the OAuth redirect flow, refreshed as they expire.
    Oauth,
    /// An EmailOctopus API key the user pasted; it does not expire.
    ApiKey,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oauth => "oauth",
            Self::ApiKey => "api_key",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "oauth" => Some(Self::Oauth),
            "api_key" => Some(Self::ApiKey),
            _ => None,
        }
    }
}
