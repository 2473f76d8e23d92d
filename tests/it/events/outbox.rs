//! The outbox itself: kept for polling without a webhook, written in one
//! transaction with the change it announces, and shared by instances
//! without any event sent twice at once.

use std::time::Duration;

use reqwest::StatusCode;

use super::delivery::all_events;
use crate::on_both_backends;
use crate::support::receiver::Hooked;
use crate::support::{new_key, Backend, FakeProvider, TestApp, TestDb};

on_both_backends!(an_event_that_cannot_be_written_undoes_its_change);

#[tokio::test]
async fn without_a_webhook_events_are_kept_for_polling() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    let app = TestApp::start(&db, &args).await;
    app.connect_api_key("k").await;
    assert_eq!(
        app.admin().delete("/connections/k").await.status(),
        StatusCode::NO_CONTENT
    );
    let events = all_events(&app, "/events", 1).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["connection.created", "connection.deleted"]);
    assert!(events.iter().all(|e| e["delivery"]["state"] == "not_sent"));
    let id = events[0]["id"].as_str().unwrap();
    let (status, body) = app
        .admin()
        .post(&format!("/events/{id}/redeliver"), serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // The cursor of the last page gives nothing new, until something happens.
    let (_, page) = app.admin().get("/events").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, later) = app.admin().get(&format!("/events?after={cursor}")).await;
    assert_eq!(later["events"].as_array().unwrap().len(), 0);
    assert_eq!(later["next_cursor"], cursor.as_str());
    app.connect_api_key("k").await;
    let (_, later) = app.admin().get(&format!("/events?after={cursor}")).await;
    assert_eq!(later["events"][0]["event"], "connection.created");
}

#[tokio::test]
async fn finished_events_are_pruned_after_their_retention_and_pending_ones_never() {
    let Hooked {
        db, receiver, args, ..
    } = Hooked::start(Backend::Sqlite).await;
    let app = TestApp::start(
        &db,
        &[args, vec!["--event-retention-days=1".into()]].concat(),
    )
    .await;
    app.connect_api_key("delivered").await;
    receiver.wait_for_delivered(1).await;
    receiver.fail(true);
    app.connect_api_key("pending").await;
    receiver.wait_for(2).await;
    app.clock.advance(Duration::from_secs(2 * 86400));
    app.connect_api_key("recent").await;
    let kept = crate::support::eventually("the old delivered event is pruned", async || {
        let events = all_events(&app, "/events", 100).await;
        (events.len() == 2).then_some(events)
    })
    .await;
    let ids: Vec<&str> = kept
        .iter()
        .map(|e| e["connection_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pending", "recent"]);
}

/// The database refuses every event row (a trigger, as a full disk or a
/// broken migration would): the change the event announces is refused too.
async fn an_event_that_cannot_be_written_undoes_its_change(backend: Backend) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    let app = TestApp::start(&db, &args).await;
    app.connect_api_key("kept").await;

    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let refuse = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse_events BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_events()",
        ],
    };
    for statement in refuse {
        sqlx::Executor::execute(&mut conn, statement).await.unwrap();
    }

    let (status, body) = app
        .admin()
        .put(
            "/connections/new/api-key",
            serde_json::json!({ "api_key": crate::support::provider::API_KEY }),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        app.admin().get("/connections/new").await.0,
        StatusCode::NOT_FOUND
    );
    let deleted = app.admin().delete("/connections/kept").await;
    assert_eq!(deleted.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.admin().get("/connections/kept").await.0, StatusCode::OK);
    let events = all_events(&app, "/events", 100).await;
    assert_eq!(
        events.len(),
        1,
        "only the first connect's event: {events:?}"
    );

    let allow = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_events",
        Backend::Postgres => "DROP TRIGGER refuse_events ON events",
    };
    sqlx::Executor::execute(&mut conn, allow).await.unwrap();
    app.connect_api_key("new").await;
    assert_eq!(all_events(&app, "/events", 100).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
async fn two_instances_deliver_each_event_once_and_never_at_the_same_time() {
    let Hooked {
        db,
        receiver,
        app,
        args,
        ..
    } = Hooked::start(Backend::Postgres).await;
    *receiver.delay.lock().unwrap() = Duration::from_millis(100);
    receiver.fail(true);
    let instances = [app, TestApp::start(&db, &args).await];
    const EVENTS: usize = 20;
    let connects = (0..EVENTS).map(|i| {
        let (app, id) = (&instances[i % 2], format!("c{i}"));
        async move { app.connect_api_key(&id).await }
    });
    futures_util::future::join_all(connects).await;
    // Every event is tried and refused at least once, some more than once,
    // by either instance; then the receiver recovers.
    receiver.wait_for_tried(EVENTS).await;
    receiver.fail(false);
    let delivered = receiver.wait_for_delivered(EVENTS).await;
    // A few polls of both instances pass: no late second delivery arrives
    // (this wait is the behaviour under test).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered_again = receiver.delivered();
    assert_eq!(delivered, delivered_again);
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    assert!(
        receiver.overlapping.lock().unwrap().is_empty(),
        "deliveries of one event overlapped: {:?}",
        receiver.overlapping.lock().unwrap()
    );
    let both_sent = all_events(&instances[0], "/events", 100).await;
    assert_eq!(both_sent.len(), EVENTS);
    assert!(both_sent
        .iter()
        .all(|e| e["delivery"]["state"] == "delivered"));
}
