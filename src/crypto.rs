//! Authenticated encryption and MACs for everything secret at rest or in a
//! cookie, each purpose under its own key.
//!
//! `TOKEN_ENCRYPTION_KEY` is never used directly: HKDF-SHA256 (RFC 5869)
//! derives one subkey per purpose from each key of the ring, so a stored
//! credential, a flow cookie and a CSRF token can never be taken for one
//! another, and the nonce budget of each AES key is its own.
//!
//! A sealed value is `version (1) | key id (4) | nonce (12) | AES-256-GCM ciphertext`.
//! Version 2 is sealed under the purpose's subkey; version 1 (credentials
//! stored before subkeys) was sealed under the ring key itself and is still
//! opened for credentials, until `rekey` moves it to version 2.
//! The caller's associated data (for a token: its connection id and field) is
//! authenticated but not stored, so a value copied anywhere else fails to open.
//! The key id lets a ring of keys rotate: the first key seals, every key opens.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Sealed directly under a ring key (credentials only, before subkeys).
const LEGACY_VERSION: u8 = 1;
/// Sealed under the purpose's HKDF subkey.
const VERSION: u8 = 2;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// A short public fingerprint of a key, stored beside each ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

/// What a sealed value is for; each has its own subkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Stored access tokens, refresh tokens and API keys.
    Credentials,
    /// The browser's pending-flows cookie.
    FlowCookies,
    /// The operator's signed-in session cookie.
    AdminSessions,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Self::Credentials => b"emailoctopus-connect/v2/seal/credentials",
            Self::FlowCookies => b"emailoctopus-connect/v2/seal/flow-cookies",
            Self::AdminSessions => b"emailoctopus-connect/v2/seal/admin-sessions",
        }
    }
}

const CSRF_INFO: &[u8] = b"emailoctopus-connect/v2/mac/csrf";

struct RingKey {
    id: KeyId,
    secret: [u8; 32],
}

/// The keys of `TOKEN_ENCRYPTION_KEY`, first one sealing. It seals nothing
/// itself: `sealer` and `csrf_macs` give the keys for one purpose. `Debug`
/// shows key ids only.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<Vec<RingKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| k.id.to_string()))
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error(
        "empty: give base64 of 32 random bytes (make one with `emailoctopus-connect gen-key`)"
    )]
    Empty,
    #[error("key {position} is not base64 of exactly 32 bytes (make one with `emailoctopus-connect gen-key`)")]
    Malformed { position: usize },
    #[error("key {position} is listed twice")]
    Duplicate { position: usize },
}

/// Why a sealed value did not open. Deliberately says nothing about the contents.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the sealed value is truncated or of an unknown version")]
    Malformed,
    #[error("sealed under key {0}, which is not in TOKEN_ENCRYPTION_KEY")]
    UnknownKey(KeyId),
    #[error("the sealed value failed authentication (tampered, or bound to something else)")]
    Forged,
}

/// Prints a fresh key for `TOKEN_ENCRYPTION_KEY`.
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    STANDARD.encode(key)
}

impl KeyRing {
    /// Parses a comma-separated list of base64 keys, each exactly 32 bytes.
    pub fn parse(raw: &str) -> Result<Self, KeyRingError> {
        let mut keys: Vec<RingKey> = Vec::new();
        for (index, part) in raw.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let position = index + 1;
            let secret: [u8; 32] = STANDARD
                .decode(part)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(KeyRingError::Malformed { position })?;
            let key = RingKey::new(secret);
            if keys.iter().any(|k| k.id == key.id) {
                return Err(KeyRingError::Duplicate { position });
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// A one-key ring made for this run only (the sandbox).
    pub fn generate() -> Self {
        Self::parse(&generate_key()).expect("a generated key is well formed")
    }

    /// The AEAD keys for `purpose`, first one sealing.
    pub fn sealer(&self, purpose: Purpose) -> Sealer {
        let keys = self
            .keys
            .iter()
            .map(|key| SealKey {
                id: key.id,
                cipher: Aes256Gcm::new_from_slice(&key.subkey(purpose.info()))
                    .expect("a subkey is 32 bytes"),
                legacy: (purpose == Purpose::Credentials)
                    .then(|| Aes256Gcm::new_from_slice(&key.secret).expect("the key is 32 bytes")),
            })
            .collect();
        Sealer {
            keys: Arc::new(keys),
        }
    }

    /// The MAC keys for CSRF tokens, first one signing.
    pub fn csrf_macs(&self) -> MacKeys {
        MacKeys {
            keys: Arc::new(self.keys.iter().map(|k| k.subkey(CSRF_INFO)).collect()),
        }
    }
}

impl RingKey {
    fn new(secret: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"emailoctopus-connect key id\0")
            .chain_update(secret)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            id: KeyId(id),
            secret,
        }
    }

