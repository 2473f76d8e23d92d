//! What the operator's page refuses, over plain HTTP: each refusal changes
//! nothing, and the right sign-in works.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{new_key, Backend, FakeProvider, TestApp, TestDb, ADMIN_TOKEN};

/// The value of the first `name="csrf_token"` field of `page`.
pub fn form_token(page: &str) -> String {
    page.split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page has a form token")
        .to_owned()
}

/// The server, its database and the flags it was started with.
async fn start() -> (FakeProvider, TestDb, TestApp, Vec<String>) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    let app = TestApp::start(&db, &args).await;
    (provider, db, app, args)
}

/// Signs `browser` in (its cookie store keeps the session); the dashboard's text.
pub async fn sign_in(app: &TestApp, browser: &reqwest::Client) -> String {
    let page = browser.get(app.at("/admin")).send().await.unwrap();
    let token = form_token(&page.text().await.unwrap());
    let signed_in = browser
        .post(app.at("/admin/sign-in"))
        .form(&[("admin_token", ADMIN_TOKEN), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let dashboard = browser.get(app.at("/admin")).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    dashboard.text().await.unwrap()
}

#[tokio::test]
async fn a_wrong_token_a_missing_form_token_and_a_foreign_origin_are_refused() {
    let (_provider, _db, app, _) = start().await;
    app.connect_api_key("keep-me").await;
    let browser = app.browser();

    // Signed out, every page and change asks to sign in first.
    for path in [
        "/admin/connections/keep-me",
        "/admin/connections/keep-me/delete",
    ] {
        let page = browser.get(app.at(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(page.text().await.unwrap().contains("Sign in first"));
    }
    let page = browser.get(app.at("/admin")).send().await.unwrap();
    let sign_in_token = form_token(&page.text().await.unwrap());
    let wrong = browser
        .post(app.at("/admin/sign-in"))
        .form(&[
            ("admin_token", "not-the-token"),
            ("csrf_token", &sign_in_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(!wrong.text().await.unwrap().contains("not-the-token"));
    let no_csrf = browser
        .post(app.at("/admin/sign-in"))
        .form(&[("admin_token", ADMIN_TOKEN), ("csrf_token", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    assert!(no_csrf.headers().get("set-cookie").is_none());

    let dashboard = sign_in(&app, &browser).await;
    assert!(dashboard.contains("keep-me"), "{dashboard}");
    let token = form_token(&dashboard);
    let delete = app.at("/admin/connections/keep-me/delete");
    // No form token, another session's shape of token, a post from another site.
    for (form_token, origin) in [
        ("", None),
        ("AAAA", None),
        (token.as_str(), Some("https://evil.example")),
    ] {
        let mut post = browser.post(&delete).form(&[("csrf_token", form_token)]);
        if let Some(origin) = origin {
            post = post.header("origin", origin);
        }
        let refused = post.send().await.unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::FORBIDDEN,
            "{form_token} {origin:?}"
        );
    }
    let sec_fetch = browser
        .post(&delete)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(sec_fetch.status(), StatusCode::FORBIDDEN);
    // A form token from another session (another browser's sign-in) does not fit.
    let other = app.browser();
    let other_token = form_token(&sign_in(&app, &other).await);
    let foreign = browser
        .post(&delete)
        .form(&[("csrf_token", other_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.admin().get("/connections/keep-me").await.0,
        StatusCode::OK
    );

    // The right token deletes.
    let deleted = browser
        .post(&delete)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.admin().get("/connections/keep-me").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_session_ends_at_sign_out_after_eight_hours_and_with_a_new_admin_token() {
    let (_provider, db, app, args) = start().await;
    let browser = app.browser();
    let dashboard = sign_in(&app, &browser).await;
    let signed_out = browser
        .post(app.at("/admin/sign-out"))
        .form(&[("csrf_token", form_token(&dashboard))])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::OK);
    assert!(signed_out.text().await.unwrap().contains("Signed out."));
    let page = browser.get(app.at("/admin")).send().await.unwrap();
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Sign in with its admin token"));

    sign_in(&app, &browser).await;
    app.clock.advance(Duration::from_secs(8 * 3600 + 1));
    let expired = browser
        .get(app.at("/admin/connections/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);

    // A session from before ADMIN_TOKEN changed is not a session any more.
    let cookie = sign_in_by_hand(&app).await;
    let status_with = |app: &TestApp| {
        let (url, cookie) = (app.at("/admin/connections/x"), cookie.clone());
        async move {
            let client = reqwest::Client::new();
            client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        status_with(&app).await,
        StatusCode::NOT_FOUND,
        "signed in: x is not there"
    );
    app.stop().await;
    let mut argv = vec![
        "emailoctopus-connect".to_owned(),
        "--listen-addr=127.0.0.1:0".to_owned(),
        format!("--database-url={}", db.url),
        "--admin-token=another-admin-token-0123456789abcdef".to_owned(),
    ];
    argv.extend(args);
    let rotated = TestApp::start_argv(argv).await;
    assert_eq!(status_with(&rotated).await, StatusCode::FORBIDDEN);
}

/// Signs in without a cookie store; the session cookie as `name=value`.
async fn sign_in_by_hand(app: &TestApp) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(app.at("/admin")).send().await.unwrap();
    let first_cookie = |answer: &reqwest::Response| {
        let set = answer.headers()["set-cookie"].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    };
    let csrf_cookie = first_cookie(&page);
    let token = form_token(&page.text().await.unwrap());
    let signed_in = client
        .post(app.at("/admin/sign-in"))
        .header("cookie", csrf_cookie)
        .form(&[("admin_token", ADMIN_TOKEN), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    first_cookie(&signed_in)
}

#[tokio::test]
async fn without_an_admin_token_the_page_is_off() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start_argv(vec![
        "emailoctopus-connect".into(),
        "--listen-addr=127.0.0.1:0".into(),
        format!("--database-url={}", db.url),
        format!("--token-encryption-key={}", new_key()),
    ])
    .await;
    let page = reqwest::get(app.at("/admin")).await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("ADMIN_TOKEN"));
}
