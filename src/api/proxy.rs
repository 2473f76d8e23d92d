//! `ANY /connections/{id}/api/{*path}`: forwards a call to `API_BASE_URL`
//! with the connection's credential. Only allowlisted headers go out; the
//! answer comes back streamed, less hop-by-hop headers and `Set-Cookie`.
//!
//! Request bodies (up to 10 MiB) are buffered so that the one retry after an
//! upstream 401 can send them again; response bodies stream.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::auth::AdminAuth;
use super::connections::connection_id;
use super::error::ApiError;
use super::proxy_path;
use crate::api_client::ForwardRequest;
use crate::domain::ConnectionKind;
use crate::state::AppState;

/// The proxy streams bodies up to this size, both ways.
pub const MAX_PROXY_BODY: usize = 10 * 1024 * 1024;

/// The only request headers that reach the upstream.
static FORWARDED_REQUEST_HEADERS: [HeaderName; 5] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    HeaderName::from_static("x-request-id"),
];

/// RFC 9110 §7.6.1 hop-by-hop headers, and `Set-Cookie`, which would set a
/// cookie for this server's origin.
static DROPPED_RESPONSE_HEADERS: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::SET_COOKIE,
];

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
    let request = ForwardRequest {
        method,
        path: path.to_owned(),
        query: uri.query().map(str::to_owned),
        headers: forwarded_headers(&headers)?,
        body: axum::body::to_bytes(body, MAX_PROXY_BODY)
            .await
            .map_err(|_| ApiError::TooLarge)?,
    };
    let credential = state.connections.fresh_credential(&id).await?;
    let mut answer = state.api.forward(&request, &credential.secret).await?;
    // Once, and only for an OAuth token: a refresh cannot fix a refused API key.
    if answer.status() == StatusCode::UNAUTHORIZED && credential.kind == ConnectionKind::Oauth {
        if let Some(renewed) = state
            .connections
            .refresh_after_rejection(&id, credential.version)
            .await?
        {
            answer = state.api.forward(&request, &renewed.secret).await?;
        }
    }
    state.metrics.proxy_request(answer.status().as_u16());
    stream_back(answer)
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
        let canonical = name.as_str().replace('_', "-");
        let Some(allowed) = FORWARDED_REQUEST_HEADERS
            .iter()
            .find(|h| h.as_str() == canonical)
        else {
            continue;
        };
        if canonical != name.as_str() && inbound.contains_key(allowed) {
            return Err(ApiError::BadRequest("a header is sent under two spellings"));
        }
        out.append(allowed.clone(), value.clone());
    }
    Ok(out)
}

fn stream_back(answer: reqwest::Response) -> Result<Response, ApiError> {
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
        if !DROPPED_RESPONSE_HEADERS.contains(name)
            && !named_by_connection.iter().any(|n| n == name.as_str())
        {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut seen = 0usize;
    let body = answer.bytes_stream().map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len();
        if seen > MAX_PROXY_BODY {
            // Cuts the answer off: the client sees an incomplete body, not a wrong one.
            return Err(std::io::Error::other("upstream answer over 10 MiB").into());
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(chunk)
    });
    Ok((status, headers, Body::from_stream(body)).into_response())
}
