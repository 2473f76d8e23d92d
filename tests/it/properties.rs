//! Properties of everything that parses untrusted input, checked on generated
//! inputs. This is the project's fuzzing: cargo-fuzz needs a nightly
//! toolchain, so proptest does the work, bounded so the file stays well under
//! 30 s in a debug build: 2000 cases per property, or `PROPTEST_CASES` for a
//! longer run (SECURITY.md records one of 1,000,000 cases per property).
//!
//! Every property also says "never panics": each parser is called on
//! arbitrary strings or bytes as well as on inputs shaped to hit its edges.

use std::sync::OnceLock;

use emailoctopus_connect::api::proxy_path;
use emailoctopus_connect::crypto::KeyRing;
use emailoctopus_connect::domain::{ConnectionId, Origin, ReturnTo};
use emailoctopus_connect::oauth::{AuthorizationResponse, FlowError, PendingFlow, ResponseError};
use oauth2::{CsrfToken, PkceCodeVerifier};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

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

// ------------------------------------------------------------ generators

/// Percent-decodes every valid `%XX`, leaving anything else as it is, the
/// way a lenient server in front of an API might.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 on bytes, reading `\` as `/` as some servers do.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let path: Vec<u8> = path
        .iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect();
    let mut out: Vec<&[u8]> = Vec::new();
    let segments: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.into_iter().enumerate() {
        match segment {
            b"." | b".." => {
                if segment == b".." && out.len() > 1 {
                    out.pop();
                }
                if index == last {
                    out.push(b"");
                }
            }
            _ => out.push(segment),
        }
    }
    out.join(&b'/')
}

/// Pieces that proxy escapes are made of.
fn proxy_path() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a",
        "lists",
        "x.json",
        ".",
        "..",
        "...",
        "/",
        "//",
        "%2e",
        "%2E",
        "%2f",
        "%2F",
        "%5c",
        "%5C",
        "%25",
        "%252e",
        "%252f",
        "\\",
        ":",
        "%3a",
        ";",
        "?",
        "#",
        "%00",
        "%0a",
        "%7f",
        "%c0%ae",
        "%e2%80%a8",
        "%ef%bc%8e",
        "%",
        "%2",
        "%zz",
        "%u002e",
        "~",
        "@",
        "http:",
        "https:",
        " ",
        "\t",
        "é",
        "．",
        "%20",
        "..;",
    ]);
    prop_oneof![
        4 => prop::collection::vec(pieces, 1..12).prop_map(|v| v.concat()),
        1 => "[./%\\\\2eEfFcC5a:;?#]{0,30}",
        1 => any::<String>(),
    ]
}

/// Strings that look like URLs, built to fool an origin check: mostly close
/// to an allowed one, so that many are accepted and the property has teeth.
fn url_like() -> impl Strategy<Value = String> {
    fn mostly(usual: &'static str, odd: Vec<&'static str>) -> BoxedStrategy<&'static str> {
        prop_oneof![3 => Just(usual), 1 => prop::sample::select(odd)].boxed()
    }
    let scheme = mostly(
        "https",
        vec![
            "http",
            "HTTPS",
            "hTTpS",
            "javascript",
            "data",
            "ftp",
            "",
            "https ",
        ],
    );
    let separator = mostly(
        "://",
        vec![
            ":/", ":", ":\\\\", ":/\\", "://\\", ":///", "//", "\\\\", ":%2f%2f",
        ],
    );
    let userinfo = mostly(
        "",
        vec![
            "u@",
            "u:p@",
            "@",
            "app.example.com@",
            "app.example.com%40",
            ":@",
            "app.example.com:443@",
        ],
    );
    let host = mostly(
        "app.example.com",
        vec![
            "APP.Example.COM",
            "ａｐｐ.example.com",
            "аpp.example.com",
            "xn--pp-6kc.example.com",
            "app.example.com.",
            "app.example.com.evil.com",
            "evil.com",
            "evil.com#@app.example.com",
            "evil.com?@app.example.com",
            "evil.com\\@app.example.com",
            "app%2eexample.com",
            "app.example.com%00",
            "app.example.com%0a",
            "app.example.com%20",
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "[::1]",
            "",
        ],
    );
    let port = mostly(
        "",
        vec![
            ":443",
            ":0443",
            ":80",
            ":8080",
            ":08080",
            ":8443",
            ":65536",
            ":",
            ":-1",
            ":443.evil.com",
        ],
    );
    let rest = prop_oneof![
        2 => "[/?#@%a-z0-9.<>\"]{0,16}",
        1 => "[/\\\\?#@%a-z0-9. \t<>\"]{0,16}",
    ];
    (scheme, separator, userinfo, host, port, rest)
        .prop_map(|(s, sep, u, h, p, r)| format!("{s}{sep}{u}{h}{p}{r}"))
}

