//! Authenticated encryption for everything secret at rest or in a cookie.
//!
//! A sealed value is `version (1) | key id (4) | nonce (12) | AES-256-GCM ciphertext`.
//! The caller's associated data (for a token: its connection id and field) is
//! authenticated but not stored, so a value copied anywhere else fails to open.
//! The key id lets a ring of keys rotate: the first key seals, every key opens.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
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

struct RingKey {
    id: KeyId,
    cipher: Aes256Gcm,
}

/// The encryption keys, first one sealing. `Debug` shows key ids only.
#[derive(Clone)]
pub struct KeyRing {
    keys: std::sync::Arc<Vec<RingKey>>,
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
            let bytes = STANDARD
                .decode(part)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or(KeyRingError::Malformed { position })?;
            let key = RingKey::new(&bytes);
            if keys.iter().any(|k| k.id == key.id) {
                return Err(KeyRingError::Duplicate { position });
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self {
            keys: std::sync::Arc::new(keys),
        })
    }

    /// A one-key ring made for this run only (the sandbox).
    pub fn generate() -> Self {
        Self::parse(&generate_key()).expect("a generated key is well formed")
    }

    fn primary(&self) -> &RingKey {
        &self.keys[0]
    }

    /// Encrypts `plaintext` under the first key, authenticating `aad` with it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let key = self.primary();
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
        let key_id = sealed_key_id(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(CryptoError::UnknownKey(key_id))?;
        key.cipher
            .decrypt(
                Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Forged)
    }

    /// True when `sealed` was sealed by the first key (nothing to re-seal).
    pub fn is_sealed_by_primary(&self, sealed: &[u8]) -> bool {
        sealed_key_id(sealed).is_ok_and(|id| id == self.primary().id)
    }
}

fn sealed_key_id(sealed: &[u8]) -> Result<KeyId, CryptoError> {
    if sealed.len() < HEADER_LEN + 16 || sealed[0] != VERSION {
        return Err(CryptoError::Malformed);
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
    Ok(KeyId(id))
}

impl RingKey {
    fn new(bytes: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"emailoctopus-connect key id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            id: KeyId(id),
            cipher: Aes256Gcm::new_from_slice(bytes).expect("the key is 32 bytes"),
        }
    }
}

/// SHA-256 as lowercase hex: how single-use tokens are looked up without storing them.
pub fn sha256_hex(input: &[u8]) -> String {
    to_hex(&Sha256::digest(input))
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Compares two secrets in time independent of where they differ, and of
/// their lengths (both are hashed first).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
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

    fn ring(keys: &[&str]) -> KeyRing {
        KeyRing::parse(&keys.join(",")).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_associated_data() {
        let ring = KeyRing::generate();
        let sealed = ring.seal(b"token", b"connection a");
        assert_eq!(ring.open(&sealed, b"connection a").unwrap(), b"token");
        assert_eq!(
            ring.open(&sealed, b"connection b"),
            Err(CryptoError::Forged)
        );
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let ring = KeyRing::generate();
        let sealed = ring.seal(b"token", b"ad");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(ring.open(&tampered, b"ad").is_err(), "byte {i}");
        }
        assert_eq!(ring.open(&sealed[..10], b"ad"), Err(CryptoError::Malformed));
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let (old, new) = (generate_key(), generate_key());
        let sealed_old = ring(&[&old]).seal(b"secret", b"ad");
        let rotated = ring(&[&new, &old]);
        assert_eq!(rotated.open(&sealed_old, b"ad").unwrap(), b"secret");
        assert!(!rotated.is_sealed_by_primary(&sealed_old));
        assert!(rotated.is_sealed_by_primary(&rotated.seal(b"x", b"ad")));
        assert!(matches!(
            ring(&[&new]).open(&sealed_old, b"ad"),
            Err(CryptoError::UnknownKey(_))
        ));
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
