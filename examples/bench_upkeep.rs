//! The background upkeep's benchmark helper (bench/upkeep.sh).
//!
//! - `bench_upkeep seed DATABASE_URL KEY N`: stores N OAuth connections
//!   `seed-000000`... sealed under KEY, none due, in transactions of 1,000.
//! - `bench_upkeep due DATABASE_URL N`: makes the first N of them due now
//!   (their access tokens expire in two minutes).
//! - `bench_upkeep passes DATABASE_URL KEY PROVIDER_URL PASSES`: builds the
//!   server on that database and times PASSES upkeep passes one after
//!   another; prints `RESULT p50_ms=.. p99_ms=.. max_ms=.. outcomes=.. refreshed=..`.
//!
//! The seed writes rows with SQL of its own (a benchmark's copy of the
//! columns), but seals with the server's credential subkey and associated data, so
//! every seeded credential opens and refreshes like a real one.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use emailoctopus_connect::app::App;
use emailoctopus_connect::checked::ConnectionId;
use emailoctopus_connect::config::{self, Cli};
use emailoctopus_connect::connections::{aad, Field, UpkeepOutcome};
use emailoctopus_connect::crypto::{KeyRing, Purpose};
use emailoctopus_connect::store::{DatabaseUrl, PoolSettings, Store};
use sqlx::any::AnyPoolOptions;

const CHUNK: usize = 1000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("seed") => seed(&args[2], &args[3], args[4].parse().unwrap()).await,
        Some("due") => make_due(&args[2], args[3].parse().unwrap()).await,
        Some("passes") => passes(&args[2], &args[3], &args[4], args[5].parse().unwrap()).await,
        _ => {
            eprintln!("usage: bench_upkeep seed|due|passes ... (see the source)");
            std::process::exit(2);
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn id(n: usize) -> String {
    format!("seed-{n:06}")
}

async fn pool(url: &str) -> sqlx::AnyPool {
    // Runs the migrations (and creates an SQLite file) as the server would.
    let settings = PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(30),
        start_timeout: Duration::from_secs(30),
    };
    let database_url = DatabaseUrl::parse(url).unwrap();
    Store::connect(&database_url, &settings)
        .await
        .unwrap()
        .close()
        .await;
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

async fn seed(url: &str, key: &str, n: usize) {
    let started = Instant::now();
    let keys = KeyRing::parse(key).unwrap().sealer(Purpose::Credentials);
    let pool = pool(url).await;
    let now = now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(CHUNK) {
        let mut tx = pool.begin().await.unwrap();
        for &n in chunk {
            let id = ConnectionId::parse(&id(n)).unwrap();
            let access = keys.seal(
                format!("seed-access-{n}").as_bytes(),
                &aad(&id, Field::Access),
            );
            let refresh = keys.seal(
                format!("seed-refresh-{n}").as_bytes(),
                &aad(&id, Field::Refresh),
            );
            sqlx::query(
                "INSERT INTO connections (id, kind, status, scopes, token_type, access_token, refresh_token,
                   expires_at, created_at, updated_at, next_work_at, failures)
                 VALUES ($1, 'oauth', 'connected', '', 'Bearer', $2, $3, $4, $5, $5, $6, 0)",
            )
            .bind(id.as_str())
            .bind(access)
            .bind(refresh)
            .bind(now + 3600)
            .bind(now)
            .bind(now + 3600 - 300)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    println!(
        "RESULT seeded={n} seconds={:.1}",
        started.elapsed().as_secs_f64()
    );
}

async fn make_due(url: &str, n: usize) {
    let pool = pool(url).await;
    let now = now();
    let done = sqlx::query(
        "UPDATE connections SET expires_at = $1, updated_at = $2, next_work_at = $3 WHERE id < $4",
    )
    .bind(now + 120)
    .bind(now - 3600 + 120)
    .bind(now - 1)
    .bind(id(n))
    .execute(&pool)
    .await
    .unwrap();
    println!("RESULT due={}", done.rows_affected());
}

async fn passes(url: &str, key: &str, provider: &str, count: usize) {
    let cli = Cli::try_parse_from([
        "emailoctopus-connect".to_owned(),
        "--listen-addr=127.0.0.1:0".to_owned(),
        format!("--database-url={url}"),
        format!("--token-encryption-key={key}"),
        "--client-id=bench".to_owned(),
        "--client-secret=bench-secret".to_owned(),
        format!("--authorize-url={provider}/authorize"),
        format!("--token-url={provider}/token"),
        format!("--api-base-url={provider}"),
    ])
    .unwrap();
    let config = cli.settings.check(config::Purpose::Serve).unwrap();
    let app = App::build(config).await.unwrap();
    let maintenance = app.maintenance();
    let mut took = Vec::with_capacity(count);
    let (mut outcomes, mut refreshed) = (0, 0);
    for _ in 0..count {
        let started = Instant::now();
        let report = maintenance.pass().await;
        outcomes += report.outcomes.len();
        refreshed += report
            .outcomes
            .iter()
            .filter(|o| **o == UpkeepOutcome::Refreshed)
            .count();
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    println!(
        "RESULT p50_ms={:.2} p99_ms={:.2} max_ms={:.2} outcomes={outcomes} refreshed={refreshed}",
        at(0.5),
        at(0.99),
        took[took.len() - 1]
    );
}
