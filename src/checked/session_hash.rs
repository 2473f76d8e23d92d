//! How a connect session is known inside the server: the SHA-256 of its
//! token, never the token itself.

use crate::crypto::sha256_hex;

/// Longer strings are not tokens we made; they are refused without a lookup.
const MAX_TOKEN_LEN: usize = 128;

/// The SHA-256 of a session token: safe to keep in a flow cookie or a log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SessionHash(String);

impl SessionHash {
    /// `None` for strings too long to be a token we made.
    pub fn of_token(token: &str) -> Option<Self> {
        (token.len() <= MAX_TOKEN_LEN).then(|| Self(sha256_hex(token.as_bytes())))
    }

    /// The hex digest the store keys sessions by.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
