//! The proxy path (`proxy_path::check`): what it accepts stays under the
//! base path, however it is decoded and normalised.

use emailoctopus_connect::api::proxy_path;
use proptest::prelude::*;

use super::config;

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

proptest! {
    #![proptest_config(config())]

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
}

/// The check on its own, before the http crate has split off a query or a
/// fragment: `..?` and `..#x` read as `..` once the proxy's URL parser splits them.
#[test]
fn a_query_or_fragment_mark_in_a_proxy_path_is_refused() {
    for raw in ["..?", "lists/..#x", "..?/x", "a/..#"] {
        assert!(proxy_path::check(raw).is_err(), "{raw}");
    }
}
