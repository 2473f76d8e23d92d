//! A real browser for the tests that click: headless Chromium, driven over
//! WebDriver by a chromedriver that `Browser::start` launches and always stops.
//!
//! The tests that need these tools are `#[ignore]`d with the reason; run
//! with `--include-ignored`, a tool that cannot be found fails them, naming it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::sync::oneshot;

use crate::support::{eventually, TestApp};

/// The longest any one browser test may take, start to finish.
pub const TEST_LIMIT: Duration = Duration::from_secs(90);
/// How long to wait for one page to show what it should.
pub const PAGE_LIMIT: Duration = Duration::from_secs(15);

/// Runs a browser test's body within `TEST_LIMIT`.
pub async fn bounded<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the browser test finishes within its time limit")
}

/// A tool the test needs is missing. The tests that need one are
/// `#[ignore]`d with the reason, so this runs only when they were asked
/// for (`--include-ignored`, as CI does): then a missing tool is a failure.
pub fn missing_tool(reason: &str) -> ! {
    panic!("{reason}")
}

/// A WebDriver session in a fresh headless Chromium profile.
pub struct Browser {
    pub client: Client,
    // Dropped after the client: the driver is killed, then the profile removed.
    _driver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser session.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// As `start`, with Chromium's popup blocker on, as it is for users
    /// (chromedriver turns it off by default).
    pub async fn start_with_popup_blocker() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(popup_blocker: bool) -> Self {
        let (chromium, chromedriver) = match (
            find_program(&["chromium", "chromium-browser", "google-chrome"]),
            find_program(&["chromedriver"]),
        ) {
            (Some(chromium), Some(chromedriver)) => (chromium, chromedriver),
            _ => {
                missing_tool(
                    "no browser: Chromium and chromedriver are needed \
                     (Debian: apt-get install chromium chromium-driver)",
                );
            }
        };
        let profile = tempfile::tempdir().unwrap();
        let driver = Chromedriver::start(&chromedriver, profile.path()).await;
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        let kept_off: &[&str] = if popup_blocker {
            &["disable-popup-blocking"]
        } else {
            &[]
        };
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "excludeSwitches": kept_off,
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
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Opens the connect page for `session` and clicks "Connect EmailOctopus",
    /// which leads to the provider's pages.
    pub async fn open_connect_page(&self, app: &TestApp, session: &str) {
        self.client
            .goto(&app.at(&format!("/?session={session}")))
            .await
            .unwrap();
        let page = self.wait_for_heading("Connect EmailOctopus").await;
        assert!(page.contains("Not connected yet."), "{page}");
        self.click_link("Connect EmailOctopus").await;
    }

    pub async fn click_link(&self, text: &str) {
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("no {text} link: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space()='{label}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no {label} button: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Types `value` into the form field named `name`.
    pub async fn fill(&self, name: &str, value: &str) {
        self.client
            .find(Locator::Css(&format!("input[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("no field named {name}: {e}"))
            .send_keys(value)
            .await
            .unwrap();
    }

    /// Waits until the page's heading reads `heading`; returns the page's text.
    pub async fn wait_for_heading(&self, heading: &str) -> String {
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

    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(error) => format!("(no body: {error})"),
        }
    }

    /// Ends the session (and the browser) politely; the driver guard does the rest.
    pub async fn close(self) {
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
    /// Starts chromedriver on a port of the system's choosing (port 0) and
    /// learns it from the line it prints once it listens.
    async fn start(program: &Path, dir: &Path) -> Self {
        let log = dir.join("chromedriver.log");
        let mut child = {
            use std::os::unix::process::CommandExt;
            Command::new(program)
                .arg("--port=0")
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                // Its own process group, so that Drop can end the browser too.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
        };
        let port = announced_port(child.stdout.take().unwrap());
        // The guard first, so that a driver that never says its port is killed too.
        let mut driver = Self {
            child,
            url: String::new(),
            log,
        };
        let port = tokio::time::timeout(Duration::from_secs(20), port)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "chromedriver did not say its port within 20 s:\n{}",
                    driver.log()
                )
            })
            .unwrap_or_else(|_| {
                panic!("chromedriver exited before it listened:\n{}", driver.log())
            });
        driver.url = format!("http://127.0.0.1:{port}");
        driver.wait_until_ready().await;
        driver
    }

    /// Waits until `/status` says ready, or the driver has exited.
    async fn wait_until_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        eventually("chromedriver says it is ready", async || {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited early ({status}):\n{}", self.log());
            }
            let Ok(answer) = http.get(format!("{}/status", self.url)).send().await else {
                return false;
            };
            let body: serde_json::Value = answer.json().await.unwrap_or_default();
            body["value"]["ready"] == json!(true)
        })
        .await;
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

/// The port in chromedriver's "ChromeDriver was started successfully on
/// port N." line; the rest of its output is read and dropped, so that a full
/// pipe never stalls it. Fails if the output ends first.
fn announced_port(stdout: ChildStdout) -> oneshot::Receiver<u16> {
    let (send, port) = oneshot::channel();
    std::thread::spawn(move || {
        let mut send = Some(send);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let announced = line
                .strip_prefix("ChromeDriver was started successfully on port ")
                .and_then(|rest| rest.trim_end_matches('.').parse().ok());
            if let Some(port) = announced {
                if let Some(send) = send.take() {
                    let _ = send.send(port);
                }
            }
        }
    });
    port
}

/// The first of `names` found on `PATH`.
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
