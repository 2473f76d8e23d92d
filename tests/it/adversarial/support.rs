//! What several attack files use: the checks that nothing secret leaked and
//! that a browser got a clean refusal, the stored connections, and requests
//! over a bare socket.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::provider::{API_KEY, CLIENT_SECRET};
use crate::support::{FakeProvider, TestApp, ADMIN_TOKEN};

/// Fails when `text` holds anything secret: the client secret, the admin
/// token, the API key, any token the provider issued, or one of `also`.
pub(super) fn assert_no_secret(text: &str, provider: &FakeProvider, also: &[&str]) {
    let (access, refresh) = provider.live_tokens();
    let fixed = [CLIENT_SECRET, ADMIN_TOKEN, API_KEY].map(str::to_owned);
    for secret in fixed.into_iter().chain(access).chain(refresh) {
        assert!(!text.contains(&secret), "{secret} leaked into {text}");
    }
    for secret in also {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
}

/// The page a refused browser sees: its status, HTML, these words, no secret.
pub(super) async fn refused_page(
    response: reqwest::Response,
    status: StatusCode,
    words: &str,
    provider: &FakeProvider,
) -> String {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains(words), "{words:?} not in {page}");
    assert_no_secret(&page, provider, &[]);
    page
}

pub(super) async fn connections(app: &TestApp) -> Value {
    let (status, list) = app.admin().get("/connections").await;
    assert_eq!(status, StatusCode::OK);
    list["connections"].clone()
}

/// One request over a bare socket, so that it arrives exactly as written:
/// the status, the head (lower-cased) and the body of the answer.
pub(super) async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    let host = app.url.trim_start_matches("http://");
    let request = own_host(request, host);
    let request = request.as_slice();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers within 10 s")
        .ok();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, head.to_lowercase(), body.to_owned())
}

/// `request` with its `Host: t` line naming `host` instead: the browser
/// routes answer only for the server's own address, so `t` stands for it.
pub(super) fn own_host(request: &[u8], host: &str) -> Vec<u8> {
    let placeholder = b"\r\nHost: t\r\n";
    match request
        .windows(placeholder.len())
        .position(|w| w == placeholder)
    {
        Some(at) => [
            &request[..at],
            format!("\r\nHost: {host}\r\n").as_bytes(),
            &request[at + placeholder.len()..],
        ]
        .concat(),
        None => request.to_vec(),
    }
}

pub(super) fn browser_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}
