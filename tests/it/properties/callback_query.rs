//! The callback query (`AuthorizationResponse::parse`): bounded values, a
//! round trip, and repeated parameters refused.

use emailoctopus_connect::oauth::{AuthorizationResponse, ResponseError};
use proptest::prelude::*;

use super::config;

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
