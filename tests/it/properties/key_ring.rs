//! The key ring and sealed values (`KeyRing::parse`, `Sealer::seal`, `open`).

use emailoctopus_connect::crypto::{KeyRing, Purpose};
use proptest::prelude::*;

use super::config;

proptest! {
    #![proptest_config(config())]

    /// The key ring: any string parses or is refused without a panic; a
    /// sealed value opens with its own associated data, and any flipped
    /// byte, cut or addition, or any other associated data, fails.
    #[test]
    fn a_sealed_value_opens_only_unchanged(
        ring in prop_oneof![any::<String>(), "[A-Za-z0-9+/=, ]{0,100}"],
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        other_aad in prop::collection::vec(any::<u8>(), 0..64),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cut in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let _ = KeyRing::parse(&ring);
        let generated = KeyRing::generate();
        let keys = generated.sealer(Purpose::Credentials);
        let sealed = keys.seal(&plaintext, &aad);
        prop_assert_eq!(keys.open(&sealed, &aad).unwrap(), plaintext);
        let mut flipped = sealed.clone();
        flipped[at.index(sealed.len())] ^= flip;
        prop_assert!(keys.open(&flipped, &aad).is_err());
        prop_assert!(keys.open(&sealed[..cut.index(sealed.len())], &aad).is_err());
        prop_assert!(keys.open(&[sealed.as_slice(), b"x"].concat(), &aad).is_err());
        if other_aad != aad {
            prop_assert!(keys.open(&sealed, &other_aad).is_err());
        }
        prop_assert!(KeyRing::generate().sealer(Purpose::Credentials).open(&sealed, &aad).is_err());
        prop_assert!(generated.sealer(Purpose::FlowCookies).open(&sealed, &aad).is_err());
        prop_assert!(keys.open(&junk, &aad).is_err());
    }
}
