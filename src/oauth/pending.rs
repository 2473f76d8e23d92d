//! The pending flow: state, PKCE verifier, connection id and return_to, sealed
//! into an HttpOnly cookie in the browser that started the flow.
//!
//! Each flow has its own cookie, named after a hash of its state, so two tabs
//! do not overwrite each other and a callback finds its flow by its `state`.
//! The cookie is bound to its name by the AEAD's associated data, expires
//! inside the sealed payload (a browser may keep a cookie longer than asked),
//! and is single use because the callback records the state as consumed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::{CsrfToken, PkceCodeVerifier};
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::connect_sessions::SessionHash;
use crate::crypto::{secrets_equal, sha256_hex, KeyRing};
use crate::domain::{ConnectionId, ReturnTo};

/// How long a started flow may take (the contract: 10 minutes).
pub const FLOW_LIFETIME_SECS: i64 = 600;

/// Cookies larger than this are not even opened.
const MAX_COOKIE_VALUE: usize = 4096;

pub struct PendingFlow {
    pub state: CsrfToken,
    pub verifier: PkceCodeVerifier,
    pub connection_id: ConnectionId,
    pub return_to: Option<ReturnTo>,
    /// The connect session that started the flow, to record how it ended.
    pub session: Option<SessionHash>,
    pub expires_at: UnixTime,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    state: String,
    verifier: String,
    connection_id: ConnectionId,
    return_to: Option<ReturnTo>,
    #[serde(default)]
    session: Option<SessionHash>,
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

impl PendingFlow {
    /// The name of the cookie that holds the flow begun with `state`.
    pub fn cookie_name(state: &str) -> String {
        format!("eoc_flow_{}", &sha256_hex(state.as_bytes())[..16])
    }

    /// Identifies the state once it is used, without storing the state itself.
    pub fn state_hash(state: &str) -> String {
        sha256_hex(state.as_bytes())
    }

    pub fn seal(&self, keys: &KeyRing) -> String {
        let payload = Sealed {
            state: self.state.secret().clone(),
            verifier: self.verifier.secret().clone(),
            connection_id: self.connection_id.clone(),
            return_to: self.return_to.clone(),
            session: self.session.clone(),
            expires_at: self.expires_at,
        };
        let json = serde_json::to_vec(&payload).expect("a flow serialises");
        let name = Self::cookie_name(self.state.secret());
        URL_SAFE_NO_PAD.encode(keys.seal(&json, name.as_bytes()))
    }

    /// Opens the cookie found for `state` and checks it belongs to that state
    /// and has not expired.
    pub fn open(
        cookie: &str,
        state: &str,
        keys: &KeyRing,
        now: UnixTime,
    ) -> Result<Self, FlowError> {
        if cookie.len() > MAX_COOKIE_VALUE {
            return Err(FlowError::Tampered);
        }
        let sealed = URL_SAFE_NO_PAD
            .decode(cookie)
            .map_err(|_| FlowError::Tampered)?;
        let name = Self::cookie_name(state);
        let json = keys
            .open(&sealed, name.as_bytes())
            .map_err(|_| FlowError::Tampered)?;
        let payload: Sealed = serde_json::from_slice(&json).map_err(|_| FlowError::Tampered)?;
        // The name is a truncated hash, so compare the full state too.
        if !secrets_equal(payload.state.as_bytes(), state.as_bytes()) {
            return Err(FlowError::Unknown);
        }
        if now >= payload.expires_at {
            return Err(FlowError::Expired);
        }
        Ok(Self {
            state: CsrfToken::new(payload.state),
            verifier: PkceCodeVerifier::new(payload.verifier),
            connection_id: payload.connection_id,
            return_to: payload.return_to,
            session: payload.session,
            expires_at: payload.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(now: UnixTime) -> PendingFlow {
        PendingFlow {
            state: CsrfToken::new_random(),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            connection_id: ConnectionId::parse("c1").unwrap(),
            return_to: None,
            session: None,
            expires_at: now + FLOW_LIFETIME_SECS,
        }
    }

    #[test]
    fn a_sealed_flow_opens_for_its_own_state_only() {
        let keys = KeyRing::generate();
        let flow = flow(1000);
        let cookie = flow.seal(&keys);
        let state = flow.state.secret().clone();
        let opened = PendingFlow::open(&cookie, &state, &keys, 1001).unwrap();
        assert_eq!(opened.connection_id.as_str(), "c1");
        assert_eq!(opened.verifier.secret(), flow.verifier.secret());
        let other = CsrfToken::new_random();
        assert_eq!(
            PendingFlow::open(&cookie, other.secret(), &keys, 1001).err(),
            Some(FlowError::Tampered)
        );
    }

    #[test]
    fn an_old_flow_is_expired() {
        let keys = KeyRing::generate();
        let flow = flow(1000);
        let cookie = flow.seal(&keys);
        let result = PendingFlow::open(
            &cookie,
            flow.state.secret(),
            &keys,
            1000 + FLOW_LIFETIME_SECS,
        );
        assert_eq!(result.err(), Some(FlowError::Expired));
    }

    #[test]
    fn broken_cookies_are_tampered() {
        let keys = KeyRing::generate();
        let flow = flow(1000);
        let state = flow.state.secret().clone();
        let cookie = flow.seal(&keys);
        let huge = "A".repeat(MAX_COOKIE_VALUE + 1);
        for bad in [&cookie[..cookie.len() - 2], "", "!!!", huge.as_str()] {
            assert_eq!(
                PendingFlow::open(bad, &state, &keys, 1001).err(),
                Some(FlowError::Tampered),
                "{bad}"
            );
        }
        let foreign = flow.seal(&KeyRing::generate());
        assert_eq!(
            PendingFlow::open(&foreign, &state, &keys, 1001).err(),
            Some(FlowError::Tampered)
        );
    }
}
