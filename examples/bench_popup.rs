//! Popup timing driver (bench/connect.sh): the example app (examples/spa) on
//! its own origin, clicked through in headless Chromium against a running
//! sandbox server, RUNS times. Each run measures, with one clock
//! (`performance.timeOrigin + performance.now()` is shared by the windows):
//!
//! - `approve`: from the click on the sandbox's Approve button to the
//!   promise settling on the app's page (the provider's redirect, the
//!   callback and its code exchange, the popup page, then the settle);
//! - `message`: from the popup page's message arriving at the app's page to
//!   the promise settling (the status read that the message prompts).
//!   A provider that cuts the opener tie (`--coop` on the server) sends none.
//!
//! Usage: `bench_popup SERVER_URL ADMIN_TOKEN APP_PORT [RUNS] [coop]` (default
//! 20 runs). The server must allow `http://localhost:APP_PORT` in
//! RETURN_TO_ORIGINS. With `coop` (for a server started with
//! `--sandbox-provider-coop`) the app page gives a window that looks closed a
//! minute, as the README says to with such a provider.
//! Needs `chromium` and `chromedriver` on PATH. Prints each run and a
//! `RESULT runs=N approve_median_ms=.. message_median_ms=..` line.

#[path = "spa/app.rs"]
mod app;

use std::future::IntoFuture;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// Records, on the app's page, when the popup's message arrived and when
/// the result appeared.
const HOOKS: &str = r#"
    const now = () => performance.timeOrigin + performance.now();
    window.__times = {};
    addEventListener("message", (e) => {
        if (e.data && e.data.type === "emailoctopus-connect") window.__times.message ??= now();
    });
    const result = document.getElementById("result");
    new MutationObserver(() => { if (result.textContent) window.__times.settled ??= now(); })
        .observe(result, { childList: true, characterData: true, subtree: true });
"#;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, server, admin_token, app_port, rest @ ..] = args.as_slice() else {
        eprintln!("usage: bench_popup SERVER_URL ADMIN_TOKEN APP_PORT [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = rest
        .first()
        .map_or(20, |r| r.parse().expect("RUNS is a number"));
    let coop = rest.get(1).is_some_and(|flag| flag == "coop");
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{app_port}"))
        .await
        .expect("APP_PORT is free");
    let origin = format!("http://localhost:{app_port}");
    let router = app::router(app::Settings {
        connect_server: server.clone(),
        admin_token: admin_token.clone(),
        origin: origin.clone(),
    });
    tokio::spawn(axum::serve(listener, router).into_future());

    let (mut driver, client, profile) = browser().await;
    let (mut approve, mut message) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let page = if coop {
            format!("{origin}/?closed_grace_ms=60000")
        } else {
            origin.clone()
        };
        let (a, m) = one_connect(&client, &page).await;
        println!(
            "run {run}: approve→settled {a:.1} ms, message→settled {}",
            m.map_or("(no message)".into(), |m| format!("{m:.1} ms"))
        );
        approve.push(a);
        message.extend(m);
    }
    let _ = client.close().await;
    let _ = driver.kill();
    let _ = driver.wait();
    let _ = std::fs::remove_dir_all(profile);
    println!(
        "RESULT runs={runs} approve_median_ms={:.1} message_median_ms={} messages={}",
        median(&mut approve),
        if message.is_empty() {
            "n/a".into()
        } else {
            format!("{:.1}", median(&mut message))
        },
        message.len()
    );
}

/// One popup connect; the times in ms from Approve and from the message to the settle.
async fn one_connect(client: &Client, page: &str) -> (f64, Option<f64>) {
    client.goto(page).await.unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("body[data-ready='true']"))
        .await
        .unwrap();
    let app = client.window().await.unwrap();
    client.execute(HOOKS, vec![]).await.unwrap();
    client
        .find(Locator::Css("#connect"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let popup = loop {
        let windows = client.windows().await.unwrap();
        if let Some(popup) = windows.into_iter().find(|w| *w != app) {
            break popup;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    client.switch_to_window(popup).await.unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::LinkText("Connect EmailOctopus"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let approve = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath("//button[normalize-space()='Approve']"))
        .await
        .unwrap();
    let clicked = client
        .execute("return performance.timeOrigin + performance.now()", vec![])
        .await
        .unwrap();
    approve.click().await.unwrap();
    client.switch_to_window(app).await.unwrap();
    let result = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(
            "//p[@id='result' and normalize-space() != '']",
        ))
        .await
        .unwrap();
    let text = result.text().await.unwrap();
    assert!(
        text.starts_with("Connected"),
        "the connect did not succeed: {text}"
    );
    let times = client
        .execute("return window.__times", vec![])
        .await
        .unwrap();
    // A popup that could not close itself (no opener left) is closed here.
    for window in client.windows().await.unwrap() {
        if window != client.window().await.unwrap() {
            client.switch_to_window(window).await.unwrap();
            client.close_window().await.unwrap();
        }
    }
    if let Some(app) = client.windows().await.unwrap().into_iter().next() {
        client.switch_to_window(app).await.unwrap();
    }
    let at = |v: &Value| v.as_f64();
    let settled = at(&times["settled"]).expect("the settle time was recorded");
    (
        settled - at(&clicked).unwrap(),
        at(&times["message"]).map(|m| settled - m),
    )
}

/// chromedriver and a headless Chromium with its popup blocker on.
async fn browser() -> (std::process::Child, Client, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let profile = std::env::temp_dir().join(format!("bench-popup-{port}"));
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is on PATH");
    let mut capabilities = fantoccini::wd::Capabilities::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "excludeSwitches": ["disable-popup-blocking"],
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display())],
        }),
    );
    for _ in 0..200 {
        let connected =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
        if let Ok(client) = connected {
            return (driver, client, profile);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = driver.kill();
    let _ = driver.wait();
    panic!("chromedriver did not answer within 10 s");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}
