//! The server keeps connections healthy by itself: tokens refreshed ahead of
//! need, API keys checked, the app told by webhook, expired records swept,
//! and on Postgres the work shared between instances, each job done once.
//! Passes are run by the test, and time moves on the clock seam.

use std::time::Duration;

use emailoctopus_connect::connections::{KeyHealth, UpkeepOutcome};
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::receiver::Receiver;
use crate::support::{
    eventually, new_key, start, Backend, FakeProvider, TestApp, TestDb, TokenAnswer,
};

on_both_backends!(
    a_token_about_to_expire_is_refreshed_before_anyone_asks,
    an_unused_connection_is_refreshed_before_its_refresh_token_is_forgotten,
    a_deleted_api_key_is_noticed_by_the_check_and_its_return_too,
    a_key_refused_through_the_proxy_needs_reauth_at_once,
    reconnecting_after_a_refused_refresh_is_announced_as_recovered,
    a_run_of_failed_refreshes_is_announced_once,
    sweeps_delete_expired_records_and_nothing_else,
);

const DAY: u64 = 24 * 60 * 60;

async fn with_webhooks(
    backend: Backend,
    extra: &[&str],
) -> (FakeProvider, TestDb, TestApp, Receiver) {
    let receiver = Receiver::default();
    let mut args: Vec<String> = receiver.args().await;
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (provider, db, app) = start(backend, &args).await;
    (provider, db, app, receiver)
}

fn count(report: &emailoctopus_connect::maintenance::PassReport, wanted: UpkeepOutcome) -> usize {
    report.outcomes.iter().filter(|o| **o == wanted).count()
}

async fn metrics(app: &TestApp) -> String {
    let answer = app.admin().request(reqwest::Method::GET, "/metrics");
    answer.send().await.unwrap().text().await.unwrap()
}

/// How many events of each `(event, id)` the outbox holds: final counts
/// (each event is written with its change), in which an extra one would
/// show; and each of them was also delivered, signed, to `receiver`.
async fn final_counts<const N: usize>(
    app: &TestApp,
    receiver: &Receiver,
    wanted: [(&str, &str); N],
) -> [usize; N] {
    let mut counts = [0; N];
    for (count, (event, id)) in counts.iter_mut().zip(wanted) {
        let (_, page) = app.admin().get(&format!("/connections/{id}/events")).await;
        let held = page["events"].as_array().unwrap();
        let held = held.iter().filter(|e| e["event"] == event).count();
        let delivered = format!("{held} {event} of {id} delivered");
        crate::support::eventually(delivered, async || {
            (receiver.events(event, id).len() >= held).then_some(())
        })
        .await;
        *count = held;
    }
    counts
}

async fn a_token_about_to_expire_is_refreshed_before_anyone_asks(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    assert_eq!(app.connect("warm").await.status(), StatusCode::OK);
    let report = app.upkeep().await;
    assert_eq!(count(&report, UpkeepOutcome::Refreshed), 0, "not due yet");

    // Four minutes before expiry: inside the five-minute refresh-ahead margin.
    app.clock.advance(Duration::from_secs(3600 - 240));
    let report = app.upkeep().await;
    assert_eq!(count(&report, UpkeepOutcome::Refreshed), 1);
    assert_eq!(provider.token_requests("refresh_token").len(), 1);
    let (_, connection) = app.admin().get("/connections/warm").await;
    assert!(connection["last_refreshed_at"].is_string(), "{connection}");
    assert_eq!(connection["last_error"], serde_json::Value::Null);

    // The next call finds a fresh token and does not wait for the provider.
    app.clock.advance(Duration::from_secs(200));
    let (status, _) = app.admin().get("/connections/warm/access-token").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(provider.token_requests("refresh_token").len(), 1);
    // And the next pass finds nothing to do.
    assert_eq!(count(&app.upkeep().await, UpkeepOutcome::Refreshed), 0);
}

