//! JSON request bodies, refused in fixed sentences that name the member at
//! fault and never repeat what was sent (serde's own messages quote values).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses `body` as `T`, whose members are `members` (the names a refusal may give).
pub fn parse<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    members: &[&'static str],
) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::Invalid {
            field: "Content-Type",
            reason: "must be application/json",
        });
    }
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest("The request body could not be read.")
        }
    })?;
    let not_json = || ApiError::Invalid {
        field: "body",
        reason: "is not a JSON document",
    };
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        if !error.inner().is_data() {
            return not_json();
        }
        match member_at_fault(&error, members) {
            Some(field) => ApiError::Invalid {
                field,
                reason: "is missing or of the wrong type",
            },
            None => ApiError::Invalid {
                field: "body",
                reason: "must be a JSON object with this route's members",
            },
        }
    })?;
    deserializer.end().map_err(|_| not_json())?;
    Ok(value)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v.ends_with("+json"))
}

/// The member a data error is about: the first step of its path, or the
/// one serde says is missing; only ever one of `members`.
fn member_at_fault(
    error: &serde_path_to_error::Error<serde_json::Error>,
    members: &[&'static str],
) -> Option<&'static str> {
    let named = match error.path().iter().next() {
        Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
        _ => error
            .inner()
            .to_string()
            .strip_prefix("missing field `")?
            .split('`')
            .next()?
            .to_owned(),
    };
    members.iter().copied().find(|m| *m == named)
}
