//! Opened credentials, kept for at most a second (until the clock's second
//! changes): under load the same connection is asked for many times a
//! second, and each ask would otherwise read the database and decrypt. The
//! clock is the one tests move, so expiry is tested without sleeping.
//!
//! This process forgets an entry whenever it writes the connection. Another
//! process's write (a refresh, a delete on a second instance) is seen within
//! the second; a credential cached just before it is still one the provider
//! issued, and a due token is never served from here.

use super::{Connections, Credential};
use crate::checked::ConnectionId;
use crate::clock::UnixTime;
use crate::store::ConnectionRow;

/// In the clock's whole seconds: an entry lives until the second it was
/// opened in is over.
const TIME_TO_LIVE_SECS: UnixTime = 1;
/// Past this many entries, stale ones are swept on the next insert.
const SWEEP_AT: usize = 10_000;

pub(super) struct Opened {
    credential: Credential,
    /// When the access token becomes due for a refresh (`None`: never).
    due_at: Option<UnixTime>,
    at: UnixTime,
}

impl Opened {
    fn fresh(&self, now: UnixTime) -> bool {
        now - self.at < TIME_TO_LIVE_SECS
    }
}

impl Connections {
    /// A credential opened in the last second that is not due yet.
    pub(super) fn recall(&self, id: &ConnectionId) -> Option<Credential> {
        let opened = self
            .opened
            .lock()
            .expect("the credential cache is never poisoned");
        let entry = opened.get(id)?;
        let now = self.clock.now();
        let due = entry.due_at.is_some_and(|due_at| now >= due_at);
        (entry.fresh(now) && !due).then(|| entry.credential.clone())
    }

    pub(super) fn remember(&self, id: &ConnectionId, credential: &Credential, row: &ConnectionRow) {
        let mut opened = self
            .opened
            .lock()
            .expect("the credential cache is never poisoned");
        let now = self.clock.now();
        if opened.len() >= SWEEP_AT {
            opened.retain(|_, entry| entry.fresh(now));
        }
        opened.insert(
            id.clone(),
            Opened {
                credential: credential.clone(),
                due_at: self.due_at(row),
                at: now,
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
