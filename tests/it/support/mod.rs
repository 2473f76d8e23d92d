//! `TestApp::start`: the real server on port 0, on a real database, driven
//! over HTTP; `FakeProvider` plays the provider and the API.

pub mod browser;
pub mod cut;
pub mod provider;
pub mod receiver;
pub mod wait;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use emailoctopus_connect::app::App;
use emailoctopus_connect::clock::Clock;
use emailoctopus_connect::config::{Cli, Purpose};
use emailoctopus_connect::maintenance::{Maintenance, PassReport};
use emailoctopus_connect::store::{DatabaseUrl, PoolSettings, Store};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use provider::{FakeProvider, TokenAnswer};
pub use wait::eventually;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// Which database a test runs on. Postgres runs when `TEST_DATABASE_URL` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one test body on each backend: SQLite always; Postgres is listed as
/// ignored, with the reason, unless asked for with `--include-ignored`
/// (and then it needs `TEST_DATABASE_URL`; CI sets both).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            }
        )*
    };
}

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database: an SQLite file in a temporary folder, or a Postgres
/// database made for this test and dropped after it. `store()` is the
/// test's one handle on it, to look at rows or change them as an older
/// server or an operator's command would.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    postgres_name: Option<String>,
    /// Opened on first use, closed when the `TestDb` goes.
    store: tokio::sync::OnceCell<Store>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("test.db").display()),
                dir,
                postgres_name: None,
                store: Default::default(),
            },
            Backend::Postgres => {
                let admin_url = postgres_url()
                    .expect("the Postgres tests need TEST_DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/test");
                let name = format!(
                    "eoc_test_{}",
                    emailoctopus_connect::crypto::random_token()[..12]
                        .to_lowercase()
                        .replace('-', "_")
                );
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
                    .await
                    .unwrap();
                sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&format!("/{name}"));
                Self {
                    url: url.to_string(),
                    dir,
                    postgres_name: Some(name),
                    store: Default::default(),
                }
            }
        }
    }

    /// The test's handle on this database: the store the server uses,
    /// opened beside it (the migrations run if no server has yet).
    pub async fn store(&self) -> &Store {
        self.store
            .get_or_init(|| async {
                let settings = PoolSettings {
                    max_connections: 2,
                    acquire_timeout: Duration::from_secs(5),
                    start_timeout: Duration::from_secs(5),
                };
                let url = DatabaseUrl::parse(&self.url).unwrap();
                Store::connect(&url, &settings).await.unwrap()
            })
            .await
    }

    /// The SQLite file and its -wal and -shm companions, as raw bytes.
    pub fn sqlite_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(b) = std::fs::read(self.dir.path().join(format!("test.db{suffix}"))) {
                bytes.extend(b);
            }
        }
        bytes
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // The handle's connections close with its pool, before the
        // database they are on goes.
        drop(self.store.take());
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        let admin_url = postgres_url().unwrap();
        // Drop runs outside any runtime we may block, so use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await
                {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

/// The usual test: the server against a fresh `FakeProvider`, on a fresh
/// database of `backend`, with a fresh key and these extra flags.
pub async fn start(backend: Backend, extra: &[&str]) -> (FakeProvider, TestDb, TestApp) {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(backend).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    args.extend(extra.iter().map(|a| a.to_string()));
    let app = TestApp::start(&db, &args).await;
    (provider, db, app)
}

/// Answers the sandbox's consent page that `authorize_url` shows with
/// `decision` (`approve` or `deny`); returns where the sandbox sends the browser.
pub async fn sandbox_decide(
    browser: &reqwest::Client,
    authorize_url: &str,
    decision: &str,
) -> String {
    let page = browser
        .get(authorize_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent = page
        .split("name=\"consent\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no consent id on the page: {page}"));
    let origin = url::Url::parse(authorize_url)
        .unwrap()
        .origin()
        .ascii_serialization();
    let answered = browser
        .post(format!("{origin}/sandbox/oauth/authorize"))
        .form(&[("consent", consent), ("decision", decision)])
        .send()
        .await
        .unwrap();
    location(&answered)
}

/// A loopback address that refuses connections for as long as this lives:
/// its port is bound, so nothing else can take it, and never listened on.
/// (A port bound, let go and hoped still free could be anyone's by the time
/// it is dialled.)
pub struct RefusingAddr {
    pub addr: std::net::SocketAddr,
    _bound: tokio::net::TcpSocket,
}

pub fn refusing_addr() -> RefusingAddr {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // Without address reuse no other socket may bind the port, listening or not.
    socket.set_reuseaddr(false).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    RefusingAddr {
        addr: socket.local_addr().unwrap(),
        _bound: socket,
    }
}

/// `args` with `flag`'s value replaced by `value`.
pub fn with_flag(args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let prefix = format!("{flag}=");
    let mut args: Vec<String> = args
        .into_iter()
        .filter(|a| !a.starts_with(&prefix))
        .collect();
    args.push(format!("{prefix}{value}"));
    args
}

/// The real binary in a process of its own on `args` (killed when
/// dropped, or outright by the test), and its base URL from its first line.
pub async fn spawn_binary(args: &[String]) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_emailoctopus-connect"))
        .args(args)
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next_line().await.unwrap().unwrap();
    let url = listening.strip_prefix("listening on ").unwrap().to_owned();
    // Its stdout stays read, so that nothing it prints later can block it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// A fresh `TOKEN_ENCRYPTION_KEY` value.
pub fn new_key() -> String {
    emailoctopus_connect::crypto::generate_key()
}

pub struct TestApp {
    pub url: String,
    pub clock: Clock,
    maintenance: Arc<Maintenance>,
    /// `ADMIN_TOKEN`, or the one the sandbox made for its run.
    pub admin_token: String,
    /// `/metrics` on `METRICS_ADDR`, when that is set (port 0 resolved).
    pub metrics_url: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestApp {
    /// Starts the server on `db` with these flags (plus port 0 and the admin token).
    pub async fn start(db: &TestDb, args: &[String]) -> Self {
        Self::start_on(&db.url, args).await
    }

    /// Starts the server on the database at `database_url`. `args` may
    /// replace the test defaults (a short provider timeout, upkeep passes
    /// only when a test runs one).
    pub async fn start_on(database_url: &str, args: &[String]) -> Self {
        let mut argv = vec![
            "emailoctopus-connect".to_owned(),
            "--listen-addr=127.0.0.1:0".to_owned(),
            format!("--database-url={database_url}"),
            format!("--admin-token={ADMIN_TOKEN}"),
        ];
        for default in [
            "--provider-timeout-secs=2",
            // Upkeep passes run when a test calls `upkeep()`, not on a timer.
            "--maintenance-interval-secs=86400",
        ] {
            let flag = default.split('=').next().unwrap();
            if !args.iter().any(|a| a.starts_with(flag)) {
                argv.push(default.to_owned());
            }
        }
        argv.extend(args.iter().cloned());
        Self::start_argv(argv).await
    }

    /// Starts the server in sandbox mode.
    pub async fn sandbox(args: &[&str]) -> Self {
        let mut argv = vec![
            "emailoctopus-connect".to_owned(),
            "--sandbox".to_owned(),
            "--listen-addr=127.0.0.1:0".to_owned(),
            "--maintenance-interval-secs=86400".to_owned(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        Self::start_argv(argv).await
    }

    /// Starts the server on exactly `argv` (the program name first).
    pub async fn start_argv(argv: Vec<String>) -> Self {
        // `RUST_LOG=info cargo test ...` shows the server's logs for a failing test.
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let config = Cli::try_parse_from(argv)
            .unwrap()
            .settings
            .check(Purpose::Serve)
            .unwrap();
        let clock = Clock::default();
        let app = App::build_with_clock(config, clock.clone()).await.unwrap();
        let url = format!("http://{}", app.local_addr());
        let maintenance = app.maintenance();
        let metrics_url = app
            .metrics_addr()
            .map(|addr| format!("http://{addr}/metrics"));
        let admin_token = match app.sandbox() {
            Some(sandbox) => sandbox.admin_token.expose_secret().to_owned(),
            None => ADMIN_TOKEN.to_owned(),
        };
        let (shutdown, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        Self {
            url,
            clock,
            maintenance,
            admin_token,
            metrics_url,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits until it has: in-flight
    /// requests answered, and webhook deliveries in flight ended (within the
    /// server's grace), so that what a receiver holds afterwards is final.
    pub async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).ok();
        tokio::time::timeout(Duration::from_secs(40), self.task.take().unwrap())
            .await
            .unwrap()
            .unwrap();
    }

    /// Runs one pass of the background upkeep now.
    pub async fn upkeep(&self) -> PassReport {
        self.maintenance.pass().await
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// An HTTP client for the backend API, with the admin bearer.
    pub fn admin(&self) -> Admin {
        Admin {
            app_url: self.url.clone(),
            token: self.admin_token.clone(),
            http: client(false),
        }
    }

    /// A browser: keeps cookies, does not follow redirects by itself.
    pub fn browser(&self) -> reqwest::Client {
        client(true)
    }

    /// A connect session for `id`, as the app's backend would make it.
    pub async fn session(&self, id: &str) -> String {
        self.session_with(serde_json::json!({ "connection_id": id }))
            .await
    }

    /// A connect session made with `request` (`connection_id` and whatever
    /// else `POST /connect-sessions` takes).
    pub async fn session_with(&self, request: Value) -> String {
        let (status, body) = self.admin().post("/connect-sessions", request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Starts a flow in `browser` with the session and follows it to the
    /// provider's redirect back; returns the callback URL.
    pub async fn begin(&self, browser: &reqwest::Client, session: &str) -> String {
        let auth = browser
            .get(self.at(&format!("/auth?session={session}")))
            .send()
            .await
            .unwrap();
        assert!(auth.status().is_redirection(), "{}", auth.status());
        let authorize = location(&auth);
        let back = browser.get(authorize).send().await.unwrap();
        assert!(back.status().is_redirection(), "{}", back.status());
        location(&back)
    }

    /// Connects `id` with the fake API's valid key, through the backend API.
    pub async fn connect_api_key(&self, id: &str) {
        let (status, body) = self
            .admin()
            .put(
                &format!("/connections/{id}/api-key"),
                serde_json::json!({ "api_key": provider::API_KEY }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The value of the sample `series` (a name and its labels as the text
    /// exposition writes them) on `/metrics`, or `None` when it is not there.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .admin()
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().unwrap())
    }

    /// A whole connect flow for `id` through `provider`; returns the callback's answer.
    pub async fn connect(&self, id: &str) -> reqwest::Response {
        self.connect_through(&self.session(id).await).await
    }

    /// A whole connect flow through the connect session `session`.
    pub async fn connect_through(&self, session: &str) -> reqwest::Response {
        let browser = self.browser();
        let callback = self.begin(&browser, session).await;
        browser.get(callback).send().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The value of `name` in `url`'s query; panics when it has none.
pub fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(cookies)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub struct Admin {
    app_url: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.app_url))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        json_of(
            self.request(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(
            self.request(reqwest::Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(
            self.request(reqwest::Method::PUT, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A JSON Merge Patch (RFC 7396), sent as `application/merge-patch+json`.
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(
            self.request(reqwest::Method::PATCH, path)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
    }
}

pub async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
