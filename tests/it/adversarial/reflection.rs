//! Reflected values: CR and LF that would split an answer, and markup that
//! would run in a page or a problem.

use crate::support::query_param;
use reqwest::StatusCode;
use serde_json::json;

use super::support::{assert_no_secret, browser_get, connections, raw, refused_page};
use crate::support::{start, Backend, ADMIN_TOKEN};

/// A GET over a bare socket with the admin bearer.
fn admin_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

#[tokio::test]
async fn cr_and_lf_in_reflected_values_never_split_an_answer() {
    let (provider, _db, app) = start(
        Backend::Sqlite,
        &["--return-to-origins=https://app.example.com"],
    )
    .await;
    app.connect_api_key("p").await;
    let crlf = "%0d%0aX-Injected:%201%0d%0aSet-Cookie:%20injected=1";
    let requests = [
        browser_get(&format!("/?session=s{crlf}")),
        browser_get(&format!("/auth?session=s{crlf}")),
        browser_get(&format!("/callback?state=s{crlf}&code=c{crlf}&iss=i{crlf}")),
        browser_get(&format!(
            "/callback?state=s&error=e{crlf}&error_description=d{crlf}"
        )),
        browser_get(&format!("/nowhere{crlf}")),
        admin_get(&format!("/connections/p{crlf}")),
        admin_get(&format!("/connections/p{crlf}/access-token")),
        admin_get(&format!("/connections/p{crlf}/api/lists")),
        admin_get(&format!("/connections/p/api/lists{crlf}")),
        admin_get(&format!("/connections/p/api/lists/{crlf}/x")),
    ];
    for request in &requests {
        let (status, head, body) = raw(&app, request).await;
        let shown = String::from_utf8_lossy(request);
        assert!((400..500).contains(&status), "{status} for {shown}");
        assert!(
            !head.contains("x-injected") && !head.contains("injected=1"),
            "{shown} split the answer: {head}"
        );
        assert!(!body.contains("\r\nX-Injected"), "{shown}: {body}");
        assert_no_secret(&body, &provider, &[]);
    }
    // The one value a page shows, the provider's error_description, in a
    // genuine flow: shown as text on one line, never as a header.
    let browser = app.browser();
    let callback = app.begin(&browser, &app.session("e").await).await;
    let state: String =
        url::form_urlencoded::byte_serialize(query_param(&callback, "state").as_bytes()).collect();
    let answered = browser
        .get(app.at(&format!(
            "/callback?state={state}&error=server_error&error_description=d{crlf}"
        )))
        .send()
        .await
        .unwrap();
    assert!(answered.headers().get("x-injected").is_none());
    assert!(answered
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().contains("injected")));
    let page = refused_page(
        answered,
        StatusCode::BAD_REQUEST,
        "did not allow the connection",
        &provider,
    )
    .await;
    assert!(
        page.contains("dX-Injected: 1Set-Cookie: injected=1"),
        "{page}"
    );

    // A query is forwarded still encoded: the upstream never sees a bare CR or LF.
    let (status, head, _) = raw(
        &app,
        &admin_get(&format!("/connections/p/api/lists/1?q=a{crlf}")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!head.contains("x-injected"), "{head}");
    let upstream = provider.recorded("/api/lists/1").pop().unwrap();
    assert!(!upstream.query.unwrap().contains(['\r', '\n']));
    assert!(upstream.headers.get("x-injected").is_none());

    // A bare CR or LF in the request line never reaches a route.
    for request in [
        "GET /?session=a\rX-Injected: 1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /?session=a\nX-Injected: 1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let (status, head, _) = raw(&app, request.as_bytes()).await;
        assert_eq!(status, 400, "{request:?}");
        assert!(!head.contains("x-injected"));
    }

    // JSON members with CR/LF are refused without being echoed.
    for body in [
        json!({"connection_id": "a\r\nX-Injected: 1"}),
        json!({"connection_id": "a", "return_to": "https://app.example.com/\r\nX-Injected: 1"}),
    ] {
        let (status, problem) = app.admin().post("/connect-sessions", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!problem.to_string().contains("Injected"), "{problem}");
    }
    // An encoded CR/LF in a return_to stays encoded in the Location header.
    let (status, session) = app
        .admin()
        .post(
            "/connect-sessions",
            json!({"connection_id": "r", "return_to": format!("https://app.example.com/x{crlf}")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let browser = app.browser();
    let callback = app
        .begin(&browser, session["token"].as_str().unwrap())
        .await;
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(done.headers().get("x-injected").is_none());
    assert!(done
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().contains("injected")));
}

#[tokio::test]
async fn no_page_or_problem_echoes_markup() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let markup = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let m = url::form_urlencoded::byte_serialize(markup.as_bytes()).collect::<String>();
    let browser = app.browser();
    let pages = [
        browser.get(app.at(&format!("/?session={m}"))),
        browser.get(app.at(&format!("/?session=a&session={m}"))),
        browser.get(app.at(&format!("/auth?session={m}"))),
        browser.get(app.at(&format!(
            "/callback?state={m}&code={m}&error={m}&error_description={m}"
        ))),
        browser.get(app.at(&format!("/{m}"))),
        browser.post(app.at("/connect/api-key")).form(&[
            ("api_key", markup),
            ("csrf_token", markup),
            ("session", markup),
        ]),
        browser
            .post(app.at("/disconnect"))
            .form(&[("csrf_token", markup), ("session", markup)]),
    ];
    for request in pages {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        assert!(response.status().is_client_error(), "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        let page = response.text().await.unwrap();
        assert!(
            !page.contains("<script>alert") && !page.contains("<img src=x"),
            "{url}: {page}"
        );
        assert_no_secret(&page, &provider, &[]);
    }
    // A genuine flow whose provider answers with markup in `error` and `error_description`.
    let callback = app.begin(&browser, &app.session("m").await).await;
    let state: String =
        url::form_urlencoded::byte_serialize(query_param(&callback, "state").as_bytes()).collect();
    let answered = app.at(&format!(
        "/callback?state={state}&error={m}&error_description={m}"
    ));
    let page = refused_page(
        browser.get(answered).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "did not allow the connection",
        &provider,
    )
    .await;
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src=x"),
        "{page}"
    );

    // Problems are JSON, and do not repeat what they refuse.
    for (path, body) in [
        ("/connect-sessions", json!({"connection_id": markup})),
        (
            "/connect-sessions",
            json!({"connection_id": "x", "return_to": markup}),
        ),
    ] {
        let (status, problem) = app.admin().post(path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!problem.to_string().contains("<script>"), "{problem}");
    }
    let (status, problem) = app
        .admin()
        .put(
            &format!("/connections/{m}/api-key"),
            json!({"api_key": "k"}),
        )
        .await;
    assert!(status.is_client_error());
    assert!(!problem.to_string().contains("<script>"), "{problem}");
    assert_eq!(connections(&app).await, json!([]));
}

/// A refused JSON member is named in a fixed sentence; what was sent is not
/// repeated, whatever its type or place.
#[tokio::test]
async fn problems_name_the_refused_member_and_never_repeat_it() {
    let (_provider, _db, app) = start(
        Backend::Sqlite,
        &["--return-to-origins=https://app.example.com"],
    )
    .await;
    let marker = "echoed-7311";
    let number = 73117311;
    let cases = [
        (
            "/connect-sessions",
            json!({ "connection_id": number }),
            "connection_id",
        ),
        (
            "/connect-sessions",
            json!({ "connection_id": [marker] }),
            "connection_id",
        ),
        (
            "/connect-sessions",
            json!({ "connection_id": format!("{marker}/x") }),
            "connection_id",
        ),
        (
            "/connect-sessions",
            json!({ "connection_id": "a", "return_to": number }),
            "return_to",
        ),
        (
            "/connect-sessions",
            json!({ "connection_id": "a", "return_to": { marker: 1 } }),
            "return_to",
        ),
        (
            "/connect-sessions",
            json!({ "connection_id": "a", "return_to": format!("https://{marker}.example/") }),
            "return_to",
        ),
        ("/connect-sessions", json!({ marker: "a" }), "connection_id"),
        ("/connect-sessions", json!([marker]), "body"),
        (
            "/connections/a/api-key",
            json!({ "api_key": number }),
            "api_key",
        ),
        (
            "/connections/a/api-key",
            json!({ "api_key": { marker: true } }),
            "api_key",
        ),
    ];
    let admin = app.admin();
    for (path, body, field) in cases {
        let method = if path.ends_with("api-key") {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let response = admin
            .request(method, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{body}: {detail}"
        );
        assert!(
            !detail.contains(marker) && !detail.contains(&number.to_string()),
            "{body}: {detail}"
        );
    }
    let not_json = admin
        .request(reqwest::Method::POST, "/connect-sessions")
        .header("content-type", "application/json")
        .body(format!("{{\"connection_id\": {marker}"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let detail = not_json.json::<serde_json::Value>().await.unwrap()["detail"].to_string();
    assert_eq!(detail, "\"body: is not a JSON document.\"");
}
