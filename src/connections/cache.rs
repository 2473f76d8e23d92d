//! Opened credentials, kept for one second: under load the same connection
//! is asked for many times a second, and each ask would otherwise read the
//! database and decrypt.
//!
//! This process forgets an entry whenever it writes the connection. Another
//! process's write (a refresh, a delete on a second instance) is seen within
//! the second; a credential cached just before it is still one the provider
//! issued, and a due token is never served from here.

use std::time::{Duration, Instant};

use super::{Connections, Credential};
use crate::clock::UnixTime;
use crate::domain::ConnectionId;
use crate::store::ConnectionRow;

const TIME_TO_LIVE: Duration = Duration::from_secs(1);
/// Past this many entries, stale ones are swept on the next insert.
const SWEEP_AT: usize = 10_000;

pub(super) struct Opened {
    credential: Credential,
    /// When the access token becomes due for a refresh (`None`: never).
    due_at: Option<UnixTime>,
    at: Instant,
}

impl Connections {
    /// A credential opened in the last second that is not due yet.
    pub(super) fn recall(&self, id: &ConnectionId) -> Option<Credential> {
        let opened = self
            .opened
            .lock()
            .expect("the credential cache is never poisoned");
        let entry = opened.get(id)?;
        let fresh = entry.at.elapsed() < TIME_TO_LIVE;
        let due = entry
            .due_at
            .is_some_and(|due_at| self.clock.now() >= due_at);
        (fresh && !due).then(|| entry.credential.clone())
    }

    pub(super) fn remember(&self, id: &ConnectionId, credential: &Credential, row: &ConnectionRow) {
        let mut opened = self
            .opened
            .lock()
            .expect("the credential cache is never poisoned");
        if opened.len() >= SWEEP_AT {
            opened.retain(|_, entry| entry.at.elapsed() < TIME_TO_LIVE);
        }
        opened.insert(
            id.clone(),
            Opened {
                credential: credential.clone(),
                due_at: self.due_at(row),
                at: Instant::now(),
            },
        );
    }

    pub(super) fn forget(&self, id: &ConnectionId) {
        self.opened
            .lock()
            .expect("the credential cache is never poisoned")
            .remove(id);
    }
}
