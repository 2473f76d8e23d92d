//! Which connection a browser request may act on: the one its connect
//! session names, or `default` when `OPEN_CONNECT` is on. Nothing else.

use super::error::PageError;
use crate::connect_sessions::{ConnectSessions, SessionHash};
use crate::domain::{ConnectionId, ReturnTo};
use crate::state::AppState;

/// Whether the request uses its connect session up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// Viewing the page: the link keeps working.
    Peek,
    /// Starting a flow or saving a key: the link is spent.
    Consume,
    /// Checking an API key: one of the link's few tries is taken.
    KeyCheck,
}

pub struct Grant {
    pub connection_id: ConnectionId,
    pub return_to: Option<ReturnTo>,
    /// For `KeyCheck` through a link: which of its tries this is.
    pub key_attempt: Option<i64>,
    /// The connect session behind the grant, if any, to record how it ended.
    pub session: Option<SessionHash>,
}

pub async fn grant(
    state: &AppState,
    session: Option<&str>,
    how: SessionUse,
) -> Result<Grant, PageError> {
    match session.filter(|s| !s.is_empty()) {
        Some(token) => {
            let (row, key_attempt) = match how {
                SessionUse::Peek => (state.sessions.peek(token).await?, None),
                SessionUse::Consume => (state.sessions.consume(token).await?, None),
                SessionUse::KeyCheck => match state.sessions.reserve_key_attempt(token).await? {
                    Some((row, attempt)) => (Some(row), Some(attempt)),
                    None => (None, None),
                },
            };
            let row = row.ok_or(PageError::NoSession)?;
            Ok(Grant {
                connection_id: row.connection_id,
                return_to: row.return_to,
                key_attempt,
                session: ConnectSessions::hash(token),
            })
        }
        None if state.open_connect => Ok(Grant {
            connection_id: ConnectionId::default_connection(),
            return_to: None,
            key_attempt: None,
            session: None,
        }),
        None => Err(PageError::NoSession),
    }
}
