//! Several instances on one database: flows finish anywhere, one refresh
//! across all of them, a dead refresher blocks nobody, a database that goes
//! away fails requests cleanly and loses nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::watch;

use crate::on_both_backends;
use crate::support::cut::Cuttable;
use crate::support::{
    eventually, location, new_key, spawn_binary, Backend, FakeProvider, TestApp, TestDb,
    ADMIN_TOKEN,
};

on_both_backends!(a_flow_begun_on_one_instance_finishes_on_another);

/// Flags for an instance behind a load balancer: every instance shares the
/// key and the public redirect URI.
fn shared_args(provider: &FakeProvider, key: &str) -> Vec<String> {
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={key}"));
    args.push("--redirect-uri=http://127.0.0.1:9/callback".into());
    args
}

/// The callback URL the provider sent, re-aimed at `app` (as a load balancer would).
fn via(app: &TestApp, callback: &str) -> String {
    let url = url::Url::parse(callback).unwrap();
    app.at(&format!("/callback?{}", url.query().unwrap()))
}

async fn a_flow_begun_on_one_instance_finishes_on_another(backend: Backend) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let args = shared_args(&provider, &new_key());
    let (first, second) = (
        TestApp::start(&db, &args).await,
        TestApp::start(&db, &args).await,
    );
    let browser = first.browser();
    let session = first.session("roaming").await;
    let auth = browser
        .get(first.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    let back = browser.get(location(&auth)).send().await.unwrap();
    let done = browser
        .get(via(&second, &location(&back)))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(
        second.admin().get("/connections/roaming").await.1["status"],
        "connected"
    );
    // The session was used up on the first instance: the second refuses it too.
    let again = browser
        .get(second.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
async fn two_instances_on_postgres_refresh_once() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    let args = shared_args(&provider, &new_key());
    let instances = [
        TestApp::start(&db, &args).await,
        TestApp::start(&db, &args).await,
    ];
    let browser = instances[0].browser();
    let callback = instances[0]
        .begin(&browser, &instances[0].session("shared").await)
        .await;
    assert_eq!(
        browser
            .get(via(&instances[0], &callback))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for app in &instances {
        app.clock.advance(Duration::from_secs(3600 - 10));
    }
    provider.set(|c| c.token_delay = Duration::from_millis(300));
    let admins: Vec<_> = instances
        .iter()
        .map(|a| std::sync::Arc::new(a.admin()))
        .collect();
    let calls = (0..200).map(|i| {
        let admin = admins[i % 2].clone();
        tokio::spawn(async move { admin.get("/connections/shared/access-token").await })
    });
    let answers = futures_util::future::join_all(calls).await;
    let tokens: std::collections::HashSet<String> = answers
        .into_iter()
        .map(|a| {
            let (status, body) = a.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(provider.token_requests("refresh_token").len(), 1);
    assert_eq!(tokens.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
async fn a_refresher_killed_mid_refresh_does_not_block_the_others() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    let key = new_key();
    let args = shared_args(&provider, &key);
    let survivor = TestApp::start(&db, &args).await;
    let browser = survivor.browser();
    let callback = survivor.begin(&browser, &survivor.session("k").await).await;
    assert_eq!(
        browser
            .get(via(&survivor, &callback))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // A second process starts a refresh that hangs at the provider, holding the lease.
    provider.set(|c| c.token_delay = Duration::from_secs(30));
    let mut doomed_args = args.clone();
    doomed_args.extend([
        "--listen-addr=127.0.0.1:0".to_owned(),
        format!("--database-url={}", db.url),
        format!("--admin-token={ADMIN_TOKEN}"),
        "--provider-timeout-secs=60".to_owned(),
    ]);
    let (mut doomed, doomed_url) = spawn_binary(&doomed_args).await;
    let hanging = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{doomed_url}/connections/k/refresh"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
    });
    eventually(
        "the doomed instance's refresh reaches the provider",
        async || !provider.token_requests("refresh_token").is_empty(),
    )
    .await;
    doomed.start_kill().unwrap();
    doomed.wait().await.unwrap();
    let _ = hanging.await;
    provider.set(|c| c.token_delay = Duration::ZERO);

    // Reading the credential never waits for the dead process.
    let started = Instant::now();
    let (status, body) = survivor.admin().get("/connections/k/access-token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Its lease runs out (at most the refresh timeout and a margin) and a
    // refresh goes through.
    survivor.clock.advance(Duration::from_secs(66));
    let started = Instant::now();
    let (status, body) = survivor
        .admin()
        .post("/connections/k/refresh", serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?} for a dead process's lease",
        started.elapsed()
    );
    assert_eq!(provider.token_requests("refresh_token").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
async fn a_database_that_goes_away_fails_requests_cleanly_and_loses_nothing() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
        .parse()
        .unwrap();
    let relay = Cuttable::start(target).await;
    url.set_port(Some(relay.addr.port())).unwrap();
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    args.push("--database-acquire-timeout-secs=1".into());
    let app = TestApp::start_on(url.as_str(), &args).await;
    assert_eq!(app.connect("durable").await.status(), StatusCode::OK);

    // Under load: a stream of requests runs while the database goes away
    // and comes back, until the test has seen it served again.
    let admin = Arc::new(app.admin());
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let (stop_load, load_stopped) = watch::channel(false);
    let load = {
        let (admin, statuses) = (admin.clone(), statuses.clone());
        tokio::spawn(async move {
            while !*load_stopped.borrow() {
                let status = admin.get("/connections/durable/access-token").await.0;
                statuses.lock().unwrap().push(status);
                // The load's pace, twenty requests a second: not a wait for anything.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let served_since = |since: usize| statuses.lock().unwrap()[since..].contains(&StatusCode::OK);
    eventually("the load is served before the cut", async || {
        served_since(0)
    })
    .await;
    relay.cut();
    let started = Instant::now();
    let ready = reqwest::get(app.at("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Reads fail cleanly (an access token opened in the last second may
    // still be served from memory, which is why the load accepts 200 too).
    let (status, problem) = admin.get("/connections/durable").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem["title"], "Storage unavailable");
    // Past the second in which the credential was last opened.
    app.clock.advance(Duration::from_secs(1));
    let (status, problem) = admin.get("/connections/durable/access-token").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(started.elapsed() < Duration::from_secs(12));
    let before_restore = statuses.lock().unwrap().len();
    relay.restore();
    eventually("the load is served again after the restore", async || {
        served_since(before_restore)
    })
    .await;
    stop_load.send(true).unwrap();
    load.await.unwrap();

    let statuses = statuses.lock().unwrap().clone();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert_eq!(*statuses.last().unwrap(), StatusCode::OK, "{statuses:?}");
    assert_eq!(
        reqwest::get(app.at("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        admin.get("/connections/durable").await.1["status"],
        "connected"
    );
}
