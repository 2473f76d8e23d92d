//! `ConnectionId`: the name an app gives a connection.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A connection's name, chosen by the app: 1 to 100 of `A-Z a-z 0-9 . _ -`,
/// not starting with a dot, so it is safe in a URL path, a log line and a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{}", self.reason())]
    Invalid,
}

impl IdError {
    /// A fixed sentence: it never repeats the refused value.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid => "a connection id is 1 to 100 characters of A-Z, a-z, 0-9, '.', '_' or '-', not starting with '.'",
        }
    }
}

impl ConnectionId {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let valid = (1..=100).contains(&raw.len())
            && !raw.starts_with('.')
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::Invalid)
        }
    }

    pub fn default_connection() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConnectionId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(&raw)
    }
}

impl From<ConnectionId> for String {
    fn from(id: ConnectionId) -> String {
        id.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_path_safe() {
        for good in ["default", "user-42", "a.b_c", "A"] {
            assert!(ConnectionId::parse(good).is_ok(), "{good}");
        }
        let long = "x".repeat(101);
        for bad in ["", ".", "..", "a/b", "a b", "é", "a%2f", long.as_str()] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad}");
        }
    }
}
