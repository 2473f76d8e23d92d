//! `ConnectionStatus`: connected, or waiting for a person.

use serde::{Deserialize, Serialize};

/// Whether a connection's credential can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    /// The provider answered `invalid_grant` to a refresh: the user must connect again.
    NeedsReauth,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NeedsReauth => "needs_reauth",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "connected" => Some(Self::Connected),
            "needs_reauth" => Some(Self::NeedsReauth),
            _ => None,
        }
    }
}
