//! Time from exec to the first 200 on `/healthz` (bench/run.sh).
//!
//! Usage: `bench_startup RUNS PROGRAM [ARGS...]`. Each run picks a free port,
//! starts `PROGRAM ARGS... --listen-addr=127.0.0.1:PORT` (with `{run}` in an
//! argument replaced by the run's number, so each run can get a fresh
//! database), polls `/healthz` until it answers 200, then stops the process
//! with SIGTERM. Prints each run, then `RESULT median_ms=... max_ms=...`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Past this the program is taken not to start at all.
const GIVE_UP: Duration = Duration::from_secs(10);
/// Short enough not to blur the figure, long enough not to steal the core
/// the program under test may share.
const POLL_EVERY: Duration = Duration::from_micros(250);

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_startup RUNS PROGRAM [ARGS...]";
    let runs: usize = args.next().expect(usage).parse().expect("RUNS is a number");
    let program = args.next().expect(usage);
    let rest: Vec<String> = args.collect();

    let mut times_ms = Vec::with_capacity(runs);
    for run in 0..runs {
        let addr = free_port();
        let mut command = Command::new(&program);
        command
            .args(rest.iter().map(|a| a.replace("{run}", &run.to_string())))
            .arg(format!("--listen-addr={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let started = Instant::now();
        let mut child = command.spawn().expect("the program starts");
        let answered = loop {
            if healthz_ok(addr) {
                break Some(started.elapsed());
            }
            if started.elapsed() > GIVE_UP || child.try_wait().ok().flatten().is_some() {
                break None;
            }
            sleep(POLL_EVERY);
        };
        // SIGTERM, so the server closes its database as it would in real life.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        let Some(elapsed) = answered else {
            eprintln!("run {run}: no 200 from /healthz within {GIVE_UP:?}");
            std::process::exit(1);
        };
        let ms = elapsed.as_secs_f64() * 1000.0;
        println!("run {run}: exec to /healthz 200 in {ms:.1} ms");
        times_ms.push(ms);
    }
    times_ms.sort_by(f64::total_cmp);
    let median = times_ms[times_ms.len() / 2];
    let max = times_ms[times_ms.len() - 1];
    println!("RESULT median_ms={median:.1} max_ms={max:.1} runs={runs}");
}

/// A port that was free a moment ago; good enough on a quiet loopback.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback has a free port")
}

fn healthz_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200")
}
