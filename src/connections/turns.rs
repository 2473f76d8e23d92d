//! Turns per connection in this process: whoever holds a connection's turn
//! goes first, and the others queue in order. There are two kinds (see
//! `connections/mod.rs`): refreshing, so callers asking for the same refresh
//! queue behind one provider call, and saving, so concurrent connects of one
//! connection do not keep failing each other's compare-and-swap. Other
//! processes are kept apart by the row's generation and refresh lease, not
//! by this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use super::CredentialError;
use crate::checked::ConnectionId;

type TurnMutex = Arc<tokio::sync::Mutex<()>>;

/// The turns of the connections someone in this process holds or waits for.
#[derive(Clone, Default)]
pub(super) struct Turns(Arc<Mutex<HashMap<ConnectionId, TurnMutex>>>);

/// A connection's turn, held until dropped.
pub(super) struct Turn {
    turns: Turns,
    id: ConnectionId,
    _held: OwnedMutexGuard<()>,
}

impl Turns {
    /// Waits for `id`'s turn, at most `wait`.
    pub(super) async fn take(
        &self,
        id: &ConnectionId,
        wait: Duration,
    ) -> Result<Turn, CredentialError> {
        let held = tokio::time::timeout(wait, self.mutex_of(id).lock_owned())
            .await
            .map_err(|_| CredentialError::Busy)?;
        Ok(self.turn(id, held))
    }

    /// Waits for `id`'s turn for as long as it takes: for turns whose
    /// holders are bounded by something else (a database statement's timeout).
    pub(super) async fn take_in_order(&self, id: &ConnectionId) -> Turn {
        let held = self.mutex_of(id).lock_owned().await;
        self.turn(id, held)
    }

    /// `id`'s turn if nobody holds it now.
    pub(super) fn try_take(&self, id: &ConnectionId) -> Option<Turn> {
        let held = self.mutex_of(id).try_lock_owned().ok()?;
        Some(self.turn(id, held))
    }

    fn mutex_of(&self, id: &ConnectionId) -> TurnMutex {
        self.lock().entry(id.clone()).or_default().clone()
    }

    fn turn(&self, id: &ConnectionId, held: OwnedMutexGuard<()>) -> Turn {
        Turn {
            turns: self.clone(),
            id: id.clone(),
            _held: held,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, TurnMutex>> {
        self.0.lock().expect("the turn map is never poisoned")
    }
}

impl Drop for Turn {
    /// Forgets the connection's mutex when nobody else waits for it.
    fn drop(&mut self) {
        let mut map = self.turns.lock();
        // Two strong references: the map's and the one inside our guard.
        if map.get(&self.id).is_some_and(|m| Arc::strong_count(m) <= 2) {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ConnectionId {
        ConnectionId::parse(&format!("conn-{n}")).unwrap()
    }

    #[tokio::test]
    async fn a_held_turn_makes_others_wait_and_is_forgotten_when_given_back() {
        let turns = Turns::default();
        let held = turns.take(&id(1), Duration::from_secs(1)).await.unwrap();
        assert!(turns.try_take(&id(1)).is_none());
        assert!(
            turns.try_take(&id(2)).is_some(),
            "another connection's turn is free"
        );
        let waited = turns.take(&id(1), Duration::from_millis(20)).await;
        assert!(matches!(waited, Err(CredentialError::Busy)));
        drop(held);
        assert!(turns.lock().is_empty());
        assert!(turns.try_take(&id(1)).is_some());
    }
}
