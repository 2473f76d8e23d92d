//! The stored credentials: read, open, seal and write a connection's
//! credential. Every write names the generation it replaces, so nothing is
//! overwritten unseen and the grant a write replaced is always known.

use secrecy::SecretString;

use super::sealing::{self, Field};
use super::turns::Turns;
use super::{Credential, CredentialError};
use crate::checked::{ConnectionId, ConnectionStatus, EventType};
use crate::clock::Clock;
use crate::crypto::Sealer;
use crate::events::Outbox;
use crate::oauth::TokenSet;
use crate::store::{ConnectWrite, ConnectionRow, ProfileUpdate, SealedCredential, Store, Upkeep};

/// The store, the key that seals credentials, the clock, the events that
/// writes record, and the turns. Cheap to clone: every part is shared.
#[derive(Clone)]
pub(super) struct CredentialStore {
    pub(super) store: Store,
    keys: Sealer,
    pub(super) clock: Clock,
    pub(super) outbox: Outbox,
    /// One refresh of a connection at a time.
    pub(super) refreshing: Turns,
    /// One save of a connection at a time.
    saving: Turns,
}

impl CredentialStore {
    pub(super) fn new(store: Store, keys: Sealer, clock: Clock, outbox: Outbox) -> Self {
        Self {
            store,
            keys,
            clock,
            outbox,
            refreshing: Turns::default(),
            saving: Turns::default(),
        }
    }

    /// The stored row, or `NotFound`.
    pub(super) async fn row(&self, id: &ConnectionId) -> Result<ConnectionRow, CredentialError> {
        self.store
            .get_connection(id)
            .await?
            .ok_or(CredentialError::NotFound)
    }

    /// Opens the row's credential, refusing one the provider has withdrawn.
    pub(super) fn usable(&self, row: &ConnectionRow) -> Result<Credential, CredentialError> {
        if row.status == ConnectionStatus::NeedsReauth {
            return Err(CredentialError::NeedsReauth);
        }
        Ok(Credential {
            kind: row.kind,
            secret: self.open(&row.id, Field::Access, &row.sealed_access_token)?,
            token_type: row.token_type.clone(),
            expires_at: row.expires_at,
            generation: row.generation,
        })
    }

    pub(super) fn open(
        &self,
        id: &ConnectionId,
        field: Field,
        sealed: &[u8],
    ) -> Result<SecretString, CredentialError> {
        Ok(sealing::open_secret(&self.keys, id, field, sealed)?)
    }

    pub(super) fn seal_tokens(
        &self,
        id: &ConnectionId,
        tokens: &TokenSet,
        requested_scopes: Vec<String>,
    ) -> SealedCredential {
        sealing::seal_tokens(&self.keys, id, tokens, requested_scopes, self.clock.now())
    }

    pub(super) fn seal_api_key(&self, id: &ConnectionId, key: &SecretString) -> SealedCredential {
        sealing::seal_api_key(&self.keys, id, key)
    }

    /// Stores `credential` as the connection's, connected: inserts it, or
    /// replaces exactly the generation last read, reading again when another
    /// write slipped in between. Saves of one connection take turns, so that
    /// concurrent connects do not keep failing each other's compare-and-swap
    /// (each failure costs two more statements), but a save never waits for
    /// a refresh: a reconnect wins over a refresh in flight, whose write then
    /// finds another generation. The connection gets what `profile` holds
    /// in the same write, so its events show it. Each write records
    /// `connection.created`, and `connection.recovered` when the connection
    /// needed a person. The row written, and the one it replaced.
    pub(super) async fn replace(
        &self,
        id: &ConnectionId,
        credential: &SealedCredential,
        profile: &ProfileUpdate,
        upkeep: Upkeep,
    ) -> Result<(ConnectionRow, Option<ConnectionRow>), CredentialError> {
        let _turn = self.saving.take_in_order(id).await;
        let write = ConnectWrite {
            credential,
            upkeep: &upkeep,
            profile,
        };
        loop {
            let now = self.clock.now();
            match self.store.get_connection(id).await? {
                None => {
                    let created = |_: &ConnectionRow| vec![self.outbox.event(EventType::Created)];
                    if let Some(row) = self
                        .store
                        .insert_connection(id, write, now, created)
                        .await?
                    {
                        return Ok((row, None));
                    }
                }
                Some(old) => {
                    let reconnected = |_: &ConnectionRow| {
                        let mut events = vec![self.outbox.event(EventType::Created)];
                        if old.status == ConnectionStatus::NeedsReauth {
                            events.push(self.outbox.event(EventType::Recovered));
                        }
                        events
                    };
                    if let Some(row) = self
                        .store
                        .replace_connection(id, write, &old, now, reconnected)
                        .await?
                    {
                        return Ok((row, Some(old)));
                    }
                }
            }
        }
    }
}