async fn an_unused_connection_is_refreshed_before_its_refresh_token_is_forgotten(backend: Backend) {
    let (provider, _db, app) = start(backend, &["--refresh-token-idle-days=30"]).await;
    // Access tokens that live 60 days: only the idle rule can make them due.
    provider.settings(|s| s.expires_in = 60 * DAY as i64);
    assert_eq!(app.connect("quiet").await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(14 * DAY));
    assert_eq!(count(&app.upkeep().await, UpkeepOutcome::Refreshed), 0);
    app.clock.advance(Duration::from_secs(DAY + 1));
    assert_eq!(count(&app.upkeep().await, UpkeepOutcome::Refreshed), 1);
    assert_eq!(provider.token_requests("refresh_token").len(), 1);
}

async fn a_deleted_api_key_is_noticed_by_the_check_and_its_return_too(backend: Backend) {
    let (provider, _db, app, receiver) = with_webhooks(backend, &[]).await;
    app.connect_api_key("keyed").await;
    let (_, connection) = app.admin().get("/connections/keyed").await;
    assert!(connection["last_checked_at"].is_string(), "checked at save");
    let checks_at_save = provider.recorded("/api/lists").len();

    // Within a day nothing is checked: one check per key per interval.
    app.clock.advance(Duration::from_secs(DAY - 60));
    assert!(app.upkeep().await.outcomes.is_empty());
    assert_eq!(provider.recorded("/api/lists").len(), checks_at_save);

    // The owner deleted the key at EmailOctopus.
    provider.set(|c| c.api_refuses_all = true);
    app.clock.advance(Duration::from_secs(DAY / 10 + 120));
    let report = app.upkeep().await;
    assert_eq!(
        report.outcomes,
        vec![UpkeepOutcome::Key(KeyHealth::Rejected)]
    );
    let (_, connection) = app.admin().get("/connections/keyed").await;
    assert_eq!(connection["status"], "needs_reauth");
    assert_eq!(connection["last_error"], "api_key_rejected");
    let events = receiver.arrived("connection.needs_reauth", "keyed").await;
    assert_eq!(events[0]["reason"], "api_key_rejected");
    assert_eq!(events[0]["kind"], "api_key");

    // A later check that passes brings it back, and says so.
    provider.set(|c| c.api_refuses_all = false);
    app.clock.advance(Duration::from_secs(DAY + DAY / 10 + 1));
    let report = app.upkeep().await;
    assert_eq!(report.outcomes, vec![UpkeepOutcome::Key(KeyHealth::Ok)]);
    assert_eq!(
        app.admin().get("/connections/keyed").await.1["status"],
        "connected"
    );
    receiver.arrived("connection.recovered", "keyed").await;

    // An API that is down changes nothing; it is counted.
    provider.set(|c| c.upstream_status = 503);
    app.clock.advance(Duration::from_secs(DAY + DAY / 10 + 1));
    let report = app.upkeep().await;
    assert_eq!(report.outcomes, vec![UpkeepOutcome::Key(KeyHealth::Failed)]);
    assert_eq!(
        app.admin().get("/connections/keyed").await.1["status"],
        "connected"
    );
    let metrics = metrics(&app).await;
    for result in ["ok", "rejected", "failed"] {
        let line =
            format!("emailoctopus_connect_upkeep_total{{job=\"key_check\",result=\"{result}\"}} 1");
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    let counts = final_counts(
        &app,
        &receiver,
        [
            ("connection.needs_reauth", "keyed"),
            ("connection.recovered", "keyed"),
        ],
    )
    .await;
    assert_eq!(counts, [1, 1], "each change announced once");
}

async fn a_key_refused_through_the_proxy_needs_reauth_at_once(backend: Backend) {
    let (provider, _db, app, receiver) = with_webhooks(backend, &[]).await;
    app.connect_api_key("keyed").await;
    provider.set(|c| c.api_refuses_all = true);
    let proxied = app
        .admin()
        .request(reqwest::Method::GET, "/connections/keyed/api/lists")
        .send()
        .await
        .unwrap();
    assert_eq!(
        proxied.status(),
        StatusCode::UNAUTHORIZED,
        "the API's answer comes back"
    );
    let (_, connection) = app.admin().get("/connections/keyed").await;
    assert_eq!(connection["status"], "needs_reauth");
    assert_eq!(connection["last_error"], "api_key_rejected");
    // The next call is refused here, without reaching the API.
    let before = provider.recorded("/api/lists").len();
    let again = app
        .admin()
        .request(reqwest::Method::GET, "/connections/keyed/api/lists")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(provider.recorded("/api/lists").len(), before);
    let events = receiver.arrived("connection.needs_reauth", "keyed").await;
    assert_eq!(events[0]["reason"], "api_key_rejected");
    let counts = final_counts(&app, &receiver, [("connection.needs_reauth", "keyed")]).await;
    assert_eq!(counts, [1], "announced once");
}

async fn reconnecting_after_a_refused_refresh_is_announced_as_recovered(backend: Backend) {
    let (provider, _db, app, receiver) = with_webhooks(backend, &[]).await;
    assert_eq!(app.connect("lapsed").await.status(), StatusCode::OK);
    provider.set(|c| {
        c.refresh_override = Some((
            TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#),
            Duration::ZERO,
        ))
    });
    app.clock.advance(Duration::from_secs(3600 - 60));
    assert_eq!(
        app.upkeep().await.outcomes,
        vec![UpkeepOutcome::RefreshRejected]
    );
    let (_, connection) = app.admin().get("/connections/lapsed").await;
    assert_eq!(connection["status"], "needs_reauth");
    assert_eq!(connection["last_error"], "refresh_rejected");
    let events = receiver.arrived("connection.needs_reauth", "lapsed").await;
    assert_eq!(events[0]["reason"], "refresh_rejected");
    // Nothing more to do for it until a person acts.
    assert!(app.upkeep().await.outcomes.is_empty());

    assert_eq!(app.connect("lapsed").await.status(), StatusCode::OK);
    let (_, connection) = app.admin().get("/connections/lapsed").await;
    assert_eq!(connection["status"], "connected");
    assert_eq!(connection["last_error"], serde_json::Value::Null);
    receiver.arrived("connection.recovered", "lapsed").await;
    // A reconnect of a healthy connection is not a recovery.
    assert_eq!(app.connect("lapsed").await.status(), StatusCode::OK);
    let counts = final_counts(
        &app,
        &receiver,
        [
            ("connection.needs_reauth", "lapsed"),
            ("connection.recovered", "lapsed"),
        ],
    )
    .await;
    assert_eq!(counts, [1, 1], "one refusal, one recovery");
}

async fn a_run_of_failed_refreshes_is_announced_once(backend: Backend) {
    let (provider, _db, app, receiver) =
        with_webhooks(backend, &["--refresh-failing-after=3"]).await;
    assert_eq!(app.connect("flaky").await.status(), StatusCode::OK);
    provider.set(|c| {
        c.refresh_override = Some((
            TokenAnswer::Status(503, r#"{"error":"temporarily_unavailable"}"#),
            Duration::ZERO,
        ))
    });
    app.clock.advance(Duration::from_secs(3600 - 240));
    for _ in 0..5 {
        assert_eq!(
            app.upkeep().await.outcomes,
            vec![UpkeepOutcome::RefreshFailed]
        );
        // Failed refreshes are retried with a growing pause, not on every pass.
        assert!(app.upkeep().await.outcomes.is_empty());
        app.clock.advance(Duration::from_secs(10 * 60));
    }
    let (_, connection) = app.admin().get("/connections/flaky").await;
    assert_eq!(
        connection["status"], "connected",
        "a transient failure needs no person"
    );
    assert_eq!(connection["last_error"], "provider_unavailable");
    receiver
        .arrived("connection.refresh_failing", "flaky")
        .await;

    // Once refresh works again, a new run would be announced again.
    provider.set(|c| c.refresh_override = None);
    assert_eq!(app.upkeep().await.outcomes, vec![UpkeepOutcome::Refreshed]);
    let (_, connection) = app.admin().get("/connections/flaky").await;
    assert_eq!(connection["last_error"], serde_json::Value::Null);
    let counts = final_counts(&app, &receiver, [("connection.refresh_failing", "flaky")]).await;
    assert_eq!(counts, [1], "a run of failures is announced once");
}

async fn sweeps_delete_expired_records_and_nothing_else(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    for i in 0..3 {
        app.session(&format!("later-{i}")).await;
    }
    assert_eq!(app.connect("kept").await.status(), StatusCode::OK);
    // Sessions live 30 minutes and their status an hour after that;
    // finished flow states 10 minutes.
    app.clock.advance(Duration::from_secs(91 * 60));
    let fresh = app.session("fresh").await;
    let report = app.upkeep().await;
    assert_eq!(report.swept.connect_sessions, 4);
    assert_eq!(report.swept.consumed_flow_states, 1);
    assert_eq!(app.upkeep().await.swept, Default::default());

    // What was not expired is untouched: the fresh session still connects.
    let browser = app.browser();
    let callback = app.begin(&browser, &fresh).await;
    assert_eq!(
        browser.get(callback).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(app.admin().get("/connections/kept").await.0, StatusCode::OK);
    let metrics = metrics(&app).await;
    for line in [
        "emailoctopus_connect_swept_rows_total{table=\"connect_sessions\"} 4",
        "emailoctopus_connect_swept_rows_total{table=\"consumed_flow_states\"} 1",
        "emailoctopus_connect_table_rows{table=\"connect_sessions\"} 1",
        "emailoctopus_connect_table_rows{table=\"consumed_flow_states\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
async fn two_instances_share_the_upkeep_and_a_dead_ones_claims_expire() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    // The first instance's refreshes may hang at the provider for a minute.
    let doomed_args = [args.clone(), vec!["--provider-timeout-secs=60".into()]].concat();
    let (first, second) = (
        TestApp::start(&db, &doomed_args).await,
        TestApp::start(&db, &args).await,
    );
    let ids: Vec<String> = (0..200).map(|i| format!("c{i:03}")).collect();
    for id in &ids {
        assert_eq!(second.connect(id).await.status(), StatusCode::OK);
    }

    // Both instances pass at once over 200 due connections: each is refreshed once.
    for app in [&first, &second] {
        app.clock.advance(Duration::from_secs(3600 - 120));
    }
    let mut refreshed = 0;
    loop {
        let (a, b) = tokio::join!(first.upkeep(), second.upkeep());
        if a.outcomes.is_empty() && b.outcomes.is_empty() {
            break;
        }
        refreshed += count(&a, UpkeepOutcome::Refreshed) + count(&b, UpkeepOutcome::Refreshed);
    }
    assert_eq!(refreshed, 200);
    let presented: std::collections::HashSet<String> = provider
        .token_requests("refresh_token")
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    assert_eq!(provider.token_requests("refresh_token").len(), 200);
    assert_eq!(presented.len(), 200, "no refresh token was presented twice");

    // All due again. The first instance claims a batch, its refreshes hang
    // at the provider, and it dies mid-batch.
    for app in [&first, &second] {
        app.clock.advance(Duration::from_secs(3600));
    }
    provider.set(|c| c.refresh_override = Some((TokenAnswer::Hang, Duration::ZERO)));
    let before = provider.token_requests("refresh_token").len();
    let dying = tokio::spawn(async move {
        first.upkeep().await;
        first
    });
    eventually(
        "the dying instance's refreshes reach the provider",
        async || provider.token_requests("refresh_token").len() >= before + 4,
    )
    .await;
    dying.abort();
    let _ = dying.await;
    provider.set(|c| c.refresh_override = None);

    // The second does all that is due now; the dead one's claims are
    // skipped until they expire, then taken over.
    let mut refreshed = 0;
    loop {
        let report = second.upkeep().await;
        if report.outcomes.is_empty() {
            break;
        }
        refreshed += count(&report, UpkeepOutcome::Refreshed);
    }
    assert!(
        refreshed < 200,
        "the dead instance's claims were still held"
    );
    second.clock.advance(Duration::from_secs(15 * 60));
    loop {
        let report = second.upkeep().await;
        if report
            .outcomes
            .iter()
            .all(|o| *o != UpkeepOutcome::Refreshed)
        {
            break;
        }
        refreshed += count(&report, UpkeepOutcome::Refreshed);
    }
    assert_eq!(refreshed, 200, "every connection once");
    for id in &ids {
        let (_, connection) = second.admin().get(&format!("/connections/{id}")).await;
        assert_eq!(connection["status"], "connected", "{connection}");
    }
}
