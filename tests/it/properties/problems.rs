//! problem+json: whatever the detail, a valid problem with the contract's
//! members.

use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::config;

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
        .run(&(any::<String>(), any::<String>()), |(field, reason)| {
            // Details are fixed sentences made of `'static` parts; any text will do here.
            let error = ApiError::Invalid {
                field: Box::leak(field.into_boxed_str()),
                reason: Box::leak(reason.into_boxed_str()),
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
