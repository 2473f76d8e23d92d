//! The binary itself: exit statuses, `--help`, `gen-key`, the listen line,
//! SIGTERM, where settings come from, and what reaches its logs.
//!
//! Every run starts from an empty environment in an empty temporary folder,
//! so neither this machine's variables nor a `.env` lying around can leak in.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support::new_key;

const BIN: &str = env!("CARGO_BIN_EXE_emailoctopus-connect");
/// The longest any single wait on the process may take.
const WAIT: Duration = Duration::from_secs(20);

/// The binary with nothing but `PATH` and `HOME`, run in `dir`. Temporary
/// files (the sandbox database) go to `dir` too.
fn command(dir: &Path) -> Command {
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
async fn output(command: Command) -> Output {
    let (status, logs) = Running::spawn(command).wait(WAIT).await;
    Output {
        status,
        stdout: logs.stdout.into_bytes(),
        stderr: logs.stderr.into_bytes(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A complete, valid non-sandbox configuration, to spoil one setting at a time.
fn valid_settings() -> Vec<(&'static str, String)> {
    vec![
        ("CLIENT_ID", "cli-test-client".into()),
        ("CLIENT_SECRET", "cli-test-secret".into()),
        ("TOKEN_ENCRYPTION_KEY", new_key()),
        ("LISTEN_ADDR", "127.0.0.1:0".into()),
    ]
}

#[tokio::test]
async fn a_missing_client_id_exits_2_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    for (name, value) in valid_settings() {
        if name != "CLIENT_ID" {
            run.env(name, value);
        }
    }
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CLIENT_ID"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing starts: {}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn a_malformed_setting_exits_2_and_names_its_variable() {
    let key = new_key();
    let short_key = STANDARD.encode([7u8; 16]);
    // (the setting spoiled, its new value or None to leave it out, the name the error must say)
    let cases = [
        (
            "TOKEN_ENCRYPTION_KEY",
            Some("not base64 at all!".to_owned()),
            "TOKEN_ENCRYPTION_KEY",
        ),
        (
            "TOKEN_ENCRYPTION_KEY",
            Some(short_key.clone()),
            "TOKEN_ENCRYPTION_KEY",
        ),
        (
            "TOKEN_ENCRYPTION_KEY",
            Some(format!("{key},{short_key}")),
            "TOKEN_ENCRYPTION_KEY",
        ),
        ("TOKEN_ENCRYPTION_KEY", None, "TOKEN_ENCRYPTION_KEY"),
        (
            "LISTEN_ADDR",
            Some("not-an-address".to_owned()),
            "LISTEN_ADDR",
        ),
        ("OPEN_CONNECT", Some("yes".to_owned()), "OPEN_CONNECT"),
        (
            "TOKEN_AUTH_METHOD",
            Some("bogus".to_owned()),
            "TOKEN_AUTH_METHOD",
        ),
        (
            "WEBHOOK_URL",
            Some("http://127.0.0.1:9/hook".to_owned()),
            "WEBHOOK_SECRET",
        ),
        ("CLIENT_SECRET", None, "CLIENT_SECRET"),
        ("LOG_FORMAT", Some("xml".to_owned()), "LOG_FORMAT"),
        ("SANDBOX", Some("yes".to_owned()), "SANDBOX"),
    ];
    for (setting, value, variable) in cases {
        let what = format!("{setting}={value:?}");
        let dir = tempfile::tempdir().unwrap();
        let mut run = command(dir.path());
        for (name, good) in valid_settings() {
            if name != setting {
                run.env(name, good);
            }
        }
        if let Some(value) = &value {
            run.env(setting, value);
        }
        let out = output(run).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(variable),
            "{what}: names {variable}: {stderr}"
        );
        assert!(
            !stderr.contains(&key),
            "{what}: a key is never echoed: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{what}: nothing starts: {}",
            text(&out.stdout)
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{what}: no database is made before the settings are good"
        );
    }
}

#[tokio::test]
async fn help_lists_every_setting_and_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.arg("--help");
    let secrets = [
        "CLIENT_SECRET",
        "TOKEN_ENCRYPTION_KEY",
        "ADMIN_TOKEN",
        "WEBHOOK_SECRET",
    ];
    for name in secrets {
        run.env(name, format!("value-of-{name}-must-not-show"));
    }
    let out = output(run).await;
    let help = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for variable in [
        "CLIENT_ID",
        "CLIENT_SECRET",
        "REDIRECT_URI",
        "AUTHORIZE_URL",
        "TOKEN_URL",
        "REVOKE_URL",
        "ISSUER",
        "SCOPES",
        "TOKEN_AUTH_METHOD",
        "API_BASE_URL",
        "LISTEN_ADDR",
        "DATABASE_URL",
        "TOKEN_ENCRYPTION_KEY",
        "ADMIN_TOKEN",
        "OPEN_CONNECT",
        "RETURN_TO_ORIGINS",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
        "METRICS_ADDR",
        "LOG_FORMAT",
        "SANDBOX",
    ] {
        let flag = format!("--{}", variable.to_lowercase().replace('_', "-"));
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{flag} "))
                    || line.trim_start().starts_with(&format!("{flag}["))),
            "--help lists {flag}:\n{help}"
        );
    }
    for subcommand in ["serve", "gen-key", "rekey"] {
        assert!(help.contains(subcommand), "--help lists {subcommand}");
    }
    for name in secrets {
        assert!(
            !help.contains(&format!("value-of-{name}")),
            "--help shows {name}'s value"
        );
    }
}

