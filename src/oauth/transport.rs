//! Carries the oauth2 crate's requests over our shared client, so every
//! provider call gets the same redirect policy, timeouts and size cap, and a
//! 5xx is a failure before the crate tries to read it as an OAuth refusal.

use std::future::Future;
use std::pin::Pin;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::http_client::{read_capped, OutboundError, MAX_PROVIDER_ANSWER};

#[derive(Debug, thiserror::Error)]
pub(super) enum TransportError {
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error("answered with HTTP {0}")]
    ServerError(u16),
    #[error("the request could not be built")]
    Build,
}

/// The shared client as the oauth2 crate's HTTP client. A named type rather
/// than a closure, so the futures it makes are `Send` for every lifetime.
pub(super) struct Transport(pub reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Transport {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(&self.0, request))
    }
}

async fn send(
    http: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, TransportError> {
    let request = reqwest::Request::try_from(request).map_err(|_| TransportError::Build)?;
    let response = http.execute(request).await.map_err(OutboundError::from)?;
    let status = response.status();
    if status.is_server_error() {
        return Err(TransportError::ServerError(status.as_u16()));
    }
    let headers = response.headers().clone();
    let body = read_capped(response, MAX_PROVIDER_ANSWER).await?;
    answer(status, &headers, &body)
}

/// What the oauth2 crate is given to read: a 5xx is a failure before it
/// tries to read it as an OAuth refusal, and an `expires_in` it could not
/// read is made readable.
fn answer(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<HttpResponse, TransportError> {
    if status.is_server_error() {
        return Err(TransportError::ServerError(status.as_u16()));
    }
    let mut answer = http::Response::builder().status(status);
    for (name, value) in headers {
        answer = answer.header(name, value);
    }
    let body = with_readable_expires_in(body).unwrap_or_else(|| body.to_vec());
    answer.body(body).map_err(|_| TransportError::Build)
}

/// An answer already received (a JSON body and its status), as the oauth2
/// crate's HTTP client: it goes through `answer` as a real one does.
pub(super) struct Received<'a> {
    pub status: http::StatusCode,
    pub body: &'a [u8],
}

impl<'c> AsyncHttpClient<'c> for Received<'_> {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, _request: HttpRequest) -> Self::Future {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Box::pin(std::future::ready(answer(self.status, &headers, self.body)))
    }
}

/// The oauth2 crate reads `expires_in` as an unsigned whole number, so a
/// negative or fractional one would make the whole answer unreadable, after
/// the provider has already rotated the refresh token. Such a value is read
/// as 0 (and the minimum lifetime applies when the tokens are stored).
/// `None` when the answer needs no change.
fn with_readable_expires_in(body: &[u8]) -> Option<Vec<u8>> {
    let mut answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let expires_in = answer.get_mut("expires_in")?;
    if !expires_in.is_number() || expires_in.is_u64() {
        return None;
    }
    let whole = expires_in.as_f64().map_or(0, |secs| secs.max(0.0) as u64);
    *expires_in = serde_json::Value::from(whole);
    serde_json::to_vec(&answer).ok()
}

#[cfg(test)]
mod tests {
    use super::with_readable_expires_in;

    #[test]
    fn negative_and_fractional_lifetimes_become_whole_seconds() {
        let read = |body: &str| {
            with_readable_expires_in(body.as_bytes()).map(|b| {
                serde_json::from_slice::<serde_json::Value>(&b).unwrap()["expires_in"].clone()
            })
        };
        assert_eq!(read(r#"{"expires_in":-5}"#), Some(0.into()));
        assert_eq!(read(r#"{"expires_in":-1e300}"#), Some(0.into()));
        assert_eq!(read(r#"{"expires_in":59.9}"#), Some(59.into()));
        assert_eq!(read(r#"{"expires_in":3600}"#), None);
        assert_eq!(
            read(r#"{"expires_in":"soon"}"#),
            None,
            "not a number stays unusable"
        );
        assert_eq!(read(r#"{"access_token":"x"}"#), None);
        assert_eq!(read("not json"), None);
    }
}
