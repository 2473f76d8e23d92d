//! `EventType`: what happened to a connection, as events name it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum EventType {
    /// A connect finished (a reconnect too).
    #[serde(rename = "connection.created")]
    Created,
    /// The credential was refused: a person must connect again.
    #[serde(rename = "connection.needs_reauth")]
    NeedsReauth,
    /// A connection that needed a person is connected again.
    #[serde(rename = "connection.recovered")]
    Recovered,
    /// Refreshes failed (not refused) several times in a row.
    #[serde(rename = "connection.refresh_failing")]
    RefreshFailing,
    #[serde(rename = "connection.deleted")]
    Deleted,
}

impl EventType {
    const ALL: [Self; 5] = [
        Self::Created,
        Self::NeedsReauth,
        Self::Recovered,
        Self::RefreshFailing,
        Self::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "connection.created",
            Self::NeedsReauth => "connection.needs_reauth",
            Self::Recovered => "connection.recovered",
            Self::RefreshFailing => "connection.refresh_failing",
            Self::Deleted => "connection.deleted",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == raw)
    }
}
