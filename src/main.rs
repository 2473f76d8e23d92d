//! The binary: read settings, start logging, then serve, print a key or re-key.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use emailoctopus_connect::app::{App, StartError};
use emailoctopus_connect::config::{Cli, Command, LogFormat, Purpose, Settings, CONFIG_ERROR};
use emailoctopus_connect::crypto::{generate_key, random_token};
use emailoctopus_connect::store::StoreError;
use secrecy::ExposeSecret;

fn main() -> ExitCode {
    // `.env` first; real environment variables win because dotenvy never overrides.
    if let Err(message) = load_dot_env() {
        return config_error(&message);
    }
    // A malformed value is refused here by clap, which names it and exits 2.
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    match command {
        Command::GenKey => return print(&generate_key()),
        Command::GenToken => return print(&random_token()),
        Command::Serve | Command::Rekey => {}
    }
    init_tracing(cli.settings.log_format);
    run(command, cli.settings)
}

fn run(command: Command, settings: Settings) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    let purpose = match command {
        Command::Rekey => Purpose::Rekey,
        _ => Purpose::Serve,
    };
    match settings.check(purpose) {
        // Re-keying needs the database and the keys, not the provider.
        Ok(config) if purpose == Purpose::Rekey => {
            runtime.block_on(emailoctopus_connect::rekey::run(&config.storage))
        }
        Ok(config) => runtime.block_on(serve(config)),
        Err(error) => config_error(&error),
    }
}

fn print(line: &str) -> ExitCode {
    say(line);
    ExitCode::SUCCESS
}

fn config_error(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(CONFIG_ERROR)
}

/// Reads `.env` when there is one. A line that does not parse is named by
/// its number, never shown: it may hold a secret.
fn load_dot_env() -> Result<(), String> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(dotenvy::Error::LineParse(line, _)) => {
            let number = std::fs::read_to_string(".env")
                .ok()
                .and_then(|text| {
                    let first = line.lines().next().unwrap_or_default().to_owned();
                    text.lines().position(|l| l.trim() == first.trim())
                })
                .map_or_else(|| "a line".to_owned(), |i| format!("line {}", i + 1));
            Err(format!(
                ".env: {number} cannot be parsed (expected NAME=value)"
            ))
        }
        Err(error) => Err(format!(".env: {error}")),
    }
}

async fn serve(config: emailoctopus_connect::config::Config) -> ExitCode {
    // Before anything is printed: a signal that arrives as soon as the listen
    // line is read must already stop the server cleanly.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("error: cannot listen for signals: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut shutdown = Box::pin(shutdown);
    // A database that is not reachable yet is waited for; a signal meanwhile
    // stops the start at once.
    let app = tokio::select! {
        app = App::build(config) => app,
        () = &mut shutdown => return ExitCode::SUCCESS,
    };
    let app = match app {
        Ok(app) => app,
        Err(error @ StartError::Store(StoreError::Misconfigured(_))) => {
            return config_error(&error)
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    say(&format!("listening on http://{}", app.local_addr()));
    if let Some(metrics) = app.metrics_addr() {
        say(&format!("metrics on http://{metrics}/metrics"));
    }
    if let Some(sandbox) = app.sandbox() {
        say("sandbox: built-in provider and fake API, nothing real is touched");
        if !sandbox.ignored.is_empty() {
            say(&format!(
                "sandbox: ignoring {} from the environment or .env; this run makes its own",
                sandbox.ignored.join(", ")
            ));
        }
        say(&format!(
            "sandbox: admin token for this run: {}",
            sandbox.admin_token.expose_secret()
        ));
        say(&format!(
            "sandbox: API key accepted by the fake API: {}",
            sandbox.api_key
        ));
    }
    match app.default_connect_link().await {
        Ok(Some(link)) => say(&format!(
            "connect the default connection (link works once, for 30 minutes): {link}"
        )),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not make a connect link"),
    }
    app.run(shutdown).await;
    ExitCode::SUCCESS
}

/// One line on stdout; a closed pipe (`| head -1`) is not a reason to panic.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Each line goes to stderr as one write, when it happens.
fn init_tracing(format: LogFormat) {
    // Libraries speak only when something is wrong; ours says what happened.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,emailoctopus_connect=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests in flight");
    })
}
