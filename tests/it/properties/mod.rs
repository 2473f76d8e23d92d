//! Properties of everything that parses untrusted input, checked on generated
//! inputs. This is the project's fuzzing: cargo-fuzz needs a nightly
//! toolchain, so proptest does the work, bounded so the folder stays well
//! under 30 s in a debug build: 2000 cases per property, or `PROPTEST_CASES`
//! for a longer run (SECURITY.md records one of 1,000,000 cases per property).
//!
//! Every property also says "never panics": each parser is called on
//! arbitrary strings or bytes as well as on inputs shaped to hit its edges.
//!
//! One file per parser; `config` bounds them all.

mod callback_query;
mod connect_sessions;
mod connection_id;
mod flow_cookie;
mod key_ring;
mod problems;
mod proxy_paths;
mod return_to;
mod token_responses;

use proptest::test_runner::Config;

/// Cases per property: 2000, or `PROPTEST_CASES` for a longer run.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    Config {
        cases,
        // A failure is reported with its shrunk input; it becomes a named test, not a file.
        failure_persistence: None,
        ..Config::default()
    }
}
