//! The settings as a user writes them: what clap refuses, what the
//! cross-field check refuses, and what each run mode becomes.

use clap::Parser;

use super::{Cli, Config, Purpose, RunMode};

/// Clap's refusal or the check's, as the user would read it.
fn settings(args: &[&str]) -> Result<Config, String> {
    let mut argv = vec!["emailoctopus-connect"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    cli.settings
        .check(Purpose::Serve)
        .map_err(|e| e.to_string())
}

const KEY: &str = "--token-encryption-key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[test]
fn neither_client_setting_means_api_key_mode() {
    let config = settings(&[KEY]).unwrap();
    assert!(matches!(config.mode, RunMode::ApiKeysOnly));
    let config = settings(&[KEY, "--client-id=", "--client-secret= "]).unwrap();
    assert!(matches!(config.mode, RunMode::ApiKeysOnly));
}

#[test]
fn half_a_client_names_the_missing_half() {
    let err = settings(&["--client-secret=s", KEY]).unwrap_err();
    assert!(
        err.starts_with("CLIENT_ID: required because CLIENT_SECRET"),
        "{err}"
    );
    let err = settings(&["--client-id=c", KEY]).unwrap_err();
    assert!(
        err.starts_with("CLIENT_SECRET: required because CLIENT_ID"),
        "{err}"
    );
}

#[test]
fn every_cross_field_problem_is_reported_in_one_run() {
    let err = settings(&["--client-id=c", "--webhook-url=http://127.0.0.1:9/hook"]).unwrap_err();
    for variable in ["CLIENT_SECRET:", "TOKEN_ENCRYPTION_KEY:", "WEBHOOK_SECRET:"] {
        assert!(err.contains(variable), "{variable} missing from {err}");
    }
}

#[test]
fn a_malformed_value_is_refused_by_clap_naming_its_flag_and_variable() {
    let cases = [
        ("--listen-addr=nowhere", "--listen-addr <LISTEN_ADDR>"),
        (
            "--provider-timeout-secs=soon",
            "--provider-timeout-secs <PROVIDER_TIMEOUT_SECS>",
        ),
        (
            "--provider-timeout-secs=86401",
            "--provider-timeout-secs <PROVIDER_TIMEOUT_SECS>",
        ),
        (
            "--database-max-connections=0",
            "--database-max-connections <DATABASE_MAX_CONNECTIONS>",
        ),
        (
            "--refresh-failing-after=1001",
            "--refresh-failing-after <REFRESH_FAILING_AFTER>",
        ),
        ("--open-connect=maybe", "--open-connect[=<OPEN_CONNECT>]"),
        ("--log-format=xml", "--log-format <LOG_FORMAT>"),
        (
            "--token-auth-method=bogus",
            "--token-auth-method <TOKEN_AUTH_METHOD>",
        ),
        (
            "--return-to-origins=https://a.example/path",
            "--return-to-origins <RETURN_TO_ORIGINS>",
        ),
        ("--allowed-hosts=a b", "--allowed-hosts <ALLOWED_HOSTS>"),
        ("--database-url=mysql://db", "--database-url <DATABASE_URL>"),
        ("--proxy-burst=0", "--proxy-burst <PROXY_BURST>"),
        (
            "--proxy-rate-per-sec=0",
            "--proxy-rate-per-sec <PROXY_RATE_PER_SEC>",
        ),
        (
            "--proxy-rate-per-sec=NaN",
            "--proxy-rate-per-sec <PROXY_RATE_PER_SEC>",
        ),
        (
            "--proxy-rate-per-sec=fast",
            "--proxy-rate-per-sec <PROXY_RATE_PER_SEC>",
        ),
    ];
    for (arg, named) in cases {
        let err = settings(&[KEY, arg]).unwrap_err();
        assert!(err.contains(named), "{arg}: {err}");
    }
}

#[test]
fn a_refused_key_or_database_url_is_not_echoed() {
    let err = settings(&["--token-encryption-key=c2VjcmV0LWJ1dC1zaG9ydA=="]).unwrap_err();
    assert!(
        err.contains("--token-encryption-key <TOKEN_ENCRYPTION_KEY>"),
        "{err}"
    );
    assert!(!err.contains("c2VjcmV0"), "{err}");
    let err = settings(&[KEY, "--database-url=mysql://user:hunter2@db"]).unwrap_err();
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn booleans_take_the_contract_words() {
    for yes in ["true", "1", "yes", "on", "ON", "Yes"] {
        let config = settings(&[KEY, &format!("--open-connect={yes}")]).unwrap();
        assert!(config.open_connect, "{yes}");
    }
    for no in ["false", "0", "no", "off"] {
        let config = settings(&[KEY, &format!("--open-connect={no}")]).unwrap();
        assert!(!config.open_connect, "{no}");
    }
    assert!(settings(&["--sandbox"]).is_ok());
    let err = settings(&["--sandbox=maybe"]).unwrap_err();
    assert!(err.contains("'maybe' for '--sandbox[=<SANDBOX>]'"), "{err}");
}

#[test]
fn the_sandbox_refuses_a_public_listener() {
    let err = settings(&["--sandbox", "--listen-addr=0.0.0.0:3000"]).unwrap_err();
    assert!(err.starts_with("LISTEN_ADDR"), "{err}");
}

#[test]
fn the_sandbox_names_the_secrets_it_ignores() {
    let config = settings(&["--sandbox", "--admin-token=real", KEY]).unwrap();
    let RunMode::Sandbox(sandbox) = config.mode else {
        panic!("not the sandbox")
    };
    assert_eq!(sandbox.ignored, ["TOKEN_ENCRYPTION_KEY", "ADMIN_TOKEN"]);
}

#[test]
fn rekey_ignores_the_sandbox_and_needs_a_key() {
    let cli = Cli::try_parse_from(["emailoctopus-connect", "rekey", "--sandbox"]).unwrap();
    let err = cli.settings.check(Purpose::Rekey).unwrap_err().to_string();
    assert!(err.starts_with("TOKEN_ENCRYPTION_KEY: required"), "{err}");
    assert!(!err.contains("sandbox"), "{err}");
}

#[test]
fn empty_settings_count_as_unset() {
    let config = settings(&[
        KEY,
        "--webhook-url=",
        "--metrics-addr=",
        "--revoke-url=",
        "--database-max-connections=",
        "--listen-addr=",
        "--maintenance=",
        "--log-format= ",
    ])
    .unwrap();
    assert!(config.webhook.is_none() && config.metrics_addr.is_none());
    assert_eq!(config.listen_addr.to_string(), "127.0.0.1:3000");
    assert_eq!(config.storage.pool.max_connections, 1);
    assert!(config.maintenance.enabled);
}

#[test]
fn endpoints_need_https_off_loopback() {
    let with = |extra: &str| settings(&["--client-id=c", "--client-secret=s", KEY, extra]);
    assert!(with("--token-url=http://127.0.0.1:9/token").is_ok());
    assert!(with("--token-url=http://localhost:9/token").is_ok());
    let err = with("--token-url=http://provider.example/token").unwrap_err();
    assert!(err.contains("TOKEN_URL"), "{err}");
    let err = with("--revoke-url=http://provider.example/revoke").unwrap_err();
    assert!(err.contains("REVOKE_URL"), "{err}");
}

#[test]
fn open_connect_defaults_on_only_in_sandbox() {
    assert!(settings(&["--sandbox"]).unwrap().open_connect);
    let real = settings(&["--client-id=c", "--client-secret=s", KEY]).unwrap();
    assert!(!real.open_connect);
}

#[test]
fn the_pool_size_follows_the_backend_unless_set() {
    let postgres = settings(&[KEY, "--database-url=postgres://db/x"]).unwrap();
    assert_eq!(postgres.storage.pool.max_connections, 10);
    let set = settings(&[
        KEY,
        "--database-url=postgres://db/x",
        "--database-max-connections=3",
    ]);
    assert_eq!(set.unwrap().storage.pool.max_connections, 3);
}

#[test]
fn proxy_pacing_defaults_to_emailoctopus_bucket_and_takes_a_fractional_rate() {
    let default = settings(&[KEY]).unwrap().pacing;
    assert_eq!((default.burst, default.rate_per_sec), (100, 10.0));
    let shared = settings(&[KEY, "--proxy-burst=50", "--proxy-rate-per-sec=3.3"])
        .unwrap()
        .pacing;
    assert_eq!((shared.burst, shared.rate_per_sec), (50, 3.3));
}
