// Not compiled with the crate: copy into tests/it/ (and add `mod measure_pool;`
// to tests/it/main.rs) at the commit to measure, then run
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//     cargo test --test it measure_pool -- --include-ignored --nocapture
// At commits whose test support always adds --provider-timeout-secs=2, drop
// that default first: the provider here answers in 8 s.
//! Measures (not asserts) how long /readyz, the connect page and an API-key
//! access token take while twelve refreshes wait 8 s at the provider.
use std::time::{Duration, Instant};
use reqwest::StatusCode;
use crate::support::{start, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement"]
async fn measure_pool_under_slow_refreshes() {
    let (provider, _db, app) = start(Backend::Postgres, &["--provider-timeout-secs=20"]).await;
    let ids: Vec<String> = (0..12).map(|i| format!("slow-{i}")).collect();
    for id in &ids {
        assert_eq!(app.connect(id).await.status(), StatusCode::OK);
    }
    app.connect_api_key("keyed").await;
    app.clock.advance(Duration::from_secs(3600 - 30));
    provider.set(|c| c.token_delay = Duration::from_secs(8));
    let admin = std::sync::Arc::new(app.admin());
    let refreshes: Vec<_> = ids.iter().map(|id| {
        let (admin, path) = (admin.clone(), format!("/connections/{id}/access-token"));
        tokio::spawn(async move { admin.get(&path).await })
    }).collect();
    while provider.token_requests("refresh_token").len() < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = reqwest::Client::new();
    for path in ["/readyz", "/"] {
        let t = Instant::now();
        let s = http.get(app.at(path)).send().await.map(|a| a.status().as_u16());
        eprintln!("MEASURE {path}: {:?} in {:?}", s, t.elapsed());
    }
    let t = Instant::now();
    let (s, _) = admin.get("/connections/keyed/access-token").await;
    eprintln!("MEASURE api-key access-token: {s} in {:?}", t.elapsed());
    let mut ok = 0;
    for r in refreshes { if r.await.unwrap().0 == StatusCode::OK { ok += 1; } }
    eprintln!("MEASURE refreshes ok: {ok}/12, provider saw {}", provider.token_requests("refresh_token").len());
}
