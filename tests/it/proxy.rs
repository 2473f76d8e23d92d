//! The API proxy: what goes out, what comes back, and what never leaves.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{start, Backend, TestApp, ADMIN_TOKEN};

on_both_backends!(
    a_call_is_forwarded_with_the_connections_credential,
    escaping_paths_are_refused_before_anything_leaves,
    an_upstream_401_leads_to_one_refresh_and_one_retry,
    only_allowlisted_answer_headers_come_back_and_none_points_here,
    a_proxied_answer_is_cut_off_at_its_deadline,
);

async fn only_allowlisted_answer_headers_come_back_and_none_points_here(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    let response = app
        .admin()
        .request(reqwest::Method::GET, "/connections/p/api/hostile-headers")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let headers = response.headers();
    for name in [
        "set-cookie",
        "strict-transport-security",
        "clear-site-data",
        "alt-svc",
        "refresh",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "link",
    ] {
        assert!(headers.get(name).is_none(), "{name} came back: {headers:?}");
    }
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'self'"));
    assert_eq!(headers["x-ratelimiting-remaining"], "7");
    assert_eq!(headers["etag"], "\"v1\"");
    // `/connections/other` would resolve onto this server; it comes back as the API's.
    assert_eq!(
        headers["location"],
        format!("{}/connections/other", provider.url).as_str()
    );
    // Every proxied answer is `no-store`, whatever the upstream says.
    let listed = app
        .admin()
        .request(reqwest::Method::GET, "/connections/p/api/lists/x")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.headers()["cache-control"], "no-store");
}

/// An upstream that keeps sending, a byte at a time, never idles long enough
/// for the idle timeout; the overall deadline (three times the provider
/// timeout, 2 s in tests) still ends the answer.
async fn a_proxied_answer_is_cut_off_at_its_deadline(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    let response = app
        .admin()
        .request(reqwest::Method::GET, "/connections/p/api/trickle")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = tokio::time::timeout(std::time::Duration::from_secs(20), response.bytes())
        .await
        .expect("the answer ends well before 20 s");
    assert!(
        body.is_err(),
        "a cut-off answer is incomplete, not complete"
    );
}

async fn a_call_is_forwarded_with_the_connections_credential(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    let response = app
        .admin()
        .request(
            reqwest::Method::POST,
            "/connections/p/api/lists/abc/contacts?limit=5&cursor=x%20y",
        )
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("x-request-id", "req-1")
        .header("cookie", "session=victim")
        .header("x-forwarded-for", "10.0.0.1")
        .header("x_forwarded_host", "evil.example")
        .header("forwarded", "for=1.2.3.4")
        .header("authorization_", "Bearer smuggled")
        .header("x-custom", "dropped")
        .body(r#"{"email_address":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "Set-Cookie came back"
    );
    assert_eq!(response.headers()["x-ratelimiting-remaining"], "7");
    assert_eq!(response.headers()["retry-after"], "3");
    let echoed: serde_json::Value = response.json().await.unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/api/lists/abc/contacts");
    assert_eq!(echoed["query"], "limit=5&cursor=x%20y");
    assert_eq!(echoed["body"], r#"{"email_address":"a@example.com"}"#);

    let upstream = provider.recorded("/api/lists/abc/contacts").pop().unwrap();
    assert_eq!(
        upstream.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(upstream.method, "POST");
    assert_eq!(upstream.query.as_deref(), Some("limit=5&cursor=x%20y"));
    assert_eq!(&upstream.body[..], br#"{"email_address":"a@example.com"}"#);
    assert_eq!(upstream.header("x-request-id"), Some("req-1"));
    assert_eq!(upstream.header("content-type"), Some("application/json"));
    for (name, value) in &upstream.headers {
        let value = value.to_str().unwrap_or("");
        assert!(
            !value.contains(ADMIN_TOKEN),
            "the admin token reached the upstream in {name}"
        );
        assert!(
            !value.contains("victim")
                && !value.contains("smuggled")
                && !value.contains("evil.example")
                && !value.contains("10.0.0.1"),
            "{name}: {value}"
        );
    }
    for name in [
        "cookie",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-custom",
    ] {
        assert!(
            upstream.headers.get(name).is_none(),
            "{name} reached the upstream"
        );
    }

    // 429 passes through untouched.
    provider.set(|c| c.upstream_status = 429);
    let limited = app
        .admin()
        .request(reqwest::Method::GET, "/connections/p/api/lists/x")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "3");
    assert_eq!(limited.headers()["x-ratelimiting-remaining"], "7");
}

async fn escaping_paths_are_refused_before_anything_leaves(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("p").await;
    let before = provider.control.lock().unwrap().recorded.len();
    for path in [
        "..%2f..%2ftoken",
        "%2e%2e/%2e%2e/token",
        "%2E%2E/token",
        "lists%2f..%2f..%2ftoken",
        "lists/%252e%252e/%252e%252e/token",
        "lists%5c..%5c..%5ctoken",
        "lists/%5c/token",
        "/evil.example/x",
        "http:%2f%2fevil.example/x",
        "lists//x",
        "lists/.%2e/x",
        "../../token",
        "lists/../../../token",
        "./lists",
        "lists\\..\\token",
    ] {
        // Sent over a bare socket: an HTTP client would normalise some of these away.
        let (status, content_type) = raw_get(&app, &format!("/connections/p/api/{path}")).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(content_type, "application/problem+json", "{path}");
    }
    assert_eq!(
        provider.control.lock().unwrap().recorded.len(),
        before,
        "a refused path reached the upstream"
    );
}

/// A GET sent over a bare TCP socket, so the path arrives exactly as written:
/// the status and the content type of the answer.
async fn raw_get(app: &TestApp, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let head = String::from_utf8_lossy(&answer).to_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .trim()
        .to_owned();
    (status, content_type)
}

async fn an_upstream_401_leads_to_one_refresh_and_one_retry(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("o").await.status(), StatusCode::OK);
    // The access token is revoked behind our back: the upstream answers 401 to it.
    let (_, token) = app.admin().get("/connections/o/access-token").await;
    provider
        .revoke(token["access_token"].as_str().unwrap())
        .await;
    let response = app
        .admin()
        .request(reqwest::Method::GET, "/connections/o/api/lists/1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(provider.token_requests("refresh_token").len(), 1);
    assert_eq!(
        provider.recorded("/api/lists/1").len(),
        2,
        "one call, one retry"
    );

    // An upstream that refuses every token: one refresh, one retry, then the 401 comes back.
    provider.set(|c| c.api_refuses_all = true);
    app.clock.advance(std::time::Duration::from_secs(31));
    let response = app
        .admin()
        .request(reqwest::Method::GET, "/connections/o/api/lists/2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        provider.token_requests("refresh_token").len(),
        2,
        "not a loop"
    );
    assert_eq!(provider.recorded("/api/lists/2").len(), 2);
    // Right after, another 401 does not start another refresh: no storm.
    let response = app
        .admin()
        .request(reqwest::Method::GET, "/connections/o/api/lists/3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(provider.token_requests("refresh_token").len(), 2);
    assert_eq!(provider.recorded("/api/lists/3").len(), 1);
}
