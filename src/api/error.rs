//! `ApiError`: every backend API failure as `application/problem+json`
//! (RFC 9457), its status decided in one match. Details that could hold a
//! secret go to the log, not the answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::proxy_path::PathError;
use crate::checked::ConnectionStatus;
use crate::connections::CredentialError;
use crate::events::RedeliveryError;
use crate::http_client::OutboundError;
use crate::oauth::OAuthError;
use crate::request_log::FailureDetail;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong admin bearer token")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("no such connect session")]
    UnknownSession,
    /// A member (or the body, or a header) that is refused; the detail names
    /// it and says why in a fixed sentence, never repeating what was sent.
    #[error("invalid request: {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("proxy path refused: {0}")]
    BadPath(PathError),
    #[error("request body over the limit")]
    TooLarge,
    #[error("the upstream answer is over the limit")]
    UpstreamTooLarge,
    /// This connection's calls are paced and its next turn is further off
    /// than a call may wait.
    #[error("paced: next turn in {0:?}")]
    Paced(std::time::Duration),
    #[error("upstream: {0}")]
    Upstream(#[from] OutboundError),
    #[error("credential: {0}")]
    Credential(#[from] CredentialError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("redelivery: {0}")]
    Redelivery(#[from] RedeliveryError),
}

impl ApiError {
    fn problem(&self) -> (StatusCode, &'static str, String) {
        use StatusCode as S;
        match self {
            Self::Unauthorized => (S::UNAUTHORIZED, "Unauthorized", "Send Authorization: Bearer <ADMIN_TOKEN>.".into()),
            Self::NotFound => not_found(),
            Self::UnknownSession => (S::NOT_FOUND, "Not found", "There is no such connect session.".into()),
            Self::Invalid { field, reason } => (S::UNPROCESSABLE_ENTITY, "Invalid request", format!("{field}: {reason}.")),
            Self::BadRequest(detail) => (S::BAD_REQUEST, "Bad request", (*detail).into()),
            Self::BadPath(detail) => (S::BAD_REQUEST, "Path refused", format!("{detail}; the proxy only forwards paths inside API_BASE_URL.")),
            Self::TooLarge => (S::PAYLOAD_TOO_LARGE, "Body too large", "JSON bodies are limited to 64 KiB, proxied bodies to 10 MiB.".into()),
            Self::UpstreamTooLarge => (S::BAD_GATEWAY, "Upstream answer too large", "The API answered with more than 10 MiB.".into()),
            Self::Paced(_) => (S::TOO_MANY_REQUESTS, "Too many requests", "This connection's calls are paced to EmailOctopus's rate limit (PROXY_BURST, PROXY_RATE_PER_SEC) and its next turn is too far off; try again after Retry-After seconds.".into()),
            Self::Upstream(OutboundError::Timeout { .. }) => (S::GATEWAY_TIMEOUT, "API timeout", "The API did not answer in time.".into()),
            Self::Upstream(_) => (S::BAD_GATEWAY, "API unreachable", "The API could not be reached.".into()),
            Self::Credential(e) => match e {
                CredentialError::NotFound => not_found(),
                CredentialError::NeedsReauth => (S::CONFLICT, "Needs re-authorization", "The provider no longer accepts this connection's grant; the user must connect again.".into()),
                CredentialError::NotRefreshable(why) => (S::CONFLICT, "Nothing to refresh", (*why).into()),
                CredentialError::OAuthNotConfigured => (S::CONFLICT, "OAuth not configured", "This server runs without OAuth settings, so an OAuth connection cannot be refreshed; connect it again with an API key, or set CLIENT_ID and CLIENT_SECRET.".into()),
                CredentialError::KeyRefused => (S::UNPROCESSABLE_ENTITY, "API key refused", "The EmailOctopus API refused this key; nothing was stored.".into()),
                CredentialError::TooManyGuesses(_) => (S::TOO_MANY_REQUESTS, "Too many refused API keys", "The EmailOctopus API has refused too many keys for this connection lately, so this one was not checked and nothing was stored; try again after Retry-After seconds.".into()),
                CredentialError::KeyCheckFailed(_) => (S::BAD_GATEWAY, "API unreachable", "The EmailOctopus API could not check the key; nothing was stored.".into()),
                CredentialError::Provider(OAuthError::Timeout) => (S::SERVICE_UNAVAILABLE, "Provider timeout", "The provider did not answer in time; the connection is unchanged.".into()),
                CredentialError::Provider(OAuthError::Refused { code }) => (S::BAD_GATEWAY, "Provider refused", format!("The provider refused the refresh ({code}); the connection is unchanged.")),
                CredentialError::Provider(OAuthError::Failed(_)) => (S::BAD_GATEWAY, "Provider failed", "The provider could not be reached or gave an unusable answer; the connection is unchanged.".into()),
                CredentialError::Busy => (S::SERVICE_UNAVAILABLE, "Busy", "Another refresh of this connection is taking too long; try again.".into()),
                CredentialError::Store(_) => (S::SERVICE_UNAVAILABLE, "Storage unavailable", "The database is not answering; try again.".into()),
                CredentialError::Sealed(_) => (S::INTERNAL_SERVER_ERROR, "Credential unreadable", "The stored credential does not open with the configured keys.".into()),
            },
            Self::Store(_) | Self::Redelivery(RedeliveryError::Store(_)) => (S::SERVICE_UNAVAILABLE, "Storage unavailable", "The database is not answering; try again.".into()),
            Self::Redelivery(RedeliveryError::NotFound) => (S::NOT_FOUND, "Not found", "There is no such event (events are kept for EVENT_RETENTION_DAYS after they finish).".into()),
            Self::Redelivery(RedeliveryError::NoWebhook) => (S::CONFLICT, "No webhook configured", "WEBHOOK_URL is not set, so events are kept for polling only and cannot be delivered.".into()),
        }
    }

    /// How long a caller told 429 should wait before it tries again.
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Paced(wait) => Some(*wait),
            Self::Credential(CredentialError::TooManyGuesses(limited)) => Some(limited.retry_after),
            _ => None,
        }
    }
}

/// An RFC 9457 problem: the body of every backend API error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    problem_type: String,
    title: String,
    status: u16,
    detail: String,
    /// `needs_reauth` on the 409 of a refresh the provider answered `invalid_grant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_status: Option<ConnectionStatus>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, title, detail) = self.problem();
        let body = Problem {
            problem_type: "about:blank".into(),
            title: title.into(),
            status: status.as_u16(),
            detail,
            connection_status: matches!(self, Self::Credential(CredentialError::NeedsReauth))
                .then_some(ConnectionStatus::NeedsReauth),
        };
        let body = serde_json::to_string(&body).expect("a problem serialises");
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = self.retry_after() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(whole_seconds_after(wait)),
            );
        }
        FailureDetail::attach(&mut response, &self);
        response
    }
}

/// `Retry-After` in whole seconds (RFC 9110 §10.2.3), rounded up so that a
/// caller who waits that long finds its turn.
fn whole_seconds_after(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

fn not_found() -> (StatusCode, &'static str, String) {
    (
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such connection.".into(),
    )
}
