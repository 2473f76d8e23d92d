//! Connect sessions: single-use, 30-minute tokens that let one browser connect
//! one connection. The app's backend creates them; the database keeps only
//! their SHA-256, so a leaked database row cannot be used as a link.
//!
//! A session also remembers how its connect ended, so that the app's page can
//! ask (`status`) instead of relying on the popup's `postMessage` alone.

use serde::Serialize;
use url::Url;

use crate::checked::{ConnectionId, ConnectionKind, Origin, ReturnTo, SessionHash};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{random_token, sha256_hex};
use crate::oauth::FLOW_LIFETIME_SECS;
use crate::store::{ConnectSessionRow, ProfileUpdate, SessionRecord, Store, StoreError};

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

pub struct IssuedSession {
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

    /// A session whose connect ends on this server's page, or at
    /// `return_to`, and gives the connection what `profile` holds.
    pub async fn create(
        &self,
        connection_id: ConnectionId,
        return_to: Option<ReturnTo>,
        profile: ProfileUpdate,
    ) -> Result<IssuedSession, StoreError> {
        self.insert(connection_id, return_to, None, profile).await
    }

    /// A session opened in a popup by a page on `origin`: its pages tell that
    /// page how the connect ended.
    pub async fn create_popup(
        &self,
        connection_id: ConnectionId,
        origin: Origin,
        profile: ProfileUpdate,
    ) -> Result<IssuedSession, StoreError> {
        self.insert(connection_id, None, Some(origin), profile)
            .await
    }

    async fn insert(
        &self,
        connection_id: ConnectionId,
        return_to: Option<ReturnTo>,
        popup_origin: Option<Origin>,
        profile: ProfileUpdate,
    ) -> Result<IssuedSession, StoreError> {
        let token = random_token();
        let expires_at = self.clock.now() + SESSION_LIFETIME_SECS;
        let row = ConnectSessionRow {
            connection_id,
            return_to,
            popup_origin,
            expires_at,
            profile,
        };
        self.store
            .create_connect_session(&sha256_hex(token.as_bytes()), &row)
            .await?;
        let mut connect_url = self.public_url.clone();
        connect_url
            .query_pairs_mut()
            .clear()
            .append_pair("session", &token);
        Ok(IssuedSession {
            token,
            connect_url,
            expires_at,
        })
    }

    /// The session behind `token` if it can still be used; does not use it up.
    pub async fn peek(&self, token: &str) -> Result<Option<ConnectSessionRow>, StoreError> {
        let Some(hash) = SessionHash::of_token(token) else {
            return Ok(None);
        };
        self.store
            .peek_connect_session(hash.as_str(), self.clock.now())
            .await
    }

    /// Reserves one of the link's API-key checks (see `MAX_REFUSED_KEYS`):
    /// the session and which check this is (1 for the first), or `None` when
    /// the link is unknown, expired, used or out of checks.
    pub async fn reserve_key_attempt(
        &self,
        token: &str,
    ) -> Result<Option<(ConnectSessionRow, i64)>, StoreError> {
        let Some(hash) = SessionHash::of_token(token) else {
            return Ok(None);
        };
        self.store
            .reserve_key_attempt(hash.as_str(), self.clock.now(), MAX_REFUSED_KEYS)
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
        let Some(hash) = SessionHash::of_token(token) else {
            return Ok(None);
        };
        self.store
            .consume_connect_session(hash.as_str(), self.clock.now())
            .await
    }

    /// What the session behind `hash` gives the connection it makes, used
    /// or not (a callback finishes after `/auth` used it); nothing without
    /// a session or once it is swept.
    pub async fn profile(&self, hash: Option<&SessionHash>) -> Result<ProfileUpdate, StoreError> {
        let Some(hash) = hash else {
            return Ok(ProfileUpdate::default());
        };
        let record = self.store.connect_session_record(hash.as_str()).await?;
        Ok(record.map(|r| r.session.profile).unwrap_or_default())
    }

    /// Where the session behind `hash` stands, for its whole life, used or not.
    pub async fn report(&self, hash: &SessionHash) -> Result<Option<SessionReport>, StoreError> {
        let record = self.store.connect_session_record(hash.as_str()).await?;
        Ok(record.map(|record| SessionReport::of(record, self.clock.now())))
    }

    /// Records how the session's connect ended; the first outcome stands.
    pub async fn record(&self, hash: &SessionHash, outcome: Outcome) -> Result<(), StoreError> {
        let (status, kind) = match outcome {
            Outcome::Connected(kind) => (SessionStatus::Connected, Some(kind)),
            Outcome::Declined => (SessionStatus::Declined, None),
            Outcome::Failed => (SessionStatus::Failed, None),
        };
        self.store
            .record_connect_session_outcome(hash.as_str(), status.as_str(), kind)
            .await
    }
}

/// How a connect that a session started ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Connected(ConnectionKind),
    /// The user said no at the provider.
    Declined,
    /// Anything else that ended the flow without a connection.
    Failed,
}

/// A session's status as the app's page may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Not used yet, or its flow is still under way.
    Pending,
    Connected,
    Declined,
    Failed,
    /// The link ran out before it was used, or its flow was never finished.
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Connected => "connected",
            Self::Declined => "declined",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    fn from_stored(raw: &str) -> Self {
        match raw {
            "connected" => Self::Connected,
            "declined" => Self::Declined,
            _ => Self::Failed,
        }
    }
}

/// Where a session stands, and who may be told.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub status: SessionStatus,
    pub connection_id: ConnectionId,
    /// The kind of connection made; `None` until connected.
    pub kind: Option<ConnectionKind>,
    /// The app's origin for a popup session.
    pub popup_origin: Option<Origin>,
    /// The origin that may read the status cross-origin: the popup's opener,
    /// or the origin of `return_to`.
    pub app_origin: Option<Origin>,
}

impl SessionReport {
    fn of(record: SessionRecord, now: UnixTime) -> Self {
        let status = match (&record.outcome, record.used_at) {
            (Some(outcome), _) => SessionStatus::from_stored(outcome),
            // Used by /auth: the flow may still finish until it expires itself.
            (None, Some(used_at)) if now < used_at + FLOW_LIFETIME_SECS => SessionStatus::Pending,
            (None, Some(_)) => SessionStatus::Expired,
            (None, None) if now < record.session.expires_at => SessionStatus::Pending,
            (None, None) => SessionStatus::Expired,
        };
        let session = record.session;
        let app_origin = session
            .popup_origin
            .clone()
            .or_else(|| session.return_to.as_ref().and_then(ReturnTo::origin));
        Self {
            status,
            connection_id: session.connection_id,
            kind: record
                .outcome_kind
                .filter(|_| status == SessionStatus::Connected),
            popup_origin: session.popup_origin,
            app_origin,
        }
    }
}
