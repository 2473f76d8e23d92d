//! Connect sessions: single-use, 30-minute tokens that let one browser connect
//! one connection. The app's backend creates them; the database keeps only
//! their SHA-256, so a leaked database row cannot be used as a link.

use url::Url;

use crate::clock::{Clock, UnixTime};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{ConnectionId, ReturnTo};
use crate::store::{ConnectSessionRow, Store, StoreError};

pub const SESSION_LIFETIME_SECS: i64 = 30 * 60;

/// How many API keys the API may refuse through one connect link before the
/// link is used up: enough for typos, too few for guessing.
pub const MAX_REFUSED_KEYS: i64 = 5;

/// How a reserved API-key check that did not connect ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAttempt {
    /// The API refused the key.
    Refused,
    /// The API gave no answer; the check does not count.
    Unanswered,
}

/// Longer strings are not tokens we made; they are refused without a lookup.
const MAX_TOKEN_LEN: usize = 128;

pub struct NewSession {
    pub token: String,
    pub connect_url: Url,
    pub expires_at: UnixTime,
}

#[derive(Clone)]
pub struct ConnectSessions {
    store: Store,
    clock: Clock,
    public_url: Url,
}

impl ConnectSessions {
    pub fn new(store: Store, clock: Clock, public_url: Url) -> Self {
        Self {
            store,
            clock,
            public_url,
        }
    }

    pub async fn create(
        &self,
        connection_id: ConnectionId,
        return_to: Option<ReturnTo>,
    ) -> Result<NewSession, StoreError> {
        let token = random_token();
        let expires_at = self.clock.now() + SESSION_LIFETIME_SECS;
        let row = ConnectSessionRow {
            connection_id,
            return_to,
            expires_at,
        };
        self.store
            .create_connect_session(&sha256_hex(token.as_bytes()), &row)
            .await?;
        let mut connect_url = self.public_url.clone();
        connect_url
            .query_pairs_mut()
            .clear()
            .append_pair("session", &token);
        Ok(NewSession {
            token,
            connect_url,
            expires_at,
        })
    }

    /// The session behind `token` if it can still be used; does not use it up.
    pub async fn peek(&self, token: &str) -> Result<Option<ConnectSessionRow>, StoreError> {
        if token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        self.store
            .peek_connect_session(&sha256_hex(token.as_bytes()), self.clock.now())
            .await
    }

    /// Reserves one of the link's API-key checks (see `MAX_REFUSED_KEYS`):
    /// the session and which check this is (1 for the first), or `None` when
    /// the link is unknown, expired, used or out of checks.
    pub async fn reserve_key_attempt(
        &self,
        token: &str,
    ) -> Result<Option<(ConnectSessionRow, i64)>, StoreError> {
        if token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        self.store
            .reserve_key_attempt(
                &sha256_hex(token.as_bytes()),
                self.clock.now(),
                MAX_REFUSED_KEYS,
            )
            .await
    }

    /// Settles reserved check number `attempt` that did not connect: an
    /// unanswered one is given back; a refused one counts, and the last
    /// allowed one uses the link up. Returns true when the link is used up.
    pub async fn settle_key_attempt(
        &self,
        token: &str,
        attempt: i64,
        outcome: KeyAttempt,
    ) -> Result<bool, StoreError> {
        let hash = sha256_hex(token.as_bytes());
        match outcome {
            KeyAttempt::Unanswered => {
                self.store.release_key_attempt(&hash).await?;
                Ok(false)
            }
            KeyAttempt::Refused if attempt >= MAX_REFUSED_KEYS => {
                self.store
                    .use_up_connect_session(&hash, self.clock.now())
                    .await?;
                Ok(true)
            }
            KeyAttempt::Refused => Ok(false),
        }
    }

    /// Uses the session up: a second call with the same token gets `None`.
    pub async fn consume(&self, token: &str) -> Result<Option<ConnectSessionRow>, StoreError> {
        if token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        self.store
            .consume_connect_session(&sha256_hex(token.as_bytes()), self.clock.now())
            .await
    }
}
