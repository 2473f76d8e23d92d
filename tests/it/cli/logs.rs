//! What reaches the logs: a whole flow run through the sandbox binary, and
//! none of its secrets printed, in text or in JSON.

use crate::support::query_param;
use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::process::{command, listen_line_addr, Logs, Running};
use crate::support::new_key;

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
    let unused_secret = "cli-client-secret-must-never-be-logged";
    let encryption_key = new_key();
    run.env("CLIENT_SECRET", unused_secret)
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
        ("the client secret", unused_secret),
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
    let callback = crate::support::sandbox_decide(&browser, &authorize, "approve").await;
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

/// What follows the banner line's `: `.
fn banner_value(line: &str) -> String {
    line.rsplit(": ").next().unwrap().trim().to_owned()
}
