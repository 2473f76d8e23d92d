//! `EventId`: an event's stable name, the same on every delivery of it.

use std::fmt;

use serde::Serialize;

use crate::crypto::random_token;

/// `evt_` and up to 64 URL-safe characters: a receiver drops a delivery
/// whose id it has seen (`webhook-id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EventId(String);

const PREFIX: &str = "evt_";

impl EventId {
    pub fn new() -> Self {
        Self(format!("{PREFIX}{}", random_token()))
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
