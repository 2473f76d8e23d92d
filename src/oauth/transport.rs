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
    let mut answer = http::Response::builder().status(status);
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = read_capped(response, MAX_PROVIDER_ANSWER).await?;
    answer
        .body(body.to_vec())
        .map_err(|_| TransportError::Build)
}
