//! Shared by the load drivers (`bench_flows`, `bench_storm`), included with
//! `#[path]`: just enough HTTP/1.1 by hand over keep-alive connections, a
//! "browser" that keeps one connection per authority, and percentiles.
//!
//! By hand because the drivers share a core with the provider: a full client
//! library would spend that core before the server under test is saturated,
//! and the figures would measure the driver.

// Each driver uses a part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use url::{Position, Url};

/// What a driver needs from an answer.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub close: bool,
    pub body: Vec<u8>,
}

impl Answer {
    /// The string value of a top-level `"name":"value"` member of a JSON body,
    /// found by search: enough for the flat answers the server gives.
    pub fn json_str(&self, name: &str) -> Option<String> {
        let body = std::str::from_utf8(&self.body).ok()?;
        let key = format!("\"{name}\":\"");
        let start = body.find(&key)? + key.len();
        let end = body[start..].find('"')?;
        Some(body[start..start + end].to_owned())
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
}

impl Connection {
    pub async fn open(authority: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            line: String::new(),
        })
    }

    /// Sends one request (`headers` as `(name, value)`; a body gets its
    /// Content-Length) and reads its answer.
    pub async fn send(
        &mut self,
        method: &str,
        authority: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Answer> {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\n");
        for (name, value) in headers {
            request.push_str(name);
            request.push_str(": ");
            request.push_str(value);
            request.push_str("\r\n");
        }
        if !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        self.stream.get_mut().write_all(&request).await?;
        self.read_answer().await
    }

    /// Writes a request without reading the answer (see `read_answer`).
    pub async fn write_raw(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.get_mut().write_all(request).await
    }

    pub async fn read_answer(&mut self) -> io::Result<Answer> {
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
            body: Vec::new(),
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
            self.read_chunks(&mut answer.body).await?;
        } else if let Some(length) = length {
            answer.body.resize(length, 0);
            self.stream.read_exact(&mut answer.body).await?;
        } else {
            // Without a length the body ends with the connection (RFC 9112 §6.3).
            self.stream.read_to_end(&mut answer.body).await?;
            answer.close = true;
        }
        Ok(answer)
    }

    async fn read_chunks(&mut self, body: &mut Vec<u8>) -> io::Result<()> {
        loop {
            let size_line = self.read_line().await?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(());
            }
            let at = body.len();
            body.resize(at + size + 2, 0);
            self.stream.read_exact(&mut body[at..]).await?;
            body.truncate(at + size);
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

/// A client's connections, one per authority (the servers and the
/// provider), as a browser would keep them.
#[derive(Default)]
pub struct Browser {
    connections: HashMap<String, Connection>,
}

impl Browser {
    pub async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let url = Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        let authority = url[Position::BeforeHost..Position::AfterPort].to_owned();
        let target = &url[Position::BeforePath..Position::AfterQuery];
        let mut connection = match self.connections.remove(&authority) {
            Some(connection) => connection,
            None => Connection::open(&authority)
                .await
                .map_err(|e| format!("connect {authority}: {e}"))?,
        };
        let answer = connection
            .send(method, &authority, target, headers, body)
            .await
            .map_err(|e| format!("{authority}: {}", e.kind()))?;
        if !answer.close {
            self.connections.insert(authority, connection);
        }
        Ok(answer)
    }

    pub async fn get(&mut self, url: &str, cookie: Option<&str>) -> Result<Answer, String> {
        match cookie {
            Some(cookie) => self.send("GET", url, &[("Cookie", cookie)], b"").await,
            None => self.send("GET", url, &[], b"").await,
        }
    }
}

/// `url` with its scheme, host and port replaced by `base`'s: how the drivers
/// play load balancer between instances.
pub fn rebase(url: &str, base: &str) -> Result<String, String> {
    let url = Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    Ok(format!(
        "{}{}",
        base.trim_end_matches('/'),
        &url[Position::BeforePath..]
    ))
}

pub fn micros_since(start: Instant) -> u32 {
    u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// The `q` quantile of sorted microseconds, in ms.
pub fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted_us.len() as f64 * q) as usize).min(sorted_us.len() - 1);
    f64::from(sorted_us[index]) / 1000.0
}

/// One connect flow, as a browser follows it: with `session` (the admin
/// bearer and a connection id) it first creates a connect session on `base`
/// and starts with `/auth?session=TOKEN`, else with a bare `/auth`. With
/// `callback_base`, the provider's redirect back is re-aimed at that instance.
pub async fn connect_flow(
    browser: &mut Browser,
    base: &str,
    callback_base: Option<&str>,
    session: Option<(&str, &str)>,
) -> Result<(), String> {
    let auth_url = match session {
        Some((admin, id)) => {
            let bearer = format!("Bearer {admin}");
            let body = format!("{{\"connection_id\":\"{id}\"}}");
            let created = browser
                .send(
                    "POST",
                    &format!("{base}/connect-sessions"),
                    &[
                        ("Authorization", &bearer),
                        ("Content-Type", "application/json"),
                    ],
                    body.as_bytes(),
                )
                .await?;
            let token = created
                .json_str("token")
                .filter(|_| created.status == 201)
                .ok_or_else(|| format!("/connect-sessions answered {}", created.status))?;
            format!("{base}/auth?session={token}")
        }
        None => format!("{base}/auth"),
    };
    let start = browser.get(&auth_url, None).await?;
    if !matches!(start.status, 302 | 303) {
        return Err(format!("/auth answered {}", start.status));
    }
    let (Some(to_provider), Some(cookie)) = (start.location, start.set_cookie) else {
        return Err("/auth gave no Location or no cookie".into());
    };
    let authorized = browser.get(&to_provider, None).await?;
    let Some(mut back) = authorized.location.filter(|_| authorized.status == 302) else {
        return Err(format!("authorize answered {}", authorized.status));
    };
    if let Some(callback_base) = callback_base {
        back = rebase(&back, callback_base)?;
    }
    let finished = browser.get(&back, Some(&cookie)).await?;
    if finished.status != 200 {
        return Err(format!("/callback answered {}", finished.status));
    }
    Ok(())
}
