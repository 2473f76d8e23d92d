//! interop/provider.mjs under node, spoken to over its stdin and stdout.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::support::browser::{find_program, missing_tool};
use crate::support::eventually;

/// The access-token lifetime the provider is given, in seconds: short, like a
/// production provider's.
pub const ACCESS_TOKEN_TTL: i64 = 120;

/// interop/provider.mjs running under node, killed when dropped (and it
/// exits by itself when its stdin closes).
pub struct OidcProvider {
    pub issuer: String,
    /// Its discovery document (/.well-known/openid-configuration).
    discovery: Value,
    pub client_id: String,
    pub client_secret: String,
    method: String,
    stdin: ChildStdin,
    /// Read line by line until the clients are registered, then by a task
    /// that collects `events`.
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _child: Child,
}

impl OidcProvider {
    /// Starts the provider for a client of this auth method.
    pub async fn start(method: &str) -> Self {
        let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop");
        let Some(node) = find_program(&["node"]) else {
            missing_tool("no node: Node.js 20 or later is needed for the interop tests");
        };
        if !interop
            .join("node_modules/oidc-provider/package.json")
            .is_file()
        {
            missing_tool("oidc-provider is not installed: run `npm ci --prefix interop`");
        }
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("provider.stderr");
        let client_secret = emailoctopus_connect::crypto::random_token();
        let mut child = Command::new(node)
            .arg(interop.join("provider.mjs"))
            .current_dir(&interop)
            .env("CLIENT_SECRET", &client_secret)
            .env("ACCESS_TOKEN_TTL", ACCESS_TOKEN_TTL.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut provider = Self {
            issuer: String::new(),
            discovery: Value::Null,
            client_id: format!("interop-{method}"),
            client_secret,
            method: method.to_owned(),
            stdin,
            stdout: Some(stdout),
            events: Arc::default(),
            stderr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            _dir: dir,
            _child: child,
        };
        let line = provider.next_line().await;
        provider.issuer = line
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("expected `issuer URL`, got {line:?}"))
            .to_owned();
        provider.discovery = provider.fetch_discovery().await;
        provider
    }

    /// The next line the provider prints, within 30 s (node's start included).
    async fn next_line(&mut self) -> String {
        let lines = self.stdout.as_mut().expect("still reading lines by hand");
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            outcome => panic!(
                "the provider said nothing ({outcome:?}); its stderr:\n{}",
                self.stderr()
            ),
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    async fn fetch_discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let answer = self.http.get(url).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let discovery: Value = answer.json().await.unwrap();
        assert_eq!(discovery["issuer"], self.issuer.as_str());
        assert_eq!(
            discovery["authorization_response_iss_parameter_supported"],
            true
        );
        assert_eq!(
            discovery["code_challenge_methods_supported"],
            json!(["S256"])
        );
        discovery
    }

    /// An endpoint's URL, as discovery names it (`token_endpoint`, ...).
    pub fn endpoint(&self, name: &str) -> String {
        self.discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", self.discovery))
            .to_owned()
    }

    /// Registers the server's callback with both clients; from then on the
    /// provider's events are collected as they come.
    pub async fn register_redirect_uri(&mut self, uri: &str) {
        let command = format!("redirect_uri {uri}\n");
        self.stdin.write_all(command.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let line = self.next_line().await;
        assert_eq!(line, "clients ready", "{}", self.stderr());
        let mut lines = self.stdout.take().unwrap();
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(event) = line.strip_prefix("event ") {
                    events
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(event).unwrap());
                }
            }
        });
    }

    pub fn events_where(&self, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| keep(e))
            .cloned()
            .collect()
    }

    /// Waits until the provider has reported `name` `n` times (the line may
    /// still be in the pipe); returns the `n`th, and fails if there are more.
    pub async fn event(&self, name: &str, n: usize) -> Value {
        let seen = eventually(format!("{n} {name} events from the provider"), async || {
            let seen = self.events_where(|e| e["name"] == name);
            (seen.len() >= n).then_some(seen)
        })
        .await;
        assert_eq!(
            seen.len(),
            n,
            "{name} events: {seen:?}\nall: {:?}",
            self.events_where(|_| true)
        );
        seen[n - 1].clone()
    }

    /// RFC 7662 introspection, authenticated as the client.
    pub async fn introspect(&self, token: &str) -> Value {
        let url = self.endpoint("introspection_endpoint");
        let mut form = vec![("token", token)];
        let request = match self.method.as_str() {
            "client_secret_basic" => self
                .http
                .post(url)
                .basic_auth(&self.client_id, Some(&self.client_secret)),
            _ => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.client_secret));
                self.http.post(url)
            }
        };
        let answer = request.form(&form).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        answer.json().await.unwrap()
    }
}
