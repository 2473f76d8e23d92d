//! DNS rebinding: a page whose own name now resolves to this listener sends
//! its name as `Host`. The browser routes answer only for the server's own
//! host names; the backend API and health checks are unaffected, except in
//! the sandbox, which answers nothing for another name.

use super::support::raw;
use crate::on_both_backends;
use crate::support::{start, Backend, ADMIN_TOKEN};

on_both_backends!(browser_routes_answer_421_for_a_host_that_is_not_theirs);

async fn browser_routes_answer_421_for_a_host_that_is_not_theirs(backend: Backend) {
    let (_provider, _db, app) = start(
        backend,
        &["--open-connect=true", "--allowed-hosts=connect.example.com"],
    )
    .await;
    let port = app.url.rsplit(':').next().unwrap().to_owned();
    let form = "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 25\r\n\r\napi_key=k&csrf_token=abcd";
    let requests = |host: &str| {
        [
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            format!("GET /auth HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            format!("GET /callback?state=s&code=c HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            format!("POST /connect/api-key HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{form}"),
            format!("POST /disconnect HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{form}"),
        ]
    };
    for host in [
        format!("rebound.evil.example:{port}"),
        "rebound.evil.example".to_owned(),
        format!("connect.example.com.evil.example:{port}"),
        format!("127.0.0.2:{port}"),
    ] {
        for request in requests(&host) {
            let (status, _, body) = raw(&app, request.as_bytes()).await;
            let first_line = request.lines().next().unwrap();
            assert_eq!(status, 421, "{first_line} for {host}");
            assert!(body.contains("answers only at its own address"), "{body}");
        }
    }
    // Its own names: the listen address, localhost, and ALLOWED_HOSTS on any port.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "connect.example.com".to_owned(),
        "CONNECT.example.com:8443".to_owned(),
    ] {
        let page = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        assert_eq!(raw(&app, page.as_bytes()).await.0, 200, "{host}");
        let auth = format!("GET /auth HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        assert!(
            (300..400).contains(&raw(&app, auth.as_bytes()).await.0),
            "{host}"
        );
    }
    // The backend API and health checks do not depend on the name they are called by.
    let health = "GET /healthz HTTP/1.1\r\nHost: rebound.evil.example\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(&app, health.as_bytes()).await.0, 200);
    let api = format!(
        "GET /connections HTTP/1.1\r\nHost: rebound.evil.example\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw(&app, api.as_bytes()).await.0, 200);
}

/// In the sandbox every route shows or takes this run's secrets (the banner
/// names the admin token), so all of them answer only for the server's names.
#[tokio::test]
async fn the_sandbox_answers_421_for_a_host_that_is_not_its_own() {
    let app = crate::support::TestApp::sandbox(&[]).await;
    let port = app.url.rsplit(':').next().unwrap().to_owned();
    let get = |path: &str, host: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let paths = [
        "/",
        "/sandbox/oauth/authorize",
        "/sandbox/api/lists",
        "/healthz",
    ];
    for host in [
        format!("rebound.evil.example:{port}"),
        format!("127.0.0.2:{port}"),
    ] {
        for path in paths {
            let (status, _, body) = raw(&app, get(path, &host).as_bytes()).await;
            assert_eq!(status, 421, "{path} for {host}");
            assert!(!body.contains(&app.admin_token), "{path}: {body}");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        for path in paths {
            let status = raw(&app, get(path, &host).as_bytes()).await.0;
            assert_ne!(status, 421, "{path} for {host}");
        }
    }
}
