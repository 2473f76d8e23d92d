//! Every callback that must be refused is refused with a page in words, no
//! request to the provider's token endpoint, and nothing stored.

use std::time::Duration;

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{start, Backend, FakeProvider, TestApp};

on_both_backends!(
    callbacks_without_a_matching_flow_are_refused,
    an_expired_flow_is_refused,
    a_replayed_callback_is_refused,
    a_callback_in_another_browser_is_refused,
    provider_errors_are_explained_and_escaped,
    a_missing_or_wrong_iss_is_refused_when_an_issuer_is_set,
    a_tampered_flow_cookie_is_refused,
);

/// The refusal a browser sees, checked for what every refusal must be.
async fn assert_refused(response: reqwest::Response, status: StatusCode, words: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains(words), "{words:?} not in {page}");
    page
}

async fn assert_nothing_stored(app: &TestApp, provider: &FakeProvider) {
    let (_, list) = app.admin().get("/connections").await;
    assert_eq!(list["connections"], serde_json::json!([]));
    assert!(
        provider.token_requests("authorization_code").is_empty(),
        "the provider was asked for tokens"
    );
}

fn with_query(callback: &str, change: impl Fn(&mut Vec<(String, String)>)) -> String {
    let mut url = url::Url::parse(callback).unwrap();
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    change(&mut pairs);
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

async fn callbacks_without_a_matching_flow_are_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let session = app.session("c").await;
    let callback = app.begin(&browser, &session).await;
    let cases = [
        (
            "no state",
            with_query(&callback, |q| q.retain(|(k, _)| k != "state")),
        ),
        (
            "wrong state",
            with_query(&callback, |q| {
                q.iter_mut()
                    .filter(|(k, _)| k == "state")
                    .for_each(|p| p.1 = "forged-state-value".into())
            }),
        ),
        ("no query", app.at("/callback")),
        ("repeated state", format!("{callback}&state=again")),
    ];
    for (case, url) in cases {
        let response = browser.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
    }
    let missing_code = with_query(&callback, |q| q.retain(|(k, _)| k != "code"));
    assert_refused(
        browser.get(missing_code).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "incomplete answer",
    )
    .await;
    assert_nothing_stored(&app, &provider).await;
}

async fn an_expired_flow_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let callback = app.begin(&browser, &app.session("late").await).await;
    app.clock.advance(Duration::from_secs(10 * 60 + 1));
    assert_refused(
        browser.get(callback).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "longer than 10 minutes",
    )
    .await;
    assert_nothing_stored(&app, &provider).await;
}

async fn a_replayed_callback_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let (callback, cookie) = begin_with_cookie(&app, "once").await;
    let plain = reqwest::Client::new();
    assert_eq!(
        plain
            .get(&callback)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // The same callback with the same cookie, as an attacker who captured both would send it.
    let replay = plain
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_refused(replay, StatusCode::BAD_REQUEST, "already finished").await;
    assert_eq!(provider.token_requests("authorization_code").len(), 1);
}

/// Starts a flow without a cookie jar: returns the callback URL and the flow cookie (`name=value`).
async fn begin_with_cookie(app: &TestApp, id: &str) -> (String, String) {
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = app.session(id).await;
    let auth = plain
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    let set_cookie = auth.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let back = plain
        .get(crate::support::location(&auth))
        .send()
        .await
        .unwrap();
    (crate::support::location(&back), cookie)
}

async fn a_callback_in_another_browser_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    // Login CSRF: the attacker starts a flow and gets a code for their own
    // account, then makes the victim's browser open the callback.
    let attacker = app.browser();
    let callback = app.begin(&attacker, &app.session("attacker").await).await;
    let victim = app.browser();
    assert_refused(
        victim.get(callback).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "not started in this browser",
    )
    .await;
    assert_nothing_stored(&app, &provider).await;
}

async fn provider_errors_are_explained_and_escaped(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let declined = app.begin(&browser, &app.session("d").await).await;
    let declined = with_query(&declined, |q| {
        q.retain(|(k, _)| k == "state");
        q.push(("error".into(), "access_denied".into()));
    });
    assert_refused(
        browser.get(declined).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "You declined",
    )
    .await;

    let failed = app.begin(&browser, &app.session("e").await).await;
    let failed = with_query(&failed, |q| {
        q.retain(|(k, _)| k == "state");
        q.push(("error".into(), "server_error".into()));
        q.push((
            "error_description".into(),
            "<script>alert(1)</script><b>bold</b>".into(),
        ));
    });
    let page = assert_refused(
        browser.get(failed).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "did not allow the connection",
    )
    .await;
    assert!(
        !page.contains("<script>") && !page.contains("<b>"),
        "{page}"
    );
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert_nothing_stored(&app, &provider).await;
}

async fn a_missing_or_wrong_iss_is_refused_when_an_issuer_is_set(backend: Backend) {
    let (provider, _db, app) = start(backend, &["--issuer=https://issuer.example"]).await;
    let browser = app.browser();
    for iss in [
        None,
        Some("https://evil.example"),
        Some("https://issuer.example/"),
    ] {
        provider.settings(|s| s.issuer = iss.map(str::to_owned));
        let callback = app.begin(&browser, &app.session("mixup").await).await;
        assert_refused(
            browser.get(callback).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "expected sign-in service",
        )
        .await;
    }
    // On error answers too.
    provider.settings(|s| s.issuer = None);
    let callback = app.begin(&browser, &app.session("mixup").await).await;
    let error_without_iss = with_query(&callback, |q| {
        q.retain(|(k, _)| k == "state");
        q.push(("error".into(), "access_denied".into()));
    });
    assert_refused(
        browser.get(error_without_iss).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "expected sign-in service",
    )
    .await;
    assert_nothing_stored(&app, &provider).await;

    provider.settings(|s| s.issuer = Some("https://issuer.example".into()));
    let callback = app.begin(&browser, &app.session("mixup").await).await;
    assert_eq!(
        browser.get(callback).send().await.unwrap().status(),
        StatusCode::OK
    );
}

async fn a_tampered_flow_cookie_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let (callback, cookie) = begin_with_cookie(&app, "t").await;
    let (name, value) = cookie.split_once('=').unwrap();
    let plain = reqwest::Client::new();
    let mut flipped = value.as_bytes().to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let cases = [
        String::from_utf8(flipped).unwrap(),
        value[..value.len() - 4].to_owned(),
        String::new(),
        "A".repeat(5000),
        "%%%not-base64%%%".to_owned(),
    ];
    for bad in cases {
        let response = plain
            .get(&callback)
            .header("cookie", format!("{name}={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // A genuine cookie of another flow, swapped in under this flow's name.
    let (_, other) = begin_with_cookie(&app, "t2").await;
    let other_value = other.split_once('=').unwrap().1;
    let swapped = plain
        .get(&callback)
        .header("cookie", format!("{name}={other_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(swapped.status(), StatusCode::BAD_REQUEST);
    assert_nothing_stored(&app, &provider).await;
    // The genuine cookie still works: refusals did not use the flow up.
    let ok = plain
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}
