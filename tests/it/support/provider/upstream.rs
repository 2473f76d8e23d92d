//! The proxy's upstream beyond the fake API's own routes: an echo, hostile
//! answer headers and a body that never ends.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::OriginalUri;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Echoes what it received (the path as sent, not as nested), as the proxy's upstream.
pub(super) async fn echo(method: Method, OriginalUri(uri): OriginalUri, body: Bytes) -> Response {
    let echoed = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "body": String::from_utf8_lossy(&body),
    });
    (
        [
            ("set-cookie", "upstream=1"),
            ("x-ratelimiting-remaining", "7"),
            ("retry-after", "3"),
        ],
        Json(echoed),
    )
        .into_response()
}

/// Every response header that would act on the proxy's own origin, and a
/// temporary redirect that, relative, would resolve onto the proxy.
const HOSTILE_HEADERS: [(&str, &str); 13] = [
    ("set-cookie", "upstream=1; Path=/"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("clear-site-data", "\"*\""),
    ("alt-svc", "h3=\":443\""),
    ("refresh", "0; url=https://evil.example/"),
    ("access-control-allow-origin", "*"),
    ("access-control-allow-credentials", "true"),
    ("cache-control", "public, max-age=86400"),
    ("content-security-policy", "default-src *"),
    (
        "link",
        "<https://evil.example/x.js>; rel=preload; as=script",
    ),
    ("x-ratelimiting-remaining", "7"),
    ("etag", "\"v1\""),
    ("location", "/connections/other"),
];

pub(super) async fn hostile_headers() -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    for (name, value) in HOSTILE_HEADERS {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A body that never ends: one byte every 200 ms.
pub(super) async fn trickle() -> Response {
    let bytes = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), ()))
    });
    axum::body::Body::from_stream(bytes).into_response()
}