#[tokio::test]
async fn gen_key_prints_a_fresh_key_of_32_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let mut run = command(dir.path());
        run.arg("gen-key");
        let out = output(run).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout);
        let key = printed.trim_end().to_owned();
        assert_eq!(printed, format!("{key}\n"), "one line, the key alone");
        let bytes = STANDARD.decode(&key).expect("base64");
        assert_eq!(bytes.len(), 32, "{key}");
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "each run makes a new key");
}

#[tokio::test]
async fn the_sandbox_prints_its_real_address_and_a_link_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.args(["--sandbox", "--listen-addr=127.0.0.1:0"]);
    let mut server = Running::spawn(run);

    let first = server.next_line().await;
    let addr = listen_line_addr(&first);
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the real port, not 0");
    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let link_prefix = format!("http://{addr}/?session=");
    let link_line = server.line_containing(&link_prefix).await;
    let link = &link_line[link_line.find(&link_prefix).unwrap()..];
    let page = http.get(link.trim()).send().await.unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the printed link opens the connect page"
    );

    // It has answered requests, so it is serving and handles SIGTERM (for
    // the moment before that, see the ignored test below).
    let (status, logs) = server.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", logs.stderr);
    assert_no_sandbox_database(dir.path());
}

#[tokio::test]
async fn a_malformed_dot_env_is_named_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "THIS IS NOT A SETTING\nSANDBOX=true\n",
    )
    .unwrap();
    let run = output(command(dir.path())).await;
    assert_eq!(run.status.code(), Some(2));
    let stderr = text(&run.stderr);
    assert!(stderr.contains(".env"), "{stderr}");
}

#[tokio::test]
async fn a_flag_beats_the_environment_which_beats_dot_env() {
    // Distinct loopback addresses with port 0: the listen line shows which one won.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# read from the working directory\nSANDBOX=true\nLISTEN_ADDR=127.0.0.2:0\n",
    )
    .unwrap();
    let runs: [(&str, Option<&str>, Option<&str>); 3] = [
        ("127.0.0.2", None, None),
        ("127.0.0.3", Some("127.0.0.3:0"), None),
        (
            "127.0.0.4",
            Some("127.0.0.3:0"),
            Some("--listen-addr=127.0.0.4:0"),
        ),
    ];
    for (expected, env, flag) in runs {
        let mut run = command(dir.path());
        if let Some(env) = env {
            run.env("LISTEN_ADDR", env);
        }
        run.args(flag);
        let mut server = Running::spawn(run);
        let addr = listen_line_addr(&server.next_line().await);
        assert_eq!(
            addr.ip().to_string(),
            expected,
            "env {env:?}, flag {flag:?}"
        );
        // Killed when dropped: how it stops is another test's subject.
        drop(server);
    }
}

