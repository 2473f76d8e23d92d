//! Which connection a browser request may act on: the one its connect
//! session names, or `default` when `OPEN_CONNECT` is on. Nothing else.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use serde::Deserialize;

use super::error::PageError;
use crate::checked::SessionHash;
use crate::checked::{ConnectionId, ReturnTo};
use crate::page::BackLink;
use crate::state::AppState;

/// Whether the request uses its connect session up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// Viewing the page: the link keeps working.
    Peek,
    /// Starting a flow, saving a key or disconnecting: the link is spent.
    Consume,
    /// Checking an API key: one of the link's few tries is taken.
    KeyCheck,
}

/// The connection a request may act on, and where the browser goes after.
pub struct Target {
    pub connection_id: ConnectionId,
    pub return_to: Option<ReturnTo>,
    /// For `KeyCheck` through a link: which of its tries this is.
    pub key_attempt: Option<i64>,
    /// The connect session behind the grant, if any, to record how it ended.
    pub session: Option<SessionHash>,
}

impl Target {
    /// Where a page shown after the link was spent leads back to: the app,
    /// or the connect page when anyone may connect `default` from it.
    pub fn back_after_use(&self, state: &AppState) -> BackLink {
        match &self.return_to {
            Some(return_to) => BackLink::App(return_to.as_str().to_owned()),
            None if state.open_connect
                && self.connection_id == ConnectionId::default_connection() =>
            {
                BackLink::ConnectPage { session: None }
            }
            None => BackLink::None,
        }
    }
}

pub async fn target(
    state: &AppState,
    session: Option<&str>,
    how: SessionUse,
) -> Result<Target, PageError> {
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
            Ok(Target {
                connection_id: row.connection_id,
                return_to: row.return_to,
                key_attempt,
                session: SessionHash::of_token(token),
            })
        }
        None if state.open_connect => Ok(Target {
            connection_id: ConnectionId::default_connection(),
            return_to: None,
            key_attempt: None,
            session: None,
        }),
        None => Err(PageError::NoSession),
    }
}

/// The `session` query parameter as a browser route takes it.
#[derive(Deserialize)]
pub struct SessionQuery {
    session: Option<String>,
}

/// What a browser route's query extracts to: a malformed query is the
/// route's error, not axum's plain-text one.
pub type SessionParam = Result<Query<SessionQuery>, QueryRejection>;

impl SessionQuery {
    /// The session named in the address, if any; a malformed query is refused.
    pub fn of(query: SessionParam) -> Result<Option<String>, PageError> {
        Ok(query
            .map_err(|_| PageError::Malformed("query"))?
            .0
            .session
            .filter(|s| !s.is_empty()))
    }
}
