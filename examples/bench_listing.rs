//! The listing benchmark's helper (bench/listing.sh).
//!
//! - `bench_listing seed DATABASE_URL N`: stores N connections `seed-000000`...
//!   with an end user each (two connections a user, mixed-case emails),
//!   three tags (`plan`, `region`, `cohort`: 1 in 100 share a cohort), every
//!   other one OAuth, every tenth needing re-authorization; in transactions
//!   of 1,000, many rows a statement. Then ANALYZE, so Postgres plans with
//!   the real sizes.
//! - `bench_listing plans DATABASE_URL`: prints the query plan of each
//!   filter's page, as the store would run it.
//! - `bench_listing ceiling DATABASE_URL FILTER SECONDS TASKS CONNECTIONS`: the
//!   same page statement the server runs for FILTER (`none`, `deep`,
//!   `end_user_id`, `end_user_email`, `status`, `kind`, `tag`), straight
//!   through sqlx on CONNECTIONS connections from TASKS tasks, each row
//!   turned into the answer's JSON; prints `RESULT per_sec=.. p50_ms=.. p99_ms=.. rows=..`.
//!
//! The seed writes rows with SQL of its own (a benchmark's copy of the
//! columns). The credentials are placeholder bytes: a listing never opens
//! them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use emailoctopus_connect::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use emailoctopus_connect::store::{
    ConnectionFilter, DatabaseUrl, PageStatement, PoolSettings, Store,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};

const CHUNK: usize = 1000;
/// Rows a seeding statement inserts (connections; their tags take three times as many).
const ROWS_A_STATEMENT: usize = 100;
const LIMIT: i64 = 100;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("seed") => seed(&args[2], args[3].parse().unwrap()).await,
        Some("plans") => plans(&args[2]).await,
        Some("ceiling") => {
            let number = |i: usize| args[i].parse::<u64>().unwrap();
            ceiling(&args[2], &args[3], number(4), number(5), number(6)).await
        }
        _ => {
            eprintln!("usage: bench_listing seed|plans|ceiling ... (see the source)");
            std::process::exit(2);
        }
    }
}

fn id(n: usize) -> String {
    format!("seed-{n:06}")
}

/// The filters the bench times, by name; the same as bench/listing.sh's queries.
fn filter(name: &str) -> (ConnectionFilter, Option<ConnectionId>) {
    let mut filter = ConnectionFilter::default();
    let mut after = None;
    match name {
        "none" => {}
        "deep" => after = Some(ConnectionId::parse(&id(99_000)).unwrap()),
        "end_user_id" => filter.end_user_id = Some("user-4242".into()),
        "end_user_email" => filter.end_user_email = Some("user4242@example.com".into()),
        "status" => filter.status = Some(ConnectionStatus::NeedsReauth),
        "kind" => filter.kind = Some(ConnectionKind::Oauth),
        "tag" => filter.tags = vec![("cohort".into(), "c42".into())],
        other => panic!("no filter {other}"),
    }
    (filter, after)
}

const FILTERS: [&str; 7] = [
    "none",
    "deep",
    "end_user_id",
    "end_user_email",
    "status",
    "kind",
    "tag",
];

/// The store on `url` (migrated, as the server would leave it).
async fn store(url: &str) -> Store {
    let settings = PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(30),
        start_timeout: Duration::from_secs(30),
    };
    Store::connect(&DatabaseUrl::parse(url).unwrap(), &settings)
        .await
        .unwrap()
}

async fn pool(url: &str, size: u32) -> AnyPool {
    store(url).await.close().await;
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(size)
        .connect(url)
        .await
        .unwrap()
}

