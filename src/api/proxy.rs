//! `ANY /connections/{id}/api/{*path}`: forwards a call to `API_BASE_URL`
//! with the connection's credential. Only allowlisted headers go out, and
//! only allowlisted ones come back; the answer streams back, never cached,
//! within an overall deadline.
//!
//! Request bodies (up to 10 MiB) are buffered so that the one retry after an
//! upstream 401 can send them again; response bodies stream. Every call
//! sent takes a turn from the connection's bucket first (`pacing.rs`); a
//! caller may ask for retries (`proxy_retry.rs`), all within the deadline.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;
use url::Url;

use super::auth::AdminAuth;
use super::connections::connection_id;
use super::error::{ApiError, Problem};
use super::openapi::{NoSuchConnection, Unauthorized};
use super::pacing::{Pacing, PacingSettings};
use super::proxy_path;
use super::proxy_retry::Retries;
use crate::checked::ConnectionId;
use crate::config::ProxyPacing;
use crate::connections::Credential;
use crate::emailoctopus_api::ForwardRequest;
use crate::http_client::OutboundError;
use crate::server;
use crate::state::AppState;

/// The proxy streams bodies up to this size, both ways.
pub const MAX_PROXY_BODY: usize = 10 * 1024 * 1024;

/// How long a proxied call may take, its answer's body included: three
/// provider timeouts (a refresh, the call, and the retry after a 401), but
/// always a few seconds under the server's limit for a whole request, so
/// that a slow API gets its 504 problem rather than that limit's bare 408.
pub fn deadline_for(provider_timeout: Duration) -> Duration {
    (provider_timeout * 3).min(server::SLOW_REQUEST_LIMIT.saturating_sub(DEADLINE_MARGIN))
}

/// What the proxy leaves of the server's request limit.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The longest a call waits for its connection's turn: long enough to ride
/// out a burst at EmailOctopus's refill, short enough that a backend hears
/// back soon.
const MAX_PACED_WAIT: Duration = Duration::from_secs(10);

/// The pacing the settings ask for. A call waits at most one provider
/// timeout less than the deadline, so that it still has time to be sent.
pub fn pacing_for(settings: &ProxyPacing, provider_timeout: Duration) -> Pacing {
    let room = deadline_for(provider_timeout).saturating_sub(provider_timeout);
    Pacing::new(PacingSettings::within(
        settings.burst,
        settings.rate_per_sec,
        MAX_PACED_WAIT.min(room),
    ))
}

/// The only request headers that reach the upstream.
static FORWARDED_REQUEST_HEADERS: [HeaderName; 5] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    HeaderName::from_static("x-request-id"),
];

/// The only upstream response headers that come back. Everything else is
/// left behind: the answer is served from this server's origin, so a
/// `Set-Cookie`, HSTS, `Clear-Site-Data`, `Alt-Svc`, `Refresh` or CORS header
/// would act on this server. (`Link` is left out too: it can make a browser
/// preload or prefetch on this origin's authority, and the API does not need it.)
static PASSED_RESPONSE_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::ETAG,
    header::LAST_MODIFIED,
    header::RETRY_AFTER,
];

/// EmailOctopus's rate-limit headers, passed through by prefix.
const RATE_LIMIT_PREFIX: &str = "x-ratelimiting-";

