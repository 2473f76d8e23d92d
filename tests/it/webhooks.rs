//! Webhooks: signed, retried a bounded number of times, never in the way.

use std::time::Duration;

use emailoctopus_connect::webhooks::sign;

use crate::support::receiver::{Receiver, SECRET};
use crate::support::{new_key, Backend, FakeProvider, TestApp, TestDb, TokenAnswer};

async fn start(receiver: &Receiver) -> (FakeProvider, TestDb, TestApp) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    args.extend(receiver.args().await);
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
    // A stop waits for the deliveries in flight, so an eleventh attempt
    // (due well within the stop's grace) would have arrived before it ends.
    app.stop().await;
    assert_eq!(receiver.received.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn a_shutdown_lets_a_delivery_in_flight_finish() {
    let receiver = Receiver::default();
    *receiver.failing.lock().unwrap() = true;
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    let args = crate::support::with_flag(
        [args, receiver.args().await].concat(),
        "--webhook-retry-base-ms",
        "300",
    );
    let app = TestApp::start(&db, &args).await;
    app.connect_api_key("leaving").await;
    // The first attempt is refused; its retry waits 150 to 300 ms, and the
    // stop comes while it does.
    receiver.wait_for(1).await;
    *receiver.failing.lock().unwrap() = false;
    app.stop().await;
    assert_eq!(
        receiver.events("connection.created", "leaving").len(),
        2,
        "the refused attempt, then the retry, delivered before the stop finished"
    );
}
