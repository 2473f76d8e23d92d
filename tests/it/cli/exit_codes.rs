//! A configuration error exits 2, names the variable, and starts nothing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::process::{command, output, text};
use crate::support::new_key;

/// A complete, valid non-sandbox configuration, to spoil one setting at a time.
fn valid_settings() -> Vec<(&'static str, String)> {
    vec![
        ("CLIENT_ID", "cli-test-client".into()),
        ("CLIENT_SECRET", "cli-test-secret".into()),
        ("TOKEN_ENCRYPTION_KEY", new_key()),
        ("LISTEN_ADDR", "127.0.0.1:0".into()),
    ]
}

#[tokio::test]
async fn a_missing_client_id_exits_2_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = command(dir.path());
    for (name, value) in valid_settings() {
        if name != "CLIENT_ID" {
            run.env(name, value);
        }
    }
    let out = output(run).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CLIENT_ID"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing starts: {}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn a_malformed_setting_exits_2_and_names_its_variable() {
    let key = new_key();
    let short_key = STANDARD.encode([7u8; 16]);
    // (the setting spoiled, its new value or None to leave it out, the name the error must say)
    let cases = [
        (
            "TOKEN_ENCRYPTION_KEY",
            Some("not base64 at all!".to_owned()),
            "TOKEN_ENCRYPTION_KEY",
        ),
        (
            "TOKEN_ENCRYPTION_KEY",
            Some(short_key.clone()),
            "TOKEN_ENCRYPTION_KEY",
        ),
        (
            "TOKEN_ENCRYPTION_KEY",
            Some(format!("{key},{short_key}")),
            "TOKEN_ENCRYPTION_KEY",
        ),
        ("TOKEN_ENCRYPTION_KEY", None, "TOKEN_ENCRYPTION_KEY"),
        (
            "LISTEN_ADDR",
            Some("not-an-address".to_owned()),
            "LISTEN_ADDR",
        ),
        ("OPEN_CONNECT", Some("maybe".to_owned()), "OPEN_CONNECT"),
        (
            "TOKEN_AUTH_METHOD",
            Some("bogus".to_owned()),
            "TOKEN_AUTH_METHOD",
        ),
        (
            "WEBHOOK_URL",
            Some("http://127.0.0.1:9/hook".to_owned()),
            "WEBHOOK_SECRET",
        ),
        ("CLIENT_SECRET", None, "CLIENT_SECRET"),
        ("LOG_FORMAT", Some("xml".to_owned()), "LOG_FORMAT"),
        ("SANDBOX", Some("maybe".to_owned()), "SANDBOX"),
    ];
    for (setting, value, variable) in cases {
        let what = format!("{setting}={value:?}");
        let dir = tempfile::tempdir().unwrap();
        let mut run = command(dir.path());
        for (name, good) in valid_settings() {
            if name != setting {
                run.env(name, good);
            }
        }
        if let Some(value) = &value {
            run.env(setting, value);
        }
        let out = output(run).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(variable),
            "{what}: names {variable}: {stderr}"
        );
        assert!(
            !stderr.contains(&key),
            "{what}: a key is never echoed: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{what}: nothing starts: {}",
            text(&out.stdout)
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{what}: no database is made before the settings are good"
        );
    }
}
