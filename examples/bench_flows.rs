//! Load driver for full connect flows (bench/run.sh): N workers, each in a
//! loop `GET /auth` → the provider's authorize → `GET /callback` with the flow
//! cookie, until the time is up. Prints flows per second, per-flow latency
//! and errors, then one `RESULT key=value ...` line for the script.
//!
//! Usage: `bench_flows BASE_URL [WORKERS] [SECONDS]` (defaults 50 and 10);
//! the first two seconds warm up and are not counted.
//!
//! It speaks just enough HTTP/1.1 by hand, over keep-alive connections it
//! holds per worker, because the driver shares a core with the provider: a
//! full client library would spend that core before the server under test is
//! saturated, and the figures would measure the driver.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use url::{Position, Url};

const WARMUP: Duration = Duration::from_secs(2);

/// What the driver needs from an answer; the body is read and dropped.
struct Answer {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    close: bool,
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Connection {
    async fn open(authority: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    async fn get(
        &mut self,
        authority: &str,
        target: &str,
        cookie: Option<&str>,
    ) -> io::Result<Answer> {
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(cookie) = cookie {
            request.push_str("Cookie: ");
            request.push_str(cookie);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        self.stream.get_mut().write_all(request.as_bytes()).await?;

        let status_line = self.read_line().await?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let mut answer = Answer {
            status,
            location: None,
            set_cookie: None,
            close: false,
        };
        let mut length = None;
        let mut chunked = false;
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(bad("malformed header"));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| bad("bad length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("location") {
                answer.location = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("set-cookie") && answer.set_cookie.is_none() {
                // `name=value` is all a browser sends back.
                let pair = value.split(';').next().unwrap_or_default();
                answer.set_cookie = Some(pair.to_owned());
            } else if name.eq_ignore_ascii_case("connection") {
                answer.close = value.eq_ignore_ascii_case("close");
            }
        }
        if chunked {
            self.skip_chunks().await?;
        } else if let Some(length) = length {
            self.body.resize(length, 0);
            self.stream.read_exact(&mut self.body).await?;
        } else {
            // Without a length the body ends with the connection (RFC 9112 §6.3).
            self.body.clear();
            self.stream.read_to_end(&mut self.body).await?;
            answer.close = true;
        }
        Ok(answer)
    }

    async fn skip_chunks(&mut self) -> io::Result<()> {
        loop {
            let size_line = self.read_line().await?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(());
            }
            self.body.resize(size + 2, 0);
            self.stream.read_exact(&mut self.body).await?;
        }
    }

    /// The next line without its CRLF.
    async fn read_line(&mut self) -> io::Result<String> {
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(self.line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// A worker's connections, one per authority (the server and the provider),
/// as a browser would keep them.
#[derive(Default)]
struct Browser {
    connections: HashMap<String, Connection>,
}

impl Browser {
    async fn get(&mut self, url: &str, cookie: Option<&str>) -> Result<Answer, String> {
        let url = Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        let authority = url[Position::BeforeHost..Position::AfterPort].to_owned();
        let target = &url[Position::BeforePath..Position::AfterQuery];
        let connection = match self.connections.remove(&authority) {
            Some(connection) => connection,
            None => Connection::open(&authority)
                .await
                .map_err(|e| format!("connect {authority}: {e}"))?,
        };
        let mut connection = connection;
        let answer = connection
            .get(&authority, target, cookie)
            .await
            .map_err(|e| format!("{authority}: {}", e.kind()))?;
        if !answer.close {
            self.connections.insert(authority, connection);
        }
        Ok(answer)
    }

    /// One connect flow, as a browser follows it.
    async fn flow(&mut self, base: &str) -> Result<(), String> {
        let start = self.get(&format!("{base}/auth"), None).await?;
        if !matches!(start.status, 302 | 303) {
            return Err(format!("/auth answered {}", start.status));
        }
        let (Some(to_provider), Some(cookie)) = (start.location, start.set_cookie) else {
            return Err("/auth gave no Location or no cookie".into());
        };
        let authorized = self.get(&to_provider, None).await?;
        let Some(back) = authorized.location.filter(|_| authorized.status == 302) else {
            return Err(format!("authorize answered {}", authorized.status));
        };
        let finished = self.get(&back, Some(&cookie)).await?;
        if finished.status != 200 {
            return Err(format!("/callback answered {}", finished.status));
        }
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: HashMap<String, u64>,
}

async fn worker(base: String, counted_from: Instant, until: Instant) -> Tally {
    let mut browser = Browser::default();
    let mut tally = Tally::default();
    loop {
        let started = Instant::now();
        if started >= until {
            return tally;
        }
        let result = browser.flow(&base).await;
        let finished = Instant::now();
        if started < counted_from || finished > until {
            continue;
        }
        match result {
            Ok(()) => tally
                .latencies_us
                .push(u32::try_from((finished - started).as_micros()).unwrap_or(u32::MAX)),
            Err(error) => *tally.errors.entry(error).or_default() += 1,
        }
    }
}

fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted_us.len() as f64 * q) as usize).min(sorted_us.len() - 1);
    f64::from(sorted_us[index]) / 1000.0
}

// One thread: the driver is pinned to one core, and a single-threaded
// runtime spends it on requests rather than on moving tasks between threads.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .expect("usage: bench_flows BASE_URL [WORKERS] [SECONDS]")
        .trim_end_matches('/')
        .to_owned();
    let workers: usize = args
        .next()
        .map_or(50, |a| a.parse().expect("WORKERS is a number"));
    let seconds: u64 = args
        .next()
        .map_or(10, |a| a.parse().expect("SECONDS is a number"));
    let measured = Duration::from_secs(seconds);

    let counted_from = Instant::now() + WARMUP;
    let until = counted_from + measured;
    let tasks: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(base.clone(), counted_from, until)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a worker does not panic");
        all.latencies_us.extend(tally.latencies_us);
        for (error, n) in tally.errors {
            *all.errors.entry(error).or_default() += n;
        }
    }
    all.latencies_us.sort_unstable();

    let flows = all.latencies_us.len();
    let errors: u64 = all.errors.values().sum();
    let rate = flows as f64 / measured.as_secs_f64();
    let (p50, p99) = (
        percentile_ms(&all.latencies_us, 0.50),
        percentile_ms(&all.latencies_us, 0.99),
    );
    let max = percentile_ms(&all.latencies_us, 1.0);
    println!(
        "{base}: {flows} flows in {seconds} s with {workers} workers = {rate:.0} flows/s; \
         per flow p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; {errors} errors"
    );
    let mut errors_by_kind: Vec<_> = all.errors.iter().collect();
    errors_by_kind.sort_by(|a, b| b.1.cmp(a.1));
    for (error, n) in errors_by_kind.iter().take(5) {
        println!("  {n} x {error}");
    }
    println!("RESULT flows_per_sec={rate:.0} p50_ms={p50:.2} p99_ms={p99:.2} max_ms={max:.2} errors={errors}");
}
