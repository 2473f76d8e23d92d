//! Webhooks: signed, retried a bounded number of times, never in the way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use emailoctopus_connect::webhooks::sign;

use crate::support::{new_key, Backend, FakeProvider, TestApp, TestDb, TokenAnswer};

const SECRET: &str = "webhook-secret-for-tests";

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    failing: Arc<Mutex<bool>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let me = self.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    me.received.lock().unwrap().push((headers, body));
                    if *me.failing.lock().unwrap() {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    async fn wait_for(&self, count: usize) -> Vec<serde_json::Value> {
        for _ in 0..500 {
            let received = self.received.lock().unwrap().clone();
            if received.len() >= count {
                return received
                    .iter()
                    .map(|(_, body)| serde_json::from_slice(body).unwrap())
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "only {} webhooks arrived",
            self.received.lock().unwrap().len()
        );
    }
}

async fn start(receiver: &Receiver) -> (FakeProvider, TestDb, TestApp) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    args.push(format!("--webhook-url={}", receiver.start().await));
    args.push(format!("--webhook-secret={SECRET}"));
    args.push("--webhook-retry-base-ms=10".into());
    let app = TestApp::start(&db, &args).await;
    (provider, db, app)
}

#[tokio::test]
async fn connection_events_are_signed_and_delivered() {
    let receiver = Receiver::default();
    let (provider, _db, app) = start(&receiver).await;
    assert_eq!(app.connect("w").await.status(), reqwest::StatusCode::OK);
    app.connect_api_key("k").await;
    app.clock.advance(Duration::from_secs(3600));
    provider.set(|c| c.token_answer = TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#));
    assert_eq!(
        app.admin().get("/connections/w/access-token").await.0,
        reqwest::StatusCode::CONFLICT
    );
    assert_eq!(
        app.admin().delete("/connections/w").await.status(),
        reqwest::StatusCode::NO_CONTENT
    );

    let events = receiver.wait_for(4).await;
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["connection_id"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("connection.created", "w", "oauth"),
        ("connection.created", "k", "api_key"),
        ("connection.needs_reauth", "w", "oauth"),
        ("connection.deleted", "w", "oauth"),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {seen:?}");
    }
    assert!(events
        .iter()
        .all(|e| e["at"].as_str().unwrap().ends_with('Z')));
    for (headers, body) in receiver.received.lock().unwrap().iter() {
        let expected = format!("sha256={}", sign(SECRET.as_bytes(), body));
        assert_eq!(headers["x-signature-256"], expected.as_str());
        assert_eq!(headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn a_failing_receiver_does_not_fail_the_flow_and_retries_are_bounded() {
    let receiver = Receiver::default();
    *receiver.failing.lock().unwrap() = true;
    let (_provider, _db, app) = start(&receiver).await;
    assert_eq!(app.connect("w").await.status(), reqwest::StatusCode::OK);
    receiver.wait_for(10).await;
    // Well past the last backoff: no eleventh attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received.lock().unwrap().len(), 10);
}
