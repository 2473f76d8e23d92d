//! Refresh storm (bench/proxy.sh, bench/instances.sh): many callers ask for a
//! connection's access token at the same moment, just after it expired. The
//! provider must see one refresh, and every caller must get the new token
//! soon after the provider's answer.
//!
//! Usage: `bench_storm BASE_URL[,BASE_URL...] PROVIDER_URL ADMIN_TOKEN
//! [CALLERS] [ROUNDS] [DELAY_MS]` (defaults 500 callers, 3 rounds, 200 ms).
//!
//! Each round: tells the provider (`bench_provider`'s `/control`) to give
//! tokens that expire at once and to hold refresh answers back DELAY_MS;
//! connects a new connection `storm-R-PID` through a full flow (connect
//! session, `/auth`, callback); waits until the server counts the token as
//! due (it takes a lifetime under 30 s as 30 s and refreshes at half of it,
//! so 16 s; the background upkeep may refresh it first, which must then be
//! the round's one refresh); opens CALLERS connections (rotating over the
//! instances), and once all are open sends `GET /connections/ID/access-token`
//! on every one at once. Then it asks the provider's `/stats` how many
//! refreshes it answered and when it answered the last one, and measures each
//! call's answer against that moment (the clocks are the same machine's).
//! Prints each round, then `RESULT ...` over all rounds.

#[path = "support/http1.rs"]
mod http1;

/// When a token the provider says expires at once is due at the server.
const DUE_AFTER: Duration = Duration::from_secs(16);

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http1::{connect_flow, percentile_ms, Browser, Connection};
use tokio::sync::Barrier;
use url::{Position, Url};

fn unix_us() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// One caller's answer: status, the token it got, when it came (Unix µs) and
/// how long after the common start.
struct Call {
    status: u16,
    token: Option<String>,
    done_unix_us: i64,
    latency_us: u32,
}

async fn call(
    mut connection: Connection,
    authority: String,
    target: Arc<str>,
    bearer: Arc<str>,
    barrier: Arc<Barrier>,
) -> Result<Call, String> {
    barrier.wait().await;
    let started = Instant::now();
    let answer = connection
        .send(
            "GET",
            &authority,
            &target,
            &[("Authorization", &bearer)],
            b"",
        )
        .await
        .map_err(|e| format!("{authority}: {}", e.kind()))?;
    Ok(Call {
        status: answer.status,
        token: answer.json_str("access_token"),
        done_unix_us: unix_us(),
        latency_us: u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX),
    })
}

async fn provider_stats(browser: &mut Browser, url: &str) -> Result<(u64, i64), String> {
    let answer = browser.get(url, None).await?;
    let stats: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|e| format!("stats: {e}"))?;
    Ok((
        stats["refreshes"].as_u64().unwrap_or(0),
        stats["last_refresh_answer_unix_us"].as_i64().unwrap_or(0),
    ))
}

fn authority(base: &str) -> String {
    let url = Url::parse(base).expect("BASE_URL is a URL");
    url[Position::BeforeHost..Position::AfterPort].to_owned()
}