/// Forwards a call to `API_BASE_URL/{path}` with the connection's credential.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/connections/{id}/api/{path}",
    tag = "proxy",
    params(
        ("id" = String, Path, description = "The connection's id"),
        ("path" = String, Path, description = "The API path, slashes included; dot segments, encoded slashes and backslashes are refused"),
        ("X-Retries" = Option<u32>, Header, description = "Retries (0 to 5, default 0) after no answer, a 5xx or a 429, each after the API's Retry-After or X-RateLimiting-Retry-After, else an exponential backoff from 250 ms, every wait at most 5 s and all within the proxy's deadline; each retry reads the credential again. Only GET, HEAD, PUT, DELETE and OPTIONS are retried, unless X-Retries-Unsafe is true", minimum = 0, maximum = 5),
        ("X-Retries-Unsafe" = Option<bool>, Header, description = "`true` lets X-Retries retry POST and PATCH, which may then act twice"),
    ),
    request_body(content = inline(serde_json::Value), description = "Passed on as it is, up to 10 MiB", content_type = "application/json"),
    responses(
        (status = "default", description = "The API's answer: its status and body, with Content-Type, Content-Length, Content-Encoding, ETag, Last-Modified, Retry-After and X-RateLimiting-* only", body = inline(serde_json::Value), content_type = "application/json"),
        (status = 400, description = "A path that would leave API_BASE_URL", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NoSuchConnection),
        (status = 409, description = "The connection needs re-authorization", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A body over 10 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed X-Retries or X-Retries-Unsafe; nothing was sent", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The connection's next turn under its pacing (PROXY_BURST, PROXY_RATE_PER_SEC) is too far off; the call was not sent. (The API's own 429 comes back as the default answer.)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Whole seconds until the connection's next turn"))),
        (status = 502, description = "The API or the provider failed", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The API did not answer in time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_bearer" = []))
)]
pub async fn forward(
    _: AdminAuth,
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (raw_id, raw_path) =
        split_proxy_path(uri.path()).ok_or(ApiError::BadRequest("not a proxy path"))?;
    let id = connection_id(raw_id)?;
    let path = proxy_path::check(raw_path).map_err(ApiError::BadPath)?;
    let retries = Retries::asked(&method, &headers)?;
    let request = ForwardRequest {
        method,
        path: path.to_owned(),
        query: uri.query().map(str::to_owned),
        headers: forwarded_headers(&headers)?,
        body: axum::body::to_bytes(body, MAX_PROXY_BODY)
            .await
            .map_err(|_| ApiError::TooLarge)?,
    };
    let deadline = Instant::now() + state.proxy_deadline;
    let calls = call_with_retries(&state, &id, &request, retries, deadline);
    let answer = tokio::time::timeout_at(deadline, calls)
        .await
        .map_err(|_| {
            ApiError::Upstream(OutboundError::Timeout {
                host: state.api.host().to_owned(),
            })
        })??;
    state.metrics.proxy_request(answer.status().as_u16());
    stream_back(answer, &state.public_url, deadline)
}

/// Calls until an outcome stands: the retries are spent, the outcome is
/// not worth another try, or the wait before one would not end before the
/// deadline (the last answer then comes back as it is, not a 504).
async fn call_with_retries(
    state: &AppState,
    id: &ConnectionId,
    request: &ForwardRequest,
    mut retries: Retries,
    deadline: Instant,
) -> Result<reqwest::Response, ApiError> {
    let mut attempt = 0;
    loop {
        let outcome = call_upstream(state, id, request, attempt).await;
        match retries.after(&outcome) {
            Some(wait) if Instant::now() + wait < deadline => tokio::time::sleep(wait).await,
            _ => return outcome,
        }
        attempt += 1;
    }
}

/// One attempt (`attempt` 0 is the first): the credential as it is now (a
/// retry may find it renewed), and once more after a refusal the
/// connection's rules say is worth it.
async fn call_upstream(
    state: &AppState,
    id: &ConnectionId,
    request: &ForwardRequest,
    attempt: u32,
) -> Result<reqwest::Response, ApiError> {
    let credential = state.connections.fresh_credential(id).await?;
    if attempt > 0 {
        state.metrics.proxy_retry(credential.kind);
    }
    let answer = paced_send(state, id, request, &credential).await?;
    // Once: the connection's rules say whether a refusal is worth a retry.
    match state
        .connections
        .after_api_answer(id, &credential, answer.status())
        .await?
    {
        Some(renewed) => paced_send(state, id, request, &renewed).await,
        None => Ok(answer),
    }
}

/// Sends one call upstream with `credential` once the connection's turn has come.
async fn paced_send(
    state: &AppState,
    id: &ConnectionId,
    request: &ForwardRequest,
    credential: &Credential,
) -> Result<reqwest::Response, ApiError> {
    match state.pacing.turn(id).await {
        Ok(waited) if !waited.is_zero() => state.metrics.proxy_paced_wait(credential.kind, waited),
        Ok(_) => {}
        Err(busy) => {
            state.metrics.proxy_paced_refusal(credential.kind);
            return Err(ApiError::Paced(busy.retry_after));
        }
    }
    Ok(state.api.forward(request, &credential.secret).await?)
}

/// `/connections/{id}/api/{rest}` → (`id`, `rest`), both still percent-encoded.
fn split_proxy_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/connections/")?;
    let (id, rest) = rest.split_once('/')?;
    Some((id, rest.strip_prefix("api/")?))
}

