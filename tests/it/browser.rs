//! A real browser clicks through the sandbox: headless Chromium, driven over
//! WebDriver by a chromedriver this test starts and always stops.
//!
//! Without Chromium or chromedriver the tests say why on stderr and skip,
//! except in CI (`CI=true`), where a missing browser fails them: CI must never
//! pass by silently skipping the one test that uses a real browser.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

/// The longest any one browser test may take, start to finish.
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// How long to wait for one page to show what it should.
const PAGE_LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_connect_then_approve_connects_the_account() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::sandbox(&[]).await;
    let session = app.session("default").await;
    let browser = bounded(async move {
        browser.open_connect_page(&app, &session).await;
        browser.click_button("Approve").await;
        let page = browser.wait_for_heading("Connected").await;
        assert!(
            page.contains("Your EmailOctopus account is connected."),
            "{page}"
        );

        let (status, connection) = app.admin().get("/connections/default").await;
        assert_eq!(status, StatusCode::OK, "{connection}");
        assert_eq!(connection["status"], "connected");
        assert_eq!(connection["kind"], "oauth");
        browser
    })
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_deny_says_you_declined_and_stores_nothing() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::sandbox(&[]).await;
    let session = app.session("default").await;
    let browser = bounded(async move {
        browser.open_connect_page(&app, &session).await;
        browser.click_button("Deny").await;
        let page = browser.wait_for_heading("You declined").await;
        assert!(page.contains("nothing was connected"), "{page}");

        assert_eq!(
            app.admin().get("/connections/default").await.0,
            StatusCode::NOT_FOUND
        );
        let (_, list) = app.admin().get("/connections").await;
        assert_eq!(list["connections"], json!([]));
        browser
    })
    .await;
    browser.close().await;
}

async fn bounded<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the browser test finishes within its time limit")
}

/// A WebDriver session in a fresh headless Chromium profile.
struct Browser {
    client: Client,
    // Dropped after the client: the driver is killed, then the profile removed.
    _driver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser session, or returns `None` (skip)
    /// when no browser is installed outside CI.
    async fn start() -> Option<Self> {
        let (chromium, chromedriver) = match (
            find_program(&["chromium", "chromium-browser", "google-chrome"]),
            find_program(&["chromedriver"]),
        ) {
            (Some(chromium), Some(chromedriver)) => (chromium, chromedriver),
            _ => {
                let reason = "Chromium and chromedriver are needed \
                              (Debian: apt-get install chromium chromium-driver)";
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true and no browser: {reason}");
                }
                eprintln!("skipped: {reason}");
                return None;
            }
        };
        let profile = tempfile::tempdir().unwrap();
        let driver = Chromedriver::start(&chromedriver, profile.path()).await;
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    // Root in a container has no user namespace for the sandbox.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().join("chromium").display()),
                ],
            }),
        );
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver.url),
        )
        .await
        .expect("Chromium starts within 30 s")
        .unwrap_or_else(|e| panic!("no browser session: {e}\n{}", driver.log()));
        Some(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Opens the connect page for `session` and clicks "Connect EmailOctopus",
    /// which leads to the sandbox's consent page.
    async fn open_connect_page(&self, app: &TestApp, session: &str) {
        self.client
            .goto(&app.at(&format!("/?session={session}")))
            .await
            .unwrap();
        let page = self.wait_for_heading("Connect EmailOctopus").await;
        assert!(page.contains("Not connected yet."), "{page}");
        self.client
            .find(Locator::LinkText("Connect EmailOctopus"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let consent = self.wait_for_heading("Sandbox: authorize this app?").await;
        assert!(consent.contains("sandbox-client"), "{consent}");
    }

    async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space()='{label}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no {label} button: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Waits until the page's heading reads `heading`; returns the page's text.
    async fn wait_for_heading(&self, heading: &str) -> String {
        let xpath = format!("//h1[normalize-space()='{heading}']");
        if let Err(error) = self
            .client
            .wait()
            .at_most(PAGE_LIMIT)
            .for_element(Locator::XPath(&xpath))
            .await
        {
            let url = self.client.current_url().await.ok();
            let text = self.text().await;
            panic!("no page headed {heading:?} ({error}); at {url:?}: {text}");
        }
        self.text().await
    }

    async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(error) => format!("(no body: {error})"),
        }
    }

    /// Ends the session (and the browser) politely; the driver guard does the rest.
    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
    }
}

/// A chromedriver process, killed with its whole process group (the browser
/// too) when dropped, on success and on failure alike.
struct Chromedriver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Chromedriver {
    async fn start(program: &Path, dir: &Path) -> Self {
        let port = free_port();
        let log = dir.join("chromedriver.log");
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(program)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that Drop can end the browser too.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
        };
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        driver.wait_until_ready().await;
        driver
    }

    /// Polls `/status` until it says ready: no fixed sleep.
    async fn wait_until_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited early ({status}):\n{}", self.log());
            }
            if let Ok(answer) = http.get(format!("{}/status", self.url)).send().await {
                let body: serde_json::Value = answer.json().await.unwrap_or_default();
                if body["value"]["ready"] == json!(true) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within 20 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group id is the driver's pid (process_group(0) above).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago: bind port 0, note it, let it go.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first of `names` found on `PATH`.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
