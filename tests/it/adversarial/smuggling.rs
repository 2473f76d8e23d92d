//! Smuggling through the proxy: one header under two spellings, and an
//! absolute-form target that names another host.

use super::support::raw;
use crate::support::{start, Backend, ADMIN_TOKEN};

#[tokio::test]
async fn proxy_header_spellings_and_absolute_targets_do_not_smuggle() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    app.connect_api_key("p").await;
    let before = provider.control.lock().unwrap().recorded.len();
    // One allowlisted header under two spellings: refused, not guessed.
    for (first, second) in [
        ("Content-Type: application/json", "content_type: text/html"),
        ("X-Request-Id: a", "x_request_id: b"),
        ("If-None-Match: \"a\"", "IF_NONE_MATCH: \"b\""),
    ] {
        let request = format!("GET /connections/p/api/lists/1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n{first}\r\n{second}\r\nConnection: close\r\n\r\n");
        let (status, head, body) = raw(&app, request.as_bytes()).await;
        assert_eq!(status, 400, "{first} + {second}");
        assert!(head.contains("application/problem+json"));
        assert!(body.contains("two spellings"), "{body}");
    }
    assert_eq!(provider.control.lock().unwrap().recorded.len(), before);

    // An absolute-form target names another host: the call still goes only
    // to API_BASE_URL, and nothing the client names on the side goes along.
    let request = format!(
        "GET http://evil.example/connections/p/api/lists/2 HTTP/1.1\r\nHost: evil.example\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n\
         X-HTTP-Method-Override: DELETE\r\nCookie_: s=victim\r\nProxy-Authorization: Basic c211Z2dsZWQ=\r\n\
         Connection: close\r\n\r\n"
    );
    let (status, _, body) = raw(&app, request.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let upstream = provider.recorded("/api/lists/2").pop().unwrap();
    assert_eq!(upstream.method, "GET");
    assert_ne!(upstream.header("host"), Some("evil.example"));
    for name in [
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "cookie",
        "cookie_",
        "proxy-authorization",
    ] {
        assert!(
            upstream.headers.get(name).is_none(),
            "{name} reached the upstream"
        );
    }
}
