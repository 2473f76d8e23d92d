//! The EmailOctopus API (or the sandbox's fake of it) as this server uses it:
//! checking an API key before it is stored.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::http_client::OutboundError;

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error("the API refused the key (HTTP {0})")]
    Refused(u16),
    #[error("the API answered HTTP {0}")]
    Failed(u16),
    #[error("the API {0}")]
    Unreachable(#[from] OutboundError),
}

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
}

impl ApiClient {
    pub fn new(http: reqwest::Client, base: Url) -> Self {
        Self { http, base }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` joined with a relative path, keeping the base's own path.
    pub fn url_for(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.base.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// A key is good when `GET {API_BASE_URL}/lists` accepts it.
    pub async fn check_key(&self, key: &SecretString) -> Result<(), KeyCheckError> {
        let answer = self
            .http
            .get(self.url_for("lists"))
            .query(&[("limit", "1")])
            .bearer_auth(key.expose_secret())
            .send()
            .await
            .map_err(OutboundError::from)?;
        let status = answer.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(KeyCheckError::Refused(status.as_u16())),
            other => Err(KeyCheckError::Failed(other)),
        }
    }
}