#[tokio::main]
async fn main() {
    let usage = "usage: bench_storm BASE_URL[,BASE_URL...] PROVIDER_URL ADMIN_TOKEN [CALLERS] [ROUNDS] [DELAY_MS]";
    let mut args = std::env::args().skip(1);
    let bases: Vec<String> = args
        .next()
        .expect(usage)
        .split(',')
        .map(|b| b.trim_end_matches('/').to_owned())
        .collect();
    let provider = args.next().expect(usage).trim_end_matches('/').to_owned();
    let admin = args.next().expect(usage);
    let callers: usize = args.next().map_or(500, |a| a.parse().expect("a number"));
    let rounds: usize = args.next().map_or(3, |a| a.parse().expect("a number"));
    let delay_ms: u64 = args.next().map_or(200, |a| a.parse().expect("a number"));
    let bearer: Arc<str> = format!("Bearer {admin}").into();

    let mut browser = Browser::default();
    let (mut lags_us, mut worst_latency_us) = (Vec::new(), 0u32);
    let (mut errors, mut early, mut rounds_with_one_refresh, mut stale) = (0, 0, 0, 0);
    for round in 0..rounds {
        let id = format!("storm-{round}-{}", std::process::id());
        let control = format!("{provider}/control?code_expires_in=0&refresh_delay_ms={delay_ms}");
        browser
            .get(&control, None)
            .await
            .expect("the provider answers");
        connect_flow(&mut browser, &bases[0], None, Some((&admin, &id)))
            .await
            .expect("the storm's connection connects");
        // Tokens of later flows (other benchmarks) live long again.
        let control = format!("{provider}/control?code_expires_in=3600");
        browser
            .get(&control, None)
            .await
            .expect("the provider answers");
        let stats_url = format!("{provider}/stats");
        let (refreshes_before, _) = provider_stats(&mut browser, &stats_url)
            .await
            .expect("the provider's stats");
        tokio::time::sleep(DUE_AFTER).await;

        let target: Arc<str> = format!("/connections/{id}/access-token").into();
        let barrier = Arc::new(Barrier::new(callers));
        let mut tasks = Vec::with_capacity(callers);
        for i in 0..callers {
            let authority = authority(&bases[i % bases.len()]);
            let connection = Connection::open(&authority)
                .await
                .expect("a connection to the server opens");
            tasks.push(tokio::spawn(call(
                connection,
                authority,
                target.clone(),
                bearer.clone(),
                barrier.clone(),
            )));
        }
        let mut calls = Vec::with_capacity(callers);
        let mut round_errors = 0;
        for task in tasks {
            match task.await.expect("a caller does not panic") {
                Ok(call) if call.status == 200 => calls.push(call),
                Ok(call) => {
                    round_errors += 1;
                    eprintln!("round {round}: access-token answered {}", call.status);
                }
                Err(error) => {
                    round_errors += 1;
                    eprintln!("round {round}: {error}");
                }
            }
        }
        let (refreshes_after, answered_at) = provider_stats(&mut browser, &stats_url)
            .await
            .expect("the provider's stats");
        let refreshes = refreshes_after - refreshes_before;
        let tokens: HashSet<_> = calls.iter().filter_map(|c| c.token.as_deref()).collect();
        let round_stale = calls
            .iter()
            .filter(|c| !c.token.as_deref().is_some_and(|t| t.contains("refreshed")))
            .count();
        let mut round_lags: Vec<i64> = calls.iter().map(|c| c.done_unix_us - answered_at).collect();
        round_lags.sort_unstable();
        let round_early = round_lags.iter().filter(|lag| **lag < 0).count();
        let lags: Vec<u32> = round_lags
            .iter()
            .map(|lag| u32::try_from(*lag).unwrap_or(0))
            .collect();
        let latency_max = calls.iter().map(|c| c.latency_us).max().unwrap_or(0);
        println!(
            "round {round}: {} of {callers} answered 200, {round_errors} errors; provider refreshes: {refreshes}; \
             distinct tokens: {}, not the refreshed one: {round_stale}; after the provider's answer: \
             p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({round_early} before it); slowest call {:.1} ms (refresh held {delay_ms} ms)",
            calls.len(),
            tokens.len(),
            percentile_ms(&lags, 0.5),
            percentile_ms(&lags, 0.99),
            percentile_ms(&lags, 1.0),
            f64::from(latency_max) / 1000.0,
        );
        errors += round_errors;
        early += round_early;
        stale += round_stale;
        rounds_with_one_refresh += usize::from(refreshes == 1 && tokens.len() == 1);
        worst_latency_us = worst_latency_us.max(latency_max);
        lags_us.extend(lags);
    }
    lags_us.sort_unstable();
    println!(
        "RESULT callers={callers} rounds={rounds} delay_ms={delay_ms} lag_p99_ms={:.2} lag_max_ms={:.2} \
         slowest_ms={:.1} errors={errors} before_answer={early} stale={stale} one_refresh_rounds={rounds_with_one_refresh}",
        percentile_ms(&lags_us, 0.99),
        percentile_ms(&lags_us, 1.0),
        f64::from(worst_latency_us) / 1000.0,
    );
}
