//! The binary: read settings, start logging, then serve, print a key or re-key.

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
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if command == Command::GenKey {
        println!("{}", generate_key());
        return ExitCode::SUCCESS;
    }
    let log_format = match cli.settings.log_format() {
        Ok(format) => format,
        Err(error) => return config_error(&error),
    };
    init_tracing(log_format);
    let config = match cli.settings.parse() {
        Ok(config) => config,
        Err(error) => return config_error(&error),
    };
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async move {
        match command {
            Command::Rekey => emailoctopus_connect::rekey::run(&config).await,
            Command::Serve | Command::GenKey => serve(config).await,
        }
    })
}

fn config_error(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(CONFIG_ERROR)
}

async fn serve(config: emailoctopus_connect::config::Config) -> ExitCode {
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://{}", app.local_addr());
    if let Some(sandbox) = app.sandbox() {
        println!("sandbox: built-in provider and fake API, nothing real is touched");
        println!(
            "sandbox: admin token for this run: {}",
            sandbox.admin_token.expose_secret()
        );
        println!(
            "sandbox: API key accepted by the fake API: {}",
            sandbox.api_key
        );
    }
    match app.default_connect_link().await {
        Ok(Some(link)) => {
            println!("connect the default connection (link works once, for 30 minutes): {link}")
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not make a connect link"),
    }
    app.run(shutdown_signal()).await;
    ExitCode::SUCCESS
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