/// Ignored until fixed: today the SIGTERM handler is installed only when
/// serving starts, after the listen line and the connect link are printed,
/// so a supervisor that stops the process as soon as it says it listens
/// kills it outright (status 143) and the sandbox's database is left behind.
#[tokio::test]
async fn sigterm_right_after_the_listen_line_still_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.args(["--sandbox", "--listen-addr=127.0.0.1:0"]);
    let mut server = Running::spawn(run);
    listen_line_addr(&server.next_line().await);
    let (status, logs) = server.terminate().await;
    assert_eq!(status.code(), Some(0), "{status}: {}", logs.stderr);
    assert_no_sandbox_database(dir.path());
}

fn assert_no_sandbox_database(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("sandbox"))
        .collect();
    assert!(
        left.is_empty(),
        "the sandbox's temporary database is removed: {left:?}"
    );
}

#[tokio::test]
async fn no_secret_reaches_the_text_logs() {
    let logs = run_a_whole_flow(&[("RUST_LOG", "debug")]).await;
    assert!(logs.stderr.contains("DEBUG"), "debug logging is on");
}

#[tokio::test]
async fn no_secret_reaches_the_json_logs_and_every_line_is_json() {
    let logs = run_a_whole_flow(&[("RUST_LOG", "debug"), ("LOG_FORMAT", "json")]).await;
    let mut lines = 0;
    for line in logs.stderr.lines() {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a stderr line that is not JSON ({e}): {line}"));
        assert!(parsed.is_object(), "{line}");
        lines += 1;
    }
    assert!(lines > 10, "the flow was logged: {lines} lines");
}

/// What a run printed.
struct Logs {
    stdout: String,
    stderr: String,
}

/// Runs the sandbox binary with `env`, clicks through a whole flow over HTTP
/// (plus a refresh, the proxy, an API key and two refused replays), stops it,
/// and checks that no secret of the flow appears in what it printed, apart
/// from the banner lines that show the admin token, the API key and the
/// connect link on purpose.
async fn run_a_whole_flow(env: &[(&str, &str)]) -> Logs {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.args(["--sandbox", "--listen-addr=127.0.0.1:0"]);
    // Unused by the sandbox's provider, but settings must never be printed either.
    let client_secret = "cli-client-secret-must-never-be-logged";
    let encryption_key = new_key();
    run.env("CLIENT_SECRET", client_secret)
        .env("TOKEN_ENCRYPTION_KEY", &encryption_key);
    run.envs(env.iter().copied());
    let mut server = Running::spawn(run);
    let base = format!("http://{}", listen_line_addr(&server.next_line().await));
    let admin_token = banner_value(&server.line_containing("admin token for this run: ").await);
    let api_key = banner_value(
        &server
            .line_containing("API key accepted by the fake API: ")
            .await,
    );
    let link_line = server.line_containing("/?session=").await;

    let flow = tokio::time::timeout(
        Duration::from_secs(60),
        drive_flow(&base, &admin_token, &api_key),
    )
    .await
    .expect("the flow finishes within 60 s");
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{}", logs.stderr);

    let on_purpose = |line: &&str| {
        line.starts_with("sandbox: admin token for this run: ")
            || line.starts_with("sandbox: API key accepted by the fake API: ")
            || *line == link_line
    };
    let printed: String = logs
        .stdout
        .lines()
        .filter(|line| !on_purpose(line))
        .chain(logs.stderr.lines())
        .collect::<Vec<_>>()
        .join("\n");
    let secrets = [
        ("the connect-session token", flow.session.as_str()),
        ("the state", &flow.state),
        ("the authorization code", &flow.code),
        ("the access token", &flow.access_token),
        ("the refreshed access token", &flow.refreshed_token),
        ("the client secret", client_secret),
        ("the encryption key", &encryption_key),
        ("the admin token", &admin_token),
        ("the API key", &api_key),
    ];
    for (what, secret) in secrets {
        assert!(secret.len() >= 16, "{what} is a real value: {secret:?}");
        let line = printed.lines().find(|line| line.contains(secret));
        assert!(line.is_none(), "{what} is in the output: {line:?}");
    }
    // The secrets nobody outside sees (the sandbox's client secret, refresh
    // tokens, the PKCE verifier) are all random tokens: 43 URL-safe base64
    // characters. None may show up at all.
    let token_shaped = printed
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .find(|word| word.len() >= 43);
    assert!(
        token_shaped.is_none(),
        "a token-shaped value is in the output: {token_shaped:?}"
    );
    logs
}

