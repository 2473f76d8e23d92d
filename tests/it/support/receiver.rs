//! A webhook receiver for tests: records what arrives and what it answered,
//! can be told to fail or to be slow, and notices a delivery of an event
//! that arrives while another delivery of the same event is still open.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use emailoctopus_connect::events::sign;

use super::{eventually, new_key, Backend, FakeProvider, TestApp, TestDb};

pub const SECRET: &str = "webhook-secret-for-tests";

/// One delivery as it arrived, and the status it was answered.
#[derive(Clone)]
pub struct Arrival {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub answered: StatusCode,
}

impl Arrival {
    pub fn id(&self) -> &str {
        self.headers["webhook-id"].to_str().unwrap()
    }
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub arrivals: Arc<Mutex<Vec<Arrival>>>,
    pub failing: Arc<Mutex<bool>>,
    /// Refuses only the events about this connection.
    pub failing_for: Arc<Mutex<Option<String>>>,
    /// How long each answer is held back.
    pub delay: Arc<Mutex<Duration>>,
    /// Event ids with a delivery open right now.
    open: Arc<Mutex<HashSet<String>>>,
    /// Event ids that arrived while a delivery of the same id was open.
    pub overlapping: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub async fn start(&self) -> String {
        let me = self.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move { me.arrive(headers, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    async fn arrive(&self, headers: HeaderMap, body: Bytes) -> StatusCode {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !self.open.lock().unwrap().insert(id.clone()) {
            self.overlapping.lock().unwrap().push(id.clone());
        }
        // Closed however the delivery ends, a sender that hangs up too.
        let _closed = Closed {
            open: self.open.clone(),
            id,
        };
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        // Decided while the arrival is being recorded: a test that sees it
        // may change `failing` without changing its answer.
        let mut arrivals = self.arrivals.lock().unwrap();
        let about: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let refused_here = self
            .failing_for
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|id| about["connection_id"] == id);
        let answered = if *self.failing.lock().unwrap() || refused_here {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        };
        arrivals.push(Arrival {
            headers,
            body,
            answered,
        });
        answered
    }

    /// Waits until a delivery is open (arrived, not yet answered).
    pub async fn wait_for_open_delivery(&self) {
        eventually("a delivery is in flight", async || {
            !self.open.lock().unwrap().is_empty()
        })
        .await
    }

    pub fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }

    pub fn count(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    /// Waits until `count` webhooks have arrived; returns them all, as JSON.
    pub async fn wait_for(&self, count: usize) -> Vec<serde_json::Value> {
        let what = format!("{count} webhooks arrive");
        eventually(what, async || {
            let arrivals = self.arrivals.lock().unwrap();
            (arrivals.len() >= count).then(|| {
                arrivals
                    .iter()
                    .map(|a| serde_json::from_slice(&a.body).unwrap())
                    .collect()
            })
        })
        .await
    }

    /// How many deliveries of each event id were answered with success.
    pub fn delivered(&self) -> HashMap<String, usize> {
        let mut delivered = HashMap::new();
        for arrival in self.arrivals.lock().unwrap().iter() {
            if arrival.answered.is_success() {
                *delivered.entry(arrival.id().to_owned()).or_default() += 1;
            }
        }
        delivered
    }

    /// Waits until `count` distinct events have arrived, answered or not.
    pub async fn wait_for_tried(&self, count: usize) {
        let what = format!("{count} distinct events arrive");
        eventually(what, async || {
            let arrivals = self.arrivals.lock().unwrap();
            let ids: HashSet<&str> = arrivals.iter().map(Arrival::id).collect();
            (ids.len() >= count).then_some(())
        })
        .await
    }

    /// Waits until `count` distinct events have been delivered with success.
    pub async fn wait_for_delivered(&self, count: usize) -> HashMap<String, usize> {
        let what = format!("{count} distinct events are delivered");
        eventually(what, async || {
            let delivered = self.delivered();
            (delivered.len() >= count).then_some(delivered)
        })
        .await
    }

    /// The events received so far whose signatures both check out, as
    /// JSON; panics on one that does not. The Standard Webhooks one is made
    /// again by that crate, without its check of the timestamp against the
    /// wall clock (tests move the server's clock).
    pub fn verified(&self) -> Vec<serde_json::Value> {
        let standard = standardwebhooks::Webhook::from_bytes(SECRET.as_bytes().to_vec()).unwrap();
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .map(|arrival| {
                let expected = format!("sha256={}", sign(SECRET.as_bytes(), &arrival.body));
                assert_eq!(arrival.headers["x-signature-256"], expected.as_str());
                let header = |name| arrival.headers[name].to_str().unwrap();
                let timestamp = header("webhook-timestamp").parse().unwrap();
                let signature = standard
                    .sign(header("webhook-id"), timestamp, &arrival.body)
                    .unwrap();
                assert_eq!(header("webhook-signature"), signature);
                serde_json::from_slice(&arrival.body).unwrap()
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

    /// Waits until an event named `event` about `id` has arrived; returns those that have.
    pub async fn arrived(&self, event: &str, id: &str) -> Vec<serde_json::Value> {
        eventually(format!("a {event} webhook about {id}"), async || {
            let events = self.events(event, id);
            (!events.is_empty()).then_some(events)
        })
        .await
    }

    /// The flags that send this server's webhooks here, retried and looked
    /// for quickly.
    pub async fn args(&self) -> Vec<String> {
        vec![
            format!("--webhook-url={}", self.start().await),
            format!("--webhook-secret={SECRET}"),
            "--webhook-retry-base-ms=10".into(),
            "--events-poll-ms=50".into(),
        ]
    }
}

/// A server on a fresh database whose webhooks come to a fresh receiver,
/// and the flags it was started with (to start another on the same database).
pub struct Hooked {
    pub provider: FakeProvider,
    pub db: TestDb,
    pub receiver: Receiver,
    pub app: TestApp,
    pub args: Vec<String>,
}

impl Hooked {
    pub async fn start(backend: Backend) -> Self {
        let provider = FakeProvider::start().await;
        let db = TestDb::new(backend).await;
        let receiver = Receiver::default();
        let mut args = provider.args();
        args.push(format!("--token-encryption-key={}", new_key()));
        args.extend(receiver.args().await);
        let app = TestApp::start(&db, &args).await;
        Self {
            provider,
            db,
            receiver,
            app,
            args,
        }
    }
}

/// Takes an event id off the open deliveries when dropped.
struct Closed {
    open: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Drop for Closed {
    fn drop(&mut self) {
        self.open.lock().unwrap().remove(&self.id);
    }
}