    /// HKDF-SHA256 of this key for `info` (RFC 5869; no salt: the key is uniform).
    fn subkey(&self, info: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, &self.secret)
            .expand(info, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        out
    }
}

struct SealKey {
    id: KeyId,
    cipher: Aes256Gcm,
    /// The ring key itself, for version-1 credentials.
    legacy: Option<Aes256Gcm>,
}

/// Seals and opens the values of one purpose. `Debug` shows key ids only.
#[derive(Clone)]
pub struct Sealer {
    keys: Arc<Vec<SealKey>>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| k.id.to_string()))
            .finish()
    }
}

impl Sealer {
    /// Encrypts `plaintext` under the first key's subkey, authenticating `aad` with it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of a short message cannot fail");
        let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&key.id.0);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts a value sealed by any key of the ring under the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (version, key_id) = sealed_header(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(CryptoError::UnknownKey(key_id))?;
        let cipher = match version {
            VERSION => &key.cipher,
            _ => key.legacy.as_ref().ok_or(CryptoError::Malformed)?,
        };
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Forged)
    }

    /// True when `sealed` is in the current form under the first key
    /// (nothing for `rekey` to do).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed_header(sealed).is_ok_and(|(version, id)| version == VERSION && id == self.keys[0].id)
    }
}

fn sealed_header(sealed: &[u8]) -> Result<(u8, KeyId), CryptoError> {
    if sealed.len() < HEADER_LEN + 16 || !matches!(sealed[0], VERSION | LEGACY_VERSION) {
        return Err(CryptoError::Malformed);
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
    Ok((sealed[0], KeyId(id)))
}

/// HMAC-SHA256 keys for one purpose, first one signing, any verifying (so a
/// token made before a key rotation still checks).
#[derive(Clone)]
pub struct MacKeys {
    keys: Arc<Vec<[u8; 32]>>,
}

impl fmt::Debug for MacKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacKeys({} keys)", self.keys.len())
    }
}

impl MacKeys {
    fn mac(key: &[u8; 32], message: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(message);
        mac
    }

    /// The tag of `message` under the first key.
    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        Self::mac(&self.keys[0], message)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `tag` is `message`'s tag under any key, compared in constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        self.keys
            .iter()
            .any(|key| Self::mac(key, message).verify_slice(tag).is_ok())
    }
}

/// SHA-256 as lowercase hex: how single-use tokens are looked up without storing them.
pub fn sha256_hex(input: &[u8]) -> String {
    to_hex(&Sha256::digest(input))
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect()
}

/// Compares two secrets in time independent of where they differ, and of
/// their lengths (both are hashed first).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    SecretDigest::of(b).matches(a)
}

/// A secret kept only as its SHA-256, to compare what is presented against
/// it as `secrets_equal` does, hashing once per comparison instead of twice.
#[derive(Clone)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub fn of(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        Sha256::digest(presented).ct_eq(&self.0).into()
    }

    /// The digest itself: binds what is sealed to this secret (as associated
    /// data), so that a new secret makes everything sealed under the old one
    /// unreadable. A SHA-256 of a high-entropy token reveals nothing of it.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