/// The values a flow produced that must stay out of the logs.
struct FlowSecrets {
    session: String,
    state: String,
    code: String,
    access_token: String,
    refreshed_token: String,
}

async fn drive_flow(base: &str, admin_token: &str, api_key: &str) -> FlowSecrets {
    let at = |path: &str| format!("{base}{path}");
    let admin = reqwest::Client::new();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let created = admin
        .post(at("/connect-sessions"))
        .bearer_auth(admin_token)
        .json(&json!({ "connection_id": "default" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let session = created.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let auth = browser
        .get(at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    assert!(auth.status().is_redirection(), "{}", auth.status());
    let authorize = crate::support::location(&auth);
    let state = query_param(&authorize, "state");
    let consent_page = browser
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent = consent_page
        .split("name=\"consent\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a consent id on the page: {consent_page}"));
    let approved = browser
        .post(at("/sandbox/oauth/authorize"))
        .form(&[("consent", consent), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    let callback = crate::support::location(&approved);
    let code = query_param(&callback, "code");
    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    // Refused replays are logged too: the callback again, the used session again.
    assert_eq!(
        browser.get(&callback).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let again = browser
        .get(at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);

    let token = |path: &'static str, post: bool| {
        let request = if post {
            admin.post(at(path))
        } else {
            admin.get(at(path))
        };
        async move {
            let answer = request.bearer_auth(admin_token).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            answer.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let access_token = token("/connections/default/access-token", false).await;
    let refreshed_token = token("/connections/default/refresh", true).await;
    assert_ne!(access_token, refreshed_token);
    let proxied = admin
        .get(at("/connections/default/api/lists"))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), StatusCode::OK);
    let stored_key = admin
        .put(at("/connections/with-key/api-key"))
        .bearer_auth(admin_token)
        .json(&json!({ "api_key": api_key }))
        .send()
        .await
        .unwrap();
    assert_eq!(stored_key.status(), StatusCode::OK);

    FlowSecrets {
        session,
        state,
        code,
        access_token,
        refreshed_token,
    }
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .unwrap_or_else(|| panic!("{name} in {url}"))
        .1
        .into_owned()
}

/// The address in `listening on http://ADDR`.
fn listen_line_addr(line: &str) -> SocketAddr {
    line.strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("the first line says where it listens: {line:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("a socket address ({e}): {line:?}"))
}

/// What follows the banner line's `: `.
fn banner_value(line: &str) -> String {
    line.rsplit(": ").next().unwrap().trim().to_owned()
}

/// The binary running: its stdout lines as they come, everything it prints
/// kept; killed if dropped while still running (a failed test).
struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    readers: Vec<JoinHandle<()>>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn spawn(mut command: Command) -> Self {
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

    async fn next_line(&mut self) -> String {
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
    async fn line_containing(&mut self, needle: &str) -> String {
        loop {
            let line = self.next_line().await;
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends SIGTERM, waits for the exit, and returns its status and everything printed.
    async fn terminate(self) -> (ExitStatus, Logs) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        self.wait(Duration::from_secs(10)).await
    }

    /// Waits up to `limit` for the exit; returns its status and everything printed.
    async fn wait(mut self, limit: Duration) -> (ExitStatus, Logs) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the binary did not exit within {limit:?}; stderr: {}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
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
