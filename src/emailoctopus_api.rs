//! The EmailOctopus API (or the sandbox's fake of it) as this server uses it:
//! checking an API key before it is stored, and forwarding proxied calls.

use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::http_client::OutboundError;

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error("the API refused the key (HTTP {0})")]
    Refused(u16),
    #[error("the API answered HTTP {0}")]
    Failed(u16),
    #[error("the API at {0}")]
    Unreachable(#[from] OutboundError),
}

#[derive(Clone)]
pub struct EmailOctopusApi {
    http: reqwest::Client,
    base: Url,
}

impl EmailOctopusApi {
    pub fn new(http: reqwest::Client, base: Url) -> Self {
        Self { http, base }
    }

    /// The API's host name, for log lines.
    pub fn host(&self) -> &str {
        self.base.host_str().unwrap_or("upstream")
    }

    /// `base` joined with a relative path (keeping the base's own path) and
    /// a query. Set on a copy of the parsed base rather than parsed whole
    /// again: every proxied call makes one.
    pub fn url_for(&self, path: &str, query: Option<&str>) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/{}",
            self.base.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        ));
        url.set_query(query);
        url
    }

    /// A key is good when `GET {API_BASE_URL}/lists` accepts it.
    pub async fn check_key(&self, key: &SecretString) -> Result<(), KeyCheckError> {
        let answer = self
            .http
            .get(self.url_for("lists", Some("limit=1")))
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

    /// Sends one proxied request with `credential` as the bearer. `path` was
    /// checked by the proxy; redirects are not followed (the shared client's policy).
    pub async fn forward(
        &self,
        request: &ForwardRequest,
        credential: &SecretString,
    ) -> Result<reqwest::Response, OutboundError> {
        let url = self.url_for(&request.path, request.query.as_deref());
        Ok(self
            .http
            .request(request.method.clone(), url)
            .headers(request.headers.clone())
            .bearer_auth(credential.expose_secret())
            .body(request.body.clone())
            .send()
            .await?)
    }
}

/// A request the proxy sends upstream: already filtered, body buffered so a
/// retry after a refresh can send it again.
pub struct ForwardRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_go_under_the_base_path_with_their_query() {
        for (base, path, query, expected) in [
            (
                "http://api.example",
                "lists",
                None,
                "http://api.example/lists",
            ),
            (
                "http://api.example/",
                "/lists",
                Some("limit=1"),
                "http://api.example/lists?limit=1",
            ),
            (
                "https://api.example/v2",
                "lists/a%2Fb/contacts",
                None,
                "https://api.example/v2/lists/a%2Fb/contacts",
            ),
            (
                "https://api.example/v2/",
                "lists",
                Some("q=a%20b&x"),
                "https://api.example/v2/lists?q=a%20b&x",
            ),
        ] {
            let api = EmailOctopusApi::new(reqwest::Client::new(), Url::parse(base).unwrap());
            let url = api.url_for(path, query);
            assert_eq!(url.as_str(), expected);
            assert_eq!(
                Url::parse(expected).unwrap(),
                url,
                "as a parse would make it"
            );
        }
    }
}
