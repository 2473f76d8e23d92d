//! The connect flow, start to finish.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{location, sandbox_decide, start, Backend, TestApp};

on_both_backends!(
    a_connect_session_leads_to_a_stored_connection,
    return_to_gets_a_303_after_connecting,
    two_tabs_do_not_overwrite_each_other,
    a_connect_session_is_single_use,
    auth_without_a_session_is_refused_unless_open_connect,
    return_to_must_be_on_an_allowed_origin,
    the_redirect_uri_is_sent_exactly_as_configured,
    a_browser_that_left_300_flows_unfinished_finishes_a_new_one_at_once,
);

/// Unfinished flows never lock a browser out: it keeps the newest five in one
/// cookie of at most 4000 bytes, even with the longest `return_to`.
async fn a_browser_that_left_300_flows_unfinished_finishes_a_new_one_at_once(backend: Backend) {
    let app_origin = "https://app.example.com";
    let (_provider, _db, app) =
        start(backend, &[&format!("--return-to-origins={app_origin}")]).await;
    let longest = format!("{app_origin}/{}", "x".repeat(2048 - app_origin.len() - 1));
    for return_to in [None, Some(longest.as_str())] {
        let browser = app.browser();
        let mut oldest = None;
        for started in 0..300 {
            let (status, body) = app
                .admin()
                .post(
                    "/connect-sessions",
                    serde_json::json!({"connection_id": "busy", "return_to": return_to}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let auth = browser
                .get(app.at(&format!(
                    "/auth?session={}",
                    body["token"].as_str().unwrap()
                )))
                .send()
                .await
                .unwrap();
            assert!(
                auth.status().is_redirection(),
                "flow {started}: {}",
                auth.status()
            );
            let cookies: Vec<_> = auth.headers().get_all("set-cookie").iter().collect();
            assert_eq!(cookies.len(), 1);
            assert!(cookies[0].len() <= 4096, "{} bytes", cookies[0].len());
            if started == 0 {
                let authorize = location(&auth);
                oldest = Some(location(&browser.get(authorize).send().await.unwrap()));
            }
        }
        let callback = app.begin(&browser, &app.session("busy").await).await;
        let done = browser.get(&callback).send().await.unwrap();
        assert_eq!(done.status(), StatusCode::OK, "return_to {return_to:?}");
        // The oldest flow was dropped to make room, and says so in words.
        let dropped = browser.get(oldest.unwrap()).send().await.unwrap();
        assert_eq!(dropped.status(), StatusCode::BAD_REQUEST);
    }
}

async fn the_redirect_uri_is_sent_exactly_as_configured(backend: Backend) {
    // A URL parser would lowercase the host; the provider compares character for character.
    let configured = "http://LOCALHOST:9/callback";
    let (provider, _db, app) = start(backend, &[&format!("--redirect-uri={configured}")]).await;
    let browser = app.browser();
    let session = app.session("exact").await;
    let auth = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    let authorize = url::Url::parse(&location(&auth)).unwrap();
    let sent = authorize
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(sent, configured);
    let back = browser.get(authorize.as_str()).send().await.unwrap();
    let callback = location(&back);
    let query = url::Url::parse(&callback)
        .unwrap()
        .query()
        .unwrap()
        .to_owned();
    let done = browser
        .get(app.at(&format!("/callback?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(
        provider.token_requests("authorization_code")[0].form["redirect_uri"],
        configured
    );
}

async fn a_connect_session_leads_to_a_stored_connection(backend: Backend) {
    let (provider, _db, app) = start(backend, &["--scopes=lists:read lists:write"]).await;
    let browser = app.browser();
    let session = app.session("user-1").await;

    let auth = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        auth.status(),
        StatusCode::FOUND | StatusCode::SEE_OTHER
    ));
    assert_eq!(auth.headers()["cache-control"], "no-store");
    let authorize = url::Url::parse(&location(&auth)).unwrap();
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "test-client");
    assert_eq!(query["redirect_uri"], app.at("/callback"));
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert!(query["state"].len() >= 22);
    assert_eq!(query["scope"], "lists:read lists:write");

    let cookie = auth.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/;")
            && cookie.starts_with("eoc_flows="),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-http redirect URI, no Secure: {cookie}"
    );

    let back = browser.get(authorize.as_str()).send().await.unwrap();
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("connected"));

    let exchange = &provider.token_requests("authorization_code")[0];
    assert_eq!(
        exchange.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(exchange.form["code_verifier"].len(), 43);
    assert_eq!(
        exchange.form["client_secret"],
        crate::support::provider::CLIENT_SECRET
    );

    let (status, connection) = app.admin().get("/connections/user-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(connection["kind"], "oauth");
    assert_eq!(connection["status"], "connected");
    assert!(connection["expires_at"].is_string());
    assert!(connection.get("access_token").is_none());
    let (_, list) = app.admin().get("/connections").await;
    assert_eq!(list["connections"].as_array().unwrap().len(), 1);
}

async fn return_to_gets_a_303_after_connecting(backend: Backend) {
    let (_provider, _db, app) =
        start(backend, &["--return-to-origins=https://app.example.com"]).await;
    let (status, body) = app
        .admin()
        .post("/connect-sessions", serde_json::json!({"connection_id": "u2", "return_to": "https://app.example.com/settings?done=1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let browser = app.browser();
    let callback = app.begin(&browser, body["token"].as_str().unwrap()).await;
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "https://app.example.com/settings?done=1");
}

async fn two_tabs_do_not_overwrite_each_other(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let (first, second) = (app.session("tab-a").await, app.session("tab-b").await);
    let callback_a = app.begin(&browser, &first).await;
    let callback_b = app.begin(&browser, &second).await;
    // Finish them in the other order.
    assert_eq!(
        browser.get(callback_b).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        browser.get(callback_a).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        app.admin().get("/connections/tab-a").await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.admin().get("/connections/tab-b").await.0,
        StatusCode::OK
    );
}

async fn a_connect_session_is_single_use(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    let session = app.session("once").await;
    let browser = app.browser();
    // Viewing the page does not use it up.
    let page = browser
        .get(app.at(&format!("/?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    app.begin(&browser, &session).await;
    let again = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    let forged = browser
        .get(app.at("/auth?session=not-a-real-session-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

async fn auth_without_a_session_is_refused_unless_open_connect(backend: Backend) {
    let (_provider, _db, closed) = start(backend, &[]).await;
    let refused = closed
        .browser()
        .get(closed.at("/auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("connect link"));
    // The page about `default` still shows its status and says how to
    // connect, and offers nothing that would be refused.
    let page = closed.browser().get(closed.at("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Not connected yet") && page.contains("one-time link"),
        "{page}"
    );
    for offer in ["<form", "<button", "href=\"/auth", "Disconnect"] {
        assert!(
            !page.contains(offer),
            "{offer} offered without a link: {page}"
        );
    }
    let stale = closed
        .browser()
        .get(closed.at("/?session=used-or-made-up"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);

    let (_provider, _db, open) = start(backend, &["--open-connect"]).await;
    let browser = open.browser();
    let auth = browser.get(open.at("/auth")).send().await.unwrap();
    assert!(auth.status().is_redirection());
    let back = browser.get(location(&auth)).send().await.unwrap();
    assert_eq!(
        browser.get(location(&back)).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        open.admin().get("/connections/default").await.0,
        StatusCode::OK
    );
}

async fn return_to_must_be_on_an_allowed_origin(backend: Backend) {
    let (_provider, _db, app) = start(
        backend,
        &["--return-to-origins=https://app.example.com,http://localhost:8080"],
    )
    .await;
    for bad in [
        "https://evil.example.com/",
        "https://app.example.com.evil.com/",
        "https://app.example.com@evil.com/",
        "https://evil.com\\@app.example.com/",
        "//app.example.com/x",
        "http://app.example.com/",
        "https://app.example.com:8443/",
        "HTTPS://evil.example.com/",
        "https://app.example.com%09/",
        "javascript:alert(1)",
        "http://localhost:8081/",
    ] {
        let (status, body) = app
            .admin()
            .post(
                "/connect-sessions",
                serde_json::json!({"connection_id": "x", "return_to": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["status"], 422);
    }
    let too_long = format!("https://app.example.com/{}", "x".repeat(2048));
    let (status, body) = app
        .admin()
        .post(
            "/connect-sessions",
            serde_json::json!({"connection_id": "x", "return_to": too_long}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"], "return_to: is longer than 2048 characters.");
    let longest = format!("https://app.example.com/{}", "x".repeat(2048 - 24));
    for good in [
        "https://APP.example.com/back",
        "http://localhost:8080/cb",
        &longest,
    ] {
        let (status, _) = app
            .admin()
            .post(
                "/connect-sessions",
                serde_json::json!({"connection_id": "x", "return_to": good}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{good}");
    }
}

#[tokio::test]
async fn the_sandbox_runs_the_whole_flow() {
    let app = TestApp::sandbox(&[]).await;
    let browser = app.browser();
    let session = app.session("default").await;
    let auth = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    let consent = browser
        .get(location(&auth))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("Approve") && consent.contains("Deny") && consent.contains("Sandbox"));
    let callback = sandbox_decide(&browser, &location(&auth), "approve").await;
    assert!(
        callback.contains("iss="),
        "the sandbox sends iss: {callback}"
    );
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let (status, token) = app.admin().get("/connections/default/access-token").await;
    assert_eq!(status, StatusCode::OK);
    // The sandbox API accepts the token it issued.
    let lists = reqwest::Client::new()
        .get(app.at("/sandbox/api/lists"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(lists.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_sandbox_deny_button_reads_you_declined() {
    let app = TestApp::sandbox(&[]).await;
    let browser = app.browser();
    let auth = browser.get(app.at("/auth")).send().await.unwrap();
    let callback = sandbox_decide(&browser, &location(&auth), "deny").await;
    let page = browser.get(callback).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap().contains("You declined"));
    assert_eq!(
        app.admin().get("/connections/default").await.0,
        StatusCode::NOT_FOUND
    );
}

/// A loop of authorization requests cannot grow the sandbox without bound:
/// it keeps the newest 1000 unanswered consents, each for 10 minutes.
#[tokio::test]
async fn the_sandbox_forgets_surplus_and_old_consents() {
    let app = TestApp::sandbox(&[]).await;
    let browser = app.browser();
    let auth = browser.get(app.at("/auth")).send().await.unwrap();
    let authorize = location(&auth);
    let consent = async || {
        let page = browser
            .get(&authorize)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.split("name=\"consent\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned()
    };
    let decide = async |consent: &str| {
        browser
            .post(app.at("/sandbox/oauth/authorize"))
            .form(&[("consent", consent), ("decision", "approve")])
            .send()
            .await
            .unwrap()
            .status()
    };
    let first = consent().await;
    let mut newest = String::new();
    for _ in 0..1000 {
        newest = consent().await;
    }
    assert_eq!(
        decide(&first).await,
        StatusCode::BAD_REQUEST,
        "the oldest was dropped"
    );
    assert!(decide(&newest).await.is_redirection());

    let waiting = consent().await;
    app.clock.advance(std::time::Duration::from_secs(10 * 60));
    assert_eq!(decide(&waiting).await, StatusCode::BAD_REQUEST, "expired");
}
