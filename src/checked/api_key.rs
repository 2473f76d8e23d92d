//! `ApiKey`: a pasted or posted EmailOctopus API key.

use std::fmt;

/// An API key as a person pastes it or a backend sends it: trimmed, 1 to
/// 512 characters. Holding one says nothing about whether the API takes it.
#[derive(Clone)]
pub struct ApiKey(secrecy::SecretString);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub struct ApiKeyError;

impl ApiKeyError {
    pub fn reason(&self) -> &'static str {
        "must be 1 to 512 characters"
    }
}

impl ApiKey {
    const MAX_LEN: usize = 512;

    pub fn parse(raw: &str) -> Result<Self, ApiKeyError> {
        let key = raw.trim();
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(ApiKeyError);
        }
        Ok(Self(secrecy::SecretString::from(key.to_owned())))
    }

    pub fn secret(&self) -> &secrecy::SecretString {
        &self.0
    }
}

/// By hand: the key never prints.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(..)")
    }
}
