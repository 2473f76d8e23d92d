//! A burst of new connections all at once (bench/run.sh): does the server
//! take them without stalls? A listen backlog that overflows shows up as
//! connections that wait for a SYN retransmission (1 s and more on Linux),
//! so the figures that matter are the slowest connection and the kernel's
//! own ListenOverflows/ListenDrops counters.
//!
//! Usage: `bench_burst ADDR [CONNECTIONS] [ROUNDS]` (defaults 500 and 5).
//! Each round opens CONNECTIONS connections at the same moment, sends
//! `GET /healthz` with `Connection: close` on each and reads the answer.
//! Prints each round, then `RESULT ...` over all rounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Any connection slower than this counts as a stall: it is the first SYN
/// retransmission timeout, what an overflowing backlog costs a client.
const STALL: Duration = Duration::from_secs(1);
const GIVE_UP: Duration = Duration::from_secs(10);

async fn one(addr: SocketAddr, barrier: Arc<Barrier>) -> Result<Duration, String> {
    barrier.wait().await;
    let started = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {}", e.kind()))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {}", e.kind()))?;
        if answer.starts_with(b"HTTP/1.1 200") {
            Ok(started.elapsed())
        } else {
            Err("not a 200".to_owned())
        }
    };
    tokio::time::timeout(GIVE_UP, attempt)
        .await
        .unwrap_or_else(|_| Err("no answer in 10 s".to_owned()))
}

/// The kernel's count of SYNs and connections dropped for a full accept queue.
fn listen_counters() -> (u64, u64) {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return (0, 0);
    };
    let find = |wanted: &str| {
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == wanted)
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0)
    };
    (find("ListenOverflows"), find("ListenDrops"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .expect("usage: bench_burst ADDR [CONNECTIONS] [ROUNDS]")
        .parse()
        .expect("ADDR is a socket address");
    let connections: usize = args.next().map_or(500, |a| a.parse().expect("a number"));
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("a number"));

    let (overflows_before, drops_before) = listen_counters();
    let (mut worst, mut stalls, mut errors) = (Duration::ZERO, 0, 0);
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(connections));
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(one(addr, barrier.clone())))
            .collect();
        let mut times = Vec::with_capacity(connections);
        let mut round_errors = 0;
        for task in tasks {
            match task.await.expect("a connection task does not panic") {
                Ok(elapsed) => times.push(elapsed),
                Err(error) => {
                    round_errors += 1;
                    eprintln!("round {round}: {error}");
                }
            }
        }
        times.sort_unstable();
        let slowest = times.last().copied().unwrap_or_default();
        let p99 = times
            .get(times.len() * 99 / 100)
            .copied()
            .unwrap_or_default();
        let round_stalls = times.iter().filter(|t| **t >= STALL).count();
        println!(
            "round {round}: {} of {connections} answered 200; p99 {:.1} ms, slowest {:.1} ms; {round_stalls} over {STALL:?}; {round_errors} errors",
            times.len(),
            ms(p99),
            ms(slowest),
        );
        worst = worst.max(slowest);
        stalls += round_stalls;
        errors += round_errors;
        // Let the last round's connections close before the next burst.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (overflows_after, drops_after) = listen_counters();
    println!(
        "RESULT connections={connections} rounds={rounds} slowest_ms={:.1} stalls={stalls} errors={errors} listen_overflows={} listen_drops={}",
        ms(worst),
        overflows_after - overflows_before,
        drops_after - drops_before,
    );
}
