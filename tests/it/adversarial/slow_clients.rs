//! Slow clients: a head or a body trickled a byte a second while others are
//! served, a connection that sends nothing, and an HTTP/2 preface a byte at a
//! time.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{start, Backend, TestApp, ADMIN_TOKEN};

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
            // The slow client under test: a byte a second.
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
    // Other clients come every 3 s: eight at least, and for as long as the trickles last.
    let (all_cut, mut trickling) = tokio::sync::watch::channel(false);
    let trickles = async {
        let cuts = tokio::join!(head, body);
        all_cut.send(true).unwrap();
        cuts
    };
    let others = async {
        let client = reqwest::Client::new();
        let mut served = 0;
        while served < 8 || !*trickling.borrow() {
            tokio::select! {
                // The other clients' pace: part of the scenario, not a wait.
                _ = tokio::time::sleep(Duration::from_secs(3)) => {}
                _ = trickling.wait_for(|cut| *cut), if served >= 8 => break,
            }
            let asked = Instant::now();
            let answer = client.get(app.at("/healthz")).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
            assert!(
                asked.elapsed() < Duration::from_secs(2),
                "{:?}",
                asked.elapsed()
            );
            assert_eq!(app.admin().get("/connections").await.0, StatusCode::OK);
            served += 1;
        }
    };
    let (((head_cut, head_answer), (body_cut, body_answer)), ()) = tokio::join!(trickles, others);
    for cut in [head_cut, body_cut] {
        assert!(
            (Duration::from_secs(25)..Duration::from_secs(40)).contains(&cut),
            "cut after {cut:?}"
        );
    }
    assert!(!head_answer.contains(" 200 "), "{head_answer}");
    assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer}");
    // The request limit's answer carries the headers every answer carries.
    let head = body_answer.to_ascii_lowercase();
    for header in [
        "content-security-policy: default-src 'self'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(head.contains(header), "no {header}: {body_answer}");
    }
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
