//! Saving a new credential over whatever the connection held: never
//! overwriting a write that happened meanwhile unseen, so the grant it
//! replaces is always known, and revoked at the provider.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::{Connections, CredentialError};
use crate::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use crate::store::{ConnectionRow, SealedCredential, Upkeep};
use crate::webhooks::Event;

impl Connections {
    /// Stores `credential` as the connection's, connected. A replaced OAuth
    /// grant is revoked in the background; a connection that needed a person
    /// and is connected again is announced as recovered.
    pub(super) async fn replace(
        self: &Arc<Self>,
        id: &ConnectionId,
        credential: &SealedCredential,
        upkeep: Upkeep,
    ) -> Result<ConnectionRow, CredentialError> {
        let (row, replaced) = self.write_over(id, credential, upkeep).await?;
        self.forget(id);
        self.webhooks.emit(Event::Created, id, row.kind);
        if let Some(old) = replaced {
            if old.status == ConnectionStatus::NeedsReauth {
                tracing::info!(connection = %id, kind = row.kind.as_str(), "connection recovered: connected again");
                self.webhooks.emit(Event::Recovered, id, row.kind);
            }
            if old.kind == ConnectionKind::Oauth && self.can_revoke() {
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    let outcome = this.revoke(&old).await;
                    tracing::info!(connection = %old.id, ?outcome, "revoked the grant a reconnect replaced");
                });
            }
        }
        Ok(row)
    }

    /// Inserts, or replaces exactly the generation last read; tried again
    /// when another write slipped in between. The row written, and the one
    /// it replaced.
    async fn write_over(
        &self,
        id: &ConnectionId,
        credential: &SealedCredential,
        upkeep: Upkeep,
    ) -> Result<(ConnectionRow, Option<ConnectionRow>), CredentialError> {
        let _turn = self.write_turns.of(id).lock().await;
        loop {
            let now = self.clock.now();
            match self.store.get_connection(id).await? {
                None => {
                    if let Some(row) = self
                        .store
                        .insert_connection(id, credential, &upkeep, now)
                        .await?
                    {
                        return Ok((row, None));
                    }
                }
                Some(old) => {
                    if let Some(row) = self
                        .store
                        .replace_connection(id, credential, old.generation, &upkeep, now)
                        .await?
                    {
                        return Ok((row, Some(old)));
                    }
                }
            }
        }
    }
}

/// How many turn locks connections share; a collision only makes two
/// connections' writes wait for each other.
const TURN_STRIPES: usize = 64;

/// Credential writes to one connection take turns in this process, so that
/// concurrent reconnects of one connection do not keep failing each other's
/// compare-and-swap (each failure costs two more statements); a write from
/// another process is still caught by the compare-and-swap.
pub(super) struct WriteTurns([tokio::sync::Mutex<()>; TURN_STRIPES]);

impl Default for WriteTurns {
    fn default() -> Self {
        Self(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

impl WriteTurns {
    fn of(&self, id: &ConnectionId) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        &self.0[hasher.finish() as usize % TURN_STRIPES]
    }
}
