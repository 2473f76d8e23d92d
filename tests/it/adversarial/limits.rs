//! Size limits: request heads over 32 KiB, JSON, form and proxied bodies
//! over theirs, and an `expires_in` too large for a date.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::{assert_no_secret, browser_get, connections, own_host, raw, refused_page};
use crate::on_both_backends;
use crate::support::{start, Backend, TestApp, ADMIN_TOKEN};

on_both_backends!(oversized_bodies_get_413_and_store_nothing);

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

    app.connect_api_key("p").await;
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
    assert!(body.contains("incomplete or damaged"), "{body}");
    assert_eq!(
        reqwest::get(app.at("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_huge_expires_in_still_gives_an_rfc3339_time() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    provider.settings(|s| s.expires_in = i64::MAX);
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

/// A client that writes its whole request before reading a byte (as Node's
/// http client and many scripts do) receives the early 413 or 431 rather
/// than a reset: the server drains what follows before it closes.
#[tokio::test]
async fn a_client_that_writes_everything_before_reading_gets_the_early_answer() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let body_len = 10 * 1024 * 1024;
    let cases = [
        (
            format!(
                "POST /connect-sessions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n"
            ),
            413,
        ),
        (
            format!(
                "POST /connect/api-key HTTP/1.1\r\nHost: t\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n\r\n"
            ),
            413,
        ),
        (
            format!(
                "POST /connect/api-key HTTP/1.1\r\nHost: t\r\nX-Padding: {}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n\r\n",
                "p".repeat(40 * 1024)
            ),
            431,
        ),
    ];
    for (head, expected) in cases {
        let first_line = head.lines().next().unwrap().to_owned();
        let host = app.url.trim_start_matches("http://");
        let head = own_host(head.as_bytes(), host);
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        let exchange = async {
            stream.write_all(&head).await?;
            stream.write_all(&vec![b'x'; body_len]).await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            std::io::Result::Ok(answer)
        };
        let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .expect("the exchange ends")
            .unwrap_or_else(|e| panic!("{first_line}: {e} instead of {expected}"));
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {expected} ")),
            "{first_line}: {answer}"
        );
    }
}
