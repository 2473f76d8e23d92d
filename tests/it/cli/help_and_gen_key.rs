//! What the binary prints without serving: `--help` and `gen-key`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::process::{command, output, text};

#[tokio::test]
async fn help_lists_every_setting_and_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    run.arg("--help");
    let secrets = [
        "CLIENT_SECRET",
        "TOKEN_ENCRYPTION_KEY",
        "ADMIN_TOKEN",
        "WEBHOOK_SECRET",
    ];
    for name in secrets {
        run.env(name, format!("value-of-{name}-must-not-show"));
    }
    let out = output(run).await;
    let help = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for variable in [
        "CLIENT_ID",
        "CLIENT_SECRET",
        "REDIRECT_URI",
        "AUTHORIZE_URL",
        "TOKEN_URL",
        "REVOKE_URL",
        "ISSUER",
        "SCOPES",
        "TOKEN_AUTH_METHOD",
        "API_BASE_URL",
        "LISTEN_ADDR",
        "DATABASE_URL",
        "TOKEN_ENCRYPTION_KEY",
        "ADMIN_TOKEN",
        "OPEN_CONNECT",
        "RETURN_TO_ORIGINS",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
        "METRICS_ADDR",
        "LOG_FORMAT",
        "SANDBOX",
    ] {
        let flag = format!("--{}", variable.to_lowercase().replace('_', "-"));
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{flag} "))
                    || line.trim_start().starts_with(&format!("{flag}["))),
            "--help lists {flag}:\n{help}"
        );
    }
    for subcommand in ["serve", "gen-key", "rekey"] {
        assert!(help.contains(subcommand), "--help lists {subcommand}");
    }
    for name in secrets {
        assert!(
            !help.contains(&format!("value-of-{name}")),
            "--help shows {name}'s value"
        );
    }
}

#[tokio::test]
async fn gen_key_prints_a_fresh_key_of_32_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let mut run = command(dir.path());
        run.arg("gen-key");
        let out = output(run).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout);
        let key = printed.trim_end().to_owned();
        assert_eq!(printed, format!("{key}\n"), "one line, the key alone");
        let bytes = STANDARD.decode(&key).expect("base64");
        assert_eq!(bytes.len(), 32, "{key}");
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "each run makes a new key");
}
