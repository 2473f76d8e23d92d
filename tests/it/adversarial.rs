//! Attacks, one test each. Every attack ends in a clean refusal (a status
//! and a page or problem that says what happened in words), nothing stored
//! and nothing leaked (no token, secret, code or verifier in the answer).
//!
//! Attacks that other files already show are not repeated here: login CSRF,
//! callback replay, flow expiry, tampered and swapped flow cookies and `iss`
//! (callback_refusals.rs), the return_to list and connect-session reuse
//! (flow.rs), proxy escapes and header filtering (proxy.rs), the admin bearer
//! (refresh.rs). SECURITY.md maps every threat to its test.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::on_both_backends;
use crate::support::provider::{API_KEY, CLIENT_SECRET};
use crate::support::{location, start, Backend, FakeProvider, TestApp, ADMIN_TOKEN};

on_both_backends!(
    an_attackers_code_under_the_victims_state_is_refused,
    a_state_swapped_between_two_flows_is_refused,
    a_used_code_replayed_into_another_flow_is_refused,
    a_provider_that_ignores_pkce_still_gets_the_verifier,
    a_connect_session_expires_after_30_minutes,
    forged_connect_sessions_are_refused,
    return_to_look_alikes_are_refused_and_accepted_ones_normalised,
    oversized_cookies_are_refused_cleanly,
    oversized_bodies_get_413_and_store_nothing,
);

// ---------------------------------------------------------------- helpers

/// Fails when `text` holds anything secret: the client secret, the admin
/// token, the API key, any token the provider issued, or one of `also`.
fn assert_no_secret(text: &str, provider: &FakeProvider, also: &[&str]) {
    let (access, refresh) = provider.live_tokens();
    let fixed = [CLIENT_SECRET, ADMIN_TOKEN, API_KEY].map(str::to_owned);
    for secret in fixed.into_iter().chain(access).chain(refresh) {
        assert!(!text.contains(&secret), "{secret} leaked into {text}");
    }
    for secret in also {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
}

/// The page a refused browser sees: its status, HTML, these words, no secret.
async fn refused_page(
    response: reqwest::Response,
    status: StatusCode,
    words: &str,
    provider: &FakeProvider,
) -> String {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains(words), "{words:?} not in {page}");
    assert_no_secret(&page, provider, &[]);
    page
}

async fn connections(app: &TestApp) -> Value {
    let (status, list) = app.admin().get("/connections").await;
    assert_eq!(status, StatusCode::OK);
    list["connections"].clone()
}

/// One query parameter of a URL.
fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// `url` with the parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

/// One request over a bare socket, so that it arrives exactly as written:
/// the status, the head (lower-cased) and the body of the answer.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    let host = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers within 10 s")
        .ok();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, head.to_lowercase(), body.to_owned())
}

/// Sends `head` and then `body` over a bare socket while reading the answer,
/// as a client does that keeps sending after the server has refused: the
/// answer, as far as it came before the server closed the connection.
async fn send_while_reading(app: &TestApp, head: String, body: Vec<Vec<u8>>) -> String {
    let host = app.url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        for part in body {
            writer.write_all(&part).await?;
        }
        std::io::Result::Ok(writer)
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let reading = async {
        // Until the head and a little of the body are in, or the server closes.
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), reading)
        .await
        .expect("an answer within 20 s");
    sender.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A GET over a bare socket with the admin bearer.
fn admin_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

fn browser_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}

async fn put_api_key(app: &TestApp, id: &str) {
    let (status, body) = app
        .admin()
        .put(
            &format!("/connections/{id}/api-key"),
            json!({ "api_key": API_KEY }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ------------------------------------------------- the authorization code

async fn an_attackers_code_under_the_victims_state_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    // The attacker gets a code for their own account and keeps it unused.
    let attacker = app.browser();
    let attackers = app.begin(&attacker, &app.session("attacker").await).await;
    let stolen_code = param(&attackers, "code");
    // The victim starts a flow; the attacker swaps their code into the
    // victim's callback, keeping the victim's own (valid) state.
    let victim = app.browser();
    let victims = app.begin(&victim, &app.session("victim").await).await;
    let injected = with_param(&victims, "code", &stolen_code);
    let page = refused_page(
        victim.get(&injected).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "refused the authorization code",
        &provider,
    )
    .await;
    assert_no_secret(&page, &provider, &[&stolen_code]);
    // PKCE stopped it: the code went out with the victim's verifier, which
    // does not match the challenge the attacker's code was issued for.
    let exchanges = provider.token_requests("authorization_code");
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].form["code"], stolen_code);
    assert_eq!(connections(&app).await, json!([]));
    // The victim's flow is used up by the attempt: nothing half-done remains.
    refused_page(
        victim.get(&victims).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "connection was not made",
        &provider,
    )
    .await;
    assert_eq!(connections(&app).await, json!([]));
}

