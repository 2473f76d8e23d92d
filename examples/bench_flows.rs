//! Load driver (bench/run.sh, bench/instances.sh): N workers, each in a loop
//! doing one operation after another, until the time is up or a total is
//! reached. Prints the rate, per-operation latency and errors, then one
//! `RESULT key=value ...` line for the scripts.
//!
//! Usage: `bench_flows BASE_URL[,BASE_URL...] [WORKERS] [SECONDS] [FLAGS]`
//! (defaults 50 workers and 10 s, after 2 s of warm-up that are not counted).
//!
//! The operation is a full connect flow: `GET /auth` → the provider's
//! authorize → `GET /callback` with the flow cookie, as a browser follows it.
//! Flags:
//!
//! - `--admin=TOKEN`: the admin bearer, for the flags below that need it.
//! - `--sessions`: each flow first creates a connect session
//!   (`POST /connect-sessions`) for a connection id of its own,
//!   `PREFIX-WORKER-N`, and starts with `/auth?session=TOKEN`.
//! - `--prefix=P`: the start of those ids (default `flow`).
//! - `--calls=PATH`: the operation is `GET PATH` with the admin bearer
//!   instead, and counts when it answers 200 (e.g. an access-token call).
//! - `--total=N`: stop after N operations, all counted, no warm-up.
//! - `--check-lost`: at the end, `GET /connections` on every instance and
//!   count the connections the flows made that it does not list.
//!
//! With several BASE_URLs the driver plays load balancer: requests rotate
//! through the instances, and a flow's callback goes to another instance
//! than its `/auth` (the provider's redirect is re-aimed there).

#[path = "support/http1.rs"]
mod http1;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http1::{connect_flow, micros_since, percentile_ms, Browser};

const WARMUP: Duration = Duration::from_secs(2);

enum Operation {
    Flow { sessions: bool },
    Call(String),
}

struct Plan {
    bases: Vec<String>,
    admin: String,
    operation: Operation,
    prefix: String,
}

impl Plan {
    fn base(&self, step: usize) -> &str {
        &self.bases[step % self.bases.len()]
    }

    /// Operation `n` of `worker`: the connection id a flow made, if any.
    async fn run(
        &self,
        browser: &mut Browser,
        worker: usize,
        n: usize,
    ) -> Result<Option<String>, String> {
        let bearer = format!("Bearer {}", self.admin);
        let step = worker + n;
        let base = self.base(step);
        let sessions = match &self.operation {
            Operation::Call(path) => {
                let answer = browser
                    .send(
                        "GET",
                        &format!("{base}{path}"),
                        &[("Authorization", &bearer)],
                        b"",
                    )
                    .await?;
                return if answer.status == 200 {
                    Ok(None)
                } else {
                    Err(format!("{path} answered {}", answer.status))
                };
            }
            Operation::Flow { sessions } => *sessions,
        };
        let id = sessions.then(|| format!("{}-{worker}-{n}", self.prefix));
        let callback_base = (self.bases.len() > 1).then(|| self.base(step + 1));
        let session = id.as_deref().map(|id| (self.admin.as_str(), id));
        connect_flow(browser, base, callback_base, session).await?;
        Ok(id)
    }
}

/// When to stop: after a time (the first part not counted) or a total.
enum Until {
    Time {
        counted_from: Instant,
        until: Instant,
    },
    Total {
        tickets: AtomicUsize,
        total: usize,
    },
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: HashMap<String, u64>,
    made: Vec<String>,
}

async fn worker(plan: Arc<Plan>, until: Arc<Until>, worker: usize) -> Tally {
    let mut browser = Browser::default();
    let mut tally = Tally::default();
    for n in 0.. {
        let started = Instant::now();
        let counted = match &*until {
            Until::Time {
                counted_from,
                until,
            } => {
                if started >= *until {
                    break;
                }
                started >= *counted_from
            }
            Until::Total { tickets, total } => {
                if tickets.fetch_add(1, Ordering::Relaxed) >= *total {
                    break;
                }
                true
            }
        };
        let result = plan.run(&mut browser, worker, n).await;
        if let Ok(Some(id)) = &result {
            tally.made.push(id.clone());
        }
        let late = matches!(&*until, Until::Time { until, .. } if Instant::now() > *until);
        if !counted || late {
            continue;
        }
        match result {
            Ok(_) => tally.latencies_us.push(micros_since(started)),
            Err(error) => *tally.errors.entry(error).or_default() += 1,
        }
    }
    tally
}