/// A fresh URL-safe random token of 32 bytes (256 bits) from the OS CSPRNG.
pub fn random_token() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_digest_matches_its_secret_only() {
        let digest = SecretDigest::of(b"fixture-admin-token");
        assert!(digest.matches(b"fixture-admin-token"));
        for other in [&b""[..], b"fixture-admin-toke", b"fixture-admin-tokenX"] {
            assert!(!digest.matches(other));
        }
    }

    fn ring(keys: &[&str]) -> KeyRing {
        KeyRing::parse(&keys.join(",")).unwrap()
    }

    /// What the server wrote before subkeys: sealed under the ring key itself.
    fn legacy_seal(key: &str, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let secret: [u8; 32] = STANDARD.decode(key).unwrap().try_into().unwrap();
        let id = RingKey::new(secret).id;
        let nonce = [7u8; NONCE_LEN];
        let cipher = Aes256Gcm::new_from_slice(&secret).unwrap();
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap();
        [&[LEGACY_VERSION][..], &id.0, &nonce, &ciphertext].concat()
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_associated_data() {
        let sealer = KeyRing::generate().sealer(Purpose::Credentials);
        let sealed = sealer.seal(b"token", b"connection a");
        assert_eq!(sealer.open(&sealed, b"connection a").unwrap(), b"token");
        assert_eq!(
            sealer.open(&sealed, b"connection b"),
            Err(CryptoError::Forged)
        );
    }

    #[test]
    fn each_purpose_has_its_own_key() {
        let keys = KeyRing::generate();
        let credentials = keys.sealer(Purpose::Credentials);
        let flows = keys.sealer(Purpose::FlowCookies);
        let sealed = credentials.seal(b"token", b"ad");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(flows.open(&sealed, b"ad"), Err(CryptoError::Forged));
        assert_eq!(
            credentials.open(&flows.seal(b"flow", b"ad"), b"ad"),
            Err(CryptoError::Forged)
        );
        // A CSRF MAC is not the AEAD of either, and verifies only its message.
        let tag = keys.csrf_macs().sign(b"message");
        assert!(keys.csrf_macs().verify(b"message", &tag));
        assert!(!keys.csrf_macs().verify(b"messagf", &tag));
        assert!(!KeyRing::generate().csrf_macs().verify(b"message", &tag));
    }

    #[test]
    fn credentials_sealed_before_subkeys_still_open_and_are_not_current() {
        let key = generate_key();
        let old = legacy_seal(&key, b"token", b"ad");
        let credentials = ring(&[&key]).sealer(Purpose::Credentials);
        assert_eq!(credentials.open(&old, b"ad").unwrap(), b"token");
        assert!(!credentials.is_current(&old));
        assert!(credentials.is_current(&credentials.seal(b"token", b"ad")));
        // Only credentials were ever sealed that way.
        let flows = ring(&[&key]).sealer(Purpose::FlowCookies);
        assert_eq!(flows.open(&old, b"ad"), Err(CryptoError::Malformed));
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let sealer = KeyRing::generate().sealer(Purpose::Credentials);
        let sealed = sealer.seal(b"token", b"ad");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(sealer.open(&tampered, b"ad").is_err(), "byte {i}");
        }
        assert_eq!(
            sealer.open(&sealed[..10], b"ad"),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let (old, new) = (generate_key(), generate_key());
        let sealed_old = ring(&[&old])
            .sealer(Purpose::Credentials)
            .seal(b"secret", b"ad");
        let rotated = ring(&[&new, &old]).sealer(Purpose::Credentials);
        assert_eq!(rotated.open(&sealed_old, b"ad").unwrap(), b"secret");
        assert!(!rotated.is_current(&sealed_old));
        assert!(rotated.is_current(&rotated.seal(b"x", b"ad")));
        assert!(matches!(
            ring(&[&new])
                .sealer(Purpose::Credentials)
                .open(&sealed_old, b"ad"),
            Err(CryptoError::UnknownKey(_))
        ));
        let tag = ring(&[&old]).csrf_macs().sign(b"m");
        assert!(ring(&[&new, &old]).csrf_macs().verify(b"m", &tag));
    }

    #[test]
    fn malformed_rings_are_refused_with_their_position() {
        assert_eq!(KeyRing::parse("").unwrap_err(), KeyRingError::Empty);
        assert_eq!(
            KeyRing::parse("c2hvcnQ=").unwrap_err(),
            KeyRingError::Malformed { position: 1 }
        );
        let key = generate_key();
        assert_eq!(
            KeyRing::parse(&format!("{key},{key}")).unwrap_err(),
            KeyRingError::Duplicate { position: 2 }
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = generate_key();
        let shown = format!("{:?}", ring(&[&key]));
        assert!(!shown.contains(&key[..8]));
    }
}
