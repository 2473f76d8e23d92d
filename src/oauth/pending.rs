//! The pending flows of one browser: state, PKCE verifier, connection id and
//! return_to of each flow it started, sealed into one HttpOnly cookie.
//!
//! One cookie, on `Path=/`, so that `/auth` sees what is pending and keeps it
//! bounded: at most `MAX_PENDING_FLOWS`, newest kept, and at most
//! `MAX_COOKIE_VALUE` bytes however long their `return_to`, so that no number
//! of unfinished flows can make a browser's request heads too large. Two tabs
//! do not overwrite each other: each `/auth` adds to what the browser holds.
//! The cookie is bound to its name by the AEAD's associated data, each flow
//! expires inside the sealed payload (a browser may keep a cookie longer than
//! asked), and a flow is single use because `UsedFlows::claim` records its
//! state as used, on the database every instance shares, before anything is
//! sent to the provider.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::{CsrfToken, PkceCodeVerifier};
use serde::{Deserialize, Serialize};

use crate::checked::SessionHash;
use crate::checked::{ConnectionId, ReturnTo};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{secrets_equal, sha256_hex, Sealer};
use crate::store::{Store, StoreError};

/// How long a started flow may take (the contract: 10 minutes).
pub const FLOW_LIFETIME_SECS: i64 = 600;

/// A browser keeps at most this many flows pending; older ones are dropped.
pub const MAX_PENDING_FLOWS: usize = 5;

/// The sealed cookie value is at most this long (browsers take 4096 bytes
/// for name and value together); larger values are not even opened.
pub const MAX_COOKIE_VALUE: usize = 4000;

pub struct PendingFlow {
    pub state: CsrfToken,
    pub verifier: PkceCodeVerifier,
    pub connection_id: ConnectionId,
    pub return_to: Option<ReturnTo>,
    /// The connect session that started the flow, to record how it ended.
    pub session: Option<SessionHash>,
    pub expires_at: UnixTime,
}

/// One flow as sealed; short member names keep the cookie small.
#[derive(Serialize, Deserialize)]
struct Sealed {
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "v")]
    verifier: String,
    #[serde(rename = "c")]
    connection_id: ConnectionId,
    #[serde(rename = "r")]
    return_to: Option<ReturnTo>,
    #[serde(rename = "h")]
    session: Option<SessionHash>,
    #[serde(rename = "e")]
    expires_at: UnixTime,
}

/// Why a callback's flow could not be opened. All of them mean "start again".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlowError {
    #[error("no sign-in was started for this state in this browser")]
    Unknown,
    #[error("the sign-in cookie was altered or is not ours")]
    Tampered,
    #[error("the sign-in took longer than 10 minutes")]
    Expired,
}

/// The flows one browser has pending, oldest first.
#[derive(Default)]
pub struct PendingFlows {
    flows: Vec<Sealed>,
}