/// Connections the flows made that an instance's `GET /connections` does not list.
async fn lost(plan: &Plan, made: &[String]) -> Result<usize, String> {
    let mut worst = 0;
    for base in &plan.bases {
        let mut browser = Browser::default();
        let bearer = format!("Bearer {}", plan.admin);
        let answer = browser
            .send(
                "GET",
                &format!("{base}/connections"),
                &[("Authorization", &bearer)],
                b"",
            )
            .await?;
        if answer.status != 200 {
            return Err(format!("{base}/connections answered {}", answer.status));
        }
        let listed: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|e| format!("not JSON: {e}"))?;
        let ids: HashSet<&str> = listed["connections"]
            .as_array()
            .ok_or("no connections array")?
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        let missing = made.iter().filter(|id| !ids.contains(id.as_str())).count();
        println!(
            "{base}/connections lists {} connections; {missing} of the {} made here are missing",
            ids.len(),
            made.len()
        );
        worst = worst.max(missing);
    }
    Ok(worst)
}

// One thread: the driver is pinned to one core, and a single-threaded
// runtime spends it on requests rather than on moving tasks between threads.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let usage = "usage: bench_flows BASE_URL[,BASE_URL...] [WORKERS] [SECONDS] [--admin=TOKEN] \
                 [--sessions] [--prefix=P] [--calls=PATH] [--total=N] [--check-lost]";
    let (flags, positional): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let flag = |name: &str| {
        flags.iter().find_map(|f| {
            f.strip_prefix(name)
                .map(|rest| rest.trim_start_matches('=').to_owned())
        })
    };
    let mut positional = positional.into_iter();
    let bases: Vec<String> = positional
        .next()
        .expect(usage)
        .split(',')
        .map(|b| b.trim_end_matches('/').to_owned())
        .collect();
    let workers: usize = positional
        .next()
        .map_or(50, |a| a.parse().expect("WORKERS is a number"));
    let seconds: u64 = positional
        .next()
        .map_or(10, |a| a.parse().expect("SECONDS is a number"));
    let operation = match flag("--calls") {
        Some(path) => Operation::Call(path),
        None => Operation::Flow {
            sessions: flag("--sessions").is_some(),
        },
    };
    let what = match &operation {
        Operation::Call(_) => "calls",
        Operation::Flow { .. } => "flows",
    };
    let plan = Arc::new(Plan {
        bases,
        admin: flag("--admin").unwrap_or_default(),
        operation,
        prefix: flag("--prefix").unwrap_or_else(|| "flow".to_owned()),
    });
    let total = flag("--total").map(|t| t.parse::<usize>().expect("--total is a number"));

    let started = Instant::now();
    let until = Arc::new(match total {
        Some(total) => Until::Total {
            tickets: AtomicUsize::new(0),
            total,
        },
        None => {
            let counted_from = started + WARMUP;
            Until::Time {
                counted_from,
                until: counted_from + Duration::from_secs(seconds),
            }
        }
    });
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(worker(plan.clone(), until.clone(), w)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a worker does not panic");
        all.latencies_us.extend(tally.latencies_us);
        all.made.extend(tally.made);
        for (error, n) in tally.errors {
            *all.errors.entry(error).or_default() += n;
        }
    }
    let measured = match total {
        Some(_) => started.elapsed(),
        None => Duration::from_secs(seconds),
    };
    all.latencies_us.sort_unstable();

    let done = all.latencies_us.len();
    let errors: u64 = all.errors.values().sum();
    let rate = done as f64 / measured.as_secs_f64();
    let (p50, p99) = (
        percentile_ms(&all.latencies_us, 0.50),
        percentile_ms(&all.latencies_us, 0.99),
    );
    let max = percentile_ms(&all.latencies_us, 1.0);
    println!(
        "{}: {done} {what} in {:.2} s with {workers} workers = {rate:.0} {what}/s; \
         per op p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; {errors} errors",
        plan.bases.join(","),
        measured.as_secs_f64(),
    );
    let mut errors_by_kind: Vec<_> = all.errors.iter().collect();
    errors_by_kind.sort_by(|a, b| b.1.cmp(a.1));
    for (error, n) in errors_by_kind.iter().take(5) {
        println!("  {n} x {error}");
    }
    let lost = if flag("--check-lost").is_some() {
        match lost(&plan, &all.made).await {
            Ok(n) => n.to_string(),
            Err(error) => {
                println!("  could not check for lost connections: {error}");
                "unknown".to_owned()
            }
        }
    } else {
        "unchecked".to_owned()
    };
    println!(
        "RESULT done={done} per_sec={rate:.0} p50_ms={p50:.2} p99_ms={p99:.2} max_ms={max:.2} \
         errors={errors} made={} lost={lost}",
        all.made.len()
    );
}
