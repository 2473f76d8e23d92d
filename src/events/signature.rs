//! How a delivery is signed, two ways at once: `X-Signature-256` (hex
//! HMAC-SHA256 of the body under `WEBHOOK_SECRET`), and the Standard
//! Webhooks headers, so that a receiver can use a stock verifier.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::crypto::to_hex;

/// The keys both signatures are made with. Standard Webhooks secrets are
/// written `whsec_<base64>` and its verifiers decode them; any other
/// secret signs with its own bytes both ways (a stock verifier then needs
/// its raw-key constructor).
#[derive(Clone)]
pub struct WebhookKeys {
    /// `WEBHOOK_SECRET` as written.
    whole: SecretString,
    standard: Vec<u8>,
}

const STANDARD_PREFIX: &str = "whsec_";

impl WebhookKeys {
    pub fn parse(secret: &SecretString) -> Result<Self, &'static str> {
        let written = secret.expose_secret();
        let standard = match written.strip_prefix(STANDARD_PREFIX) {
            Some(encoded) => STANDARD
                .decode(encoded)
                .ok()
                .filter(|key| !key.is_empty())
                .ok_or("a secret that starts with whsec_ must be base64 after it")?,
            None => written.as_bytes().to_vec(),
        };
        Ok(Self {
            whole: secret.clone(),
            standard,
        })
    }

    /// `X-Signature-256`: `sha256=` and the hex HMAC of the body.
    pub fn body_signature(&self, body: &[u8]) -> String {
        format!(
            "sha256={}",
            sign(self.whole.expose_secret().as_bytes(), body)
        )
    }

    /// `webhook-signature`: `v1,` and the base64 HMAC of `{id}.{timestamp}.{body}`.
    pub fn standard_signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = mac(&self.standard);
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// By hand: the keys must not print.
impl std::fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKeys(..)")
    }
}

/// Hex HMAC-SHA256 of `body` under `key`: what `X-Signature-256` carries.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(body);
    to_hex(&mac.finalize().into_bytes())
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whsec_secret_is_decoded_for_the_standard_signature_only() {
        let written = SecretString::from(format!("whsec_{}", STANDARD.encode(b"raw key")));
        let keys = WebhookKeys::parse(&written).unwrap();
        let expected = {
            let mut mac = mac(b"raw key");
            mac.update(b"evt_1.1700000000.{}");
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        };
        assert_eq!(
            keys.standard_signature("evt_1", 1_700_000_000, b"{}"),
            expected
        );
        assert_eq!(
            keys.body_signature(b"{}"),
            format!("sha256={}", sign(written.expose_secret().as_bytes(), b"{}"))
        );
    }

    #[test]
    fn a_whsec_secret_that_is_not_base64_is_refused() {
        for bad in ["whsec_", "whsec_not base64!"] {
            assert!(
                WebhookKeys::parse(&SecretString::from(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(WebhookKeys::parse(&SecretString::from("plain words")).is_ok());
    }
}
