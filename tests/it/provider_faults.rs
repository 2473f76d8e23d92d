//! A token endpoint that is down, slow or rude: each is a clear page within
//! a bounded time, nothing is stored, and the server keeps serving.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{new_key, start, Backend, FakeProvider, TestApp, TestDb, TokenAnswer};

on_both_backends!(token_endpoint_faults_are_clear_pages);

async fn token_endpoint_faults_are_clear_pages(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;

    let cases = [
        (
            TokenAnswer::Hang,
            StatusCode::GATEWAY_TIMEOUT,
            "took too long to answer",
        ),
        (
            TokenAnswer::Status(500, r#"{"error":"server_error"}"#),
            StatusCode::BAD_GATEWAY,
            "could not be reached",
        ),
        (
            TokenAnswer::Status(503, "<html>down</html>"),
            StatusCode::BAD_GATEWAY,
            "did not answer properly",
        ),
        (
            TokenAnswer::Malformed,
            StatusCode::BAD_GATEWAY,
            "did not answer properly",
        ),
        (
            TokenAnswer::Huge,
            StatusCode::BAD_GATEWAY,
            "did not answer properly",
        ),
        (
            TokenAnswer::BadExpiresIn,
            StatusCode::BAD_GATEWAY,
            "did not answer properly",
        ),
        (
            TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#),
            StatusCode::BAD_REQUEST,
            "did not accept the sign-in",
        ),
    ];
    for (answer, status, words) in cases {
        provider.set(|c| c.token_answer = answer.clone());
        let started = Instant::now();
        let page = app.connect("faulty").await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{answer:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(page.status(), status, "{answer:?}");
        let text = page.text().await.unwrap();
        assert!(text.contains(words), "{answer:?}: {text}");
        assert!(
            !text.contains("server_error") && !text.contains("xxxx"),
            "{answer:?} leaked the provider's body"
        );
        assert_eq!(
            app.admin().get("/connections/faulty").await.0,
            StatusCode::NOT_FOUND,
            "{answer:?}"
        );
        assert_eq!(
            reqwest::get(app.at("/healthz")).await.unwrap().status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_provider_that_refuses_connections_is_a_502() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let refusing = crate::support::refusing_addr();
    let mut args = crate::support::with_flag(
        provider.args(),
        "--token-url",
        &format!("http://{}/token", refusing.addr),
    );
    args.push(format!("--token-encryption-key={}", new_key()));
    let app = TestApp::start(&db, &args).await;
    let page = app.connect("down").await;
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    assert!(page.text().await.unwrap().contains("could not be reached"));
    assert_eq!(
        app.admin().get("/connections/down").await.0,
        StatusCode::NOT_FOUND
    );
}
