//! The listen line, the connect link, and stopping on SIGTERM.

use std::path::Path;

use reqwest::StatusCode;

use super::process::{command, listen_line_addr, Running};

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
    // the moment right after the listen line, see the test below).
    let (status, logs) = server.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", logs.stderr);
    assert_no_sandbox_database(dir.path());
}

/// The signal handlers are installed before the listen line is printed, so a
/// supervisor that stops the process as soon as it says it listens does not
/// kill it outright (status 143) or leave the sandbox's database behind.
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
async fn a_database_that_never_answers_is_retried_then_the_start_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let refusing = crate::support::refusing_addr();
    let mut run = command(dir.path());
    run.args([
        "--client-id=c",
        "--client-secret=s",
        "--listen-addr=127.0.0.1:0",
    ])
    .env("TOKEN_ENCRYPTION_KEY", crate::support::new_key())
    .env(
        "DATABASE_URL",
        format!("postgres://postgres@{}/nowhere", refusing.addr),
    )
    .env("DATABASE_START_TIMEOUT_SECS", "2");
    let started = std::time::Instant::now();
    let finished = super::process::output(run).await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "it did not retry"
    );
    assert_eq!(finished.status.code(), Some(1));
    let stderr = super::process::text(&finished.stderr);
    assert!(stderr.contains("does not answer yet; retrying"), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!String::from_utf8_lossy(&finished.stdout).contains("listening on"));
}