fn allowed_origins() -> &'static [Origin] {
    static ALLOWED: OnceLock<Vec<Origin>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        vec![
            Origin::parse("https://app.example.com").unwrap(),
            Origin::parse("http://localhost:8080").unwrap(),
        ]
    })
}

/// A query with the callback's parameters (and others), any of them repeated.
fn callback_query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "state",
            "code",
            "error",
            "error_description",
            "iss",
            "scope",
            "STATE",
            "state ",
            "st%61te",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-z_%=&+]{0,8}",
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9%+&=;<>\"'\r\n ]{0,24}",
        any::<String>(),
        (4090usize..4100).prop_map(|n| "v".repeat(n)),
    ];
    prop::collection::vec((name, value), 0..8).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

// -------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config())]

    /// The callback query: never panics; what it gives is bounded and non-empty.
    #[test]
    fn the_callback_query_parser_gives_bounded_values(query in prop_oneof![callback_query(), any::<String>()]) {
        if let Ok(response) = AuthorizationResponse::parse(&query) {
            for value in [&response.state, &response.code, &response.error, &response.error_description, &response.iss]
                .into_iter()
                .flatten()
            {
                prop_assert!(!value.is_empty() && value.len() <= 4096);
            }
            if let Some(shown) = response.shown_description() {
                prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
                prop_assert!(shown.chars().count() <= 300 && !shown.trim().is_empty());
            }
        }
    }

    /// What a provider sends comes back as sent; a repeated parameter is refused.
    #[test]
    fn callback_parameters_round_trip_and_repeats_are_refused(
        state in ".{1,64}",
        code in ".{1,64}",
        iss in prop::option::of(".{1,64}"),
        repeated in prop::sample::select(vec!["state", "code", "iss"]),
        again in ".{1,16}",
    ) {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("code", &code).append_pair("state", &state);
        if let Some(iss) = &iss {
            query.append_pair("iss", iss);
        }
        let query = query.finish();
        let parsed = AuthorizationResponse::parse(&query).unwrap();
        prop_assert_eq!(parsed.state.as_deref(), Some(state.as_str()));
        prop_assert_eq!(parsed.code.as_deref(), Some(code.as_str()));
        prop_assert_eq!(parsed.iss.as_deref(), iss.as_deref());
        let mut twice = url::form_urlencoded::Serializer::new(query);
        twice.append_pair(repeated, &again);
        let twice = twice.finish();
        if repeated != "iss" || iss.is_some() {
            prop_assert_eq!(AuthorizationResponse::parse(&twice), Err(ResponseError::Repeated(repeated)));
        }
    }

    /// The proxy path check never lets a path leave the base path, however
    /// many times it is percent-decoded and however it is normalised.
    #[test]
    fn an_accepted_proxy_path_stays_under_the_base(generated in proxy_path()) {
        // What reaches the check is a request target's path, as the http
        // crate parses it (no query, no fragment).
        let Ok(target) = format!("/connections/p/api/{generated}").parse::<http::Uri>() else { return Ok(()) };
        let raw = target.path().strip_prefix("/connections/p/api/").unwrap_or("").to_owned();
        let Ok(accepted) = proxy_path::check(&raw) else { return Ok(()) };
        prop_assert_eq!(accepted, raw.as_str());
        let mut decoded = accepted.as_bytes().to_vec();
        for _ in 0..4 {
            let joined = [b"/api/v2/".as_slice(), &decoded].concat();
            let normalised = remove_dot_segments(&joined);
            prop_assert!(normalised.starts_with(b"/api/v2/"), "{raw:?} -> {:?}", String::from_utf8_lossy(&normalised));
            decoded = percent_decode(&decoded);
        }
        // And as the proxy itself builds the upstream URL.
        if let Ok(url) = url::Url::parse(&format!("https://api.example.com/api/v2/{accepted}")) {
            prop_assert_eq!(url.host_str(), Some("api.example.com"));
            prop_assert!(url.path().starts_with("/api/v2/"), "{raw:?} -> {url}");
        }
    }

    /// A return_to accepted is, once parsed as a browser parses it, on an
    /// allowed origin; the string kept is that parse, with nothing a browser
    /// could read another way.
    #[test]
    fn an_accepted_return_to_is_on_an_allowed_origin(raw in prop_oneof![4 => url_like(), 1 => any::<String>()]) {
        let _ = Origin::parse(&raw);
        let Ok(accepted) = ReturnTo::parse(&raw, allowed_origins()) else { return Ok(()) };
        let kept = accepted.as_str();
        prop_assert!(!kept.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control()), "{kept:?}");
        let url = url::Url::parse(kept).unwrap();
        prop_assert_eq!(url.as_str(), kept, "the kept string is already normalised");
        prop_assert!(url.username().is_empty() && url.password().is_none());
        let origin = Origin::parse(&url.origin().ascii_serialization()).unwrap();
        prop_assert!(allowed_origins().contains(&origin), "{raw:?} -> {kept}");
    }

    /// A connection id accepted is one path segment, the same in a URL, a
    /// log line and a key.
    #[test]
    fn an_accepted_connection_id_is_path_safe(raw in prop_oneof![
        "[A-Za-z0-9._%/\\\\ -]{0,8}",
        "[A-Za-z0-9_-][A-Za-z0-9._-]{0,110}",
        any::<String>(),
    ]) {
        let Ok(id) = ConnectionId::parse(&raw) else { return Ok(()) };
        let id = id.as_str();
        prop_assert!((1..=100).contains(&id.len()));
        prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        prop_assert!(!id.starts_with('.'));
        let base = url::Url::parse("https://h/connections/").unwrap();
        let joined = base.join(id).unwrap();
        prop_assert_eq!(joined.path(), format!("/connections/{id}"));
        let json = serde_json::to_string(&ConnectionId::parse(id).unwrap()).unwrap();
        let back: ConnectionId = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.as_str(), id);
    }

    /// A sealed flow opens with its own state and key before it expires, and
    /// with nothing else.
    #[test]
    fn a_sealed_flow_opens_only_with_its_own_state_and_key(
        state in prop_oneof!["[A-Za-z0-9_-]{22,64}", ".{1,40}"],
        other_state in ".{1,40}",
        verifier in "[A-Za-z0-9._~-]{43,128}",
        id in "[a-z0-9][a-z0-9._-]{0,30}",
        now in 0i64..(1 << 40),
        lifetime in 1i64..100_000,
    ) {
        let keys = KeyRing::generate();
        let flow = PendingFlow {
            state: CsrfToken::new(state.clone()),
            verifier: PkceCodeVerifier::new(verifier.clone()),
            connection_id: ConnectionId::parse(&id).unwrap(),
            return_to: Some(ReturnTo::from_trusted("https://app.example.com/x".into())),
            expires_at: now + lifetime,
        };
        let cookie = flow.seal(&keys);
        let name = PendingFlow::cookie_name(&state);
        prop_assert!(name.len() == 25 && name.starts_with("eoc_flow_"));
        prop_assert!(name[9..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

        let opened = PendingFlow::open(&cookie, &state, &keys, now).unwrap();
        prop_assert_eq!(opened.verifier.secret(), &verifier);
        prop_assert_eq!(opened.connection_id.as_str(), id.as_str());
        prop_assert_eq!(opened.expires_at, now + lifetime);
        if other_state != state {
            prop_assert!(PendingFlow::open(&cookie, &other_state, &keys, now).is_err());
        }
        prop_assert_eq!(
            PendingFlow::open(&cookie, &state, &KeyRing::generate(), now).err(),
            Some(FlowError::Tampered)
        );
        prop_assert_eq!(
            PendingFlow::open(&cookie, &state, &keys, now + lifetime).err(),
            Some(FlowError::Expired)
        );
    }

    /// Any change to a sealed flow cookie (a character, a cut, an addition)
    /// and any string that was never sealed fails to open.
    #[test]
    fn a_changed_flow_cookie_never_opens(
        at in any::<prop::sample::Index>(),
        with in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect::<Vec<_>>()
        ),
        cut in any::<prop::sample::Index>(),
        junk in any::<String>(),
    ) {
        let keys = KeyRing::generate();
        let flow = PendingFlow {
            state: CsrfToken::new("the-state-of-this-flow".into()),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            connection_id: ConnectionId::parse("c").unwrap(),
            return_to: None,
            expires_at: 2_000,
        };
        let cookie = flow.seal(&keys);
        let state = "the-state-of-this-flow";
        let mut changed: Vec<char> = cookie.chars().collect();
        let i = at.index(changed.len());
        if changed[i] != with {
            changed[i] = with;
            let changed: String = changed.into_iter().collect();
            prop_assert!(PendingFlow::open(&changed, state, &keys, 1_000).is_err());
        }
        let shorter = &cookie[..cut.index(cookie.len())];
        prop_assert!(PendingFlow::open(shorter, state, &keys, 1_000).is_err());
        let longer = format!("{cookie}{with}");
        prop_assert!(PendingFlow::open(&longer, state, &keys, 1_000).is_err());
        prop_assert!(PendingFlow::open(&junk, state, &keys, 1_000).is_err());
        prop_assert!(PendingFlow::open(&junk, &junk, &keys, 1_000).is_err());
    }

    /// The key ring: any string parses or is refused without a panic; a
    /// sealed value opens with its own associated data, and any flipped
    /// byte, cut or addition, or any other associated data, fails.
    #[test]
    fn a_sealed_value_opens_only_unchanged(
        ring in prop_oneof![any::<String>(), "[A-Za-z0-9+/=, ]{0,100}"],
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        other_aad in prop::collection::vec(any::<u8>(), 0..64),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cut in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let _ = KeyRing::parse(&ring);
        let keys = KeyRing::generate();
        let sealed = keys.seal(&plaintext, &aad);
        prop_assert_eq!(keys.open(&sealed, &aad).unwrap(), plaintext);
        let mut flipped = sealed.clone();
        flipped[at.index(sealed.len())] ^= flip;
        prop_assert!(keys.open(&flipped, &aad).is_err());
        prop_assert!(keys.open(&sealed[..cut.index(sealed.len())], &aad).is_err());
        prop_assert!(keys.open(&[sealed.as_slice(), b"x"].concat(), &aad).is_err());
        if other_aad != aad {
            prop_assert!(keys.open(&sealed, &other_aad).is_err());
        }
        prop_assert!(KeyRing::generate().open(&sealed, &aad).is_err());
        prop_assert!(keys.open(&junk, &aad).is_err());
    }

    /// The token-response and error-response parsers the oauth2 crate uses
    /// (serde over the body) never panic, whatever the provider sends.
    #[test]
    fn token_responses_parse_or_fail_without_panicking(
        body in prop_oneof![
            token_response_json(),
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ]
    ) {
        use oauth2::TokenResponse;
        if let Ok(tokens) = serde_json::from_str::<oauth2::basic::BasicTokenResponse>(&body) {
            let _ = tokens.expires_in();
            let _ = tokens.scopes();
            let _ = tokens.refresh_token();
        }
        let _ = serde_json::from_str::<oauth2::basic::BasicErrorResponse>(&body);
    }
}

