//! Outbound HTTP: built once per use, redirects off (a redirect from a token
//! endpoint or the API must never carry a secret elsewhere), timeouts on,
//! and provider answers read only up to a cap.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

/// Larger answers from a provider are refused rather than buffered.
pub const MAX_PROVIDER_ANSWER: usize = 1024 * 1024;

/// For the provider and webhooks: each exchange must be done within `timeout`.
pub fn build(timeout: Duration) -> reqwest::Client {
    builder(timeout)
        .timeout(timeout)
        .build()
        .expect("the TLS backend initialises")
}

/// For the API and its proxy: answers of up to 10 MiB stream back for as
/// long as they take, as long as each read makes progress within `idle`.
pub fn build_streaming(idle: Duration) -> reqwest::Client {
    builder(idle)
        .read_timeout(idle)
        .build()
        .expect("the TLS backend initialises")
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("emailoctopus-connect/", env!("CARGO_PKG_VERSION")))
}

/// Why an outbound request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{host}: no answer in time")]
    Timeout { host: String },
    /// The host and the reason (refused, TLS, a broken answer, ...), never the URL.
    #[error("{0}")]
    Unreachable(String),
    #[error("answered with more than {MAX_PROVIDER_ANSWER} bytes")]
    TooLarge,
}

impl From<reqwest::Error> for OutboundError {
    fn from(error: reqwest::Error) -> Self {
        // The host only: the URL may carry a query we should not log.
        let host = error
            .url()
            .and_then(|url| url.host_str())
            .unwrap_or("upstream")
            .to_owned();
        if error.is_timeout() {
            return OutboundError::Timeout { host };
        }
        OutboundError::Unreachable(format!("{host}: {}", reason(&error)))
    }
}

/// A short, fixed reason an operator can act on.
fn reason(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused",
                std::io::ErrorKind::ConnectionReset => return "connection reset",
                _ => {}
            }
        }
        let text = cause.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            return "TLS failed";
        }
        if text.contains("dns") || text.contains("failed to lookup") {
            return "name not resolved";
        }
        source = cause.source();
    }
    if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "broken answer"
    } else {
        "request failed"
    }
}

/// Reads a response body, refusing one larger than `limit`.
pub async fn read_capped(
    response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, OutboundError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(OutboundError::TooLarge);
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(OutboundError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
