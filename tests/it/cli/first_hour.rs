//! A newcomer's first hour with the binary: API-key mode with only a key
//! and an admin token, a sandbox that never borrows real secrets, commands
//! that cannot lose data, and a start that listens and says what is wrong.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::process::{command, listen_line_addr, output, text, Running};
use crate::support::provider::API_KEY;
use crate::support::{new_key, postgres_url, Backend, FakeProvider, TestDb};

#[tokio::test]
async fn a_key_and_an_admin_token_are_enough_to_connect_with_an_api_key() {
    let api = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.env("TOKEN_ENCRYPTION_KEY", new_key())
        .env("ADMIN_TOKEN", "first-hour-admin-token")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("API_BASE_URL", format!("{}/api", api.url));
    let mut server = Running::spawn(run);
    let addr = listen_line_addr(&server.next_line().await);
    server
        .stderr_containing("OAuth is not configured: connections use API keys")
        .await;

    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let saved = http
        .put(format!("{base}/connections/default/api-key"))
        .bearer_auth("first-hour-admin-token")
        .json(&json!({ "api_key": API_KEY }))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let lists = http
        .get(format!("{base}/connections/default/api/lists"))
        .bearer_auth("first-hour-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(lists.status(), StatusCode::OK);
    assert_eq!(
        api.recorded("/api/lists")
            .last()
            .unwrap()
            .header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    let (status, logs) = server.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", logs.stderr);
    // One line per request, with its route and status, and no library noise.
    assert!(
        logs.stderr.lines().any(|l| l.contains("request")
            && l.contains("route=\"/connections/{id}/api/{*path}\"")
            && l.contains("status=200")),
        "{}",
        logs.stderr
    );
    for noise in ["tower_http", "sqlx::", "hyper", "reqwest::"] {
        assert!(!logs.stderr.contains(noise), "{noise}: {}", logs.stderr);
    }
    assert!(
        logs.stderr.contains("connection=default"),
        "{}",
        logs.stderr
    );
    assert!(!logs.stderr.contains(API_KEY) && !logs.stdout.contains(API_KEY));
}

#[tokio::test]
async fn without_an_admin_token_one_line_says_the_backend_api_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.env("TOKEN_ENCRYPTION_KEY", new_key())
        .env("LISTEN_ADDR", "127.0.0.1:0");
    let mut server = Running::spawn(run);
    server.next_line().await;
    server.stderr_containing("ADMIN_TOKEN is not set").await;
    let (_, logs) = server.terminate().await;
    assert_eq!(logs.stderr.matches("ADMIN_TOKEN is not set").count(), 1);
    assert!(logs.stderr.contains("gen-token"), "{}", logs.stderr);
}

#[tokio::test]
async fn the_sandbox_makes_its_own_secrets_and_names_the_ones_it_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let real_key = new_key();
    std::fs::write(
        dir.path().join(".env"),
        "ADMIN_TOKEN=fixture-admin-token-in-dot-env\n",
    )
    .unwrap();
    let mut run = command(dir.path());
    run.args(["--sandbox", "--listen-addr=127.0.0.1:0"])
        .env("CLIENT_SECRET", "fixture-client-secret-in-env")
        .env("TOKEN_ENCRYPTION_KEY", &real_key);
    let mut server = Running::spawn(run);
    let addr = listen_line_addr(&server.next_line().await);
    let notice = server.line_containing("sandbox: ignoring").await;
    for name in ["CLIENT_SECRET", "TOKEN_ENCRYPTION_KEY", "ADMIN_TOKEN"] {
        assert!(notice.contains(name), "{notice}");
    }
    let refused = reqwest::Client::new()
        .get(format!("http://{addr}/connections"))
        .bearer_auth("fixture-admin-token-in-dot-env")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let page = reqwest::get(format!("http://{addr}/")).await.unwrap();
    let page = page.text().await.unwrap();
    let (_, logs) = server.terminate().await;
    for secret in [
        "fixture-admin-token-in-dot-env",
        "fixture-client-secret-in-env",
        real_key.as_str(),
    ] {
        assert!(!logs.stdout.contains(secret), "printed: {}", logs.stdout);
        assert!(!logs.stderr.contains(secret), "logged: {}", logs.stderr);
        assert!(!page.contains(secret), "shown in the banner");
    }
}

#[tokio::test]
async fn rekey_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    for (url, what) in [
        (format!("sqlite://{}", missing.display()), "a missing file"),
        (
            format!("sqlite://{}", empty.display()),
            "a file without tables",
        ),
    ] {
        let mut run = command(dir.path());
        // Flags after the subcommand work.
        run.args(["rekey", &format!("--database-url={url}")])
            .env("TOKEN_ENCRYPTION_KEY", new_key());
        let out = output(run).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("DATABASE_URL"), "{what}: {stderr}");
        assert!(!stderr.contains("--sandbox"), "{what}: {stderr}");
    }
    assert!(!missing.exists(), "rekey created the database");
    assert_eq!(
        std::fs::read(&empty).unwrap(),
        b"",
        "rekey changed the file"
    );
}

