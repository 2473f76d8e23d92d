//! The body a delivery carries: the same bytes on every attempt.

use serde::Serialize;

use crate::checked::{ConnectionKind, EndUser, EventType, Tags};
use crate::clock::rfc3339_millis;
use crate::store::EventRow;

#[derive(Serialize)]
struct Payload<'a> {
    /// The event's stable id, also sent as `webhook-id`.
    id: &'a str,
    event: EventType,
    connection_id: &'a str,
    kind: ConnectionKind,
    at: String,
    /// Why a connection needs re-authorization.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// The connection's end user and tags as they were when it happened.
    end_user: Option<&'a EndUser>,
    tags: &'a Tags,
}

pub fn body(event: &EventRow) -> Vec<u8> {
    serde_json::to_vec(&Payload {
        id: event.id.as_str(),
        event: event.event,
        connection_id: event.connection_id.as_str(),
        kind: event.kind,
        at: rfc3339_millis(event.at),
        reason: event.reason.as_deref(),
        end_user: event.profile.end_user.as_ref(),
        tags: &event.profile.tags,
    })
    .expect("an event serialises")
}
