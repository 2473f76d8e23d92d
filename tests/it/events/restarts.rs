//! Events across the end of a process: a server killed outright (SIGKILL)
//! while its receiver is failing loses none and, started again on the same
//! database, delivers each exactly once when the receiver recovers; one
//! killed in the middle of a delivery has it sent again once the lease runs
//! out; a stop lets a delivery in flight finish.

use reqwest::StatusCode;

use crate::support::receiver::{Hooked, Receiver};
use crate::support::{
    new_key, provider::API_KEY, spawn_binary, with_flag, Backend, FakeProvider, TestApp,
    ADMIN_TOKEN,
};

/// The real binary's flags: an SQLite file in `dir` (so a restart finds
/// it), webhooks to `receiver`, a 2 s provider timeout.
async fn binary_args(
    provider: &FakeProvider,
    dir: &std::path::Path,
    receiver: &Receiver,
) -> Vec<String> {
    let mut args = provider.args();
    args.extend([
        format!("--token-encryption-key={}", new_key()),
        format!(
            "--database-url=sqlite://{}",
            dir.join("events.db").display()
        ),
        format!("--admin-token={ADMIN_TOKEN}"),
        "--listen-addr=127.0.0.1:0".into(),
        "--provider-timeout-secs=2".into(),
    ]);
    args.extend(receiver.args().await);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_pending_at_a_sigkill_are_delivered_once_after_the_restart() {
    let provider = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    receiver.fail(true);
    let args = binary_args(&provider, dir.path(), &receiver).await;
    // Short first retries: the ones due after the restart come within seconds.
    let args = with_flag(args, "--webhook-retry-base-ms", "50");

    let (mut doomed, url) = spawn_binary(&args).await;
    const EVENTS: usize = 5;
    let http = reqwest::Client::new();
    for i in 0..EVENTS {
        let answer = http
            .put(format!("{url}/connections/c{i}/api-key"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "api_key": API_KEY }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }
    receiver.wait_for(EVENTS).await;
    doomed.start_kill().unwrap();
    doomed.wait().await.unwrap();
    assert!(receiver.delivered().is_empty());

    let (_revived, url) = spawn_binary(&args).await;
    receiver.fail(false);
    let delivered = receiver.wait_for_delivered(EVENTS).await;
    // A few polls pass: no second delivery of any event arrives (this wait
    // is the behaviour under test).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered(), delivered);
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    let page: serde_json::Value = http
        .get(format!("{url}/events"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), EVENTS);
    for event in events {
        assert_eq!(event["delivery"]["state"], "delivered", "{event}");
        assert!(delivered.contains_key(event["id"].as_str().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_cut_off_by_a_kill_is_sent_again_once_its_lease_runs_out() {
    let provider = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    *receiver.delay.lock().unwrap() = std::time::Duration::from_secs(60);
    // A lease is five times the provider timeout: ten seconds.
    let args = binary_args(&provider, dir.path(), &receiver).await;
    let (mut doomed, url) = spawn_binary(&args).await;
    let answer = reqwest::Client::new()
        .put(format!("{url}/connections/cut/api-key"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "api_key": API_KEY }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    receiver.wait_for_open_delivery().await;
    doomed.start_kill().unwrap();
    doomed.wait().await.unwrap();
    *receiver.delay.lock().unwrap() = std::time::Duration::ZERO;

    let started = std::time::Instant::now();
    let (_revived, _) = spawn_binary(&args).await;
    let delivered = crate::support::wait::eventually_within(
        std::time::Duration::from_secs(30),
        "the cut-off delivery is sent again",
        async || (!receiver.delivered().is_empty()).then(|| receiver.delivered()),
    )
    .await;
    assert_eq!(delivered.len(), 1);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "not before the dead process's lease ran out ({:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_lets_a_delivery_in_flight_finish() {
    let Hooked {
        db,
        receiver,
        app,
        args,
        ..
    } = Hooked::start(Backend::Sqlite).await;
    *receiver.delay.lock().unwrap() = std::time::Duration::from_millis(1500);
    app.connect_api_key("leaving").await;
    receiver.wait_for_open_delivery().await;
    app.stop().await;
    assert_eq!(
        receiver.delivered().len(),
        1,
        "answered before the stop finished"
    );
    let again = TestApp::start(&db, &args).await;
    let (_, page) = again.admin().get("/events").await;
    assert_eq!(page["events"][0]["delivery"]["state"], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_that_cuts_a_delivery_short_gives_its_lease_back() {
    let Hooked {
        db,
        receiver,
        app,
        args,
        ..
    } = Hooked::start(Backend::Sqlite).await;
    // Longer than the stop's grace (5 s): the attempt is cut short.
    *receiver.delay.lock().unwrap() = std::time::Duration::from_secs(60);
    app.connect_api_key("cut-short").await;
    receiver.wait_for_open_delivery().await;
    app.stop().await;
    *receiver.delay.lock().unwrap() = std::time::Duration::ZERO;
    // The lease (five times the test's 2 s provider timeout) would hold the
    // event for another 5 s: given back, it is sent at once.
    let _again = TestApp::start(&db, &args).await;
    crate::support::wait::eventually_within(
        std::time::Duration::from_secs(3),
        "the cut-short event is sent at once after the restart",
        async || !receiver.delivered().is_empty(),
    )
    .await;
}
