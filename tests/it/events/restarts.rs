//! A server killed outright (SIGKILL) while its receiver is failing loses
//! no event: started again on the same database, it delivers each one
//! exactly once when the receiver recovers.

use reqwest::StatusCode;

use crate::support::receiver::Receiver;
use crate::support::{
    new_key, provider::API_KEY, spawn_binary, with_flag, FakeProvider, ADMIN_TOKEN,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_pending_at_a_sigkill_are_delivered_once_after_the_restart() {
    let provider = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    receiver.fail(true);
    let mut args = provider.args();
    args.extend([
        format!("--token-encryption-key={}", new_key()),
        format!(
            "--database-url=sqlite://{}",
            dir.path().join("events.db").display()
        ),
        format!("--admin-token={ADMIN_TOKEN}"),
        "--listen-addr=127.0.0.1:0".into(),
        "--provider-timeout-secs=2".into(),
    ]);
    args.extend(receiver.args().await);
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