impl PendingFlows {
    /// The cookie's name: with the `__Host-` prefix when it is `Secure`, so
    /// that no sibling domain and no plain-http page can set it.
    pub fn cookie_name(secure: bool) -> &'static str {
        if secure {
            "__Host-eoc_flows"
        } else {
            "eoc_flows"
        }
    }

    /// Opens the browser's cookie (sealed under `name`).
    pub fn open(cookie: &str, name: &str, keys: &Sealer) -> Result<Self, FlowError> {
        if cookie.len() > MAX_COOKIE_VALUE {
            return Err(FlowError::Tampered);
        }
        let sealed = URL_SAFE_NO_PAD
            .decode(cookie)
            .map_err(|_| FlowError::Tampered)?;
        let json = keys
            .open(&sealed, name.as_bytes())
            .map_err(|_| FlowError::Tampered)?;
        let flows: Vec<Sealed> = serde_json::from_slice(&json).map_err(|_| FlowError::Tampered)?;
        if flows.len() > MAX_PENDING_FLOWS {
            return Err(FlowError::Tampered);
        }
        Ok(Self { flows })
    }

    /// Adds `flow` as the newest, forgetting expired ones and the oldest
    /// beyond `MAX_PENDING_FLOWS`.
    pub fn push(&mut self, flow: PendingFlow, now: UnixTime) {
        self.flows.retain(|f| f.expires_at > now);
        self.flows.push(Sealed {
            state: flow.state.secret().clone(),
            verifier: flow.verifier.secret().clone(),
            connection_id: flow.connection_id,
            return_to: flow.return_to,
            session: flow.session,
            expires_at: flow.expires_at,
        });
        let surplus = self.flows.len().saturating_sub(MAX_PENDING_FLOWS);
        self.flows.drain(..surplus);
    }

    /// Takes the flow begun with `state` out, checking it has not expired.
    pub fn take(&mut self, state: &str, now: UnixTime) -> Result<PendingFlow, FlowError> {
        let position = self
            .flows
            .iter()
            .position(|f| secrets_equal(f.state.as_bytes(), state.as_bytes()))
            .ok_or(FlowError::Unknown)?;
        let flow = self.flows.remove(position);
        if now >= flow.expires_at {
            return Err(FlowError::Expired);
        }
        Ok(PendingFlow {
            state: CsrfToken::new(flow.state),
            verifier: PkceCodeVerifier::new(flow.verifier),
            connection_id: flow.connection_id,
            return_to: flow.return_to,
            session: flow.session,
            expires_at: flow.expires_at,
        })
    }

    /// The cookie value under `name`, dropping the oldest flows until it is
    /// at most `MAX_COOKIE_VALUE` bytes; `None` when nothing is pending.
    pub fn seal(&mut self, name: &str, keys: &Sealer) -> Option<String> {
        while !self.flows.is_empty() {
            let json = serde_json::to_vec(&self.flows).expect("flows serialise");
            let value = URL_SAFE_NO_PAD.encode(keys.seal(&json, name.as_bytes()));
            if value.len() <= MAX_COOKIE_VALUE {
                return Some(value);
            }
            self.flows.remove(0);
        }
        None
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// The flows whose callback has come: each is finished once, on whichever
/// instance its callback reaches first.
#[derive(Clone)]
pub struct UsedFlows {
    store: Store,
    clock: Clock,
}

/// Why a flow could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("the flow was finished already")]
    Replayed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UsedFlows {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Marks `flow` used; `Replayed` when a callback used it before. Its
    /// record is kept at least as long as the flow could still finish.
    pub async fn claim(&self, flow: &PendingFlow) -> Result<(), ClaimError> {
        let keep_until = flow.expires_at.max(self.clock.now() + FLOW_LIFETIME_SECS);
        let first_use = self
            .store
            .consume_flow_state(&flow.state_hash(), keep_until)
            .await?;
        if first_use {
            Ok(())
        } else {
            Err(ClaimError::Replayed)
        }
    }
}

impl PendingFlow {
    /// Identifies the state once it is used, without storing the state itself.
    fn state_hash(&self) -> String {
        sha256_hex(self.state.secret().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyRing, Purpose};

    fn new_keys() -> Sealer {
        KeyRing::generate().sealer(Purpose::FlowCookies)
    }

    const NAME: &str = "eoc_flows";

    fn flow(now: UnixTime, return_to_len: usize) -> PendingFlow {
        PendingFlow {
            state: CsrfToken::new_random(),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            connection_id: ConnectionId::parse(&"c".repeat(100)).unwrap(),
            return_to: (return_to_len > 0).then(|| {
                ReturnTo::from_trusted(format!("https://a.example/{}", "x".repeat(return_to_len)))
            }),
            session: None,
            expires_at: now + FLOW_LIFETIME_SECS,
        }
    }

    #[test]
    fn a_sealed_flow_opens_for_its_own_state_only() {
        let keys = new_keys();
        let first = flow(1000, 0);
        let state = first.state.secret().clone();
        let mut flows = PendingFlows::default();
        flows.push(first, 1000);
        let cookie = flows.seal(NAME, &keys).unwrap();
        let mut opened = PendingFlows::open(&cookie, NAME, &keys).unwrap();
        let other = CsrfToken::new_random();
        assert_eq!(
            opened.take(other.secret(), 1001).err(),
            Some(FlowError::Unknown)
        );
        let taken = opened.take(&state, 1001).unwrap();
        assert_eq!(taken.verifier.secret(), &"v".repeat(43));
        assert!(opened.is_empty());
        assert!(PendingFlows::open(&cookie, "__Host-eoc_flows", &keys).is_err());
    }

    #[tokio::test]
    async fn a_flow_is_claimed_once() {
        let (store, _dir) = Store::temporary().await;
        let used = UsedFlows::new(store, Clock::default());
        let first = flow(1000, 0);
        assert!(used.claim(&first).await.is_ok());
        assert!(matches!(
            used.claim(&first).await,
            Err(ClaimError::Replayed)
        ));
        assert!(used.claim(&flow(1000, 0)).await.is_ok());
    }

    #[test]
    fn an_old_flow_is_expired() {
        let mut flows = PendingFlows::default();
        let old = flow(1000, 0);
        let state = old.state.secret().clone();
        flows.push(old, 1000);
        assert_eq!(
            flows.take(&state, 1000 + FLOW_LIFETIME_SECS).err(),
            Some(FlowError::Expired)
        );
    }

    #[test]
    fn the_newest_flows_are_kept_within_the_size_cap() {
        let keys = new_keys();
        let mut flows = PendingFlows::default();
        let mut states = Vec::new();
        for i in 0..300 {
            let next = flow(1000 + i, 0);
            states.push(next.state.secret().clone());
            flows.push(next, 1000 + i);
        }
        let cookie = flows.seal(NAME, &keys).unwrap();
        assert!(cookie.len() <= MAX_COOKIE_VALUE);
        let mut opened = PendingFlows::open(&cookie, NAME, &keys).unwrap();
        assert_eq!(opened.len(), MAX_PENDING_FLOWS);
        assert!(opened.take(&states[299], 1300).is_ok());
        assert!(opened.take(&states[295], 1300).is_ok());
        assert!(opened.take(&states[294], 1300).is_err());

        // The longest return_to: fewer fit, the newest always does.
        for _ in 0..5 {
            flows.push(flow(1000, ReturnTo::MAX_LEN - 18), 1000);
        }
        let cookie = flows.seal(NAME, &keys).unwrap();
        assert!(cookie.len() <= MAX_COOKIE_VALUE, "{}", cookie.len());
        assert_eq!(flows.len(), 1);
    }

    #[test]
    fn broken_cookies_are_tampered() {
        let keys = new_keys();
        let mut flows = PendingFlows::default();
        flows.push(flow(1000, 0), 1000);
        let cookie = flows.seal(NAME, &keys).unwrap();
        let huge = "A".repeat(MAX_COOKIE_VALUE + 1);
        for bad in [&cookie[..cookie.len() - 2], "", "!!!", huge.as_str()] {
            assert_eq!(
                PendingFlows::open(bad, NAME, &keys).err(),
                Some(FlowError::Tampered),
                "{bad}"
            );
        }
        let foreign = flows.seal(NAME, &new_keys()).unwrap();
        assert_eq!(
            PendingFlows::open(&foreign, NAME, &keys).err(),
            Some(FlowError::Tampered)
        );
    }
}
