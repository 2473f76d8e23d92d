//! `EventId`: an event's stable name, the same on every delivery of it.

use std::fmt;

use serde::Serialize;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

/// `evt_` and up to 64 URL-safe characters: a receiver drops a delivery
/// whose id it has seen (`webhook-id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EventId(String);

const PREFIX: &str = "evt_";

impl EventId {
    /// 128 random bits: unique without coordination, and a name a receiver
    /// cannot predict. From the thread's CSPRNG (seeded by the system), not
    /// a system call per event as the secrets take.
    pub fn new() -> Self {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// `None` for anything this server could not have made.
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(PREFIX)?;
        let valid = (1..=64).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::EventId;

    #[test]
    fn a_made_id_parses_and_a_foreign_one_does_not() {
        let id = EventId::new();
        assert_eq!(EventId::parse(id.as_str()), Some(id));
        for foreign in [
            "",
            "evt_",
            "evt_a/b",
            "x_abc",
            "evt_..",
            &format!("evt_{}", "a".repeat(65)),
        ] {
            assert_eq!(EventId::parse(foreign), None, "{foreign:?}");
        }
    }
}