async fn seed(url: &str, n: usize) {
    let started = Instant::now();
    let pool = pool(url, 1).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let placeholders = |rows: usize, columns: usize| {
        (0..rows)
            .map(|r| {
                let row: Vec<String> = (1..=columns)
                    .map(|c| format!("${}", r * columns + c))
                    .collect();
                format!("({})", row.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(CHUNK) {
        let mut tx = pool.begin().await.unwrap();
        for rows in chunk.chunks(ROWS_A_STATEMENT) {
            let sql = format!(
                "INSERT INTO connections (id, kind, status, scopes, token_type, access_token, expires_at,
                   created_at, updated_at, failures, generation, end_user_id, end_user_email,
                   end_user_email_key, end_user_display_name, tags)
                 VALUES {}",
                placeholders(rows.len(), 16)
            );
            let mut insert = sqlx::query(&sql);
            let mut tags_sql = Vec::new();
            for &i in rows {
                let (plan, region, cohort) = tags(i);
                let email = format!("User{}@Example.com", i / 2);
                insert = insert
                    .bind(id(i))
                    .bind(if i % 2 == 0 { "oauth" } else { "api_key" })
                    .bind(if i % 10 == 0 {
                        "needs_reauth"
                    } else {
                        "connected"
                    })
                    .bind("")
                    .bind("Bearer")
                    .bind(vec![0_u8; 60])
                    .bind(now + 3600)
                    .bind(now)
                    .bind(now)
                    .bind(0_i64)
                    .bind(1_i64)
                    .bind(format!("user-{}", i / 2))
                    .bind(email.clone())
                    .bind(email.to_lowercase())
                    .bind(format!("User {}", i / 2))
                    .bind(format!(
                        r#"{{"cohort":"{cohort}","plan":"{plan}","region":"{region}"}}"#
                    ));
                tags_sql.push((i, plan, region, cohort));
            }
            insert.execute(&mut *tx).await.unwrap();
            let sql = format!(
                "INSERT INTO connection_tags (connection_id, key, value) VALUES {}",
                placeholders(rows.len() * 3, 3)
            );
            let mut insert = sqlx::query(&sql);
            for (i, plan, region, cohort) in tags_sql {
                for (key, value) in [
                    ("plan", plan.to_owned()),
                    ("region", region.to_owned()),
                    ("cohort", cohort),
                ] {
                    insert = insert.bind(id(i)).bind(key).bind(value);
                }
            }
            insert.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    println!(
        "RESULT seeded={n} seconds={:.1}",
        started.elapsed().as_secs_f64()
    );
}

fn tags(i: usize) -> (&'static str, &'static str, String) {
    (
        ["free", "pro", "team"][i % 3],
        ["eu", "us", "ap", "sa"][i % 4],
        format!("c{}", i % 100),
    )
}

async fn plans(url: &str) {
    let store = store(url).await;
    for name in FILTERS {
        let (filter, after) = filter(name);
        let plan = store.explain_find(&filter, after.as_ref()).await.unwrap();
        println!("PLAN {name}: {}", plan.join(" | "));
    }
}

/// One connection as the answer shows it (times left as numbers: the
/// ceiling does less than the server, never more).
#[derive(serde::Serialize)]
struct Shown {
    id: String,
    kind: String,
    status: String,
    scopes: Vec<String>,
    expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    last_refreshed_at: Option<i64>,
    last_checked_at: Option<i64>,
    last_error: Option<String>,
    end_user: Option<ShownUser>,
    tags: BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
struct ShownUser {
    id: String,
    email: Option<String>,
    display_name: Option<String>,
}

fn shown(row: &AnyRow) -> Shown {
    let end_user = row
        .get::<Option<String>, _>("end_user_id")
        .map(|id| ShownUser {
            id,
            email: row.get("end_user_email"),
            display_name: row.get("end_user_display_name"),
        });
    let tags: Option<String> = row.get("tags");
    Shown {
        id: row.get("id"),
        kind: row.get("kind"),
        status: row.get("status"),
        scopes: row
            .get::<String, _>("scopes")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        expires_at: row.get("expires_at"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        last_refreshed_at: row.get("last_refreshed_at"),
        last_checked_at: row.get("last_checked_at"),
        last_error: row.get("last_error"),
        end_user,
        tags: tags.map_or_else(BTreeMap::new, |t| serde_json::from_str(&t).unwrap()),
    }
}

#[derive(serde::Serialize)]
struct Page {
    mode: &'static str,
    connections: Vec<Shown>,
    next_cursor: Option<String>,
}

async fn ceiling(url: &str, name: &str, seconds: u64, tasks: u64, connections: u64) {
    store(url).await.close().await;
    sqlx::any::install_default_drivers();
    // Connections of its own, each behind a lock, rather than a pool: no
    // pool's bookkeeping on the way (the server keeps SQLite's the same way).
    let mut opened = Vec::new();
    for _ in 0..connections {
        let connection = <AnyConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        opened.push(tokio::sync::Mutex::new(connection));
    }
    let opened = Arc::new(opened);
    let (filter, after) = filter(name);
    let statement = Arc::new(PageStatement::new(&filter, after.as_ref()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..tasks as usize)
        .map(|task| {
            let (opened, statement) = (opened.clone(), statement.clone());
            tokio::spawn(async move {
                let mut timings = Vec::new();
                let mut rows_seen = 0;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let mut query = sqlx::query(&statement.sql);
                    for value in &statement.binds {
                        query = query.bind(value.as_str());
                    }
                    let rows = {
                        let mut connection = opened[task % opened.len()].lock().await;
                        query
                            .bind(LIMIT + 1)
                            .fetch_all(&mut *connection)
                            .await
                            .unwrap()
                    };
                    let connections: Vec<_> = rows.iter().take(LIMIT as usize).map(shown).collect();
                    rows_seen = connections.len();
                    let body = serde_json::to_vec(&Page {
                        mode: "oauth",
                        connections,
                        next_cursor: None,
                    })
                    .unwrap();
                    std::hint::black_box(body);
                    timings.push(started.elapsed());
                }
                (timings, rows_seen)
            })
        })
        .collect();
    let mut timings = Vec::new();
    let mut rows = 0;
    for worker in workers {
        let (mine, seen) = worker.await.unwrap();
        timings.extend(mine);
        rows = seen;
    }
    timings.sort();
    let at = |q: f64| timings[((timings.len() as f64 * q) as usize).min(timings.len() - 1)];
    println!(
        "RESULT per_sec={:.0} p50_ms={:.2} p99_ms={:.2} rows={rows}",
        timings.len() as f64 / seconds as f64,
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
    );
}