/// Keeps the allowlisted headers, matching names case-insensitively with `_`
/// read as `-`. Two spellings of one allowlisted header are refused rather
/// than guessed between.
fn forwarded_headers(inbound: &HeaderMap) -> Result<HeaderMap, ApiError> {
    let mut out = HeaderMap::new();
    for (name, value) in inbound {
        let Some(allowed) = FORWARDED_REQUEST_HEADERS
            .iter()
            .find(|h| spelled_as(h.as_str(), name.as_str()))
        else {
            continue;
        };
        if allowed != name && inbound.contains_key(allowed) {
            return Err(ApiError::BadRequest("a header is sent under two spellings"));
        }
        out.append(allowed.clone(), value.clone());
    }
    Ok(out)
}

/// Whether `given` (lowercase, as every parsed header name is) is `allowed`
/// with any of its `-` written as `_`.
fn spelled_as(allowed: &str, given: &str) -> bool {
    allowed.len() == given.len()
        && allowed
            .bytes()
            .zip(given.bytes())
            .all(|(a, g)| a == g || (a == b'-' && g == b'_'))
}

/// The upstream's answer as ours: allowlisted headers, `Location` only as an
/// absolute URL on the API, never cached, and cut off at `deadline`.
fn stream_back(
    answer: reqwest::Response,
    this_server: &Url,
    deadline: Instant,
) -> Result<Response, ApiError> {
    if answer
        .content_length()
        .is_some_and(|len| len > MAX_PROXY_BODY as u64)
    {
        return Err(ApiError::UpstreamTooLarge);
    }
    let status = answer.status();
    // Headers the upstream's `Connection` header names are hop-by-hop too.
    let named_by_connection: Vec<String> = answer
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        let passes =
            PASSED_RESPONSE_HEADERS.contains(name) || name.as_str().starts_with(RATE_LIMIT_PREFIX);
        if passes && !named_by_connection.iter().any(|n| n == name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(location) = api_location(&answer, this_server) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = capped_body(answer.bytes_stream(), deadline);
    Ok((status, headers, Body::from_stream(body)).into_response())
}

/// The upstream's `Location`, resolved against the upstream URL, kept only
/// when it stays on the API's origin (and that is not this server's), and
/// then as an absolute URL: a relative one would resolve onto this server.
fn api_location(answer: &reqwest::Response, this_server: &Url) -> Option<HeaderValue> {
    let raw = answer.headers().get(header::LOCATION)?.to_str().ok()?;
    let resolved = answer.url().join(raw).ok()?;
    let api_origin = answer.url().origin();
    if resolved.origin() != api_origin || api_origin == this_server.origin() {
        return None;
    }
    HeaderValue::from_str(resolved.as_str()).ok()
}

type BodyResult = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// The upstream body, ended with an error (the client sees an incomplete
/// body, not a wrong one) past 10 MiB or past the deadline.
fn capped_body(
    upstream: impl Stream<Item = reqwest::Result<Bytes>> + Send + Unpin + 'static,
    deadline: Instant,
) -> impl Stream<Item = BodyResult> + Send {
    futures_util::stream::unfold(Some((upstream, 0usize)), move |state| async move {
        let (mut upstream, seen) = state?;
        let next = match tokio::time::timeout_at(deadline, upstream.next()).await {
            Err(_) => return Some((Err("upstream answer past the deadline".into()), None)),
            Ok(None) => return None,
            Ok(Some(next)) => next,
        };
        match next {
            Err(error) => Some((Err(error.into()), None)),
            Ok(chunk) if seen + chunk.len() > MAX_PROXY_BODY => {
                Some((Err("upstream answer over 10 MiB".into()), None))
            }
            Ok(chunk) => {
                let seen = seen + chunk.len();
                Some((Ok(chunk), Some((upstream, seen))))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_three_provider_timeouts_within_the_request_limit() {
        assert_eq!(
            deadline_for(Duration::from_secs(5)),
            Duration::from_secs(15)
        );
        for slow in [10, 15, 60] {
            let deadline = deadline_for(Duration::from_secs(slow));
            assert!(
                deadline < server::SLOW_REQUEST_LIMIT,
                "{slow}: {deadline:?}"
            );
        }
    }
}