#[tokio::test]
#[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
async fn rekey_refuses_a_postgres_database_without_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Postgres).await;
    let mut run = command(dir.path());
    run.args(["rekey", &format!("--database-url={}", db.url)])
        .env("TOKEN_ENCRYPTION_KEY", new_key());
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no emailoctopus-connect tables"));
}

#[tokio::test]
async fn rekey_without_a_key_does_not_suggest_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.arg("rekey");
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TOKEN_ENCRYPTION_KEY"), "{stderr}");
    assert!(!stderr.contains("sandbox"), "{stderr}");
}

#[tokio::test]
async fn a_database_that_cannot_heal_stops_the_start_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        format!("sqlite://{}/no/such/dir/x.db", dir.path().display()),
        "postgres://postgres@127.0.0.1:notaport/db".to_owned(),
    ];
    assert_stops_at_once(dir.path(), &urls).await;
}

#[tokio::test]
#[ignore = "needs Postgres: set TEST_DATABASE_URL, then cargo test -- --include-ignored"]
async fn a_postgres_database_that_does_not_exist_stops_the_start_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let admin = postgres_url().expect("TEST_DATABASE_URL");
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path("/eoc_no_such_database");
    assert_stops_at_once(dir.path(), &[url.to_string()]).await;
}

/// Each URL stops the start with exit 2 at once, naming DATABASE_URL.
async fn assert_stops_at_once(dir: &std::path::Path, urls: &[String]) {
    for url in urls {
        let mut run = command(dir);
        run.env("TOKEN_ENCRYPTION_KEY", new_key())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", url)
            .env("DATABASE_START_TIMEOUT_SECS", "30");
        let started = Instant::now();
        let out = output(run).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{url}: retried what cannot heal"
        );
        assert!(stderr.contains("DATABASE_URL"), "{url}: {stderr}");
        assert!(!text(&out.stdout).contains("listening on"));
    }
}

#[tokio::test]
async fn a_signal_during_the_database_retry_stops_the_start_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let refusing = crate::support::refusing_addr();
    let mut run = command(dir.path());
    run.env("TOKEN_ENCRYPTION_KEY", new_key())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@{}/db", refusing.addr),
        )
        .env("DATABASE_START_TIMEOUT_SECS", "60");
    let server = Running::spawn(run);
    server.stderr_containing("retrying").await;
    let asked = Instant::now();
    let (status, logs) = server.terminate().await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "took {:?} to stop: {}",
        asked.elapsed(),
        logs.stderr
    );
    assert_eq!(status.code(), Some(0), "{}", logs.stderr);
}

#[tokio::test]
async fn a_dot_env_line_that_does_not_parse_is_named_by_its_number_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "LISTEN_ADDR=127.0.0.1:0\nADMIN_TOKEN is secret-ish-value\n",
    )
    .unwrap();
    let out = output(command(dir.path())).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(".env: line 2"), "{stderr}");
    assert!(!stderr.contains("secret-ish-value"), "{stderr}");
}

#[tokio::test]
async fn gen_token_prints_a_fresh_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = command(dir.path());
    first.arg("gen-token");
    let mut second = command(dir.path());
    second.arg("gen-token");
    let (first, second) = (output(first).await, output(second).await);
    assert_eq!(first.status.code(), Some(0));
    let token = text(&first.stdout).trim().to_owned();
    assert!(token.len() >= 32, "{token}");
    assert_ne!(token, text(&second.stdout).trim());
}

#[tokio::test]
async fn every_problem_between_settings_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.env("CLIENT_ID", "only-half")
        .env("WEBHOOK_URL", "http://127.0.0.1:9/hook");
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for line in [
        "CLIENT_SECRET: required because CLIENT_ID is set",
        "WEBHOOK_SECRET: required when WEBHOOK_URL is set",
        "TOKEN_ENCRYPTION_KEY: required",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
}

#[tokio::test]
async fn every_line_of_the_example_settings_works_uncommented() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let uncommented: String = example
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(setting) if setting.split('=').next().is_some_and(is_setting_name) => setting,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(dir.path().join(".env"), uncommented).unwrap();
    // The three values a user must choose; everything else as the example has it.
    let mut run = command(dir.path());
    run.env("TOKEN_ENCRYPTION_KEY", new_key())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/example.db", dir.path().display()),
        );
    let mut server = Running::spawn(run);
    let first = server.next_line().await;
    listen_line_addr(&first);
    let (status, logs) = server.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", logs.stderr);
}

fn is_setting_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}
