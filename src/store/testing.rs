//! What the store's own tests share: a connection saved with events.

use crate::checked::{ConnectionId, ConnectionKind, EventId, EventType};
use crate::store::{ConnectWrite, NewEvent, ProfileUpdate, SealedCredential, Store, Upkeep};

/// Saves a new API-key connection `id` announcing `events` events to be
/// delivered; false when one with this id exists (nothing is written then).
pub(super) async fn save(store: &Store, id: &ConnectionId, events: usize) -> bool {
    let credential = SealedCredential {
        kind: ConnectionKind::ApiKey,
        scopes: vec![],
        token_type: "Bearer".into(),
        sealed_access_token: vec![1, 2, 3],
        sealed_refresh_token: None,
        expires_at: None,
    };
    let upkeep = Upkeep {
        next_work_at: None,
        checked_at: None,
    };
    let write = ConnectWrite {
        credential: &credential,
        upkeep: &upkeep,
        profile: &ProfileUpdate::default(),
    };
    let announce = |_: &_| {
        (0..events)
            .map(|_| NewEvent {
                id: EventId::new(),
                event: EventType::Created,
                reason: None,
                at: 1_700_000_000_000,
                deliver: true,
            })
            .collect()
    };
    let saved = store.insert_connection(id, write, 1_700_000_000, announce);
    saved.await.unwrap().is_some()
}
