//! The flow cookie (`PendingFlow::seal`, `open`, `cookie_name`): it opens
//! with its own state and key, unchanged, and not after it expires.

use emailoctopus_connect::connect_sessions::ConnectSessions;
use emailoctopus_connect::crypto::KeyRing;
use emailoctopus_connect::domain::{ConnectionId, ReturnTo};
use emailoctopus_connect::oauth::{FlowError, PendingFlow};
use oauth2::{CsrfToken, PkceCodeVerifier};
use proptest::prelude::*;

use super::config;

proptest! {
    #![proptest_config(config())]

    /// A sealed flow opens with its own state and key before it expires, and
    /// with nothing else.
    #[test]
    fn a_sealed_flow_opens_only_with_its_own_state_and_key(
        state in prop_oneof!["[A-Za-z0-9_-]{22,64}", ".{1,40}"],
        other_state in ".{1,40}",
        verifier in "[A-Za-z0-9._~-]{43,128}",
        id in "[a-z0-9][a-z0-9._-]{0,30}",
        now in 0i64..(1 << 40),
        lifetime in 1i64..100_000,
    ) {
        let keys = KeyRing::generate();
        let flow = PendingFlow {
            state: CsrfToken::new(state.clone()),
            verifier: PkceCodeVerifier::new(verifier.clone()),
            connection_id: ConnectionId::parse(&id).unwrap(),
            return_to: Some(ReturnTo::from_trusted("https://app.example.com/x".into())),
            session: ConnectSessions::hash(&id),
            expires_at: now + lifetime,
        };
        let cookie = flow.seal(&keys);
        let name = PendingFlow::cookie_name(&state);
        prop_assert!(name.len() == 25 && name.starts_with("eoc_flow_"));
        prop_assert!(name[9..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

        let opened = PendingFlow::open(&cookie, &state, &keys, now).unwrap();
        prop_assert_eq!(opened.verifier.secret(), &verifier);
        prop_assert_eq!(opened.session, ConnectSessions::hash(&id));
        prop_assert_eq!(opened.connection_id.as_str(), id.as_str());
        prop_assert_eq!(opened.expires_at, now + lifetime);
        if other_state != state {
            prop_assert!(PendingFlow::open(&cookie, &other_state, &keys, now).is_err());
        }
        prop_assert_eq!(
            PendingFlow::open(&cookie, &state, &KeyRing::generate(), now).err(),
            Some(FlowError::Tampered)
        );
        prop_assert_eq!(
            PendingFlow::open(&cookie, &state, &keys, now + lifetime).err(),
            Some(FlowError::Expired)
        );
    }

    /// Any change to a sealed flow cookie (a character, a cut, an addition)
    /// and any string that was never sealed fails to open.
    #[test]
    fn a_changed_flow_cookie_never_opens(
        at in any::<prop::sample::Index>(),
        with in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect::<Vec<_>>()
        ),
        cut in any::<prop::sample::Index>(),
        junk in any::<String>(),
    ) {
        let keys = KeyRing::generate();
        let flow = PendingFlow {
            state: CsrfToken::new("the-state-of-this-flow".into()),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            connection_id: ConnectionId::parse("c").unwrap(),
            return_to: None,
            session: None,
            expires_at: 2_000,
        };
        let cookie = flow.seal(&keys);
        let state = "the-state-of-this-flow";
        let mut changed: Vec<char> = cookie.chars().collect();
        let i = at.index(changed.len());
        if changed[i] != with {
            changed[i] = with;
            let changed: String = changed.into_iter().collect();
            prop_assert!(PendingFlow::open(&changed, state, &keys, 1_000).is_err());
        }
        let shorter = &cookie[..cut.index(cookie.len())];
        prop_assert!(PendingFlow::open(shorter, state, &keys, 1_000).is_err());
        let longer = format!("{cookie}{with}");
        prop_assert!(PendingFlow::open(&longer, state, &keys, 1_000).is_err());
        prop_assert!(PendingFlow::open(&junk, state, &keys, 1_000).is_err());
        prop_assert!(PendingFlow::open(&junk, &junk, &keys, 1_000).is_err());
    }
}
