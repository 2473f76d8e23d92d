//! Token endpoint answers as this server reads them
//! (`oauth::read_token_answer`: the same path as a code exchange or a
//! refresh): tokens with the fields the provider sent, or a clear error.

use emailoctopus_connect::oauth::{error_code, read_token_answer, OAuthError};
use http::StatusCode;
use proptest::prelude::*;
use secrecy::ExposeSecret;

use super::config;

proptest! {
    #![proptest_config(config())]

    /// Whatever the status and body, the answer is read into tokens or an
    /// error without panicking; a 5xx or an unreadable 200 is a failure,
    /// never a refusal (which could mean "connect again").
    #[test]
    fn any_answer_is_read_without_panicking(
        status in prop_oneof![Just(200u16), Just(400), Just(401), 100u16..600],
        body in prop_oneof![
            token_response_json(),
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ]
    ) {
        let status = StatusCode::from_u16(status).unwrap();
        match read_token_answer(status, body.as_bytes()) {
            Ok(_) => prop_assert_eq!(status, StatusCode::OK),
            Err(OAuthError::Refused { code }) => {
                prop_assert!(!status.is_server_error() && status != StatusCode::OK, "{status}");
                prop_assert_eq!(&code, &error_code(&code));
            }
            Err(OAuthError::Failed(reason)) => {
                prop_assert!(!reason.is_empty());
            }
            Err(OAuthError::Timeout) => prop_assert!(false, "a received answer cannot time out"),
        }
    }

    /// A well-formed answer gives exactly its fields: the token type in one
    /// spelling for bearer, a lifetime in whole seconds (negative or
    /// fractional ones as the whole seconds they allow), the scopes split.
    #[test]
    fn a_well_formed_answer_gives_its_fields(
        access in "[ -~]{1,40}",
        refresh in proptest::option::of("[ -~]{1,40}"),
        token_type in prop_oneof![Just("bearer"), Just("Bearer"), Just("BEARER"), Just("mac")],
        expires_in in proptest::option::of(prop_oneof![
            (0u64..10_000_000).prop_map(serde_json::Value::from),
            (-10_000i64..0).prop_map(serde_json::Value::from),
            (0.0f64..100_000.0).prop_map(serde_json::Value::from),
        ]),
        scopes in proptest::option::of(prop::collection::vec("[a-z:._-]{1,12}", 1..4)),
    ) {
        let mut body = serde_json::json!({"access_token": access, "token_type": token_type});
        if let Some(refresh) = &refresh {
            body["refresh_token"] = refresh.as_str().into();
        }
        if let Some(expires_in) = &expires_in {
            body["expires_in"] = expires_in.clone();
        }
        if let Some(scopes) = &scopes {
            body["scope"] = scopes.join(" ").into();
        }
        let tokens = read_token_answer(StatusCode::OK, body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(tokens.access_token.expose_secret(), access.as_str());
        prop_assert_eq!(
            tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
            refresh
        );
        let expected_type = if token_type.eq_ignore_ascii_case("bearer") { "Bearer" } else { token_type };
        prop_assert_eq!(tokens.token_type.as_str(), expected_type);
        let expected_secs = expires_in.map(|v| v.as_f64().unwrap().max(0.0) as u64);
        prop_assert_eq!(tokens.expires_in.map(|d| d.as_secs()), expected_secs);
        prop_assert_eq!(tokens.scopes, scopes);
    }

    /// An OAuth error answer is a refusal with a code that can go into a
    /// log line or a page as it is; without `access_token`, a 200 fails.
    #[test]
    fn a_bad_answer_is_a_clear_error(
        status in 400u16..500,
        code in ".{0,100}",
        members in prop::collection::btree_map("[a-z_]{1,10}", "[ -~]{0,10}", 0..3),
    ) {
        let refusal = serde_json::json!({"error": code}).to_string();
        let read = read_token_answer(StatusCode::from_u16(status).unwrap(), refusal.as_bytes());
        match read {
            Err(OAuthError::Refused { code: read }) => prop_assert_eq!(read, error_code(&code)),
            other => prop_assert!(false, "{other:?}"),
        }
        let mut incomplete = members;
        incomplete.remove("access_token");
        incomplete.insert("token_type".into(), "bearer".into());
        let incomplete = serde_json::to_string(&incomplete).unwrap();
        let read = read_token_answer(StatusCode::OK, incomplete.as_bytes());
        prop_assert!(matches!(read, Err(OAuthError::Failed(_))), "{read:?}");
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
