//! A webhook receiver for tests: records what arrives, can be told to fail.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use emailoctopus_connect::webhooks::sign;
use std::sync::{Arc, Mutex};

use super::eventually;

pub const SECRET: &str = "webhook-secret-for-tests";

#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    pub failing: Arc<Mutex<bool>>,
}

impl Receiver {
    pub async fn start(&self) -> String {
        let me = self.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    let mut received = me.received.lock().unwrap();
                    received.push((headers, body));
                    // Decided while the arrival is being recorded: a test that
                    // sees it may change `failing` without changing its answer.
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

    /// Waits until `count` webhooks have arrived; returns them all, as JSON.
    pub async fn wait_for(&self, count: usize) -> Vec<serde_json::Value> {
        let what = format!("{count} webhooks arrive");
        eventually(what, async || {
            let received = self.received.lock().unwrap();
            (received.len() >= count).then(|| {
                received
                    .iter()
                    .map(|(_, body)| serde_json::from_slice(body).unwrap())
                    .collect()
            })
        })
        .await
    }
}

impl Receiver {
    /// The events received so far whose signature checks out, as JSON;
    /// panics on one that does not.
    pub fn verified(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, body)| {
                let expected = format!("sha256={}", sign(SECRET.as_bytes(), body));
                assert_eq!(headers["x-signature-256"], expected.as_str());
                serde_json::from_slice(body).unwrap()
            })
            .collect()
    }

    /// The verified events named `event` about `id`.
    pub fn events(&self, event: &str, id: &str) -> Vec<serde_json::Value> {
        self.verified()
            .into_iter()
            .filter(|e| e["event"] == event && e["connection_id"] == id)
            .collect()
    }

    /// The flags that send this server's webhooks here.
    pub async fn args(&self) -> Vec<String> {
        vec![
            format!("--webhook-url={}", self.start().await),
            format!("--webhook-secret={SECRET}"),
            "--webhook-retry-base-ms=10".into(),
        ]
    }
}
