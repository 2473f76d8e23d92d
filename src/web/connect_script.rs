//! `GET /connect.js`: the ES module an app's page imports for its "Connect
//! EmailOctopus" button. A public file, so any page may load it (CORS `*`,
//! no credentials). `?v=` with its content hash (the `ETag`) makes a URL that
//! can be cached for good; without it, caches check back after five minutes.

use std::sync::LazyLock;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::crypto::sha256_hex;

const SCRIPT: &str = include_str!("../../assets/connect.js");

/// The first 16 hex digits of the script's SHA-256: its version.
static VERSION: LazyLock<String> = LazyLock::new(|| sha256_hex(SCRIPT.as_bytes())[..16].to_owned());

#[derive(Deserialize)]
pub struct ScriptQuery {
    v: Option<String>,
}

pub async fn serve(
    query: Result<Query<ScriptQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let etag = format!("\"{}\"", *VERSION);
    let pinned = query.ok().and_then(|Query(q)| q.v).as_deref() == Some(VERSION.as_str());
    let cache = if pinned {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        SCRIPT.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex digits are valid header text"),
    );
    // A module script from another origin is fetched with CORS.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    response
}