/// JSON objects with the token response's members, each of any JSON type.
fn token_response_json() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,20}".prop_map(serde_json::Value::from),
        Just(serde_json::json!("18446744073709551616")),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!(-1)),
    ];
    let value = scalar.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,5}", inner, 0..3)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    let member = prop::sample::select(vec![
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "error",
        "error_description",
        "error_uri",
        "id_token",
    ]);
    // Half of them start from a well-formed answer, so that the accepted
    // path (and what it does with odd `expires_in` and `scope`) is reached.
    let base = prop_oneof![
        Just(serde_json::json!({})),
        ".{1,20}"
            .prop_map(|token| serde_json::json!({"access_token": token, "token_type": "bearer"})),
    ];
    (base, prop::collection::vec((member, value), 0..4)).prop_map(|(base, members)| {
        let mut object = match base {
            serde_json::Value::Object(object) => object,
            _ => unreachable!(),
        };
        for (name, value) in members {
            object.insert(name.to_owned(), value);
        }
        serde_json::Value::Object(object).to_string()
    })
}

/// A connect-session token the server did not make finds no session, whatever
/// it is (long, empty, NUL, unicode, one character off the real one), and the
/// guesses do not use the real one up.
#[test]
fn forged_connect_session_tokens_find_nothing() {
    use emailoctopus_connect::clock::Clock;
    use emailoctopus_connect::connect_sessions::ConnectSessions;
    use emailoctopus_connect::store::{PoolSettings, Store};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let settings = PoolSettings {
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(5),
        start_timeout: std::time::Duration::from_secs(5),
    };
    let store = runtime.block_on(Store::connect(&url, &settings)).unwrap();
    let sessions = ConnectSessions::new(
        store,
        Clock::default(),
        url::Url::parse("http://127.0.0.1/").unwrap(),
    );
    let real = runtime
        .block_on(sessions.create(ConnectionId::parse("c").unwrap(), None))
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

/// Whatever detail a problem carries, it is valid problem+json with the
/// contract's members: the server emits problem+json, it never parses it.
#[test]
fn every_problem_is_valid_problem_json() {
    use axum::response::IntoResponse;
    use emailoctopus_connect::api::error::ApiError;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(config());
    runner
        .run(&(any::<String>(), any::<bool>()), |(detail, as_path)| {
            let error = if as_path {
                ApiError::BadPath(detail.clone())
            } else {
                ApiError::Invalid(detail.clone())
            };
            let response = error.into_response();
            let status = response.status().as_u16();
            prop_assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "application/problem+json"
            );
            let body = runtime
                .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
                .unwrap();
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(&problem["status"], &serde_json::json!(status));
            for member in ["type", "title", "detail"] {
                prop_assert!(problem[member].is_string(), "{member}: {problem}");
            }
            Ok(())
        })
        .unwrap();
}

/// RFC 6749 §3.1: a parameter must not appear twice, and an empty first
/// occurrence does not make the second one the only one.
#[test]
fn a_parameter_repeated_after_an_empty_one_is_refused() {
    for query in [
        "state=&state=x",
        "code=&code=x&state=s",
        "iss=&iss=https://evil",
    ] {
        assert!(
            matches!(
                AuthorizationResponse::parse(query),
                Err(ResponseError::Repeated(_))
            ),
            "{query}"
        );
    }
}

/// The check on its own, before the http crate has split off a query or a
/// fragment: `..?` and `..#x` read as `..` once the proxy's URL parser splits them.
#[test]
fn a_query_or_fragment_mark_in_a_proxy_path_is_refused() {
    for raw in ["..?", "lists/..#x", "..?/x", "a/..#"] {
        assert!(proxy_path::check(raw).is_err(), "{raw}");
    }
}
