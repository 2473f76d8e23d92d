//! Where a redirect may lead: `return_to` look-alikes, a token endpoint or
//! an API that answers with a redirect, and a redirect URI in clear off
//! loopback.

use reqwest::StatusCode;
use serde_json::json;

use super::support::refused_page;
use crate::on_both_backends;
use crate::support::{location, start, Backend, FakeProvider, TestApp};

on_both_backends!(return_to_look_alikes_are_refused_and_accepted_ones_normalised);

async fn return_to_look_alikes_are_refused_and_accepted_ones_normalised(backend: Backend) {
    let (_provider, _db, app) =
        start(backend, &["--return-to-origins=https://app.example.com"]).await;
    // flow.rs has the plain cases; these are the ones that fool eyes and parsers.
    for bad in [
        "https://аpp.example.com/",        // Cyrillic а
        "https://xn--pp-6kc.example.com/", // the same, in punycode
        "https://app.example.com./",       // a trailing dot is another host
        "https://app.example.com.evil.com/",
        "https://evil.com#@app.example.com/",
        "https://evil.com?@app.example.com/",
        "https://app.example.com%2f@evil.com/", // encoded slash in userinfo
        "https://app.example.com%40evil.com/",
        "https://app.example.com%0a/",
        "https://app.example.com%20/",
        "https:/\\evil.com/",
        "https:\\\\evil.com/",
        "/\\evil.com/",
        "\\\\evil.com/",
        " https://app.example.com/",
        "https://app.example.com:443.evil.com/",
        "https://app.example.com:65536/",
        "https://app.example.com:80/",
        "hTTpS://EVIL.com/",
        "data:text/html,<script>alert(1)</script>",
        "https://app.example.com:443@evil.com/",
    ] {
        let (status, body) = app
            .admin()
            .post(
                "/connect-sessions",
                json!({"connection_id": "x", "return_to": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["detail"].as_str().unwrap().starts_with("return_to"));
    }
    // What parses to the allowed origin is accepted, and the browser is sent
    // to the parsed form, never to the string as given.
    for (given, sent_to) in [
        ("https://ａｐｐ.example.com/x", "https://app.example.com/x"),
        (
            "HTTPS://APP.EXAMPLE.COM:0443/x",
            "https://app.example.com/x",
        ),
        ("https:app.example.com/x", "https://app.example.com/x"),
        (
            "https://app.example.com/<x>\"",
            "https://app.example.com/%3Cx%3E%22",
        ),
    ] {
        let (status, body) = app
            .admin()
            .post(
                "/connect-sessions",
                json!({"connection_id": "ok", "return_to": given}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{given}: {body}");
        let browser = app.browser();
        let callback = app.begin(&browser, body["token"].as_str().unwrap()).await;
        let done = browser.get(callback).send().await.unwrap();
        assert_eq!(done.status(), StatusCode::SEE_OTHER, "{given}");
        assert_eq!(location(&done), sent_to, "{given}");
    }
}

/// A token endpoint or an API that answers with a redirect does not get the
/// code, the client secret or the credential carried elsewhere: the one
/// outbound client never follows redirects.
#[tokio::test]
async fn redirects_from_the_token_endpoint_and_the_api_are_not_followed() {
    use axum::http::{StatusCode as S, Uri};
    use axum::response::IntoResponse;
    use axum::routing::{any, get, post};

    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }
    let stolen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let thief = serve(axum::Router::new().fallback({
        let stolen = stolen.clone();
        move |uri: Uri, body: String| async move {
            stolen.lock().unwrap().push(format!("{uri} {body}"));
            "thanks"
        }
    }))
    .await;
    let redirector =
        serve(
            axum::Router::new()
                .route("/api/lists", get(|| async { "{\"data\":[]}" }))
                .route(
                    "/token",
                    post({
                        let to = format!("{thief}/token");
                        move || async move {
                            (S::TEMPORARY_REDIRECT, [("location", to)]).into_response()
                        }
                    }),
                )
                .route(
                    "/api/{*rest}",
                    any({
                        let to = format!("{thief}/api");
                        move || async move { (S::FOUND, [("location", to)]).into_response() }
                    }),
                ),
        )
        .await;

    let provider = FakeProvider::start().await;
    let db = crate::support::TestDb::new(Backend::Sqlite).await;
    let mut args: Vec<String> = provider
        .args()
        .into_iter()
        .filter(|a| !a.starts_with("--token-url") && !a.starts_with("--api-base-url"))
        .collect();
    args.push(format!("--token-url={redirector}/token"));
    args.push(format!("--api-base-url={redirector}/api"));
    args.push(format!(
        "--token-encryption-key={}",
        crate::support::new_key()
    ));
    let app = TestApp::start(&db, &args).await;

    let page = app.connect("redirected").await;
    refused_page(page, StatusCode::BAD_GATEWAY, "sign-in service", &provider).await;
    assert_eq!(
        app.admin().get("/connections/redirected").await.0,
        StatusCode::NOT_FOUND
    );

    app.connect_api_key("p").await;
    let answer = app
        .admin()
        .request(reqwest::Method::GET, "/connections/p/api/lists/1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::FOUND,
        "passed back, not followed"
    );
    assert!(
        stolen.lock().unwrap().is_empty(),
        "{:?}",
        stolen.lock().unwrap()
    );
}

/// RFC 9700 §2.6: an authorization response must not cross the network in
/// clear. The browser-facing redirect URI is where the code and state land.
#[test]
fn a_plain_http_redirect_uri_off_loopback_is_refused() {
    use clap::Parser;
    use emailoctopus_connect::config::{Cli, Purpose};
    let parse = |redirect_uri: &str| {
        let mut argv = vec![
            "emailoctopus-connect".to_owned(),
            format!("--token-encryption-key={}", crate::support::new_key()),
            format!("--redirect-uri={redirect_uri}"),
        ];
        argv.extend(
            [
                "--client-id=c",
                "--client-secret=s",
                "--authorize-url=https://as.example/authorize",
                "--token-url=https://as.example/token",
            ]
            .map(str::to_owned),
        );
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.settings
            .check(Purpose::Serve)
            .map_err(|e| e.to_string())
    };
    assert!(parse("http://127.0.0.1:3000/callback").is_ok());
    assert!(parse("https://connect.example.com/callback").is_ok());
    let refused = parse("http://connect.example.com/callback").unwrap_err();
    assert!(
        refused.contains("for '--redirect-uri <REDIRECT_URI>': must be https"),
        "{refused}"
    );
}
