//! The connect-session token (`ConnectSessions::peek`, on a real SQLite
//! store): a forged one finds nothing.

use emailoctopus_connect::checked::ConnectionId;
use emailoctopus_connect::store::ProfileUpdate;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::config;

/// A connect-session token the server did not make finds no session, whatever
/// it is (long, empty, NUL, unicode, one character off the real one), and the
/// guesses do not use the real one up.
#[test]
fn forged_connect_session_tokens_find_nothing() {
    use crate::support::{Backend, TestDb};
    use emailoctopus_connect::clock::Clock;
    use emailoctopus_connect::connect_sessions::ConnectSessions;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDb::new(Backend::Sqlite));
    let store = runtime.block_on(db.store()).clone();
    let sessions = ConnectSessions::new(
        store,
        Clock::default(),
        url::Url::parse("http://127.0.0.1/").unwrap(),
    );
    let real = runtime
        .block_on(sessions.create(
            ConnectionId::parse("c").unwrap(),
            None,
            ProfileUpdate::default(),
        ))
        .unwrap()
        .token;
    let near_misses = (any::<prop::sample::Index>(), any::<char>()).prop_map({
        let real = real.clone();
        move |(at, with)| {
            let mut chars: Vec<char> = real.chars().collect();
            let i = at.index(chars.len());
            chars[i] = with;
            chars.into_iter().collect::<String>()
        }
    });
    let guesses = prop_oneof![
        near_misses,
        any::<String>(),
        "[A-Za-z0-9_-]{43}",
        (120usize..140).prop_map(|n| "A".repeat(n)),
    ];
    let mut runner = TestRunner::new(config());
    runner
        .run(&guesses, |guess| {
            prop_assume!(guess != real);
            let found = runtime.block_on(sessions.peek(&guess)).unwrap();
            prop_assert!(found.is_none(), "{guess:?} found a session");
            Ok(())
        })
        .unwrap();
    assert!(runtime.block_on(sessions.peek(&real)).unwrap().is_some());
}
