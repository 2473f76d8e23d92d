//! Token and error responses as the oauth2 crate parses them.

use proptest::prelude::*;

use super::config;

proptest! {
    #![proptest_config(config())]

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
