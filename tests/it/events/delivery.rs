//! Deliveries: signed both ways, retried on a schedule, given up as
//! `failed` after the last attempt, sent again on request.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use emailoctopus_connect::events::sign;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::receiver::{Receiver, SECRET};
use crate::support::{
    eventually, new_key, with_flag, Backend, FakeProvider, TestApp, TestDb, TokenAnswer,
};

/// The server with its webhooks sent to `receiver`, less the flags `instead` replaces.
async fn start(receiver: &Receiver, instead: &[(&str, &str)]) -> (FakeProvider, TestDb, TestApp) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    args.extend(receiver.args().await);
    for (flag, value) in instead {
        args = with_flag(args, flag, value);
    }
    let app = TestApp::start(&db, &args).await;
    (provider, db, app)
}

/// Every event the outbox holds, read page by page with `limit`.
pub async fn all_events(app: &TestApp, path: &str, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .admin()
            .get(&format!("{path}?limit={limit}&after={cursor}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let got = page["events"].as_array().unwrap().clone();
        assert!(got.len() <= limit);
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        if got.is_empty() {
            return events;
        }
        events.extend(got);
    }
}

#[tokio::test]
async fn connection_events_are_signed_both_ways_and_delivered() {
    let receiver = Receiver::default();
    let (provider, _db, app) = start(&receiver, &[]).await;
    assert_eq!(app.connect("w").await.status(), StatusCode::OK);
    app.connect_api_key("k").await;
    // A stock verifier also checks the timestamp against its own clock:
    // these two are looked at before this test moves the server's clock on.
    receiver.wait_for(2).await;
    let verifier = standardwebhooks::Webhook::from_bytes(SECRET.as_bytes().to_vec()).unwrap();
    for arrival in receiver.arrivals.lock().unwrap().iter() {
        verifier
            .verify(&arrival.body, &arrival.headers)
            .expect("a stock Standard Webhooks verifier accepts the delivery");
        // A body changed on the way fails it.
        let mut tampered = arrival.body.to_vec();
        tampered[1] ^= 1;
        assert!(verifier.verify(&tampered, &arrival.headers).is_err());
    }
    app.clock.advance(Duration::from_secs(3600));
    provider.set(|c| c.token_answer = TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#));
    assert_eq!(
        app.admin().get("/connections/w/access-token").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.admin().delete("/connections/w").await.status(),
        StatusCode::NO_CONTENT
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
    let mut ids = HashSet::new();
    for arrival in receiver.arrivals.lock().unwrap().iter() {
        let expected = format!("sha256={}", sign(SECRET.as_bytes(), &arrival.body));
        assert_eq!(arrival.headers["x-signature-256"], expected.as_str());
        assert_eq!(arrival.headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&arrival.body).unwrap();
        assert_eq!(
            body["id"],
            arrival.id(),
            "the body names the event as webhook-id does"
        );
        assert!(
            ids.insert(arrival.id().to_owned()),
            "each event has its own id"
        );
    }
    let needs_reauth = receiver.events("connection.needs_reauth", "w");
    assert_eq!(needs_reauth[0]["reason"], "refresh_rejected");

    // The outbox holds them in order, delivered once each, a deleted
    // connection's events too.
    let outbox = all_events(&app, "/events", 3).await;
    let names: Vec<&str> = outbox
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "connection.created",
            "connection.created",
            "connection.needs_reauth",
            "connection.deleted"
        ]
    );
    let delivered = eventually("the outbox records every delivery", async || {
        let outbox = all_events(&app, "/events", 100).await;
        outbox
            .iter()
            .all(|e| e["delivery"]["state"] == "delivered")
            .then_some(outbox)
    })
    .await;
    for event in &delivered {
        let attempts = event["delivery"]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{event}");
        assert_eq!(attempts[0]["status_code"], 204);
        assert!(ids.contains(event["id"].as_str().unwrap()));
    }
    let of_w = all_events(&app, "/connections/w/events", 100).await;
    assert_eq!(of_w.len(), 3);
    assert!(of_w.iter().all(|e| e["connection_id"] == "w"));
    assert_eq!(
        app.admin().get("/connections/nobody/events").await.0,
        StatusCode::NOT_FOUND
    );
    for bad in ["after=-1", "after=abc", "limit=0", "limit=501", "limit=x"] {
        let (status, body) = app.admin().get(&format!("/events?{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_whsec_secret_signs_as_stock_verifiers_decode_it() {
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef0123456789abcdef")
    );
    let receiver = Receiver::default();
    let (_provider, _db, app) = start(&receiver, &[("--webhook-secret", &secret)]).await;
    app.connect_api_key("k").await;
    receiver.wait_for(1).await;
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let arrival = receiver.arrivals.lock().unwrap()[0].clone();
    verifier.verify(&arrival.body, &arrival.headers).unwrap();
    let expected = format!("sha256={}", sign(secret.as_bytes(), &arrival.body));
    assert_eq!(arrival.headers["x-signature-256"], expected.as_str());
}

#[tokio::test]
async fn a_failing_receiver_gets_ten_attempts_then_the_event_is_failed_until_redelivered() {
    let receiver = Receiver::default();
    receiver.fail(true);
    let (_provider, _db, app) = start(&receiver, &[]).await;
    app.connect_api_key("k").await;
    receiver.wait_for(1).await;
    // Later waits are hours (at this base, up to a minute): the clock is moved on.
    for attempts in 2..=10 {
        app.clock.advance(Duration::from_secs(9 * 3600));
        receiver.wait_for(attempts).await;
    }
    let event = eventually("the event ends failed", async || {
        let (_, page) = app.admin().get("/events").await;
        let event = page["events"][0].clone();
        (event["delivery"]["state"] == "failed").then_some(event)
    })
    .await;
    let attempts = event["delivery"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 10);
    assert!(attempts
        .iter()
        .all(|a| a["status_code"] == 500 && a["error"].is_null()));
    assert!(event["delivery"]["next_attempt_at"].is_null());
    // No eleventh attempt, however long it is left: a few polls pass
    // (this wait is the behaviour under test: nothing more arrives).
    app.clock.advance(Duration::from_secs(3 * 86400));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.count(), 10);
    assert_eq!(
        app.metric("emailoctopus_connect_events_given_up_total")
            .await,
        Some(1.0)
    );

    receiver.fail(false);
    let id = event["id"].as_str().unwrap();
    let (status, body) = app
        .admin()
        .post(&format!("/events/{id}/redeliver"), serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["delivery"]["state"], "pending");
    assert_eq!(receiver.wait_for_delivered(1).await[id], 1);
    let (_, page) = app.admin().get("/events").await;
    assert_eq!(page["events"][0]["delivery"]["state"], "delivered");
    assert_eq!(
        page["events"][0]["delivery"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        11
    );
    for unknown in ["evt_nothere", "not-an-event"] {
        let (status, _) = app
            .admin()
            .post(
                &format!("/events/{unknown}/redeliver"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn an_unreachable_receiver_is_recorded_as_such_and_the_backlog_shows_it() {
    let unreachable = crate::support::refusing_addr();
    let receiver = Receiver::default();
    let url = format!("http://{}/hook", unreachable.addr);
    let (_provider, _db, app) = start(&receiver, &[("--webhook-url", &url)]).await;
    app.connect_api_key("k").await;
    let event = eventually("an attempt is recorded", async || {
        let (_, page) = app.admin().get("/events").await;
        let event = page["events"][0].clone();
        (!event["delivery"]["attempts"].as_array().unwrap().is_empty()).then_some(event)
    })
    .await;
    let attempt = &event["delivery"]["attempts"][0];
    assert_eq!(attempt["error"], "unreachable");
    assert!(attempt["status_code"].is_null());
    assert_eq!(event["delivery"]["state"], "pending");
    assert_eq!(
        app.metric("emailoctopus_connect_events_pending").await,
        Some(1.0)
    );
    app.clock.advance(Duration::from_secs(120));
    let age = app
        .metric("emailoctopus_connect_events_oldest_pending_seconds")
        .await
        .unwrap();
    assert!(age >= 120.0, "{age}");
}
