//! The pending-flows cookie (`PendingFlows::push`, `seal`, `open`, `take`):
//! a flow opens with its own state, cookie name and key, unchanged, and not
//! after it expires.

use emailoctopus_connect::checked::SessionHash;
use emailoctopus_connect::checked::{ConnectionId, ReturnTo};
use emailoctopus_connect::crypto::{KeyRing, Purpose, Sealer};
use emailoctopus_connect::oauth::{FlowError, PendingFlow, PendingFlows};
use oauth2::{CsrfToken, PkceCodeVerifier};
use proptest::prelude::*;

use super::config;

const NAME: &str = "eoc_flows";

fn flow_keys() -> Sealer {
    KeyRing::generate().sealer(Purpose::FlowCookies)
}

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
        secure in any::<bool>(),
    ) {
        let keys = flow_keys();
        let flow = PendingFlow {
            state: CsrfToken::new(state.clone()),
            verifier: PkceCodeVerifier::new(verifier.clone()),
            connection_id: ConnectionId::parse(&id).unwrap(),
            return_to: Some(ReturnTo::from_trusted("https://app.example.com/x".into())),
            session: SessionHash::of_token(&id),
            expires_at: now + lifetime,
        };
        let name = PendingFlows::cookie_name(secure);
        let mut flows = PendingFlows::default();
        flows.push(flow, now);
        let cookie = flows.seal(name, &keys).unwrap();

        let open = || PendingFlows::open(&cookie, name, &keys).unwrap();
        let opened = open().take(&state, now).unwrap();
        prop_assert_eq!(opened.verifier.secret(), &verifier);
        prop_assert_eq!(opened.session, SessionHash::of_token(&id));
        prop_assert_eq!(opened.connection_id.as_str(), id.as_str());
        prop_assert_eq!(opened.expires_at, now + lifetime);
        if other_state != state {
            prop_assert_eq!(open().take(&other_state, now).err(), Some(FlowError::Unknown));
        }
        prop_assert_eq!(
            PendingFlows::open(&cookie, name, &flow_keys()).err(),
            Some(FlowError::Tampered)
        );
        prop_assert_eq!(
            PendingFlows::open(&cookie, PendingFlows::cookie_name(!secure), &keys).err(),
            Some(FlowError::Tampered)
        );
        prop_assert_eq!(open().take(&state, now + lifetime).err(), Some(FlowError::Expired));
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
        let keys = flow_keys();
        let state = "the-state-of-this-flow";
        let flow = PendingFlow {
            state: CsrfToken::new(state.into()),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            connection_id: ConnectionId::parse("c").unwrap(),
            return_to: None,
            session: None,
            expires_at: 2_000,
        };
        let mut flows = PendingFlows::default();
        flows.push(flow, 1_000);
        let cookie = flows.seal(NAME, &keys).unwrap();
        let opens = |value: &str| {
            PendingFlows::open(value, NAME, &keys).is_ok_and(|mut f| f.take(state, 1_000).is_ok())
        };
        prop_assert!(opens(&cookie));
        let mut changed: Vec<char> = cookie.chars().collect();
        let i = at.index(changed.len());
        if changed[i] != with {
            changed[i] = with;
            let changed: String = changed.into_iter().collect();
            prop_assert!(!opens(&changed));
        }
        let shorter = &cookie[..cut.index(cookie.len())];
        prop_assert!(!opens(shorter));
        let longer = format!("{cookie}{with}");
        prop_assert!(!opens(&longer));
        prop_assert!(!opens(&junk));
    }
}