async fn a_state_swapped_between_two_flows_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let first = app.begin(&browser, &app.session("first").await).await;
    let second = app.begin(&browser, &app.session("second").await).await;
    // Each flow's code under the other flow's state: each verifier goes out
    // with a code that was not issued for it, so neither connection can end
    // up holding the other's account.
    for (code_from, state_from) in [(&first, &second), (&second, &first)] {
        let swapped = with_param(code_from, "state", &param(state_from, "state"));
        refused_page(
            browser.get(&swapped).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "refused the authorization code",
            &provider,
        )
        .await;
    }
    assert_eq!(provider.token_requests("authorization_code").len(), 2);
    assert_eq!(connections(&app).await, json!([]));
    // Both flows are spent (the provider also burns a code on a failed
    // redemption): the genuine callbacks are refused too, and still nothing is stored.
    for genuine in [&first, &second] {
        refused_page(
            browser.get(genuine.as_str()).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "connection was not made",
            &provider,
        )
        .await;
    }
    assert_eq!(connections(&app).await, json!([]));
}

async fn a_used_code_replayed_into_another_flow_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let victim = app.browser();
    let victims = app.begin(&victim, &app.session("victim").await).await;
    assert_eq!(
        victim.get(&victims).send().await.unwrap().status(),
        StatusCode::OK
    );
    let (_, before) = app.admin().get("/connections/victim").await;
    // The code leaked (a log, a Referer); the attacker replays it in a flow
    // of their own, whose state and cookie are genuine.
    let attacker = app.browser();
    let attackers = app.begin(&attacker, &app.session("attacker").await).await;
    let replayed = with_param(&attackers, "code", &param(&victims, "code"));
    refused_page(
        attacker.get(&replayed).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "refused the authorization code",
        &provider,
    )
    .await;
    assert_eq!(
        app.admin().get("/connections/attacker").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, after) = app.admin().get("/connections/victim").await;
    assert_eq!(after, before, "the victim's connection changed");
}

async fn a_provider_that_ignores_pkce_still_gets_the_verifier(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    provider.set(|c| c.ignore_pkce = true);
    let browser = app.browser();
    let session = app.session("downgrade").await;
    let auth = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    let authorize = location(&auth);
    assert_eq!(param(&authorize, "code_challenge_method"), "S256");
    let challenge = param(&authorize, "code_challenge");
    let back = browser.get(&authorize).send().await.unwrap();
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let page = done.text().await.unwrap();

    let exchange = &provider.token_requests("authorization_code")[0];
    let verifier = &exchange.form["code_verifier"];
    // RFC 7636 §4.1: 43 to 128 unreserved characters; §4.2: S256 of it.
    assert!((43..=128).contains(&verifier.len()), "{verifier}");
    assert!(verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        challenge,
        "the verifier does not match the challenge sent in /auth"
    );
    // The verifier travels only in the back channel.
    assert!(!authorize.contains(verifier.as_str()));
    assert_no_secret(&page, &provider, &[verifier]);
}

// ------------------------------------------------------ connect sessions

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
            "missing, already used or expired",
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
        "missing, already used or expired",
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

// ---------------------------------------------------------- open redirect

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

// ----------------------------------------------------------------- cookies

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
        .filter(|l| l.starts_with("set-cookie: eoc_flow_") && !l.contains("max-age=0"))
        .count();
    assert_eq!(fresh, 1, "one new flow cookie");

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

// ------------------------------------------------------------------ bodies

