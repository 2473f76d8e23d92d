//! Connect sessions and cookies: a link past its 30 minutes, forged session
//! tokens, and flow and CSRF cookies stuffed past their limits.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::support::{connections, raw, refused_page};
use crate::on_both_backends;
use crate::support::provider::API_KEY;
use crate::support::{location, start, Backend};

on_both_backends!(
    a_connect_session_expires_after_30_minutes,
    forged_connect_sessions_are_refused,
    oversized_cookies_are_refused_cleanly,
);

async fn a_connect_session_expires_after_30_minutes(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let session = app.session("late").await;
    let browser = app.browser();
    app.clock.advance(Duration::from_secs(30 * 60 - 2));
    let page = browser
        .get(app.at(&format!("/?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "still valid at 29:58");
    let page = page.text().await.unwrap();
    let csrf_token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();

    app.clock.advance(Duration::from_secs(2));
    for path in [
        format!("/?session={session}"),
        format!("/auth?session={session}"),
    ] {
        refused_page(
            browser.get(app.at(&path)).send().await.unwrap(),
            StatusCode::FORBIDDEN,
            "missing, has already been used, or has expired",
            &provider,
        )
        .await;
    }
    let saved = browser
        .post(app.at("/connect/api-key"))
        .form(&[
            ("api_key", API_KEY),
            ("csrf_token", &csrf_token),
            ("session", &session),
        ])
        .send()
        .await
        .unwrap();
    refused_page(
        saved,
        StatusCode::FORBIDDEN,
        "missing, has already been used, or has expired",
        &provider,
    )
    .await;
    assert_eq!(connections(&app).await, json!([]));
    assert!(
        provider.recorded("/api/lists").is_empty(),
        "a key was checked"
    );
}

async fn forged_connect_sessions_are_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let real = app.session("target").await;
    let mut last_changed = real.clone();
    let last = last_changed.pop().unwrap();
    last_changed.push(if last == 'A' { 'B' } else { 'A' });
    let forgeries = [
        crate::support::new_key().replace(['+', '/', '='], "x"),
        last_changed,
        // What the database holds: a leaked row is not a link.
        emailoctopus_connect::crypto::sha256_hex(real.as_bytes()),
        format!("{real}x"),
        real[..real.len() - 1].to_owned(),
        real.to_uppercase(),
        format!("{real}%00"),
        format!("{real}%0d%0a"),
        "A".repeat(129),
        "A".repeat(8 * 1024),
    ];
    let browser = app.browser();
    for forged in &forgeries {
        for path in [
            format!("/?session={forged}"),
            format!("/auth?session={forged}"),
        ] {
            refused_page(
                browser.get(app.at(&path)).send().await.unwrap(),
                StatusCode::FORBIDDEN,
                "connect link",
                &provider,
            )
            .await;
        }
    }
    assert_eq!(connections(&app).await, json!([]));
    // None of the guesses used the real session up.
    app.begin(&browser, &real).await;
}

async fn oversized_cookies_are_refused_cleanly(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = app.session("c").await;
    let auth = plain
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    let flow_cookie = auth.headers()["set-cookie"].to_str().unwrap();
    let flow_cookie = flow_cookie.split(';').next().unwrap().to_owned();
    let back = plain.get(location(&auth)).send().await.unwrap();
    let callback = location(&back);

    // A Cookie header past the 32 KiB head limit: 431, and the flow survives.
    let path = callback.trim_start_matches(&app.url);
    let stuffed = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nCookie: {flow_cookie}; junk={}\r\nConnection: close\r\n\r\n",
        "j".repeat(40 * 1024)
    );
    assert_eq!(raw(&app, stuffed.as_bytes()).await.0, 431);
    assert!(provider.token_requests("authorization_code").is_empty());
    assert_eq!(connections(&app).await, json!([]));

    // Just under the limit, but many cookies: the genuine one is still found.
    let many: String = (0..600).map(|i| format!("; eoc_flow_{i:016x}=x")).collect();
    let crowded = plain
        .get(&callback)
        .header("cookie", format!("{flow_cookie}{many}"))
        .send()
        .await
        .unwrap();
    assert_eq!(crowded.status(), StatusCode::OK);

    // A browser stuffed with flow cookies still starts a flow.
    let request = format!(
        "GET /auth?session={} HTTP/1.1\r\nHost: t\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        app.session("d").await,
        many.trim_start_matches("; ")
    );
    let (status, head, _) = raw(&app, request.as_bytes()).await;
    assert!((300..400).contains(&status), "{status}");
    let fresh = head
        .lines()
        .filter(|l| l.starts_with("set-cookie: eoc_flows=") && !l.contains("max-age=0"))
        .count();
    assert_eq!(fresh, 1, "one flows cookie");

    // An oversized CSRF cookie is replaced on the page and refused on a form.
    let huge_csrf = format!("eoc_csrf={}", "c".repeat(8 * 1024));
    let session = app.session("e").await;
    let page = plain
        .get(app.at(&format!("/?session={session}")))
        .header("cookie", &huge_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let set = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("eoc_csrf=") && set.len() < 200, "{set}");
    let page = page.text().await.unwrap();
    let token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let saved = plain
        .post(app.at("/connect/api-key"))
        .header("cookie", &huge_csrf)
        .form(&[
            ("api_key", API_KEY),
            ("csrf_token", token),
            ("session", &session),
        ])
        .send()
        .await
        .unwrap();
    refused_page(saved, StatusCode::FORBIDDEN, "Please try again", &provider).await;
    assert_eq!(
        app.admin().get("/connections/e").await.0,
        StatusCode::NOT_FOUND
    );
    assert!(
        provider.recorded("/api/lists").is_empty(),
        "a key was checked"
    );
}
