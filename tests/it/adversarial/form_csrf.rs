//! CSRF on the page's forms: a planted cookie is not adopted, a token fits
//! one cookie and one connect session, a post its browser says came from
//! elsewhere is refused, and the cookies cannot be set by a sibling domain
//! when the server is on https.

use reqwest::StatusCode;

use super::support::raw;
use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{start, Backend};

on_both_backends!(a_planted_csrf_cookie_is_replaced_and_a_token_fits_one_session_and_origin);

/// The page's `csrf_token` and the CSRF cookie it set, as `name=value`.
async fn page(app: &crate::support::TestApp, session: &str, cookie: &str) -> (String, String) {
    let page = reqwest::Client::new()
        .get(app.at(&format!("/?session={session}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let set = page
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .unwrap_or_default();
    let text = page.text().await.unwrap();
    let token = text
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (token, set)
}

async fn post_key(
    app: &crate::support::TestApp,
    cookie: &str,
    token: &str,
    session: &str,
    headers: &[(&str, &str)],
) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(app.at("/connect/api-key"))
        .header("cookie", cookie)
        .form(&[
            ("api_key", API_KEY),
            ("csrf_token", token),
            ("session", session),
        ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status()
}

async fn a_planted_csrf_cookie_is_replaced_and_a_token_fits_one_session_and_origin(
    backend: Backend,
) {
    let (_provider, _db, app) = start(backend, &[]).await;
    let (a, b) = (app.session("a").await, app.session("b").await);

    // A value we did not sign, of the right shape, is replaced, not adopted.
    let planted = format!("eoc_csrf={}", "P".repeat(43));
    let (_, set) = page(&app, &a, &planted).await;
    assert!(
        set.starts_with("eoc_csrf=") && !set.contains(&"P".repeat(43)),
        "{set}"
    );
    let (planted_token, _) = page(&app, &a, &planted).await;
    assert_eq!(
        post_key(&app, &planted, &planted_token, &a, &[]).await,
        StatusCode::FORBIDDEN
    );

    // Our own cookie is kept, and its token fits the session it was shown for.
    let (token_a, again) = page(&app, &a, &set).await;
    assert_eq!(again, "", "a cookie we signed is kept");
    assert_eq!(
        post_key(&app, &set, &token_a, &b, &[]).await,
        StatusCode::FORBIDDEN
    );

    // A post its browser says came from elsewhere is refused.
    for elsewhere in [
        [("sec-fetch-site", "cross-site")],
        [("sec-fetch-site", "same-site")],
        [("origin", "https://evil.example")],
        [("origin", "http://127.0.0.1:1")],
    ] {
        assert_eq!(
            post_key(&app, &set, &token_a, &a, &elsewhere).await,
            StatusCode::FORBIDDEN,
            "{elsewhere:?}"
        );
    }
    // `Origin: null` (what no-referrer pages send) says nothing; same-origin passes.
    let ours = [("origin", "null"), ("sec-fetch-site", "same-origin")];
    assert_eq!(
        post_key(&app, &set, &token_a, &a, &ours).await,
        StatusCode::OK
    );
    assert_eq!(app.admin().get("/connections/a").await.1["kind"], "api_key");
}

/// With an https redirect URI, both cookies are `__Host-` prefixed: Secure,
/// `Path=/`, no `Domain`, so no sibling domain or plain-http page sets them.
#[tokio::test]
async fn cookies_are_host_prefixed_when_the_redirect_uri_is_https() {
    let (_provider, _db, app) = start(
        Backend::Sqlite,
        &[
            "--redirect-uri=https://connect.example.com/callback",
            "--open-connect=true",
        ],
    )
    .await;
    for path in ["/", "/auth"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: connect.example.com\r\nConnection: close\r\n\r\n"
        );
        let (status, head, _) = raw(&app, request.as_bytes()).await;
        assert!(status < 400, "{path}: {status}");
        let cookie = head
            .lines()
            .find(|l| l.starts_with("set-cookie: "))
            .unwrap_or_else(|| panic!("{path}: no cookie in {head}"));
        // `raw` gives the head in lower case.
        assert!(cookie.starts_with("set-cookie: __host-eoc_"), "{cookie}");
        assert!(
            cookie.contains("; secure") && cookie.contains("; path=/"),
            "{cookie}"
        );
        assert!(!cookie.contains("domain="), "{cookie}");
    }
}
