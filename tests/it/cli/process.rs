//! Running the binary: a clean environment in a folder of its own, its
//! output line by line, SIGTERM, and what it printed.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::support::eventually;
use crate::support::wait::eventually_within;

const BIN: &str = env!("CARGO_BIN_EXE_emailoctopus-connect");
/// The longest any single wait on the process may take.
const WAIT: Duration = Duration::from_secs(20);

/// The binary with nothing but `PATH` and `HOME`, run in `dir`. Temporary
/// files (the sandbox database) go to `dir` too.
pub(super) fn command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a command that is expected to end by itself.
pub(super) async fn output(command: Command) -> Output {
    let (status, logs) = Running::spawn(command).wait(WAIT).await;
    Output {
        status,
        stdout: logs.stdout.into_bytes(),
        stderr: logs.stderr.into_bytes(),
    }
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a run printed.
pub(super) struct Logs {
    pub(super) stdout: String,
    pub(super) stderr: String,
}

/// The address in `listening on http://ADDR`.
pub(super) fn listen_line_addr(line: &str) -> SocketAddr {
    line.strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("the first line says where it listens: {line:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("a socket address ({e}): {line:?}"))
}

/// The binary running: its stdout lines as they come, everything it prints
/// kept; killed if dropped while still running (a failed test).
pub(super) struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    readers: Vec<JoinHandle<()>>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub(super) fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("the binary starts");
        let (send, lines) = mpsc::unbounded_channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone(), Some(send)),
            collect(child.stderr.take().unwrap(), stderr.clone(), None),
        ];
        Self {
            child,
            lines,
            readers,
            stdout,
            stderr,
        }
    }

    pub(super) async fn next_line(&mut self) -> String {
        match tokio::time::timeout(WAIT, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("stdout closed; stderr: {}", self.stderr.lock().unwrap()),
            Err(_) => panic!(
                "no stdout line in time; stderr: {}",
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// The next stdout line that contains `needle`.
    pub(super) async fn line_containing(&mut self, needle: &str) -> String {
        loop {
            let line = self.next_line().await;
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits until stderr holds `needle` (a log line).
    pub(super) async fn stderr_containing(&self, needle: &str) {
        let what = format!("{needle:?} on stderr");
        eventually(WithStderr(&what, &self.stderr), async || {
            self.stderr.lock().unwrap().contains(needle)
        })
        .await;
    }

    /// Sends SIGTERM, waits for the exit, and returns its status and everything printed.
    pub(super) async fn terminate(self) -> (ExitStatus, Logs) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        self.wait(Duration::from_secs(10)).await
    }

    /// Waits up to `limit` for the exit; returns its status and everything printed.
    async fn wait(mut self, limit: Duration) -> (ExitStatus, Logs) {
        let what = WithStderr("the binary exits", &self.stderr);
        let status = eventually_within(limit, what, async || self.child.try_wait().unwrap()).await;
        // The pipes close with the process: the readers end at once.
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let logs = Logs {
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        };
        (status, logs)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a wait is for, and, when it fails, what the binary has said on stderr.
struct WithStderr<'a>(&'a str, &'a Mutex<String>);

impl std::fmt::Display for WithStderr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; stderr: {}", self.0, self.1.lock().unwrap())
    }
}

/// Reads `pipe` line by line on a thread of its own into `all`, passing each
/// line on to `lines`.
fn collect(
    pipe: impl Read + Send + 'static,
    all: Arc<Mutex<String>>,
    lines: Option<mpsc::UnboundedSender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            {
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    })
}
