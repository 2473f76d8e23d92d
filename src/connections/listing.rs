//! Finding connections by who they belong to and how they stand, and
//! editing their end user and tags: nothing here touches a credential.

use super::Connections;
use super::{Connection, CredentialError, Listing};
use crate::checked::ConnectionId;
use crate::store::{ConnectionFilter, Profile};

/// How many rows a listing without a limit reads per statement.
const UNBOUNDED_PAGE: i64 = 1000;

impl Connections {
    /// The connections that match `filter` after `after`, in id order: up
    /// to `limit` of them and where the next page starts, or, without a
    /// limit, all of them (read a bounded page at a time).
    pub async fn find(
        &self,
        filter: &ConnectionFilter,
        after: Option<&ConnectionId>,
        limit: Option<i64>,
    ) -> Result<Listing, CredentialError> {
        let store = &self.credentials.store;
        let mut listing = Listing::default();
        let mut after = after.cloned();
        loop {
            let page = store
                .find_connections(filter, after.as_ref(), limit.unwrap_or(UNBOUNDED_PAGE))
                .await?;
            listing
                .connections
                .extend(page.connections.iter().map(Connection::from));
            after = page.connections.last().map(|row| row.id.clone());
            if !page.more {
                return Ok(listing);
            }
            if limit.is_some() {
                listing.next = after;
                return Ok(listing);
            }
        }
    }

    /// Rewrites the connection's end user and tags as `edit` says (see
    /// `Store::edit_profile`): its credential stays, and no event is
    /// recorded. `None` when there is no such connection.
    pub async fn edit_profile<E>(
        &self,
        id: &ConnectionId,
        edit: impl FnOnce(&Profile) -> Result<Profile, E>,
    ) -> Result<Option<Result<Connection, E>>, CredentialError> {
        let edited = self.credentials.store.edit_profile(id, edit).await?;
        Ok(edited.map(|result| result.map(|row| Connection::from(&row))))
    }
}
