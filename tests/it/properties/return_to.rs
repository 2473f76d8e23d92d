//! `return_to` and origins (`ReturnTo::parse`, `Origin::parse`): what is
//! accepted is on an allowed origin.

use std::sync::OnceLock;

use emailoctopus_connect::checked::{Origin, ReturnTo};
use proptest::prelude::*;

use super::config;

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

proptest! {
    #![proptest_config(config())]

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
}
