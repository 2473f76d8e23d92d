//! Where settings come from: flags, then the environment, then `.env`.

use super::process::{command, listen_line_addr, output, text, Running};

#[tokio::test]
async fn a_malformed_dot_env_is_named_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "THIS IS NOT A SETTING\nSANDBOX=true\n",
    )
    .unwrap();
    let run = output(command(dir.path())).await;
    assert_eq!(run.status.code(), Some(2));
    let stderr = text(&run.stderr);
    assert!(stderr.contains(".env"), "{stderr}");
}

#[tokio::test]
async fn a_flag_beats_the_environment_which_beats_dot_env() {
    // Distinct loopback addresses with port 0: the listen line shows which one won.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# read from the working directory\nSANDBOX=true\nLISTEN_ADDR=127.0.0.2:0\n",
    )
    .unwrap();
    let runs: [(&str, Option<&str>, Option<&str>); 3] = [
        ("127.0.0.2", None, None),
        ("127.0.0.3", Some("127.0.0.3:0"), None),
        (
            "127.0.0.4",
            Some("127.0.0.3:0"),
            Some("--listen-addr=127.0.0.4:0"),
        ),
    ];
    for (expected, env, flag) in runs {
        let mut run = command(dir.path());
        if let Some(env) = env {
            run.env("LISTEN_ADDR", env);
        }
        run.args(flag);
        let mut server = Running::spawn(run);
        let addr = listen_line_addr(&server.next_line().await);
        assert_eq!(
            addr.ip().to_string(),
            expected,
            "env {env:?}, flag {flag:?}"
        );
        // Killed when dropped: how it stops is another test's subject.
        drop(server);
    }
}
