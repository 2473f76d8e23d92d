//! The binary: read settings, start logging, then serve, print a key or re-key.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use emailoctopus_connect::app::App;
use emailoctopus_connect::config::{Cli, Command, LogFormat};
use emailoctopus_connect::crypto::generate_key;
use secrecy::ExposeSecret;

/// The exit status for a setting that is missing or malformed.
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    // `.env` first; real environment variables win because dotenvy never overrides.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(error) if error.not_found() => {}
        Err(error) => return config_error(&format!(".env: {error}")),
    }
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if command == Command::GenKey {
        say(&generate_key());
        return ExitCode::SUCCESS;
    }
    let log_format = match cli.settings.log_format() {
        Ok(format) => format,
        Err(error) => return config_error(&error),
    };
    init_tracing(log_format);
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    if command == Command::Rekey {
        // Re-keying needs the database and the keys, not the provider.
        return match cli.settings.storage(false) {
            Ok(storage) => runtime.block_on(emailoctopus_connect::rekey::run(&storage)),
            Err(error) => config_error(&error),
        };
    }
    match cli.settings.parse() {
        Ok(config) => runtime.block_on(serve(config)),
        Err(error) => config_error(&error),
    }
}

fn config_error(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(CONFIG_ERROR)
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
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    say(&format!("listening on http://{}", app.local_addr()));
    if let Some(sandbox) = app.sandbox() {
        say("sandbox: built-in provider and fake API, nothing real is touched");
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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