async fn oversized_bodies_get_413_and_store_nothing(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let pad = "a".repeat(65 * 1024);
    let admin = app.admin();
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/connect-sessions",
            format!(r#"{{"connection_id":"big","pad":"{pad}"}}"#),
        ),
        (
            reqwest::Method::PUT,
            "/connections/big/api-key",
            format!(r#"{{"api_key":"{pad}"}}"#),
        ),
    ] {
        let response = admin
            .request(method, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 413, "{problem}");
    }
    // Just under the limit is read (and the unknown member ignored).
    let (status, _) = admin
        .post(
            "/connect-sessions",
            json!({"connection_id": "small", "pad": "a".repeat(60 * 1024)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let form = reqwest::Client::new()
        .post(app.at("/connect/api-key"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("api_key={pad}&csrf_token=x"))
        .send()
        .await
        .unwrap();
    refused_page(form, StatusCode::PAYLOAD_TOO_LARGE, "larger", &provider).await;
    assert!(
        provider.recorded("/api/lists").is_empty(),
        "a key was checked"
    );
    assert_eq!(connections(&app).await, json!([]));

    put_api_key(&app, "p").await;
    let mib = vec![b'x'; 1024 * 1024];
    let sized = format!(
        "POST /connections/p/api/lists HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Length: {}\r\n\r\n",
        10 * 1024 * 1024 + 1
    );
    let sized_body = std::iter::repeat_n(mib.clone(), 10).chain([vec![b'x']]);
    // Streamed without a length, it is cut at the limit too.
    let chunked = format!(
        "POST /connections/p/api/lists HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let chunk = [
        format!("{:x}\r\n", mib.len()).into_bytes(),
        mib.clone(),
        b"\r\n".to_vec(),
    ]
    .concat();
    let chunked_body = std::iter::repeat_n(chunk, 11);
    for answer in [
        send_while_reading(&app, sized, sized_body.collect()).await,
        send_while_reading(&app, chunked, chunked_body.collect()).await,
    ] {
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
    // A proxied body over the 64 KiB form limit but under 10 MiB goes through
    // (on a new connection: the server closes one whose body it refused unread).
    let mib = app
        .admin()
        .request(reqwest::Method::POST, "/connections/p/api/lists/1")
        .body(vec![b'x'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(mib.status(), StatusCode::OK);
    let ids: Vec<Value> = connections(&app)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!("p")],
        "only the key put on purpose is stored"
    );
}

// ------------------------------------------------------ reflected values

#[tokio::test]
async fn cr_and_lf_in_reflected_values_never_split_an_answer() {
    let (provider, _db, app) = start(
        Backend::Sqlite,
        &["--return-to-origins=https://app.example.com"],
    )
    .await;
    put_api_key(&app, "p").await;
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
        url::form_urlencoded::byte_serialize(param(&callback, "state").as_bytes()).collect();
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
        "did not authorize",
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
        url::form_urlencoded::byte_serialize(param(&callback, "state").as_bytes()).collect();
    let answered = app.at(&format!(
        "/callback?state={state}&error={m}&error_description={m}"
    ));
    let page = refused_page(
        browser.get(answered).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "did not authorize",
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

/// RFC 9700 §4.2 and §4.16: the page the code lands on, and the connect page,
/// give a third party nothing: no Referer, no cache copy, no frame, no
/// resource from elsewhere.
#[tokio::test]
async fn the_callback_and_connect_pages_leak_nothing_to_third_parties() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let browser = app.browser();
    let session = app.session("quiet").await;
    let connect_page = browser
        .get(app.at(&format!("/?session={session}")))
        .send()
        .await
        .unwrap();
    let callback = app.begin(&browser, &session).await;
    let landed = browser.get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::OK);
    for page in [connect_page, landed] {
        let headers = page.headers().clone();
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-frame-options"], "DENY");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{csp}"
        );
        let html = page.text().await.unwrap();
        for attribute in ["src=\"", "href=\"", "action=\""] {
            for target in html.split(attribute).skip(1) {
                assert!(
                    target.starts_with('/') && !target.starts_with("//"),
                    "a resource or link off this origin: {attribute}{}",
                    &target[..target.len().min(40)]
                );
            }
        }
        assert_no_secret(&html, &provider, &[&param(&callback, "code")]);
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
    refused_page(page, StatusCode::BAD_GATEWAY, "provider", &provider).await;
    assert_eq!(
        app.admin().get("/connections/redirected").await.0,
        StatusCode::NOT_FOUND
    );

    put_api_key(&app, "p").await;
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

// ------------------------------------------------------------ size limits

#[tokio::test]
async fn request_heads_over_32_kib_get_431() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let big = "a".repeat(33 * 1024);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let heads = [
        format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
        format!("GET /callback?state={big} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        format!("GET /{big} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        format!("GET /connections HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}{big}\r\nConnection: close\r\n\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{many}Connection: close\r\n\r\n"),
    ];
    for head in heads {
        let (status, _, body) = raw(&app, head.as_bytes()).await;
        assert_eq!(status, 431, "{}", &head[..60]);
        assert_no_secret(&body, &provider, &[]);
    }
    // Under the head limit, a callback value longer than any provider sends
    // is refused unread.
    let long = "a".repeat(8 * 1024);
    let (status, _, body) = raw(
        &app,
        &browser_get(&format!("/callback?state={long}&code=c")),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("malformed"), "{body}");
    assert_eq!(
        reqwest::get(app.at("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------- proxy

#[tokio::test]
async fn proxy_header_spellings_and_absolute_targets_do_not_smuggle() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    put_api_key(&app, "p").await;
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

// --------------------------------------------------------- slow clients

/// A connection that sends `first` at once and then `rest` one byte a second:
/// how long until the server cut it off, and what it answered.
async fn trickle(app: &TestApp, first: Vec<u8>, rest: Vec<u8>) -> (Duration, String) {
    let host = app.url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer.write_all(&first).await.unwrap();
    let sender = tokio::spawn(async move {
        for byte in rest {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
        }
        // Keep the connection open: the server must be the one to end it.
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(45), reader.read_to_end(&mut answer)).await;
    sender.abort();
    assert!(cut.is_ok(), "the connection was still open after 45 s");
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickled_request_is_cut_off_while_others_are_served() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let endless = vec![b'a'; 60];
    let head = trickle(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ".to_vec(),
        endless.clone(),
    );
    let body = trickle(
        &app,
        format!(
            "POST /connect-sessions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        .into_bytes(),
        endless,
    );
    let others = async {
        let client = reqwest::Client::new();
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let asked = Instant::now();
            let answer = client.get(app.at("/healthz")).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
            assert!(
                asked.elapsed() < Duration::from_secs(2),
                "{:?}",
                asked.elapsed()
            );
            assert_eq!(app.admin().get("/connections").await.0, StatusCode::OK);
        }
    };
    let ((head_cut, head_answer), (body_cut, body_answer), ()) = tokio::join!(head, body, others);
    for cut in [head_cut, body_cut] {
        assert!(
            (Duration::from_secs(25)..Duration::from_secs(40)).contains(&cut),
            "cut after {cut:?}"
        );
    }
    assert!(!head_answer.contains(" 200 "), "{head_answer}");
    assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_that_sends_nothing_is_closed() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let (cut, _) = trickle(&app, Vec::new(), Vec::new()).await;
    assert!(cut < Duration::from_secs(40), "cut after {cut:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickled_http2_preface_is_cut_off() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let (cut, _) = trickle(&app, b"P".to_vec(), b"RI * HTTP/2.0\r\n\r\nSM\r\n".to_vec()).await;
    assert!(cut < Duration::from_secs(40), "cut after {cut:?}");
}

// ------------------------------------------------------ token responses

#[tokio::test]
async fn a_huge_expires_in_still_gives_an_rfc3339_time() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    provider.set(|c| c.expires_in = i64::MAX);
    assert_eq!(app.connect("far").await.status(), StatusCode::OK);
    let (_, connection) = app.admin().get("/connections/far").await;
    let (_, token) = app.admin().get("/connections/far/access-token").await;
    for at in [&connection["expires_at"], &token["expires_at"]] {
        let at = at.as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
            "expires_at {at:?} is not RFC 3339"
        );
    }
}

// -------------------------------------------------------------- settings

/// RFC 9700 §2.6: an authorization response must not cross the network in
/// clear. The browser-facing redirect URI is where the code and state land.
#[test]
fn a_plain_http_redirect_uri_off_loopback_is_refused() {
    use clap::Parser;
    use emailoctopus_connect::config::Cli;
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
        Cli::try_parse_from(argv).unwrap().settings.parse()
    };
    assert!(parse("http://127.0.0.1:3000/callback").is_ok());
    assert!(parse("https://connect.example.com/callback").is_ok());
    let refused = parse("http://connect.example.com/callback").err();
    assert_eq!(refused.map(|e| e.variable), Some("REDIRECT_URI"));
}
